-- The spine: network, catalog, history, credit and the stock ledger (DESIGN §1–4).
-- Every constraint is named so that violations map to clear errors.
-- Dates are ISO text (YYYY-MM-DD); money is integer minor units with its currency.

create table locations (
    id          integer primary key,
    code        text not null constraint locations_code_key unique,
    name        text not null,
    kind        text not null constraint locations_kind_check check (kind in ('central', 'regional', 'station')),
    parent_id   integer constraint locations_parent_fkey references locations (id) deferrable initially deferred,
    region      text,
    city        text,
    key_city    boolean not null,
    remote      boolean not null,
    lat         double precision not null,
    lon         double precision not null,
    capacity_m3 double precision not null constraint locations_capacity_check check (capacity_m3 >= 0),
    constraint locations_parent_check check ((kind = 'central') = (parent_id is null))
);

create table lanes (
    id                  integer primary key,
    from_id             integer not null constraint lanes_from_fkey references locations (id),
    to_id               integer not null constraint lanes_to_fkey references locations (id),
    lead_time_days      integer not null constraint lanes_lead_time_check check (lead_time_days >= 0),
    cost_per_unit_minor bigint not null constraint lanes_cost_check check (cost_per_unit_minor >= 0),
    currency            text not null,
    constraint lanes_ends_key unique (from_id, to_id),
    constraint lanes_distinct_ends_check check (from_id <> to_id)
);

create table suppliers (
    id   integer primary key,
    code text not null constraint suppliers_code_key unique,
    name text not null
);

create table parts (
    id             integer primary key,
    code           text not null constraint parts_code_key unique,
    name           text not null,
    uom            text not null,
    product_line   text not null,
    criticality    text not null constraint parts_criticality_check check (criticality in ('A', 'B', 'C')),
    wear_part      boolean not null,
    volume_l       double precision not null constraint parts_volume_check check (volume_l >= 0),
    weight_kg      double precision not null constraint parts_weight_check check (weight_kg >= 0),
    supplier_id    integer not null constraint parts_supplier_fkey references suppliers (id),
    lead_time_days integer not null constraint parts_lead_time_check check (lead_time_days >= 0),
    moq            integer not null constraint parts_moq_check check (moq >= 0),
    pack_size      integer not null constraint parts_pack_size_check check (pack_size >= 1),
    replaced_by_id integer constraint parts_replaced_by_fkey references parts (id) deferrable initially deferred,
    replaced_on    text,
    constraint parts_supersession_check check ((replaced_by_id is null) = (replaced_on is null))
);

create table prices (
    id             integer primary key,
    part_id        integer not null constraint prices_part_fkey references parts (id),
    kind           text not null constraint prices_kind_check check (kind in ('cost', 'dealer', 'retail')),
    amount_minor   bigint not null constraint prices_amount_check check (amount_minor >= 0),
    currency       text not null,
    effective_from text not null,
    constraint prices_part_kind_from_key unique (part_id, kind, effective_from)
);

create table fits (
    part_id         integer not null constraint fits_part_fkey references parts (id),
    equipment_model text not null,
    constraint fits_pkey primary key (part_id, equipment_model)
);

create table equipment (
    id             integer primary key,
    serial         text not null constraint equipment_serial_key unique,
    model          text not null,
    product_line   text not null,
    station_id     integer not null constraint equipment_station_fkey references locations (id),
    delivered_on   text not null,
    warranty_until text not null
);

-- One row per part line of a work order (a work order without parts has one row, part null).
create table faults (
    id           integer primary key,
    work_order   text not null,
    opened_on    text not null,
    equipment_id integer not null constraint faults_equipment_fkey references equipment (id),
    station_id   integer not null constraint faults_station_fkey references locations (id),
    category     text not null constraint faults_category_check check (category in ('electrical', 'mechanical', 'hydraulic', 'other')),
    fault_level  text not null,
    part_id      integer constraint faults_part_fkey references parts (id),
    qty          integer not null constraint faults_qty_check check (qty >= 0),
    warranty     boolean not null
);

-- A unique index rather than a table constraint, so that a bulk import can drop it, load,
-- and rebuild it in one pass (see interchange::import).
create unique index faults_line_key on faults (work_order, part_id);

create table peak_season (
    region          text not null,
    equipment_model text not null,
    month           integer not null constraint peak_season_month_check check (month between 1 and 12),
    usage_index     double precision not null constraint peak_season_usage_check check (usage_index >= 0),
    constraint peak_season_pkey primary key (region, equipment_model, month)
);

create table credit_accounts (
    station_id  integer primary key constraint credit_accounts_station_fkey references locations (id),
    limit_minor bigint not null constraint credit_accounts_limit_check check (limit_minor >= 0),
    currency    text not null
);

-- Stock: balances change only together with an appended ledger entry (same transaction).
create table stock_ledger (
    id              integer primary key,
    idempotency_key text not null constraint stock_ledger_idempotency_key unique,
    kind            text not null constraint stock_ledger_kind_check check (kind in
                        ('receipt', 'issue', 'adjustment', 'reserve', 'release', 'order', 'order_receipt', 'transfer_out', 'transfer_ship', 'transfer_in')),
    part_id         integer not null constraint stock_ledger_part_fkey references parts (id),
    location_id     integer not null constraint stock_ledger_location_fkey references locations (id),
    d_on_hand       bigint not null,
    d_reserved      bigint not null,
    d_in_transit    bigint not null,
    d_on_order      bigint not null,
    reference       text,
    reason          text,
    actor           text not null,
    created_at      text not null
);

create table stock_balance (
    part_id     integer not null constraint stock_balance_part_fkey references parts (id),
    location_id integer not null constraint stock_balance_location_fkey references locations (id),
    on_hand     bigint not null constraint stock_balance_on_hand_check check (on_hand >= 0),
    reserved    bigint not null constraint stock_balance_reserved_check check (reserved >= 0 and reserved <= on_hand),
    in_transit  bigint not null constraint stock_balance_in_transit_check check (in_transit >= 0),
    on_order    bigint not null constraint stock_balance_on_order_check check (on_order >= 0),
    constraint stock_balance_pkey primary key (part_id, location_id)
);

create index faults_part_station_idx on faults (part_id, station_id);
create index stock_ledger_part_location_idx on stock_ledger (part_id, location_id);
create index stock_balance_location_idx on stock_balance (location_id);
create index equipment_station_idx on equipment (station_id);
