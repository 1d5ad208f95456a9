//! The browser checks: Debian's Chromium and a Bengali font (installed with apt when missing);
//! the web dashboard driven in Chromium against the real server binary (`web-tests/`); and the
//! mobile app's `npm ci`, typecheck and jest, and its web build in Chromium (`mobile/`).

use std::{path::Path, process::Command};

use crate::run;

/// Debian packages the browser test needs: the browser, and a font that has Bangla in it (without
/// one, Bangla text passes the checks but shows as empty boxes in the screenshots).
const PACKAGES: &[&str] = &["chromium", "fonts-lohit-beng-bengali"];

/// Installs the browser's packages with apt unless they are there already.
pub fn ensure_browser() -> Result<(), String> {
    ensure(PACKAGES)
}

/// Installs Debian's Mosquitto (the external broker of `crates/pumppilot/tests/mqtt_broker.rs`)
/// unless it is there already.
pub fn ensure_mosquitto() -> Result<(), String> {
    ensure(&["mosquitto"])
}

/// Installs `packages` with apt unless they are all there already.
fn ensure(packages: &[&str]) -> Result<(), String> {
    let installed = Command::new("dpkg-query")
        .args(["--show", "--showformat", "${db:Status-Status}\n"])
        .args(packages)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).lines().filter(|l| *l == "installed").count())
        .unwrap_or(0);
    if installed == packages.len() {
        eprintln!("    {} already installed", packages.join(", "));
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends"]).args(packages))
}

/// `npm ci` in `folder` (`mobile` or `web-tests`).
pub fn install(root: &Path, folder: &str) -> Result<(), String> {
    run(npm(root, folder).args(["ci", "--no-audit", "--no-fund"]))
}

/// The app's typecheck and jest.
pub fn check(root: &Path) -> Result<(), String> {
    run(npm(root, "mobile").args(["run", "check"]))
}

/// The dashboard in Chromium against the server binary.
pub fn dashboard(root: &Path, cargo: &str) -> Result<(), String> {
    with_server_and_shots(root, cargo, |bin, shots| {
        run(npm(root, "web-tests").arg("test").env("PUMPPILOT_BIN", bin).env("SCREENSHOTS", shots))
    })
}

/// The app's web export in Chromium against the server binary.
pub fn app_in_browser(root: &Path, cargo: &str) -> Result<(), String> {
    with_server_and_shots(root, cargo, |bin, shots| {
        run(npm(root, "mobile").args(["run", "e2e"]).env("PUMPPILOT_BIN", bin).env("E2E_SCREENSHOTS", shots))
    })
}

/// Builds `target/debug/pumppilot` (already there after the tests step) and runs `test` with its
/// path and a temporary screenshot folder, so the screenshots kept in the repository stay as
/// they are.
fn with_server_and_shots(
    root: &Path,
    cargo: &str,
    test: impl FnOnce(&Path, &Path) -> Result<(), String>,
) -> Result<(), String> {
    run(Command::new(cargo).args(["build", "--locked", "-p", "pumppilot"]).current_dir(root))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let shots = std::env::temp_dir().join(format!("pumppilot-shots-{}", std::process::id()));
    let result = test(&target.join("debug").join("pumppilot"), &shots);
    let _ = std::fs::remove_dir_all(&shots);
    result
}

fn npm(root: &Path, folder: &str) -> Command {
    let mut command = Command::new("npm");
    command.current_dir(root.join(folder)).env("CI", "1").env("EXPO_NO_TELEMETRY", "1").env("EXPO_OFFLINE", "1");
    command
}
