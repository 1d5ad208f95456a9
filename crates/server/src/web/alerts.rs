//! `/notifications`: everyone's bell — their notifications, newest first, marked read together —
//! and how they hear (phone for SMS, language, quiet hours), through the alerts API; and the way
//! to change one's own password (`/password`). A new phone
//! waits to be confirmed: the page says which code to text from it, and to which number.

use axum::{extract::State, response::Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AnyPage, Flash, Live, Posted, Tab, WebState, finish, i18n::date_time};

#[derive(Deserialize)]
struct Notification {
    kind: String,
    at: String,
    title: String,
    text: String,
    read: bool,
}

#[derive(Deserialize)]
struct Notifications {
    unread: u64,
    notifications: Vec<Notification>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Quiet {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    phone: Option<String>,
    pending_phone: Option<String>,
    phone_code: Option<String>,
    dropped_phone: Option<String>,
    sms_number: Option<String>,
    language: String,
    quiet_hours: Option<Quiet>,
}

/// `GET /notifications`.
pub async fn page(State(web): State<WebState>, AnyPage(page): AnyPage) -> Result<Response, Response> {
    // Written in the page's language; SMS and push keep the language of messages set below.
    let list_path = format!("/api/notifications?limit=100&language={}", page.lang().code());
    let (list, profile) =
        tokio::join!(page.get::<Notifications>(&web, &list_path), page.get::<Profile>(&web, "/api/alerts/profile"),);
    let (list, profile) = (list?, profile?);
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let unread = i64::try_from(list.unread).unwrap_or(i64::MAX);
    let content = html! {
        section.card.notifications {
            h2 { (t.nav_alerts) }
            @if list.notifications.is_empty() {
                p.muted { (t.alerts_none) }
            } @else {
                p { (super::i18n::fill(t.alerts_unread, &[&super::i18n::number(unread, lang)])) }
                @if list.unread > 0 {
                    form method="post" action="/notifications/read" {
                        (page.csrf_field())
                        button type="submit" { (t.alerts_mark_read) }
                    }
                }
                ul.notification-list {
                    @for n in &list.notifications {
                        li.notification.(if n.read { "read" } else { "unread" }) data-kind=(n.kind) {
                            strong { (n.title) }
                            " "
                            small { (date_time(&n.at, zone, lang)) }
                            br;
                            (n.text)
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (t.alerts_settings_title) }
            form method="post" action="/notifications/profile" {
                (page.csrf_field())
                (phone_state(t, &profile, &page.me.role))
                label for="phone" { (t.alerts_phone) }
                // The number waiting, when one is: saving the other settings keeps it waiting.
                input #phone type="tel" name="phone" autocomplete="tel" maxlength="16"
                    value=(profile.pending_phone.as_ref().or(profile.phone.as_ref()).cloned().unwrap_or_default());
                label for="language" { (t.alerts_language) }
                select #language name="language" {
                    option value="en" selected[profile.language == "en"] { "English" }
                    option value="bn" selected[profile.language == "bn"] lang="bn" { "বাংলা" }
                }
                label for="quiet-from" { (t.alerts_quiet_from) }
                input #quiet-from type="text" name="quietFrom" maxlength="5" inputmode="numeric" placeholder="22:00"
                    value=(profile.quiet_hours.as_ref().map_or("", |q| q.from.as_str()));
                label for="quiet-to" { (t.alerts_quiet_to) }
                input #quiet-to type="text" name="quietTo" maxlength="5" inputmode="numeric" placeholder="06:00"
                    value=(profile.quiet_hours.as_ref().map_or("", |q| q.to.as_str()));
                button.big.go type="submit" { (t.alerts_save) }
            }
        }
        section.card #your-password {
            h2 { (t.passwords.change) }
            p { a.button.secondary #change-password-link href="/password" { (t.passwords.change) } }
        }
    };
    Ok(page.render(Tab::Alerts, Live::Off, t.nav_alerts, content))
}

/// The confirmed phone (a farmer's or a pump owner's, with what they may text from it), and the
/// number waiting with what to text from it (or why a number that waited is gone).
fn phone_state(t: &super::i18n::Text, profile: &Profile, role: &str) -> maud::Markup {
    let fill = super::i18n::fill;
    let sms_number = profile.sms_number.as_deref().unwrap_or(t.alerts_sms_number_unknown);
    let commands = match role {
        "user" => Some(t.sms_farmer_commands),
        "admin" => Some(t.sms_owner_commands),
        _ => None,
    };
    html! {
        div #phone-state {
            @match &profile.phone {
                Some(phone) => {
                    p { (fill(t.alerts_phone_confirmed, &[phone])) }
                    @if let Some(commands) = commands {
                        (super::parts::sms_commands(&fill(t.alerts_phone_commands, &[sms_number]), commands))
                    }
                }
                None => p.muted { (t.alerts_phone_none) },
            }
            @if let Some(pending) = &profile.pending_phone {
                p.hint { (fill(t.alerts_phone_waiting, &[pending])) }
                @match &profile.phone_code {
                    Some(code) => p.code-to-send { strong { (fill(t.alerts_phone_send, &[pending, code, sms_number])) } },
                    None => p.hint { (fill(t.alerts_phone_expired, &[pending])) },
                }
            }
            @if let Some(dropped) = &profile.dropped_phone {
                p.hint.phone-dropped { (fill(t.alerts_phone_dropped, &[dropped])) }
            }
        }
    }
}

/// `POST /notifications/read`: all of the caller's.
pub async fn mark_read(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return super::redirect("/login", &[]) };
    let answer = web.api.post("/api/notifications/read", &token, json!({})).await;
    finish(&posted, answer, "/notifications", |_| Some(Flash::ok("alerts_read", &[])))
}

/// `POST /notifications/profile`: phone, language and quiet hours; the push tokens and muted
/// kinds the person set in the app are kept. A new phone waits to be confirmed (the page then
/// shows its code).
pub async fn save_profile(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return super::redirect("/login", &[]) };
    let current = web.api.get("/api/alerts/profile", &token).await;
    if !current.status.is_success() {
        return finish(&posted, current, "/notifications", |_| None);
    }
    let phone = posted.field("phone").trim();
    let (from, to) = (posted.field("quietFrom").trim(), posted.field("quietTo").trim());
    let quiet = if from.is_empty() && to.is_empty() {
        Value::Null
    } else {
        // The reader's zone from the page (Bangladesh when unknown).
        json!({ "from": from, "to": to, "utcOffsetMinutes": posted.visit.zone.0 })
    };
    let body = json!({
        "phone": if phone.is_empty() { Value::Null } else { Value::from(phone) },
        "pushTokens": current.body["pushTokens"].clone(),
        "language": posted.field("language"),
        "muted": current.body["muted"].clone(),
        "quietHours": quiet,
    });
    let answer = web.api.call(axum::http::Method::PUT, "/api/alerts/profile", Some(&token), Some(body), None).await;
    finish(&posted, answer, "/notifications", |_| Some(Flash::ok("alerts_saved", &[])))
}
