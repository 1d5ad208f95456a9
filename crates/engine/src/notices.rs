//! What a change tells people: the notices a transition leaves behind, decided here beside the
//! rules so that every channel (the bell, push, SMS) tells the same story, and written by the
//! store in the same commit as the change that caused them.

use pumppilot_protocol::{HoldReason, ResetReason};
use serde::{Deserialize, Serialize};

use crate::{
    AdminId, EndReason, EntryId, EntryStatus, LedgerKind, QueueEntry, Records, RejectReason, RequestId, Timestamp,
    UserId,
};

/// A farmer whose balance falls below this many seconds with a run's charge is told so.
pub const LOW_BALANCE_SECONDS: i64 = 10 * 60;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NoticeKind {
    /// Your turn came: your run is the active one.
    RunStarted,
    /// Your run holds (with the reason).
    RunHeld,
    /// Your run runs again.
    RunResumed,
    /// Your run ended (minutes used, balance left).
    RunEnded,
    /// A run's charge left your balance low.
    BalanceLow,
    /// Your minute request was approved or rejected.
    RequestDecided,
    /// (Owner) A farmer asks for minutes.
    RequestNew,
    /// (Owner) The device has not polled for longer than the set time.
    DeviceOffline,
    /// (Owner) Load shedding has lasted longer than the set time.
    LoadSheddingLong,
    /// (Owner) The controller restarted for a reason that is not a plain power-on.
    DeviceReset,
    /// (Owner) The relay was ON but the motor never confirmed it runs.
    RelayNoFeedback,
    /// (Owner) The server cannot write to its store.
    StoreTrouble,
    /// (Owner) During a run, the controller has said for longer than the set time that it holds
    /// no command although told ON (`relayOff: NO_COMMAND`): what it is told does not reach it,
    /// and the motor is off while the run waits.
    NoCommandLong,
    /// The answer to a text a farmer sent from their phone (control by SMS): sent back by SMS
    /// only, at once (no quiet hours, no muting), and kept in the bell.
    SmsReply,
}

impl NoticeKind {
    /// Every kind, in order.
    pub const ALL: [NoticeKind; 14] = [
        NoticeKind::RunStarted,
        NoticeKind::RunHeld,
        NoticeKind::RunResumed,
        NoticeKind::RunEnded,
        NoticeKind::BalanceLow,
        NoticeKind::RequestDecided,
        NoticeKind::RequestNew,
        NoticeKind::DeviceOffline,
        NoticeKind::LoadSheddingLong,
        NoticeKind::DeviceReset,
        NoticeKind::RelayNoFeedback,
        NoticeKind::StoreTrouble,
        NoticeKind::NoCommandLong,
        NoticeKind::SmsReply,
    ];

    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NoticeKind::RunStarted => "RUN_STARTED",
            NoticeKind::RunHeld => "RUN_HELD",
            NoticeKind::RunResumed => "RUN_RESUMED",
            NoticeKind::RunEnded => "RUN_ENDED",
            NoticeKind::BalanceLow => "BALANCE_LOW",
            NoticeKind::RequestDecided => "REQUEST_DECIDED",
            NoticeKind::RequestNew => "REQUEST_NEW",
            NoticeKind::DeviceOffline => "DEVICE_OFFLINE",
            NoticeKind::LoadSheddingLong => "LOAD_SHEDDING_LONG",
            NoticeKind::DeviceReset => "DEVICE_RESET",
            NoticeKind::RelayNoFeedback => "RELAY_NO_FEEDBACK",
            NoticeKind::StoreTrouble => "STORE_TROUBLE",
            NoticeKind::NoCommandLong => "NO_COMMAND_LONG",
            NoticeKind::SmsReply => "SMS_REPLY",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        NoticeKind::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

/// The facts a notice's text is made from (each kind uses some of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Facts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<EntryId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<HoldReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// Seconds charged for a run, or asked for in a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    /// The balance left, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetReason>,
    /// A request approved (`true`) or rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    /// Why a request was rejected, when the owner said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
    /// Since when a condition (offline, load shedding) has lasted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// The farmer a notice to the owner is about (their name, filled in by who writes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// The request a notice to the owner is about: an SMS of it says the number that answers it
    /// from the owner's phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestId>,
    /// The device a notice to the owner is about (the name the owner gave it, filled in by who
    /// writes it): an owner with a spare board must know which one to go and look at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// A text already written in the person's language (an SMS answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The number an SMS answer goes to when it is not the person's confirmed phone: a number
    /// that texted wrong codes for the number waiting on their account, and is no one's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_phone: Option<String>,
    /// What this tells was asked for by the farmer's own text (a STOP, or a START whose run
    /// starts on hold), whose answer by SMS says it already (see [`Facts::worth_an_sms`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub answered_by_sms: bool,
}

impl Facts {
    /// Whether the notice is worth a paid SMS. Not when it tells what the farmer's own text just
    /// did: the answer to that text (an `SMS_REPLY`) says it, so a farmer who stops their run by
    /// SMS gets one SMS, not the answer and the run's end (nor a low balance the answer states),
    /// and one who texts START when the pump is on hold gets one, not the answer and the hold.
    /// The bell and push, which cost nothing, still show it: its end also tells the worker that
    /// holds and resumes of the run still waiting are moot.
    pub fn worth_an_sms(&self) -> bool {
        !self.answered_by_sms
    }
}

/// One thing to tell one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Who is told: a farmer, or the owner (the admin's own account).
    pub to: UserId,
    pub admin_id: AdminId,
    pub kind: NoticeKind,
    pub at: Timestamp,
    pub facts: Facts,
    /// Notices with the same key are one notice: the second is never written (a condition that
    /// lasts is told once, whoever notices it first).
    pub key: Option<String>,
}

impl Notice {
    /// A notice without a key.
    pub fn new(to: UserId, admin_id: AdminId, kind: NoticeKind, at: Timestamp, facts: Facts) -> Self {
        Notice { to, admin_id, kind, at, facts, key: None }
    }
}

/// The active run as it stood, to compare with what a transition left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActiveRun {
    pub id: EntryId,
    pub user: UserId,
    pub status: EntryStatus,
}

impl ActiveRun {
    pub(crate) fn of(entry: Option<&QueueEntry>) -> Option<Self> {
        entry.map(|e| ActiveRun { id: e.id, user: e.user_id, status: e.status })
    }
}

/// Whether a run that became active is news to its farmer: their turn came. A run made by the
/// transition's own Start (`pressed`: the entry a Start or a card's tap makes, from the app, a
/// text or the reader) and started at once, the motor being free, started before the farmer's
/// eyes: telling them is one more paid SMS each time.
fn turn_came(entry: &QueueEntry, pressed: Option<EntryId>) -> bool {
    pressed != Some(entry.id)
}

/// The notices of one transition, from the active run before and after it and the records it
/// left: a run that became active started, unless the farmer just pressed Start for it (see
/// [`turn_came`]); RUNNING ↔ HOLD held or resumed, dated when that happened; an ended run ended
/// (with its charge and the balance left); its charge, when it crossed [`LOW_BALANCE_SECONDS`],
/// leaves the balance low; a NO_FEEDBACK hold tells the owner too. What the answer to the
/// farmer's text says is not worth an SMS ([`Facts::worth_an_sms`]): for the run `answered` that
/// the text stopped, its end and the low balance it leaves; for the one it started, its hold when
/// it started on hold (a later hold of that run is news).
pub(crate) fn notices_of(
    admin: AdminId,
    before: Option<ActiveRun>,
    after: Option<&QueueEntry>,
    pressed: Option<EntryId>,
    answered: Option<EntryId>,
    records: &Records,
    now: Timestamp,
) -> Vec<Notice> {
    let owner = admin.0;
    let mut notices = Vec::new();
    let mut tell = |to, kind, at, facts| notices.push(Notice::new(to, admin, kind, at, facts));
    let run = |entry: &QueueEntry| Facts { entry_id: Some(entry.id), ..Facts::default() };
    for entry in records.ended.iter().filter(|e| e.status == EntryStatus::Completed) {
        let at = entry.ended_at.unwrap_or(now);
        if before.is_none_or(|b| b.id != entry.id) && turn_came(entry, pressed) {
            tell(entry.user_id, NoticeKind::RunStarted, entry.started_at.unwrap_or(at), run(entry));
        }
        let charge = records
            .ledger
            .iter()
            .find(|l| l.user_id == entry.user_id && l.kind == LedgerKind::RunCharge && l.entry_id == Some(entry.id));
        // A run that charged nothing leaves the balance as the wallet had it.
        let balance = charge.map(|l| l.balance_after);
        let answered_by_sms = answered == Some(entry.id);
        let facts = Facts {
            end_reason: entry.end_reason,
            seconds: entry.charged_seconds,
            balance_seconds: balance,
            answered_by_sms,
            ..run(entry)
        };
        tell(entry.user_id, NoticeKind::RunEnded, at, facts);
        if let Some(charge) = charge {
            let before = charge.balance_after - charge.delta_seconds;
            if charge.balance_after < LOW_BALANCE_SECONDS && before >= LOW_BALANCE_SECONDS {
                let facts = Facts { balance_seconds: Some(charge.balance_after), answered_by_sms, ..Facts::default() };
                tell(charge.user_id, NoticeKind::BalanceLow, charge.at, facts);
            }
        }
    }
    if let Some(entry) = after {
        // When the phase began: a run resumed before its device is told (the board keeps its relay
        // open a while, a restart wait ran out) has none yet, and was resumed by this transition.
        let at = entry.phase_since.unwrap_or(now);
        let held = |reason| Facts { hold_reason: reason, ..run(entry) };
        match before.filter(|b| b.id == entry.id) {
            None => {
                if turn_came(entry, pressed) {
                    tell(entry.user_id, NoticeKind::RunStarted, entry.started_at.unwrap_or(now), run(entry));
                }
                if entry.status == EntryStatus::Hold {
                    let facts = Facts { answered_by_sms: answered == Some(entry.id), ..held(entry.hold_reason) };
                    tell(entry.user_id, NoticeKind::RunHeld, at, facts);
                }
            }
            Some(b) if b.status == EntryStatus::Running && entry.status == EntryStatus::Hold => {
                tell(entry.user_id, NoticeKind::RunHeld, at, held(entry.hold_reason));
            }
            Some(b) if b.status == EntryStatus::Hold && entry.status == EntryStatus::Running => {
                tell(entry.user_id, NoticeKind::RunResumed, at, run(entry));
            }
            Some(_) => {}
        }
        let newly_no_feedback = entry.hold_reason == Some(HoldReason::NoFeedback)
            && before.is_none_or(|b| b.id != entry.id || b.status == EntryStatus::Running);
        if newly_no_feedback {
            tell(owner, NoticeKind::RelayNoFeedback, at, held(entry.hold_reason));
        }
    }
    notices
}

/// The farmer hears their request for `seconds` was approved, with the balance they may pump now
/// (`balance_seconds`, the minutes just added included).
pub(crate) fn request_approved(
    admin: AdminId,
    farmer: UserId,
    seconds: i64,
    balance_seconds: i64,
    now: Timestamp,
) -> Notice {
    let facts = Facts {
        seconds: Some(seconds),
        balance_seconds: Some(balance_seconds),
        approved: Some(true),
        ..Facts::default()
    };
    Notice::new(farmer, admin, NoticeKind::RequestDecided, now, facts)
}

/// The farmer hears their request for `seconds` was rejected, and why when the owner said
/// (`reason`): whether to pay again, ask for fewer minutes or wait.
pub fn request_rejected(
    admin: AdminId,
    farmer: UserId,
    seconds: i64,
    reason: Option<RejectReason>,
    now: Timestamp,
) -> Notice {
    let facts = Facts { seconds: Some(seconds), approved: Some(false), reject_reason: reason, ..Facts::default() };
    Notice::new(farmer, admin, NoticeKind::RequestDecided, now, facts)
}
