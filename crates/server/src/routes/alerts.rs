//! Alerts: the caller's notifications (the bell) and how they want to hear.

use std::collections::BTreeSet;

use axum::{Json, extract::State};
use pumppilot_alerts::Language;
use pumppilot_engine::NoticeKind;
use pumppilot_store::{AlertProfile, Channel, NotificationId, QuietHours, is_e164};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    auth::Caller,
    error::{ApiError, ApiJson, ApiQuery, OptionalJson},
    routes::openapi::{Body, Invalid, Refused, SignedIn},
    views::{AlertProfileView, MutedView, NotificationView, NotificationsView, QuietHoursView},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(notifications)).routes(routes!(mark_read)).routes(routes!(profile, set_profile))
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

fn profile_view(profile: &AlertProfile) -> AlertProfileView {
    let hhmm = |minute: u16| format!("{:02}:{:02}", minute / 60, minute % 60);
    AlertProfileView {
        phone: profile.phone.clone(),
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
    if view.push_tokens.len() > 10 {
        return Err(ApiError::validation("pushTokens: at most 10"));
    }
    let token_ok = |t: &str| {
        (t.starts_with("ExponentPushToken[") || t.starts_with("ExpoPushToken["))
            && t.ends_with(']')
            && t.len() <= 200
            && t.bytes().all(|b| b.is_ascii_graphic())
    };
    if let Some(token) = view.push_tokens.iter().find(|t| !token_ok(t)) {
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
    let mut tokens = view.push_tokens;
    tokens.dedup();
    Ok(AlertProfile {
        user_id: caller.id(),
        phone: view.phone,
        push_tokens: tokens,
        language: view.language,
        muted,
        quiet_hours,
    })
}

/// How the caller wants to hear (the empty profile until they set one).
#[utoipa::path(get, path = "/api/alerts/profile", tag = "alerts", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's alert profile", body = AlertProfileView), SignedIn))]
async fn profile(State(app): State<AppState>, caller: Caller) -> Result<Json<AlertProfileView>, ApiError> {
    Ok(Json(profile_view(&profile_of(&app, &caller).await?)))
}

/// Sets how the caller wants to hear: phone, push tokens, language, muted kinds, quiet hours.
#[utoipa::path(put, path = "/api/alerts/profile", tag = "alerts", security(("bearer" = []), ("sessionCookie" = [])),
    request_body = AlertProfileView,
    responses((status = 200, description = "The profile as stored", body = AlertProfileView), SignedIn, Body, Refused))]
async fn set_profile(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(view): ApiJson<AlertProfileView>,
) -> Result<Json<AlertProfileView>, ApiError> {
    let profile = profile_from(view, &caller)?;
    app.store.set_alert_profile(&profile).await?;
    Ok(Json(profile_view(&profile)))
}
