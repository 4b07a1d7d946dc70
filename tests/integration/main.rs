//! Integration tests: each runs on a fresh database, on SQLite by default and on
//! PostgreSQL with `SPAREPLAN_TEST_DB=postgres` (see `support`).

mod api;
mod api_loop;
mod api_support;
mod browser;
mod catalog;
mod forecast_truth;
mod interchange;
mod ledger;
mod plan_simulate;
mod receiving;
mod rolling;
mod support;
mod web;
