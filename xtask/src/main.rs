//! `cargo xtask test`: every check this repository has, in the order a reviewer would run them.
//! `cargo xtask quick`: the inner loop (format check and the fast Rust tests, about a minute warm).
//! `cargo xtask soak`: the heavy runs kept out of `cargo test` (the 2,000-device fleet), with
//! their figures.
//!
//! Each step prints what it runs and how long it took; the first failure stops the run. What a
//! fresh machine lacks and can get from the registries (the ESP32-C3 target, the app's npm
//! packages, Debian's Chromium) is installed by the step that needs it.

mod app;
mod contract;
mod firmware;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

/// One check.
enum Step {
    /// `cargo` with these arguments, at the repository root.
    Cargo(&'static [&'static str]),
    /// `cargo` with these arguments, at the repository root, with `PUMPPILOT_TEST_STORE=mongodb`.
    CargoOnMongo(&'static [&'static str]),
    /// `cargo` with these arguments in the firmware workspace.
    FirmwareCargo(&'static [&'static str]),
    /// The OpenAPI document validated and the real server fuzzed against it (`contract.rs`).
    Contract,
    /// The firmware's release image, built and measured.
    FirmwareImage,
    /// Chromium and a Bengali font, from Debian, when missing.
    Browser,
    /// `npm ci` for the dashboard's browser test.
    DashboardInstall,
    /// The dashboard in Chromium against the real server.
    Dashboard,
    /// `npm ci` for the app.
    AppInstall,
    /// The app's typecheck and jest.
    AppCheck,
    /// Debian's Mosquitto, for the external-broker test among the Rust tests.
    Mosquitto,
    /// The app's web build in Chromium against the real server.
    AppEndToEnd,
}

const FORMAT: (&str, Step) = ("format", Step::Cargo(&["fmt", "--all", "--", "--check"]));
const LINT: (&str, Step) =
    ("lint", Step::Cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]));
const TESTS: (&str, Step) = ("tests", Step::Cargo(&["test", "--workspace", "--locked"]));
const MOSQUITTO: (&str, Step) = ("Mosquitto (external MQTT broker test)", Step::Mosquitto);
const CONTRACT: (&str, Step) = ("API contract", Step::Contract);
/// Every crate's tests but the binary's end-to-end ones, then the fast in-process API tests (all
/// on the server's manual clock).
const FAST_TESTS: (&str, Step) =
    ("fast tests", Step::Cargo(&["test", "--workspace", "--locked", "--exclude", "pumppilot"]));
const FAST_API_TESTS: (&str, Step) = (
    "fast API tests",
    Step::Cargo(&[
        "test",
        "-p",
        "pumppilot",
        "--locked",
        "--test",
        "api",
        "--test",
        "device_api",
        "--test",
        "live",
        "--test",
        "mqtt",
    ]),
);
/// The 2,000-device fleet for 30 s through the real binaries; prints polls, errors, p50/p99,
/// the server's CPU and memory.
const FLEET: (&str, Step) = (
    "fleet soak",
    Step::Cargo(&["test", "-p", "pumppilot", "--locked", "--test", "fleet", "--", "--ignored", "--nocapture"]),
);
/// A thousand SIGKILLs of the real server at random moments under mixed load.
const CHAOS: (&str, Step) = (
    "chaos soak",
    Step::Cargo(&["test", "-p", "pumppilot", "--locked", "--test", "crash", "--", "--ignored", "--nocapture"]),
);
/// The in-process API tests again, each server on a fresh database of SecantusDB (a MongoDB-wire
/// server the tests install and start).
const TESTS_ON_MONGO: (&str, Step) = (
    "API tests on MongoDB",
    Step::CargoOnMongo(&[
        "test",
        "--locked",
        "-p",
        "pumppilot",
        "--test",
        "api",
        "--test",
        "device_api",
        "--test",
        "live",
        "--test",
        "web",
        "--test",
        "alerts",
        "--test",
        "mqtt",
        "--",
        "--skip",
        "a_refresh_retried_at_once",
        // It holds the store with a write of its own on the SQLite file.
        "--skip",
        "a_device_that_spoke_while_its_report_waited_for_the_store",
        // On MongoDB already, whatever the pass.
        "--skip",
        "a_scrape_on_a_shared_store_reads_only_the_owners_with_a_run",
    ]),
);
const FIRMWARE_FORMAT: (&str, Step) = ("firmware format", Step::FirmwareCargo(&["fmt", "--", "--check"]));
const FIRMWARE_IMAGE: (&str, Step) = ("firmware image", Step::FirmwareImage);
const FIRMWARE_LINT: (&str, Step) =
    ("firmware lint", Step::FirmwareCargo(&["clippy", "--release", "--locked", "--", "-D", "warnings"]));
const BROWSER: (&str, Step) = ("browser", Step::Browser);
const DASHBOARD_INSTALL: (&str, Step) = ("dashboard test install", Step::DashboardInstall);
const DASHBOARD: (&str, Step) = ("dashboard in Chromium", Step::Dashboard);
const APP_INSTALL: (&str, Step) = ("app install", Step::AppInstall);
const APP_CHECK: (&str, Step) = ("app typecheck and jest", Step::AppCheck);
const APP_E2E: (&str, Step) = ("app in Chromium", Step::AppEndToEnd);

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let steps: &[(&str, Step)] = match task.as_str() {
        "test" => &[
            FORMAT,
            FIRMWARE_FORMAT,
            LINT,
            MOSQUITTO,
            TESTS,
            CONTRACT,
            TESTS_ON_MONGO,
            FIRMWARE_IMAGE,
            FIRMWARE_LINT,
            BROWSER,
            DASHBOARD_INSTALL,
            DASHBOARD,
            APP_INSTALL,
            APP_CHECK,
            APP_E2E,
        ],
        "quick" => &[FORMAT, FAST_TESTS, FAST_API_TESTS],
        "soak" => &[FLEET, CHAOS],
        "lint" => &[FORMAT, FIRMWARE_FORMAT, LINT],
        "firmware" => &[FIRMWARE_FORMAT, FIRMWARE_IMAGE, FIRMWARE_LINT],
        "contract" => &[CONTRACT],
        "browser" => &[BROWSER, DASHBOARD_INSTALL, DASHBOARD, APP_INSTALL, APP_CHECK, APP_E2E],
        _ => {
            eprintln!(
                "usage: cargo xtask test       every check: format, clippy -D warnings, all tests, the firmware image"
            );
            eprintln!(
                "       cargo xtask quick      the inner loop: format check and the fast Rust tests (about a minute)"
            );
            eprintln!(
                "       cargo xtask soak       heavy runs: 2,000 devices for 30 s; prints polls, errors, p50/p99, CPU, RSS"
            );
            eprintln!("       cargo xtask lint       format check and clippy only");
            eprintln!("       cargo xtask firmware   build the ESP32-C3 firmware image and report its size");
            eprintln!(
                "       cargo xtask contract   the OpenAPI document validated, the real server fuzzed against it"
            );
            eprintln!(
                "       cargo xtask browser    the dashboard and the mobile app in Chromium (and the app's jest)"
            );
            return ExitCode::from(2);
        }
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    for (i, (name, step)) in steps.iter().enumerate() {
        eprintln!("==> [{}/{}] {name}", i + 1, steps.len());
        let step_started = Instant::now();
        let result = match step {
            Step::Cargo(args) => run(Command::new(&cargo).args(*args).current_dir(root())),
            Step::CargoOnMongo(args) => {
                run(Command::new(&cargo).args(*args).env("PUMPPILOT_TEST_STORE", "mongodb").current_dir(root()))
            }
            // The image step, always before the firmware lint, adds the target; formatting needs none.
            Step::FirmwareCargo(args) => run(Command::new(&cargo).args(*args).current_dir(root().join("firmware"))),
            Step::Contract => contract::check(&root(), &cargo),
            Step::FirmwareImage => firmware::check(&cargo),
            Step::Browser => app::ensure_browser(),
            Step::Mosquitto => app::ensure_mosquitto(),
            Step::DashboardInstall => app::install(&root(), "web-tests"),
            Step::Dashboard => app::dashboard(&root(), &cargo),
            Step::AppInstall => app::install(&root(), "mobile"),
            Step::AppCheck => app::check(&root()),
            Step::AppEndToEnd => app::app_in_browser(&root(), &cargo),
        };
        match result {
            Ok(()) => eprintln!("    {name} ok in {:.0?}", step_started.elapsed()),
            Err(err) => {
                eprintln!("    {name} FAILED: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("==> all checks passed in {:.0?}", started.elapsed());
    ExitCode::SUCCESS
}

/// The repository root (xtask/ sits in it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf()
}

/// Runs a command, printing it first; an exit other than success is an error.
pub fn run(command: &mut Command) -> Result<(), String> {
    let shown = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>();
    eprintln!("    {}", shown.join(" "));
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("exited with {status}")),
        Err(err) => Err(format!("could not start: {err}")),
    }
}
