//! The server as a whole: its state, its router, and how it starts.

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use axum::{extract::DefaultBodyLimit, response::IntoResponse};
use pumppilot_engine::{AdminId, DeviceId, Timestamp, UserId};
use pumppilot_store::{Account, Change, KeyNews, Role, Store};
use tokio::net::TcpListener;
use tower::Layer as _;
use tower_http::{catch_panic::CatchPanicLayer, cors::CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    auth::{LoginLimiter, Sessions},
    config::{Secret, Settings},
    error::{self, ApiError},
    keys::{self, Keyring, PasswordChecks},
    routes,
    routes::RecentTaps,
    runtime::Runtime,
    web,
};

/// How often dead sessions are deleted.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Shared by every handler.
pub type AppState = Arc<App>;

/// The server's state.
pub struct App {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub runtime: Arc<Runtime>,
    pub keyring: Keyring,
    pub sessions: Sessions,
    pub logins: LoginLimiter,
    /// The bounded queue every sign-in's password check goes through.
    pub passwords: PasswordChecks,
    /// Device key hash → the device and its tenant (the poll path never touches the store).
    pub device_keys: RwLock<keys::ByKeyHash<(DeviceId, AdminId)>>,
    /// Card taps answered in the last moments (a retried tap gets the same answer).
    pub taps: RecentTaps,
    /// This server's counter windows and link secrets of the devices that sign (`crate::link`).
    pub counters: crate::link::CounterWindows,
    /// Devices that have signed a request: an unsigned one from them is refused (`crate::link`).
    pub signed_devices: RwLock<HashSet<DeviceId, keys::Ids>>,
    /// The firmware releases, for the poll path (`routes::firmware`).
    pub firmware: crate::routes::firmware::Releases,
    /// The figures of `GET /metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The live event streams this server may still open (`routes::live`).
    pub streams: crate::routes::StreamSlots,
    /// MQTT CONNECTs per client address (`crate::mqtt`).
    pub mqtt_budget: crate::mqtt::ConnectBudget,
    /// The devices connected to this server's MQTT listener, a session each (`crate::mqtt`).
    pub mqtt_connected: Arc<crate::mqtt::Connected>,
    /// The connections served at once, HTTP and MQTT together (`PUMPPILOT_MAX_CONNECTIONS`).
    pub connection_slots: Arc<crate::serve::Slots>,
}

impl App {
    /// Builds the state over an opened store and loads what the hot paths keep in memory.
    pub async fn new(settings: Settings, store: Arc<dyn Store>, secret: &Secret) -> Result<AppState, ApiError> {
        let clock = Arc::clone(&settings.clock);
        let max_hashing = settings.max_hashing;
        let max_streams = settings.max_streams as usize;
        let runtime =
            Runtime::new(Arc::clone(&store), Arc::clone(&clock), settings.device_lease_ms, settings.poll_interval_ms);
        runtime.set_motor_rules(settings.motor_rules());
        let device_keys = by_key_hash(store.device_keys().await?);
        // On a store several servers share, failed sign-ins are counted there, for every server.
        let logins = LoginLimiter::new(clock, LoginLimiter::WINDOW);
        let logins = if runtime.is_shared() { logins.shared_through(Arc::clone(&store)) } else { logins };
        let signed_devices = store.device_counters(None).await?.into_iter().map(|(device, _)| device).collect();
        let firmware = crate::routes::firmware::Releases::new(store.firmware_releases().await?);
        let mqtt_budget =
            crate::mqtt::ConnectBudget::new(Arc::clone(&settings.clock), settings.mqtt_connects_per_second);
        let connection_slots = crate::serve::Slots::new(settings.max_connections as usize);
        let app = Arc::new(App {
            settings,
            store,
            runtime,
            keyring: Keyring::new(secret.0.as_bytes()),
            sessions: Sessions::default(),
            logins,
            passwords: PasswordChecks::new(usize::try_from(max_hashing).unwrap_or(1)),
            device_keys: RwLock::new(device_keys),
            taps: RecentTaps::default(),
            counters: Default::default(),
            signed_devices: RwLock::new(signed_devices),
            firmware,
            metrics: Default::default(),
            streams: crate::routes::StreamSlots::new(max_streams),
            mqtt_budget,
            mqtt_connected: Default::default(),
            connection_slots,
        });
        app.runtime.start().await?;
        if let Some(changes) = app.runtime.store_changes() {
            tokio::spawn(follow_changes(Arc::downgrade(&app), changes));
        }
        crate::alerts::spawn(&app);
        let sweeper = Arc::downgrade(&app);
        tokio::spawn(async move {
            loop {
                let Some(app) = sweeper.upgrade() else { break };
                app.sweep_sessions().await;
                let next = app.settings.clock.sleep(SWEEP_EVERY);
                drop(app);
                next.await;
            }
        });
        Ok(app)
    }

    /// Reads the device keys, and which devices sign, again (after a gap in the feed): a device
    /// whose key changed or that is gone meanwhile is told as [`App::set_device_key`] tells it.
    async fn reload_device_keys(&self) {
        match self.store.device_keys().await {
            Ok(keys) => {
                let keys = by_key_hash(keys);
                let changed: Vec<DeviceId> = {
                    let mut cache = self.device_keys.write().expect("device keys lock");
                    let before = std::mem::replace(&mut *cache, keys);
                    before
                        .iter()
                        .filter(|(hash, known)| cache.get(*hash) != Some(known))
                        .map(|(_, (d, _))| *d)
                        .collect()
                };
                for device in changed {
                    self.key_gone(device);
                }
            }
            Err(err) => tracing::warn!(%err, "could not read the device keys again"),
        }
        match self.store.device_counters(None).await {
            Ok(signed) => {
                let signed = signed.into_iter().map(|(device, _)| device).collect();
                *self.signed_devices.write().expect("signed devices lock") = signed;
            }
            Err(err) => tracing::warn!(%err, "could not read which devices sign again"),
        }
    }

    /// The one place this server learns that a device's key changed, for a change made here (the
    /// owner's rotation or retirement) and one another server made (the store's feed): `key` is
    /// the device's key hash and tenant now, `None` once the device is retired. The old key stops
    /// at once: the cache forgets it, then the device's counter window and link secret here are
    /// forgotten (`CounterWindows::forget`; the floor in the store stays, so its counters stay
    /// refused) and its MQTT session here is told, which ends it (a report or command of that
    /// session, and the answer to a request held with the old key, check the key again too).
    /// Returns the tenant the device had here before, when it had another key (`None`: new to
    /// this server, or the key it has already, a change made here heard back from the feed).
    pub fn set_device_key(&self, device: DeviceId, key: Option<([u8; 32], AdminId)>) -> Option<AdminId> {
        let before = {
            let mut keys = self.device_keys.write().expect("device keys lock");
            if let Some((hash, admin)) = key
                && keys.get(&hash) == Some(&(device, admin))
            {
                return None;
            }
            let mut before = None;
            keys.retain(|_, (known, admin)| {
                let other = *known != device;
                if !other {
                    before = Some(*admin);
                }
                other
            });
            if let Some((hash, admin)) = key {
                keys.insert(hash, (device, admin));
            }
            before
        };
        if before.is_some() {
            self.key_gone(device);
        }
        before
    }

    /// What follows a device's old key leaving the cache ([`App::set_device_key`]).
    fn key_gone(&self, device: DeviceId) {
        self.counters.forget(device);
        self.mqtt_connected.key_changed(device);
    }

    /// A report of `device` may have been applied after the device was retired (it was on its way
    /// when the key went, here or at another server): a retired device must not stay the pump's
    /// controller, or the board that replaces it would be told OFF. Retires it again in the engine
    /// (which changes nothing unless it is the controller) when no key of it is known here and
    /// this server holds its tenant (it applied no report of it otherwise).
    pub async fn release_retired(&self, admin: AdminId, device: DeviceId) {
        if !self.runtime.holds(admin)
            || self.device_keys.read().expect("device keys lock").values().any(|(known, _)| *known == device)
        {
            return;
        }
        let event = pumppilot_engine::Event::RetireDevice { device };
        let extras = crate::runtime::Extras::default();
        if let Err(err) = self.runtime.apply(admin, event, extras, |_, _| ()).await {
            tracing::warn!(%device, %err, "a retired device could not be let go of as the controller");
        }
    }

    /// Deletes sessions that can never be used again, and forgets expired ones held in memory.
    pub async fn sweep_sessions(&self) {
        let now = self.now();
        self.sessions.forget_expired(now);
        match self.store.purge_sessions(now).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "deleted expired and revoked sessions"),
            Err(err) => tracing::warn!(%err, "could not delete expired sessions; trying again in an hour"),
        }
    }

    /// The time on the server's clock.
    pub fn now(&self) -> Timestamp {
        self.settings.clock.now()
    }

    /// The display name of one account (empty when it is gone).
    pub async fn name(&self, id: UserId) -> Result<String, ApiError> {
        Ok(self.sessions.account(self, id).await?.map(|a| a.name.clone()).unwrap_or_default())
    }

    /// The display name of an account, for entries in the queue.
    pub async fn names(&self, ids: Vec<UserId>) -> Result<HashMap<UserId, String>, ApiError> {
        let mut names = HashMap::new();
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
                slot.insert(self.name(id).await?);
            }
        }
        Ok(names)
    }
}

/// The device keys as the poll path looks them up (a key hash that is not 32 bytes long matches no
/// key a device can present).
fn by_key_hash(keys: Vec<pumppilot_store::DeviceKey>) -> keys::ByKeyHash<(DeviceId, AdminId)> {
    let mut by_hash = keys::ByKeyHash::default();
    by_hash.reserve(keys.len());
    for key in keys {
        if let Ok(hash) = <[u8; 32]>::try_from(key.key_hash.as_slice()) {
            by_hash.insert(hash, (key.device, key.admin));
        }
    }
    by_hash
}

/// The whole HTTP surface, with the OpenAPI document of every route in it: the router, and once
/// around it the layers every request meets.
pub fn router(
    app: AppState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let (api, openapi) =
        OpenApiRouter::with_openapi(routes::openapi::ApiDoc::openapi()).merge(routes::api()).split_for_parts();
    let openapi = Arc::new(openapi);
    // The dashboard calls the API in-process, through the same router.
    let dashboard = web::router(Arc::clone(&app), api.clone().with_state(Arc::clone(&app)));
    let routes = api
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let openapi = Arc::clone(&openapi);
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .merge(crate::metrics::routes())
        .merge(dashboard) // its fallback answers unknown paths: a page for browsers, JSON otherwise
        .method_not_allowed_fallback(error::wrong_method)
        // Per route: the edge counts answers by route template, known once the route is matched.
        .layer(crate::metrics::Edge(Arc::clone(&app)))
        .with_state(app);
    // Wrapped once around the whole router, not around each route: a layer given to
    // `Router::layer` is cloned with every route it wraps at every request.
    let routes = tower::ServiceBuilder::new().layer(DefaultBodyLimit::max(BODY_LIMIT)).service(routes);
    tower::ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked");
            error::ApiError::internal().into_response()
        }))
        .service(CorsButDevices { cors: Arc::new(cors()), routes })
}

/// [`cors`] and reads answered as unchanged ([`crate::unchanged`]) for every route but the
/// devices' ([`routes::device::PATHS`]): a board is no browser,
/// and no browser page calls a device route (each takes a device key, which no page holds), so a
/// device's answer goes without `access-control-allow-origin`, and its request without the CORS
/// layer's work (a preflight there is answered as any `OPTIONS` of the route: 405).
///
/// The CORS policy is shared, and put around the routes only for a request that needs it: the
/// service is cloned for every connection (`serve`), and a device's requests clone none of the
/// policy's lists.
#[derive(Clone)]
struct CorsButDevices<S> {
    cors: Arc<CorsLayer>,
    routes: S,
}

impl<S> tower::Service<axum::extract::Request> for CorsButDevices<S>
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response> + Clone,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        futures_util::future::BoxFuture<'static, Result<Self::Response, S::Error>>,
        S::Future,
    >;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        use futures_util::future::{Either, FutureExt as _};
        match request.uri().path().starts_with(routes::device::PATHS) {
            true => Either::Right(self.routes.call(request)),
            // The routes made ready above go into the CORS service; a clone takes their place.
            false => {
                let clone = self.routes.clone();
                let ready = std::mem::replace(&mut self.routes, clone);
                let read = crate::unchanged::Read::of(&request);
                let answer = self.cors.layer(ready).call(request);
                Either::Left(
                    async move {
                        let response = answer.await?;
                        Ok(match read {
                            Some(read) => read.answer(response).await,
                            None => response,
                        })
                    }
                    .boxed(),
                )
            }
        }
    }
}

/// Lets the app's web build and scripts on other origins call the API with bearer tokens. No
/// credentials: a browser never sends the session cookie cross-origin under this policy, so the
/// cookie's CSRF rules are untouched.
fn cors() -> CorsLayer {
    use axum::http::{Method, header};
    CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::ACCEPT_LANGUAGE,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static(crate::error::ONCE_KEY_HEADER),
        ])
        // The app's web build reads the tag to send it back (`crate::unchanged`).
        .expose_headers([header::ETAG])
        .max_age(std::time::Duration::from_secs(3600))
        // No `Vary`: every answer of this policy is the same whatever the request's `Origin` and
        // preflight headers (any origin, fixed lists), so there is nothing for a cache to tell apart.
        .vary([])
}

/// Creates the master admin on first start. Returns the generated password when none was given,
/// so the caller can print it once.
pub async fn bootstrap_master(app: &App) -> Result<Option<(String, String)>, ApiError> {
    first_master(app, |_, _| Ok(())).await
}

/// [`bootstrap_master`], handing a made-up password (with the username) to `keep` before the
/// account is made: when `keep` fails, its sentence is the error and no master is made (the next
/// start makes up another), so a master never has a password nobody was given.
pub async fn first_master(
    app: &App,
    keep: impl FnOnce(&str, &str) -> Result<(), String>,
) -> Result<Option<(String, String)>, ApiError> {
    if !app.store.accounts(Role::Master, None).await?.is_empty() {
        return Ok(None);
    }
    let (username, password, generated) = match (&app.settings.master_username, &app.settings.master_password) {
        (Some(username), Some(password)) => (username.clone(), password.0.clone(), false),
        _ => ("master".to_string(), Keyring::new_token("")[..16].to_string(), true),
    };
    if generated {
        keep(&username, &password)
            .map_err(|sentence| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", sentence))?;
    }
    create_master(app.store.as_ref(), &username, &password, app.now()).await?;
    Ok(generated.then_some((username, password)))
}

/// True when every character may stand in a username: letters, digits and `._+-@`.
pub fn username_chars(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_alphanumeric() || "._+-@".contains(c))
}

/// A username is 3 to 64 of letters, digits and `._+-@` (a phone number works).
pub fn check_username(username: &str) -> Result<(), ApiError> {
    let ok = (3..=64).contains(&username.len()) && username_chars(username);
    if ok { Ok(()) } else { Err(ApiError::validation("username: 3 to 64 of letters, digits and . _ + - @")) }
}

/// Creates a master admin account.
pub async fn create_master(
    store: &dyn Store,
    username: &str,
    password: &str,
    now: Timestamp,
) -> Result<Account, ApiError> {
    check_username(username)?;
    crate::routes::check_password("password", password)?;
    let account = Account {
        id: UserId::new(),
        username: username.to_ascii_lowercase(),
        name: "Master admin".into(),
        role: Role::Master,
        admin_id: None,
        password_hash: keys::hash_password(password.to_string()).await?,
        suspended: false,
        created_at: now,
    };
    store.create_account(&account).await?;
    Ok(account)
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// Where devices connect over MQTT, when `PUMPPILOT_MQTT_BIND` is set.
    pub mqtt_addr: Option<SocketAddr>,
    pub app: AppState,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
    mqtt: Option<crate::mqtt::Listener>,
    broker: Option<crate::mqtt::Bridge>,
}

impl Running {
    /// Stops accepting connections, lets the requests in flight finish, closes the devices' MQTT
    /// connections, then writes the buffered device telemetry.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        if let Some(mqtt) = self.mqtt {
            mqtt.shutdown().await;
        }
        if let Some(broker) = self.broker {
            broker.shutdown().await;
        }
        self.task.await??;
        self.app.runtime.flush_all_telemetry().await;
        Ok(())
    }
}

/// The addresses a server listens on, bound before it opens its store: HTTP (`settings.bind`)
/// and, when set, MQTT (`settings.mqtt_bind`). A start whose address is taken then stops before
/// it makes anything (a database, its secret, a master).
pub struct Listeners {
    http: TcpListener,
    mqtt: Option<TcpListener>,
}

impl Listeners {
    /// Binds the settings' addresses (port 0 picks a free one); an error names the variable.
    pub async fn bind(settings: &Settings) -> anyhow::Result<Listeners> {
        let http = TcpListener::bind(settings.bind)
            .await
            .map_err(|e| anyhow::anyhow!("PUMPPILOT_BIND {}: {e}", settings.bind))?;
        let mqtt = match settings.mqtt_bind {
            Some(addr) => {
                Some(TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("PUMPPILOT_MQTT_BIND {addr}: {e}"))?)
            }
            None => None,
        };
        Ok(Listeners { http, mqtt })
    }
}

/// Binds `settings.bind` (port 0 picks a free one) and serves until [`Running::shutdown`].
pub async fn spawn(settings: Settings, store: Arc<dyn Store>, secret: Secret) -> anyhow::Result<Running> {
    let listeners = Listeners::bind(&settings).await?;
    spawn_on(listeners, settings, store, secret).await
}

/// Serves on `listeners`, bound already, until [`Running::shutdown`].
pub async fn spawn_on(
    listeners: Listeners,
    settings: Settings,
    store: Arc<dyn Store>,
    secret: Secret,
) -> anyhow::Result<Running> {
    let Listeners { http: listener, mqtt } = listeners;
    let addr = listener.local_addr()?;
    let broker = settings.mqtt_broker.clone();
    let app = App::new(settings, store, &secret).await.map_err(|e| anyhow::anyhow!("starting: {}", e.message))?;
    let mqtt = match mqtt {
        Some(listener) => Some(crate::mqtt::Listener::on(&app, listener)?),
        None => None,
    };
    let broker = broker.map(|broker| crate::mqtt::Bridge::start(&app, &broker));
    let router = router(Arc::clone(&app));
    let limits = crate::serve::Limits {
        slots: Arc::clone(&app.connection_slots),
        header_timeout: app.settings.header_timeout,
        proxies: app.settings.trusted_proxies.clone(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::serve::serve(listener, router, limits, async {
        let _ = stopped.await;
    }));
    Ok(Running { addr, mqtt_addr: mqtt.as_ref().map(|m| m.addr), app, task, stop, mqtt, broker })
}

/// Keeps the caches in front of a shared store true to what any server changed: a device's key
/// (added, rotated, retired), a session (revoked), an account (suspended); after a gap in the
/// feed, everything is forgotten and read again.
async fn follow_changes(app: std::sync::Weak<App>, mut changes: tokio::sync::broadcast::Receiver<Change>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(_)) => Change::Reset,
            Err(RecvError::Closed) => return,
        };
        let Some(app) = app.upgrade() else { return };
        match change {
            Change::Device { id, key, signs } => {
                if signs {
                    app.signed_devices.write().expect("signed devices lock").insert(id);
                }
                let retired = matches!(key, KeyNews::Retired);
                let (admin, key_hash) = match key {
                    KeyNews::Unchanged => continue,
                    KeyNews::Retired => (None, None),
                    KeyNews::Added { admin, key_hash } => (Some(admin), Some(key_hash)),
                    // A device stays with its tenant: the one its key here names.
                    KeyNews::Rotated { key_hash } => {
                        let admin = (app.device_keys.read().expect("device keys lock").values())
                            .find(|(known, _)| *known == id)
                            .map(|(_, admin)| *admin);
                        if admin.is_none() {
                            // Never added here (it came before the feed did): all read again, once.
                            app.reload_device_keys().await;
                            continue;
                        }
                        (admin, Some(key_hash))
                    }
                };
                // A key hash that is not 32 bytes long matches no key a device can present.
                let key = key_hash.as_deref().and_then(|h| <[u8; 32]>::try_from(h).ok()).zip(admin);
                let before = app.set_device_key(id, key);
                if let (Some(admin), true) = (before, retired) {
                    // Retired at another server, which let go of it as the controller: a report
                    // applied here since (before this news came) must not have made it one again.
                    let app = std::sync::Arc::clone(&app);
                    tokio::spawn(async move { app.release_retired(admin, id).await });
                }
            }
            Change::Session { id } => app.sessions.forget(&[id]),
            Change::Account { id } => app.sessions.forget_account(id),
            Change::Firmware => app.firmware.reload(&app).await,
            Change::Reset => {
                app.sessions.forget_all();
                app.reload_device_keys().await;
                app.firmware.reload(&app).await;
            }
            Change::Tenant { .. } | Change::Beat { .. } | Change::Live => {}
        }
    }
}
