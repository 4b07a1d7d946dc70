//! The credit board (代垫备件款): per station limit, exposure, headroom and ageing; transfers
//! awaiting finance; limit change requests.

use axum::extract::{Path, State};
use maud::{html, Markup};

use super::chart;
use super::layout::{csrf_field, page};
use super::{fail, money, see_other, service_fail, Ctx, FormFields, Lang, PageResult, WebError};
use crate::api::AppState;
use crate::credit::{self, CreditAccount, LimitRequest};
use crate::proposals::{self, Filter, ProposalView};

pub async fn board(State(s): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let accounts = credit::accounts(&s.db).await.map_err(service_fail(lang))?;
    let held = proposals::list(
        &s.db,
        &Filter {
            status: Some("awaiting_finance".into()),
            limit: Some(500),
            ..Filter::default()
        },
    )
    .await
    .map_err(service_fail(lang))?
    .items;
    let requests = credit::limit_requests(&s.db, Some("pending"))
        .await
        .map_err(service_fail(lang))?;
    let body = html! {
        (totals(lang, &accounts))
        section.card #held {
            h2 { (lang.t("待财务审批的调拨", "Transfers awaiting finance")) " (" (held.len()) ")" }
            (held_table(lang, &ctx, &held, &accounts, ctx.may(super::FINANCE)))
        }
        section.card #limit-requests {
            h2 { (lang.t("额度调整申请", "Limit change requests")) " (" (requests.len()) ")" }
            (requests_table(lang, &ctx, &requests, ctx.may(super::FINANCE)))
            @if ctx.may(super::PLANNING) { (request_form(lang, &ctx)) }
        }
        section.card #accounts {
            h2 { (lang.t("各服务站额度", "Accounts by station")) }
            (accounts_table(lang, &accounts))
        }
    };
    Ok(page(
        &ctx,
        "/ui/credit",
        lang.t("代垫额度", "Advance-stock credit"),
        body,
    ))
}

fn totals(lang: Lang, accounts: &[CreditAccount]) -> Markup {
    let sum = |f: fn(&CreditAccount) -> i64| accounts.iter().map(f).sum::<i64>();
    let buckets = [
        sum(|a| a.ageing.d0_30_minor),
        sum(|a| a.ageing.d31_60_minor),
        sum(|a| a.ageing.d61_90_minor),
        sum(|a| a.ageing.over_90_minor),
    ];
    let exposure = sum(|a| a.exposure_minor);
    let names = [
        lang.t("0–30 天", "0–30 days"),
        lang.t("31–60 天", "31–60 days"),
        lang.t("61–90 天", "61–90 days"),
        lang.t("90 天以上", "over 90 days"),
    ];
    let rows: Vec<(String, f64, String)> = buckets
        .iter()
        .zip(names)
        .map(|(b, n)| (n.to_owned(), *b as f64, money(*b)))
        .collect();
    let max = buckets.iter().copied().max().unwrap_or(0).max(1) as f64;
    html! {
        section.card #credit-totals {
            dl.facts {
                dt { (lang.t("总额度", "Total limit")) } dd { (money(sum(|a| a.limit_minor))) }
                dt { (lang.t("总占用（未付）", "Exposure (unpaid)")) } dd { (money(exposure)) }
                dt { (lang.t("已批准未下达", "Committed")) } dd { (money(sum(|a| a.committed_minor))) }
                dt { (lang.t("超限服务站", "Stations over limit")) } dd { (accounts.iter().filter(|a| a.headroom_minor < 0).count()) }
            }
            h3 { (lang.t("账龄分布", "Ageing")) }
            (chart::bars(lang.t("账龄分布", "Ageing of exposure"), &rows, max))
        }
    }
}

fn held_table(
    lang: Lang,
    ctx: &Ctx,
    held: &[ProposalView],
    accounts: &[CreditAccount],
    may_decide: bool,
) -> Markup {
    let headroom = |code: &str| {
        accounts
            .iter()
            .find(|a| a.station_code == code)
            .map(|a| a.headroom_minor)
    };
    html! {
        @if held.is_empty() { p { (lang.t("没有等待财务审批的调拨。", "No transfer is waiting for finance.")) } }
        @else { div.scroll { table {
            thead { tr {
                th { "#" } th { (lang.t("配件", "Part")) } th { (lang.t("到", "To")) } th.num { (lang.t("数量", "Qty")) }
                th.num { (lang.t("占用额度", "Credit needed")) } th.num { (lang.t("剩余额度", "Headroom")) } @if may_decide { th {} }
            } }
            tbody { @for p in held { tr data-proposal=(p.id) {
                td { a href=(format!("/ui/proposals/{}", p.id)) { (p.id) } }
                td.code { (p.part_code) } td { (p.to_code) } td.num { (p.qty) }
                td.num { (money(p.credit_impact_minor)) }
                td.num { @if let Some(h) = headroom(&p.to_code) { (money(h)) } }
                @if may_decide { td {
                    form.inline method="post" action=(format!("/ui/credit/transfers/{}", p.id)) {
                        (csrf_field(ctx))
                        input type="hidden" name="version" value=(p.version);
                        button type="submit" name="decision" value="approve" { (lang.t("批准", "Approve")) }
                        button.secondary type="submit" name="decision" value="reject" { (lang.t("驳回", "Reject")) }
                    }
                } }
            } } }
        } } }
    }
}

fn requests_table(lang: Lang, ctx: &Ctx, requests: &[LimitRequest], may_decide: bool) -> Markup {
    html! {
        @if requests.is_empty() { p { (lang.t("没有待审批的申请。", "No pending request.")) } }
        @else { div.scroll { table {
            thead { tr { th { "#" } th { (lang.t("服务站", "Station")) } th.num { (lang.t("新额度", "New limit")) } th { (lang.t("原因", "Reason")) } th { (lang.t("申请人", "By")) } @if may_decide { th {} } } }
            tbody { @for r in requests { tr {
                td { (r.id) } td { (r.station_code) } td.num { (money(r.new_limit_minor)) } td { (r.reason) } td { (r.requested_by) }
                @if may_decide { td {
                    form.inline method="post" action=(format!("/ui/credit/limit-requests/{}", r.id)) {
                        (csrf_field(ctx))
                        input type="hidden" name="version" value=(r.version);
                        button type="submit" name="decision" value="approve" { (lang.t("批准", "Approve")) }
                        button.secondary type="submit" name="decision" value="reject" { (lang.t("驳回", "Reject")) }
                    }
                } }
            } } }
        } } }
    }
}

fn request_form(lang: Lang, ctx: &Ctx) -> Markup {
    html! {
        form.inline method="post" action="/ui/credit/limit-requests" {
            (csrf_field(ctx))
            label for="l-station" { (lang.t("服务站", "Station")) }
            input #l-station type="text" name="station" required;
            label for="l-limit" { (lang.t("新额度（元）", "New limit (major units)")) }
            input #l-limit type="number" name="limit" min="0" required;
            label for="l-reason" { (lang.t("原因", "Reason")) }
            input #l-reason type="text" name="reason" required maxlength="500";
            button type="submit" { (lang.t("提交申请", "Request")) }
        }
    }
}

fn accounts_table(lang: Lang, accounts: &[CreditAccount]) -> Markup {
    let scale = accounts
        .iter()
        .map(|a| a.limit_minor.max(a.exposure_minor))
        .max()
        .unwrap_or(1);
    html! {
        div.scroll { table {
            thead { tr {
                th { (lang.t("服务站", "Station")) } th.num { (lang.t("额度", "Limit")) } th.num { (lang.t("占用", "Exposure")) }
                th.num { (lang.t("已批准未下达", "Committed")) } th.num { (lang.t("剩余", "Headroom")) } th.num { (lang.t("已付", "Paid")) }
                th { (lang.t("账龄", "Ageing")) }
            } }
            tbody { @for a in accounts { tr class=[(a.headroom_minor < 0).then_some("over")] {
                td { (a.station_code) } td.num { (money(a.limit_minor)) } td.num { (money(a.exposure_minor)) }
                td.num { (money(a.committed_minor)) } td.num { (money(a.headroom_minor)) } td.num { (money(a.paid_minor)) }
                td { (chart::ageing_bar(lang, [a.ageing.d0_30_minor, a.ageing.d31_60_minor, a.ageing.d61_90_minor, a.ageing.over_90_minor], scale)) }
            } } }
        } }
    }
}

/// A decision form: (approve?, the version it was read at).
fn decision(form: &FormFields) -> Result<(bool, i64), WebError> {
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("reject") => false,
        _ => {
            return Err(WebError::Invalid(
                "decision".into(),
                "must be approve or reject".into(),
            ))
        }
    };
    Ok((approve, form.int("version")?))
}

pub async fn decide_transfer(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    form: FormFields,
) -> PageResult {
    let lang = ctx.lang;
    let (approve, version) = decision(&form).map_err(fail(lang))?;
    proposals::finance_decide(&s.db, &ctx.session.principal.actor(), id, version, approve)
        .await
        .map_err(service_fail(lang))?;
    Ok(see_other("/ui/credit"))
}

pub async fn decide_limit(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    form: FormFields,
) -> PageResult {
    let lang = ctx.lang;
    let (approve, version) = decision(&form).map_err(fail(lang))?;
    credit::decide_limit(&s.db, &ctx.session.principal.actor(), id, version, approve)
        .await
        .map_err(service_fail(lang))?;
    Ok(see_other("/ui/credit"))
}

pub async fn request_limit(State(s): State<AppState>, ctx: Ctx, form: FormFields) -> PageResult {
    let lang = ctx.lang;
    let station = form.required("station").map_err(fail(lang))?;
    let limit = form.int("limit").map_err(fail(lang))?;
    let reason = form.required("reason").map_err(fail(lang))?;
    credit::request_limit(
        &s.db,
        &ctx.session.principal.actor(),
        station,
        limit.saturating_mul(100),
        reason,
    )
    .await
    .map_err(service_fail(lang))?;
    Ok(see_other("/ui/credit"))
}
