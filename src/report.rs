//! Read-only summaries of a network for people: what `demo` and `summary` print.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Months, NaiveDate};

use crate::db::{Db, DbError};
use crate::units::Amount;
use crate::{sql_fetch_all, sql_fetch_optional};

/// The text summary: stock value by region, demanded parts missing at stations, and
/// work orders by fault category and month over the last year of history.
pub async fn network_summary(db: &Db) -> Result<String, DbError> {
    let Some(as_of) = last_fault_day(db).await? else {
        return Ok("No fault history loaded yet.\n".into());
    };
    let year_ago = as_of.checked_sub_months(Months::new(12)).unwrap_or(as_of);
    let mut out = String::new();
    let _ = writeln!(out, "Network as of {as_of} (last recorded work order)\n");
    stock_value_by_region(db, as_of, &mut out).await?;
    missing_at_stations(db, year_ago, &mut out).await?;
    faults_by_category_and_month(db, year_ago, &mut out).await?;
    Ok(out)
}

async fn last_fault_day(db: &Db) -> Result<Option<NaiveDate>, DbError> {
    let mut conn = db.acquire().await?;
    let row = sql_fetch_optional!(
        (Option<NaiveDate>,),
        conn.conn(),
        "select max(opened_on) from faults"
    )?;
    Ok(row.and_then(|(day,)| day))
}

async fn stock_value_by_region(db: &Db, as_of: NaiveDate, out: &mut String) -> Result<(), DbError> {
    let mut conn = db.acquire().await?;
    // Value at the cost price in force on `as_of` (the latest effective one).
    let rows = sql_fetch_all!(
        (String, i64, i64, i64),
        conn.conn(),
        "select coalesce(l.region, '(central)'), count(distinct l.id), cast(sum(b.on_hand) as bigint),
                cast(coalesce(sum(b.on_hand * (select x.amount_minor from prices x
                     where x.part_id = b.part_id and x.kind = 'cost' and x.effective_from <= $1
                     order by x.effective_from desc limit 1)), 0) as bigint)
         from stock_balance b join locations l on l.id = b.location_id
         where b.on_hand > 0
         group by coalesce(l.region, '(central)')
         order by 4 desc",
        as_of
    )?;
    let _ = writeln!(out, "Stock value by region (cost price)");
    let _ = writeln!(
        out,
        "  {:<14} {:>9} {:>10} {:>18}",
        "region", "locations", "units", "value CNY"
    );
    let mut total = Amount::ZERO;
    for (region, locations, units, value) in rows {
        total += Amount::from_minor(value);
        let _ = writeln!(
            out,
            "  {:<14} {locations:>9} {units:>10} {:>18}",
            pad(&region, 14),
            Amount::from_minor(value)
        );
    }
    let _ = writeln!(out, "  {:<14} {:>9} {:>10} {total:>18}\n", "total", "", "");
    Ok(())
}

/// Pads by display columns: CJK characters take two.
fn pad(text: &str, width: usize) -> String {
    let columns: usize = text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(columns)))
}

async fn missing_at_stations(db: &Db, since: NaiveDate, out: &mut String) -> Result<(), DbError> {
    let mut conn = db.acquire().await?;
    let rows = sql_fetch_all!(
        (String, String, i64, i64),
        conn.conn(),
        "with demand as (
             select part_id, station_id, sum(qty) as qty from faults
             where part_id is not null and opened_on > $1
             group by part_id, station_id)
         select p.code, p.name, count(*), cast(sum(d.qty) as bigint)
         from demand d join parts p on p.id = d.part_id
         left join stock_balance b on b.part_id = d.part_id and b.location_id = d.station_id
         where coalesce(b.on_hand - b.reserved, 0) <= 0
         group by p.code, p.name
         order by 3 desc, 4 desc",
        since
    )?;
    let mut conn = db.acquire().await?;
    let (pairs,) = sql_fetch_optional!(
        (i64,),
        conn.conn(),
        "select count(*) from (select distinct part_id, station_id from faults
                               where part_id is not null and opened_on > $1) d",
        since
    )?
    .unwrap_or((0,));
    let missing: i64 = rows.iter().map(|r| r.2).sum();
    let _ = writeln!(
        out,
        "Parts with no available stock at stations that used them in the last 12 months\n  {missing} of {pairs} part × station pairs ({:.0} %), {} parts; most often missing:",
        100.0 * missing as f64 / pairs.max(1) as f64,
        rows.len()
    );
    let _ = writeln!(
        out,
        "  {:<18} {:<24} {:>8} {:>10}",
        "part", "name", "stations", "used 12m"
    );
    for (code, name, stations, used) in rows.iter().take(10) {
        let _ = writeln!(
            out,
            "  {code:<18} {} {stations:>8} {used:>10}",
            pad(name, 24)
        );
    }
    out.push('\n');
    Ok(())
}

async fn faults_by_category_and_month(
    db: &Db,
    since: NaiveDate,
    out: &mut String,
) -> Result<(), DbError> {
    let mut conn = db.acquire().await?;
    let rows = sql_fetch_all!(
        (String, String, i64),
        conn.conn(),
        "select substr(cast(opened_on as text), 1, 7), category, count(distinct work_order)
         from faults where opened_on > $1
         group by substr(cast(opened_on as text), 1, 7), category",
        since
    )?;
    let categories = ["electrical", "mechanical", "hydraulic", "other"];
    let mut by_month: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for (month, category, count) in rows {
        if let Some(i) = categories.iter().position(|c| *c == category) {
            by_month.entry(month).or_default()[i] += count;
        }
    }
    let _ = writeln!(out, "Work orders by fault category and month");
    let _ = writeln!(
        out,
        "  {:<8} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "month", "electrical", "mechanical", "hydraulic", "other", "total"
    );
    for (month, counts) in by_month {
        let total: i64 = counts.iter().sum();
        let _ = writeln!(
            out,
            "  {month:<8} {:>10} {:>10} {:>10} {:>10} {total:>8}",
            counts[0], counts[1], counts[2], counts[3]
        );
    }
    Ok(())
}
