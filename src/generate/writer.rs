//! Streamed CSV output: one `Table` per file, rows written as they are made. Per-station
//! work runs in parallel into in-memory `Chunk`s that are appended in station order, so the
//! bytes never depend on thread scheduling.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::GenerateError;
use crate::interchange::rows::{
    CreditRow, EquipmentRow, FaultRow, FitRow, LaneRow, LocationRow, PartRow, PeakSeasonRow,
    PriceRow, StockRow, SupplierRow,
};

/// A row type with its file name and header. The header is spelled out because an empty
/// file must still carry it; `headers_match_the_row_structs` keeps it equal to the fields.
pub trait CsvRow: Serialize {
    const FILE: &'static str;
    const HEADER: &'static [&'static str];
}

macro_rules! csv_row {
    ($row:ty, $file:literal, [$($col:literal),+ $(,)?]) => {
        impl CsvRow for $row {
            const FILE: &'static str = $file;
            const HEADER: &'static [&'static str] = &[$($col),+];
        }
    };
}

csv_row!(
    LocationRow,
    "locations.csv",
    [
        "code",
        "name",
        "kind",
        "parent_code",
        "region",
        "city",
        "key_city",
        "remote",
        "lat",
        "lon",
        "capacity_m3"
    ]
);
csv_row!(
    LaneRow,
    "lanes.csv",
    [
        "from_code",
        "to_code",
        "lead_time_days",
        "cost_per_unit",
        "currency"
    ]
);
csv_row!(SupplierRow, "suppliers.csv", ["code", "name"]);
csv_row!(
    PartRow,
    "parts.csv",
    [
        "code",
        "name",
        "uom",
        "product_line",
        "criticality",
        "wear_part",
        "volume_l",
        "weight_kg",
        "supplier_code",
        "lead_time_days",
        "moq",
        "pack_size",
        "replaced_by",
        "replaced_on"
    ]
);
csv_row!(
    PriceRow,
    "prices.csv",
    ["part_code", "kind", "amount", "currency", "effective_from"]
);
csv_row!(FitRow, "fits.csv", ["part_code", "equipment_model"]);
csv_row!(
    StockRow,
    "stock.csv",
    ["part_code", "location_code", "on_hand"]
);
csv_row!(
    EquipmentRow,
    "equipment.csv",
    [
        "serial",
        "model",
        "product_line",
        "station_code",
        "delivered_on",
        "warranty_until"
    ]
);
csv_row!(
    FaultRow,
    "faults.csv",
    [
        "work_order",
        "opened_on",
        "serial",
        "station_code",
        "category",
        "fault_level",
        "part_code",
        "qty",
        "warranty"
    ]
);
csv_row!(
    PeakSeasonRow,
    "peak_season.csv",
    ["region", "equipment_model", "month", "usage_index"]
);
csv_row!(
    CreditRow,
    "credit.csv",
    ["station_code", "limit", "currency"]
);

/// Rows serialized without a header, ready to be appended to a `Table`.
#[derive(Debug, Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    rows: u64,
}

/// Builds a `Chunk` of rows of one type; `file` names the target file in errors.
pub struct ChunkWriter<T: CsvRow> {
    csv: csv::Writer<Vec<u8>>,
    rows: u64,
    row: PhantomData<T>,
}

impl<T: CsvRow> ChunkWriter<T> {
    pub fn new() -> Self {
        let csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        ChunkWriter {
            csv,
            rows: 0,
            row: PhantomData,
        }
    }

    pub fn write(&mut self, row: &T, dir: &Path) -> Result<(), GenerateError> {
        self.csv
            .serialize(row)
            .map_err(|source| GenerateError::Csv {
                path: dir.join(T::FILE),
                source,
            })?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(self, dir: &Path) -> Result<Chunk, GenerateError> {
        let rows = self.rows;
        let bytes = self.csv.into_inner().map_err(|e| GenerateError::Io {
            path: dir.join(T::FILE),
            source: e.into_error(),
        })?;
        Ok(Chunk { bytes, rows })
    }
}

impl<T: CsvRow> Default for ChunkWriter<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// One output file, header written on creation. Rows are serialized into a `ChunkWriter`
/// that is spilled to the file every megabyte, so single rows and whole chunks share one path.
pub struct Table<T: CsvRow> {
    dir: PathBuf,
    path: PathBuf,
    file: BufWriter<File>,
    pending: ChunkWriter<T>,
    rows: u64,
}

const SPILL_BYTES: usize = 1 << 20;

impl<T: CsvRow> Table<T> {
    pub fn create(dir: &Path) -> Result<Self, GenerateError> {
        let path = dir.join(T::FILE);
        let file = File::create(&path).map_err(|source| GenerateError::Io {
            path: path.clone(),
            source,
        })?;
        let mut header = csv::Writer::from_writer(Vec::new());
        header
            .write_record(T::HEADER)
            .map_err(|source| GenerateError::Csv {
                path: path.clone(),
                source,
            })?;
        let header = header.into_inner().map_err(|e| GenerateError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        let mut table = Table {
            dir: dir.to_owned(),
            path,
            file: BufWriter::with_capacity(SPILL_BYTES, file),
            pending: ChunkWriter::new(),
            rows: 0,
        };
        table.write_bytes(&header)?;
        Ok(table)
    }

    pub fn write(&mut self, row: &T) -> Result<(), GenerateError> {
        self.pending.write(row, &self.dir)?;
        if self.pending.csv.get_ref().len() >= SPILL_BYTES {
            self.spill()?;
        }
        Ok(())
    }

    pub fn append(&mut self, chunk: Chunk) -> Result<(), GenerateError> {
        self.spill()?;
        self.write_bytes(&chunk.bytes)?;
        self.rows += chunk.rows;
        Ok(())
    }

    fn spill(&mut self) -> Result<(), GenerateError> {
        let pending = std::mem::take(&mut self.pending).finish(&self.dir)?;
        self.write_bytes(&pending.bytes)?;
        self.rows += pending.rows;
        Ok(())
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), GenerateError> {
        self.file
            .write_all(bytes)
            .map_err(|source| GenerateError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Flushes the file and returns its name and row count (header excluded).
    pub fn finish(mut self) -> Result<(&'static str, u64), GenerateError> {
        self.spill()?;
        self.file.flush().map_err(|source| GenerateError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok((T::FILE, self.rows))
    }
}
