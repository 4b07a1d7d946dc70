//! Calendar months as integers, so that "months since delivery" and "the month after the
//! history" are plain additions.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// A calendar month, stored as `year * 12 + (month - 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth(i32);

/// Why a `YYYY-MM` month could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a month like 2023-11")]
pub struct BadMonth(pub String);

impl YearMonth {
    /// `None` unless `month` is 1..=12 and the year is one chrono can represent.
    pub fn new(year: i32, month: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, 1)?;
        Some(YearMonth(year * 12 + month as i32 - 1))
    }

    pub fn of(date: NaiveDate) -> Self {
        YearMonth(date.year() * 12 + date.month0() as i32)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1..=12.
    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    pub fn plus(self, months: i32) -> Self {
        YearMonth(self.0 + months)
    }

    /// Whole months from `earlier` to `self` (negative when `earlier` is later).
    pub fn months_since(self, earlier: YearMonth) -> i32 {
        self.0 - earlier.0
    }

    /// The first day; months are only built from valid dates, so this always exists.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year(), self.month(), 1).unwrap_or(NaiveDate::MIN)
    }

    /// Day `day` (1-based) of the month, clamped to the month's length.
    pub fn day(self, day: u32) -> NaiveDate {
        let day = day.clamp(1, self.days());
        NaiveDate::from_ymd_opt(self.year(), self.month(), day).unwrap_or(NaiveDate::MIN)
    }

    pub fn days(self) -> u32 {
        let next = self.plus(1).first_day();
        (next - self.first_day()).num_days() as u32
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl FromStr for YearMonth {
    type Err = BadMonth;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMonth(s.to_owned());
        let (year, month) = s.trim().split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u32 = month.parse().map_err(|_| bad())?;
        YearMonth::new(year, month).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_add_across_year_ends_and_know_their_length() {
        let nov: YearMonth = "2023-11".parse().expect("valid month");
        assert_eq!(nov.plus(3).to_string(), "2024-02");
        assert_eq!(nov.plus(3).days(), 29); // 2024 is a leap year
        assert_eq!(nov.plus(-11).to_string(), "2022-12");
        assert_eq!(nov.plus(35).months_since(nov), 35);
        let date = NaiveDate::from_ymd_opt(2026, 10, 31).expect("valid date");
        assert_eq!(YearMonth::of(date), nov.plus(35));
        assert_eq!(
            nov.day(31),
            NaiveDate::from_ymd_opt(2023, 11, 30).expect("valid")
        );
    }

    #[test]
    fn malformed_months_are_refused() {
        for text in ["2023-13", "2023-1", "23-11", "2023/11", ""] {
            assert!(text.parse::<YearMonth>().is_err(), "{text}");
        }
    }
}
