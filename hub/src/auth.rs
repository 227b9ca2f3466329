//! Who is calling: buyers log in by signing a one-time challenge and get a
//! short-lived bearer token; miners get a session token when their
//! WebSocket login succeeds, valid while the session lasts.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fog_protocol::{Address, B256, Signature};

/// How many challenges and tokens may be outstanding, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct AuthLimits {
    /// Lifetime of a buyer's token.
    pub token_ttl: Duration,
    /// How long a challenge waits for its signature.
    pub challenge_ttl: Duration,
    /// Challenges outstanding at once; the oldest go first.
    pub max_challenges: usize,
    /// Tokens live at once; the oldest buyer tokens go first.
    pub max_tokens: usize,
}

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

/// Both maps are bounded: each has an insertion-ordered queue beside it
/// (all entries of one map live equally long, so insertion order is expiry
/// order), and an insert first drops expired entries from its front, then
/// the oldest while the map is full. A flood of challenges therefore costs a
/// fixed amount of memory, and displaces only challenges older than itself.
#[derive(Debug, Default)]
struct Inner {
    challenges: HashMap<B256, (Address, Instant)>,
    challenge_order: VecDeque<B256>,
    tokens: HashMap<String, (Principal, Option<Instant>)>,
    /// Buyer tokens, oldest first (miner tokens live with their session).
    token_order: VecDeque<String>,
}

/// Challenges and tokens, in memory: a hub restart asks buyers to log in
/// again and miners to reconnect, which they do anyway.
#[derive(Debug)]
pub struct Auth {
    inner: Mutex<Inner>,
    limits: AuthLimits,
}

fn random_hex<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes[..]);
    bytes
}

impl Auth {
    pub fn new(limits: AuthLimits) -> Self {
        Self {
            inner: Mutex::default(),
            limits,
        }
    }

    /// Challenges waiting for their signature now.
    pub fn pending_challenges(&self) -> usize {
        self.lock().challenges.len()
    }

    /// Buyer and miner tokens live now.
    pub fn live_tokens(&self) -> usize {
        self.lock().tokens.len()
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
        let Inner {
            challenges,
            challenge_order,
            ..
        } = &mut *inner;
        while let Some(oldest) = challenge_order.front() {
            let expired = challenges.get(oldest).is_none_or(|(_, e)| *e <= now);
            // Used challenges leave the map but not the queue: the queue is
            // held to twice the map's bound too.
            let full = challenges.len() >= self.limits.max_challenges
                || challenge_order.len() >= 2 * self.limits.max_challenges;
            if !expired && !full {
                break;
            }
            if let Some(oldest) = challenge_order.pop_front() {
                challenges.remove(&oldest);
            }
        }
        challenges.insert(nonce, (address, now + self.limits.challenge_ttl));
        challenge_order.push_back(nonce);
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
        let Inner {
            tokens,
            token_order,
            ..
        } = &mut *inner;
        while let Some(oldest) = token_order.front() {
            let expired = tokens
                .get(oldest)
                .is_none_or(|(_, e)| e.is_some_and(|e| e <= now));
            let full = tokens.len() >= self.limits.max_tokens
                || token_order.len() >= 2 * self.limits.max_tokens;
            if !expired && !full {
                break;
            }
            if let Some(oldest) = token_order.pop_front() {
                tokens.remove(&oldest);
            }
        }
        let ttl = self.limits.token_ttl;
        tokens.insert(token.clone(), (Principal::Buyer(address), Some(now + ttl)));
        token_order.push_back(token.clone());
        Ok((token, ttl))
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
