//! The panic handler (CPU exceptions end here too: esp-hal turns them into panics). It owns the
//! last word on the motor: both outputs OFF through the GPIO registers, a line on the console,
//! then a reset. A panic inside the panic handler goes straight to the reset.

use core::{
    panic::PanicInfo,
    sync::atomic::{AtomicBool, Ordering},
};

static PANICKING: AtomicBool = AtomicBool::new(false);

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
    esp_hal::system::software_reset()
}
