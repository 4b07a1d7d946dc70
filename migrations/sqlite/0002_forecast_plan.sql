-- Forecast runs and plan runs with their proposals (DESIGN §5–7).

create table forecast_runs (
    id              integer primary key,
    created_at      text not null,
    first_period    text not null,
    period_length   text not null constraint forecast_runs_period_check check (period_length in ('month', 'week')),
    horizon         integer not null constraint forecast_runs_horizon_check check (horizon > 0),
    history_periods integer not null,
    series_count    integer not null,
    -- What the run was computed from: fault lines, equipment and peak rows, last work order day.
    inputs          text not null,
    config_json     text not null
);

create table forecast_series (
    run_id         integer not null constraint forecast_series_run_fkey references forecast_runs (id),
    part_id        integer not null constraint forecast_series_part_fkey references parts (id),
    station_id     integer not null constraint forecast_series_station_fkey references locations (id),
    demand_class   text not null,
    method         text not null,
    series_weight  double precision not null,
    -- The whole series forecast (method parameters, spread, means) as the forecast module
    -- serialises it; forecast_values repeats mean and quantiles for SQL readers.
    detail_json    text not null,
    constraint forecast_series_pkey primary key (run_id, part_id, station_id)
);

create table forecast_values (
    run_id       integer not null constraint forecast_values_run_fkey references forecast_runs (id),
    part_id      integer not null,
    station_id   integer not null,
    step         integer not null,
    period_start text not null,
    mean         double precision not null,
    p80          double precision not null,
    p95          double precision not null,
    constraint forecast_values_pkey primary key (run_id, part_id, station_id, step),
    constraint forecast_values_series_fkey foreign key (run_id, part_id, station_id)
        references forecast_series (run_id, part_id, station_id)
);

create table plan_runs (
    id              integer primary key,
    model_name      text not null,
    model_toml      text not null,
    forecast_run_id integer constraint plan_runs_forecast_fkey references forecast_runs (id),
    status          text not null constraint plan_runs_status_check check (status in ('queued', 'running', 'solved', 'failed')),
    solver_status   text,
    failure         text,
    objective       double precision,
    build_ms        bigint,
    solve_ms        bigint,
    mip_gap         double precision,
    kpis_json       text,
    created_at      text not null,
    finished_at     text
);

create table proposals (
    id                  integer primary key,
    plan_run_id         integer not null constraint proposals_plan_run_fkey references plan_runs (id),
    kind                text not null constraint proposals_kind_check check (kind in ('purchase', 'transfer')),
    part_id             integer not null constraint proposals_part_fkey references parts (id),
    supplier_id         integer constraint proposals_supplier_fkey references suppliers (id),
    from_id             integer constraint proposals_from_fkey references locations (id),
    to_id               integer not null constraint proposals_to_fkey references locations (id),
    qty                 bigint not null constraint proposals_qty_check check (qty > 0),
    order_by            text not null,
    arrive_on           text not null,
    unit_cost_minor     bigint not null,
    currency            text not null,
    credit_impact_minor bigint not null,
    status              text not null constraint proposals_status_check check (status in
                            ('proposed', 'approved', 'rejected', 'edited', 'awaiting_finance', 'released')),
    version             bigint not null,
    reason_json         text not null,
    constraint proposals_kind_ends_check check ((kind = 'purchase') = (from_id is null))
);

create index proposals_run_idx on proposals (plan_run_id, status);
