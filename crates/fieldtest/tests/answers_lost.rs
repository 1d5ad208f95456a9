//! The safety review's F1 on the real controller and the real engine, only the network between
//! them faked: a board whose answers never reach it usable keeps reporting its relay open without
//! a command (`relayOff: NO_COMMAND`). It was charged for the whole run with the motor never
//! running (relay ON 0 ms, run charged 596 s over ten minutes); now nothing is charged, and once
//! the answers come through again only the time the relay was closed is.

use pumppilot_controller::{Controller, Millis, Settings};
use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EntryId, Event, LedgerKind, MotorRules, PollAnswer, QueueEntry, Reply,
    Tenant, Timestamp, UserId,
};
use pumppilot_protocol::{MAX_ANSWER_BYTES, json};

const T0: i64 = 1_700_000_000_000;

/// The server's poll interval and lease.
const POLL_MS: u32 = 5_000;
const LEASE_MS: i64 = 15_000;

fn ts(ms: u64) -> Timestamp {
    Timestamp(T0 + ms as i64)
}

/// The answer as the server sends it.
fn body(answer: &PollAnswer) -> Vec<u8> {
    let mut buf = [0u8; MAX_ANSWER_BYTES];
    let n = json::encode_answer(answer, &mut buf).expect("an answer fits its limit");
    buf[..n].to_vec()
}

/// A farmer presses Start at 2 s and Stop at `stop_ms`; the board polls as it does (and reports
/// a change at once), every answer reaching it cut short while `garbled(t)`, whole otherwise, 80 ms
/// after its poll. Returns the milliseconds the relay was ON and the run as it ended.
fn run(stop_ms: u64, garbled: impl Fn(u64) -> bool) -> (u64, QueueEntry) {
    let admin = AdminId(UserId::new());
    let farmer = UserId::new();
    let board = DeviceId::new();
    let mut tenant = Tenant::new(admin, LEASE_MS);
    tenant.defaults = MotorRules::NONE;
    tenant.apply(Event::Credit(Credit::new(farmer, 3_600, LedgerKind::Recharge, admin.0)), ts(0));

    let mut device = Controller::new(Settings::DEFAULT);
    let mut relay_on_ms = 0u64;
    let mut next_poll = 1_000u64;
    let mut in_flight: Option<(pumppilot_controller::Sent, u64, Vec<u8>)> = None;
    let mut t = 0u64;
    while t < stop_ms {
        device.sense(Millis(t), false, true); // grid up, pump ready
        if let Some((sent, _, answer)) = in_flight.take_if(|(_, at, _)| *at <= t) {
            // A garbled answer is refused (the command dropped); a whole one is taken.
            let _ = device.answer(sent, Millis(t), &answer);
        }
        if device.drive(Millis(t)).is_on() {
            relay_on_ms += 50;
        }
        if t == 2_000 {
            tenant.apply(Event::Start { user: farmer, requested_minutes: None, entry_id: EntryId::new() }, ts(t));
        }
        if in_flight.is_none() && device.settled(Millis(t)) && (t >= next_poll || device.report_now(Millis(t))) {
            let poll = device.poll(Millis(t));
            let r = poll.report;
            tenant.apply(Event::Poll(DevicePoll::of_report(board, &r)), ts(t));
            let answer = body(&tenant.poll_answer_for(board, ts(t), POLL_MS));
            // Garbled on the farm's network, forged by someone on it, or cut short by a proxy.
            let answer = if garbled(t) { answer[..answer.len() / 2].to_vec() } else { answer };
            in_flight = Some((poll.sent, t + 80, answer));
            next_poll = t + u64::from(device.next_poll_in(0));
        }
        t += 50;
    }
    let outcome = tenant.apply(Event::Stop { user: farmer }, ts(t));
    let Ok(Reply::Ended(entry)) = outcome.reply else { panic!("{:?}", outcome.reply) };
    (relay_on_ms, entry)
}

#[test]
fn answers_garbled_on_the_way_back_charge_nothing_while_the_motor_never_runs() {
    let (relay_on_ms, entry) = run(10 * 60_000, |_| true);
    assert_eq!(relay_on_ms, 0, "the relay never closed");
    assert_eq!(entry.charged_seconds, Some(0), "{entry:?}");
}

/// The answers are garbled for the first two minutes, then come through: the run is charged for
/// the time the relay was closed, no more (the answer that tells the board ON counts from its
/// poll, a moment before the relay closes).
#[test]
fn once_the_answers_come_through_the_time_the_relay_was_closed_is_charged() {
    let (relay_on_ms, entry) = run(5 * 60_000, |t| t < 2 * 60_000);
    let charged_ms = entry.charged_seconds.unwrap() * 1000;
    println!("relay ON {relay_on_ms} ms; charged {charged_ms} ms; held {} ms", entry.held_ms);
    assert!(relay_on_ms > 170_000, "the relay closed once the answers came through: {relay_on_ms} ms");
    assert!(
        charged_ms <= relay_on_ms as i64 && relay_on_ms as i64 - charged_ms < 2_000,
        "charged {charged_ms} ms for {relay_on_ms} ms of the relay closed"
    );
}
