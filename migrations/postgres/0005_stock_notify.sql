-- Several instances share one PostgreSQL database, and each caches availability look-ups.
-- Every change of a stock balance notifies `spareplan_stock` with the part id; PostgreSQL
-- delivers it when the transaction commits (and folds repeats of one part into one), so
-- the other instances drop what they hold for that part (src/db: follow_other_instances).
-- SQLite, the embedded single-instance store, needs no counterpart.

create function stock_balance_notify() returns trigger
language plpgsql as $$
begin
    perform pg_notify('spareplan_stock', new.part_id::text);
    return null;
end
$$;

create trigger stock_balance_notify_trg
    after insert or update on stock_balance
    for each row execute function stock_balance_notify();
