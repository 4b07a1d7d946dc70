//! The web interface (DESIGN §7–8): server-rendered pages for planners, stations and finance,
//! served by the same binary as the API under `/ui`.
//!
//! Pages are rendered with maud (compile-time templates that escape every value), use a
//! little plain JavaScript (type-ahead, select-all) and embed their assets, so nothing is
//! built or fetched at run time. Like the API, every page is one row of [`pages`], which says
//! who may open it; the router, the role gate and the CSRF check are built from that table.

mod chart;
mod dashboard;
mod finance;
mod i18n;
mod layout;
mod planner;
mod receiving;
pub mod session;
mod station;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use maud::{html, Markup};

pub use i18n::Lang;
pub use session::Session;

use crate::api::{Access, ApiError, AppState};
use crate::auth::Role;
use crate::db::Db;
use crate::service::ServiceError;

/// One page or form action of the interface.
pub struct PageRoute {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    route: fn() -> MethodRouter<AppState>,
}

const ALL: &[Role] = &Role::ALL;
/// Planning pages are read by finance and viewers too, as the API's plan reads are.
const READ_PLANS: &[Role] = &[Role::Admin, Role::Planner, Role::Finance, Role::Viewer];
pub(crate) const PLANNING: &[Role] = &[Role::Admin, Role::Planner];
pub(crate) const FINANCE: &[Role] = &[Role::Finance];
const STATION_WRITE: &[Role] = &[Role::Admin, Role::Station];
/// Who books arrivals: planners for the warehouses, stations for themselves.
const RECEIVE: &[Role] = &[Role::Admin, Role::Planner, Role::Station];

/// Every page and form action.
pub fn pages() -> Vec<PageRoute> {
    let p = |method: Method,
             path: &'static str,
             access: Access,
             route: fn() -> MethodRouter<AppState>| PageRoute {
        method,
        path,
        access,
        route,
    };
    use Access::{Public, Roles};
    use Method as M;
    vec![
        p(M::GET, "/ui/login", Public, || get(layout::login_page)),
        p(M::POST, "/ui/login", Public, || post(layout::login)),
        p(M::GET, "/ui/lang/{code}", Public, || {
            get(layout::switch_lang)
        }),
        p(M::GET, "/ui/assets/app.css", Public, || get(layout::css)),
        p(M::GET, "/ui/assets/app.js", Public, || get(layout::js)),
        p(M::GET, "/ui", Roles(ALL), || get(layout::home)),
        p(M::POST, "/ui/logout", Roles(ALL), || post(layout::logout)),
        p(M::GET, "/ui/dashboard", Roles(READ_PLANS), || {
            get(dashboard::show)
        }),
        p(M::GET, "/ui/runs", Roles(READ_PLANS), || get(planner::runs)),
        p(M::POST, "/ui/runs", Roles(PLANNING), || {
            post(planner::start_run)
        }),
        p(M::GET, "/ui/proposals", Roles(READ_PLANS), || {
            get(planner::queue)
        }),
        p(M::GET, "/ui/proposals.csv", Roles(READ_PLANS), || {
            get(planner::queue_csv)
        }),
        p(M::POST, "/ui/proposals/bulk", Roles(PLANNING), || {
            post(planner::bulk)
        }),
        p(M::POST, "/ui/proposals/release", Roles(PLANNING), || {
            post(planner::release)
        }),
        p(M::GET, "/ui/proposals/{id}", Roles(READ_PLANS), || {
            get(planner::proposal)
        }),
        p(M::POST, "/ui/proposals/{id}", Roles(PLANNING), || {
            post(planner::change)
        }),
        p(M::GET, "/ui/exceptions", Roles(READ_PLANS), || {
            get(planner::exceptions)
        }),
        p(M::GET, "/ui/stock", Roles(ALL), || get(station::show)),
        p(M::GET, "/ui/parts/suggest", Roles(ALL), || {
            get(station::suggest)
        }),
        p(M::POST, "/ui/stock/moves", Roles(STATION_WRITE), || {
            post(station::record)
        }),
        p(M::GET, "/ui/arriving", Roles(RECEIVE), || {
            get(receiving::show)
        }),
        p(M::POST, "/ui/arriving/receive", Roles(RECEIVE), || {
            post(receiving::receive)
        }),
        p(M::GET, "/ui/credit", Roles(READ_PLANS), || {
            get(finance::board)
        }),
        p(M::POST, "/ui/credit/transfers/{id}", Roles(FINANCE), || {
            post(finance::decide_transfer)
        }),
        p(
            M::POST,
            "/ui/credit/limit-requests",
            Roles(PLANNING),
            || post(finance::request_limit),
        ),
        p(
            M::POST,
            "/ui/credit/limit-requests/{id}",
            Roles(FINANCE),
            || post(finance::decide_limit),
        ),
    ]
}

/// The pages, each behind its role gate (and, for posts, the CSRF check).
pub fn router(db: &Db) -> Router<AppState> {
    let mut app: Router<AppState> = Router::new();
    for page in pages() {
        let mut route = (page.route)();
        if let Access::Roles(roles) = page.access {
            route = route.route_layer(middleware::from_fn_with_state(
                Gate {
                    db: db.clone(),
                    roles,
                },
                gate,
            ));
        }
        app = app.route(page.path, route);
    }
    // Someone typing the server's address lands on the interface.
    app.route("/", get(|| async { Redirect::to("/ui") }))
}

#[derive(Clone)]
struct Gate {
    db: Db,
    roles: &'static [Role],
}

/// Largest form a page posts (bulk selections included).
const FORM_LIMIT: usize = 1 << 20;

/// Signs the browser in (or sends it to sign in), admits only the page's roles and, for a
/// post, only with the session's form token.
async fn gate(State(g): State<Gate>, req: Request, next: Next) -> Response {
    let lang = Lang::of(req.headers());
    let session = match cookie(req.headers(), session::COOKIE) {
        Some(id) => session::lookup(&g.db, &id).await,
        None => Ok(None),
    };
    let session = match session {
        Ok(Some(s)) => s,
        Ok(None) => {
            let back = req
                .uri()
                .path_and_query()
                .map_or("/ui", |p| p.as_str())
                .to_owned();
            let target = if req.method() == Method::GET {
                back
            } else {
                "/ui".into()
            };
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &target)
                .finish();
            return Redirect::to(&format!("/ui/login?{query}")).into_response();
        }
        Err(e) => return WebError::Service(e).page(lang),
    };
    if !g.roles.contains(&session.role()) {
        return WebError::Forbidden.page(lang);
    }
    let (mut parts, body) = req.into_parts();
    let req = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return WebError::Invalid("form".into(), "too large".into()).page(lang);
        };
        let posted = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !session.csrf_matches(&posted) {
            return WebError::Csrf.page(lang);
        }
        parts.extensions.insert(session);
        Request::from_parts(parts, Body::from(bytes))
    } else {
        parts.extensions.insert(session);
        Request::from_parts(parts, body)
    };
    next.run(req).await
}

/// What a page handler knows about its caller.
pub struct Ctx {
    pub session: Session,
    pub lang: Lang,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(&parts.headers);
        match parts.extensions.get::<Session>() {
            Some(s) => Ok(Ctx {
                session: s.clone(),
                lang,
            }),
            None => Err(Redirect::to("/ui/login").into_response()),
        }
    }
}

impl Ctx {
    /// Whether the caller has one of these roles: the page table's own role lists decide
    /// which buttons a page shows, so a page never offers what the gate would refuse.
    pub fn may(&self, roles: &[Role]) -> bool {
        roles.contains(&self.session.role())
    }
}

/// A posted form as its fields, in order (repeated names, e.g. selected rows, kept).
pub struct FormFields(pub Vec<(String, String)>);

impl FormFields {
    pub fn parse(bytes: &[u8]) -> FormFields {
        FormFields(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of a field, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A required field.
    pub fn required(&self, name: &str) -> Result<&str, WebError> {
        self.get(name)
            .ok_or_else(|| WebError::Invalid(name.to_owned(), "is required".into()))
    }

    /// A required whole number.
    pub fn int(&self, name: &str) -> Result<i64, WebError> {
        self.required(name)?
            .parse()
            .map_err(|_| WebError::Invalid(name.to_owned(), "must be a whole number".into()))
    }

    /// Every value of a repeated field.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for FormFields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(req.headers());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::Invalid("form".into(), "unreadable".into()).page(lang))?;
        Ok(FormFields::parse(&bytes))
    }
}

/// Why a page could not be shown or a form not applied.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}: {1}")]
    Invalid(String, String),
    #[error("forbidden")]
    Forbidden,
    #[error("the form token is missing or stale")]
    Csrf,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl WebError {
    /// The status and the message for the person in front of the page. A service failure
    /// gets the status the API gives it (one mapping for both front ends); internal
    /// details go to the log, not the page.
    fn status_and_message(self, lang: Lang) -> (StatusCode, String) {
        let e = match self {
            WebError::Invalid(..) => {
                return (StatusCode::UNPROCESSABLE_ENTITY, self.to_string());
            }
            WebError::Forbidden => {
                let why = lang.t(
                    "您的角色无权访问此页面。",
                    "Your role may not open this page.",
                );
                return (StatusCode::FORBIDDEN, why.to_owned());
            }
            WebError::Csrf => {
                let why = lang.t(
                    "表单已过期或缺少校验令牌，请返回刷新后重试。",
                    "The form's token is missing or stale; go back, reload and try again.",
                );
                return (StatusCode::FORBIDDEN, why.to_owned());
            }
            WebError::Service(e) => ApiError::from(e),
        };
        let status = e.status();
        let message = match &e {
            ApiError::Conflict { detail, .. } => format!(
                "{} {detail}",
                lang.t("数据已被他人修改：", "Changed by someone else meanwhile:")
            ),
            _ if status.is_server_error() => {
                tracing::error!(error = ?e, "web page failed");
                lang.t(
                    "服务器内部错误，已记录。",
                    "Internal error; it has been logged.",
                )
                .to_owned()
            }
            other => other.to_string(),
        };
        (status, message)
    }

    /// An error page with the right status.
    pub fn page(self, lang: Lang) -> Response {
        let (status, message) = self.status_and_message(lang);
        let body = layout::bare(
            lang,
            lang.t("出错了", "Something went wrong"),
            html! {
                main #main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error role="alert" data-status=(status.as_u16()) { (message) }
                    p { a href="/ui" { (lang.t("返回首页", "Back to the start page")) } }
                }
            },
        );
        (status, html_response(body)).into_response()
    }
}

/// Handlers answer a page or an error page.
pub type PageResult = Result<Response, Response>;

/// Turns a failure into its error page in the caller's language.
pub fn fail(lang: Lang) -> impl Fn(WebError) -> Response {
    move |e| e.page(lang)
}

/// Turns a service failure into its error page in the caller's language.
pub fn service_fail(lang: Lang) -> impl Fn(ServiceError) -> Response {
    move |e| WebError::Service(e).page(lang)
}

/// An HTML page that is never cached (it shows live stock and approvals).
pub fn html_response(markup: Markup) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// After a successful post: back to a page (303, so a reload does not post again).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Money in minor units as `12,345.67`.
pub fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let major = (abs / 100).to_string();
    let mut grouped = String::with_capacity(major.len() + major.len() / 3);
    for (i, ch) in major.chars().enumerate() {
        if i > 0 && (major.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// A share as a percentage with one decimal.
pub fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_cents() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(123_456_789), "1,234,567.89");
        assert_eq!(money(-100_000), "-1,000.00");
    }

    #[test]
    fn cookies_are_found_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sp_lang=en; sp_session=abc"),
        );
        assert_eq!(cookie(&h, "sp_lang").as_deref(), Some("en"));
        assert_eq!(cookie(&h, "sp_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "nope"), None);
    }

    #[test]
    fn form_fields_keep_repeats_and_treat_blank_as_absent() {
        let f = FormFields::parse(b"id=1&id=2&qty=+&reason=too+many");
        assert_eq!(f.all("id").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(f.get("qty"), None);
        assert_eq!(f.get("reason"), Some("too many"));
        assert!(matches!(f.int("qty"), Err(WebError::Invalid(..))));
    }

    #[test]
    fn every_page_path_is_under_ui_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in pages() {
            assert!(p.path.starts_with("/ui"), "{}", p.path);
            assert!(seen.insert((p.method.clone(), p.path)), "{} twice", p.path);
        }
    }
}
