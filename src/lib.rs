//! spareplan: spare-parts inventory and replenishment planning for after-sales service
//! networks. See README.md for the tour and DESIGN.md for the reference design.

pub mod api;
pub mod audit;
pub mod auth;
pub mod availability;
pub mod catalog;
pub mod cli;
pub mod credit;
pub mod db;
pub mod exceptions;
pub mod forecast;
pub mod forecast_runs;
pub mod generate;
pub mod history;
pub mod interchange;
pub mod jobs;
pub mod kpi;
pub mod network;
pub mod pipeline;
pub mod plan;
pub mod plan_runs;
pub mod proposals;
pub mod replay;
pub mod report;
pub mod service;
pub mod simulate_runs;
pub mod stock;
pub mod units;
pub mod web;
