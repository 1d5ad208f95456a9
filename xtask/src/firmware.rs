//! `firmware`: builds the device image (ESP32-C3 profile) the way a release is built, and reports
//! how much flash it takes.
//!
//! The firmware is its own cargo workspace (`firmware/`, excluded from the root one) with its
//! own target in `firmware/.cargo/config.toml`; this only installs the target when it is
//! missing, builds with the committed lock file, and reads the ELF's program headers.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

/// The firmware's target triple (the ESP32-C3 is RISC-V; see `firmware/README.md`).
pub const TARGET: &str = "riscv32imc-unknown-none-elf";
/// The binary's name in `firmware/Cargo.toml`.
const BINARY: &str = "pumppilot-firmware";

/// Installs the target if needed, builds `firmware/` in release mode with `--locked`, and prints
/// the image size (the bytes the loadable segments put in flash).
pub fn check(cargo: &str) -> Result<(), String> {
    let firmware = firmware_dir();
    ensure_target()?;
    let target_dir = firmware.join("target");
    let started = Instant::now();
    eprintln!("    cargo build --release --locked (in firmware/, target {TARGET})");
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&firmware)
        .status()
        .map_err(|err| format!("could not run {cargo}: {err}"))?;
    if !status.success() {
        return Err(format!("firmware build failed ({status})"));
    }
    let elf = target_dir.join(TARGET).join("release").join(BINARY);
    let bytes = std::fs::read(&elf).map_err(|err| format!("cannot read the image {}: {err}", elf.display()))?;
    let size = flash_bytes(&bytes).map_err(|err| format!("{}: {err}", elf.display()))?;
    let table = std::fs::read_to_string(firmware.join("partitions.csv"))
        .map_err(|err| format!("cannot read firmware/partitions.csv: {err}"))?;
    let slot = ota_slot_bytes(&table)?;
    println!(
        "firmware: esp32c3 image {} bytes (flash) of a {}-byte OTA slot ({}%), built in {:.0?}",
        thousands(size),
        thousands(slot),
        size * 100 / slot.max(1),
        started.elapsed()
    );
    if size > slot {
        return Err(format!("the image ({size} bytes) does not fit an OTA slot ({slot} bytes)"));
    }
    Ok(())
}

/// The size of the smaller OTA app slot of an ESP-IDF partition table (CSV); an error unless it
/// has two (`ota_0`, `ota_1`) and an `otadata` partition, which updates over the air need.
pub fn ota_slot_bytes(table: &str) -> Result<u64, String> {
    let mut slots = Vec::new();
    let mut otadata = false;
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [_, kind, subtype, _, size, ..] = fields.as_slice() else {
            return Err(format!("partitions.csv: `{line}` is not name, type, subtype, offset, size"));
        };
        let size = match size.strip_prefix("0x").or_else(|| size.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => size.parse(),
        }
        .map_err(|_| format!("partitions.csv: `{size}` is not a size"))?;
        match (*kind, *subtype) {
            ("app", sub) if sub.starts_with("ota_") => slots.push(size),
            ("data", "ota") => otadata = true,
            _ => {}
        }
    }
    if slots.len() < 2 || !otadata {
        return Err("partitions.csv needs otadata and two OTA app slots (ota_0, ota_1)".into());
    }
    Ok(slots.into_iter().min().unwrap_or(0))
}

fn firmware_dir() -> PathBuf {
    // xtask/ sits at the repository root, beside firmware/.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).join("firmware")
}

/// Adds the target through rustup unless the toolchain already has it.
fn ensure_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|err| format!("rustup is needed to add the {TARGET} target ({err})"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    eprintln!("    rustup target add {TARGET}");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|err| format!("could not run rustup: {err}"))?;
    if status.success() { Ok(()) } else { Err(format!("rustup target add {TARGET} failed ({status})")) }
}

/// The sum of the file sizes of an ELF32 little-endian image's `PT_LOAD` segments: what the
/// image puts in flash (`espflash save-image` adds a few headers and padding on top).
pub fn flash_bytes(elf: &[u8]) -> Result<u64, String> {
    const PT_LOAD: u32 = 1;
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |at: usize| elf.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file".into());
    }
    if elf.get(4..6) != Some([1u8, 1].as_slice()) {
        return Err("not a 32-bit little-endian ELF file".into());
    }
    let truncated = || "truncated ELF header".to_string();
    let table = u32_at(28).ok_or_else(truncated)? as usize;
    let entry_size = usize::from(u16_at(42).ok_or_else(truncated)?);
    let entries = usize::from(u16_at(44).ok_or_else(truncated)?);
    if entry_size < 32 {
        return Err(format!("program header entries of {entry_size} bytes"));
    }
    (0..entries).try_fold(0u64, |total, i| {
        let at = table + i * entry_size;
        let kind = u32_at(at).ok_or("truncated program header table")?;
        let file_size = u32_at(at + 16).ok_or("truncated program header table")?;
        Ok(if kind == PT_LOAD { total + u64::from(file_size) } else { total })
    })
}

/// `578812` → `"578,812"`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF32 header with `segments` as (type, file size) program headers.
    fn elf(segments: &[(u32, u32)]) -> Vec<u8> {
        let mut bytes = vec![0u8; 52];
        bytes[..6].copy_from_slice(b"\x7fELF\x01\x01");
        bytes[28..32].copy_from_slice(&52u32.to_le_bytes());
        bytes[42..44].copy_from_slice(&32u16.to_le_bytes());
        bytes[44..46].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for &(kind, file_size) in segments {
            let mut header = [0u8; 32];
            header[..4].copy_from_slice(&kind.to_le_bytes());
            header[16..20].copy_from_slice(&file_size.to_le_bytes());
            header[20..24].copy_from_slice(&(file_size * 2).to_le_bytes());
            bytes.extend_from_slice(&header);
        }
        bytes
    }

    #[test]
    fn the_ota_slot_is_read_from_the_partition_table() {
        let table = std::fs::read_to_string(firmware_dir().join("partitions.csv")).unwrap();
        assert_eq!(ota_slot_bytes(&table), Ok(0x1E_0000));
        assert!(ota_slot_bytes("nvs, data, nvs, 0x9000, 0x4000\nfactory, app, factory, 0x10000, 0x3F0000").is_err());
        assert!(ota_slot_bytes("otadata, data, ota, 0xd000, 0x2000\nota_0, app, ota_0, 0x10000, zz\n").is_err());
        let uneven = "otadata, data, ota, 0xd000, 0x2000\nota_0, app, ota_0, 0x10000, 0x200000\nota_1, app, ota_1, 0x210000, 0x100000";
        assert_eq!(ota_slot_bytes(uneven), Ok(0x10_0000), "the smaller slot bounds an update");
    }

    #[test]
    fn counts_only_loadable_file_bytes() {
        assert_eq!(flash_bytes(&elf(&[(1, 39_800), (1, 0), (0x6474_e551, 999), (1, 446_892)])), Ok(486_692));
        assert_eq!(flash_bytes(&elf(&[])), Ok(0));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(flash_bytes(b"MZ\x90\x00").is_err());
        let mut elf64 = elf(&[(1, 10)]);
        elf64[4] = 2;
        assert!(flash_bytes(&elf64).is_err());
        let whole = elf(&[(1, 10)]);
        assert!(flash_bytes(&whole[..60]).is_err());
        assert!(flash_bytes(&whole[..30]).is_err());
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(578_812), "578,812");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
