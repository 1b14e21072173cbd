//! What the user typed, as clap structures. No logic here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Manage the devicegate database: products, devices, principals.
#[derive(Debug, Clone, Parser)]
#[command(name = "devicegate", version, about, long_about = None)]
pub struct Cli {
    /// Database URL: sqlite://PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "DEVICEGATE_DATABASE_URL",
        default_value = "sqlite://devicegate.db"
    )]
    pub database_url: String,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The key file secrets are sealed with at rest (`secrets keygen`):
    /// secrets written are sealed, sealed ones opened.
    #[arg(long, global = true, env = "DEVICEGATE_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create, list, show, update and delete products.
    #[command(subcommand)]
    Product(ProductCommand),
    /// Create, list, enable, disable, register and import devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Backend clients with their own topic rules.
    #[command(subcommand)]
    Principal(PrincipalCommand),
    /// devicegate as a small CA: make it, certify brokers, list revocations.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Print the client id, username and password a device would send.
    Sign(SignArgs),
    /// Device counts by state, per product.
    Status,
    /// Device-token signing keys, and tokens issued by hand.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Registration agents: bearer tokens for the provisioning service.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Check a Mosquitto configuration with devicegate: plugin, database,
    /// listeners, data, clock; exit code 1 when something is wrong.
    Doctor {
        /// The mosquitto.conf to check (its include_dir files too).
        #[arg(long, default_value = "/etc/mosquitto/mosquitto.conf")]
        config: PathBuf,
    },
    /// Seal secrets at rest: make keys, seal or rotate every stored secret.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Run the provisioning service: device tokens, bootstrap, agents and
    /// the admin API over HTTP (IDENTITIES.md §7).
    Serve(ServeArgs),
    /// Print the shell completion script for SHELL (the Debian package
    /// installs them for bash, zsh and fish).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Write a man page for devicegate and one per subcommand into DIR
    /// (devicegate.1, devicegate-device-create.1, …).
    Manual {
        /// The folder to write the pages into (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// `devicegate secrets …`
#[derive(Debug, Clone, Subcommand)]
pub enum SecretsCommand {
    /// Add a new random AES-256 key to the key file FILE (created 0600;
    /// the new key becomes the one new secrets are sealed with, older keys
    /// stay to open older values). Then run `secrets seal`.
    Keygen {
        /// The key file.
        #[arg(long)]
        out: PathBuf,
        /// The key id (letters, digits, `-`, `_`, `.`); default: random.
        #[arg(long)]
        kid: Option<String>,
    },
    /// Seal every stored secret under the current key of --secret-key-file
    /// (plaintext ones and ones under older keys) and mark every product
    /// sealed: plaintext secrets are refused from then on. `rotate` is the
    /// same command, after `secrets keygen` made a new current key.
    #[command(alias = "rotate")]
    Seal,
}

/// `devicegate serve …`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Ask clients for a certificate and verify it against these CAs (PEM):
    /// a device certificate then suffices for `POST /bootstrap`.
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// The Ed25519 private key (PKCS#8 PEM, from `token keygen`) that signs
    /// device tokens; without it `POST /authenticate` answers 503.
    #[arg(long)]
    pub token_key: Option<PathBuf>,
    /// The broker URL for devices that neither they nor their product are
    /// assigned to.
    #[arg(long, value_name = "URL")]
    pub default_server: Option<String>,
    /// The devicegate CA folder (`ca init`): the admin API issues device
    /// certificates from CSRs with it, and bootstrap answers its certificate.
    #[arg(long)]
    pub ca_dir: Option<PathBuf>,
}

/// `devicegate token …`
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Make a token signing key: the private key to FILE (mode 0600, for
    /// `serve --token-key`), the public key and key id into the database,
    /// so that every broker verifies its tokens.
    Keygen {
        /// Where to write the private key (PEM); must not exist.
        #[arg(long)]
        out: PathBuf,
        /// The key id (letters, digits, `-`, `_`, `.`); default: random.
        #[arg(long)]
        kid: Option<String>,
    },
    /// Print a token for a device, signed with a key from `token keygen`.
    Issue {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// The private key file.
        #[arg(long)]
        key: PathBuf,
        /// Lifetime, e.g. `15m`, `1h`; default: the product's token TTL.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// List the keys brokers accept tokens from.
    Keys,
    /// Remove a key: its tokens are refused and their sessions closed.
    RemoveKey {
        /// The key id.
        kid: String,
    },
}

/// `devicegate agent …`
#[derive(Debug, Clone, Subcommand)]
pub enum AgentCommand {
    /// Create an agent and print its bearer token once.
    Create {
        /// The agent's name.
        name: String,
        /// The products it may register devices of, comma-separated.
        #[arg(long, value_delimiter = ',', required_unless_present = "admin")]
        products: Vec<String>,
        /// How long its token lives (`24h`, `30d`, `forever`).
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// An agent for the admin API (every product).
        #[arg(long)]
        admin: bool,
    },
    /// List agents (never their tokens).
    List,
    /// Revoke an agent: its token is refused from now on.
    Revoke {
        /// The agent's name.
        name: String,
    },
}

/// The device protocol of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// Envision EnOS.
    Enos,
    /// Alibaba Cloud IoT Platform.
    Aliyun,
}

/// Product settings shared by `create` and `update`.
#[derive(Debug, Clone, Args)]
pub struct ProductSettings {
    /// The product secret, for dynamic activation (generated when needed and left out).
    #[arg(long)]
    pub secret: Option<String>,
    /// Accept a --secret shorter than 16 bytes (an SDK with a short one built in).
    #[arg(long, requires = "secret")]
    pub allow_weak_secret: bool,
    /// Allowed hashes, comma-separated: sha256, sha1, md5.
    #[arg(long, value_name = "LIST")]
    pub sign_methods: Option<String>,
    /// Refuse logins whose timestamp is further than SECS from now (0 = off).
    #[arg(long, value_name = "SECS")]
    pub timestamp_window: Option<u32>,
    /// Mark devices offline after SECS without traffic (0 = never).
    #[arg(long, value_name = "SECS")]
    pub offline_after: Option<u32>,
    /// Most sub-devices one gateway may have logged in.
    #[arg(long, value_name = "N")]
    pub max_sub_devices: Option<u32>,
    /// An extra topic rule for every device, e.g. `pub:/{productKey}/{deviceKey}/custom/#` (repeatable).
    #[arg(long = "topic", value_name = "RULE")]
    pub topics: Vec<String>,
    /// Lifetime of the product's device tokens in seconds (default 3600).
    #[arg(long, value_name = "SECS")]
    pub token_ttl: Option<u32>,
    /// The broker URL (`mqtt://` or `mqtts://HOST:PORT`) the product's
    /// devices are assigned to; `""` removes the assignment.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

/// `devicegate product …`
#[derive(Debug, Clone, Subcommand)]
pub enum ProductCommand {
    /// Create a product.
    Create {
        /// The product key.
        product_key: String,
        /// The device protocol.
        #[arg(long, value_enum, default_value = "enos")]
        dialect: DialectArg,
        /// Allow dynamic activation (EnOS securemode 3) or registration (Aliyun).
        #[arg(long)]
        dynamic_activation: bool,
        /// Accept any client id identity part, not only the SDK forms.
        #[arg(long)]
        free_client_id: bool,
        /// Allow devices `$share/` subscriptions.
        #[arg(long)]
        shared_subscriptions: bool,
        /// Allow devices retained publishes.
        #[arg(long)]
        allow_retain: bool,
        /// Register a device on its first login with a certificate from a CA
        /// the product trusts whose CN is `{pk}/{dk}` (just in time).
        #[arg(long)]
        auto_register_certs: bool,
        #[command(flatten)]
        settings: ProductSettings,
    },
    /// List products.
    List,
    /// Show one product.
    Show {
        /// The product key.
        product_key: String,
    },
    /// Change a product's settings.
    Update {
        /// The product key.
        product_key: String,
        /// The device protocol.
        #[arg(long, value_enum)]
        dialect: Option<DialectArg>,
        /// Dynamic activation on or off.
        #[arg(long, value_name = "BOOL")]
        dynamic_activation: Option<bool>,
        /// Free client ids on or off.
        #[arg(long, value_name = "BOOL")]
        free_client_id: Option<bool>,
        /// Shared subscriptions on or off.
        #[arg(long, value_name = "BOOL")]
        shared_subscriptions: Option<bool>,
        /// Retained publishes on or off.
        #[arg(long, value_name = "BOOL")]
        allow_retain: Option<bool>,
        /// Just-in-time certificate registration on or off.
        #[arg(long, value_name = "BOOL")]
        auto_register_certs: Option<bool>,
        /// Remove every extra topic rule (before adding any --topic).
        #[arg(long)]
        clear_topics: bool,
        #[command(flatten)]
        settings: ProductSettings,
    },
    /// Delete a product and all its devices.
    Delete {
        /// The product key.
        product_key: String,
    },
    /// Trust a CA for just-in-time certificate registration by this
    /// product (the devicegate CA of `ca init` is trusted by every product).
    TrustCa {
        /// The product key.
        product_key: String,
        /// The CA certificate, PEM.
        file: PathBuf,
    },
}

/// `devicegate device …`
#[derive(Debug, Clone, Subcommand)]
pub enum DeviceCommand {
    /// Create a device; a random secret is generated and printed once unless --secret is given.
    Create {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// The device secret.
        #[arg(long, conflicts_with = "no_secret")]
        secret: Option<String>,
        /// Accept a --secret shorter than 16 bytes (an SDK with a short one built in).
        #[arg(long, requires = "secret")]
        allow_weak_secret: bool,
        /// Create without a secret, waiting for dynamic activation.
        #[arg(long)]
        no_secret: bool,
        /// The gateway this sub-device logs in through, as GWPK/GWDK.
        #[arg(long, value_name = "GWPK/GWDK")]
        gateway: Option<String>,
    },
    /// List devices, of one product or all.
    List {
        /// Only this product.
        product_key: Option<String>,
    },
    /// Show one device.
    Show {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Enable a device.
    Enable {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Disable a device; connected brokers throw it off at once.
    Disable {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Delete a device.
    Delete {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Make a device inactive again so it may activate or register anew.
    ResetActivation {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Issue a fresh secret to a device that has never logged in (creating it if needed).
    Register {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Create a TLS pre-shared key for a device and print its identity and
    /// key once; `device psk revoke` revokes.
    Psk(PskArgs),
    /// Device certificates: issue from the devicegate CA, add one from
    /// another CA, revoke.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Create an access key pair for device tokens and print it once
    /// (`POST /authenticate` exchanges it for a token).
    AccessKey {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// Revoke the device's access keys instead (this one, or all).
        #[arg(long, value_name = "ACCESS_KEY", num_args = 0..=1, default_missing_value = "")]
        revoke: Option<String>,
    },
    /// Lift the device's failed-login blocks (`device show` lists them) and
    /// forget its failures, on every broker.
    Unblock {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Refuse every device token issued to the device so far; brokers
    /// close its sessions that logged in with one.
    RevokeTokens {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
    },
    /// Assign the device to a broker (`mqtt://` or `mqtts://HOST:PORT`);
    /// brokers that know their own URL refuse it elsewhere.
    Assign {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// The broker URL.
        #[arg(long, required_unless_present = "clear", value_name = "URL")]
        server: Option<String>,
        /// Remove the device's own assignment (its product's applies).
        #[arg(long, conflicts_with = "server")]
        clear: bool,
    },
    /// Import devices from a CSV file with the header `device_key[,secret][,gateway]`.
    Import {
        /// The product key.
        product_key: String,
        /// The CSV file.
        file: PathBuf,
        /// Rows per transaction (and per change brokers load at once).
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_size: u32,
        /// Accept secrets shorter than 16 bytes in the file.
        #[arg(long)]
        allow_weak_secret: bool,
    },
}

/// `devicegate device psk PK DK [--identity ID]`, or `device psk revoke …`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PskArgs {
    /// The product key.
    #[arg(required = true)]
    pub product_key: Option<String>,
    /// The device key.
    #[arg(required = true)]
    pub device_key: Option<String>,
    /// The identity the device sends (1–128 printable ASCII characters
    /// without `& | / + #`); default: 22 random base64url characters.
    #[arg(long, allow_hyphen_values = true)]
    pub identity: Option<String>,
    #[command(subcommand)]
    pub action: Option<PskAction>,
}

/// `devicegate device psk …` actions.
#[derive(Debug, Clone, Subcommand)]
pub enum PskAction {
    /// Revoke one of the device's PSKs, or all of them: brokers refuse it
    /// at once and close the connections that use it.
    Revoke {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// The PSK identity (default: every PSK of the device).
        #[arg(allow_hyphen_values = true)]
        identity: Option<String>,
    },
}

/// `devicegate device cert …`
#[derive(Debug, Clone, Subcommand)]
pub enum CertCommand {
    /// Issue a certificate for a device from the devicegate CA (CN
    /// `{pk}/{dk}`, SAN `urn:uuid:{device GUID}`) and register it. Writes
    /// PREFIX.pem, and PREFIX.key (0600) unless --csr gives the device's own key.
    Issue {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// The directory of `devicegate ca init`.
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
        /// Where to write: PREFIX.pem and PREFIX.key.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
        /// A PEM certificate signing request made by the device (its key never leaves it).
        #[arg(long, value_name = "FILE")]
        csr: Option<PathBuf>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Register a certificate another CA issued, by fingerprint.
    Add {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// The PEM certificate.
        file: PathBuf,
    },
    /// Revoke one of the device's certificates, or all of them: brokers
    /// refuse it at once and close the connections that use it.
    Revoke {
        /// The product key.
        product_key: String,
        /// The device key.
        device_key: String,
        /// The SHA-256 fingerprint (hex; default: every certificate of the device).
        fingerprint: Option<String>,
    },
}

/// `devicegate ca …`
#[derive(Debug, Clone, Subcommand)]
pub enum CaCommand {
    /// Make a CA: DIR/ca.pem (self-signed, ECDSA P-256, 10 years) and
    /// DIR/ca.key (0600), and record the CA certificate in the database as
    /// the one every `--auto-register-certs` product trusts.
    Init {
        /// Where the CA lives.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// A server certificate for a broker: PREFIX.pem and PREFIX.key (0600).
    ServerCert {
        /// The CA directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// A DNS name clients use (repeatable).
        #[arg(long = "dns", value_name = "NAME")]
        dns: Vec<String>,
        /// An IP address clients use (repeatable).
        #[arg(long = "ip", value_name = "ADDR")]
        ips: Vec<std::net::IpAddr>,
        /// Where to write: PREFIX.pem and PREFIX.key.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Print a CRL (PEM) of the revoked device certificates this CA issued,
    /// for brokers that read one (Mosquitto: `crlfile`).
    Crl {
        /// The CA directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `devicegate principal …`
#[derive(Debug, Clone, Subcommand)]
pub enum PrincipalCommand {
    /// Create a principal. By default a 128-bit secret is generated and
    /// printed once (checked with one SHA-256 per login); with
    /// `--password-stdin` an operator-chosen password is read and stored
    /// as PBKDF2, which the broker runs at most a few times per second.
    Create {
        /// The login name (MQTT username).
        name: String,
        /// Read an operator-chosen password from standard input instead of
        /// generating one (passwords never go on the command line).
        #[arg(long)]
        password_stdin: bool,
        /// A rule such as `sub:/sys/+/+/thing/#` or `pub:/sys/+/+/thing/service/#` (repeatable).
        #[arg(long = "allow", value_name = "RULE", required = true)]
        allow: Vec<String>,
    },
    /// List principals.
    List,
    /// Delete a principal; its connections are thrown off.
    Delete {
        /// The login name.
        name: String,
    },
}

/// `devicegate sign …`
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The product key.
    pub product_key: String,
    /// The device key (EnOS) or device name (Aliyun).
    pub device_key: String,
    /// The device secret (or the product secret with --secure-mode 3).
    pub secret: String,
    /// The device protocol.
    #[arg(long, value_enum, default_value = "enos")]
    pub dialect: DialectArg,
    /// The hash: sha256, sha1 or md5.
    #[arg(long, default_value = "sha256")]
    pub method: String,
    /// The timestamp to sign (default: now, in milliseconds).
    #[arg(long)]
    pub timestamp: Option<String>,
    /// 2: login with the device secret; 3: EnOS dynamic activation with the product secret.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub secure_mode: u8,
    /// The broker's host, for the printed mosquitto_pub command.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The broker's port, for the printed mosquitto_pub command.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
}
