//! The hub's configuration file: defaults, environment overrides, and a
//! clear refusal of every malformed setting.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use fog_hub::config::{ConfigError, HubConfig};

const BASE: &str = r#"
database_url = "sqlite:///tmp/hub.db"
blob_dir = "/tmp/blobs"
deployment = "deployment.json"
rpc_url = "http://127.0.0.1:8545"
hub = "0x1111111111111111111111111111111111111111"
keystore = "signer.json"
"#;

fn load(extra: &str) -> Result<HubConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, format!("{BASE}{extra}")).unwrap();
    HubConfig::load(&path)
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let cfg = load("").unwrap();
    assert_eq!(cfg.listen, "127.0.0.1:8040");
    assert_eq!(cfg.log_format, "human");
    assert_eq!(
        (cfg.miners.heartbeat_interval_ms, cfg.miners.timeout_ms),
        (5_000, 20_000)
    );
    assert_eq!(cfg.limits.max_json_bytes, 1 << 20);
}

#[test]
fn each_bad_setting_is_refused_with_its_name() {
    let cases = [
        ("listen = \"localhost\"\n", "listen: must be IP:PORT"),
        (
            "log_format = \"xml\"\n",
            "log_format: must be human or json",
        ),
        ("token_ttl_secs = 0\n", "token_ttl_secs: must be above 0"),
        (
            "[miners]\nheartbeat_interval_ms = 5000\ntimeout_ms = 5000\n",
            "miners.timeout_ms: must be greater",
        ),
        (
            "[limits]\nmax_json_bytes = 10\n",
            "limits: max_json_bytes must be at least 1024",
        ),
        ("colour = \"blue\"\n", "unknown field `colour`"),
        (
            "[miners]\nheartbeat_interval_ms = -5\n",
            "heartbeat_interval_ms",
        ),
    ];
    for (extra, expected) in cases {
        let err = load(extra).unwrap_err().to_string();
        assert!(err.contains(expected), "{extra:?}: {err}");
    }
    let postgres = BASE.replace("sqlite:///tmp/hub.db", "postgres://db/fog");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, postgres).unwrap();
    let err = HubConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("database_url: must be sqlite://PATH"), "{err}");
    let err = HubConfig::load(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn the_example_configuration_in_deploy_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hub.toml");
    let cfg = HubConfig::load(&path).unwrap();
    assert_eq!(cfg.listen, "0.0.0.0:8040");
    assert_eq!(cfg.miners.max_reassignments, 3);
}
