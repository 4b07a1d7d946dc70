//! The interchange files, their headers and the order a whole set is imported in.

use std::fmt;

/// One interchange file of DESIGN §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    Locations,
    Lanes,
    Suppliers,
    Parts,
    Prices,
    Fits,
    Equipment,
    Faults,
    #[value(alias = "peak_season")]
    PeakSeason,
    Stock,
    Credit,
}

impl Kind {
    /// Every kind, each after the kinds it refers to.
    pub const IN_DEPENDENCY_ORDER: [Kind; 11] = [
        Kind::Locations,
        Kind::Lanes,
        Kind::Suppliers,
        Kind::Parts,
        Kind::Prices,
        Kind::Fits,
        Kind::Equipment,
        Kind::Faults,
        Kind::PeakSeason,
        Kind::Stock,
        Kind::Credit,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Locations => "locations.csv",
            Kind::Lanes => "lanes.csv",
            Kind::Suppliers => "suppliers.csv",
            Kind::Parts => "parts.csv",
            Kind::Prices => "prices.csv",
            Kind::Fits => "fits.csv",
            Kind::Equipment => "equipment.csv",
            Kind::Faults => "faults.csv",
            Kind::PeakSeason => "peak_season.csv",
            Kind::Stock => "stock.csv",
            Kind::Credit => "credit.csv",
        }
    }

    /// The exact header row; a file with other, extra or missing columns is refused.
    pub fn header(self) -> &'static [&'static str] {
        match self {
            Kind::Locations => &[
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
                "capacity_m3",
            ],
            Kind::Lanes => &[
                "from_code",
                "to_code",
                "lead_time_days",
                "cost_per_unit",
                "currency",
            ],
            Kind::Suppliers => &["code", "name"],
            Kind::Parts => &[
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
                "replaced_on",
            ],
            Kind::Prices => &["part_code", "kind", "amount", "currency", "effective_from"],
            Kind::Fits => &["part_code", "equipment_model"],
            Kind::Equipment => &[
                "serial",
                "model",
                "product_line",
                "station_code",
                "delivered_on",
                "warranty_until",
            ],
            Kind::Faults => &[
                "work_order",
                "opened_on",
                "serial",
                "station_code",
                "category",
                "fault_level",
                "part_code",
                "qty",
                "warranty",
            ],
            Kind::PeakSeason => &["region", "equipment_model", "month", "usage_index"],
            Kind::Stock => &["part_code", "location_code", "on_hand"],
            Kind::Credit => &["station_code", "limit", "currency"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name().trim_end_matches(".csv"))
    }
}
