//! Updates over the air: moves bytes between the server, the controller's `Update` (which checks
//! the signature, the size and the SHA-256, and says what to download next) and the inactive OTA
//! slot; the controller says when (`may_update`: never while the relay is ON) and whether a new
//! image is confirmed (`BootCheck`). The ESP-IDF bootloader boots the slot `otadata` names and,
//! when built with app-rollback support, rolls back an image left unconfirmed (state
//! `New`/`PendingVerify` at the next boot); a new image that keeps crashing takes itself back
//! (`count_faulted_boot`, `FaultedBoots`), whatever the bootloader.

use embassy_net::Stack;
use embassy_sync::{blocking_mutex::raw::CriticalSectionRawMutex, signal::Signal};
use embassy_time::{Duration, Timer};
use esp_bootloader_esp_idf::{
    ota::OtaImageState,
    ota_updater::OtaUpdater,
    partitions::{FlashStorage, PARTITION_TABLE_MAX_LEN},
};
use esp_println::println;
use pumppilot_controller::{
    BootCheck, BootVerdict, FaultedBoots, Stage, Update,
    protocol::{ResetReason, firmware::OTA_SLOT_BYTES, json},
};
use static_cell::StaticCell;

use crate::{
    config::{self, Server},
    net::{Http, Posted, Tcp},
    now, with_controller,
};

/// The version a poll answer offered (`update`), for the update task.
static OFFER: Signal<CriticalSectionRawMutex, heapless::String<32>> = Signal::new();

/// Bytes asked for per request (the server sends at most 16 KiB; the receive buffer holds them
/// beside the headers).
const CHUNK: u32 = 8 * 1024;
/// Flash is erased in sectors of this size before it is written.
const SECTOR: u32 = 4096;
/// How long a request of the update may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Called by the poll task with every usable answer's `update`.
pub fn offer(version: &str) {
    let mut text = heapless::String::new();
    if text.push_str(version).is_ok() {
        OFFER.signal(text);
    }
}

/// Waits until the controller allows an update step (the relay open).
async fn relay_open() {
    while !with_controller(|controller| controller.may_update(now())) {
        Timer::after(Duration::from_millis(500)).await;
    }
}

/// True when the running image came with an update and is not confirmed yet (`New` or
/// `PendingVerify` in `otadata`, read as `ota_task` reads it). False for an image flashed by cable
/// (`otadata` erased) or on a partition table without OTA slots.
pub fn unconfirmed(storage: &mut FlashStorage<'_>) -> bool {
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let Ok(mut ota) = OtaUpdater::new(storage, &mut table) else { return false };
    matches!(ota.current_ota_state(), Ok(OtaImageState::New | OtaImageState::PendingVerify))
}

/// A new image's faulted boots so far, kept in RTC fast memory across resets (a power cut loses
/// it: it then reads as none). The top half is a mark, so what a power-on leaves there is not
/// taken for a count.
#[esp_hal::ram(unstable(rtc_fast, persistent))]
static mut FAULTED_BOOTS: u32 = 0;
const FAULTED_MARK: u32 = 0x4642_0000; // "FB"

/// Counts this boot in (`FaultedBoots::after`: why it came, and whether the running image is
/// confirmed) and keeps the count for the next.
pub fn count_faulted_boot(reset: ResetReason, image_unconfirmed: bool) -> FaultedBoots {
    // SAFETY: single core; read and written only here, once, at boot, before any task runs.
    unsafe {
        let kept = core::ptr::read_volatile(&raw const FAULTED_BOOTS);
        let before = match kept & 0xFFFF_0000 {
            FAULTED_MARK => FaultedBoots(u8::try_from(kept & 0xFF).unwrap_or(u8::MAX)),
            _ => FaultedBoots::default(),
        };
        let now = before.after(reset, image_unconfirmed);
        core::ptr::write_volatile(&raw mut FAULTED_BOOTS, FAULTED_MARK | u32::from(now.0));
        now
    }
}

/// Marks the running image invalid, so the bootloader boots the previous one at the next reset;
/// false when `otadata` could not be written.
pub fn mark_invalid(storage: &mut FlashStorage<'_>) -> bool {
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let Ok(mut ota) = OtaUpdater::new(storage, &mut table) else { return false };
    ota.set_current_ota_state(OtaImageState::Invalid).is_ok()
}

#[embassy_executor::task]
pub async fn ota_task(stack: Stack<'static>, server: &'static Server, mut storage: FlashStorage<'static>) {
    static STATE: StaticCell<embassy_net::tcp::client::TcpClientState<1, 1024, 1024>> = StaticCell::new();
    static CLIENT: StaticCell<Tcp> = StaticCell::new();
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let Ok(mut ota) = OtaUpdater::new(&mut storage, &mut table) else {
        println!("OTA: no otadata or fewer than two OTA slots in the partition table; updates off");
        return;
    };
    // 1. A new image confirms itself with a usable answer, or rolls back.
    if matches!(ota.current_ota_state(), Ok(OtaImageState::New | OtaImageState::PendingVerify)) {
        println!("OTA: new image, waiting for a usable answer to confirm it");
        loop {
            match with_controller(|controller| BootCheck::DEFAULT.verdict(controller, now())) {
                BootVerdict::Valid => {
                    let marked = ota.set_current_ota_state(OtaImageState::Valid);
                    println!("OTA: image confirmed ({marked:?})");
                    break;
                }
                BootVerdict::RollBack => {
                    relay_open().await;
                    let _ = ota.set_current_ota_state(OtaImageState::Invalid);
                    println!("OTA: no usable answer in time; back to the previous image");
                    esp_hal::system::software_reset();
                }
                BootVerdict::Wait => Timer::after(Duration::from_secs(1)).await,
            }
        }
    }
    let Some(key) = config::FIRMWARE_KEY else {
        println!("OTA: no PUMPPILOT_FIRMWARE_PUBLIC_KEY built in; updates off");
        return;
    };
    let tcp = CLIENT.init(Tcp::new(stack, STATE.init(embassy_net::tcp::client::TcpClientState::new())));
    let mut http = Http::new(stack, tcp, server);
    let mut rx = [0u8; 1024 + CHUNK as usize];
    loop {
        let version = OFFER.wait().await;
        // 2. The signed description, checked with the key built into this image.
        let mut path: heapless::String<96> = heapless::String::new();
        let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/api/esp32/firmware/{version}/release"));
        relay_open().await;
        let mut update = match http.get(&path, None, &mut rx, TIMEOUT).await {
            Posted::Answer(answer) => {
                let accepted = with_controller(|controller| controller.accept(answer.signature, &answer.reply()));
                let release = json::decode_release(answer.body);
                match release.filter(|release| accepted && release.version == version.as_str()) {
                    Some(offer) => match Update::begin(&key, OTA_SLOT_BYTES, &offer) {
                        Ok(update) => update,
                        Err(err) => {
                            println!("OTA: {version} refused: {err:?}");
                            continue;
                        }
                    },
                    None => continue,
                }
            }
            Posted::Failed | Posted::TooLong => continue,
        };
        println!("OTA: downloading {version}");
        // 3. Range by range into the inactive slot, only while the relay is open.
        path.clear();
        let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/api/esp32/firmware/{version}"));
        while let Some((first, last)) = update.next_range(CHUNK) {
            relay_open().await;
            let answer = match http.get(&path, Some((first, last)), &mut rx, TIMEOUT).await {
                Posted::Answer(answer)
                    if with_controller(|controller| controller.accept(answer.signature, &answer.reply())) =>
                {
                    answer
                }
                // No answer, or one refused (a 401 after a key rotation, a 404, a signed 503): each
                // request uses up a counter, so wait longer each time, and give the update up after
                // too many (the next offer starts it again).
                _ => match update.range_failed() {
                    Some(wait_ms) => {
                        Timer::after(Duration::from_millis(u64::from(wait_ms))).await;
                        continue; // resumes with the same range
                    }
                    None => break,
                },
            };
            let body = answer.body;
            let Ok(at) = update.received(first, body) else { break };
            let Ok((mut slot, _)) = ota.next_partition() else { break };
            // The request took a while (up to its timeout), and a Start may have closed the relay
            // meanwhile: the flash work (which stalls the control loop) waits until it is open
            // again; `relay_open` returns at once, without yielding, when it is.
            relay_open().await;
            // Erase the sectors this range starts (a sector is erased once, when the download reaches it).
            let erase_from = at.div_ceil(SECTOR) * SECTOR;
            let erase_to = (at + body.len() as u32).div_ceil(SECTOR) * SECTOR;
            if erase_to > erase_from && slot.erase(erase_from, erase_to).is_err() {
                break;
            }
            if slot.write(at, body).is_err() {
                break;
            }
        }
        // 4. Only an image that passed every check becomes the boot slot, with the relay open.
        if update.next_range(CHUNK).is_some() || update.finish().is_err() || update.stage() != Stage::Verified {
            println!("OTA: {version} not installed ({:?})", update.stage());
            continue;
        }
        relay_open().await;
        if ota.activate_next_partition().is_ok() && ota.set_current_ota_state(OtaImageState::New).is_ok() {
            println!("OTA: {version} installed; restarting into it");
            Timer::after(Duration::from_millis(200)).await; // the log line goes out
            // Checked again after that wait, with nothing between the check and the reset that
            // lets the control loop run: a run started meanwhile is not cut by the restart.
            relay_open().await;
            esp_hal::system::software_reset();
        }
        println!("OTA: could not switch the boot slot");
    }
}
