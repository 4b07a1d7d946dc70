//! Bulk writing of validated rows: multi-row INSERT on SQLite, COPY on PostgreSQL.
//! Rows are buffered and flushed in bounded batches, so memory stays flat in file size.

use chrono::NaiveDate;
use sqlx::postgres::{PgConnection, PgCopyIn};
use sqlx::sqlite::SqliteConnection;

use crate::db::{Backend, Conn, DbError};

/// One column value of a row to write.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    OptDate(Option<NaiveDate>),
}

/// SQLite allows 32,766 bound variables per statement; stay well inside it.
const SQLITE_MAX_VARIABLES: usize = 8_000;
/// COPY payload flushed at about this many bytes.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Rows encoded for one backend: bound values of one multi-row INSERT on SQLite, a chunk
/// of COPY text on PostgreSQL. Encoding is CPU work done by whoever fills the batch, so a
/// reader can encode the next batch while the database writes the last one.
pub struct Batch {
    encoded: Encoded,
    columns: usize,
    rows: usize,
}

enum Encoded {
    Values(Vec<Val>),
    Copy(String),
}

impl Batch {
    pub fn new(backend: Backend, columns: usize) -> Self {
        let encoded = match backend {
            Backend::Sqlite => Encoded::Values(Vec::new()),
            Backend::Postgres => Encoded::Copy(String::new()),
        };
        Batch {
            encoded,
            columns,
            rows: 0,
        }
    }

    /// Adds one row (values in column order).
    pub fn push(&mut self, row: Vec<Val>) {
        debug_assert_eq!(row.len(), self.columns);
        self.rows += 1;
        match &mut self.encoded {
            Encoded::Values(values) => values.extend(row),
            Encoded::Copy(lines) => append_copy_line(lines, &row),
        }
    }

    /// Whether the batch has reached the size written in one go.
    pub fn is_full(&self) -> bool {
        match &self.encoded {
            Encoded::Values(values) => values.len() + self.columns > SQLITE_MAX_VARIABLES,
            Encoded::Copy(lines) => lines.len() >= COPY_CHUNK_BYTES,
        }
    }

    fn empty_like(&self) -> Batch {
        let encoded = match self.encoded {
            Encoded::Values(_) => Encoded::Values(Vec::new()),
            Encoded::Copy(_) => Encoded::Copy(String::new()),
        };
        Batch {
            encoded,
            columns: self.columns,
            rows: 0,
        }
    }
}

/// Writes batches into a table as they come.
pub struct BulkInsert {
    table: &'static str,
    columns: &'static [&'static str],
    batch: Option<Batch>,
    written: u64,
}

impl BulkInsert {
    pub fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        BulkInsert {
            table,
            columns,
            batch: None,
            written: 0,
        }
    }

    /// Queues one row (values in column order), writing a full batch.
    pub async fn push(&mut self, mut conn: Conn<'_>, row: Vec<Val>) -> Result<(), DbError> {
        let columns = self.columns.len();
        let batch = self
            .batch
            .get_or_insert_with(|| Batch::new(conn.backend(), columns));
        batch.push(row);
        if batch.is_full() {
            let full = std::mem::replace(batch, batch.empty_like());
            self.written += write_batch(conn.reborrow(), self.table, self.columns, full).await?;
        }
        Ok(())
    }

    /// Writes what is still buffered; returns the number of rows written in all.
    pub async fn finish(mut self, conn: Conn<'_>) -> Result<u64, DbError> {
        if let Some(batch) = self.batch.take() {
            self.written += write_batch(conn, self.table, self.columns, batch).await?;
        }
        Ok(self.written)
    }
}

/// Writes one batch: one INSERT on SQLite, one COPY on PostgreSQL.
async fn write_batch(
    conn: Conn<'_>,
    table: &str,
    columns: &[&str],
    batch: Batch,
) -> Result<u64, DbError> {
    let rows = batch.rows as u64;
    if rows == 0 {
        return Ok(0);
    }
    match (conn, batch.encoded) {
        (Conn::Sqlite(c), Encoded::Values(values)) => {
            insert_values(c, table, columns, values).await?
        }
        (Conn::Postgres(c), Encoded::Copy(lines)) => {
            let mut copy = c.copy_in_raw(&copy_sql(table, columns)).await?;
            if let Err(e) = send_copy(&mut copy, lines).await {
                // Abort so the connection is usable for the rollback that follows.
                let _ = copy.abort("bulk insert failed").await;
                return Err(e);
            }
            copy.finish().await?;
        }
        _ => unreachable!("a batch is encoded for the backend of the connection it was made for"),
    }
    Ok(rows)
}

/// Streams rows into `table` until `fill` reports the end, reading and encoding the next
/// batch while the database writes the last one (sqlx runs SQLite on its own worker
/// thread, and PostgreSQL is another process, so the two overlap on two cores). `fill` adds
/// rows to the batch it is given until the batch is full; it returns false at the end of
/// its input. After a failed write `fill` is still called to the end, so that the reader
/// can report every bad row, but nothing more is written. Returns the rows written.
pub async fn stream_into(
    conn: Conn<'_>,
    table: &str,
    columns: &[&str],
    mut fill: impl FnMut(&mut Batch) -> bool,
) -> Result<u64, DbError> {
    let mut current = Batch::new(conn.backend(), columns.len());
    let mut more = fill(&mut current);
    let mut sink = match conn {
        Conn::Sqlite(conn) => Sink::Insert {
            conn,
            table,
            columns,
        },
        Conn::Postgres(c) => Sink::Copy(c.copy_in_raw(&copy_sql(table, columns)).await?),
    };
    let mut written = 0;
    let mut failed: Option<DbError> = None;
    loop {
        let rows = current.rows as u64;
        let mut next = current.empty_like();
        let encoded = current.encoded;
        let write = async {
            match failed {
                None if rows > 0 => sink.write(encoded).await,
                _ => Ok(()),
            }
        };
        let read = async { more && fill(&mut next) };
        let (result, more_after) = futures::join!(write, read);
        match result {
            Ok(()) if failed.is_none() => written += rows,
            Ok(()) => {}
            Err(e) => failed = Some(e),
        }
        if !more && next.rows == 0 {
            break;
        }
        (current, more) = (next, more_after);
    }
    match (failed, sink) {
        (Some(e), Sink::Copy(copy)) => {
            // Abort so the connection is usable for the rollback that follows.
            let _ = copy.abort("bulk insert failed").await;
            Err(e)
        }
        (Some(e), Sink::Insert { .. }) => Err(e),
        (None, Sink::Copy(copy)) => {
            copy.finish().await?;
            Ok(written)
        }
        (None, Sink::Insert { .. }) => Ok(written),
    }
}

/// Where a stream of batches goes: one INSERT per batch on SQLite, one COPY for the whole
/// stream on PostgreSQL.
enum Sink<'c> {
    Insert {
        conn: &'c mut SqliteConnection,
        table: &'c str,
        columns: &'c [&'c str],
    },
    Copy(PgCopyIn<&'c mut PgConnection>),
}

impl Sink<'_> {
    async fn write(&mut self, encoded: Encoded) -> Result<(), DbError> {
        match (self, encoded) {
            (
                Sink::Insert {
                    conn,
                    table,
                    columns,
                },
                Encoded::Values(values),
            ) => insert_values(conn, table, columns, values).await,
            (Sink::Copy(copy), Encoded::Copy(lines)) => send_copy(copy, lines).await,
            _ => unreachable!("a batch is encoded for the backend of the stream it joins"),
        }
    }
}

async fn insert_values(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &[&str],
    values: Vec<Val>,
) -> Result<(), DbError> {
    let rows = values.len() / columns.len();
    let sql = insert_sql(table, columns, rows);
    let mut query = sqlx::query(&sql);
    for value in values {
        query = match value {
            Val::Int(v) => query.bind(v),
            Val::OptInt(v) => query.bind(v),
            Val::Text(v) => query.bind(v),
            Val::OptText(v) => query.bind(v),
            Val::Float(v) => query.bind(v),
            Val::Bool(v) => query.bind(v),
            Val::Date(v) => query.bind(v),
            Val::OptDate(v) => query.bind(v),
        };
    }
    query.execute(conn).await?;
    Ok(())
}

async fn send_copy(copy: &mut PgCopyIn<&mut PgConnection>, lines: String) -> Result<(), DbError> {
    copy.send(lines.into_bytes()).await?;
    Ok(())
}

fn copy_sql(table: &str, columns: &[&str]) -> String {
    format!(
        "copy {table} ({}) from stdin with (format csv)",
        columns.join(", ")
    )
}

/// A multi-row insert with anonymous `?` placeholders. (Numbered `$n` ones cost SQLite a
/// linear search per bound value — sqlx asks each one's name — which made a batch of
/// thousands of values quadratic: 80 % of import time in a profile.)
fn insert_sql(table: &str, columns: &[&str], rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    format!(
        "insert into {table} ({}) values {}",
        columns.join(", "),
        vec![row.as_str(); rows].join(", ")
    )
}

/// One line of COPY … (format csv): an unquoted empty field is NULL, text is always quoted.
fn append_copy_line(buf: &mut String, row: &[Val]) {
    use std::fmt::Write;
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        // Writing to a String cannot fail.
        let _ = match value {
            Val::Int(v) | Val::OptInt(Some(v)) => write!(buf, "{v}"),
            Val::Float(v) => write!(buf, "{v}"),
            Val::Bool(v) => write!(buf, "{v}"),
            Val::Date(v) | Val::OptDate(Some(v)) => write!(buf, "{}", v.format("%Y-%m-%d")),
            Val::Text(v) | Val::OptText(Some(v)) => {
                buf.push('"');
                buf.push_str(&v.replace('"', "\"\""));
                buf.push('"');
                Ok(())
            }
            Val::OptInt(None) | Val::OptText(None) | Val::OptDate(None) => Ok(()),
        };
    }
    buf.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_insert_numbers_placeholders_row_by_row() {
        assert_eq!(
            insert_sql("t", &["a", "b"], 2),
            "insert into t (a, b) values (?, ?), (?, ?)"
        );
    }

    #[test]
    fn copy_lines_quote_text_and_leave_nulls_empty() {
        let mut buf = String::new();
        let row = [
            Val::Int(7),
            Val::Text("say \"hi\", ok".into()),
            Val::OptText(None),
            Val::Text(String::new()),
            Val::Bool(true),
        ];
        append_copy_line(&mut buf, &row);
        assert_eq!(buf, "7,\"say \"\"hi\"\", ok\",,\"\",true\n");
    }
}
