//! The planner's input: pure data with dense indices. The glue (database, forecast run)
//! fills it; codes are carried only so the output can name things.

use serde::{Deserialize, Serialize};

use crate::catalog::{Criticality, PartCode};
use crate::network::LocationKind;
use crate::units::Amount;

use super::PlanError;

/// Index of a part in [`Instance::parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartId(pub u32);

/// Index of a location in [`Instance::locations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LocId(pub u32);

/// Index of a lane in [`Instance::lanes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LaneId(pub u32);

impl PartId {
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}
impl LocId {
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}
impl LaneId {
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub code: PartCode,
    pub product_line: String,
    pub criticality: Criticality,
    pub unit_cost: Amount,
    pub dealer_price: Amount,
    /// Cubic metres per unit.
    pub volume_m3: f64,
    pub supplier_code: String,
    pub lead_time_days: u32,
    pub moq: u32,
    pub pack_size: u32,
    /// Where the supplier delivers (a central warehouse).
    pub receive_at: LocId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub code: String,
    pub kind: LocationKind,
    pub parent: Option<LocId>,
    /// Storage capacity in m³; `None` = unlimited.
    pub capacity_m3: Option<f64>,
    /// For stations on advance-stock credit: credit limit minus exposure not covered by this
    /// plan, i.e. the dealer-price value of stock the station may hold on credit. `None` =
    /// not on credit terms.
    pub credit_headroom: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    pub from: LocId,
    pub to: LocId,
    pub lead_time_days: u32,
    pub cost_per_unit: Amount,
}

/// Opening stock of one part at one location: on hand now, plus arrivals already on the
/// way (in transit or on order) per period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stock {
    pub part: PartId,
    pub location: LocId,
    pub on_hand: f64,
    /// Arrivals per period (length ≤ T; missing periods are zero).
    pub pipeline: Vec<f64>,
}

/// Forecast demand of one part at one station.
///
/// The spread is the **forecast error** (not the raw demand variance): `error_sd[t]` is the
/// standard deviation of (actual − forecast) for period t, as the forecast's backtest
/// residuals give it. Errors of different periods are taken as independent, so the spread
/// over a protection interval of k periods is √(Σ sd²); the stochastic layer fits a gamma
/// distribution (mean, that variance) to it, which keeps the right skew of lumpy demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Demand {
    pub part: PartId,
    pub station: LocId,
    pub mean: Vec<f64>,
    pub error_sd: Vec<f64>,
}

/// Everything the planner needs, indices dense from 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub parts: Vec<Part>,
    pub locations: Vec<Location>,
    pub lanes: Vec<Lane>,
    pub stock: Vec<Stock>,
    pub demand: Vec<Demand>,
}

impl Instance {
    /// Checks indices, lanes to every parent, and non-negative numbers. `periods` is the
    /// model's horizon: demand vectors must cover it.
    pub fn validate(&self, periods: usize) -> Result<(), PlanError> {
        let bad = |what: String| Err(PlanError::BadInstance(what));
        let nl = self.locations.len();
        for (i, p) in self.parts.iter().enumerate() {
            if p.receive_at.ix() >= nl {
                return bad(format!("part {} receives at unknown location", p.code));
            }
            if p.pack_size == 0 {
                return bad(format!("part {} has pack size 0", p.code));
            }
            if !(p.volume_m3.is_finite() && p.volume_m3 >= 0.0) || p.unit_cost.minor() < 0 {
                return bad(format!(
                    "part {} (#{i}) has a negative volume or cost",
                    p.code
                ));
            }
        }
        let lanes: std::collections::HashSet<(LocId, LocId)> =
            self.lanes.iter().map(|l| (l.from, l.to)).collect();
        for (i, l) in self.locations.iter().enumerate() {
            if l.parent.is_some_and(|p| p.ix() >= nl) {
                return bad(format!("location {} has an unknown parent", l.code));
            }
            if let Some(parent) = l.parent {
                if !lanes.contains(&(parent, LocId(i as u32))) {
                    return bad(format!(
                        "no lane from {} to its child {}",
                        self.locations[parent.ix()].code,
                        l.code
                    ));
                }
            }
        }
        for lane in &self.lanes {
            if lane.from.ix() >= nl || lane.to.ix() >= nl || lane.from == lane.to {
                return bad("a lane has an unknown or equal end".to_owned());
            }
        }
        for s in &self.stock {
            if s.part.ix() >= self.parts.len() || s.location.ix() >= nl {
                return bad("a stock row has an unknown part or location".to_owned());
            }
            if !s.on_hand.is_finite()
                || s.on_hand < 0.0
                || s.pipeline.iter().any(|q| q.is_nan() || *q < 0.0)
            {
                return bad(format!("negative stock for part #{}", s.part.0));
            }
        }
        for d in &self.demand {
            if d.part.ix() >= self.parts.len() || d.station.ix() >= nl {
                return bad("a demand row has an unknown part or station".to_owned());
            }
            if d.mean.len() < periods || d.error_sd.len() < periods {
                return bad(format!(
                    "demand of part {} at {} covers fewer than {periods} periods",
                    self.parts[d.part.ix()].code,
                    self.locations[d.station.ix()].code
                ));
            }
            if d.mean
                .iter()
                .chain(&d.error_sd)
                .any(|x| !(*x >= 0.0 && x.is_finite()))
            {
                return bad("a demand mean or spread is negative or not finite".to_owned());
            }
        }
        Ok(())
    }

    /// The chain from `loc` up to the root, `loc` first.
    pub fn ancestry(&self, loc: LocId) -> Vec<LocId> {
        let mut chain = vec![loc];
        let mut at = loc;
        while let Some(p) = self.locations[at.ix()].parent {
            if chain.contains(&p) {
                break; // a cycle in bad data: stop rather than loop
            }
            chain.push(p);
            at = p;
        }
        chain
    }
}
