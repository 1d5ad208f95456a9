//! The device's own settings: the record in the `settings` partition (written by the setup page),
//! else the build-time values (`config.rs`, for development and CI), else none (setup mode). The
//! record's format and every check are the controller's (`pumppilot_controller::setup`); this
//! only moves bytes between it and the flash.

use core::sync::atomic::{AtomicU8, Ordering};

use esp_bootloader_esp_idf::partitions::{self, FlashStorage, PARTITION_TABLE_MAX_LEN};
use esp_println::println;
use pumppilot_controller::setup::{DeviceSettings, RECORD_BYTES, SettingError};

use crate::config;

/// The label of the data partition that holds the record (`partitions.csv`).
const PARTITION: &str = "settings";
/// The record is written at the start of the partition, after erasing this much.
const SECTOR: u32 = 4096;

/// Where the settings this boot runs with came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The record in flash (set up on site).
    Flash,
    /// No intact record; the values built into the image.
    Build,
}

/// Reads the record from the `settings` partition. Erased flash, a cut write, a flipped bit or a
/// setting that no longer passes is an error (the caller falls back or opens setup mode).
pub fn load(flash: &mut FlashStorage<'_>) -> Result<DeviceSettings, SettingError> {
    let broken = SettingError { field: "record", problem: "no settings partition in the partition table" };
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let Ok(table) = partitions::read_partition_table(flash, &mut table) else { return Err(broken) };
    let Some(entry) = table.iter().find(|entry| entry.label_as_str() == PARTITION) else { return Err(broken) };
    let mut record = [0u8; RECORD_BYTES];
    let mut region = entry.as_flash_region(flash);
    if region.read(0, &mut record).is_err() {
        return Err(SettingError { field: "record", problem: "the settings partition cannot be read" });
    }
    DeviceSettings::from_record(&record)
}

/// Writes `settings` as the record (erasing its sector first) and reads it back: true only when
/// what is in flash now is exactly `settings`.
pub fn save(flash: &mut FlashStorage<'_>, settings: &DeviceSettings) -> bool {
    let mut record = [0u8; RECORD_BYTES];
    settings.to_record(&mut record);
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let Ok(table) = partitions::read_partition_table(flash, &mut table) else { return false };
    let Some(entry) = table.iter().find(|entry| entry.label_as_str() == PARTITION) else { return false };
    {
        let mut region = entry.as_flash_region(flash);
        // The whole buffer (4-byte aligned): the record's own length says where it ends.
        if region.erase(0, SECTOR).is_err() || region.write(0, &record).is_err() {
            return false;
        }
    }
    load(flash).is_ok_and(|read| read == *settings)
}

/// The settings built into the image (`PUMPPILOT_*`), checked like the setup page's form; an
/// error when they are incomplete (the one image for every board is built without them).
pub fn built_in() -> Result<DeviceSettings, SettingError> {
    let flag = |high: bool| if high { b"1".as_slice() } else { b"0".as_slice() };
    DeviceSettings::from_fields([
        ("ssid", config::WIFI_SSID.as_bytes()),
        ("password", config::WIFI_PASSWORD.as_bytes()),
        ("server", config::SERVER.as_bytes()),
        ("key", config::DEVICE_KEY.as_bytes()),
        ("secret", config::LINK_SECRET_TEXT.as_bytes()),
        ("id", config::DEVICE_ID.as_bytes()),
        ("transport", config::TRANSPORT.as_bytes()),
        ("broker", config::MQTT_BROKER.as_bytes()),
        ("relay", flag(config::RELAY_ACTIVE_HIGH)),
        ("shedding", flag(config::LOAD_SHEDDING_ACTIVE_HIGH)),
        ("ready", flag(config::READY_ACTIVE_HIGH)),
    ])
}

/// The settings for this boot: the record, else the built-in values; `None` when neither is
/// usable (setup mode, with the relay's OFF level unknown).
pub fn choose(flash: &mut FlashStorage<'_>) -> Option<(DeviceSettings, Source)> {
    match load(flash) {
        Ok(settings) => Some((settings, Source::Flash)),
        Err(stored) => match built_in() {
            Ok(settings) => {
                println!("settings: {} {}; using the values built into the image", stored.field, stored.problem);
                Some((settings, Source::Build))
            }
            Err(built) => {
                println!(
                    "settings: {} {}, and none built in ({} {}): setup mode",
                    stored.field, stored.problem, built.field, built.problem
                );
                None
            }
        },
    }
}

/// The relay output's active level as the panic path must know it: 0 unknown (the pin is left
/// as it is: a high-impedance input until `main` drives it), 1 active high, 2 active low.
static RELAY_LEVEL: AtomicU8 = AtomicU8::new(0);

/// Records the relay's active level for the panic path (before the pin is first driven).
pub fn set_relay_active_high(high: bool) {
    RELAY_LEVEL.store(if high { 1 } else { 2 }, Ordering::Relaxed);
}

/// The relay's active level, when known.
pub fn relay_active_high() -> Option<bool> {
    match RELAY_LEVEL.load(Ordering::Relaxed) {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

/// Set by a long press of the setup button, read (and cleared) at the next boot. Kept in RTC fast
/// memory across the software reset.
#[esp_hal::ram(unstable(rtc_fast, persistent))]
static mut SETUP_MARK: u32 = 0;
const MARK: u32 = 0x5345_5455; // "SETU"

/// Asks the next boot for setup mode.
pub fn request_setup_mode() {
    // SAFETY: single core, and a plain word: written here (by the control loop after a long press,
    // and by the setup mode's save task when the settings did not write), read once at boot.
    unsafe { core::ptr::write_volatile(&raw mut SETUP_MARK, MARK) };
}

/// True when the button asked for setup mode before the last reset; clears the mark.
pub fn take_setup_request() -> bool {
    // SAFETY: see `request_setup_mode`.
    unsafe {
        let asked = core::ptr::read_volatile(&raw const SETUP_MARK) == MARK;
        core::ptr::write_volatile(&raw mut SETUP_MARK, 0);
        asked
    }
}
