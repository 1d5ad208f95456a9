//! The web dashboard: server-rendered pages for the farmer (`/user`), the pump owner (`/admin`)
//! and the master admin (`/master`), in English and Bangla, with a small script for live state.
//!
//! - Pages and forms are clients of the JSON API, in-process ([`api::Api`]): they keep the API's
//!   roles, tenant scope, validation and audit; a 403 or 404 from the API is a 403 or 404 page.
//! - Every form carries a CSRF token (`csrf`), checked by the [`Posted`] extractor that every
//!   POST handler takes, and every action works without the script (post, redirect, a message).
//! - Every page is sent with a strict Content-Security-Policy: no inline script or style, nothing
//!   from another origin. Templates are `maud`, which escapes everything it is given.

mod admin;
mod alerts;
mod api;
mod assets;
mod chart;
mod csrf;
mod farmer;
pub mod i18n;
mod login;
mod master;
mod parts;
mod password;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{ConnectInfo, Form, FromRequest, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use api::Api;
use api::{Answer, Failure, User};
use i18n::{Lang, Text, Zone, fill, lookup};

use crate::{app::AppState, auth::SESSION_COOKIE};

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

const FLASH_COOKIE: &str = "pp_flash";

/// What the dashboard's handlers share.
pub struct Web {
    pub app: AppState,
    pub api: Api,
}

pub type WebState = Arc<Web>;

/// The dashboard's routes. `api` is the JSON API's router, which the pages call in-process.
pub fn router(app: AppState, api: Router) -> Router<AppState> {
    let web = Arc::new(Web { app, api: Api::new(api) });
    Router::new()
        .route("/", get(entry))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/lang", post(switch_language))
        .route("/notifications", get(alerts::page))
        .route("/notifications/read", post(alerts::mark_read))
        .route("/notifications/profile", post(alerts::save_profile))
        .route("/password", get(password::page).post(password::change))
        .route("/user", get(farmer::home))
        .route("/user/start", post(farmer::start))
        .route("/user/stop", post(farmer::stop))
        .route("/user/minutes", get(farmer::minutes).post(farmer::request_minutes))
        .route("/user/history", get(farmer::history))
        .route("/user/receipts/{id}", get(farmer::receipt))
        .route("/admin", get(admin::pump))
        .route("/admin/stop", post(admin::stop))
        .route("/admin/devices", post(admin::register_device))
        .route("/admin/devices/{id}/rotate-key", post(admin::rotate_key))
        .route("/admin/farmers", get(admin::farmers).post(admin::create_farmer))
        .route("/admin/farmers/{id}", get(admin::farmer))
        .route("/admin/farmers/{id}/recharge", post(admin::recharge))
        .route("/admin/farmers/{id}/correct", post(admin::correct))
        .route("/admin/farmers/{id}/suspend", post(admin::suspend))
        .route("/admin/farmers/{id}/unsuspend", post(admin::unsuspend))
        .route("/admin/farmers/{id}/card", post(admin::bind_card))
        .route("/admin/farmers/{id}/cards/{uid}/remove", post(admin::remove_card))
        .route("/admin/farmers/{id}/name", post(admin::rename))
        .route("/admin/farmers/{id}/password", post(admin::reset_password))
        .route("/admin/farmers/{id}/phone", post(admin::enrol_phone))
        .route("/admin/terms", post(admin::set_terms))
        .route("/admin/receipts/{id}", get(admin::receipt))
        .route("/admin/receipts/{id}/void", post(admin::void_receipt))
        .route("/admin/queue/remove", post(admin::remove_waiting))
        .route("/admin/queue/move", post(admin::move_waiting))
        .route("/admin/requests", get(admin::requests))
        .route("/admin/requests/{id}/approve", post(admin::approve))
        .route("/admin/requests/{id}/reject", post(admin::reject))
        .route("/admin/usage", get(admin::usage))
        .route("/admin/usage.csv", get(admin::usage_csv))
        .route("/admin/log", get(admin::log))
        .route("/master", get(master::owners).post(master::create_owner))
        .route("/master/owners/{id}", get(master::pump))
        .route("/master/owners/{id}/suspend", post(master::suspend))
        .route("/master/owners/{id}/unsuspend", post(master::unsuspend))
        .route("/master/owners/{id}/password", post(master::reset_password))
        // An image is up to a device's OTA slot: this route reads more than the 64 KiB of the rest.
        .route(
            "/master/firmware",
            get(master::firmware::page)
                .post(master::firmware::upload)
                .layer(axum::extract::DefaultBodyLimit::max(master::firmware::UPLOAD_LIMIT)),
        )
        .route("/master/firmware/rollout", post(master::firmware::rollout))
        .route("/static/{file}", get(assets::serve))
        .fallback(nowhere)
        .layer(middleware::map_response(secure_headers))
        .layer(middleware::from_fn(secure_cookies))
        .with_state(web)
}

/// What answers a path nobody serves: a page saying so for a browser, the API's JSON 404 for
/// everything else (and always under `/api/`). This is the whole server's fallback.
async fn nowhere(visit: Visit, headers: HeaderMap) -> Response {
    let browser = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if !browser || visit.path.starts_with("/api/") {
        return crate::error::ApiError::not_found("route").into_response();
    }
    let t = visit.t();
    message_page(&visit, None, StatusCode::NOT_FOUND, t.not_found_title, t.not_found_text)
}

/// Every dashboard answer: the CSP and its friends; pages are never cached (they carry personal
/// data and form tokens), the hashed assets are (they set their own `Cache-Control`).
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Behind a proxy that serves HTTPS (it says `X-Forwarded-Proto: https`), every cookie is
/// `Secure`: a link to the same host over plain `http://` then never carries the session. Served
/// over plain HTTP (a village server on its LAN address, no proxy), cookies stay as they are, or
/// no browser would keep them. The header needs no trusted proxy: a client that sends it itself
/// only makes its own cookies stricter.
async fn secure_cookies(request: Request, next: middleware::Next) -> Response {
    let https = request.headers().get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let mut response = next.run(request).await;
    if https {
        for (name, value) in response.headers_mut().iter_mut() {
            if name == header::SET_COOKIE
                && let Ok(cookie) = value.to_str()
                && !cookie.to_ascii_lowercase().contains("; secure")
                && let Ok(secure) = HeaderValue::from_str(&format!("{cookie}; Secure"))
            {
                *value = secure;
            }
        }
    }
    response
}

/// One cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name && !value.is_empty()).then(|| value.to_string())
    })
}

/// A message for the next page (after a form's redirect), kept a minute in a cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    ok: bool,
    key: String,
    args: Vec<String>,
    /// What the person typed into a refused form, to put back (never a password or token).
    #[serde(default)]
    kept: Vec<(String, String)>,
}

impl Flash {
    pub fn ok(key: &str, args: &[&str]) -> Flash {
        Flash { ok: true, key: key.into(), args: args.iter().map(|a| a.to_string()).collect(), kept: Vec::new() }
    }

    /// A form the dashboard itself sends back for a second look (`key` names the words).
    fn refused(key: &str, args: &[&str]) -> Flash {
        Flash { ok: false, ..Flash::ok(key, args) }
    }

    /// Keeps the posted form's typed values (not passwords or the form token) for the next page.
    fn keeping(mut self, posted: &Posted) -> Flash {
        self.kept = posted
            .fields
            .iter()
            .filter(|(k, _)| k != csrf::FIELD && !k.contains("password"))
            .map(|(k, v)| (k.clone(), v.chars().take(500).collect()))
            .collect();
        self
    }

    pub fn error(failure: &Failure) -> Flash {
        Flash {
            ok: false,
            key: "error".into(),
            args: vec![failure.code.clone(), failure.status.as_u16().to_string(), failure.message.clone()],
            kept: Vec::new(),
        }
    }

    fn cookie(&self) -> String {
        let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        format!("{FLASH_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=60")
    }

    fn read(headers: &HeaderMap) -> Option<Flash> {
        let bytes = URL_SAFE_NO_PAD.decode(cookie(headers, FLASH_COOKIE)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The message in words (anything it carries is escaped when rendered).
    fn words(&self, t: &Text) -> (String, Option<String>) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let template = match self.key.as_str() {
            "recharged" => t.flash_recharged,
            "user_created" => t.flash_user_created,
            "owner_created" => t.flash_owner_created,
            "suspended" => t.flash_suspended,
            "unsuspended" => t.flash_unsuspended,
            "approved" => t.flash_approved,
            "rejected" => t.flash_rejected,
            "card_bound" => t.flash_card_bound,
            "request_sent" => t.flash_request_sent,
            "alerts_saved" => t.flash_alerts_saved,
            "alerts_read" => t.flash_alerts_read,
            "started" => t.flash_started,
            "stopped" => t.flash_stopped,
            "run_stopped" => t.flash_run_stopped,
            "corrected" => t.flash_corrected,
            "made_already" => t.flash_made_already,
            "left_queue" => t.flash_left_queue,
            "card_taken" => t.flash_card_taken,
            "card_removed" => t.flash_card_removed,
            "removed_from_queue" => t.flash_removed_from_queue,
            "signed_out" => t.signed_out,
            "form_expired" => t.form_expired,
            "error" => return error_words(t, &args),
            other => match t.owner.flash(other).or_else(|| t.updates.flash(other)).or_else(|| t.passwords.flash(other))
            {
                Some(template) => template,
                None => return (String::new(), None),
            },
        };
        (fill(template, &args), None)
    }
}

/// An API error in words, with the API's own sentence when it names a field.
fn error_words(t: &Text, args: &[&str]) -> (String, Option<String>) {
    let code = args.first().copied().unwrap_or("INTERNAL");
    let status = args.get(1).copied().unwrap_or("500");
    let words = match t.errors.iter().chain(t.updates.errors).find(|(c, _)| *c == code) {
        Some((_, words)) => (*words).to_string(),
        None => fill(t.error_other, &[status]),
    };
    // The API's sentence is for developers (and may be a parser's); the reader gets the rule of
    // the field it names, in their language, or nothing more: the rule the sentence's first word
    // names (`field/word`, filled with the sentence's numbers) where there is one, else the field's.
    let message = args.get(2).copied().unwrap_or_default();
    let (field, rule) = message.split_once(':').map_or((message, ""), |(field, rule)| (field, rule.trim()));
    let keys = [format!("{field}/{}", rule.split_whitespace().next().unwrap_or_default()), field.to_string()];
    let hint = |key: &String| t.field_hints.iter().chain(t.updates.field_hints).find(|(f, _)| f == key);
    let numbers: Vec<String> = rule
        .split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .filter_map(|n| n.parse::<i64>().ok())
        .map(|n| i18n::number(n, t.lang))
        .collect();
    let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let detail = (code == "VALIDATION").then(|| keys.iter().find_map(hint).map(|(_, h)| fill(h, &numbers))).flatten();
    (words, detail)
}

/// Who is asking, in what language, from where: read from every request, needs no sign-in.
pub struct Visit {
    pub lang: Lang,
    pub zone: Zone,
    pub session: Option<String>,
    pub pre: Option<String>,
    pub flash: Option<Flash>,
    pub path: String,
    pub client: Option<SocketAddr>,
    /// The address the browser reached this server at (`Host`), to show a device where to poll.
    pub host: Option<String>,
}

impl Visit {
    /// What was typed into `field` of the form the server just refused, to show it again.
    pub fn kept(&self, field: &str) -> &str {
        self.flash
            .as_ref()
            .filter(|f| !f.ok)
            .and_then(|f| f.kept.iter().find(|(k, _)| k == field))
            .map_or("", |(_, v)| v.as_str())
    }
}

impl Visit {
    /// True when the last form came back for a second look under `key` (see `Flash::refused`).
    pub fn asked(&self, key: &str) -> bool {
        self.flash.as_ref().is_some_and(|f| !f.ok && f.key == key)
    }

    /// True when the last form was refused by the API with `code` (`KEY_REUSED`, say).
    pub fn refused_with(&self, code: &str) -> bool {
        self.flash.as_ref().is_some_and(|f| !f.ok && f.key == "error" && f.args.first().is_some_and(|c| c == code))
    }
}

/// A page's query, read leniently: one that does not parse (a hand-edited link, a field given
/// twice, a page number below zero) opens the page as it opens without a query, where a plain
/// `Query` would answer a line of English text.
pub struct PageQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned + Default> FromRequestParts<WebState> for PageQuery<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, Self::Rejection> {
        Ok(PageQuery(axum::extract::Query::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default()))
    }
}

impl FromRequestParts<WebState> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        Ok(Visit {
            lang: Lang::of(headers),
            zone: Zone::of(headers),
            session: cookie(headers, SESSION_COOKIE),
            pre: cookie(headers, csrf::PRE_COOKIE),
            flash: Flash::read(headers),
            // Where the language switch comes back to: this page, unless it answered a form.
            path: match parts.method {
                axum::http::Method::GET => parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
                _ => "/".to_string(),
            },
            // The client as the trusted proxies name it (`auth::resolve_client`), for the login limit.
            client: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| SocketAddr::new(crate::auth::client_of(parts).unwrap_or(c.0.ip()), c.0.port())),
            host: headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned),
        })
    }
}

impl Visit {
    pub fn t(&self) -> &'static Text {
        self.lang.text()
    }
}

/// A POSTed form whose CSRF token matched this browser's session (or, before sign-in, its
/// pre-session cookie). Every POST handler of the dashboard takes one, so none can forget it.
pub struct Posted {
    pub visit: Visit,
    fields: Vec<(String, String)>,
    /// The page script asked for the API's JSON answer instead of a redirect.
    pub json: bool,
}

impl Posted {
    pub fn field(&self, name: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
}

impl FromRequest<WebState> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, web: &WebState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let Ok(visit) = Visit::from_request_parts(&mut parts, web).await;
        let json = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if csrf::cross_site(&parts.headers) {
            return Err(refused(&visit, json));
        }
        let Ok(Form(fields)) = Form::<Vec<(String, String)>>::from_request(Request::from_parts(parts, body), &()).await
        else {
            return Err(refused(&visit, json));
        };
        let given = fields.iter().find(|(k, _)| k == csrf::FIELD).map_or("", |(_, v)| v.as_str());
        if !form_token_matches(web, &visit, given) {
            return Err(refused(&visit, json));
        }
        Ok(Posted { visit, fields, json })
    }
}

/// True when a form's token (`given`) is this browser's: its session's, or before sign-in its
/// pre-session cookie's. [`Posted`] checks it for every form; the firmware upload (multipart)
/// calls it itself.
fn form_token_matches(web: &Web, visit: &Visit, given: &str) -> bool {
    let keys = &web.app.keyring;
    visit.session.as_deref().is_some_and(|s| csrf::verify(keys, csrf::Binding::Session(s), given))
        || visit.pre.as_deref().is_some_and(|p| csrf::verify(keys, csrf::Binding::Pre(p), given))
}

/// A form without a valid token: 403, nothing done.
fn refused(visit: &Visit, json: bool) -> Response {
    if json {
        let body =
            serde_json::json!({"error": {"code": "FORBIDDEN", "message": "the form's token is missing or wrong"}});
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let t = visit.t();
    message_page(visit, None, StatusCode::FORBIDDEN, t.forbidden_title, t.form_expired)
}

/// A local path to go back to (never another site). No control characters at all: a browser
/// drops a tab or a newline from a URL, so `/\t/evil.example` would become `//evil.example`.
fn local_path(text: &str, fallback: &str) -> String {
    let ok = text.starts_with('/')
        && !text.starts_with("//")
        && !text.contains('\\')
        && !text.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok { text.to_string() } else { fallback.to_string() }
}

/// 303 to `to`, with these cookies.
fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The end of a form's action: the script gets the API's answer as it is; a plain form goes back
/// to `back` with a message (`ok` makes it from the answer's body).
fn finish(posted: &Posted, answer: Answer, back: &str, ok: impl FnOnce(&Value) -> Option<Flash>) -> Response {
    if posted.json {
        return (answer.status, axum::Json(answer.body)).into_response();
    }
    if answer.status == StatusCode::UNAUTHORIZED {
        return redirect("/login", &[]);
    }
    let flash = if answer.status.is_success() {
        ok(&answer.body)
    } else {
        Some(Flash::error(&answer.failure()).keeping(posted))
    };
    redirect(back, &flash.map(|f| f.cookie()).into_iter().collect::<Vec<_>>())
}

/// The page of each role.
fn home_of(role: &str) -> &'static str {
    match role {
        "master" => "/master",
        "admin" => "/admin",
        _ => "/user",
    }
}

/// `/`: the signed-in account's page, or the sign-in form.
async fn entry(State(web): State<WebState>, visit: Visit) -> Response {
    match signed_in(&web, visit).await {
        Ok(page) => redirect(home_of(&page.me.role), &[]),
        Err(response) => response,
    }
}

/// `POST /lang`: remember the language (a year) and go back.
async fn switch_language(posted: Posted) -> Response {
    let lang = Lang::parse(posted.field("lang")).unwrap_or(posted.visit.lang);
    let back = local_path(posted.field("back"), "/");
    let cookie = format!("{}={}; Path=/; SameSite=Lax; Max-Age=31536000", i18n::LANG_COOKIE, lang.code());
    redirect(&back, &[cookie])
}

/// A signed-in visit: the account (from `/api/auth/me`) and its form token.
pub struct Page {
    pub visit: Visit,
    pub token: String,
    pub me: User,
    pub csrf: String,
    /// Unread notifications, for the bell (`None` when they could not be read).
    pub unread: Option<u64>,
}

/// The signed-in page context, or where to go instead (the sign-in form).
async fn signed_in(web: &Web, visit: Visit) -> Result<Page, Response> {
    let Some(token) = visit.session.clone() else { return Err(redirect("/login", &[])) };
    let answer = web.api.get("/api/auth/me", &token).await;
    match answer.status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED => return Err(redirect("/login", &[])),
        // A suspended account: the sign-in page says so (and forgets the cookie).
        StatusCode::FORBIDDEN => return Err(redirect("/login", &[])),
        _ => return Err(failure_page(&visit, None, &answer.failure())),
    }
    let me: User = match answer.into() {
        Ok(me) => me,
        Err(failure) => return Err(failure_page(&visit, None, &failure)),
    };
    let csrf = csrf::token(&web.app.keyring, csrf::Binding::Session(&token));
    let unread = web.api.get("/api/notifications?limit=1", &token).await;
    let unread = unread.status.is_success().then(|| unread.body["unread"].as_u64()).flatten();
    Ok(Page { visit, token, me, csrf, unread })
}

/// A signed-in visit by an account of `role`; another role gets the 403 page.
async fn signed_in_as(web: &Web, visit: Visit, role: &str) -> Result<Page, Response> {
    let page = signed_in(web, visit).await?;
    if page.me.role != role {
        let t = page.visit.t();
        return Err(message_page(&page.visit, Some(&page), StatusCode::FORBIDDEN, t.forbidden_title, t.forbidden_text));
    }
    Ok(page)
}

/// A page extractor for each role: the signed-in visit, or the response that stands in for the
/// page (the sign-in page for a stranger, the 403 page for another role), so handlers need no
/// checks of their own.
macro_rules! role_page {
    ($name:ident, $role:literal) => {
        pub struct $name(pub Page);

        impl FromRequestParts<WebState> for $name {
            type Rejection = Response;

            async fn from_request_parts(parts: &mut Parts, web: &WebState) -> Result<Self, Self::Rejection> {
                let Ok(visit) = Visit::from_request_parts(parts, web).await;
                signed_in_as(web, visit, $role).await.map($name)
            }
        }
    };
}
role_page!(FarmerPage, "user");
role_page!(OwnerPage, "admin");
role_page!(MasterPage, "master");

/// Any signed-in visit (the notifications page is everyone's).
pub struct AnyPage(pub Page);

impl FromRequestParts<WebState> for AnyPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &WebState) -> Result<Self, Self::Rejection> {
        let Ok(visit) = Visit::from_request_parts(parts, web).await;
        signed_in(web, visit).await.map(AnyPage)
    }
}

/// Which tab of the navigation a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    UserPump,
    UserMinutes,
    UserHistory,
    AdminPump,
    AdminFarmers,
    AdminRequests,
    AdminUsage,
    AdminLog,
    Master,
    MasterFirmware,
    Alerts,
    None,
}

/// What the page script should keep live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    Farmer,
    Owner,
    Master,
    Off,
}

impl Page {
    pub fn t(&self) -> &'static Text {
        self.visit.t()
    }

    pub fn lang(&self) -> Lang {
        self.visit.lang
    }

    /// The hidden CSRF field for this page's forms.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(csrf::FIELD) value=(self.csrf); }
    }

    /// The finished page.
    pub fn render(&self, tab: Tab, live: Live, title: &str, content: Markup) -> Response {
        let markup = layout(&self.visit, Some(self), Some(&self.csrf), tab, live, title, content);
        page_response(&self.visit, StatusCode::OK, markup)
    }

    /// Fetches and reads one API answer, or the error page it makes.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, web: &Web, path: &str) -> Result<T, Response> {
        web.api.get(path, &self.token).await.into().map_err(|failure| failure_page(&self.visit, Some(self), &failure))
    }
}

/// The page with its status; the flash message, now shown, is cleared.
fn page_response(visit: &Visit, status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, maud::Markup::into_string(markup)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if visit.flash.is_some() {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("pp_flash=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        );
    }
    response
}

/// An API failure as a page: 403 and 404 keep their status and say so in words.
fn failure_page(visit: &Visit, page: Option<&Page>, failure: &Failure) -> Response {
    let t = visit.t();
    match failure.status {
        StatusCode::UNAUTHORIZED => redirect("/login", &[]),
        StatusCode::FORBIDDEN => message_page(visit, page, StatusCode::FORBIDDEN, t.forbidden_title, t.forbidden_text),
        StatusCode::NOT_FOUND => message_page(visit, page, StatusCode::NOT_FOUND, t.not_found_title, t.not_found_text),
        status => {
            let (words, _) = error_words(t, &[&failure.code, status.as_str()]);
            message_page(visit, page, status, &fill(t.error_other, &[status.as_str()]), &words)
        }
    }
}

/// A page with a title, a sentence and the way home.
fn message_page(visit: &Visit, page: Option<&Page>, status: StatusCode, title: &str, text: &str) -> Response {
    let t = visit.t();
    let home = page.map_or("/login", |p| home_of(&p.me.role));
    let content = html! {
        section.card.message {
            h1 { (title) }
            p { (text) }
            p { a.button href=(home) { (t.go_home) } }
        }
    };
    page_response(
        visit,
        status,
        layout(visit, page, page.map(|p| p.csrf.as_str()), Tab::None, Live::Off, title, content),
    )
}

/// The words the page script needs, in the page's language.
fn script_words(t: &Text) -> Value {
    let table =
        |rows: &[(&str, &str)]| Value::Object(rows.iter().map(|(k, v)| ((*k).to_string(), Value::from(*v))).collect());
    let plain = [
        ("running", t.state_running),
        ("hold", t.state_hold),
        ("waiting", t.state_waiting),
        ("idle", t.state_idle),
        ("starting", t.state_starting),
        ("stopping", t.state_stopping),
        ("timeLeft", t.time_left),
        ("resumesIn", t.resumes_in),
        ("waitingNumber", t.waiting_number),
        ("waitingNext", t.waiting_next),
        ("waitAbout", t.wait_about),
        ("waitAtLeast", t.wait_at_least),
        ("waitPaused", t.wait_paused),
        ("yourRun", t.your_run),
        ("yourRunHeld", t.your_run_held),
        ("motorFree", t.motor_free),
        ("notInLine", t.you_are_not_in_line),
        ("youLeft", t.flash_left_queue),
        ("upTo", t.up_to),
        ("motorBusy", t.motor_busy),
        ("motorBusyHold", t.motor_busy_hold),
        ("runningFor", t.running_for),
        ("runOf", t.run_of),
        ("start", t.start),
        ("joinQueue", t.join_queue),
        ("stop", t.stop),
        ("leaveQueue", t.leave_queue),
        ("nowRunning", t.now_running),
        ("waitingList", t.waiting_list),
        ("nobodyWaiting", t.nobody_waiting),
        ("nobodyRunning", t.nobody_running),
        ("you", t.you),
        ("online", t.device_online),
        ("pumpConnected", t.pump_connected),
        ("pumpNotConnected", t.pump_not_connected),
        ("neverSeen", t.never_seen),
        ("offline", t.device_offline),
        ("liveLost", t.live_lost),
        ("livePolling", t.live_polling),
        ("liveLostAsOf", t.live_lost_as_of),
        ("backOnline", t.back_online),
        ("copied", t.copied),
        ("sending", t.sending),
        ("errorOther", t.error_other),
        ("h", t.unit_h),
        ("min", t.unit_min),
        ("s", t.unit_s),
    ];
    let mut words: serde_json::Map<String, Value> =
        plain.iter().map(|(k, v)| ((*k).to_string(), Value::from(*v))).collect();
    words.insert("holdReasons".into(), table(t.hold_reasons));
    words.insert("errors".into(), table(t.errors));
    words.insert("deviceStatuses".into(), table(t.device_statuses));
    words.insert("updateStates".into(), table(t.updates.states));
    words.insert("months".into(), Value::from(t.months.to_vec()));
    Value::Object(words)
}

/// The frame of every page: the bar with the account, the language and sign-out, the tabs, the
/// message of the last action, and the content.
fn layout(
    visit: &Visit,
    page: Option<&Page>,
    csrf_token: Option<&str>,
    tab: Tab,
    live: Live,
    title: &str,
    content: Markup,
) -> Markup {
    let t = visit.t();
    let lang = visit.lang;
    let live_attr = match live {
        Live::Farmer => "farmer",
        Live::Owner => "owner",
        Live::Master => "master",
        Live::Off => "",
    };
    let flash = visit.flash.as_ref().map(|f| (f.ok, f.words(t))).filter(|(_, (words, _))| !words.is_empty());
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="theme-color" content="#0b3d2e";
                title { (title) " · " (t.app_name) }
                link rel="icon" type="image/svg+xml" href=(assets::icon());
                link rel="stylesheet" href=(assets::css());
                script src=(assets::js()) defer {}
            }
            body data-live=(live_attr) data-lang=(lang.code()) data-me=[page.map(|p| p.me.id.as_str())]
                data-words=(script_words(t).to_string()) {
                header.top {
                    a.brand href="/" {
                        svg.logo viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" {
                            path d="M12 2.5C9.2 7 5.5 10.4 5.5 14.6a6.5 6.5 0 0 0 13 0C18.5 10.4 14.8 7 12 2.5z" fill="#8fd8ff" {}
                        }
                        (t.app_name)
                    }
                    @if let Some(page) = page {
                        @let role = match page.me.role.as_str() { "master" => t.role_master, "admin" => t.role_admin, _ => t.role_user };
                        span.who {
                            span.who-name { (page.me.name) }
                            @if page.me.name != role { span.who-role { (role) } }
                        }
                    }
                    @if let Some(page) = page {
                        @let unread = i64::try_from(page.unread.unwrap_or(0)).unwrap_or(i64::MAX);
                        a.bell href="/notifications" aria-label=(format!("{} ({})", t.nav_alerts, fill(t.alerts_unread, &[&i18n::number(unread, visit.lang)]))) aria-current=[(tab == Tab::Alerts).then_some("page")] {
                            svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" {
                                path d="M12 22a2.5 2.5 0 0 0 2.5-2.5h-5A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.8V3.5a1.5 1.5 0 0 0-3 0v.7A7 7 0 0 0 5 11v5l-2 2v1h18v-1z" fill="currentColor" {}
                            }
                            @if unread > 0 { span.bell-count #bell-count { (i18n::number(unread, visit.lang)) } }
                        }
                    }
                    @if let Some(token) = csrf_token { (language_form(visit, token)) }
                    @if let Some(page) = page {
                        form.inline.signout method="post" action="/logout" {
                            (page.csrf_field())
                            button.link type="submit" { (t.sign_out) }
                        }
                    }
                }
                @if let Some(page) = page { (tabs(t, &page.me.role, tab)) }
                main {
                    p #live-status .live-status hidden {}
                    @if let Some((ok, (words, detail))) = flash {
                        div.flash.(if ok { "ok" } else { "err" }) role="status" {
                            (words)
                            @if let Some(detail) = detail { br; small { (detail) } }
                        }
                    }
                    (content)
                }
            }
        }
    }
}

/// The language switch: a form with this page's token (or the sign-in form's).
fn language_form(visit: &Visit, token: &str) -> Markup {
    let other = visit.lang.other();
    html! {
        form.inline.lang method="post" action="/lang" {
            input type="hidden" name=(csrf::FIELD) value=(token);
            input type="hidden" name="back" value=(visit.path);
            button.link type="submit" name="lang" value=(other.code()) lang=(other.code()) { (other.text().lang_name) }
        }
    }
}

fn tabs(t: &Text, role: &str, current: Tab) -> Markup {
    let items: &[(Tab, &str, &str)] = match role {
        "user" => &[
            (Tab::UserPump, "/user", t.nav_pump),
            (Tab::UserMinutes, "/user/minutes", t.nav_minutes),
            (Tab::UserHistory, "/user/history", t.nav_history),
        ],
        "admin" => &[
            (Tab::AdminPump, "/admin", t.nav_pump),
            (Tab::AdminFarmers, "/admin/farmers", t.nav_farmers),
            (Tab::AdminRequests, "/admin/requests", t.nav_requests),
            (Tab::AdminUsage, "/admin/usage", t.nav_usage),
            (Tab::AdminLog, "/admin/log", t.nav_audit),
        ],
        _ => &[(Tab::Master, "/master", t.nav_owners), (Tab::MasterFirmware, "/master/firmware", t.updates.nav)],
    };
    html! {
        nav.tabs {
            @for (tab, href, label) in items {
                @if *tab == current { a.current href=(href) aria-current="page" { (label) } }
                @else { a href=(href) { (label) } }
            }
        }
    }
}

/// A code's words (hold reasons, end reasons, …).
pub fn words(table: &'static [(&'static str, &'static str)], code: &str) -> String {
    lookup(table, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_rule_broken_in_the_readers_language_and_digits() {
        let said = |t, message| error_words(t, &["VALIDATION", "400", message]).1;
        assert_eq!(
            said(&i18n::EN, "minutes: from 1 to 600").as_deref(),
            Some("Minutes: a whole number from 1 to 600.")
        );
        assert_eq!(
            said(&i18n::BN, "minutes: from 1 to 600").as_deref(),
            Some("মিনিট: ১ থেকে ৬০০-এর মধ্যে একটি পূর্ণ সংখ্যা।")
        );
        // A parser's sentence about the field: the field's own rule.
        assert_eq!(said(&i18n::EN, "minutes: invalid type").as_deref(), Some("Minutes: type a whole number, like 30."));
        assert_eq!(
            said(&i18n::EN, "name: no control or text-direction characters").as_deref(),
            Some("Name: letters, digits, spaces and punctuation only.")
        );
        assert_eq!(said(&i18n::EN, "name: 1 to 80 characters").as_deref(), Some("Name: 1 to 80 letters."));
        assert_eq!(said(&i18n::EN, "nothing we know").as_deref(), None);
        // Cash past a receipt's limit names the limit, not "like 150".
        assert_eq!(
            said(&i18n::BN, "cashTaka: from 0 to 10000000").as_deref(),
            Some("টাকা: ০ থেকে ১,০০,০০,০০০-এর মধ্যে পূর্ণ সংখ্যায়।")
        );
    }
}
