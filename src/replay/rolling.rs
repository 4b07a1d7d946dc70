//! The rolling replay's driver: copies the stored network into a scratch database, then
//! lives the truth's months through the product — receipts booked against their lines, a
//! forecast from the history so far, a plan run that supersedes the last, the lines due
//! released, demand served and recorded as history — while a [`World`] books the same
//! events by the pure rules and must agree with the ledger at every month's end. The
//! min/max baseline lives through the same [`World`] rules in memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;

use super::minmax::{MinMax, MonthDemand, WINDOW};
use super::report::{inventory_at, PolicyReport, RollingReport};
use super::world::{Line, Net, Served, World};
use super::{read_truth, Calendar, ReplayError, Truth};
use crate::catalog::CodingRule;
use crate::db::Db;
use crate::forecast::Month;
use crate::forecast_runs::{self, RunOptions};
use crate::interchange::bulk::{BulkInsert, Val};
use crate::plan::{LocId, PartId, PlanModel};
use crate::plan_runs::{self, NetworkSnapshot};
use crate::stock::{self, Movement, MovementKind};
use crate::units::Qty;
use crate::{pipeline, proposals, sql_fetch_all, sql_fetch_optional};

/// Who the replay acts as, in the scratch database's audit log.
const ACTOR: &str = "replay";

pub struct RollingOptions {
    /// `part_code,station_code,month,demand`, the first month the one after the history.
    pub truth: PathBuf,
    pub model: PlanModel,
    pub model_text: String,
    /// Safety factors of the baseline's curve.
    pub z: Vec<f64>,
    /// Where to write every line the plan released (proposals.csv format).
    pub released_out: Option<PathBuf>,
    /// Replay this released file instead of planning (any simulator's lines, or ours).
    pub replay_released: Option<PathBuf>,
    /// Keep the scratch database here (default: a temporary file, removed after).
    pub scratch: Option<PathBuf>,
    /// Only the first months of the truth.
    pub months: Option<usize>,
    pub progress: bool,
}

/// Replays the truth against the plan and the baseline; see the module docs.
pub async fn run(
    source: &Db,
    rule: &CodingRule,
    options: &RollingOptions,
) -> Result<RollingReport, ReplayError> {
    let started = Instant::now();
    let temp = tempfile::tempdir().map_err(|e| ReplayError::Copy(e.to_string()))?;
    let scratch_path = options
        .scratch
        .clone()
        .unwrap_or_else(|| temp.path().join("replay.db"));
    let scratch = copy_network(source, rule, &scratch_path, temp.path()).await?;
    let history_end = last_history_month(&scratch).await?;
    let calendar = Calendar::new(history_end.plus(1));
    let snapshot = plan_runs::network_snapshot(&scratch, calendar.first_day(0)).await?;
    let truth = load_truth(&options.truth, &snapshot, calendar, options.months)?;
    let net = Net::new(&snapshot.instance, &options.model);
    let opening_lines = opening_lines(&scratch, &snapshot, calendar).await?;
    let history = baseline_history(&scratch, &snapshot, calendar).await?;

    let mut baseline = Vec::new();
    for &z in &options.z {
        let mut world = World::new(
            &snapshot.instance,
            &snapshot.available,
            opening_lines.clone(),
        );
        let mut policy = MinMax::new(z, history.clone());
        for (m, demand) in truth.months.iter().enumerate() {
            world.book_due(m);
            let lines = policy.decide(&net, &world, &calendar, m);
            world.release_month(&net, lines, m);
            world.serve(&net, m, demand);
            policy.observe(calendar.calendar_month(m), demand);
            world.close_month(&net, m);
        }
        baseline.push(PolicyReport::of(
            "min_max",
            Some(z),
            &net,
            &world,
            &calendar,
            &[],
        ));
    }

    let mut world = World::new(&snapshot.instance, &snapshot.available, opening_lines);
    let (name, projected) = match &options.replay_released {
        Some(file) => {
            let lines = read_released(file, &snapshot, calendar)?;
            replay_lines(&net, &mut world, &truth, lines);
            ("released file", Vec::new())
        }
        None => {
            let mut plan =
                PlanSide::new(&scratch, &snapshot, &net, calendar, options, &truth).await?;
            let projected = plan.live(&mut world, &truth).await?;
            if let Some(path) = &options.released_out {
                write_released(path, &plan.released)?;
            }
            ("plan", projected)
        }
    };
    let plan = PolicyReport::of(name, None, &net, &world, &calendar, &projected);
    scratch.close().await;
    Ok(RollingReport {
        model: options.model.name.clone(),
        first_month: calendar.first.to_string(),
        months: truth.months.len(),
        monthly_budget: super::minmax::monthly_budget(&options.model),
        order_cost_per_line: options.model.order_cost,
        holding_rate_per_year: options.model.holding_rate_per_year,
        baseline_inventory_at_plan_fill: inventory_at(&baseline, plan.fill_24h),
        plan,
        baseline,
        unmatched_truth_rows: truth.unmatched_rows,
        unmatched_truth_units: truth.unmatched_units,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// A fresh SQLite file with the source's network, history, stock and open lines: the
/// replay writes receipts, plans and demand, and none of it may reach the source.
async fn copy_network(
    source: &Db,
    rule: &CodingRule,
    path: &Path,
    work: &Path,
) -> Result<Db, ReplayError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(&name);
    }
    let dir = work.join("network");
    crate::interchange::export_dir(source, &dir)
        .await
        .map_err(|e| ReplayError::Copy(e.to_string()))?;
    let scratch = Db::connect(&format!("sqlite://{}", path.display())).await?;
    crate::interchange::import_dir(&scratch, &dir, rule)
        .await
        .map_err(|e| ReplayError::Copy(e.to_string()))?;
    carry_open_lines(source, &scratch).await?;
    Ok(scratch)
}

/// The source's open lines, as released lines of one carried run in the scratch copy (with
/// their on-order and in-transit entries), so the replay starts with the real pipeline.
async fn carry_open_lines(source: &Db, scratch: &Db) -> Result<(), ReplayError> {
    type Row = (
        String,
        String,
        Option<String>,
        String,
        i64,
        NaiveDate,
        NaiveDate,
        i64,
        String,
    );
    let mut conn = source.acquire().await?;
    let rows = sql_fetch_all!(
        Row,
        conn.conn(),
        "select p.kind, pt.code, f.code, t.code, p.qty - p.received_qty, p.order_by, p.arrive_on,
                p.unit_cost_minor, p.currency
         from proposals p join parts pt on pt.id = p.part_id join locations t on t.id = p.to_id
         left join locations f on f.id = p.from_id
         where p.status = 'released' and p.received_qty < p.qty order by p.id"
    )?;
    drop(conn);
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = scratch.begin().await?;
    let (run,) = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "insert into plan_runs (model_name, model_toml, status, created_at)
         values ('carried pipeline', '', 'solved', $1) returning id",
        chrono::Utc::now()
    )?
    .ok_or_else(|| ReplayError::Copy("no plan run id".into()))?;
    for (i, (kind, part, from, to, qty, order_by, arrive_on, cost, currency)) in
        rows.into_iter().enumerate()
    {
        let part_id = copied_id(&mut tx, "parts", &part).await?;
        let to_id = copied_id(&mut tx, "locations", &to).await?;
        let from_id = match from {
            Some(code) => Some(copied_id(&mut tx, "locations", &code).await?),
            None => None,
        };
        let (proposal,) = sql_fetch_optional!(
            (i64,),
            tx.conn(),
            "insert into proposals (plan_run_id, kind, part_id, from_id, to_id, qty, order_by, arrive_on,
                 unit_cost_minor, currency, credit_impact_minor, status, version, reason_json, released_on)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 'released', 1, '{}', $7) returning id",
            run,
            &kind,
            part_id,
            from_id,
            to_id,
            qty,
            order_by,
            arrive_on,
            cost,
            &currency
        )?
        .ok_or_else(|| ReplayError::Copy("no proposal id".into()))?;
        let movement = Movement {
            kind: if kind == "purchase" {
                MovementKind::Order
            } else {
                MovementKind::TransferShip
            },
            part_id,
            location_id: to_id,
            qty: Qty::new(qty).map_err(|e| ReplayError::Copy(e.to_string()))?,
            idempotency_key: format!("carried:{i}"),
            reference: Some(format!("proposal:{proposal}")),
            reason: Some("open line carried into the replay".into()),
            actor: ACTOR.into(),
        };
        stock::append(&mut tx, &movement)
            .await
            .map_err(|e| ReplayError::Copy(e.to_string()))?;
    }
    tx.commit().await?;
    Ok(())
}

/// The id of a code in the scratch copy (`table` is parts or locations).
async fn copied_id(tx: &mut crate::db::Tx, table: &str, code: &str) -> Result<i64, ReplayError> {
    let sql = format!("select id from {table} where code = $1");
    sql_fetch_optional!((i64,), tx.conn(), &sql, code)?
        .map(|r| r.0)
        .ok_or_else(|| ReplayError::Copy(format!("{code} is missing from the copy's {table}")))
}

async fn last_history_month(db: &Db) -> Result<Month, ReplayError> {
    let mut conn = db.acquire().await?;
    let last = sql_fetch_optional!(
        (Option<NaiveDate>,),
        conn.conn(),
        "select max(opened_on) from faults"
    )?
    .and_then(|r| r.0)
    .ok_or_else(|| ReplayError::Copy("the stored network has no fault history".into()))?;
    Ok(Month::of_date(last))
}

fn load_truth(
    path: &Path,
    snapshot: &NetworkSnapshot,
    calendar: Calendar,
    months: Option<usize>,
) -> Result<Truth, ReplayError> {
    let inst = &snapshot.instance;
    let parts: HashMap<String, PartId> = inst
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.code.as_str().to_owned(), PartId(i as u32)))
        .collect();
    let stations: HashMap<String, LocId> = inst
        .locations
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind == crate::network::LocationKind::Station)
        .map(|(i, l)| (l.code.clone(), LocId(i as u32)))
        .collect();
    let mut truth = read_truth(path, &parts, &stations)?;
    let first = truth.first.unwrap_or(calendar.first);
    if first != calendar.first {
        return Err(ReplayError::NotAfterHistory {
            truth: first,
            history: calendar.first.plus(-1),
            expected: calendar.first,
        });
    }
    if let Some(n) = months {
        truth.months.truncate(n);
    }
    Ok(truth)
}

async fn opening_lines(
    db: &Db,
    snapshot: &NetworkSnapshot,
    calendar: Calendar,
) -> Result<Vec<Line>, ReplayError> {
    let (parts, locs) = id_maps(snapshot);
    let mut conn = db.acquire().await?;
    let open = pipeline::open_lines(conn.conn()).await?;
    Ok(open
        .into_iter()
        .filter_map(|l| {
            Some(Line {
                part: *parts.get(&l.part_id)?,
                from: l.from_id.and_then(|f| locs.get(&f).copied()),
                to: *locs.get(&l.to_id)?,
                qty: l.open,
                released: 0,
                arrives: calendar.index_of(l.arrive_on),
                proposal_id: Some(l.proposal_id),
            })
        })
        .collect())
}

fn id_maps(snapshot: &NetworkSnapshot) -> (HashMap<i64, PartId>, HashMap<i64, LocId>) {
    let parts = snapshot
        .part_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, PartId(i as u32)))
        .collect();
    let locs = snapshot
        .location_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, LocId(i as u32)))
        .collect();
    (parts, locs)
}

/// The last [`WINDOW`] months of demand per (part, station) before the replay, for the
/// baseline; a superseded part's demand counts for its replacement.
async fn baseline_history(
    db: &Db,
    snapshot: &NetworkSnapshot,
    calendar: Calendar,
) -> Result<Vec<(u32, MonthDemand)>, ReplayError> {
    let (parts, locs) = id_maps(snapshot);
    let from = calendar.first.plus(-(WINDOW as i32));
    let from_day = NaiveDate::from_ymd_opt(from.year(), from.month(), 1).unwrap_or_default();
    let mut conn = db.acquire().await?;
    let replaced: HashMap<i64, i64> = sql_fetch_all!(
        (i64, i64),
        conn.conn(),
        "select id, replaced_by_id from parts where replaced_by_id is not null"
    )?
    .into_iter()
    .collect();
    let rows = sql_fetch_all!(
        (i64, i64, NaiveDate, i64),
        conn.conn(),
        "select part_id, station_id, opened_on, qty from faults
         where part_id is not null and qty > 0 and opened_on >= $1 and opened_on < $2",
        from_day,
        calendar.first_day(0)
    )?;
    let mut months: Vec<(u32, MonthDemand)> = (0..WINDOW)
        .map(|k| (from.plus(k as i32).month(), HashMap::new()))
        .collect();
    for (part, station, day, qty) in rows {
        let mut current = part;
        for _ in 0..16 {
            match replaced.get(&current) {
                Some(&next) => current = next,
                None => break,
            }
        }
        let (Some(&p), Some(&s)) = (parts.get(&current), locs.get(&station)) else {
            continue;
        };
        let k = Month::of_date(day).since(from);
        if let Some(slot) = usize::try_from(k).ok().and_then(|k| months.get_mut(k)) {
            *slot.1.entry((p, s)).or_insert(0) += qty;
        }
    }
    Ok(months)
}

/// Lives a fixed list of released lines (a `--released` file) through the same rules.
/// Within a month, lines go in the file's order (the order they were released in).
fn replay_lines(net: &Net, world: &mut World, truth: &Truth, mut lines: Vec<Line>) {
    lines.sort_by_key(|l| l.released);
    let mut next = 0;
    for (m, demand) in truth.months.iter().enumerate() {
        world.book_due(m);
        let start = next;
        while next < lines.len() && lines[next].released <= m {
            next += 1;
        }
        world.release_month(net, lines[start..next].to_vec(), m);
        world.serve(net, m, demand);
        world.close_month(net, m);
    }
}

/// One line the plan released, for the `--released` file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ReleasedRow {
    plan_id: i64,
    proposal_id: i64,
    kind: String,
    part_code: String,
    supplier_code: Option<String>,
    from_code: Option<String>,
    to_code: String,
    qty: i64,
    /// The day it was released.
    order_by: NaiveDate,
    arrive_on: NaiveDate,
    unit_cost: String,
    currency: String,
    status: String,
}

fn write_released(path: &Path, rows: &[ReleasedRow]) -> Result<(), ReplayError> {
    let file_err = |e: &dyn std::fmt::Display| ReplayError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let mut w = csv::Writer::from_path(path).map_err(|e| file_err(&e))?;
    for r in rows {
        w.serialize(r).map_err(|e| file_err(&e))?;
    }
    w.flush().map_err(|e| file_err(&e))
}

/// Reads a proposals.csv of released lines: each is released in the month of its
/// `order_by` and arrives in the month of its `arrive_on`.
fn read_released(
    path: &Path,
    snapshot: &NetworkSnapshot,
    calendar: Calendar,
) -> Result<Vec<Line>, ReplayError> {
    let inst = &snapshot.instance;
    let part: HashMap<&str, PartId> = inst
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.code.as_str(), PartId(i as u32)))
        .collect();
    let loc: HashMap<&str, LocId> = inst
        .locations
        .iter()
        .enumerate()
        .map(|(i, l)| (l.code.as_str(), LocId(i as u32)))
        .collect();
    let shown = path.display().to_string();
    let mut reader = csv::Reader::from_path(path).map_err(|e| ReplayError::File {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    let mut lines = Vec::new();
    for (i, row) in reader.deserialize::<ReleasedRow>().enumerate() {
        let line = i as u64 + 2;
        let bad = |field, why: String| ReplayError::Row {
            path: shown.clone(),
            line,
            field,
            why,
        };
        let row = row.map_err(|e| bad("row", e.to_string()))?;
        let p = *part
            .get(row.part_code.as_str())
            .ok_or_else(|| bad("part_code", format!("unknown part {}", row.part_code)))?;
        let to = *loc
            .get(row.to_code.as_str())
            .ok_or_else(|| bad("to_code", format!("unknown location {}", row.to_code)))?;
        let from = match row.from_code.as_deref() {
            Some(code) if row.kind == "transfer" => Some(
                *loc.get(code)
                    .ok_or_else(|| bad("from_code", format!("unknown location {code}")))?,
            ),
            _ => None,
        };
        lines.push(Line {
            part: p,
            from,
            to,
            qty: row.qty,
            released: calendar.index_of(row.order_by),
            arrives: calendar.index_of(row.arrive_on),
            proposal_id: Some(row.proposal_id),
        });
    }
    Ok(lines)
}

/// The plan's side: the scratch database the product runs in, and what it released.
struct PlanSide<'a> {
    db: &'a Db,
    snapshot: &'a NetworkSnapshot,
    net: &'a Net<'a>,
    calendar: Calendar,
    options: &'a RollingOptions,
    parts: HashMap<i64, PartId>,
    locs: HashMap<i64, LocId>,
    /// An equipment unit per (station, part) to book demand on as history.
    equipment: HashMap<(LocId, PartId), i64>,
    released: Vec<ReleasedRow>,
}

impl<'a> PlanSide<'a> {
    async fn new(
        db: &'a Db,
        snapshot: &'a NetworkSnapshot,
        net: &'a Net<'a>,
        calendar: Calendar,
        options: &'a RollingOptions,
        truth: &Truth,
    ) -> Result<PlanSide<'a>, ReplayError> {
        let (parts, locs) = id_maps(snapshot);
        let equipment = equipment_for_history(db, &parts, &locs, truth).await?;
        Ok(PlanSide {
            db,
            snapshot,
            net,
            calendar,
            options,
            parts,
            locs,
            equipment,
            released: Vec::new(),
        })
    }

    /// Month by month (DESIGN §11); returns each month's projected fill.
    async fn live(
        &mut self,
        world: &mut World,
        truth: &Truth,
    ) -> Result<Vec<Option<f64>>, ReplayError> {
        let bar = if self.options.progress {
            let bar = indicatif::ProgressBar::new(truth.months.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} months, {elapsed} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_prefix("replaying the plan");
            Some(bar)
        } else {
            None
        };
        let mut projected = Vec::new();
        for (m, demand) in truth.months.iter().enumerate() {
            let due = world.book_due(m);
            self.receive(&due).await?;
            let fill = self.plan_and_release(world, m).await?;
            projected.push(fill);
            let served = world.serve(self.net, m, demand);
            self.record_demand(m, &served).await?;
            world.close_month(self.net, m);
            self.check(world, m).await?;
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(format!(
                    "{}: 24-h fill {:.1} %",
                    self.calendar.month(m),
                    100.0 * world.months[m].fill.rate_24h()
                ));
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(projected)
    }

    fn code(&self, loc: LocId) -> String {
        self.snapshot.instance.locations[loc.ix()].code.clone()
    }

    async fn receive(&self, due: &[Line]) -> Result<(), ReplayError> {
        let receipts: Vec<pipeline::Receipt> = due
            .iter()
            .filter_map(|l| {
                Some(pipeline::Receipt {
                    proposal_id: l.proposal_id?,
                    location_code: self.code(l.to),
                    qty: Qty::new(l.qty).ok()?,
                    idempotency_key: "replay".into(),
                    part_code: None,
                })
            })
            .collect();
        if !receipts.is_empty() {
            pipeline::receive_all(self.db, ACTOR, receipts).await?;
        }
        Ok(())
    }

    /// Forecasts from the history through last month, plans from this month (superseding
    /// last month's run), and releases the lines whose order-by date is this month or past.
    async fn plan_and_release(
        &mut self,
        world: &mut World,
        m: usize,
    ) -> Result<Option<f64>, ReplayError> {
        let forecast = forecast_runs::run_and_store(
            self.db,
            &RunOptions {
                horizon: self.options.model.periods,
                origin: Some(self.calendar.month(m)),
                ..RunOptions::default()
            },
        )
        .await?;
        let stored = plan_runs::run_and_store(
            self.db,
            self.options.model.clone(),
            &self.options.model_text,
            Some(&forecast),
        )
        .await?;
        let fill = stored
            .result
            .kpis
            .as_ref()
            .and_then(|k| k.fill_rate_by_period.first().copied());
        let today = self.calendar.first_day(m);
        type Row = (
            i64,
            i64,
            String,
            i64,
            Option<i64>,
            i64,
            i64,
            NaiveDate,
            NaiveDate,
        );
        let due = {
            let mut conn = self.db.acquire().await?;
            sql_fetch_all!(
                Row,
                conn.conn(),
                "select id, version, kind, part_id, from_id, to_id, qty, order_by, arrive_on from proposals
                 where plan_run_id = $1 and status = 'proposed' and order_by < $2 order by order_by, id",
                stored.id,
                self.calendar.first_day(m + 1)
            )?
        };
        let mut candidates = Vec::with_capacity(due.len());
        let mut rows: HashMap<i64, (i64, String, NaiveDate)> = HashMap::new();
        for (id, version, kind, part, from, to, qty, order_by, arrive_on) in due {
            let (Some(&p), Some(&t)) = (self.parts.get(&part), self.locs.get(&to)) else {
                continue;
            };
            let arrive_on = proposals::late_arrival(order_by, arrive_on, today);
            candidates.push(Line {
                part: p,
                from: from.and_then(|f| self.locs.get(&f).copied()),
                to: t,
                qty,
                released: m,
                arrives: self.calendar.index_of(arrive_on),
                proposal_id: Some(id),
            });
            rows.insert(id, (version, kind, arrive_on));
        }
        // The books decide what can go and in which order; the database follows them:
        // each release, and at once the receipt of a line that arrives this month.
        for line in world.release_month(self.net, candidates, m) {
            let Some(id) = line.proposal_id else { continue };
            let (version, kind, arrive_on) = rows.remove(&id).unwrap_or((1, String::new(), today));
            self.release(id, version, today).await?;
            if line.arrives == m {
                self.receive(&[line]).await?;
            }
            let part = &self.snapshot.instance.parts[line.part.ix()];
            self.released.push(ReleasedRow {
                plan_id: stored.id,
                proposal_id: id,
                kind,
                part_code: part.code.as_str().to_owned(),
                supplier_code: line.from.is_none().then(|| part.supplier_code.clone()),
                from_code: line.from.map(|f| self.code(f)),
                to_code: self.code(line.to),
                qty: line.qty,
                order_by: today,
                arrive_on,
                unit_cost: part.unit_cost.to_string(),
                currency: "CNY".into(),
                status: "released".into(),
            });
        }
        Ok(fill)
    }

    /// Approves (finance too, where a transfer waits for credit: the plan kept its credit
    /// rows) and releases one proposal on `today`.
    async fn release(&self, id: i64, version: i64, today: NaiveDate) -> Result<(), ReplayError> {
        let mut view = proposals::approve(self.db, ACTOR, id, version).await?;
        if view.status == "awaiting_finance" {
            view = proposals::finance_decide(self.db, ACTOR, id, view.version, true).await?;
        }
        proposals::release_on(self.db, ACTOR, &[(id, view.version)], today).await?;
        Ok(())
    }

    /// Books the month's service in the ledger (issues at the station and at the sources
    /// that served it within a day) and its whole demand, served or lost, as history.
    async fn record_demand(&self, m: usize, served: &[Served]) -> Result<(), ReplayError> {
        let month = self.calendar.month(m);
        let day = self.calendar.first_day(m) + chrono::Duration::days(14);
        let mut tx = self.db.begin().await?;
        for s in served {
            let part_id = self.snapshot.part_ids[s.part.ix()];
            let station_id = self.snapshot.location_ids[s.station.ix()];
            let takes = std::iter::once((s.station, s.own)).chain(s.fast.iter().copied());
            for (at, qty) in takes.filter(|(_, q)| *q > 0) {
                let location_id = self.snapshot.location_ids[at.ix()];
                let movement = Movement {
                    kind: MovementKind::Issue,
                    part_id,
                    location_id,
                    qty: Qty::new(qty).map_err(|e| ReplayError::Copy(e.to_string()))?,
                    idempotency_key: format!("replay:{month}:{part_id}:{station_id}:{location_id}"),
                    reference: Some(format!("RP-{month}-{}", self.code(s.station))),
                    reason: None,
                    actor: ACTOR.into(),
                };
                stock::append(&mut tx, &movement)
                    .await
                    .map_err(|e| ReplayError::Diverged {
                        month,
                        what: format!("serving {qty} at location id {location_id}: {e}"),
                    })?;
            }
        }
        let mut faults = BulkInsert::new("faults", crate::interchange::FAULT_COLUMNS);
        for s in served {
            let Some(&equipment) = self.equipment.get(&(s.station, s.part)) else {
                continue;
            };
            let part = &self.snapshot.instance.parts[s.part.ix()];
            faults
                .push(
                    tx.conn(),
                    vec![
                        Val::Text(format!("RP-{month}-{}", self.code(s.station))),
                        Val::Date(day),
                        Val::Int(equipment),
                        Val::Int(self.snapshot.location_ids[s.station.ix()]),
                        Val::Text(category_of(part.code.as_str()).into()),
                        Val::Text(part.criticality.as_str().into()),
                        Val::Int(self.snapshot.part_ids[s.part.ix()]),
                        Val::Int(s.demand),
                        Val::Bool(false),
                    ],
                )
                .await?;
        }
        faults.finish(tx.conn()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The ledger's on-hand must equal the replay's books, pair by pair.
    async fn check(&self, world: &World, m: usize) -> Result<(), ReplayError> {
        let mut conn = self.db.acquire().await?;
        let rows = sql_fetch_all!(
            (i64, i64, i64),
            conn.conn(),
            "select part_id, location_id, on_hand - reserved from stock_balance where on_hand > 0"
        )?;
        let mut db: HashMap<(PartId, LocId), i64> = HashMap::new();
        for (part, loc, qty) in rows {
            if let (Some(&p), Some(&l)) = (self.parts.get(&part), self.locs.get(&loc)) {
                db.insert((p, l), qty);
            }
        }
        let books: HashMap<(PartId, LocId), i64> =
            world.shelves().map(|(p, l, q)| ((p, l), q)).collect();
        if db != books {
            let differs = books
                .iter()
                .find(|(k, v)| db.get(k) != Some(v))
                .map(|(k, v)| (*k, Some(*v), db.get(k).copied()))
                .or_else(|| {
                    db.iter()
                        .find(|(k, _)| !books.contains_key(k))
                        .map(|(k, v)| (*k, None, Some(*v)))
                });
            return Err(ReplayError::Diverged {
                month: self.calendar.month(m),
                what: format!("(part, location, books, ledger) = {differs:?}"),
            });
        }
        Ok(())
    }
}

/// The fault category a part's code names (`<line>-<ELE|MEC|HYD|OTH>-…`).
fn category_of(code: &str) -> &'static str {
    match code.split('-').nth(1) {
        Some("ELE") => "electrical",
        Some("MEC") => "mechanical",
        Some("HYD") => "hydraulic",
        _ => "other",
    }
}

/// Per (station, part) cell the truth names: a unit at the station whose model the part
/// fits, else any unit at the station, else any unit the part fits — demand must name a
/// machine to be history. Only the truth's cells are looked up, so the work grows with the
/// demand, not with stations × parts.
async fn equipment_for_history(
    db: &Db,
    parts: &HashMap<i64, PartId>,
    locs: &HashMap<i64, LocId>,
    truth: &Truth,
) -> Result<HashMap<(LocId, PartId), i64>, ReplayError> {
    let mut conn = db.acquire().await?;
    let units = sql_fetch_all!(
        (i64, i64, String),
        conn.conn(),
        "select id, station_id, model from equipment order by id"
    )?;
    let fits = sql_fetch_all!(
        (i64, String),
        conn.conn(),
        "select part_id, equipment_model from fits"
    )?;
    let mut at_model: HashMap<(LocId, &str), i64> = HashMap::new();
    let mut any_of_model: HashMap<&str, i64> = HashMap::new();
    let mut any_at: HashMap<LocId, i64> = HashMap::new();
    for (id, station, model) in &units {
        if let Some(&l) = locs.get(station) {
            at_model.entry((l, model.as_str())).or_insert(*id);
            any_of_model.entry(model.as_str()).or_insert(*id);
            any_at.entry(l).or_insert(*id);
        }
    }
    let mut part_models: HashMap<PartId, Vec<&str>> = HashMap::new();
    for (part, model) in &fits {
        if let Some(&p) = parts.get(part) {
            part_models.entry(p).or_default().push(model.as_str());
        }
    }
    let mut out = HashMap::new();
    for &(p, l, _) in truth.months.iter().flatten() {
        if out.contains_key(&(l, p)) {
            continue;
        }
        let models = part_models.get(&p).map(Vec::as_slice).unwrap_or_default();
        let unit = models
            .iter()
            .find_map(|m| at_model.get(&(l, *m)))
            .or_else(|| any_at.get(&l))
            .or_else(|| models.iter().find_map(|m| any_of_model.get(m)));
        if let Some(&unit) = unit {
            out.insert((l, p), unit);
        }
    }
    Ok(out)
}
