//! Alerts on this server: their settings (`PUMPPILOT_SMS_*`, `PUMPPILOT_EXPO_*`,
//! `PUMPPILOT_ALERT_*`), the outbox worker's loop on the server's clock, the watch that tells
//! an owner once when their device has been silent too long (or its load shedding has lasted, or
//! its commands have not reached it during a run), and the hourly purge of old
//! notifications (read ones after 90 days, every one after a year), of push tickets past a day,
//! and of firmware download records past a week.

use std::{collections::HashMap, sync::Arc, time::Duration};

use pumppilot_alerts::{BodyFormat, EXPO_PUSH_URL, ExpoPush, HttpClient, Limits, Outbox, SmsGateway, receipts_url_for};
use pumppilot_engine::{AdminId, DeviceId, DevicePoll, Facts, Notice, NoticeKind, Timestamp};
use pumppilot_store::{MinuteRequest, Store};

use crate::{app::App, config::ConfigError, link_news::Links, runtime::Runtime};

/// How often the outbox is looked at.
const SEND_EVERY: Duration = Duration::from_secs(2);
/// How often devices are checked for silence.
const WATCH_EVERY: Duration = Duration::from_secs(30);
/// How often old notifications are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// A read notification is kept this long.
pub const READ_KEPT_MS: i64 = 90 * DAY_MS;
/// Any notification is kept this long.
pub const KEPT_MS: i64 = 365 * DAY_MS;

/// What this server sends alerts through. Secrets never print.
#[derive(Clone, Default)]
pub struct AlertSettings {
    pub sms: Option<SmsGateway>,
    pub push: Option<ExpoPush>,
    pub limits: Limits,
    /// The shared secret the SMS gateway's inbound webhook presents (`PUMPPILOT_SMS_INBOUND_SECRET`).
    pub inbound_secret: Option<String>,
    /// An owner hears of a device silent this long (0: never).
    pub offline_after_ms: i64,
    /// An owner hears of load shedding that lasts this long (0: never).
    pub shedding_after_ms: i64,
    /// An owner hears of a controller that says this long during a run that it holds no command
    /// although told ON (0: never).
    pub no_command_after_ms: i64,
    /// The client alerts are posted through: the Mozilla roots, plus the certificates of
    /// `PUMPPILOT_ALERTS_CA_FILE` when it is set.
    pub http: HttpClient,
}

impl std::fmt::Debug for AlertSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSettings")
            .field("sms", &self.sms.as_ref().map(|s| &s.url))
            .field("push", &self.push.as_ref().map(|p| &p.url))
            .field("limits", &self.limits)
            .field("offline_after_ms", &self.offline_after_ms)
            .field("shedding_after_ms", &self.shedding_after_ms)
            .field("no_command_after_ms", &self.no_command_after_ms)
            .finish_non_exhaustive()
    }
}

/// The SMS template used when `PUMPPILOT_SMS_TEMPLATE` is not set.
pub const DEFAULT_SMS_TEMPLATE: &str = r#"{"to":"{to}","from":"{from}","text":"{text}","reference":"{id}"}"#;

fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(text) = lookup(variable) else { return Ok(default) };
    text.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| ConfigError {
        variable,
        problem: format!("`{text}` must be a whole number from {} to {}", range.start(), range.end()),
    })
}

impl AlertSettings {
    /// Reads the alert settings through `lookup` (see the README's "Alerts").
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<AlertSettings, ConfigError> {
        let timeout = Duration::from_secs(10);
        let sms = match lookup("PUMPPILOT_SMS_URL") {
            None => None,
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError {
                        variable: "PUMPPILOT_SMS_URL",
                        problem: "must be an http(s) URL".into(),
                    });
                }
                let format = match lookup("PUMPPILOT_SMS_FORMAT").as_deref() {
                    None | Some("json") => BodyFormat::Json,
                    Some("form") => BodyFormat::Form,
                    Some(other) => {
                        return Err(ConfigError {
                            variable: "PUMPPILOT_SMS_FORMAT",
                            problem: format!("`{other}` must be json or form"),
                        });
                    }
                };
                let template = lookup("PUMPPILOT_SMS_TEMPLATE").unwrap_or_else(|| DEFAULT_SMS_TEMPLATE.to_owned());
                if !template.contains("{to}") || !template.contains("{text}") {
                    return Err(ConfigError {
                        variable: "PUMPPILOT_SMS_TEMPLATE",
                        problem: "must contain {to} and {text}".into(),
                    });
                }
                Some(SmsGateway {
                    url,
                    template,
                    format,
                    authorization: lookup("PUMPPILOT_SMS_AUTHORIZATION"),
                    from: lookup("PUMPPILOT_SMS_FROM").unwrap_or_else(|| "PumpPilot".to_owned()),
                    timeout,
                })
            }
        };
        let push = match lookup("PUMPPILOT_EXPO_PUSH").as_deref() {
            None | Some("off") => None,
            Some("on") => {
                let url = lookup("PUMPPILOT_EXPO_PUSH_URL").unwrap_or_else(|| EXPO_PUSH_URL.to_owned());
                let receipts = lookup("PUMPPILOT_EXPO_RECEIPTS_URL").unwrap_or_else(|| receipts_url_for(&url));
                for (variable, url) in [("PUMPPILOT_EXPO_PUSH_URL", &url), ("PUMPPILOT_EXPO_RECEIPTS_URL", &receipts)] {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(ConfigError { variable, problem: "must be an http(s) URL".into() });
                    }
                }
                Some(ExpoPush {
                    url,
                    receipts_url: receipts,
                    access_token: lookup("PUMPPILOT_EXPO_ACCESS_TOKEN"),
                    timeout,
                })
            }
            Some(other) => {
                return Err(ConfigError {
                    variable: "PUMPPILOT_EXPO_PUSH",
                    problem: format!("`{other}` must be on or off"),
                });
            }
        };
        let http = match lookup("PUMPPILOT_ALERTS_CA_FILE") {
            None => HttpClient::new(),
            Some(path) => HttpClient::with_ca_file(std::path::Path::new(&path))
                .map_err(|e| ConfigError { variable: "PUMPPILOT_ALERTS_CA_FILE", problem: e.to_string() })?,
        };
        let defaults = Limits::default();
        let limits = Limits {
            per_person_per_hour: number(lookup, "PUMPPILOT_ALERTS_PER_PERSON_PER_HOUR", 20, 1..=1000)? as u32,
            sms_per_minute: number(lookup, "PUMPPILOT_SMS_PER_MINUTE", 60, 1..=100_000)? as u32,
            ..defaults
        };
        let offline_minutes = number(lookup, "PUMPPILOT_ALERT_OFFLINE_MINUTES", 10, 0..=10_080)?;
        let shedding_minutes = number(lookup, "PUMPPILOT_ALERT_LOAD_SHEDDING_MINUTES", 180, 0..=10_080)?;
        let no_command_minutes = number(lookup, "PUMPPILOT_ALERT_NO_COMMAND_MINUTES", 5, 0..=10_080)?;
        Ok(AlertSettings {
            sms,
            push,
            limits,
            inbound_secret: lookup("PUMPPILOT_SMS_INBOUND_SECRET"),
            offline_after_ms: i64::try_from(offline_minutes).unwrap_or(0) * 60_000,
            shedding_after_ms: i64::try_from(shedding_minutes).unwrap_or(0) * 60_000,
            no_command_after_ms: i64::try_from(no_command_minutes).unwrap_or(0) * 60_000,
            http,
        })
    }
}

/// Starts the outbox worker (when a channel is set up) and the device watch, each on the server's
/// clock, for as long as the app lives.
pub fn spawn(app: &Arc<App>) {
    let settings = app.settings.alerts.clone();
    if settings.sms.is_some() || settings.push.is_some() {
        let sender = format!("{}-{}", std::process::id(), uuid_like());
        let outbox = Outbox::new(Arc::clone(&app.store), sender, settings.sms, settings.push, settings.limits)
            .with_http(settings.http)
            .taking_texts(settings.inbound_secret.is_some());
        let weak = Arc::downgrade(app);
        tokio::spawn(async move {
            loop {
                let Some(app) = weak.upgrade() else { break };
                // A full round may have left more: go again at once.
                loop {
                    match outbox.run_once(app.now()).await {
                        Ok(round) if round.claimed == outbox.batch() => continue,
                        Ok(_) => break,
                        Err(err) => {
                            tracing::warn!(%err, "could not deliver alerts; trying again");
                            break;
                        }
                    }
                }
                let next = app.settings.clock.sleep(SEND_EVERY);
                drop(app);
                next.await;
            }
        });
    }
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        loop {
            let Some(app) = weak.upgrade() else { break };
            purge_notifications(&app).await;
            crate::routes::firmware::purge_downloads(&app).await;
            let next = app.settings.clock.sleep(PURGE_EVERY);
            drop(app);
            next.await;
        }
    });
    if settings.offline_after_ms > 0 || settings.shedding_after_ms > 0 || settings.no_command_after_ms > 0 {
        let weak = Arc::downgrade(app);
        tokio::spawn(async move {
            let mut watched = WatchMemory::default();
            loop {
                let Some(app) = weak.upgrade() else { break };
                watch_devices(&app, &mut watched).await;
                let next = app.settings.clock.sleep(WATCH_EVERY);
                drop(app);
                next.await;
            }
        });
    }
}

/// Deletes read notifications older than [`READ_KEPT_MS`] and all older than [`KEPT_MS`], and
/// the push tickets whose receipts are no longer worth asking for (`Limits::receipt_gives_up_ms`
/// after their push), by the server's clock (every server does, hourly; a second purge finds
/// nothing).
pub async fn purge_notifications(app: &App) {
    let now = app.now();
    match app.store.purge_notifications(now - READ_KEPT_MS, now - KEPT_MS).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "purged old notifications"),
        Err(err) => tracing::warn!(%err, "could not purge old notifications"),
    }
    match app.store.purge_push_tickets(now).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "purged push tickets whose receipts never came"),
        Err(err) => tracing::warn!(%err, "could not purge old push tickets"),
    }
}

fn uuid_like() -> String {
    pumppilot_store::NotificationId::new().to_string()
}

/// What the device watch remembers between rounds ([`watch_pumps`]).
#[derive(Default)]
pub struct WatchMemory {
    /// Each pump's current load shedding spell, as this server first saw it.
    spells: HashMap<AdminId, Spell>,
    /// Since when the store has been failing (told to every owner once it works again).
    outage_since: Option<Timestamp>,
    /// When the last round that read the store ran.
    last_round: Option<Timestamp>,
    /// The key of each pump's silence already told (the device's name is read once a silence).
    silences_told: HashMap<AdminId, String>,
    /// The key of each pump's spell without a command already told.
    no_commands_told: HashMap<AdminId, String>,
    /// Every pump's link, as the last round left it.
    links: Links,
}

impl WatchMemory {
    /// What the watch knows of `admin`'s pump's record as of its last round.
    pub fn link(&self, admin: AdminId) -> Option<pumppilot_store::PumpLink> {
        self.links.get(admin)
    }
}

/// A load shedding spell: its key (naming when the grid last came back before it), when this
/// server first saw it, and whether its owner has been told (the device's name is read once a
/// spell).
struct Spell {
    key: String,
    since: Timestamp,
    told: bool,
}

/// On a shared store whose change feed fell behind, the watch skips its rounds (each reads the
/// pumps it watches from the store, which a lagging feed says is already too slow), but never for longer than
/// this: a device silent that long past the set time is told even if the feed never catches up.
pub const WATCH_STALE_AT_MOST: Duration = Duration::from_secs(5 * 60);

/// A store outage at least this long is told to every owner once the store works again.
const STORE_TROUBLE_AFTER_MS: i64 = 60_000;

/// Tells each owner whose device has been silent longer than the set time, once per silence (the
/// notice's key names the last poll), whose load shedding has lasted longer than the set time,
/// once per spell (the key names when the grid last came back before it; the spell is timed from
/// when this server first saw it), and whose controller has said during a run for longer than the
/// set time that it holds no command although told ON, once per spell (the key names its first
/// such report, which the pump keeps: `DeviceLink::without_command_since`; the spell ends with a
/// report of anything else, or when the run no longer waits for it). On a shared store one server
/// watches every pump (`Runtime::watches_every_pump`, chosen among the live servers as a pump's
/// timer is); while servers disagree on who it is (one joins or dies), two may watch, and the key
/// still makes each notice written once whoever writes it, as after a restart. A pump held here is
/// read from memory; any other (most: a server holds only the pumps it needs) from what its record
/// says (its [`PumpLink`](pumppilot_store::PumpLink): on a shared store every pump's is read once
/// and then kept up to date from the change feed, `crate::link_news`; on a store of one server
/// they are read each round) and the heartbeat that vouches for its device
/// (`Runtime::last_poll_of`): watching never brings a pump into memory.
pub async fn watch_devices(app: &App, watched: &mut WatchMemory) {
    watch_pumps(&app.runtime, app.store.as_ref(), &app.settings.alerts, watched).await;
}

/// The owner's notice of what a pump's device did for long (`kind`, keyed `key`, lasting since
/// `since`, dated `at`), named as the owner named the device that reports it.
async fn device_notice(
    store: &dyn Store,
    admin: AdminId,
    controller: Option<DeviceId>,
    kind: NoticeKind,
    key: &str,
    since: Timestamp,
    at: Timestamp,
) -> Notice {
    let device = match controller {
        Some(controller) => device_name(store, admin, controller).await,
        None => None,
    };
    let facts = Facts { since: Some(since), device, ..Facts::default() };
    Notice { key: Some(key.to_owned()), ..Notice::new(admin.0, admin, kind, at, facts) }
}

/// One round of [`watch_devices`], on `runtime`'s clock and state and `store`.
///
/// On a shared store whose change feed is behind (`Runtime::is_fresh`), the round is skipped and
/// reads nothing, for at most [`WATCH_STALE_AT_MOST`] since the last round that ran. Nothing is
/// lost by it: a silence's notice is keyed and timed by the last poll (the next round that runs
/// writes it, with the time the device went offline), a load shedding spell is timed from when a
/// round first saw it (as after a restart), and the rounds skipped are at most a few minutes
/// apart, so a silence that lasts that much longer than the set time is always told.
pub async fn watch_pumps(runtime: &Runtime, store: &dyn Store, settings: &AlertSettings, watched: &mut WatchMemory) {
    let after = settings.offline_after_ms;
    let shedding_after = settings.shedding_after_ms;
    let no_command_after = settings.no_command_after_ms;
    let clock = runtime.clock();
    if !runtime.watches_every_pump() {
        // Another server watches; this one forgets its spells (as after a restart), its outage,
        // which the watching server saw too if the store was down for everyone, and the links.
        *watched = WatchMemory::default();
        runtime.forget_link_news();
        return;
    }
    // Nothing can be written while the store fails: remember since when, and tell every owner
    // once it works again (this server's outage: the key names its start).
    if let Some(since) = runtime.store_outage() {
        watched.outage_since.get_or_insert(since);
        return;
    }
    let started = clock.now();
    let stale_at_most = i64::try_from(WATCH_STALE_AT_MOST.as_millis()).unwrap_or(i64::MAX);
    if runtime.is_shared()
        && !runtime.is_fresh()
        && let Some(last) = watched.last_round.filter(|last| (0..stale_at_most).contains(&(started - *last)))
    {
        tracing::debug!(
            last_round_ms_ago = started - last,
            "the store's change feed is behind: the device watch skips this round and reads nothing"
        );
        return;
    }
    watched.last_round = Some(started);
    let outage = watched.outage_since.take().filter(|since| started - *since >= STORE_TROUBLE_AFTER_MS);
    let links = match watched.links.update(runtime.link_news(), store).await {
        Ok(links) => links,
        Err(err) => {
            tracing::warn!(%err, "could not list pumps to watch");
            return;
        }
    };
    let mut notices = Vec::new();
    // The silences and the spells told by this round, remembered once written.
    let mut silences = Vec::new();
    let mut spells = Vec::new();
    let mut no_commands = Vec::new();
    if let Some(since) = outage {
        for admin in links.keys().copied() {
            let facts = Facts { since: Some(since), ..Facts::default() };
            notices.push(Notice {
                key: Some(format!("store:{}:{admin}", since.millis())),
                ..Notice::new(admin.0, admin, NoticeKind::StoreTrouble, clock.now(), facts)
            });
        }
    }
    for link in links.values() {
        let admin = link.admin;
        let seen = if runtime.holds(admin) {
            runtime
                .read(admin, |t, now| {
                    let online = t.device.online_at(now);
                    let shedding = t.device.load_shedding && online;
                    let without_command = t.device.without_command_since.filter(|_| online);
                    (t.device.last_poll_at, shedding, t.motor.grid_up_since, t.controller, without_command)
                })
                .await
        } else {
            let last_poll = runtime.last_poll_of(link);
            let online = last_poll.is_some_and(|at| clock.now() < at + runtime.lease_ms());
            let without_command = link.without_command_since.filter(|_| online);
            Ok((last_poll, link.load_shedding && online, link.grid_up_since, link.controller, without_command))
        };
        let Ok((last_poll, shedding_now, grid_up_since, controller, without_command)) = seen else { continue };
        let now = clock.now();
        if shedding_now && shedding_after > 0 {
            let key = format!("shedding:{admin}:{}", grid_up_since.map_or(0, |t| t.millis()));
            let spell =
                watched.spells.entry(admin).or_insert_with(|| Spell { key: key.clone(), since: now, told: false });
            if spell.key != key {
                *spell = Spell { key: key.clone(), since: now, told: false };
            }
            let since = spell.since;
            if now - since >= shedding_after && !spell.told {
                let kind = NoticeKind::LoadSheddingLong;
                notices.push(device_notice(store, admin, controller, kind, &key, since, now).await);
                spells.push((admin, key));
            }
        } else {
            watched.spells.remove(&admin);
        }
        // Dated when it had lasted the set time, as a silence is.
        match without_command.filter(|since| no_command_after > 0 && now - *since >= no_command_after) {
            Some(since) => {
                let key = format!("no-command:{admin}:{}", since.millis());
                if watched.no_commands_told.get(&admin) != Some(&key) {
                    let (kind, at) = (NoticeKind::NoCommandLong, since + no_command_after);
                    notices.push(device_notice(store, admin, controller, kind, &key, since, at).await);
                    no_commands.push((admin, key));
                }
            }
            None => {
                watched.no_commands_told.remove(&admin);
            }
        }
        if after == 0 {
            continue;
        }
        // A device never seen is not offline: it was never set up.
        let Some(last) = last_poll.filter(|last| now - *last >= after) else {
            watched.silences_told.remove(&admin);
            continue;
        };
        let key = format!("offline:{admin}:{}", last.millis());
        if watched.silences_told.get(&admin) == Some(&key) {
            continue;
        }
        notices
            .push(device_notice(store, admin, controller, NoticeKind::DeviceOffline, &key, last, last + after).await);
        silences.push((admin, key));
    }
    if notices.is_empty() {
        return;
    }
    match store.add_notices(&notices).await {
        Ok(_) => {
            watched.silences_told.extend(silences);
            watched.no_commands_told.extend(no_commands);
            for (admin, key) in spells {
                if let Some(spell) = watched.spells.get_mut(&admin).filter(|spell| spell.key == key) {
                    spell.told = true;
                }
            }
        }
        Err(err) => tracing::warn!(%err, "could not record the owners' alerts about their devices"),
    }
}

/// The name the owner gave `device` (`None` when it cannot be read: the notice goes without it).
pub async fn device_name(store: &dyn Store, admin: AdminId, device: DeviceId) -> Option<String> {
    match store.devices(admin).await {
        Ok(devices) => devices.into_iter().find(|d| d.id == device).map(|d| d.name),
        Err(err) => {
            tracing::warn!(%err, "could not read a device's name for its owner's alert");
            None
        }
    }
}

/// Whether a report may make the engine tell its owner about the reporting device, so that its
/// name is read first ([`device_name`], before the tenant's lock): a restart the owner must hear
/// of, or a relay the board opened because its motor did not confirm ([`DevicePoll::no_feedback`]
/// as if the relay had been closed: the engine decides whether it was). A board that says why its
/// relay is open says it exactly (`relayOff: NO_FEEDBACK`, rare); from an older board that does not
/// say, any report of an open relay with the feedback input off, the grid up and the pump ready
/// may be one, and has the name read.
pub fn may_name_the_device(poll: &DevicePoll) -> bool {
    poll.unexpected_reset() || poll.no_feedback(true)
}

/// Writes the device's name (`name`, read by [`device_name`]) into the owner's notices about it
/// that the engine decided (a restart, a motor that did not start): the engine knows the device
/// by its id only, the owner by the name they gave it.
pub fn name_devices(notices: &mut [Notice], name: Option<&str>) {
    let about_the_device = |n: &&mut Notice| {
        matches!(n.kind, NoticeKind::DeviceReset | NoticeKind::RelayNoFeedback) && n.facts.device.is_none()
    };
    for notice in notices.iter_mut().filter(about_the_device) {
        notice.facts.device = name.map(str::to_owned);
    }
}

/// The owner hears a farmer (`who`) asks for minutes. Keyed by the request: deciding it (by any
/// of the pump's owners, on any screen) settles this notice in the store
/// ([`pumppilot_store::request_notice_key`]).
pub fn request_new(request: &MinuteRequest, who: &str) -> Notice {
    let facts = Facts {
        seconds: Some(request.minutes * 60),
        who: Some(who.to_owned()),
        request: Some(request.id),
        ..Facts::default()
    };
    Notice {
        key: Some(pumppilot_store::request_notice_key(request.id)),
        ..Notice::new(request.admin_id.0, request.admin_id, NoticeKind::RequestNew, request.created_at, facts)
    }
}
