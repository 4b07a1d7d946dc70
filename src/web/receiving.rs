//! The arriving list: released lines with something still open — at the central warehouse,
//! a regional centre or a station — with ordered, received and open quantity, an overdue
//! filter, a receipt form on each line (in full or in part) and a scan form that books a
//! line by its proposal id. A station user sees and books only its own lines.

use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{csrf_field, page};
use super::session::random_secret;
use super::{fail, see_other, service_fail, Ctx, FormFields, Lang, PageResult, WebError};
use crate::api::AppState;
use crate::auth::Role;
use crate::pipeline::{self, ArrivingFilter, LineView, Receipt};
use crate::units::Qty;

#[derive(Debug, Deserialize)]
pub struct ArrivingQuery {
    location: Option<String>,
    overdue: Option<String>,
    after: Option<i64>,
    done: Option<String>,
}

fn may_receive_at(ctx: &Ctx, location: &str) -> bool {
    match ctx.session.role() {
        Role::Admin | Role::Planner => true,
        Role::Station => ctx.session.principal.may_write_station(location),
        _ => false,
    }
}

pub async fn show(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ArrivingQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let location = super::station::station_of(&ctx, q.location.as_deref());
    let overdue = q.overdue.as_deref() == Some("1");
    let filter = ArrivingFilter {
        location: location.clone(),
        overdue_only: overdue,
        as_of: chrono::Utc::now().date_naive(),
        after: q.after,
        limit: Some(200),
    };
    let lines = pipeline::arriving(&s.db, &filter)
        .await
        .map_err(service_fail(lang))?;
    let body = html! {
        h1 { (lang.t("到货登记", "Arriving")) }
        @if let Some(done) = &q.done { p.notice role="status" { (done) } }
        (filter_form(lang, &ctx, location.as_deref(), overdue))
        (scan_form(lang, &ctx, location.as_deref()))
        section.card #arriving {
            @if lines.items.is_empty() {
                p { (lang.t("没有待收货的已下达订单或调拨。", "No released order or transfer is open.")) }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th { "#" } th { (lang.t("类型", "Kind")) } th { (lang.t("配件", "Part")) }
                        th { (lang.t("从", "From")) } th { (lang.t("到", "To")) }
                        th.num { (lang.t("订购", "Ordered")) } th.num { (lang.t("已收", "Received")) }
                        th.num { (lang.t("未到", "Open")) } th { (lang.t("预计到货", "Expected")) } th {}
                    } }
                    tbody { @for l in &lines.items { (line_row(lang, &ctx, l)) } }
                } }
                @if let Some(next) = lines.next {
                    a href=(next_link(location.as_deref(), overdue, next)) { (lang.t("下一页", "Next page")) }
                }
            }
        }
    };
    Ok(page(
        &ctx,
        "/ui/arriving",
        lang.t("到货登记", "Arriving"),
        body,
    ))
}

fn next_link(location: Option<&str>, overdue: bool, after: i64) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(l) = location {
        q.append_pair("location", l);
    }
    if overdue {
        q.append_pair("overdue", "1");
    }
    q.append_pair("after", &after.to_string());
    format!("/ui/arriving?{}", q.finish())
}

fn filter_form(lang: Lang, ctx: &Ctx, location: Option<&str>, overdue: bool) -> Markup {
    html! {
        form.filters method="get" action="/ui/arriving" {
            @if ctx.session.station_code().is_none() {
                label for="a-loc" { (lang.t("收货地点", "Location")) }
                input #a-loc type="text" name="location" value=(location.unwrap_or("")) maxlength="40";
            }
            label { input type="checkbox" name="overdue" value="1" checked[overdue]; (lang.t("只看逾期", "Overdue only")) }
            button type="submit" { (lang.t("筛选", "Filter")) }
        }
    }
}

/// Book a line by scanning its proposal id.
fn scan_form(lang: Lang, ctx: &Ctx, location: Option<&str>) -> Markup {
    html! {
        form.card method="post" action="/ui/arriving/receive" #scan {
            h2 { (lang.t("扫码收货", "Scan a line")) }
            (csrf_field(ctx))
            input type="hidden" name="key" value=(random_secret());
            label for="s-id" { (lang.t("建议单号", "Proposal id")) }
            input #s-id type="number" name="proposal" min="1" required;
            label for="s-loc" { (lang.t("收货地点", "Location")) }
            input #s-loc type="text" name="location" value=(location.unwrap_or("")) required maxlength="40";
            label for="s-qty" { (lang.t("数量", "Qty")) }
            input #s-qty type="number" name="qty" min="1" required;
            button type="submit" { (lang.t("收货", "Receive")) }
        }
    }
}

fn line_row(lang: Lang, ctx: &Ctx, l: &LineView) -> Markup {
    html! {
        tr data-line=(l.proposal_id) .overdue[l.overdue] {
            td { (l.proposal_id) } td { (lang.word(l.kind.as_str())) }
            td.code title=(l.part_name) { (l.part_code) }
            td { (l.from_code.as_deref().unwrap_or("—")) } td { (l.to_code) }
            td.num { (l.line.ordered) } td.num { (l.line.received) } td.num { (l.line.open) }
            td { (l.arrive_on) @if l.overdue { " " strong { (lang.t("逾期", "overdue")) } } }
            td { @if may_receive_at(ctx, &l.to_code) {
                form method="post" action="/ui/arriving/receive" {
                    (csrf_field(ctx))
                    input type="hidden" name="key" value=(random_secret());
                    input type="hidden" name="proposal" value=(l.proposal_id);
                    input type="hidden" name="location" value=(l.to_code);
                    input type="number" name="qty" min="1" max=(l.line.open) value=(l.line.open)
                        aria-label=(lang.t("本次收货数量", "Quantity received now"));
                    button type="submit" { (lang.t("收货", "Receive")) }
                }
            } }
        }
    }
}

pub async fn receive(State(s): State<AppState>, ctx: Ctx, form: FormFields) -> PageResult {
    let lang = ctx.lang;
    let proposal_id = form.int("proposal").map_err(fail(lang))?;
    let location = form
        .required("location")
        .map_err(fail(lang))?
        .trim()
        .to_owned();
    if !may_receive_at(&ctx, &location) {
        return Err(WebError::Forbidden.page(lang));
    }
    let qty = Qty::new(form.int("qty").map_err(fail(lang))?)
        .ok()
        .filter(|q| *q != Qty::ZERO)
        .ok_or_else(|| {
            WebError::Invalid(
                "qty".into(),
                lang.t("必须是正整数", "must be a positive whole number")
                    .into(),
            )
            .page(lang)
        })?;
    let key = form.required("key").map_err(fail(lang))?.to_owned();
    let receipt = Receipt {
        proposal_id,
        location_code: location.clone(),
        qty,
        idempotency_key: key,
        part_code: None,
    };
    let done = pipeline::receive(&s.db, &ctx.session.principal.actor(), &receipt)
        .await
        .map_err(service_fail(lang))?;
    let note = format!(
        "{} #{} {} × {} {} {}: {} {}, {} {}",
        lang.t("已收货", "Received"),
        done.proposal_id,
        done.part_code,
        qty.get(),
        lang.t("于", "at"),
        done.location_code,
        lang.t("未到", "open"),
        done.line.open,
        lang.t("现有", "on hand"),
        done.on_hand
    );
    let mut query = form_urlencoded::Serializer::new(String::new());
    if ctx.session.station_code().is_none() {
        query.append_pair("location", &location);
    }
    query.append_pair("done", &note);
    Ok(see_other(&format!("/ui/arriving?{}", query.finish())))
}
