//! Quantities and money: parsed once at the boundary, valid by construction afterwards.
//!
//! Money is an integer count of minor units (fen, cents) with its currency; it is never a
//! float. Quantities are whole units of a part's unit of measure and never negative.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a quantity or an amount of money could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("'{0}' is not a whole number")]
    NotAnInteger(String),
    #[error("quantity {0} is negative")]
    NegativeQty(i64),
    #[error("'{0}' is not an amount like 1234.50 (at most two decimals)")]
    BadAmount(String),
    #[error("amount '{0}' is too large")]
    AmountOverflow(String),
    #[error("'{0}' is not a currency code (three capital letters, e.g. CNY)")]
    BadCurrency(String),
}

/// A non-negative whole quantity of a part.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Qty(i64);

impl Qty {
    pub const ZERO: Qty = Qty(0);

    pub fn new(units: i64) -> Result<Self, UnitError> {
        if units < 0 {
            return Err(UnitError::NegativeQty(units));
        }
        Ok(Qty(units))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Qty {
    type Error = UnitError;
    fn try_from(units: i64) -> Result<Self, Self::Error> {
        Qty::new(units)
    }
}

impl From<Qty> for i64 {
    fn from(q: Qty) -> i64 {
        q.0
    }
}

impl FromStr for Qty {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let units: i64 = s
            .trim()
            .parse()
            .map_err(|_| UnitError::NotAnInteger(s.to_owned()))?;
        Qty::new(units)
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An ISO 4217 currency code. All supported currencies have two minor digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const CNY: Currency = Currency(*b"CNY");

    pub fn as_str(&self) -> &str {
        // Only ASCII capitals are ever stored, see `from_str`.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl FromStr for Currency {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(UnitError::BadCurrency(s.to_owned()));
        }
        Ok(Currency([bytes[0], bytes[1], bytes[2]]))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in minor units (1 CNY = 100 fen), without its currency: used where the
/// currency is carried alongside (a CSV column, a table column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn from_minor(minor: i64) -> Self {
        Amount(minor)
    }

    pub fn minor(self) -> i64 {
        self.0
    }

    /// Value in major units, for reports and the optimiser's objective (never stored).
    pub fn as_major_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Rounds a major-unit float (an optimiser's output) to the nearest minor unit.
    pub fn from_major_f64(major: f64) -> Self {
        Amount((major * 100.0).round() as i64)
    }

    pub fn checked_mul(self, qty: i64) -> Option<Amount> {
        self.0.checked_mul(qty).map(Amount)
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, rhs: Amount) -> Amount {
        Amount(self.0 + rhs.0)
    }
}

impl std::ops::AddAssign for Amount {
    fn add_assign(&mut self, rhs: Amount) {
        self.0 += rhs.0;
    }
}

impl std::ops::Sub for Amount {
    type Output = Amount;
    fn sub(self, rhs: Amount) -> Amount {
        Amount(self.0 - rhs.0)
    }
}

impl FromStr for Amount {
    type Err = UnitError;
    /// Parses a decimal string in major units: `1234`, `1234.5`, `1234.50`, `-3.10`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || UnitError::BadAmount(s.to_owned());
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits_only = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(frac) || frac.len() > 2 {
            return Err(bad());
        }
        if body.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        let whole: i64 = whole
            .parse()
            .map_err(|_| UnitError::AmountOverflow(s.to_owned()))?;
        let cents: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
        let minor = whole
            .checked_mul(100)
            .and_then(|m| m.checked_add(cents))
            .ok_or_else(|| UnitError::AmountOverflow(s.to_owned()))?;
        Ok(Amount(if negative { -minor } else { minor }))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Money: an amount together with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount: Amount,
    pub currency: Currency,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_minor_units_and_print_back() {
        let cases = [
            ("1234.50", 123_450),
            ("0.05", 5),
            ("7", 700),
            ("-3.1", -310),
        ];
        for (text, minor) in cases {
            let amount: Amount = text.parse().expect("valid amount");
            assert_eq!(amount.minor(), minor, "{text}");
        }
        assert_eq!(Amount::from_minor(123_450).to_string(), "1234.50");
        assert_eq!(Amount::from_minor(-5).to_string(), "-0.05");
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for text in [
            "",
            "1.234",
            "1,5",
            "abc",
            "1.",
            ".5",
            "--1",
            "99999999999999999999",
        ] {
            assert!(text.parse::<Amount>().is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn quantities_are_never_negative() {
        assert_eq!("12".parse::<Qty>().map(Qty::get), Ok(12));
        assert_eq!("-1".parse::<Qty>(), Err(UnitError::NegativeQty(-1)));
        assert!("1.5".parse::<Qty>().is_err());
    }

    #[test]
    fn currencies_are_three_capitals() {
        assert_eq!("CNY".parse::<Currency>(), Ok(Currency::CNY));
        assert!("cny".parse::<Currency>().is_err());
        assert!("CN".parse::<Currency>().is_err());
    }
}
