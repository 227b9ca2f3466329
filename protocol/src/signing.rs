//! EIP-712 domain, hashing and secp256k1 signatures over the protocol structs.

use alloy::primitives::{Address, B256, Signature};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use serde::{Deserialize, Serialize};

use crate::types::{Assignment, JobSpec, Receipt};

/// EIP-712 domain name shared by the Rust side and the JobEscrow contract.
pub const DOMAIN_NAME: &str = "Fog";
/// EIP-712 domain version; bumped when a struct's layout changes.
pub const DOMAIN_VERSION: &str = "1";

/// The EIP-712 domain of one deployment: bound to the chain and to the
/// JobEscrow proxy, so a signature is worthless on any other chain or escrow.
pub fn fog_domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("signing failed: {0}")]
    Sign(#[from] alloy::signers::Error),
    #[error("signature does not recover to any address: {0}")]
    Unrecoverable(#[from] alloy::primitives::SignatureError),
    #[error(
        "signature has a high s value; only the canonical low-s form is accepted (as on chain)"
    )]
    Malleable,
    #[error("signed by {actual}, but {expected} must sign it")]
    WrongSigner { expected: Address, actual: Address },
}

/// The protocol structs that are signed under the Fog domain.
pub trait FogStruct: SolStruct {
    /// `hashStruct(self)`: the part of the EIP-712 digest that depends only
    /// on the struct. For a [`JobSpec`] this is the `specHash`.
    fn struct_hash(&self) -> B256 {
        self.eip712_hash_struct()
    }

    /// The digest that is signed: `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct)`.
    fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }
}

impl FogStruct for JobSpec {}
impl FogStruct for Assignment {}
impl FogStruct for Receipt {}

impl JobSpec {
    /// The spec's identity on chain and in every assignment and receipt.
    pub fn spec_hash(&self) -> B256 {
        self.struct_hash()
    }
}

/// A payload with the EIP-712 signature of its author.
///
/// The signature travels as 65 bytes of hex (`r ‖ s ‖ v`), the form that
/// Solidity's `ECDSA.recover` takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<T> {
    pub payload: T,
    #[serde(with = "crate::signature_hex")]
    pub signature: Signature,
}

/// A buyer-signed job spec; the signer is the buyer.
pub type SignedJobSpec = Signed<JobSpec>;
/// A hub-signed assignment.
pub type SignedAssignment = Signed<Assignment>;
/// A miner-signed receipt.
pub type SignedReceipt = Signed<Receipt>;

impl<T: FogStruct> Signed<T> {
    /// Signs `payload` under `domain` with `key`.
    pub fn sign(
        payload: T,
        key: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Result<Self, SignatureError> {
        let signature = key.sign_hash_sync(&payload.signing_hash(domain))?;
        Ok(Self { payload, signature })
    }

    /// The address that signed the payload under `domain`.
    pub fn signer(&self, domain: &Eip712Domain) -> Result<Address, SignatureError> {
        // OpenZeppelin's ECDSA rejects high-s signatures; accepting them here
        // would let a malleated copy pass off-chain and fail on chain.
        if self.signature.normalize_s().is_some() {
            return Err(SignatureError::Malleable);
        }
        Ok(self
            .signature
            .recover_address_from_prehash(&self.payload.signing_hash(domain))?)
    }

    /// Checks that `expected` signed the payload under `domain`.
    pub fn verify_signed_by(
        &self,
        domain: &Eip712Domain,
        expected: Address,
    ) -> Result<(), SignatureError> {
        let actual = self.signer(domain)?;
        if actual == expected {
            Ok(())
        } else {
            Err(SignatureError::WrongSigner { expected, actual })
        }
    }
}

impl Signed<Receipt> {
    /// Checks that the receipt is signed by the miner it names.
    pub fn verify(&self, domain: &Eip712Domain) -> Result<(), SignatureError> {
        self.verify_signed_by(domain, self.payload.miner)
    }
}
