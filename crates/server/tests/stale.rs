//! A shared store's change feed that falls behind, on fake time: server A's feed is held back by
//! the test (its changes wait, in order, as a lagging feed's do), and the manual clock moves past
//! `FRESH_FOR`. A device whose answer is OFF is answered from A's memory without a store read (a
//! slow store is not made slower by every quiet poll); a device told ON still reads the store at
//! every poll, so a Stop made on server B turns it OFF at its next poll; the alerts watch reads
//! nothing while the feed is behind and tells the owner once it has caught up. A feed that delivers its
//! ticks but holds its news (and A's own heartbeats with them) is behind all the same.
//!
//! The store is real (SecantusDB, started by the test); only the feed between the store and A is
//! held. The test waits on real time for what the feed brings, with generous limits.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EntryId, Event, LedgerKind, Motor, NoticeKind, PollAnswer, UserId,
};
use pumppilot_server::{
    alerts::{AlertSettings, WATCH_STALE_AT_MOST, WatchMemory, watch_pumps},
    clock::{Clock, ManualClock},
    runtime::{Extras, FRESH_FOR, Runtime, STALE_OFF_FOR},
};
use pumppilot_store::{Change, Store};
use pumppilot_store_mongodb::{MongoStore, testing};
use support::{pump, telemetry, until};
use tokio::sync::{mpsc, watch};

const LEASE_MS: u32 = 10_000;

/// The feed between the store and one runtime, which the test can hold back.
struct HeldFeed {
    open: watch::Sender<bool>,
    /// True while a change waits at the closed gate (everything before it has been passed on).
    waiting: Arc<AtomicBool>,
    /// The runtime's side, to see that it has taken every change passed on.
    passed: mpsc::Sender<Change>,
}

impl HeldFeed {
    /// Puts itself between `runtime` (not started yet) and its store's feed.
    fn between(runtime: &Runtime) -> HeldFeed {
        let (open, gate) = watch::channel(true);
        let waiting = Arc::new(AtomicBool::new(false));
        let (passed, to_runtime) = mpsc::channel(1);
        let (tx, flag) = (passed.clone(), Arc::clone(&waiting));
        runtime.feed_through(move |mut from_store| {
            tokio::spawn(async move {
                let mut gate = gate;
                while let Some(change) = from_store.recv().await {
                    if !*gate.borrow() {
                        flag.store(true, Ordering::SeqCst);
                        if gate.wait_for(|open| *open).await.is_err() {
                            return;
                        }
                        flag.store(false, Ordering::SeqCst);
                    }
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
            });
            to_runtime
        });
        HeldFeed { open, waiting, passed }
    }

    /// Holds every change from now on, once the runtime has taken all those passed before (the
    /// store's feed says something at least every 250 ms, so one soon waits at the gate).
    async fn hold(&self) {
        self.open.send_replace(false);
        until("the feed held", || async {
            self.waiting.load(Ordering::SeqCst) && self.passed.capacity() == self.passed.max_capacity()
        })
        .await;
    }

    /// Lets the held changes through, in order, and everything after them.
    fn release(&self) {
        self.open.send_replace(true);
    }
}

/// A tenant with a farmer and one pump, on a fresh database.
struct Pump {
    mongo: Arc<MongoStore>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    admin: AdminId,
    farmer: UserId,
    device: DeviceId,
}

impl Pump {
    async fn new() -> Pump {
        let mongo = Arc::new(testing::fresh_store().await);
        let store: Arc<dyn Store> = mongo.clone();
        let clock = ManualClock::starting_now();
        let (admin, farmer, device) = pump(store.as_ref(), clock.now(), 5).await;
        Pump { mongo, store, clock, admin, farmer, device }
    }

    /// A runtime on the store (started), and its feed held back when `held`.
    async fn server(&self, held: bool) -> (Arc<Runtime>, Option<HeldFeed>) {
        let runtime = Runtime::new(Arc::clone(&self.store), self.clock.clone(), LEASE_MS, 5_000);
        // The feed's liveness on the same clock, which the test moves: it plays a feed behind.
        runtime.time_the_feed_by(self.clock.clone());
        let feed = held.then(|| HeldFeed::between(&runtime));
        runtime.start().await.unwrap();
        until("the feed caught up", || async { runtime.is_fresh() }).await;
        (runtime, feed)
    }

    /// The device's everyday report to `runtime`, its relay as it says.
    async fn poll(&self, runtime: &Runtime, relay: bool) -> PollAnswer {
        let now = self.clock.now();
        let poll = DevicePoll { relay, ..DevicePoll::ready(self.device) };
        runtime.poll(self.admin, poll, telemetry(self.admin, self.device, now, relay)).await.unwrap()
    }

    /// Ten minutes for the farmer and their Start, on `runtime`.
    async fn start(&self, runtime: &Runtime) {
        let credit = Credit::new(self.farmer, 600, LedgerKind::Recharge, self.admin.0);
        runtime.apply(self.admin, Event::Credit(credit), Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
        let start = Event::Start { user: self.farmer, requested_minutes: None, entry_id: EntryId::new() };
        runtime.apply(self.admin, start, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    }

    /// Moves the clock past `FRESH_FOR` with the feed held: the runtime's copy is behind.
    fn fall_behind(&self, runtime: &Runtime) {
        self.clock.advance(FRESH_FOR + Duration::from_millis(500));
        assert!(!runtime.is_fresh(), "a feed silent for longer than FRESH_FOR on the runtime's clock is behind");
    }
}

#[tokio::test]
async fn an_off_device_is_answered_from_memory_while_the_feed_is_behind_for_a_bounded_time() {
    let pump = Pump::new().await;
    let (a, feed) = pump.server(true).await;
    let feed = feed.unwrap();
    // The first poll makes the device the controller (a commit); it is told OFF: no run.
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    feed.hold().await;
    pump.fall_behind(&a);

    let loads = a.loads();
    let answer = pump.poll(&a, false).await;
    assert_eq!(answer.motor, Motor::Off);
    assert_eq!(a.loads(), loads, "an OFF answer comes from memory: no store read");
    // The command as MQTT sends it on subscribe: the same.
    assert_eq!(a.command(pump.admin, pump.device).await.unwrap().motor, Motor::Off);
    assert_eq!(a.loads(), loads, "the command too");

    // Polls every 4 s, all from memory, for as long as STALE_OFF_FOR since the state was known.
    let known = pump.clock.now() - i64::try_from((FRESH_FOR + Duration::from_millis(500)).as_millis()).unwrap();
    let off_for = i64::try_from(STALE_OFF_FOR.as_millis()).unwrap();
    while pump.clock.now() + 4_000 < known + off_for {
        pump.clock.advance(Duration::from_secs(4));
        assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    }
    assert_eq!(a.loads(), loads, "no store read within STALE_OFF_FOR");
    // Past it, the store is read once (a Start on another server reaches the device even if the
    // feed never comes back), and the next polls come from memory again.
    pump.clock.set(known + off_for);
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    assert_eq!(a.loads(), loads + 1, "the state read again once STALE_OFF_FOR has passed");
    pump.clock.advance(Duration::from_secs(4));
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    assert_eq!(a.loads(), loads + 1);

    // The feed catches up: fresh again once a beat sent now comes back through it. The beat is sent
    // here, not left to the beating loop: that loop sleeps on this clock, which stands still now,
    // and a beat of its still in flight when the clock last moved was sent too early to count.
    feed.release();
    a.heartbeat().await;
    until("the feed caught up again", || async { a.is_fresh() }).await;
}

#[tokio::test]
async fn a_device_told_on_reads_the_store_at_every_poll_while_the_feed_is_behind() {
    let pump = Pump::new().await;
    let (a, feed) = pump.server(true).await;
    let feed = feed.unwrap();
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    pump.start(&a).await;
    assert_eq!(pump.poll(&a, false).await.motor, Motor::On, "told ON: the run charges from here");
    // The relay closes; its report is committed while the feed is fresh.
    assert_eq!(pump.poll(&a, true).await.motor, Motor::On);
    feed.hold().await;
    pump.fall_behind(&a);

    let loads = a.loads();
    assert_eq!(pump.poll(&a, true).await.motor, Motor::On);
    assert_eq!(a.loads(), loads + 1, "an ON answer is built from the store's state, even for a quiet poll");
    assert_eq!(a.command(pump.admin, pump.device).await.unwrap().motor, Motor::On);
    assert_eq!(a.loads(), loads + 2, "the command too");
    feed.release();
    until("the feed caught up again", || async { a.is_fresh() }).await;
}

#[tokio::test]
async fn a_stop_on_another_server_turns_the_device_off_at_its_next_poll_while_the_feed_is_behind() {
    let pump = Pump::new().await;
    let (a, feed) = pump.server(true).await;
    let (b, _) = pump.server(false).await;
    let feed = feed.unwrap();
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    pump.start(&a).await;
    assert_eq!(pump.poll(&a, false).await.motor, Motor::On);
    assert_eq!(pump.poll(&a, true).await.motor, Motor::On);
    feed.hold().await;

    // B hears of the run through its own feed and the farmer presses Stop there.
    until("B hears of the run", || async { b.read(pump.admin, |t, _| t.active.is_some()).await.unwrap() }).await;
    let stop = Event::Stop { user: pump.farmer };
    b.apply(pump.admin, stop, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    pump.fall_behind(&a);

    // A's copy still says ON (its feed is held): the poll reads the store, which has the Stop.
    let loads = a.loads();
    let answer = pump.poll(&a, true).await;
    assert_eq!(answer.motor, Motor::Off, "the Stop made on B turns the device OFF at its next poll to A");
    assert_eq!(a.loads(), loads + 1);
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    feed.release();
    until("the feed caught up again", || async { a.is_fresh() }).await;
}

#[tokio::test]
async fn a_feed_that_was_only_slow_reads_nothing_again_when_it_catches_up_and_brings_what_it_held() {
    let pump = Pump::new().await;
    let (a, feed) = pump.server(true).await;
    let (b, _) = pump.server(false).await;
    let feed = feed.unwrap();
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);

    // Behind, then caught up, with nothing changed meanwhile: nothing is read again (a busy store
    // whose feed lags is not handed every held tenant to read once more).
    feed.hold().await;
    pump.fall_behind(&a);
    let loads = a.loads();
    feed.release();
    until("the feed caught up again", || async { a.is_fresh() }).await;
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    assert_eq!(a.loads(), loads, "a slow feed missed nothing: no tenant read again");

    // Behind while B changes the tenant (the farmer's minutes): the change comes late, in order,
    // with the state B committed, which A takes: no read.
    let taken = a.taken_from_feed();
    feed.hold().await;
    let credit = Credit::new(pump.farmer, 600, LedgerKind::Recharge, pump.admin.0);
    b.apply(pump.admin, Event::Credit(credit), Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    let version = b.read(pump.admin, |t, _| t.version).await.unwrap();
    pump.fall_behind(&a);
    feed.release();
    until("the feed caught up again", || async { a.is_fresh() }).await;
    until("A has B's change", || async { a.read(pump.admin, |t, _| t.version).await.unwrap() == version }).await;
    assert_eq!(a.loads(), loads, "the held change read nothing, nor anything else");
    assert_eq!(a.taken_from_feed(), taken + 1, "its state taken from the feed, once");
}

#[tokio::test]
async fn the_alerts_watch_reads_nothing_while_the_feed_is_behind_and_tells_the_owner_once_it_catches_up() {
    let pump = Pump::new().await;
    let (a, feed) = pump.server(true).await;
    let feed = feed.unwrap();
    let settings = AlertSettings { offline_after_ms: 60_000, ..AlertSettings::default() };
    let mut watch = WatchMemory::default();
    let last_poll = pump.clock.now();
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    a.flush_telemetry().await;
    watch_pumps(&a, pump.store.as_ref(), &settings, &mut watch).await;

    // The device falls silent; two minutes later the feed is behind.
    feed.hold().await;
    pump.clock.advance(Duration::from_secs(120));
    assert!(!a.is_fresh());
    a.heartbeat().await;
    a.flush_telemetry().await;
    let offline = |store: Arc<dyn Store>, owner: UserId| async move {
        store.notifications(owner, 10).await.unwrap().iter().filter(|n| n.kind == NoticeKind::DeviceOffline).count()
    };
    let (loads, queries) = (a.loads(), tenant_queries(&pump.mongo).await);
    watch_pumps(&a, pump.store.as_ref(), &settings, &mut watch).await;
    assert_eq!(a.loads(), loads, "no pump read while the feed is behind");
    assert_eq!(tenant_queries(&pump.mongo).await, queries, "not even the list of pumps");
    assert_eq!(offline(Arc::clone(&pump.store), pump.admin.0).await, 0);

    // The feed catches up: the next round tells the owner, of the silence from the last poll.
    feed.release();
    until("the feed caught up again", || async { a.is_fresh() }).await;
    watch_pumps(&a, pump.store.as_ref(), &settings, &mut watch).await;
    let told = pump.store.notifications(pump.admin.0, 10).await.unwrap();
    let told: Vec<_> = told.iter().filter(|n| n.kind == NoticeKind::DeviceOffline).collect();
    assert_eq!(told.len(), 1, "the owner is told once the feed has caught up");
    assert_eq!(told[0].at, last_poll + 60_000, "timed from the last poll, not from when the watch saw it");

    // A feed that stays behind skips rounds for WATCH_STALE_AT_MOST at most: then a round runs.
    feed.hold().await;
    pump.clock.advance(WATCH_STALE_AT_MOST - Duration::from_secs(1));
    assert!(!a.is_fresh());
    let (loads, queries) = (a.loads(), tenant_queries(&pump.mongo).await);
    watch_pumps(&a, pump.store.as_ref(), &settings, &mut watch).await;
    assert_eq!((a.loads(), tenant_queries(&pump.mongo).await), (loads, queries), "skipped");
    pump.clock.advance(Duration::from_secs(1));
    watch_pumps(&a, pump.store.as_ref(), &settings, &mut watch).await;
    // The pump is not held here (no run, nothing of it here for minutes): its record is read.
    assert!(tenant_queries(&pump.mongo).await > queries, "a round runs once the last one is WATCH_STALE_AT_MOST old");
    feed.release();
}

/// How many queries the store has run on its tenants collection (the list of pumps and each
/// pump's state are read there).
async fn tenant_queries(store: &MongoStore) -> u64 {
    let operations = testing::operations(store).await.unwrap();
    operations.get("tenants").and_then(|kinds| kinds.get("queries")).map_or(0, |(count, _)| *count)
}

/// The feed between the store and one runtime that, once late, passes on the store's liveness
/// ticks (`Change::Live`) at once and holds every other change: a feed that delivers, so the
/// runtime counts it live, while its news of what other servers did is late. Also how many ticks
/// it has passed on.
fn late_feed_between(runtime: &Runtime) -> (watch::Sender<bool>, Arc<AtomicU64>) {
    let (late, is_late) = watch::channel(false);
    let ticks = Arc::new(AtomicU64::new(0));
    let passed = Arc::clone(&ticks);
    runtime.feed_through(move |mut from_store| {
        let (to_runtime, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(change) = from_store.recv().await {
                if *is_late.borrow() && !matches!(change, Change::Live) {
                    held.push(change);
                    continue;
                }
                let tick = matches!(change, Change::Live);
                let before = if *is_late.borrow() { Vec::new() } else { std::mem::take(&mut held) };
                for change in before.into_iter().chain([change]) {
                    if to_runtime.send(change).await.is_err() {
                        return;
                    }
                }
                if tick {
                    passed.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        rx
    });
    (late, ticks)
}

/// Measured at 100,000 devices on SecantusDB (docs/MEASUREMENTS.md, "How far behind the change
/// feed is": up to 77 s), a feed that delivers, but late: a server that counted such a feed live
/// told a device ON from memory (its own polls keep its lease alive) after a Stop made on another
/// server, for as long as the feed was behind. A server is fresh only while the latest of its
/// own heartbeats heard back through the feed was sent within `FRESH_FOR`: here A's ticks come
/// through but its beats are held with the rest, so from `FRESH_FOR` after its feed fell behind
/// every poll reads the store, which has B's Stop.
#[tokio::test]
async fn a_stop_on_another_server_turns_the_device_off_while_the_feed_delivers_late() {
    let pump = Pump::new().await;
    let a = Runtime::new(Arc::clone(&pump.store), pump.clock.clone(), LEASE_MS, 5_000);
    a.time_the_feed_by(pump.clock.clone());
    let (late, ticks) = late_feed_between(&a);
    a.start().await.unwrap();
    until("the feed caught up", || async { a.is_fresh() }).await;
    let (b, _) = pump.server(false).await;
    assert_eq!(pump.poll(&a, false).await.motor, Motor::Off);
    pump.start(&a).await;
    assert_eq!(pump.poll(&a, false).await.motor, Motor::On);
    assert_eq!(pump.poll(&a, true).await.motor, Motor::On);

    late.send_replace(true);
    let behind_from = pump.clock.now();
    until("B hears of the run", || async { b.read(pump.admin, |t, _| t.active.is_some()).await.unwrap() }).await;
    b.apply(pump.admin, Event::Stop { user: pump.farmer }, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    // Time passes at A, beating and polled every second, its feed delivering its ticks.
    let mut read = false;
    for _ in 0..5 {
        let heard = ticks.load(Ordering::SeqCst);
        pump.clock.advance(Duration::from_secs(1));
        // A tick at the new time, as a live feed's come every 250 ms of real time.
        until("a tick through A's late feed", || async { ticks.load(Ordering::SeqCst) > heard + 1 }).await;
        a.heartbeat().await;
        let behind = Duration::from_millis(u64::try_from(pump.clock.now() - behind_from).unwrap());
        let loads = a.loads();
        let motor = pump.poll(&a, true).await.motor;
        if behind < FRESH_FOR {
            assert!(a.is_fresh(), "{behind:?} behind");
        } else {
            assert!(!a.is_fresh(), "a feed whose news is {behind:?} late is not fresh, its ticks notwithstanding");
            assert_eq!(motor, Motor::Off, "the Stop made on B turns the device OFF once A's feed is FRESH_FOR late");
            // The first such poll reads the store; the OFF it read may answer the next from memory.
            if !read {
                assert_eq!(a.loads(), loads + 1, "read from the store, {behind:?} behind");
                read = true;
            }
        }
    }
    assert!(read, "the feed fell FRESH_FOR behind");
    late.send_replace(false);
    until("the feed caught up again", || async { a.is_fresh() }).await;
    assert_eq!(a.feed_behind(), Some(Duration::ZERO), "the latest beat back at once, on a clock standing still");
}
