//! `GET /api/events`: the caller's tenant, live, as server-sent events.
//!
//! Every committed change of the tenant (and a refresh every [`REFRESH`], which also keeps
//! proxies from closing the stream) sends one `state` event with what `GET /api/motor/status` and
//! `GET /api/queue` would answer at that moment. Changes that come faster than a client reads are
//! coalesced: it always gets the latest state. The stream ends when the caller's session is
//! revoked or expires, or the account is suspended; browsers reconnect by themselves.
//!
//! Each stream holds a connection (a file) for as long as it is open, so they are capped: a few
//! per session ([`STREAMS_PER_SESSION`], 429) and a number per server
//! (`PUMPPILOT_MAX_STREAMS`, [`StreamSlots`], 503 `BUSY`), both with `Retry-After`; the pages
//! poll instead until a slot is free.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, stream};
use pumppilot_engine::{AdminId, UserId};
use pumppilot_store::SessionId;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::motor::status_view;
use crate::{
    app::AppState,
    auth::Member,
    error::ApiError,
    routes::openapi::{AdminIdParam, Limited, Scoped},
    views::{QueueView, StatusView},
};

/// How often the state is sent even when nothing changed.
pub const REFRESH: Duration = Duration::from_secs(15);
/// How long a browser waits before it reconnects.
const RECONNECT: Duration = Duration::from_secs(3);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// One `state` event: the motor, the caller's own entry and balance, the device, and the queue.
#[derive(Serialize, ToSchema)]
pub struct LiveView {
    #[serde(flatten)]
    pub status: StatusView,
    pub queue: QueueView,
    /// The caller's unread notifications (the bell's count).
    pub unread: u64,
}

/// Server-sent events: `state` with `{motor, me, device, queue, unread}` at every change of the caller's tenant.
#[utoipa::path(get, path = "/api/events", tag = "motor", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, content_type = "text/event-stream", body = LiveView,
        description = "a stream of `state` events, each one JSON `LiveView`"), Scoped, Limited))]
async fn events(
    State(app): State<AppState>,
    member: Member,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let admin = member.scope.admin();
    let me = member.caller.id();
    let open = OpenStream::begin(&app.streams, member.caller.session)?;
    let changes = app.runtime.subscribe(admin);
    let state = (app, changes, true, open, member.caller);
    let stream = stream::unfold(state, move |(app, mut changes, first, open, caller)| async move {
        if !first {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return None },
                () = app.settings.clock.sleep(REFRESH) => {}
            }
        }
        let account = app.sessions.account(&app, me).await.ok().flatten();
        if !app.sessions.is_live(&app, &caller, app.now()).await || account.is_none_or(|a| a.suspended) {
            return None;
        }
        let event = match live_view(&app, admin, me).await {
            Ok(view) => Event::default().event("state").json_data(view).unwrap_or_default(),
            Err(err) => Event::default().event("error").data(err.code),
        };
        let event = if first { event.retry(RECONNECT) } else { event };
        Some((Ok(event), (app, changes, false, open, caller)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Most event streams one session holds open at once (a few tabs or screens).
pub const STREAMS_PER_SESSION: u32 = 4;

/// Streams open per session, in this process (session ids are unique, so one map serves every
/// server a test process starts).
fn open_streams() -> &'static std::sync::Mutex<std::collections::HashMap<SessionId, u32>> {
    static OPEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<SessionId, u32>>> =
        std::sync::OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// The event streams one server may hold open at once (`PUMPPILOT_MAX_STREAMS`).
#[derive(Debug)]
pub struct StreamSlots {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    max: usize,
}

impl StreamSlots {
    pub fn new(max: usize) -> StreamSlots {
        StreamSlots { slots: std::sync::Arc::new(tokio::sync::Semaphore::new(max)), max }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

/// One open stream of a session, counted (for its session and in the server's slots) until it is
/// dropped (the client went away or the stream ended).
struct OpenStream {
    session: SessionId,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl OpenStream {
    fn begin(slots: &StreamSlots, session: SessionId) -> Result<OpenStream, ApiError> {
        let mut open = open_streams().lock().expect("streams lock");
        if open.get(&session).is_some_and(|count| *count >= STREAMS_PER_SESSION) {
            tracing::warn!("event stream refused: {STREAMS_PER_SESSION} already open for one session");
            return Err(ApiError::rate_limited(
                "too many live streams open for this session; close a tab or screen",
                REFRESH.as_secs(),
            ));
        }
        let Ok(slot) = slots.slots.clone().try_acquire_owned() else {
            tracing::warn!(max = slots.max, "event stream refused: every stream slot of this server is taken");
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "BUSY",
                "the server holds as many live streams as it may; the page polls until one is free",
            )
            .retry_after(REFRESH.as_secs()));
        };
        *open.entry(session).or_insert(0) += 1;
        Ok(OpenStream { session, _slot: slot })
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut open = open_streams().lock().expect("streams lock");
        if let Some(count) = open.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.session);
            }
        }
    }
}

async fn live_view(app: &AppState, admin: AdminId, me: UserId) -> Result<LiveView, ApiError> {
    let (tenant, now) = app.runtime.read(admin, |t, now| (t.clone(), now)).await?;
    let ids = tenant.active.as_deref().into_iter().chain(&tenant.waiting).map(|e| e.user_id).collect();
    let names = app.names(ids).await?;
    let name = |id: UserId| names.get(&id).cloned().unwrap_or_default();
    let unread = app.store.unread_notifications(me).await?;
    Ok(LiveView { status: status_view(&tenant, now, me, &name), queue: QueueView::new(&tenant, now, &name), unread })
}
