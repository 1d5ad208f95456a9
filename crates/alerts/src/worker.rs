//! The outbox worker: claims due notifications from the store, sends each to the channels its
//! person wants and can be reached on, and records what became of it.
//!
//! - **Nothing lost**: an item is claimed for [`Limits::claim_ms`]; a sender killed mid-send
//!   leaves its claim to run out and any sender (after a restart, or another server on the same
//!   store) takes the item again.
//! - **Nothing twice**: a delivered item is never claimed again; a retry sends only the channels
//!   not yet delivered; the SMS gateway gets the notification's id (`{id}`) to drop a repeat.
//! - **Retries** back off from [`Limits::backoff_ms`] doubling up to [`Limits::backoff_max_ms`];
//!   after [`Limits::max_attempts`] tries an item is given up.
//! - **SMS answers** (`SMS_REPLY`, the answer to a farmer's text) go by SMS only, at once: no
//!   muting, no quiet hours, only the gateway's limit. What such an answer said already (the end
//!   of a run stopped by text, the hold of a run a START by text began on hold,
//!   `Facts::worth_an_sms`) goes by push only, and counts as told: that hold's resume is news.
//! - **Quiet hours** and **rate limits** (per person, and per SMS gateway) defer an item without
//!   counting a try. The limits are counted in the store ([`Store::admit_send`]), so several
//!   servers on one store keep one limit. A farmer's turn (`RUN_STARTED`) goes out in quiet hours
//!   too, and neither it nor a run's end (`RUN_ENDED`) is held or counted by the person's hourly
//!   limit: the pump runs on their minutes. A message counts once in its person's hour, when its
//!   first channel goes. Each channel waits for its own limit: a full SMS minute holds the SMS
//!   only, the push goes at once.
//! - **Holds and resumes** are told only when they are still news: a hold once it has lasted
//!   [`Limits::hold_told_after_ms`], a resume only if its hold was told, and neither once the
//!   run has moved on (a hold whose run resumed or ended before it went is dropped with that
//!   resume; a run's end drops the holds and resumes of its run still waiting). Dropped items are
//!   done, never sent, and use up no limit. Several servers agree through their claims
//!   ([`Store::claim_outbox_item`]): a hold and its resume are dropped by the server that holds
//!   both.
//! - **Push receipts**: each push Expo accepts leaves its tickets in the store
//!   ([`Store::add_push_tickets`]) before the item is recorded done; any server reads their
//!   receipts [`Limits::receipt_after_ms`] later (a restart or another server included), drops a
//!   token Expo says is gone, and deletes the tickets read. A ticket is kept
//!   [`Limits::receipt_gives_up_ms`] at most.
//!
//! Time is given to [`Outbox::run_once`], so tests run it on fake time.

use std::{collections::BTreeSet, sync::Arc};

use pumppilot_engine::{NoticeKind, Timestamp, UserId};
use pumppilot_store::{
    Admission, AlertProfile, Channel, Delivery, Notification, NotificationId, OutboxItem, PushTicket, SendWindow,
    Store, StoreError,
};
use serde_json::json;

use crate::{
    http::HttpClient,
    push::{DEVICE_NOT_REGISTERED, ExpoPush, Receipt},
    sms::{SendError, SmsGateway},
    text::{Language, answer_by_sms, render},
};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Receipts asked for in one request at most (Expo takes 1,000 ids a request).
const RECEIPTS_AT_ONCE: usize = 1000;
/// How far back a person's messages still waiting are looked at when a hold, a resume or a run's
/// end is about to go: nothing waits longer than quiet hours and a few retries, under a day (one
/// waiting longer goes as it is).
const WAITING_AT_MOST_MS: i64 = 24 * HOUR_MS;
/// How long a hold or a resume waits when its other half is being sent by another server right
/// now, before it looks again.
const OTHER_HALF_BUSY_MS: i64 = 10_000;

/// How the worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a claim holds an item (longer than any send may take).
    pub claim_ms: i64,
    /// Items claimed at a time: few enough that sending all of them (each channel up to its
    /// timeout) ends well within `claim_ms`, so no other sender takes an item still being sent.
    pub batch: usize,
    /// Tries before an item is given up.
    pub max_attempts: u32,
    /// The first retry's wait; each further retry waits twice as long, up to `backoff_max_ms`.
    pub backoff_ms: i64,
    pub backoff_max_ms: i64,
    /// Messages (push or SMS) one person gets in a clock hour at most, counted in the store
    /// (one limit for every server on it).
    pub per_person_per_hour: u32,
    /// Messages the SMS gateway gets in a clock minute at most, counted in the store.
    pub sms_per_minute: u32,
    /// How long a hold must have lasted before its farmer hears of it by push or SMS (the bell
    /// shows it at once): a power cut of a few seconds every few minutes would otherwise send two
    /// paid SMS each time ("on hold", "running again"). A hold over sooner is not told, and
    /// neither is its resume.
    pub hold_told_after_ms: i64,
    /// How long after a push its receipt is read (Expo advises about 15 minutes).
    pub receipt_after_ms: i64,
    /// A receipt Expo still does not have this long after the push is no longer asked for, and
    /// its ticket is deleted from the store (Expo keeps receipts about a day: asking later only
    /// ever gets nothing).
    pub receipt_gives_up_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            claim_ms: 2 * MINUTE_MS,
            batch: 5,
            max_attempts: 8,
            backoff_ms: 30_000,
            backoff_max_ms: HOUR_MS,
            per_person_per_hour: 20,
            sms_per_minute: 60,
            hold_told_after_ms: MINUTE_MS,
            receipt_after_ms: 15 * MINUTE_MS,
            receipt_gives_up_ms: 24 * HOUR_MS,
        }
    }
}

impl Limits {
    /// The wait before try number `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> i64 {
        let factor = 1_i64.checked_shl(attempts.min(30)).unwrap_or(i64::MAX);
        self.backoff_ms.saturating_mul(factor).min(self.backoff_max_ms)
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub done: usize,
    pub retried: usize,
    pub deferred: usize,
    pub failed: usize,
    /// Items whose claim another sender had taken by the time this one finished.
    pub lost: usize,
    /// Holds and resumes dropped unsent because their run moved on before they went (each of a
    /// pair, whether claimed in this round's batch or taken with its other half).
    pub dropped: usize,
    /// Push receipts read.
    pub receipts: usize,
    /// Push tokens taken out of profiles because Expo says their phone is gone.
    pub tokens_removed: usize,
}

/// The outbox worker of one server.
pub struct Outbox {
    store: Arc<dyn Store>,
    /// This sender's name in claims (unique per process).
    sender: String,
    sms: Option<SmsGateway>,
    push: Option<ExpoPush>,
    limits: Limits,
    http: HttpClient,
    /// Whether the server takes texts back (control by SMS): an SMS that can be answered then
    /// says how ([`answer_by_sms`]).
    taking_texts: bool,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        sender: impl Into<String>,
        sms: Option<SmsGateway>,
        push: Option<ExpoPush>,
        limits: Limits,
    ) -> Self {
        Outbox { store, sender: sender.into(), sms, push, limits, http: HttpClient::new(), taking_texts: false }
    }

    /// Says, in an SMS that can be answered by text, how (the server takes texts back).
    #[must_use]
    pub fn taking_texts(mut self, taking: bool) -> Self {
        self.taking_texts = taking;
        self
    }

    /// Sends through `http` (e.g. one trusting a private gateway's CA) instead of a client
    /// trusting only the Mozilla roots.
    #[must_use]
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// Items claimed at a time.
    pub fn batch(&self) -> usize {
        self.limits.batch
    }

    /// The channels this server can send on.
    pub fn channels(&self) -> BTreeSet<Channel> {
        let mut channels = BTreeSet::new();
        if self.push.is_some() {
            channels.insert(Channel::Push);
        }
        if self.sms.is_some() {
            channels.insert(Channel::Sms);
        }
        channels
    }

    /// Claims the items due at `now` and delivers them.
    pub async fn run_once(&self, now: Timestamp) -> Result<Round, StoreError> {
        let items = self.store.claim_outbox(&self.sender, now, now + self.limits.claim_ms, self.limits.batch).await?;
        let mut round = Round { claimed: items.len(), ..Round::default() };
        // Items of this batch already finished with the other half of their pair.
        let mut dropped = BTreeSet::new();
        for item in items {
            let id = item.notification.id;
            if dropped.contains(&id) {
                continue;
            }
            let delivery = match self.news(&item, now).await? {
                News::Tell { drop } => {
                    self.drop_unsent(&drop, now, &mut round).await?;
                    dropped.extend(drop);
                    self.deliver(&item, now).await?
                }
                News::NotYet(at) => Delivery::Defer { at, delivered: item.delivered.clone() },
                News::Moot { with } => {
                    self.drop_unsent(&with, now, &mut round).await?;
                    dropped.extend(with);
                    round.dropped += 1;
                    self.finish(id, &Delivery::Done { at: now }, &mut round).await?;
                    continue;
                }
            };
            match &delivery {
                Delivery::Done { .. } => round.done += 1,
                Delivery::Retry { .. } => round.retried += 1,
                Delivery::Defer { .. } => round.deferred += 1,
                Delivery::Failed { .. } => round.failed += 1,
            }
            self.finish(id, &delivery, &mut round).await?;
        }
        self.read_receipts(now, &mut round).await?;
        Ok(round)
    }

    /// Records what became of an item this sender claimed.
    async fn finish(&self, id: NotificationId, delivery: &Delivery, round: &mut Round) -> Result<(), StoreError> {
        match self.store.finish_outbox(id, &self.sender, delivery).await {
            Ok(()) => Ok(()),
            Err(StoreError::ClaimLost) => {
                tracing::warn!(notification = %id, "another sender took this notification over");
                round.lost += 1;
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Finishes unsent the items `taken` (claimed by this sender) that their run made moot.
    async fn drop_unsent(&self, taken: &[NotificationId], now: Timestamp, round: &mut Round) -> Result<(), StoreError> {
        for id in taken {
            round.dropped += 1;
            self.finish(*id, &Delivery::Done { at: now }, round).await?;
        }
        Ok(())
    }

    /// Whether a hold, a resume or a run's end is still news when it is about to go, from what is
    /// still waiting to be told to its farmer about the same run (see [`Limits::hold_told_after_ms`]).
    /// Every other kind is told as it is.
    async fn news(&self, item: &OutboxItem, now: Timestamp) -> Result<News, StoreError> {
        let n = &item.notification;
        if !matches!(n.kind, NoticeKind::RunHeld | NoticeKind::RunResumed | NoticeKind::RunEnded) {
            return Ok(News::Tell { drop: Vec::new() });
        }
        let waiting = match n.facts.entry_id {
            Some(_) => self.store.outbox_of(n.user_id, now - WAITING_AT_MOST_MS).await?,
            None => Vec::new(),
        };
        let of_this_run = |kinds: &'static [NoticeKind]| {
            waiting
                .iter()
                .map(|w| &w.notification)
                .filter(move |w| w.id != n.id && kinds.contains(&w.kind) && w.facts.entry_id == n.facts.entry_id)
        };
        let after = |w: &&Notification| (w.at, w.id) > (n.at, n.id);
        Ok(match n.kind {
            // The first resume or end of its run after it says whether the hold is over.
            NoticeKind::RunHeld => match of_this_run(&[NoticeKind::RunResumed, NoticeKind::RunEnded])
                .filter(after)
                .min_by_key(|w| (w.at, w.id))
            {
                // Told already, on a channel (its SMS waited for the gateway) or by the answer to
                // the farmer's text: the rest is moot, and its resume is told.
                Some(_) if !item.delivered.is_empty() || n.facts.answered_by_sms => News::Moot { with: Vec::new() },
                Some(resumed) if resumed.kind == NoticeKind::RunResumed => match self.take(resumed.id, now).await? {
                    Taken::Mine { .. } => News::Moot { with: vec![resumed.id] },
                    // Its resume went out meanwhile: the hold is over.
                    Taken::Gone => News::Moot { with: Vec::new() },
                    Taken::Busy => News::NotYet(now + OTHER_HALF_BUSY_MS),
                },
                // The run ended: its end says what became of it.
                Some(_) => News::Moot { with: Vec::new() },
                None if now < n.at + self.limits.hold_told_after_ms => {
                    News::NotYet(n.at + self.limits.hold_told_after_ms)
                }
                None => News::Tell { drop: Vec::new() },
            },
            // A resume is told only after its hold was.
            NoticeKind::RunResumed => {
                let hold = of_this_run(&[NoticeKind::RunHeld]).filter(|w| !after(w)).max_by_key(|w| (w.at, w.id));
                match hold {
                    Some(hold) => match self.take(hold.id, now).await? {
                        // Neither sent nor said by the answer to a text: the farmer never heard of
                        // the hold, so its end is no news either.
                        Taken::Mine { told: false } if !hold.facts.answered_by_sms => {
                            News::Moot { with: vec![hold.id] }
                        }
                        // The hold reached a channel (the rest waited), or the answer to the
                        // farmer's text said it: the resume is news.
                        Taken::Mine { .. } => News::Tell { drop: vec![hold.id] },
                        Taken::Gone => News::Tell { drop: Vec::new() },
                        Taken::Busy => News::NotYet(now + OTHER_HALF_BUSY_MS),
                    },
                    None if of_this_run(&[NoticeKind::RunEnded]).any(|w| after(&w)) => News::Moot { with: Vec::new() },
                    None => News::Tell { drop: Vec::new() },
                }
            }
            // A run's end makes the holds and resumes of its run still waiting moot (one being
            // sent by another server goes out as it is).
            _ => {
                let mut drop = Vec::new();
                for waiting in of_this_run(&[NoticeKind::RunHeld, NoticeKind::RunResumed]).filter(|w| !after(w)) {
                    if matches!(self.take(waiting.id, now).await?, Taken::Mine { .. }) {
                        drop.push(waiting.id);
                    }
                }
                News::Tell { drop }
            }
        })
    }

    /// Claims another waiting item of the same person, whenever it is due.
    async fn take(&self, id: NotificationId, now: Timestamp) -> Result<Taken, StoreError> {
        match self.store.claim_outbox_item(id, &self.sender, now, now + self.limits.claim_ms).await {
            Ok(Some(item)) => Ok(Taken::Mine { told: !item.delivered.is_empty() }),
            Ok(None) => Ok(Taken::Gone),
            Err(StoreError::ClaimLost) => Ok(Taken::Busy),
            Err(err) => Err(err),
        }
    }

    /// Reads the receipts of pushes sent at least [`Limits::receipt_after_ms`] ago; a phone Expo
    /// says is gone (`DeviceNotRegistered`) has its token taken out of its person's profile.
    ///
    /// The tickets live in the store ([`Store::add_push_tickets`]), not in this server: any
    /// server on the store reads them, also after a restart. They are claimed for
    /// [`Limits::claim_ms`] ([`Store::claim_push_tickets`]), so two servers do not ask for the
    /// same receipts, and one that dies while asking leaves them to the next. A receipt read is
    /// acted on before its ticket is deleted: a crash in between reads it again, and forgetting a
    /// token twice changes nothing.
    async fn read_receipts(&self, now: Timestamp, round: &mut Round) -> Result<(), StoreError> {
        let Some(push) = &self.push else { return Ok(()) };
        let due = self.store.claim_push_tickets(now, now + self.limits.claim_ms, RECEIPTS_AT_ONCE).await?;
        if due.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = due.iter().map(|t| t.id.clone()).collect();
        let receipts = match push.receipts(&self.http, &ids).await {
            Ok(receipts) => receipts,
            Err(err) => {
                tracing::warn!(%err, "could not read Expo's push receipts; trying again in a minute");
                return self.store.settle_push_tickets(&[], &ids, now + MINUTE_MS).await;
            }
        };
        round.receipts += receipts.len();
        for ticket in &due {
            match receipts.get(&ticket.id) {
                Some(Receipt::Error(code)) if code == DEVICE_NOT_REGISTERED => {
                    round.tokens_removed += self.forget_token(ticket.user, &ticket.token).await?;
                }
                Some(Receipt::Error(code)) => {
                    tracing::warn!(ticket = %ticket.id, %code, "Expo could not deliver a push");
                }
                _ => {}
            }
        }
        // A receipt Expo does not have yet is asked for again after the same wait.
        let (read, later): (Vec<String>, Vec<String>) = ids.into_iter().partition(|id| receipts.contains_key(id));
        self.store.settle_push_tickets(&read, &later, now + self.limits.receipt_after_ms).await
    }

    /// Takes a token Expo no longer knows out of a person's profile.
    async fn forget_token(&self, user: UserId, token: &str) -> Result<usize, StoreError> {
        // Only from this person's profile: the phone may have moved to another account since.
        if !self.store.remove_push_token(user, token).await? {
            return Ok(0);
        }
        tracing::info!(%user, "a phone is gone (DeviceNotRegistered): its push token is forgotten");
        Ok(1)
    }

    /// Where this item still has to go, for this person.
    fn channels_for(&self, item: &OutboxItem, profile: &AlertProfile) -> Vec<Channel> {
        let kind = item.notification.kind;
        let mut channels = Vec::new();
        if kind == NoticeKind::SmsReply {
            // An answer goes back the way the question came, whatever is muted.
            if self.sms.is_some()
                && sms_to(&item.notification, profile).is_some()
                && !item.delivered.contains(&Channel::Sms)
            {
                channels.push(Channel::Sms);
            }
            return channels;
        }
        if self.push.is_some() && !profile.push_tokens.is_empty() && profile.wants(kind, Channel::Push) {
            channels.push(Channel::Push);
        }
        // What the engine says is not worth a paid SMS (the end of a run the farmer stopped by
        // text, the hold of one their START by text began on hold: the answer told it) goes to
        // the bell and by push only.
        if self.sms.is_some()
            && profile.phone.is_some()
            && profile.wants(kind, Channel::Sms)
            && item.notification.facts.worth_an_sms()
        {
            channels.push(Channel::Sms);
        }
        channels.retain(|c| !item.delivered.contains(c));
        channels
    }

    async fn deliver(&self, item: &OutboxItem, now: Timestamp) -> Result<Delivery, StoreError> {
        let n = &item.notification;
        let profile = self.store.alert_profile(n.user_id).await?.unwrap_or_else(|| AlertProfile::empty(n.user_id));
        let mut channels = self.channels_for(item, &profile);
        if channels.is_empty() {
            return Ok(Delivery::Done { at: now });
        }
        let wait = |at| Delivery::Defer { at, delivered: item.delivered.clone() };
        if let Some(quiet) = profile.quiet_hours.filter(|q| !wakes(n.kind) && q.contains(now)) {
            return Ok(wait(quiet.end_after(now)));
        }
        // One message to the person, counted when its first channel goes.
        let person: Vec<SendWindow> = (item.delivered.is_empty() && !beyond_hourly_limit(n.kind))
            .then(|| SendWindow {
                key: format!("person:{}", n.user_id),
                span_ms: HOUR_MS,
                max: self.limits.per_person_per_hour,
            })
            .into_iter()
            .collect();
        let mut windows = person.clone();
        if channels.contains(&Channel::Sms) {
            windows.push(SendWindow { key: "sms".to_owned(), span_ms: MINUTE_MS, max: self.limits.sms_per_minute });
        }
        // When the SMS must wait for the gateway's next minute.
        let mut sms_waits = None;
        if let Admission::Full { until } = self.store.admit_send(&windows, now).await? {
            // Each channel waits for its own limit: a full SMS minute does not hold the push, if
            // the person's hour has room for it.
            let push_goes = channels.contains(&Channel::Push)
                && channels.contains(&Channel::Sms)
                && (person.is_empty() || self.store.admit_send(&person, now).await? == Admission::Admitted);
            if !push_goes {
                return Ok(wait(until));
            }
            channels.retain(|c| *c != Channel::Sms);
            sms_waits = Some(until);
        }
        let language = Language::from_code(&profile.language);
        let (title, body) = render(n.kind, &n.facts, n.at, language);
        let mut delivered = item.delivered.clone();
        let mut temporary = Vec::new();
        let mut refused = Vec::new();
        for channel in channels {
            let result = match channel {
                Channel::Push => {
                    let push = self.push.as_ref().expect("push is configured");
                    let data = json!({ "id": n.id.to_string(), "kind": n.kind.as_str() });
                    let pushed = push.send(&self.http, &profile.push_tokens, &title, &body, data).await;
                    for token in &pushed.gone {
                        self.forget_token(n.user_id, token).await?;
                    }
                    // Kept in the store before the item is recorded done: a restart loses none.
                    let tickets: Vec<PushTicket> = pushed
                        .tickets
                        .into_iter()
                        .map(|(token, id)| PushTicket {
                            id,
                            user: n.user_id,
                            token,
                            sent_at: now,
                            ask_at: now + self.limits.receipt_after_ms,
                            expires_at: now + self.limits.receipt_gives_up_ms,
                        })
                        .collect();
                    if !tickets.is_empty() {
                        self.store.add_push_tickets(&tickets).await?;
                    }
                    pushed.result
                }
                Channel::Sms => {
                    let sms = self.sms.as_ref().expect("SMS is configured");
                    let phone = sms_to(n, &profile).expect("a phone");
                    let answer = answer_by_sms(n.kind, &n.facts, language).filter(|_| self.taking_texts);
                    let text = answer.map_or_else(|| body.clone(), |answer| format!("{body} {answer}"));
                    sms.send(&self.http, phone, &text, &n.id.to_string()).await
                }
            };
            match result {
                Ok(()) => {
                    delivered.insert(channel);
                }
                Err(SendError::Temporary(e)) => temporary.push(format!("{}: {e}", channel.as_str())),
                Err(SendError::Refused(e)) => refused.push(format!("{}: {e}", channel.as_str())),
            }
        }
        if temporary.is_empty() {
            if !refused.is_empty() {
                tracing::warn!(notification = %n.id, errors = %refused.join("; "), "a channel refused a notification");
            }
            return Ok(match sms_waits {
                Some(at) => Delivery::Defer { at, delivered },
                None => Delivery::Done { at: now },
            });
        }
        let error = temporary.into_iter().chain(refused).collect::<Vec<_>>().join("; ");
        if item.attempts + 1 >= self.limits.max_attempts {
            tracing::warn!(notification = %n.id, %error, "giving a notification up");
            return Ok(Delivery::Failed { at: now, error });
        }
        Ok(Delivery::Retry { at: now + self.limits.backoff(item.attempts), delivered, error })
    }
}

/// The number a notification's SMS goes to: the one an answer names (a number that texted but is
/// no one's confirmed phone), else the person's phone.
fn sms_to<'a>(n: &'a Notification, profile: &'a AlertProfile) -> Option<&'a str> {
    n.facts.to_phone.as_deref().filter(|_| n.kind == NoticeKind::SmsReply).or(profile.phone.as_deref())
}

/// What becomes of a hold, a resume or a run's end about to go ([`Outbox::news`]).
enum News {
    /// Send it, after dropping these waiting items of its run (taken by this sender).
    Tell { drop: Vec<NotificationId> },
    /// Not news yet: look again then (a hold that may still end soon, or its other half being
    /// sent by another server).
    NotYet(Timestamp),
    /// Its run moved on before it went: drop it unsent, with these items of its run (taken).
    Moot { with: Vec<NotificationId> },
}

/// What claiming another waiting item came to ([`Outbox::take`]).
enum Taken {
    /// This sender holds it now; `told`: it reached a channel already (the rest waits).
    Mine { told: bool },
    /// It went out (or was given up) meanwhile.
    Gone,
    /// Another sender is sending it right now.
    Busy,
}

/// What goes out even in the person's quiet hours: the answer to a text they just sent, and that
/// their turn came (the pump runs on their minutes: a farmer in line must hear it, day or night).
fn wakes(kind: NoticeKind) -> bool {
    matches!(kind, NoticeKind::SmsReply | NoticeKind::RunStarted)
}

/// What the person's hourly limit never holds, nor counts: the answer to their text, and the
/// start and end of a run on their minutes (chatter of holds and resumes cannot keep them from
/// hearing that their turn came, or what it cost).
fn beyond_hourly_limit(kind: NoticeKind) -> bool {
    matches!(kind, NoticeKind::SmsReply | NoticeKind::RunStarted | NoticeKind::RunEnded)
}
