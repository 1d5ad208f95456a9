//! The master admin's page: every pump owner with their tenant at a glance; add, suspend, let back.
//! The firmware page (releases, upload, rollout) is [`firmware`].

pub mod firmware;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::{
    Flash, Live, MasterPage, Page, PageQuery, Posted, Tab, Web, WebState,
    api::{AdminPage, AdminSummary, FleetTotals, NewPassword, Queue, Receipt, Status, Usage, UserBalance},
    finish,
    i18n::{date_time, duration, fill, number},
    message_page, parts, redirect,
};

/// Thirty days before now, as RFC 3339 (the window of the totals, as `GET /api/master/totals` has it).
fn thirty_days_ago(web: &Web) -> String {
    crate::clock::rfc3339(web.app.now() - crate::routes::master::TOTALS_WINDOW_MS)
}

/// Minutes charged and cash taken at one pump in the last 30 days (the master reads it with
/// `?adminId=`).
async fn last_30_days(web: &Web, page: &Page, admin: &str) -> Result<(Vec<Usage>, Vec<Receipt>), Response> {
    let since = thirty_days_ago(web);
    let (usage_path, receipts_path) = (
        format!("/api/admin/usage?adminId={admin}&from={since}"),
        format!("/api/admin/receipts?adminId={admin}&from={since}"),
    );
    let (usage, receipts) =
        tokio::join!(page.get::<Vec<Usage>>(web, &usage_path), page.get::<Vec<Receipt>>(web, &receipts_path));
    Ok((usage?, receipts?))
}

/// Pump owners on one page of `/master`.
const OWNERS_PER_PAGE: usize = 20;

/// `/master`'s query: where the page starts and what the master searched for.
#[derive(Deserialize, Default)]
pub struct OwnersFilter {
    /// The API's cursor: owners whose username comes after this one.
    after: Option<String>,
    /// The start of a username.
    q: Option<String>,
}

/// The query of a page of owners, encoded (a username may hold `+`): those whose username begins
/// with `q`, after the cursor `after`; empty without either.
fn owners_query(q: Option<&str>, after: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(q) = q {
        query.append_pair("q", q);
    }
    if let Some(after) = after {
        query.append_pair("after", after);
    }
    query.finish()
}

/// `GET /api/master/admins` for a page of `limit` owners (see [`owners_query`]).
fn owners_api_path(limit: usize, q: Option<&str>, after: Option<&str>) -> String {
    format!("/api/master/admins?limit={limit}&{}", owners_query(q, after))
}

/// `GET /master?q=&after=`: every pump's totals (`GET /api/master/totals`, whatever the page or
/// the search), then one page of pump owners (by username, [`OWNERS_PER_PAGE`], those whose
/// username begins with `q`).
pub async fn owners(
    State(web): State<WebState>,
    PageQuery(filter): PageQuery<OwnersFilter>,
    MasterPage(page): MasterPage,
) -> Result<Response, Response> {
    let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let after = filter.after.as_deref().filter(|a| !a.is_empty());
    let query = |after: Option<&str>| owners_query(q, after);
    let api_path = owners_api_path(OWNERS_PER_PAGE, q, after);
    let (list, fleet) =
        tokio::join!(page.get::<AdminPage>(&web, &api_path), page.get::<FleetTotals>(&web, "/api/master/totals"));
    let (list, fleet) = (list?, fleet?);
    let owners = &list.admins;
    let (t, lang) = (page.t(), page.lang());
    let o = t.owner;
    let count = |n: u64| number(i64::try_from(n).unwrap_or(i64::MAX), lang);
    let totals = [
        (o.total_owners, count(fleet.owners)),
        (o.total_farmers, count(fleet.farmers)),
        (o.total_running, count(fleet.running)),
        (o.total_on_hold, count(fleet.on_hold)),
        (o.total_minutes_30, duration(fleet.charged_seconds, lang)),
        (o.total_cash_30, fill(o.taka, &[&number(fleet.cash_taka, lang)])),
    ];
    let next = list.next.as_deref().map(|next| format!("/master?{}", query(Some(next))));
    let first = after.map(|_| format!("/master?{}", query(None)));
    let content = html! {
        @if fleet.owners > 0 {
            section.card #totals {
                h2 { (o.totals_title) }
                dl.facts.totals {
                    @for (label, value) in &totals { dt { (label) } dd.num { strong { (value) } } }
                }
            }
        }
        section.card {
            h2 { (t.owners_title) " " small.muted #owners-total { (fill(o.owners_in_all, &[&number(list.total as i64, lang)])) } }
            form.period #find-owner method="get" action="/master" role="search" {
                label { (o.find_owner) " "
                    input type="search" name="q" value=(q.unwrap_or_default()) maxlength="64" autocapitalize="none"
                        autocomplete="off" spellcheck="false";
                }
                button.secondary type="submit" { (o.find) }
                @if q.is_some() { " " a.button.secondary href="/master" { (o.all_owners) } }
            }
            @if owners.is_empty() {
                @match q {
                    Some(q) => p.muted #no-owner-found { (fill(o.no_owner_found, &[q])) },
                    None => p.muted { (t.no_owners) },
                }
            }
            @else {
                table.table.owners #owners data-api=(api_path) {
                    thead { tr { th { (t.name) } th { (t.motor) } th { (t.device_title) } th { (t.farmers_count) } th { (t.status) } } }
                    tbody {
                        @for o in owners {
                            tr data-owner=(o.user.id) {
                                td data-label=(t.name) {
                                    a href={"/master/owners/" (o.user.id)} { strong { (o.user.name) } }
                                    br; small.muted { (o.user.username) }
                                }
                                td data-label=(t.motor) .m-state { (parts::tag(t, &o.motor_state)) }
                                td data-label=(t.device_title) .m-device {
                                    span.chip.(if o.device_online { "good" } else { "bad" }) {
                                        (if o.device_online { t.device_online } else { t.device_offline })
                                    }
                                }
                                td data-label=(t.farmers_count) .m-users .num { (number(o.user_count as i64, lang)) }
                                td data-label=(t.status) {
                                    @if o.user.suspended {
                                        span.tag.bad { (t.suspended) } " "
                                        form.inline method="post" action={"/master/owners/" (o.user.id) "/unsuspend"} {
                                            (page.csrf_field())
                                            button.secondary.small type="submit" { (t.unsuspend) }
                                        }
                                    } @else {
                                        span.tag.good { (t.active) } " "
                                        form.inline method="post" action={"/master/owners/" (o.user.id) "/suspend"} data-confirm=(t.confirm_suspend_owner) {
                                            (page.csrf_field())
                                            button.danger.small type="submit" { (t.suspend) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if first.is_some() || next.is_some() {
                nav.pager #owner-pages {
                    @if let Some(first) = &first { a.button.secondary rel="first" href=(first) { (o.page_first) } }
                    @if let Some(next) = &next { a.button.secondary rel="next" href=(next) { (o.page_next) } }
                }
            }
        }
        (parts::new_account_form(t, &page, t.add_owner, "/master", "o"))
    };
    Ok(page.render(Tab::Master, Live::Master, t.owners_title, content))
}

/// `POST /master`: a new pump owner (a tenant).
pub async fn create_owner(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return redirect("/login", &[]) };
    let body = json!({"name": posted.field("name"), "username": posted.field("username"), "password": posted.field("password")});
    let answer = web.api.post("/api/master/admins", &token, body).await;
    finish(&posted, answer, "/master", |owner| {
        Some(Flash::ok("owner_created", &[owner["name"].as_str().unwrap_or_default()]))
    })
}

async fn set_suspended(web: WebState, id: String, posted: Posted, suspend: bool) -> Response {
    let Some(token) = posted.visit.session.clone() else { return redirect("/login", &[]) };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return redirect("/master", &[]);
    }
    let action = if suspend { "suspend" } else { "unsuspend" };
    let answer = web.api.post(&format!("/api/master/admins/{id}/{action}"), &token, json!({})).await;
    finish(&posted, answer, "/master", |owner| {
        let key = if suspend { "suspended" } else { "unsuspended" };
        Some(Flash::ok(key, &[owner["name"].as_str().unwrap_or_default()]))
    })
}

/// `POST /master/owners/{id}/suspend`: the whole tenant is locked out.
pub async fn suspend(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    set_suspended(web, id, posted, true).await
}

/// `POST /master/owners/{id}/unsuspend`.
pub async fn unsuspend(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    set_suspended(web, id, posted, false).await
}

/// `POST /master/owners/{id}/password`: a new password for a pump owner, shown this once (never
/// cached, never in a cookie or a URL); the owner is signed out everywhere.
pub async fn reset_password(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return redirect("/login", &[]) };
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return redirect("/master", &[]);
    }
    let back = format!("/master/owners/{id}");
    let answer = web.api.post(&format!("/api/master/admins/{id}/password"), &token, json!({})).await;
    if posted.json || !answer.status.is_success() {
        return finish(&posted, answer, &back, |_| None);
    }
    let created: NewPassword = match answer.into() {
        Ok(created) => created,
        Err(failure) => return super::failure_page(&posted.visit, None, &failure),
    };
    let mut page = match super::signed_in_as(&web, posted.visit, "master").await {
        Ok(page) => page,
        Err(response) => return response,
    };
    page.visit.path = back;
    let content = super::admin::new_password_card(&page, &created, page.t().passwords.owner_help, &page.visit.path);
    page.render(Tab::Master, Live::Off, page.t().owner.password_title, content)
}

/// `GET /master/owners/{id}`: one pump as its owner sees it, read-only: the motor, the queue, the
/// farmers with their balances, and the last 30 days' minutes and cash.
pub async fn pump(
    State(web): State<WebState>,
    Path(id): Path<String>,
    MasterPage(page): MasterPage,
) -> Result<Response, Response> {
    let t = page.t();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(message_page(&page.visit, Some(&page), StatusCode::NOT_FOUND, t.not_found_title, t.not_found_text));
    }
    let owner = page.get::<AdminSummary>(&web, &format!("/api/master/admins/{id}")).await?;
    let paths = [
        format!("/api/motor/status?adminId={id}"),
        format!("/api/queue?adminId={id}"),
        format!("/api/admin/users?adminId={id}"),
    ];
    let (status, queue, users) = tokio::join!(
        page.get::<Status>(&web, &paths[0]),
        page.get::<Queue>(&web, &paths[1]),
        page.get::<Vec<UserBalance>>(&web, &paths[2]),
    );
    let (status, queue, users) = (status?, queue?, users?);
    let (usage, receipts) = last_30_days(&web, &page, &id).await?;
    let (lang, zone) = (page.lang(), page.visit.zone);
    let o = t.owner;
    let panel = parts::owner_panel(t, lang, &status.motor, &queue);
    let minutes: i64 = usage.iter().map(|u| u.charged_seconds).sum();
    let cash: i64 = receipts.iter().map(|r| r.cash_counted()).sum();
    let title = fill(o.pump_of, &[&owner.user.name]);
    let content = html! {
        p { a href="/master" { "← " (o.back_to_owners) } }
        h1 #pump-title { (title) " " @if owner.user.suspended { span.tag.bad { (t.suspended) } } }
        form.inline method="post" action={"/master/owners/" (id) "/password"} data-confirm=(t.passwords.confirm_reset_owner) {
            (page.csrf_field())
            button.secondary #reset-owner-password type="submit" { (t.passwords.reset_owner) }
        }
        (parts::panel(&panel))
        (parts::device_status(t, &status.device))
        section.card #queue {
            h2 { (t.queue_title) }
            (parts::queue(t, lang, &queue, &page.me.id))
        }
        section.card #pump-farmers {
            h2 { (t.farmers_title) }
            @if users.is_empty() { p.muted { (t.no_farmers) } }
            @else {
                table.table.farmers {
                    thead { tr { th { (t.name) } th { (t.balance) } th { (t.status) } } }
                    tbody {
                        @for u in &users {
                            tr {
                                td data-label=(t.name) { strong { (u.user.name) } br; small.muted { (u.user.username) } }
                                td data-label=(t.balance) .num { (duration(u.available_seconds, lang)) }
                                td data-label=(t.status) {
                                    @if u.user.suspended { span.tag.bad { (t.suspended) } } @else { span.tag.good { (t.active) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card #pump-usage {
            h2 { (o.last_30_days) }
            dl.facts {
                dt { (o.total_minutes_30) } dd.num { strong { (duration(minutes, lang)) } }
                dt { (o.total_cash_30) } dd.num { strong { (fill(o.taka, &[&number(cash, lang)])) } }
            }
            @if !usage.is_empty() {
                table.table {
                    thead { tr { th { (t.col_when) } th { (t.name) } th { (t.minutes) } } }
                    tbody {
                        @for u in usage.iter().take(20) {
                            tr {
                                td data-label=(t.col_when) { (date_time(&u.ended_at, zone, lang)) }
                                td data-label=(t.name) { (users.iter().find(|x| x.user.id == u.user_id).map_or(t.unknown_user, |x| x.user.name.as_str())) }
                                td data-label=(t.minutes) .num { (duration(u.charged_seconds, lang)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page.render(Tab::Master, Live::Off, &title, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A username may hold `+`, which a query string would read as a space unless encoded.
    #[test]
    fn an_owners_cursor_and_prefix_are_encoded() {
        assert_eq!(
            owners_api_path(20, Some("01711+"), Some("a+b@c")),
            "/api/master/admins?limit=20&q=01711%2B&after=a%2Bb%40c"
        );
        assert_eq!(owners_api_path(50, None, None), "/api/master/admins?limit=50&");
    }
}
