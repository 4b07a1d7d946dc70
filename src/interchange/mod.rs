//! CSV interchange (DESIGN §9): the file formats, import and export.
//!
//! Import is all-or-nothing and reports every bad row as `file:line: column: why`; export
//! writes what import reads, so a data set makes the round trip unchanged.

pub(crate) mod bulk;
mod export;
mod import;
mod kind;
pub mod rows;

pub use export::{export_dir, export_file, history_snapshot, ExportError, HistorySnapshot};
pub use import::{
    import_dir, import_file, import_in, ImportError, ImportSummary, RowError, FAULT_COLUMNS,
};
pub use kind::Kind;
