//! Primal network simplex for min-cost flow with real-valued supplies and capacities.
//!
//! One part's block without the linking rows is a min-cost flow on its time-expanded network
//! (DESIGN §6, "Scale"), and Dantzig–Wolfe pricing solves that block again and again with
//! only some arc costs changed. A general LP pays model writing and presolve on every call;
//! here the spanning-tree basis of the last solve is kept ([`Basis`]) and re-optimised from,
//! which stays primal feasible because supplies and capacities do not change between rounds.
//!
//! The method is the textbook one (Ahuja, Magnanti & Orlin, ch. 11) with an artificial root
//! joined to every node, big-M artificial costs, block-search pricing, and Cunningham's
//! strongly feasible trees (the leaving-arc rule below) so that degenerate pivots cannot
//! cycle. The tree is kept as parent pointers plus child lists; a pivot re-hangs one subtree
//! and recomputes its depths and potentials, O(size of that subtree).

/// Arc state: at its lower bound (0), in the spanning tree, or at its upper bound.
const LOWER: i8 = 1;
const TREE: i8 = 0;
const UPPER: i8 = -1;

const NONE: usize = usize::MAX;

/// Why a flow problem has no optimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("the supplies cannot be routed within the capacities")]
    Infeasible,
    #[error("a cycle of negative cost has no capacity limit")]
    Unbounded,
    #[error("the network simplex did not converge within its pivot limit")]
    PivotLimit,
    #[error("a kept basis does not fit this network")]
    BadBasis,
}

/// A min-cost flow problem: nodes 0..n with supplies (positive = source), arcs with a
/// capacity (`f64::INFINITY` for none) and a cost. Lower bounds are 0.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub supply: Vec<f64>,
    pub source: Vec<u32>,
    pub target: Vec<u32>,
    pub cap: Vec<f64>,
    pub cost: Vec<f64>,
}

impl Network {
    pub fn with_nodes(n: usize) -> Self {
        Network {
            supply: vec![0.0; n],
            ..Network::default()
        }
    }

    /// Adds an arc and returns its index.
    pub fn arc(&mut self, from: usize, to: usize, cap: f64, cost: f64) -> usize {
        self.source.push(from as u32);
        self.target.push(to as u32);
        self.cap.push(cap);
        self.cost.push(cost);
        self.source.len() - 1
    }

    pub fn nodes(&self) -> usize {
        self.supply.len()
    }

    pub fn arcs(&self) -> usize {
        self.source.len()
    }
}

/// An optimal basis, one state per arc (real arcs, then one artificial arc per node): what a
/// later solve of the same network with other costs starts from. One byte per arc.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Basis {
    state: Vec<i8>,
    /// Per node: whether its artificial arc points node → root.
    up: Vec<bool>,
}

impl Basis {
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// A starting basis from a feasible flow the caller knows: the `upper` arcs at their
    /// capacity, the `tree` arcs (a forest) carrying what the supplies then leave, every
    /// other arc at zero. Each tree of the forest hangs from the root by the artificial arc
    /// of one of its nodes, pointing the way the tree's excess flows. `None` when `tree`
    /// has a cycle. Whether the flows fit the capacities is checked where the basis is
    /// loaded (a misfit falls back to the artificial start).
    pub fn from_forest(net: &Network, tree: &[usize], upper: &[usize]) -> Option<Basis> {
        let (n, m) = (net.nodes(), net.arcs());
        let mut state = vec![LOWER; m + n];
        let mut excess = net.supply.clone();
        for &a in upper {
            state[a] = UPPER;
            excess[net.source[a] as usize] -= net.cap[a];
            excess[net.target[a] as usize] += net.cap[a];
        }
        let mut leader: Vec<usize> = (0..n).collect();
        fn find(leader: &mut [usize], mut v: usize) -> usize {
            while leader[v] != v {
                leader[v] = leader[leader[v]];
                v = leader[v];
            }
            v
        }
        for &a in tree {
            let (u, v) = (
                find(&mut leader, net.source[a] as usize),
                find(&mut leader, net.target[a] as usize),
            );
            if u == v {
                return None;
            }
            leader[u] = v;
            state[a] = TREE;
        }
        let mut tree_excess = vec![0.0; n];
        for (v, e) in excess.iter().enumerate() {
            let r = find(&mut leader, v);
            tree_excess[r] += e;
        }
        let mut up = vec![true; n];
        for v in 0..n {
            if find(&mut leader, v) == v {
                state[m + v] = TREE;
                // Zero excess hangs towards the root, as in the artificial start: pointing
                // away from it prices the arcs into such trees far below zero, and the plan
                // at the slack penalties took 0.53 ms a part from the buy-nothing basis
                // against 0.44 ms (500 × 20,000, 3,000 parts).
                up[v] = tree_excess[v] >= 0.0;
            }
        }
        Some(Basis { state, up })
    }
}

/// An optimal flow: per real arc, and the basis it was read from.
#[derive(Debug, Clone)]
pub struct Optimum {
    pub flow: Vec<f64>,
    pub cost: f64,
    pub pivots: usize,
    pub basis: Basis,
}

/// Working state of one solve. Index `n` is the artificial root; arc `m + v` joins node v to
/// the root.
struct Simplex<'a> {
    net: &'a Network,
    n: usize,
    m: usize,
    source: Vec<usize>,
    target: Vec<usize>,
    cap: Vec<f64>,
    cost: Vec<f64>,
    flow: Vec<f64>,
    state: Vec<i8>,
    up: Vec<bool>,
    parent: Vec<usize>,
    pred: Vec<usize>,
    /// +1 when the pred arc points node → parent, −1 when parent → node.
    dir: Vec<i8>,
    depth: Vec<u32>,
    pi: Vec<f64>,
    first_child: Vec<usize>,
    next_sib: Vec<usize>,
    prev_sib: Vec<usize>,
    eps: f64,
    next_arc: usize,
    block: usize,
}

/// Solves `net` to optimality, starting from `warm` when it is a basis of a network of the
/// same shape (any costs), otherwise from the artificial basis.
pub fn solve(net: &Network, warm: Option<&Basis>) -> Result<Optimum, FlowError> {
    let mut s = Simplex::new(net);
    match warm {
        Some(b) if b.state.len() == s.m + s.n && b.up.len() == s.n => {
            if s.load(b).is_err() {
                s = Simplex::new(net);
                s.artificial_start();
            }
        }
        _ => s.artificial_start(),
    }
    let pivots = s.run()?;
    s.finish(pivots)
}

impl<'a> Simplex<'a> {
    fn new(net: &'a Network) -> Self {
        let n = net.nodes();
        let m = net.arcs();
        let total = m + n;
        let max_cost = net.cost.iter().fold(0.0f64, |a, c| a.max(c.abs()));
        // The artificial cost exceeds any simple path's cost, so artificial arcs carry flow at
        // the optimum only when nothing else can.
        let art = (max_cost + 1.0) * (n as f64 + 1.0);
        let mut source: Vec<usize> = net.source.iter().map(|&x| x as usize).collect();
        let mut target: Vec<usize> = net.target.iter().map(|&x| x as usize).collect();
        source.resize(total, n);
        target.resize(total, n);
        let mut cap = net.cap.clone();
        cap.resize(total, f64::INFINITY);
        let mut cost = net.cost.clone();
        cost.resize(total, art);
        // Block search over a tenth of √arcs (at least 4), not the textbook √arcs: on the
        // parts' time-expanded networks an improving arc is near the last one, and a short
        // scan pivots sooner. Measured at 500 × 20,000 (3,000 parts, ~3,300 arcs each):
        // a cold solve 0.95 ms at 57 arcs a block, 0.45 ms at 4–6, 0.46 ms at 2.
        let block = ((total as f64).sqrt() as usize / 10).max(4);
        Simplex {
            net,
            n,
            m,
            source,
            target,
            cap,
            cost,
            flow: vec![0.0; total],
            state: vec![LOWER; total],
            up: vec![true; n],
            parent: vec![NONE; n + 1],
            pred: vec![NONE; n + 1],
            dir: vec![0; n + 1],
            depth: vec![0; n + 1],
            pi: vec![0.0; n + 1],
            first_child: vec![NONE; n + 1],
            next_sib: vec![NONE; n + 1],
            prev_sib: vec![NONE; n + 1],
            // Reduced costs below this are noise of the potentials' arithmetic (sums of
            // costs along tree paths of at most n arcs).
            eps: 1e-14 * (1.0 + max_cost) * (n as f64 + 1.0),
            next_arc: 0,
            block,
        }
    }

    /// Every node hangs from the root by its artificial arc, pointing the way its supply
    /// flows (node → root for supply ≥ 0), which makes the tree strongly feasible.
    fn artificial_start(&mut self) {
        let root = self.n;
        for v in 0..self.n {
            let a = self.m + v;
            let b = self.net.supply[v];
            let up = b >= 0.0;
            self.up[v] = up;
            self.orient_artificial(v);
            self.flow[a] = b.abs();
            self.state[a] = TREE;
            self.parent[v] = root;
            self.pred[v] = a;
            self.dir[v] = if up { 1 } else { -1 };
            self.depth[v] = 1;
            self.attach(v, root);
            self.pi[v] = if up { -self.cost[a] } else { self.cost[a] };
        }
    }

    fn orient_artificial(&mut self, v: usize) {
        let a = self.m + v;
        if self.up[v] {
            self.source[a] = v;
            self.target[a] = self.n;
        } else {
            self.source[a] = self.n;
            self.target[a] = v;
        }
    }

    /// Rebuilds tree, flows and potentials from a kept basis: nonbasic arcs sit at a bound,
    /// tree flows follow from the supplies (leaves first), potentials from the root down.
    fn load(&mut self, b: &Basis) -> Result<(), FlowError> {
        let (n, total) = (self.n, self.m + self.n);
        self.up.clone_from(&b.up);
        for v in 0..n {
            self.orient_artificial(v);
        }
        self.state.clone_from(&b.state);
        // Adjacency of tree arcs.
        let mut deg = vec![0usize; n + 2];
        let mut tree_arcs = 0;
        for a in 0..total {
            if self.state[a] == TREE {
                deg[self.source[a] + 1] += 1;
                deg[self.target[a] + 1] += 1;
                tree_arcs += 1;
            }
        }
        if tree_arcs != n {
            return Err(FlowError::BadBasis);
        }
        for i in 0..=n {
            deg[i + 1] += deg[i];
        }
        let mut adj = vec![0usize; 2 * n];
        let mut fill = deg.clone();
        for a in 0..total {
            if self.state[a] == TREE {
                for v in [self.source[a], self.target[a]] {
                    adj[fill[v]] = a;
                    fill[v] += 1;
                }
            }
        }
        // Breadth-first from the root: parents, depths and an order for the flows.
        let root = n;
        let mut order = Vec::with_capacity(n + 1);
        let mut seen = vec![false; n + 1];
        seen[root] = true;
        order.push(root);
        let mut head = 0;
        while head < order.len() {
            let u = order[head];
            head += 1;
            for &a in &adj[deg[u]..deg[u + 1]] {
                let v = if self.source[a] == u {
                    self.target[a]
                } else {
                    self.source[a]
                };
                if seen[v] {
                    continue;
                }
                seen[v] = true;
                self.parent[v] = u;
                self.pred[v] = a;
                self.dir[v] = if self.source[a] == v { 1 } else { -1 };
                self.depth[v] = self.depth[u] + 1;
                self.attach(v, u);
                order.push(v);
            }
        }
        if order.len() != n + 1 {
            return Err(FlowError::BadBasis);
        }
        // Flows: nonbasic at their bound, then each tree arc carries its subtree's excess.
        let mut excess: Vec<f64> = self.net.supply.clone();
        excess.push(0.0);
        for a in 0..total {
            let f = match self.state[a] {
                UPPER if self.cap[a].is_finite() => self.cap[a],
                UPPER => return Err(FlowError::BadBasis),
                _ => 0.0,
            };
            self.flow[a] = f;
            if f != 0.0 {
                excess[self.source[a]] -= f;
                excess[self.target[a]] += f;
            }
        }
        for &v in order.iter().skip(1).rev() {
            let a = self.pred[v];
            // dir +1: arc v → parent carries v's excess up; −1: parent → v carries its deficit.
            let f = f64::from(self.dir[v]) * excess[v];
            let tol = 1e-9 * (1.0 + excess[v].abs());
            if f < -tol || f > self.cap[a] + tol {
                return Err(FlowError::BadBasis);
            }
            self.flow[a] = f.clamp(0.0, self.cap[a]);
            excess[self.parent[v]] += excess[v];
        }
        for &v in order.iter().skip(1) {
            self.set_potential(v);
        }
        Ok(())
    }

    fn set_potential(&mut self, v: usize) {
        let (p, a) = (self.parent[v], self.pred[v]);
        // Tree arcs have zero reduced cost c + π_source − π_target.
        self.pi[v] = if self.dir[v] == 1 {
            self.pi[p] - self.cost[a]
        } else {
            self.pi[p] + self.cost[a]
        };
    }

    fn attach(&mut self, v: usize, p: usize) {
        let head = self.first_child[p];
        self.next_sib[v] = head;
        self.prev_sib[v] = NONE;
        if head != NONE {
            self.prev_sib[head] = v;
        }
        self.first_child[p] = v;
    }

    fn detach(&mut self, v: usize) {
        let p = self.parent[v];
        let (prev, next) = (self.prev_sib[v], self.next_sib[v]);
        if prev == NONE {
            self.first_child[p] = next;
        } else {
            self.next_sib[prev] = next;
        }
        if next != NONE {
            self.prev_sib[next] = prev;
        }
    }

    fn reduced(&self, a: usize) -> f64 {
        self.cost[a] + self.pi[self.source[a]] - self.pi[self.target[a]]
    }

    /// Block search: the most violating arc of the first block holding one.
    fn entering(&mut self) -> Option<usize> {
        let total = self.m + self.n;
        let mut best = NONE;
        let mut best_val = -self.eps;
        let mut scanned = 0;
        let mut in_block = 0;
        let mut a = self.next_arc;
        while scanned < total {
            let s = self.state[a];
            if s != TREE {
                let v = f64::from(s) * self.reduced(a);
                if v < best_val {
                    best_val = v;
                    best = a;
                }
            }
            scanned += 1;
            in_block += 1;
            a += 1;
            if a == total {
                a = 0;
            }
            if in_block == self.block {
                if best != NONE {
                    break;
                }
                in_block = 0;
            }
        }
        self.next_arc = a;
        (best != NONE).then_some(best)
    }

    fn join(&self, mut u: usize, mut v: usize) -> usize {
        while u != v {
            match self.depth[u].cmp(&self.depth[v]) {
                std::cmp::Ordering::Greater => u = self.parent[u],
                std::cmp::Ordering::Less => v = self.parent[v],
                std::cmp::Ordering::Equal => {
                    u = self.parent[u];
                    v = self.parent[v];
                }
            }
        }
        u
    }

    fn run(&mut self) -> Result<usize, FlowError> {
        let limit = 50 * (self.m + self.n) + 10_000;
        let mut pivots = 0;
        while let Some(a) = self.entering() {
            self.pivot(a)?;
            pivots += 1;
            if pivots > limit {
                return Err(FlowError::PivotLimit);
            }
        }
        Ok(pivots)
    }

    /// Room to push along the tree arc above `u` in the cycle's direction (`along` = +1 when
    /// the cycle's flow runs with the arc), and whether using it up leaves the arc at its
    /// upper bound.
    fn room(&self, u: usize, along: i8) -> (f64, bool) {
        let a = self.pred[u];
        if self.dir[u] == along {
            (self.cap[a] - self.flow[a], true)
        } else {
            (self.flow[a], false)
        }
    }

    fn pivot(&mut self, in_arc: usize) -> Result<(), FlowError> {
        // The cycle runs first → second over the entering arc, then second up to the join,
        // then down to first. Cunningham's rule takes the last blocking arc in that order
        // from the join, which keeps the tree strongly feasible.
        let (first, second) = if self.state[in_arc] == LOWER {
            (self.source[in_arc], self.target[in_arc])
        } else {
            (self.target[in_arc], self.source[in_arc])
        };
        let join = self.join(first, second);
        let mut delta = self.cap[in_arc];
        let mut out = NONE;
        let mut out_upper = false;
        let mut side = 0;
        let mut u = first;
        while u != join {
            // Down from the join to first: flow runs parent → u.
            let (d, upper) = self.room(u, -1);
            if d < delta {
                (delta, out, out_upper, side) = (d, u, upper, 1);
            }
            u = self.parent[u];
        }
        let mut u = second;
        while u != join {
            // Up from second to the join: flow runs u → parent.
            let (d, upper) = self.room(u, 1);
            if d <= delta {
                (delta, out, out_upper, side) = (d, u, upper, 2);
            }
            u = self.parent[u];
        }
        if delta.is_infinite() {
            return Err(FlowError::Unbounded);
        }
        if delta > 0.0 {
            let val = f64::from(self.state[in_arc]) * delta;
            self.flow[in_arc] += val;
            let mut u = self.source[in_arc];
            while u != join {
                let a = self.pred[u];
                self.flow[a] -= f64::from(self.dir[u]) * val;
                u = self.parent[u];
            }
            let mut u = self.target[in_arc];
            while u != join {
                let a = self.pred[u];
                self.flow[a] += f64::from(self.dir[u]) * val;
                u = self.parent[u];
            }
        }
        if side == 0 {
            // The entering arc itself blocks: it moves to its other bound.
            self.state[in_arc] = -self.state[in_arc];
            self.flow[in_arc] = if self.state[in_arc] == UPPER {
                self.cap[in_arc]
            } else {
                0.0
            };
            return Ok(());
        }
        let leaving = self.pred[out];
        self.state[leaving] = if out_upper { UPPER } else { LOWER };
        self.flow[leaving] = if out_upper { self.cap[leaving] } else { 0.0 };
        self.state[in_arc] = TREE;
        // u_in: the entering arc's end inside the subtree that is cut off at `out`.
        let (u_in, v_in) = if side == 1 {
            (first, second)
        } else {
            (second, first)
        };
        self.rehang(in_arc, u_in, v_in, out);
        Ok(())
    }

    /// Reverses the tree path u_in … out so that u_in hangs from v_in by `in_arc`, then
    /// refreshes depths and potentials of the moved subtree.
    fn rehang(&mut self, in_arc: usize, u_in: usize, v_in: usize, out: usize) {
        let mut u = u_in;
        let mut new_parent = v_in;
        let mut new_pred = in_arc;
        loop {
            let old_parent = self.parent[u];
            let old_pred = self.pred[u];
            self.detach(u);
            self.parent[u] = new_parent;
            self.pred[u] = new_pred;
            self.dir[u] = if self.source[new_pred] == u { 1 } else { -1 };
            self.attach(u, new_parent);
            if u == out {
                break;
            }
            new_parent = u;
            new_pred = old_pred;
            u = old_parent;
        }
        let mut stack = vec![u_in];
        while let Some(v) = stack.pop() {
            self.depth[v] = self.depth[self.parent[v]] + 1;
            self.set_potential(v);
            let mut c = self.first_child[v];
            while c != NONE {
                stack.push(c);
                c = self.next_sib[c];
            }
        }
    }

    fn finish(self, pivots: usize) -> Result<Optimum, FlowError> {
        let scale: f64 = 1.0 + self.net.supply.iter().map(|s| s.abs()).sum::<f64>();
        if (self.m..self.m + self.n).any(|a| self.flow[a] > 1e-9 * scale) {
            return Err(FlowError::Infeasible);
        }
        let flow: Vec<f64> = self.flow[..self.m].to_vec();
        let cost = flow.iter().zip(&self.net.cost).map(|(f, c)| f * c).sum();
        Ok(Optimum {
            flow,
            cost,
            pivots,
            basis: Basis {
                state: self.state,
                up: self.up,
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-7 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn a_transport_problem_takes_the_cheap_routes() {
        // Two sources (3, 2), two sinks (−4, −1); costs s0→t0 1, s0→t1 4, s1→t0 3, s1→t1 1.
        // Optimum: s0→t0 3, s1→t0 1, s1→t1 1: 3 + 3 + 1 = 7.
        let mut net = Network::with_nodes(4);
        net.supply = vec![3.0, 2.0, -4.0, -1.0];
        net.arc(0, 2, f64::INFINITY, 1.0);
        net.arc(0, 3, f64::INFINITY, 4.0);
        net.arc(1, 2, f64::INFINITY, 3.0);
        net.arc(1, 3, f64::INFINITY, 1.0);
        let o = solve(&net, None).expect("optimal");
        assert!(close(o.cost, 7.0), "{}", o.cost);
        assert!(close(o.flow[0], 3.0) && close(o.flow[2], 1.0) && close(o.flow[3], 1.0));
    }

    #[test]
    fn capacities_and_negative_costs_are_respected() {
        // 0 → 1 → 2 with a capped negative-cost shortcut 0 → 2 (cap 1.5, cost −2) and the
        // long way costing 1 + 1: 1.5 units take the shortcut, 0.5 the long way: −3 + 1 = −2.
        let mut net = Network::with_nodes(3);
        net.supply = vec![2.0, 0.0, -2.0];
        net.arc(0, 1, f64::INFINITY, 1.0);
        net.arc(1, 2, f64::INFINITY, 1.0);
        net.arc(0, 2, 1.5, -2.0);
        let o = solve(&net, None).expect("optimal");
        assert!(close(o.cost, -2.0), "{}", o.cost);
        assert!(close(o.flow[2], 1.5));
    }

    #[test]
    fn a_forest_basis_is_started_from() {
        // 0 → 1 → 2 carries 0's supply of 3 to 2; the direct arc 0 → 2 costs more. The
        // forest of the two cheap arcs is the optimal tree, so a solve from it makes at most
        // one (degenerate) pivot, where the artificial start needs more.
        let mut net = Network::with_nodes(3);
        net.supply = vec![3.0, 0.0, -3.0];
        let a = net.arc(0, 1, f64::INFINITY, 1.0);
        let b = net.arc(1, 2, 5.0, 1.0);
        net.arc(0, 2, f64::INFINITY, 3.0);
        let forest = Basis::from_forest(&net, &[a, b], &[]).unwrap();
        let warm = solve(&net, Some(&forest)).unwrap();
        let cold = solve(&net, None).unwrap();
        assert!(
            warm.pivots <= 1 && warm.pivots < cold.pivots,
            "{} / {}",
            warm.pivots,
            cold.pivots
        );
        assert!(close(warm.cost, 6.0) && close(cold.cost, 6.0));
        assert!(close(warm.flow[a], 3.0) && close(warm.flow[b], 3.0));
        // A forest with a cycle is refused.
        let back = net.arc(2, 0, 1.0, 0.0);
        assert!(Basis::from_forest(&net, &[a, b, back], &[]).is_none());
    }

    #[test]
    fn unroutable_supply_is_infeasible() {
        let mut net = Network::with_nodes(2);
        net.supply = vec![2.0, -2.0];
        net.arc(0, 1, 1.0, 1.0);
        assert_eq!(solve(&net, None).err(), Some(FlowError::Infeasible));
    }

    #[test]
    fn an_uncapacitated_negative_cycle_is_unbounded() {
        let mut net = Network::with_nodes(2);
        net.arc(0, 1, f64::INFINITY, -1.0);
        net.arc(1, 0, f64::INFINITY, 0.5);
        assert_eq!(solve(&net, None).err(), Some(FlowError::Unbounded));
    }

    /// A small deterministic generator (no dependency on the rand crate's stream).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn random_network(seed: u64) -> Network {
        let mut r = Lcg(seed);
        let n = 6 + (r.next() * 10.0) as usize;
        let mut net = Network::with_nodes(n);
        // A hub joined both ways to every node keeps it feasible; extra random arcs.
        for v in 1..n {
            net.arc(0, v, f64::INFINITY, 5.0 + 10.0 * r.next());
            net.arc(v, 0, f64::INFINITY, 5.0 + 10.0 * r.next());
        }
        for _ in 0..3 * n {
            let (a, b) = (
                (r.next() * n as f64) as usize,
                (r.next() * n as f64) as usize,
            );
            if a != b {
                // Negative costs only on capped arcs, so no cycle is unbounded.
                if r.next() < 0.5 {
                    net.arc(a, b, f64::INFINITY, 4.0 * r.next());
                } else {
                    net.arc(a, b, 3.0 * r.next(), 4.0 * r.next() - 2.0);
                }
            }
        }
        let mut total = 0.0;
        for v in 1..n {
            let s = (10.0 * r.next() - 5.0).round() / 2.0;
            net.supply[v] = s;
            total += s;
        }
        net.supply[0] = -total;
        net
    }

    /// Optimality certificate: flows conserve supply within bounds and no arc has a
    /// reduced cost that would improve (complementary slackness with potentials from a
    /// Bellman–Ford on the residual graph, which also finds no negative cycle).
    fn assert_optimal(net: &Network, o: &Optimum) {
        let n = net.nodes();
        let mut bal = net.supply.clone();
        for a in 0..net.arcs() {
            let f = o.flow[a];
            assert!(f >= -1e-9 && f <= net.cap[a] + 1e-9, "arc {a} flow {f}");
            bal[net.source[a] as usize] -= f;
            bal[net.target[a] as usize] += f;
        }
        assert!(bal.iter().all(|b| b.abs() < 1e-7), "{bal:?}");
        let mut dist = vec![0.0f64; n];
        for round in 0..=n {
            let mut changed = false;
            for a in 0..net.arcs() {
                let (s, t, c) = (net.source[a] as usize, net.target[a] as usize, net.cost[a]);
                if o.flow[a] < net.cap[a] - 1e-9 && dist[s] + c < dist[t] - 1e-9 {
                    dist[t] = dist[s] + c;
                    changed = true;
                }
                if o.flow[a] > 1e-9 && dist[t] - c < dist[s] - 1e-9 {
                    dist[s] = dist[t] - c;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
            assert!(round < n, "the residual graph has a negative cycle");
        }
    }

    #[test]
    fn random_networks_are_solved_to_optimality_cold_and_warm() {
        for seed in 0..200 {
            let mut net = random_network(seed);
            let cold = solve(&net, None).expect("feasible by construction");
            assert_optimal(&net, &cold);
            // New costs on the same network: the kept basis is primal feasible; re-optimise.
            let mut r = Lcg(seed + 10_000);
            for (c, cap) in net.cost.iter_mut().zip(&net.cap) {
                let shift = 2.0 * r.next() - 1.0;
                *c = if cap.is_finite() {
                    *c + shift
                } else {
                    (*c + shift).max(0.0)
                };
            }
            let fresh = solve(&net, None).expect("feasible");
            let warm = solve(&net, Some(&cold.basis)).expect("feasible");
            assert_optimal(&net, &warm);
            assert!(
                close(warm.cost, fresh.cost),
                "seed {seed}: {} vs {}",
                warm.cost,
                fresh.cost
            );
        }
    }

    #[test]
    fn a_basis_of_another_network_is_not_used() {
        let a = solve(&random_network(1), None).expect("feasible");
        let other = random_network(2);
        let o = solve(&other, Some(&a.basis)).expect("falls back to a cold start");
        assert_optimal(&other, &o);
    }
}
