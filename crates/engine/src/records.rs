//! What a transition leaves behind for the books: ledger entries, usage rows and ended entries.

use serde::{Deserialize, Serialize};

use crate::{AdminId, EndReason, EntryId, Notice, QueueEntry, ReceiptId, RequestId, Timestamp, UserId};

/// Why a balance changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerKind {
    /// The admin (or master) added minutes.
    Recharge,
    /// An approved minute request.
    RequestApproved,
    /// A run ended and its RUNNING seconds were charged.
    RunCharge,
    /// A manual correction by the admin, up or down.
    Correction,
}

impl LedgerKind {
    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Recharge => "RECHARGE",
            LedgerKind::RequestApproved => "REQUEST_APPROVED",
            LedgerKind::RunCharge => "RUN_CHARGE",
            LedgerKind::Correction => "CORRECTION",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RECHARGE" => LedgerKind::Recharge,
            "REQUEST_APPROVED" => LedgerKind::RequestApproved,
            "RUN_CHARGE" => LedgerKind::RunCharge,
            "CORRECTION" => LedgerKind::Correction,
            _ => return None,
        })
    }
}

/// One change to one user's balance. The balance is always the sum of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub user_id: UserId,
    pub admin_id: AdminId,
    pub at: Timestamp,
    pub delta_seconds: i64,
    pub kind: LedgerKind,
    /// The stored balance after this entry.
    pub balance_after: i64,
    /// Who caused it (the admin for a recharge, the user for a run).
    pub actor_id: Option<UserId>,
    pub note: String,
    /// The run charged, for [`LedgerKind::RunCharge`].
    pub entry_id: Option<EntryId>,
    /// The request approved, for [`LedgerKind::RequestApproved`].
    pub request_id: Option<RequestId>,
    /// The key a recharge or correction was sent with (see [`crate::Credit::once_key`]).
    #[serde(default)]
    pub once_key: Option<String>,
    /// The receipt written with a recharge taken in cash.
    #[serde(default)]
    pub receipt_id: Option<ReceiptId>,
}

/// The history row of one finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub entry_id: EntryId,
    pub user_id: UserId,
    pub admin_id: AdminId,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub running_seconds: i64,
    pub held_seconds: i64,
    pub charged_seconds: i64,
    pub end_reason: EndReason,
}

/// Everything one transition produced besides the new tenant state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    pub ledger: Vec<LedgerEntry>,
    pub usage: Vec<UsageRow>,
    /// Entries that left the live set (COMPLETED or CANCELLED), in their final form.
    pub ended: Vec<QueueEntry>,
    /// What to tell whom about this change (written to the notifications and the outbox in the
    /// same commit).
    pub notices: Vec<Notice>,
    /// True when the tenant state changed in a way that must be committed. A quiet device poll
    /// (see [`crate::Tenant::is_quiet_report`]) moves only the last-seen time and leaves this false.
    pub changed: bool,
    /// True when waiting entries changed their order (not only closed up): a store must let them
    /// pass each other's places in the line within the write.
    pub reordered: bool,
}

impl Records {
    /// Adds another transition's records after these.
    pub fn extend(&mut self, other: Records) {
        self.ledger.extend(other.ledger);
        self.usage.extend(other.usage);
        self.ended.extend(other.ended);
        self.notices.extend(other.notices);
        self.changed |= other.changed;
        self.reordered |= other.reordered;
    }
}
