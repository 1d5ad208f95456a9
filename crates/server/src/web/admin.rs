//! The pump owner's pages: the pump (motor, device, queue, device keys), farmers (balances,
//! recharge, suspend, cards), minute requests, usage (charts, CSV) and the audit log.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::{
    Flash, Live, Posted, Tab, Visit, WebState,
    api::{Audit, Card, Device, DeviceCreated, MinuteRequest, Queue, Status, Usage, UserBalance, Wallet},
    chart::{self, Bar},
    farmer::usage_table,
    finish,
    i18n::{Zone, date_time, day_month, duration, minutes as fmt_minutes, parse_whole},
    message_page, parts, redirect, signed_in_as, words,
};

/// Ids in paths are the API's (uuid text); anything else is no object at all.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn not_found(visit: &Visit) -> Response {
    let t = visit.t();
    message_page(visit, None, StatusCode::NOT_FOUND, t.not_found_title, t.not_found_text)
}

macro_rules! page_or_return {
    ($web:expr, $visit:expr) => {
        match signed_in_as(&$web, $visit, "admin").await {
            Ok(page) => page,
            Err(response) => return response,
        }
    };
}

macro_rules! get_or_return {
    ($page:expr, $web:expr, $ty:ty, $path:expr) => {
        match $page.get::<$ty>(&$web, $path).await {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}

macro_rules! token_or_login {
    ($posted:expr) => {
        match $posted.visit.session.clone() {
            Some(token) => token,
            None => return redirect("/login", &[]),
        }
    };
}

/// `GET /admin`: the motor, the device, the queue.
pub async fn pump(State(web): State<WebState>, visit: Visit) -> Response {
    let page = page_or_return!(web, visit);
    let (status, queue, devices) = tokio::join!(
        page.get::<Status>(&web, "/api/motor/status"),
        page.get::<Queue>(&web, "/api/queue"),
        page.get::<Vec<Device>>(&web, "/api/admin/devices"),
    );
    let (status, queue, devices) = match (status, queue, devices) {
        (Ok(s), Ok(q), Ok(d)) => (s, q, d),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let panel = parts::owner_panel(t, lang, &status.motor, &queue);
    let content = html! {
        div.cols { div.col {
        (parts::panel(&panel))
        form #admin-stop-form method="post" action="/admin/stop" data-confirm=(t.confirm_stop_run)
            hidden[queue.active.is_none()] {
            (page.csrf_field())
            button.big.stop type="submit" { (t.stop_run) }
        }
        (parts::device_lights(t, &status.device))
        section.card #queue {
            h2 { (t.queue_title) }
            (parts::queue(t, lang, &queue, &page.me.id))
        }
        }
        div.col {
        section.card {
            h2 { (t.devices_title) }
            @if devices.is_empty() { p.muted { (t.no_device) } }
            @for d in &devices {
                div.device {
                    h3 { (d.name) }
                    // The grid, readiness and relay are the live lights above; these are the device's own facts.
                    dl.facts {
                        dt { (t.device_title) } dd { span.chip.(if d.online { "good" } else { "bad" }) { (if d.online { t.pump_connected } else { t.pump_not_connected }) } }
                        dt { (t.firmware) } dd { (d.firmware.as_deref().unwrap_or("—")) }
                        dt { (t.last_seen) } dd { (d.last_seen_at.as_deref().map_or_else(|| t.never_seen.to_string(), |at| date_time(at, zone, lang))) }
                    }
                    form.rotate method="post" action={"/admin/devices/" (d.id) "/rotate-key"} {
                        (page.csrf_field())
                        label.check { input type="checkbox" name="confirm" value="yes" required; " " (t.rotate_confirm) }
                        button.secondary type="submit" { (t.rotate_key) }
                    }
                }
            }
            h3 { (t.register_device) }
            form method="post" action="/admin/devices" {
                (page.csrf_field())
                label for="device-name" { (t.device_name) }
                input #device-name type="text" name="name" required maxlength="80";
                button.secondary type="submit" { (t.register) }
            }
        }
        } }
    };
    page.render(Tab::AdminPump, Live::Owner, t.nav_pump, content)
}

/// `POST /admin/stop`: ends the active run.
pub async fn stop(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let answer = web.api.post("/api/admin/motor/stop", &token, json!({})).await;
    finish(&posted, answer, "/admin", |ended| {
        Some(Flash::ok("run_stopped", &[ended["userName"].as_str().unwrap_or_default()]))
    })
}

/// `POST /admin/devices`: registers a device and shows its key this once.
pub async fn register_device(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let answer = web.api.post("/api/admin/devices", &token, json!({"name": posted.field("name")})).await;
    show_key(web, posted, answer).await
}

/// `POST /admin/devices/{id}/rotate-key`: a new key, shown this once; the old one stops working.
pub async fn rotate_key(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    if posted.field("confirm") != "yes" {
        let failure = super::api::Failure {
            status: StatusCode::BAD_REQUEST,
            code: "VALIDATION".into(),
            message: "confirm: tick the box to replace the key".into(),
        };
        return redirect("/admin", &[Flash::error(&failure).cookie()]);
    }
    let answer = web.api.post(&format!("/api/admin/devices/{id}/rotate-key"), &token, json!({})).await;
    show_key(web, posted, answer).await
}

/// The page that shows a device key once (never cached, never in a cookie or a URL).
async fn show_key(web: WebState, posted: Posted, answer: super::api::Answer) -> Response {
    if posted.json || !answer.status.is_success() {
        return finish(&posted, answer, "/admin", |_| None);
    }
    let created: DeviceCreated = match answer.into() {
        Ok(created) => created,
        Err(failure) => return super::failure_page(&posted.visit, None, &failure),
    };
    let mut page = page_or_return!(web, posted.visit);
    page.visit.path = "/admin".into();
    let t = page.t();
    let content = html! {
        section.card.key {
            h1 { (t.key_title) }
            p { strong { (created.name) } }
            div.key-row {
                textarea #device-key .key-value readonly rows="2" spellcheck="false" aria-label=(t.key_title) { (created.device_key) }
                button #copy-key .secondary type="button" data-copy="device-key" data-done=(t.copied) { (t.copy) }
            }
            p.warn { (t.key_help) }
            p.muted { "POST /api/esp32/poll · Authorization: Bearer …" }
            p { a.button href="/admin" { (t.done) } }
        }
    };
    page.render(Tab::AdminPump, Live::Off, t.key_title, content)
}

/// `GET /admin/farmers`: every farmer with balance and card; add one.
pub async fn farmers(State(web): State<WebState>, visit: Visit) -> Response {
    let page = page_or_return!(web, visit);
    let (users, cards) = tokio::join!(
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Card>>(&web, "/api/admin/cards")
    );
    let (users, cards) = match (users, cards) {
        (Ok(u), Ok(c)) => (u, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let (t, lang) = (page.t(), page.lang());
    let content = html! {
        section.card {
            h2 { (t.farmers_title) }
            @if users.is_empty() { p.muted { (t.no_farmers) } }
            @else {
                table.table.farmers {
                    thead { tr { th { (t.name) } th { (t.balance) } th { (t.status) } th { (t.cards) } th {} } }
                    tbody {
                        @for u in &users {
                            tr {
                                td data-label=(t.name) {
                                    a href={"/admin/farmers/" (u.user.id)} { strong { (u.user.name) } }
                                    br; small.muted { (u.user.username) }
                                }
                                td data-label=(t.balance) .num { (duration(u.available_seconds, lang)) }
                                td data-label=(t.status) {
                                    @if u.user.suspended { span.tag.bad { (t.suspended) } } @else { span.tag.good { (t.active) } }
                                }
                                td data-label=(t.cards) {
                                    @for c in cards.iter().filter(|c| c.user_id == u.user.id) { code { (c.uid) } " " }
                                }
                                td { a.button.small href={"/admin/farmers/" (u.user.id)} { (t.manage) } }
                            }
                        }
                    }
                }
            }
        }
        (parts::new_account_form(t, page.csrf_field(), t.add_farmer, "/admin/farmers", "f"))
    };
    page.render(Tab::AdminFarmers, Live::Off, t.nav_farmers, content)
}

/// `POST /admin/farmers`: a new farmer.
pub async fn create_farmer(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let body = json!({"name": posted.field("name"), "username": posted.field("username"), "password": posted.field("password")});
    let answer = web.api.post("/api/admin/users", &token, body).await;
    finish(&posted, answer, "/admin/farmers", |user| {
        Some(Flash::ok("user_created", &[user["name"].as_str().unwrap_or_default()]))
    })
}

/// `GET /admin/farmers/{id}`: one farmer: balance, recharge, suspend, card, ledger, runs.
pub async fn farmer(State(web): State<WebState>, Path(id): Path<String>, visit: Visit) -> Response {
    if !valid_id(&id) {
        return not_found(&visit);
    }
    let page = page_or_return!(web, visit);
    let wallet = get_or_return!(page, web, Wallet, &format!("/api/admin/users/{id}/wallet"));
    let usage_path = format!("/api/admin/usage?userId={id}");
    let (users, cards, usage) = tokio::join!(
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Card>>(&web, "/api/admin/cards"),
        page.get::<Vec<Usage>>(&web, &usage_path),
    );
    let (users, cards, usage) = match (users, cards, usage) {
        (Ok(u), Ok(c), Ok(us)) => (u, c, us),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let Some(user) = users.into_iter().find(|u| u.user.id == id) else { return not_found(&page.visit) };
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let name = user.user.name.clone();
    let content = html! {
        p { a href="/admin/farmers" { "← " (t.back_to_farmers) } }
        section.card {
            h1 { (user.user.name) " " @if user.user.suspended { span.tag.bad { (t.suspended) } } }
            p.muted { (user.user.username) }
            div.balance {
                span.label { (t.balance) }
                span.balance-value { (duration(wallet.available_seconds, lang)) }
            }
        }
        section.card {
            h2 { (t.recharge) }
            form method="post" action={"/admin/farmers/" (id) "/recharge"} {
                (page.csrf_field())
                input type="hidden" name="name" value=(name);
                label for="r-minutes" { (t.recharge_minutes) }
                input #r-minutes type="text" name="minutes" inputmode="numeric" required maxlength="9" autocomplete="off";
                label for="r-note" { (t.note) }
                input #r-note type="text" name="note" maxlength="500" placeholder=(t.note_placeholder);
                button.big.go type="submit" { (t.recharge) }
            }
        }
        section.card {
            h2 { (t.card_title) }
            p {
                @let theirs: Vec<&Card> = cards.iter().filter(|c| c.user_id == id).collect();
                @if theirs.is_empty() { span.muted { (t.no_cards) } }
                @for c in theirs { code.card-uid { (c.uid) } " " }
            }
            form method="post" action={"/admin/farmers/" (id) "/card"} {
                (page.csrf_field())
                input type="hidden" name="name" value=(name);
                label for="c-uid" { (t.card_uid) }
                input #c-uid type="text" name="uid" required maxlength="32" autocapitalize="characters" autocomplete="off";
                small.muted { (t.card_help) }
                button.secondary type="submit" { (t.bind_card) }
            }
        }
        section.card {
            h2 { (t.status) }
            @if user.user.suspended {
                form method="post" action={"/admin/farmers/" (id) "/unsuspend"} {
                    (page.csrf_field())
                    button.secondary type="submit" { (t.unsuspend) }
                }
            } @else {
                form method="post" action={"/admin/farmers/" (id) "/suspend"} data-confirm=(t.confirm_suspend) {
                    (page.csrf_field())
                    button.danger type="submit" { (t.suspend) }
                }
            }
        }
        (parts::ledger(t, lang, zone, &wallet.ledger))
        section.card {
            h2 { (t.history_title) }
            (usage_table(&page, &usage, None))
        }
    };
    page.render(Tab::AdminFarmers, Live::Off, &user.user.name, content)
}

/// `POST /admin/farmers/{id}/recharge` (`minutes`, `note`).
pub async fn recharge(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let minutes = parse_whole(posted.field("minutes")).map_or(json!(posted.field("minutes")), |m| json!(m));
    let body = json!({"userId": id, "minutes": minutes, "note": posted.field("note")});
    let answer = web.api.post("/api/admin/recharge", &token, body).await;
    let (lang, name) = (posted.visit.lang, posted.field("name").to_string());
    finish(&posted, answer, &format!("/admin/farmers/{id}"), |balance| {
        Some(Flash::ok("recharged", &[&name, &duration(balance["availableSeconds"].as_i64().unwrap_or(0), lang)]))
    })
}

async fn set_suspended(web: WebState, id: String, posted: Posted, suspend: bool) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let action = if suspend { "suspend" } else { "unsuspend" };
    let answer = web.api.post(&format!("/api/admin/users/{id}/{action}"), &token, json!({})).await;
    finish(&posted, answer, &format!("/admin/farmers/{id}"), |user| {
        let key = if suspend { "suspended" } else { "unsuspended" };
        Some(Flash::ok(key, &[user["name"].as_str().unwrap_or_default()]))
    })
}

/// `POST /admin/farmers/{id}/suspend`.
pub async fn suspend(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    set_suspended(web, id, posted, true).await
}

/// `POST /admin/farmers/{id}/unsuspend`.
pub async fn unsuspend(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    set_suspended(web, id, posted, false).await
}

/// `POST /admin/farmers/{id}/card` (`uid`): binds an RFID card.
pub async fn bind_card(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let answer =
        web.api.post(&format!("/api/admin/users/{id}/rfid"), &token, json!({"uid": posted.field("uid")})).await;
    let name = posted.field("name").to_string();
    finish(&posted, answer, &format!("/admin/farmers/{id}"), |card| {
        Some(Flash::ok("card_bound", &[card["uid"].as_str().unwrap_or_default(), &name]))
    })
}

/// `GET /admin/requests`: requests waiting for a decision, and the last decided ones.
pub async fn requests(State(web): State<WebState>, visit: Visit) -> Response {
    let page = page_or_return!(web, visit);
    let (requests, users) = tokio::join!(
        page.get::<Vec<MinuteRequest>>(&web, "/api/admin/minute-requests"),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
    );
    let (requests, users) = match (requests, users) {
        (Ok(r), Ok(u)) => (r, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let names: HashMap<&str, &str> = users.iter().map(|u| (u.user.id.as_str(), u.user.name.as_str())).collect();
    let name_of = |id: &str| names.get(id).copied().unwrap_or(t.unknown_user).to_string();
    let (pending, decided): (Vec<&MinuteRequest>, Vec<&MinuteRequest>) =
        requests.iter().partition(|r| r.status == "PENDING");
    let content = html! {
        section.card {
            h2 { (t.pending) }
            @if pending.is_empty() { p.muted { (t.no_pending) } }
            ul.rows.requests {
                @for r in &pending {
                    li {
                        div {
                            strong { (name_of(&r.user_id)) } " · " strong { (fmt_minutes(r.minutes, lang)) }
                            br; small.muted { (date_time(&r.created_at, zone, lang)) }
                            @if !r.note.is_empty() { br; span.note { (r.note) } }
                        }
                        div.actions {
                            form.inline method="post" action={"/admin/requests/" (r.id) "/approve"} {
                                (page.csrf_field())
                                input type="hidden" name="name" value=(name_of(&r.user_id));
                                input type="hidden" name="minutes" value=(r.minutes);
                                button.go type="submit" { (t.approve) }
                            }
                            form.inline method="post" action={"/admin/requests/" (r.id) "/reject"} {
                                (page.csrf_field())
                                input type="hidden" name="name" value=(name_of(&r.user_id));
                                button.danger type="submit" { (t.reject) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (t.decided) }
            ul.rows {
                @for r in decided.iter().take(30) {
                    li {
                        strong { (name_of(&r.user_id)) } " · " (fmt_minutes(r.minutes, lang)) " "
                        span.tag.(r.status.to_lowercase()) { (words(t.request_status, &r.status)) }
                        br; small.muted { (date_time(&r.created_at, zone, lang)) }
                        @if !r.note.is_empty() { " · " small { (r.note) } }
                    }
                }
            }
        }
    };
    page.render(Tab::AdminRequests, Live::Off, t.nav_requests, content)
}

async fn decide(web: WebState, id: String, posted: Posted, approve: bool) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let verb = if approve { "approve" } else { "reject" };
    let answer = web.api.post(&format!("/api/admin/minute-requests/{id}/{verb}"), &token, json!({})).await;
    let (lang, name) = (posted.visit.lang, posted.field("name").to_string());
    finish(&posted, answer, "/admin/requests", |r| {
        let minutes = fmt_minutes(r["minutes"].as_i64().unwrap_or(0), lang);
        Some(if approve { Flash::ok("approved", &[&name, &minutes]) } else { Flash::ok("rejected", &[&name]) })
    })
}

/// `POST /admin/requests/{id}/approve`.
pub async fn approve(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    decide(web, id, posted, true).await
}

/// `POST /admin/requests/{id}/reject`.
pub async fn reject(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    decide(web, id, posted, false).await
}

#[derive(Deserialize)]
pub struct Period {
    from: Option<String>,
    to: Option<String>,
}

/// The longest period the usage page draws (days).
const MAX_DAYS: i64 = 92;

/// The days asked for, in the viewer's zone: `from` and `to` inclusive; the last 14 days by
/// default.
fn period(query: &Period, zone: Zone, now: pumppilot_engine::Timestamp) -> (time::Date, time::Date) {
    let today = zone.at(now.millis()).map_or(time::OffsetDateTime::UNIX_EPOCH.date(), |t| t.date());
    let parse = |text: &Option<String>| {
        text.as_deref()
            .and_then(|s| time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok())
    };
    let to = parse(&query.to).unwrap_or(today);
    let from = parse(&query.from).unwrap_or(to - time::Duration::days(13));
    let from = from.min(to).max(to - time::Duration::days(MAX_DAYS - 1));
    (from, to)
}

/// Local midnight of `day` as RFC 3339 UTC (no `+` to escape in a URL).
fn midnight_utc(day: time::Date, zone: Zone) -> String {
    let offset = time::UtcOffset::from_whole_seconds(zone.0 * 60).unwrap_or(time::UtcOffset::UTC);
    let at = day.midnight().assume_offset(offset).to_offset(time::UtcOffset::UTC);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn ymd(day: time::Date) -> String {
    day.format(time::macros::format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

/// `GET /admin/usage?from=&to=`: minutes per day and per farmer, the runs, and the CSV.
pub async fn usage(State(web): State<WebState>, Query(query): Query<Period>, visit: Visit) -> Response {
    let page = page_or_return!(web, visit);
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let (from, to) = period(&query, zone, web.app.now());
    let range = format!("from={}&to={}", midnight_utc(from, zone), midnight_utc(to + time::Duration::days(1), zone));
    let usage_path = format!("/api/admin/usage?{range}");
    let (usage, users) = tokio::join!(
        page.get::<Vec<Usage>>(&web, &usage_path),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
    );
    let (usage, users) = match (usage, users) {
        (Ok(u), Ok(us)) => (u, us),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let names: HashMap<String, String> = users.iter().map(|u| (u.user.id.clone(), u.user.name.clone())).collect();
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| t.unknown_user.to_string());

    let mut per_day: Vec<(time::Date, i64)> = Vec::new();
    let mut day = from;
    while day <= to {
        per_day.push((day, 0));
        day = day.next_day().unwrap_or(day);
        if per_day.len() as i64 >= MAX_DAYS {
            break;
        }
    }
    let mut per_user: HashMap<String, i64> = HashMap::new();
    for u in &usage {
        if let Some(local) = zone.local(&u.started_at)
            && let Some(slot) = per_day.iter_mut().find(|(d, _)| *d == local.date())
        {
            slot.1 += u.charged_seconds;
        }
        *per_user.entry(u.user_id.clone()).or_default() += u.charged_seconds;
    }
    let day_bars: Vec<Bar> = per_day.iter().map(|(d, s)| Bar { label: day_month(*d, lang), value: *s }).collect();
    let mut user_bars: Vec<Bar> = per_user.iter().map(|(id, s)| Bar { label: name_of(id), value: *s }).collect();
    user_bars.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.label.cmp(&b.label)));
    let total: i64 = usage.iter().map(|u| u.charged_seconds).sum();
    let csv = format!("/api/admin/usage?format=csv&{range}");
    let content = html! {
        section.card {
            h2 { (t.usage_title) }
            form.period method="get" action="/admin/usage" {
                label { (t.from) " " input type="date" name="from" value=(ymd(from)); }
                label { (t.to) " " input type="date" name="to" value=(ymd(to)); }
                button.secondary type="submit" { (t.show) }
                a.button.secondary href=(csv) download="usage.csv" { (t.export_csv) }
            }
            p.total { (super::i18n::fill(t.total_minutes, &[&duration(total, lang)])) }
        }
        section.card {
            h2 { (t.per_day) }
            (chart::columns(&day_bars, t.chart_label_day, lang))
        }
        section.card {
            h2 { (t.per_user) }
            @if user_bars.is_empty() { p.muted { (t.no_usage) } }
            @else { (chart::rows(&user_bars, t.chart_label_user, lang)) }
        }
        section.card {
            h2 { (t.history_title) }
            (usage_table(&page, &usage, Some(&|id: &str| name_of(id))))
        }
    };
    page.render(Tab::AdminUsage, Live::Off, t.nav_usage, content)
}

/// `GET /admin/log`: the audit log, names instead of ids where the tenant knows them.
pub async fn log(State(web): State<WebState>, visit: Visit) -> Response {
    let page = page_or_return!(web, visit);
    let (audit, users, devices) = tokio::join!(
        page.get::<Vec<Audit>>(&web, "/api/admin/audit"),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Device>>(&web, "/api/admin/devices"),
    );
    let (audit, users, devices) = match (audit, users, devices) {
        (Ok(a), Ok(u), Ok(d)) => (a, u, d),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let mut names: HashMap<&str, &str> = users.iter().map(|u| (u.user.id.as_str(), u.user.name.as_str())).collect();
    names.extend(devices.iter().map(|d| (d.id.as_str(), d.name.as_str())));
    names.insert(page.me.id.as_str(), page.me.name.as_str());
    let name = |id: &Option<String>| match id.as_deref() {
        Some(id) => names.get(id).map_or_else(|| short_id(id), |n| (*n).to_string()),
        None => "—".to_string(),
    };
    let content = html! {
        section.card {
            h2 { (t.audit_title) }
            @if audit.is_empty() { p.muted { (t.no_audit) } }
            @else {
                table.table {
                    thead { tr { th { (t.col_when) } th { (t.col_who) } th { (t.col_action) } th { (t.col_detail) } } }
                    tbody {
                        @for a in &audit {
                            tr {
                                td data-label=(t.col_when) { (date_time(&a.at, zone, lang)) }
                                td data-label=(t.col_who) { (name(&a.actor_id)) }
                                td data-label=(t.col_action) { strong { (words(t.audit_actions, &a.action)) } br; small.muted { (name(&a.target_id)) } }
                                td data-label=(t.col_detail) { (a.detail) }
                            }
                        }
                    }
                }
            }
        }
    };
    page.render(Tab::AdminLog, Live::Off, t.nav_audit, content)
}

/// The first characters of an id nobody here has a name for (the master, another tenant's).
fn short_id(id: &str) -> String {
    format!("{}…", id.chars().take(8).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_to_two_weeks_and_are_capped() {
        let zone = Zone(360);
        let q = Period { from: Some("2026-01-01".into()), to: Some("2026-12-31".into()) };
        let (from, to) = period(&q, zone, pumppilot_engine::Timestamp(0));
        assert_eq!((to - from).whole_days(), MAX_DAYS - 1);
        let q = Period { from: None, to: Some("2026-11-27".into()) };
        assert_eq!(ymd(period(&q, zone, pumppilot_engine::Timestamp(0)).0), "2026-11-14");
        assert_eq!(midnight_utc(time::macros::date!(2026 - 11 - 27), zone), "2026-11-26T18:00:00Z");
    }

    #[test]
    fn ids_in_paths_are_plain() {
        assert!(valid_id("0191e5a4-7c1d-7f00-8000-000000000000"));
        assert!(!valid_id("../../master"));
        assert!(!valid_id("x?adminId=y"));
        assert!(!valid_id(""));
    }
}
