//! Charts as inline SVG, drawn on the server: no script and no chart library in the page,
//! and what a chart shows can be tested like any other markup.

use maud::{html, Markup};

use super::i18n::Lang;

/// One month of a proposal's chart: consumption for past months, the forecast for future
/// ones, and the projected stock with and without the proposal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Month {
    pub label: String,
    pub history: Option<f64>,
    /// (mean, 80 % quantile, 95 % quantile) of demand.
    pub forecast: Option<(f64, f64, f64)>,
    pub stock_with: Option<f64>,
    pub stock_without: Option<f64>,
}

const W: f64 = 760.0;
const H: f64 = 280.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

/// Maps values to the plot area.
struct Frame {
    lo: f64,
    hi: f64,
    slot: f64,
}

impl Frame {
    fn new(months: &[Month]) -> Frame {
        let values = months.iter().flat_map(|m| {
            [
                m.history,
                m.forecast.map(|f| f.2),
                m.stock_with,
                m.stock_without,
            ]
            .into_iter()
            .flatten()
        });
        let (lo, hi) = values.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        Frame {
            lo,
            hi: hi * 1.05,
            slot: (W - LEFT - RIGHT) / months.len().max(1) as f64,
        }
    }

    fn x(&self, i: usize) -> f64 {
        LEFT + self.slot * (i as f64 + 0.5)
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (H - TOP - BOTTOM) * (self.hi - v) / (self.hi - self.lo)
    }
}

/// A tick label with as many decimals as the span needs.
fn tick(v: f64, span: f64) -> String {
    if span < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `x,y x,y …` of the points of a series that has values.
fn points(frame: &Frame, months: &[Month], value: impl Fn(&Month) -> Option<f64>) -> String {
    months
        .iter()
        .enumerate()
        .filter_map(|(i, m)| value(m).map(|v| format!("{:.1},{:.1}", frame.x(i), frame.y(v))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A band between two series (upper edge left to right, lower edge back).
fn band(
    frame: &Frame,
    months: &[Month],
    upper: fn(&Month) -> Option<f64>,
    lower: fn(&Month) -> Option<f64>,
) -> String {
    let top = points(frame, months, upper);
    let mut bottom: Vec<String> = months
        .iter()
        .enumerate()
        .filter_map(|(i, m)| lower(m).map(|v| format!("{:.1},{:.1}", frame.x(i), frame.y(v))))
        .collect();
    bottom.reverse();
    format!("{top} {}", bottom.join(" "))
}

/// History bars, the forecast mean with its 80 % and 95 % bands, and the projected stock
/// with (solid) and without (dashed) the proposal.
pub fn proposal_chart(lang: Lang, months: &[Month]) -> Markup {
    let f = Frame::new(months);
    let label_every = months.len().div_ceil(12).max(1);
    let ticks = [f.lo, (f.lo + f.hi) / 2.0, f.hi];
    let title = lang.t(
        "需求历史、预测（均值与 80%/95% 分位）与预计库存",
        "Demand history, forecast (mean with 80 %/95 % quantiles) and projected stock",
    );
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title) data-chart="proposal" {
                title { (title) }
                @for v in ticks {
                    line.grid x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", f.y(v))) y2=(format!("{:.1}", f.y(v))) {}
                    text.tick x=(LEFT - 4.0) y=(format!("{:.1}", f.y(v) + 4.0)) text-anchor="end" { (tick(v, f.hi - f.lo)) }
                }
                line.axis x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", f.y(0.0))) y2=(format!("{:.1}", f.y(0.0))) {}
                @for (i, m) in months.iter().enumerate() {
                    @if let Some(h) = m.history {
                        rect.history x=(format!("{:.1}", f.x(i) - f.slot * 0.35)) y=(format!("{:.1}", f.y(h.max(0.0))))
                            width=(format!("{:.1}", f.slot * 0.7)) height=(format!("{:.1}", (f.y(0.0) - f.y(h.max(0.0))).max(0.0))) {
                            title { (m.label) ": " (h) }
                        }
                    }
                    @if i % label_every == 0 {
                        text.tick x=(format!("{:.1}", f.x(i))) y=(H - BOTTOM + 16.0) text-anchor="middle" { (m.label) }
                    }
                }
                polygon.band95 points=(band(&f, months, |m| m.forecast.map(|x| x.2), |m| m.forecast.map(|x| x.0))) {}
                polygon.band80 points=(band(&f, months, |m| m.forecast.map(|x| x.1), |m| m.forecast.map(|x| x.0))) {}
                polyline.mean points=(points(&f, months, |m| m.forecast.map(|x| x.0))) {}
                polyline.without points=(points(&f, months, |m| m.stock_without)) {}
                polyline.with points=(points(&f, months, |m| m.stock_with)) {}
            }
            figcaption.legend {
                span.key.history { (lang.t("历史消耗", "consumption")) }
                span.key.mean { (lang.t("预测均值", "forecast mean")) }
                span.key.band80 { (lang.t("80% 分位", "80 % quantile")) }
                span.key.band95 { (lang.t("95% 分位", "95 % quantile")) }
                span.key.with { (lang.t("预计库存（含本建议）", "projected stock with this proposal")) }
                span.key.without { (lang.t("预计库存（不含）", "without it")) }
            }
        }
    }
}

/// Horizontal bars, one per row: (label, value, text shown); values in 0..=max.
pub fn bars(caption: &str, rows: &[(String, f64, String)], max: f64) -> Markup {
    let row_h = 22.0;
    let height = row_h * rows.len() as f64 + 8.0;
    let label_w = 150.0;
    let bar_w = 420.0;
    html! {
        svg.bars viewBox=(format!("0 0 {} {height}", label_w + bar_w + 90.0)) role="img" aria-label=(caption) {
            title { (caption) }
            @for (i, (label, value, shown)) in rows.iter().enumerate() {
                @let y = 4.0 + row_h * i as f64;
                text.tick x=(label_w - 6.0) y=(y + 15.0) text-anchor="end" { (label) }
                rect.bar x=(label_w) y=(y + 3.0) height=(row_h - 6.0)
                    width=(format!("{:.1}", bar_w * (value / max.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0))) {}
                text.tick x=(format!("{:.1}", label_w + bar_w * (value / max.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0) + 6.0)) y=(y + 15.0) { (shown) }
            }
        }
    }
}

/// One stacked bar of ageing buckets (amounts in minor units), widths proportional to `scale`.
pub fn ageing_bar(lang: Lang, buckets: [i64; 4], scale: i64) -> Markup {
    let names = [
        lang.t("0–30 天", "0–30 days"),
        lang.t("31–60 天", "31–60 days"),
        lang.t("61–90 天", "61–90 days"),
        lang.t("90 天以上", "over 90 days"),
    ];
    let width = 240.0;
    let scale = scale.max(1) as f64;
    let mut x = 0.0;
    let spans: Vec<(f64, f64)> = buckets
        .iter()
        .map(|amount| {
            let w = width * (*amount as f64 / scale).clamp(0.0, 1.0);
            x += w;
            (x - w, w)
        })
        .collect();
    html! {
        svg.ageing viewBox=(format!("0 0 {width} 14")) role="img" aria-label=(lang.t("账龄", "Ageing")) {
            @for (i, (x, w)) in spans.iter().enumerate() {
                rect class=(format!("age{i}")) x=(format!("{x:.1}")) y="0" width=(format!("{w:.1}")) height="14" {
                    title { (names[i]) ": " (super::money(buckets[i])) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(
        label: &str,
        history: Option<f64>,
        forecast: Option<(f64, f64, f64)>,
        with: Option<f64>,
    ) -> Month {
        Month {
            label: label.into(),
            history,
            forecast,
            stock_with: with,
            stock_without: with.map(|w| w - 4.0),
        }
    }

    #[test]
    fn frame_spans_negative_projections_and_the_largest_quantile() {
        let months = [
            month("2025-12", Some(3.0), None, None),
            month("2026-01", None, Some((2.0, 4.0, 10.0)), Some(1.0)),
        ];
        let f = Frame::new(&months);
        assert_eq!(f.lo, -3.0);
        assert!((f.hi - 10.5).abs() < 1e-9);
        // Zero sits between the top and the bottom of the plot.
        assert!(f.y(0.0) > TOP && f.y(0.0) < H - BOTTOM);
        assert!((f.y(f.hi) - TOP).abs() < 1e-9);
    }

    #[test]
    fn chart_draws_each_series_and_escapes_labels() {
        let months = [
            month("<b>", Some(3.0), None, None),
            month("2026-01", None, Some((2.0, 4.0, 10.0)), Some(1.0)),
            month("2026-02", None, Some((2.0, 4.0, 10.0)), Some(-1.0)),
        ];
        let svg = proposal_chart(Lang::En, &months).into_string();
        for class in ["history", "band80", "band95", "mean", "with", "without"] {
            assert!(
                svg.contains(&format!("class=\"{class}\"")),
                "{class} missing"
            );
        }
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        // The mean line has a point per forecast month only.
        let mean = svg.split("class=\"mean\" points=\"").nth(1).unwrap_or("");
        assert_eq!(mean.split('"').next().unwrap_or("").split(' ').count(), 2);
    }

    #[test]
    fn ageing_widths_add_up_to_the_share_of_the_scale() {
        let svg = ageing_bar(Lang::En, [100, 0, 50, 50], 400).into_string();
        assert!(svg.contains("width=\"60.0\"") && svg.contains("width=\"30.0\""));
    }
}
