-- The operating loop (issue 25): released lines are received in full or in part
-- (received_qty; 'received' once nothing is open), an accepted plan run supersedes older
-- runs' open proposals ('superseded', superseded_by), and at most one plan run runs at a
-- time across all instances (a partial unique index), kept alive by its heartbeat.

alter table proposals drop constraint proposals_status_check;
alter table proposals add constraint proposals_status_check check (status in
    ('proposed', 'approved', 'rejected', 'edited', 'awaiting_finance', 'released', 'received', 'superseded'));
alter table proposals add column received_qty bigint not null default 0;
alter table proposals add column released_on date;
alter table proposals add column superseded_by bigint constraint proposals_superseded_by_fkey references plan_runs (id);
alter table proposals add constraint proposals_received_check check (received_qty >= 0 and received_qty <= qty);

-- Lines released before receipts were tracked per line: what their ledger shows received.
update proposals p set received_qty = least(p.qty, coalesce((select sum(g.d_on_hand) from stock_ledger g
        where g.reference = 'proposal:' || p.id::text
          and g.kind in ('transfer_in', 'order_receipt') and g.location_id = p.to_id), 0))
    where p.status = 'released';
update proposals set status = 'received' where status = 'released' and received_qty = qty;

create index proposals_open_idx on proposals (status, arrive_on) where status = 'released';

alter table plan_runs add column heartbeat_at timestamptz;
update plan_runs set status = 'failed', failure = 'abandoned: still running when plan runs became exclusive'
    where status = 'running' and id < (select max(id) from plan_runs where status = 'running');
create unique index plan_runs_one_running on plan_runs (status) where status = 'running';
