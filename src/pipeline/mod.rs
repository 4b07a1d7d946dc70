//! The pipeline (DESIGN §3, §7; issue 25): released purchase orders and transfers that have
//! not fully arrived. A released proposal is a *line*: ordered quantity, received so far,
//! and the rest open. Receipts book against a line, in full or in part, never beyond what is
//! open; a line with nothing open is `received`. The planner's snapshot reads the open lines,
//! each at its expected arrival, and nothing else; an overdue line stays in the pipeline at
//! the first period (and is listed as overdue) until it is received.
//!
//! This file is the pure part: what a line is and how its arrival maps onto plan periods.
//! [`store`] holds the SQL: receipts (one, or a CSV of many), the arriving list, and the
//! open lines the planner reads.

pub mod store;

use chrono::NaiveDate;
use serde::Serialize;

use crate::plan::model::PeriodLength;
use crate::stock::MovementKind;

pub use store::{
    arriving, open_lines, receive, receive_all, receive_csv, ArrivingFilter, LineView, Receipt,
    Received, RECEIPTS_CSV_HEADER,
};

/// What kind of line: a purchase arrives from a supplier, a transfer from another location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Purchase,
    Transfer,
}

impl LineKind {
    pub fn parse(stored: &str) -> Option<LineKind> {
        match stored {
            "purchase" => Some(LineKind::Purchase),
            "transfer" => Some(LineKind::Transfer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Purchase => "purchase",
            LineKind::Transfer => "transfer",
        }
    }

    /// The ledger movement that books an arrival: a purchase leaves on-order, a transfer
    /// leaves in-transit; both land on the shelf.
    pub fn arrival(self) -> MovementKind {
        match self {
            LineKind::Purchase => MovementKind::OrderReceipt,
            LineKind::Transfer => MovementKind::TransferIn,
        }
    }
}

/// One released line with something still to arrive, as the planner reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenLine {
    pub proposal_id: i64,
    pub kind: LineKind,
    pub part_id: i64,
    /// The sender of a transfer.
    pub from_id: Option<i64>,
    pub to_id: i64,
    /// Ordered minus received: always > 0 for an open line.
    pub open: i64,
    pub arrive_on: NaiveDate,
}

/// The plan period (0-based from `start`) in which a line arriving on `arrive_on` lands.
/// A line already due (overdue, or due on `start`) lands in period 0: it is still coming,
/// and the soonest it can come is now. `None` beyond `periods`.
pub fn arrival_period(
    arrive_on: NaiveDate,
    start: NaiveDate,
    period: PeriodLength,
    periods: usize,
) -> Option<usize> {
    (0..periods).find(|&t| arrive_on < period.start_of(start, t as i64 + 1))
}

/// Quantities of one line: what was ordered, what came, what is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineQty {
    pub ordered: i64,
    pub received: i64,
    pub open: i64,
}

impl LineQty {
    pub fn new(ordered: i64, received: i64) -> LineQty {
        LineQty {
            ordered,
            received,
            open: (ordered - received).max(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn an_arrival_lands_in_the_period_that_holds_its_date_and_overdue_lands_now() {
        let start = d(2027, 1, 1);
        let month = PeriodLength::Month;
        assert_eq!(arrival_period(d(2026, 11, 3), start, month, 12), Some(0));
        assert_eq!(arrival_period(d(2027, 1, 31), start, month, 12), Some(0));
        assert_eq!(arrival_period(d(2027, 2, 1), start, month, 12), Some(1));
        assert_eq!(arrival_period(d(2027, 12, 31), start, month, 12), Some(11));
        assert_eq!(arrival_period(d(2028, 1, 1), start, month, 12), None);
        assert_eq!(
            arrival_period(d(2027, 1, 15), start, PeriodLength::Week, 4),
            Some(2)
        );
    }

    #[test]
    fn a_line_is_open_for_what_did_not_arrive() {
        assert_eq!(
            LineQty::new(10, 4),
            LineQty {
                ordered: 10,
                received: 4,
                open: 6
            }
        );
        assert_eq!(LineQty::new(10, 10).open, 0);
        assert_eq!(LineKind::parse("transfer"), Some(LineKind::Transfer));
        assert_eq!(LineKind::Purchase.arrival(), MovementKind::OrderReceipt);
    }
}
