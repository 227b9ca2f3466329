//! The miner's price floor, stated outright or derived from what its
//! electricity costs, so it never runs a job that costs more in energy than
//! it earns.

use fog_protocol::U256;
use fog_protocol::wire::PriceRate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Why a price setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{field} must not be negative (got {value})")]
    Negative { field: &'static str, value: Decimal },
    #[error("token_price must be greater than zero (got {0})")]
    ZeroTokenPrice(Decimal),
    #[error("the machine must offer at least one core")]
    NoCores,
    #[error("{field} = {value} tokens is too large to express in base units")]
    TooLarge { field: &'static str, value: Decimal },
}

/// Token amounts in whole tokens (18 decimals) → base units, rounded up so
/// the floor never drops below what was asked.
pub fn tokens_to_base_units(field: &'static str, tokens: Decimal) -> Result<U256, PriceError> {
    if tokens.is_sign_negative() && !tokens.is_zero() {
        return Err(PriceError::Negative {
            field,
            value: tokens,
        });
    }
    // Split to keep within Decimal's 96-bit mantissa: whole tokens and the fraction separately.
    let whole = tokens.trunc();
    let fraction = tokens - whole;
    let whole_units = whole.to_u128().ok_or(PriceError::TooLarge {
        field,
        value: tokens,
    })?;
    let fraction_units = (fraction * Decimal::from(1_000_000_000_000_000_000u64))
        .ceil()
        .to_u128()
        .ok_or(PriceError::TooLarge {
            field,
            value: tokens,
        })?;
    Ok(
        U256::from(whole_units) * U256::from(10u64).pow(U256::from(18u64))
            + U256::from(fraction_units),
    )
}

/// The electricity-based floor: the machine's whole power draw is charged per
/// core-hour (a job on every core pays the full draw), plus `margin`.
///
/// `watts` × `price_per_kwh` ÷ 1000 is the machine's cost per hour in money;
/// ÷ `token_price` (money per token) it is tokens per hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectricityCost {
    pub watts: Decimal,
    pub price_per_kwh: Decimal,
    pub token_price: Decimal,
    /// Fraction on top of the cost, e.g. 0.2 for 20 %.
    pub margin: Decimal,
}

impl ElectricityCost {
    /// The floor for a machine with `cores` cores; memory is priced at `per_gib_hour` tokens.
    pub fn floor(&self, cores: u64, per_gib_hour: Decimal) -> Result<PriceRate, PriceError> {
        for (field, value) in [
            ("watts", self.watts),
            ("price_per_kwh", self.price_per_kwh),
            ("margin", self.margin),
            ("per_gib_hour", per_gib_hour),
        ] {
            if value.is_sign_negative() && !value.is_zero() {
                return Err(PriceError::Negative { field, value });
            }
        }
        if self.token_price <= Decimal::ZERO {
            return Err(PriceError::ZeroTokenPrice(self.token_price));
        }
        if cores == 0 {
            return Err(PriceError::NoCores);
        }
        let tokens_per_hour = self.watts / Decimal::from(1000) * self.price_per_kwh
            / self.token_price
            * (Decimal::ONE + self.margin);
        let per_core = tokens_per_hour / Decimal::from(cores);
        Ok(PriceRate {
            per_core_hour: tokens_to_base_units("per_core_hour", per_core)?,
            per_gib_hour: tokens_to_base_units("per_gib_hour", per_gib_hour)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn electricity_floor_covers_the_power_bill() {
        // 200 W at 0.30 per kWh = 0.06 per hour; tokens at 0.05 → 1.2 tokens/h; +25 % → 1.5;
        // over 4 cores → 0.375 tokens per core-hour.
        let cost = ElectricityCost {
            watts: d("200"),
            price_per_kwh: d("0.30"),
            token_price: d("0.05"),
            margin: d("0.25"),
        };
        let rate = cost.floor(4, d("0.01")).unwrap();
        assert_eq!(rate.per_core_hour, U256::from(375_000_000_000_000_000u64));
        assert_eq!(rate.per_gib_hour, U256::from(10_000_000_000_000_000u64));
        // A job on all 4 cores for an hour earns at least the power it burns, with margin.
        let all = fog_protocol::Resources {
            cpuMillicores: 4_000,
            memoryBytes: 0,
            diskBytes: 1,
            gpuCount: 0,
        };
        assert_eq!(
            rate.cost(&all, 3_600),
            U256::from(1_500_000_000_000_000_000u64)
        );
    }

    #[test]
    fn conversions_round_up_and_refuse_nonsense() {
        assert_eq!(
            tokens_to_base_units("x", d("0.0000000000000000001")).unwrap(),
            U256::from(1u8)
        );
        assert_eq!(
            tokens_to_base_units("x", d("12.5")).unwrap(),
            U256::from(12_500_000_000_000_000_000u128)
        );
        assert!(
            tokens_to_base_units("x", d("-1"))
                .unwrap_err()
                .to_string()
                .contains("must not be negative")
        );
        let base = ElectricityCost {
            watts: d("100"),
            price_per_kwh: d("0.2"),
            token_price: d("1"),
            margin: d("0"),
        };
        assert_eq!(base.floor(0, d("0")).unwrap_err(), PriceError::NoCores);
        let free_tokens = ElectricityCost {
            token_price: d("0"),
            ..base.clone()
        };
        assert!(
            free_tokens
                .floor(1, d("0"))
                .unwrap_err()
                .to_string()
                .contains("token_price")
        );
        let negative = ElectricityCost {
            margin: d("-0.5"),
            ..base
        };
        assert!(
            negative
                .floor(1, d("0"))
                .unwrap_err()
                .to_string()
                .contains("margin")
        );
    }
}
