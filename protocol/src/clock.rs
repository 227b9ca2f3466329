//! The one clock: wall time in Unix seconds, behind a trait so that
//! time-dependent logic can be driven by a test clock.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Wall-clock time in whole Unix seconds.
pub trait Clock: Debug + Send + Sync {
    fn unix_now(&self) -> u64;
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_now(&self) -> u64 {
        unix_now()
    }
}

/// A clock that stands still until it is set: for tests of time rules.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(unix: u64) -> Self {
        Self(AtomicU64::new(unix))
    }

    pub fn set(&self, unix: u64) {
        self.0.store(unix, Ordering::SeqCst);
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The chain's time: the machine's clock corrected by the offset seen between
/// it and the chain's latest block when that block was first seen. Deadlines
/// are the escrow's, so they are judged by the chain's clock, also when the
/// machine's is wrong or the chain's has been moved (a devnet's
/// `evm_increaseTime`). Between blocks it runs at the machine's pace (a chain
/// that mines only on demand does not stop it). Until the first observation
/// it is the machine's clock.
#[derive(Debug)]
pub struct ChainClock {
    offset: AtomicI64,
    /// The block timestamp the offset was taken from.
    last_block: AtomicU64,
    base: SharedClock,
}

impl ChainClock {
    pub fn new() -> Self {
        Self::over(system())
    }

    /// A chain clock over another clock than the machine's (for tests).
    pub fn over(base: SharedClock) -> Self {
        Self {
            offset: AtomicI64::new(0),
            last_block: AtomicU64::new(0),
            base,
        }
    }

    /// Records the chain's latest block timestamp, read now; the same block
    /// seen again changes nothing.
    pub fn observe(&self, chain_unix: u64) {
        if self.last_block.swap(chain_unix, Ordering::SeqCst) == chain_unix {
            return;
        }
        let local = i128::from(self.base.unix_now());
        let offset = i128::from(chain_unix) - local;
        let offset = i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        self.offset.store(offset, Ordering::SeqCst);
    }

    /// Seconds the chain is ahead of the machine (negative: behind).
    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }
}

impl Default for ChainClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ChainClock {
    fn unix_now(&self) -> u64 {
        let now = i128::from(self.base.unix_now()) + i128::from(self.offset());
        u64::try_from(now.max(0)).unwrap_or(u64::MAX)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock as a shared handle.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The machine's wall time in Unix seconds (0 before 1970, which no machine
/// running Fog reports).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_clock_runs_at_the_machines_pace_from_the_last_block_seen() {
        let machine = Arc::new(ManualClock::new(1_000));
        let chain = ChainClock::over(machine.clone());
        assert_eq!(
            chain.unix_now(),
            1_000,
            "the machine's time until a block is seen"
        );
        chain.observe(5_000);
        assert_eq!(chain.unix_now(), 5_000);
        machine.advance(7);
        assert_eq!(chain.unix_now(), 5_007);
        chain.observe(5_000);
        assert_eq!(chain.unix_now(), 5_007, "no new block: the clock runs on");
        chain.observe(900);
        assert_eq!(chain.offset(), -107);
        assert_eq!(chain.unix_now(), 900);
        machine.set(0);
        assert_eq!(chain.unix_now(), 0, "never below zero");
    }
}
