//! Farmers: the list, one farmer's page (recharge, correction, cards, suspension, their phone
//! for SMS), new farmers.

use maud::Markup;
use serde_json::Value;

use super::*;
use crate::web::{
    Lang, Page,
    i18n::{BN, EN, Text},
};

/// A farmer's number for SMS, as `/api/admin/users/{id}/phone` answers it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FarmerPhone {
    phone: Option<String>,
    pending_phone: Option<String>,
    phone_code: Option<String>,
    dropped_phone: Option<String>,
    language: String,
    sms_number: Option<String>,
}

/// `GET /admin/farmers`: every farmer with balance and card; add one.
pub async fn farmers(State(web): State<WebState>, OwnerPage(page): OwnerPage) -> Result<Response, Response> {
    let (users, cards) = tokio::join!(
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Card>>(&web, "/api/admin/cards")
    );
    let (users, cards) = (users?, cards?);
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
                                    @let theirs: Vec<_> = cards.iter().filter(|c| c.user_id == u.user.id).collect();
                                    @if theirs.is_empty() { span.muted { (t.no_cards) } }
                                    @for c in theirs { code { (c.uid) } " " }
                                }
                                td { a.button.small href={"/admin/farmers/" (u.user.id)} { (t.manage) } }
                            }
                        }
                    }
                }
            }
        }
        (parts::new_account_form(t, &page, t.add_farmer, "/admin/farmers", "f"))
    };
    Ok(page.render(Tab::AdminFarmers, Live::Off, t.nav_farmers, content))
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
pub async fn farmer(
    State(web): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    OwnerPage(page): OwnerPage,
) -> Result<Response, Response> {
    if !valid_id(&id) {
        return Err(not_found(&page.visit));
    }
    let wallet = page.get::<Wallet>(&web, &format!("/api/admin/users/{id}/wallet")).await?;
    let usage_path = format!("/api/admin/usage?userId={id}");
    let receipts_path = format!("/api/admin/receipts?userId={id}");
    let phone_path = format!("/api/admin/users/{id}/phone");
    let (users, cards, usage, terms, receipts, phone) = tokio::join!(
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Card>>(&web, "/api/admin/cards"),
        page.get::<Vec<Usage>>(&web, &usage_path),
        page.get::<crate::web::api::Terms>(&web, "/api/admin/terms"),
        page.get::<Vec<crate::web::api::Receipt>>(&web, &receipts_path),
        page.get::<FarmerPhone>(&web, &phone_path),
    );
    let (users, cards, usage, terms, receipts, phone) = (users?, cards?, usage?, terms?, receipts?, phone?);
    let o = page.t().owner;
    let Some(user) = users.into_iter().find(|u| u.user.id == id) else { return Err(not_found(&page.visit)) };
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
                (once_key_field(&page, RECHARGE_KEY))
                label for="r-minutes" { (t.recharge_minutes) }
                input #r-minutes type="text" name="minutes" inputmode="numeric" required maxlength="9" autocomplete="off" value=(page.visit.kept("minutes"));
                label for="r-cash" { (o.cash_taken) }
                input #r-cash type="text" name="cashTaka" inputmode="numeric" maxlength="9" autocomplete="off"
                    value=(page.visit.kept("cashTaka"));
                small.muted #r-cash-help {
                    @if terms.price_per_hour_taka.is_some() { (fill(o.cash_help, &[&super::owner::price_words(o, &terms, lang)])) }
                    @else { (o.cash_help_no_price) }
                }
                label for="r-note" { (t.note) }
                input #r-note type="text" name="note" maxlength="500" placeholder=(t.note_placeholder) value=(page.visit.kept("note"));
                button.big.go type="submit" { (t.recharge) }
            }
        }
        section.card #receipts {
            h2 { (o.receipts_title) }
            (super::owner::receipts_table(&page, &receipts))
        }
        section.card #correction {
            h2 { (t.correction_title) }
            p.hint { (t.correction_help) }
            form method="post" action={"/admin/farmers/" (id) "/correct"} data-confirm=(t.confirm_correction) {
                (page.csrf_field())
                (once_key_field(&page, CORRECTION_KEY))
                label for="k-minutes" { (t.correction_minutes) }
                input #k-minutes type="text" name="minutes" required maxlength="10" autocomplete="off" value=(page.visit.kept("minutes"));
                label for="k-reason" { (t.correction_reason) }
                input #k-reason type="text" name="note" required maxlength="500" value=(page.visit.kept("note"));
                button.secondary type="submit" { (t.correct) }
            }
        }
        section.card {
            h2 #card { (t.card_title) }
            @let theirs: Vec<&Card> = cards.iter().filter(|c| c.user_id == id).collect();
            @if theirs.is_empty() { p.muted { (t.no_cards) } }
            ul.rows.cards {
                @for c in theirs {
                    li {
                        code.card-uid { (c.uid) }
                        form.inline method="post" action={"/admin/farmers/" (id) "/cards/" (c.uid) "/remove"}
                            data-confirm=(fill(t.confirm_remove_card, &[&c.uid])) {
                            (page.csrf_field())
                            button.danger.small type="submit" { (t.remove_card) }
                        }
                    }
                }
            }
            form method="post" action={"/admin/farmers/" (id) "/card"} {
                (page.csrf_field())
                label for="c-uid" { (t.card_uid) }
                input #c-uid type="text" name="uid" required maxlength="32" autocapitalize="characters" autocomplete="off" value=(page.visit.kept("uid"));
                p.hint { (t.card_help) }
                @if page.visit.asked("card_taken") {
                    label.check { input type="checkbox" name="move" value="yes" required; " " (t.move_card) }
                }
                button.secondary type="submit" { (t.bind_card) }
            }
        }
        (super::owner::app_card(&page, &super::owner::server_url(&headers), &user.user.username))
        (sms_card(&page, &id, &name, &phone))
        section.card #edit-farmer {
            h2 { (o.edit_title) }
            form method="post" action={"/admin/farmers/" (id) "/name"} {
                (page.csrf_field())
                label for="e-name" { (t.name) }
                input #e-name type="text" name="name" required maxlength="80" autocomplete="off"
                    value=(if page.visit.kept("name").is_empty() || page.visit.kept("name") == name { name.as_str() } else { page.visit.kept("name") });
                button.secondary type="submit" { (o.save_name) }
            }
        }
        section.card #password {
            h2 { (o.password_title) }
            p.hint { (o.password_help) }
            form method="post" action={"/admin/farmers/" (id) "/password"} data-confirm=(o.confirm_reset_password) {
                (page.csrf_field())
                button.secondary #reset-password type="submit" { (o.reset_password) }
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
        (parts::ledger(t, lang, zone, &fill(t.ledger_of, &[&user.user.name]), &wallet.ledger, "/admin/receipts/"))
        section.card {
            h2 { (t.history_title) }
            (usage_table(&page, &usage, None))
        }
    };
    Ok(page.render(Tab::AdminFarmers, Live::Off, &user.user.name, content))
}

/// The farmer's phone for SMS: the confirmed number, the one waiting with exactly what to text
/// from it (in both languages: the owner stands with the farmer and reads it out in theirs), and
/// the form that enrols a number.
fn sms_card(page: &Page, id: &str, name: &str, phone: &FarmerPhone) -> Markup {
    let (t, o) = (page.t(), page.t().owner);
    let number = |words: &Text| phone.sms_number.as_deref().unwrap_or(words.alerts_sms_number_unknown);
    let send = |words: &Text, code: &str| fill(words.owner.sms_send, &[name, code, number(words)]);
    let commands = |words: &Text| {
        parts::sms_commands(&fill(words.owner.sms_commands, &[name, number(words)]), words.sms_farmer_commands)
    };
    let kept = page.visit.kept("phone");
    let typed = if kept.is_empty() { phone.pending_phone.as_ref().or(phone.phone.as_ref()).cloned() } else { None };
    html! {
        section.card #sms {
            h2 { (o.sms_title) }
            p.hint { (o.sms_help) }
            @match &phone.phone {
                Some(confirmed) => {
                    p { (fill(t.alerts_phone_confirmed, &[confirmed])) }
                    // In both languages, as the code: the owner reads it out in the farmer's.
                    div lang="en" { (commands(&EN)) }
                    div lang="bn" { (commands(&BN)) }
                }
                None => p.muted { (t.alerts_phone_none) },
            }
            @if let Some(pending) = &phone.pending_phone {
                p.hint { (fill(t.alerts_phone_waiting, &[pending])) }
                @match &phone.phone_code {
                    Some(code) => {
                        p.code-to-send lang="en" { strong { (send(&EN, code)) } }
                        p.code-to-send lang="bn" { strong { (send(&BN, code)) } }
                    }
                    None => p.hint { (fill(t.alerts_phone_expired, &[pending])) },
                }
            }
            @if let Some(dropped) = &phone.dropped_phone {
                p.hint.phone-dropped { (fill(t.alerts_phone_dropped, &[dropped])) }
            }
            form method="post" action={"/admin/farmers/" (id) "/phone"} {
                (page.csrf_field())
                label for="s-phone" { (t.alerts_phone) }
                input #s-phone type="tel" name="phone" required maxlength="16" autocomplete="off"
                    value=(typed.as_deref().unwrap_or(kept));
                label for="s-language" { (t.alerts_language) }
                select #s-language name="language" {
                    option value="en" selected[phone.language == "en"] { "English" }
                    option value="bn" selected[phone.language == "bn"] lang="bn" { "বাংলা" }
                }
                button.secondary type="submit" { (o.sms_save) }
            }
        }
    }
}

/// `POST /admin/farmers/{id}/phone` (`phone`, `language`): enrols the farmer's phone for SMS; the
/// page then shows the code to text from it.
pub async fn enrol_phone(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let body = json!({"phone": posted.field("phone").trim(), "language": posted.field("language")});
    let path = format!("/api/admin/users/{id}/phone");
    let answer = web.api.call(axum::http::Method::PUT, &path, Some(&token), Some(body), None).await;
    finish(&posted, answer, &format!("/admin/farmers/{id}#sms"), |_| Some(Flash::ok("alerts_saved", &[])))
}

/// The key a change to a wallet (or a device's registration) is sent with, so that the form sent
/// twice (a second tap on a slow network, a reload that sends it again) makes it once: new for
/// each page, and kept when the form comes back refused (a refusal the owner fixes is the same
/// change, which may have been made if the answer was lost), unless the refusal was that its key
/// had made another change. Each form has a field of its own (`field`), so a refused correction's
/// key is never the recharge's beside it.
pub(super) fn once_key_field(page: &Page, field: &str) -> Markup {
    let kept = page.visit.kept(field);
    let key = if kept.is_empty() || page.visit.refused_with("KEY_REUSED") {
        uuid::Uuid::now_v7().to_string()
    } else {
        kept.to_owned()
    };
    html! { input type="hidden" name=(field) value=(key); }
}

/// The fields of [`once_key_field`] in the recharge form and in the correction form.
const RECHARGE_KEY: &str = "rechargeKey";
const CORRECTION_KEY: &str = "correctionKey";

/// `POST /admin/farmers/{id}/recharge` (`minutes`, `cashTaka`, `note`, `rechargeKey`).
pub async fn recharge(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let minutes = parse_whole(posted.field("minutes")).map_or(json!(posted.field("minutes")), |m| json!(m));
    let mut body = json!({"userId": id, "minutes": minutes, "note": posted.field("note")});
    let cash = posted.field("cashTaka").trim();
    if !cash.is_empty() {
        body["cashTaka"] = parse_whole(cash).map_or(json!(cash), |taka| json!(taka));
    }
    let answer = web.api.post_once("/api/admin/recharge", &token, body, posted.field(RECHARGE_KEY)).await;
    // A recharge with a receipt goes on to the receipt, to print or show.
    let receipt = answer.body["receiptId"].as_str().filter(|_| answer.status.is_success()).map(str::to_owned);
    let back = receipt.map_or_else(|| format!("/admin/farmers/{id}"), |receipt| format!("/admin/receipts/{receipt}"));
    finish(&posted, answer, &back, |balance| Some(balance_flash("recharged", balance, posted.visit.lang)))
}

/// "Karim has 2 h 30 min now", from the API's answer to a change to a wallet; or, for a form sent
/// again (a second tap, a page come back from the browser's history), that it was made already
/// and nothing was added now.
fn balance_flash(key: &str, balance: &Value, lang: Lang) -> Flash {
    let name = balance["name"].as_str().unwrap_or_default();
    let key = if balance["repeated"] == true { "made_already" } else { key };
    Flash::ok(key, &[name, &duration(balance["availableSeconds"].as_i64().unwrap_or(0), lang)])
}

/// `POST /admin/farmers/{id}/correct`: adds or takes minutes (`-15` or `15`, either script's
/// digits) with a reason, through `/api/admin/corrections`.
pub async fn correct(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let typed = posted.field("minutes");
    let minutes = parse_signed(typed).map_or(json!(typed), |m| json!(m));
    let body = json!({"userId": id, "minutes": minutes, "note": posted.field("note")});
    let answer = web.api.post_once("/api/admin/corrections", &token, body, posted.field(CORRECTION_KEY)).await;
    finish(&posted, answer, &format!("/admin/farmers/{id}"), |balance| {
        Some(balance_flash("corrected", balance, posted.visit.lang))
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
    // The pump's farmers as they are named now: for a card held by another, and for the sentence.
    let users = web.api.get("/api/admin/users", &token).await.into::<Vec<UserBalance>>().unwrap_or_default();
    let name_of = |user: &str| users.iter().find(|u| u.user.id == user).map(|u| u.user.name.clone());
    // A card that belongs to another farmer moves only when the owner says so.
    if let Ok(uid) = card_uid(posted.field("uid"))
        && posted.field("move") != "yes"
    {
        let other = web
            .api
            .get("/api/admin/cards", &token)
            .await
            .into::<Vec<Card>>()
            .ok()
            .and_then(|cards| cards.into_iter().find(|c| c.uid == uid && c.user_id != id));
        if let Some(other) = other {
            let owner = name_of(&other.user_id).unwrap_or_else(|| "?".into());
            let flash = Flash::refused("card_taken", &[&uid, &owner]).keeping(&posted);
            return redirect(&format!("/admin/farmers/{id}#card"), &[flash.cookie()]);
        }
    }
    let answer =
        web.api.post(&format!("/api/admin/users/{id}/rfid"), &token, json!({"uid": posted.field("uid")})).await;
    let name = name_of(&id).unwrap_or_default();
    finish(&posted, answer, &format!("/admin/farmers/{id}"), |card| {
        Some(Flash::ok("card_bound", &[card["uid"].as_str().unwrap_or_default(), &name]))
    })
}

/// `POST /admin/farmers/{id}/cards/{uid}/remove`: the card no longer starts the pump.
pub async fn remove_card(
    State(web): State<WebState>,
    Path((id, uid)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) || !valid_id(&uid) {
        return not_found(&posted.visit);
    }
    let answer = web.api.delete(&format!("/api/admin/cards/{uid}"), &token).await;
    finish(&posted, answer, &format!("/admin/farmers/{id}"), |_| Some(Flash::ok("card_removed", &[&uid])))
}
