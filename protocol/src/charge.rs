//! What a miner charges for a run, so that hub, miner and buyer agree on it.
//!
//! An [`Assignment`](crate::Assignment)'s `maxCharge` is the price of the
//! whole `maxDurationSecs`. A run is charged pro rata for the wall time it
//! took, in whole seconds rounded up (at least one), never more than
//! `maxCharge`. A run stopped at the time limit used all of it and pays all
//! of it. Because the miner's floor is linear in time and admission required
//! `maxCharge` to cover the floor for the whole duration, the pro-rata charge
//! covers the floor for the time actually used.

use std::time::Duration;

use alloy::primitives::U256;

/// The charge for a run of `wall_time` under an assignment paying
/// `max_charge` for `max_duration_secs`.
pub fn prorated(
    max_charge: U256,
    max_duration_secs: u64,
    wall_time: Duration,
    timed_out: bool,
) -> U256 {
    if timed_out || max_duration_secs == 0 {
        return max_charge;
    }
    let used_secs = wall_time.as_millis().div_ceil(1_000).max(1);
    let used_secs = u64::try_from(used_secs).unwrap_or(u64::MAX);
    if used_secs >= max_duration_secs {
        return max_charge;
    }
    // ceil(max_charge * used / max) without overflow: split max_charge into
    // quotient and remainder by max. used < max, so q * used < max_charge
    // and r * used < max² fits easily.
    let max = U256::from(max_duration_secs);
    let used = U256::from(used_secs);
    let (q, r) = max_charge.div_rem(max);
    q * used + (r * used).div_ceil(max)
}

/// Basis points in one whole (the escrow's `BPS`).
pub const BPS: u64 = 10_000;

/// The most one replica may charge so that `replicas` such charges plus the
/// hub's commission (`feeBps` of the miners' total, as the escrow computes
/// it) never exceed `max_payment`: `max_payment × BPS / (BPS + fee) / k`.
pub fn max_charge_per_replica(max_payment: U256, fee_bps: u16, replicas: u16) -> U256 {
    let k = U256::from(replicas.max(1));
    let bps = U256::from(BPS);
    // Split to avoid overflow: maxPayment is at most 2^96 on chain, but be safe for any U256.
    let (q, r) = max_payment.div_rem(bps + U256::from(fee_bps));
    (q * bps + r * bps / (bps + U256::from(fee_bps))) / k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_whole_seconds_pro_rata_rounded_up() {
        let max = U256::from(1_000u64);
        assert_eq!(
            prorated(max, 100, Duration::from_millis(1), false),
            U256::from(10u64)
        );
        assert_eq!(
            prorated(max, 100, Duration::from_millis(1_001), false),
            U256::from(20u64)
        );
        assert_eq!(
            prorated(max, 3, Duration::from_secs(1), false),
            U256::from(334u64)
        );
        assert_eq!(prorated(max, 100, Duration::from_secs(100), false), max);
        assert_eq!(prorated(max, 100, Duration::from_secs(500), false), max);
    }

    #[test]
    fn replicas_and_commission_fit_in_the_payment() {
        for (payment, fee, k) in [
            (1_000_000u64, 500u16, 1u16),
            (999_999, 1_000, 3),
            (7, 0, 2),
            (10_000, 10_000, 16),
        ] {
            let each = max_charge_per_replica(U256::from(payment), fee, k);
            let total = each * U256::from(k);
            let commission = total * U256::from(fee) / U256::from(BPS);
            assert!(
                total + commission <= U256::from(payment),
                "{payment} {fee} {k}"
            );
            // And not wastefully low: one more unit each would not fit (or nearly).
            let more = (each + U256::from(1u8)) * U256::from(k);
            assert!(
                more + more * U256::from(fee) / U256::from(BPS) + U256::from(k)
                    > U256::from(payment)
            );
        }
        assert_eq!(
            max_charge_per_replica(U256::from(1_050u64), 500, 1),
            U256::from(1_000u64)
        );
    }

    #[test]
    fn a_timed_out_run_pays_in_full() {
        let max = U256::from(7u64);
        assert_eq!(prorated(max, 100, Duration::from_secs(1), true), max);
    }

    #[test]
    fn never_exceeds_max_charge_even_near_overflow() {
        let nine_tenths = prorated(U256::MAX, 10, Duration::from_secs(9), false);
        assert!(
            nine_tenths < U256::MAX && nine_tenths > U256::MAX / U256::from(10u8) * U256::from(8u8)
        );
        assert_eq!(
            prorated(U256::MAX, 10, Duration::from_secs(10), false),
            U256::MAX
        );
        assert_eq!(
            prorated(U256::ZERO, 10, Duration::from_secs(9), false),
            U256::ZERO
        );
    }
}
