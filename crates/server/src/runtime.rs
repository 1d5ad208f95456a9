//! The tenants' live state on this server: each tenant's [`Tenant`] behind its own lock, every
//! change applied by the engine and committed to the store before anyone sees it, and the timer
//! that wakes at the earliest deadline (a run's end, a device's lease).
//!
//! Reads bring a tenant up to date too, so nothing depends on the timer firing on time.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex as SyncMutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use pumppilot_engine::{
    AdminId, DeviceId, DevicePoll, Event, MotorRules, Notice, Outcome, PollAnswer, Refusal, Reply, Tenant, Timestamp,
    UserId,
};
use pumppilot_store::{AuditEntry, Commit, Decision, Receipt, Store, StoreError, Telemetry};
use tokio::sync::{Mutex, Notify, watch};

use crate::clock::SharedClock;

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

/// Writes that go with an event in the same atomic commit, when the event is accepted.
#[derive(Debug, Default)]
pub struct Extras {
    pub audit: Vec<AuditEntry>,
    pub decision: Option<Decision>,
    pub suspension: Option<(UserId, bool)>,
    /// The receipt of a recharge paid in cash.
    pub receipt: Option<Receipt>,
    /// Notices that go with the accepted event (a request decided), besides the engine's own.
    pub notices: Vec<Notice>,
}

impl Extras {
    /// One audit entry.
    pub fn audit(entry: AuditEntry) -> Self {
        Extras { audit: vec![entry], ..Extras::default() }
    }

    fn is_empty(&self) -> bool {
        self.audit.is_empty()
            && self.decision.is_none()
            && self.suspension.is_none()
            && self.receipt.is_none()
            && self.notices.is_empty()
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

/// How often buffered device telemetry (last-seen times) is written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// One tenant: its state (loaded on first use) and the channel that announces its changes.
#[derive(Default)]
struct Slot {
    tenant: Mutex<Option<Tenant>>,
    changes: watch::Sender<Stamp>,
    /// Since when this tenant's device has been told OFF because the store could not commit: the
    /// run holds from then (`Event::StoreOutage`) with the first commit that succeeds.
    outage: SyncMutex<Option<Timestamp>>,
}

type Cell = Arc<Slot>;

/// The live state of every tenant served here.
pub struct Runtime {
    store: Arc<dyn Store>,
    clock: SharedClock,
    lease_ms: i64,
    poll_ms: u32,
    cells: RwLock<HashMap<AdminId, Cell>>,
    timer: SyncMutex<Deadlines>,
    wake: Notify,
    telemetry: SyncMutex<HashMap<DeviceId, Telemetry>>,
    /// The server's restart protection, given to every tenant loaded.
    motor_rules: SyncMutex<MotorRules>,
    /// Since when the store has failed to commit (a commit, a telemetry flush or the readiness
    /// probe failed); cleared by the next write that succeeds. While set, polls answer OFF.
    outage: SyncMutex<Option<Timestamp>>,
    retries: AtomicU64,
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
        Arc::new(Runtime {
            store,
            clock,
            lease_ms: i64::from(lease_ms),
            poll_ms,
            cells: RwLock::default(),
            timer: SyncMutex::default(),
            wake: Notify::new(),
            telemetry: SyncMutex::default(),
            motor_rules: SyncMutex::new(MotorRules::NONE),
            outage: SyncMutex::default(),
            retries: AtomicU64::new(0),
        })
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
    /// `view` reads the new state under the same lock.
    pub async fn apply<R>(
        &self,
        admin: AdminId,
        event: Event,
        extras: Extras,
        view: impl FnOnce(&Tenant, Timestamp) -> R,
    ) -> Result<(Result<Reply, Refusal>, R), RuntimeError> {
        let cell = self.cell(admin);
        let mut guard = cell.tenant.lock().await;
        for _attempt in 0..Self::ATTEMPTS {
            let current = match guard.take() {
                Some(tenant) => tenant,
                None => self.load(admin).await?,
            };
            let now = self.clock.now();
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
            if accepted {
                records.notices.extend(extras.notices.iter().cloned());
            }
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
                        self.note_write(true);
                        *cell.outage.lock().expect("outage lock") = None;
                    }
                    // Another server (or a flush) moved the tenant on: read it again and redo.
                    Err(StoreError::VersionConflict) => {
                        self.retries.fetch_add(1, Ordering::Relaxed);
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
            let deadline = next.next_deadline();
            let stamp = Stamp::of(&next);
            *guard = Some(next);
            drop(guard);
            cell.changes.send_if_modified(|seen| std::mem::replace(seen, stamp) != stamp);
            self.schedule(admin, deadline);
            return Ok((reply, answer));
        }
        Err(RuntimeError::Busy)
    }

    /// Brings a tenant up to date and reads it.
    pub async fn read<R>(&self, admin: AdminId, view: impl FnOnce(&Tenant, Timestamp) -> R) -> Result<R, RuntimeError> {
        Ok(self.apply(admin, Event::Tick, Extras::default(), view).await?.1)
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
        let cell = self.cell(admin);
        let poll_ms = self.poll_ms;
        {
            let mut guard = cell.tenant.lock().await;
            let in_outage = cell.outage.lock().expect("outage lock").is_some();
            if let Some(tenant) = guard.as_mut()
                && !in_outage
                && tenant.is_quiet_poll(&poll, now)
            {
                if tenant.controller == Some(poll.device) {
                    tenant.touch(now);
                }
                return Ok(tenant.poll_answer_for(poll.device, now, poll_ms));
            }
        }
        let device = poll.device;
        match self
            .apply(admin, Event::Poll(poll), Extras::default(), |t, now| t.poll_answer_for(device, now, poll_ms))
            .await
        {
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
        let cell = self.cell(admin);
        let guard = cell.tenant.lock().await;
        cell.outage.lock().expect("outage lock").get_or_insert(since);
        Some(Tenant::unavailable_answer(guard.as_ref(), now, self.poll_ms, self.lease_ms))
    }

    /// A receiver that sees every committed change of a tenant from now on (its current value is
    /// the last change announced, which may predate the caller's own read).
    pub fn subscribe(&self, admin: AdminId) -> watch::Receiver<Stamp> {
        self.cell(admin).changes.subscribe()
    }

    /// The command for one of a tenant's devices as it stands now, without counting as a poll.
    pub async fn command(&self, admin: AdminId, device: DeviceId) -> Result<PollAnswer, RuntimeError> {
        let poll_ms = self.poll_ms;
        self.read(admin, |tenant, now| tenant.poll_answer_for(device, now, poll_ms)).await
    }

    /// Loads every tenant, applies what time changed while the server was down, and runs the
    /// timer and the telemetry flush until the process ends.
    pub async fn start(self: &Arc<Self>) -> Result<(), RuntimeError> {
        for admin in self.store.tenant_ids().await? {
            self.read(admin, |_, _| ()).await?;
        }
        let timer = Arc::clone(self);
        tokio::spawn(async move { timer.run_timer().await });
        let flusher = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                flusher.clock.sleep(FLUSH_EVERY).await;
                flusher.flush_telemetry().await;
            }
        });
        Ok(())
    }

    /// Writes the buffered device telemetry.
    pub async fn flush_telemetry(&self) {
        let batch: Vec<Telemetry> = self.telemetry.lock().expect("telemetry lock").drain().map(|(_, t)| t).collect();
        if batch.is_empty() {
            return;
        }
        let result = self.store.record_telemetry(&batch).await;
        self.note_result(&result);
        if let Err(err) = result {
            tracing::warn!(%err, devices = batch.len(), "could not write device telemetry; keeping it for the next flush");
            let mut buffer = self.telemetry.lock().expect("telemetry lock");
            for t in batch {
                buffer.entry(t.device_id).or_insert(t);
            }
        }
    }

    /// The latest telemetry of a device not yet flushed, if any.
    pub fn pending_telemetry(&self, device: DeviceId) -> Option<Telemetry> {
        self.telemetry.lock().expect("telemetry lock").get(&device).cloned()
    }

    fn cell(&self, admin: AdminId) -> Cell {
        if let Some(cell) = self.cells.read().expect("cells lock").get(&admin) {
            return Arc::clone(cell);
        }
        Arc::clone(self.cells.write().expect("cells lock").entry(admin).or_default())
    }

    async fn load(&self, admin: AdminId) -> Result<Tenant, RuntimeError> {
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

    async fn run_timer(&self) {
        loop {
            let next = self.timer.lock().expect("timer lock").queue.first().copied();
            let Some((at, admin)) = next else {
                self.wake.notified().await;
                continue;
            };
            if at > self.clock.now() {
                // A sooner deadline scheduled meanwhile is not missed: `notify_one` leaves a permit
                // when nobody waits yet.
                tokio::select! {
                    _ = self.clock.sleep_until(at) => {}
                    _ = self.wake.notified() => {}
                }
                continue;
            }
            {
                let mut timer = self.timer.lock().expect("timer lock");
                timer.queue.remove(&(at, admin));
                timer.by_tenant.remove(&admin);
            }
            if let Err(err) = self.read(admin, |_, _| ()).await {
                tracing::warn!(tenant = %admin, %err, "timer could not bring a tenant up to date; retrying");
                self.schedule(admin, Some(self.clock.now() + 1000));
            }
        }
    }
}
