-- The operating loop (issue 25): released lines are received in full or in part
-- (received_qty; 'received' once nothing is open), an accepted plan run supersedes older
-- runs' open proposals ('superseded', superseded_by), and at most one plan run runs at a
-- time (a partial unique index), kept alive by its heartbeat.
--
-- SQLite cannot change a CHECK constraint in place, so proposals is rebuilt: a new table,
-- the rows copied, the old one dropped and the new one renamed. Migrations run inside a
-- transaction with foreign keys on, where dropping a parent with children fails, so the
-- one child table (credit_advances) is set aside and put back around the drop.

create table proposals_new (
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
                            ('proposed', 'approved', 'rejected', 'edited', 'awaiting_finance', 'released',
                             'received', 'superseded')),
    version             bigint not null,
    reason_json         text not null,
    original_qty        bigint,
    edit_reason         text,
    received_qty        bigint not null default 0,
    released_on         text,
    superseded_by       integer constraint proposals_superseded_by_fkey references plan_runs (id),
    constraint proposals_kind_ends_check check ((kind = 'purchase') = (from_id is null)),
    constraint proposals_received_check check (received_qty >= 0 and received_qty <= qty)
);

insert into proposals_new (id, plan_run_id, kind, part_id, supplier_id, from_id, to_id, qty, order_by,
        arrive_on, unit_cost_minor, currency, credit_impact_minor, status, version, reason_json,
        original_qty, edit_reason)
    select id, plan_run_id, kind, part_id, supplier_id, from_id, to_id, qty, order_by,
        arrive_on, unit_cost_minor, currency, credit_impact_minor, status, version, reason_json,
        original_qty, edit_reason
    from proposals;
-- Lines released before receipts were tracked per line: what their ledger shows received.
update proposals_new set received_qty = min(qty, coalesce((select sum(g.d_on_hand) from stock_ledger g
        where g.reference = 'proposal:' || cast(proposals_new.id as text)
          and g.kind in ('transfer_in', 'order_receipt') and g.location_id = proposals_new.to_id), 0))
    where status = 'released';
update proposals_new set status = 'received' where status = 'released' and received_qty = qty;

create temp table credit_advances_kept as select * from credit_advances;
delete from credit_advances;
drop table proposals;
alter table proposals_new rename to proposals;
insert into credit_advances select * from credit_advances_kept;
drop table credit_advances_kept;
create index proposals_run_idx on proposals (plan_run_id, status);
create index proposals_to_idx on proposals (to_id, status);
create index proposals_part_idx on proposals (part_id);
-- The open pipeline: released lines, read by every plan run and every arrivals list.
create index proposals_open_idx on proposals (status, arrive_on) where status = 'released';

alter table plan_runs add column heartbeat_at text;
update plan_runs set status = 'failed', failure = 'abandoned: still running when plan runs became exclusive'
    where status = 'running' and id < (select max(id) from plan_runs where status = 'running');
create unique index plan_runs_one_running on plan_runs (status) where status = 'running';
