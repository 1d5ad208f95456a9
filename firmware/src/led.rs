//! The status LED: the network state when idle, a short pattern after each card tap.
//!
//! | pattern | meaning |
//! |---|---|
//! | short flash every 2 s | no WiFi / no address |
//! | blinking 1 Hz | on the network, the server does not answer (or an answer did not check) |
//! | fast blinking, 4 Hz | the server refuses the key or the signature |
//! | steady on | polling normally |
//! | on, with a short dark gap every 2 s | setup mode: join `PumpPilot-XXXX` and open the setup page |
//! | fast blinking, 5 Hz, in setup mode | settings sent: press the button to save them (60 s); back to the pattern above when the time is up: do not press then |
//!
//! The network patterns are the controller's (`pumppilot_controller::status::blink`), and so are
//! setup mode's (`setup::PendingSave::blink`).
//! | one long flash (1 s) | card: run started |
//! | two flashes | card: joined the queue |
//! | three flashes | card: run stopped |
//! | five fast flashes | card: denied |
//! | ten very fast flashes | card: no answer from the server |

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_futures::select::{Either3, select3};
use embassy_sync::{blocking_mutex::raw::CriticalSectionRawMutex, signal::Signal};
use embassy_time::{Duration, Timer};
use esp_hal::gpio::{Level, Output};
use pumppilot_controller::CardFeedback;

use crate::{board::pins::LED_ACTIVE_HIGH, net::NetState, with_controller};

/// Set at boot in setup mode: the LED shows setup mode's patterns and nothing else.
pub static SETUP_MODE: AtomicBool = AtomicBool::new(false);

static CARD: Signal<CriticalSectionRawMutex, CardFeedback> = Signal::new();
/// Raised when the pattern changed: the LED starts the new one at once.
static REDRAW: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// Starts the current pattern at once (settings sent in setup mode: the fast blinking shows
/// without waiting for the end of the slow pattern).
pub fn redraw() {
    REDRAW.signal(());
}

/// Shows a card tap's outcome (interrupts the network pattern).
pub fn show_card(feedback: CardFeedback) {
    CARD.signal(feedback);
}

/// (flashes, on ms, off ms) for a card outcome.
const fn pattern(feedback: CardFeedback) -> (u8, u64, u64) {
    match feedback {
        CardFeedback::Started => (1, 1_000, 300),
        CardFeedback::Queued => (2, 250, 250),
        CardFeedback::Stopped => (3, 250, 250),
        CardFeedback::Denied => (5, 100, 100),
        CardFeedback::Error => (10, 50, 50),
    }
}

fn set(led: &mut Output<'static>, on: bool) {
    led.set_level(if on == LED_ACTIVE_HIGH { Level::High } else { Level::Low });
}

/// Plays a card outcome's pattern.
async fn play(led: &mut Output<'static>, feedback: CardFeedback) {
    let (flashes, on_ms, off_ms) = pattern(feedback);
    set(led, false);
    Timer::after(Duration::from_millis(300)).await;
    for _ in 0..flashes {
        set(led, true);
        Timer::after(Duration::from_millis(on_ms)).await;
        set(led, false);
        Timer::after(Duration::from_millis(off_ms)).await;
    }
    Timer::after(Duration::from_millis(500)).await;
}

/// What cut a pattern short.
enum Cut {
    Card(CardFeedback),
    Redraw,
}

/// Holds the LED at `on` for `ms`, or until a card outcome arrives or the pattern changes.
async fn hold(led: &mut Output<'static>, on: bool, ms: u64) -> Option<Cut> {
    set(led, on);
    match select3(Timer::after(Duration::from_millis(ms)), CARD.wait(), REDRAW.wait()).await {
        Either3::First(()) => None,
        Either3::Second(feedback) => Some(Cut::Card(feedback)),
        Either3::Third(()) => Some(Cut::Redraw),
    }
}

#[embassy_executor::task]
pub async fn led_task(mut led: Output<'static>) {
    loop {
        let wifi = NetState::get() != NetState::Offline;
        let blink = if SETUP_MODE.load(Ordering::Relaxed) {
            crate::portal::blink(crate::now())
        } else {
            pumppilot_controller::status::blink(wifi, with_controller(|controller| controller.link_state()))
        };
        let (on_ms, off_ms) = (u64::from(blink.on_ms), u64::from(blink.off_ms));
        let mut cut = hold(&mut led, true, on_ms).await;
        if cut.is_none() && off_ms > 0 {
            cut = hold(&mut led, false, off_ms).await;
        }
        if let Some(Cut::Card(feedback)) = cut {
            play(&mut led, feedback).await;
        }
    }
}
