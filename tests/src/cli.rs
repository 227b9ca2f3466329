//! `fog` as a buyer runs it, for cross-process tests: the real binary with a
//! keystore, the fleet's deployment, chain and (optionally) hub.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::process::{Command, Output};

use crate::fleet::Fleet;

pub const PASSWORD: &str = "buyer password";

#[derive(Debug)]
pub struct Buyer {
    pub args: Vec<String>,
    /// The buyer's job journal (FOG_JOBS_DIR), one per keystore.
    pub jobs_dir: String,
}

impl Buyer {
    /// `fog` with `keystore`, the fleet's deployment and chain, and with `hub` its hub too.
    pub fn on_chain(fleet: &Fleet, keystore: String, hub: bool) -> Self {
        let mut args = vec!["--keystore".into(), keystore.clone()];
        if hub {
            args.extend(["--hub".into(), fleet.hub_url.clone()]);
        }
        args.extend([
            "--deployment".into(),
            fleet.deployment.to_str().unwrap().into(),
            "--chain-rpc".into(),
            fleet.devnet.anvil.endpoint(),
        ]);
        let jobs_dir = format!("{keystore}.jobs");
        Self { args, jobs_dir }
    }

    /// `fog <command> <action> <identity flags> <rest>`: before any `--`.
    pub fn fog(&self, words: &[&str]) -> Output {
        let (head, rest) = words.split_at(2.min(words.len()));
        // In the test's own directory: whatever fog writes beside itself
        // (fog-out/, fog-evidence/) stays out of the repository.
        let here = std::path::Path::new(&self.jobs_dir)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        Command::new(crate::binary("fog").unwrap())
            .current_dir(here)
            .args(head)
            .args(&self.args)
            .args(rest)
            .env("FOG_KEY_PASSWORD", PASSWORD)
            .env("FOG_JOBS_DIR", &self.jobs_dir)
            .env_remove("FOG_HUB_URL")
            .output()
            .unwrap()
    }
}

/// Imports `key` into a new keystore at `keystore` with `fog key import`.
pub fn import_key(keystore: &str, key: &fog_protocol::PrivateKeySigner) -> Output {
    Command::new(crate::binary("fog").unwrap())
        .args(["key", "import", "--keystore", keystore])
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .env("FOG_IMPORT_KEY", alloy::hex::encode(key.to_bytes()))
        .output()
        .unwrap()
}

/// The string field `key` of a command's JSON output.
pub fn json_field(out: &Output, key: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
    value[key].as_str().unwrap().to_owned()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
