//! Planner pages: plan runs, the proposal queue (filters, sorting, bulk decisions, CSV), one
//! proposal with its chart and reason, and the exceptions board.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use maud::{html, Markup};
use serde_json::Value;

use super::chart::{self, Month};
use super::layout::{csrf_field, page};
use super::{
    fail, money, percent, see_other, service_fail, Ctx, FormFields, Lang, PageResult, WebError,
};
use crate::api::AppState;
use crate::jobs::{self, JobSpec};
use crate::proposals::{self, ProposalDetail, QueueFilter, QueueRow, QueueSort};
use crate::service::ServiceError;
use crate::units::Qty;
use crate::{exceptions, plan_runs};

/// Rows per page of the queue.
const PAGE_ROWS: u32 = 100;

// ---- runs ------------------------------------------------------------------------------

pub async fn runs(State(s): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let jobs = jobs::recent(&s.db, 20).await.map_err(service_fail(lang))?;
    let runs = plan_runs::recent(&s.db, 20)
        .await
        .map_err(|e| WebError::Service(e.into()).page(lang))?;
    let busy = jobs
        .iter()
        .any(|j| matches!(j.status.as_str(), "queued" | "running"));
    let may_start = ctx.may(super::PLANNING);
    let body = html! {
        @if may_start {
            section.card {
                h2 { (lang.t("启动运行", "Start a run")) }
                form.inline method="post" action="/ui/runs" {
                    (csrf_field(&ctx))
                    input type="hidden" name="kind" value="forecast";
                    label for="horizon" { (lang.t("预测期数（月）", "Horizon (months)")) }
                    input #horizon type="number" name="horizon" value="12" min="1" max="36";
                    button type="submit" { (lang.t("运行预测", "Run forecast")) }
                }
                form.inline method="post" action="/ui/runs" {
                    (csrf_field(&ctx))
                    input type="hidden" name="kind" value="plan";
                    label for="model" { (lang.t("计划模型", "Planning model")) }
                    select #model name="model" {
                        option value="monthly-replenishment" { "monthly-replenishment" }
                        option value="peak-prepositioning" { "peak-prepositioning" }
                    }
                    button type="submit" { (lang.t("运行计划", "Run plan")) }
                }
            }
        }
        section.card data-autorefresh=[busy.then_some("3")] {
            h2 { (lang.t("后台任务", "Jobs")) }
            @if busy { p.hint { (lang.t("有任务在运行，本页每 3 秒刷新。", "A job is running; this page refreshes every 3 s.")) } }
            (jobs_table(lang, &jobs))
        }
        section.card {
            h2 { (lang.t("计划运行", "Plan runs")) }
            (runs_table(lang, &runs))
        }
    };
    Ok(page(
        &ctx,
        "/ui/runs",
        lang.t("计划运行", "Plan runs"),
        body,
    ))
}

fn jobs_table(lang: Lang, jobs: &[jobs::JobView]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th { "#" } th { (lang.t("类型", "Kind")) } th { (lang.t("状态", "Status")) }
                th { (lang.t("提交人", "By")) } th { (lang.t("提交时间", "Submitted")) }
                th { (lang.t("用时", "Elapsed")) } th { (lang.t("结果", "Result")) }
            } }
            tbody {
                @for j in jobs {
                    @let end = j.finished_at.or(j.heartbeat_at);
                    tr data-job-status=(j.status) {
                        td { (j.id) }
                        td { (lang.word(&j.kind)) }
                        td { span class=(format!("status {}", j.status)) { (lang.word(&j.status)) } }
                        td { (j.actor) }
                        td { (j.created_at.format("%Y-%m-%d %H:%M:%S")) }
                        td { @if let (Some(a), Some(b)) = (j.started_at, end) { (format!("{:.1} s", (b - a).num_milliseconds() as f64 / 1000.0)) } }
                        td {
                            @if let Some(f) = &j.failure { span.error { (f) } }
                            @else if let (Some(id), "plan") = (j.result_id, j.kind.as_str()) {
                                a href=(format!("/ui/proposals?plan_run={id}")) { (lang.t("计划 #", "plan #")) (id) }
                            } @else if let Some(id) = j.result_id { (lang.t("预测 #", "forecast #")) (id) }
                        }
                    }
                }
            }
        } }
    }
}

fn runs_table(lang: Lang, runs: &[plan_runs::PlanRunRow]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th { "#" } th { (lang.t("模型", "Model")) } th { (lang.t("状态", "Status")) }
                th.num { (lang.t("建议数", "Proposals")) } th.num { (lang.t("目标值", "Objective")) }
                th.num { (lang.t("求解 ms", "Solve ms")) } th.num { "MIP gap" }
                th { (lang.t("预计满足率（按服务等级）", "Projected fill by tier")) }
            } }
            tbody {
                @for r in runs {
                    tr {
                        td { a href=(format!("/ui/proposals?plan_run={}", r.id)) { (r.id) } }
                        td { (r.model_name) }
                        td {
                            span class=(format!("status {}", r.status)) { (lang.word(&r.status)) }
                            @if let Some(f) = &r.failure { " " span.error { (f) } }
                        }
                        td.num { (r.proposals) }
                        td.num { @if let Some(o) = r.objective { (format!("{o:.0}")) } }
                        td.num { @if let Some(ms) = r.solve_ms { (ms) } }
                        td.num { @if let Some(g) = r.mip_gap { (percent(g)) } }
                        td { (tier_fills(r.kpis_json.as_deref())) }
                    }
                }
            }
        } }
    }
}

/// `exceed 97.0 % · above 95.1 %` from a run's stored KPIs.
pub fn tier_fills(kpis_json: Option<&str>) -> String {
    crate::kpi::plan_fill(kpis_json)
        .iter()
        .map(|(tier, fill)| format!("{tier} {}", percent(*fill)))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub async fn start_run(State(s): State<AppState>, ctx: Ctx, form: FormFields) -> PageResult {
    let lang = ctx.lang;
    let spec = match form.get("kind") {
        Some("forecast") => {
            let horizon = form.int("horizon").map_err(fail(lang))?;
            if !(1..=36).contains(&horizon) {
                return Err(
                    WebError::Invalid("horizon".into(), "must be 1 to 36 months".into()).page(lang),
                );
            }
            JobSpec::Forecast {
                horizon: horizon as usize,
                history_months: None,
            }
        }
        Some("plan") => JobSpec::Plan {
            model: form.required("model").map_err(fail(lang))?.to_owned(),
        },
        _ => {
            return Err(
                WebError::Invalid("kind".into(), "must be forecast or plan".into()).page(lang),
            )
        }
    };
    s.jobs
        .submit(&ctx.session.principal.actor(), spec)
        .await
        .map_err(service_fail(lang))?;
    Ok(see_other("/ui/runs"))
}

// ---- the queue -------------------------------------------------------------------------

/// The query string of a filter (to keep it across pages, sorting and posts).
fn filter_query(f: &QueueFilter, page: u32) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let pairs: [(&str, Option<String>); 8] = [
        ("plan_run", f.plan_run.map(|v| v.to_string())),
        ("kind", f.kind.clone()),
        ("status", f.status.clone()),
        ("part", f.part.clone()),
        ("station", f.station.clone()),
        ("region", f.region.clone()),
        ("min_value", f.min_value.map(|v| v.to_string())),
        ("sort", Some(f.sort.as_str().to_owned())),
    ];
    for (k, v) in pairs {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            q.append_pair(k, &v);
        }
    }
    if page > 0 {
        q.append_pair("page", &page.to_string());
    }
    q.finish()
}

/// Empty filter fields of a submitted form mean "any".
fn tidy(mut f: QueueFilter) -> QueueFilter {
    let blank = |v: &mut Option<String>| {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *v = None;
        } else if let Some(s) = v {
            *s = s.trim().to_owned();
        }
    };
    blank(&mut f.kind);
    blank(&mut f.status);
    blank(&mut f.part);
    blank(&mut f.station);
    blank(&mut f.region);
    f
}

/// Reads the filter leniently: a malformed number is named in an error page.
fn parse_filter(raw: Option<&str>) -> Result<QueueFilter, WebError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
    serde_path_to_error::deserialize(de)
        .map(tidy)
        .map_err(|e| WebError::Invalid(e.path().to_string(), e.into_inner().to_string()))
}

pub async fn queue(State(s): State<AppState>, ctx: Ctx, uri: axum::http::Uri) -> PageResult {
    let lang = ctx.lang;
    let filter = parse_filter(uri.query()).map_err(fail(lang))?;
    let q = proposals::queue(&s.db, &filter, PAGE_ROWS)
        .await
        .map_err(service_fail(lang))?;
    let regions = crate::network::regions(&s.db)
        .await
        .map_err(|e| service_fail(lang)(e.into()))?;
    let may_decide = ctx.may(super::PLANNING);
    let shown = FilterView {
        f: &filter,
        run: q.plan_run,
    };
    let body = html! {
        (filter_form(lang, &shown, &regions))
        p.summary {
            @match q.plan_run {
                Some(run) => { (lang.t("计划", "Plan")) " #" (run) " · " }
                None => { (lang.t("还没有已完成的计划运行。", "No solved plan run yet.")) " " }
            }
            span #match-count { (q.total) } " " (lang.t("条建议，合计", "proposals, worth")) " " (money(q.total_value_minor))
            " · " a href=(format!("/ui/proposals.csv?{}", filter_query(&shown.with_run(), 0))) download { (lang.t("导出 CSV", "Export CSV")) }
        }
        form #bulk method="post" action="/ui/proposals/bulk" {
            (csrf_field(&ctx))
            input type="hidden" name="back" value=(format!("/ui/proposals?{}", filter_query(&shown.with_run(), filter.page)));
            (queue_table(lang, &q.rows, may_decide))
            @if may_decide && !q.rows.is_empty() {
                fieldset.bulk {
                    legend { (lang.t("批量处理所选建议", "Decide the selected proposals")) }
                    label for="bulk-reason" { (lang.t("原因（驳回必填）", "Reason (required to reject)")) }
                    input #bulk-reason type="text" name="reason" maxlength="500";
                    button type="submit" name="action" value="approve" { (lang.t("批准所选", "Approve selected")) }
                    button.secondary type="submit" name="action" value="reject" { (lang.t("驳回所选", "Reject selected")) }
                }
            }
        }
        @if may_decide {
            form.inline method="post" action="/ui/proposals/release" {
                (csrf_field(&ctx))
                @if let Some(run) = q.plan_run { input type="hidden" name="plan_run" value=(run); }
                button type="submit" { (lang.t("下达本计划全部已批准建议（CSV）", "Release all approved proposals of this plan (CSV)")) }
            }
        }
        (pager(lang, &shown, q.total))
    };
    Ok(page(
        &ctx,
        "/ui/proposals",
        lang.t("建议队列", "Proposal queue"),
        body,
    ))
}

/// The filter with the run the page actually shows.
struct FilterView<'a> {
    f: &'a QueueFilter,
    run: Option<i64>,
}

impl FilterView<'_> {
    fn with_run(&self) -> QueueFilter {
        QueueFilter {
            plan_run: self.run,
            ..self.f.clone()
        }
    }
}

fn filter_form(lang: Lang, v: &FilterView<'_>, regions: &[String]) -> Markup {
    let f = v.f;
    let opt = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    html! {
        form.filters method="get" action="/ui/proposals" role="search" {
            @if let Some(run) = v.run { input type="hidden" name="plan_run" value=(run); }
            div { label for="f-part" { (lang.t("配件编码", "Part code")) }
                input #f-part type="text" name="part" value=[f.part.as_deref()] placeholder=(lang.t("前缀", "prefix")); }
            div { label for="f-station" { (lang.t("服务站", "Station")) }
                input #f-station type="text" name="station" value=[f.station.as_deref()]; }
            div { label for="f-region" { (lang.t("区域", "Region")) }
                select #f-region name="region" {
                    option value="" { (lang.t("全部", "all")) }
                    @for r in regions { option value=(r) selected[opt(&f.region, r)] { (r) } }
                } }
            div { label for="f-kind" { (lang.t("类型", "Kind")) }
                select #f-kind name="kind" {
                    option value="" { (lang.t("全部", "all")) }
                    @for k in proposals::KINDS { option value=(k) selected[opt(&f.kind, k)] { (lang.word(k)) } }
                } }
            div { label for="f-status" { (lang.t("状态", "Status")) }
                select #f-status name="status" {
                    option value="" { (lang.t("全部", "all")) }
                    @for st in proposals::STATUSES { option value=(st) selected[opt(&f.status, st)] { (lang.word(st)) } }
                } }
            div { label for="f-min" { (lang.t("最低金额", "Min value")) }
                input #f-min type="number" name="min_value" min="0" value=[f.min_value]; }
            div { label for="f-sort" { (lang.t("排序", "Sort")) }
                select #f-sort name="sort" {
                    @for s in QueueSort::ALL { option value=(s.as_str()) selected[f.sort == s] { (sort_label(lang, s)) } }
                } }
            div { button type="submit" { (lang.t("筛选", "Filter")) } }
        }
    }
}

fn sort_label(lang: Lang, s: QueueSort) -> &'static str {
    match s {
        QueueSort::ValueDesc => lang.t("金额从高到低", "value, highest first"),
        QueueSort::ValueAsc => lang.t("金额从低到高", "value, lowest first"),
        QueueSort::OrderBy => lang.t("下单日期", "order-by date"),
        QueueSort::Part => lang.t("配件", "part"),
        QueueSort::Station => lang.t("服务站", "station"),
    }
}

fn queue_table(lang: Lang, rows: &[QueueRow], selectable: bool) -> Markup {
    html! {
        div.scroll { table #queue {
            thead { tr {
                @if selectable { th { input #select-all type="checkbox" aria-label=(lang.t("全选", "Select all")) data-select-all="sel"; } }
                th { "#" } th { (lang.t("类型", "Kind")) } th { (lang.t("配件", "Part")) }
                th { (lang.t("从", "From")) } th { (lang.t("到", "To")) } th { (lang.t("区域", "Region")) }
                th.num { (lang.t("数量", "Qty")) } th.num { (lang.t("金额", "Value")) }
                th { (lang.t("下单日", "Order by")) } th { (lang.t("到货日", "Arrives")) } th { (lang.t("状态", "Status")) }
            } }
            tbody {
                @for r in rows {
                    tr data-proposal=(r.id) {
                        @if selectable { td { input type="checkbox" name="sel" value=(format!("{}:{}", r.id, r.version)) aria-label=(format!("{} #{}", lang.t("选择", "Select"), r.id)); } }
                        td { a href=(format!("/ui/proposals/{}", r.id)) { (r.id) } }
                        td { (lang.word(&r.kind)) }
                        td { span.code { (r.part_code) } br; small { (r.part_name) } }
                        td { (r.from_code.as_deref().unwrap_or("—")) }
                        td { (r.to_code) }
                        td { (r.region.as_deref().unwrap_or("")) }
                        td.num { (r.qty) }
                        td.num { (money(r.value_minor)) }
                        td { (r.order_by) }
                        td { (r.arrive_on) }
                        td { span class=(format!("status {}", r.status)) { (lang.word(&r.status)) } }
                    }
                }
            }
        } }
    }
}

fn pager(lang: Lang, v: &FilterView<'_>, total: i64) -> Markup {
    let page = v.f.page;
    let pages = (total.max(0) as u64).div_ceil(u64::from(PAGE_ROWS)).max(1) as u32;
    let f = v.with_run();
    html! {
        nav.pager aria-label=(lang.t("分页", "Pages")) {
            @if page > 0 { a href=(format!("/ui/proposals?{}", filter_query(&f, page - 1))) { "← " (lang.t("上一页", "previous")) } }
            span { (page + 1) " / " (pages) }
            @if page + 1 < pages { a href=(format!("/ui/proposals?{}", filter_query(&f, page + 1))) { (lang.t("下一页", "next")) " →" } }
        }
    }
}

pub async fn queue_csv(State(s): State<AppState>, ctx: Ctx, uri: axum::http::Uri) -> PageResult {
    let lang = ctx.lang;
    let mut filter = parse_filter(uri.query()).map_err(fail(lang))?;
    filter.page = 0;
    let q = proposals::queue(&s.db, &filter, 1_000_000)
        .await
        .map_err(service_fail(lang))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "proposal_id",
        "plan_id",
        "kind",
        "part_code",
        "part_name",
        "from_code",
        "to_code",
        "region",
        "qty",
        "unit_cost",
        "value",
        "currency",
        "order_by",
        "arrive_on",
        "status",
        "version",
    ];
    let write = |w: &mut csv::Writer<Vec<u8>>, r: &QueueRow| {
        w.write_record([
            r.id.to_string(),
            q.plan_run.map(|p| p.to_string()).unwrap_or_default(),
            r.kind.clone(),
            r.part_code.clone(),
            r.part_name.clone(),
            r.from_code.clone().unwrap_or_default(),
            r.to_code.clone(),
            r.region.clone().unwrap_or_default(),
            r.qty.to_string(),
            crate::units::Amount::from_minor(r.unit_cost_minor).to_string(),
            crate::units::Amount::from_minor(r.value_minor).to_string(),
            r.currency.clone(),
            r.order_by.to_string(),
            r.arrive_on.to_string(),
            r.status.clone(),
            r.version.to_string(),
        ])
    };
    let internal =
        |e: csv::Error| WebError::Service(ServiceError::Internal(e.to_string())).page(lang);
    w.write_record(header).map_err(internal)?;
    for r in &q.rows {
        write(&mut w, r).map_err(internal)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| internal(e.into_error().into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"proposal-queue.csv\"",
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `id:version` of a selected row.
fn selection(value: &str) -> Result<(i64, i64), WebError> {
    value
        .split_once(':')
        .and_then(|(id, v)| Some((id.parse().ok()?, v.parse().ok()?)))
        .ok_or_else(|| WebError::Invalid("sel".into(), format!("'{value}' is not id:version")))
}

pub async fn bulk(State(s): State<AppState>, ctx: Ctx, form: FormFields) -> PageResult {
    let lang = ctx.lang;
    let approve = match form.get("action") {
        Some("approve") => true,
        Some("reject") => false,
        _ => {
            return Err(
                WebError::Invalid("action".into(), "must be approve or reject".into()).page(lang),
            )
        }
    };
    let reason = form.get("reason");
    if !approve && reason.is_none() {
        return Err(WebError::Invalid(
            "reason".into(),
            lang.t("驳回需要填写原因", "a rejection needs a reason")
                .into(),
        )
        .page(lang));
    }
    let picked: Vec<(i64, i64)> = form
        .all("sel")
        .map(selection)
        .collect::<Result<_, _>>()
        .map_err(fail(lang))?;
    if picked.is_empty() {
        return Err(WebError::Invalid(
            "sel".into(),
            lang.t("没有选择任何建议", "no proposal selected").into(),
        )
        .page(lang));
    }
    let actor = ctx.session.principal.actor();
    let mut outcomes = Vec::with_capacity(picked.len());
    for (id, version) in picked {
        let done = if approve {
            proposals::approve(&s.db, &actor, id, version).await
        } else {
            proposals::reject(&s.db, &actor, id, version, reason).await
        };
        outcomes.push((id, done));
    }
    let back = form
        .get("back")
        .filter(|b| b.starts_with("/ui/proposals"))
        .unwrap_or("/ui/proposals")
        .to_owned();
    let ok = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
    let body = html! {
        p.summary role="status" { (ok) " / " (outcomes.len()) " " (if approve { lang.t("条已批准或转财务审批", "approved or held for finance") } else { lang.t("条已驳回", "rejected") }) }
        ul.outcomes {
            @for (id, r) in &outcomes {
                li {
                    a href=(format!("/ui/proposals/{id}")) { "#" (id) } " "
                    @match r {
                        Ok(v) => span class=(format!("status {}", v.status)) { (lang.word(&v.status)) },
                        Err(e) => span.error { (e) },
                    }
                }
            }
        }
        p { a href=(back) { (lang.t("返回队列", "Back to the queue")) } }
    };
    Ok(page(
        &ctx,
        "/ui/proposals",
        lang.t("批量处理结果", "Bulk decision"),
        body,
    ))
}

pub async fn release(State(s): State<AppState>, ctx: Ctx, form: FormFields) -> PageResult {
    let lang = ctx.lang;
    let run = form.int("plan_run").map_err(fail(lang))?;
    let filter = QueueFilter {
        plan_run: Some(run),
        status: Some("approved".into()),
        ..QueueFilter::default()
    };
    let approved = proposals::queue(&s.db, &filter, 1_000_000)
        .await
        .map_err(service_fail(lang))?;
    let items: Vec<(i64, i64)> = approved.rows.iter().map(|r| (r.id, r.version)).collect();
    let csv = proposals::release(&s.db, &ctx.session.principal.actor(), &items)
        .await
        .map_err(service_fail(lang))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"proposals.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

// ---- one proposal ----------------------------------------------------------------------

pub async fn proposal(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> PageResult {
    let lang = ctx.lang;
    let d = proposals::detail(&s.db, id)
        .await
        .map_err(service_fail(lang))?;
    let p = &d.proposal;
    let may_decide = ctx.may(super::PLANNING);
    let editable = matches!(p.status.as_str(), "proposed" | "edited" | "approved");
    let title = format!("{} #{} · {}", lang.word(&p.kind), p.id, p.part_code);
    let body = html! {
        dl.facts {
            dt { (lang.t("状态", "Status")) } dd { span #proposal-status class=(format!("status {}", p.status)) { (lang.word(&p.status)) } }
            dt { (lang.t("配件", "Part")) } dd.code { (p.part_code) }
            dt { (lang.t("从", "From")) } dd { (p.from_code.as_deref().or(p.supplier_code.as_deref()).unwrap_or("—")) }
            dt { (lang.t("到", "To")) } dd { (p.to_code) }
            dt { (lang.t("数量", "Quantity")) } dd #proposal-qty { (p.qty) @if let Some(o) = p.original_qty { " (" (lang.t("原", "was")) " " (o) ")" } }
            dt { (lang.t("金额", "Value")) } dd { (money(p.qty * p.unit_cost_minor)) " " (p.currency) }
            dt { (lang.t("下单 / 到货", "Order by / arrives")) } dd { (p.order_by) " → " (p.arrive_on) }
            @if p.credit_impact_minor > 0 { dt { (lang.t("占用代垫额度", "Credit used")) } dd { (money(p.credit_impact_minor)) } }
            @if let Some(r) = &p.edit_reason { dt { (lang.t("修改/驳回原因", "Edit or rejection reason")) } dd { (r) } }
        }
        section.card {
            h2 { (lang.t("需求与库存", "Demand and stock")) }
            (chart::proposal_chart(lang, &chart_months(&d)))
        }
        section.card #reason {
            h2 { (lang.t("建议原因", "Why this proposal")) }
            (reason_text(lang, &d.reason, p.plan_run_id))
        }
        @if may_decide && editable {
            section.card {
                h2 { (lang.t("处理", "Decide")) }
                form.inline method="post" action=(format!("/ui/proposals/{}", p.id)) {
                    (csrf_field(&ctx))
                    input type="hidden" name="version" value=(p.version);
                    input type="hidden" name="action" value="edit";
                    label for="qty" { (lang.t("新数量", "New quantity")) }
                    input #qty type="number" name="qty" min="1" value=(p.qty) required;
                    label for="edit-reason" { (lang.t("原因", "Reason")) }
                    input #edit-reason type="text" name="reason" required maxlength="500";
                    button type="submit" { (lang.t("修改数量", "Change quantity")) }
                }
                form.inline method="post" action=(format!("/ui/proposals/{}", p.id)) {
                    (csrf_field(&ctx))
                    input type="hidden" name="version" value=(p.version);
                    @if p.status != "approved" {
                        button #approve type="submit" name="action" value="approve" { (lang.t("批准", "Approve")) }
                    }
                    label for="reject-reason" { (lang.t("驳回原因", "Rejection reason")) }
                    input #reject-reason type="text" name="reason" maxlength="500";
                    button.secondary type="submit" name="action" value="reject" { (lang.t("驳回", "Reject")) }
                }
            }
        }
        p { a href=(format!("/ui/proposals?plan_run={}", p.plan_run_id)) { (lang.t("返回队列", "Back to the queue")) } }
    };
    Ok(page(&ctx, "/ui/proposals", &title, body))
}

/// The chart's months: up to 24 months of consumption, then the forecast periods with the
/// projected stock with and without this proposal's quantity.
fn chart_months(d: &ProposalDetail) -> Vec<Month> {
    let mut months: Vec<Month> = d
        .history
        .iter()
        .rev()
        .take(24)
        .rev()
        .map(|h| Month {
            label: h.month.clone(),
            history: Some(h.qty as f64),
            ..Month::default()
        })
        .collect();
    // The projected stock counts this run's live proposals, this one included unless it
    // was rejected; arrivals before the first period count in the first.
    let counted = d.proposal.status != "rejected";
    let qty = d.proposal.qty as f64;
    let arrival = d
        .forecast
        .iter()
        .rposition(|f| f.period_start <= d.proposal.arrive_on)
        .unwrap_or(0);
    for (i, f) in d.forecast.iter().enumerate() {
        let base = d.projected_stock.get(i).map(|p| p.projected);
        let after = i >= arrival;
        months.push(Month {
            label: f.period_start.format("%Y-%m").to_string(),
            history: None,
            forecast: Some((f.mean, f.p80, f.p95)),
            stock_with: base.map(|b| if counted || !after { b } else { b + qty }),
            stock_without: base.map(|b| if counted && after { b - qty } else { b }),
        });
    }
    months
}

/// The stored reason in plain words: what demand the quantity covers, which shared limits
/// bind and what one more unit of each is worth.
fn reason_text(lang: Lang, reason: &Value, plan_run: i64) -> Markup {
    let covers = reason["covers"].as_array().cloned().unwrap_or_default();
    let binding = reason["binding"].as_array().cloned().unwrap_or_default();
    let also = reason["also_serves"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total: f64 = covers.iter().filter_map(|c| c["qty"].as_f64()).sum();
    html! {
        @if covers.is_empty() {
            p { (lang.t("该建议没有记录覆盖的需求（手工或示例数据）。", "This proposal records no covered demand (made by hand or sample data).")) }
        } @else {
            p {
                (lang.t("覆盖预计需求", "It covers a forecast demand of")) " "
                strong { (format!("{total:.1}")) } " "
                (lang.t("件：", "units:"))
            }
            ul {
                @for c in &covers {
                    li { (c["location"].as_str().unwrap_or("?")) " · " (lang.t("第", "period ")) (c["period"].as_u64().unwrap_or(0) + 1) (lang.t(" 期", "")) " · " (format!("{:.1}", c["qty"].as_f64().unwrap_or(0.0))) }
                }
            }
        }
        @if !also.is_empty() {
            p { (lang.t("同时供应不备该件的服务站：", "It also supplies stations that do not stock the part: "))
                (also.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) }
        }
        @if binding.is_empty() {
            p { (lang.t("没有约束在此建议上起限制作用：数量由需求、安全库存和成本决定。", "No shared limit binds on it: the quantity follows from demand, safety stock and cost.")) }
        } @else {
            p { (lang.t("起作用的约束：", "Limits that bind:")) }
            ul.binding {
                @for b in &binding {
                    li { (binding_sentence(lang, b)) }
                }
            }
        }
        p.hint { (lang.t("来自计划运行", "From plan run")) " #" (plan_run) }
    }
}

fn binding_sentence(lang: Lang, b: &Value) -> String {
    let family = b["family"].as_str().unwrap_or("?");
    let where_ = b["location"]
        .as_str()
        .map(|l| format!(" @ {l}"))
        .unwrap_or_default();
    let when = b["period"]
        .as_u64()
        .map(|p| format!(" ({}{})", lang.t("第 ", "period "), p + 1))
        .unwrap_or_default();
    let price = b["shadow_price"].as_f64().unwrap_or(0.0);
    let usage = b["usage"].as_f64().unwrap_or(0.0);
    let limit = b["limit"].as_f64().unwrap_or(0.0);
    let unit = match family {
        "capacity" => lang.t("每多 1 立方米库容", "one more m³ of capacity"),
        "credit" => lang.t("每多 1 元代垫额度", "one more yuan of credit"),
        "budget" => lang.t("每多 1 元预算", "one more yuan of budget"),
        _ => lang.t("每多 1 单位", "one more unit"),
    };
    format!(
        "{}{where_}{when}: {usage:.0} / {limit:.0} — {unit} {} {price:.2}",
        lang.word(family),
        lang.t("可节省", "saves"),
    )
}

pub async fn change(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    form: FormFields,
) -> PageResult {
    let lang = ctx.lang;
    let version = form.int("version").map_err(fail(lang))?;
    let actor = ctx.session.principal.actor();
    let done = match form.get("action") {
        Some("edit") => {
            let qty = form
                .int("qty")
                .ok()
                .and_then(|q| Qty::new(q).ok())
                .filter(|q| *q != Qty::ZERO)
                .ok_or_else(|| {
                    WebError::Invalid("qty".into(), "must be a positive whole number".into())
                        .page(lang)
                })?;
            let reason = form.required("reason").map_err(fail(lang))?;
            proposals::edit(&s.db, &actor, id, version, qty, reason).await
        }
        Some("approve") => proposals::approve(&s.db, &actor, id, version).await,
        Some("reject") => {
            let reason = form.required("reason").map_err(fail(lang))?;
            proposals::reject(&s.db, &actor, id, version, Some(reason)).await
        }
        _ => {
            return Err(WebError::Invalid(
                "action".into(),
                "must be edit, approve or reject".into(),
            )
            .page(lang))
        }
    };
    done.map_err(service_fail(lang))?;
    Ok(see_other(&format!("/ui/proposals/{id}")))
}

// ---- exceptions ------------------------------------------------------------------------

pub async fn exceptions(State(s): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let board = exceptions::board(&s.db, &s.insight, 50)
        .await
        .map_err(service_fail(lang))?;
    let body = html! {
        section.card #stockouts {
            h2 { (lang.t("预计缺货", "Projected stock-outs")) " (" (board.stockouts.len()) ")" }
            p.hint { (lang.t("服务站可用库存加在途低于下月预测均值、且本计划没有在到货的建议。", "Station stock available plus in transit below next month's forecast mean, with no live proposal of the newest plan arriving.")) }
            div.scroll { table {
                thead { tr { th { (lang.t("服务站", "Station")) } th { (lang.t("配件", "Part")) } th.num { (lang.t("可用+在途", "Available + in transit")) } th.num { (lang.t("下月预测", "Next month forecast")) } th { (lang.t("关键度", "Criticality")) } } }
                tbody { @for r in &board.stockouts { tr {
                    td { (r.station) } td.code { (r.part) } td.num { (r.available) } td.num { (format!("{:.1}", r.forecast)) } td { (r.criticality) }
                } } }
            } }
        }
        section.card #over-limit {
            h2 { (lang.t("代垫额度超限", "Credit over limit")) " (" (board.over_limit.len()) ")" }
            div.scroll { table {
                thead { tr { th { (lang.t("服务站", "Station")) } th.num { (lang.t("额度", "Limit")) } th.num { (lang.t("占用", "Exposure + committed")) } th.num { (lang.t("超出", "Over by")) } } }
                tbody { @for a in &board.over_limit { tr {
                    td { (a.station_code) } td.num { (money(a.limit_minor)) } td.num { (money(a.exposure_minor + a.committed_minor)) } td.num.error { (money(-a.headroom_minor)) }
                } } }
            } }
        }
        section.card #excess {
            h2 { (lang.t("呆滞/过量库存", "Excess stock")) " (" (board.excess.len()) ")" }
            p.hint { (lang.t("现有库存超过预测期内全部预测需求的部分，按成本计价。", "On-hand stock beyond all forecast demand of the horizon, at cost.")) }
            div.scroll { table {
                thead { tr { th { (lang.t("地点", "Location")) } th { (lang.t("配件", "Part")) } th.num { (lang.t("现有", "On hand")) } th.num { (lang.t("预测期需求", "Horizon demand")) } th.num { (lang.t("过量金额", "Excess value")) } } }
                tbody { @for r in &board.excess { tr {
                    td { (r.location) } td.code { (r.part) } td.num { (r.on_hand) } td.num { (format!("{:.1}", r.horizon_demand)) } td.num { (money(r.excess_value_minor)) }
                } } }
            } }
        }
    };
    Ok(page(
        &ctx,
        "/ui/exceptions",
        lang.t("异常看板", "Exceptions"),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_round_trips_through_its_query_string() {
        let f = parse_filter(Some(
            "part=PT-&kind=transfer&status=&min_value=100&sort=order_by&page=2",
        ))
        .unwrap_or_default();
        assert_eq!(f.part.as_deref(), Some("PT-"));
        assert_eq!(f.status, None);
        assert_eq!(f.sort, QueueSort::OrderBy);
        let q = filter_query(&f, f.page);
        assert_eq!(
            q,
            "kind=transfer&part=PT-&min_value=100&sort=order_by&page=2"
        );
        assert!(
            matches!(parse_filter(Some("min_value=ten")), Err(WebError::Invalid(field, _)) if field == "min_value")
        );
    }

    #[test]
    fn selections_are_id_and_version() {
        assert_eq!(selection("12:3").ok(), Some((12, 3)));
        assert!(selection("12").is_err());
    }

    #[test]
    fn tier_fills_read_the_stored_kpis() {
        let k = r#"{"fill_rate_by_tier":[{"tier":"exceed","demand":10,"served":9.7,"fill_rate":0.97}]}"#;
        assert_eq!(tier_fills(Some(k)), "exceed 97.0 %");
        assert_eq!(tier_fills(None), "");
    }
}
