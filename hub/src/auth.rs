//! Who is calling: buyers log in by signing a one-time challenge and get a
//! short-lived bearer token; miners get a session token when their
//! WebSocket login succeeds, valid while the session lasts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fog_protocol::{Address, B256, Signature};

/// How long a challenge may wait for its signature.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Past this many entries, expired ones are swept on insert.
const SWEEP_AT: usize = 10_000;

/// Who a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Buyer(Address),
    Miner(Address),
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown or expired challenge nonce: ask for a new challenge")]
    UnknownChallenge,
    #[error("the challenge was issued to {issued}, not {claimed}")]
    WrongAddress { issued: Address, claimed: Address },
    #[error("the signature recovers to {actual}, not {claimed}")]
    WrongSigner { actual: Address, claimed: Address },
    #[error("the signature does not recover to any address: {0}")]
    BadSignature(String),
}

#[derive(Debug, Default)]
struct Inner {
    challenges: HashMap<B256, (Address, Instant)>,
    tokens: HashMap<String, (Principal, Option<Instant>)>,
}

/// Challenges and tokens, in memory: a hub restart asks buyers to log in
/// again and miners to reconnect, which they do anyway.
#[derive(Debug)]
pub struct Auth {
    inner: Mutex<Inner>,
    token_ttl: Duration,
}

fn random_hex<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes[..]);
    bytes
}

impl Auth {
    pub fn new(token_ttl: Duration) -> Self {
        Self {
            inner: Mutex::default(),
            token_ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a single insert or remove: a poisoned map is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh nonce for `address` to sign.
    pub fn challenge(&self, address: Address) -> B256 {
        let nonce = B256::from(random_hex::<32>());
        let mut inner = self.lock();
        let now = Instant::now();
        if inner.challenges.len() >= SWEEP_AT {
            inner.challenges.retain(|_, (_, expires)| *expires > now);
        }
        inner
            .challenges
            .insert(nonce, (address, now + CHALLENGE_TTL));
        nonce
    }

    /// Checks the signed challenge (used once) and issues a buyer token.
    pub fn login(
        &self,
        address: Address,
        nonce: B256,
        message: &str,
        signature: &Signature,
    ) -> Result<(String, Duration), AuthError> {
        let issued = {
            let mut inner = self.lock();
            match inner.challenges.remove(&nonce) {
                Some((issued, expires)) if expires > Instant::now() => issued,
                _ => return Err(AuthError::UnknownChallenge),
            }
        };
        if issued != address {
            return Err(AuthError::WrongAddress {
                issued,
                claimed: address,
            });
        }
        let actual = signature
            .recover_address_from_msg(message)
            .map_err(|e| AuthError::BadSignature(e.to_string()))?;
        if actual != address {
            return Err(AuthError::WrongSigner {
                actual,
                claimed: address,
            });
        }
        let token = alloy::hex::encode(random_hex::<32>());
        let mut inner = self.lock();
        let now = Instant::now();
        if inner.tokens.len() >= SWEEP_AT {
            inner
                .tokens
                .retain(|_, (_, expires)| expires.is_none_or(|e| e > now));
        }
        inner.tokens.insert(
            token.clone(),
            (Principal::Buyer(address), Some(now + self.token_ttl)),
        );
        Ok((token, self.token_ttl))
    }

    /// A token for a miner's session; revoke it when the session ends.
    pub fn miner_session(&self, miner: Address) -> String {
        let token = alloy::hex::encode(random_hex::<32>());
        self.lock()
            .tokens
            .insert(token.clone(), (Principal::Miner(miner), None));
        token
    }

    pub fn revoke(&self, token: &str) {
        self.lock().tokens.remove(token);
    }

    /// Who holds `token`, if it is valid.
    pub fn principal(&self, token: &str) -> Option<Principal> {
        let inner = self.lock();
        let (principal, expires) = inner.tokens.get(token)?;
        expires
            .is_none_or(|e| e > Instant::now())
            .then_some(*principal)
    }
}
