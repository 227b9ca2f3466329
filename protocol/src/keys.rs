//! Identities: a secp256k1 key in an encrypted Ethereum keystore file, for
//! miners, hub signers and buyers alike. The private key never leaves this
//! module in any message.

use std::path::{Path, PathBuf};

use crate::Address;
use alloy::signers::local::PrivateKeySigner;

/// Why a key could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(PathBuf),
    #[error("keystore path {0} has no file name")]
    NoFileName(PathBuf),
    #[error("creating directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("keystore {path}: {reason}")]
    Keystore { path: PathBuf, reason: String },
    #[error("the password is empty")]
    EmptyPassword,
    #[error("reading the password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no password: pass --password-file or set {0}")]
    NoPassword(&'static str),
}

/// A keystore password from `file` (its first line ending trimmed) or else
/// from the environment variable `var`: never from the command line.
pub fn read_password(file: Option<&Path>, var: &'static str) -> Result<String, KeyError> {
    match file {
        Some(path) => Ok(std::fs::read_to_string(path)
            .map_err(|source| KeyError::PasswordFile {
                path: path.to_owned(),
                source,
            })?
            .trim_end_matches(['\n', '\r'])
            .to_owned()),
        None => std::env::var(var).map_err(|_| KeyError::NoPassword(var)),
    }
}

/// The directory (created) and file name of a keystore about to be written.
fn new_keystore_location(path: &Path) -> Result<(PathBuf, &str), KeyError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| KeyError::NoFileName(path.to_owned()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|source| KeyError::Dir {
        path: dir.clone(),
        source,
    })?;
    Ok((dir, name))
}

/// Creates a new random key encrypted with `password` at `path`; returns its address.
pub fn create(path: &Path, password: &str) -> Result<Address, KeyError> {
    if password.is_empty() {
        return Err(KeyError::EmptyPassword);
    }
    if path.exists() {
        return Err(KeyError::Exists(path.to_owned()));
    }
    let (dir, name) = new_keystore_location(path)?;
    let (signer, _uuid) =
        PrivateKeySigner::new_keystore(&dir, &mut rand::thread_rng(), password, Some(name))
            // The keystore error names files and ciphers, never the secret.
            .map_err(|e| KeyError::Keystore {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
    Ok(signer.address())
}

/// Stores an existing private key (hex) encrypted with `password` at `path`;
/// returns its address.
pub fn import(path: &Path, private_key_hex: &str, password: &str) -> Result<Address, KeyError> {
    if password.is_empty() {
        return Err(KeyError::EmptyPassword);
    }
    if path.exists() {
        return Err(KeyError::Exists(path.to_owned()));
    }
    let bad = |reason: &str| KeyError::Keystore {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let hex = private_key_hex.trim().trim_start_matches("0x");
    let bytes = alloy::hex::decode(hex).map_err(|_| bad("the private key is not hex"))?;
    if bytes.len() != 32 {
        return Err(bad("the private key must be 32 bytes"));
    }
    let (dir, name) = new_keystore_location(path)?;
    let (signer, _uuid) = PrivateKeySigner::encrypt_keystore(
        &dir,
        &mut rand::thread_rng(),
        &bytes,
        password,
        Some(name),
    )
    // Never echo the key: the error names the file only.
    .map_err(|_| bad("not a valid secp256k1 private key"))?;
    Ok(signer.address())
}

/// Opens the key at `path` with `password`.
pub fn open(path: &Path, password: &str) -> Result<PrivateKeySigner, KeyError> {
    PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| KeyError::Keystore {
        path: path.to_owned(),
        reason: match e.to_string() {
            s if s.contains("Mac Mismatch") || s.contains("mac") => "wrong password".to_owned(),
            s => s,
        },
    })
}

/// The address stored in a keystore file, read without the password.
pub fn address(path: &Path) -> Result<Address, KeyError> {
    let bad = |reason: String| KeyError::Keystore {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let hex = json
        .get("address")
        .and_then(|a| a.as_str())
        .ok_or_else(|| bad("no address field".into()))?;
    let with_prefix = if hex.starts_with("0x") {
        hex.to_owned()
    } else {
        format!("0x{hex}")
    };
    with_prefix
        .parse()
        .map_err(|e| bad(format!("address: {e}")))
}
