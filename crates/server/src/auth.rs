//! Who is calling: sessions, the caller's account, and the role and tenant scope as types.
//!
//! A handler that takes [`AdminScope`] or [`Member`] holds a [`TenantScope`] that only these
//! extractors can make, so it cannot reach another tenant by mistake.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Query},
    http::{Method, header, request::Parts},
};
use pumppilot_engine::{AdminId, Timestamp, UserId};
use pumppilot_store::{Account, Role, Session, SessionId, SessionKind, SignedIn};
use serde::Deserialize;

use crate::{
    app::{App, AppState},
    clock::SharedClock,
    error::ApiError,
    log_throttle::LogThrottle,
};

/// Name of the web session cookie.
pub const SESSION_COOKIE: &str = "pp_session";
/// Web sessions last this long.
pub const WEB_SESSION_MS: i64 = 12 * 3600 * 1000;
/// Mobile access tokens last this long.
pub const ACCESS_TOKEN_MS: i64 = 15 * 60 * 1000;
/// Mobile refresh tokens last this long.
pub const REFRESH_TOKEN_MS: i64 = 30 * 24 * 3600 * 1000;

/// A session as kept in memory after its first use.
#[derive(Debug, Clone)]
struct CachedSession {
    id: SessionId,
    user_id: UserId,
    expires_at: Timestamp,
}

/// Sessions and accounts in memory, in front of the store.
#[derive(Default)]
pub struct Sessions {
    by_hash: RwLock<HashMap<[u8; 32], CachedSession>>,
    accounts: RwLock<HashMap<UserId, Arc<Account>>>,
}

impl Sessions {
    /// Forgets sessions that were revoked.
    pub fn forget(&self, ids: &[SessionId]) {
        self.by_hash.write().expect("sessions lock").retain(|_, s| !ids.contains(&s.id));
    }

    /// Forgets sessions whose access has expired (they are checked again on use anyway).
    pub fn forget_expired(&self, now: Timestamp) {
        self.by_hash.write().expect("sessions lock").retain(|_, s| s.expires_at > now);
    }

    /// Forgets every session and account held in memory (the store's change feed had a gap).
    pub fn forget_all(&self) {
        self.by_hash.write().expect("sessions lock").clear();
        self.accounts.write().expect("accounts lock").clear();
    }

    /// Forgets an account so its next use reads it again (after a suspension, say).
    pub fn forget_account(&self, id: UserId) {
        self.accounts.write().expect("accounts lock").remove(&id);
    }

    /// An account, from memory or the store.
    pub async fn account(&self, app: &App, id: UserId) -> Result<Option<Arc<Account>>, ApiError> {
        // While a shared store's change feed is silent, memory may be older than the store.
        let fresh = app.runtime.is_fresh();
        if fresh && let Some(account) = self.accounts.read().expect("accounts lock").get(&id) {
            return Ok(Some(Arc::clone(account)));
        }
        let Some(account) = app.store.account(id).await? else { return Ok(None) };
        let account = Arc::new(account);
        self.accounts.write().expect("accounts lock").insert(id, Arc::clone(&account));
        Ok(Some(account))
    }

    async fn session(&self, app: &App, kind: SessionKind, hash: [u8; 32]) -> Result<Option<CachedSession>, ApiError> {
        if app.runtime.is_fresh()
            && let Some(session) = self.by_hash.read().expect("sessions lock").get(&hash)
        {
            return Ok(Some(session.clone()));
        }
        // The session with its account and a farmer's pump owner's, in one read (on a shared
        // store, one round trip: a farmer's first Start on this server waits for it); the
        // accounts are kept as `account` keeps them, so the checks that follow find them here.
        let Some(signed_in) = app.store.signed_in(kind, &hash).await? else { return Ok(None) };
        let SignedIn { session, account, owner } = signed_in;
        {
            let mut accounts = self.accounts.write().expect("accounts lock");
            for account in account.into_iter().chain(owner) {
                accounts.insert(account.id, Arc::new(account));
            }
        }
        if session.revoked_at.is_some() {
            // Suspension revokes the sessions; their tokens answer 403 `ACCOUNT_SUSPENDED` so the
            // apps can tell "suspended" from "signed out".
            if let Some(account) = self.account(app, session.user_id).await? {
                ensure_active(app, &account).await?;
            }
            return Ok(None);
        }
        let cached = CachedSession { id: session.id, user_id: session.user_id, expires_at: session.access_expires_at };
        self.by_hash.write().expect("sessions lock").insert(hash, cached.clone());
        Ok(Some(cached))
    }

    /// True while the caller's session is neither revoked nor expired: from memory (revocation
    /// and expiry forget it), or from the store when memory was forgotten (a gap in a shared
    /// store's feed) or may be older than it, as when the caller came in.
    pub async fn is_live(&self, app: &App, caller: &Caller, now: Timestamp) -> bool {
        match self.session(app, caller.kind, caller.token_hash).await {
            Ok(Some(session)) => session.id == caller.session && session.expires_at > now,
            // Revoked, or gone; a store that cannot be read ends the stream too (the client
            // comes back, and is let in once the store answers).
            Ok(None) | Err(_) => false,
        }
    }

    /// Remembers a session just created.
    pub fn remember(&self, session: &Session) {
        let Ok(hash) = <[u8; 32]>::try_from(session.access_hash.as_slice()) else { return };
        let cached = CachedSession { id: session.id, user_id: session.user_id, expires_at: session.access_expires_at };
        self.by_hash.write().expect("sessions lock").insert(hash, cached);
    }
}

/// Anyone signed in whose account and tenant are not suspended.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: Arc<Account>,
    pub session: SessionId,
    pub kind: SessionKind,
    /// The keyed hash of the caller's token, which finds its session (in memory or the store).
    token_hash: [u8; 32],
}

impl Caller {
    pub fn id(&self) -> UserId {
        self.account.id
    }
}

/// Checks that an account (and, for an admin's user, the admin) may act.
pub async fn ensure_active(app: &App, account: &Account) -> Result<(), ApiError> {
    if is_paused(app, account).await? { Err(ApiError::suspended()) } else { Ok(()) }
}

/// Whether the account is paused: suspended, or a farmer whose pump owner is suspended (or gone).
pub async fn is_paused(app: &App, account: &Account) -> Result<bool, ApiError> {
    if account.suspended {
        return Ok(true);
    }
    if account.role == Role::User
        && let Some(admin) = account.admin_id
    {
        let owner = app.sessions.account(app, admin.0).await?;
        return Ok(owner.is_none_or(|owner| owner.suspended));
    }
    Ok(false)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let (token, from_cookie) = match bearer(parts) {
            Some(token) => (token, false),
            None => (session_cookie(parts).ok_or_else(ApiError::unauthenticated)?, true),
        };
        if from_cookie && !is_safe(&parts.method) && !same_origin(parts) {
            return Err(ApiError::forbidden("cross-site request refused (CSRF check)"));
        }
        let kind = match token.get(..2) {
            Some("w_") => SessionKind::Web,
            Some("m_") => SessionKind::Mobile,
            _ => return Err(ApiError::unauthenticated()),
        };
        let hash = app.keyring.hash(&token);
        let session = app.sessions.session(app, kind, hash).await?.ok_or_else(ApiError::unauthenticated)?;
        if session.expires_at <= app.now() {
            app.sessions.forget(&[session.id]);
            return Err(ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED", "the token has expired"));
        }
        let account = app.sessions.account(app, session.user_id).await?.ok_or_else(ApiError::unauthenticated)?;
        ensure_active(app, &account).await?;
        Ok(Caller { account, session: session.id, kind, token_hash: hash })
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string())
}

fn session_cookie(parts: &Parts) -> Option<String> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then(|| value.to_string())
        },
    )
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A cookie-carrying request that changes state must come from our own pages.
fn same_origin(parts: &Parts) -> bool {
    if let Some(site) = parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, rest)| rest == host),
        _ => false,
    }
}

/// A tenant the caller may act on. Only the extractors below make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantScope(AdminId);

impl TenantScope {
    pub fn admin(self) -> AdminId {
        self.0
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdminIdQuery {
    admin_id: Option<String>,
}

/// Anyone but the master may name only their own tenant with `?adminId=`: another is 403, never
/// silently their own data.
fn own_tenant_only(parts: &Parts, own: AdminId) -> Result<TenantScope, ApiError> {
    let named = parts
        .uri
        .query()
        .map(|query| {
            form_urlencoded::parse(query.as_bytes())
                .filter(|(key, _)| key == "adminId")
                .map(|(_, value)| value.into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if named.iter().all(|value| value.parse::<AdminId>().is_ok_and(|id| id == own)) {
        Ok(TenantScope(own))
    } else {
        Err(ApiError::forbidden("adminId: only the master may name another pump owner's tenant"))
    }
}

/// The master may name any tenant with `?adminId=`; it must be an existing admin (else 404).
async fn master_scope(parts: &mut Parts, app: &AppState) -> Result<TenantScope, ApiError> {
    let Query(query) = Query::<AdminIdQuery>::from_request_parts(parts, app)
        .await
        .map_err(|_| ApiError::validation("adminId: not a valid id"))?;
    let text = query.admin_id.ok_or_else(|| ApiError::validation("adminId: the master must name a tenant"))?;
    let id: AdminId = text.parse().map_err(|_| ApiError::not_found("admin"))?;
    match app.sessions.account(app, id.0).await? {
        Some(account) if account.role == Role::Admin => Ok(TenantScope(id)),
        _ => Err(ApiError::not_found("admin")),
    }
}

/// An admin acting on their own tenant, or the master acting on `?adminId=`.
pub struct AdminScope {
    pub caller: Caller,
    pub scope: TenantScope,
}

impl FromRequestParts<AppState> for AdminScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let scope = match caller.account.role {
            Role::Admin => own_tenant_only(parts, AdminId(caller.id()))?,
            Role::Master => master_scope(parts, app).await?,
            Role::User => return Err(ApiError::forbidden("this needs an admin")),
        };
        Ok(AdminScope { caller, scope })
    }
}

/// A user or admin looking at their own tenant (the master with `?adminId=`).
pub struct Member {
    pub caller: Caller,
    pub scope: TenantScope,
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let scope = match (caller.account.role, caller.account.admin_id) {
            (Role::Master, _) => master_scope(parts, app).await?,
            (_, Some(admin)) => own_tenant_only(parts, admin)?,
            (_, None) => return Err(ApiError::internal()),
        };
        Ok(Member { caller, scope })
    }
}

/// A user operating the motor of their own tenant.
pub struct Farmer {
    pub caller: Caller,
    pub scope: TenantScope,
}

impl Farmer {
    pub fn id(&self) -> UserId {
        self.caller.id()
    }
}

impl FromRequestParts<AppState> for Farmer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, app).await?;
        match (caller.account.role, caller.account.admin_id) {
            (Role::User, Some(admin)) => Ok(Farmer { scope: own_tenant_only(parts, admin)?, caller }),
            _ => Err(ApiError::forbidden("only a user's own account operates the motor")),
        }
    }
}

/// The master admin.
pub struct Master(pub Caller);

impl FromRequestParts<AppState> for Master {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, app).await?;
        match caller.account.role {
            Role::Master => Ok(Master(caller)),
            _ => Err(ApiError::forbidden("this needs the master admin")),
        }
    }
}

/// The client's address (for login rate limiting): [`ClientIp`] when the request came through
/// [`resolve_client`], else the connection's peer.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_of(parts)))
    }
}

/// The client's address as [`resolve_client`] found it (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// The client of a request: what [`resolve_client`] found, or the connection's peer.
pub fn client_of(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ClientIp>()
        .map(|c| c.0)
        .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()))
}

/// Who the client is: the connection's peer, unless the peer is a trusted proxy
/// (`PUMPPILOT_TRUSTED_PROXIES`); then `X-Forwarded-For` is read from the right, skipping trusted
/// proxies, and the first address that is not one is the client (each proxy appends the address
/// it saw, so only the part added by trusted proxies can be believed). A header that does not
/// parse is not believed: the peer stays the client.
pub fn client_ip(
    trusted: &[ipnet::IpNet],
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| is_trusted_proxy(trusted, ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all(FORWARDED_FOR) {
        let Ok(text) = value.to_str() else { return peer };
        for hop in text.split(',') {
            match hop.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => hops.push(ip.to_canonical()),
                Err(_) => return peer,
            }
        }
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
}

/// The header a reverse proxy names the client in.
const FORWARDED_FOR: &str = "x-forwarded-for";

fn is_trusted_proxy(trusted: &[ipnet::IpNet], ip: &std::net::IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(&ip.to_canonical()))
}

/// Puts the request's [`ClientIp`] in its extensions, for the login limiter and logs (called for
/// every request by `metrics::Edge`). From a peer that is no trusted proxy the client is the peer,
/// which [`client_of`] reads from the connection: nothing to do, unless the peer sent
/// `X-Forwarded-For`, which is said once ([`forwarded_by_an_untrusted_peer`]).
pub fn resolve_client(app: &App, request: &mut axum::extract::Request) {
    let trusted = &app.settings.trusted_proxies;
    let forwarded = request.headers().contains_key(FORWARDED_FOR);
    if trusted.is_empty() && !forwarded {
        return;
    }
    let Some(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) else { return };
    if !is_trusted_proxy(trusted, &peer) {
        if forwarded {
            forwarded_by_an_untrusted_peer(peer);
        }
        return;
    }
    let client = client_ip(trusted, peer, request.headers());
    request.extensions_mut().insert(ClientIp(client));
}

/// A reverse proxy not named in `PUMPPILOT_TRUSTED_PROXIES` makes every client behind it one
/// address to the sign-in limits: ten wrong passwords for a username from anyone stop everyone's
/// sign-in with it for fifteen minutes. The operator is told once: a proxy sends the header with
/// every request (a client that sends its own is reported the same way, and ignored).
fn forwarded_by_an_untrusted_peer(peer: std::net::IpAddr) {
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            %peer,
            "a request came with X-Forwarded-For from an address not in PUMPPILOT_TRUSTED_PROXIES: the header \
             is ignored and every client behind a proxy there counts as its one address for the sign-in \
             limits; if it is your reverse proxy, add its address to PUMPPILOT_TRUSTED_PROXIES (said once)"
        );
    }
}

/// Sign-in limits, counted before any password is hashed, on the server's clock. A client is its
/// IPv4 address, or its IPv6 address's /64 (`LoginLimiter::client`).
///
/// - Failures are limited per (username, client) pair: after [`LoginLimiter::PER_PAIR`] failed
///   attempts in the window, that pair gets 429 `RATE_LIMITED` until the window passes.
/// - Per username, only [`LoginLimiter::PER_USERNAME_AT_ONCE`] checks run at once, and parallel
///   guesses beyond them are refused with 429 before hashing. Once the username failed
///   [`LoginLimiter::PER_PAIR`] times in the window from anywhere, it is checked one at a time and
///   an attempt waits in the username's line for its turn: a guesser with many addresses makes
///   the owner wait behind a few checks rather than locking them out. The line holds
///   [`LoginLimiter::LINE`] attempts, one per client; the client with fewer failures for the
///   username goes first (the owner's phone before a guesser's address), and takes the place of
///   the one with most when the line is full; an attempt waits [`LoginLimiter::LINE_WAIT`] at most.
/// - Per client, once [`LoginLimiter::PER_ADDRESS`] attempts failed in the window, only
///   [`LoginLimiter::PER_ADDRESS_AT_ONCE`] of its attempts run or wait at once: a village behind
///   one NAT is slowed, not shut out, and one client holds at most that many waiting tasks.
///
/// Refusals are logged one line every ten seconds at most, with how many were held back.
pub struct LoginLimiter {
    clock: SharedClock,
    window_ms: i64,
    state: std::sync::Mutex<LimiterState>,
    /// A store several servers share: failures are counted there too, so every server refuses
    /// alike (`None`: one server, counted in memory only).
    shared: Option<Arc<dyn pumppilot_store::Store>>,
}

#[derive(Default)]
struct LimiterState {
    /// Key → (start of its window, failures in it).
    failures: HashMap<String, (Timestamp, u32)>,
    /// Username key → checks running now; client key → its attempts running or waiting in a line.
    running: HashMap<String, u32>,
    /// Username key → the attempts waiting for their turn (never empty: an empty line is removed).
    lines: HashMap<String, Vec<Waiting>>,
    /// The last place given in a line: tells places apart, and the earlier from the later.
    next_ticket: u64,
}

/// An attempt waiting in a username's line.
struct Waiting {
    ticket: u64,
    client: String,
    /// Its client's failures for the username when it came: fewer go first.
    failures: u32,
    turn: tokio::sync::oneshot::Sender<Turn>,
}

/// What a waiting attempt is told.
enum Turn {
    /// The username's check is its own now.
    Check,
    /// Its place went to an attempt from a client with fewer failures.
    Displaced,
}

/// One sign-in attempt admitted by the [`LoginLimiter`]; when dropped, its check stops running
/// and the next in the username's line gets its turn.
pub struct LoginAttempt<'a> {
    limiter: &'a LoginLimiter,
    user: String,
    client: String,
    pair: String,
}

/// A place in a username's line; dropped before its turn (waited too long, or the caller hung
/// up), it is given up.
struct Place<'a> {
    limiter: &'a LoginLimiter,
    ticket: u64,
    user: String,
    client: String,
    pair: String,
    turn: tokio::sync::oneshot::Receiver<Turn>,
}

impl LoginLimiter {
    /// The window the server uses: 15 minutes.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Failed attempts per (username, client) pair in the window before it gets 429.
    pub const PER_PAIR: u32 = 10;
    /// Checks of one username that run at once (one after [`Self::PER_PAIR`] failures).
    pub const PER_USERNAME_AT_ONCE: u32 = 2;
    /// Attempts waiting in one username's line: each holds a task and a connection, and an
    /// owner signs in from a phone and a browser, not from eight places at once.
    pub const LINE: usize = 8;
    /// The longest an attempt waits in line (on the server's clock) before 429: a turn comes
    /// after at most [`Self::LINE`] checks of tens of milliseconds each.
    pub const LINE_WAIT: Duration = Duration::from_secs(5);
    /// Failures from one client in the window after which its attempts are throttled.
    pub const PER_ADDRESS: u32 = 50;
    /// Attempts from a throttled client that run or wait at once.
    pub const PER_ADDRESS_AT_ONCE: u32 = 2;

    pub fn new(clock: SharedClock, window: Duration) -> Self {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        LoginLimiter { clock, window_ms, state: Default::default(), shared: None }
    }

    /// Counts failures in `store` too, for every server on it.
    pub fn shared_through(mut self, store: Arc<dyn pumppilot_store::Store>) -> Self {
        self.shared = Some(store);
        self
    }

    /// Takes the failures other servers counted in the shared store into this server's count.
    async fn catch_up(&self, keys: &[String], now: Timestamp) {
        let Some(store) = &self.shared else { return };
        match store.login_failures(keys, now, self.window_ms).await {
            Ok(counted) => {
                let mut state = self.state.lock().expect("limiter lock");
                for (key, since, count) in counted {
                    let (local, _) = self.recent(&state, &key, now);
                    if count > local {
                        state.failures.insert(key, (since, count));
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "could not read the shared sign-in failures; counting this server's"),
        }
    }

    /// Who the limits count an address as ([`crate::serve::client_of`]: the connections' limit
    /// counts clients the same way).
    fn client(addr: std::net::IpAddr) -> String {
        match crate::serve::client_of(addr) {
            std::net::IpAddr::V6(network) => format!("{network}/64"),
            v4 => v4.to_string(),
        }
    }

    fn keys(username: &str, addr: Option<std::net::IpAddr>) -> (String, String, String) {
        let client = addr.map(Self::client).unwrap_or_default();
        let user = username.to_lowercase();
        (format!("u:{user}"), format!("a:{client}"), format!("p:{user}|{client}"))
    }

    /// Failures of `key` in the window, and the milliseconds until its window ends.
    fn recent(&self, state: &LimiterState, key: &str, now: Timestamp) -> (u32, i64) {
        match state.failures.get(key) {
            Some((since, count)) if now - *since < self.window_ms => (*count, self.window_ms - (now - *since)),
            _ => (0, 0),
        }
    }

    /// Checks of the username `user` that may run at once now.
    fn at_once(&self, state: &LimiterState, user: &str, now: Timestamp) -> u32 {
        if self.recent(state, user, now).0 >= Self::PER_PAIR { 1 } else { Self::PER_USERNAME_AT_ONCE }
    }

    /// Admits one attempt before its password is hashed, after its turn in the username's line
    /// when it has to wait, or refuses it with 429 `RATE_LIMITED` and `Retry-After`.
    pub async fn begin(&self, username: &str, addr: Option<std::net::IpAddr>) -> Result<LoginAttempt<'_>, ApiError> {
        let now = self.clock.now();
        let (user, client, pair) = Self::keys(username, addr);
        self.catch_up(&[user.clone(), client.clone(), pair.clone()], now).await;
        let mut place = {
            let mut state = self.state.lock().expect("limiter lock");
            let (pair_failures, pair_left_ms) = self.recent(&state, &pair, now);
            if pair_failures >= Self::PER_PAIR {
                return Err(refused(
                    username,
                    addr,
                    "too many failed sign-ins for this username from here; wait a few minutes",
                    u64::try_from(pair_left_ms).map_or(1, |ms| ms.div_ceil(1000)),
                ));
            }
            if self.recent(&state, &client, now).0 >= Self::PER_ADDRESS
                && state.running.get(&client).copied().unwrap_or(0) >= Self::PER_ADDRESS_AT_ONCE
            {
                return Err(refused(username, addr, "many failed sign-ins from here; try again in a moment", 1));
            }
            let at_once = self.at_once(&state, &user, now);
            let line = state.lines.get(&user);
            if line.is_none() && state.running.get(&user).copied().unwrap_or(0) < at_once {
                for key in [&user, &client] {
                    *state.running.entry(key.clone()).or_insert(0) += 1;
                }
                return Ok(LoginAttempt { limiter: self, user, client, pair });
            }
            // Two checks of a username at once, with little failed yet, are the owner's phone and
            // browser; a third is guessing in parallel, refused before it is hashed.
            if at_once > 1 && line.is_none() {
                return Err(refused(
                    username,
                    addr,
                    "this username is being checked already; try again in a moment",
                    1,
                ));
            }
            if line.is_some_and(|line| line.iter().any(|waiting| waiting.client == client)) {
                return Err(refused(
                    username,
                    addr,
                    "this username is being checked already from here; try again in a moment",
                    1,
                ));
            }
            let Some(ticket) = state.ticket_in_line(&user, pair_failures) else {
                return Err(refused(
                    username,
                    addr,
                    "many are signing in with this username; try again in a moment",
                    1,
                ));
            };
            let (tell, turn) = tokio::sync::oneshot::channel();
            let waiting = Waiting { ticket, client: client.clone(), failures: pair_failures, turn: tell };
            state.lines.entry(user.clone()).or_default().push(waiting);
            *state.running.entry(client.clone()).or_insert(0) += 1;
            self.hand_on(&mut state, &user, now);
            Place { limiter: self, ticket, user, client, pair, turn }
        };
        let deadline = now + i64::try_from(Self::LINE_WAIT.as_millis()).unwrap_or(i64::MAX);
        let turn = tokio::select! {
            biased;
            turn = &mut place.turn => turn.ok(),
            () = self.clock.sleep_until(deadline) => None,
        };
        match turn {
            Some(Turn::Check) => Ok(place.into_attempt()),
            Some(Turn::Displaced) | None => {
                Err(refused(username, addr, "many are signing in with this username; try again in a moment", 1))
            }
        }
    }

    /// Gives `user`'s check to the first in its line (fewest failures, then earliest) while
    /// fewer than it may run at once are running.
    fn hand_on(&self, state: &mut LimiterState, user: &str, now: Timestamp) {
        let at_once = self.at_once(state, user, now);
        while state.running.get(user).copied().unwrap_or(0) < at_once {
            let Some(line) = state.lines.get_mut(user) else { return };
            let Some(first) = line.iter().enumerate().min_by_key(|(_, w)| (w.failures, w.ticket)).map(|(i, _)| i)
            else {
                return;
            };
            let next = line.swap_remove(first);
            if line.is_empty() {
                state.lines.remove(user);
            }
            if next.turn.send(Turn::Check).is_ok() {
                *state.running.entry(user.to_string()).or_insert(0) += 1;
            } else {
                // Its caller is gone without giving the place up: its client's share comes back.
                give_back(&mut state.running, &next.client);
            }
        }
    }

    /// An attempt's check of `user` from `client` is over: both shares come back, and the next
    /// in the line gets its turn.
    fn finish(&self, user: &str, client: &str) {
        let mut state = self.state.lock().expect("limiter lock");
        give_back(&mut state.running, user);
        give_back(&mut state.running, client);
        self.hand_on(&mut state, user, self.clock.now());
    }
}

impl LimiterState {
    /// A ticket for a new place in `user`'s line, for an attempt whose client failed `failures`
    /// times, or `None` when the line is full of attempts with as few failures or fewer. A client
    /// with fewer takes the place of the one with most (the latest of them), which is told and
    /// gives its client's share back.
    fn ticket_in_line(&mut self, user: &str, failures: u32) -> Option<u64> {
        if let Some(line) = self.lines.get_mut(user)
            && line.len() >= LoginLimiter::LINE
        {
            let last = line.iter().enumerate().max_by_key(|(_, w)| (w.failures, w.ticket)).map(|(i, _)| i)?;
            if line[last].failures <= failures {
                return None;
            }
            let displaced = line.swap_remove(last);
            let _ = displaced.turn.send(Turn::Displaced);
            give_back(&mut self.running, &displaced.client);
        }
        self.next_ticket += 1;
        Some(self.next_ticket)
    }
}

/// One fewer running under `key`.
fn give_back(running: &mut HashMap<String, u32>, key: &str) {
    if let Some(count) = running.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            running.remove(key);
        }
    }
}

/// A sign-in refused before its password is hashed: 429 `RATE_LIMITED` with `Retry-After`. A
/// guesser's flood is refused thousands of times a second, so the log says so one line every ten
/// seconds at most, with how many it held back (the username escaped: it is the caller's text).
fn refused(username: &str, addr: Option<std::net::IpAddr>, why: &'static str, retry_after_s: u64) -> ApiError {
    static REFUSALS: LogThrottle = LogThrottle::every(Duration::from_secs(10));
    if let Some(unlogged) = REFUSALS.admit(std::time::Instant::now()) {
        tracing::warn!(username = ?username, ?addr, more_refused_since_last_line = unlogged, "sign-in refused: {why}");
    }
    ApiError::rate_limited(why, retry_after_s)
}

impl<'a> Place<'a> {
    /// The attempt whose turn came: its shares, taken when it joined and when it was handed the
    /// check, are now the attempt's.
    fn into_attempt(mut self) -> LoginAttempt<'a> {
        let user = std::mem::take(&mut self.user);
        let client = std::mem::take(&mut self.client);
        let pair = std::mem::take(&mut self.pair);
        LoginAttempt { limiter: self.limiter, user, client, pair }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.user.is_empty() {
            return;
        }
        let mut state = self.limiter.state.lock().expect("limiter lock");
        if let Some(line) = state.lines.get_mut(&self.user)
            && let Some(at) = line.iter().position(|waiting| waiting.ticket == self.ticket)
        {
            line.swap_remove(at);
            if line.is_empty() {
                state.lines.remove(&self.user);
            }
            give_back(&mut state.running, &self.client);
            return;
        }
        drop(state);
        // Handed the check just as it stopped waiting: the check is passed on unused.
        if let Ok(Turn::Check) = self.turn.try_recv() {
            self.limiter.finish(&self.user, &self.client);
        }
    }
}

impl LoginAttempt<'_> {
    /// Counts this attempt as failed, for its username, its client and the pair (in the shared
    /// store too, when there is one).
    pub async fn failed(&self) {
        let limiter = self.limiter;
        let now = limiter.clock.now();
        let keys = [&self.user, &self.client, &self.pair];
        if let Some(store) = &limiter.shared {
            let keys = keys.map(String::clone);
            if let Err(err) = store.add_login_failure(&keys, now, limiter.window_ms).await {
                tracing::warn!(%err, "could not count a failed sign-in in the shared store");
            }
        }
        let mut state = limiter.state.lock().expect("limiter lock");
        if state.failures.len() > 100_000 {
            state.failures.retain(|_, (since, _)| now - *since < limiter.window_ms);
        }
        for key in keys {
            let slot = state.failures.entry(key.clone()).or_insert((now, 0));
            if now - slot.0 >= limiter.window_ms {
                *slot = (now, 0);
            }
            slot.1 += 1;
        }
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        self.limiter.finish(&self.user, &self.client);
    }
}

#[cfg(test)]
mod client_tests {
    use axum::http::HeaderMap;

    use super::client_ip;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // From anyone else the header is the client's own word: ignored.
        assert_eq!(client_ip(&trusted, ip("198.51.100.7"), &forwarded(&["203.0.113.9"])), ip("198.51.100.7"));
        assert_eq!(client_ip(&[], ip("10.0.0.1"), &forwarded(&["203.0.113.9"])), ip("10.0.0.1"));
        // Through a trusted proxy: the last address it was not told by another trusted proxy.
        assert_eq!(client_ip(&trusted, ip("10.0.0.1"), &forwarded(&["203.0.113.9"])), ip("203.0.113.9"));
        assert_eq!(
            client_ip(&trusted, ip("10.0.0.1"), &forwarded(&["1.2.3.4, 203.0.113.9", "10.9.9.9"])),
            ip("203.0.113.9"),
            "a forged first hop and a chain of trusted proxies"
        );
        assert_eq!(client_ip(&trusted, ip("::1"), &forwarded(&["::ffff:203.0.113.9"])), ip("203.0.113.9"));
        // Only trusted hops: the first of them. No header or a broken one: the peer.
        assert_eq!(client_ip(&trusted, ip("10.0.0.1"), &forwarded(&["10.0.0.2"])), ip("10.0.0.2"));
        assert_eq!(client_ip(&trusted, ip("10.0.0.1"), &forwarded(&[])), ip("10.0.0.1"));
        assert_eq!(client_ip(&trusted, ip("10.0.0.1"), &forwarded(&["203.0.113.9, junk"])), ip("10.0.0.1"));
    }
}

#[cfg(test)]
mod limiter_tests {
    use std::{net::IpAddr, time::Duration};

    use futures_util::FutureExt;
    use pumppilot_engine::Timestamp;

    use super::LoginLimiter;
    use crate::{clock::ManualClock, error::ApiError};

    fn from(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn assert_limited(refusal: Option<ApiError>) {
        let refusal = refusal.expect("refused");
        assert_eq!((refusal.code, refusal.retry_after), ("RATE_LIMITED", Some(1)), "{refusal:?}");
    }

    /// A limiter on a clock that stands still, where `rahim` failed once from each of ten
    /// addresses (198.51.100.0 to .9): from now on his username is checked one at a time.
    async fn after_ten_failures() -> (std::sync::Arc<ManualClock>, LoginLimiter) {
        let clock = ManualClock::at(Timestamp(1_000_000));
        let limiter = LoginLimiter::new(clock.clone(), LoginLimiter::WINDOW);
        for i in 0..LoginLimiter::PER_PAIR {
            limiter.begin("rahim", from(&format!("198.51.100.{i}"))).await.unwrap().failed().await;
        }
        (clock, limiter)
    }

    #[tokio::test]
    async fn the_line_serves_the_client_with_fewest_failures_first_and_waits_five_seconds_at_most() {
        let (clock, limiter) = after_ten_failures().await;
        limiter.begin("rahim", from("198.51.100.0")).await.unwrap().failed().await;
        let checking = limiter.begin("rahim", from("203.0.113.1")).await.unwrap();
        let mut guesser = Box::pin(limiter.begin("rahim", from("198.51.100.0")));
        assert!((&mut guesser).now_or_never().is_none(), "a guesser waits for the check running");
        let mut owner = Box::pin(limiter.begin("Rahim", from("192.0.2.7")));
        assert!((&mut owner).now_or_never().is_none(), "so does the owner");
        let again = limiter.begin("rahim", from("198.51.100.0")).now_or_never();
        assert_limited(again.expect("one place per client: refused at once").err());

        drop(checking);
        let owners = (&mut owner).now_or_never().expect("the owner, who never failed, goes first").unwrap();
        assert!((&mut guesser).now_or_never().is_none(), "one at a time");
        drop(owners);
        let guessers = (&mut guesser).now_or_never().expect("then the guesser").unwrap();

        // The wait is on the server's clock, and ends after five seconds with 429.
        let mut late = Box::pin(limiter.begin("rahim", from("192.0.2.8")));
        assert!((&mut late).now_or_never().is_none());
        clock.advance(LoginLimiter::LINE_WAIT - Duration::from_millis(1));
        assert!((&mut late).now_or_never().is_none(), "released early");
        clock.advance(Duration::from_millis(1));
        assert_limited((&mut late).now_or_never().expect("waited five seconds").err());
        drop(late);
        drop(guessers);
        // The place given up holds nothing: the next attempt is checked at once.
        let next = limiter.begin("rahim", from("192.0.2.8")).now_or_never();
        assert!(next.expect("not held").is_ok());
    }

    #[tokio::test]
    async fn a_full_line_makes_room_only_for_a_client_with_fewer_failures() {
        let (_clock, limiter) = after_ten_failures().await;
        let checking = limiter.begin("rahim", from("203.0.113.1")).await.unwrap();
        let mut line: Vec<_> = (0..LoginLimiter::LINE)
            .map(|i| Box::pin(limiter.begin("rahim", from(&format!("198.51.100.{i}")))))
            .collect();
        for place in &mut line {
            assert!(place.now_or_never().is_none());
        }
        // 198.51.100.9 failed as often as those in line: no room. The owner never failed: the
        // last in line with the most failures gives up its place to them.
        let no_room = limiter.begin("rahim", from("198.51.100.9")).now_or_never();
        assert_limited(no_room.expect("refused at once").err());
        let mut owner = Box::pin(limiter.begin("rahim", from("192.0.2.7")));
        assert!((&mut owner).now_or_never().is_none());
        let mut displaced = line.pop().unwrap();
        assert_limited((&mut displaced).now_or_never().expect("told at once").err());
        drop(checking);
        assert!((&mut owner).now_or_never().expect("the owner's turn").is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_an_ipv4_one_itself_however_written() {
        let client = |text: &str| LoginLimiter::client(text.parse().unwrap());
        assert_eq!(client("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(client("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), client("2001:db8:1:2::1"));
        assert_ne!(client("2001:db8:1:3::1"), client("2001:db8:1:2::1"));
        assert_eq!(client("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(client("203.0.113.9"), "203.0.113.9");
    }
}
