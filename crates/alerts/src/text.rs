//! What a notification says, in the person's language: one sentence made from its kind and facts.
//! The bell, push and SMS all show this text.

use pumppilot_engine::{EndReason, Facts, HoldReason, NoticeKind, ResetReason};

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

/// Whole minutes of some seconds, rounded down (a balance) or up (a charge), as the screens show.
fn minutes(seconds: i64) -> i64 {
    seconds.max(0) / 60
}

fn hold_reason(reason: Option<HoldReason>, language: Language) -> &'static str {
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
        (Language::Bangla, Some(StoreUnavailable)) => "সার্ভার রান লিখতে পারছে না",
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

fn reset_reason(reason: Option<ResetReason>, language: Language) -> &'static str {
    use ResetReason::*;
    match (language, reason) {
        (Language::English, Some(BrownOut)) => "the voltage dropped",
        (Language::English, Some(Watchdog)) => "it hung (watchdog)",
        (Language::English, Some(Panic)) => "its software crashed",
        (Language::English, _) => "an unknown cause",
        (Language::Bangla, Some(BrownOut)) => "ভোল্টেজ কমে গিয়েছিল",
        (Language::Bangla, Some(Watchdog)) => "এটি আটকে গিয়েছিল (ওয়াচডগ)",
        (Language::Bangla, Some(Panic)) => "সফটওয়্যার ক্র্যাশ করেছে",
        (Language::Bangla, _) => "অজানা কারণে",
    }
}

/// The notification's title (a few words) and its sentence.
pub fn render(kind: NoticeKind, facts: &Facts, language: Language) -> (String, String) {
    use Language::*;
    use NoticeKind::*;
    let used = minutes(facts.seconds.unwrap_or(0));
    let balance = minutes(facts.balance_seconds.unwrap_or(0));
    let who = facts.who.clone().unwrap_or_default();
    let (title, body) = match (language, kind) {
        (English, RunStarted) => ("Your turn".into(), "Your turn came: the pump is starting for you.".into()),
        (English, RunHeld) => {
            ("Run on hold".into(), format!("Your run is on hold: {}.", hold_reason(facts.hold_reason, language)))
        }
        (English, RunResumed) => ("Run resumed".into(), "Your run is running again.".into()),
        (English, RunEnded) => (
            "Run ended".into(),
            format!(
                "Your run ended ({}): {used} min used, {balance} min left.",
                end_reason(facts.end_reason, language)
            ),
        ),
        (English, BalanceLow) => ("Balance low".into(), format!("Only {balance} min left. Ask the owner for more.")),
        (English, RequestDecided) => match facts.approved {
            Some(true) => ("Request approved".into(), format!("Your request for {used} min was approved.")),
            _ => ("Request rejected".into(), format!("Your request for {used} min was rejected.")),
        },
        (English, RequestNew) => ("New request".into(), format!("{who} asks for {used} min.")),
        (English, DeviceOffline) => ("Device offline".into(), "The pump's device has not been heard from.".into()),
        (English, LoadSheddingLong) => ("Long load shedding".into(), "Load shedding has lasted a long time.".into()),
        (English, DeviceReset) => (
            "Device restarted".into(),
            format!("The pump's device restarted: {}.", reset_reason(facts.reset, language)),
        ),
        (English, RelayNoFeedback) => (
            "Motor did not start".into(),
            "The relay was switched on but the motor did not confirm it runs. Please check the pump.".into(),
        ),
        (English, StoreTrouble) => (
            "Server trouble".into(),
            "The server could not write its records for a while; runs were held meanwhile. It works again.".into(),
        ),
        (Bangla, RunStarted) => ("আপনার পালা".into(), "আপনার পালা এসেছে: পাম্প চালু হচ্ছে।".into()),
        (Bangla, RunHeld) => {
            ("রান থেমে আছে".into(), format!("আপনার রান থেমে আছে: {}।", hold_reason(facts.hold_reason, language)))
        }
        (Bangla, RunResumed) => ("রান আবার চলছে".into(), "আপনার রান আবার চলছে।".into()),
        (Bangla, RunEnded) => (
            "রান শেষ".into(),
            format!("আপনার রান শেষ ({}): {used} মিনিট খরচ, {balance} মিনিট বাকি।", end_reason(facts.end_reason, language)),
        ),
        (Bangla, BalanceLow) => ("ব্যালেন্স কম".into(), format!("মাত্র {balance} মিনিট বাকি। মালিকের কাছে আরও চান।")),
        (Bangla, RequestDecided) => match facts.approved {
            Some(true) => ("অনুরোধ মঞ্জুর".into(), format!("আপনার {used} মিনিটের অনুরোধ মঞ্জুর হয়েছে।")),
            _ => ("অনুরোধ নামঞ্জুর".into(), format!("আপনার {used} মিনিটের অনুরোধ নামঞ্জুর হয়েছে।")),
        },
        (Bangla, RequestNew) => ("নতুন অনুরোধ".into(), format!("{who} {used} মিনিট চান।")),
        (Bangla, DeviceOffline) => ("ডিভাইস অফলাইন".into(), "পাম্পের ডিভাইসের কোনো সাড়া নেই।".into()),
        (Bangla, LoadSheddingLong) => ("দীর্ঘ লোডশেডিং".into(), "লোডশেডিং অনেকক্ষণ ধরে চলছে।".into()),
        (Bangla, DeviceReset) => {
            ("ডিভাইস রিস্টার্ট".into(), format!("পাম্পের ডিভাইস রিস্টার্ট হয়েছে: {}।", reset_reason(facts.reset, language)))
        }
        (Bangla, RelayNoFeedback) => ("মোটর চালু হয়নি".into(), "রিলে চালু হয়েছিল কিন্তু মোটর চলেনি। পাম্পটি দেখুন।".into()),
        (Bangla, StoreTrouble) => {
            ("সার্ভারে সমস্যা".into(), "সার্ভার কিছুক্ষণ রেকর্ড লিখতে পারেনি; তখন রান থেমে ছিল। এখন আবার চলছে।".into())
        }
        (English, SmsReply) => ("SMS answer".into(), facts.text.clone().unwrap_or_default()),
        (Bangla, SmsReply) => ("এসএমএস উত্তর".into(), facts.text.clone().unwrap_or_default()),
    };
    (title, digits(&body, language))
}
