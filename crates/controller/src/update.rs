//! Firmware updates on the device: whether one may start or reboot now (never while the relay is
//! ON), what to download next (a dropped connection resumes where it stopped, with an HTTP
//! `Range`), whether the image may be booted (its signature, size and SHA-256, see
//! `pumppilot_protocol::firmware`), and, after the reboot, whether the new image is confirmed (a
//! usable answer from the server) or must roll back. The shell writes the bytes to the inactive
//! OTA slot and switches the boot slot; every decision is here, tested on the host.

use pumppilot_protocol::{
    ResetReason,
    firmware::{self, ImageDigest, ImageError, MAX_VERSION_BYTES},
};

use crate::{Controller, LinkState, Millis};

/// An image the server offers: its signed description (`protocol::json::decode_release`).
pub type Offer<'a> = firmware::Release<'a>;

/// Why an update stopped. The image is never booted; the running one stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// Larger than the OTA slot.
    TooLarge,
    /// The description or the image fails a check (signature, size, digest, version).
    Image(ImageError),
    /// Bytes that do not start where the download stands (the shell resumes from
    /// [`Update::next_range`]), or past the image's end.
    OutOfOrder,
    /// [`MAX_RANGE_FAILURES`] of its requests got no usable answer ([`Update::range_failed`]):
    /// given up until the next offer.
    GaveUp,
}

/// The wait after an update's first request in a row that got no usable answer; it doubles with
/// each further one, up to [`RANGE_RETRY_MAX_MS`].
pub const RANGE_RETRY_FIRST_MS: u32 = 2_000;
/// The longest wait between two of an update's requests after failures.
pub const RANGE_RETRY_MAX_MS: u32 = 60_000;
/// How many of one download's requests may get no usable answer before the update is given up.
pub const MAX_RANGE_FAILURES: u32 = 20;

/// Where an update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Bytes `0..written` are in the slot.
    Downloading { written: u32 },
    /// Every check passed: the slot may be made the boot slot (when [`Controller::may_update`]).
    Verified,
    /// Stopped for good; start again from a new offer.
    Failed(UpdateError),
}

/// One firmware update, from the offer to a verified image.
#[derive(Clone)]
pub struct Update {
    public_key: [u8; 32],
    version: [u8; MAX_VERSION_BYTES],
    version_len: usize,
    size: u32,
    sha256: [u8; 32],
    signature: [u8; 64],
    digest: ImageDigest,
    stage: Stage,
    /// Requests of this download that got no usable answer, in all and since the last range.
    failures: u32,
    failures_in_a_row: u32,
}

impl Update {
    /// Starts an update from an offer, for a slot of `slot_size` bytes and the firmware's own
    /// public key. The signature is checked first: an image signed by anyone else is never
    /// downloaded.
    pub fn begin(public_key: &[u8; 32], slot_size: u32, offer: &Offer<'_>) -> Result<Update, UpdateError> {
        firmware::verify(public_key, offer.version, offer.size, &offer.sha256, &offer.signature)
            .map_err(UpdateError::Image)?;
        if offer.size > slot_size {
            return Err(UpdateError::TooLarge);
        }
        let mut version = [0u8; MAX_VERSION_BYTES];
        version[..offer.version.len()].copy_from_slice(offer.version.as_bytes());
        Ok(Update {
            public_key: *public_key,
            version,
            version_len: offer.version.len(),
            size: offer.size,
            sha256: offer.sha256,
            signature: offer.signature,
            digest: ImageDigest::new(),
            stage: Stage::Downloading { written: 0 },
            failures: 0,
            failures_in_a_row: 0,
        })
    }

    /// The version being installed.
    pub fn version(&self) -> &str {
        core::str::from_utf8(&self.version[..self.version_len]).unwrap_or("")
    }

    pub const fn stage(&self) -> Stage {
        self.stage
    }

    /// The next bytes to ask for, at most `chunk` of them, as an inclusive range (`Range:
    /// bytes=first-last`); `None` when nothing is left to download.
    pub fn next_range(&self, chunk: u32) -> Option<(u32, u32)> {
        let Stage::Downloading { written } = self.stage else { return None };
        (written < self.size).then(|| (written, (written + chunk.max(1)).min(self.size) - 1))
    }

    /// Takes bytes that start at `at` of the image; returns where to write them in the slot. A
    /// dropped connection loses nothing: ask again from [`Update::next_range`].
    pub fn received(&mut self, at: u32, bytes: &[u8]) -> Result<u32, UpdateError> {
        let Stage::Downloading { written } = self.stage else { return Err(UpdateError::OutOfOrder) };
        let end = u64::from(at) + bytes.len() as u64;
        if at != written || end > u64::from(self.size) {
            return Err(UpdateError::OutOfOrder);
        }
        self.digest.update(bytes);
        self.stage = Stage::Downloading { written: end as u32 };
        self.failures_in_a_row = 0;
        Ok(at)
    }

    /// A request for [`Update::next_range`] got no usable answer: none at all (a dropped
    /// connection, a timeout), or one [`Controller::accept`] refused (a status other than 200 or
    /// 206, such as a 401 after the device's key was rotated or it was retired, a 404, a signed
    /// 503 while the server's store is out; or a MAC that does not check). Every request is signed
    /// and uses up a counter, and a refusal seldom ends by itself, so the next one waits: the
    /// milliseconds returned, [`RANGE_RETRY_FIRST_MS`] doubled with each failure in a row (a range
    /// that arrives starts again from the first), at most [`RANGE_RETRY_MAX_MS`]. After
    /// [`MAX_RANGE_FAILURES`] failures in this download it returns `None`: the update is given up
    /// ([`UpdateError::GaveUp`]), and the next offer (a later poll answer) starts it again.
    pub fn range_failed(&mut self) -> Option<u32> {
        if !matches!(self.stage, Stage::Downloading { .. }) {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        if self.failures >= MAX_RANGE_FAILURES {
            self.stage = Stage::Failed(UpdateError::GaveUp);
            return None;
        }
        let doublings = (self.failures_in_a_row - 1).min(31);
        Some(RANGE_RETRY_FIRST_MS.saturating_mul(1 << doublings).min(RANGE_RETRY_MAX_MS))
    }

    /// After the last byte: checks size, digest and signature. Only a [`Stage::Verified`] image
    /// may become the boot slot; an update that failed already stays failed.
    pub fn finish(&mut self) -> Result<(), UpdateError> {
        if let Stage::Failed(err) = self.stage {
            return Err(err);
        }
        let result = firmware::check_image(
            &self.public_key,
            self.version(),
            self.size,
            &self.sha256,
            &self.signature,
            self.digest.clone(),
        )
        .map_err(UpdateError::Image);
        self.stage = match result {
            Ok(()) => Stage::Verified,
            Err(err) => Stage::Failed(err),
        };
        result
    }
}

/// What to do with a freshly booted image that is not confirmed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootVerdict {
    /// The server answered usably: mark the image valid (no rollback any more).
    Valid,
    /// Not yet: keep polling.
    Wait,
    /// No usable answer within the time allowed: reboot into the previous image.
    RollBack,
}

/// The confirmation of a new image after its first boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootCheck {
    /// How long after boot a usable answer must have come.
    pub within_ms: u64,
}

impl BootCheck {
    /// Ten minutes: long enough for WiFi and a server that restarts, short enough that a broken
    /// image does not keep a pump off its server for long.
    pub const DEFAULT: BootCheck = BootCheck { within_ms: 600_000 };

    /// The verdict at `now` (milliseconds since this boot). Valid only after an answer whose
    /// MAC checked (with a link secret) and that the controller used.
    pub fn verdict(&self, controller: &Controller, now: Millis) -> BootVerdict {
        if controller.link_state() == LinkState::Up {
            BootVerdict::Valid
        } else if now.0 >= self.within_ms {
            BootVerdict::RollBack
        } else {
            BootVerdict::Wait
        }
    }
}

/// How many boots in a row a new image may end in a fault (a panic, a watchdog) before it takes
/// itself back.
pub const FAULTED_BOOTS_BEFORE_ROLLBACK: u8 = 3;

/// A new image's boots that ended in a fault, counted across resets (the firmware keeps the count
/// where a reset leaves it, in the chip's RTC memory, and reads it first thing at boot).
///
/// The bootloader takes back an image that crashes before it confirms itself ([`BootCheck`]) only
/// when it was built with app-rollback support, which a board's may not be: a crashing image
/// would then restart for ever, the pump off its server until a site visit. So the image itself,
/// at its next boot and before it reads anything else, goes back to the previous one once it
/// has faulted [`FAULTED_BOOTS_BEFORE_ROLLBACK`] times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultedBoots(pub u8);

impl FaultedBoots {
    /// The count for this boot, from the last one's and why this boot came. Only an image not yet
    /// confirmed counts; a panic or a watchdog adds one; a power cut, a sagging supply or the
    /// firmware's own restart is not the image's fault and changes nothing.
    pub const fn after(self, reset: ResetReason, image_unconfirmed: bool) -> FaultedBoots {
        if !image_unconfirmed {
            return FaultedBoots(0);
        }
        match reset {
            ResetReason::Panic | ResetReason::Watchdog => FaultedBoots(self.0.saturating_add(1)),
            _ => self,
        }
    }

    /// The image keeps crashing: back to the previous one.
    pub const fn crash_loop(self) -> bool {
        self.0 >= FAULTED_BOOTS_BEFORE_ROLLBACK
    }
}

/// What a board does at boot, once it has read its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// Normal mode: WiFi, polls, cards, updates (a new image confirms itself there, [`BootCheck`]).
    Run,
    /// Setup mode: the access point and the setup page; the relay stays OFF.
    Setup,
    /// Mark the running image invalid and restart into the previous one, the outputs OFF first.
    RollBack,
}

impl BootMode {
    /// The mode for this boot. `image_unconfirmed`: the running image came with an update and is
    /// not confirmed yet (`New` or `PendingVerify`); `settings_found`: usable settings (the record
    /// in flash, or built in); `setup_asked`: a long press of the setup button asked for setup
    /// mode before this boot. A new image that finds no settings though nobody asked for setup
    /// mode lost them (a changed record layout, a bug): setup mode would wait on the open access
    /// point until a site visit, so it goes back to the previous image, which read them. A
    /// technician's press still opens setup mode on a new image.
    pub const fn choose(image_unconfirmed: bool, settings_found: bool, setup_asked: bool) -> BootMode {
        if setup_asked {
            BootMode::Setup
        } else if settings_found {
            BootMode::Run
        } else if image_unconfirmed {
            BootMode::RollBack
        } else {
            BootMode::Setup
        }
    }
}

impl Controller {
    /// True when an update may start, or its reboot happen, at `now`: the relay is open and
    /// stays open (never while it is ON; a run on HOLD keeps it open anyway).
    pub fn may_update(&self, now: Millis) -> bool {
        !self.closed() && !self.relay(now)
    }
}
