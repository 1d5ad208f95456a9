//! What a notification says, in the person's language: one sentence made from its kind and facts.
//! The bell, push and SMS all show this text.

use pumppilot_engine::{EndReason, Facts, HoldReason, NoticeKind, RejectReason, ResetReason, Timestamp};

/// A language texts are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    Bangla,
}

impl Language {
    /// `bn` is Bangla; anything else English.
    pub fn from_code(code: &str) -> Self {
        if code.eq_ignore_ascii_case("bn") { Language::Bangla } else { Language::English }
    }
}

/// Writes digits in Bangla (০১২৩৪৫৬৭৮৯) for Bangla texts.
pub fn digits(text: &str, language: Language) -> String {
    match language {
        Language::English => text.to_owned(),
        Language::Bangla => text
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(d) => char::from_u32(0x09E6 + d).unwrap_or(c),
                None => c,
            })
            .collect(),
    }
}

/// The number a pump owner's phone answers a run or a request by (`STOP 4821`, `OK 3817`): four
/// digits of its id. A Stop sent again once the next run began finds another number (a new run
/// shares the old one's by chance once in 10,000), so a late or repeated STOP does not end the
/// next farmer's run; a request is decided once.
pub fn short_number(id: u128) -> u32 {
    u32::try_from(id % 10_000).unwrap_or(0)
}

/// What an SMS that can be answered by text says after its sentence: a request to its owner,
/// the number to approve or reject it by.
pub fn answer_by_sms(kind: NoticeKind, facts: &Facts, language: Language) -> Option<String> {
    let n = short_number(facts.request?.0.as_u128());
    match (kind, language) {
        (NoticeKind::RequestNew, Language::English) => Some(format!("Reply OK {n:04} or NO {n:04}.")),
        (NoticeKind::RequestNew, Language::Bangla) => {
            Some(digits(&format!("উত্তরে হ্যাঁ {n:04} বা না {n:04} লিখুন।"), language))
        }
        _ => None,
    }
}

/// `text` with its digits in the language's (as [`digits`]), but `names` (a farmer's or a
/// device's, as the owner typed them) kept as written: "Pump 2", not "Pump ২".
pub fn digits_but(text: &str, language: Language, names: &[&str]) -> String {
    let mut said = digits(text, language);
    for name in names.iter().filter(|name| !name.is_empty()) {
        said = said.replace(&digits(name, language), name);
    }
    said
}

/// Reads Bangla digits as ASCII ones (`৩০` is `30`): a number a farmer typed, in either script.
pub fn ascii_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '০'..='৯' => char::from_digit(u32::from(c) - u32::from('০'), 10).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Whole minutes of some seconds, rounded down: a balance never promises minutes it has not.
fn minutes(seconds: i64) -> i64 {
    seconds.max(0) / 60
}

/// Whole minutes of a charge, rounded up: what a run used is never said as less than it was.
/// With the balance rounded down they add up as a farmer checks them: 20 min, 2 s used, is
/// "1 min used, 19 min left" (never "0 min used, 19 min left"), and the balance said never drops
/// by more than the charge said.
fn minutes_up(seconds: i64) -> i64 {
    let seconds = seconds.max(0);
    seconds / 60 + i64::from(seconds % 60 != 0)
}

/// How long something lasted, in hours and whole minutes (at least 1 min): "3 h 10 min",
/// "৩ ঘণ্টা ১০ মিনিট", as the screens write durations.
fn span(ms: i64, language: Language) -> String {
    let minutes = (ms.max(0) / 60_000).max(1);
    let (h, m) = (minutes / 60, minutes % 60);
    let (unit_h, unit_min) = match language {
        Language::English => ("h", "min"),
        Language::Bangla => ("ঘণ্টা", "মিনিট"),
    };
    match (h, m) {
        (0, m) => format!("{m} {unit_min}"),
        (h, 0) => format!("{h} {unit_h}"),
        (h, m) => format!("{h} {unit_h} {m} {unit_min}"),
    }
}

/// Why a run is on hold, in a few words (an SMS reply says it too).
pub fn hold_reason(reason: Option<HoldReason>, language: Language) -> &'static str {
    use HoldReason::*;
    match (language, reason) {
        (Language::English, Some(LoadShedding)) => "load shedding",
        (Language::English, Some(DeviceNotReady)) => "the pump is not ready",
        (Language::English, Some(DeviceOffline)) => "the device is offline",
        (Language::English, Some(GridSettling)) => "waiting for the power to settle",
        (Language::English, Some(RestartWait)) => "the motor must rest before it starts again",
        (Language::English, Some(NoFeedback)) => "the motor did not start",
        (Language::English, Some(StoreUnavailable)) => "the server cannot record the run",
        (Language::English, None) => "a fault",
        (Language::Bangla, Some(LoadShedding)) => "লোডশেডিং",
        (Language::Bangla, Some(DeviceNotReady)) => "পাম্প প্রস্তুত নয়",
        (Language::Bangla, Some(DeviceOffline)) => "ডিভাইস অফলাইন",
        (Language::Bangla, Some(GridSettling)) => "বিদ্যুৎ স্থির হওয়ার অপেক্ষা",
        (Language::Bangla, Some(RestartWait)) => "মোটর আবার চালুর আগে বিশ্রাম",
        (Language::Bangla, Some(NoFeedback)) => "মোটর চালু হয়নি",
        (Language::Bangla, Some(StoreUnavailable)) => "সার্ভার হিসাব লিখতে পারছে না",
        (Language::Bangla, None) => "একটি সমস্যা",
    }
}

fn end_reason(reason: Option<EndReason>, language: Language) -> &'static str {
    use EndReason::*;
    match (language, reason) {
        (Language::English, Some(BalanceExhausted)) => "your minutes ran out",
        (Language::English, Some(RequestedMinutesUsed)) => "the minutes you asked for are used",
        (Language::English, Some(AdminStop)) => "the owner stopped it",
        (Language::English, Some(Suspended)) => "the account is suspended",
        (Language::English, _) => "you stopped it",
        (Language::Bangla, Some(BalanceExhausted)) => "আপনার মিনিট শেষ",
        (Language::Bangla, Some(RequestedMinutesUsed)) => "চাওয়া মিনিট শেষ",
        (Language::Bangla, Some(AdminStop)) => "মালিক বন্ধ করেছেন",
        (Language::Bangla, Some(Suspended)) => "অ্যাকাউন্ট স্থগিত",
        (Language::Bangla, _) => "আপনি বন্ধ করেছেন",
    }
}

/// Why the owner rejected a request, in a few words that tell the farmer what to do next: pay,
/// pay what the minutes cost, ask for fewer, or wait. The one wording of each reason: a text says
/// it as a clause ("… was rejected: payment not received."), and the dashboard shows it as a label
/// of its own ([`reject_label`]).
pub fn reject_reason(reason: RejectReason, language: Language) -> &'static str {
    use RejectReason::*;
    match (language, reason) {
        (Language::English, NotPaid) => "payment not received",
        (Language::English, WrongAmount) => "the payment does not match the minutes asked",
        (Language::English, TooMany) => "ask for fewer minutes",
        (Language::English, PumpClosed) => "the pump is closed for now",
        (Language::Bangla, NotPaid) => "টাকা পাওয়া যায়নি",
        (Language::Bangla, WrongAmount) => "টাকা ও চাওয়া মিনিট মেলেনি",
        (Language::Bangla, TooMany) => "কম মিনিট চান",
        (Language::Bangla, PumpClosed) => "পাম্প আপাতত বন্ধ",
    }
}

/// Why the owner rejected a request as a label standing alone (the owner's choice, the tag on a
/// decided request): [`reject_reason`]'s words with their first letter capitalised. Bangla has
/// no capitals.
pub fn reject_label(reason: RejectReason, language: Language) -> String {
    let words = reject_reason(reason, language);
    let mut letters = words.chars();
    letters.next().map_or_else(String::new, |first| first.to_uppercase().chain(letters).collect())
}

fn reset_reason(reason: Option<ResetReason>, language: Language) -> &'static str {
    use ResetReason::*;
    match (language, reason) {
        (Language::English, Some(BrownOut)) => "the power dipped",
        (Language::English, Some(Watchdog)) => "it got stuck and restarted itself",
        (Language::English, Some(Panic)) => "its software failed",
        (Language::English, _) => "an unknown cause",
        (Language::Bangla, Some(BrownOut)) => "বিদ্যুৎ কমে গিয়েছিল",
        (Language::Bangla, Some(Watchdog)) => "আটকে গিয়ে নিজেই আবার চালু হয়েছে",
        (Language::Bangla, Some(Panic)) => "সফটওয়্যারে সমস্যা হয়েছিল",
        (Language::Bangla, _) => "অজানা কারণে",
    }
}

/// What a run used and what is left, as a run's end says it: the charge rounded up, the balance
/// down; a run that charged nothing says so, and a balance not known (nothing was charged, so the
/// engine wrote none) is not said (never "0 min left" to a farmer who has minutes).
fn run_charge(facts: &Facts, language: Language) -> String {
    let used = minutes_up(facts.seconds.unwrap_or(0));
    let left = facts.balance_seconds.map(minutes);
    match (language, used, left) {
        (Language::English, 0, None) => "no minutes used".to_owned(),
        (Language::English, 0, Some(left)) => format!("no minutes used, {left} min left"),
        (Language::English, used, None) => format!("{used} min used"),
        (Language::English, used, Some(left)) => format!("{used} min used, {left} min left"),
        (Language::Bangla, 0, None) => "কোনো মিনিট খরচ হয়নি".to_owned(),
        (Language::Bangla, 0, Some(left)) => format!("কোনো মিনিট খরচ হয়নি, {left} মিনিট বাকি"),
        (Language::Bangla, used, None) => format!("{used} মিনিট খরচ"),
        (Language::Bangla, used, Some(left)) => format!("{used} মিনিট খরচ, {left} মিনিট বাকি"),
    }
}

/// The answer to a STOP that ended the farmer's run (control by SMS): what the run's end says,
/// the minutes it used and the balance left, rounded as the run's end rounds them, so that the
/// answer is the one SMS the farmer gets for it: "Stopped: 1 min used, 19 min left."
pub fn run_stopped(charged_seconds: i64, balance_seconds: i64, language: Language) -> String {
    let facts = Facts { seconds: Some(charged_seconds), balance_seconds: Some(balance_seconds), ..Facts::default() };
    let charge = run_charge(&facts, language);
    let text = match language {
        Language::English => format!("Stopped: {charge}."),
        Language::Bangla => format!("বন্ধ হয়েছে: {charge}।"),
    };
    digits(&text, language)
}

/// The notification's title (a few words) and its sentence, for a notice made at `at` (the
/// notice's time): load shedding and a silent device say how long they had lasted then, from
/// `facts.since` (without it, "a long time").
pub fn render(kind: NoticeKind, facts: &Facts, at: Timestamp, language: Language) -> (String, String) {
    use Language::*;
    use NoticeKind::*;
    // A request's minutes (whole minutes); a run's end says its charge with `run_charge`.
    let used = minutes(facts.seconds.unwrap_or(0));
    let balance = minutes(facts.balance_seconds.unwrap_or(0));
    // How long a condition had lasted when the notice was made.
    let lasted = facts.since.map(|since| span(at.millis().saturating_sub(since.millis()), language));
    let who = facts.who.clone().unwrap_or_default();
    // The device an owner's notice is about, as the owner named it (in quotes: a name is no word
    // of the sentence); a notice written before names were kept says "the pump's device".
    let named = facts.device.as_ref().map(|name| format!("\"{name}\""));
    let the_device = named.as_ref().map_or_else(|| "The pump's device".to_owned(), |name| format!("The device {name}"));
    // Bangla says the device's silence: "the device's" (…ডিভাইসের) answer is missing.
    let the_devices_bn = named.as_ref().map_or_else(|| "পাম্পের ডিভাইসের".to_owned(), |name| format!("{name} ডিভাইসের"));
    let (title, body) = match (language, kind) {
        (English, RunStarted) => ("Your turn".into(), "Your turn came: the pump is starting for you.".into()),
        (English, RunHeld) => {
            let reason = hold_reason(facts.hold_reason, language);
            ("Run on hold".into(), format!("Your run is on hold: {reason}. No minutes are used while it is on hold."))
        }
        (English, RunResumed) => ("Run resumed".into(), "Your run is running again.".into()),
        (English, RunEnded) => (
            "Run ended".into(),
            format!("Your run ended ({}): {}.", end_reason(facts.end_reason, language), run_charge(facts, language)),
        ),
        (English, BalanceLow) => ("Balance low".into(), format!("Only {balance} min left. Ask the owner for more.")),
        (English, RequestDecided) => match (facts.approved, facts.balance_seconds) {
            (Some(true), Some(_)) => {
                ("Request approved".into(), format!("Your request for {used} min was approved. Balance {balance} min."))
            }
            (Some(true), None) => ("Request approved".into(), format!("Your request for {used} min was approved.")),
            _ => match facts.reject_reason {
                Some(reason) => (
                    "Request rejected".into(),
                    format!("Your request for {used} min was rejected: {}.", reject_reason(reason, language)),
                ),
                None => ("Request rejected".into(), format!("Your request for {used} min was rejected.")),
            },
        },
        (English, RequestNew) => ("New request".into(), format!("{who} asks for {used} min.")),
        (English, DeviceOffline) => (
            "Device offline".into(),
            match &lasted {
                Some(lasted) => format!("{the_device} has not been heard from for {lasted}."),
                None => format!("{the_device} has not been heard from."),
            },
        ),
        (English, LoadSheddingLong) => {
            let lasted = lasted.as_deref().unwrap_or("a long time");
            let body = match &named {
                Some(name) => format!("Load shedding at the device {name} has lasted {lasted}."),
                None => format!("Load shedding has lasted {lasted}."),
            };
            ("Long load shedding".into(), body)
        }
        (English, DeviceReset) => {
            ("Device restarted".into(), format!("{the_device} restarted: {}.", reset_reason(facts.reset, language)))
        }
        (English, RelayNoFeedback) => {
            let body = match &named {
                Some(name) => format!(
                    "The device {name} switched its relay on, but the motor did not confirm it runs. Please check \
                     the pump."
                ),
                None => {
                    "The relay was switched on but the motor did not confirm it runs. Please check the pump.".into()
                }
            };
            ("Motor did not start".into(), body)
        }
        (English, NoCommandLong) => {
            let body = match &lasted {
                Some(lasted) => format!(
                    "{the_device} has not received the server's commands for {lasted}, so the motor is off during a \
                     run. Check its network."
                ),
                None => format!(
                    "{the_device} is not receiving the server's commands, so the motor is off during a run. Check its \
                     network."
                ),
            };
            ("Device not getting commands".into(), body)
        }
        (English, StoreTrouble) => (
            "Server trouble".into(),
            "The server could not write its records for a while; runs were held meanwhile. It works again.".into(),
        ),
        (Bangla, RunStarted) => ("আপনার পালা".into(), "আপনার পালা এসেছে: পাম্প চালু হচ্ছে।".into()),
        (Bangla, RunHeld) => {
            let reason = hold_reason(facts.hold_reason, language);
            ("সেচ থেমে আছে".into(), format!("আপনার সেচ থেমে আছে: {reason}। মিনিট কাটা হচ্ছে না।"))
        }
        (Bangla, RunResumed) => ("সেচ আবার চলছে".into(), "আপনার সেচ আবার চলছে।".into()),
        (Bangla, RunEnded) => (
            "সেচ শেষ".into(),
            format!("আপনার সেচ শেষ ({}): {}।", end_reason(facts.end_reason, language), run_charge(facts, language)),
        ),
        (Bangla, BalanceLow) => ("ব্যালেন্স কম".into(), format!("মাত্র {balance} মিনিট বাকি। মালিকের কাছে আরও চান।")),
        (Bangla, RequestDecided) => match (facts.approved, facts.balance_seconds) {
            (Some(true), Some(_)) => {
                ("অনুরোধ মঞ্জুর".into(), format!("আপনার {used} মিনিটের অনুরোধ মঞ্জুর হয়েছে। ব্যালেন্স {balance} মিনিট।"))
            }
            (Some(true), None) => ("অনুরোধ মঞ্জুর".into(), format!("আপনার {used} মিনিটের অনুরোধ মঞ্জুর হয়েছে।")),
            // With its reason: 64 characters with 10,080 minutes and the longest reason.
            _ => match facts.reject_reason {
                Some(reason) => (
                    "অনুরোধ নামঞ্জুর".into(),
                    format!("আপনার {used} মিনিটের অনুরোধ নামঞ্জুর: {}।", reject_reason(reason, language)),
                ),
                None => ("অনুরোধ নামঞ্জুর".into(), format!("আপনার {used} মিনিটের অনুরোধ নামঞ্জুর হয়েছে।")),
            },
        },
        (Bangla, RequestNew) => ("নতুন অনুরোধ".into(), format!("{who} {used} মিনিট চান।")),
        (Bangla, DeviceOffline) => (
            "ডিভাইস অফলাইন".into(),
            match &lasted {
                Some(lasted) => format!("{the_devices_bn} {lasted} ধরে কোনো সাড়া নেই।"),
                None => format!("{the_devices_bn} কোনো সাড়া নেই।"),
            },
        ),
        (Bangla, LoadSheddingLong) => {
            let lasted = lasted.as_deref().unwrap_or("অনেকক্ষণ");
            // "At the device X": a name of 18 letters with 23 h 59 min is 65 characters.
            let body = match &named {
                Some(name) => format!("{name} ডিভাইসে লোডশেডিং {lasted} ধরে চলছে।"),
                None => format!("লোডশেডিং {lasted} ধরে চলছে।"),
            };
            ("দীর্ঘ লোডশেডিং".into(), body)
        }
        (Bangla, DeviceReset) => {
            let reason = reset_reason(facts.reset, language);
            // A name of 18 letters with the longest reason is 70 characters: one SMS in Unicode.
            let body = match &named {
                Some(name) => format!("{name} রিস্টার্ট হলো: {reason}।"),
                None => format!("পাম্পের ডিভাইস রিস্টার্ট হয়েছে: {reason}।"),
            };
            ("ডিভাইস রিস্টার্ট".into(), body)
        }
        (Bangla, RelayNoFeedback) => {
            // The device as the subject, as a restart says it: "X switched the relay on, the motor
            // did not run" (65 characters with a name of 18 letters).
            let body = match &named {
                Some(name) => format!("{name} রিলে চালু করেছিল, মোটর চলেনি। পাম্পটি দেখুন।"),
                None => "রিলে চালু হয়েছিল কিন্তু মোটর চলেনি। পাম্পটি দেখুন।".into(),
            };
            ("মোটর চালু হয়নি".into(), body)
        }
        (Bangla, NoCommandLong) => {
            // "X has had no instruction for …, the motor is off": 69 characters with a name of 18
            // letters and 23 h 59 min, 70 with 167 h 59 min (the longest setting).
            let device = named.as_deref().unwrap_or("পাম্পের ডিভাইস");
            let body = match &lasted {
                Some(lasted) => format!("{device} {lasted} ধরে নির্দেশ পায়নি, মোটর বন্ধ।"),
                None => format!("{device} নির্দেশ পাচ্ছে না, মোটর বন্ধ।"),
            };
            ("ডিভাইস নির্দেশ পাচ্ছে না".into(), body)
        }
        (Bangla, StoreTrouble) => {
            ("সার্ভারে সমস্যা".into(), "সার্ভার কিছুক্ষণ রেকর্ড লিখতে পারেনি; তখন সেচ থেমে ছিল। এখন আবার চলছে।".into())
        }
        (English, SmsReply) => ("SMS answer".into(), facts.text.clone().unwrap_or_default()),
        (Bangla, SmsReply) => ("এসএমএস উত্তর".into(), facts.text.clone().unwrap_or_default()),
    };
    (title, digits_but(&body, language, &[&who, facts.device.as_deref().unwrap_or_default()]))
}

#[cfg(test)]
mod wording {
    use pumppilot_engine::{EndReason, Facts, HoldReason, NoticeKind, RejectReason, ResetReason, Timestamp};

    use super::{Language, answer_by_sms, minutes, minutes_up, reject_label, reject_reason, render, run_stopped};
    use crate::sms::parts;

    /// The English and the Bangla sentence.
    fn both(kind: NoticeKind, facts: &Facts) -> (String, String) {
        (render(kind, facts, Timestamp(0), Language::English).1, render(kind, facts, Timestamp(0), Language::Bangla).1)
    }

    fn pair(english: &str, bangla: &str) -> (String, String) {
        (english.to_owned(), bangla.to_owned())
    }

    fn ended(seconds: i64, balance_seconds: Option<i64>) -> Facts {
        Facts { end_reason: Some(EndReason::UserStop), seconds: Some(seconds), balance_seconds, ..Facts::default() }
    }

    const HOLDS: [Option<HoldReason>; 8] = [
        Some(HoldReason::LoadShedding),
        Some(HoldReason::DeviceNotReady),
        Some(HoldReason::DeviceOffline),
        Some(HoldReason::GridSettling),
        Some(HoldReason::RestartWait),
        Some(HoldReason::NoFeedback),
        Some(HoldReason::StoreUnavailable),
        None,
    ];

    #[test]
    fn a_run_says_its_charge_rounded_up_and_the_balance_rounded_down() {
        // Salma had 20 min and ran 2 s; Karim had 12 min and ran 28 s.
        assert_eq!(
            both(NoticeKind::RunEnded, &ended(2, Some(20 * 60 - 2))),
            pair(
                "Your run ended (you stopped it): 1 min used, 19 min left.",
                "আপনার সেচ শেষ (আপনি বন্ধ করেছেন): ১ মিনিট খরচ, ১৯ মিনিট বাকি।"
            )
        );
        assert_eq!(
            both(NoticeKind::RunEnded, &ended(28, Some(12 * 60 - 28))).1,
            "আপনার সেচ শেষ (আপনি বন্ধ করেছেন): ১ মিনিট খরচ, ১১ মিনিট বাকি।"
        );
        assert_eq!(
            both(NoticeKind::RunEnded, &ended(120, Some(28 * 60))).0,
            "Your run ended (you stopped it): 2 min used, 28 min left.",
            "whole minutes stay as they are"
        );
        assert_eq!(
            both(NoticeKind::RunEnded, &ended(121, Some(30 * 60 - 121))).0,
            "Your run ended (you stopped it): 3 min used, 27 min left."
        );
        // A balance in whole minutes and the charge said add up to it; the charge is never said as
        // less than it was nor the balance as more. Whatever the balance, the balance said never
        // drops by more than the charge said.
        for had in 1..=30 {
            for charged in 1..=had * 60 {
                let (used, left) = (minutes_up(charged), minutes(had * 60 - charged));
                assert_eq!(used + left, had, "{had} min, {charged} s charged");
                assert!(used * 60 >= charged && left * 60 <= had * 60 - charged);
            }
        }
        for had in 0..=1800 {
            for charged in 0..=had {
                assert!(minutes(had) - minutes(had - charged) <= minutes_up(charged), "{had} s, {charged} s charged");
            }
        }
    }

    #[test]
    fn a_run_that_charged_nothing_says_so_and_no_balance_it_does_not_know() {
        // The engine writes no ledger line, so no balance, for a run that charged nothing.
        assert_eq!(
            both(NoticeKind::RunEnded, &ended(0, None)),
            pair(
                "Your run ended (you stopped it): no minutes used.",
                "আপনার সেচ শেষ (আপনি বন্ধ করেছেন): কোনো মিনিট খরচ হয়নি।"
            )
        );
    }

    /// A STOP texted from a farmer's phone is answered with what the run's end would have said: the
    /// answer is the one SMS they get for it.
    #[test]
    fn the_answer_to_a_stop_says_what_the_runs_end_says() {
        let stopped = |charged, balance| {
            (run_stopped(charged, balance, Language::English), run_stopped(charged, balance, Language::Bangla))
        };
        assert_eq!(
            stopped(2, 20 * 60 - 2),
            pair("Stopped: 1 min used, 19 min left.", "বন্ধ হয়েছে: ১ মিনিট খরচ, ১৯ মিনিট বাকি।")
        );
        assert_eq!(
            stopped(0, 30 * 60),
            pair("Stopped: no minutes used, 30 min left.", "বন্ধ হয়েছে: কোনো মিনিট খরচ হয়নি, ৩০ মিনিট বাকি।")
        );
        // The same numbers as the run's end: the charge rounded up, the balance down.
        for (charged, balance) in [(1, 599), (61, 3540), (1440 * 60 - 1, 99_999 * 60 + 59)] {
            let ended = both(NoticeKind::RunEnded, &ended(charged, Some(balance)));
            let (english, bangla) = stopped(charged, balance);
            assert!(ended.0.ends_with(english.trim_start_matches("Stopped: ")), "{english} / {}", ended.0);
            assert!(ended.1.ends_with(bangla.trim_start_matches("বন্ধ হয়েছে: ")), "{bangla} / {}", ended.1);
        }
    }

    /// An approval says the balance the farmer may pump now, rounded down as every balance is; a
    /// rejection without a reason says so plainly.
    #[test]
    fn an_approval_says_the_new_balance_and_a_rejection_says_so_plainly() {
        let decided = |approved, balance_seconds| Facts {
            seconds: Some(30 * 60),
            balance_seconds,
            approved: Some(approved),
            ..Facts::default()
        };
        assert_eq!(
            both(NoticeKind::RequestDecided, &decided(true, Some(45 * 60 + 59))),
            pair(
                "Your request for 30 min was approved. Balance 45 min.",
                "আপনার ৩০ মিনিটের অনুরোধ মঞ্জুর হয়েছে। ব্যালেন্স ৪৫ মিনিট।"
            )
        );
        assert_eq!(
            both(NoticeKind::RequestDecided, &decided(true, None)).0,
            "Your request for 30 min was approved.",
            "an approval told before the balance was kept"
        );
        assert_eq!(
            both(NoticeKind::RequestDecided, &decided(false, None)),
            pair("Your request for 30 min was rejected.", "আপনার ৩০ মিনিটের অনুরোধ নামঞ্জুর হয়েছে।")
        );
    }

    /// A rejection with the owner's reason says it, so the farmer knows whether to pay, ask for
    /// fewer minutes or wait.
    #[test]
    fn a_rejection_says_the_owners_reason() {
        let rejected = |reason| Facts {
            seconds: Some(30 * 60),
            approved: Some(false),
            reject_reason: Some(reason),
            ..Facts::default()
        };
        let told = RejectReason::ALL.map(|reason| both(NoticeKind::RequestDecided, &rejected(reason)));
        assert_eq!(
            told,
            [
                pair(
                    "Your request for 30 min was rejected: payment not received.",
                    "আপনার ৩০ মিনিটের অনুরোধ নামঞ্জুর: টাকা পাওয়া যায়নি।"
                ),
                pair(
                    "Your request for 30 min was rejected: the payment does not match the minutes asked.",
                    "আপনার ৩০ মিনিটের অনুরোধ নামঞ্জুর: টাকা ও চাওয়া মিনিট মেলেনি।"
                ),
                pair(
                    "Your request for 30 min was rejected: ask for fewer minutes.",
                    "আপনার ৩০ মিনিটের অনুরোধ নামঞ্জুর: কম মিনিট চান।"
                ),
                pair(
                    "Your request for 30 min was rejected: the pump is closed for now.",
                    "আপনার ৩০ মিনিটের অনুরোধ নামঞ্জুর: পাম্প আপাতত বন্ধ।"
                ),
            ]
        );
        let titles = RejectReason::ALL.map(|reason| {
            let facts = rejected(reason);
            let at = Timestamp(0);
            (
                render(NoticeKind::RequestDecided, &facts, at, Language::English).0,
                render(NoticeKind::RequestDecided, &facts, at, Language::Bangla).0,
            )
        });
        assert!(titles.iter().all(|title| *title == pair("Request rejected", "অনুরোধ নামঞ্জুর")), "{titles:?}");
    }

    /// A reason's label is its clause as a label: one wording, capitalised in English.
    #[test]
    fn a_reasons_label_is_its_clause_capitalised() {
        let labels = RejectReason::ALL
            .map(|reason| (reject_label(reason, Language::English), reject_label(reason, Language::Bangla)));
        assert_eq!(
            labels,
            [
                pair("Payment not received", "টাকা পাওয়া যায়নি"),
                pair("The payment does not match the minutes asked", "টাকা ও চাওয়া মিনিট মেলেনি"),
                pair("Ask for fewer minutes", "কম মিনিট চান"),
                pair("The pump is closed for now", "পাম্প আপাতত বন্ধ"),
            ]
        );
        for reason in RejectReason::ALL {
            assert_eq!(reject_label(reason, Language::Bangla), reject_reason(reason, Language::Bangla));
        }
    }

    #[test]
    fn a_hold_says_its_reason_and_that_no_minutes_are_used() {
        let held = Facts { hold_reason: Some(HoldReason::LoadShedding), ..Facts::default() };
        assert_eq!(
            both(NoticeKind::RunHeld, &held),
            pair(
                "Your run is on hold: load shedding. No minutes are used while it is on hold.",
                "আপনার সেচ থেমে আছে: লোডশেডিং। মিনিট কাটা হচ্ছে না।"
            )
        );
        for reason in HOLDS {
            let (english, bangla) = both(NoticeKind::RunHeld, &Facts { hold_reason: reason, ..Facts::default() });
            assert!(english.ends_with(". No minutes are used while it is on hold."), "{english}");
            assert!(bangla.ends_with("। মিনিট কাটা হচ্ছে না।"), "{bangla}");
            assert_eq!((parts(&english).parts, parts(&bangla).parts), (1, 1), "{english} / {bangla}");
        }
    }

    #[test]
    fn an_owner_is_told_how_long_load_shedding_and_a_silent_device_had_lasted() {
        let since = Timestamp(1_780_000_000_000);
        let facts = Facts { since: Some(since), ..Facts::default() };
        let at = |ms: i64| since + ms;
        let told = |kind, ms| {
            (render(kind, &facts, at(ms), Language::English).1, render(kind, &facts, at(ms), Language::Bangla).1)
        };
        assert_eq!(
            told(NoticeKind::LoadSheddingLong, (3 * 60 + 10) * 60_000 + 59_000),
            pair("Load shedding has lasted 3 h 10 min.", "লোডশেডিং ৩ ঘণ্টা ১০ মিনিট ধরে চলছে।")
        );
        assert_eq!(
            told(NoticeKind::LoadSheddingLong, 2 * 3_600_000),
            pair("Load shedding has lasted 2 h.", "লোডশেডিং ২ ঘণ্টা ধরে চলছে।")
        );
        assert_eq!(
            told(NoticeKind::DeviceOffline, 15 * 60_000),
            pair("The pump's device has not been heard from for 15 min.", "পাম্পের ডিভাইসের ১৫ মিনিট ধরে কোনো সাড়া নেই।")
        );
        // Without its start the length is not known, and not made up.
        assert_eq!(
            render(NoticeKind::LoadSheddingLong, &Facts::default(), at(0), Language::English).1,
            "Load shedding has lasted a long time."
        );
    }

    #[test]
    fn a_device_restart_says_why_in_plain_words() {
        let reset = |reason| both(NoticeKind::DeviceReset, &Facts { reset: Some(reason), ..Facts::default() });
        assert_eq!(
            reset(ResetReason::Watchdog),
            pair(
                "The pump's device restarted: it got stuck and restarted itself.",
                "পাম্পের ডিভাইস রিস্টার্ট হয়েছে: আটকে গিয়ে নিজেই আবার চালু হয়েছে।"
            )
        );
        assert_eq!(
            reset(ResetReason::BrownOut),
            pair("The pump's device restarted: the power dipped.", "পাম্পের ডিভাইস রিস্টার্ট হয়েছে: বিদ্যুৎ কমে গিয়েছিল।")
        );
        assert_eq!(
            reset(ResetReason::Panic),
            pair(
                "The pump's device restarted: its software failed.",
                "পাম্পের ডিভাইস রিস্টার্ট হয়েছে: সফটওয়্যারে সমস্যা হয়েছিল।"
            )
        );
        for reason in [ResetReason::BrownOut, ResetReason::Watchdog, ResetReason::Panic, ResetReason::Other] {
            let (english, bangla) = reset(reason);
            for jargon in ["watchdog", "brown", "crash", "hung", "ওয়াচডগ", "ক্র্যাশ"] {
                assert!(!english.to_lowercase().contains(jargon) && !bangla.contains(jargon), "{english} / {bangla}");
            }
        }
    }

    /// A device as an owner names it (18 letters).
    const DEVICE: &str = "Dokkhin maath pump";

    #[test]
    fn an_owner_is_told_which_device_by_its_name() {
        let named = |reset| Facts { reset, device: Some(DEVICE.to_owned()), ..Facts::default() };
        assert_eq!(
            both(NoticeKind::DeviceReset, &named(Some(ResetReason::Watchdog))),
            pair(
                "The device \"Dokkhin maath pump\" restarted: it got stuck and restarted itself.",
                "\"Dokkhin maath pump\" রিস্টার্ট হলো: আটকে গিয়ে নিজেই আবার চালু হয়েছে।"
            )
        );
        assert_eq!(
            both(NoticeKind::DeviceOffline, &named(None)),
            pair(
                "The device \"Dokkhin maath pump\" has not been heard from.",
                "\"Dokkhin maath pump\" ডিভাইসের কোনো সাড়া নেই।"
            )
        );
        let since = Timestamp(1_780_000_000_000);
        let silent = Facts { since: Some(since), ..named(None) };
        assert_eq!(
            render(NoticeKind::DeviceOffline, &silent, since + 15 * 60_000, Language::Bangla).1,
            "\"Dokkhin maath pump\" ডিভাইসের ১৫ মিনিট ধরে কোনো সাড়া নেই।"
        );
        // The motor that did not start, and the load shedding that lasts, name it too.
        assert_eq!(
            both(NoticeKind::RelayNoFeedback, &named(None)),
            pair(
                "The device \"Dokkhin maath pump\" switched its relay on, but the motor did not confirm it runs. \
                 Please check the pump.",
                "\"Dokkhin maath pump\" রিলে চালু করেছিল, মোটর চলেনি। পাম্পটি দেখুন।"
            )
        );
        let told = |kind, language| render(kind, &silent, since + (3 * 60 + 10) * 60_000, language).1;
        assert_eq!(
            (
                told(NoticeKind::LoadSheddingLong, Language::English),
                told(NoticeKind::LoadSheddingLong, Language::Bangla)
            ),
            pair(
                "Load shedding at the device \"Dokkhin maath pump\" has lasted 3 h 10 min.",
                "\"Dokkhin maath pump\" ডিভাইসে লোডশেডিং ৩ ঘণ্টা ১০ মিনিট ধরে চলছে।"
            )
        );
        // Told before names were kept, they say what they said.
        assert_eq!(
            both(NoticeKind::RelayNoFeedback, &Facts::default()),
            pair(
                "The relay was switched on but the motor did not confirm it runs. Please check the pump.",
                "রিলে চালু হয়েছিল কিন্তু মোটর চলেনি। পাম্পটি দেখুন।"
            )
        );
    }

    /// A board whose commands do not reach it: the owner hears how long, which device, that the
    /// motor is off during a run, and what to look at, in one SMS even at the longest setting.
    #[test]
    fn a_device_without_commands_says_how_long_and_that_the_motor_is_off() {
        let since = Timestamp(1_780_000_000_000);
        let told = |facts: &Facts, minutes: i64| {
            let at = since + minutes * 60_000;
            let english = render(NoticeKind::NoCommandLong, facts, at, Language::English);
            let bangla = render(NoticeKind::NoCommandLong, facts, at, Language::Bangla);
            assert_eq!((english.0.as_str(), bangla.0.as_str()), ("Device not getting commands", "ডিভাইস নির্দেশ পাচ্ছে না"));
            (english.1, bangla.1)
        };
        let named = Facts { since: Some(since), device: Some(DEVICE.to_owned()), ..Facts::default() };
        assert_eq!(
            told(&named, 5),
            pair(
                "The device \"Dokkhin maath pump\" has not received the server's commands for 5 min, so the motor is \
                 off during a run. Check its network.",
                "\"Dokkhin maath pump\" ৫ মিনিট ধরে নির্দেশ পায়নি, মোটর বন্ধ।"
            )
        );
        assert_eq!(
            told(&Facts { since: Some(since), ..Facts::default() }, 65),
            pair(
                "The pump's device has not received the server's commands for 1 h 5 min, so the motor is off during \
                 a run. Check its network.",
                "পাম্পের ডিভাইস ১ ঘণ্টা ৫ মিনিট ধরে নির্দেশ পায়নি, মোটর বন্ধ।"
            )
        );
        assert_eq!(
            told(&Facts { device: Some(DEVICE.to_owned()), ..Facts::default() }, 0).1,
            "\"Dokkhin maath pump\" নির্দেশ পাচ্ছে না, মোটর বন্ধ।",
            "how long is not made up"
        );
        // The longest setting (10,080 minutes), told at once: a minute short of it is the longest.
        let (english, bangla) = told(&named, 10_079);
        assert_eq!((parts(&english).parts, parts(&bangla).parts), (1, 1), "{english} / {bangla}");
    }

    /// Every notice with every reason, with long numbers, in both languages.
    fn every_text(language: Language) -> Vec<(String, String)> {
        let since = Timestamp(1_780_000_000_000);
        let at = since + (23 * 60 + 59) * 60_000;
        let mut facts = vec![Facts::default()];
        facts.extend(HOLDS.map(|hold_reason| Facts { hold_reason, ..Facts::default() }));
        for end_reason in [
            EndReason::UserStop,
            EndReason::BalanceExhausted,
            EndReason::RequestedMinutesUsed,
            EndReason::AdminStop,
            EndReason::Suspended,
            EndReason::InsufficientBalance,
            EndReason::LeftQueue,
        ] {
            for (seconds, balance_seconds) in [(0, None), (1440 * 60 - 1, Some(99_999 * 60 + 59)), (1, None)] {
                facts.push(Facts {
                    end_reason: Some(end_reason),
                    seconds: Some(seconds),
                    balance_seconds,
                    ..Facts::default()
                });
            }
        }
        for reset in [ResetReason::BrownOut, ResetReason::Watchdog, ResetReason::Panic, ResetReason::Other] {
            facts.push(Facts { reset: Some(reset), ..Facts::default() });
            facts.push(Facts { reset: Some(reset), device: Some(DEVICE.to_owned()), ..Facts::default() });
        }
        facts.push(Facts {
            seconds: Some(10_080 * 60),
            balance_seconds: Some(99_999 * 60 + 59),
            approved: Some(true),
            device: Some(DEVICE.to_owned()),
            ..Facts::default()
        });
        facts.push(Facts {
            seconds: Some(10_080 * 60),
            balance_seconds: Some(599),
            approved: Some(true),
            since: Some(since),
            who: Some("Abdul Karim".to_owned()),
            device: Some(DEVICE.to_owned()),
            request: Some(pumppilot_engine::RequestId::new()),
            ..Facts::default()
        });
        // A rejection of the most minutes a request may ask for, with every reason and none.
        for reject_reason in RejectReason::ALL.map(Some).into_iter().chain([None]) {
            facts.push(Facts { seconds: Some(10_080 * 60), approved: Some(false), reject_reason, ..Facts::default() });
        }
        let mut texts = Vec::new();
        for facts in &facts {
            for kind in NoticeKind::ALL.into_iter().filter(|kind| *kind != NoticeKind::SmsReply) {
                let (title, text) = render(kind, facts, at, language);
                // As an SMS says it where the server takes texts back: with the number to answer by.
                let text = match answer_by_sms(kind, facts, language) {
                    Some(answer) => format!("{text} {answer}"),
                    None => text,
                };
                texts.push((title, text));
            }
        }
        // The answer to a STOP, which stands for the run's end.
        for (charged, balance) in [(0, 0), (0, 99_999 * 60 + 59), (1440 * 60 - 1, 99_999 * 60 + 59)] {
            texts.push((String::new(), run_stopped(charged, balance, language)));
        }
        texts
    }

    #[test]
    fn every_text_is_one_sms() {
        for language in [Language::English, Language::Bangla] {
            for (_, text) in every_text(language) {
                let size = parts(&text);
                assert_eq!(size.parts, 1, "{text}: {} units", size.units);
            }
        }
    }

    /// A Bangla sentence writes its numbers in Bangla digits, and a farmer's or a device's name
    /// as the owner typed it.
    #[test]
    fn names_keep_their_digits_in_bangla() {
        let asks = Facts { seconds: Some(45 * 60), who: Some("Karim 2".to_owned()), ..Facts::default() };
        assert_eq!(both(NoticeKind::RequestNew, &asks).1, "Karim 2 ৪৫ মিনিট চান।");
        let silent = Facts { device: Some("Pump 2".to_owned()), ..Facts::default() };
        let (_, bangla) = both(NoticeKind::DeviceOffline, &silent);
        assert!(bangla.contains("\"Pump 2\"") && !bangla.contains("Pump ২"), "{bangla}");
    }

    #[test]
    fn bangla_says_pumping_in_bangla_words_with_bangla_digits() {
        for (title, text) in every_text(Language::Bangla) {
            for words in [&title, &text] {
                // Bangla vowel signs are not alphanumeric: words end at spaces and punctuation.
                let mut split = words.split(|c: char| c.is_whitespace() || c.is_ascii_punctuation() || c == '।');
                let english_run = split.any(|word| word.starts_with("রান"));
                assert!(!english_run, "'run' in Bangla letters: {words}");
                assert!(!words.chars().any(|c| c.is_ascii_digit()), "{words}");
            }
        }
        let resumed = render(NoticeKind::RunResumed, &Facts::default(), Timestamp(0), Language::Bangla);
        assert_eq!(resumed, pair("সেচ আবার চলছে", "আপনার সেচ আবার চলছে।"));
    }
}
