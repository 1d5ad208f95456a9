//! The alerts watch on fake time, one round at a time: a pump's controller that says during a run
//! that it holds no command although told ON (`relayOff: NO_COMMAND`: the answers do not reach it
//! usable) tells its owner once it has lasted the set time, once per spell; a shorter spell is no
//! news, and a report of the relay closed ends one. Watched by the server its device polls (the
//! pump in memory) and by another that reads the pump's record, as on a store several servers
//! share.

mod support;

use std::{sync::Arc, time::Duration};

use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EntryId, Event, LedgerKind, Motor, NoticeKind, PollAnswer, RelayOff, UserId,
};
use pumppilot_server::{
    alerts::{AlertSettings, WatchMemory, watch_pumps},
    clock::{Clock, ManualClock},
    runtime::{Extras, Runtime},
};
use pumppilot_store::{Notification, Store};
use pumppilot_store_sqlite::SqliteStore;
use support::{pump, telemetry};

const LEASE_MS: u32 = 60_000;
const POLL_SECONDS: u64 = 5;
/// The watch looks every 30 s.
const ROUND_SECONDS: u64 = 30;
const AFTER_MS: i64 = 5 * 60_000;

/// Which server's watch looks at the pump.
#[derive(Clone, Copy)]
enum Watcher {
    /// The server its device polls, which holds the pump in memory.
    Serving,
    /// Another server, which reads the pump's record.
    Other,
}

struct Pump {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    serving: Arc<Runtime>,
    other: Arc<Runtime>,
    watcher: Watcher,
    memory: WatchMemory,
    settings: AlertSettings,
    admin: AdminId,
    farmer: UserId,
    device: DeviceId,
}

impl Pump {
    async fn new(watcher: Watcher) -> Pump {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").unwrap());
        let clock = ManualClock::starting_now();
        let (admin, farmer, device) = pump(store.as_ref(), clock.now(), 7).await;
        let serving = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
        serving.start().await.unwrap();
        // Never started and never asked for the pump: it holds nothing, and reads the records.
        let other = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
        let settings = AlertSettings { offline_after_ms: 0, no_command_after_ms: AFTER_MS, ..AlertSettings::default() };
        let pump = Pump {
            store,
            clock,
            serving,
            other,
            watcher,
            memory: WatchMemory::default(),
            settings,
            admin,
            farmer,
            device,
        };
        pump.apply(Event::Credit(Credit::new(farmer, 3 * 3600, LedgerKind::Recharge, admin.0))).await;
        pump
    }

    async fn apply(&self, event: Event) {
        let (reply, ()) = self.serving.apply(self.admin, event, Extras::default(), |_, _| ()).await.unwrap();
        reply.unwrap();
    }

    /// The device's poll now, its relay closed or open for `relay_off`.
    async fn says(&self, relay: bool, relay_off: Option<RelayOff>) -> PollAnswer {
        let poll = DevicePoll { relay, relay_off, ..DevicePoll::ready(self.device) };
        let seen = telemetry(self.admin, self.device, self.clock.now(), relay);
        self.serving.poll(self.admin, poll, seen).await.unwrap()
    }

    /// One round of the watch, after the serving server's flush of last polls (every second).
    async fn round(&mut self) {
        self.serving.flush_telemetry().await;
        let runtime = match self.watcher {
            Watcher::Serving => &self.serving,
            Watcher::Other => &self.other,
        };
        watch_pumps(runtime, self.store.as_ref(), &self.settings, &mut self.memory).await;
        assert!(!self.other.holds(self.admin), "watching never brings a pump into memory");
    }

    /// `seconds` of the device polling every 5 s, each poll saying this, with the watch's rounds.
    async fn for_a_while(&mut self, seconds: u64, relay: bool, relay_off: Option<RelayOff>) {
        for step in 1..=seconds / POLL_SECONDS {
            self.clock.advance(Duration::from_secs(POLL_SECONDS));
            self.says(relay, relay_off).await;
            if (step * POLL_SECONDS).is_multiple_of(ROUND_SECONDS) {
                self.round().await;
            }
        }
    }

    /// What the owner has been told of commands that do not reach the device.
    async fn told(&self) -> Vec<Notification> {
        let all = self.store.notifications(self.admin.0, 50).await.unwrap();
        let mut told: Vec<_> = all.into_iter().filter(|n| n.kind == NoticeKind::NoCommandLong).collect();
        told.sort_by_key(|n| n.at);
        told
    }
}

const NO_COMMAND: Option<RelayOff> = Some(RelayOff::NoCommand);

async fn the_owner_hears_once_per_spell_of_no_command(watcher: Watcher) {
    let mut p = Pump::new(watcher).await;
    p.says(false, None).await;
    p.apply(Event::Start { user: p.farmer, requested_minutes: None, entry_id: EntryId::new() }).await;
    assert_eq!(p.says(false, NO_COMMAND).await.motor, Motor::On, "the poll that tells it ON");

    // A spell a little shorter than the set time (answers lost for four minutes and more): no news.
    p.for_a_while(4 * 60 + 50, false, NO_COMMAND).await;
    p.says(true, None).await;
    p.for_a_while(60, true, None).await;
    assert!(p.told().await.is_empty(), "a spell shorter than the set time is no news");

    // Lost for good: told once it has lasted the set time, dated then, from its first report.
    let first_miss = p.clock.now() + 5_000;
    p.for_a_while(5 * 60 + 30, false, NO_COMMAND).await;
    let told = p.told().await;
    assert_eq!(told.len(), 1, "told once it has lasted the set time");
    assert_eq!(told[0].facts.since, Some(first_miss));
    assert_eq!(told[0].at, first_miss + AFTER_MS);
    assert_eq!(told[0].facts.device.as_deref(), Some("pump"), "by the name its owner gave it");

    // Ten more minutes of it: not told again, nor by a watch that starts afresh (a restart).
    p.for_a_while(10 * 60, false, NO_COMMAND).await;
    p.memory = WatchMemory::default();
    p.round().await;
    assert_eq!(p.told().await.len(), 1, "once per spell");

    // The relay closes: the spell ends. Lost again: a new spell, told again.
    p.says(true, None).await;
    p.round().await;
    let second_miss = p.clock.now() + 5_000;
    p.for_a_while(5 * 60 + 30, false, NO_COMMAND).await;
    let told = p.told().await;
    assert_eq!(told.iter().map(|n| n.facts.since).collect::<Vec<_>>(), [Some(first_miss), Some(second_miss)]);

    // The farmer stops: with no run waiting for the board, its want of a command is no news.
    p.apply(Event::Stop { user: p.farmer }).await;
    p.for_a_while(10 * 60, false, NO_COMMAND).await;
    assert_eq!(p.told().await.len(), 2);
}

#[tokio::test]
async fn the_serving_servers_watch_tells_the_owner_once_per_spell_of_no_command() {
    the_owner_hears_once_per_spell_of_no_command(Watcher::Serving).await;
}

#[tokio::test]
async fn another_servers_watch_tells_it_from_the_pumps_record() {
    the_owner_hears_once_per_spell_of_no_command(Watcher::Other).await;
}
