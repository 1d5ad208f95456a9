//! The RC522 card reader: a card held to it becomes one tap (`POST /api/esp32/rfid`), and the
//! server's answer a pattern on the status LED. The controller decides what counts as a tap.
//!
//! The reader runs on blocking SPI in the same executor as the control loop, so every reader
//! operation has a time budget (`Budgeted`): the mfrc522 driver polls some registers in loops
//! without a bound, and a reader that is missing or broken must never stall the motor decision.
//!
//! A reader that does not answer at boot, or stops answering later (contactor noise can upset
//! an RC522), is set up again with a growing pause (1 s doubling up to a minute), and the
//! controller reports it (`reader: ABSENT`) until it answers again.

use core::sync::atomic::{AtomicU32, Ordering};

use embassy_net::{
    Stack,
    tcp::client::{TcpClient, TcpClientState},
};
use embassy_time::{Duration, Instant, Timer};
use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};
use embedded_hal_bus::spi::ExclusiveDevice;
use esp_hal::{
    Blocking,
    delay::Delay,
    gpio::{AnyPin, Level, Output, OutputConfig},
    peripherals::SPI2,
    spi::{
        Mode,
        master::{Config as SpiConfig, Spi},
    },
    time::Rate,
};
use esp_println::println;
use mfrc522::{Initialized, Mfrc522, comm::blocking::spi::SpiInterface};
use pumppilot_controller::{
    CardFeedback,
    protocol::{CARD_PATH, ReaderState, json},
    timing,
};
use static_cell::StaticCell;

use crate::{
    config::Server,
    led,
    net::{Http, Posted, Signing},
    now, with_controller,
};

/// How often the reader looks for a card.
const SCAN_EVERY: Duration = Duration::from_millis(150);
/// Longest a single reader operation (init, or one look for a card) may block.
const BUDGET_MS: u32 = 60;
/// A tap whose request failed this soon is sent again: the server answers a repeat of the same
/// card within 2 s with its first answer, so a retry never undoes a tap.
const RETRY_WITHIN: Duration = Duration::from_millis(1_000);
const TAP_TIMEOUT: Duration = Duration::from_millis(timing::CARD_REQUEST_TIMEOUT_MS as u64);
/// The first pause before setting up a silent reader again; it doubles up to `REINIT_MAX`.
const REINIT_FIRST: Duration = Duration::from_secs(1);
const REINIT_MAX: Duration = Duration::from_secs(60);
/// Check that the reader still answers every this many scans (about every 3 s).
const CHECK_EVERY_SCANS: u32 = 20;

type Device = ExclusiveDevice<Spi<'static, Blocking>, Output<'static>, Delay>;
type Rc522<'d> = Mfrc522<SpiInterface<Budgeted<&'d mut Device>, mfrc522::comm::blocking::spi::DummyDelay>, Initialized>;

/// The end of the current operation's budget, in ms since boot (wrapping).
static DEADLINE_MS: AtomicU32 = AtomicU32::new(0);

fn clock_ms() -> u32 {
    Instant::now().as_millis() as u32
}

fn arm_budget() {
    DEADLINE_MS.store(clock_ms().wrapping_add(BUDGET_MS), Ordering::Relaxed);
}

/// An SPI device whose transfers fail once the armed budget has run out.
pub struct Budgeted<D>(D);

#[derive(Debug)]
pub enum BudgetedError<E> {
    Bus(E),
    OutOfTime,
}

impl<E: embedded_hal::spi::Error> embedded_hal::spi::Error for BudgetedError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            BudgetedError::Bus(err) => err.kind(),
            BudgetedError::OutOfTime => ErrorKind::Other,
        }
    }
}

impl<D: SpiDevice> ErrorType for Budgeted<D> {
    type Error = BudgetedError<D::Error>;
}

impl<D: SpiDevice> SpiDevice for Budgeted<D> {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        // Past the deadline when the wrapping difference is "positive".
        if (clock_ms().wrapping_sub(DEADLINE_MS.load(Ordering::Relaxed)) as i32) > 0 {
            return Err(BudgetedError::OutOfTime);
        }
        self.0.transaction(operations).map_err(BudgetedError::Bus)
    }
}

/// The reader's SPI bus and chip select, ready to talk to the RC522.
pub struct Reader {
    device: Option<Device>,
}

impl Reader {
    /// Sets up SPI2 at 1 MHz, mode 0, on the profile's pins. No reader I/O yet.
    pub fn new(
        spi: SPI2<'static>,
        sck: AnyPin<'static>,
        mosi: AnyPin<'static>,
        miso: AnyPin<'static>,
        cs: AnyPin<'static>,
    ) -> Reader {
        let config = SpiConfig::default().with_frequency(Rate::from_mhz(1)).with_mode(Mode::_0);
        let device = match Spi::new(spi, config) {
            Ok(bus) => {
                let bus = bus.with_sck(sck).with_mosi(mosi).with_miso(miso);
                let cs = Output::new(cs, Level::High, OutputConfig::default());
                ExclusiveDevice::new(bus, cs, Delay::new()).ok()
            }
            Err(err) => {
                println!("RFID: SPI configuration refused: {err:?}");
                None
            }
        };
        Reader { device }
    }
}

/// A reader chip version this firmware knows: 0x91/0x92 (NXP MFRC522 v1/v2); 0x88, 0xB2, 0x12
/// (common compatible chips).
fn known_version(version: u8) -> bool {
    matches!(version, 0x91 | 0x92 | 0x88 | 0xB2 | 0x12)
}

/// Resets and checks the RC522; `None` when there is no working reader.
fn start(device: &mut Device) -> Option<Rc522<'_>> {
    arm_budget();
    let mut rc = Mfrc522::new(SpiInterface::new(Budgeted(device))).init().ok()?;
    arm_budget();
    match rc.version() {
        Ok(version) if known_version(version) => Some(rc),
        Ok(other) => {
            println!("RFID: unexpected reader version {other:#04x}");
            None
        }
        Err(_) => None,
    }
}

/// True while the reader still answers with a known version.
fn answers(rc: &mut Rc522<'_>) -> bool {
    arm_budget();
    rc.version().is_ok_and(known_version)
}

/// Looks for a card; returns its UID bytes. Wakes halted cards too (WUPA) and halts the card
/// after reading it, so a card held to the reader is seen at every scan (the controller counts it
/// once).
fn read_card(rc: &mut Rc522<'_>, uid: &mut [u8; 10]) -> Option<usize> {
    arm_budget();
    let atqa = rc.wupa().ok()?;
    let card = rc.select(&atqa).ok()?;
    let _ = rc.hlta();
    let bytes = card.as_bytes();
    let len = bytes.len().min(uid.len());
    uid[..len].copy_from_slice(&bytes[..len]);
    Some(len)
}

/// Scans for cards and reports each tap; sets the reader up again whenever it stops answering.
#[embassy_executor::task]
pub async fn card_task(stack: Stack<'static>, server: &'static Server, reader: Reader) {
    let Some(mut device) = reader.device else {
        with_controller(|controller| controller.set_reader(ReaderState::Absent));
        println!("RFID: no SPI bus for the reader; cards disabled (the pump works without them)");
        return;
    };
    static STATE: StaticCell<TcpClientState<1, 1024, 1024>> = StaticCell::new();
    static CLIENT: StaticCell<TcpClient<'static, 1, 1024, 1024>> = StaticCell::new();
    let mut http = Http::new(stack, CLIENT.init(TcpClient::new(stack, STATE.init(TcpClientState::new()))), server);
    let url = CARD_PATH;
    let mut rx = [0u8; 1024 + json::MAX_CARD_ANSWER_BYTES];
    let mut uid = [0u8; 10];
    let mut pause = REINIT_FIRST;
    loop {
        let Some(mut rc) = start(&mut device) else {
            with_controller(|controller| controller.set_reader(ReaderState::Absent));
            println!("RFID: no RC522 answered; trying again in {} s", pause.as_secs());
            Timer::after(pause).await;
            pause = (pause + pause).min(REINIT_MAX);
            continue;
        };
        println!("RFID: reader ready");
        with_controller(|controller| controller.set_reader(ReaderState::Ok));
        pause = REINIT_FIRST;
        let mut scans: u32 = 0;
        loop {
            Timer::after(SCAN_EVERY).await;
            scans = scans.wrapping_add(1);
            if scans.is_multiple_of(CHECK_EVERY_SCANS) && !answers(&mut rc) {
                println!("RFID: the reader stopped answering; setting it up again");
                with_controller(|controller| controller.set_reader(ReaderState::Absent));
                break;
            }
            let Some(len) = read_card(&mut rc, &mut uid) else { continue };
            let Some(card) = with_controller(|controller| controller.card(now(), &uid[..len])) else { continue };
            println!("card {}", card.as_str());
            // Made once for the tap: every attempt below sends the same tap id, so the server acts
            // on the tap once however many of them reach it, and whenever.
            let mut body = [0u8; 64];
            let Ok(body_len) = json::encode_card_tap(&card.tap(), &mut body) else { continue };
            let first = Instant::now();
            let feedback = loop {
                // Each attempt is signed afresh (`Http` has the controller sign it as it goes out):
                // a retry with the same counter would be a replay.
                match http.post(url, &body[..body_len], Signing::Request, &mut rx, TAP_TIMEOUT).await {
                    Posted::Answer(answer) => {
                        let feedback =
                            with_controller(|controller| controller.card_reply(answer.signature, answer.reply()));
                        if answer.status != 200 {
                            println!("card tap refused: HTTP {}", answer.status);
                        }
                        break feedback;
                    }
                    Posted::Failed if first.elapsed() < RETRY_WITHIN => continue,
                    Posted::Failed | Posted::TooLong => break CardFeedback::Error,
                }
            };
            println!("card {}: {feedback:?}", card.as_str());
            led::show_card(feedback);
        }
    }
}
