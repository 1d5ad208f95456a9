//! Minute requests: waiting ones with the balance now and after, and the last decided.

use super::*;

/// Approving more minutes than this asks again (a mistyped request is money given away).
const APPROVE_ASKS_ABOVE_MINUTES: i64 = 120;

/// `GET /admin/requests`: requests waiting for a decision, and the last decided ones.
pub async fn requests(State(web): State<WebState>, OwnerPage(page): OwnerPage) -> Result<Response, Response> {
    let (requests, users) = tokio::join!(
        page.get::<Vec<MinuteRequest>>(&web, "/api/admin/minute-requests"),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
    );
    let (requests, users) = (requests?, users?);
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let names: HashMap<&str, &str> = users.iter().map(|u| (u.user.id.as_str(), u.user.name.as_str())).collect();
    let name_of = |id: &str| names.get(id).copied().unwrap_or(t.unknown_user).to_string();
    let balances: HashMap<&str, i64> = users.iter().map(|u| (u.user.id.as_str(), u.available_seconds)).collect();
    let (pending, decided): (Vec<&MinuteRequest>, Vec<&MinuteRequest>) =
        requests.iter().partition(|r| r.status == "PENDING");
    let content = html! {
        section.card {
            h2 { (t.pending) }
            @if pending.is_empty() { p.muted { (t.no_pending) } }
            ul.rows.requests {
                @for r in &pending {
                    li {
                        @let balance = balances.get(r.user_id.as_str()).copied().unwrap_or(0);
                        @let after = duration(balance + r.minutes * 60, lang);
                        @let asks = fill(t.approve_confirm, &[&fmt_minutes(r.minutes, lang), &name_of(&r.user_id), &duration(balance, lang), &after]);
                        div {
                            strong { (name_of(&r.user_id)) } " · " strong.amount { (fmt_minutes(r.minutes, lang)) }
                            br; span.request-balance { (fill(t.balance_now_after, &[&duration(balance, lang), &after])) }
                            br; small.muted { (date_time(&r.created_at, zone, lang)) }
                            @if !r.note.is_empty() { br; span.note { (r.note) } }
                        }
                        div.actions {
                            form.inline method="post" action={"/admin/requests/" (r.id) "/approve"}
                                data-confirm=[(r.minutes > APPROVE_ASKS_ABOVE_MINUTES).then_some(asks.as_str())] {
                                (page.csrf_field())
                                input type="hidden" name="minutes" value=(r.minutes);
                                button.go type="submit" { (t.approve) }
                            }
                            form.reject method="post" action={"/admin/requests/" (r.id) "/reject"} {
                                (page.csrf_field())
                                select name="reason" aria-label=(t.reject_reason) {
                                    option value="" { (t.no_reason) }
                                    @for (code, words) in t.reject_reasons() { option value=(code) { (words) } }
                                }
                                button.danger type="submit" { (t.reject) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (t.decided) }
            @if decided.is_empty() { p.muted { (t.nothing_decided) } }
            ul.rows {
                @for r in decided.iter().take(30) {
                    li {
                        strong { (name_of(&r.user_id)) } " · " (fmt_minutes(r.minutes, lang)) " "
                        span.tag.(r.status.to_lowercase()) { (words(t.request_status, &r.status)) }
                        @if let Some(reason) = &r.reject_reason { " " span.reject-reason { (t.reject_reason(reason)) } }
                        br; small.muted { (date_time(&r.created_at, zone, lang)) }
                        @if !r.note.is_empty() { " · " small { (r.note) } }
                    }
                }
            }
        }
    };
    Ok(page.render(Tab::AdminRequests, Live::Off, t.nav_requests, content))
}

async fn decide(web: WebState, id: String, posted: Posted, approve: bool) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let verb = if approve { "approve" } else { "reject" };
    // A rejection's reason as chosen ("" is none); the API refuses one it does not know.
    let reason = posted.field("reason");
    let body = if approve || reason.is_empty() { json!({}) } else { json!({ "reason": reason }) };
    let answer = web.api.post(&format!("/api/admin/minute-requests/{id}/{verb}"), &token, body).await;
    let farmer = answer.body["userId"].as_str().filter(|_| answer.status.is_success()).unwrap_or_default();
    let (lang, name) = (posted.visit.lang, farmer_name(&web, &token, farmer).await);
    finish(&posted, answer, "/admin/requests", |r| {
        let minutes = fmt_minutes(r["minutes"].as_i64().unwrap_or(0), lang);
        // The reason the server kept on the request, in words, when there is one.
        let reason = r["rejectReason"].as_str().map(|code| lang.text().reject_reason(code));
        Some(match (approve, reason) {
            (true, _) => Flash::ok("approved", &[&name, &minutes]),
            (false, Some(reason)) => Flash::ok("rejected_because", &[&name, &reason]),
            (false, None) => Flash::ok("rejected", &[&name]),
        })
    })
}

/// `POST /admin/requests/{id}/approve`.
pub async fn approve(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    decide(web, id, posted, true).await
}

/// `POST /admin/requests/{id}/reject`: with the reason chosen, if any (`reason`).
pub async fn reject(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    decide(web, id, posted, false).await
}
