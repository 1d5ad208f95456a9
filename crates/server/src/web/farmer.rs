//! The farmer's pages: the pump (one big Start/Stop, the state, the balance, the queue), minutes
//! (ask for more, the ledger) and the history of their runs.

use axum::{
    extract::{Path, State},
    response::Response,
};
use maud::html;
use serde_json::json;

use super::{
    FarmerPage, Flash, Live, Page, PageQuery, Posted, Tab, WebState, admin,
    api::{MinuteRequest, Queue, Receipt, Status, Usage, Wallet},
    finish,
    i18n::{date_time, duration, fill, minutes as fmt_minutes, parse_whole, span},
    parts, words,
};

/// Choices for "run for": until stopped, or this many minutes.
const RUN_FOR: [i64; 4] = [15, 30, 60, 120];

/// `GET /user`: the pump.
pub async fn home(State(web): State<WebState>, FarmerPage(page): FarmerPage) -> Result<Response, Response> {
    let (status, queue) =
        tokio::join!(page.get::<Status>(&web, "/api/motor/status"), page.get::<Queue>(&web, "/api/queue"));
    let (status, queue) = (status?, queue?);
    let (t, lang) = (page.t(), page.lang());
    let panel = parts::farmer_panel(t, lang, &status);
    let entry = status.me.entry.as_ref();
    let mine = entry.is_some();
    let in_line = entry.is_some_and(|e| e.status == "WAITING");
    let broke = status.me.available_seconds <= 0;
    let label = match (mine, in_line, status.motor.state.as_str()) {
        (true, true, _) => t.leave_queue,
        (true, false, _) => t.stop,
        (false, _, "IDLE") => t.start,
        (false, _, _) => t.join_queue,
    };
    let content = html! {
        div.cols { div.col {
        (parts::panel(&panel))
        form #motor-form .motor method="post" action=(if mine { "/user/stop" } else { "/user/start" })
            data-start="/user/start" data-stop="/user/stop" data-leave=(t.confirm_leave)
            data-confirm=[in_line.then_some(t.confirm_leave)] {
            (page.csrf_field())
            div #run-for .run-for hidden[mine] {
                label for="minutes" { (t.run_for) }
                select #minutes name="minutes" {
                    option value="" { (t.until_stopped) }
                    @for m in RUN_FOR { option value=(m) { (fmt_minutes(m, lang)) } }
                }
            }
            button #motor-button .big.(if mine { "stop" } else { "go" }) type="submit" disabled[!mine && broke] { (label) }
        }
        section.card.balance {
            span.label { (t.your_balance) }
            span #balance-value .balance-value data-seconds=(status.me.available_seconds) {
                (duration(status.me.available_seconds, lang))
            }
            p #no-minutes .warn hidden[!broke] {
                (t.no_minutes) " " a href="/user/minutes" { (t.request_minutes_link) }
            }
        }
        (parts::device_status(t, &status.device))
        }
        div.col {
        section.card #queue {
            h2 { (t.queue_title) }
            (parts::queue(t, lang, &queue, &page.me.id))
        }
        } }
    };
    Ok(page.render(Tab::UserPump, Live::Farmer, t.nav_pump, content))
}

/// `POST /user/start` (`minutes` optional).
pub async fn start(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return super::redirect("/login", &[]) };
    let body = match parse_whole(posted.field("minutes")) {
        Some(m) => json!({"minutes": m}),
        None => json!({}),
    };
    let answer = web.api.post("/api/motor/start", &token, body).await;
    finish(&posted, answer, "/user", |_| None)
}

/// `POST /user/stop`: ends the run or leaves the line.
pub async fn stop(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return super::redirect("/login", &[]) };
    let answer = web.api.post("/api/motor/stop", &token, json!({})).await;
    let lang = posted.visit.lang;
    finish(&posted, answer, "/user", |ended| {
        if ended["endReason"] == "LEFT_QUEUE" {
            return Some(Flash::ok("left_queue", &[]));
        }
        let charged = ended["chargedSeconds"].as_i64()?;
        let balance = ended["availableSeconds"].as_i64().unwrap_or(0);
        Some(Flash::ok("stopped", &[&duration(charged, lang), &duration(balance, lang)]))
    })
}

/// `GET /user/minutes`: ask for minutes; the requests and the ledger.
pub async fn minutes(State(web): State<WebState>, FarmerPage(page): FarmerPage) -> Result<Response, Response> {
    let (requests, wallet, terms) = tokio::join!(
        page.get::<Vec<MinuteRequest>>(&web, "/api/minute-requests"),
        page.get::<Wallet>(&web, "/api/wallet"),
        page.get::<super::api::Terms>(&web, "/api/terms"),
    );
    let (requests, wallet, terms) = (requests?, wallet?, terms?);
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let content = html! {
        section.card.balance {
            span.label { (t.your_balance) }
            span.balance-value { (duration(wallet.available_seconds, lang)) }
        }
        section.card {
            h2 { (t.request_title) }
            p.muted { (t.request_help) }
            p.hint { (fill(t.request_limits, &[&fmt_minutes(terms.max_request_minutes, lang)])) }
            @if requests.iter().any(|r| r.status == "PENDING") { p.warn #request-waiting { (t.request_waiting) } }
            @else {
            form method="post" action="/user/minutes" {
                (page.csrf_field())
                label for="req-minutes" { (t.minutes) }
                input #req-minutes type="text" name="minutes" inputmode="numeric" required maxlength="9" autocomplete="off" value=(page.visit.kept("minutes"));
                label for="req-note" { (t.note) }
                input #req-note type="text" name="note" maxlength="500" placeholder=(t.note_placeholder) value=(page.visit.kept("note"));
                button.big.go type="submit" { (t.send_request) }
            }
            }
        }
        section.card {
            h2 { (t.my_requests) }
            @if requests.is_empty() { p.muted { (t.no_requests) } }
            ul.rows {
                @for r in &requests {
                    li {
                        strong { (fmt_minutes(r.minutes, lang)) }
                        " " span.tag.(r.status.to_lowercase()) { (words(t.request_status, &r.status)) }
                        @if let Some(reason) = &r.reject_reason { " " span.reject-reason { (t.reject_reason(reason)) } }
                        br;
                        small.muted { (date_time(&r.created_at, zone, lang)) }
                        @if !r.note.is_empty() { " · " small { (r.note) } }
                    }
                }
            }
        }
        (parts::ledger(t, lang, zone, t.ledger_title, &wallet.ledger, "/user/receipts/"))
    };
    Ok(page.render(Tab::UserMinutes, Live::Off, t.nav_minutes, content))
}

/// `GET /user/receipts/{id}?lang=`: the farmer's copy of one of their receipts (its number is a
/// link on the ledger's line), to show the owner, print or share again, in the language asked
/// for, else the page's.
pub async fn receipt(
    State(web): State<WebState>,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<admin::ReceiptLang>,
    FarmerPage(mut page): FarmerPage,
) -> Result<Response, Response> {
    if !admin::valid_id(&id) {
        return Err(admin::not_found(&page.visit));
    }
    let receipt = page.get::<Receipt>(&web, &format!("/api/receipts/{id}")).await?;
    if let Some(lang) = query.asked() {
        page.visit.lang = lang;
    }
    let t = page.t();
    let content = html! {
        p.no-print { a href="/user/minutes" { "← " (t.nav_minutes) } }
        (admin::receipt_paper(&page, &receipt, &receipt.recorded_by_name, "/user/receipts/"))
    };
    Ok(page.render(Tab::UserMinutes, Live::Off, t.owner.receipt_title, content))
}

/// `POST /user/minutes`: a minute request (`minutes` in either script's digits, `note`).
pub async fn request_minutes(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return super::redirect("/login", &[]) };
    let lang = posted.visit.lang;
    let minutes = parse_whole(posted.field("minutes"));
    let body = json!({
        "minutes": minutes.map_or(serde_json::Value::from(posted.field("minutes")), serde_json::Value::from),
        "note": posted.field("note"),
    });
    let answer = web.api.post("/api/minute-requests", &token, body).await;
    finish(&posted, answer, "/user/minutes", |r| {
        Some(Flash::ok("request_sent", &[&fmt_minutes(r["minutes"].as_i64().unwrap_or(0), lang)]))
    })
}

/// `GET /user/history`: the farmer's finished runs.
pub async fn history(State(web): State<WebState>, FarmerPage(page): FarmerPage) -> Result<Response, Response> {
    let usage = page.get::<Vec<Usage>>(&web, "/api/usage").await?;
    let t = page.t();
    let content = html! {
        section.card {
            h2 { (t.history_title) }
            (usage_table(&page, &usage, None))
        }
    };
    Ok(page.render(Tab::UserHistory, Live::Off, t.nav_history, content))
}

/// Finished runs as a table (a list of cards on a phone), each with its start and end (both dates
/// for a run across midnight); `names` adds a farmer column.
pub fn usage_table(page: &Page, usage: &[Usage], names: Option<&dyn Fn(&str) -> String>) -> maud::Markup {
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    html! {
        @if usage.is_empty() { p.muted { (t.no_history) } }
        @else {
            table.table {
                thead { tr {
                    th { (t.col_when) }
                    @if names.is_some() { th { (t.col_farmer) } }
                    th { (t.col_ran) } th { (t.col_paused) } th { (t.col_charged) } th { (t.col_why) }
                } }
                tbody {
                    @for u in usage {
                        tr {
                            td data-label=(t.col_when) { (span(&u.started_at, &u.ended_at, zone, lang)) }
                            @if let Some(names) = names { td data-label=(t.col_farmer) { (names(&u.user_id)) } }
                            td data-label=(t.col_ran) { (duration(u.running_seconds, lang)) }
                            td data-label=(t.col_paused) { (duration(u.held_seconds, lang)) }
                            td data-label=(t.col_charged) { strong { (duration(u.charged_seconds, lang)) } }
                            td data-label=(t.col_why) { (words(t.end_reasons, &u.end_reason)) }
                        }
                    }
                }
            }
        }
    }
}
