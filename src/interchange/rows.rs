//! One struct per interchange file of DESIGN §9. The field order is the column order; these
//! structs are the whole public CSV contract, shared by import, export and the generator.
//!
//! Rows hold codes as plain strings: whether a code follows the coding rule and whether it
//! refers to something that exists is checked on import, where a bad row can be reported.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::catalog::{Criticality, PriceKind};
use crate::history::FaultCategory;
use crate::network::LocationKind;
use crate::units::{Amount, Qty};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationRow {
    pub code: String,
    pub name: String,
    pub kind: LocationKind,
    pub parent_code: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub key_city: bool,
    pub remote: bool,
    pub lat: f64,
    pub lon: f64,
    pub capacity_m3: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneRow {
    pub from_code: String,
    pub to_code: String,
    pub lead_time_days: u32,
    pub cost_per_unit: Amount,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierRow {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRow {
    pub code: String,
    pub name: String,
    pub uom: String,
    pub product_line: String,
    pub criticality: Criticality,
    pub wear_part: bool,
    pub volume_l: f64,
    pub weight_kg: f64,
    pub supplier_code: String,
    pub lead_time_days: u32,
    pub moq: u32,
    pub pack_size: u32,
    pub replaced_by: Option<String>,
    pub replaced_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceRow {
    pub part_code: String,
    pub kind: PriceKind,
    pub amount: Amount,
    pub currency: String,
    pub effective_from: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitRow {
    pub part_code: String,
    pub equipment_model: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockRow {
    pub part_code: String,
    pub location_code: String,
    pub on_hand: Qty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquipmentRow {
    pub serial: String,
    pub model: String,
    pub product_line: String,
    pub station_code: String,
    pub delivered_on: NaiveDate,
    pub warranty_until: NaiveDate,
}

/// One part line of a work order; a work order with no part has an empty `part_code` and
/// `qty` 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRow {
    pub work_order: String,
    pub opened_on: NaiveDate,
    pub serial: String,
    pub station_code: String,
    pub category: FaultCategory,
    pub fault_level: String,
    pub part_code: Option<String>,
    pub qty: Qty,
    pub warranty: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakSeasonRow {
    pub region: String,
    pub equipment_model: String,
    pub month: u32,
    pub usage_index: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditRow {
    pub station_code: String,
    pub limit: Amount,
    pub currency: String,
}

/// A valid row of each kind. Import uses it to find which cells of a row that fails to
/// parse are bad: each cell in turn is tried inside the sample row.
pub trait SampleRow: Serialize {
    fn sample() -> Self;
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

impl SampleRow for LocationRow {
    fn sample() -> Self {
        LocationRow {
            code: "S".into(),
            name: "n".into(),
            kind: LocationKind::Station,
            parent_code: Some("R".into()),
            region: Some("r".into()),
            city: Some("c".into()),
            key_city: false,
            remote: false,
            lat: 0.0,
            lon: 0.0,
            capacity_m3: 1.0,
        }
    }
}

impl SampleRow for LaneRow {
    fn sample() -> Self {
        LaneRow {
            from_code: "A".into(),
            to_code: "B".into(),
            lead_time_days: 1,
            cost_per_unit: Amount::ZERO,
            currency: "CNY".into(),
        }
    }
}

impl SampleRow for SupplierRow {
    fn sample() -> Self {
        SupplierRow {
            code: "S".into(),
            name: "n".into(),
        }
    }
}

impl SampleRow for PartRow {
    fn sample() -> Self {
        PartRow {
            code: "P".into(),
            name: "n".into(),
            uom: "pcs".into(),
            product_line: "PT".into(),
            criticality: Criticality::A,
            wear_part: false,
            volume_l: 1.0,
            weight_kg: 1.0,
            supplier_code: "S".into(),
            lead_time_days: 1,
            moq: 1,
            pack_size: 1,
            replaced_by: None,
            replaced_on: None,
        }
    }
}

impl SampleRow for PriceRow {
    fn sample() -> Self {
        PriceRow {
            part_code: "P".into(),
            kind: PriceKind::Cost,
            amount: Amount::ZERO,
            currency: "CNY".into(),
            effective_from: day(2020, 1, 1),
        }
    }
}

impl SampleRow for FitRow {
    fn sample() -> Self {
        FitRow {
            part_code: "P".into(),
            equipment_model: "M".into(),
        }
    }
}

impl SampleRow for StockRow {
    fn sample() -> Self {
        StockRow {
            part_code: "P".into(),
            location_code: "L".into(),
            on_hand: Qty::ZERO,
        }
    }
}

impl SampleRow for EquipmentRow {
    fn sample() -> Self {
        EquipmentRow {
            serial: "E".into(),
            model: "M".into(),
            product_line: "PT".into(),
            station_code: "S".into(),
            delivered_on: day(2020, 1, 1),
            warranty_until: day(2021, 1, 1),
        }
    }
}

impl SampleRow for FaultRow {
    fn sample() -> Self {
        FaultRow {
            work_order: "W".into(),
            opened_on: day(2020, 1, 1),
            serial: "E".into(),
            station_code: "S".into(),
            category: FaultCategory::Other,
            fault_level: "A1".into(),
            part_code: None,
            qty: Qty::ZERO,
            warranty: false,
        }
    }
}

impl SampleRow for PeakSeasonRow {
    fn sample() -> Self {
        PeakSeasonRow {
            region: "r".into(),
            equipment_model: "M".into(),
            month: 1,
            usage_index: 1.0,
        }
    }
}

impl SampleRow for CreditRow {
    fn sample() -> Self {
        CreditRow {
            station_code: "S".into(),
            limit: Amount::ZERO,
            currency: "CNY".into(),
        }
    }
}
