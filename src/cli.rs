//! The command line: one binary, one subcommand per job (DESIGN §8).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::catalog::CodingRule;
use crate::db::{Db, DEFAULT_URL};
use crate::forecast_runs::{self, RunOptions, StoredForecast};
use crate::interchange::{self, ImportError, Kind};
use crate::plan_runs::{self, StoredPlan};
use crate::report;

#[derive(Debug, Parser)]
#[command(
    name = "spareplan",
    version,
    about = "Spare-parts inventory and replenishment planner"
)]
pub struct Cli {
    /// Database: sqlite://FILE (created on first run) or postgres://…
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_URL, global = true)]
    database_url: String,
    /// Part-coding rule (TOML); the default is <line>-<ELE|MEC|HYD|OTH>-<6 digits>[-<rev>].
    #[arg(long, env = "SPAREPLAN_CODING_RULE", global = true)]
    coding_rule: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a fresh SQLite database, load data/demo and print a summary.
    Demo {
        /// Folder of the demo data set.
        #[arg(long, default_value = "data/demo")]
        data: PathBuf,
        /// Database file to (re)create for the demo.
        #[arg(long, default_value = "demo.db")]
        db_file: PathBuf,
        /// Months of the demo's realised future (data/demo-future) to replay month by month
        /// against min/max after planning; 0 skips the replay (12 replays the whole year).
        #[arg(long, default_value_t = 3)]
        replay_months: usize,
    },
    /// Apply pending migrations.
    Migrate,
    /// Import one CSV file of a kind, or a whole folder (--dir) in dependency order.
    Import {
        /// The kind of file (locations, lanes, suppliers, parts, prices, fits, equipment,
        /// faults, peak-season, stock, credit).
        #[arg(required_unless_present = "dir")]
        kind: Option<Kind>,
        #[arg(required_unless_present = "dir")]
        file: Option<PathBuf>,
        /// Import every interchange file of this folder, all or nothing.
        #[arg(long, conflicts_with_all = ["kind", "file"])]
        dir: Option<PathBuf>,
    },
    /// Export every table as CSV into a folder.
    Export {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the network summary of the current database.
    Summary,
    /// Forecast demand per part × station from the stored history and store the run.
    Forecast {
        /// Months to forecast after the last month of history.
        #[arg(long, default_value_t = 12)]
        horizon: usize,
        /// Months of history to use (default: all).
        #[arg(long)]
        history_months: Option<usize>,
    },
    /// Rolling-origin backtest: over a CSV of series (`series_id,period,demand`) with
    /// --series, or over the stored history.
    Backtest {
        #[arg(long)]
        series: Option<PathBuf>,
        /// Periods of the first training window.
        #[arg(long)]
        train: usize,
        /// Periods forecast from each origin.
        #[arg(long, default_value_t = 12)]
        horizon: usize,
        /// Where to write the forecasts (series_id,step,mean,p50,p60,…,p9999: 32 levels); with --series.
        #[arg(long, default_value = "backtest-forecasts.csv")]
        out: PathBuf,
    },
    /// Plan purchases and transfers with the linear program of a planning model, against
    /// the newest stored forecast run.
    Plan {
        #[arg(long, default_value = "models/monthly-replenishment.toml")]
        model: PathBuf,
        /// How many of the largest proposals to print with their reasons.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Write a synthetic network (deterministic by seed) in the import formats, with its
    /// ground truth apart.
    Generate(crate::generate::GenerateArgs),
    /// Replay a realised future against the plan and the min/max baseline. With --rolling
    /// (DESIGN §11): month by month, in a scratch copy of the database, book arrivals,
    /// forecast, plan, release the lines due and serve the truth's demand, beside min/max
    /// recomputed monthly at several z under the same budget and order cost. Without it:
    /// the older one-shot comparison against a stored forecast run.
    Simulate {
        #[arg(long, default_value = "models/monthly-replenishment.toml")]
        model: PathBuf,
        /// With --rolling: a file `part_code,station_code,month,demand` whose first month is
        /// the one after the stored history (`generate --truth` writes future_demand.csv).
        /// Without: the --truth directory `generate` wrote (true_demand.csv, true_rates.csv).
        #[arg(long)]
        truth: PathBuf,
        #[arg(long)]
        rolling: bool,
        /// Safety factors of the min/max curve (--rolling).
        #[arg(long, value_delimiter = ',', default_value = "0,0.5,1,1.5,2,2.5,3")]
        z: Vec<f64>,
        /// Write every line the plan released, in the proposals.csv format (--rolling).
        #[arg(long)]
        released: Option<PathBuf>,
        /// Replay this released-lines file (proposals.csv format) instead of planning (--rolling).
        #[arg(long, conflicts_with = "released")]
        replay_released: Option<PathBuf>,
        /// Keep the replay's scratch database at this SQLite file (--rolling).
        #[arg(long)]
        scratch_db: Option<PathBuf>,
        /// Replay only the first N months of the truth (--rolling).
        #[arg(long)]
        months: Option<usize>,
        /// Switch the model's purchase budget off, for the plan and the baseline alike
        /// (--rolling).
        #[arg(long)]
        no_budget: bool,
        /// Service targets (fill rates) to compare at; every tier × criticality gets each.
        #[arg(long, value_delimiter = ',', default_value = "0.85,0.92,0.97")]
        targets: Vec<f64>,
        /// Independent draws of realised demand from the truth.
        #[arg(long, default_value_t = 5)]
        draws: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write the comparison as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Book the arrival of a released line (purchase or transfer), in full or in part, at
    /// its destination: `--proposal 123 --location C001 --qty 5`, or a warehouse's CSV of
    /// many (`--file receipts.csv`: proposal_id,location_code,qty,idempotency_key), all or
    /// nothing.
    Receive {
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        proposal: Option<i64>,
        #[arg(long, required_unless_present = "file")]
        location: Option<String>,
        #[arg(long, required_unless_present = "file")]
        qty: Option<i64>,
        /// Idempotency key: repeat it to retry safely (default: a fresh one).
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List open lines (released, not fully received) with ordered, received and open
    /// quantity; `--overdue` only those expected before today.
    Arriving {
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        overdue: bool,
    },
    /// Serve the HTTP API under /api/v1 (and /healthz, /readyz, /metrics) and the web
    /// interface under /ui until Ctrl-C or SIGTERM.
    Serve {
        #[arg(long, env = "SPAREPLAN_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Folder of the planning models plan runs may name.
        #[arg(long, default_value = "models")]
        models_dir: PathBuf,
        /// Largest CSV upload, in MiB.
        #[arg(long, default_value_t = 64)]
        upload_limit_mib: usize,
        /// Time limit of one forecast or plan job, in seconds.
        #[arg(long, default_value_t = 600)]
        job_time_limit_s: u64,
    },
    /// Create, list or revoke access keys: API bearer tokens, also the web interface's
    /// sign-in (the secret is printed once and stored hashed).
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token: `--role planner`, `--role station --station S0001`, …
    Create {
        /// admin, planner, station, finance or viewer.
        #[arg(long)]
        role: crate::auth::Role,
        /// The station a station token is bound to.
        #[arg(long)]
        station: Option<String>,
        /// Who or what the token is for (shown in the audit log).
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

/// Parses arguments, runs the command and maps any error to a readable message and exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    init_tracing(
        cli.log_json,
        if serving {
            "info,sqlx=warn"
        } else {
            "warn,sqlx=error"
        },
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let rule = coding_rule(cli.coding_rule.as_deref())?;
    match cli.command {
        Command::Demo {
            data,
            db_file,
            replay_months,
        } => demo(&data, &db_file, &rule, replay_months).await,
        Command::Migrate => {
            let db = connect(&cli.database_url).await?;
            db.close().await;
            println!("migrations applied to {}", cli.database_url);
            Ok(())
        }
        Command::Import { kind, file, dir } => {
            let db = connect(&cli.database_url).await?;
            let outcome = import(&db, kind, file, dir, &rule).await;
            db.close().await;
            outcome
        }
        Command::Export { dir } => {
            let db = connect(&cli.database_url).await?;
            for (kind, rows) in interchange::export_dir(&db, &dir).await? {
                println!("{:<16} {rows:>9} rows", kind.file_name());
            }
            db.close().await;
            Ok(())
        }
        Command::Forecast {
            horizon,
            history_months,
        } => {
            let db = connect(&cli.database_url).await?;
            let options = RunOptions {
                horizon,
                history_months,
                ..RunOptions::default()
            };
            let stored = forecast_runs::run_and_store(&db, &options).await?;
            print!("{}", forecast_runs::summary(&stored));
            db.close().await;
            Ok(())
        }
        Command::Backtest {
            series,
            train,
            horizon,
            out,
        } => match series {
            Some(series) => {
                let report = tokio::task::spawn_blocking(move || {
                    crate::forecast::backtest_csv(&series, train, horizon, &out)
                })
                .await??;
                print!("{report}");
                Ok(())
            }
            None => {
                let db = connect(&cli.database_url).await?;
                let report = forecast_runs::backtest_stored(&db, train, horizon).await?;
                print!("{report}");
                db.close().await;
                Ok(())
            }
        },
        Command::Plan { model, top } => {
            let db = connect(&cli.database_url).await?;
            let stored = plan(&db, &model, None).await?;
            print!("{}", plan_runs::summary(&stored, top));
            db.close().await;
            Ok(())
        }
        Command::Generate(args) => {
            let config = crate::generate::GenerateConfig::from(args);
            let summary = tokio::task::spawn_blocking(move || crate::generate::generate(&config))
                .await
                .context("the generator stopped")??;
            print!("{summary}");
            Ok(())
        }
        Command::Serve {
            listen,
            models_dir,
            upload_limit_mib,
            job_time_limit_s,
        } => {
            let db = connect(&cli.database_url).await?;
            let config = crate::api::Config {
                models_dir,
                upload_limit: upload_limit_mib << 20,
                job_time_limit: std::time::Duration::from_secs(job_time_limit_s),
                ..crate::api::Config::default()
            };
            crate::api::serve(db.clone(), rule, config, listen)
                .await
                .with_context(|| format!("cannot serve on {listen}"))?;
            db.close().await;
            Ok(())
        }
        Command::Token { action } => {
            let db = connect(&cli.database_url).await?;
            let outcome = token(&db, action).await;
            db.close().await;
            outcome
        }
        Command::Simulate {
            model,
            truth,
            rolling: true,
            z,
            released,
            replay_released,
            scratch_db,
            months,
            no_budget,
            json,
            ..
        } => {
            let db = connect(&cli.database_url).await?;
            let (mut model, mut model_text) = plan_runs::read_model(&model)?;
            if no_budget {
                model.budget = None;
                model.active.budget = false;
                model_text.push_str("\n# simulate --rolling --no-budget: the budget is off\n");
            }
            let options = crate::replay::RollingOptions {
                truth,
                model,
                model_text,
                z,
                released_out: released,
                replay_released,
                scratch: scratch_db,
                months,
                progress: true,
            };
            let outcome = crate::replay::run(&db, &rule, &options).await;
            db.close().await;
            let report = outcome?;
            print!("{}", report.table());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(())
        }
        Command::Simulate {
            model,
            truth,
            targets,
            draws,
            seed,
            json,
            ..
        } => {
            let db = connect(&cli.database_url).await?;
            let (model, _) = plan_runs::read_model(&model)?;
            let (model_budget, model_order_cost) = (model.budget, model.order_cost);
            let options = crate::simulate_runs::SimulateOptions {
                truth_dir: &truth,
                targets,
                draws,
                seed,
            };
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_message("planning and replaying at each target …");
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            let outcome = crate::simulate_runs::run(&db, model, &options).await;
            spinner.finish_and_clear();
            db.close().await;
            let (comparison, truth) = outcome?;
            println!(
                "One-shot comparison (no re-planning). Terms: the plan under its model's budget ({}) \
                 and {:.2} per order line; min/max with no budget and no order cost. \
                 `simulate --rolling` is the comparison under equal terms.",
                budget_text(&model_budget),
                model_order_cost
            );
            if truth.unmatched_rows > 0 {
                println!(
                    "({} truth rows name parts or stations not in the plan, e.g. superseded codes; left out)",
                    truth.unmatched_rows
                );
            }
            print!("{}", comparison.table());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&comparison)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(())
        }
        Command::Receive {
            proposal,
            location,
            qty,
            key,
            file,
        } => {
            let db = connect(&cli.database_url).await?;
            let outcome = receive(&db, proposal, location, qty, key, file).await;
            db.close().await;
            outcome
        }
        Command::Arriving { location, overdue } => {
            let db = connect(&cli.database_url).await?;
            let outcome = arriving(&db, location, overdue).await;
            db.close().await;
            outcome
        }
        Command::Summary => {
            let db = connect(&cli.database_url).await?;
            print!("{}", report::network_summary(&db).await?);
            db.close().await;
            Ok(())
        }
    }
}

fn budget_text(budget: &Option<crate::plan::model::Budget>) -> String {
    match budget {
        Some(b) => format!("{} per {:?}", b.amount, b.scope).to_lowercase(),
        None => "none".into(),
    }
}

async fn receive(
    db: &Db,
    proposal: Option<i64>,
    location: Option<String>,
    qty: Option<i64>,
    key: Option<String>,
    file: Option<PathBuf>,
) -> anyhow::Result<()> {
    use crate::pipeline::{self, Receipt};
    let done = match (file, proposal, location, qty) {
        (Some(file), ..) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            pipeline::receive_csv(db, "cli", &text)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        }
        (None, Some(proposal_id), Some(location_code), Some(qty)) => {
            let qty = crate::units::Qty::new(qty)
                .ok()
                .filter(|q| *q != crate::units::Qty::ZERO)
                .context("--qty must be a positive whole number")?;
            let receipt = Receipt {
                proposal_id,
                location_code,
                qty,
                idempotency_key: key.unwrap_or_else(|| format!("cli:{}", uuid::Uuid::new_v4())),
                part_code: None,
            };
            vec![pipeline::receive(db, "cli", &receipt).await?]
        }
        _ => anyhow::bail!("give --proposal, --location and --qty, or --file"),
    };
    for r in &done {
        println!(
            "proposal {:>7} {:<9} {:<20} at {:<8} received {:>5} of {:>5}, open {:>5}{}  (on hand {})",
            r.proposal_id,
            r.kind.as_str(),
            r.part_code,
            r.location_code,
            r.line.received,
            r.line.ordered,
            r.line.open,
            if r.moved { "" } else { "  (already booked)" },
            r.on_hand
        );
    }
    Ok(())
}

async fn arriving(db: &Db, location: Option<String>, overdue: bool) -> anyhow::Result<()> {
    use crate::pipeline::{arriving, ArrivingFilter};
    let mut filter = ArrivingFilter {
        location,
        overdue_only: overdue,
        as_of: chrono::Utc::now().date_naive(),
        after: None,
        limit: Some(crate::service::MAX_LIMIT as i64),
    };
    println!("proposal  kind      part                 from     to       ordered received  open  arrive_on");
    loop {
        let page = arriving(db, &filter).await?;
        for l in &page.items {
            println!(
                "{:>8}  {:<9} {:<20} {:<8} {:<8} {:>7} {:>8} {:>5}  {}{}",
                l.proposal_id,
                l.kind.as_str(),
                l.part_code,
                l.from_code.as_deref().unwrap_or(""),
                l.to_code,
                l.line.ordered,
                l.line.received,
                l.line.open,
                l.arrive_on,
                if l.overdue { "  OVERDUE" } else { "" }
            );
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return Ok(()),
        }
    }
}

async fn token(db: &Db, action: TokenCommand) -> anyhow::Result<()> {
    match action {
        TokenCommand::Create {
            role,
            station,
            label,
        } => {
            let (secret, id) =
                crate::auth::create_token(db, role, station.as_deref(), &label).await?;
            eprintln!("token {id} ({role}) created; it is shown only once:");
            println!("{secret}");
        }
        TokenCommand::List => {
            for t in crate::auth::list_tokens(db).await? {
                println!(
                    "{:>5} {:<8} {:<10} {:<20}{}",
                    t.id,
                    t.role,
                    t.station.as_deref().unwrap_or("-"),
                    t.label,
                    if t.revoked { " revoked" } else { "" }
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !crate::auth::revoke_token(db, id).await? {
                anyhow::bail!("no live token {id}");
            }
            println!("token {id} revoked");
        }
    }
    Ok(())
}

fn coding_rule(path: Option<&Path>) -> anyhow::Result<CodingRule> {
    let Some(path) = path else {
        return Ok(CodingRule::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read coding rule {}", path.display()))?;
    CodingRule::from_toml(&text)
        .with_context(|| format!("coding rule {} is not valid", path.display()))
}

async fn connect(url: &str) -> anyhow::Result<Db> {
    Db::connect(url)
        .await
        .with_context(|| format!("cannot open database {url}"))
}

async fn import(
    db: &Db,
    kind: Option<Kind>,
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
    rule: &CodingRule,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let summaries = match (kind, file, dir) {
        (_, _, Some(dir)) => interchange::import_dir(db, &dir, rule).await,
        (Some(kind), Some(file), None) => interchange::import_file(db, kind, &file, rule)
            .await
            .map(|s| vec![s]),
        _ => anyhow::bail!("give a kind and a file, or --dir"),
    };
    match summaries {
        Ok(summaries) => {
            for s in summaries {
                println!(
                    "{:<16} {:>9} rows {:>8.2} s",
                    s.kind.file_name(),
                    s.rows,
                    s.elapsed.as_secs_f64()
                );
            }
            println!("imported in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Err(ImportError::BadRows(rows)) => {
            for row in &rows {
                eprintln!("{row}");
            }
            anyhow::bail!("{} bad row(s); nothing was imported", rows.len())
        }
        Err(e) => Err(e.into()),
    }
}

/// The demo: a fresh database file, the demo data set, and the summary.
async fn demo(
    data: &Path,
    db_file: &Path,
    rule: &CodingRule,
    replay_months: usize,
) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db_file.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove old {}", db_file.display()))
            }
        }
    }
    let url = format!("sqlite://{}", db_file.display());
    let db = connect(&url).await?;
    println!("Loading {} into {} …", data.display(), db_file.display());
    let started = std::time::Instant::now();
    let summaries = interchange::import_dir(&db, data, rule).await;
    match summaries {
        Ok(summaries) => {
            for s in summaries {
                println!(
                    "  {:<16} {:>9} rows {:>8.2} s",
                    s.kind.file_name(),
                    s.rows,
                    s.elapsed.as_secs_f64()
                );
            }
        }
        Err(ImportError::BadRows(rows)) => {
            for row in &rows {
                eprintln!("{row}");
            }
            anyhow::bail!("the demo data has {} bad row(s)", rows.len());
        }
        Err(e) => return Err(e.into()),
    }
    println!("  loaded in {:.1} s\n", started.elapsed().as_secs_f64());
    print!("{}", report::network_summary(&db).await?);
    println!();
    let stored = forecast_runs::run_and_store(&db, &RunOptions::default()).await?;
    print!("{}", forecast_runs::summary(&stored));
    println!();
    let planned = plan(
        &db,
        Path::new("models/monthly-replenishment.toml"),
        Some(&stored),
    )
    .await?;
    print!("{}", plan_runs::summary(&planned, 5));
    let future = data.with_file_name("demo-future").join("future_demand.csv");
    if replay_months > 0 && future.exists() {
        println!(
            "\nReplaying the first {replay_months} month(s) of the demo's realised future ({}) …",
            future.display()
        );
        let model_path = Path::new("models/monthly-replenishment.toml");
        let (model, model_text) = plan_runs::read_model(model_path)?;
        let options = crate::replay::RollingOptions {
            truth: future.clone(),
            model,
            model_text,
            z: vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
            released_out: None,
            replay_released: None,
            scratch: None,
            months: Some(replay_months),
            progress: true,
        };
        let report = crate::replay::run(&db, rule, &options).await?;
        print!("{}", report.table());
        println!(
            "  (the whole year: spareplan --database-url sqlite://{} simulate --rolling --truth {})",
            db_file.display(),
            future.display()
        );
    }
    db.close().await;
    Ok(())
}

/// Runs the planner with a spinner: a large plan takes a while.
async fn plan(
    db: &Db,
    model: &Path,
    forecast: Option<&StoredForecast>,
) -> anyhow::Result<StoredPlan> {
    let (model, text) = plan_runs::read_model(model)?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("planning with model '{}' …", model.name));
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let outcome = plan_runs::run_and_store(db, model, &text, forecast).await;
    spinner.finish_and_clear();
    Ok(outcome?)
}
