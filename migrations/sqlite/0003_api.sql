-- The service (DESIGN §7): API tokens, background jobs, the audit log, credit movements
-- and limit change requests; proposal edits keep the planner's reason.

create table api_tokens (
    id          integer primary key,
    token_hash  text not null constraint api_tokens_hash_key unique,
    role        text not null constraint api_tokens_role_check check (role in ('admin', 'planner', 'station', 'finance', 'viewer')),
    station_id  integer constraint api_tokens_station_fkey references locations (id),
    label       text not null,
    created_at  text not null,
    revoked_at  text,
    constraint api_tokens_station_check check ((role = 'station') = (station_id is not null))
);

create table jobs (
    id           integer primary key,
    kind         text not null constraint jobs_kind_check check (kind in ('forecast', 'plan')),
    status       text not null constraint jobs_status_check check (status in ('queued', 'running', 'solved', 'failed')),
    params_json  text not null,
    result_id    bigint,
    failure      text,
    actor        text not null,
    created_at   text not null,
    started_at   text,
    heartbeat_at text,
    finished_at  text
);

create table audit_log (
    id          integer primary key,
    at          text not null,
    actor       text not null,
    action      text not null,
    entity      text not null,
    entity_id   text not null,
    before_json text,
    after_json  text
);

create index audit_log_entity_idx on audit_log (entity, entity_id);

-- Advanced stock a station owes for (a released transfer at dealer price) and its payments.
create table credit_advances (
    id           integer primary key,
    station_id   integer not null constraint credit_advances_station_fkey references locations (id),
    proposal_id  integer constraint credit_advances_proposal_fkey references proposals (id),
    amount_minor bigint not null constraint credit_advances_amount_check check (amount_minor > 0),
    currency     text not null,
    advanced_on  text not null,
    constraint credit_advances_proposal_key unique (proposal_id)
);

create table credit_payments (
    id           integer primary key,
    station_id   integer not null constraint credit_payments_station_fkey references locations (id),
    amount_minor bigint not null constraint credit_payments_amount_check check (amount_minor > 0),
    currency     text not null,
    paid_on      text not null,
    reference    text,
    actor        text not null,
    created_at   text not null
);

create index credit_advances_station_idx on credit_advances (station_id);
create index credit_payments_station_idx on credit_payments (station_id);

create table credit_limit_requests (
    id              integer primary key,
    station_id      integer not null constraint credit_limit_requests_station_fkey references locations (id),
    new_limit_minor bigint not null constraint credit_limit_requests_limit_check check (new_limit_minor >= 0),
    currency        text not null,
    reason          text not null,
    status          text not null constraint credit_limit_requests_status_check check (status in ('pending', 'approved', 'rejected')),
    version         bigint not null,
    requested_by    text not null,
    decided_by      text,
    created_at      text not null,
    decided_at      text
);

alter table proposals add column original_qty bigint;
alter table proposals add column edit_reason text;

create index proposals_to_idx on proposals (to_id, status);
create index proposals_part_idx on proposals (part_id);
create index lanes_to_idx on lanes (to_id);
