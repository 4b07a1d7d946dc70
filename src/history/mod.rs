//! The demand signal: installed equipment, fault/repair records and peak-season usage.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultCategory {
    Electrical,
    Mechanical,
    Hydraulic,
    Other,
}

impl FaultCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCategory::Electrical => "electrical",
            FaultCategory::Mechanical => "mechanical",
            FaultCategory::Hydraulic => "hydraulic",
            FaultCategory::Other => "other",
        }
    }
}
