//! Exact decimals for money, quantities and rates. Every decimal field travels as a JSON
//! *string* (`"1500.50"`), never as a binary floating-point number, and is computed on here as
//! an integer count of its smallest unit, so nothing is ever lost to rounding that was not asked
//! for.
//!
//! Rules (the same that 1C applies to a document's tabular section):
//! - A money amount has its currency's minor units (ISO 4217: RUB, USD, EUR 2; JPY 0; KWD 3)
//!   and is written with exactly that many decimals: `"1500.50"`, `"1500"` for JPY.
//! - An invoice line's amount is quantity × price rounded to the minor unit; its VAT is computed
//!   *per line* from that amount and rounded to the minor unit; the invoice's totals are the
//!   sums of the lines' rounded figures. Rounding is half away from zero.
//! - Bounds, as in 1C: quantities below 10^12 with at most 3 decimals; prices and other money
//!   below 10^13. A line then stays below 10^25 and an invoice of 1000 lines below 10^28, far
//!   inside the 128-bit arithmetic used here, so totals cannot overflow.

use std::cmp::Ordering;
use std::fmt;

/// A decimal number: `units / 10^scale`, with the scale it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec {
    units: i128,
    scale: u32,
}

/// Digits a parsed decimal may have in all; keeps products of two of them inside `i128`.
const MAX_DIGITS: usize = 30;

impl Dec {
    pub const ZERO: Dec = Dec { units: 0, scale: 0 };

    pub fn from_int(i: i64) -> Dec {
        Dec {
            units: i128::from(i),
            scale: 0,
        }
    }

    /// Parses `-?[0-9]+(\.[0-9]+)?` exactly; anything else (exponents, `+`, spaces, commas) is
    /// refused.
    pub fn parse(text: &str) -> Option<Dec> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || (body.contains('.') && frac.is_empty())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let significant = int.trim_start_matches('0').len() + frac.len();
        if significant > MAX_DIGITS {
            return None;
        }
        let mut units: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        Some(Dec {
            units: if negative { -units } else { units },
            scale: u32::try_from(frac.len()).ok()?,
        })
    }

    /// Parses a number as JSON writes it, exponent included (`1.5e-7`): for reading values
    /// that an earlier Kontor stored as JSON numbers. `None` past 30 digits.
    pub fn parse_json_number(text: &str) -> Option<Dec> {
        let (mantissa, exp) = match text.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.trim_start_matches('+').parse::<i32>().ok()?),
            None => (text, 0),
        };
        let m = Dec::parse(mantissa)?;
        let scale = i64::from(m.scale) - i64::from(exp);
        if scale >= 0 {
            Some(Dec {
                units: m.units,
                scale: u32::try_from(scale).ok().filter(|s| *s <= 30)?,
            })
        } else {
            let shift = u32::try_from(-scale).ok().filter(|s| *s <= 30)?;
            Some(Dec {
                units: m.units.checked_mul(pow10(shift))?,
                scale: 0,
            })
        }
        .map(Dec::normalized)
    }

    /// Decimals as written (`"1.50"` has 2).
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// Digits before the decimal point, without leading zeros (0 for `0.5`).
    pub fn integer_digits(self) -> u32 {
        let int = (self.units / pow10(self.scale)).unsigned_abs();
        if int == 0 {
            0
        } else {
            int.ilog10() + 1
        }
    }

    pub fn is_negative(self) -> bool {
        self.units < 0
    }

    pub fn is_zero(self) -> bool {
        self.units == 0
    }

    /// The same value with trailing zeros dropped (`1.500` → `1.5`, `2.0` → `2`).
    pub fn normalized(self) -> Dec {
        let mut d = self;
        while d.scale > 0 && d.units % 10 == 0 {
            d.units /= 10;
            d.scale -= 1;
        }
        d
    }

    /// The same value written with `scale` decimals, if that loses nothing.
    pub fn with_scale(self, scale: u32) -> Option<Dec> {
        let n = self.normalized();
        if scale < n.scale {
            return None;
        }
        Some(Dec {
            units: n.units.checked_mul(pow10(scale - n.scale))?,
            scale,
        })
    }

    /// Rounded to `scale` decimals, half away from zero.
    pub fn round_to(self, scale: u32) -> Dec {
        match scale.cmp(&self.scale) {
            Ordering::Equal => self,
            Ordering::Greater => Dec {
                units: self.units * pow10(scale - self.scale),
                scale,
            },
            Ordering::Less => Dec {
                units: div_round(self.units, pow10(self.scale - scale)),
                scale,
            },
        }
    }

    /// The exact product (its scale is the sum of both scales); `None` on overflow.
    pub fn checked_mul(self, other: Dec) -> Option<Dec> {
        Some(Dec {
            units: self.units.checked_mul(other.units)?,
            scale: self.scale + other.scale,
        })
    }

    /// The exact sum at the larger scale; `None` on overflow.
    pub fn checked_add(self, other: Dec) -> Option<Dec> {
        let scale = self.scale.max(other.scale);
        let a = self.units.checked_mul(pow10(scale - self.scale))?;
        let b = other.units.checked_mul(pow10(scale - other.scale))?;
        Some(Dec {
            units: a.checked_add(b)?,
            scale,
        })
    }

    /// The exact difference at the larger scale; `None` on overflow.
    pub fn checked_sub(self, other: Dec) -> Option<Dec> {
        self.checked_add(Dec {
            units: other.units.checked_neg()?,
            scale: other.scale,
        })
    }

    /// Compares values, whatever their scales.
    pub fn cmp_value(self, other: Dec) -> Ordering {
        let scale = self.scale.max(other.scale);
        let widen = |d: Dec| d.units.saturating_mul(pow10(scale - d.scale));
        widen(self).cmp(&widen(other))
    }

    /// `self < 10^digits` in magnitude.
    pub fn below_power_of_ten(self, digits: u32) -> bool {
        self.integer_digits() <= digits
    }
}

impl fmt::Display for Dec {
    /// Written with exactly its scale's decimals: `Dec::parse("1.50")` shows as `1.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let p = pow10(self.scale).unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / p,
            abs % p,
            width = self.scale as usize
        )
    }
}

fn pow10(n: u32) -> i128 {
    10i128.pow(n)
}

/// `n / d` rounded half away from zero (`d > 0`).
fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        q + n.signum()
    } else {
        q
    }
}

/// The currency of money whose record names none.
pub const DEFAULT_CURRENCY: &str = "RUB";

/// The currency a record's money is in: its `currency` field, or the default.
pub fn currency_of(data: &serde_json::Map<String, serde_json::Value>) -> &str {
    data.get("currency")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(DEFAULT_CURRENCY)
}

/// Minor units of a currency per ISO 4217 (2 unless listed).
pub fn minor_units(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// Every number of minor units some currency has, ascending.
pub const MINOR_UNIT_CHOICES: [u32; 4] = [0, 2, 3, 4];

/// The currency codes with `units` minor units other than the default 2 (for documents).
pub fn currencies_with_minor_units(units: u32) -> &'static [&'static str] {
    match units {
        0 => &[
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
            "VND", "VUV", "XAF", "XOF", "XPF",
        ],
        3 => &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"],
        4 => &["CLF", "UYW"],
        _ => &[],
    }
}

/// Integer digits of a money amount a client may give (1C: 15 digits, 2 of them decimals).
pub const MONEY_INTEGER_DIGITS: u32 = 13;
/// Integer digits and decimals of a quantity (1C: 15 digits, 3 of them decimals).
pub const QUANTITY_INTEGER_DIGITS: u32 = 12;
pub const QUANTITY_SCALE: u32 = 3;

/// An invoice line's figures in the invoice's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFigures {
    /// quantity × price, rounded to the minor unit.
    pub amount: Dec,
    pub vat: Dec,
    /// What the line adds to the invoice's total.
    pub total: Dec,
}

/// Computes one line. With `vat_included` the price holds VAT (the line's VAT is taken out of
/// its amount); otherwise VAT is added on top. `None` only if a bound was ignored upstream.
pub fn line_figures(
    quantity: Dec,
    price: Dec,
    vat_rate: Dec,
    vat_included: bool,
    minor: u32,
) -> Option<LineFigures> {
    let amount = quantity.checked_mul(price)?.round_to(minor);
    let (a, r) = (amount.units, vat_rate.units);
    let hundred = 100i128.checked_mul(pow10(vat_rate.scale))?;
    let vat_units = if vat_included {
        div_round(a.checked_mul(r)?, hundred.checked_add(r)?)
    } else {
        div_round(a.checked_mul(r)?, hundred)
    };
    let vat = Dec {
        units: vat_units,
        scale: minor,
    };
    let total = if vat_included {
        amount
    } else {
        amount.checked_add(vat)?
    };
    Some(LineFigures { amount, vat, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn parsing_is_strict_and_exact() {
        assert_eq!(d("1500.50").to_string(), "1500.50");
        assert_eq!(d("-0.05").to_string(), "-0.05");
        assert_eq!(d("007").to_string(), "7");
        for bad in [
            "", "-", "1.", ".5", "1e5", "+1", " 1", "1,5", "1.2.3", "0x10", "١",
        ] {
            assert!(Dec::parse(bad).is_none(), "{bad:?}");
        }
        assert!(Dec::parse(&"9".repeat(31)).is_none());
        assert_eq!(d("0.10").scale(), 2);
        assert_eq!(d("0.10").normalized().to_string(), "0.1");
        assert_eq!(d("12345.6").integer_digits(), 5);
        assert_eq!(d("0.6").integer_digits(), 0);
    }

    #[test]
    fn json_numbers_of_earlier_versions_read_exactly() {
        assert_eq!(
            Dec::parse_json_number("1500.5").unwrap().to_string(),
            "1500.5"
        );
        assert_eq!(
            Dec::parse_json_number("1e-6").unwrap().to_string(),
            "0.000001"
        );
        assert_eq!(
            Dec::parse_json_number("2.5E+3").unwrap().to_string(),
            "2500"
        );
        assert_eq!(Dec::parse_json_number("100").unwrap().to_string(), "100");
        assert!(Dec::parse_json_number("1e400").is_none());
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(d("2.345").round_to(2).to_string(), "2.35");
        assert_eq!(d("2.344").round_to(2).to_string(), "2.34");
        assert_eq!(d("-2.345").round_to(2).to_string(), "-2.35");
        assert_eq!(d("2.5").round_to(0).to_string(), "3");
        assert_eq!(d("7").round_to(2).to_string(), "7.00");
        assert_eq!(d("1.5").with_scale(0), None);
        assert_eq!(d("1.50").with_scale(1).unwrap().to_string(), "1.5");
    }

    #[test]
    fn lines_that_break_f64_stay_exact() {
        // 999,999,999,999.999 × 9,999,999,999,999.99: no binary float holds this exactly.
        let f = line_figures(
            d("999999999999.999"),
            d("9999999999999.99"),
            d("20"),
            false,
            2,
        )
        .unwrap();
        assert_eq!(f.amount.to_string(), "9999999999999980000000000.00");
        assert_eq!(f.vat.to_string(), "1999999999999996000000000.00");
        assert_eq!(f.total.to_string(), "11999999999999976000000000.00");
        // 0.1 + 0.2 style sums stay exact.
        let a = d("0.10").checked_add(d("0.20")).unwrap();
        assert_eq!(a.to_string(), "0.30");
    }

    #[test]
    fn vat_per_line_on_top_and_included() {
        let on_top = line_figures(d("3"), d("100.10"), d("20"), false, 2).unwrap();
        assert_eq!(
            (
                on_top.amount.to_string(),
                on_top.vat.to_string(),
                on_top.total.to_string()
            ),
            ("300.30".into(), "60.06".into(), "360.36".into())
        );
        let included = line_figures(d("3"), d("100.10"), d("20"), true, 2).unwrap();
        assert_eq!(included.vat.to_string(), "50.05");
        assert_eq!(included.total.to_string(), "300.30");
        let yen = line_figures(d("3"), d("333"), d("10"), false, 0).unwrap();
        assert_eq!(yen.vat.to_string(), "100");
    }

    proptest! {
        #[test]
        fn text_round_trips(units in any::<i64>(), scale in 0u32..8) {
            let v = Dec { units: i128::from(units), scale };
            let text = v.to_string();
            prop_assert_eq!(Dec::parse(&text), Some(v));
        }

        #[test]
        fn included_vat_plus_net_is_the_amount(q in 0u32..100_000, p in 0u64..10_000_000_000, r in 0u32..10_000) {
            let f = line_figures(
                Dec { units: i128::from(q), scale: 3 },
                Dec { units: i128::from(p), scale: 2 },
                Dec { units: i128::from(r), scale: 2 },
                true,
                2,
            ).unwrap();
            prop_assert_eq!(f.total, f.amount);
            prop_assert!(f.vat.units >= 0 && f.vat.units <= f.amount.units);
        }
    }
}
