//! The device at the pump. It moves pin levels and bytes in and out of `pumppilot-controller`,
//! which makes every decision; nothing here decides whether the motor runs.
//!
//! Order at boot, for safety: first of all, a new image that keeps crashing before it can confirm
//! itself (its third panic or watchdog in a row, `FaultedBoots`) goes back to the previous image,
//! whatever bootloader the board carries. Then the settings are read from flash (the relay's OFF
//! level is one of them: a partition table and a 1 KiB record, well under a millisecond, while
//! the motor pins are still the high-impedance inputs they are at reset), then both motor outputs
//! are driven OFF, then the hardware watchdog is armed, before the heap, the scheduler or WiFi (a
//! hang anywhere after that resets the chip). Without usable settings (no record in flash, none built in) the
//! relay's OFF level is unknown: its pin is left an input (the wiring's pull resistor holds it
//! OFF) and the device opens setup mode (`portal.rs`), unless the image came with an update and
//! is not confirmed yet: then it lost the settings, and it goes back to the previous image
//! (`BootMode`).
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
mod mqtt;
mod net;
mod ota;
mod panic;
mod portal;
mod rfid;
mod settings;

use core::cell::RefCell;

use embassy_executor::Spawner;
use embassy_sync::{
    blocking_mutex::{Mutex, raw::CriticalSectionRawMutex},
    signal::Signal,
};
use embassy_time::{Duration, Instant, Ticker};
use esp_bootloader_esp_idf::partitions::FlashStorage;
use esp_hal::{
    clock::CpuClock,
    gpio::{Input, InputConfig, Level, Output, OutputConfig, Pull},
    rtc_cntl::{Rtc, RwdtStage},
    timer::timg::TimerGroup,
};
use esp_println::println;
use pumppilot_controller::{
    BootMode, Controller, Millis, Settings, pin_level,
    protocol::ResetReason,
    setup::{DeviceSettings, SetupButton, Transport},
    timing,
};
use static_cell::StaticCell;

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

/// The settings this boot runs with (from flash, or built in), for the tasks.
static DEVICE: StaticCell<DeviceSettings> = StaticCell::new();

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    let mut flash = FlashStorage::new(peripherals.FLASH);
    // 0. A new image that keeps crashing goes back to the previous one before it reads anything
    // else, so that a fault in any later step of the boot is counted. The motor pins are still
    // high-impedance inputs, as at reset: the relay OFF.
    let reset = reset_reason();
    let unconfirmed = ota::unconfirmed(&mut flash);
    let faulted = ota::count_faulted_boot(reset, unconfirmed);
    if faulted.crash_loop() {
        println!("OTA: the new image faulted {} times in a row: back to the previous image", faulted.0);
        if ota::mark_invalid(&mut flash) {
            esp_hal::system::software_reset();
        }
        println!("OTA: could not mark the image invalid");
    }

    // 1. The settings: the record in flash, else the built-in values.
    let chosen = settings::choose(&mut flash);
    let asked_for_setup = settings::take_setup_request();

    // 2. Motor outputs OFF. The relay's OFF level is a setting: without settings its pin stays an
    // input (setup mode; the relay's pull resistor holds it OFF).
    let pins = board::pins::take_pins!(peripherals);
    let wiring_ok = pins.match_profile();
    let off = |active_high| level(pin_level(false, active_high));
    let relay_active_high = chosen.map(|(device, _)| device.relay_active_high);
    if let Some(high) = relay_active_high {
        settings::set_relay_active_high(high);
    }
    let mut relay = relay_active_high.map(|high| Output::new(pins.relay, off(high), OutputConfig::default()));
    let mut opto = Output::new(pins.opto, off(config::OPTO_ACTIVE_HIGH), OutputConfig::default());
    // The panic path writes the registers of the profile's pin numbers: they must be these pins.
    assert!(wiring_ok, "board profile: pin numbers do not match the pins taken");

    // 3. The hardware watchdog, before anything that could hang (heap, scheduler, WiFi); only
    // the control loop feeds it from then on.
    let mut rtc = Rtc::new(peripherals.RTC_TIMER);
    rtc.rwdt.set_timeout(RwdtStage::Stage0, esp_hal::time::Duration::from_millis(WATCHDOG_MS));
    rtc.rwdt.enable();
    // A new image that lost the settings (nobody pressed the button) goes back to the previous
    // image rather than wait in setup mode for a site visit; the outputs OFF first.
    let mode = BootMode::choose(unconfirmed, chosen.is_some(), asked_for_setup);
    if mode == BootMode::RollBack {
        println!("new image without settings: back to the previous image");
        board::outputs_off_raw();
        if ota::mark_invalid(&mut flash) {
            esp_hal::system::software_reset();
        }
        println!("OTA: could not mark the image invalid; setup mode");
    }
    let setup_mode = mode != BootMode::Run;
    // The inputs' active levels: the settings', else the build's (setup mode without settings:
    // nothing is decided from them, the relay stays OFF without a command).
    let (shedding_high, ready_high) = match chosen {
        Some((device, _)) => (device.load_shedding_active_high, device.ready_active_high),
        None => (config::LOAD_SHEDDING_ACTIVE_HIGH, config::READY_ACTIVE_HIGH),
    };
    with_controller(|controller| {
        *controller = Controller::new(Settings {
            load_shedding_active_high: shedding_high,
            ready_active_high: ready_high,
            ..config::SETTINGS
        });
        controller.set_reset_reason(reset);
        if let Some(secret) = chosen.and_then(|(device, _)| device.link_secret) {
            controller.set_link_secret(secret);
        }
    });

    // 4. Inputs, pulled towards their unsafe meaning: a broken wire reads "grid down" and
    // "not ready", and the motor stays OFF.
    let towards = |high: bool| if high { Pull::Up } else { Pull::Down };
    let load_shedding = Input::new(pins.load_shedding, InputConfig::default().with_pull(towards(shedding_high)));
    let ready = Input::new(pins.ready, InputConfig::default().with_pull(towards(!ready_high)));
    let led = Output::new(pins.led, level(!board::pins::LED_ACTIVE_HIGH), OutputConfig::default());
    // The feedback input (when fitted) rests at "not running".
    let feedback = config::FEEDBACK
        .then(|| Input::new(pins.feedback, InputConfig::default().with_pull(towards(!config::FEEDBACK_ACTIVE_HIGH))));
    // The setup button pulls its pin to GND while pressed.
    let button = Input::new(pins.button, InputConfig::default().with_pull(Pull::Up));

    println!(
        "{} ({}) starting after {:?}; motor outputs OFF; {}",
        config::FIRMWARE,
        board::pins::BOARD,
        reset,
        match (chosen, asked_for_setup) {
            (None, _) => "no settings: setup mode",
            (Some(_), true) => "setup button: setup mode",
            (Some((_, settings::Source::Flash)), false) => "settings from flash",
            (Some((_, settings::Source::Build)), false) => "settings built in",
        }
    );
    rtc.rwdt.feed();

    // 5. Heap and scheduler (WiFi needs both).
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 32 * 1024);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    // 6. The tasks that only move bytes. Setup mode: the access point and the setup page, and no
    // poll task (so no command, so the relay stays OFF). Normal mode: WiFi, polls, cards, updates.
    led::SETUP_MODE.store(setup_mode, core::sync::atomic::Ordering::Relaxed);
    spawner.spawn(led::led_task(led).expect("led task"));
    match chosen {
        Some((device, _)) if !setup_mode => {
            let device: &'static DeviceSettings = DEVICE.init(device);
            let stack = net::start(&spawner, peripherals.WIFI, device);
            // The radio is on now, so the hardware RNG draws on true noise: this boot's MQTT
            // reports are numbered from a random `ref`, so a command naming a report of an earlier
            // boot (a retained message, a server that missed the reboot) names none of this boot's;
            // and its signed requests are counted from a random point, so an answer captured at an
            // earlier boot checks for none of this boot's requests.
            let rng = esp_hal::rng::Rng::new();
            with_controller(|controller| {
                controller.set_first_ref(rng.random());
                controller.set_first_counter(u64::from(rng.random()) << 32 | u64::from(rng.random()));
            });
            rtc.rwdt.feed();
            let server: &'static config::Server = net::SERVER.init(config::Server::new(device));
            // The inputs go to the server and its commands come back by HTTP polls or an MQTT
            // session; card taps and updates go over HTTP either way.
            match device.transport {
                Transport::Http => spawner.spawn(net::poll_task(stack, server).expect("poll task")),
                Transport::Mqtt => spawner.spawn(mqtt::mqtt_task(stack, device).expect("MQTT task")),
            }
            let reader =
                rfid::Reader::new(peripherals.SPI2, pins.rfid_sck, pins.rfid_mosi, pins.rfid_miso, pins.rfid_cs);
            spawner.spawn(rfid::card_task(stack, server, reader).expect("card task"));
            spawner.spawn(ota::ota_task(stack, server, flash).expect("update task"));
        }
        _ => {
            // The page shows the active levels of a record saved on this board (not secret: the
            // wiring's), never the values built into the image: those are defaults nobody chose
            // for this board, and a wrong relay level runs the motor where the device means OFF.
            let stored = match chosen {
                Some((device, settings::Source::Flash)) => Some(device.levels()),
                _ => None,
            };
            portal::start(&spawner, peripherals.WIFI, flash, chosen.is_some(), stored)
        }
    }

    // 7. The control loop, which alone feeds the watchdog. In setup mode it runs the same way:
    // no command ever arrives, so the controller's rule keeps the relay OFF.
    rtc.rwdt.feed();
    let mut ticker = Ticker::every(TICK);
    let mut was_on = false;
    let mut setup_button = SetupButton::new();
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
        let opto_level = level(pin_level(on, config::OPTO_ACTIVE_HIGH));
        opto.set_level(opto_level);
        let mut relay_holds = true;
        if let (Some(relay), Some(high)) = (relay.as_mut(), relay_active_high) {
            let relay_level = level(pin_level(on, high));
            relay.set_level(relay_level);
            relay_holds = relay.output_level() == relay_level;
        }
        if on != was_on {
            println!("relay {} at {} ms ({:?})", if on { "ON" } else { "OFF" }, at.0, decision);
            was_on = on;
        }
        if report_now {
            REPORT_NOW.signal(());
        }
        // In setup mode the button saves settings sent from the page (a press within 60 s of
        // sending them, `portal::button`). Otherwise a long press restarts into setup mode (the
        // outputs OFF first; the reset and the boot path keep them so).
        if setup_mode {
            portal::button(at, button.is_low());
        } else if setup_button.sample(at, button.is_low()) {
            println!("setup button held 5 s: restarting into setup mode");
            board::outputs_off_raw();
            settings::request_setup_mode();
            esp_hal::system::software_reset();
        }
        // Healthy: the outputs really hold the level decided. Otherwise stop feeding, and the
        // watchdog resets the chip (outputs OFF at reset and at boot).
        if relay_holds && opto.output_level() == opto_level {
            rtc.rwdt.feed();
        }
        ticker.next().await;
    }
}
