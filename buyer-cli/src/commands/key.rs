//! `fog key`: the buyer's encrypted keystore.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use anyhow::Context;
use clap::Subcommand;

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum KeyAction {
    /// Create a new key (password from --password-file or FOG_KEY_PASSWORD).
    New,
    /// Encrypt an existing private key, read from FOG_IMPORT_KEY or standard input (never an argument).
    Import,
    /// Print the key's address (no password needed).
    Address,
}

pub(crate) fn key_command(action: KeyAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_protocol::keys;
    let path = keystore(identity)?;
    let address = match action {
        KeyAction::New => keys::create(path, &password(identity.password_file.as_deref())?)?,
        KeyAction::Import => {
            let secret = match std::env::var("FOG_IMPORT_KEY") {
                Ok(k) => k,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the private key from standard input")?;
                    line
                }
            };
            keys::import(path, &secret, &password(identity.password_file.as_deref())?)?
        }
        KeyAction::Address => keys::address(path)?,
    };
    report(identity, serde_json::json!({ "address": address }), || {
        address.to_string()
    });
    Ok(())
}
