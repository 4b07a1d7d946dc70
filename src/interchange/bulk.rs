//! Bulk writing of validated rows: multi-row INSERT on SQLite, COPY on PostgreSQL.
//! Rows are buffered and flushed in bounded batches, so memory stays flat in file size.

use chrono::NaiveDate;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use crate::db::{Conn, DbError};

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

pub struct BulkInsert {
    table: &'static str,
    columns: &'static [&'static str],
    rows_per_statement: usize,
    values: Vec<Val>,
    copy_buf: String,
    written: u64,
}

impl BulkInsert {
    pub fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        BulkInsert {
            table,
            columns,
            rows_per_statement: (SQLITE_MAX_VARIABLES / columns.len()).max(1),
            values: Vec::new(),
            copy_buf: String::new(),
            written: 0,
        }
    }

    /// Queues one row (values in column order), flushing a full batch.
    pub async fn push(&mut self, conn: Conn<'_>, row: Vec<Val>) -> Result<(), DbError> {
        debug_assert_eq!(row.len(), self.columns.len());
        self.written += 1;
        match conn {
            Conn::Sqlite(c) => {
                self.values.extend(row);
                if self.values.len() >= self.rows_per_statement * self.columns.len() {
                    self.flush_sqlite(c).await?;
                }
            }
            Conn::Postgres(c) => {
                append_copy_line(&mut self.copy_buf, &row);
                if self.copy_buf.len() >= COPY_CHUNK_BYTES {
                    self.flush_postgres(c).await?;
                }
            }
        }
        Ok(())
    }

    /// Writes what is still buffered; returns the number of rows written in all.
    pub async fn finish(mut self, conn: Conn<'_>) -> Result<u64, DbError> {
        match conn {
            Conn::Sqlite(c) => self.flush_sqlite(c).await?,
            Conn::Postgres(c) => self.flush_postgres(c).await?,
        }
        Ok(self.written)
    }

    async fn flush_sqlite(&mut self, conn: &mut SqliteConnection) -> Result<(), DbError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let rows = self.values.len() / self.columns.len();
        let sql = insert_sql(self.table, self.columns, rows);
        let mut query = sqlx::query(&sql);
        for value in self.values.drain(..) {
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

    async fn flush_postgres(&mut self, conn: &mut PgConnection) -> Result<(), DbError> {
        if self.copy_buf.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "copy {} ({}) from stdin with (format csv)",
            self.table,
            self.columns.join(", ")
        );
        let mut copy = conn.copy_in_raw(&sql).await?;
        let payload = std::mem::take(&mut self.copy_buf);
        if let Err(e) = copy.send(payload.into_bytes()).await {
            // Abort so the connection is usable for the rollback that follows.
            let _ = copy.abort("bulk insert failed").await;
            return Err(e.into());
        }
        copy.finish().await?;
        Ok(())
    }
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
