//! RFID cards at the pump: the admin binds a card to a user, and a tap at the device starts that
//! user's run (or queues them), or stops it when it is the active run.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use axum::{Json, extract::State, http::StatusCode, response::Response};
use pumppilot_engine::{AdminId, DeviceId, EntryId, EntryStatus, Event, Reply, Timestamp};
use pumppilot_protocol::{CardAction, CardTap};
use pumppilot_store::{Card, TapClaim};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{admin::tenant_user, audit_entry};
use crate::{
    app::{App, AppState},
    auth::{AdminScope, ensure_active},
    clock::rfc3339,
    error::{ApiError, ApiJson, ApiPath, parse_json},
    link::{Acted, DeviceLink},
    routes::openapi::{AdminIdParam, Body, Device, Refused, Scoped},
    runtime::Extras,
    views::EntryView,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bind_card))
        .routes(routes!(list_cards))
        .routes(routes!(unbind_card))
        .routes(routes!(tap))
}

/// A card's UID as stored: upper-case hex without separators, 4 to 10 bytes. Admins may type it
/// with `:`, `-` or spaces between the bytes, in either case.
pub fn card_uid(text: &str) -> Result<String, ApiError> {
    let uid: String = text.chars().filter(|c| !matches!(c, ':' | '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    let hex = uid.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && uid.len().is_multiple_of(2) && (8..=20).contains(&uid.len()) {
        Ok(uid)
    } else {
        Err(ApiError::validation("uid: the card's UID in hex, 4 to 10 bytes (for example 04A1B2C3)"))
    }
}

/// A card bound to a user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardView {
    pub uid: String,
    pub user_id: String,
    pub bound_at: String,
}

impl From<&Card> for CardView {
    fn from(card: &Card) -> Self {
        CardView { uid: card.uid.clone(), user_id: card.user_id.to_string(), bound_at: rfc3339(card.bound_at) }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindCardBody {
    /// The card's UID in hex (`04A1B2C3`, `04:a1:b2:c3`), 4 to 10 bytes.
    #[schema(min_length = 8, max_length = 29)]
    uid: String,
}

/// Binds a card to a user of this tenant (a card this tenant already has moves to them).
#[utoipa::path(post, path = "/api/admin/users/{id}/rfid", tag = "admin", params(("id" = String, Path), AdminIdParam),
    request_body = BindCardBody, security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The card, bound", body = CardView), Scoped, Body, Refused))]
async fn bind_card(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<BindCardBody>,
) -> Result<Json<CardView>, ApiError> {
    let user = tenant_user(&app, admin.scope, &id).await?;
    let card = Card { admin_id: admin.scope.admin(), uid: card_uid(&body.uid)?, user_id: user.id, bound_at: app.now() };
    let entry = audit_entry(app.now(), Some(card.admin_id), admin.caller.id(), "card.bind", &user.id, card.uid.clone());
    app.store.write_audited(&pumppilot_store::AuditedWrite::BindCard(card.clone()), &entry).await?;
    Ok(Json(CardView::from(&card)))
}

/// The tenant's cards.
#[utoipa::path(get, path = "/api/admin/cards", tag = "admin", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The tenant's cards", body = [CardView]), Scoped))]
async fn list_cards(State(app): State<AppState>, admin: AdminScope) -> Result<Json<Vec<CardView>>, ApiError> {
    Ok(Json(app.store.cards(admin.scope.admin()).await?.iter().map(CardView::from).collect()))
}

/// Unbinds a card (a lost card stops working at once).
#[utoipa::path(delete, path = "/api/admin/cards/{uid}", tag = "admin", params(("uid" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 204, description = "The card no longer works"), Scoped))]
async fn unbind_card(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(uid): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let uid = card_uid(&uid).map_err(|_| ApiError::not_found("card"))?;
    let entry =
        audit_entry(app.now(), Some(admin.scope.admin()), admin.caller.id(), "card.unbind", &uid, String::new());
    let unbind = pumppilot_store::AuditedWrite::UnbindCard { admin: admin.scope.admin(), uid: uid.clone() };
    app.store.write_audited(&unbind, &entry).await.map_err(|err| match err {
        pumppilot_store::StoreError::NotFound => ApiError::not_found("card"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a tap did: `{action, entry?, reason?}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TapView {
    /// `STARTED`, `QUEUED`, `STOPPED` or `DENIED`.
    #[schema(value_type = String)]
    pub action: CardAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryView>,
    /// Why a tap was denied, as an error code (`UNKNOWN_CARD`, `INSUFFICIENT_BALANCE`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl TapView {
    fn denied(reason: &'static str) -> Self {
        TapView { action: CardAction::Denied, entry: None, reason: Some(reason) }
    }
}

/// A card held to a device's reader (device key auth): starts the holder's run (or queues them;
/// a farmer already waiting keeps their place), or stops it when it is the active run. A tap is
/// acted on once: one that names its id (`tap`, the same in each retry of one tap) gets the first
/// answer again for the same id however late it comes (the last [`RecentTaps::IDS`] taps of each
/// device); one without (older firmware) gets the first answer of the same card at the same pump
/// within [`RecentTaps::WINDOW_MS`] (denials are not repeated then: they changed nothing, and the
/// next tap is decided afresh). A retry that comes while the first is still acted on waits for its
/// answer. A signed tap older than one of the device acted on here (a copy held back and delivered
/// later) is `DENIED` as `STALE_TAP` and changes nothing.
#[utoipa::path(post, path = "/api/esp32/rfid", tag = "device", security(("deviceKey" = [])),
    request_body(content = TapBody, description = "`{uid, tap?}`: the card's UID in hex, and the tap's id"),
    responses((status = 200, description = "What the tap did (a refusal is `DENIED` with its reason)", body = TapView),
        Device, Body, Refused))]
async fn tap(State(app): State<AppState>, link: DeviceLink) -> Response {
    let result = tap_once(&app, &link).await;
    link.answer(result.map(Json)).await
}

/// The body of `POST /api/esp32/rfid` (`pumppilot_protocol::CardTap`), for the API's schema.
#[derive(ToSchema)]
#[allow(dead_code, reason = "the schema of a body read as `CardTap`")]
pub struct TapBody {
    /// The card's UID in hex, 4 to 10 bytes.
    #[schema(min_length = 8, max_length = 29)]
    uid: String,
    /// The tap's id: the same in each retry of one tap, another for the next tap (older firmware
    /// sends none).
    tap: Option<u32>,
}

/// The tap's answer: repeated for the same tap, else acted on by this server alone.
async fn tap_once(app: &AppState, link: &DeviceLink) -> Result<serde_json::Value, ApiError> {
    let tap: CardTap = parse_json(&link.body)?;
    let uid = card_uid(tap.uid)?;
    let key = match tap.tap {
        Some(id) => TapKey::Id(link.device, id),
        None => TapKey::Card(link.admin, uid.clone()),
    };
    // One request here acts on a tap. A retry that comes meanwhile (the device sends a tap again
    // on a new connection when its kept one broke under the first) waits for the first's answer.
    let claim = loop {
        match app.taps.claim(&key, app.now()) {
            Turn::Act(claim) => break claim,
            Turn::Repeat(answer) => return Ok(json_of(&answer)),
            Turn::Wait(mut acting) => {
                // Its sender goes when the first is answered or given up: then claim again.
                let _ = acting.changed().await;
            }
        }
    };
    // A signed tap older than one of the device acted on here: a copy held back and delivered
    // after the tap that followed it. Given up unanswered: it changes nothing.
    if let Some(counter) = link.counter()
        && !app.counters.newest(link.device, Acted::Tap, counter)
    {
        tracing::debug!(device = %link.device, counter, "a card tap older than one acted on here; denied");
        drop(claim);
        return Ok(json_of(&TapView::denied("STALE_TAP")));
    }
    // Acted on to its answer even when this request is dropped meanwhile (its connection broke):
    // the retry then gets the answer instead of acting again.
    let (app, admin) = (Arc::clone(app), link.admin);
    tokio::spawn(async move { act_once(&app, admin, &uid, claim).await })
        .await
        .unwrap_or_else(|_| Err(ApiError::internal()))
}

/// Acts on a tap claimed here (on a store several servers share, claimed there too) and answers
/// the claim, or gives it up when the tap is denied (one without an id) or fails.
async fn act_once(app: &App, admin: AdminId, uid: &str, claim: Claimed) -> Result<serde_json::Value, ApiError> {
    // On a store several servers share, one of them acts on the tap; a retry that reached another
    // server gets the same answer. A tap with an id is claimed there by the device and its id, for
    // `RecentTaps::SHARED_ID_WINDOW_MS`.
    let (shared_key, window_ms) = claim.key.shared();
    let shared = app.runtime.is_shared();
    if shared {
        let started = app.now();
        // Whether another server's claim was seen unanswered: if it then lapses, that server may
        // have acted on the tap and failed to record its answer (a tap without an id is claimed
        // for 2 s only). Acting now could act on the same tap twice (its retry stopping the run
        // its first attempt started); the claim is given up and nothing is done.
        let mut seen_unanswered = false;
        loop {
            match app.store.claim_tap(admin, &shared_key, app.now(), window_ms).await? {
                TapClaim::Act if seen_unanswered => {
                    let _ = app.store.release_tap(admin, &shared_key).await;
                    return Err(ApiError::unavailable());
                }
                TapClaim::Act => break,
                TapClaim::Repeat(Some(answer)) => {
                    return serde_json::from_str(&answer).map_err(|_| ApiError::internal());
                }
                // The other server is still acting on it: its answer comes in a moment.
                TapClaim::Repeat(None) if app.now() - started < RecentTaps::WINDOW_MS => {
                    seen_unanswered = true;
                    app.settings.clock.sleep(std::time::Duration::from_millis(50)).await;
                }
                TapClaim::Repeat(None) => return Err(ApiError::unavailable()),
            }
        }
    }
    let answer = match act_on_tap(app, admin, uid).await {
        Ok(answer) => answer,
        Err(err) => {
            if shared {
                let _ = app.store.release_tap(admin, &shared_key).await;
            }
            return Err(err);
        }
    };
    let json = json_of(&answer);
    // A tap with an id is answered once, a denial too: a retry of it is the same tap.
    let given_up = answer.action == CardAction::Denied && matches!(claim.key, TapKey::Card(..));
    let named = matches!(claim.key, TapKey::Id(..));
    if given_up {
        drop(claim);
    } else {
        claim.answer(answer, app.now());
    }
    // The tap is acted on (a Start or a Stop committed, or a refusal that changed nothing): its
    // answer goes to the board even when the shared store fails to record it. Failed with the
    // act done, the board would show an error over a run that started, and the farmer's next tap
    // would stop it. A retry here gets the answer kept here. The store's claim stays as it was
    // until its window lapses: a retry at another server meanwhile waits for an answer that does
    // not come and is refused `UNAVAILABLE`, acting on nothing (also when it sees the claim lapse,
    // above); the next tap of a card whose
    // denial was not given up there waits out the claim's 2 s, then is decided afresh.
    if shared {
        let recorded = if given_up {
            app.store.release_tap(admin, &shared_key).await
        } else {
            app.store.answer_tap(admin, &shared_key, &json.to_string()).await
        };
        if let Err(err) = recorded {
            // A tap with an id is named by its device and id; a card's UID stays out of the log.
            let tap = if named { shared_key.as_str() } else { "a card tap without an id" };
            tracing::warn!(%err, %admin, tap, given_up, "a card tap answered without its record in the shared store");
        }
    }
    Ok(json)
}

fn json_of(answer: &TapView) -> serde_json::Value {
    serde_json::to_value(answer).unwrap_or_default()
}

async fn act_on_tap(app: &App, admin: AdminId, uid: &str) -> Result<TapView, ApiError> {
    let Some(card) = app.store.card(admin, uid).await? else {
        return Ok(TapView::denied("UNKNOWN_CARD"));
    };
    // The holder may act as they may in the app (their account and their pump's owner active).
    let Some(holder) = app.sessions.account(app, card.user_id).await? else {
        return Ok(TapView::denied("ACCOUNT_SUSPENDED"));
    };
    if let Err(refused) = ensure_active(app, &holder).await {
        return if refused.code == "ACCOUNT_SUSPENDED" { Ok(TapView::denied(refused.code)) } else { Err(refused) };
    }
    // Stop or start is the engine's to decide, on the state it applies the tap to.
    let event = Event::CardTap { user: holder.id, entry_id: EntryId::new() };
    let extras = Extras::audit(audit_entry(app.now(), Some(admin), holder.id, "card.tap", &holder.id, uid.to_owned()));
    let (reply, (tenant, now)) = app.runtime.apply(admin, event, extras, |t, now| (t.clone(), now)).await?;
    let (action, entry) = match reply {
        Ok(Reply::Entry(entry)) if entry.status == EntryStatus::Waiting => (CardAction::Queued, entry),
        Ok(Reply::Entry(entry)) => (CardAction::Started, entry),
        Ok(Reply::Ended(entry)) => (CardAction::Stopped, entry),
        Ok(_) => return Err(ApiError::internal()),
        Err(refusal) => return Ok(TapView::denied(ApiError::from(refusal).code)),
    };
    let name = holder.name.clone();
    let entry = EntryView::new(&entry, &tenant, now, &|_| name.clone());
    Ok(TapView { action, entry: Some(entry), reason: None })
}

/// Which tap a request is: one tap of a device by its id, or (a tap without one) a card at a pump.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TapKey {
    Id(DeviceId, u32),
    Card(AdminId, String),
}

impl TapKey {
    /// The key of its claim on a store several servers share ([`pumppilot_store::Store::claim_tap`],
    /// by pump and this text), and for how long the claim holds.
    fn shared(&self) -> (String, i64) {
        match self {
            TapKey::Id(device, id) => (format!("{device}#{id}"), RecentTaps::SHARED_ID_WINDOW_MS),
            TapKey::Card(_, uid) => (uid.clone(), RecentTaps::WINDOW_MS),
        }
    }
}

type Taps = Arc<Mutex<Book>>;

/// This server's taps: each claimed while one request acts on it; then the answer of a tap with
/// an id among the last [`RecentTaps::IDS`] of its device, and of a tap without one for
/// [`RecentTaps::WINDOW_MS`]. The rule of a shared store's claim
/// ([`pumppilot_store::Store::claim_tap`]), but a claim here is held by a task of this server, so
/// it needs no window to lapse: it ends with its task, answered or given up.
#[derive(Default)]
pub struct RecentTaps(Taps);

#[derive(Default)]
struct Book {
    /// Taps acted on now, and the answers of taps without an id.
    taps: HashMap<TapKey, Tap>,
    /// The answers of each device's last taps with an id, oldest first.
    ids: HashMap<DeviceId, VecDeque<(u32, Box<TapView>)>>,
}

enum Tap {
    /// A request acts on it; its sender goes when the tap is answered or given up.
    Acting(watch::Receiver<()>),
    /// Answered at this moment (boxed: an answer is large, a claim small).
    Answered(Timestamp, Box<TapView>),
}

/// What a request does with a tap ([`RecentTaps::claim`]).
enum Turn {
    /// It acts on the tap, then answers the claim (or drops it: the next tap is decided afresh).
    Act(Claimed),
    /// The same tap was answered: that answer again.
    Repeat(Box<TapView>),
    /// Another request acts on it: wait for the receiver's sender to go, then claim again.
    Wait(watch::Receiver<()>),
}

impl RecentTaps {
    /// How long a tap without an id is answered again for the same card at the same pump.
    pub const WINDOW_MS: i64 = 2_000;
    /// How many taps with an id of each device are answered again (about two hundred bytes each):
    /// a tap's copy is older than the device's last 32 taps only long after its counter left the
    /// window of counters a server accepts, and then it is refused as a counter.
    pub const IDS: usize = 32;
    /// How long a tap with an id is claimed on a store several servers share.
    pub const SHARED_ID_WINDOW_MS: i64 = 10 * 60_000;

    fn claim(&self, key: &TapKey, now: Timestamp) -> Turn {
        let mut book = self.0.lock().expect("taps lock");
        if let TapKey::Id(device, id) = key
            && let Some((_, answer)) = book.ids.get(device).and_then(|ids| ids.iter().find(|(seen, _)| seen == id))
        {
            return Turn::Repeat(answer.clone());
        }
        match book.taps.get(key) {
            Some(Tap::Acting(acting)) => return Turn::Wait(acting.clone()),
            Some(Tap::Answered(at, answer)) if now - *at < Self::WINDOW_MS => return Turn::Repeat(answer.clone()),
            _ => {}
        }
        let (acting, waiting) = watch::channel(());
        book.taps.insert(key.clone(), Tap::Acting(waiting));
        Turn::Act(Claimed { taps: Arc::clone(&self.0), key: key.clone(), answered: false, _acting: acting })
    }
}

/// A tap this request acts on. Dropped unanswered (denied, failed, or its task gone), the tap is
/// given up and a retry waiting for it acts on it.
struct Claimed {
    taps: Taps,
    key: TapKey,
    answered: bool,
    /// Dropped with the claim, after the map is updated: the requests waiting claim again.
    _acting: watch::Sender<()>,
}

impl Claimed {
    fn answer(mut self, answer: TapView, now: Timestamp) {
        let mut book = self.taps.lock().expect("taps lock");
        book.taps.retain(|_, tap| !matches!(tap, Tap::Answered(at, _) if now - *at >= RecentTaps::WINDOW_MS));
        match &self.key {
            TapKey::Id(device, id) => {
                book.taps.remove(&self.key);
                let ids = book.ids.entry(*device).or_default();
                if ids.len() >= RecentTaps::IDS {
                    ids.pop_front();
                }
                ids.push_back((*id, Box::new(answer)));
            }
            TapKey::Card(..) => {
                book.taps.insert(self.key.clone(), Tap::Answered(now, Box::new(answer)));
            }
        }
        drop(book);
        self.answered = true;
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if !self.answered {
            // Nobody else claims a tap while it is acted on: the entry is this claim's.
            self.taps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).taps.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::card_uid;

    #[test]
    fn uids_are_upper_case_hex_of_4_to_10_bytes() {
        assert_eq!(card_uid("04a1b2c3").unwrap(), "04A1B2C3");
        assert_eq!(card_uid("04:A1:b2:C3:11:22:33").unwrap(), "04A1B2C3112233");
        assert_eq!(card_uid("04-a1-b2-c3").unwrap(), "04A1B2C3");
        for bad in ["", "04A1B2", "04A1B2C", "04A1B2CZ", "0011223344556677889900", "04A1\u{0661}B2C3"] {
            assert!(card_uid(bad).is_err(), "{bad:?}");
        }
    }
}
