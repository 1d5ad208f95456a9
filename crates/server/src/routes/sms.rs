//! Control by SMS for feature phones: the SMS gateway posts each text it receives here, signed;
//! a farmer's registered phone may send `START`, `STOP` or `BAL` (or `চালু`, `বন্ধ`, `ব্যালেন্স`),
//! which go through the same runtime events as the app's buttons, and the answer goes back by SMS
//! through the outbox (an `SMS_REPLY` notification).
//!
//! A signed text is carried out once: the signature covers the time it was signed, a text whose
//! time is more than [`SIGNED_WITHIN_MS`] from the server's clock is refused, and one taken
//! already (the same signature, or the same gateway message id) is refused while it could still
//! be in time: each text taken is claimed in the store ([`Store::claim_text`]), which every server
//! of a fleet sees and a restart keeps. Someone who once saw a signed text (in the gateway's logs,
//! at a proxy) cannot stop or start a farmer's run with it later.
//!
//! [`Store::claim_text`]: pumppilot_store::Store::claim_text

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use hmac::{Hmac, Mac};
use pumppilot_alerts::{
    Language,
    text::{ascii_digits, digits_but, hold_reason, reject_reason, run_stopped, short_number},
};
use pumppilot_engine::{
    AdminId, EntryId, EntryStatus, Event, Facts, Notice, NoticeKind, QueueEntry, RUN_MINUTES, Refusal, RejectReason,
    Reply, Timestamp,
};
use pumppilot_store::{Account, RequestQuery, RequestStatus, Role, is_e164};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{audit_entry, motor::ask_for_minutes};
use crate::{
    app::AppState,
    auth::is_paused,
    error::{ApiError, RawBody, parse_json},
    routes::openapi::{Body, SignedIn},
    runtime::Extras,
};

/// The header that carries the signature: hex HMAC-SHA-256 of `"{timestamp}.{raw body}"`, keyed
/// with `PUMPPILOT_SMS_INBOUND_SECRET`.
pub const SIGNATURE_HEADER: &str = "x-pumppilot-signature";

/// The header that carries when the gateway signed the text: Unix seconds, the `{timestamp}` of
/// the signed message.
pub const TIMESTAMP_HEADER: &str = "x-pumppilot-timestamp";

/// How far a signature's time may be from the server's clock, either way (as Stripe's and Slack's
/// webhooks allow): room for a gateway's clock a little off and a slow delivery, too little for a
/// text seen in a log to be of use later.
const SIGNED_WITHIN_MS: i64 = 5 * 60 * 1000;

/// How long a text taken is remembered, so the same one is refused: a signature is in time from
/// [`SIGNED_WITHIN_MS`] before its time to as long after, so twice that (and a second to spare)
/// covers every moment it could be sent again.
const REMEMBERED_MS: i64 = 2 * SIGNED_WITHIN_MS + 1000;

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
    /// The gateway's id of the message (optional): 1 to 100 visible ASCII characters. A message
    /// with an id is carried out once for that id, also when the gateway signs it again to retry;
    /// without one, once for its signature.
    #[schema(min_length = 1, max_length = 100)]
    id: Option<String>,
}

/// What was done, and the reply sent back by SMS (empty when none is: the help or the pause,
/// told a phone already in the last ten minutes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundAnswer {
    /// `START`, `STOP`, `BAL`, `REQ` (minutes asked of the owner), `STATUS` (the pump at a
    /// glance, from its owner's phone; a farmer's is their `BAL`), `OK` and `NO` (a request
    /// decided from its owner's phone), `CONFIRM` (a number confirmed
    /// with its code), `WRONG_CODE` (a code for a number waiting for this phone, but not its
    /// code: counted; the fifth drops the number and is answered), `HELP` (not understood) or
    /// `PAUSED` (the farmer's account, or their pump's owner, is suspended: nothing was done).
    command: String,
    reply: String,
}

/// What a text asks for (a farmer's, or a pump owner's: `STATUS`, `STOP` with a run's number,
/// `OK` or `NO` with a request's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Start, and run at most the minutes the text asks for (`START 30`) when it asks.
    Start(Option<u32>),
    /// A `START` whose minutes cannot be asked for (`START 0`, `START 2000`, `START 1.5`):
    /// nothing is done, and the reply says what may be asked.
    StartMisread,
    /// Ask the owner for minutes (`REQ 60`, after paying by mobile money); `None` when the text
    /// names no whole number of them, and the reply says how.
    Ask(Option<u32>),
    /// Stop: a farmer's own run or place in line; from a pump owner's phone, the active run the
    /// number names ([`short_number`](pumppilot_alerts::text::short_number), as STATUS said it), and no other.
    Stop(Option<u32>),
    Balance,
    /// The pump at a glance: for its owner, who runs, the line, the requests to decide and the
    /// device; for a farmer, as `BAL`.
    Status,
    /// A pump owner approves (`OK 3817`) or rejects (`NO 3817`, `NO 3817 UNPAID`) the waiting
    /// request the number names ([`short_number`](pumppilot_alerts::text::short_number), as
    /// STATUS said it).
    Decide {
        answer: Answer,
        number: Option<u32>,
    },
    /// The farmer's account, or their pump's owner, is suspended: nothing is done.
    Paused,
    /// Not understood.
    Help,
}

impl Command {
    /// The command's name in the gateway's answer ([`InboundAnswer::command`]).
    fn name(self) -> &'static str {
        match self {
            Command::Start(_) | Command::StartMisread => "START",
            Command::Ask(_) => "REQ",
            Command::Stop(_) => "STOP",
            Command::Balance => "BAL",
            Command::Status => "STATUS",
            Command::Decide { answer: Answer::Approve, .. } => "OK",
            Command::Decide { answer: Answer::Reject(_), .. } => "NO",
            Command::Paused => "PAUSED",
            Command::Help => "HELP",
        }
    }

    /// A command from its first word in English, Bangla or Bangla written in Latin letters, as
    /// a feature phone sends it: any case, punctuation after it (`BAL?`, `ব্যালেন্স।`) and the
    /// invisible joiners some keyboards put inside Bangla words do not matter. A `START` may
    /// name its minutes after it, and a `REQ` must ([`minutes_in`]).
    fn of(text: &str) -> Command {
        let text: String = text.chars().filter(|c| !matches!(c, '\u{200b}'..='\u{200d}' | '\u{feff}')).collect();
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or("");
        // `START30`, `চালু৩০`: the minutes written against the word.
        let (word, glued) = first.split_at(first.find(is_digit).unwrap_or(first.len()));
        let word = bare(word).to_uppercase();
        let rest = std::iter::once(glued).filter(|g| !g.is_empty()).chain(words);
        match word.as_str() {
            "START" | "ON" | "চালু" | "CHALU" => match minutes_in(rest) {
                Ok(None) => Command::Start(None),
                Ok(Some(minutes)) if RUN_MINUTES.contains(&minutes) => Command::Start(Some(minutes)),
                _ => Command::StartMisread,
            },
            "REQ" | "REQUEST" | "ASK" | "চাই" | "অনুরোধ" | "CHAI" => {
                Command::Ask(minutes_in(rest).ok().flatten())
            }
            "STOP" | "OFF" | "বন্ধ" | "BONDHO" | "BONDO" | "BANDH" => Command::Stop(number_in(rest)),
            "BAL" | "BALANCE" | "ব্যালেন্স" | "ব্যালান্স" => Command::Balance,
            "STATUS" | "অবস্থা" | "OBOSTHA" => Command::Status,
            "OK" | "YES" | "হ্যাঁ" | "HA" | "HAN" => {
                Command::Decide { answer: Answer::Approve, number: number_in(rest) }
            }
            "NO" | "না" | "NA" => {
                let mut rest = rest;
                let number = number_in(rest.by_ref());
                Command::Decide { answer: Answer::Reject(rest.next().and_then(reject_reason_in)), number }
            }
            _ => Command::Help,
        }
    }
}

/// The number a text names after its command, in ASCII or Bangla digits: the first word with a
/// digit, when it is digits alone (`STOP 4821`, `বন্ধ ৪৮২১`).
fn number_in<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<u32> {
    let word = words.find(|w| w.chars().any(is_digit))?;
    let digits = ascii_digits(bare(word));
    digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok()).flatten()
}

/// How a pump owner answers a request by text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Approve,
    /// With why, when the word after the number is one of the reasons the app offers.
    Reject(Option<RejectReason>),
}

/// Why a `NO` rejects, from the word after its number: one word for each reason the app offers
/// (`UNPAID`, `AMOUNT`, `LESS`, `CLOSED`; `পাইনি`, `মেলেনি`, `কম`, `বন্ধ`). Another word gives none.
fn reject_reason_in(word: &str) -> Option<RejectReason> {
    match bare(word).to_uppercase().as_str() {
        "UNPAID" | "NOTPAID" | "পাইনি" => Some(RejectReason::NotPaid),
        "AMOUNT" | "মেলেনি" => Some(RejectReason::WrongAmount),
        "LESS" | "FEWER" | "কম" => Some(RejectReason::TooMany),
        "CLOSED" | "বন্ধ" => Some(RejectReason::PumpClosed),
        _ => None,
    }
}

/// A word without the punctuation a text puts after it (`BAL?`, `30.`, `ব্যালেন্স।`).
fn bare(word: &str) -> &str {
    word.trim_end_matches(|c: char| c.is_ascii_punctuation() || c == '।')
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('০'..='৯').contains(&c)
}

/// The minutes a text names after its command: the first word with a digit is a whole number of
/// minutes, or of hours when a unit says so, against the number or as the next word (`30`,
/// `30min`, `45 মিনিট`, `2 hours`, `২ঘণ্টা`), in ASCII or Bangla digits. `Ok(None)` when no word
/// holds a digit (`START please`); `Err` when that word is not such a number (`-5`, `1.5`, `30x`,
/// or more minutes than a `u32` holds).
fn minutes_in<'a>(words: impl Iterator<Item = &'a str>) -> Result<Option<u32>, ()> {
    const MINUTES: [&str; 7] = ["M", "MIN", "MINS", "MINUTE", "MINUTES", "মিনিট", "মি"];
    const HOURS: [&str; 8] = ["H", "HR", "HRS", "HOUR", "HOURS", "ঘণ্টা", "ঘন্টা", "GHONTA"];
    let mut words = words.map(bare);
    let Some(word) = words.by_ref().find(|w| w.chars().any(is_digit)) else { return Ok(None) };
    let word = ascii_digits(word);
    let (number, unit) = word.split_at(word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len()));
    let unit = match unit {
        "" => words.next().map(str::to_uppercase).filter(|w| HOURS.contains(&w.as_str())),
        glued => Some(glued.to_uppercase()),
    };
    let per = match unit.as_deref() {
        None => 1,
        Some(unit) if MINUTES.contains(&unit) => 1,
        Some(unit) if HOURS.contains(&unit) => 60,
        Some(_) => return Err(()),
    };
    number.parse::<u32>().ok().and_then(|n| n.checked_mul(per)).map(Some).ok_or(())
}

fn reply(language: Language, english: String, bangla: String) -> String {
    naming(language, english, bangla, "")
}

/// As [`reply`], with a farmer's `name` kept as typed in a Bangla answer (only the sentence's
/// own numbers are written in Bangla digits).
fn naming(language: Language, english: String, bangla: String, name: &str) -> String {
    match language {
        Language::English => english,
        Language::Bangla => digits_but(&bangla, language, &[name]),
    }
}

/// A 401 that says why the text was not taken.
fn refused(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", why)
}

/// The answer to a text sent again: the same signature, or the same message id, taken before.
const TAKEN_ALREADY: &str =
    "this text was taken already (the same signature or message id): a text is carried out once";

/// The text's signature, once it matches (checked in constant time) and its time is within
/// [`SIGNED_WITHIN_MS`] of the server's clock. The match is checked first: a caller without the
/// key learns only that it does not match.
fn signature(secret: &str, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<Vec<u8>, ApiError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signed_at), Some(given)) =
        (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER).and_then(|v| hex::decode(v).ok()))
    else {
        return Err(refused(
            "not signed: send X-PumpPilot-Timestamp (Unix seconds) and X-PumpPilot-Signature (hex \
             HMAC-SHA-256 of \"{timestamp}.{body}\")",
        ));
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(signed_at.as_bytes());
    mac.update(b".");
    mac.update(body);
    if mac.verify_slice(&given).is_err() {
        return Err(refused(
            "the signature does not match: hex HMAC-SHA-256 of \"{timestamp}.{body}\" keyed with the inbound secret",
        ));
    }
    let seconds = Some(signed_at)
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| refused("the signature's time is not Unix seconds"))?;
    let minutes = SIGNED_WITHIN_MS / 60_000;
    let late = now - Timestamp(seconds.saturating_mul(1000));
    if late > SIGNED_WITHIN_MS {
        return Err(refused(format!(
            "the signature's time is too old: more than {minutes} minutes before the server's clock"
        )));
    }
    if late < -SIGNED_WITHIN_MS {
        return Err(refused(format!(
            "the signature's time is too far ahead: more than {minutes} minutes after the server's clock"
        )));
    }
    Ok(given)
}

/// A text from the SMS gateway, signed with its time. Unsigned, wrongly signed, signed more than
/// 5 minutes from the server's clock, or taken already (sent again): 401; a sender whose number
/// is no farmer's: 403; all change nothing and answer nothing by SMS.
#[utoipa::path(post, path = "/api/sms/inbound", tag = "alerts", security(),
    params(
        ("X-PumpPilot-Timestamp" = String, Header,
            description = "When the gateway signed the text: Unix seconds, within 5 minutes of the server's clock"),
        ("X-PumpPilot-Signature" = String, Header,
            description = "Hex HMAC-SHA-256 of `\"{timestamp}.{raw body}\"`, keyed with `PUMPPILOT_SMS_INBOUND_SECRET`")),
    request_body(content = InboundSms, description = "`{from, text, id?}`, signed with its time"),
    responses((status = 200, description = "What was done and the reply sent", body = InboundAnswer), SignedIn, Body))]
async fn inbound(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<InboundAnswer>, ApiError> {
    let Some(secret) = app.settings.alerts.inbound_secret.clone() else {
        return Err(ApiError::forbidden("control by SMS is not set up"));
    };
    let signature = signature(&secret, &headers, &body, app.now())?;
    let mut sms: InboundSms = parse_json(&body)?;
    // Many gateways write the sender in E.164 without its `+`.
    if !sms.from.starts_with('+') && sms.from.bytes().all(|b| b.is_ascii_digit()) {
        sms.from.insert(0, '+');
    }
    // The signature as bytes, not as sent: the same one in capitals is the same text.
    let key = match &sms.id {
        None => format!("sms:{}", hex::encode(signature)),
        Some(id) if (1..=100).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()) => {
            format!("sms-id:{id}")
        }
        Some(_) => return Err(ApiError::validation("id: 1 to 100 visible ASCII characters")),
    };
    // One atomic claim in the store, which every server of a fleet sees and a restart keeps.
    if !app.store.claim_text(&key, app.now(), REMEMBERED_MS).await? {
        return Err(refused(TAKEN_ALREADY));
    }
    let answer = carry_out(&app, &sms).await;
    if answer.is_err() {
        // Nothing was done: the claim is given up, and the gateway's retry is decided afresh.
        if let Err(err) = app.store.release_text(&key).await {
            tracing::warn!(%err, "could not give up the claim of a text that was not carried out");
        }
    }
    answer.map(Json)
}

/// Carries out a text this server took: a code for a number waiting for this phone, or the
/// sender's command when the sender is a farmer, or a pump owner, who may act.
async fn carry_out(app: &AppState, sms: &InboundSms) -> Result<InboundAnswer, ApiError> {
    if !is_e164(&sms.from) {
        return Err(ApiError::forbidden("not a registered phone"));
    }
    // A number counts once its holder confirms it: a text with the code an account was shown
    // confirms that account's number waiting for this phone (and nothing else is read in it).
    if let Some(answer) = crate::routes::alerts::confirm_from(app, &sms.from, &sms.text).await? {
        return Ok(InboundAnswer { command: answer.command.into(), reply: answer.reply });
    }
    let profile = app.store.alert_profile_by_phone(&sms.from).await?;
    let account = match profile {
        Some(profile) => app.store.account(profile.user_id).await?,
        None => None,
    };
    let Some(account) = account.filter(|a| matches!(a.role, Role::User | Role::Admin)) else {
        return Err(ApiError::forbidden("not a registered phone"));
    };
    let owner = account.role == Role::Admin;
    // A farmer whose account (or whose pump's owner) is suspended is told so, and nothing else
    // is done: silence would leave them texting again and again.
    let paused = is_paused(app, &account).await?;
    let admin = if owner { AdminId(account.id) } else { account.admin_id.ok_or_else(ApiError::internal)? };
    let language =
        Language::from_code(&app.store.alert_profile(account.id).await?.map(|p| p.language).unwrap_or_default());
    let command = match (paused, owner, Command::of(&sms.text)) {
        (true, _, _) => Command::Paused,
        // An owner's phone asks how the pump is, stops a run, decides a request; a farmer's
        // commands are not theirs to send, nor an owner's a farmer's.
        (false, true, command @ (Command::Status | Command::Stop(_) | Command::Decide { .. })) => command,
        (false, true, _) | (false, false, Command::Decide { .. }) => Command::Help,
        (false, false, command) => command,
    };
    let text = match owner {
        true => tell_owner(app, admin, language, command).await?,
        false => obey(app, &account, admin, language, command).await?,
    };
    // Words not understood are answered with the help, and a suspended farmer with the pause,
    // once in [`REMEMBERED_MS`] per phone: a phone that answers every text by itself (an
    // auto-reply) would otherwise trade SMS with the server without end, each paid by the pump's
    // owner. Counted in the store, as the texts taken are.
    if matches!(command, Command::Help | Command::Paused)
        && !app.store.claim_text(&format!("{}:{}", command.name(), sms.from), app.now(), REMEMBERED_MS).await?
    {
        return Ok(InboundAnswer { command: command.name().into(), reply: String::new() });
    }
    // The answer goes through the outbox like every alert: retried, sent once, and still sent
    // after a restart (and kept in the farmer's bell).
    // The command is done whatever happens here: a failure to write its answer is logged, not
    // answered with an error the gateway might retry (and so repeat the command).
    let facts = Facts { text: Some(text.clone()), ..Facts::default() };
    let answer = Notice::new(account.id, admin, NoticeKind::SmsReply, app.now(), facts);
    if let Err(err) = app.store.add_notices(&[answer]).await {
        tracing::warn!(%err, "could not write an SMS answer to the outbox");
    }
    Ok(InboundAnswer { command: command.name().into(), reply: text })
}

/// Does what the farmer's command says, through the same runtime events as the app's buttons,
/// and words the reply in their language.
async fn obey(
    app: &AppState,
    account: &Account,
    admin: AdminId,
    language: Language,
    command: Command,
) -> Result<String, ApiError> {
    // The balance, never more than is there: the minutes a farmer may still pump.
    let balance = |seconds: i64| {
        let minutes = seconds.max(0) / 60;
        reply(language, format!("Balance {minutes} min."), format!("ব্যালেন্স {minutes} মিনিট।"))
    };
    let status = |t: &pumppilot_engine::Tenant, now| t.available_seconds(account.id, now);
    let in_line = |position: usize| {
        reply(language, format!("You are number {position} in line."), format!("আপনি সারিতে {position} নম্বরে।"))
    };
    Ok(match command {
        Command::Start(minutes) => {
            // Its answer says how the run started: when on hold, the one SMS the farmer gets for it.
            let event = Event::StartByText { user: account.id, requested_minutes: minutes, entry_id: EntryId::new() };
            let (outcome, left) = app.runtime.apply(admin, event, Default::default(), status).await?;
            let asked = |entry: &QueueEntry| entry.requested_seconds.map(|s| s / 60);
            match outcome {
                Ok(Reply::Entry(entry)) if entry.status == EntryStatus::Waiting => {
                    let position = app
                        .runtime
                        .read(admin, |t, _| t.waiting.iter().position(|e| e.id == entry.id).map_or(0, |i| i + 1))
                        .await?;
                    let said = match asked(&entry) {
                        None => in_line(position),
                        Some(m) => reply(
                            language,
                            format!("You are number {position} in line, for {m} min."),
                            format!("আপনি সারিতে {position} নম্বরে, {m} মিনিটের জন্য।"),
                        ),
                    };
                    format!("{said} {}", balance(left))
                }
                // Their turn, but the pump waits (load shedding, the grid settling): no minutes go.
                Ok(Reply::Entry(entry)) if entry.status == EntryStatus::Hold => {
                    let why = hold_reason(entry.hold_reason, language);
                    reply(
                        language,
                        format!("Your turn, but the pump is on hold: {why}. No minutes are used until it runs."),
                        format!("আপনার পালা, পাম্প থেমে আছে: {why}। মিনিট কাটা হচ্ছে না।"),
                    )
                }
                Ok(started) => {
                    let said = match started {
                        Reply::Entry(entry) if let Some(m) = asked(&entry) => reply(
                            language,
                            format!("Your pump is running for {m} min."),
                            format!("আপনার পাম্প {m} মিনিট চলবে।"),
                        ),
                        _ => reply(language, "Your pump is running.".into(), "আপনার পাম্প চলছে।".into()),
                    };
                    format!("{said} {}", balance(left))
                }
                Err(Refusal::InsufficientBalance) => {
                    reply(language, "No minutes left.".into(), "কোনো মিনিট বাকি নেই।".into())
                }
                Err(_) => reply(language, "Cannot start now.".into(), "এখন চালু করা যাচ্ছে না।".into()),
            }
        }
        Command::StartMisread => {
            let (first, last) = (RUN_MINUTES.start(), RUN_MINUTES.end());
            reply(
                language,
                format!("Minutes: from {first} to {last}, like START 30. Nothing was started."),
                format!("মিনিট: {first} থেকে {last}, যেমন চালু 30। কিছু চালু হয়নি।"),
            )
        }
        Command::Ask(minutes) => {
            let asked = match minutes {
                Some(minutes) => ask_for_minutes(app, account, admin, i64::from(minutes), String::new()).await,
                // No whole number named: answered as too many are, with the pump's most.
                None => Ok(Err(app.store.terms(admin).await?.max_request_minutes)),
            };
            match asked {
                Ok(Ok(request)) => {
                    let m = request.minutes;
                    reply(
                        language,
                        format!("Asked the pump owner for {m} min. You will hear when they decide."),
                        format!("মালিকের কাছে {m} মিনিট চাওয়া হয়েছে। সিদ্ধান্ত হলে জানানো হবে।"),
                    )
                }
                Ok(Err(most)) => reply(
                    language,
                    format!("Minutes: from 1 to {most}, like REQ 60. Nothing was asked."),
                    format!("মিনিট: 1 থেকে {most}, যেমন চাই 60। কিছু চাওয়া হয়নি।"),
                ),
                Err(err) if err.code == "REQUEST_PENDING" => reply(
                    language,
                    "A request of yours is waiting already: the owner decides it first.".into(),
                    "আপনার একটি অনুরোধ অপেক্ষায় আছে: মালিক আগে সেটির সিদ্ধান্ত নেবেন।".into(),
                ),
                Err(err) => return Err(err),
            }
        }
        Command::Stop(_) => {
            // Its answer says what the run's end says: the one SMS the farmer gets for it.
            let event = Event::StopByText { user: account.id };
            let (outcome, left) = app.runtime.apply(admin, event, Default::default(), status).await?;
            match outcome {
                // A farmer still in line who sends STOP leaves the line: said so, not "stopped".
                Ok(Reply::Ended(entry)) if entry.status == EntryStatus::Cancelled => {
                    format!(
                        "{} {}",
                        reply(language, "You left the line.".into(), "আপনি সারি ছেড়েছেন।".into()),
                        balance(left)
                    )
                }
                Ok(done) => {
                    let charged = match done {
                        Reply::Ended(entry) => entry.charged_seconds.unwrap_or(0),
                        _ => 0,
                    };
                    run_stopped(charged, left, language)
                }
                Err(_) => reply(language, "Nothing to stop.".into(), "বন্ধ করার কিছু নেই।".into()),
            }
        }
        // The balance, and where the farmer is: the screen a feature phone does not have.
        Command::Balance | Command::Status => {
            let (left, place) = app
                .runtime
                .read(admin, |t, now| {
                    let place = t.live_entry(account.id).map(|(entry, position)| match (entry.status, position) {
                        (EntryStatus::Waiting, Some(position)) => in_line(position),
                        (EntryStatus::Hold, _) => {
                            let why = hold_reason(entry.hold_reason, language);
                            reply(
                                language,
                                format!("Your run is on hold: {why}."),
                                format!("আপনার পাম্প থেমে আছে: {why}।"),
                            )
                        }
                        _ => {
                            let m = t.remaining_seconds(now).unwrap_or(0).max(0) / 60;
                            reply(
                                language,
                                format!("Your pump is running: {m} min left."),
                                format!("আপনার পাম্প চলছে: {m} মিনিট বাকি।"),
                            )
                        }
                    });
                    (status(t, now), place)
                })
                .await?;
            match place {
                Some(place) => format!("{} {place}", balance(left)),
                None => balance(left),
            }
        }
        Command::Paused => reply(
            language,
            "Your account is paused. Ask the pump owner.".into(),
            "আপনার অ্যাকাউন্ট স্থগিত। পাম্প মালিককে বলুন।".into(),
        ),
        // An owner's words (carry_out answers them from a farmer's phone with the help).
        Command::Help | Command::Decide { .. } => reply(language, HELP.0.into(), HELP.1.into()),
    })
}

/// Answers a pump owner's text: the pump at a glance for `STATUS`, the run it names stopped for
/// `STOP 4821`, the request it names decided for `OK 3817` or `NO 3817`, else the owner's help (or
/// the pause of a suspended owner).
async fn tell_owner(app: &AppState, admin: AdminId, language: Language, command: Command) -> Result<String, ApiError> {
    Ok(match command {
        Command::Status => at_a_glance(app, admin, language).await?,
        Command::Stop(Some(number)) => stop_for_owner(app, admin, language, number).await?,
        Command::Decide { answer, number: Some(number) } => {
            decide_for_owner(app, admin, language, answer, number).await?
        }
        Command::Decide { number: None, .. } => reply(
            language,
            "Send OK or NO and the request's number that STATUS says, like OK 3817.".into(),
            "অবস্থা যে নম্বর বলে তা দিয়ে লিখুন, যেমন হ্যাঁ ৩৮১৭।".into(),
        ),
        Command::Stop(None) => reply(
            language,
            "Send STOP and the run's number that STATUS says, like STOP 4821.".into(),
            "অবস্থা যে নম্বর বলে তা দিয়ে লিখুন, যেমন বন্ধ ৪৮২১।".into(),
        ),
        Command::Paused => reply(language, "Your account is paused.".into(), "আপনার অ্যাকাউন্ট স্থগিত।".into()),
        _ => reply(language, OWNER_HELP.0.into(), OWNER_HELP.1.into()),
    })
}

/// The pump at a glance, for its owner's `STATUS`: who runs and for how long (or why their run
/// holds) with the run's number, how many wait, the requests to decide with theirs, the device.
async fn at_a_glance(app: &AppState, admin: AdminId, language: Language) -> Result<String, ApiError> {
    let (tenant, now) = app.runtime.read(admin, |t, now| (t.clone(), now)).await?;
    let mut said = Vec::new();
    match tenant.active.as_deref() {
        None => said.push(reply(language, "The pump is free.".into(), "পাম্প খালি।".into())),
        Some(run) => {
            let name = app.name(run.user_id).await?;
            said.push(match run.status {
                EntryStatus::Hold => {
                    let why = hold_reason(run.hold_reason, language);
                    naming(
                        language,
                        format!("{name}'s run is on hold: {why}."),
                        format!("{name}-এর পাম্প থেমে আছে: {why}।"),
                        &name,
                    )
                }
                _ => {
                    let m = tenant.remaining_seconds(now).unwrap_or(0).max(0) / 60;
                    naming(
                        language,
                        format!("{name} is pumping: {m} min left."),
                        format!("{name} পাম্প চালাচ্ছেন: {m} মিনিট বাকি।"),
                        &name,
                    )
                }
            });
            let number = short_number(run.id.0.as_u128());
            said.push(reply(language, format!("To stop it: STOP {number:04}."), format!("বন্ধ করতে: বন্ধ {number:04}।")));
        }
    }
    if !tenant.waiting.is_empty() {
        let n = tenant.waiting.len();
        said.push(reply(language, format!("{n} in line."), format!("সারিতে {n} জন।")));
    }
    // The requests to decide, each with its number to answer it by (a few: one SMS or two).
    let query = RequestQuery { admin, user: None, status: Some(RequestStatus::Pending) };
    let requests = app.store.minute_requests(&query).await?;
    let names = app.names(requests.iter().take(REQUESTS_TOLD).map(|r| r.user_id).collect()).await?;
    for request in requests.iter().take(REQUESTS_TOLD) {
        let (name, m, n) = (
            names.get(&request.user_id).cloned().unwrap_or_default(),
            request.minutes,
            short_number(request.id.0.as_u128()),
        );
        said.push(naming(
            language,
            format!("{name} asks for {m} min: OK {n:04} or NO {n:04}."),
            format!("{name} {m} মিনিট চান: হ্যাঁ {n:04} বা না {n:04}।"),
            &name,
        ));
    }
    if let Some(more) = requests.len().checked_sub(REQUESTS_TOLD).filter(|more| *more > 0) {
        said.push(reply(language, format!("{more} more requests in the app."), format!("আরও {more}টি অনুরোধ অ্যাপে।")));
    }
    let device = &tenant.device;
    said.push(match device.last_poll_at {
        None => reply(language, "No device yet.".into(), "এখনো কোনো যন্ত্র নেই।".into()),
        Some(_) if device.online_at(now) => reply(language, "Device connected.".into(), "যন্ত্র সংযুক্ত।".into()),
        Some(last) => {
            let m = (now - last).max(0) / 60_000;
            reply(language, format!("Device not heard for {m} min."), format!("যন্ত্রের সাড়া নেই {m} মিনিট।"))
        }
    });
    Ok(said.join(" "))
}

/// Stops the active run for its owner's `STOP {number}`, when the number is that run's: the run
/// the owner read of in STATUS, and no other (the owner's Stop in the app sends the run it shows
/// for the same reason).
async fn stop_for_owner(app: &AppState, admin: AdminId, language: Language, number: u32) -> Result<String, ApiError> {
    let ended_already = || {
        reply(
            language,
            "That run had ended already: nothing was stopped.".into(),
            "ওই পাম্প চালানো আগেই শেষ হয়েছে: কিছু বন্ধ হয়নি।".into(),
        )
    };
    let active = app.runtime.read(admin, |t, _| t.active.as_ref().map(|e| e.id)).await?;
    let Some(entry) = active.filter(|id| short_number(id.0.as_u128()) == number) else { return Ok(ended_already()) };
    let audit = audit_entry(app.now(), Some(admin), admin.0, "motor.stop", &admin, String::new());
    let (outcome, ()) = app.runtime.apply(admin, Event::AdminStop { entry }, Extras::audit(audit), |_, _| ()).await?;
    match outcome {
        Ok(Reply::Ended(run)) => {
            let name = app.name(run.user_id).await?;
            let m = run.charged_seconds.unwrap_or(0).max(0) / 60;
            Ok(naming(
                language,
                format!("Stopped {name}'s run: {m} min used."),
                format!("{name}-এর পাম্প বন্ধ হয়েছে: {m} মিনিট খরচ।"),
                &name,
            ))
        }
        Ok(_) | Err(Refusal::AlreadyEnded | Refusal::NothingToStop) => Ok(ended_already()),
        Err(refusal) => Err(refusal.into()),
    }
}

/// The most requests STATUS names, each with its number (the rest are counted).
const REQUESTS_TOLD: usize = 3;

/// Decides the waiting request its owner's `OK {number}` or `NO {number}` names (no reason: the
/// app and the pages give one), as the app's buttons do.
async fn decide_for_owner(
    app: &AppState,
    admin: AdminId,
    language: Language,
    answer: Answer,
    number: u32,
) -> Result<String, ApiError> {
    let query = RequestQuery { admin, user: None, status: Some(RequestStatus::Pending) };
    let requests = app.store.minute_requests(&query).await?;
    let none_waits = || {
        reply(
            language,
            "No request waits with that number: send STATUS for their numbers.".into(),
            "ওই নম্বরে কোনো অনুরোধ অপেক্ষায় নেই: নম্বর জানতে অবস্থা লিখুন।".into(),
        )
    };
    let Some(request) = requests.iter().find(|r| short_number(r.id.0.as_u128()) == number) else {
        return Ok(none_waits());
    };
    let decided = match answer {
        Answer::Approve => super::admin::approve(app, admin.0, request).await,
        Answer::Reject(reason) => super::admin::reject(app, admin.0, request, reason).await,
    };
    match decided {
        Ok(_) => {
            let name = app.name(request.user_id).await?;
            let m = request.minutes;
            let (en, bn) = match answer {
                Answer::Approve => (format!("Approved {name}'s {m} min."), format!("{name}-এর {m} মিনিট মঞ্জুর হয়েছে।")),
                Answer::Reject(None) => (
                    format!("Rejected {name}'s request for {m} min."),
                    format!("{name}-এর {m} মিনিটের অনুরোধ বাতিল হয়েছে।"),
                ),
                Answer::Reject(Some(reason)) => (
                    format!("Rejected {name}'s request for {m} min: {}.", reject_reason(reason, Language::English)),
                    format!("{name}-এর {m} মিনিটের অনুরোধ বাতিল হয়েছে: {}।", reject_reason(reason, Language::Bangla)),
                ),
            };
            Ok(naming(language, en, bn, &name))
        }
        // Decided meanwhile, from the app or another text.
        Err(err) if err.code == "ALREADY_DECIDED" => Ok(none_waits()),
        Err(err) => Err(err),
    }
}

/// What a phone of `role` may send, in `language`: a farmer's help or a pump owner's (none for
/// the master's).
pub(crate) fn help(role: Role, language: Language) -> Option<&'static str> {
    let (english, bangla) = match role {
        Role::User => HELP,
        Role::Admin => OWNER_HELP,
        Role::Master => return None,
    };
    Some(match language {
        Language::English => english,
        Language::Bangla => bangla,
    })
}

/// The help a pump owner's phone gets, in English and in Bangla.
const OWNER_HELP: (&str, &str) = (
    "Send STATUS for the pump at a glance, then STOP and a run's number, or OK or NO and a request's.",
    "অবস্থা লিখুন; তারপর বন্ধ, হ্যাঁ বা না ও অবস্থার দেওয়া নম্বর।",
);

/// The help, in English and in Bangla: what a farmer may send.
const HELP: (&str, &str) = (
    "Send START (or START 30 for 30 min), STOP, BAL, or REQ 60 to ask for 60 min.",
    "চালু (চালু ৩০: ৩০ মিনিট), বন্ধ, ব্যালেন্স বা চাই ৬০ (মিনিট চাইতে)।",
);

#[cfg(test)]
mod tests {
    use pumppilot_engine::RejectReason;

    use super::{
        Answer::{Approve, Reject},
        Command::{self, *},
    };

    #[test]
    fn a_text_is_read_as_a_feature_phone_writes_it() {
        for (text, command) in [
            ("START", Start(None)),
            ("start please", Start(None)),
            ("START 30", Start(Some(30))),
            ("Start 30.", Start(Some(30))),
            ("START30", Start(Some(30))),
            ("START 45min", Start(Some(45))),
            ("start 45 MIN", Start(Some(45))),
            ("START 2 hours", Start(Some(120))),
            ("start 2h", Start(Some(120))),
            ("START 1440", Start(Some(1440))),
            ("ON 15", Start(Some(15))),
            ("চালু ৩০", Start(Some(30))),
            ("চালু৩০", Start(Some(30))),
            ("চালু ২ ঘণ্টা", Start(Some(120))),
            ("চালু ৪৫ মিনিট।", Start(Some(45))),
            ("chalu 20", Start(Some(20))),
            // What cannot be a run's minutes starts nothing: it is answered with what can.
            ("START 0", StartMisread),
            ("START 1441", StartMisread),
            ("START 25 hours", StartMisread),
            ("START -5", StartMisread),
            ("START 1.5", StartMisread),
            ("START 30x", StartMisread),
            ("START 99999999999", StartMisread),
            ("START 4294967295 hours", StartMisread),
            // A request for minutes names them; the owner's most is checked when it is made.
            ("REQ 60", Ask(Some(60))),
            ("req 2 hours", Ask(Some(120))),
            ("চাই ৬০", Ask(Some(60))),
            ("অনুরোধ ৯০ মিনিট", Ask(Some(90))),
            ("REQ 5000", Ask(Some(5000))),
            ("REQ", Ask(None)),
            ("REQ 1.5", Ask(None)),
            // A STOP may name a run (an owner's phone stops the run STATUS named).
            ("STOP", Stop(None)),
            ("STOP 4821", Stop(Some(4821))),
            ("বন্ধ ০০৪২", Stop(Some(42))),
            ("stop 48.21", Stop(None)),
            // An owner decides a request by its number.
            ("OK 3817", Decide { answer: Approve, number: Some(3817) }),
            ("হ্যাঁ ৩৮১৭", Decide { answer: Approve, number: Some(3817) }),
            ("no 3817", Decide { answer: Reject(None), number: Some(3817) }),
            ("NO 3817 unpaid.", Decide { answer: Reject(Some(RejectReason::NotPaid)), number: Some(3817) }),
            ("না ৩৮১৭ কম", Decide { answer: Reject(Some(RejectReason::TooMany)), number: Some(3817) }),
            ("NO 3817 CLOSED", Decide { answer: Reject(Some(RejectReason::PumpClosed)), number: Some(3817) }),
            ("no 3817 amount", Decide { answer: Reject(Some(RejectReason::WrongAmount)), number: Some(3817) }),
            ("NO 3817 sorry", Decide { answer: Reject(None), number: Some(3817) }),
            ("না", Decide { answer: Reject(None), number: None }),
            // BAL and STATUS read no number.
            ("BAL", Balance),
            ("status?", Status),
            ("অবস্থা", Status),
            ("30", Help),
            ("", Help),
        ] {
            assert_eq!(Command::of(text), command, "{text:?}");
        }
    }

    /// The help is one SMS in either language: each part is paid for.
    #[test]
    fn the_help_is_one_sms() {
        for help in [super::HELP.0, super::HELP.1, super::OWNER_HELP.0, super::OWNER_HELP.1] {
            assert_eq!(pumppilot_alerts::parts(help).parts, 1, "{help}");
        }
    }
}
