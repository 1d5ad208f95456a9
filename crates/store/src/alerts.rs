//! Alerts: what the store keeps so that people hear of what happened — each person's
//! notifications (the bell), the outbox their delivery is claimed from, and each person's alert
//! profile (phone, push tokens, language, what they want on which channel, quiet hours).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    str::FromStr,
};

use pumppilot_engine::{AdminId, Facts, NoticeKind, RequestId, Timestamp, UserId};
use uuid::Uuid;

use crate::SessionId;

/// A notification's id; its outbox row has the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId(pub Uuid);

impl NotificationId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        NotificationId(Uuid::now_v7())
    }
}

impl Default for NotificationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_simple().fmt(f)
    }
}

impl FromStr for NotificationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(NotificationId)
    }
}

/// One notice as one person's notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub user_id: UserId,
    pub admin_id: AdminId,
    pub kind: NoticeKind,
    pub at: Timestamp,
    pub facts: Facts,
    pub read: bool,
}

impl Notification {
    /// A notice as its person's new notification, not yet read.
    pub fn of(notice: &pumppilot_engine::Notice) -> Self {
        Notification {
            id: NotificationId::new(),
            user_id: notice.to,
            admin_id: notice.admin_id,
            kind: notice.kind,
            at: notice.at,
            facts: notice.facts.clone(),
            read: false,
        }
    }
}

/// Where a notification goes besides the bell (which shows them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// A push notification to the app (Expo).
    Push,
    /// A text message through the SMS gateway.
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Push, Channel::Sms];

    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "PUSH",
            Channel::Sms => "SMS",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The hours a person does not want to be woken: from `from_minute` to `to_minute` of the day
/// (minutes after midnight in their zone, `utc_offset_minutes` from UTC; may wrap midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub from_minute: u16,
    pub to_minute: u16,
    pub utc_offset_minutes: i16,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl QuietHours {
    /// Whether `at` falls in the quiet hours.
    pub fn contains(&self, at: Timestamp) -> bool {
        let minute = self.minute_of_day(at);
        let (from, to) = (i64::from(self.from_minute), i64::from(self.to_minute));
        if from <= to { (from..to).contains(&minute) } else { minute >= from || minute < to }
    }

    /// The first moment at or after `at` outside the quiet hours.
    pub fn end_after(&self, at: Timestamp) -> Timestamp {
        if !self.contains(at) {
            return at;
        }
        let minute = self.minute_of_day(at);
        let to = i64::from(self.to_minute);
        let minutes_left = (to - minute).rem_euclid(24 * 60);
        let local = at.millis() + i64::from(self.utc_offset_minutes) * 60_000;
        let start_of_minute = local - local.rem_euclid(60_000);
        Timestamp(start_of_minute + minutes_left * 60_000 - i64::from(self.utc_offset_minutes) * 60_000)
    }

    fn minute_of_day(&self, at: Timestamp) -> i64 {
        let local = at.millis() + i64::from(self.utc_offset_minutes) * 60_000;
        local.rem_euclid(DAY_MS) / 60_000
    }
}

/// How one person wants to hear: where to reach them and what they want where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertProfile {
    pub user_id: UserId,
    /// A phone number in E.164 (`+8801711000000`) for SMS and control by SMS, confirmed from
    /// that phone; unique.
    pub phone: Option<String>,
    /// A number set for them that its holder has not confirmed yet: nothing is sent to it and
    /// nothing it sends is obeyed until then. Not unique: whoever holds the phone decides which
    /// account it joins, by texting that account's code.
    pub pending_phone: Option<PendingPhone>,
    /// Expo push tokens of the person's phones. A token is one account's at a time, across the
    /// store: set for another person, it leaves this one.
    pub push_tokens: Vec<String>,
    /// The mobile session that registered each of `push_tokens`, by token: the token lives as
    /// long as that session, and leaves the profile in the same write that revokes or purges it
    /// (a phone signed out by a new password or a suspension stops getting the account's pushes).
    /// A token without one (registered before sessions were kept with tokens, or from the web)
    /// stays until the phone signs out or Expo says it is gone. Entries for tokens not listed
    /// are not stored.
    pub push_sessions: BTreeMap<String, SessionId>,
    /// `en` or `bn`: the language of texts sent to them.
    pub language: String,
    /// The kinds they do not want on a channel (everything else they get).
    pub muted: BTreeSet<(NoticeKind, Channel)>,
    pub quiet_hours: Option<QuietHours>,
}

impl AlertProfile {
    /// The profile of someone who has set nothing: English, no phone, no push, everything on.
    pub fn empty(user_id: UserId) -> Self {
        AlertProfile {
            user_id,
            phone: None,
            pending_phone: None,
            push_tokens: Vec::new(),
            push_sessions: BTreeMap::new(),
            language: "en".to_owned(),
            muted: BTreeSet::new(),
            quiet_hours: None,
        }
    }

    /// Whether they want this kind on this channel.
    pub fn wants(&self, kind: NoticeKind, channel: Channel) -> bool {
        !self.muted.contains(&(kind, channel))
    }

    /// The session that registered `token`, if one did.
    pub fn session_of(&self, token: &str) -> Option<SessionId> {
        self.push_sessions.get(token).copied()
    }

    /// The sessions that registered the tokens listed, each once.
    pub fn token_sessions(&self) -> BTreeSet<SessionId> {
        self.push_tokens.iter().filter_map(|token| self.session_of(token)).collect()
    }

    /// Lists `token` last, registered by `session`: taken from wherever the list had it (with the
    /// session it had), and the oldest tokens leaving past `keep`, with their sessions (see
    /// [`crate::Store::register_push_token`]).
    pub fn register_token(&mut self, token: &str, session: SessionId, keep: usize) {
        self.push_tokens.retain(|listed| listed != token);
        self.push_tokens.push(token.to_owned());
        let over = self.push_tokens.len().saturating_sub(keep);
        self.push_tokens.drain(..over);
        self.push_sessions.retain(|listed, _| self.push_tokens.contains(listed));
        if self.push_tokens.iter().any(|listed| listed == token) {
            self.push_sessions.insert(token.to_owned(), session);
        }
    }

    /// Whether `stored` is still the profile `read` (`None`: none), the one a save was made from:
    /// the same in everything but the pending number's wrong-code count, which the save merges
    /// (see [`crate::Store::set_alert_profile`]).
    pub fn unchanged_since(stored: Option<&AlertProfile>, read: Option<&AlertProfile>) -> bool {
        let without_pending = |p: &AlertProfile| AlertProfile { pending_phone: None, ..p.clone() };
        match (stored, read) {
            (None, None) => true,
            (Some(stored), Some(read)) => {
                let same_wait = match (&stored.pending_phone, &read.pending_phone) {
                    (None, None) => true,
                    (Some(stored), Some(read)) => stored.is_same_wait(read),
                    _ => false,
                };
                same_wait && without_pending(stored) == without_pending(read)
            }
            _ => false,
        }
    }

    /// Takes out the tokens whose session is not one of `live` (it ended while the profile was
    /// being written), and the sessions of tokens not listed. Tokens without a session stay.
    pub fn keep_tokens_of(&mut self, live: &BTreeSet<SessionId>) {
        let sessions = std::mem::take(&mut self.push_sessions);
        self.push_tokens.retain(|token| sessions.get(token).is_none_or(|session| live.contains(session)));
        self.push_sessions = sessions.into_iter().filter(|(token, _)| self.push_tokens.contains(token)).collect();
    }
}

/// A phone number set for a person and waiting for its holder to text `code` from it.
///
/// The code is kept as it is, not hashed: the person it was made for reads it again on every
/// screen until they send it, and it is of use only from the phone it names, for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPhone {
    /// E.164.
    pub phone: String,
    /// Six digits, made by the server.
    pub code: String,
    /// When it was set: the code works for [`PendingPhone::VALID_MS`] from then.
    pub since: Timestamp,
    /// Wrong codes texted from the number so far: at [`PendingPhone::MAX_WRONG_CODES`] it is
    /// dropped (kept only to say why it is gone, until the person sets a number again).
    pub wrong_codes: u32,
}

impl PendingPhone {
    /// How long a code works: a day, time enough to reach the farmer, short enough that a
    /// number forgotten on a screen does not wait for a stranger's guess for ever.
    pub const VALID_MS: i64 = 24 * 60 * 60 * 1000;

    /// How many wrong codes a number waiting may get from its phone before it is dropped: room for
    /// a farmer's typos, and a guesser's chance of one in 200,000.
    pub const MAX_WRONG_CODES: u32 = 5;

    /// A number set at `since` with a new `code`, no wrong code yet.
    pub fn new(phone: String, code: String, since: Timestamp) -> Self {
        PendingPhone { phone, code, since, wrong_codes: 0 }
    }

    /// Whether its code still works at `now`.
    pub fn valid_at(&self, now: Timestamp) -> bool {
        now - self.since < Self::VALID_MS
    }

    /// Whether it was dropped for too many wrong codes.
    pub fn dropped(&self) -> bool {
        self.wrong_codes >= Self::MAX_WRONG_CODES
    }

    /// Whether its code confirms the number at `now`: unexpired and not dropped.
    pub fn open_at(&self, now: Timestamp) -> bool {
        self.valid_at(now) && !self.dropped()
    }

    /// Whether `other` is this same number waiting (the same number, code and time set), whatever
    /// the wrong codes counted since either was read.
    pub fn is_same_wait(&self, other: &PendingPhone) -> bool {
        (&self.phone, &self.code, self.since) == (&other.phone, &other.code, other.since)
    }
}

/// A phone number in E.164: `+`, then 8 to 15 digits, the first not 0.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// One notification waiting to be delivered, claimed by one sender until `claimed_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub notification: Notification,
    /// Failed tries so far.
    pub attempts: u32,
    /// The channels already delivered (a retry sends only the rest).
    pub delivered: BTreeSet<Channel>,
}

/// A notification as a backup or a move to another store carries it ([`crate::Snapshot`]): the
/// bell's notification with its read state, the key of its notice, and its delivery if one is
/// still to come. A delivery a sender had claimed comes as due again; one delivered or given up
/// does not come (a copy never sends it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptNotification {
    pub notification: Notification,
    /// The key of the notice it came from (`Notice::key`): a condition that lasts is told once,
    /// also in the copy.
    pub key: Option<String>,
    /// Its delivery still to come; `None` once delivered or given up.
    pub due: Option<DueDelivery>,
}

/// A delivery still to come: when it is due, the failed tries so far and the channels already
/// delivered (a retry sends only the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub at: Timestamp,
    pub attempts: u32,
    pub delivered: BTreeSet<Channel>,
}

/// What became of a claimed outbox item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Everything it had to go to is delivered (or there was nowhere to send it): never again.
    Done { at: Timestamp },
    /// Try again at `at`, sending only to the channels not in `delivered`.
    Retry { at: Timestamp, delivered: BTreeSet<Channel>, error: String },
    /// Not now (quiet hours, a rate limit): due again at `at`, not counted as a try, with
    /// `delivered` the channels reached so far (a push that went while the SMS gateway's window
    /// was full: only the SMS waits).
    Defer { at: Timestamp, delivered: BTreeSet<Channel> },
    /// Given up after too many tries: kept for the record, never sent again.
    Failed { at: Timestamp, error: String },
}

/// The key of the owner's `REQUEST_NEW` notice about a minute request. Deciding the request (an
/// approval's commit, a rejection, [`crate::Store::decide_minute_request`]) settles the
/// notification with this key in the same write: read, and its delivery done if it had not gone
/// yet (never sent: the request is no longer the owner's to decide).
pub fn request_notice_key(request: RequestId) -> String {
    format!("request:{request}")
}

/// A notice's facts as the JSON text both backends keep.
pub fn facts_to_json(facts: &Facts) -> String {
    serde_json::to_string(facts).expect("facts are plain data")
}

/// Facts read back from their JSON text.
pub fn facts_from_json(text: &str) -> Result<Facts, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The muted pairs as stored: `KIND:CHANNEL`.
pub fn muted_names(muted: &BTreeSet<(NoticeKind, Channel)>) -> Vec<String> {
    muted.iter().map(|(kind, channel)| format!("{}:{}", kind.as_str(), channel.as_str())).collect()
}

/// Muted pairs read back from their stored names.
pub fn parse_muted<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<BTreeSet<(NoticeKind, Channel)>, String> {
    names
        .into_iter()
        .filter(|name| !name.is_empty())
        .map(|name| {
            let (kind, channel) = name.split_once(':').ok_or_else(|| format!("not KIND:CHANNEL: {name}"))?;
            let kind = NoticeKind::parse(kind).ok_or_else(|| format!("unknown kind {kind}"))?;
            let channel = Channel::parse(channel).ok_or_else(|| format!("unknown channel {channel}"))?;
            Ok((kind, channel))
        })
        .collect()
}

/// A push Expo accepted, whose receipt is still to be read (`Store::add_push_tickets`): Expo's
/// ticket id, the person and the phone's token it went to, and when its receipt is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTicket {
    /// Expo's ticket id (unique).
    pub id: String,
    pub user: UserId,
    /// The phone's Expo push token the message went to.
    pub token: String,
    pub sent_at: Timestamp,
    /// When its receipt is asked for (again).
    pub ask_at: Timestamp,
    /// After this it is never asked for: Expo keeps receipts about a day.
    pub expires_at: Timestamp,
}

/// A limit on sends counted in the store, so that every server on one store keeps one limit:
/// at most `max` sends per window of `span_ms`, the windows starting at whole multiples of
/// `span_ms` since the epoch (a clock minute, a clock hour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    /// What is counted: `person:<id>` for one person's messages, `sms` for the SMS gateway.
    pub key: String,
    pub span_ms: i64,
    pub max: u32,
}

impl SendWindow {
    /// The start of the window `at` falls in.
    pub fn start_of(&self, at: Timestamp) -> Timestamp {
        Timestamp(at.millis() - at.millis().rem_euclid(self.span_ms.max(1)))
    }
}

/// What [`crate::Store::admit_send`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted in every window: send now.
    Admitted,
    /// A window is full: nothing was counted; every window has room again at `until`.
    Full { until: Timestamp },
}

/// The decision for one window holding `count` sends since `start`, at `now`: the count after
/// the send, or the moment the window ends when it is full. Both backends decide through this.
pub fn admit_one(
    window: &SendWindow,
    stored: Option<(Timestamp, u32)>,
    now: Timestamp,
) -> Result<(Timestamp, u32), Timestamp> {
    let start = window.start_of(now);
    let count = match stored {
        Some((at, count)) if at == start => count,
        _ => 0,
    };
    if count >= window.max {
        return Err(start + window.span_ms);
    }
    Ok((start, count + 1))
}
