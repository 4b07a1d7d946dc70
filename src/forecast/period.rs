//! Calendar periods. The series methods work on plain slices and never assume months; only
//! the causal model (usage index by month of year) and the interchange rows are monthly.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Length of one forecast period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodLength {
    #[default]
    Month,
    Week,
}

impl PeriodLength {
    /// Periods per year: the lag of the seasonal-naive scale used by MASE.
    pub fn season_length(self) -> usize {
        match self {
            PeriodLength::Month => 12,
            PeriodLength::Week => 52,
        }
    }
}

/// A calendar month, stored as months since January of year 0 so that arithmetic is plain
/// integer arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month(i32);

impl Month {
    /// `month` is 1..=12.
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12)
            .contains(&month)
            .then(|| Month(year * 12 + month as i32 - 1))
    }

    pub fn of_date(date: NaiveDate) -> Self {
        Month(date.year() * 12 + date.month0() as i32)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1..=12.
    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    /// The month `n` months later (earlier when negative).
    pub fn plus(self, n: i32) -> Self {
        Month(self.0 + n)
    }

    /// Whole months from `earlier` to `self`.
    pub fn since(self, earlier: Month) -> i32 {
        self.0 - earlier.0
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// Why a month could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a month like 2001-04")]
pub struct BadMonth(pub String);

impl FromStr for Month {
    type Err = BadMonth;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMonth(s.to_owned());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        Month::new(year, month).ok_or_else(bad)
    }
}

impl TryFrom<String> for Month {
    type Error = BadMonth;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn month_arithmetic_crosses_years() {
        let m: Month = "2001-11".parse().unwrap();
        assert_eq!(m.plus(3).to_string(), "2002-02");
        assert_eq!(m.plus(-11).to_string(), "2000-12");
        assert_eq!(m.plus(3).since(m), 3);
        assert_eq!(m.month(), 11);
    }

    #[test]
    fn bad_months_are_rejected() {
        assert!("2001-13".parse::<Month>().is_err());
        assert!("2001".parse::<Month>().is_err());
        assert!("x-01".parse::<Month>().is_err());
    }
}
