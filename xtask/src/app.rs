//! The mobile app's checks: Debian's Chromium and a Bengali font for the browser test (installed
//! with apt when missing), `npm ci`, the typecheck and jest, and the web build driven in Chromium
//! against the real server binary.

use std::{path::Path, process::Command};

use crate::run;

/// Debian packages the browser test needs: the browser, and a font that has Bangla in it (without
/// one, Bangla text passes the checks but shows as empty boxes in the screenshots).
const PACKAGES: &[&str] = &["chromium", "fonts-lohit-beng-bengali"];

/// Installs the packages with apt unless they are there already.
pub fn ensure_browser() -> Result<(), String> {
    let installed = Command::new("dpkg-query")
        .args(["--show", "--showformat", "${db:Status-Status}\n"])
        .args(PACKAGES)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).lines().filter(|l| *l == "installed").count())
        .unwrap_or(0);
    if installed == PACKAGES.len() {
        eprintln!("    {} already installed", PACKAGES.join(", "));
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends"]).args(PACKAGES))
}

/// `npm ci` in `mobile/`.
pub fn install(root: &Path) -> Result<(), String> {
    run(npm(root).args(["ci", "--no-audit", "--no-fund"]))
}

/// Typecheck and jest.
pub fn check(root: &Path) -> Result<(), String> {
    run(npm(root).args(["run", "check"]))
}

/// The web export in Chromium against `target/debug/pumppilot` (built by the tests step), with
/// the screenshots written to a temporary folder so the tracked ones stay as they are.
pub fn end_to_end(root: &Path, cargo: &str) -> Result<(), String> {
    run(Command::new(cargo).args(["build", "--locked", "-p", "pumppilot"]).current_dir(root))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let shots = std::env::temp_dir().join(format!("pumppilot-e2e-{}", std::process::id()));
    let result = run(npm(root)
        .args(["run", "e2e"])
        .env("PUMPPILOT_BIN", target.join("debug").join("pumppilot"))
        .env("E2E_SCREENSHOTS", &shots));
    let _ = std::fs::remove_dir_all(&shots);
    result
}

fn npm(root: &Path) -> Command {
    let mut command = Command::new("npm");
    command.current_dir(root.join("mobile")).env("CI", "1").env("EXPO_NO_TELEMETRY", "1").env("EXPO_OFFLINE", "1");
    command
}
