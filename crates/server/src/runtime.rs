//! The tenants' live state on this server: each tenant's [`Tenant`] behind its own lock, every
//! change applied by the engine and committed to the store before anyone sees it, and the timer
//! that wakes at the earliest deadline (a run's end, a device's lease).
//!
//! Reads bring a tenant up to date too, so nothing depends on the timer firing on time.
//!
//! On a store of one process every tenant is held. On a store several servers share, a server
//! holds a tenant only while it needs it ([`KEEP_FOR`]: a device or a request of it here, or it has
//! a run and its timer is owned here: [`Runtime::owns_timer`]); any other is read on its next use,
//! and the change feed's news of it costs nothing. The server's own reads of a tenant (its timer,
//! a take-over, a read the feed's news caused) are no use of it: a tenant that other servers keep
//! changing is let go all the same.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex as SyncMutex, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use pumppilot_engine::{
    AdminId, DeviceId, DevicePoll, EntryStatus, Event, MotorRules, Outcome, PollAnswer, Refusal, Reply, Tenant,
    Timestamp, UserId,
};
use pumppilot_store::{AuditEntry, Change, Commit, Decision, PresenceNews, Receipt, Store, StoreError, Telemetry};
use tokio::sync::{Mutex, Notify, broadcast, mpsc, watch};

use crate::clock::SharedClock;
use crate::link_news::LinkNews;
use crate::start_path::{self, Step};

/// Why the runtime could not apply or read a tenant's state. The HTTP layer maps it to an answer
/// in one place (`From<RuntimeError> for ApiError` in `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The tenant (its admin) does not exist.
    #[error("no such pump")]
    NotFound,
    /// Other writers kept moving the tenant on; every retry met a newer version.
    #[error("the pump is busy; every retry met a newer version")]
    Busy,
    /// The store failed or refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The pumps with a run now ([`Runtime::runs`]), by the run's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs {
    /// Pumps whose motor runs for a farmer.
    pub running: u64,
    /// The runs on HOLD by reason (`UNKNOWN` for one without).
    pub holds: BTreeMap<&'static str, u64>,
}

impl Runs {
    /// Pumps whose run is paused (HOLD), its time kept.
    pub fn on_hold(&self) -> u64 {
        self.holds.values().sum()
    }
}

/// Pumps read at once by [`Runtime::runs`].
const RUNS_READ_AT_ONCE: usize = 16;

/// Writes that go with an event in the same atomic commit, when the event is accepted.
#[derive(Debug, Default)]
pub struct Extras {
    pub audit: Vec<AuditEntry>,
    pub decision: Option<Decision>,
    pub suspension: Option<(UserId, bool)>,
    /// The receipt of a recharge paid in cash.
    pub receipt: Option<Receipt>,
}

impl Extras {
    /// One audit entry.
    pub fn audit(entry: AuditEntry) -> Self {
        Extras { audit: vec![entry], ..Extras::default() }
    }

    fn is_empty(&self) -> bool {
        self.audit.is_empty() && self.decision.is_none() && self.suspension.is_none() && self.receipt.is_none()
    }
}

/// Where a tenant's state stands: `version` moves with every committed change, `seq` only when
/// the device's command (motor, state, hold reason) changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    pub version: u64,
    pub seq: u64,
}

impl Stamp {
    fn of(tenant: &Tenant) -> Self {
        Stamp { version: tenant.version, seq: tenant.seq }
    }
}

/// How long `Runtime::start` waits for a shared store's change feed to come up.
const FEED_START: Duration = Duration::from_secs(10);

/// How often buffered device telemetry (last-seen times) is written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The most devices one flush writes the telemetry of (the rest wait for the next): a store that
/// takes milliseconds a write must not hold a run's lease behind thousands of them while a fleet
/// comes online.
const REPORTS_PER_FLUSH: usize = 256;
/// The most devices that join this server in one flush, and the most one store call joins: a
/// heartbeat waits for at most one such call (they take turns), not for the flush's whole batch.
/// A returning fleet is paced by its joins: at 64 a flush, 10,000 devices on SecantusDB were not
/// all present after 300 s; at 1,024 a flush in calls of 256 (about 200 ms each there), the store
/// fell behind in 4 of 9 runs and never caught up. 256 in calls of 64 (about 31 ms each) keep a
/// flush's joins near an eighth of a second of SecantusDB.
const JOINS_PER_FLUSH: usize = 256;
const JOINS_AT_ONCE: usize = 64;

/// The quiet path's writes ([`Runtime::flush_telemetry`]): a device whose report did not change
/// (the same inputs, firmware, reset reason, reader and feedback) has its telemetry (its last-seen
/// time in the device list) written at most this often; on a shared store, not at all while it is
/// present at this server (its heartbeat stands for it), and once more when it is let go.
pub const SEEN_EVERY: Duration = Duration::from_secs(60);

/// How many tenant reads from the store may be in flight at once in each of the two lines (the
/// devices' reports, and everything else: [`Runtime::apply`]); the others wait their turn
/// before the store is asked. When the change feed of a shared store falls silent, every
/// device's next report or command reads its tenant again: 10,000 reads in flight at once held
/// about 18 KB each of the store driver's sessions, operations and documents (180 MB) for as long
/// as the store took; queued here they hold none of it, and finish as soon (the store's
/// connections are the limit either way).
pub const LOADS_AT_ONCE: usize = 32;

/// Who a tenant read is for, which decides the line it waits in ([`Line`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asker {
    /// A device: its report, or its current command (an MQTT subscription, the HTTP command).
    Device,
    /// Anyone else: a person's request, a card, the timer, the feed's upkeep.
    Other,
}

/// The line a tenant read waits in ([`LOADS_AT_ONCE`] each, [`Runtime::line`]), or the turn it
/// already has.
enum Line<'a> {
    Of(Asker),
    Taken(tokio::sync::SemaphorePermit<'a>),
}

/// On a shared store, the part of the lease a controller may stay silent at this server and still
/// be present here ([`Store::record_presence`]): each heartbeat vouches that every device present
/// here polled within `lease × PRESENT_WITHIN` before it, and a device silent for longer is let go
/// (its last poll written) before the beat. Two thirds: a device polling every third of its lease
/// never leaves, and a beat a second old still shows it online elsewhere for a third of a lease.
pub const PRESENT_WITHIN: (i64, i64) = (2, 3);

/// On a store several servers share, how far behind the change feed may be, on the feed's clock
/// (`Runtime::time_the_feed_by`), before this server stops trusting what it keeps in memory: once
/// the latest of its own heartbeats heard back through the feed was sent longer ago than this
/// (the feed silent, or delivering late), every answer that may turn or keep a motor ON is built
/// from state read from the store again (or is OFF when the store cannot be read), until a beat
/// comes back sooner. The bound on how old an ON answer's state can be. The server beats every
/// second, so a feed whose beats come back within a second keeps it fresh.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

/// On a store several servers share whose change feed fell behind ([`FRESH_FOR`]), how long after
/// a tenant's state was last known to be the store's (read from it, committed to it, or the feed
/// caught up to then) a device may still be answered OFF from it without reading the store again, where the
/// engine allows it (`Tenant::may_answer_from_older_state`: the answer is OFF, so it can only
/// delay a run, never keep a motor ON). A slow store whose feed lags is not asked again for every
/// quiet poll (which made it slower still); a Start made on another server reaches a device here
/// within this long even if the feed never comes back. ON answers always read the store.
pub const STALE_OFF_FOR: Duration = Duration::from_secs(60);

/// On a store several servers share, how long after a device's lease runs out the timer waits
/// before it holds the run DEVICE_OFFLINE: the other servers' buffered polls (flushed every
/// second) and the feed that carries them have landed by then. The state is read from the store
/// again first, and the engine still holds the run at the lease's very moment.
pub const LEASE_TAKEOVER_GRACE: Duration = Duration::from_millis(2_500);

/// On a shared store, how long a server's heartbeat keeps it among the live servers (it beats
/// every second), and how long after a deadline a server that does not own the tenant's timer
/// waits before it fires the deadline itself (the owner died, or has not yet been replaced).
pub const TIMER_TAKEOVER: Duration = Duration::from_secs(3);

/// On a store several servers share, how long a server keeps a tenant in memory after it last
/// needed it (`Slot::needed`): a device of the tenant answered here, a request here touched it,
/// somebody here listened to it, or this server stopped owning its timer ([`Runtime::owns_timer`]).
/// The server's own reads of the tenant (its timer firing, a take-over, a read the change feed's
/// news caused) are no need of it: a tenant other servers keep changing is let go all the same. While a device is connected here (an MQTT session, a
/// long-poll, an event stream listening), present here, or its telemetry waits for the flush, and
/// while it has a run whose timer this server owns, the tenant is kept whatever the time; once none of
/// that holds for this long, the heartbeat's sweep lets it go, and it is read again on its next
/// use. A minute: a device polling every few seconds keeps its tenant, so a busy tenant is never
/// read and dropped in a loop, and a server that stops owning a timer keeps the tenant long enough
/// for the new owner to read it ([`Runtime::owns_timer`] says why deadlines stay safe).
pub const KEEP_FOR: Duration = Duration::from_secs(60);

/// Above this many tenants to read at once (a server taking over a share of the tenants, or a
/// feed reset), they are read all together (`Store::load_tenants`, a few reads of the whole
/// store) rather than one by one.
const ONE_BY_ONE_UP_TO: usize = 8 * LOADS_AT_ONCE;

/// What the change feed of a shared store tells this server, and up to when it has caught up.
struct Feed {
    /// Up to when everything the store committed is known here: when this server's latest
    /// heartbeat to come back through the feed was sent, on the feed's clock (the wall clock, or a
    /// test's: `Runtime::time_the_feed_by`). The feed is in commit order, so every change committed
    /// before that beat was sent came before it. A feed that delivers, but late, is caught up only
    /// to long ago ([`Runtime::is_fresh`]). `None` before the first beat came back, and from a
    /// [`Change::Reset`] until the next.
    caught_up_to: SyncMutex<Option<Timestamp>>,
    /// This server's heartbeats sent and not yet heard back, in order: the `polled_since` each
    /// carries (on the runtime's clock, as the feed tells it back) and when it was sent (on the
    /// feed's clock). At most [`BEATS_OUT`]: the oldest are forgotten (their return then tells
    /// nothing, which only makes the server less sure of the feed).
    beats_out: SyncMutex<VecDeque<(Timestamp, Timestamp)>>,
    /// How long this server's latest heartbeat heard back took to come back, in ms of the feed's
    /// clock (-1 before the first; [`Feed::behind`]).
    back_after_ms: AtomicI64,
    /// Device, session, account and reset changes, for the caches outside the runtime.
    notices: broadcast::Sender<Change>,
    /// Told each time the feed speaks (`start` waits for its first word: the stream is open).
    spoke: Notify,
}

/// How many of this server's heartbeats may be awaited from the feed at once (ten minutes of beats).
const BEATS_OUT: usize = 600;

impl Feed {
    fn new() -> Feed {
        Feed {
            caught_up_to: SyncMutex::default(),
            beats_out: SyncMutex::default(),
            back_after_ms: AtomicI64::new(-1),
            notices: broadcast::channel(4096).0,
            spoke: Notify::new(),
        }
    }

    /// Whether everything the store committed until less than [`FRESH_FOR`] before `now` has come
    /// (not in the clock's future: a clock set back waits for the next beat).
    fn is_fresh(&self, now: Timestamp) -> bool {
        let fresh_for = i64::try_from(FRESH_FOR.as_millis()).unwrap_or(i64::MAX);
        self.caught_up_to().is_some_and(|to| (0..fresh_for).contains(&(now - to)))
    }

    fn caught_up_to(&self) -> Option<Timestamp> {
        *self.caught_up_to.lock().expect("feed lock")
    }

    /// How far behind the feed is at `now`: how long this server's latest beat heard back took,
    /// or, when one sent earlier than that is still awaited, at least how long it has been (a
    /// feed that stopped is not shown as on time). `None` before the first beat was sent.
    fn behind(&self, now: Timestamp) -> Option<Duration> {
        let awaited = self.beats_out.lock().expect("feed lock").front().map(|&(_, sent)| now - sent);
        let last = Some(self.back_after_ms.load(Ordering::Relaxed)).filter(|ms| *ms >= 0);
        let ms = awaited.max(last)?;
        Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }

    /// Changes may have been missed: caught up to nothing until the next beat heard back (the feed
    /// follows it only once every held tenant was read again, so that beat vouches for the reads too).
    fn reset(&self) {
        *self.caught_up_to.lock().expect("feed lock") = None;
    }

    /// Notes this server's beat carrying `polled_since` sent at `at`.
    fn beat_sent(&self, polled_since: Timestamp, at: Timestamp) {
        let mut out = self.beats_out.lock().expect("feed lock");
        if out.len() == BEATS_OUT {
            out.pop_front();
        }
        out.push_back((polled_since, at));
    }

    /// This server's beat carrying `polled_since` heard back at `now`: if it was awaited, the feed
    /// is caught up to when it was sent (every change committed before came before it). Beats
    /// sent before it and never heard are forgotten (beats the store did not take).
    fn beat_back(&self, polled_since: Timestamp, now: Timestamp) {
        let sent = {
            let mut out = self.beats_out.lock().expect("feed lock");
            let mut sent = None;
            while let Some(&(carried, at)) = out.front() {
                if carried > polled_since {
                    break;
                }
                out.pop_front();
                if carried == polled_since {
                    sent = Some(at);
                    break;
                }
            }
            sent
        };
        if let Some(sent) = sent {
            self.back_after_ms.store((now - sent).max(0), Ordering::Relaxed);
            let mut caught_up_to = self.caught_up_to.lock().expect("feed lock");
            *caught_up_to = Some(caught_up_to.map_or(sent, |to| to.max(sent)));
        }
    }
}

/// One tenant: its state (loaded on first use) and the channel that announces its changes.
#[derive(Default)]
struct Slot {
    tenant: Mutex<Option<Tenant>>,
    changes: SyncMutex<Changes>,
    /// Since when this tenant's device has been told OFF because the store could not commit: the
    /// run holds from then (`Event::StoreOutage`) with the first commit that succeeds.
    outage: SyncMutex<Option<Timestamp>>,
    /// When the cached state was last known to be the store's (read from it or committed to it),
    /// in milliseconds of the feed's clock ([`STALE_OFF_FOR`]).
    read_at: AtomicI64,
    /// On a shared store, when this server last needed the tenant ([`Slot::needed`]), in
    /// milliseconds of the runtime's clock ([`KEEP_FOR`]); 0 when it never did.
    used_at: AtomicI64,
    /// On a shared store, whether this server owned the tenant's timer at the last heartbeat that
    /// changed the fleet (or when the slot was made): then it keeps the tenant while it has a run.
    owned: AtomicBool,
}

type Cell = Arc<Slot>;

/// How a tenant's changes are announced: its last stamp alone while nobody listens, a channel
/// (about 370 bytes: a watch channel keeps nine wait lists) only while somebody does (a device's
/// MQTT session, a long-poll, an event stream). Most tenants a server keeps have no listener here:
/// their devices are connected to other servers, or poll now and then.
enum Changes {
    Quiet(Stamp),
    Heard(watch::Sender<Stamp>),
}

impl Default for Changes {
    fn default() -> Self {
        Changes::Quiet(Stamp::default())
    }
}

impl Slot {
    /// This server needs the tenant at `now` ([`KEEP_FOR`]): a use of it here (a device, a request,
    /// a listener: [`Runtime::use_here`]), or it stopped owning the tenant's timer
    /// ([`Runtime::owns_timer`]). Nothing else keeps a tenant for [`KEEP_FOR`].
    fn needed(&self, now: Timestamp) {
        self.used_at.store(now.millis(), Ordering::Relaxed);
    }

    /// Announces the tenant's stamp to whoever listens (only when it moved), and drops the
    /// channel once nobody does.
    fn announce(&self, stamp: Stamp) {
        let mut changes = self.changes.lock().expect("changes lock");
        match &mut *changes {
            Changes::Quiet(seen) => *seen = stamp,
            Changes::Heard(sender) if sender.receiver_count() == 0 => *changes = Changes::Quiet(stamp),
            Changes::Heard(sender) => {
                sender.send_if_modified(|seen| std::mem::replace(seen, stamp) != stamp);
            }
        }
    }

    /// Whether somebody here listens to the tenant's changes (a device's MQTT session, a
    /// long-poll, an event stream).
    fn is_heard(&self) -> bool {
        matches!(&*self.changes.lock().expect("changes lock"), Changes::Heard(sender) if sender.receiver_count() > 0)
    }

    /// A receiver whose current value is the last stamp announced.
    fn subscribe(&self) -> watch::Receiver<Stamp> {
        let mut changes = self.changes.lock().expect("changes lock");
        match &*changes {
            Changes::Heard(sender) => sender.subscribe(),
            Changes::Quiet(stamp) => {
                let (sender, receiver) = watch::channel(*stamp);
                *changes = Changes::Heard(sender);
                receiver
            }
        }
    }
}

/// The live state of every tenant served here.
pub struct Runtime {
    store: Arc<dyn Store>,
    clock: SharedClock,
    /// What times the feed's liveness, when not the wall clock ([`Runtime::time_the_feed_by`]).
    feed_clock: std::sync::OnceLock<SharedClock>,
    lease_ms: i64,
    poll_ms: u32,
    cells: RwLock<HashMap<AdminId, Cell, crate::keys::Ids>>,
    timer: SyncMutex<Deadlines>,
    wake: Arc<Notify>,
    telemetry: SyncMutex<HashMap<DeviceId, Telemetry, crate::keys::Ids>>,
    /// What was last written of each device's telemetry.
    written: SyncMutex<HashMap<DeviceId, Written>>,
    /// The server's restart protection, given to every tenant loaded.
    motor_rules: SyncMutex<MotorRules>,
    /// Since when the store has failed to commit (a commit, a telemetry flush or the readiness
    /// probe failed); cleared by the next write that succeeds. While set, polls answer OFF.
    outage: SyncMutex<Option<Timestamp>>,
    retries: AtomicU64,
    /// Devices joined to this server and let go by it, on a shared store (written to the store).
    joins: AtomicU64,
    leaves: AtomicU64,
    /// How many times a tenant was read from the store.
    loads: AtomicU64,
    /// Committed states taken from the change feed instead of a read.
    taken_from_feed: AtomicU64,
    /// What the change feed told of the pumps' links since the alerts watch last asked
    /// ([`Runtime::link_news`]); kept only while this server watches (`None` otherwise).
    link_news: SyncMutex<Option<LinkNews>>,
    /// Tenant reads from the store in flight at once for devices' reports ([`LOADS_AT_ONCE`]).
    loading: tokio::sync::Semaphore,
    /// ... and for everything else: a person's request (a page, a Start, an owner's change), a
    /// card, this server's own upkeep. Never behind the devices' line, which a fleet coming
    /// online (a district's power back) fills with thousands.
    loading_first: tokio::sync::Semaphore,
    /// The change feed, when several servers may share the store.
    feed: Option<Feed>,
    /// The feed's receiver until `start` takes it.
    feed_rx: SyncMutex<Option<mpsc::Receiver<Change>>>,
    /// This server's id among the servers on the store.
    server_id: String,
    /// The servers alive on the store at the last heartbeat (this one included).
    fleet: SyncMutex<Vec<String>>,
    /// Every server's latest heartbeat heard in the feed: since when its present devices have
    /// polled it at the latest (`None` for a server named by a presence before its first beat).
    beats: SyncMutex<HashMap<Arc<str>, Option<Timestamp>>>,
    /// On a shared store, each tenant's device present and the server it is present at (from the
    /// feed, in its order), for every tenant, held here or not: that server's heartbeats stand
    /// for the device's polls once the tenant is read here.
    presences: SyncMutex<HashMap<AdminId, (DeviceId, Arc<str>)>>,
    /// Set when this server must read the tenants whose timer it owns and does not hold (the fleet
    /// changed, the feed reset, or the last take-over could not read them all).
    take_over_due: AtomicBool,
    /// Held while a take-over reads tenants, one at a time.
    taking_over: Arc<Mutex<()>>,
    /// Held while devices join (a flush) or are let go (before a heartbeat), one at a time.
    flushing: Mutex<()>,
    /// Held while this server beats: its beats reach the store in the order of their times (one
    /// that waited must not overwrite a later one and drop this server from the others' fleet).
    beating: Mutex<()>,
}

/// What the store holds of a device's telemetry, as this server last wrote it.
#[derive(Clone, Copy)]
struct Written {
    /// The last-seen time of the telemetry written.
    seen: Timestamp,
    /// The last poll written for the tenant's lease (with the telemetry, or alone).
    lease: Timestamp,
    /// A digest of the report's fields but the time ([`report_digest`]).
    report: u64,
    /// The device's tenant.
    admin: AdminId,
    /// On a shared store, whether this server's heartbeats vouch for the device: set before its
    /// join is written and cleared only once its leave is, so the store never names this server
    /// for a device its beats do not cover.
    present: bool,
    /// Whether the store has the join (else the next flush writes it again).
    joined: bool,
}

/// The digest noted for a device present here whose telemetry is not written yet
/// ([`Runtime::arrive`]): no report's digest is 0 but by a 1 in 2^64 chance, so the next flush
/// writes its telemetry.
const UNWRITTEN: u64 = 0;

/// A digest of what a report says, but its time, uptime and signal (which change every poll) and
/// why the board last started: a board says that once after a boot, a report that says it is
/// always written, and one that does not keeps the stored reason ([`Telemetry::last_reset`]).
fn report_digest(t: &Telemetry) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (t.load_shedding, t.ready, t.relay, &t.firmware, t.reader, t.feedback).hash(&mut hasher);
    hasher.finish()
}

#[derive(Default)]
struct Deadlines {
    queue: BTreeSet<(Timestamp, AdminId)>,
    by_tenant: HashMap<AdminId, Timestamp>,
}

impl Runtime {
    /// How many times the runtime redid an event for the same tenant in a row before it gives up.
    pub const ATTEMPTS: usize = 5;

    pub fn new(store: Arc<dyn Store>, clock: SharedClock, lease_ms: u32, poll_ms: u32) -> Arc<Self> {
        let feed_rx = store.changes();
        let feed = feed_rx.as_ref().map(|_| Feed::new());
        let server_id = uuid::Uuid::now_v7().simple().to_string();
        Arc::new(Runtime {
            beats: SyncMutex::default(),
            presences: SyncMutex::default(),
            take_over_due: AtomicBool::new(false),
            taking_over: Arc::default(),
            flushing: Mutex::new(()),
            beating: Mutex::new(()),
            fleet: SyncMutex::new(vec![server_id.clone()]),
            server_id,
            feed,
            feed_rx: SyncMutex::new(feed_rx),
            store,
            clock,
            feed_clock: std::sync::OnceLock::new(),
            lease_ms: i64::from(lease_ms),
            poll_ms,
            cells: RwLock::default(),
            timer: SyncMutex::default(),
            wake: Arc::new(Notify::new()),
            telemetry: SyncMutex::default(),
            written: SyncMutex::default(),
            motor_rules: SyncMutex::new(MotorRules::NONE),
            outage: SyncMutex::default(),
            retries: AtomicU64::new(0),
            joins: AtomicU64::new(0),
            leaves: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            taken_from_feed: AtomicU64::new(0),
            link_news: SyncMutex::default(),
            loading: tokio::sync::Semaphore::new(LOADS_AT_ONCE),
            loading_first: tokio::sync::Semaphore::new(LOADS_AT_ONCE),
        })
    }

    /// True when several servers may share the store (it has a change feed).
    pub fn is_shared(&self) -> bool {
        self.feed.is_some()
    }

    /// On a shared store, how far behind the change feed is (on the feed's clock): how long this
    /// server's latest heartbeat took to come back through it, or how long an earlier one has been
    /// awaited ([`Runtime::is_fresh`]). `None` on a store of one process, and before the first beat.
    pub fn feed_behind(&self) -> Option<Duration> {
        self.feed.as_ref().and_then(|feed| feed.behind(self.feed_now()))
    }

    /// True while this server may answer from what it keeps in memory: always on a store of one
    /// process; on a shared store, while the change feed has brought everything the store
    /// committed until less than [`FRESH_FOR`] ago on the feed's clock ([`Runtime::time_the_feed_by`]):
    /// the latest of this server's heartbeats heard back was sent that recently (not in the
    /// clock's future: a clock set back waits for the next beat). A feed that delivers, but late,
    /// is not fresh.
    pub fn is_fresh(&self) -> bool {
        self.feed.as_ref().is_none_or(|feed| feed.is_fresh(self.feed_now()))
    }

    /// Times the change feed's liveness ([`FRESH_FOR`]) and how old a cached state is
    /// ([`STALE_OFF_FOR`]) by `clock` instead of the wall clock, for a test that plays a feed
    /// falling behind on a clock it moves by hand. Only before [`Runtime::start`]; once.
    ///
    /// The pump's time (leases, runs, the timer) is the runtime's own clock, which tests step by
    /// minutes; the feed's liveness is about its connection, which speaks every second of real
    /// time whatever the pump's clock says, so it is not timed by the pump's clock by default.
    pub fn time_the_feed_by(&self, clock: SharedClock) {
        let _ = self.feed_clock.set(clock);
    }

    /// The feed's clock ([`Runtime::time_the_feed_by`]; the wall clock unless a test set one).
    fn feed_clock(&self) -> &dyn crate::clock::Clock {
        match self.feed_clock.get() {
            Some(clock) => clock.as_ref(),
            None => &crate::clock::SystemClock,
        }
    }

    /// Now, on the feed's clock.
    fn feed_now(&self) -> Timestamp {
        self.feed_clock().now()
    }

    /// Passes the store's change feed through `through` before [`Runtime::start`] follows it (a
    /// test holds it back to play a feed that falls behind); nothing on a store of one process.
    pub fn feed_through(&self, through: impl FnOnce(mpsc::Receiver<Change>) -> mpsc::Receiver<Change>) {
        let mut feed = self.feed_rx.lock().expect("feed lock");
        if let Some(changes) = feed.take() {
            *feed = Some(through(changes));
        }
    }

    /// True when this server's timer acts first on `admin`'s deadlines: of the live servers, the one
    /// whose hash with the tenant is highest (rendezvous hashing: a server that leaves moves only
    /// its own tenants). The others act [`TIMER_TAKEOVER`] later, if the deadline is still there.
    ///
    /// On a shared store a server holds in memory only the tenants it needs ([`KEEP_FOR`]), and
    /// every tenant's deadlines (a lease's end, a run's end) still fire, because its timer's owner
    /// always holds it while it has any: only a tenant with a run (a RUNNING or HOLD entry) has a
    /// deadline (`Tenant::next_deadline`), and
    /// - the owner holds every tenant it owns that has a run: at the start, and whenever the
    ///   heartbeat finds the fleet changed, it reads the tenants with a run (`Store::tenants_with_runs`)
    ///   it owns and does not hold (`Runtime::take_over`, retried at the next beat until all are
    ///   read), and it never lets an owned tenant go while it has a run;
    /// - a tenant given a run later (a Start on any server) reaches the owner through the feed: a
    ///   change to a tenant with a run that this server owns and does not hold is read (the feed
    ///   says whether the tenant has a run: `Change::Tenant::has_run`; any other change to a tenant
    ///   not held here costs nothing), and the take-over's list is read after the fleet it owns by
    ///   is known, so a run started before is in it and one started after comes through the feed;
    /// - a server that stops owning a tenant (another joined) keeps it, and fires its deadlines
    ///   [`TIMER_TAKEOVER`] late as every non-owner does, for [`KEEP_FOR`] more: the new owner
    ///   learns of the fleet at its next beat (a second) and reads its share well within that, so no
    ///   deadline falls between the two;
    /// - an owner that dies stops beating: within [`TIMER_TAKEOVER`] its beat has expired, the next
    ///   beat of each survivor names a new owner, which reads the tenant and fires what is due at
    ///   once. A deadline is late by at most [`TIMER_TAKEOVER`] plus that read, never lost, and
    ///   lateness changes no charge: the engine applies a deadline at its own moment whenever the
    ///   tenant is next brought up to date (a run held DEVICE_OFFLINE is charged to the lease's end).
    pub fn owns_timer(&self, admin: AdminId) -> bool {
        Self::owner_in(&self.fleet.lock().expect("fleet lock"), admin).is_none_or(|owner| *owner == self.server_id)
    }

    /// True when this server is the one of the live servers that watches every pump for the
    /// owners' alerts (`alerts::watch_pumps`): chosen as a tenant's timer is, by the name of the
    /// job. One watch for the whole fleet, not one a server: at 100,000 pumps a list of every
    /// pump took SecantusDB about 2 s, and seven servers each reading it every 30 s kept half of
    /// its one core busy (the one that watches now reads it once: `crate::link_news`).
    pub fn watches_every_pump(&self) -> bool {
        Self::owner_in(&self.fleet.lock().expect("fleet lock"), "the alerts watch")
            .is_none_or(|owner| *owner == self.server_id)
    }

    /// What the change feed told of the pumps' links since the alerts watch last asked, for it to
    /// bring the links it knows up to date ([`crate::link_news::Links`]), and from now on what it
    /// tells until the next ask. On a store of one server (no feed), at the first ask, and while
    /// the feed is behind (it may not have told yet what changed: the watch then runs a round only
    /// when it has skipped rounds for long, `alerts::WATCH_STALE_AT_MOST`), every link is to be read.
    pub fn link_news(&self) -> LinkNews {
        if !self.is_shared() {
            return LinkNews::ReadAll;
        }
        let heard = self.link_news.lock().expect("link news lock").replace(LinkNews::nothing());
        match heard {
            Some(heard) if self.is_fresh() => heard,
            _ => LinkNews::ReadAll,
        }
    }

    /// The alerts watch is elsewhere: the feed's news of the pumps' links are no longer kept.
    pub fn forget_link_news(&self) {
        *self.link_news.lock().expect("link news lock") = None;
    }

    /// The server of `fleet` that owns `job` (a tenant's timer: its `AdminId`; [`Runtime::owns_timer`]).
    fn owner_in(fleet: &[String], job: impl std::hash::Hash) -> Option<&String> {
        use std::hash::{Hash, Hasher};
        let score = |server: &String| {
            let mut hasher = std::hash::DefaultHasher::new();
            (server, &job).hash(&mut hasher);
            hasher.finish()
        };
        fleet.iter().max_by_key(|server| (score(server), *server))
    }

    /// True when this server holds the tenant in memory now (on a shared store, only while it
    /// needs it: [`KEEP_FOR`]).
    pub fn holds(&self, admin: AdminId) -> bool {
        self.cells.read().expect("cells lock").contains_key(&admin)
    }

    /// Notes this server alive on the store and learns which others are (every second of the
    /// runtime's clock and of the feed's; tests on a manual clock that jump further than
    /// [`TIMER_TAKEOVER`] beat by hand). On a shared store the beat, heard back through the change
    /// feed, also tells how far the feed has caught up ([`Runtime::is_fresh`]).
    /// On a shared store the beat vouches for the devices present here ([`PRESENT_WITHIN`]):
    /// those silent for longer are let go first, and if that cannot be written there is no beat.
    ///
    /// The beat also keeps this server's share of the tenants ([`Runtime::owns_timer`]): when the
    /// fleet changed, it starts reading the tenants this server now owns (in the background: a
    /// beat must not wait for thousands of reads), and it lets go of the tenants no longer needed
    /// here ([`KEEP_FOR`]).
    pub async fn heartbeat(self: &Arc<Self>) {
        let _one_at_a_time = self.beating.lock().await;
        let ttl = i64::try_from(TIMER_TAKEOVER.as_millis()).unwrap_or(i64::MAX);
        let now = self.clock.now();
        let polled_since = now - self.present_within();
        if self.is_shared() && !self.let_go_of_silent(polled_since).await {
            return;
        }
        if let Some(feed) = &self.feed {
            // Sent from now: every change committed before it comes before it in the feed.
            feed.beat_sent(polled_since, self.feed_now());
        }
        match self.store.heartbeat(&self.server_id, now, ttl, polled_since).await {
            Ok(mut fleet) => {
                if !fleet.contains(&self.server_id) {
                    fleet.push(self.server_id.clone());
                }
                fleet.sort_unstable();
                let changed = {
                    let mut known = self.fleet.lock().expect("fleet lock");
                    let changed = *known != fleet;
                    *known = fleet;
                    changed
                };
                if changed {
                    self.note_owners();
                }
            }
            Err(err) => tracing::debug!(%err, "could not note this server alive"),
        }
        if !self.is_shared() {
            return;
        }
        self.let_go_of_unneeded();
        if self.take_over_due.load(Ordering::Relaxed)
            && let Ok(turn) = Arc::clone(&self.taking_over).try_lock_owned()
        {
            let runtime = Arc::clone(self);
            tokio::spawn(async move {
                let _turn = turn;
                if let Err(err) = runtime.take_over().await {
                    tracing::warn!(%err, "could not read every tenant this server now owns the timer of; trying again");
                }
            });
        }
    }

    /// The fleet changed: which tenants held here this server owns now. One it stops owning is
    /// kept [`KEEP_FOR`] from now; the tenants with a run it starts owning are read at the next
    /// chance.
    fn note_owners(&self) {
        let fleet = self.fleet.lock().expect("fleet lock").clone();
        let now = self.clock.now();
        for (admin, cell) in self.cells.read().expect("cells lock").iter() {
            let owned = Self::owner_in(&fleet, *admin).is_none_or(|owner| *owner == self.server_id);
            if cell.owned.swap(owned, Ordering::Relaxed) && !owned {
                cell.needed(now);
            }
        }
        self.take_over_due.store(true, Ordering::Relaxed);
    }

    /// Reads the tenants with a run whose timer this server owns and that it does not hold (the
    /// caller holds `taking_over`); what cannot be read now is tried again at the next beat. A
    /// tenant without a run has no deadline: it is read on its next use, or when it gets a run
    /// (the feed tells: [`Runtime::owns_timer`]).
    async fn take_over(&self) -> Result<(), RuntimeError> {
        self.take_over_due.store(false, Ordering::Relaxed);
        let result = async {
            let admins = self.store.tenants_with_runs().await?;
            let fleet = self.fleet.lock().expect("fleet lock").clone();
            let owned: Vec<AdminId> = {
                let cells = self.cells.read().expect("cells lock");
                admins
                    .into_iter()
                    .filter(|admin| {
                        !cells.contains_key(admin)
                            && Self::owner_in(&fleet, *admin).is_none_or(|owner| *owner == self.server_id)
                    })
                    .collect()
            };
            self.hold(Some(owned)).await
        }
        .await;
        if result.is_err() {
            self.take_over_due.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Reads `admins` (every tenant when `None`) into memory and brings each up to date (in memory,
    /// but for what time changed while nobody held it: its deadlines fire here). Many are read all
    /// together ([`ONE_BY_ONE_UP_TO`]), a few one by one, [`LOADS_AT_ONCE`] at a time.
    async fn hold(&self, admins: Option<Vec<AdminId>>) -> Result<(), RuntimeError> {
        let admins = match admins {
            Some(admins) if admins.len() <= ONE_BY_ONE_UP_TO => admins,
            wanted => {
                let wanted: Option<HashSet<AdminId>> = wanted.map(|admins| admins.into_iter().collect());
                let read_at = self.feed_now();
                let tenants = self.store.load_tenants(self.lease_ms, wanted.as_ref()).await?;
                self.loads.fetch_add(tenants.len() as u64, Ordering::Relaxed);
                let motor_rules = *self.motor_rules.lock().expect("motor rules lock");
                let mut admins = Vec::with_capacity(tenants.len());
                for mut tenant in tenants {
                    let admin = tenant.admin_id;
                    let cell = self.cell(admin);
                    let mut guard = cell.tenant.lock().await;
                    if guard.is_none() {
                        tenant.defaults = motor_rules;
                        *guard = Some(tenant);
                        cell.read_at.store(read_at.millis(), Ordering::Relaxed);
                    }
                    admins.push(admin);
                }
                admins
            }
        };
        for some in admins.chunks(LOADS_AT_ONCE) {
            let read = futures_util::future::join_all(some.iter().map(|admin| self.keep_up(*admin))).await;
            for result in read {
                match result {
                    Ok(()) | Err(RuntimeError::NotFound) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    /// On a shared store, lets go of the tenants this server no longer needs ([`KEEP_FOR`]): their
    /// state, their deadlines here (their timer's owner holds them) and their channel. A tenant
    /// whose timer this server owns is kept while it has a run (or while its state is busy).
    fn let_go_of_unneeded(&self) {
        let now = self.clock.now().millis();
        let keep_for = i64::try_from(KEEP_FOR.as_millis()).unwrap_or(i64::MAX);
        let here: HashSet<AdminId> = {
            let buffer = self.telemetry.lock().expect("telemetry lock");
            let written = self.written.lock().expect("telemetry lock");
            let present = written.values().filter(|w| w.present).map(|w| w.admin);
            buffer.values().map(|t| t.admin_id).chain(present).collect()
        };
        // Its timer is owned here and it has a run (or its state is busy: kept this time).
        let owned_with_a_run = |cell: &Cell| {
            cell.owned.load(Ordering::Relaxed)
                && cell.tenant.try_lock().map_or(true, |tenant| tenant.as_ref().is_some_and(|t| t.active.is_some()))
        };
        let unneeded = |admin: &AdminId, cell: &Cell| {
            !owned_with_a_run(cell)
                && now.saturating_sub(cell.used_at.load(Ordering::Relaxed)) >= keep_for
                && !here.contains(admin)
                && !cell.is_heard()
                && cell.outage.lock().expect("outage lock").is_none()
        };
        let candidates: Vec<AdminId> = {
            let cells = self.cells.read().expect("cells lock");
            cells.iter().filter(|(admin, cell)| unneeded(admin, cell)).map(|(admin, _)| *admin).collect()
        };
        if candidates.is_empty() {
            return;
        }
        // Under the cells' lock, so nobody takes the slot meanwhile (nobody else has it: one count)
        // and nobody schedules a deadline for a new slot of the same tenant before this one's goes.
        let mut cells = self.cells.write().expect("cells lock");
        let mut timer = self.timer.lock().expect("timer lock");
        for admin in candidates {
            if cells.get(&admin).is_some_and(|cell| Arc::strong_count(cell) == 1 && unneeded(&admin, cell)) {
                cells.remove(&admin);
                if let Some(at) = timer.by_tenant.remove(&admin) {
                    timer.queue.remove(&(at, admin));
                }
            }
        }
    }

    /// Device, session, account and reset changes made by any server, for the caches in front of
    /// the store; `None` on a store of one process. A [`Change::Reset`] means "forget everything".
    pub fn store_changes(&self) -> Option<broadcast::Receiver<Change>> {
        self.feed.as_ref().map(|feed| feed.notices.subscribe())
    }

    /// The clock this runtime runs on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// How many commits met a newer version and were redone since the start (to show that the
    /// retry path ran).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Devices joined to this server and let go by it since the start (on a shared store): a
    /// device that keeps leaving and joining again costs the store two writes each time.
    pub fn presence_changes(&self) -> (u64, u64) {
        (self.joins.load(Ordering::Relaxed), self.leaves.load(Ordering::Relaxed))
    }

    /// How many times a tenant's state was read from the store since the start (to show that
    /// quiet polls are answered from memory).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// How many committed states (another server's, mostly) were taken from the change feed, each
    /// instead of a read of its tenant.
    pub fn taken_from_feed(&self) -> u64 {
        self.taken_from_feed.load(Ordering::Relaxed)
    }

    /// Sets the server's restart protection (`PUMPPILOT_MIN_OFF_MS`, …) for every tenant.
    pub fn set_motor_rules(&self, rules: MotorRules) {
        *self.motor_rules.lock().expect("motor rules lock") = rules;
    }

    /// Since when the store has been failing to commit, if it is.
    pub fn store_outage(&self) -> Option<Timestamp> {
        *self.outage.lock().expect("outage lock")
    }

    /// Notes that a write failed (`Err`) or succeeded (`Ok`).
    fn note_write(&self, ok: bool) {
        let mut outage = self.outage.lock().expect("outage lock");
        if ok {
            *outage = None;
        } else if outage.is_none() {
            *outage = Some(self.clock.now());
        }
    }

    fn note_result<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.note_write(true),
            Err(StoreError::Unavailable(_)) => self.note_write(false),
            Err(_) => {}
        }
    }

    /// Tries a write to the store (`/readyz`): the answer, and the outage state follows it.
    pub async fn probe_store(&self) -> Result<(), RuntimeError> {
        let result = self.store.probe_write().await;
        self.note_result(&result);
        Ok(result?)
    }

    /// Applies `event` to a tenant and commits what it changed, with `extras` when accepted.
    /// `view` reads the new state under the same lock. For anyone but a device (a device's report
    /// is [`Runtime::poll`]): a store read it needs waits in their line (`Asker::Other`).
    /// A use of the tenant here ([`KEEP_FOR`]). Not an `async fn`: the future is `apply_to`'s own,
    /// not one that holds the arguments beside it (a report that waits for the store holds it).
    pub fn apply<R>(
        &self,
        admin: AdminId,
        event: Event,
        extras: Extras,
        view: impl FnOnce(&Tenant, Timestamp) -> R,
    ) -> impl Future<Output = Result<(Result<Reply, Refusal>, R), RuntimeError>> {
        self.apply_to(self.use_here(admin), admin, Asker::Other, event, extras, view)
    }

    /// Brings a tenant up to date for this server's own upkeep (its timer, a take-over, a read the
    /// change feed caused): not a use of it here ([`Runtime::use_here`]).
    async fn keep_up(&self, admin: AdminId) -> Result<(), RuntimeError> {
        self.apply_to(self.cell(admin), admin, Asker::Other, Event::Tick, Extras::default(), |_, _| ())
            .await
            .map(|_| ())
    }

    /// [`Runtime::apply`] on the tenant's slot `cell`.
    async fn apply_to<R>(
        &self,
        cell: Cell,
        admin: AdminId,
        asker: Asker,
        event: Event,
        extras: Extras,
        view: impl FnOnce(&Tenant, Timestamp) -> R,
    ) -> Result<(Result<Reply, Refusal>, R), RuntimeError> {
        // A board that says it restarted for a reason its owner must hear of, or that its motor
        // did not start, is named in the owner's notice by the name they gave it, which only the
        // store knows (read before the tenant's lock, and boxed: every report's future stays small).
        let device_name = match &event {
            Event::Poll(poll) if crate::alerts::may_name_the_device(poll) => {
                Box::pin(crate::alerts::device_name(self.store.as_ref(), admin, poll.device)).await
            }
            _ => None,
        };
        let mut guard = cell.tenant.lock().await;
        // A device's read that must read its tenant waits for its turn in the devices' line
        // without the tenant's lock, so that the pump's farmer is not queued behind the fleet.
        let mut turn = None;
        if asker == Asker::Device && guard.as_ref().is_none_or(|tenant| !self.may_use(tenant, self.clock.now())) {
            drop(guard);
            turn = Some(self.line(asker).acquire().await.expect("the loading semaphores are never closed"));
            guard = cell.tenant.lock().await;
        }
        // The state a version conflict made stale: its unflushed polls are kept over the reload.
        // Boxed, as the states below: a report that waits for the store (a load 32 at a time, a
        // commit) holds this future, and each tenant inline was 424 bytes of it.
        let mut stale: Option<Box<Tenant>> = None;
        for _attempt in 0..Self::ATTEMPTS {
            let now = self.clock.now();
            let mut current = match guard.take() {
                Some(tenant) if self.may_use(&tenant, now) => Box::new(tenant),
                cached => {
                    let cached = cached.map(Box::new);
                    let line = match turn.take() {
                        Some(turn) => Line::Taken(turn),
                        None => Line::Of(asker),
                    };
                    let tenant = Box::new(self.load_over(admin, cached.as_deref().or(stale.as_deref()), line).await?);
                    cell.read_at.store(self.feed_now().millis(), Ordering::Relaxed);
                    tenant
                }
            };
            // A turn not used (another read brought the tenant in meanwhile) is not held
            // through the commit.
            drop(turn.take());
            self.vouch(&mut current);
            let mut next = current.clone();
            // The device was told OFF during a store outage: the run holds from that moment.
            let outage = *cell.outage.lock().expect("outage lock");
            let mut records = match outage {
                Some(since) => next.apply(Event::StoreOutage, since).records,
                None => Default::default(),
            };
            let Outcome { records: after, reply } = next.apply(event.clone(), now);
            records.extend(after);
            let accepted = reply.is_ok();
            crate::alerts::name_devices(&mut records.notices, device_name.as_deref());
            let with_extras = accepted && !extras.is_empty();
            if records.changed || with_extras {
                let commit = Commit {
                    tenant: &next,
                    records: &records,
                    audit: if accepted { &extras.audit } else { &[] },
                    decision: extras.decision.as_ref().filter(|_| accepted),
                    suspension: extras.suspension.filter(|_| accepted),
                    receipt: extras.receipt.as_ref().filter(|_| accepted),
                };
                match self.store.commit(commit).await {
                    Ok(()) => {
                        next.version += 1;
                        cell.read_at.store(self.feed_now().millis(), Ordering::Relaxed);
                        self.note_write(true);
                        *cell.outage.lock().expect("outage lock") = None;
                    }
                    // Another server (or a flush) moved the tenant on: read it again and redo.
                    Err(StoreError::VersionConflict) => {
                        self.retries.fetch_add(1, Ordering::Relaxed);
                        stale = Some(current);
                        continue;
                    }
                    Err(err) => {
                        if matches!(err, StoreError::Unavailable(_)) {
                            self.note_write(false);
                            let since = self.store_outage().unwrap_or(now);
                            cell.outage.lock().expect("outage lock").get_or_insert(since);
                        }
                        return Err(err.into());
                    }
                }
            }
            if !(records.changed || with_extras) && self.store_outage().is_none() {
                // The outage changed nothing here (no run was charging): nothing is left to apply.
                *cell.outage.lock().expect("outage lock") = None;
            }
            let answer = view(&next, now);
            let deadline = self.deadline_of(&next);
            let stamp = Stamp::of(&next);
            *guard = Some(*next);
            drop(guard);
            cell.announce(stamp);
            self.schedule(admin, deadline);
            return Ok((reply, answer));
        }
        Err(RuntimeError::Busy)
    }

    /// Every pump with a run now, counted by the run's status and a hold's reason: the tenants
    /// the store names ([`Store::tenants_with_runs`]), each read here and brought up to date (a
    /// run may have ended since). The work is the runs', whatever the number of owners; a pump
    /// that cannot be read fails the count rather than leave it short.
    pub async fn runs(&self) -> Result<Runs, RuntimeError> {
        let tenants = self.store.tenants_with_runs().await?;
        let mut actives = futures_util::stream::iter(tenants)
            .map(|admin| self.read(admin, |t, _| t.active.as_ref().map(|e| (e.status, e.hold_reason))))
            .buffer_unordered(RUNS_READ_AT_ONCE);
        let mut runs = Runs::default();
        while let Some(active) = actives.next().await {
            match active {
                Ok(Some((EntryStatus::Running, _))) => runs.running += 1,
                Ok(Some((EntryStatus::Hold, reason))) => {
                    *runs.holds.entry(reason.map_or("UNKNOWN", |r| r.as_str())).or_insert(0) += 1;
                }
                Ok(_) | Err(RuntimeError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(runs)
    }

    /// Brings a tenant up to date and reads it. A use of it here ([`KEEP_FOR`]).
    pub async fn read<R>(&self, admin: AdminId, view: impl FnOnce(&Tenant, Timestamp) -> R) -> Result<R, RuntimeError> {
        self.read_for(Asker::Other, admin, view).await
    }

    /// [`Runtime::read`] for `asker`, in its line.
    async fn read_for<R>(
        &self,
        asker: Asker,
        admin: AdminId,
        view: impl FnOnce(&Tenant, Timestamp) -> R,
    ) -> Result<R, RuntimeError> {
        Ok(self.apply_to(self.use_here(admin), admin, asker, Event::Tick, Extras::default(), view).await?.1)
    }

    /// The device hot path: a report that changes nothing only moves the last-seen time in
    /// memory; anything else goes through the engine and the store. While the store cannot
    /// commit, the answer is OFF (HOLD, STORE_UNAVAILABLE).
    pub async fn poll(
        &self,
        admin: AdminId,
        poll: DevicePoll,
        telemetry: Telemetry,
    ) -> Result<PollAnswer, RuntimeError> {
        let now = telemetry.last_seen_at;
        {
            // A board says why it started once: a later report before the flush must not lose it.
            let mut buffer = self.telemetry.lock().expect("telemetry lock");
            let mut telemetry = telemetry;
            if let Some(pending) = buffer.get(&telemetry.device_id)
                && telemetry.last_reset.is_none()
            {
                (telemetry.last_reset, telemetry.last_reset_at) = (pending.last_reset, pending.last_reset_at);
            }
            buffer.insert(telemetry.device_id, telemetry);
        }
        if let Some(off) = self.outage_answer(admin, now).await {
            return Ok(off);
        }
        let cell = self.use_here(admin);
        let poll_ms = self.poll_ms;
        {
            let mut guard = cell.tenant.lock().await;
            let in_outage = cell.outage.lock().expect("outage lock").is_some();
            if let Some(tenant) = guard.as_mut()
                && !in_outage
                && (self.may_use(tenant, now) || self.may_answer_off(&cell, tenant, poll.device, now))
                && tenant.is_quiet_poll(&poll, now)
            {
                if tenant.controller == Some(poll.device) {
                    tenant.touch(now);
                }
                return Ok(tenant.poll_answer_for(poll.device, now, poll_ms));
            }
        }
        let device = poll.device;
        // Boxed: a poll that changes something is rare, and inline its commit would make every
        // poll's future (held through a long-poll's wait) several kilobytes larger.
        let applied =
            Box::pin(self.apply_to(cell, admin, Asker::Device, Event::Poll(poll), Extras::default(), |t, now| {
                t.poll_answer_for(device, now, poll_ms)
            }));
        match applied.await {
            Ok((_, answer)) => Ok(answer),
            // The failed commit marked the outage: the device is told OFF like every other poll now.
            Err(RuntimeError::Store(StoreError::Unavailable(reason))) => {
                self.outage_answer(admin, now).await.ok_or(RuntimeError::Store(StoreError::Unavailable(reason)))
            }
            Err(err) => Err(err),
        }
    }

    /// The answer for a tenant's devices while the store cannot commit (OFF, held for the store),
    /// or `None` when it can. The tenant's run holds from the outage's start once the store is back.
    pub async fn outage_answer(&self, admin: AdminId, now: Timestamp) -> Option<PollAnswer> {
        let since = self.store_outage()?;
        let cell = self.use_here(admin);
        let guard = cell.tenant.lock().await;
        cell.outage.lock().expect("outage lock").get_or_insert(since);
        Some(Tenant::unavailable_answer(guard.as_ref(), now, self.poll_ms, self.lease_ms))
    }

    /// A receiver that sees every committed change of a tenant from now on (its current value is
    /// the last change announced, which may predate the caller's own read).
    pub fn subscribe(&self, admin: AdminId) -> watch::Receiver<Stamp> {
        self.use_here(admin).subscribe()
    }

    /// The command for one of a tenant's devices as it stands now, without counting as a poll.
    /// A device's read: a store read it needs waits in the devices' line, as its reports do.
    pub async fn command(&self, admin: AdminId, device: DeviceId) -> Result<PollAnswer, RuntimeError> {
        let poll_ms = self.poll_ms;
        if !self.is_fresh() && self.store_outage().is_none() {
            // The feed fell behind: an OFF the engine allows from older state is answered from
            // memory (`may_answer_off`); anything else reads the store below.
            let cell = self.use_here(admin);
            let guard = cell.tenant.lock().await;
            let now = self.clock.now();
            if let Some(tenant) = guard.as_ref()
                && cell.outage.lock().expect("outage lock").is_none()
                && self.may_answer_off(&cell, tenant, device, now)
            {
                return Ok(tenant.poll_answer_for(device, now, poll_ms));
            }
        }
        self.read_for(Asker::Device, admin, |tenant, now| tenant.poll_answer_for(device, now, poll_ms)).await
    }

    /// Loads every tenant, applies what time changed while the server was down, and runs the
    /// timer and the telemetry flush until the process ends. On a shared store the change feed is
    /// followed first, and the tenants are read once it is live: every change after that is told,
    /// so none needs a second read.
    pub async fn start(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let feed = self.feed_rx.lock().expect("feed lock").take();
        if let (Some(changes), Some(shared)) = (feed, self.feed.as_ref()) {
            // Registered before the feed's task starts, so its first word is not missed.
            let waiting = shared.spoke.notified();
            tokio::pin!(waiting);
            waiting.as_mut().enable();
            let watcher = Arc::downgrade(self);
            tokio::spawn(watch_feed(watcher, changes));
            // A feed that does not come up in time: the tenants are read anyway (and again when
            // it does).
            let _ = tokio::time::timeout(FEED_START, waiting).await;
            self.heartbeat().await;
            let beating = Arc::downgrade(self);
            tokio::spawn(async move {
                loop {
                    let Some(runtime) = beating.upgrade() else { return };
                    // Every second of the pump's time (the presence it vouches for, the timers)
                    // and of the feed's (how caught up it is): the same clock but in tests.
                    let pump_time = runtime.clock.sleep(Duration::from_secs(1));
                    let feed_time = runtime.feed_clock().sleep(Duration::from_secs(1));
                    drop(runtime);
                    tokio::select! {
                        () = pump_time => {}
                        () = feed_time => {}
                    }
                    let Some(runtime) = beating.upgrade() else { return };
                    runtime.heartbeat().await;
                }
            });
        }
        // Every tenant on a store of one process; on a shared store, those with a run whose timer
        // this server owns (the others are read when they are needed here). Each is brought up to date
        // (in memory, but for what time changed while no server held it).
        if self.is_shared() {
            // A share that cannot be read whole now (a busy store gave up a transaction on one
            // tenant) does not stop the server: what was not read is read on its next use, and the
            // take-over is tried again at the next beat.
            let _turn = self.taking_over.lock().await;
            if let Err(err) = self.take_over().await {
                tracing::warn!(%err, "could not read every tenant this server owns the timer of; trying again");
            }
        } else {
            self.hold(None).await?;
        }
        // The timer and the flush hold the runtime only while they work: dropped, it stops (a
        // server that dies, in the tests).
        tokio::spawn(run_timer(Arc::downgrade(self), Arc::clone(&self.wake)));
        let flusher = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(runtime) = flusher.upgrade() else { return };
                let next = runtime.clock.sleep(FLUSH_EVERY);
                drop(runtime);
                next.await;
                let Some(runtime) = flusher.upgrade() else { return };
                runtime.flush_telemetry().await;
            }
        });
        Ok(())
    }

    /// Writes what the quiet path must write of the buffered telemetry, as little as keeps every
    /// rule: a device's telemetry when its report changed, else [`SEEN_EVERY`] after it was last
    /// written (on a shared store not while the device is present here); the last poll alone (the
    /// lease, `Store::record_last_polls`) every flush while its tenant has a run (the lease decides
    /// the run, on every server: `LEASE_TAKEOVER_GRACE`). Otherwise, on a shared store, a
    /// controller joins this server once (`Store::record_presence`) and this server's heartbeats
    /// stand for its quiet polls: every server sees it online and a Start on any server finds its
    /// lease alive, without a write per device; on a store of one server its last poll is written
    /// half a lease after the last one written. What is not written yet stays buffered (and
    /// shown: [`Runtime::pending_telemetry`]).
    pub async fn flush_telemetry(&self) {
        self.flush(false).await;
    }

    /// Writes all the buffered telemetry (at shutdown).
    pub async fn flush_all_telemetry(&self) {
        self.flush(true).await;
    }

    async fn flush(&self, all: bool) {
        let shared = self.is_shared();
        let (mut full, mut leases, mut joins) = (Vec::new(), Vec::new(), Vec::new());
        // Devices whose telemetry this flush writes and that join once it is written.
        let mut joining_after = HashSet::new();
        // Only a device that polled within what a heartbeat now vouches for joins: a join names
        // this server, and its next beat would vouch for a poll that did not happen.
        let fresh_since = self.clock.now() - self.present_within();
        {
            let mut buffer = self.telemetry.lock().expect("telemetry lock");
            let written = self.written.lock().expect("telemetry lock");
            let seen_every = i64::try_from(SEEN_EVERY.as_millis()).unwrap_or(i64::MAX);
            buffer.retain(|device, t| {
                let before = written.get(device);
                let lease = self.lease_of(t.admin_id, *device);
                let present = before.is_some_and(|w| w.present);
                // On a shared store a controller whose telemetry is stored joins this server:
                // from then its quiet polls are this server's heartbeats.
                let to_join =
                    shared && lease.is_some() && before.is_none_or(|w| !w.joined) && t.last_seen_at >= fresh_since;
                // A device joining here needs no write of its last-seen time: from the join on,
                // this server's heartbeats stand for it.
                let due = before.is_none_or(|w| {
                    w.report != report_digest(t)
                        || t.last_reset.is_some()
                        || (!present && !to_join && t.last_seen_at - w.seen >= seen_every)
                });
                if all || (due && full.len() < REPORTS_PER_FLUSH) {
                    if to_join && joins.len() + joining_after.len() < JOINS_PER_FLUSH {
                        joining_after.insert(*device);
                    }
                    full.push(t.clone());
                    return false;
                }
                if to_join && before.is_some() && joins.len() + joining_after.len() < JOINS_PER_FLUSH {
                    joins.push((t.admin_id, *device, t.last_seen_at));
                }
                // The lease alone: every flush while its tenant has a run (the lease decides the
                // run, on every server); on a store of one server also every half lease.
                if let Some(w) = before
                    && t.last_seen_at > w.lease
                    && let Some(has_run) = lease
                    && (has_run || (!shared && t.last_seen_at - w.lease >= self.lease_ms / 2))
                {
                    leases.push((t.admin_id, *device, t.last_seen_at));
                }
                true
            });
        }
        if !leases.is_empty() {
            let result = self.store.record_last_polls(&leases).await;
            self.note_result(&result);
            match result {
                Ok(()) => {
                    let mut written = self.written.lock().expect("telemetry lock");
                    for (_, device, at) in &leases {
                        if let Some(w) = written.get_mut(device) {
                            w.lease = w.lease.max(*at);
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, devices = leases.len(), "could not write devices' last polls"),
            }
        }
        // A device whose telemetry is written now joins in the same store call, a few at a time.
        while !full.is_empty() {
            let rest = full.split_off(full.len().min(JOINS_AT_ONCE));
            let part = std::mem::replace(&mut full, rest);
            let joining = part
                .iter()
                .filter(|t| joining_after.contains(&t.device_id))
                .map(|t| (t.admin_id, t.device_id, t.last_seen_at))
                .collect();
            self.arrive(part, joining).await;
        }
        // Devices whose telemetry is written already join alone, in calls of as many.
        for batch in joins.chunks(JOINS_AT_ONCE) {
            self.arrive(Vec::new(), batch.to_vec()).await;
        }
    }

    /// Writes devices' telemetry (`full`, maybe none) and joins `joining` to this server in one
    /// store call ([`Store::record_arrivals`]: each tenant written once). One join or leave at a
    /// time, and present before the join is written: the store never names this server for a
    /// device its beats do not cover. A joining device whose telemetry was never written is noted
    /// unwritten, so when the call fails it is written (and joined) again at the next flush, as
    /// all the telemetry is.
    async fn arrive(&self, full: Vec<Telemetry>, joining: Vec<(AdminId, DeviceId, Timestamp)>) {
        if joining.is_empty() {
            self.write_telemetry(full).await;
            return;
        }
        let _one_at_a_time = self.flushing.lock().await;
        {
            let mut written = self.written.lock().expect("telemetry lock");
            for &(admin, device, at) in &joining {
                written.entry(device).and_modify(|w| w.present = true).or_insert(Written {
                    seen: at,
                    lease: at,
                    report: UNWRITTEN,
                    admin,
                    present: true,
                    joined: false,
                });
            }
        }
        let result = self.store.record_arrivals(&self.server_id, &full, &joining).await;
        self.note_result(&result);
        match result {
            Ok(()) => {
                self.note_written(&full);
                self.joins.fetch_add(joining.len() as u64, Ordering::Relaxed);
                let mut written = self.written.lock().expect("telemetry lock");
                for (_, device, at) in &joining {
                    if let Some(w) = written.get_mut(device) {
                        w.joined = true;
                        w.lease = w.lease.max(*at);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, devices = full.len(), joining = joining.len(), "could not write device telemetry and joins; keeping them for the next flush");
                self.keep_for_next_flush(full);
            }
        }
    }

    /// Writes devices' telemetry; what cannot be written is kept for the next flush.
    async fn write_telemetry(&self, full: Vec<Telemetry>) -> bool {
        let result = self.store.record_telemetry(&full).await;
        self.note_result(&result);
        match result {
            Ok(()) => {
                self.note_written(&full);
                true
            }
            Err(err) => {
                tracing::warn!(%err, devices = full.len(), "could not write device telemetry; keeping it for the next flush");
                self.keep_for_next_flush(full);
                false
            }
        }
    }

    /// Notes what the store holds of a device's last report, read when this server reserved the
    /// device's link counters (its first signed request here: [`pumppilot_store::Reserved`]). A
    /// device coming back with the same report then writes nothing to its document: on a shared
    /// store its join alone, as a device that stayed. What this server wrote itself is kept.
    pub fn note_stored_report(&self, stored: &Telemetry) {
        let (seen, admin, report) = (stored.last_seen_at, stored.admin_id, report_digest(stored));
        self.written.lock().expect("telemetry lock").entry(stored.device_id).or_insert(Written {
            seen,
            lease: seen,
            report,
            admin,
            present: false,
            joined: false,
        });
    }

    /// Notes telemetry the store now has (with the last poll it moved).
    fn note_written(&self, full: &[Telemetry]) {
        let mut written = self.written.lock().expect("telemetry lock");
        for t in full {
            let report = report_digest(t);
            let (seen, admin) = (t.last_seen_at, t.admin_id);
            written
                .entry(t.device_id)
                .and_modify(|w| (w.seen, w.lease, w.report) = (seen, w.lease.max(seen), report))
                .or_insert(Written { seen, lease: seen, report, admin, present: false, joined: false });
        }
    }

    /// Puts telemetry the store did not take back in the buffer (unless a newer report came).
    fn keep_for_next_flush(&self, full: Vec<Telemetry>) {
        let mut buffer = self.telemetry.lock().expect("telemetry lock");
        for t in full {
            buffer.entry(t.device_id).or_insert(t);
        }
    }

    /// How long before a heartbeat every device present here has polled at the latest.
    fn present_within(&self) -> i64 {
        self.lease_ms * PRESENT_WITHIN.0 / PRESENT_WITHIN.1
    }

    /// Lets go of the devices present here that have not polled since `since` (their telemetry not
    /// yet written first, then their leave with their last poll), so the next heartbeat vouches
    /// only for devices that did. False when that could not be written.
    async fn let_go_of_silent(&self, since: Timestamp) -> bool {
        let _one_at_a_time = self.flushing.lock().await;
        let (pending, leaving) = {
            let mut buffer = self.telemetry.lock().expect("telemetry lock");
            let written = self.written.lock().expect("telemetry lock");
            let leaving: Vec<(AdminId, DeviceId, Timestamp)> = written
                .iter()
                .filter(|(_, w)| w.present)
                .filter_map(|(device, w)| {
                    let last = buffer.get(device).map_or(w.seen, |t| t.last_seen_at.max(w.seen)).max(w.lease);
                    (last < since).then_some((w.admin, *device, last))
                })
                .collect();
            let pending: Vec<Telemetry> = leaving.iter().filter_map(|(_, device, _)| buffer.remove(device)).collect();
            (pending, leaving)
        };
        if leaving.is_empty() {
            return true;
        }
        if !pending.is_empty() && !self.write_telemetry(pending).await {
            return false;
        }
        let result = self.store.record_presence(&self.server_id, &[], &leaving).await;
        self.note_result(&result);
        if let Err(err) = result {
            tracing::warn!(%err, devices = leaving.len(), "could not let silent devices go; no heartbeat until it can");
            return false;
        }
        self.leaves.fetch_add(leaving.len() as u64, Ordering::Relaxed);
        let mut written = self.written.lock().expect("telemetry lock");
        for (_, device, _) in &leaving {
            if let Some(w) = written.get_mut(device) {
                (w.present, w.joined) = (false, false);
            }
        }
        true
    }

    /// A server's heartbeat heard in the feed.
    fn note_beat(&self, server: &str, polled_since: Timestamp) {
        if server == self.server_id
            && let Some(feed) = &self.feed
        {
            feed.beat_back(polled_since, self.feed_now());
        }
        let mut beats = self.beats.lock().expect("beats lock");
        match beats.get_mut(server) {
            Some(known) => *known = Some(known.map_or(polled_since, |k| k.max(polled_since))),
            None => {
                beats.insert(Arc::from(server), Some(polled_since));
            }
        }
    }

    /// What the feed says of a tenant's presence, in its order. A part the change left as it was
    /// (`presence.server` alone when the same device joined another server) is taken from the
    /// presence known here, which the feed's earlier changes (or the read after a reset) set; with
    /// none known, the tenant's device is not vouched for until a change names both parts (no
    /// beat vouches for a device by a guess).
    fn note_presence(&self, admin: AdminId, news: PresenceNews) {
        let presence = match news {
            PresenceNews::Unchanged => return,
            PresenceNews::Gone => None,
            PresenceNews::Present { device, server } => {
                let known = || self.presences.lock().expect("presence lock").get(&admin).cloned();
                let (device, server) = match (device, server) {
                    (Some(device), Some(server)) => (Some(device), Some(server)),
                    (device, server) => {
                        let known = known();
                        (
                            device.or(known.as_ref().map(|(device, _)| *device)),
                            server.or(known.map(|(_, server)| server.to_string())),
                        )
                    }
                };
                match device.zip(server) {
                    Some(presence) => Some(presence),
                    None => {
                        tracing::debug!(tenant = %admin, "a presence changed in part, and none was known here");
                        None
                    }
                }
            }
        };
        self.set_presence(admin, presence);
    }

    /// A tenant's presence as the store names it now (the feed's order, or a fresh read).
    fn set_presence(&self, admin: AdminId, presence: Option<(DeviceId, String)>) {
        let presence = presence.map(|(device, server)| {
            let mut beats = self.beats.lock().expect("beats lock");
            let server = match beats.get_key_value(server.as_str()) {
                Some((known, _)) => Arc::clone(known),
                None => {
                    let known: Arc<str> = Arc::from(server);
                    beats.insert(Arc::clone(&known), None);
                    known
                }
            };
            (device, server)
        });
        let mut presences = self.presences.lock().expect("presence lock");
        match presence {
            Some(presence) => presences.insert(admin, presence),
            None => presences.remove(&admin),
        };
    }

    /// Reads every tenant's presence again (the feed may have missed changes).
    async fn reload_presences(&self) {
        match self.store.presences().await {
            Ok(presences) => {
                self.presences.lock().expect("presence lock").clear();
                for p in presences {
                    self.set_presence(p.admin, Some((p.device, p.server)));
                }
            }
            Err(err) => tracing::warn!(%err, "could not read which devices are present where"),
        }
    }

    /// The last poll of a tenant's controller as a read of the tenant would show it (but for this
    /// server's own polls not flushed yet: a tenant with a device here is held), from what its
    /// record says (`Store::pump_links`) and the heartbeat of the server the controller is present
    /// at: for the alerts watch, which reads the tenants it does not hold that way.
    pub fn last_poll_of(&self, link: &pumppilot_store::PumpLink) -> Option<Timestamp> {
        let vouched = link.controller.and_then(|controller| self.present_since(link.admin, controller));
        link.last_poll_at.max(vouched)
    }

    /// How long a poll's answer may be trusted by the device (every tenant's lease).
    pub fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    /// Since when `device` has polled at the latest, as the heartbeat of the server it is present
    /// at vouches (a shared store only; `None` when no server vouches for it).
    pub fn present_since(&self, admin: AdminId, device: DeviceId) -> Option<Timestamp> {
        let (present, server) = self.presences.lock().expect("presence lock").get(&admin).cloned()?;
        if present != device {
            return None;
        }
        *self.beats.lock().expect("beats lock").get(&server)?
    }

    /// The tenant's controller polled at least as late as the heartbeat of the server it is
    /// present at vouches: its last poll moves there (never beyond a poll that happened).
    fn vouch(&self, tenant: &mut Tenant) {
        if !self.is_shared() {
            return;
        }
        let Some(controller) = tenant.controller else { return };
        let presence = self.presences.lock().expect("presence lock").get(&tenant.admin_id).cloned();
        let Some((device, server)) = presence else { return };
        if device != controller {
            return;
        }
        if let Some(since) = self.beats.lock().expect("beats lock").get(&server).copied().flatten() {
            tenant.touch(since);
        }
    }

    /// Whether `device`'s polls keep its tenant's lease (it is the controller, or there is none
    /// yet: `None` for a spare, whose last poll the store ignores), and if so whether the lease
    /// decides something now (the tenant has a run; also when its state is busy or not here, to
    /// be safe).
    fn lease_of(&self, admin: AdminId, device: DeviceId) -> Option<bool> {
        let Some(cell) = self.cells.read().expect("cells lock").get(&admin).cloned() else { return Some(true) };
        let Ok(tenant) = cell.tenant.try_lock() else { return Some(true) };
        let Some(tenant) = tenant.as_ref() else { return Some(true) };
        tenant.controller.is_none_or(|c| c == device).then_some(tenant.active.is_some())
    }

    /// Pumps whose device is online (the engine's rule: polled within its lease) among the
    /// tenants held here, without a store read and without waiting: a tenant busy at that instant
    /// (its state taken by a report or a commit, which on a busy store may take seconds) is left
    /// out. On a shared store only those present at this server or at none count: a device is
    /// present at one server at most, so the servers' counts add up to the fleet's (one not yet
    /// joined may count at two for a moment). On a store of one server every device that polls
    /// is held here.
    pub fn devices_online(&self) -> u64 {
        let cells: Vec<(AdminId, Cell)> =
            self.cells.read().expect("cells lock").iter().map(|(admin, cell)| (*admin, Arc::clone(cell))).collect();
        let now = self.clock.now();
        let mut online = 0;
        for (admin, cell) in cells {
            let elsewhere = self
                .presences
                .lock()
                .expect("presence lock")
                .get(&admin)
                .is_some_and(|(_, server)| **server != *self.server_id);
            if elsewhere {
                continue;
            }
            let Ok(tenant) = cell.tenant.try_lock() else { continue };
            online += u64::from(tenant.as_ref().is_some_and(|t| t.device.online_at(now)));
        }
        online
    }

    /// The latest telemetry of a device not yet flushed, if any.
    pub fn pending_telemetry(&self, device: DeviceId) -> Option<Telemetry> {
        self.telemetry.lock().expect("telemetry lock").get(&device).cloned()
    }

    /// The tenant's slot for a use of it here (a device or a request of the tenant at this
    /// server, or somebody here listening to it), which keeps it [`KEEP_FOR`] from now
    /// ([`Slot::needed`]). This server's own upkeep of a tenant (its timer firing, a take-over, a
    /// read the change feed's news caused) takes [`Runtime::cell`] and keeps nothing.
    fn use_here(&self, admin: AdminId) -> Cell {
        let cell = self.cell(admin);
        cell.needed(self.clock.now());
        cell
    }

    /// The tenant's slot, made when it is not held here. Not a use of the tenant here
    /// ([`Runtime::use_here`]): a slot made by this server's upkeep alone was never used here, and is
    /// kept only while its timer is owned here and it has a run.
    fn cell(&self, admin: AdminId) -> Cell {
        if let Some(cell) = self.cells.read().expect("cells lock").get(&admin) {
            return Arc::clone(cell);
        }
        let owned = self.owns_timer(admin);
        Arc::clone(
            self.cells
                .write()
                .expect("cells lock")
                .entry(admin)
                .or_insert_with(|| Arc::new(Slot { owned: AtomicBool::new(owned), ..Slot::default() })),
        )
    }

    /// The tenant's slot if it is held here.
    fn held(&self, admin: AdminId) -> Option<Cell> {
        self.cells.read().expect("cells lock").get(&admin).cloned()
    }

    /// The line `asker`'s tenant reads wait in.
    fn line(&self, asker: Asker) -> &tokio::sync::Semaphore {
        match asker {
            Asker::Device => &self.loading,
            Asker::Other => &self.loading_first,
        }
    }

    async fn load(&self, admin: AdminId, line: Line<'_>) -> Result<Tenant, RuntimeError> {
        let closed = "the loading semaphores are never closed";
        let _turn = match line {
            Line::Taken(turn) => turn,
            Line::Of(asker) => self.line(asker).acquire().await.expect(closed),
        };
        self.loads.fetch_add(1, Ordering::Relaxed);
        match self.store.load_tenant(admin, self.lease_ms).await? {
            Some(mut tenant) => {
                tenant.defaults = *self.motor_rules.lock().expect("motor rules lock");
                Ok(tenant)
            }
            None => {
                self.cells.write().expect("cells lock").remove(&admin);
                Err(RuntimeError::NotFound)
            }
        }
    }

    /// Whether a cached state may answer at `now`: on a shared store only while the feed is fresh,
    /// and not once the device's lease ran out under a running run (another server may have had
    /// its polls since).
    fn may_use(&self, tenant: &Tenant, now: Timestamp) -> bool {
        let running = tenant.active.as_ref().is_some_and(|e| e.status == pumppilot_engine::EntryStatus::Running);
        !self.is_shared() || (self.is_fresh() && (!running || tenant.device.lease_end().is_none_or(|end| end > now)))
    }

    /// Whether `device` may be answered from the cached state of `cell` at `now` while the feed of
    /// a shared store is behind ([`may_use`](Self::may_use) refuses it): the engine allows the
    /// answer from older state (it is OFF: `Tenant::may_answer_from_older_state`), and the state
    /// was known to be the store's within [`STALE_OFF_FOR`] (read, committed, or the feed caught up).
    fn may_answer_off(&self, cell: &Slot, tenant: &Tenant, device: DeviceId, now: Timestamp) -> bool {
        let Some(feed) = &self.feed else { return false };
        let caught_up_to = feed.caught_up_to().map_or(i64::MIN, Timestamp::millis);
        let known_at = cell.read_at.load(Ordering::Relaxed).max(caught_up_to);
        let off_for = i64::try_from(STALE_OFF_FOR.as_millis()).unwrap_or(i64::MAX);
        (0..off_for).contains(&(self.feed_now().millis().saturating_sub(known_at)))
            && tenant.may_answer_from_older_state(device, now)
    }

    /// Reads a tenant from the store again, keeping this server's own polls of its controller that
    /// were not flushed yet (from `cached`). A store that cannot be read marks the outage.
    async fn load_over(&self, admin: AdminId, cached: Option<&Tenant>, line: Line<'_>) -> Result<Tenant, RuntimeError> {
        let mut tenant = match self.load(admin, line).await {
            Ok(tenant) => tenant,
            Err(RuntimeError::Store(StoreError::Unavailable(reason))) => {
                self.note_write(false);
                return Err(RuntimeError::Store(StoreError::Unavailable(reason)));
            }
            Err(err) => return Err(err),
        };
        keep_own_polls(&mut tenant, cached);
        Ok(tenant)
    }

    /// Another server changed a tenant (its version moved: `Some`) or flushed its device's polls:
    /// the cached state takes the state committed, as the feed carried it, or is read again when
    /// the feed did not carry it (or, without a commit, only its last poll moves on: no read), and
    /// long-polls and event streams here hear of it. A tenant not held here is read
    /// only when the change gave it a run (`has_run`) and this server owns its timer
    /// (`Runtime::owns_timer`); any other is left to be read on its next use (a run it already had
    /// is held by its owner, which hears of every commit).
    async fn on_tenant_change(&self, admin: AdminId, news: TenantNews) {
        let TenantNews { version, last_poll_at, has_run, state } = news;
        let Some(cell) = self.held(admin) else {
            if has_run == Some(true)
                && self.owns_timer(admin)
                && let Err(err) = self.keep_up(admin).await
            {
                tracing::debug!(tenant = %admin, %err, "could not read a tenant whose timer this server owns");
                self.take_over_due.store(true, Ordering::Relaxed);
            }
            return;
        };
        let mut guard = cell.tenant.lock().await;
        if let Some(tenant) = guard.as_mut()
            && version.is_none_or(|version| tenant.version >= version)
        {
            if let Some(seen) = last_poll_at
                && tenant.controller.is_some()
                && tenant.device.last_poll_at.is_none_or(|known| known < seen)
            {
                tenant.touch(seen);
                let deadline = self.deadline_of(tenant);
                drop(guard);
                self.schedule(admin, deadline);
            }
            return;
        }
        // Not read yet (its first read, under way, reads it as it is now), and no commit to catch up with.
        if version.is_none() {
            return;
        }
        start_path::note(Step::Heard, admin);
        // What the commit wrote is taken, not read, over a state held here for the same controller:
        // its last poll, which the store keeps the latest of, is then known here (this server's
        // own, or the feed's news of the others'). Over nothing held, or another controller, a
        // read finds it.
        let known = |state: &Tenant| guard.as_ref().is_some_and(|held| held.controller == state.controller);
        match state.filter(|state| known(state)) {
            Some(mut state) => {
                if let Some(seen) = last_poll_at {
                    state.touch(seen);
                }
                self.take_committed(admin, &cell, &mut guard, *state);
            }
            None => self.refresh(admin, &cell, &mut guard).await,
        }
    }

    /// Takes a committed state, as the change feed carried it ([`Change::Tenant`]'s `state`), into
    /// the tenant's slot (whose lock the caller holds, over the state it held), as
    /// [`Runtime::refresh`] does a read of it: the polls of the controller known here and not in
    /// the state are kept, its stamp is announced and its deadline scheduled. No store read: the
    /// feed brought it in order, so what vouches for it is the feed's freshness, and the slot's
    /// `read_at` stays as it was.
    fn take_committed(&self, admin: AdminId, cell: &Cell, guard: &mut Option<Tenant>, mut tenant: Tenant) {
        tenant.defaults = *self.motor_rules.lock().expect("motor rules lock");
        tenant.device.lease_ms = self.lease_ms;
        keep_own_polls(&mut tenant, guard.as_ref());
        self.taken_from_feed.fetch_add(1, Ordering::Relaxed);
        self.hold_newer(admin, cell, guard, tenant);
    }

    /// Puts a newer state of a tenant (read, or taken from the feed) in its slot, whose lock the
    /// caller holds, announces its stamp to the long-polls and streams here and schedules its
    /// deadline.
    fn hold_newer(&self, admin: AdminId, cell: &Cell, guard: &mut Option<Tenant>, tenant: Tenant) {
        let deadline = self.deadline_of(&tenant);
        let stamp = Stamp::of(&tenant);
        *guard = Some(tenant);
        cell.announce(stamp);
        self.schedule(admin, deadline);
    }

    /// Reads a tenant again into its slot (whose lock the caller holds), announces its stamp and
    /// schedules its deadline; a tenant that cannot be read is left to be read on its next use.
    async fn refresh(&self, admin: AdminId, cell: &Cell, guard: &mut Option<Tenant>) {
        let cached = guard.take();
        let read_at = self.feed_now();
        match self.load_over(admin, cached.as_ref(), Line::Of(Asker::Other)).await {
            Ok(tenant) => {
                start_path::note(Step::Read, admin);
                cell.read_at.store(read_at.millis(), Ordering::Relaxed);
                self.hold_newer(admin, cell, guard, tenant);
            }
            Err(err) => tracing::debug!(tenant = %admin, %err, "could not read a tenant again"),
        }
    }

    /// Reads every tenant held here again (the feed may have missed changes), and, on the next
    /// beat, those with a run whose timer this server owns and does not hold (their changes were
    /// missed too).
    async fn refresh_all(&self) {
        self.take_over_due.store(true, Ordering::Relaxed);
        let held: Vec<(AdminId, Cell)> =
            self.cells.read().expect("cells lock").iter().map(|(admin, cell)| (*admin, Arc::clone(cell))).collect();
        if held.len() <= ONE_BY_ONE_UP_TO {
            for (admin, cell) in held {
                let mut guard = cell.tenant.lock().await;
                if guard.is_some() {
                    self.refresh(admin, &cell, &mut guard).await;
                }
            }
            return;
        }
        let held: HashSet<AdminId> = held.into_iter().map(|(admin, _)| admin).collect();
        // Many in a few reads (`Store::load_tenants`), not one per tenant: a gap in the feed of a
        // busy store must not become thousands of reads that keep it busy.
        let read_at = self.feed_now();
        let fresh = match self.store.load_tenants(self.lease_ms, Some(&held)).await {
            Ok(tenants) => tenants,
            Err(err) => {
                tracing::debug!(%err, "could not read the tenants again; each is read on its next use");
                return;
            }
        };
        self.loads.fetch_add(fresh.len() as u64, Ordering::Relaxed);
        let motor_rules = *self.motor_rules.lock().expect("motor rules lock");
        for mut tenant in fresh {
            let admin = tenant.admin_id;
            let Some(cell) = self.cells.read().expect("cells lock").get(&admin).cloned() else { continue };
            let mut guard = cell.tenant.lock().await;
            let Some(cached) = guard.as_ref() else { continue };
            tenant.defaults = motor_rules;
            keep_own_polls(&mut tenant, Some(cached));
            let deadline = self.deadline_of(&tenant);
            let stamp = Stamp::of(&tenant);
            *guard = Some(tenant);
            drop(guard);
            cell.read_at.store(read_at.millis(), Ordering::Relaxed);
            cell.announce(stamp);
            self.schedule(admin, deadline);
        }
    }

    /// When the timer should next bring a tenant up to date. On a shared store a lease's end is
    /// acted on [`LEASE_TAKEOVER_GRACE`] later, once every server's polls have landed in the store.
    fn deadline_of(&self, tenant: &Tenant) -> Option<Timestamp> {
        let deadline = tenant.next_deadline()?;
        let grace = i64::try_from(LEASE_TAKEOVER_GRACE.as_millis()).unwrap_or(i64::MAX);
        if self.is_shared() && tenant.device.lease_end() == Some(deadline) {
            Some(deadline + grace)
        } else {
            Some(deadline)
        }
    }

    fn schedule(&self, admin: AdminId, deadline: Option<Timestamp>) {
        let mut timer = self.timer.lock().expect("timer lock");
        if timer.by_tenant.get(&admin).copied() == deadline {
            return;
        }
        if let Some(old) = timer.by_tenant.remove(&admin) {
            timer.queue.remove(&(old, admin));
        }
        if let Some(at) = deadline {
            timer.by_tenant.insert(admin, at);
            timer.queue.insert((at, admin));
            if timer.queue.first() == Some(&(at, admin)) {
                self.wake.notify_one();
            }
        }
    }

    /// Brings the tenant of the earliest deadline up to date if it is due; else what to wait for.
    async fn fire_next(&self) -> Option<crate::clock::Sleep> {
        {
            let next = self.timer.lock().expect("timer lock").queue.first().copied();
            let Some((at, admin)) = next else { return Some(Box::pin(std::future::pending())) };
            if at > self.clock.now() {
                return Some(self.clock.sleep_until(at));
            }
            {
                let mut timer = self.timer.lock().expect("timer lock");
                timer.queue.remove(&(at, admin));
                timer.by_tenant.remove(&admin);
                // Another server owns this tenant's timer: act only if it has not within the take-over.
                let takeover = i64::try_from(TIMER_TAKEOVER.as_millis()).unwrap_or(i64::MAX);
                if self.is_shared() && !self.owns_timer(admin) && self.clock.now() < at + takeover {
                    timer.by_tenant.insert(admin, at + takeover);
                    timer.queue.insert((at + takeover, admin));
                    return None;
                }
            }
            if let Err(err) = self.keep_up(admin).await {
                tracing::warn!(tenant = %admin, %err, "timer could not bring a tenant up to date; retrying");
                self.schedule(admin, Some(self.clock.now() + 1000));
            }
        }
        None
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // The timer wakes and ends.
        self.wake.notify_one();
    }
}

/// Fires the deadlines as they fall due, for as long as the runtime lives.
async fn run_timer(runtime: std::sync::Weak<Runtime>, wake: Arc<Notify>) {
    loop {
        let Some(live) = runtime.upgrade() else { return };
        let wait = live.fire_next().await;
        drop(live);
        if let Some(wait) = wait {
            // A sooner deadline scheduled meanwhile is not missed: `notify_one` leaves a permit
            // when nobody waits yet.
            tokio::select! {
                () = wait => {}
                () = wake.notified() => {}
            }
        }
    }
}

/// What the change feed said of a tenant held here ([`Change::Tenant`]), for
/// [`Runtime::on_tenant_change`].
struct TenantNews {
    version: Option<u64>,
    last_poll_at: Option<Timestamp>,
    has_run: Option<bool>,
    state: Option<Box<Tenant>>,
}

/// Keeps in `tenant` (newer, from the store) this server's own polls of its controller that were
/// not flushed yet, as `cached` (what was kept here) has them.
fn keep_own_polls(tenant: &mut Tenant, cached: Option<&Tenant>) {
    if let Some(cached) = cached
        && cached.controller.is_some()
        && cached.controller == tenant.controller
        && let Some(seen) = cached.device.last_poll_at
    {
        tenant.touch(seen);
    }
}

/// Follows a shared store's change feed: notes how far it has caught up (this server's beats heard
/// back), brings changed tenants up to date (with the state a commit carries, or a read), and
/// passes the other changes on to the caches in front of the store.
///
/// Only a [`Change::Reset`] (the store's feed could not resume where it stopped, so changes may
/// have been missed) reads every held tenant again. A feed that was merely slow (more than
/// [`FRESH_FOR`] behind, the store busy) missed nothing: its changes come late but in order, each
/// taken (or read) here as it comes, and meanwhile answers that may keep a motor ON read the store
/// ([`Runtime::may_use`]). Reading every tenant again on such a return made a busy store busier
/// (a few thousand tenant reads each time its feed fell two seconds behind), so its feed fell
/// behind again: a fleet of 10,000 devices never stayed online on SecantusDB.
async fn watch_feed(runtime: std::sync::Weak<Runtime>, mut changes: mpsc::Receiver<Change>) {
    while let Some(change) = changes.recv().await {
        let Some(runtime) = runtime.upgrade() else { return };
        let Some(feed) = runtime.feed.as_ref() else { return };
        if matches!(change, Change::Reset) {
            // Changes may have been missed: nothing known is caught up until everything is read
            // again and a beat sent since comes back. Until then, answers come from the store.
            feed.reset();
            if let Some(news) = runtime.link_news.lock().expect("link news lock").as_mut() {
                *news = LinkNews::ReadAll;
            }
            let _ = feed.notices.send(Change::Reset);
            runtime.reload_presences().await;
            runtime.refresh_all().await;
        }
        feed.spoke.notify_waiters();
        match change {
            Change::Tenant { admin, version, last_poll_at, presence, has_run, state } => {
                // Here, in the feed's order: a beat never vouches for a device let go before it.
                runtime.note_presence(admin, presence);
                if let Some(news) = runtime.link_news.lock().expect("link news lock").as_mut() {
                    news.hear(admin, version, last_poll_at, state.as_deref());
                }
                // A presence alone asks nothing of the tenant held here.
                let held = (version.is_some() || last_poll_at.is_some()) && runtime.holds(admin);
                if held || (has_run == Some(true) && runtime.owns_timer(admin)) {
                    let runtime = Arc::clone(&runtime);
                    let news = TenantNews { version, last_poll_at, has_run, state };
                    tokio::spawn(async move { runtime.on_tenant_change(admin, news).await });
                }
            }
            Change::Beat { server, polled_since } => runtime.note_beat(&server, polled_since),
            Change::Live | Change::Reset => {}
            other => {
                let _ = feed.notices.send(other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every tenant costs a server that keeps it (all of them on a store of one process; on
    /// a shared store those it needs or owns the timer of): its slot stays small, and a tenant
    /// nobody listens to has no channel.
    #[test]
    fn a_kept_tenant_stays_small() {
        let (slot, tenant) = (size_of::<Slot>(), size_of::<Tenant>());
        // 560 and 424 with the active run inline (most tenants have none).
        assert!(tenant <= 288, "a tenant: {tenant} bytes");
        assert!(slot <= 448, "a tenant's slot: {slot} bytes");
        let quiet = Slot::default();
        quiet.announce(Stamp { version: 1, seq: 1 });
        assert!(matches!(*quiet.changes.lock().unwrap(), Changes::Quiet(_)), "no channel without a listener");
    }

    /// A report that waits for the store (a tenant read 32 at a time, a commit) holds the
    /// runtime's `apply` future all along: the tenant's states in it are boxed (2,632 bytes with
    /// three tenants inline).
    #[test]
    fn a_report_waiting_for_the_store_holds_a_small_future() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sizes.db").display());
        let store: Arc<dyn Store> = Arc::new(pumppilot_store_sqlite::SqliteStore::open(&url).unwrap());
        let clock: SharedClock = crate::clock::ManualClock::at(Timestamp(0));
        let runtime = Runtime::new(store, clock, 15_000, 5_000);
        let apply = runtime.apply(AdminId(UserId::new()), Event::Tick, Extras::default(), |_, _| ());
        let size = size_of_val(&apply);
        assert!(size <= 1536, "apply's future: {size} bytes");
    }

    /// A fleet coming online fills the devices' line of tenant reads: their reports, and their
    /// commands read as they subscribe. A farmer's page (any read but a device's) is not queued
    /// behind it, even for a pump whose own device waits in that line: the device waits for its
    /// turn without its tenant's lock. Once the line moves, the device's report and command go on.
    #[tokio::test]
    async fn a_farmer_is_not_queued_behind_the_devices_reads() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("lines.db").display());
        let store: Arc<dyn Store> = Arc::new(pumppilot_store_sqlite::SqliteStore::open(&url).unwrap());
        let admin = AdminId(UserId::new());
        let owner = pumppilot_store::Account {
            id: admin.0,
            username: "owner".into(),
            name: "owner".into(),
            role: pumppilot_store::Role::Admin,
            admin_id: Some(admin),
            password_hash: String::new(),
            suspended: false,
            created_at: Timestamp(0),
        };
        store.create_account(&owner).await.unwrap();
        let clock: SharedClock = crate::clock::ManualClock::at(Timestamp(0));
        let runtime = Runtime::new(store, clock, 15_000, 5_000);

        let fleet = runtime.loading.acquire_many(LOADS_AT_ONCE as u32).await.unwrap();
        let device = DeviceId::new();
        let report = tokio::spawn({
            let (runtime, telemetry) = (Arc::clone(&runtime), Telemetry::ready(admin, device, Timestamp(0)));
            async move { runtime.poll(admin, DevicePoll::ready(device), telemetry).await.map(|_| ()) }
        });
        let command = tokio::spawn({
            let runtime = Arc::clone(&runtime);
            async move { runtime.command(admin, device).await.map(|_| ()) }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let patience = std::time::Duration::from_secs(10);
        let read = tokio::time::timeout(patience, runtime.read(admin, |tenant, _| tenant.version)).await;
        assert!(matches!(read, Ok(Ok(0))), "the farmer waited behind the devices' line: {read:?}");
        assert!(!report.is_finished(), "the device's report waits for its turn");
        assert!(!command.is_finished(), "the device's command waits in the devices' line");
        drop(fleet);
        let reported = tokio::time::timeout(patience, report).await.expect("the report goes on once the line moves");
        assert!(reported.unwrap().is_ok());
        let commanded = tokio::time::timeout(patience, command).await.expect("the command goes on once the line moves");
        assert!(commanded.unwrap().is_ok());
    }

    /// The feed is caught up to when this server's latest beat heard back was sent, and as far
    /// behind as that beat came back late: a feed that delivers, but late, is not fresh. Beats
    /// carrying the same `polled_since` (a clock that stood still) are told apart by their order;
    /// a beat never heard back is forgotten once a later one is; a feed that stopped is as far
    /// behind as its oldest beat awaited.
    #[test]
    fn the_feed_is_caught_up_to_when_this_servers_latest_beat_heard_back_was_sent() {
        let feed = Feed::new();
        let (second, fresh_for) = (1_000, i64::try_from(FRESH_FOR.as_millis()).unwrap());
        assert!(!feed.is_fresh(Timestamp(0)), "no beat heard yet");
        assert_eq!(feed.behind(Timestamp(0)), None);
        // Beats every second from 93 s; the one sent at 93 s heard at 100 s: 7 s behind.
        for at in 93..=100 {
            feed.beat_sent(Timestamp(at * second - 10_000), Timestamp(at * second));
        }
        feed.beat_back(Timestamp(93 * second - 10_000), Timestamp(100 * second));
        assert_eq!(feed.behind(Timestamp(100 * second)), Some(Duration::from_secs(7)));
        assert_eq!(feed.caught_up_to(), Some(Timestamp(93 * second)));
        assert!(!feed.is_fresh(Timestamp(100 * second)), "delivering, but 7 s late");
        // The one sent at 99 s heard at 100.5 s: caught up to 99 s, fresh until 101 s.
        feed.beat_back(Timestamp(99 * second - 10_000), Timestamp(100 * second + 500));
        assert_eq!(feed.behind(Timestamp(100 * second + 500)), Some(Duration::from_millis(1_500)));
        assert!(feed.is_fresh(Timestamp(100 * second + 500)));
        assert!(feed.is_fresh(Timestamp(99 * second + fresh_for - 1)));
        assert!(!feed.is_fresh(Timestamp(99 * second + fresh_for)), "FRESH_FOR after 99 s, if no later beat came");
        assert!(!feed.is_fresh(Timestamp(99 * second - 1)), "a clock set back waits for the next beat");
        // A beat heard again, or one forgotten (sent at 94..98 s, passed over), changes nothing.
        feed.beat_back(Timestamp(95 * second - 10_000), Timestamp(100 * second + 600));
        assert_eq!(feed.caught_up_to(), Some(Timestamp(99 * second)));
        // Two beats carrying the same time, sent at 101 s and 102 s: the first back is the first sent
        // (the one sent at 100 s, carrying an earlier time, is passed over).
        feed.beat_sent(Timestamp(95_000), Timestamp(101 * second));
        feed.beat_sent(Timestamp(95_000), Timestamp(102 * second));
        feed.beat_back(Timestamp(95_000), Timestamp(102 * second + 100));
        assert_eq!(feed.caught_up_to(), Some(Timestamp(101 * second)));
        feed.beat_back(Timestamp(95_000), Timestamp(102 * second + 200));
        let behind = feed.behind(Timestamp(102 * second + 200));
        assert_eq!((feed.caught_up_to(), behind), (Some(Timestamp(102 * second)), Some(Duration::from_millis(200))));
        // The feed stops: the beat sent at 103 s is awaited at 110 s.
        feed.beat_sent(Timestamp(96_000), Timestamp(103 * second));
        assert_eq!(feed.behind(Timestamp(110 * second)), Some(Duration::from_secs(7)), "not shown on time");
        // A reset: caught up to nothing until the next beat heard back.
        feed.reset();
        assert!(!feed.is_fresh(Timestamp(102 * second + 300)));
        // A feed dead for long forgets the oldest of its awaited beats, never more than BEATS_OUT.
        for at in 0..2 * BEATS_OUT {
            feed.beat_sent(Timestamp(200_000 + i64::try_from(at).unwrap()), Timestamp(200_000));
        }
        assert_eq!(feed.beats_out.lock().unwrap().len(), BEATS_OUT);
        feed.beat_back(Timestamp(200_000), Timestamp(200_100));
        assert_eq!(feed.caught_up_to(), None, "a forgotten beat tells nothing");
        feed.beat_back(Timestamp(200_000 + i64::try_from(BEATS_OUT).unwrap()), Timestamp(200_100));
        assert_eq!(feed.caught_up_to(), Some(Timestamp(200_000)));
    }

    /// A presence changed in part (MongoDB's diff of `presence` names `presence.server` alone
    /// when the same device joined another server) keeps the part known here; with none known,
    /// the device is vouched for by nobody until a change names both parts; a change that left
    /// the presence as it was changes nothing, a leave removes it.
    #[test]
    fn a_presence_changed_in_part_keeps_the_part_known_here() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("presence.db").display());
        let store: Arc<dyn Store> = Arc::new(pumppilot_store_sqlite::SqliteStore::open(&url).unwrap());
        let clock: SharedClock = crate::clock::ManualClock::at(Timestamp(0));
        let runtime = Runtime::new(store, clock, 15_000, 5_000);
        let (admin, device) = (AdminId(UserId::new()), DeviceId::new());
        let known = || runtime.presences.lock().unwrap().get(&admin).map(|(d, s)| (*d, s.to_string()));
        let present =
            |device, server: Option<&str>| PresenceNews::Present { device, server: server.map(str::to_owned) };

        runtime.note_presence(admin, present(None, Some("b")));
        assert_eq!(known(), None, "no part known here: no guess");
        runtime.note_presence(admin, present(Some(device), Some("a")));
        assert_eq!(known(), Some((device, "a".to_owned())));
        runtime.note_presence(admin, present(None, Some("b")));
        assert_eq!(known(), Some((device, "b".to_owned())), "the same device, at another server");
        runtime.note_presence(admin, PresenceNews::Unchanged);
        assert_eq!(known(), Some((device, "b".to_owned())));
        let other = DeviceId::new();
        runtime.note_presence(admin, present(Some(other), None));
        assert_eq!(known(), Some((other, "b".to_owned())), "another device, at the same server");
        runtime.note_presence(admin, PresenceNews::Gone);
        assert_eq!(known(), None);
    }

    /// A listener sees the last stamp announced before it came, and every one after; once it is
    /// gone, the channel goes too, and the next listener starts from the latest stamp.
    #[test]
    fn a_tenant_has_a_channel_only_while_somebody_listens() {
        let slot = Slot::default();
        slot.announce(Stamp { version: 3, seq: 2 });
        let mut first = slot.subscribe();
        assert_eq!(*first.borrow_and_update(), Stamp { version: 3, seq: 2 });
        slot.announce(Stamp { version: 4, seq: 3 });
        assert!(first.has_changed().unwrap());
        assert_eq!(*first.borrow_and_update(), Stamp { version: 4, seq: 3 });
        let second = slot.subscribe();
        assert_eq!(*second.borrow(), Stamp { version: 4, seq: 3 });
        drop((first, second));
        slot.announce(Stamp { version: 5, seq: 3 });
        assert!(matches!(*slot.changes.lock().unwrap(), Changes::Quiet(Stamp { version: 5, seq: 3 })));
        let third = slot.subscribe();
        assert_eq!(*third.borrow(), Stamp { version: 5, seq: 3 });
    }
}
