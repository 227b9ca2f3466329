//! Request rate limits per source address and per key (governor's GCRA
//! limiters), and the 429 answer with `Retry-After` that a limited caller gets.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use fog_protocol::Address;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;

/// The hub's limiters.
#[derive(Debug)]
pub struct RateLimits {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_key: DefaultKeyedRateLimiter<Address>,
    challenges: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    // The configuration check refuses zeros; 1 stands in should one get here.
    let one = NonZeroU32::MIN;
    Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

impl RateLimits {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self {
            per_address: RateLimiter::keyed(quota(
                limits.per_address_per_sec,
                limits.per_address_burst,
            )),
            per_key: RateLimiter::keyed(quota(limits.per_key_per_sec, limits.per_key_burst)),
            challenges: RateLimiter::keyed(quota(
                limits.challenges_per_address_per_sec,
                limits.challenges_per_address_burst,
            )),
            clock: DefaultClock::default(),
        }
    }

    fn wait(
        &self,
        outcome: Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
    ) -> Result<(), Duration> {
        outcome.map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// One request from `address`; `Err` says how long to wait.
    pub fn address(&self, address: IpAddr) -> Result<(), Duration> {
        self.wait(self.per_address.check_key(&address))
    }

    /// One request with `key`'s token.
    pub fn key(&self, key: Address) -> Result<(), Duration> {
        self.wait(self.per_key.check_key(&key))
    }

    /// One login challenge asked from `address`.
    pub fn challenge(&self, address: IpAddr) -> Result<(), Duration> {
        self.wait(self.challenges.check_key(&address))
    }

    /// Forgets callers whose limit has fully recovered: the limiters' memory
    /// stays bounded by the callers of the last moments.
    pub fn sweep(&self) {
        for limiter in [&self.per_address, &self.challenges] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.per_key.retain_recent();
        self.per_key.shrink_to_fit();
    }
}
