//! The panic handler (CPU exceptions end here too: esp-hal turns them into panics). It owns the
//! last word on the motor: both outputs OFF through the GPIO registers, a line on the console,
//! then a reset. A panic inside the panic handler goes straight to the reset.

use core::{
    panic::PanicInfo,
    sync::atomic::{AtomicBool, Ordering},
};

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Written just before the reset that ends a panic, read (and cleared) at the next boot, so the
/// first poll says `PANIC` rather than `SOFTWARE`. Kept in RTC fast memory across the reset.
#[esp_hal::ram(unstable(rtc_fast, persistent))]
static mut PANIC_MARK: u32 = 0;
const MARK: u32 = 0x5041_4E43; // "PANC"

/// True when the last reset ended a panic; clears the mark.
pub fn take_panic_mark() -> bool {
    // SAFETY: single core; read and written only here at boot and by the panic handler, which
    // cannot run at the same time as boot code on this core.
    unsafe {
        let panicked = core::ptr::read_volatile(&raw const PANIC_MARK) == MARK;
        core::ptr::write_volatile(&raw mut PANIC_MARK, 0);
        panicked
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    crate::board::outputs_off_raw();
    // One core and no atomic read-modify-write on this target: a load and a store will do.
    if !PANICKING.load(Ordering::Relaxed) {
        PANICKING.store(true, Ordering::Relaxed);
        esp_println::println!("PANIC (motor outputs OFF, resetting): {info}");
    }
    // Outputs again, in case printing disturbed anything, then a clean reset: the boot path
    // drives them OFF again before anything else.
    crate::board::outputs_off_raw();
    // SAFETY: see `take_panic_mark`.
    unsafe { core::ptr::write_volatile(&raw mut PANIC_MARK, MARK) };
    esp_hal::system::software_reset()
}
