//! Board profiles: which GPIO does what. One profile per cargo feature, nothing else in the
//! firmware names a pin. The panic path (`outputs_off_raw`) uses the numbers here, so the pins
//! taken by `take_pins!` and the numbers must agree; `main` checks that at boot.

#[cfg(all(feature = "esp32c3", feature = "esp32"))]
compile_error!("choose one board profile: `esp32c3` (default) or `esp32` (--no-default-features --features esp32)");
#[cfg(not(any(feature = "esp32c3", feature = "esp32")))]
compile_error!("choose a board profile: `esp32c3` (default) or `esp32` (--no-default-features --features esp32)");

/// ESP32-C3 (RISC-V). Avoids GPIO2/8/9 (strapping) for anything that must not glitch at reset,
/// GPIO11–17 (flash), GPIO18/19 (USB), GPIO20/21 (UART0, the log console).
#[cfg(feature = "esp32c3")]
pub mod pins {
    /// Board name in the firmware version string.
    pub const BOARD: &str = "esp32c3";
    /// Relay input (the seed's GPIO25 role).
    pub const RELAY: u8 = 3;
    /// Optocoupler LED (+) through its resistor (the seed's GPIO5 role).
    pub const OPTO: u8 = 4;
    /// Load-shedding sensor input (the seed's GPIO32 role).
    pub const LOAD_SHEDDING: u8 = 0;
    /// Device-ready sensor input (the seed's GPIO33 role).
    pub const READY: u8 = 1;
    /// RC522 SPI clock, MOSI, MISO and chip select (SDA on most modules).
    pub const RFID_SCK: u8 = 6;
    pub const RFID_MOSI: u8 = 7;
    pub const RFID_MISO: u8 = 5;
    pub const RFID_CS: u8 = 10;
    /// Status LED. GPIO8 is a strapping pin that must read high at reset: wire the LED from 3V3
    /// through a resistor to the pin (active low), which keeps it high.
    pub const LED: u8 = 8;
    pub const LED_ACTIVE_HIGH: bool = false;
    /// Optional motor-running feedback input (`PUMPPILOT_FEEDBACK=1`). GPIO2 is a strapping pin
    /// that must not be pulled low at reset: wire the contact so that it only pulls the pin to
    /// its active level while the motor runs (which it cannot at boot: the relay is OFF).
    pub const FEEDBACK: u8 = 2;
    /// The setup button: the board's BOOT button (GPIO9, to GND when pressed; a strapping pin, so
    /// it must not be held while the board powers up, which starts the ROM's download mode).
    /// Held for 5 s while the firmware runs, it opens setup mode.
    pub const BUTTON: u8 = 9;

    /// Takes the profile's pins out of `esp_hal::peripherals::Peripherals`.
    macro_rules! take_pins {
        ($p:ident) => {
            $crate::board::Pins {
                relay: $p.GPIO3.into(),
                opto: $p.GPIO4.into(),
                load_shedding: $p.GPIO0.into(),
                ready: $p.GPIO1.into(),
                rfid_sck: $p.GPIO6.into(),
                rfid_mosi: $p.GPIO7.into(),
                rfid_miso: $p.GPIO5.into(),
                rfid_cs: $p.GPIO10.into(),
                led: $p.GPIO8.into(),
                feedback: $p.GPIO2.into(),
                button: $p.GPIO9.into(),
            }
        };
    }
    pub(crate) use take_pins;
}

/// The seed's classic ESP32 (Xtensa): relay GPIO25, optocoupler GPIO5, load shedding GPIO32,
/// ready GPIO33; the RC522 on the VSPI pins; the status LED on GPIO2 (the on-board LED of most
/// DevKit boards).
#[cfg(feature = "esp32")]
pub mod pins {
    pub const BOARD: &str = "esp32";
    pub const RELAY: u8 = 25;
    /// GPIO5 is a strapping pin with a pull-up at reset: the optocoupler path must not act on the
    /// few microamps that gives before the firmware drives it OFF (see README).
    pub const OPTO: u8 = 5;
    pub const LOAD_SHEDDING: u8 = 32;
    pub const READY: u8 = 33;
    pub const RFID_SCK: u8 = 18;
    pub const RFID_MOSI: u8 = 23;
    pub const RFID_MISO: u8 = 19;
    pub const RFID_CS: u8 = 21;
    pub const LED: u8 = 2;
    pub const LED_ACTIVE_HIGH: bool = true;
    /// Optional motor-running feedback input (`PUMPPILOT_FEEDBACK=1`); input-only, no internal
    /// pull: fit an external resistor towards the "not running" level.
    pub const FEEDBACK: u8 = 34;
    /// The setup button: the DevKit's BOOT button (GPIO0, to GND when pressed; a strapping pin).
    pub const BUTTON: u8 = 0;

    macro_rules! take_pins {
        ($p:ident) => {
            $crate::board::Pins {
                relay: $p.GPIO25.into(),
                opto: $p.GPIO5.into(),
                load_shedding: $p.GPIO32.into(),
                ready: $p.GPIO33.into(),
                rfid_sck: $p.GPIO18.into(),
                rfid_mosi: $p.GPIO23.into(),
                rfid_miso: $p.GPIO19.into(),
                rfid_cs: $p.GPIO21.into(),
                led: $p.GPIO2.into(),
                feedback: $p.GPIO34.into(),
                button: $p.GPIO0.into(),
            }
        };
    }
    pub(crate) use take_pins;
}

use esp_hal::gpio::AnyPin;

/// The profile's pins, taken once at boot.
pub struct Pins {
    pub relay: AnyPin<'static>,
    pub opto: AnyPin<'static>,
    pub load_shedding: AnyPin<'static>,
    pub ready: AnyPin<'static>,
    pub rfid_sck: AnyPin<'static>,
    pub rfid_mosi: AnyPin<'static>,
    pub rfid_miso: AnyPin<'static>,
    pub rfid_cs: AnyPin<'static>,
    pub led: AnyPin<'static>,
    pub feedback: AnyPin<'static>,
    pub button: AnyPin<'static>,
}

impl Pins {
    /// True when every pin taken is the one the profile's numbers name (the panic path and the
    /// README rely on the numbers).
    pub fn match_profile(&self) -> bool {
        use esp_hal::gpio::Pin;
        [
            (&self.relay, pins::RELAY),
            (&self.opto, pins::OPTO),
            (&self.load_shedding, pins::LOAD_SHEDDING),
            (&self.ready, pins::READY),
            (&self.rfid_sck, pins::RFID_SCK),
            (&self.rfid_mosi, pins::RFID_MOSI),
            (&self.rfid_miso, pins::RFID_MISO),
            (&self.rfid_cs, pins::RFID_CS),
            (&self.led, pins::LED),
            (&self.feedback, pins::FEEDBACK),
            (&self.button, pins::BUTTON),
        ]
        .iter()
        .all(|(pin, number)| pin.number() == *number)
    }
}

/// Drives both motor outputs to OFF by writing the GPIO registers directly: no driver state, no
/// allocation, no lock, so it works from the panic handler whatever state the rest is in. Both
/// motor pins are below 32 on both profiles (bank 0 registers). The relay pin is left alone while
/// its OFF level is not known yet (a panic before the settings were read: the pin is then still
/// the high-impedance input it is at reset).
pub fn outputs_off_raw() {
    const _: () = assert!(pins::RELAY < 32 && pins::OPTO < 32);
    let relay = 1u32 << pins::RELAY;
    let opto = 1u32 << pins::OPTO;
    let high = |on: bool, active_high: bool| pumppilot_controller::pin_level(on, active_high);
    let mut outputs = [(opto, Some(crate::config::OPTO_ACTIVE_HIGH)), (relay, crate::settings::relay_active_high())];
    let (mut set, mut clear, mut enable) = (0, 0, 0);
    for (mask, active_high) in &mut outputs {
        let Some(active_high) = *active_high else { continue };
        if high(false, active_high) {
            set |= *mask;
        } else {
            clear |= *mask;
        }
        enable |= *mask;
    }
    let gpio = esp_hal::peripherals::GPIO::regs();
    // SAFETY: the write-1-to-set/clear registers only touch the bits given, which are the two
    // motor pins; any bit pattern is a valid value for them.
    unsafe {
        gpio.out_w1ts().write(|w| w.bits(set));
        gpio.out_w1tc().write(|w| w.bits(clear));
        gpio.enable_w1ts().write(|w| w.bits(enable));
    }
}
