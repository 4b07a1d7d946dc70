//! Whole-unit plans: rounding an LP plan to integers, replaying decisions forward so that
//! stock is never negative, restoring the linking rows, and the constraint check that the
//! tests (and `solve`, before it returns) run on every plan written out.

use rayon::prelude::*;

use super::lp::{Flows, LinkRows, Term};
use super::model::PlanModel;
use super::prepare::Block;

const TOL: f64 = 1e-6;

/// Recomputes stock, shortage and gap from buys and moves, shipping at most what is on hand
/// (locations are visited parents first, so same-period chains flow through).
pub fn replay(block: &Block, buy: &[f64], moves: &[Vec<f64>]) -> Flows {
    let t_n = block.periods();
    let n = block.locs.len();
    let order = visit_order(block);
    let mut f = Flows {
        buy: buy.to_vec(),
        moves: moves.iter().map(|m| vec![0.0; m.len()]).collect(),
        inv: vec![vec![0.0; t_n]; n],
        short: vec![vec![0.0; t_n]; n],
        gap: vec![vec![0.0; t_n]; n],
    };
    for t in 0..t_n {
        let mut avail: Vec<f64> = (0..n)
            .map(|l| {
                let prev = if t == 0 {
                    block.on_hand[l]
                } else {
                    f.inv[l][t - 1]
                };
                let bought = if l == block.receive { buy[t] } else { 0.0 };
                prev + block.pipeline[l][t] + bought
            })
            .collect();
        for (k, lane) in block.lanes.iter().enumerate() {
            if lane.offset > 0 && t >= lane.offset {
                avail[lane.to] += f.moves[k][t - lane.offset];
            }
        }
        let mut late = vec![0.0; n];
        let mut done = vec![false; n];
        for &l in &order {
            for (k, lane) in block.lanes.iter().enumerate().filter(|(_, x)| x.from == l) {
                // Whole planned moves stay whole: ship the whole units on hand at most.
                let on_hand = if moves[k][t].fract() == 0.0 {
                    (avail[l] + 1e-9).floor()
                } else {
                    avail[l]
                };
                let q = moves[k][t].min(on_hand).max(0.0);
                f.moves[k][t] = q;
                avail[l] -= q;
                if lane.offset == 0 {
                    if done[lane.to] {
                        late[lane.to] += q;
                    } else {
                        avail[lane.to] += q;
                    }
                }
            }
            let served = block.demand[l][t].min(avail[l]);
            f.short[l][t] = block.demand[l][t] - served;
            f.inv[l][t] = avail[l] - served;
            done[l] = true;
        }
        for (l, late) in late.iter().enumerate() {
            f.inv[l][t] += late;
            f.gap[l][t] = (block.ss[l][t] - f.inv[l][t]).clamp(0.0, block.ss[l][t]);
        }
    }
    f
}

fn visit_order(block: &Block) -> Vec<usize> {
    // Depth in the block's lane graph from the receiving location (BFS); unreachable last.
    let n = block.locs.len();
    let mut depth = vec![usize::MAX; n];
    depth[block.receive] = 0;
    let mut queue = std::collections::VecDeque::from([block.receive]);
    while let Some(a) = queue.pop_front() {
        for lane in block.lanes.iter().filter(|l| l.from == a) {
            if depth[lane.to] == usize::MAX {
                depth[lane.to] = depth[a] + 1;
                queue.push_back(lane.to);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&l| (depth[l], l));
    order
}

/// Rounds buys up to whole units (LP mode; up, so that the rounded plan does not short
/// more than the LP) or to the nearest whole pack respecting MOQ (integer mode, where the
/// values are integral up to solver tolerance), moves to the nearest unit, and replays:
/// moves are capped at the stock on hand, so balance and non-negativity hold by
/// construction; [`restore_links`] then repairs budget, capacity and credit.
pub fn round(block: &Block, f: &Flows, integer: bool) -> Flows {
    let buy: Vec<f64> = f
        .buy
        .iter()
        .map(|&b| round_buy(block, b, integer))
        .collect();
    let moves: Vec<Vec<f64>> = f
        .moves
        .iter()
        .map(|m| m.iter().map(|&q| q.round()).collect())
        .collect();
    replay(block, &buy, &moves)
}

fn round_buy(block: &Block, b: f64, integer: bool) -> f64 {
    if !integer {
        return (b - TOL).ceil().max(0.0);
    }
    let pack = f64::from(block.pack);
    let q = (b / pack).round() * pack;
    if q + TOL < f64::from(block.moq) {
        0.0
    } else {
        q
    }
}

/// One unit (or pack) less of the latest inflow into `l` at or before `t`; `false` when the
/// stock there came only from opening stock or the pipeline.
fn cut_inflow(block: &Block, f: &Flows, l: usize, t: usize, integer: bool) -> Option<Flows> {
    let mut buy = f.buy.clone();
    let mut moves = f.moves.clone();
    for s in (0..=t).rev() {
        if l == block.receive && buy[s] > TOL {
            let step = if integer { f64::from(block.pack) } else { 1.0 };
            buy[s] = (buy[s] - step).max(0.0);
            if integer && buy[s] + TOL < f64::from(block.moq) {
                buy[s] = 0.0;
            }
            return Some(replay(block, &buy, &moves));
        }
        for (k, lane) in block.lanes.iter().enumerate() {
            if lane.to == l && s >= lane.offset && moves[k][s - lane.offset] > TOL {
                moves[k][s - lane.offset] = (moves[k][s - lane.offset] - 1.0).max(0.0);
                return Some(replay(block, &buy, &moves));
            }
        }
    }
    None
}

/// A row use with a total order, for the max-heap in [`restore_links`].
#[derive(Clone, Copy, PartialEq)]
struct Use(f64, usize);

impl Eq for Use {}
impl PartialOrd for Use {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Use {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Restores every violated linking row by cutting inflows, one unit at a time, in the block
/// with the largest use of the row (a max-heap per row, so the work is
/// O((terms + cuts) · log) rather than a scan of every part per cut). A cut can move stock
/// back to a parent and break that parent's row, so rows are swept until none is violated
/// or no cut helps. Gives up after a million cuts; the caller checks.
pub fn restore_links(blocks: &[Block], links: &LinkRows, flows: &mut [Flows], integer: bool) {
    let mut usage = links.total_usage(blocks, flows);
    // Each row's terms, gathered the first time it is violated: most rows never are, and
    // every row's terms at once run to gigabytes at 500 × 20,000.
    let mut row_terms: Vec<Option<RowTerms>> = vec![None; links.len()];
    let over = |usage: &[f64], r: usize| {
        usage[r] > links.rows[r].rhs + TOL * links.rows[r].rhs.abs().max(1.0)
    };
    let mut cuts_left: usize = 1_000_000;
    loop {
        let violated: Vec<usize> = (0..links.len()).filter(|&r| over(&usage, r)).collect();
        if violated.is_empty() {
            return;
        }
        gather_terms(blocks, links, &violated, &mut row_terms);
        let mut progress = false;
        for r in violated {
            let Some(terms) = &row_terms[r] else { continue };
            let mut heap: std::collections::BinaryHeap<Use> = terms
                .iter()
                .enumerate()
                .map(|(k, &(i, c, term))| Use(c * flows[i].get(term), k))
                .filter(|u| u.0 > TOL)
                .collect();
            while over(&usage, r) {
                let Some(Use(u, k)) = heap.pop() else { break };
                let (i, c, term) = terms[k];
                let now = c * flows[i].get(term);
                if (now - u).abs() > TOL {
                    // Stale (an earlier cut changed it): re-queue at its current use.
                    if now > TOL {
                        heap.push(Use(now, k));
                    }
                    continue;
                }
                let block = &blocks[i];
                let cut = match term {
                    Term::Buy(t) => cut_inflow(block, &flows[i], block.receive, t, integer),
                    Term::Inv(l, t) => cut_inflow(block, &flows[i], l, t, integer),
                };
                // Stock from opening balances or the pipeline cannot be cut: drop the term.
                let Some(new) = cut else { continue };
                for (row, u) in links.usage(block, &flows[i]) {
                    usage[row] -= u;
                }
                for (row, u) in links.usage(block, &new) {
                    usage[row] += u;
                }
                flows[i] = new;
                progress = true;
                let now = c * flows[i].get(term);
                if now > TOL {
                    heap.push(Use(now, k));
                }
                cuts_left -= 1;
                if cuts_left == 0 {
                    return;
                }
            }
        }
        if !progress {
            return;
        }
    }
}

/// A linking row's terms: (block, coefficient, which quantity).
type RowTerms = Vec<(usize, f64, Term)>;

/// Fills in the terms of the rows in `rows` that have none yet, in one pass over the blocks.
fn gather_terms(
    blocks: &[Block],
    links: &LinkRows,
    rows: &[usize],
    row_terms: &mut [Option<RowTerms>],
) {
    let mut wanted = vec![false; row_terms.len()];
    for &r in rows {
        if row_terms[r].is_none() {
            wanted[r] = true;
            row_terms[r] = Some(Vec::new());
        }
    }
    if !wanted.contains(&true) {
        return;
    }
    for (i, b) in blocks.iter().enumerate() {
        for (r, c, term) in links.terms(b) {
            if wanted[r] {
                if let Some(terms) = row_terms[r].as_mut() {
                    terms.push((i, c, term));
                }
            }
        }
    }
}

/// A constraint a written-out plan breaks.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub what: String,
}

/// Checks every constraint of the formulation on a plan: non-negativity, flow balance,
/// shortage ≤ demand, gap, linking rows, and in integer mode pack sizes, MOQ and whole moves.
pub fn check(
    model: &PlanModel,
    blocks: &[Block],
    links: &LinkRows,
    flows: &[Flows],
    integer: bool,
) -> Vec<Violation> {
    let mut out: Vec<Violation> = blocks
        .par_iter()
        .zip(flows)
        .flat_map_iter(|(b, f)| {
            let mut found = Vec::new();
            check_block(model, b, f, integer, &mut found);
            found
        })
        .collect();
    let usage = links.total_usage(blocks, flows);
    for (r, row) in links.rows.iter().enumerate() {
        if usage[r] > row.rhs + 1e-5 * row.rhs.abs().max(1.0) {
            out.push(Violation {
                what: format!(
                    "{:?} row {:?}/{:?}: {} > {}",
                    row.family, row.location, row.period, usage[r], row.rhs
                ),
            });
        }
    }
    out
}

fn check_block(model: &PlanModel, b: &Block, f: &Flows, integer: bool, out: &mut Vec<Violation>) {
    let t_n = b.periods();
    let code = b.part.0;
    let mut bad = |what: String| {
        out.push(Violation {
            what: format!("part #{code}: {what}"),
        })
    };
    let neg = f
        .buy
        .iter()
        .chain(f.moves.iter().flatten())
        .chain(f.inv.iter().flatten());
    if neg.chain(f.short.iter().flatten()).any(|x| *x < -TOL) {
        bad("negative quantity".into());
    }
    for (t, &q) in f.buy.iter().enumerate() {
        if t < b.lead && q > TOL {
            bad(format!("buy in period {t} arrives before the lead time"));
        }
        if integer {
            let packs = q / f64::from(b.pack);
            if (packs - packs.round()).abs() > 1e-6 || (q > TOL && q + TOL < f64::from(b.moq)) {
                bad(format!("buy {q} breaks pack {} / MOQ {}", b.pack, b.moq));
            }
        }
    }
    for (k, lane) in b.lanes.iter().enumerate() {
        for (t, &q) in f.moves[k].iter().enumerate() {
            if integer && (q - q.round()).abs() > 1e-6 {
                bad(format!("move {q} on lane {k} is not whole"));
            }
            if t + lane.offset >= t_n && q > TOL {
                bad("move arrives after the horizon".into());
            }
        }
    }
    for l in 0..b.locs.len() {
        let mut total_short = 0.0;
        for t in 0..t_n {
            let prev = if t == 0 {
                b.on_hand[l]
            } else {
                f.inv[l][t - 1]
            };
            let mut flow = prev + b.pipeline[l][t] - b.demand[l][t] + f.short[l][t];
            if l == b.receive {
                flow += f.buy[t];
            }
            for (k, lane) in b.lanes.iter().enumerate() {
                if lane.to == l && t >= lane.offset {
                    flow += f.moves[k][t - lane.offset];
                }
                if lane.from == l {
                    flow -= f.moves[k][t];
                }
            }
            let scale = 1.0 + flow.abs();
            if (flow - f.inv[l][t]).abs() > 1e-5 * scale {
                bad(format!(
                    "balance at loc {l} period {t}: {flow} vs {}",
                    f.inv[l][t]
                ));
            }
            if f.short[l][t] > b.demand[l][t] + 1e-6 {
                bad(format!("short above demand at loc {l} period {t}"));
            }
            let ss = if model.active.safety_stock {
                b.ss[l][t]
            } else {
                0.0
            };
            if f.inv[l][t] + f.gap[l][t] + 1e-5 < ss {
                bad(format!(
                    "gap does not cover safety stock at loc {l} period {t}"
                ));
            }
            total_short += f.short[l][t];
        }
        if let Some(cap) = b.max_short[l] {
            if total_short > cap + 1e-5 {
                bad(format!("hard service broken at loc {l}"));
            }
        }
    }
}
