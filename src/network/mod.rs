//! The network: locations (central warehouses, regional centres, service stations) and the
//! lanes between them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    Central,
    Regional,
    Station,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::Central => "central",
            LocationKind::Regional => "regional",
            LocationKind::Station => "station",
        }
    }
}
