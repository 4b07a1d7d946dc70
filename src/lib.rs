//! spareplan: spare-parts inventory and replenishment planning for after-sales service
//! networks. See README.md for the tour and DESIGN.md for the reference design.

pub mod catalog;
pub mod cli;
pub mod db;
pub mod forecast;
pub mod forecast_runs;
pub mod generate;
pub mod history;
pub mod interchange;
pub mod network;
pub mod plan;
pub mod plan_runs;
pub mod report;
pub mod simulate_runs;
pub mod stock;
pub mod units;
