//! The engine-level test fleet: EnOS product `Ab3dEf9h` (product secret
//! `ProdSecretXYZ123`, dynamic activation) with `dev_0001` (secret
//! `S3cretDevice0001`) and `dev_0002` (no secret yet), written through the
//! store; the PROTOCOL.md vectors that log them in; and a CONNECT helper.

use devicegate::clock::now_ms;
use devicegate::credentials::Dialect;
use devicegate::engine::{ConnectDecision, ConnectRequest, ConnectionId, Hooks};
use devicegate::store::{DeviceSpec, ProductSpec, Store};

/// Vector E3: `dev_0001`'s client id (SHA-256, securemode 2).
pub const E3_ID: &str = "dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1795320550912.803|";
/// Vector E3: `dev_0001`'s password.
pub const E3_PW: &str = "ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec";
/// Vector E9: `dev_0002`'s activation client id (securemode 3).
pub const E9_ID: &str = "dev_0002|securemode=3,signmethod=hmacsha256,timestamp=1795320550912.803|";
/// Vector E9: `dev_0002`'s activation password (product secret).
pub const E9_PW: &str = "4f4edbc363554b3d3f96bc4466c7356e6ee142bda4d65d1b10e6e139228acde8";

/// Creates the fleet in the database at `url`; returns the open store.
pub async fn seed(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let mut spec = ProductSpec::new("Ab3dEf9h", Dialect::Enos);
    spec.secret = Some("ProdSecretXYZ123".into());
    spec.dynamic_activation = true;
    store.create_product(spec).await.unwrap();
    let secret = DeviceSpec {
        secret: Some("S3cretDevice0001".into()),
        ..DeviceSpec::default()
    };
    store.create_device("Ab3dEf9h", "dev_0001", secret).await.unwrap();
    let waiting = DeviceSpec {
        no_secret: true,
        ..DeviceSpec::default()
    };
    store.create_device("Ab3dEf9h", "dev_0002", waiting).await.unwrap();
    store
}

/// A CONNECT from 127.0.0.1 on connection `conn`, now.
pub fn connect(hooks: &dyn Hooks, conn: u64, client_id: &str, username: &str, password: &str) -> ConnectDecision {
    let request = ConnectRequest::new(
        client_id.as_bytes(),
        Some(username.as_bytes()),
        Some(password.as_bytes()),
        Some("127.0.0.1"),
    );
    hooks.handle_connect(ConnectionId(conn), &request, now_ms())
}
