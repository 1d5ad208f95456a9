//! Control by SMS for feature phones: the SMS gateway posts each text it receives here, signed;
//! a farmer's registered phone may send `START`, `STOP` or `BAL` (or `চালু`, `বন্ধ`, `ব্যালেন্স`),
//! which go through the same runtime events as the app's buttons, and the answer goes back by SMS
//! through the outbox (an `SMS_REPLY` notification).

use axum::{Json, extract::State, http::HeaderMap};
use hmac::{Hmac, Mac};
use pumppilot_alerts::{Language, text::digits};
use pumppilot_engine::{EntryId, Event, Facts, Notice, NoticeKind, Refusal, Reply};
use pumppilot_store::{Role, is_e164};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    auth::ensure_active,
    error::{ApiError, RawBody, parse_json},
    routes::openapi::{Body, SignedIn},
};

/// The header that carries the body's signature: hex HMAC-SHA-256 of the raw body, keyed with
/// `PUMPPILOT_SMS_INBOUND_SECRET`.
pub const SIGNATURE_HEADER: &str = "x-pumppilot-signature";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(inbound))
}

/// A text received by the SMS gateway.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundSms {
    /// The sender, E.164.
    from: String,
    /// What they wrote.
    text: String,
}

/// What was done, and the reply sent back by SMS.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundAnswer {
    /// `START`, `STOP`, `BAL` or `HELP` (not understood).
    command: String,
    reply: String,
}

/// A command, from its English or Bangla word.
fn command(text: &str) -> &'static str {
    let word = text.split_whitespace().next().unwrap_or("").to_uppercase();
    match word.as_str() {
        "START" | "ON" | "চালু" => "START",
        "STOP" | "OFF" | "বন্ধ" => "STOP",
        "BAL" | "BALANCE" | "ব্যালেন্স" => "BAL",
        _ => "HELP",
    }
}

fn reply(language: Language, english: String, bangla: String) -> String {
    match language {
        Language::English => english,
        Language::Bangla => digits(&bangla, language),
    }
}

/// Checks the signature in constant time.
fn signed(secret: &str, body: &[u8], headers: &HeaderMap) -> bool {
    let Some(given) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| hex::decode(v).ok())
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// A text from the SMS gateway (signed). Unsigned or wrongly signed: 401; a sender whose number
/// is no farmer's: 403; both change nothing and answer nothing by SMS.
#[utoipa::path(post, path = "/api/sms/inbound", tag = "alerts", security(),
    request_body(content = InboundSms, description = "`{from, text}`, signed in `X-PumpPilot-Signature`"),
    responses((status = 200, description = "What was done and the reply sent", body = InboundAnswer), SignedIn, Body))]
async fn inbound(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<InboundAnswer>, ApiError> {
    let Some(secret) = app.settings.alerts.inbound_secret.clone() else {
        return Err(ApiError::forbidden("control by SMS is not set up"));
    };
    if !signed(&secret, &body, &headers) {
        return Err(ApiError::unauthenticated());
    }
    let sms: InboundSms = parse_json(&body)?;
    if !is_e164(&sms.from) {
        return Err(ApiError::forbidden("not a registered phone"));
    }
    let profile = app.store.alert_profile_by_phone(&sms.from).await?;
    let account = match profile {
        Some(profile) => app.store.account(profile.user_id).await?,
        None => None,
    };
    let Some(account) = account.filter(|a| a.role == Role::User) else {
        return Err(ApiError::forbidden("not a registered phone"));
    };
    ensure_active(&app, &account).await?;
    let admin = account.admin_id.ok_or_else(ApiError::internal)?;
    let language =
        Language::from_code(&app.store.alert_profile(account.id).await?.map(|p| p.language).unwrap_or_default());
    let command = command(&sms.text);
    let minutes_left = |seconds: i64| seconds.max(0) / 60;
    let text = match command {
        "START" => {
            let event = Event::Start { user: account.id, requested_minutes: None, entry_id: EntryId::new() };
            let (outcome, left) = app
                .runtime
                .apply(admin, event, Default::default(), |t, now| t.available_seconds(account.id, now))
                .await?;
            match outcome {
                Ok(Reply::Entry(entry)) if entry.status == pumppilot_engine::EntryStatus::Waiting => {
                    let position = app
                        .runtime
                        .read(admin, |t, _| t.waiting.iter().position(|e| e.id == entry.id).map_or(0, |i| i + 1))
                        .await?;
                    reply(
                        language,
                        format!("You are number {position} in line. {} min left.", minutes_left(left)),
                        format!("আপনি লাইনে {position} নম্বরে। {} মিনিট বাকি।", minutes_left(left)),
                    )
                }
                Ok(_) => reply(
                    language,
                    format!("Started. {} min left.", minutes_left(left)),
                    format!("চালু হয়েছে। {} মিনিট বাকি।", minutes_left(left)),
                ),
                Err(Refusal::InsufficientBalance) => {
                    reply(language, "No minutes left.".into(), "কোনো মিনিট বাকি নেই।".into())
                }
                Err(_) => reply(language, "Cannot start now.".into(), "এখন চালু করা যাচ্ছে না।".into()),
            }
        }
        "STOP" => {
            let event = Event::Stop { user: account.id };
            let (outcome, left) = app
                .runtime
                .apply(admin, event, Default::default(), |t, now| t.available_seconds(account.id, now))
                .await?;
            match outcome {
                Ok(_) => reply(
                    language,
                    format!("Stopped. {} min left.", minutes_left(left)),
                    format!("বন্ধ হয়েছে। {} মিনিট বাকি।", minutes_left(left)),
                ),
                Err(_) => reply(language, "Nothing to stop.".into(), "বন্ধ করার কিছু নেই।".into()),
            }
        }
        "BAL" => {
            let left = app.runtime.read(admin, |t, now| t.available_seconds(account.id, now)).await?;
            reply(language, format!("{} min left.", minutes_left(left)), format!("{} মিনিট বাকি।", minutes_left(left)))
        }
        _ => reply(language, "Send START, STOP or BAL.".into(), "চালু, বন্ধ বা ব্যালেন্স লিখে পাঠান।".into()),
    };
    // The answer goes through the outbox like every alert: retried, sent once, and still sent
    // after a restart (and kept in the farmer's bell).
    // The command is done whatever happens here: a failure to write its answer is logged, not
    // answered with an error the gateway might retry (and so repeat the command).
    let facts = Facts { text: Some(text.clone()), ..Facts::default() };
    let answer = Notice::new(account.id, admin, NoticeKind::SmsReply, app.now(), facts);
    if let Err(err) = app.store.add_notices(&[answer]).await {
        tracing::warn!(%err, "could not write an SMS answer to the outbox");
    }
    Ok(Json(InboundAnswer { command: command.into(), reply: text }))
}
