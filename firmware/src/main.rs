//! The device at the pump. It moves pin levels and bytes in and out of `pumppilot-controller`,
//! which makes every decision; nothing here decides whether the motor runs.
//!
//! Order at boot, for safety: both motor outputs are driven OFF first, then the hardware watchdog
//! is armed, before the heap, the scheduler or WiFi (a hang anywhere after that resets the chip).
//! The reason for the last reset is read and handed to the controller for the first poll. The
//! control loop (this `main`, every `timing::TICK_MS`) reads the inputs, lets the controller
//! drive the relay, drives both outputs, and feeds the watchdog; it runs whatever the network
//! does, so an expired lease or an unsafe input switches OFF at once even while an HTTP request
//! hangs. The panic handler drives both outputs OFF and resets.
#![no_std]
#![no_main]

mod board;
mod config;
mod led;
mod net;
mod ota;
mod panic;
mod rfid;

use core::cell::RefCell;

use embassy_executor::Spawner;
use embassy_sync::{
    blocking_mutex::{Mutex, raw::CriticalSectionRawMutex},
    signal::Signal,
};
use embassy_time::{Duration, Instant, Ticker};
use esp_hal::{
    clock::CpuClock,
    gpio::{Input, InputConfig, Level, Output, OutputConfig, Pull},
    rtc_cntl::{Rtc, RwdtStage},
    timer::timg::TimerGroup,
};
use esp_println::println;
use pumppilot_controller::{Controller, Millis, pin_level, protocol::ResetReason, timing};

esp_bootloader_esp_idf::esp_app_desc!();

/// The whole decision state, shared by the control loop, the poll task and the card task. Each
/// use is a short critical section; nothing awaits while holding it.
static CONTROLLER: Mutex<CriticalSectionRawMutex, RefCell<Controller>> =
    Mutex::new(RefCell::new(Controller::new(config::SETTINGS)));

/// Raised by the control loop when the inputs or the relay changed since the last report.
pub static REPORT_NOW: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// How often the control loop runs.
const TICK: Duration = Duration::from_millis(timing::TICK_MS as u64);
/// The watchdog resets the chip when the control loop has not fed it for this long (the relay
/// may stay as it was for at most this long if the firmware hangs).
const WATCHDOG_MS: u64 = timing::WATCHDOG_MS as u64;

/// The device's monotonic clock.
pub fn now() -> Millis {
    Millis(Instant::now().as_millis())
}

/// Runs `f` on the controller inside a short critical section.
pub fn with_controller<R>(f: impl FnOnce(&mut Controller) -> R) -> R {
    CONTROLLER.lock(|controller| f(&mut controller.borrow_mut()))
}

/// Why the chip started, in the protocol's words.
fn reset_reason() -> ResetReason {
    use esp_hal::rtc_cntl::SocResetReason as Soc;
    if panic::take_panic_mark() {
        return ResetReason::Panic;
    }
    match esp_hal::system::reset_reason() {
        Some(Soc::ChipPowerOn) => ResetReason::PowerOn,
        Some(Soc::SysBrownOut) => ResetReason::BrownOut,
        Some(
            Soc::CoreMwdt0
            | Soc::CoreMwdt1
            | Soc::CoreRtcWdt
            | Soc::Cpu0Mwdt0
            | Soc::Cpu0RtcWdt
            | Soc::SysRtcWdt
            | Soc::Cpu0Mwdt1
            | Soc::SysSuperWdt,
        ) => ResetReason::Watchdog,
        Some(Soc::CoreSw | Soc::Cpu0Sw) => ResetReason::Software,
        _ => ResetReason::Other,
    }
}

const fn level(high: bool) -> Level {
    if high { Level::High } else { Level::Low }
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    // 1. Motor outputs OFF, before anything else.
    let pins = board::pins::take_pins!(peripherals);
    let wiring_ok = pins.match_profile();
    let off = |active_high| level(pin_level(false, active_high));
    let mut relay = Output::new(pins.relay, off(config::RELAY_ACTIVE_HIGH), OutputConfig::default());
    let mut opto = Output::new(pins.opto, off(config::OPTO_ACTIVE_HIGH), OutputConfig::default());
    // The panic path writes the registers of the profile's pin numbers: they must be these pins.
    assert!(wiring_ok, "board profile: pin numbers do not match the pins taken");

    // 2. The hardware watchdog, before anything that could hang (heap, scheduler, WiFi); only
    // the control loop feeds it from then on.
    let mut rtc = Rtc::new(peripherals.RTC_TIMER);
    rtc.rwdt.set_timeout(RwdtStage::Stage0, esp_hal::time::Duration::from_millis(WATCHDOG_MS));
    rtc.rwdt.enable();
    let reset = reset_reason();
    with_controller(|controller| {
        controller.set_reset_reason(reset);
        if let Some(secret) = config::LINK_SECRET {
            controller.set_link_secret(secret);
        }
    });

    // 3. Inputs, pulled towards their unsafe meaning: a broken wire reads "grid down" and
    // "not ready", and the motor stays OFF.
    let towards = |high: bool| if high { Pull::Up } else { Pull::Down };
    let load_shedding =
        Input::new(pins.load_shedding, InputConfig::default().with_pull(towards(config::LOAD_SHEDDING_ACTIVE_HIGH)));
    let ready = Input::new(pins.ready, InputConfig::default().with_pull(towards(!config::READY_ACTIVE_HIGH)));
    let led = Output::new(pins.led, level(!board::pins::LED_ACTIVE_HIGH), OutputConfig::default());
    // The feedback input (when fitted) rests at "not running".
    let feedback = config::FEEDBACK
        .then(|| Input::new(pins.feedback, InputConfig::default().with_pull(towards(!config::FEEDBACK_ACTIVE_HIGH))));

    println!("{} ({}) starting after {:?}; motor outputs OFF", config::FIRMWARE, board::pins::BOARD, reset);
    rtc.rwdt.feed();

    // 4. Heap and scheduler (WiFi needs both).
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 32 * 1024);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    // 5. The tasks that only move bytes: WiFi, the network stack, polls, cards, the status LED.
    spawner.spawn(led::led_task(led).expect("led task"));
    let stack = net::start(&spawner, peripherals.WIFI);
    rtc.rwdt.feed();
    match config::Server::from_config() {
        Ok(server) => {
            let server = net::SERVER.init(server);
            spawner.spawn(net::poll_task(stack, server).expect("poll task"));
            let reader =
                rfid::Reader::new(peripherals.SPI2, pins.rfid_sck, pins.rfid_mosi, pins.rfid_miso, pins.rfid_cs);
            spawner.spawn(rfid::card_task(stack, server, reader).expect("card task"));
            spawner.spawn(ota::ota_task(stack, server, peripherals.FLASH).expect("update task"));
        }
        Err(err) => println!("PUMPPILOT_SERVER is not usable ({err:?}): this device will never poll; motor stays OFF"),
    }

    // 6. The control loop, which alone feeds the watchdog.
    rtc.rwdt.feed();
    let mut ticker = Ticker::every(TICK);
    let mut was_on = false;
    loop {
        let at = now();
        let (decision, report_now) = with_controller(|controller| {
            controller.sense(at, load_shedding.is_high(), ready.is_high());
            if let Some(feedback) = &feedback {
                controller.sense_feedback(at, feedback.is_high());
            }
            (controller.drive(at), controller.report_now(at))
        });
        let on = decision.is_on();
        let relay_level = level(pin_level(on, config::RELAY_ACTIVE_HIGH));
        let opto_level = level(pin_level(on, config::OPTO_ACTIVE_HIGH));
        relay.set_level(relay_level);
        opto.set_level(opto_level);
        if on != was_on {
            println!("relay {} at {} ms ({:?})", if on { "ON" } else { "OFF" }, at.0, decision);
            was_on = on;
        }
        if report_now {
            REPORT_NOW.signal(());
        }
        // Healthy: both outputs really hold the level decided. Otherwise stop feeding, and the
        // watchdog resets the chip (outputs OFF at reset and at boot).
        if relay.output_level() == relay_level && opto.output_level() == opto_level {
            rtc.rwdt.feed();
        }
        ticker.next().await;
    }
}
