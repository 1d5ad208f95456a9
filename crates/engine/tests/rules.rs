//! One test per rule of PRODUCT.md ("Minutes", "The queue", "HOLD and safety"), in fake time.

mod pump {
    use pumppilot_engine::{
        AdminId, Credit, EntryId, EntryStatus, Event, LedgerKind, Outcome, Tenant, Timestamp, UserId,
    };
    use uuid::Uuid;

    pub const ADMIN: UserId = UserId(Uuid::from_u128(0xAD));
    pub const A: UserId = UserId(Uuid::from_u128(0xA));
    pub const B: UserId = UserId(Uuid::from_u128(0xB));
    pub const C: UserId = UserId(Uuid::from_u128(0xC));
    pub const D: UserId = UserId(Uuid::from_u128(0xD));
    /// The device's lease: long, so that runs of a few minutes need no polls unless a test is about them.
    pub const LEASE_SECS: i64 = 3600;
    const T0: i64 = 1_700_000_000_000;

    /// `seconds` after t0.
    pub fn at(seconds: i64) -> Timestamp {
        Timestamp(T0 + seconds * 1000)
    }

    /// `ms` milliseconds after t0.
    pub fn at_ms(ms: i64) -> Timestamp {
        Timestamp(T0 + ms)
    }

    /// A tenant whose device reported good conditions at t0.
    pub fn pump() -> Tenant {
        let mut tenant = Tenant::new(AdminId(ADMIN), LEASE_SECS * 1000);
        tenant.apply(good(), at(0));
        tenant
    }

    /// [`pump`] with these users' wallets recharged at t0.
    pub fn pump_with(wallets: &[(UserId, i64)]) -> Tenant {
        let mut tenant = pump();
        for &(user, seconds) in wallets {
            tenant.apply(credit(user, seconds), at(0)).reply.expect("recharge");
        }
        tenant
    }

    fn change(user: UserId, seconds: i64, kind: LedgerKind) -> Event {
        Event::Credit(Credit::new(user, seconds, kind, ADMIN))
    }

    /// The admin recharges `seconds`.
    pub fn credit(user: UserId, seconds: i64) -> Event {
        change(user, seconds, LedgerKind::Recharge)
    }

    /// The admin corrects the balance by `seconds` (up or down).
    pub fn correction(user: UserId, seconds: i64) -> Event {
        change(user, seconds, LedgerKind::Correction)
    }

    pub fn start(user: UserId) -> Event {
        Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }
    }

    pub fn start_for(user: UserId, minutes: u32) -> Event {
        Event::Start { user, requested_minutes: Some(minutes), entry_id: EntryId::new() }
    }

    pub fn stop(user: UserId) -> Event {
        Event::Stop { user }
    }

    pub fn good() -> Event {
        Event::DeviceReport { load_shedding: false, ready: true, relay: false }
    }

    pub fn shedding() -> Event {
        Event::DeviceReport { load_shedding: true, ready: true, relay: false }
    }

    pub fn not_ready() -> Event {
        Event::DeviceReport { load_shedding: false, ready: false, relay: false }
    }

    /// The user's live entry: its status and, when waiting, its position.
    pub fn place(tenant: &Tenant, user: UserId) -> Option<(EntryStatus, Option<usize>)> {
        tenant.live_entry(user).map(|(entry, position)| (entry.status, position))
    }

    /// Applies a Start; when it makes a run RUNNING that the device has not heard of yet, the
    /// device (long-polling, unchanged inputs) hears it at once: charging starts then.
    pub fn begin(tenant: &mut Tenant, event: Event, now: Timestamp) -> Outcome {
        let mut outcome = tenant.apply(event, now);
        let untold =
            tenant.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_none());
        if untold {
            let d = tenant.device;
            let heard = tenant
                .apply(Event::DeviceReport { load_shedding: d.load_shedding, ready: d.ready, relay: d.relay }, now);
            outcome.records.extend(heard.records);
        }
        outcome
    }

    /// The one usage row an outcome wrote.
    pub fn usage(outcome: &Outcome) -> &pumppilot_engine::UsageRow {
        assert_eq!(outcome.records.usage.len(), 1, "{outcome:#?}");
        &outcome.records.usage[0]
    }
}

use pump::*;
use pumppilot_engine::{
    EndReason, EntryId, EntryStatus, Event, HoldReason, LedgerKind, Motor, MotorState, Refusal, Reply, Tenant,
};

const RUNNING: Option<(EntryStatus, Option<usize>)> = Some((EntryStatus::Running, None));

// --- The queue -----------------------------------------------------------------------------------

#[test]
fn user_b_waits_at_position_1_while_user_a_runs() {
    let mut t = pump_with(&[(A, 600), (B, 600)]);
    begin(&mut t, start(A), at(1));
    let reply = begin(&mut t, start(B), at(2)).reply;
    assert!(matches!(reply, Ok(Reply::Entry(e)) if e.status == EntryStatus::Waiting && e.user_id == B));
    assert_eq!(place(&t, A), RUNNING);
    assert_eq!(place(&t, B), Some((EntryStatus::Waiting, Some(1))));
}

#[test]
fn next_in_line_starts_by_itself_when_the_run_ends() {
    let mut t = pump_with(&[(A, 600), (B, 600)]);
    begin(&mut t, start_for(A, 1), at(0));
    begin(&mut t, start(B), at(10));
    let out = t.apply(Event::Tick, at(100));
    assert_eq!(usage(&out).end_reason, EndReason::RequestedMinutesUsed);
    assert_eq!(place(&t, B), RUNNING);
    assert_eq!(t.active.as_ref().unwrap().started_at, Some(at(60)), "B starts the moment A's run ends");
}

#[test]
fn the_wait_of_each_place_in_line_is_what_runs_before_it() {
    // A runs 5 of her 10 minutes; B asked for 3; C runs until her 4 minutes are used; D waits.
    let mut t = pump_with(&[(A, 600), (B, 600), (C, 240), (D, 600)]);
    begin(&mut t, start_for(A, 5), at(0));
    begin(&mut t, start_for(B, 3), at(1));
    begin(&mut t, start(C), at(2));
    begin(&mut t, start(D), at(3));
    assert_eq!(t.estimated_wait_seconds(1, at(60)), Some(240), "B: what A has left");
    assert_eq!(t.estimated_wait_seconds(2, at(60)), Some(240 + 180), "C: then B's 3 minutes");
    assert_eq!(t.estimated_wait_seconds(3, at(60)), Some(240 + 180 + 240), "D: then C's whole balance");
    assert_eq!(t.estimated_wait_seconds(4, at(60)), None, "nobody waits there");
    assert_eq!(t.estimated_wait_seconds(0, at(60)), None);
    // Load shedding freezes A's remaining time, so the waits stop shrinking.
    t.apply(shedding(), at(60));
    assert_eq!(t.estimated_wait_seconds(1, at(600)), Some(240));
}

#[test]
fn waiting_user_with_no_minutes_is_skipped() {
    let mut t = pump_with(&[(A, 600), (B, 600), (C, 600)]);
    begin(&mut t, start(A), at(0));
    begin(&mut t, start(B), at(1));
    begin(&mut t, start(C), at(2));
    t.apply(correction(B, -600), at(3)).reply.unwrap();
    let out = t.apply(stop(A), at(10));
    let skipped = out.records.ended.iter().find(|e| e.user_id == B).expect("B's entry ends");
    assert_eq!((skipped.status, skipped.end_reason), (EntryStatus::Cancelled, Some(EndReason::InsufficientBalance)));
    assert_eq!(place(&t, C), RUNNING);
}

#[test]
fn positions_close_up_when_a_waiting_user_leaves() {
    let mut t = pump_with(&[(A, 600), (B, 600), (C, 600), (D, 600)]);
    for (i, user) in [A, B, C, D].into_iter().enumerate() {
        begin(&mut t, start(user), at(i as i64));
    }
    let out = t.apply(stop(B), at(5));
    assert!(matches!(out.reply, Ok(Reply::Ended(e)) if e.end_reason == Some(EndReason::LeftQueue)));
    assert_eq!(place(&t, B), None);
    assert_eq!(place(&t, C), Some((EntryStatus::Waiting, Some(1))));
    assert_eq!(place(&t, D), Some((EntryStatus::Waiting, Some(2))));
    assert_eq!(place(&t, A), RUNNING);
}

#[test]
fn the_owner_removes_a_waiting_farmer_and_only_a_waiting_one() {
    let mut t = pump_with(&[(A, 600), (B, 600), (C, 600)]);
    for (i, user) in [A, B, C].into_iter().enumerate() {
        t.apply(start(user), at(i as i64));
    }
    let out = t.apply(Event::RemoveWaiting { user: B }, at(5));
    assert!(
        matches!(&out.reply, Ok(Reply::Ended(e)) if e.end_reason == Some(EndReason::AdminStop) && e.status == EntryStatus::Cancelled)
    );
    assert_eq!(out.records.ended.len(), 1);
    assert!(out.records.ledger.is_empty(), "a place in line costs nothing, and removing it charges nothing");
    assert_eq!((place(&t, B), place(&t, C)), (None, Some((EntryStatus::Waiting, Some(1)))));
    // The running farmer is not "waiting": refused, and nothing changes.
    let before = t.clone();
    let refused = t.apply(Event::RemoveWaiting { user: A }, at(6));
    assert_eq!(refused.reply, Err(Refusal::NothingToStop));
    assert_eq!(t, before);
    assert_eq!(place(&t, A), RUNNING);
}

#[test]
fn the_owner_moves_a_waiting_farmer_and_the_others_keep_their_order() {
    let mut t = pump_with(&[(A, 600), (B, 600), (C, 600), (D, 600)]);
    for (i, user) in [A, B, C, D].into_iter().enumerate() {
        t.apply(start(user), at(i as i64));
    }
    let line = |t: &Tenant| t.waiting.iter().map(|e| e.user_id).collect::<Vec<_>>();
    let out = t.apply(Event::MoveWaiting { user: D, to: 1 }, at(5));
    assert_eq!(out.reply, Ok(Reply::Done));
    assert!(out.records.changed && out.records.reordered, "a new order is written, entries passing each other");
    assert!(out.records.ledger.is_empty() && out.records.ended.is_empty());
    assert_eq!(line(&t), [D, B, C]);
    assert_eq!(place(&t, D), Some((EntryStatus::Waiting, Some(1))));
    // Past the end is last; the same place changes nothing.
    t.apply(Event::MoveWaiting { user: D, to: 99 }, at(6));
    assert_eq!(line(&t), [B, C, D]);
    let stay = t.apply(Event::MoveWaiting { user: C, to: 2 }, at(7));
    assert!(!stay.records.reordered);
    // The running farmer is not in the line: refused, and nothing changes.
    let before = t.clone();
    assert_eq!(t.apply(Event::MoveWaiting { user: A, to: 1 }, at(8)).reply, Err(Refusal::NothingToStop));
    assert_eq!(t, before);
}

#[test]
fn a_card_tap_starts_a_run_keeps_a_place_and_stops_only_the_active_run() {
    let tap = |user| Event::CardTap { user, entry_id: EntryId::new() };
    let mut t = pump_with(&[(A, 600), (B, 600)]);
    let first = begin(&mut t, tap(A), at(0)).reply;
    assert!(matches!(first, Ok(Reply::Entry(e)) if e.status == EntryStatus::Running && e.user_id == A));
    let waits = begin(&mut t, tap(B), at(1)).reply;
    assert!(matches!(waits, Ok(Reply::Entry(e)) if e.status == EntryStatus::Waiting));
    // B taps again while waiting: their place is kept, nothing changes.
    let before = t.clone();
    let again = begin(&mut t, tap(B), at(2));
    assert!(matches!(again.reply, Ok(Reply::Entry(e)) if e.status == EntryStatus::Waiting) && !again.records.changed);
    assert_eq!(t, before);
    // A taps again: their run ends and B's starts at that moment.
    let stopped = begin(&mut t, tap(A), at(30)).reply;
    assert!(matches!(stopped, Ok(Reply::Ended(e)) if e.user_id == A && e.status == EntryStatus::Completed));
    assert_eq!(place(&t, B), RUNNING);
    // A run that ended by itself before the tap arrived: the tap is a new start, not a stop.
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, start_for(A, 1), at(0));
    let after_end = begin(&mut t, tap(A), at(120)).reply;
    assert!(
        matches!(after_end, Ok(Reply::Entry(e)) if e.status == EntryStatus::Running && e.started_at == Some(at(120)))
    );
}

#[test]
fn starting_twice_returns_the_same_entry() {
    let mut t = pump_with(&[(A, 600), (B, 600)]);
    begin(&mut t, start(A), at(0));
    let first_a = Ok(Reply::Entry(t.active.as_deref().cloned().expect("A runs")));
    let first_b = begin(&mut t, start(B), at(1)).reply;
    let before = t.clone();
    let again_a = begin(&mut t, start(A), at(2));
    let again_b = begin(&mut t, start(B), at(3));
    assert_eq!(again_a.reply, first_a);
    assert_eq!(again_b.reply, first_b);
    assert!(!again_a.records.changed && !again_b.records.changed);
    assert_eq!(t, before);
}

#[test]
fn start_without_minutes_is_refused() {
    let mut t = pump_with(&[(B, 60)]);
    let before = t.clone();
    let out = begin(&mut t, start(A), at(1));
    assert_eq!(out.reply, Err(Refusal::InsufficientBalance));
    assert!(!out.records.changed);
    assert_eq!(t, before);
}

// --- HOLD and safety ------------------------------------------------------------------------------

#[test]
fn load_shedding_holds_and_freezes_remaining_time() {
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, start(A), at(0));
    t.apply(shedding(), at(100));
    let frozen = t.remaining_seconds(at(100));
    assert_eq!(frozen, Some(500));
    assert_eq!(t.motor_state(), (MotorState::Hold, Some(HoldReason::LoadShedding)));
    // Three hours of load shedding, the device polling all along.
    for minutes in (30..=180).step_by(30) {
        t.apply(shedding(), at(minutes * 60));
        assert_eq!(t.remaining_seconds(at(minutes * 60)), frozen);
    }
    assert_eq!(t.wallet(A), 600);
    assert_eq!(t.available_seconds(A, at(180 * 60)), 500);
}

#[test]
fn resume_after_load_shedding_keeps_exact_remaining_time() {
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, start(A), at(0));
    t.apply(shedding(), at_ms(100_250));
    t.apply(good(), at(5000));
    assert_eq!(place(&t, A), RUNNING);
    let resumed = at(5000);
    // 499.75 s were left: still running just before, ended exactly then.
    assert!(t.apply(Event::Tick, resumed + 499_749).records.usage.is_empty());
    let out = t.apply(Event::Tick, resumed + 499_750);
    let row = usage(&out);
    assert_eq!((row.ended_at, row.running_seconds, row.charged_seconds), (resumed + 499_750, 600, 600));
    assert_eq!(row.end_reason, EndReason::BalanceExhausted);
    assert_eq!(t.wallet(A), 0);
}

#[test]
fn silent_device_holds_with_charge_stopped_at_the_lease() {
    let mut t = pump_with(&[(A, 100_000)]);
    begin(&mut t, start(A), at(0));
    t.apply(good(), at(100)); // the last good poll
    t.apply(Event::Tick, at(100 + 10 * LEASE_SECS));
    assert_eq!(t.motor_state(), (MotorState::Hold, Some(HoldReason::DeviceOffline)));
    let out = t.apply(stop(A), at(100 + 10 * LEASE_SECS));
    assert_eq!(usage(&out).charged_seconds, 100 + LEASE_SECS);
    assert_eq!(usage(&out).held_seconds, 9 * LEASE_SECS);
    assert_eq!(t.wallet(A), 100_000 - 100 - LEASE_SECS);
}

#[test]
fn run_started_under_bad_conditions_starts_in_hold_and_charges_nothing() {
    let mut t = pump_with(&[(A, 600)]);
    t.apply(shedding(), at(0));
    begin(&mut t, start(A), at(1));
    assert_eq!(place(&t, A), Some((EntryStatus::Hold, None)));
    assert_eq!(t.motor_state(), (MotorState::Hold, Some(HoldReason::LoadShedding)));
    let out = t.apply(stop(A), at(500));
    assert_eq!((usage(&out).charged_seconds, usage(&out).held_seconds), (0, 499));
    assert!(out.records.ledger.is_empty());
    assert_eq!(t.wallet(A), 600);
}

// --- How a run ends -------------------------------------------------------------------------------

#[test]
fn run_ends_when_requested_minutes_are_used() {
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, start_for(A, 2), at(0));
    assert!(t.apply(Event::Tick, at(119)).records.usage.is_empty());
    let out = t.apply(Event::Tick, at(500));
    let row = usage(&out);
    assert_eq!((row.ended_at, row.charged_seconds, row.end_reason), (at(120), 120, EndReason::RequestedMinutesUsed));
    assert_eq!(t.wallet(A), 480);
    assert!(t.active.is_none());
}

#[test]
fn a_start_asks_for_a_day_at_most_and_a_refused_one_changes_nothing() {
    let mut t = pump_with(&[(A, 600)]);
    let before = t.clone();
    for minutes in [0, 1441, u32::MAX] {
        assert_eq!(t.apply(start_for(A, minutes), at(0)).reply, Err(Refusal::InvalidAmount), "{minutes} min");
        let texted = Event::StartByText { user: A, requested_minutes: Some(minutes), entry_id: EntryId::new() };
        assert_eq!(t.apply(texted, at(0)).reply, Err(Refusal::InvalidAmount), "{minutes} min by text");
    }
    assert_eq!(t, before);
    begin(&mut t, start_for(A, 1440), at(0));
    assert_eq!(t.active.as_ref().map(|e| e.requested_seconds), Some(Some(1440 * 60)));
}

#[test]
fn a_run_started_by_text_ends_when_its_minutes_are_used() {
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, Event::StartByText { user: A, requested_minutes: Some(3), entry_id: EntryId::new() }, at(0));
    let ended = t.apply(Event::Tick, at(500));
    assert_eq!((usage(&ended).charged_seconds, usage(&ended).end_reason), (180, EndReason::RequestedMinutesUsed));
}

#[test]
fn run_ends_when_balance_is_exhausted() {
    let mut t = pump_with(&[(A, 90)]);
    begin(&mut t, start(A), at(0));
    let out = t.apply(Event::Tick, at(1000));
    let row = usage(&out);
    assert_eq!((row.ended_at, row.charged_seconds, row.end_reason), (at(90), 90, EndReason::BalanceExhausted));
    let charge = &out.records.ledger[0];
    assert_eq!((charge.kind, charge.delta_seconds, charge.balance_after), (LedgerKind::RunCharge, -90, 0));
    assert_eq!((t.wallet(A), t.available_seconds(A, at(1000))), (0, 0));
}

#[test]
fn admin_stop_ends_the_run_and_starts_the_next() {
    let mut t = pump_with(&[(A, 600), (B, 600)]);
    begin(&mut t, start(A), at(0));
    begin(&mut t, start(B), at(1));
    let seen = t.active.as_ref().unwrap().id;
    let out = t.apply(Event::AdminStop { entry: seen }, at(30));
    assert!(matches!(&out.reply, Ok(Reply::Ended(e)) if e.user_id == A && e.charged_seconds == Some(30)));
    assert_eq!(usage(&out).end_reason, EndReason::AdminStop);
    assert_eq!(place(&t, B), RUNNING);
    assert_eq!(t.active.as_ref().unwrap().started_at, Some(at(30)));
}

#[test]
fn the_owners_stop_sent_twice_ends_only_the_run_it_names() {
    let mut t = pump_with(&[(A, 600), (B, 600)]);
    begin(&mut t, start(A), at(0));
    begin(&mut t, start(B), at(1));
    let seen = t.active.as_ref().unwrap().id;
    t.apply(Event::AdminStop { entry: seen }, at(30)).reply.expect("A's run ends");
    let b = t.active.clone().expect("B starts at once");
    // The same Stop again (a second tap on a slow network, a retry): B's run is not touched.
    let again = t.apply(Event::AdminStop { entry: seen }, at(31));
    assert_eq!(again.reply, Err(Refusal::AlreadyEnded));
    assert!(again.records.ended.is_empty() && again.records.usage.is_empty());
    assert_eq!((t.active.as_ref().unwrap().id, place(&t, B)), (b.id, RUNNING));
    // A run that ended by itself meanwhile is not the next one's either.
    let out = t.apply(Event::AdminStop { entry: b.id }, at(700));
    assert_eq!(out.reply, Err(Refusal::AlreadyEnded));
    assert_eq!(usage(&out).end_reason, EndReason::BalanceExhausted, "time caught up: B's minutes ran out");
    // Nothing running: a Stop naming a run ended is refused the same way.
    assert_eq!(t.apply(Event::AdminStop { entry: seen }, at(701)).reply, Err(Refusal::AlreadyEnded));
    assert_eq!(t.apply(Event::AdminStop { entry: b.id }, at(702)).reply, Err(Refusal::AlreadyEnded));
}

#[test]
fn suspending_a_tenant_ends_every_entry_charged_to_that_moment() {
    let mut t = pump_with(&[(A, 600), (B, 600), (C, 600)]);
    for (i, user) in [A, B, C].into_iter().enumerate() {
        begin(&mut t, start(user), at(i as i64));
    }
    let out = t.apply(Event::SuspendTenant, at(45));
    assert_eq!((usage(&out).charged_seconds, usage(&out).end_reason), (45, EndReason::Suspended));
    assert_eq!(out.records.ended.len(), 3);
    assert!(out.records.ended.iter().all(|e| e.end_reason == Some(EndReason::Suspended)));
    assert!(t.active.is_none() && t.waiting.is_empty());
    assert_eq!(t.wallet(A), 555);
    assert_eq!(begin(&mut t, start(B), at(50)).reply, Err(Refusal::Suspended));
    t.apply(Event::UnsuspendTenant, at(60));
    begin(&mut t, start(B), at(61));
    assert_eq!(place(&t, B), RUNNING);
}

#[test]
fn suspending_a_user_ends_only_their_entry() {
    let mut t = pump_with(&[(A, 600), (B, 600), (C, 600)]);
    for (i, user) in [A, B, C].into_iter().enumerate() {
        begin(&mut t, start(user), at(i as i64));
    }
    let out = t.apply(Event::SuspendUser { user: B }, at(10));
    assert_eq!(out.records.ended.len(), 1);
    assert_eq!(out.records.ended[0].end_reason, Some(EndReason::Suspended));
    assert_eq!(place(&t, A), RUNNING);
    assert_eq!(place(&t, C), Some((EntryStatus::Waiting, Some(1))));
    let out = t.apply(Event::SuspendUser { user: A }, at(20));
    assert_eq!((usage(&out).charged_seconds, usage(&out).end_reason), (20, EndReason::Suspended));
    assert_eq!(place(&t, C), RUNNING);
}

// --- Minutes --------------------------------------------------------------------------------------

#[test]
fn recharge_during_a_run_extends_it() {
    let mut t = pump_with(&[(A, 60)]);
    begin(&mut t, start(A), at(0));
    t.apply(credit(A, 60), at(30));
    assert_eq!(t.remaining_seconds(at(30)), Some(90));
    assert!(t.apply(Event::Tick, at(119)).records.usage.is_empty());
    let out = t.apply(Event::Tick, at(200));
    assert_eq!((usage(&out).ended_at, usage(&out).charged_seconds), (at(120), 120));
    assert_eq!(t.wallet(A), 0);
}

#[test]
fn correction_cannot_make_a_balance_negative() {
    let mut t = pump_with(&[(A, 100), (B, 100)]);
    assert_eq!(t.apply(correction(B, -101), at(1)).reply, Err(Refusal::InvalidAmount));
    assert_eq!(t.apply(credit(B, -1), at(1)).reply, Err(Refusal::InvalidAmount));
    assert_eq!(t.wallet(B), 100);
    // While A runs, the seconds already used cannot be taken back either.
    begin(&mut t, start(A), at(2));
    assert_eq!(t.apply(correction(A, -71), at(32)).reply, Err(Refusal::InvalidAmount));
    assert_eq!(t.apply(correction(A, -70), at(32)).reply, Ok(Reply::Balance(30)));
    assert!(t.wallets.values().all(|&w| w >= 0));
}

#[test]
fn amounts_past_what_a_balance_holds_are_refused_not_wrapped() {
    let mut t = pump_with(&[(A, 100), (B, 100)]);
    assert_eq!(t.apply(correction(A, i64::MIN), at(1)).reply, Err(Refusal::InvalidAmount));
    assert_eq!(t.apply(credit(B, i64::MAX), at(1)).reply, Err(Refusal::InvalidAmount));
    assert_eq!(t.apply(correction(B, i64::MAX - 50), at(1)).reply, Err(Refusal::InvalidAmount));
    assert_eq!((t.wallet(A), t.wallet(B)), (100, 100), "nothing changed");
}

#[test]
fn correction_that_uses_up_a_running_balance_ends_the_run_then() {
    let mut t = pump_with(&[(A, 100), (B, 100)]);
    begin(&mut t, start(A), at(0));
    begin(&mut t, start(B), at(30));
    // At 30.5 s, A has used 30 s; the admin takes away the other 70: A's balance is now zero.
    let out = t.apply(correction(A, -70), at_ms(30_500));
    let row = usage(&out);
    assert_eq!((row.ended_at, row.charged_seconds, row.end_reason), (at_ms(30_500), 30, EndReason::BalanceExhausted));
    assert_eq!(t.wallet(A), 0);
    // B pressed Start at 30 s: their run cannot begin before the moment A's ended.
    assert_eq!(t.active.as_ref().map(|e| (e.user_id, e.started_at)), Some((B, Some(at_ms(30_500)))));
}

#[test]
fn final_balance_after_stop_is_balance_minus_running_seconds() {
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, start(A), at(0));
    t.apply(shedding(), at(100));
    t.apply(good(), at(400));
    let out = t.apply(stop(A), at_ms(650_700)); // 100 s + 250.7 s RUNNING
    assert!(matches!(&out.reply, Ok(Reply::Ended(e)) if e.charged_seconds == Some(350)));
    let row = usage(&out);
    assert_eq!((row.running_seconds, row.held_seconds, row.charged_seconds), (350, 300, 350));
    let charge = &out.records.ledger[0];
    assert_eq!((charge.delta_seconds, charge.balance_after), (-350, 250));
    assert_eq!(t.wallet(A), 250);
}

// --- The device -----------------------------------------------------------------------------------

#[test]
fn device_command_seq_increases_only_when_the_command_changes() {
    let mut t = pump_with(&[(A, 600), (B, 600)]);
    let mut seq = t.seq;
    let mut expect = |t: &mut pumppilot_engine::Tenant, event: Event, now, bump: u64| {
        t.apply(event, now);
        seq += bump;
        assert_eq!(t.seq, seq, "after {now:?}");
    };
    expect(&mut t, credit(A, 60), at(1), 0);
    expect(&mut t, start(A), at(2), 1); // IDLE -> RUNNING
    expect(&mut t, start(B), at(3), 0);
    expect(&mut t, good(), at(4), 0);
    expect(&mut t, shedding(), at(5), 1); // RUNNING -> HOLD(LOAD_SHEDDING)
    expect(&mut t, shedding(), at(6), 0);
    expect(&mut t, not_ready(), at(7), 1); // HOLD(LOAD_SHEDDING) -> HOLD(DEVICE_NOT_READY)
    expect(&mut t, good(), at(8), 1); // -> RUNNING
    expect(&mut t, stop(A), at(9), 0); // B runs: the relay stays ON
    expect(&mut t, stop(B), at(10), 1); // -> IDLE
    expect(&mut t, Event::Tick, at(11), 0);
}

#[test]
fn quiet_poll_needs_no_commit() {
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, start(A), at(0));
    assert!(t.is_quiet_report(false, true, false, at(10)));
    let mut applied = t.clone();
    let out = applied.apply(good(), at(10));
    assert!(!out.records.changed);
    t.touch(at(10));
    assert_eq!(t, applied, "a quiet poll applied is the same as a touch");
    assert!(!t.is_quiet_report(true, true, false, at(20)), "a changed input is not quiet");
    assert!(!t.is_quiet_report(false, true, false, at(10 + LEASE_SECS)), "a poll after the lease ran out");
    assert!(!t.is_quiet_report(false, true, false, at(600)), "a poll when the run's end is due");
}

/// A device back after its lease ran out commits nothing while its pump has no run (a village's
/// devices coming back after a power cut), and its return is committed while one waits on it.
#[test]
fn a_device_back_after_its_lease_commits_only_for_a_run() {
    let back = at(10 + LEASE_SECS);
    let mut idle = pump_with(&[(A, 600)]);
    assert!(!idle.device.online_at(back));
    assert!(idle.is_quiet_report(false, true, false, back), "nothing waits on the device");
    let mut applied = idle.clone();
    assert!(!applied.apply(good(), back).records.changed);
    idle.touch(back);
    assert_eq!(idle, applied, "its return applied is the same as a touch");
    assert!(!idle.is_quiet_report(true, true, false, back), "a changed input is still committed");

    let mut waiting = pump_with(&[(A, 7200)]);
    begin(&mut waiting, start(A), at(0));
    waiting.apply(Event::Tick, back);
    assert_eq!(waiting.motor_state().1, Some(HoldReason::DeviceOffline));
    assert!(!waiting.is_quiet_report(false, true, false, back), "the run holds for the device");
    let out = waiting.apply(good(), back);
    assert!(out.records.changed, "the return that resumes the run is committed");
    assert_eq!(waiting.motor_command(), Motor::On);
}

#[test]
fn poll_answer_is_on_only_when_running_under_the_reported_conditions() {
    let mut t = pump_with(&[(A, 600)]);
    let answer = |t: &mut pumppilot_engine::Tenant, event: Event, now| {
        t.apply(event, now);
        let a = t.poll_answer(now, 5000);
        (a.motor, a.state, a.hold_reason, a.remaining_seconds)
    };
    assert_eq!(answer(&mut t, good(), at(1)), (Motor::Off, MotorState::Idle, None, 0));
    begin(&mut t, start(A), at(2));
    assert_eq!(answer(&mut t, good(), at(12)), (Motor::On, MotorState::Running, None, 590));
    let hold = Some(HoldReason::LoadShedding);
    assert_eq!(answer(&mut t, shedding(), at(22)), (Motor::Off, MotorState::Hold, hold, 580));
    let hold = Some(HoldReason::DeviceNotReady);
    assert_eq!(answer(&mut t, not_ready(), at(32)), (Motor::Off, MotorState::Hold, hold, 580));
    assert_eq!(answer(&mut t, good(), at(42)), (Motor::On, MotorState::Running, None, 580));
    assert_eq!(t.poll_answer(at(42), 5000).lease_ms as i64, LEASE_SECS * 1000);
}

#[test]
fn next_deadline_is_the_earlier_of_run_end_and_lease() {
    let mut t = pump_with(&[(A, 100_000)]);
    assert_eq!(t.next_deadline(), None, "idle: nothing is due");
    begin(&mut t, start_for(A, 10), at(0));
    assert_eq!(t.next_deadline(), Some(at(600)), "the run ends before the lease");
    t.apply(stop(A), at(1));
    begin(&mut t, start(A), at(2));
    assert_eq!(
        t.next_deadline(),
        Some(at(2 + LEASE_SECS)),
        "the lease (from the poll that heard of it) runs out first"
    );
    t.apply(shedding(), at(100));
    assert_eq!(t.next_deadline(), Some(at(100 + LEASE_SECS)), "in HOLD, only the lease can change it");
    t.apply(Event::Tick, at(100 + LEASE_SECS));
    assert_eq!(t.next_deadline(), None, "offline: only the device can change it");
}

#[test]
fn time_catches_up_even_when_the_timer_is_late() {
    let mut on_time = pump_with(&[(A, 600), (B, 600), (C, 100_000)]);
    begin(&mut on_time, start_for(A, 1), at(0));
    begin(&mut on_time, start_for(B, 2), at(1));
    begin(&mut on_time, start(C), at(2));
    on_time.apply(shedding(), at(3));
    on_time.apply(good(), at(30)); // the last poll: A ends at 87 s, B at 207 s, C is held when the lease runs out
    let mut late = on_time.clone();
    let end = at(10 * LEASE_SECS);

    let mut records = pumppilot_engine::Records::default();
    while let Some(deadline) = on_time.next_deadline().filter(|&d| d <= end) {
        records.extend(on_time.apply(Event::Tick, deadline).records);
    }
    records.extend(on_time.apply(Event::Tick, end).records);
    let late_records = late.apply(Event::Tick, end).records;

    assert_eq!(late, on_time);
    assert_eq!(late_records, records);
    assert_eq!(late_records.usage.len(), 2, "A and B ended; C is held offline");
    assert_eq!(late.motor_state(), (MotorState::Hold, Some(HoldReason::DeviceOffline)));
}

#[test]
fn refused_event_changes_nothing_but_time_still_moves() {
    let mut t = pump_with(&[(A, 600)]);
    begin(&mut t, start_for(A, 1), at(0));
    let mut ticked = t.clone();
    let tick = ticked.apply(Event::Tick, at(90));
    // A presses Stop at 90 s, but the run already ended by itself at 60 s.
    let out = t.apply(stop(A), at(90));
    assert_eq!(out.reply, Err(Refusal::NothingToStop));
    assert_eq!(usage(&out).ended_at, at(60));
    assert!(out.records.changed);
    assert_eq!((t, out.records), (ticked, tick.records));
}
