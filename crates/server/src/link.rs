//! The authenticated device link, server side (the device side and the MAC framing are
//! `pumppilot_protocol::link`; the rules are in `docs/DEVICE.md`, "The authenticated link").
//!
//! - **The secret.** Each device's link secret is derived, not stored: HMAC-SHA-256 under the
//!   server secret of the device's id and its key hash. A copy of the database alone reveals no
//!   secret (as for the device keys), a new key gives a new secret, and retiring the device ends
//!   both. It is shown once, with the key, when the device is registered or its key rotated.
//! - **A signed request** (`X-PumpPilot-Counter`, `X-PumpPilot-Mac`) is checked here: a MAC that
//!   does not check is `401 BAD_SIGNATURE`; then its counter is accepted once ([`CounterWindows`]),
//!   else `409 STALE_COUNTER` (signed, naming the highest counter this server accepted or the
//!   floor of its window, so a device that rebooted continues above it).
//! - **Counter windows.** A server reserves a block of a device's counters in the store at once
//!   ([`pumppilot_store::Store::reserve_device_counters`]: one conditional write moves the stored
//!   floor up by [`CounterWindows::BLOCK`]) and accepts the counters inside its window from memory,
//!   each once; a counter at or below the window's floor is refused, one above it reserves the
//!   next window. Windows never overlap, on one server or many, and a server that restarts starts
//!   above every window given before: a captured request is refused everywhere, however late. A
//!   device keeps its connection to one server; one that moves to another pays one `409` there.
//! - **Older than one acted on.** A signed report or card tap whose counter is below the newest
//!   of its kind this server acted on for the device is accepted as a counter but changes nothing
//!   ([`CounterWindows::newest`]): a copy held back and delivered later does not undo what came
//!   after it.
//! - **Every answer** to a request whose MAC checked is signed, errors included. An answer is given
//!   only while the request's key is still the device's: one held while the key was rotated or the
//!   device retired (a long-poll) is `401 UNAUTHENTICATED`, as a new request with that key is.
//! - **Migration.** A device that has never signed a request may still poll with its key alone
//!   (devices in the field before this change); from its first signed request on, an unsigned one
//!   is `401 SIGNATURE_REQUIRED`, so a captured key alone no longer works for it.

use axum::{
    body::{Body, Bytes, HttpBody as _},
    extract::{FromRequest, Request},
    http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use pumppilot_engine::{AdminId, DeviceId};
use pumppilot_protocol::link::{self, LinkKey, LinkSecret, Tag};
use pumppilot_store::{CounterWindow, LinkCounters, Reserved, Store, StoreError, Telemetry};

use crate::{
    app::AppState,
    error::{ApiError, RawBody},
    keys::Keyring,
    serve::poll::BodyNow,
};

/// The link secret of a device with this key hash (`pp_link_` and 43 characters).
pub fn secret_for(keyring: &Keyring, device: DeviceId, key_hash: &[u8; 32]) -> String {
    let hex: String = key_hash.iter().map(|b| format!("{b:02x}")).collect();
    let digest = keyring.hash(&format!("pumppilot-link-v1:{device}:{hex}"));
    format!("{}{}", link::SECRET_PREFIX, URL_SAFE_NO_PAD.encode(digest))
}

/// What a server made of a signed request's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterCheck {
    /// Accepted: the same counter is refused from now on, by every server.
    Accepted,
    /// Refused (seen already, or at or below this server's floor): the device continues above
    /// `highest`.
    Refused { highest: u64 },
}

/// One device's reserved window and the counters accepted in it.
#[derive(Clone, Copy)]
struct Window {
    reserved: CounterWindow,
    seen: LinkCounters,
}

impl Window {
    /// The counter a refusal names: the highest accepted here, at least the window's floor.
    fn highest(&self) -> u64 {
        self.seen.highest.max(self.reserved.after)
    }

    /// Accepts `counter` inside the window once; `None` when it is outside the window.
    fn check(&mut self, counter: u64) -> Option<CounterCheck> {
        if counter > self.reserved.through {
            return None;
        }
        if counter <= self.reserved.after {
            return Some(CounterCheck::Refused { highest: self.highest() });
        }
        Some(match self.seen.accept(counter) {
            Some(next) => {
                self.seen = next;
                CounterCheck::Accepted
            }
            None => CounterCheck::Refused { highest: self.highest() },
        })
    }
}

/// What this server keeps of a device that signs: its counter window and its link secret.
#[derive(Default)]
struct Held {
    window: Option<Window>,
    /// The secret, keyed once (each MAC then hashes its message alone), with the key hash it was
    /// derived from (a rotated key derives another).
    secret: Option<([u8; 32], LinkKey)>,
    /// The device is known to sign (in `App::signed_devices`, which then never loses it: the
    /// store lists every device with a reserved window): its accepted counters need not look.
    signing_noted: bool,
    /// The counter of the newest report and of the newest card tap of the device acted on here
    /// (0: none yet), by [`Acted`].
    newest: [u64; 2],
}

/// What a device's signed message asks the server to act on: its report's inputs (an HTTP poll,
/// an MQTT report), or a card tap. Each kind has its own newest counter ([`CounterWindows::newest`]):
/// a tap and a poll sent at once on two connections may arrive in either order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    Report = 0,
    Tap = 1,
}

type Shard = std::sync::Mutex<std::collections::HashMap<DeviceId, Held, crate::keys::Ids>>;

/// This server's counter windows and link secrets, one entry per device that signed here (about a
/// hundred bytes each), in shards so devices do not wait on one lock.
pub struct CounterWindows {
    shards: [Shard; 16],
}

impl Default for CounterWindows {
    fn default() -> Self {
        CounterWindows { shards: std::array::from_fn(|_| Default::default()) }
    }
}

impl CounterWindows {
    /// How many counters one reservation takes: a device polling every 5 s uses a block in about
    /// 80 minutes, so its counters cost the store one write then instead of one per poll.
    pub const BLOCK: u64 = 1000;

    fn shard(&self, device: DeviceId) -> &Shard {
        &self.shards[usize::from(device.0.as_bytes()[15]) % self.shards.len()]
    }

    /// The device's link secret for this key hash, keyed (derived and keyed once, then kept).
    pub fn secret(&self, keyring: &Keyring, device: DeviceId, key_hash: &[u8; 32]) -> LinkKey {
        if let Some(held) = self.shard(device).lock().expect("counter windows lock").get(&device)
            && let Some((hash, secret)) = &held.secret
            && hash == key_hash
        {
            return secret.clone();
        }
        let secret =
            LinkSecret::parse(&secret_for(keyring, device, key_hash)).expect("a derived secret parses").keyed();
        self.shard(device).lock().expect("counter windows lock").entry(device).or_default().secret =
            Some((*key_hash, secret.clone()));
        secret
    }

    /// Accepts `counter` from this server's window in memory, and tells whether the device is
    /// noted as signing already; `None` when the counter is outside the window.
    fn check_held(&self, device: DeviceId, counter: u64) -> Option<(CounterCheck, bool)> {
        let mut shard = self.shard(device).lock().expect("counter windows lock");
        let held = shard.get_mut(&device)?;
        Some((held.window.as_mut()?.check(counter)?, held.signing_noted))
    }

    /// Notes that the device is in `App::signed_devices` (until it is forgotten here).
    fn note_signing(&self, device: DeviceId) {
        if let Some(held) = self.shard(device).lock().expect("counter windows lock").get_mut(&device) {
            held.signing_noted = true;
        }
    }

    /// Accepts `counter` of a device once: inside this server's window from memory, else after
    /// reserving the next window in the store (a counter at or below the stored floor is refused;
    /// the window reserved then is where the device continues). With the answer, the device's
    /// report as stored when a window was reserved now ([`Reserved::stored`]).
    pub async fn check(
        &self,
        store: &dyn Store,
        admin: AdminId,
        device: DeviceId,
        counter: u64,
    ) -> Result<(CounterCheck, Option<Telemetry>), StoreError> {
        if let Some((check, _)) = self.check_held(device, counter) {
            return Ok((check, None));
        }
        let Reserved { window: reserved, stored } =
            store.reserve_device_counters(admin, device, counter, Self::BLOCK).await?;
        let mut shard = self.shard(device).lock().expect("counter windows lock");
        let held = shard.entry(device).or_default();
        // Two requests of one device may have reserved at once: the later window (the higher
        // floor) replaces the earlier one, whose counters are then below the floor.
        let window = match &mut held.window {
            Some(window) if window.reserved.through >= reserved.through => window,
            slot => slot.insert(Window { reserved, seen: LinkCounters::default() }),
        };
        Ok((window.check(counter).unwrap_or(CounterCheck::Refused { highest: window.highest() }), stored))
    }

    /// True when a device's message of this kind, its `counter` accepted already, is the newest of
    /// its kind on this server, which then acts on it; false when one with a higher counter was
    /// acted on here already. A copy held back by someone on the network and delivered later
    /// (inside the window of [`LinkCounters::WINDOW`] counters, so accepted) is then older than
    /// the retry or the next poll that went through, and changes nothing: a report's inputs are
    /// not applied, a tap is not acted on. Kept by the server whose window holds the counter; on
    /// another server that counter is at or below the stored floor, refused before it gets here.
    pub fn newest(&self, device: DeviceId, kind: Acted, counter: u64) -> bool {
        let mut shard = self.shard(device).lock().expect("counter windows lock");
        let newest = &mut shard.entry(device).or_default().newest[kind as usize];
        if counter < *newest {
            return false;
        }
        *newest = counter;
        true
    }

    /// Forgets a device (retired, or its key rotated: `App::set_device_key`, on every server): its
    /// counters stay refused, being at or below the stored floor (which only ever goes up, a
    /// rotation included), and its next request reserves a new window above it.
    pub fn forget(&self, device: DeviceId) {
        self.shard(device).lock().expect("counter windows lock").remove(&device);
    }
}

/// How the answer to a signed request is signed.
#[derive(Clone)]
pub struct Signer {
    secret: LinkKey,
    request: Tag,
    counter: u64,
}

impl Signer {
    /// Signs `response` (buffering its body, small for device routes) with the request's counter.
    pub async fn seal(&self, response: Response) -> Response {
        self.seal_with(response, self.counter).await
    }

    async fn seal_with(&self, response: Response, counter: u64) -> Response {
        match self.seal_now(response, counter) {
            Ok(sealed) => sealed,
            // Boxed: a body that is not whole at once is rare (no device route answers one).
            Err(unsealed) => Box::pin(self.seal_rest(unsealed)).await,
        }
    }

    /// `response` signed at once when its body is whole already (every device route's answer:
    /// JSON written whole), without a future; else what is left to read of it.
    fn seal_now(&self, response: Response, counter: u64) -> Result<Response, Box<Unsealed>> {
        let (parts, body) = response.into_parts();
        match crate::serve::poll::body_now(body, crate::app::BODY_LIMIT) {
            BodyNow::Whole(bytes) => Ok(self.sealed(parts, bytes, counter)),
            BodyNow::Partly { first, rest } => Err(Box::new(Unsealed { parts, first, rest, counter })),
            BodyNow::Failed(_) => Ok(ApiError::internal().into_response()),
        }
    }

    /// The answer [`Signer::seal_now`] could not sign at once, its body read whole first.
    async fn seal_rest(&self, unsealed: Box<Unsealed>) -> Response {
        let Unsealed { parts, first, rest, counter } = *unsealed;
        match crate::serve::poll::rest_of_body(first, rest, crate::app::BODY_LIMIT).await {
            Ok(bytes) => self.sealed(parts, bytes, counter),
            Err(_) => ApiError::internal().into_response(),
        }
    }

    /// The answer of `parts` and its whole body, signed.
    fn sealed(&self, mut parts: axum::http::response::Parts, bytes: Bytes, counter: u64) -> Response {
        let tag = self.secret.answer_tag(&self.request, parts.status.as_u16(), counter, &bytes);
        let headers = &mut parts.headers;
        headers.insert(COUNTER, HeaderValue::from(counter));
        let hex = link::to_hex(&tag);
        headers.insert(MAC, HeaderValue::from_bytes(&hex).expect("hex digits are a header value"));
        headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// An answer whose body was not whole at once ([`Signer::seal_now`]).
struct Unsealed {
    parts: axum::http::response::Parts,
    first: Bytes,
    rest: Body,
    counter: u64,
}

/// A device request: who sent it, its body, and how to sign the answer (`None`: an unsigned
/// request of a device that has never signed one).
pub struct DeviceLink {
    pub device: DeviceId,
    pub admin: AdminId,
    /// The request's target, as sent (its path and query are what a signed request's MAC
    /// covers): moved here from the request, so a handler reads the query without a copy.
    pub uri: Uri,
    pub body: Bytes,
    pub signer: Option<Signer>,
    /// The server and the hash of the key the request came with.
    key: (AppState, [u8; 32]),
}

impl DeviceLink {
    /// The request's counter, accepted once, when it was signed.
    pub fn counter(&self) -> Option<u64> {
        self.signer.as_ref().map(|signer| signer.counter)
    }

    /// The answer to send: `result` as a response, signed when the request was. Unless the
    /// request's key is no longer the device's (rotated, or the device retired, here or at
    /// another server, while the request was handled or held as a long-poll): then 401
    /// `UNAUTHENTICATED`, as for a new request with that key, and whatever it was to say (an ON)
    /// is never said.
    pub async fn answer(&self, result: impl IntoResponse) -> Response {
        let (app, key_hash) = &self.key;
        if app.device_keys.read().expect("device keys lock").get(key_hash) != Some(&(self.device, self.admin)) {
            tracing::debug!(device = %self.device, "a device's key changed while its request was answered; 401");
            // The request may have been applied just after the device was retired.
            let (app, admin, device) = (AppState::clone(app), self.admin, self.device);
            tokio::spawn(async move { app.release_retired(admin, device).await });
            return ApiError::unauthenticated().into_response();
        }
        let response = result.into_response();
        let Some(signer) = &self.signer else { return response };
        match signer.seal_now(response, signer.counter) {
            Ok(sealed) => sealed,
            // Boxed, as the extraction below: a handler's future is kept at its largest state's
            // size through a whole long-poll (`routes::device::held`).
            Err(unsealed) => Box::pin(signer.seal_rest(unsealed)).await,
        }
    }
}

/// The link's headers as names (a `&str` would be parsed at every lookup).
const COUNTER: HeaderName = HeaderName::from_static(link::COUNTER_HEADER);
const MAC: HeaderName = HeaderName::from_static(link::MAC_HEADER);

fn refused(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

impl FromRequest<AppState> for DeviceLink {
    type Rejection = Response;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        // On the heap only while it runs: axum keeps the handler's future, with room for this
        // one, through a whole long-poll (`routes::device::held`).
        Box::pin(Self::extract(req, app)).await
    }
}

impl DeviceLink {
    /// Every `await` here but the counter's is rare (a body to read, a window to reserve, an
    /// error to seal) and boxed, so that this future stays small.
    async fn extract(req: Request, app: &AppState) -> Result<Self, Response> {
        let caller = Caller::of(&req, app).map_err(IntoResponse::into_response)?;
        let (mut head, body) = req.into_parts();
        let uri = std::mem::take(&mut head.uri);
        // A request that says it has no body (a GET poll) has nothing to read: its MAC is
        // checked against the request as it stands. A body is read first (boxed).
        let (body, signer) = if body.is_end_stream() {
            let signer =
                caller.check(app, &head.method, path_and_query(&uri), b"").map_err(IntoResponse::into_response)?;
            drop(head);
            (Bytes::new(), signer)
        } else {
            let method = head.method.clone();
            let request = Request::from_parts(head, body);
            let body = Box::pin(RawBody::from_request(request, app)).await.map_err(IntoResponse::into_response)?.0;
            let signer = match caller.signed() {
                true => caller.check(app, &method, path_and_query(&uri), &body),
                // Unsigned: no MAC to check.
                false => caller.check(app, &Method::GET, "", &body),
            };
            let signer = signer.map_err(IntoResponse::into_response)?;
            (body, signer)
        };
        let Caller { device, admin, key_hash, .. } = caller;
        let key = (AppState::clone(app), key_hash);
        let Some(signer) = signer else { return Ok(DeviceLink { device, admin, uri, body, signer: None, key }) };
        let counter = signer.counter;
        match accept_counter(app, admin, device, counter).await {
            Ok(CounterCheck::Accepted) => {}
            Ok(CounterCheck::Refused { highest }) => {
                let error = ApiError::conflict(
                    "STALE_COUNTER",
                    format!("counter {counter} was used already or is too old; continue above {highest}"),
                );
                return Err(Box::pin(signer.seal_with(error.into_response(), highest)).await);
            }
            Err(err) => return Err(Box::pin(signer.seal(err.into_response())).await),
        }
        Ok(DeviceLink { device, admin, uri, body, signer: Some(signer), key })
    }
}

/// The path and query a signed request's MAC covers, as sent.
fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or_else(|| uri.path(), |p| p.as_str())
}

/// Who a device request says it is, by its key, and what its link headers say.
struct Caller {
    device: DeviceId,
    admin: AdminId,
    key_hash: [u8; 32],
    /// `X-PumpPilot-Counter` when given (`None` inside: it does not read).
    counter: Option<Option<u64>>,
    /// `X-PumpPilot-Mac` when given (`None` inside: it does not read).
    tag: Option<Option<Tag>>,
}

impl Caller {
    /// The device of the request's key (else 401 `UNAUTHENTICATED`) and its link headers.
    fn of(req: &Request, app: &AppState) -> Result<Caller, ApiError> {
        let key = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthenticated)?;
        let key_hash = app.keyring.hash(key.trim());
        let known = app.device_keys.read().expect("device keys lock").get(&key_hash).copied();
        let (device, admin) = known.ok_or_else(ApiError::unauthenticated)?;
        let counter = req.headers().get(COUNTER).map(|v| link::parse_counter(v.as_bytes()));
        let tag = req.headers().get(MAC).map(|v| link::from_hex(v.as_bytes()));
        Ok(Caller { device, admin, key_hash, counter, tag })
    }

    /// The request has a link header.
    fn signed(&self) -> bool {
        self.counter.is_some() || self.tag.is_some()
    }

    /// Checks the request's MAC over `method`, `path` and `body`: how to sign its answer (its
    /// counter not accepted yet), `None` for an unsigned request of a device that has never
    /// signed one, else the refusal.
    fn check(&self, app: &AppState, method: &Method, path: &str, body: &[u8]) -> Result<Option<Signer>, ApiError> {
        let (counter, tag) = match (self.counter, self.tag) {
            (None, None) => {
                if app.signed_devices.read().expect("signed devices lock").contains(&self.device) {
                    return Err(refused(
                        "SIGNATURE_REQUIRED",
                        "this device signs its requests: an unsigned one is refused",
                    ));
                }
                return Ok(None);
            }
            (Some(Some(counter)), Some(Some(tag))) => (counter, tag),
            _ => {
                return Err(refused(
                    "BAD_SIGNATURE",
                    "x-pumppilot-counter (1 to 2^63-1) and x-pumppilot-mac (64 hex digits) go together",
                ));
            }
        };
        let secret = app.counters.secret(&app.keyring, self.device, &self.key_hash);
        if !secret.check_request(method.as_str(), path, counter, body, &tag) {
            return Err(refused("BAD_SIGNATURE", "the request's MAC does not check"));
        }
        Ok(Some(Signer { secret, request: tag, counter }))
    }
}

/// THE acceptance of a signed message's counter, for every transport (the HTTP requests above,
/// MQTT reports in `crate::mqtt`): its MAC has checked; this server's counter window accepts it
/// once (`CounterWindows`, reserved from the store a block at a time), and the device counts as
/// signing from then on (an unsigned message of it is refused).
pub async fn accept_counter(
    app: &AppState,
    admin: AdminId,
    device: DeviceId,
    counter: u64,
) -> Result<CounterCheck, ApiError> {
    let (check, noted) = match app.counters.check_held(device, counter) {
        Some(held) => held,
        // Boxed: once a window (`CounterWindows::BLOCK` counters), so that the futures awaiting
        // this one, one a request, stay small.
        None => {
            let (check, stored) = Box::pin(app.counters.check(app.store.as_ref(), admin, device, counter)).await?;
            if let Some(stored) = &stored {
                app.runtime.note_stored_report(stored);
            }
            (check, false)
        }
    };
    // Once a window at most: then the window says so, and the set (one more lookup a request,
    // under a lock every request shares) is not read again.
    if check == CounterCheck::Accepted && !noted {
        if !app.signed_devices.read().expect("signed devices lock").contains(&device) {
            app.signed_devices.write().expect("signed devices lock").insert(device);
        }
        app.counters.note_signing(device);
    }
    Ok(check)
}
