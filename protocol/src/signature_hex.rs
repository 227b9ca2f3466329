//! Serde form of a secp256k1 signature: `0x` + 65 bytes of hex (`r ‖ s ‖ v`),
//! the form Solidity's `ECDSA.recover` takes.

use alloy::primitives::Signature;
use serde::{Deserialize, Deserializer, Serializer, de::Error};

pub fn serialize<S: Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{}", hex::encode(sig.as_bytes())))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
    let text = String::deserialize(d)?;
    let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(&text))
        .map_err(|e| D::Error::custom(format!("signature is not hex: {e}")))?;
    if bytes.len() != 65 {
        return Err(D::Error::custom(format!(
            "signature must be 65 bytes (r, s, v), got {}",
            bytes.len()
        )));
    }
    Signature::try_from(bytes.as_slice())
        .map_err(|e| D::Error::custom(format!("invalid signature: {e}")))
}
