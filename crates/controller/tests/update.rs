//! Firmware updates: never started or rebooted into while the relay is ON, an image signed by
//! anyone else never downloaded, an interrupted download resumed where it stopped, a damaged or
//! cut image never booted, and a new image confirmed only by a usable answer (else rolled back).

mod common;

use common::hold;
use ed25519_dalek::{Signer as _, SigningKey};
use pumppilot_controller::{
    BootCheck, BootMode, BootVerdict, Controller, MAX_RANGE_FAILURES, Millis, Offer, RANGE_RETRY_MAX_MS, Settings,
    Stage, Update, UpdateError,
    protocol::firmware::{self, ImageError},
};
use sha2::{Digest as _, Sha256};

const SLOT: u32 = 0x1E_0000;
const ON: &[u8] = br#"{"motor":"ON","state":"RUNNING","holdReason":null,"remainingSeconds":600,"pollMs":5000,"leaseMs":15000,"seq":7,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0}"#;
const IDLE: &[u8] = br#"{"motor":"OFF","state":"IDLE","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":8,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0}"#;

fn publisher() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

/// An image of `size` bytes and its offer, signed by `key`.
fn signed(key: &SigningKey, version: &'static str, size: usize) -> (Vec<u8>, Offer<'static>) {
    let image: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let sha256: [u8; 32] = Sha256::digest(&image).into();
    let size = u32::try_from(size).unwrap();
    let mut buf = [0u8; 128];
    let len = firmware::signed_message(version, size, &sha256, &mut buf);
    let signature = key.sign(&buf[..len]).to_bytes();
    (image, Offer { version, size, sha256, signature })
}

fn public() -> [u8; 32] {
    publisher().verifying_key().to_bytes()
}

/// Downloads in chunks as the shell does: range by range, each written where the controller says.
fn download(update: &mut Update, image: &[u8], chunk: u32, slot: &mut [u8]) {
    while let Some((first, last)) = update.next_range(chunk) {
        let bytes = &image[first as usize..=last as usize];
        let at = update.received(first, bytes).expect("in order") as usize;
        slot[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

#[test]
fn a_signed_image_downloads_in_ranges_resumes_and_verifies() {
    let (image, offer) = signed(&publisher(), "1.5.0", 10_000);
    let mut update = Update::begin(&public(), SLOT, &offer).expect("a signed offer");
    assert_eq!(update.version(), "1.5.0");
    assert_eq!(update.next_range(4096), Some((0, 4095)));
    update.received(0, &image[..4096]).unwrap();
    // The connection drops half way through the next chunk: only whole answers count, and the
    // download resumes where the slot stands.
    assert_eq!(update.next_range(4096), Some((4096, 8191)));
    assert_eq!(update.received(6000, &image[6000..7000]), Err(UpdateError::OutOfOrder), "a gap is refused");
    assert_eq!(update.received(0, &image[..10]), Err(UpdateError::OutOfOrder), "bytes already written");
    let mut slot = vec![0u8; image.len()];
    slot[..4096].copy_from_slice(&image[..4096]);
    download(&mut update, &image, 4096, &mut slot);
    assert_eq!(update.next_range(4096), None);
    assert_eq!(update.stage(), Stage::Downloading { written: 10_000 });
    assert_eq!(update.finish(), Ok(()));
    assert_eq!(update.stage(), Stage::Verified);
    assert_eq!(slot, image);
}

#[test]
fn an_image_that_fails_a_check_is_never_booted() {
    // Signed by someone else: refused before a byte is downloaded.
    let (_, stranger) = signed(&SigningKey::from_bytes(&[7u8; 32]), "6.6.6", 1_000);
    assert_eq!(Update::begin(&public(), SLOT, &stranger).err(), Some(UpdateError::Image(ImageError::BadSignature)));
    // A genuine description with a changed version.
    let (_, genuine) = signed(&publisher(), "1.5.0", 1_000);
    let renamed = Offer { version: "1.5.1", ..genuine };
    assert_eq!(Update::begin(&public(), SLOT, &renamed).err(), Some(UpdateError::Image(ImageError::BadSignature)));
    // Larger than the slot.
    let (_, huge) = signed(&publisher(), "9.0.0", 4_000);
    assert_eq!(Update::begin(&public(), 3_999, &huge).err(), Some(UpdateError::TooLarge));
    // Bytes changed on the way: the digest does not match, the slot never becomes the boot slot.
    let (image, offer) = signed(&publisher(), "1.5.0", 5_000);
    let mut damaged = image.clone();
    damaged[4_321] ^= 0x40;
    let mut update = Update::begin(&public(), SLOT, &offer).unwrap();
    download(&mut update, &damaged, 1_000, &mut vec![0; 5_000]);
    assert_eq!(update.finish(), Err(UpdateError::Image(ImageError::WrongDigest)));
    assert_eq!(update.stage(), Stage::Failed(UpdateError::Image(ImageError::WrongDigest)));
    assert_eq!(update.next_range(1_000), None, "a failed update takes no more bytes");
    // Cut short: finishing early fails on the size.
    let mut update = Update::begin(&public(), SLOT, &offer).unwrap();
    update.received(0, &image[..4_999]).unwrap();
    assert_eq!(update.finish(), Err(UpdateError::Image(ImageError::WrongSize)));
    // More bytes than signed.
    let mut update = Update::begin(&public(), SLOT, &offer).unwrap();
    let mut longer = image.clone();
    longer.push(0);
    assert_eq!(update.received(0, &longer), Err(UpdateError::OutOfOrder));
}

#[test]
fn a_refused_or_unanswered_range_waits_longer_each_time_and_the_update_is_given_up() {
    let (image, offer) = signed(&publisher(), "1.5.0", 10_000);
    let mut update = Update::begin(&public(), SLOT, &offer).unwrap();
    // Refused (a 401 after the key was rotated, a 404, a signed 503 while the store is out) or
    // not answered: every request is signed and uses up a counter, so the next one waits, longer
    // each time in a row, at most a minute.
    let waits: Vec<u32> = (0..7).map(|_| update.range_failed().expect("not given up yet")).collect();
    assert_eq!(waits, [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    // A range that arrives starts the waits over, and the download goes on where it stood.
    update.received(0, &image[..4096]).unwrap();
    assert_eq!(update.range_failed(), Some(2_000));
    assert_eq!(update.next_range(4096), Some((4096, 8191)));
    // In all, MAX_RANGE_FAILURES failed requests in one download give it up: nothing more is
    // asked for, nothing is booted. A server that refuses every request costs the device that
    // many counters over more than ten minutes, not one counter per round trip.
    let mut waited = waits.iter().sum::<u32>() + 2_000;
    for _ in 8..MAX_RANGE_FAILURES - 1 {
        waited += update.range_failed().expect("not given up yet");
    }
    assert_eq!(update.stage(), Stage::Downloading { written: 4096 });
    assert_eq!(update.range_failed(), None);
    assert!(waited >= 10 * RANGE_RETRY_MAX_MS, "{waited} ms");
    assert_eq!(update.stage(), Stage::Failed(UpdateError::GaveUp));
    assert_eq!(update.next_range(4096), None);
    assert_eq!(update.finish(), Err(UpdateError::GaveUp));
    assert_eq!(update.range_failed(), None);
    // The next offer starts it again, from the beginning.
    let mut update = Update::begin(&public(), SLOT, &offer).unwrap();
    assert_eq!(update.range_failed(), Some(2_000), "a new download waits from the first step");
    download(&mut update, &image, 4096, &mut vec![0; image.len()]);
    assert_eq!(update.finish(), Ok(()));
}

/// A device whose inputs say grid up and pump ready.
fn device() -> Controller {
    let mut device = Controller::new(Settings::DEFAULT);
    hold(&mut device, 0, 200, 20, false, true);
    device
}

#[test]
fn never_while_the_relay_is_on() {
    let mut device = device();
    assert!(device.may_update(Millis(300)), "idle, relay open");
    let sent = device.sent(Millis(1_000));
    device.answer(sent, Millis(1_000), ON).unwrap();
    assert!(!device.may_update(Millis(1_000)), "the relay is about to close");
    device.drive(Millis(1_000));
    assert!(device.closed());
    assert!(!device.may_update(Millis(5_000)), "the relay is ON");
    let sent = device.sent(Millis(6_000));
    device.answer(sent, Millis(6_000), IDLE).unwrap();
    assert!(!device.may_update(Millis(6_000)), "until the relay has really opened");
    device.drive(Millis(6_000));
    assert!(device.may_update(Millis(6_000)));
    // Load shedding under an ON command: the relay is open, an update may go ahead.
    let sent = device.sent(Millis(7_000));
    device.answer(sent, Millis(7_000), ON).unwrap();
    hold(&mut device, 7_000, 7_200, 20, true, true);
    device.drive(Millis(7_200));
    assert!(!device.closed() && device.may_update(Millis(7_200)));
}

#[test]
fn a_new_image_is_confirmed_by_a_usable_answer_or_rolled_back() {
    let check = BootCheck::DEFAULT;
    let mut device = device();
    assert_eq!(check.verdict(&device, Millis(1_000)), BootVerdict::Wait);
    device.poll_failed(Millis(2_000));
    assert_eq!(check.verdict(&device, Millis(2_000)), BootVerdict::Wait, "a failed poll confirms nothing");
    let sent = device.sent(Millis(3_000));
    assert!(device.answer(sent, Millis(3_000), b"garbage").is_err());
    assert_eq!(check.verdict(&device, Millis(3_000)), BootVerdict::Wait, "nor does garbage");
    let sent = device.sent(Millis(4_000));
    device.answer(sent, Millis(4_000), IDLE).unwrap();
    assert_eq!(check.verdict(&device, Millis(4_000)), BootVerdict::Valid);
    // An image that never reaches the server rolls back when the time is up.
    let silent = self::device();
    assert_eq!(check.verdict(&silent, Millis(check.within_ms - 1)), BootVerdict::Wait);
    assert_eq!(check.verdict(&silent, Millis(check.within_ms)), BootVerdict::RollBack);
}

#[test]
fn a_new_image_that_lost_its_settings_goes_back_to_the_previous_image() {
    // (image unconfirmed, settings found, setup asked by the button)
    assert_eq!(BootMode::choose(true, false, false), BootMode::RollBack, "it would wait in setup mode for a visit");
    assert_eq!(BootMode::choose(true, true, true), BootMode::Setup, "a technician's press opens setup mode");
    assert_eq!(BootMode::choose(true, false, true), BootMode::Setup, "even without settings");
    assert_eq!(BootMode::choose(true, true, false), BootMode::Run, "it confirms itself in normal mode");
    // A confirmed image (or one flashed by cable) without settings is a board to set up.
    assert_eq!(BootMode::choose(false, false, false), BootMode::Setup);
    assert_eq!(BootMode::choose(false, true, true), BootMode::Setup);
    assert_eq!(BootMode::choose(false, false, true), BootMode::Setup);
    assert_eq!(BootMode::choose(false, true, false), BootMode::Run);
}

#[test]
fn a_new_image_that_keeps_crashing_takes_itself_back_at_its_third_fault() {
    use pumppilot_controller::{FAULTED_BOOTS_BEFORE_ROLLBACK, FaultedBoots, protocol::ResetReason};
    assert_eq!(FAULTED_BOOTS_BEFORE_ROLLBACK, 3);
    // A new image that panics, hangs (the watchdog) and panics again: back at the third fault.
    let mut faults = FaultedBoots::default();
    for (reset, loop_now) in [(ResetReason::Panic, false), (ResetReason::Watchdog, false), (ResetReason::Panic, true)] {
        faults = faults.after(reset, true);
        assert_eq!(faults.crash_loop(), loop_now, "{faults:?} after {reset:?}");
    }
    // What is not the image's fault neither counts nor forgets: a power cut (the count in RTC
    // memory is gone then anyway), a sagging supply, the firmware's own restart, the reset pin.
    let two = FaultedBoots(2);
    for reset in [ResetReason::PowerOn, ResetReason::BrownOut, ResetReason::Software, ResetReason::Other] {
        assert_eq!(two.after(reset, true), two, "{reset:?}");
    }
    // A confirmed image (or one flashed by cable) counts nothing: its faults are the bootloader's
    // and the watchdog's to handle, and there is no image before it to go back to.
    assert_eq!(FaultedBoots(2).after(ResetReason::Panic, false), FaultedBoots(0));
    assert!(!FaultedBoots(200).after(ResetReason::Watchdog, false).crash_loop());
    // The count does not wrap round to zero.
    assert_eq!(FaultedBoots(u8::MAX).after(ResetReason::Panic, true), FaultedBoots(u8::MAX));
}
