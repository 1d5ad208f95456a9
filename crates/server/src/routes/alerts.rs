//! Alerts: the caller's notifications (the bell) and how they want to hear.

use std::collections::{BTreeMap, BTreeSet};

use axum::{Json, extract::State};
use pumppilot_alerts::{Language, text::ascii_digits};
use pumppilot_engine::{Facts, Notice, NoticeKind, Timestamp, UserId};
use pumppilot_store::{
    Account, AlertProfile, Channel, NotificationId, PendingPhone, QuietHours, SessionKind, StoreError, is_e164,
};
use rand::Rng;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    auth::Caller,
    clock::rfc3339,
    error::{ApiError, ApiJson, ApiPath, ApiQuery, OptionalJson},
    routes::{
        openapi::{Body, Invalid, Refused, SignedIn},
        sms::help,
    },
    views::{AlertProfileView, FarmerPhoneView, MutedView, NotificationView, NotificationsView, QuietHoursView},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(notifications))
        .routes(routes!(mark_read))
        .routes(routes!(profile, set_profile))
        .routes(routes!(register_push_token, forget_push_token))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Page {
    /// At most this many (1 to 200, default 50).
    limit: Option<usize>,
    /// The language to write them in (`en` or `bn`), as a screen in that language shows them;
    /// by default the caller's language of messages (their SMS and push).
    language: Option<String>,
}

/// The caller's profile, or the empty one.
async fn profile_of(app: &AppState, caller: &Caller) -> Result<AlertProfile, ApiError> {
    Ok(app.store.alert_profile(caller.id()).await?.unwrap_or_else(|| AlertProfile::empty(caller.id())))
}

/// The caller's notifications, newest first, in the language asked for or else their language of
/// messages, with the unread count.
#[utoipa::path(get, path = "/api/notifications", tag = "alerts", params(Page), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's notifications", body = NotificationsView), SignedIn, Invalid))]
async fn notifications(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<NotificationsView>, ApiError> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit: from 1 to 200"));
    }
    let language = match page.language.as_deref() {
        Some(code @ ("en" | "bn")) => Language::from_code(code),
        Some(_) => return Err(ApiError::validation("language: en or bn")),
        None => Language::from_code(&profile_of(&app, &caller).await?.language),
    };
    // The count first: a notice that lands between the two reads is in the list, never counted
    // without being shown.
    let unread = app.store.unread_notifications(caller.id()).await?;
    let list = app.store.notifications(caller.id(), limit).await?;
    let notifications = list.iter().map(|n| NotificationView::new(n, language)).collect();
    Ok(Json(NotificationsView { unread, notifications }))
}

/// Which notifications to mark read.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadBody {
    /// These (the caller's own; others are ignored); all of the caller's when absent.
    #[schema(max_items = 200)]
    ids: Option<Vec<String>>,
}

/// Marks the caller's notifications read: all, or the `ids` given. Answers the unread count after.
#[utoipa::path(post, path = "/api/notifications/read", tag = "alerts", security(("bearer" = []), ("sessionCookie" = [])),
    request_body(content = Option<ReadBody>, description = "optional: without `ids`, all"),
    responses((status = 200, description = "The caller's notifications after", body = NotificationsView), SignedIn, Body))]
async fn mark_read(
    State(app): State<AppState>,
    caller: Caller,
    OptionalJson(body): OptionalJson<ReadBody>,
) -> Result<Json<NotificationsView>, ApiError> {
    let ids = match body.ids {
        None => None,
        Some(ids) if ids.len() > 200 => return Err(ApiError::validation("ids: at most 200")),
        Some(ids) => Some(
            ids.iter()
                .map(|id| {
                    id.parse::<NotificationId>().map_err(|_| ApiError::validation(format!("ids: `{id}` is not an id")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    app.store.mark_notifications_read(caller.id(), ids.as_deref()).await?;
    notifications(State(app), caller, ApiQuery(Page { limit: None, language: None })).await
}

/// The number waiting, unless it was dropped.
fn waiting(profile: &AlertProfile) -> Option<&PendingPhone> {
    profile.pending_phone.as_ref().filter(|p| !p.dropped())
}

/// The number dropped for too many wrong codes, to say why it is gone.
fn dropped(profile: &AlertProfile) -> Option<String> {
    profile.pending_phone.as_ref().filter(|p| p.dropped()).map(|p| p.phone.clone())
}

fn profile_view(app: &AppState, profile: &AlertProfile) -> AlertProfileView {
    let hhmm = |minute: u16| format!("{:02}:{:02}", minute / 60, minute % 60);
    let pending = waiting(profile);
    AlertProfileView {
        phone: profile.phone.clone(),
        pending_phone: pending.map(|p| p.phone.clone()),
        phone_code: code_to_send(app, profile),
        pending_since: pending.map(|p| rfc3339(p.since)),
        dropped_phone: dropped(profile),
        sms_number: app.settings.sms_number.clone(),
        push_tokens: profile.push_tokens.clone(),
        language: profile.language.clone(),
        muted: profile
            .muted
            .iter()
            .map(|(kind, channel)| MutedView { kind: kind.as_str().into(), channel: channel.as_str().into() })
            .collect(),
        quiet_hours: profile.quiet_hours.map(|q| QuietHoursView {
            from: hhmm(q.from_minute),
            to: hhmm(q.to_minute),
            utc_offset_minutes: q.utc_offset_minutes,
        }),
    }
}

fn minute_of(text: &str, field: &str) -> Result<u16, ApiError> {
    let bad = || ApiError::validation(format!("quietHours.{field}: HH:MM from 00:00 to 23:59"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The profile a view asks for, checked.
fn profile_from(view: AlertProfileView, caller: &Caller) -> Result<AlertProfile, ApiError> {
    if let Some(phone) = &view.phone
        && !is_e164(phone)
    {
        return Err(ApiError::validation("phone: E.164, like +8801711000000"));
    }
    if view.push_tokens.len() > MAX_PUSH_TOKENS {
        return Err(ApiError::validation(format!("pushTokens: at most {MAX_PUSH_TOKENS}")));
    }
    if let Some(token) = view.push_tokens.iter().find(|t| !is_push_token(t)) {
        return Err(ApiError::validation(format!("pushTokens: `{token}` is not an Expo push token")));
    }
    if !matches!(view.language.as_str(), "en" | "bn") {
        return Err(ApiError::validation("language: en or bn"));
    }
    let mut muted = BTreeSet::new();
    for m in &view.muted {
        let kind = NoticeKind::parse(&m.kind)
            .ok_or_else(|| ApiError::validation(format!("muted.kind: `{}` is no kind", m.kind)))?;
        let channel = Channel::parse(&m.channel).ok_or_else(|| ApiError::validation("muted.channel: PUSH or SMS"))?;
        muted.insert((kind, channel));
    }
    let quiet_hours = match &view.quiet_hours {
        None => None,
        Some(q) => {
            if !(-720..=840).contains(&q.utc_offset_minutes) {
                return Err(ApiError::validation("quietHours.utcOffsetMinutes: from -720 to 840"));
            }
            Some(QuietHours {
                from_minute: minute_of(&q.from, "from")?,
                to_minute: minute_of(&q.to, "to")?,
                utc_offset_minutes: q.utc_offset_minutes,
            })
        }
    };
    // Each token once, in the order first sent.
    let mut tokens = view.push_tokens;
    let mut seen = BTreeSet::new();
    tokens.retain(|token| seen.insert(token.clone()));
    Ok(AlertProfile {
        user_id: caller.id(),
        phone: view.phone,
        pending_phone: None,
        push_tokens: tokens,
        push_sessions: BTreeMap::new(),
        language: view.language,
        muted,
        quiet_hours,
    })
}

/// An Expo push token as the app registers it: `ExponentPushToken[…]` (or `ExpoPushToken[…]`), at
/// most 200 visible characters.
/// The path's `token`, refused (400 `VALIDATION`) unless it is an Expo push token.
fn phones_token(token: String) -> Result<String, ApiError> {
    if is_push_token(&token) {
        Ok(token)
    } else {
        Err(ApiError::validation(format!("token: `{token}` is not an Expo push token")))
    }
}

fn is_push_token(t: &str) -> bool {
    (t.starts_with("ExponentPushToken[") || t.starts_with("ExpoPushToken["))
        && t.ends_with(']')
        && t.len() <= 200
        && t.bytes().all(|b| b.is_ascii_graphic())
}

/// How the caller wants to hear (the empty profile until they set one).
#[utoipa::path(get, path = "/api/alerts/profile", tag = "alerts", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's alert profile", body = AlertProfileView), SignedIn))]
async fn profile(State(app): State<AppState>, caller: Caller) -> Result<Json<AlertProfileView>, ApiError> {
    Ok(Json(profile_view(&app, &profile_of(&app, &caller).await?)))
}

/// Sets how the caller wants to hear: language, muted kinds, quiet hours and the push tokens to
/// keep, at once. A save takes tokens off (those it leaves out, but for this phone's own) and never
/// adds one: a phone registers its own token with `PUT /api/alerts/push-tokens/{token}`. A new
/// phone number waits, pending, until it is confirmed from that phone (no one is told whether
/// another account has it: only its holder learns that, by SMS, on confirming). The save lands on
/// the profile it was made from: one changed meanwhile (a number confirmed, a phone's token
/// registered) is read again and the save made afresh; changed at every try, 409 `CONFLICT`.
#[utoipa::path(put, path = "/api/alerts/profile", tag = "alerts", security(("bearer" = []), ("sessionCookie" = [])),
    request_body = AlertProfileView,
    responses((status = 200, description = "The profile as stored", body = AlertProfileView), SignedIn, Body, Refused))]
async fn set_profile(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(view): ApiJson<AlertProfileView>,
) -> Result<Json<AlertProfileView>, ApiError> {
    let wanted = profile_from(view, &caller)?;
    let make = |current: AlertProfile| {
        let mut profile = AlertProfile {
            phone: current.phone.clone(),
            pending_phone: current.pending_phone.clone(),
            ..wanted.clone()
        };
        profile.push_tokens = tokens_kept(&wanted.push_tokens, &current, &caller);
        profile.push_sessions = current.push_sessions;
        ask_for_phone(&mut profile, wanted.phone.clone(), app.now());
        profile
    };
    let write = |profile: AlertProfile, read: Option<AlertProfile>| {
        let store = &app.store;
        async move { store.set_alert_profile(&profile, read.as_ref()).await }
    };
    Ok(Json(profile_view(&app, &save_afresh(&app, caller.id(), make, write).await?)))
}

/// Saves a person's alert profile made from the one stored: `make` builds it from the profile
/// read (the empty one when there is none), `write` writes it with that read, and a write that
/// finds the profile changed since (`VersionConflict`: a number confirmed, a phone's token
/// registered) is made afresh from a new read, [`SAVE_TRIES`] times at most, then 409. Answers the
/// profile as stored after (the store keeps a wrong code counted meanwhile).
pub(crate) async fn save_afresh<F>(
    app: &AppState,
    user: UserId,
    make: impl Fn(AlertProfile) -> AlertProfile,
    write: impl Fn(AlertProfile, Option<AlertProfile>) -> F,
) -> Result<AlertProfile, ApiError>
where
    F: Future<Output = Result<(), StoreError>>,
{
    for _ in 0..SAVE_TRIES {
        let read = app.store.alert_profile(user).await?;
        let profile = make(read.clone().unwrap_or_else(|| AlertProfile::empty(user)));
        match write(profile, read).await {
            // Changed since it was read: read again, and make the save afresh.
            Err(StoreError::VersionConflict) => continue,
            result => result?,
        }
        return Ok(app.store.alert_profile(user).await?.unwrap_or_else(|| AlertProfile::empty(user)));
    }
    Err(StoreError::VersionConflict.into())
}

/// How many times a profile's save (the person's own, or their owner's enrolment of their phone)
/// is made from a fresh read before it gives up: each try conflicts only with a write that landed
/// in the moment between its read and its write.
const SAVE_TRIES: usize = 3;

/// The push tokens a profile's save keeps: those of `sent` that the stored profile (`current`)
/// lists, and the caller's own phone's tokens even when `sent` leaves them out. A save never adds a
/// token: a token joins a profile only through its phone's own session
/// ([`register_push_token`]). So a list read before another phone signed out (its token gone
/// with its session), saved from this phone or a browser, cannot bring that token back, and a
/// screen read before this phone registered cannot take its token off: the phone takes it off
/// itself (`DELETE /api/alerts/push-tokens/{token}`), or its session's end does.
fn tokens_kept(sent: &[String], current: &AlertProfile, caller: &Caller) -> Vec<String> {
    let own = |token: &String| current.session_of(token) == Some(caller.session);
    current.push_tokens.iter().filter(|token| sent.contains(token) || own(token)).cloned().collect()
}

/// How many push tokens a profile lists at most (phones of one person).
const MAX_PUSH_TOKENS: usize = 10;

/// Registers this phone's push token with the caller's app session, the app's call after every
/// sign-in and whenever Expo gives the phone a new token: the token joins the caller's profile (the
/// profile is made if they had none), last, the oldest leaving past ten, and lives as long as this
/// session whatever session or account had it before. It moves from another session of the
/// caller's (the phone signed in again after its session lapsed, the app reinstalled or its
/// storage cleared) and from another account (the phone passed on) in the same write, which
/// writes the push tokens alone: a number confirmed or a wrong code counted meanwhile stays. The
/// same call again changes nothing. A web session is refused (403 `FORBIDDEN`): a browser has no
/// push token to register; a session that ended meanwhile gets no token (401 `UNAUTHENTICATED`,
/// as its next call would). Answers the caller's profile after.
#[utoipa::path(put, path = "/api/alerts/push-tokens/{token}", tag = "alerts",
    params(("token" = String, Path, description = "The phone's Expo push token, `ExponentPushToken[…]`, percent-encoded")),
    security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's profile, with that token", body = AlertProfileView),
        SignedIn, Invalid))]
async fn register_push_token(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<AlertProfileView>, ApiError> {
    let token = phones_token(token)?;
    if caller.kind != SessionKind::Mobile {
        return Err(ApiError::forbidden("only the app registers a push token: a browser session has none"));
    }
    match app.store.register_push_token(caller.id(), &token, caller.session, MAX_PUSH_TOKENS, app.now()).await {
        // The session ended (signed out elsewhere, or its account's password changed, or it
        // expired) meanwhile.
        Err(StoreError::NotFound) => return Err(ApiError::unauthenticated()),
        result => result?,
    }
    Ok(Json(profile_view(&app, &profile_of(&app, &caller).await?)))
}

/// Stops push notifications to one phone of the caller's: its Expo push token leaves their
/// profile (the app signing out on that phone). Only the caller's own profile is touched: a token
/// another account has (the phone passed on) stays theirs, and one the caller does not have
/// changes nothing. Answers the caller's profile after.
#[utoipa::path(delete, path = "/api/alerts/push-tokens/{token}", tag = "alerts",
    params(("token" = String, Path, description = "The phone's Expo push token, `ExponentPushToken[…]`, percent-encoded")),
    security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's profile, without that token", body = AlertProfileView),
        SignedIn, Invalid))]
async fn forget_push_token(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<AlertProfileView>, ApiError> {
    let token = phones_token(token)?;
    app.store.remove_push_token(caller.id(), &token).await?;
    Ok(Json(profile_view(&app, &profile_of(&app, &caller).await?)))
}

/// The code to text from the pending number, while it works.
fn code_to_send(app: &AppState, profile: &AlertProfile) -> Option<String> {
    profile.pending_phone.as_ref().filter(|p| p.open_at(app.now())).map(|p| p.code.clone())
}

/// Six random digits.
fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000))
}

/// Asks for `wanted` as the person's phone. None clears the phone at once (and any number
/// waiting): taking alerts away from a phone needs no one's word. The phone they have, or the
/// number waiting with a code that still works, changes nothing (a screen that sends the whole
/// profile back keeps what waits). Any other number waits, with a new code, for its holder to
/// text the code from it: until then the confirmed phone stays, and the new one gets nothing and
/// controls nothing — a typo cannot send a farmer's alerts to a stranger, nor hand a stranger the
/// farmer's pump. A number dropped for too many wrong codes, set again, waits with a new code.
pub(crate) fn ask_for_phone(profile: &mut AlertProfile, wanted: Option<String>, now: Timestamp) {
    match wanted {
        None => {
            profile.phone = None;
            profile.pending_phone = None;
        }
        Some(phone) if profile.phone.as_ref() == Some(&phone) => {}
        Some(phone) if profile.pending_phone.as_ref().is_some_and(|p| p.phone == phone && p.open_at(now)) => {}
        Some(phone) => profile.pending_phone = Some(PendingPhone::new(phone, new_code(), now)),
    }
}

/// A farmer's number as their owner sees it.
pub(crate) fn farmer_phone_view(app: &AppState, profile: &AlertProfile) -> FarmerPhoneView {
    let pending = waiting(profile);
    FarmerPhoneView {
        phone: profile.phone.clone(),
        pending_phone: pending.map(|p| p.phone.clone()),
        phone_code: code_to_send(app, profile),
        pending_since: pending.map(|p| rfc3339(p.since)),
        dropped_phone: dropped(profile),
        language: profile.language.clone(),
        sms_number: app.settings.sms_number.clone(),
    }
}

/// The six digits of a code in a text, however the farmer wrote them: `482106`, `4821 06`,
/// `code 482106`, `৪৮২১০৬`. None when the text holds more or fewer digits.
fn code_in(text: &str) -> Option<String> {
    let digits: String = ascii_digits(text).chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 6).then_some(digits)
}

/// What a text holding a code did: `CONFIRM` (a number confirmed, or found in use) or
/// `WRONG_CODE`, and the answer sent back by SMS (empty when none is).
pub(crate) struct CodeAnswer {
    pub command: &'static str,
    pub reply: String,
}

/// Confirms a number from its phone: a text from `from` holding the code of an account waiting
/// for that number (the code unexpired) makes it that account's phone. The answer goes back by
/// SMS through the outbox: to the account, now reached on this phone; or, when another account
/// has the number already, to that account — this same phone — saying so, and nothing changes:
/// only the phone's holder learns that the number is in use. A code that is no waiting account's
/// is a wrong code ([`wrong_code`]). None: no account waits for this number, or the text holds
/// no code (the text is then read as any other).
pub(crate) async fn confirm_from(app: &AppState, from: &str, text: &str) -> Result<Option<CodeAnswer>, ApiError> {
    let Some(code) = code_in(text) else { return Ok(None) };
    let now = app.now();
    let waiting: Vec<(AlertProfile, PendingPhone)> = app
        .store
        .alert_profiles_pending_phone(from)
        .await?
        .into_iter()
        .filter_map(|profile| {
            let pending = profile.pending_phone.clone().filter(|p| p.open_at(now))?;
            Some((profile, pending))
        })
        .collect();
    if waiting.is_empty() {
        return Ok(None);
    }
    let Some((profile, pending)) = waiting.iter().find(|(_, pending)| pending.code == code) else {
        return wrong_code(app, from, &waiting).await.map(Some);
    };
    let confirmed = |reply: &str| Ok(Some(CodeAnswer { command: "CONFIRM", reply: reply.to_owned() }));
    match app.store.confirm_phone(profile.user_id, pending).await {
        Ok(()) => {
            let account = app.store.account(profile.user_id).await?;
            let language = Language::from_code(&profile.language);
            let said = match language {
                Language::English => "Number confirmed: PumpPilot messages now come to this phone.",
                Language::Bangla => "নম্বর নিশ্চিত হয়েছে: পাম্পপাইলটের বার্তা এখন এই ফোনে আসবে।",
            };
            // A farmer's or a pump owner's phone is told what it may send.
            let text = match account.as_ref().and_then(|a| help(a.role, language)) {
                Some(help) => format!("{said} {help}"),
                None => said.to_owned(),
            };
            answer_by_sms(app, account.as_ref(), &text, None).await;
            confirmed(&text)
        }
        Err(StoreError::PhoneTaken) => {
            let Some(holder) = app.store.alert_profile_by_phone(from).await? else { return Ok(None) };
            let text = match Language::from_code(&holder.language) {
                Language::English => "This number is in use by another account: it was not added to a new one.",
                Language::Bangla => "এই নম্বর অন্য একটি অ্যাকাউন্টে আছে: নতুন কোনোটিতে যোগ করা হয়নি।",
            };
            answer_by_sms(app, app.store.account(holder.user_id).await?.as_ref(), text, None).await;
            confirmed(text)
        }
        // Replaced, confirmed or dropped meanwhile (another server took a text of this phone).
        Err(StoreError::VersionConflict) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// A code that is no waiting account's, from the number they wait for: counted against each of
/// them ([`PendingPhone::MAX_WRONG_CODES`] drop the number: it confirms nothing more, and the
/// screen that showed the code says why it is gone). Guessing a code is a few tries, not a
/// million. The text that drops a number is answered by SMS to this phone, once (the account's
/// bell keeps the answer); the others are answered with nothing, as a text from a number that is
/// no one's is.
async fn wrong_code(
    app: &AppState,
    from: &str,
    waiting: &[(AlertProfile, PendingPhone)],
) -> Result<CodeAnswer, ApiError> {
    let mut dropped = None;
    for (profile, pending) in waiting {
        match app.store.count_wrong_code(profile.user_id, pending).await {
            // Of texts counted at once (on several servers), only one brings the count here.
            Ok(PendingPhone::MAX_WRONG_CODES) => dropped = dropped.or(Some(profile)),
            // Replaced or confirmed meanwhile: nothing to count.
            Ok(_) | Err(StoreError::VersionConflict) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let Some(profile) = dropped else { return Ok(CodeAnswer { command: "WRONG_CODE", reply: String::new() }) };
    let text = match Language::from_code(&profile.language) {
        Language::English => "Too many wrong codes: this number was not added. Set it again for a new code.",
        Language::Bangla => "অনেকবার ভুল কোড: এই নম্বর যোগ করা হয়নি। নতুন কোডের জন্য নম্বরটি আবার দিন।",
    };
    answer_by_sms(app, app.store.account(profile.user_id).await?.as_ref(), text, Some(from)).await;
    Ok(CodeAnswer { command: "WRONG_CODE", reply: text.to_owned() })
}

/// An answer to a text, by SMS through the outbox (and in the bell) as every answer to a text
/// goes, to the phone of `account`, or to `to_phone` when the text came from a number that is not
/// theirs yet.
async fn answer_by_sms(app: &AppState, account: Option<&Account>, text: &str, to_phone: Option<&str>) {
    // The master belongs to no pump: there is no bell to keep the answer in.
    let Some((user, Some(admin))) = account.map(|a| (a.id, a.admin_id)) else { return };
    let facts = Facts { text: Some(text.to_owned()), to_phone: to_phone.map(str::to_owned), ..Facts::default() };
    let answer = Notice::new(user, admin, NoticeKind::SmsReply, app.now(), facts);
    // What the text did is done whatever happens here: a failure to write its answer is logged,
    // not answered with an error the gateway might retry.
    if let Err(err) = app.store.add_notices(&[answer]).await {
        tracing::warn!(%err, "could not write an SMS answer to the outbox");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pumppilot_engine::UserId;

    #[test]
    fn a_code_is_read_in_either_script_with_or_without_words() {
        for text in ["482106", "4821 06", "code: 482-106", "কোড ৪৮২১০৬", "৪৮২১ 06"] {
            assert_eq!(code_in(text).as_deref(), Some("482106"), "{text}");
        }
        for text in ["START", "48210", "4821060", "482106 and 7"] {
            assert_eq!(code_in(text), None, "{text}");
        }
    }

    #[test]
    fn a_new_number_waits_and_the_phone_stays_until_it_is_confirmed() {
        let now = Timestamp(1_764_230_400_000);
        let mut profile = AlertProfile { phone: Some("+8801711000001".into()), ..AlertProfile::empty(UserId::new()) };
        ask_for_phone(&mut profile, Some("+8801711000002".into()), now);
        assert_eq!(profile.phone.as_deref(), Some("+8801711000001"));
        let pending = profile.pending_phone.clone().unwrap();
        assert_eq!((pending.phone.as_str(), pending.since, pending.code.len()), ("+8801711000002", now, 6));
        ask_for_phone(&mut profile, Some("+8801711000001".into()), now + 1);
        ask_for_phone(&mut profile, Some("+8801711000002".into()), now + 1);
        assert_eq!(profile.pending_phone.as_ref(), Some(&pending), "the same code while it works");
        ask_for_phone(&mut profile, Some("+8801711000002".into()), now + PendingPhone::VALID_MS);
        assert_eq!(profile.pending_phone.as_ref().unwrap().since, now + PendingPhone::VALID_MS, "a new code");
        ask_for_phone(&mut profile, None, now);
        assert_eq!((profile.phone, profile.pending_phone), (None, None), "cleared at once");
    }

    #[test]
    fn a_number_dropped_for_wrong_codes_set_again_waits_with_a_new_code() {
        let now = Timestamp(1_764_230_400_000);
        let number = || Some("+8801711000002".to_owned());
        let mut profile = AlertProfile::empty(UserId::new());
        ask_for_phone(&mut profile, number(), now);
        let counted = |profile: &mut AlertProfile, n| profile.pending_phone.as_mut().unwrap().wrong_codes = n;
        counted(&mut profile, PendingPhone::MAX_WRONG_CODES - 1);
        let waiting = profile.pending_phone.clone();
        ask_for_phone(&mut profile, number(), now + 1);
        assert_eq!(profile.pending_phone, waiting, "kept, with its count, while it may be confirmed");
        counted(&mut profile, PendingPhone::MAX_WRONG_CODES);
        ask_for_phone(&mut profile, number(), now + 2);
        let again = profile.pending_phone.unwrap();
        assert_eq!((again.since, again.wrong_codes), (now + 2, 0), "a new code, no wrong one yet");
    }
}
