//! Master data of parts: the coding rule, parts, suppliers, prices and supersession.

mod code;

pub use code::{CodeError, CodingRule, PartCode, Segment, SegmentKind};

use serde::{Deserialize, Serialize};

/// How badly a missing part hurts: set by the fault level of the faults it fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Criticality {
    A,
    B,
    C,
}

impl Criticality {
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::A => "A",
            Criticality::B => "B",
            Criticality::C => "C",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceKind {
    Cost,
    Dealer,
    Retail,
}

impl PriceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceKind::Cost => "cost",
            PriceKind::Dealer => "dealer",
            PriceKind::Retail => "retail",
        }
    }
}

mod store;

pub use store::{cost_prices, resolve_current, suggest, LookupError, PartRef};
