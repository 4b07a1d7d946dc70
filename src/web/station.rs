//! The station page: availability of a part (own stock, nearest holders with ETA, regional
//! and national totals), recording issues and receipts, and what is on its way.

use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{csrf_field, page};
use super::session::random_secret;
use super::{
    fail, html_response, see_other, service_fail, Ctx, FormFields, Lang, PageResult, WebError,
};
use crate::api::AppState;
use crate::auth::Role;
use crate::availability::{self, Availability, StationMove};
use crate::{catalog, sql_fetch_all};

#[derive(Debug, Deserialize)]
pub struct StockQuery {
    station: Option<String>,
    part: Option<String>,
    /// What the last post recorded, to confirm it.
    done: Option<String>,
}

/// The station a page is about: a station user's own, else the one asked for.
pub(super) fn station_of(ctx: &Ctx, asked: Option<&str>) -> Option<String> {
    match ctx.session.station_code() {
        Some(own) => Some(own.to_owned()),
        None => asked
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    }
}

fn may_write(ctx: &Ctx, station: &str) -> bool {
    ctx.session.principal.may_write_station(station)
}

pub async fn show(State(s): State<AppState>, ctx: Ctx, Query(q): Query<StockQuery>) -> PageResult {
    let lang = ctx.lang;
    let station = station_of(&ctx, q.station.as_deref());
    let part = q.part.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let stations = if ctx.session.role() == Role::Station {
        Vec::new()
    } else {
        station_codes(&s).await.map_err(service_fail(lang))?
    };
    let found = match (&station, part) {
        (Some(st), Some(p)) => {
            Some(availability::availability(&s.db, &s.rule, &s.lookups, p, st).await)
        }
        _ => None,
    };
    let arrivals = match &station {
        Some(st) => availability::expected_arrivals(&s.db, st).await.ok(),
        None => None,
    };
    let body = html! {
        @if let Some(done) = &q.done { p.notice role="status" { (done) } }
        (search_form(lang, &ctx, station.as_deref(), part, &stations))
        @match found {
            Some(Ok(a)) => (availability_view(lang, &a)),
            Some(Err(e)) => p.error role="alert" { (e) },
            None => {},
        }
        @if let Some(st) = station.as_deref().filter(|st| may_write(&ctx, st)) {
            (record_form(lang, &ctx, st, part))
        }
        @if let (Some(st), Some(list)) = (&station, &arrivals) {
            (arrivals_view(lang, &ctx, st, list))
        }
    };
    Ok(page(
        &ctx,
        "/ui/stock",
        lang.t("库存查询", "Availability"),
        body,
    ))
}

async fn station_codes(s: &AppState) -> Result<Vec<String>, crate::service::ServiceError> {
    let mut conn = s.db.acquire().await?;
    let rows = sql_fetch_all!(
        (String,),
        conn.conn(),
        "select code from locations where kind = 'station' order by code"
    )?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

fn search_form(
    lang: Lang,
    ctx: &Ctx,
    station: Option<&str>,
    part: Option<&str>,
    stations: &[String],
) -> Markup {
    html! {
        form.filters method="get" action="/ui/stock" role="search" {
            @if ctx.session.role() != Role::Station {
                div {
                    label for="s-station" { (lang.t("服务站", "Station")) }
                    input #s-station type="text" name="station" list="station-codes" value=[station] required;
                    datalist #station-codes { @for c in stations { option value=(c) {} } }
                }
            }
            div {
                label for="s-part" { (lang.t("配件编码或名称", "Part code or name")) }
                input #s-part type="search" name="part" value=[part] list="part-suggestions" autocomplete="off"
                    data-suggest="/ui/parts/suggest" required;
                datalist #part-suggestions {}
            }
            div { button type="submit" { (lang.t("查询", "Look up")) } }
        }
    }
}

fn availability_view(lang: Lang, a: &Availability) -> Markup {
    html! {
        section.card #availability {
            h2 { span.code { (a.part_code) } " " (a.part_name) }
            @if a.superseded {
                p.notice { (lang.t("编码", "Code")) " " span.code { (a.requested_code) } " "
                    (lang.t("已被替代，显示替代件。", "is superseded; showing its successor.")) }
            }
            dl.facts #own-stock {
                dt { (lang.t("本站可用", "Available here")) } dd #own-available { (a.own.available) }
                dt { (lang.t("现有", "On hand")) } dd { (a.own.on_hand) }
                dt { (lang.t("已预留", "Reserved")) } dd { (a.own.reserved) }
                dt { (lang.t("在途", "In transit")) } dd #own-in-transit { (a.own.in_transit) }
                dt { (lang.t("区域合计", "Region total")) } dd { (a.regional_total) }
                dt { (lang.t("全国合计", "National total")) } dd { (a.national_total) }
            }
            h3 { (lang.t("最近的有货地点", "Nearest locations holding it")) }
            @if a.sources.is_empty() {
                p { (lang.t("其他地点都没有可用库存。", "No other location has any available.")) }
            } @else {
                div.scroll { table #sources {
                    thead { tr { th { (lang.t("地点", "Location")) } th { (lang.t("类型", "Kind")) } th { (lang.t("区域", "Region")) } th.num { (lang.t("可用", "Available")) } th.num { (lang.t("到货天数", "ETA days")) } th { (lang.t("依据", "Basis")) } } }
                    tbody { @for src in &a.sources { tr {
                        td { (src.location_code) } td { (lang.word(&src.kind)) } td { (src.region.as_deref().unwrap_or("")) }
                        td.num { (src.available) } td.num { (src.eta_days) } td { (src.eta_basis) }
                    } } }
                } }
            }
        }
    }
}

fn record_form(lang: Lang, ctx: &Ctx, station: &str, part: Option<&str>) -> Markup {
    html! {
        section.card #record {
            h2 { (lang.t("记录出入库", "Record a movement")) }
            form method="post" action="/ui/stock/moves" {
                (csrf_field(ctx))
                // One key per rendered form: posting it twice moves stock once.
                input type="hidden" name="key" value=(random_secret());
                input type="hidden" name="station" value=(station);
                fieldset {
                    legend { (lang.t("类型", "Kind")) }
                    label { input type="radio" name="what" value="issue" checked; " " (lang.t("领用（维修工单）", "Issue (work order)")) }
                    label { input type="radio" name="what" value="receipt"; " " (lang.t("入库", "Receipt")) }
                }
                label for="m-part" { (lang.t("配件编码", "Part code")) }
                input #m-part type="text" name="part" value=[part] required;
                label for="m-qty" { (lang.t("数量", "Quantity")) }
                input #m-qty type="number" name="qty" min="1" value="1" required;
                label for="m-ref" { (lang.t("工单号（领用必填）", "Work order (required for an issue)")) }
                input #m-ref type="text" name="work_order" maxlength="100";
                button type="submit" { (lang.t("记录", "Record")) }
            }
        }
    }
}

fn arrivals_view(lang: Lang, ctx: &Ctx, station: &str, list: &[availability::Arrival]) -> Markup {
    let writable = may_write(ctx, station);
    html! {
        section.card #arrivals {
            h2 { (lang.t("在途与预计到货", "Incoming and expected")) " · " (station) }
            @if list.is_empty() {
                p { (lang.t("没有已下达未收货的调拨或订单。", "No released transfer or order is on its way.")) }
            } @else {
                div.scroll { table {
                    thead { tr { th { "#" } th { (lang.t("类型", "Kind")) } th { (lang.t("配件", "Part")) } th { (lang.t("从", "From")) } th.num { (lang.t("数量", "Qty")) } th { (lang.t("预计到货", "Expected")) } @if writable { th {} } } }
                    tbody { @for a in list { tr data-arrival=(a.proposal_id) {
                        td { (a.proposal_id) } td { (lang.word(&a.kind)) } td.code { (a.part_code) }
                        td { (a.from_code.as_deref().unwrap_or("—")) } td.num { (a.qty) } td { (a.arrive_on) }
                        @if writable && a.kind == "transfer" { td {
                            form method="post" action="/ui/stock/moves" {
                                (csrf_field(ctx))
                                input type="hidden" name="key" value=(format!("arrival-{}", a.proposal_id));
                                input type="hidden" name="station" value=(station);
                                input type="hidden" name="what" value="arrival";
                                input type="hidden" name="proposal" value=(a.proposal_id);
                                input type="hidden" name="part" value=(a.part_code);
                                input type="hidden" name="qty" value=(a.qty);
                                button type="submit" { (lang.t("确认收货", "Receive")) }
                            }
                        } }
                    } } }
                } }
            }
        }
    }
}

pub async fn record(State(s): State<AppState>, ctx: Ctx, form: FormFields) -> PageResult {
    let lang = ctx.lang;
    let station = station_of(&ctx, form.get("station"))
        .ok_or_else(|| WebError::Invalid("station".into(), "is required".into()).page(lang))?;
    if !may_write(&ctx, &station) {
        return Err(WebError::Forbidden.page(lang));
    }
    let part = form.required("part").map_err(fail(lang))?;
    let qty = form.int("qty").map_err(fail(lang))?;
    let key = form.required("key").map_err(fail(lang))?;
    let (what, reference) = match form.get("what") {
        Some("issue") => {
            let wo = form.required("work_order").map_err(fail(lang))?;
            (StationMove::Issue, Some(wo.to_owned()))
        }
        Some("receipt") => (StationMove::Receipt, None),
        Some("arrival") => {
            let id = form.int("proposal").map_err(fail(lang))?;
            (StationMove::TransferArrival, Some(format!("proposal:{id}")))
        }
        _ => {
            return Err(WebError::Invalid(
                "what".into(),
                "must be issue, receipt or arrival".into(),
            )
            .page(lang))
        }
    };
    let done = availability::record(
        &s.db,
        &s.rule,
        &ctx.session.principal.actor(),
        &station,
        what,
        part,
        qty,
        key,
        reference,
    )
    .await
    .map_err(service_fail(lang))?;
    let note = format!(
        "{} {} × {}: {} {}, {} {}",
        lang.t("已记录", "Recorded"),
        done.part_code,
        qty,
        lang.t("现有", "on hand"),
        done.on_hand,
        lang.t("在途", "in transit"),
        done.in_transit
    );
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("station", &station)
        .append_pair("part", part)
        .append_pair("done", &note)
        .finish();
    Ok(see_other(&format!("/ui/stock?{query}")))
}

#[derive(Debug, Deserialize)]
pub struct SuggestQuery {
    q: Option<String>,
}

/// Type-ahead: `<option>`s of parts whose code starts with, or name contains, the text.
pub async fn suggest(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<SuggestQuery>,
) -> PageResult {
    let text = q.q.as_deref().map(str::trim).unwrap_or("");
    if text.is_empty() || text.chars().count() > 60 {
        return Ok(html_response(html! {}));
    }
    let parts = catalog::suggest(&s.db, text, 12)
        .await
        .map_err(|e| service_fail(ctx.lang)(e.into()))?;
    Ok(html_response(html! {
        @for p in parts { option value=(p.code) { (p.name) } }
    }))
}
