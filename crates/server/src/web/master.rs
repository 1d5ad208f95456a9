//! The master admin's page: every pump owner with their tenant at a glance; add, suspend, let back.

use axum::{
    extract::{Path, State},
    response::Response,
};
use maud::html;
use serde_json::json;

use super::{Flash, Live, MasterPage, Posted, Tab, WebState, api::AdminSummary, finish, i18n::number, parts, redirect};

/// `GET /master`: the pump owners.
pub async fn owners(State(web): State<WebState>, MasterPage(page): MasterPage) -> Result<Response, Response> {
    let owners = page.get::<Vec<AdminSummary>>(&web, "/api/master/admins").await?;
    let (t, lang) = (page.t(), page.lang());
    let content = html! {
        section.card {
            h2 { (t.owners_title) }
            @if owners.is_empty() { p.muted { (t.no_owners) } }
            @else {
                table.table.owners #owners {
                    thead { tr { th { (t.name) } th { (t.motor) } th { (t.device_title) } th { (t.farmers_count) } th { (t.status) } } }
                    tbody {
                        @for o in &owners {
                            tr data-owner=(o.user.id) {
                                td data-label=(t.name) { strong { (o.user.name) } br; small.muted { (o.user.username) } }
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
