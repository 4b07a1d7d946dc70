//! Forecast and plan runs as background jobs (DESIGN §7): a job row goes queued → running →
//! solved | failed (with the reason kept). The work runs off the async runtime (the forecast
//! and the solver use blocking threads), one job at a time per instance because both use
//! every core, under a time limit. A running job beats a heartbeat; on start an instance
//! fails jobs whose heartbeat stopped (their instance died) and picks up queued ones.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::db::Db;
use crate::forecast_runs::{self, RunOptions};
use crate::plan_runs;
use crate::service::{page_limit, Page, ServiceError};
use crate::{sql_execute, sql_fetch_all, sql_fetch_optional};

/// What a job computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobSpec {
    Forecast {
        horizon: usize,
        history_months: Option<usize>,
    },
    Plan {
        /// A planning model file `<models dir>/<model>.toml`.
        model: String,
    },
}

impl JobSpec {
    fn kind(&self) -> &'static str {
        match self {
            JobSpec::Forecast { .. } => "forecast",
            JobSpec::Plan { .. } => "plan",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobView {
    pub id: i64,
    /// forecast or plan.
    pub kind: String,
    /// queued, running, solved or failed.
    pub status: String,
    /// The job's parameters as submitted.
    pub params_json: String,
    /// The forecast run or plan run it produced.
    pub result_id: Option<i64>,
    pub failure: Option<String>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const SELECT: &str =
    "select id, kind, status, params_json, result_id, failure, actor, created_at, started_at,
        heartbeat_at, finished_at from jobs";

/// How often a running job beats, and how long without a beat means its instance died.
const HEARTBEAT: Duration = Duration::from_secs(10);
const DEAD_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Runs jobs for one instance.
#[derive(Clone)]
pub struct JobRunner {
    db: Db,
    models_dir: PathBuf,
    time_limit: Duration,
    one_at_a_time: Arc<Semaphore>,
}

impl JobRunner {
    pub fn new(db: Db, models_dir: PathBuf, time_limit: Duration) -> Self {
        JobRunner {
            db,
            models_dir,
            time_limit,
            one_at_a_time: Arc::new(Semaphore::new(1)),
        }
    }

    fn check(&self, spec: &JobSpec) -> Result<(), ServiceError> {
        match spec {
            JobSpec::Forecast {
                horizon,
                history_months,
            } => {
                if !(1..=36).contains(horizon) {
                    return Err(ServiceError::invalid("horizon", "must be 1 to 36 months"));
                }
                if history_months.is_some_and(|m| m == 0) {
                    return Err(ServiceError::invalid("history_months", "must be positive"));
                }
            }
            JobSpec::Plan { model } => {
                let plain = !model.is_empty()
                    && model
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !plain {
                    return Err(ServiceError::invalid(
                        "model",
                        "a model name is letters, digits, '-' and '_'",
                    ));
                }
                if !self.model_path(model).is_file() {
                    return Err(ServiceError::invalid(
                        "model",
                        format!("no planning model '{model}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn model_path(&self, model: &str) -> PathBuf {
        self.models_dir.join(format!("{model}.toml"))
    }

    /// Queues a job and starts it in the background.
    pub async fn submit(&self, actor: &str, spec: JobSpec) -> Result<JobView, ServiceError> {
        self.check(&spec)?;
        let params =
            serde_json::to_string(&spec).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut conn = self.db.acquire().await?;
        let (id,) = sql_fetch_optional!(
            (i64,),
            conn.conn(),
            "insert into jobs (kind, status, params_json, actor, created_at)
             values ($1, 'queued', $2, $3, $4) returning id",
            spec.kind(),
            &params,
            actor,
            Utc::now()
        )?
        .ok_or_else(|| ServiceError::Internal("job insert returned nothing".into()))?;
        drop(conn);
        self.spawn(id, spec);
        get(&self.db, id).await
    }

    fn spawn(&self, id: i64, spec: JobSpec) {
        let runner = self.clone();
        tokio::spawn(async move {
            if let Err(e) = runner.run(id, spec).await {
                tracing::error!(job = id, error = %e, "job bookkeeping failed");
            }
        });
    }

    async fn run(&self, id: i64, spec: JobSpec) -> Result<(), ServiceError> {
        let _permit = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut conn = self.db.acquire().await?;
        let now = Utc::now();
        let claimed = sql_execute!(
            conn.conn(),
            "update jobs set status = 'running', started_at = $2, heartbeat_at = $2
             where id = $1 and status = 'queued'",
            id,
            now
        )?;
        drop(conn);
        if claimed == 0 {
            return Ok(());
        }
        tracing::info!(job = id, kind = spec.kind(), "job started");
        let beat = {
            let db = self.db.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(HEARTBEAT);
                loop {
                    every.tick().await;
                    if let Ok(mut conn) = db.acquire().await {
                        let _ = sql_execute!(
                            conn.conn(),
                            "update jobs set heartbeat_at = $2 where id = $1",
                            id,
                            Utc::now()
                        );
                    }
                }
            })
        };
        // The solver gets the time limit itself; the outer limit adds room for loading and
        // storing, and stops waiting if a stage hangs.
        let outer = self.time_limit * 2 + Duration::from_secs(30);
        let outcome = tokio::time::timeout(outer, self.work(&spec)).await;
        beat.abort();
        let (status, result_id, failure) = match outcome {
            Ok(Ok(result)) => ("solved", Some(result), None),
            Ok(Err(why)) => ("failed", None, Some(why)),
            Err(_) => (
                "failed",
                None,
                Some(format!("time limit of {} s exceeded", outer.as_secs())),
            ),
        };
        tracing::info!(job = id, status, ?failure, "job finished");
        let mut conn = self.db.acquire().await?;
        sql_execute!(
            conn.conn(),
            "update jobs set status = $2, result_id = $3, failure = $4, finished_at = $5 where id = $1",
            id,
            status,
            result_id,
            failure,
            Utc::now()
        )?;
        Ok(())
    }

    /// Does the work of a job; the run id it stored or why it failed.
    async fn work(&self, spec: &JobSpec) -> Result<i64, String> {
        match spec {
            JobSpec::Forecast {
                horizon,
                history_months,
            } => {
                let options = RunOptions {
                    horizon: *horizon,
                    history_months: *history_months,
                    ..RunOptions::default()
                };
                let stored = forecast_runs::run_and_store(&self.db, &options)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(stored.id)
            }
            JobSpec::Plan { model } => {
                let (mut plan_model, text) =
                    plan_runs::read_model(&self.model_path(model)).map_err(|e| e.to_string())?;
                plan_model.solver.time_limit_s = plan_model
                    .solver
                    .time_limit_s
                    .min(self.time_limit.as_secs_f64());
                // One plan run at a time across instances: a job waits for the running one
                // (its own time limit bounds the wait).
                let stored = loop {
                    match plan_runs::run_and_store(&self.db, plan_model.clone(), &text, None).await
                    {
                        Err(plan_runs::PlanRunError::Busy { run, .. }) => {
                            tracing::info!(waiting_for = run, "plan run waits for the running one");
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                        other => break other.map_err(|e| e.to_string())?,
                    }
                };
                if let Some(why) = stored
                    .result
                    .reason
                    .as_ref()
                    .filter(|_| stored.proposals == 0)
                {
                    tracing::warn!(run = stored.id, why, "plan run wrote no proposals");
                }
                Ok(stored.id)
            }
        }
    }

    /// On start: fails running jobs whose heartbeat stopped, and runs queued ones.
    pub async fn recover(&self) -> Result<(), ServiceError> {
        let mut conn = self.db.acquire().await?;
        let dead = sql_execute!(
            conn.conn(),
            "update jobs set status = 'failed', failure = 'the instance running it stopped', finished_at = $1
             where status = 'running' and (heartbeat_at is null or heartbeat_at < $2)",
            Utc::now(),
            Utc::now() - DEAD_AFTER
        )?;
        if dead > 0 {
            tracing::warn!(jobs = dead, "marked jobs of a stopped instance as failed");
        }
        let queued = sql_fetch_all!(
            (i64, String),
            conn.conn(),
            "select id, params_json from jobs where status = 'queued' order by id"
        )?;
        for (id, params) in queued {
            match serde_json::from_str::<JobSpec>(&params) {
                Ok(spec) => self.spawn(id, spec),
                Err(e) => tracing::error!(job = id, error = %e, "unreadable job parameters"),
            }
        }
        Ok(())
    }
}

pub async fn get(db: &Db, id: i64) -> Result<JobView, ServiceError> {
    let mut conn = db.acquire().await?;
    let sql = format!("{SELECT} where id = $1");
    sql_fetch_optional!(JobView, conn.conn(), &sql, id)?
        .ok_or_else(|| ServiceError::not_found(format!("job {id}")))
}

pub async fn list(
    db: &Db,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<Page<JobView>, ServiceError> {
    let limit = page_limit(limit)?;
    let mut conn = db.acquire().await?;
    let sql = format!("{SELECT} where id > $1 order by id limit $2");
    let rows = sql_fetch_all!(
        JobView,
        conn.conn(),
        &sql,
        after.unwrap_or(0),
        (limit + 1) as i64
    )?;
    Ok(Page::cut(rows, limit, |j| j.id))
}

/// The newest jobs first, for the runs page.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<JobView>, ServiceError> {
    let mut conn = db.acquire().await?;
    let sql = format!("{SELECT} order by id desc limit $1");
    Ok(sql_fetch_all!(JobView, conn.conn(), &sql, limit)?)
}
