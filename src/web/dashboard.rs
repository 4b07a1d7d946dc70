//! The dashboard: fill by tier and region, stock value and turns, forecast accuracy and the
//! 24-hour reach of critical parts.

use axum::extract::State;
use maud::html;

use super::chart;
use super::layout::page;
use super::{money, percent, service_fail, Ctx, PageResult};
use crate::api::AppState;
use crate::kpi;

pub async fn show(State(s): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let d = kpi::dashboard(&s.db, &s.insight)
        .await
        .map_err(service_fail(lang))?;
    let fill_rows = |rows: &[kpi::Readiness]| -> Vec<(String, f64, String)> {
        rows.iter()
            .map(|r| (lang.word(&r.group), r.share(), percent(r.share())))
            .collect()
    };
    let reach_total = d.reach.first();
    let body = html! {
        p.summary {
            @if let Some(day) = d.as_of { (lang.t("数据截至", "Data up to")) " " (day) }
            @if let Some((run, first)) = d.forecast_run { " · " (lang.t("预测", "forecast")) " #" (run) " " (lang.t("自", "from")) " " (first.format("%Y-%m")) }
            @if let Some(run) = d.plan_run { " · " (lang.t("计划", "plan")) " #" (run) }
        }
        div.grid {
            section.card #reach {
                h2 { (lang.t("24 小时可达率", "24-hour reach")) }
                @if let Some(r) = reach_total {
                    p.big { (percent(r.unit_share())) }
                    p.hint {
                        (lang.t("保有设备中，其全部 A 类关键件在本站或 1 天内可达地点有货的比例", "of installed machines whose class A parts are all in stock at their station or a location one day away"))
                        " (" (r.units_reached) " / " (r.units) "); "
                        (lang.t("按设备×零件计", "by machine × part")) " " (percent(r.pair_share()))
                    }
                    (chart::bars(lang.t("各区域 24 小时可达率", "24-hour reach by region"),
                        &d.reach.iter().skip(1).map(|r| (r.group.clone(), r.unit_share(), percent(r.unit_share()))).collect::<Vec<_>>(), 1.0))
                }
            }
            section.card #fill {
                h2 { (lang.t("满足率", "Fill rate")) }
                @if !d.plan_fill.is_empty() {
                    h3 { (lang.t("计划预计（按服务等级）", "Projected by the plan, by tier")) }
                    (chart::bars(lang.t("计划预计满足率", "Projected fill rate"),
                        &d.plan_fill.iter().map(|(t, f)| (t.clone(), *f, percent(*f))).collect::<Vec<_>>(), 1.0))
                }
                h3 { (lang.t("现有库存可满足下月需求（按服务等级）", "Next month's demand covered by stock now, by tier")) }
                (chart::bars(lang.t("按服务等级", "By tier"), &fill_rows(&d.ready_by_tier), 1.0))
                h3 { (lang.t("按区域", "By region")) }
                (chart::bars(lang.t("按区域", "By region"), &fill_rows(&d.ready_by_region), 1.0))
            }
            section.card #stock-value {
                h2 { (lang.t("库存金额与周转", "Stock value and turns")) }
                div.scroll { table {
                    thead { tr { th { (lang.t("区域", "Region")) } th.num { (lang.t("库存金额（成本）", "Stock at cost")) } th.num { (lang.t("近 12 月消耗", "12-month use")) } th.num { (lang.t("周转次数/年", "Turns / year")) } } }
                    tbody { @for r in &d.stock { tr {
                        td { (r.region) } td.num { (money(r.value_minor)) } td.num { (money(r.consumption_minor)) }
                        td.num { @if let Some(t) = r.turns() { (format!("{t:.2}")) } @else { "—" } }
                    } } }
                } }
            }
            section.card #accuracy {
                h2 { (lang.t("最新预测的准确度", "Accuracy of the newest forecast")) }
                @match &d.accuracy {
                    Some(a) => {
                        dl.facts {
                            dt { (lang.t("已发生月份", "Months recorded")) } dd { (a.months) }
                            dt { "WAPE" } dd { (percent(a.wape)) }
                            dt { (lang.t("偏差", "Bias")) } dd { (percent(a.bias)) }
                            dt { (lang.t("80% 分位覆盖率", "80 % quantile coverage")) } dd { (percent(a.p80_coverage)) }
                        }
                    }
                    None => p.hint { (lang.t("预测期内还没有完整月份的实际数据；记录后此处显示 WAPE、偏差和分位覆盖率。", "No whole month of the forecast's horizon is recorded yet; WAPE, bias and quantile coverage appear once one is.")) }
                }
            }
        }
    };
    Ok(page(
        &ctx,
        "/ui/dashboard",
        lang.t("总览", "Dashboard"),
        body,
    ))
}
