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
    if account.suspended {
        return Err(ApiError::suspended());
    }
    if account.role == Role::User
        && let Some(admin) = account.admin_id
    {
        let owner = app.sessions.account(app, admin.0).await?;
        if owner.is_none_or(|owner| owner.suspended) {
            return Err(ApiError::suspended());
        }
    }
    Ok(())
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
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(&ip.to_canonical()));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
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

/// Puts the request's [`ClientIp`] in its extensions, for the login limiter and logs (called for
/// every request by `metrics::Edge`). Without trusted proxies the client is the peer, which
/// [`client_of`] reads from the connection: nothing to do.
pub fn resolve_client(app: &App, request: &mut axum::extract::Request) {
    if app.settings.trusted_proxies.is_empty() {
        return;
    }
    if let Some(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) {
        let client = client_ip(&app.settings.trusted_proxies, peer, request.headers());
        request.extensions_mut().insert(ClientIp(client));
    }
}

/// Sign-in limits, counted before any password is hashed, on the server's clock.
///
/// - Failures are limited per (username, client address) pair: after [`LoginLimiter::PER_PAIR`]
///   failed attempts in the window, that pair gets 429 `RATE_LIMITED` until the window passes. A
///   guesser elsewhere never locks the owner out from their own phone.
/// - Per username, only [`LoginLimiter::PER_USERNAME_AT_ONCE`] checks run at once (one once the
///   username failed [`LoginLimiter::PER_PAIR`] times in the window from anywhere): parallel
///   guesses are refused with 429 before hashing, yet the owner's own attempt is slowed, never
///   locked out.
/// - Per address, once [`LoginLimiter::PER_ADDRESS`] attempts failed in the window, only
///   [`LoginLimiter::PER_ADDRESS_AT_ONCE`] checks from it run at once: a village behind one NAT
///   is slowed, not shut out.
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
    /// Key → checks running now.
    running: HashMap<String, u32>,
}

/// One sign-in attempt admitted by the [`LoginLimiter`]; its checks stop running when dropped.
pub struct LoginAttempt<'a> {
    limiter: &'a LoginLimiter,
    keys: [String; 2],
    pair: String,
}

impl LoginLimiter {
    /// The window the server uses: 15 minutes.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Failed attempts per (username, address) pair in the window before it gets 429.
    pub const PER_PAIR: u32 = 10;
    /// Checks of one username that run at once (one after [`Self::PER_PAIR`] failures).
    pub const PER_USERNAME_AT_ONCE: u32 = 2;
    /// Failures from one address in the window after which its checks are throttled.
    pub const PER_ADDRESS: u32 = 50;
    /// Checks from a throttled address that run at once.
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

    fn keys(username: &str, addr: Option<std::net::IpAddr>) -> (String, String, String) {
        let addr = addr.map(|a| a.to_string()).unwrap_or_default();
        let user = username.to_lowercase();
        (format!("u:{user}"), format!("a:{addr}"), format!("p:{user}|{addr}"))
    }

    /// Failures of `key` in the window, and the milliseconds until its window ends.
    fn recent(&self, state: &LimiterState, key: &str, now: Timestamp) -> (u32, i64) {
        match state.failures.get(key) {
            Some((since, count)) if now - *since < self.window_ms => (*count, self.window_ms - (now - *since)),
            _ => (0, 0),
        }
    }

    /// Admits one attempt before its password is hashed, or refuses it with 429 `RATE_LIMITED`
    /// and `Retry-After`.
    pub async fn begin(&self, username: &str, addr: Option<std::net::IpAddr>) -> Result<LoginAttempt<'_>, ApiError> {
        let now = self.clock.now();
        let (user, address, pair) = Self::keys(username, addr);
        self.catch_up(&[user.clone(), address.clone(), pair.clone()], now).await;
        let mut state = self.state.lock().expect("limiter lock");
        let (pair_failures, pair_left_ms) = self.recent(&state, &pair, now);
        if pair_failures >= Self::PER_PAIR {
            tracing::warn!(username, ?addr, "sign-in refused: too many failures for this username from this address");
            return Err(ApiError::rate_limited(
                "too many failed sign-ins for this username from here; wait a few minutes",
                u64::try_from(pair_left_ms).map_or(1, |ms| ms.div_ceil(1000)),
            ));
        }
        let user_budget =
            if self.recent(&state, &user, now).0 >= Self::PER_PAIR { 1 } else { Self::PER_USERNAME_AT_ONCE };
        if state.running.get(&user).copied().unwrap_or(0) >= user_budget {
            tracing::warn!(username, ?addr, "sign-in refused: this username is being checked already");
            return Err(ApiError::rate_limited("this username is being checked already; try again in a moment", 1));
        }
        if self.recent(&state, &address, now).0 >= Self::PER_ADDRESS
            && state.running.get(&address).copied().unwrap_or(0) >= Self::PER_ADDRESS_AT_ONCE
        {
            tracing::warn!(username, ?addr, "sign-in refused: many failures from this address");
            return Err(ApiError::rate_limited("many failed sign-ins from here; try again in a moment", 1));
        }
        for key in [&user, &address] {
            *state.running.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(LoginAttempt { limiter: self, keys: [user, address], pair })
    }
}

impl LoginAttempt<'_> {
    /// Counts this attempt as failed, for its username, its address and the pair (in the shared
    /// store too, when there is one).
    pub async fn failed(&self) {
        let limiter = self.limiter;
        let now = limiter.clock.now();
        if let Some(store) = &limiter.shared {
            let keys = [self.keys[0].clone(), self.keys[1].clone(), self.pair.clone()];
            if let Err(err) = store.add_login_failure(&keys, now, limiter.window_ms).await {
                tracing::warn!(%err, "could not count a failed sign-in in the shared store");
            }
        }
        let mut state = limiter.state.lock().expect("limiter lock");
        if state.failures.len() > 100_000 {
            state.failures.retain(|_, (since, _)| now - *since < limiter.window_ms);
        }
        for key in self.keys.iter().chain([&self.pair]) {
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
        let mut state = self.limiter.state.lock().expect("limiter lock");
        for key in &self.keys {
            if let Some(running) = state.running.get_mut(key) {
                *running = running.saturating_sub(1);
                if *running == 0 {
                    state.running.remove(key);
                }
            }
        }
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
