//! Syntetos–Boylan demand classification (Syntetos, Boylan & Croston 2005): the average
//! inter-demand interval (ADI) and the squared coefficient of variation of the non-zero demand
//! sizes (CV²) split series into four classes, cut at ADI 1.32 and CV² 0.49.

use serde::{Deserialize, Serialize};

/// ADI above this is intermittent.
pub const ADI_CUT: f32 = 1.32;
/// CV² of the demand sizes above this is erratic.
pub const CV2_CUT: f32 = 0.49;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DemandClass {
    Smooth,
    Erratic,
    Intermittent,
    Lumpy,
    /// No demand at all in the history: ADI and CV² are undefined.
    NoDemand,
}

impl DemandClass {
    pub const ALL: [DemandClass; 5] = [
        DemandClass::Smooth,
        DemandClass::Erratic,
        DemandClass::Intermittent,
        DemandClass::Lumpy,
        DemandClass::NoDemand,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DemandClass::Smooth => "smooth",
            DemandClass::Erratic => "erratic",
            DemandClass::Intermittent => "intermittent",
            DemandClass::Lumpy => "lumpy",
            DemandClass::NoDemand => "no-demand",
        }
    }
}

/// One pass of summary statistics over a series; everything the classification and the
/// smoothing initialisation need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesStats {
    pub periods: usize,
    pub nonzero: usize,
    pub total: f64,
    /// Mean of the non-zero demands (0 if none).
    pub size_mean: f32,
    /// Squared coefficient of variation of the non-zero demands (population variance).
    pub size_cv2: f32,
}

impl SeriesStats {
    pub fn of(y: &[f32]) -> Self {
        let (mut nonzero, mut sum, mut sum2) = (0usize, 0f64, 0f64);
        for &v in y {
            if v > 0.0 {
                nonzero += 1;
                sum += v as f64;
                sum2 += (v as f64) * (v as f64);
            }
        }
        let (size_mean, size_cv2) = if nonzero == 0 {
            (0.0, 0.0)
        } else {
            let m = sum / nonzero as f64;
            let var = (sum2 / nonzero as f64 - m * m).max(0.0);
            (m as f32, (var / (m * m)) as f32)
        };
        SeriesStats {
            periods: y.len(),
            nonzero,
            total: sum,
            size_mean,
            size_cv2,
        }
    }

    /// Mean demand per period (0 for an empty series).
    pub fn mean(&self) -> f32 {
        if self.periods == 0 {
            0.0
        } else {
            (self.total / self.periods as f64) as f32
        }
    }

    /// Average inter-demand interval: periods per non-zero demand.
    pub fn adi(&self) -> Option<f32> {
        (self.nonzero > 0).then(|| self.periods as f32 / self.nonzero as f32)
    }

    /// Fraction of periods with a demand.
    pub fn demand_probability(&self) -> f32 {
        if self.periods == 0 {
            0.0
        } else {
            self.nonzero as f32 / self.periods as f32
        }
    }

    pub fn class(&self) -> DemandClass {
        let Some(adi) = self.adi() else {
            return DemandClass::NoDemand;
        };
        match (adi > ADI_CUT, self.size_cv2 > CV2_CUT) {
            (false, false) => DemandClass::Smooth,
            (false, true) => DemandClass::Erratic,
            (true, false) => DemandClass::Intermittent,
            (true, true) => DemandClass::Lumpy,
        }
    }
}

/// Classify a demand series.
pub fn classify(y: &[f32]) -> DemandClass {
    SeriesStats::of(y).class()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn four_hand_made_series_land_in_their_classes() {
        // Smooth: demand every period (ADI 1), sizes 4,5,6,5 -> mean 5, var 0.5, CV² 0.02.
        assert_eq!(classify(&[4.0, 5.0, 6.0, 5.0]), DemandClass::Smooth);
        // Erratic: every period, sizes 1,9,1,9 -> mean 5, var 16, CV² 0.64 > 0.49.
        assert_eq!(classify(&[1.0, 9.0, 1.0, 9.0]), DemandClass::Erratic);
        // Intermittent: 2 demands in 6 periods -> ADI 3; sizes 2,2 -> CV² 0.
        assert_eq!(
            classify(&[0.0, 2.0, 0.0, 0.0, 2.0, 0.0]),
            DemandClass::Intermittent
        );
        // Lumpy: ADI 3 again, sizes 1,9 -> mean 5, var 16, CV² 0.64.
        assert_eq!(
            classify(&[0.0, 1.0, 0.0, 0.0, 9.0, 0.0]),
            DemandClass::Lumpy
        );
    }

    #[test]
    fn cuts_are_exclusive_at_the_boundary() {
        // 4 demands in 5 periods: ADI 1.25 <= 1.32, sizes equal -> smooth.
        assert_eq!(classify(&[1.0, 1.0, 0.0, 1.0, 1.0]), DemandClass::Smooth);
        // 3 demands in 4 periods: ADI 1.333 > 1.32 -> intermittent.
        assert_eq!(classify(&[1.0, 0.0, 1.0, 1.0]), DemandClass::Intermittent);
    }

    #[test]
    fn empty_and_all_zero_series_have_no_demand() {
        assert_eq!(classify(&[]), DemandClass::NoDemand);
        assert_eq!(classify(&[0.0; 7]), DemandClass::NoDemand);
        let s = SeriesStats::of(&[]);
        assert_eq!(s.mean(), 0.0);
        assert_eq!(s.adi(), None);
    }

    #[test]
    fn one_spike_is_intermittent() {
        // 1 demand in 10 periods: ADI 10; a single size has CV² 0.
        let mut y = [0.0f32; 10];
        y[4] = 7.0;
        let s = SeriesStats::of(&y);
        assert!((s.adi().unwrap() - 10.0).abs() < 1e-6);
        assert!(s.size_cv2.abs() < 1e-6);
        assert_eq!(s.class(), DemandClass::Intermittent);
    }
}
