//! The month-by-month rules every policy lives by (DESIGN §11), as pure state.
//!
//! Each month: lines due are booked onto the shelf; the policy releases lines (a transfer
//! leaves its sender's shelf at once, and only if the sender holds all of it; a purchase
//! needs nothing); lines released this month that are due this month are booked too; the
//! month's demand is served at each station from its own shelf, then from locations whose
//! lane into the station takes at most one day (nearest first), else it is lost; on-hand is
//! valued at cost at the month's end. Monthly buckets: a line arriving any day of a month
//! serves that month's demand, for every policy alike.

use std::collections::HashMap;

use serde::Serialize;

use crate::catalog::Criticality;
use crate::network::LocationKind;
use crate::plan::{Instance, LocId, PartId, PlanModel, Tier};

/// The 24-hour promise: sources whose lane into a station takes at most this many days.
pub const FAST_LANE_DAYS: u32 = 1;

/// A released line: `qty` of `part` to `to`, from `from` (a transfer) or a supplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Line {
    pub part: PartId,
    pub from: Option<LocId>,
    pub to: LocId,
    pub qty: i64,
    /// Month index of the release.
    pub released: usize,
    /// Month index of the arrival (≥ `released`).
    pub arrives: usize,
    /// The proposal it came from, when the product released it.
    pub proposal_id: Option<i64>,
}

/// How one (part, station) cell's demand of a month was met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub part: PartId,
    pub station: LocId,
    pub demand: i64,
    pub own: i64,
    /// Units from other locations within the 24-hour promise.
    pub fast: Vec<(LocId, i64)>,
    pub lost: i64,
}

/// Demand, own-shelf and 24-hour service of one slice (a month, a cell, the whole run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Fill {
    pub demand: i64,
    pub own: i64,
    pub within_24h: i64,
}

impl Fill {
    fn add(&mut self, s: &Served) {
        self.demand += s.demand;
        self.own += s.own;
        self.within_24h += s.demand - s.lost;
    }

    pub fn shelf_rate(&self) -> f64 {
        ratio(self.own, self.demand)
    }

    pub fn rate_24h(&self) -> f64 {
        ratio(self.within_24h, self.demand)
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b > 0 {
        a as f64 / b as f64
    } else {
        1.0
    }
}

/// Money and work of one month, major units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MonthBook {
    pub fill: Fill,
    /// On-hand at cost at the month's end, all locations.
    pub inventory_value: f64,
    pub order_lines: usize,
    pub purchase_spend: f64,
    pub transport: f64,
    /// Lines the policy released that the sender could not fill (nothing shipped).
    pub refused_lines: usize,
}

/// Tier × criticality of every part, and the fast sources of every station.
pub struct Net<'a> {
    pub inst: &'a Instance,
    pub model: &'a PlanModel,
    cell: Vec<(Tier, Criticality)>,
    /// Per location: other locations whose lane into it is within the promise, nearest first.
    fast: Vec<Vec<(LocId, u32)>>,
    lane_cost: HashMap<(LocId, LocId), f64>,
}

impl<'a> Net<'a> {
    pub fn new(inst: &'a Instance, model: &'a PlanModel) -> Net<'a> {
        let cell = inst
            .parts
            .iter()
            .map(|p| (model.tier_of(&p.product_line), p.criticality))
            .collect();
        let mut fast: Vec<Vec<(LocId, u32)>> = vec![Vec::new(); inst.locations.len()];
        let mut lane_cost = HashMap::new();
        for lane in &inst.lanes {
            lane_cost.insert(
                (lane.from, lane.to),
                lane.cost_per_unit.minor() as f64 / 100.0,
            );
            let to_station = inst.locations[lane.to.ix()].kind == LocationKind::Station;
            if to_station && lane.lead_time_days <= FAST_LANE_DAYS {
                fast[lane.to.ix()].push((lane.from, lane.lead_time_days));
            }
        }
        for sources in &mut fast {
            sources.sort_by(|a, b| {
                (a.1, &inst.locations[a.0.ix()].code).cmp(&(b.1, &inst.locations[b.0.ix()].code))
            });
        }
        Net {
            inst,
            model,
            cell,
            fast,
            lane_cost,
        }
    }

    pub fn cell(&self, part: PartId) -> (Tier, Criticality) {
        self.cell[part.ix()]
    }

    pub fn unit_cost(&self, part: PartId) -> f64 {
        self.inst.parts[part.ix()].unit_cost.minor() as f64 / 100.0
    }

    fn lane_cost(&self, from: LocId, to: LocId) -> f64 {
        self.lane_cost.get(&(from, to)).copied().unwrap_or(0.0)
    }
}

/// The network's stock as the replay books it.
#[derive(Debug, Clone)]
pub struct World {
    locations: usize,
    /// On hand per part × location, dense.
    on_hand: Vec<i64>,
    open: Vec<Line>,
    pub months: Vec<MonthBook>,
    /// Per tier × criticality over the whole run.
    pub cells: HashMap<(Tier, Criticality), Fill>,
}

impl World {
    /// Opening stock and the lines already on their way (arrival month indices from 0).
    pub fn new(inst: &Instance, on_hand: &[(PartId, LocId, i64)], open: Vec<Line>) -> World {
        let locations = inst.locations.len();
        let mut stock = vec![0; inst.parts.len() * locations];
        for &(p, l, q) in on_hand {
            stock[p.ix() * locations + l.ix()] += q;
        }
        World {
            locations,
            on_hand: stock,
            open,
            months: Vec::new(),
            cells: HashMap::new(),
        }
    }

    pub fn on_hand(&self, part: PartId, loc: LocId) -> i64 {
        self.on_hand[part.ix() * self.locations + loc.ix()]
    }

    fn shelf(&mut self, part: PartId, loc: LocId) -> &mut i64 {
        &mut self.on_hand[part.ix() * self.locations + loc.ix()]
    }

    /// Lines still on their way.
    pub fn open_lines(&self) -> &[Line] {
        &self.open
    }

    /// Every non-zero shelf: (part, location, on hand).
    pub fn shelves(&self) -> impl Iterator<Item = (PartId, LocId, i64)> + '_ {
        self.on_hand
            .iter()
            .enumerate()
            .filter(|(_, q)| **q != 0)
            .map(|(i, q)| {
                (
                    PartId((i / self.locations) as u32),
                    LocId((i % self.locations) as u32),
                    *q,
                )
            })
    }

    fn book(&mut self, month: usize) -> &mut MonthBook {
        while self.months.len() <= month {
            self.months.push(MonthBook::default());
        }
        &mut self.months[month]
    }

    /// Books every open line due by `month` onto its destination's shelf; returns them.
    pub fn book_due(&mut self, month: usize) -> Vec<Line> {
        let (due, still): (Vec<Line>, Vec<Line>) =
            self.open.drain(..).partition(|l| l.arrives <= month);
        self.open = still;
        for line in &due {
            *self.shelf(line.part, line.to) += line.qty;
        }
        due
    }

    /// Whether a line can be released now: a transfer needs all of it on the sender's shelf.
    pub fn can_release(&self, line: &Line) -> bool {
        line.qty > 0
            && line
                .from
                .is_none_or(|from| self.on_hand(line.part, from) >= line.qty)
    }

    /// Releases a month's lines in order. A transfer leaves its sender's shelf at once, and
    /// only if the sender holds all of it; one that cannot go yet is tried again after the
    /// others, since a line released this month that arrives this month lands on its shelf
    /// at once (monthly buckets: goods that reach a regional centre in the month can move on
    /// to a station in the same month, as the plan's periods allow). What still cannot go
    /// is refused: counted, nothing moves. Returns the lines that went, in the order they went.
    pub fn release_month(&mut self, net: &Net, lines: Vec<Line>, month: usize) -> Vec<Line> {
        let mut pending = lines;
        let mut went = Vec::with_capacity(pending.len());
        loop {
            let before = went.len();
            let mut waiting = Vec::new();
            for line in pending {
                if self.can_release(&line) {
                    went.push(self.release(net, line, month));
                } else {
                    waiting.push(line);
                }
            }
            pending = waiting;
            if pending.is_empty() || went.len() == before {
                break;
            }
        }
        self.book(month).refused_lines += pending.len();
        went
    }

    /// Releases one line the sender can fill (see [`World::can_release`]).
    fn release(&mut self, net: &Net, line: Line, month: usize) -> Line {
        let unit_cost = net.unit_cost(line.part);
        let transport = line.from.map_or(0.0, |f| net.lane_cost(f, line.to));
        if let Some(from) = line.from {
            *self.shelf(line.part, from) -= line.qty;
        }
        let book = self.book(month);
        book.order_lines += 1;
        book.transport += transport * line.qty as f64;
        if line.from.is_none() {
            book.purchase_spend += unit_cost * line.qty as f64;
        }
        let line = Line {
            arrives: line.arrives.max(month),
            released: month,
            ..line
        };
        if line.arrives == month {
            *self.shelf(line.part, line.to) += line.qty;
        } else {
            self.open.push(line);
        }
        line
    }

    /// Serves one month's demand, `(part, station, units)` per cell.
    pub fn serve(
        &mut self,
        net: &Net,
        month: usize,
        demand: &[(PartId, LocId, i64)],
    ) -> Vec<Served> {
        let mut out = Vec::with_capacity(demand.len());
        for &(part, station, units) in demand {
            if units <= 0 {
                continue;
            }
            let own = units.min(*self.shelf(part, station)).max(0);
            *self.shelf(part, station) -= own;
            let mut rest = units - own;
            let mut fast = Vec::new();
            for &(source, _) in &net.fast[station.ix()] {
                if rest == 0 {
                    break;
                }
                let take = rest.min(*self.shelf(part, source)).max(0);
                if take > 0 {
                    *self.shelf(part, source) -= take;
                    rest -= take;
                    fast.push((source, take));
                }
            }
            let transport: f64 = fast
                .iter()
                .map(|&(s, q)| net.lane_cost(s, station) * q as f64)
                .sum();
            let served = Served {
                part,
                station,
                demand: units,
                own,
                fast,
                lost: rest,
            };
            let book = self.book(month);
            book.fill.add(&served);
            book.transport += transport;
            self.cells.entry(net.cell(part)).or_default().add(&served);
            out.push(served);
        }
        out
    }

    /// Values on-hand at cost at the end of `month`.
    pub fn close_month(&mut self, net: &Net, month: usize) {
        let locations = self.locations;
        let value: f64 = self
            .on_hand
            .chunks(locations.max(1))
            .enumerate()
            .map(|(p, shelves)| {
                let units: i64 = shelves.iter().sum();
                units as f64 * net.unit_cost(PartId(p as u32))
            })
            .sum();
        self.book(month).inventory_value = value;
    }

    /// Fill over all months.
    pub fn total_fill(&self) -> Fill {
        let mut f = Fill::default();
        for m in &self.months {
            f.demand += m.fill.demand;
            f.own += m.fill.own;
            f.within_24h += m.fill.within_24h;
        }
        f
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::PartCode;
    use crate::plan::{Lane, Location, Part};
    use crate::units::Amount;

    /// A central C, a regional R and stations S1, S2: R→S1 in 2 days, S2→S1 in 1 day.
    pub(crate) fn small() -> (PlanModel, Instance) {
        let text = include_str!("../../models/monthly-replenishment.toml");
        let model = PlanModel::from_toml(text).unwrap_or_else(|e| panic!("model: {e}"));
        let loc = |code: &str, kind, parent| Location {
            code: code.into(),
            kind,
            parent,
            capacity_m3: None,
            credit_headroom: None,
        };
        let lane = |from, to, days| Lane {
            from: LocId(from),
            to: LocId(to),
            lead_time_days: days,
            cost_per_unit: Amount::from_minor(100),
        };
        let inst = Instance {
            parts: vec![Part {
                code: PartCode::from_trusted("PT-HYD-000001".into()),
                product_line: "PT".into(),
                criticality: Criticality::A,
                unit_cost: Amount::from_minor(10_000),
                dealer_price: Amount::from_minor(12_000),
                volume_m3: 0.001,
                supplier_code: "SUP".into(),
                lead_time_days: 45,
                moq: 0,
                pack_size: 1,
                receive_at: LocId(0),
            }],
            locations: vec![
                loc("C", LocationKind::Central, None),
                loc("R", LocationKind::Regional, Some(LocId(0))),
                loc("S1", LocationKind::Station, Some(LocId(1))),
                loc("S2", LocationKind::Station, Some(LocId(1))),
            ],
            lanes: vec![lane(0, 1, 3), lane(1, 2, 2), lane(1, 3, 1), lane(3, 2, 1)],
            stock: Vec::new(),
            demand: Vec::new(),
        };
        (model, inst)
    }

    #[test]
    fn demand_is_served_from_the_shelf_then_a_one_day_neighbour_then_lost() {
        let (model, inst) = small();
        let net = Net::new(&inst, &model);
        let (part, s1, s2, r) = (PartId(0), LocId(2), LocId(3), LocId(1));
        // R holds stock too, but its lane into S1 takes 2 days: not within the promise.
        let mut world = World::new(
            &inst,
            &[(part, s1, 2), (part, s2, 3), (part, r, 50)],
            Vec::new(),
        );
        let served = world.serve(&net, 0, &[(part, s1, 9)]);
        assert_eq!(served[0].own, 2);
        assert_eq!(served[0].fast, vec![(s2, 3)]);
        assert_eq!(served[0].lost, 4);
        assert_eq!((world.on_hand(part, s1), world.on_hand(part, s2)), (0, 0));
        let fill = world.total_fill();
        assert_eq!((fill.demand, fill.own, fill.within_24h), (9, 2, 5));
        assert_eq!(world.cells[&(Tier::Exceed, Criticality::A)].demand, 9);
    }

    #[test]
    fn goods_that_arrive_within_the_month_can_move_on_within_it() {
        let (model, inst) = small();
        let net = Net::new(&inst, &model);
        let (part, c, r, s1) = (PartId(0), LocId(0), LocId(1), LocId(2));
        let mut world = World::new(&inst, &[(part, c, 5)], Vec::new());
        let line = |from, to| Line {
            part,
            from: Some(from),
            to,
            qty: 5,
            released: 0,
            arrives: 0,
            proposal_id: None,
        };
        // R → S1 comes first but R's goods are still at C: it goes after C → R lands.
        let went = world.release_month(&net, vec![line(r, s1), line(c, r)], 0);
        assert_eq!(went.iter().map(|l| l.to).collect::<Vec<_>>(), vec![r, s1]);
        assert_eq!(
            (
                world.on_hand(part, c),
                world.on_hand(part, r),
                world.on_hand(part, s1)
            ),
            (0, 0, 5)
        );
        assert_eq!(world.months[0].refused_lines, 0);
    }

    #[test]
    fn a_transfer_leaves_its_sender_at_release_and_lands_when_due() {
        let (model, inst) = small();
        let net = Net::new(&inst, &model);
        let (part, from, to) = (PartId(0), LocId(1), LocId(2));
        let mut world = World::new(&inst, &[(part, from, 5)], Vec::new());
        let line = |qty| Line {
            part,
            from: Some(from),
            to,
            qty,
            released: 0,
            arrives: 1,
            proposal_id: None,
        };
        let went = world.release_month(&net, vec![line(6), line(4)], 0);
        assert_eq!(went.len(), 1, "more than the sender holds is refused");
        assert_eq!(world.on_hand(part, from), 1);
        assert!(world.book_due(0).is_empty());
        assert_eq!(world.book_due(1).len(), 1);
        assert_eq!(world.on_hand(part, to), 4);
        assert_eq!(world.months[0].order_lines, 1);
        assert_eq!(world.months[0].refused_lines, 1);
        world.close_month(&net, 1);
        assert!((world.months[1].inventory_value - 500.0).abs() < 1e-9);
    }
}
