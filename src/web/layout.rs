//! The page shell (header, navigation by role, language switch), signing in and out, and
//! the embedded assets.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use super::{cookie, html_response, see_other, session, Ctx, FormFields, Lang, WebError};
use crate::api::AppState;
use crate::auth::Role;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
/// The cookie that carries the sign-in form's token before there is a session.
const PRE_COOKIE: &str = "sp_pre";

/// An embedded asset; assets change only with the binary, so browsers may keep them.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// A page without navigation (sign-in, errors).
pub fn bare(lang: Lang, title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.html_lang()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (lang.t("备件计划", "Spareplan")) }
                link rel="stylesheet" href="/ui/assets/app.css";
            }
            body { (main) }
        }
    }
}

/// Where each role finds its work.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Station => "/ui/stock",
        Role::Finance => "/ui/credit",
        Role::Admin | Role::Planner | Role::Viewer => "/ui/dashboard",
    }
}

/// The navigation a role sees: (path, Chinese, English).
fn nav(role: Role) -> Vec<(&'static str, &'static str, &'static str)> {
    let dashboard = ("/ui/dashboard", "总览", "Dashboard");
    let runs = ("/ui/runs", "计划运行", "Plan runs");
    let queue = ("/ui/proposals", "建议队列", "Proposals");
    let exceptions = ("/ui/exceptions", "异常", "Exceptions");
    let stock = ("/ui/stock", "库存查询", "Availability");
    let credit = ("/ui/credit", "代垫额度", "Credit");
    let arriving = ("/ui/arriving", "到货登记", "Arriving");
    match role {
        Role::Station => vec![stock, arriving],
        Role::Finance => vec![dashboard, credit, queue, stock],
        Role::Viewer => vec![dashboard, runs, queue, exceptions, stock, credit],
        Role::Admin | Role::Planner => {
            vec![dashboard, runs, queue, exceptions, stock, arriving, credit]
        }
    }
}

/// A page with the header and navigation; `active` is the nav path to mark.
pub fn page(ctx: &Ctx, active: &str, title: &str, main: Markup) -> Response {
    let lang = ctx.lang;
    let s = &ctx.session;
    let who = match s.station_code() {
        Some(code) => format!("{} · {} {code}", s.principal.label, lang.word("station")),
        None => format!("{} · {}", s.principal.label, lang.word(s.role().as_str())),
    };
    html_response(html! {
        (DOCTYPE)
        html lang=(lang.html_lang()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (lang.t("备件计划", "Spareplan")) }
                link rel="stylesheet" href="/ui/assets/app.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { (lang.t("跳到正文", "Skip to content")) }
                header.top {
                    a.brand href="/ui" { (lang.t("备件计划", "Spareplan")) }
                    nav aria-label=(lang.t("主导航", "Main")) {
                        ul {
                            @for (path, zh, en) in nav(s.role()) {
                                li {
                                    a href=(path) aria-current=[(path == active).then_some("page")] { (lang.t(zh, en)) }
                                }
                            }
                        }
                    }
                    div.user {
                        span.who { (who) }
                        a.lang href=(format!("/ui/lang/{}", lang.other().code())) hreflang=(lang.other().code()) {
                            (lang.t("English", "中文"))
                        }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button.link type="submit" { (lang.t("退出", "Sign out")) }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (main)
                }
            }
        }
    })
}

/// The hidden form-token field every form of a signed-in page carries.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.session.csrf); }
}

pub async fn home(ctx: Ctx) -> Response {
    see_other(home_of(ctx.session.role()))
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    failed: Option<u8>,
}

/// Only a path of this interface may follow sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| n.starts_with("/ui") && !n.starts_with("//") && !n.contains('\\'))
}

fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn set_cookie(c: Cookie<'_>) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""));
    (header::SET_COOKIE, value)
}

pub async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let lang = Lang::of(&headers);
    let pre = session::random_secret();
    let next = safe_next(q.next.as_deref()).unwrap_or("/ui");
    let body = bare(
        lang,
        lang.t("登录", "Sign in"),
        html! {
            main #main.login {
                h1 { (lang.t("备件库存与补货计划", "Spare-parts planning")) }
                @if q.failed.is_some() {
                    p.error role="alert" { (lang.t("访问密钥无效或已吊销。", "That access key is unknown or revoked.")) }
                }
                form method="post" action="/ui/login" {
                    input type="hidden" name="pre" value=(pre);
                    input type="hidden" name="next" value=(next);
                    label for="key" { (lang.t("访问密钥", "Access key")) }
                    input #key type="password" name="key" autocomplete="current-password" required autofocus;
                    p.hint { (lang.t("由管理员用 `spareplan token create` 发放。", "Issued by an administrator with `spareplan token create`.")) }
                    button type="submit" { (lang.t("登录", "Sign in")) }
                }
                p { a href=(format!("/ui/lang/{}", lang.other().code())) { (lang.t("English", "中文")) } }
            }
        },
    );
    let cookie = Cookie::build((PRE_COOKIE, pre))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(&headers))
        .build();
    ([set_cookie(cookie)], html_response(body)).into_response()
}

pub async fn login(State(s): State<AppState>, headers: HeaderMap, form: FormFields) -> Response {
    let lang = Lang::of(&headers);
    // The sign-in form has no session yet: its token is checked against its own cookie.
    let expected = cookie(&headers, PRE_COOKIE).unwrap_or_default();
    let posted = form.get("pre").unwrap_or_default();
    if expected.is_empty() || expected != posted {
        return WebError::Csrf.page(lang);
    }
    let next = safe_next(form.get("next")).unwrap_or("/ui").to_owned();
    let key = form.get("key").unwrap_or_default();
    match session::sign_in(&s.db, key).await {
        Ok(Some(id)) => {
            let cookie = Cookie::build((session::COOKIE, id))
                .path("/ui")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(secure(&headers))
                .max_age(cookie::time::Duration::hours(session::LIFETIME_HOURS))
                .build();
            ([set_cookie(cookie)], see_other(&next)).into_response()
        }
        Ok(None) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("failed", "1")
                .append_pair("next", &next)
                .finish();
            see_other(&format!("/ui/login?{query}"))
        }
        Err(e) => WebError::Service(e).page(lang),
    }
}

pub async fn logout(State(s): State<AppState>, headers: HeaderMap, ctx: Ctx) -> Response {
    if let Some(id) = cookie(&headers, session::COOKIE) {
        if let Err(e) = session::sign_out(&s.db, &id).await {
            return WebError::Service(e).page(ctx.lang);
        }
    }
    let gone = Cookie::build((session::COOKIE, ""))
        .path("/ui")
        .removal()
        .build();
    ([set_cookie(gone)], see_other("/ui/login")).into_response()
}

/// Remembers the language and goes back where the switch was clicked.
pub async fn switch_lang(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/ui").map(|i| r[i..].to_owned()))
        .filter(|r| safe_next(Some(r)).is_some())
        .unwrap_or_else(|| "/ui".into());
    let c = Cookie::build((super::i18n::COOKIE, lang.code()))
        .path("/ui")
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::days(365))
        .build();
    ([set_cookie(c)], see_other(&back)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_the_interface_follow_sign_in() {
        assert_eq!(
            safe_next(Some("/ui/proposals?x=1")),
            Some("/ui/proposals?x=1")
        );
        assert_eq!(safe_next(Some("https://evil.example/ui")), None);
        assert_eq!(safe_next(Some("//evil.example")), None);
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn station_users_see_only_availability() {
        assert_eq!(nav(Role::Station).len(), 2);
        assert_eq!(home_of(Role::Station), "/ui/stock");
        assert!(nav(Role::Planner)
            .iter()
            .any(|(p, ..)| *p == "/ui/exceptions"));
    }
}
