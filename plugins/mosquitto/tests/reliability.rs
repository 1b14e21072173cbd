//! Faults and hostile clients against a real Mosquitto with the plugin
//! (issue "Nothing lost, no one in"): client-id takeover, lockout by wrong
//! passwords from elsewhere, long fields in refusal log lines, and the
//! `per_listener_settings` mode in which revocation could not work.

mod support;

use std::time::Duration;

use devicegate_test_support as db;
use devicegate_test_support::mqtt::{answer_activation, connect, seed};
use devicegate_test_support::raw::{connack_from, connect_packet, login_packet, send_once};
use devicegate_test_support::scenarios::{seed_client_id_twin, stays_open};
use devicegate_test_support::{cli, sign};
use rumqttc::ConnectReturnCode;
use support::{Broker, hand_over, plugin_path, unsafe_is_root};

/// `device show` run as the broker's user `mosquitto` (when the tests run
/// as root): run as root on a database in use, the CLI could create its
/// `-wal`/`-shm` owned by root, which the broker then cannot write.
fn device_show_as_broker(url: &str, dk: &str) -> serde_json::Value {
    if !unsafe_is_root() {
        return cli(url, &["device", "show", "Ab3dEf9h", dk]);
    }
    let out = std::process::Command::new("runuser")
        .args(["-u", "mosquitto", "--"])
        .arg(devicegate_test_support::cli_binary())
        .args(["--database-url", url, "--json", "device", "show", "Ab3dEf9h", dk])
        .output()
        .expect("runuser runs (util-linux)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A broker on `url` running as user `mosquitto` (when the tests run as
/// root: root would write a read-only file anyway).
fn broker_as_mosquitto(url: &str) -> Broker {
    let port = support::free_port();
    let broker = Broker::spawn_config_as(
        &format!(
            "per_listener_settings false\nlistener {port} 127.0.0.1\nallow_anonymous false\n\
             plugin {}\nplugin_opt_database_url {url}\nplugin_opt_refresh_interval_ms 100\n\
             plugin_opt_log_level debug\n",
            plugin_path().display()
        ),
        "mosquitto",
    );
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_take_over_another_devices_client_id() {
    let db = db::sqlite();
    seed(&db.url);
    // A device of another product with the same device key: an EnOS SDK
    // that sends a fixed timestamp gives it the victim's exact client id.
    seed_client_id_twin(&db.url);
    let broker = Broker::start(&db.url);
    let ts = ["--timestamp", "1700000000000"];
    let victim = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &ts);
    let attacker = sign("Zz9Zz9Zz", "dev_0001", "OtherSecret0001", &ts);
    assert_eq!(victim.0, attacker.0, "the same client id");
    let (_victim_client, mut victim_events) = connect(broker.port, &victim).await.expect("victim accepted");
    for _ in 0..3 {
        assert_eq!(
            connect(broker.port, &attacker).await.err(),
            Some(ConnectReturnCode::NotAuthorized),
            "a login with a live client id of another device is refused"
        );
    }
    assert!(
        stays_open(&mut victim_events, Duration::from_secs(2)).await,
        "the victim keeps its session:\n{}",
        broker.log()
    );
    assert!(
        !broker.log().contains("already connected, closing old connection"),
        "{}",
        broker.log()
    );
    broker.wait_for_log("client id in use by another device's session", Duration::from_secs(2));
    // The same device reconnecting still takes its own session over (S4).
    let (_again, _events) = connect(broker.port, &victim)
        .await
        .expect("the device itself takes over");
    assert!(
        !stays_open(&mut victim_events, Duration::from_secs(3)).await,
        "the old session is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_elsewhere_do_not_lock_a_device_out() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let forged = sign("Ab3dEf9h", "dev_0001", "not-the-secret", &[]);
    // 25 wrong passwords from an attacker's address, and one from each of
    // 20 more: well over the per-pair limit and into the ceiling's count.
    for _ in 0..25 {
        let (code, _) = connack_from("127.0.0.2", broker.port, &login_packet(&forged)).await;
        assert_ne!(code, Some(0));
    }
    for i in 0..20 {
        let (code, _) = connack_from(&format!("127.0.1.{}", i + 1), broker.port, &login_packet(&forged)).await;
        assert_ne!(code, Some(0));
    }
    broker.wait_for_log(
        "too many failed logins: blocking this username from this address",
        Duration::from_secs(2),
    );
    // The device, from its own address, is served.
    let (code, _device) = connack_from("127.0.0.1", broker.port, &login_packet(&good)).await;
    assert_eq!(code, Some(0), "{}", broker.log());
    // The attacker's address is refused even with the right password.
    let (code, _) = connack_from("127.0.0.2", broker.port, &login_packet(&good)).await;
    assert_eq!(code, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_padded_usernames_keep_their_reason_and_address() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    for (len, source) in [(1_000, "127.0.0.5"), (20_000, "127.0.0.6"), (60_000, "127.0.0.7")] {
        let username = format!("{}&Ab3dEf9h", "d".repeat(len));
        let packet = connect_packet(b"padded", Some(username.as_bytes()), Some(b"0000"));
        let (code, _) = connack_from(source, broker.port, &packet).await;
        assert_ne!(code, Some(0));
        let line_of = |log: String| {
            log.lines()
                .find(|l| l.contains("login refused") && l.contains(source))
                .map(str::to_owned)
        };
        let start = std::time::Instant::now();
        let line = loop {
            if let Some(line) = line_of(broker.log()) {
                break line;
            }
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "no refusal line for {source}:\n{}",
                broker.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(line.contains("reason="), "{line}");
        assert!(line.contains(&format!("({} bytes)", username.len())), "{line}");
        assert!(line.len() < 1_000, "the field is cut, not the line: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_listener_settings_true_is_refused_with_one_clear_line() {
    let db = db::sqlite();
    seed(&db.url);
    let port = support::free_port();
    let mut broker = Broker::spawn_config(&format!(
        "per_listener_settings true\nlistener {port} 127.0.0.1\nallow_anonymous false\n\
         plugin {}\nplugin_opt_database_url {}\n",
        plugin_path().display(),
        db.url
    ));
    let status = broker.exit_status();
    assert!(!status.success(), "the broker must not run without revocation");
    let log = broker.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("per_listener_settings true"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("Set `per_listener_settings false`"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_file_keeps_state_changes_until_it_is_writable() {
    let db = db::sqlite();
    seed(&db.url);
    let path = std::path::PathBuf::from(db.url.strip_prefix("sqlite://").unwrap());
    let dir = path.parent().unwrap().to_owned();
    if unsafe_is_root() {
        hand_over(&dir, "mosquitto");
    }
    chmod(&dir, 0o755);
    chmod(&path, 0o444);
    let broker = broker_as_mosquitto(&db.url);
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let (_device, _device_events) = connect(broker.port, &good).await.expect("login served from memory");
    let activation = sign("Ab3dEf9h", "dev_0002", "ProdSecretXYZ123", &["--secure-mode", "3"]);
    let (client, mut events) = connect(broker.port, &activation)
        .await
        .expect("activation login accepted");
    broker.wait_for_log("cannot write state changes", Duration::from_secs(5));
    let log = broker.log();
    let user = if unsafe_is_root() {
        "mosquitto".to_owned()
    } else {
        devicegate::store::process_user()
    };
    assert!(
        log.contains(&format!(
            "{} not writable by user {user}; fix: chown {user}",
            path.display()
        )),
        "the log names the file, the user and the fix:\n{log}"
    );
    assert!(!log.contains("dropping a state write"), "{log}");
    assert!(device_show_as_broker(&db.url, "dev_0001")["activated_at"].is_null());
    // The file becomes writable: no restart, everything is written, and
    // only now is the device's new secret pushed.
    // The fix the log line gives: SQLite made its -wal and -shm read-only
    // like the file, so all three become writable.
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            chmod(&file, 0o644);
        }
    }
    let secret = answer_activation(&client, &mut events, Duration::from_secs(20)).await;
    let start = std::time::Instant::now();
    loop {
        let one = device_show_as_broker(&db.url, "dev_0001");
        let two = device_show_as_broker(&db.url, "dev_0002");
        if one["online"] == true && !one["activated_at"].is_null() && !two["activated_at"].is_null() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{one} {two}\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.wait_for_log("devicegate writes state changes again", Duration::from_secs(5));
    drop(client);
    let (_again, _) = connect(broker.port, &sign("Ab3dEf9h", "dev_0002", &secret, &[]))
        .await
        .expect("login with the secret delivered after the outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_noticed_and_a_restored_one_reloaded() {
    let db = db::sqlite();
    seed(&db.url);
    let path = db.url.strip_prefix("sqlite://").unwrap().to_owned();
    // The backup an operator restores later, with dev_0001 disabled in it.
    let backup_url = format!("sqlite://{path}.backup");
    seed(&backup_url);
    cli(&backup_url, &["device", "disable", "Ab3dEf9h", "dev_0001"]);
    let broker = Broker::start(&db.url);
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let (_client, mut events) = connect(broker.port, &good).await.expect("accepted");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    broker.wait_for_log("was deleted or emptied", Duration::from_secs(5));
    assert!(!std::path::Path::new(&path).exists(), "no empty database in its place");
    std::fs::rename(format!("{path}.backup"), &path).unwrap();
    broker.wait_for_log("reloading the registry from it", Duration::from_secs(5));
    assert!(
        !stays_open(&mut events, Duration::from_secs(5)).await,
        "the device disabled in the restored file is thrown off:\n{}",
        broker.log()
    );
    assert_eq!(
        connect(broker.port, &good).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
}

/// Over a thousand malformed and hostile CONNECTs, each from its own
/// loopback address: none is accepted, each refusal the plugin logs is one
/// complete line (address and reason kept), no address gets two, and the
/// broker still serves a correct login afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hostile_connects_are_refused_and_leave_the_broker_up() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let packets = hostile_connects();
    assert!(packets.len() >= 1_000, "{}", packets.len());
    for (i, packet) in packets.iter().enumerate() {
        let source = format!("127.1.{}.{}", i / 250, 1 + i % 250);
        let code = send_once(&source, broker.port, packet).await;
        assert_ne!(
            code,
            Some(0),
            "hostile CONNECT #{i} was accepted: {:?}",
            String::from_utf8_lossy(packet)
        );
    }
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    connect(broker.port, &good)
        .await
        .expect("the broker still serves logins");
    let log = broker.log();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("login refused")).collect();
    assert!(
        refusals.len() >= 500,
        "the plugin saw and refused most of them: {}",
        refusals.len()
    );
    let mut seen = std::collections::HashSet::new();
    for line in &refusals {
        assert!(line.contains("reason="), "{line}");
        let address = line
            .split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address: {line}"));
        assert!(seen.insert(address.to_owned()), "two refusal lines for {address}");
        assert!(line.len() < 1_000, "{line}");
    }
    assert!(!log.contains("panicked"), "{log}");
}

/// The hostile CONNECTs: malformed packets, huge and broken fields, and
/// well-formed ones with every kind of wrong credential.
fn hostile_connects() -> Vec<Vec<u8>> {
    let valid = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let packet = login_packet(&valid);
    let mut out = Vec::new();
    // Every truncation of a valid login, and every lie about its length.
    for cut in 1..packet.len() {
        out.push(packet[..cut].to_vec());
    }
    for len in [0u8, 1, 2, 0x7f] {
        let mut p = packet.clone();
        p[1] = len;
        out.push(p);
    }
    out.push(vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    out.push(vec![0x10, 0x80, 0x80, 0x80, 0x80]);
    out.push(vec![0x00; 64]);
    // Broken passwords: every length, non-hex, case games, empty.
    let hex = valid.2.clone();
    for n in (0..=hex.len() + 4).filter(|n| *n != hex.len()) {
        let password: String = hex.chars().cycle().take(n).collect();
        out.push(connect_packet(
            valid.0.as_bytes(),
            Some(valid.1.as_bytes()),
            Some(password.as_bytes()),
        ));
    }
    for bad in ["zz", "0x", " ", "\u{0}", "ÿÿ", "-1", "%s%n", "../../etc/passwd"] {
        let password = format!("{bad}{}", &hex[bad.len().min(hex.len())..]);
        out.push(connect_packet(
            valid.0.as_bytes(),
            Some(valid.1.as_bytes()),
            Some(password.as_bytes()),
        ));
    }
    out.push(connect_packet(valid.0.as_bytes(), Some(valid.1.as_bytes()), None));
    // Client ids: odd parameters, every sign method, missing pipes, floods.
    let methods = [
        "sha256",
        "sha1",
        "md5",
        "hmacsha256",
        "hmacsha1",
        "hmacmd5",
        "SHA256",
        "sha512",
        "",
        "none",
    ];
    let modes = ["2", "3", "0", "9", "-1", "", "22", "2 "];
    let timestamps = ["1700000000000", "", "x", "1e12", "99999999999999999999", "1.2.3"];
    for method in methods {
        for mode in modes {
            for ts in timestamps {
                let client_id = format!("dev_0001|securemode={mode},signmethod={method},timestamp={ts}|");
                out.push(connect_packet(
                    client_id.as_bytes(),
                    Some(valid.1.as_bytes()),
                    Some(hex.as_bytes()),
                ));
            }
        }
    }
    for client_id in [
        "dev_0001",
        "dev_0001|",
        "|securemode=2|",
        "dev_0001|securemode=2,securemode=3,signmethod=sha256|",
        "dev_0001|securemode=2,signmethod=sha256,timestamp=1,extra=1,extra=2|",
        "dev_0002|securemode=2,signmethod=sha256,timestamp=1|",
        "dev_0001|securemode=2;signmethod=sha256|",
        "dev_0001||||||",
        "",
    ] {
        out.push(connect_packet(
            client_id.as_bytes(),
            Some(valid.1.as_bytes()),
            Some(hex.as_bytes()),
        ));
    }
    let long_params = format!("dev_0001|{}|", "a=b,".repeat(5_000));
    out.push(connect_packet(
        long_params.as_bytes(),
        Some(valid.1.as_bytes()),
        Some(hex.as_bytes()),
    ));
    // Usernames: separators, NUL, control characters, invalid UTF-8, huge.
    let mut usernames: Vec<Vec<u8>> = [
        "&",
        "&&",
        "dev_0001&",
        "&Ab3dEf9h",
        "dev_0001&Ab3dEf9h&x",
        "dev_0001&Ab3d/Ef9h",
        "dev+&Ab3dEf9h",
        "dev#&Ab3dEf9h",
        "dev_0001 &Ab3dEf9h",
        "DEV_0001&AB3DEF9H",
        "dev_0001&Ab3dEf9h\n",
        "",
        " ",
        "Backend",
        "backend ",
        "nobody",
        "$SYS",
        "dev_0001|x&Ab3dEf9h",
    ]
    .iter()
    .map(|u| u.as_bytes().to_vec())
    .collect();
    usernames.push(b"dev\0_0001&Ab3dEf9h".to_vec());
    usernames.push(b"dev\x01&Ab3dEf9h".to_vec());
    usernames.push(b"\xff\xfe&Ab3dEf9h".to_vec());
    usernames.push(b"dev_0001&Ab3d\xc3\x28".to_vec());
    for len in [255usize, 256, 1_024, 4_096, 65_000] {
        usernames.push(format!("{}&Ab3dEf9h", "d".repeat(len)).into_bytes());
    }
    for username in &usernames {
        for password in [hex.as_bytes(), b"", b"backend-pw"] {
            out.push(connect_packet(valid.0.as_bytes(), Some(username), Some(password)));
        }
    }
    // Client ids that are huge, binary or NUL-laden, with valid credentials.
    for client_id in [
        vec![0u8; 16],
        vec![0xff; 16],
        vec![b'a'; 65_000],
        b"dev_0001\0|x|".to_vec(),
    ] {
        out.push(connect_packet(
            &client_id,
            Some(valid.1.as_bytes()),
            Some(hex.as_bytes()),
        ));
    }
    // Random bytes after a valid header.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    while out.len() < 1_100 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut p = packet.clone();
        let at = 14 + (seed as usize) % (p.len() - 14);
        // An odd mask always changes the byte, and never only a letter's case.
        p[at] ^= ((seed >> 32) as u8) | 0x01;
        out.push(p);
    }
    out
}

/// A device subscribes with 44 hostile filters and publishes on 24 topics
/// that are not its own, while another device publishes on all its own
/// topics and listens on its own filters: nothing of the victim's reaches
/// the attacker, and nothing of the attacker's reaches the victim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_filters_and_publishes_never_cross_devices() {
    use rumqttc::{Packet, QoS};
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let (victim, mut victim_events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .expect("victim accepted");
    let (attacker, mut attacker_events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]))
        .await
        .expect("attacker accepted");
    let filters = [
        "#",
        "+",
        "+/#",
        "+/+",
        "/#",
        "//#",
        "/+/#",
        "+/+/+/+/+/+",
        "/sys/#",
        "/sys/+/#",
        "/sys/+/+/#",
        "/sys/+/+/thing/#",
        "/sys/+/+/+/+/+/+",
        "/sys/Ab3dEf9h/#",
        "/sys/Ab3dEf9h/+/#",
        "/sys/Ab3dEf9h/+/thing/#",
        "/sys/Ab3dEf9h/+/thing/measurepoint/post",
        "/sys/Ab3dEf9h/dev_0001/#",
        "/sys/+/dev_0001/#",
        "/sys/Ab3dEf9h/dev_0001/thing/#",
        "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
        "/sys/Ab3dEf9h/dev_0001/thing/service/#",
        "/sys/Ab3dEf9h/dev_0001/thing/event/+/post",
        "/sys/Ab3dEf9h//#",
        "/sys/Ab3dEf9h/dev_0003/../dev_0001/#",
        "/sys/Ab3dEf9h/dev_0003/+/+/+/+/+",
        "/+/+/+/thing/measurepoint/post",
        "$SYS/#",
        "$SYS/broker/clients/#",
        "$share/g/#",
        "$share/g/+/#",
        "$share/g//sys/Ab3dEf9h/dev_0001/#",
        "$share/x//sys/+/+/thing/#",
        "$share/g//sys/#",
        "/ext/#",
        "/ext/session/#",
        "/ext/session/Ab3dEf9h/dev_0001/#",
        "/ext/+/+/+/#",
        "/ext/session/Ab3dEf9h/+/combine/#",
        "/ext/session/Ab3dEf9h/dev_0001/thing/activate/info",
        "/sys/Ab3dEf9h/dev_0001/thing/model/desired/#",
        "/sys/Ab3dEf9h/+/thing/service/+",
        "+/sys/#",
        "sys/#",
    ];
    assert!(filters.len() >= 40);
    let mut to_attacker = Vec::new();
    let mut to_victim = Vec::new();
    for filter in filters {
        attacker.subscribe(filter, QoS::AtMostOnce).await.unwrap();
        drive(&mut attacker_events, &mut to_attacker, |p| {
            matches!(p, Packet::SubAck(_))
        })
        .await;
    }
    victim
        .subscribe("/sys/Ab3dEf9h/dev_0001/#", QoS::AtMostOnce)
        .await
        .unwrap();
    drive(&mut victim_events, &mut to_victim, |p| matches!(p, Packet::SubAck(_))).await;
    let hostile_topics = [
        "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
        "/sys/Ab3dEf9h/dev_0001/thing/service/x",
        "/sys/Ab3dEf9h/dev_0001/thing/event/alarm/post",
        "/sys/Ab3dEf9h/dev_0001/thing/model/desired/set",
        "/sys/Ab3dEf9h/dev_0001/x",
        "/sys/Ab3dEf9h/dev_0001",
        "/sys/Ab3dEf9h/dev_0001/",
        "/sys/Ab3dEf9h/dev_0001//",
        "/sys/Ab3dEf9h/dev_0003/../dev_0001/thing/measurepoint/post",
        "/sys/Ab3dEf9h/DEV_0001/thing/service/x",
        "/ext/session/Ab3dEf9h/dev_0001/thing/activate/info",
        "/ext/session/Ab3dEf9h/dev_0001/combine/login_reply",
        "/ext/session/Ab3dEf9h/dev_0001/combine/login",
        "$SYS/broker/uptime",
        "$share/g/sys",
        "/sys/Zz9Zz9Zz/dev_0001/thing/measurepoint/post",
        "/sys//dev_0001/thing/measurepoint/post",
        "sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
        "/sys/Ab3dEf9h/dev_0001/thing/service/x/",
        "/sys/Ab3dEf9h/dev_0001/thing/service/x/y/z",
        "/",
        "//",
        "x",
        "/sys",
    ];
    assert!(hostile_topics.len() >= 20);
    for topic in hostile_topics {
        attacker
            .publish(topic, QoS::AtLeastOnce, false, b"from the attacker".to_vec())
            .await
            .unwrap();
        drive(&mut attacker_events, &mut to_attacker, |p| {
            matches!(p, Packet::PubAck(_))
        })
        .await;
    }
    for topic in [
        "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
        "/sys/Ab3dEf9h/dev_0001/thing/event/alarm/post",
        "/sys/Ab3dEf9h/dev_0001/thing/service/x_reply",
        "/sys/Ab3dEf9h/dev_0001/thing/model/desired/get",
    ] {
        victim
            .publish(topic, QoS::AtLeastOnce, false, b"the victim's own".to_vec())
            .await
            .unwrap();
        drive(&mut victim_events, &mut to_victim, |p| matches!(p, Packet::PubAck(_))).await;
    }
    // Anything still on its way has a second to arrive.
    let wait = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < wait {
        drive_for(
            &mut attacker_events,
            &mut to_attacker,
            |_| false,
            Duration::from_millis(100),
        )
        .await;
        drive_for(
            &mut victim_events,
            &mut to_victim,
            |_| false,
            Duration::from_millis(100),
        )
        .await;
    }
    let crossed = |seen: &[(String, Vec<u8>)], from: &[u8]| {
        seen.iter()
            .filter(|(_, p)| p == from)
            .map(|(t, _)| t.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        crossed(&to_attacker, b"the victim's own"),
        Vec::<String>::new(),
        "reached the attacker"
    );
    assert_eq!(
        crossed(&to_victim, b"from the attacker"),
        Vec::<String>::new(),
        "reached the victim"
    );
    assert!(
        !crossed(&to_victim, b"the victim's own").is_empty(),
        "the victim's own filter works, so the check could see a crossing"
    );
}

/// Polls `events` until a packet matching `until` arrives (5 s at most),
/// keeping every PUBLISH in `seen`.
async fn drive(
    events: &mut rumqttc::EventLoop,
    seen: &mut Vec<(String, Vec<u8>)>,
    until: impl Fn(&rumqttc::Packet) -> bool,
) {
    drive_for(events, seen, until, Duration::from_secs(5)).await;
}

/// [`drive`] for at most `limit`.
async fn drive_for(
    events: &mut rumqttc::EventLoop,
    seen: &mut Vec<(String, Vec<u8>)>,
    until: impl Fn(&rumqttc::Packet) -> bool,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(event) = tokio::time::timeout_at(deadline, events.poll()).await {
        match event.expect("the connection stays up") {
            rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => seen.push((p.topic.clone(), p.payload.to_vec())),
            rumqttc::Event::Incoming(packet) if until(&packet) => return,
            _ => {}
        }
    }
}
