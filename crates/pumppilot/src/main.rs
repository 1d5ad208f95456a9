//! `pumppilot`: serve (the default), create-master, sim, bench.

mod backup;
mod bench;
mod demo;
mod firmware;
mod migrate;
mod sim;

use std::{io::IsTerminal, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use pumppilot_server::{Settings, app};

#[derive(Parser)]
#[command(name = "pumppilot", version, about = "Run shared water pumps: API, dashboard and devices in one binary.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the device endpoints (the default). Settings come from PUMPPILOT_* variables.
    Serve {
        /// Run a demo in memory: two pumps with farmers, minutes and simulated devices.
        #[arg(long)]
        demo: bool,
    },
    /// Create a master admin in the configured store (password from PUMPPILOT_MASTER_PASSWORD or stdin).
    CreateMaster {
        #[arg(long, default_value = "master")]
        username: String,
    },
    /// Run virtual devices (the firmware's decision logic) against a server and print their relays.
    Sim(sim::SimArgs),
    /// Measure the device poll path against a trivial handler on this machine.
    Bench(bench::BenchArgs),
    /// One load generator process of `bench --fleet` (started by it).
    #[command(hide = true)]
    BenchDevices(bench::load::DevicesArgs),
    /// Copy an installation from one store to another (SQLite to MongoDB or back) and verify it.
    Migrate(migrate::MigrateArgs),
    /// Firmware images for updates over the air: make the signing key, sign, publish.
    #[command(subcommand)]
    Firmware(firmware::FirmwareCommand),
    /// Write a consistent copy of the store (PUMPPILOT_DATABASE_URL) and the secret into one file,
    /// while the server runs.
    Backup(backup::BackupArgs),
    /// Fill the empty store (PUMPPILOT_DATABASE_URL) from a backup file, and verify it.
    Restore(backup::RestoreArgs),
}

/// jemalloc, with its background thread on (the crate's `background_threads`): freed pages go
/// back to the system within its decay time (10 s) while the server runs. glibc's malloc kept
/// free memory of the heap's peak while a fleet came online (10,000 MQTT devices: 4.4 KB a device
/// over the idle server with jemalloc, the same with glibc and a `malloc_trim` every 10 s, 7.0 KB
/// on glibc as it was; `docs/MEASUREMENTS.md`, the allocator row), and a large block such as a
/// sign-in's Argon2id (19 MiB) is jemalloc's own extent, given back the same way.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            say_to(&mut std::io::stderr(), format_args!("pumppilot: {err:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// What is logged without `PUMPPILOT_LOG`.
const DEFAULT_LOG: &str = "info,tower_http=warn";

/// `PUMPPILOT_LOG`, read strictly: a level, or `target=level` pairs, comma-separated. A typo is
/// refused with the start, where the filter would take a bare word (`verbose`) as a target's name
/// and log nothing else, or drop a broken list for the default without a word.
fn log_filter(text: &str) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |directive: &str| {
        let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
        LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
    };
    let refused = || {
        anyhow::anyhow!(
            "invalid setting PUMPPILOT_LOG {text:?}: a level (trace, debug, info, warn, error or off) or target=level \
             pairs, comma-separated, like {DEFAULT_LOG}"
        )
    };
    anyhow::ensure!(text.split(',').all(|directive| is_level(directive.trim())), refused());
    tracing_subscriber::EnvFilter::try_new(text).map_err(|_| refused())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // A load generator's standard output is what it tells the bench (`bench::load`); its log goes
    // to standard error, where the bench's own goes.
    let writer = match cli.command {
        Some(Command::BenchDevices(_)) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
        _ => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stdout),
    };
    let filter = match std::env::var("PUMPPILOT_LOG") {
        Ok(text) => log_filter(&text)?,
        Err(_) => tracing_subscriber::EnvFilter::new(DEFAULT_LOG),
    };
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter)
        .with_target(false)
        // Colours for a person at a terminal, plain lines for journald and files.
        .with_ansi(std::io::stdout().is_terminal())
        // A log that cannot be written (a full disk, a closed pipe) loses lines, never a request:
        // by default the subscriber would report the failure with `eprintln!`, which panics when
        // standard error fails too (as it does when both go to one full disk).
        .log_internal_errors(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let bench = matches!(cli.command, Some(Command::Bench(_)));
    let result = runtime.block_on(async {
        let result = match cli.command.unwrap_or(Command::Serve { demo: false }) {
            Command::Serve { demo: false } => serve().await,
            Command::Serve { demo: true } => demo::serve(settings()?).await,
            Command::CreateMaster { username } => create_master(&username).await,
            Command::Sim(args) => sim::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::BenchDevices(args) => bench::load::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Firmware(command) => firmware::run(command).await,
            Command::Backup(args) => backup::backup(settings()?, args).await,
            Command::Restore(args) => backup::restore(settings()?, args).await,
        };
        pumppilot::store::close_opened().await;
        result
    });
    drop(runtime);
    if bench {
        bench::remove_folder();
    }
    result
}

fn settings() -> anyhow::Result<Settings> {
    Settings::from_env().map_err(|e| anyhow::anyhow!("invalid setting {e}"))
}

async fn serve() -> anyhow::Result<()> {
    let mut settings = settings()?;
    settings.master_password_file = Some(pumppilot::store::master_password_file(&settings));
    // The addresses first: a start that cannot listen stops before it makes anything on disk (the
    // data folder, a new database, its secret, the lock file).
    let listeners = app::Listeners::bind(&settings).await?;
    // Held until the process ends: a second server on the same SQLite file is refused.
    let _serving = pumppilot::store::lock_for_serving(&settings)?;
    let secret = pumppilot::store::load_secret(&settings)?;
    let store = pumppilot::store::open_store(&settings).await?;
    let running = app::spawn_on(listeners, settings.clone(), store, secret).await?;
    first_master(&running.app, &settings).await?;
    if let Some(mqtt) = running.mqtt_addr {
        say(format_args!("Devices may connect over MQTT on {mqtt}"));
    }
    say(format_args!("PumpPilot is serving on http://{} (store: {})", running.addr, redact(&settings.database_url)));
    shutdown_signal().await;
    say(format_args!("Stopping: finishing the requests in flight and writing the last device telemetry."));
    running.shutdown().await
}

/// Creates the master admin at the first start. A made-up password is shown once to a person at
/// a terminal; anywhere else standard output is kept (systemd's journal, for months, readable by
/// admins), so the password goes to a file only the server's user can read, and the output names
/// the file. The server deletes it when the master changes that password (`serve` names the file
/// in the settings); else the operator deletes it once signed in (README, "Running it as a
/// service"). Each start reminds them while it is there.
async fn first_master(app: &app::App, settings: &Settings) -> anyhow::Result<()> {
    let at_terminal = std::io::stdout().is_terminal();
    let file = pumppilot::store::master_password_file(settings);
    let kept = std::cell::Cell::new(false);
    let keep = |_: &str, password: &str| match at_terminal {
        true => Ok(()),
        false => {
            pumppilot::store::keep_master_password(&file, password).map(|()| kept.set(true)).map_err(|e| e.to_string())
        }
    };
    let made = app::first_master(app, keep).await.map_err(|e| {
        // A password kept for a master that was not made is no one's.
        if kept.get() {
            let _ = std::fs::remove_file(&file);
        }
        anyhow::anyhow!(e.message)
    })?;
    match made {
        Some((username, password)) if at_terminal => say(format_args!(
            "Created the master admin. Sign in with username `{username}` and password `{password}` (shown only this once)."
        )),
        Some((username, _)) => say(format_args!(
            "Created the master admin `{username}`. Its password is in {} (readable by this user only): sign in, \
             keep the password somewhere safe, then delete the file.",
            file.display()
        )),
        None if file.exists() => say(format_args!(
            "The master's first password is still in {}: delete the file once you have signed in and kept it.",
            file.display()
        )),
        None => {}
    }
    Ok(())
}

/// One line on standard output for the operator. Unlike `println!`, a failed write (a full disk,
/// a closed pipe) is not a panic: the server goes on serving without the line.
fn say(line: std::fmt::Arguments<'_>) {
    say_to(&mut std::io::stdout(), line);
}

fn say_to(out: &mut impl std::io::Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A database URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

async fn create_master(username: &str) -> anyhow::Result<()> {
    let settings = settings()?;
    let password = match &settings.master_password {
        Some(password) => password.0.clone(),
        None if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!("Password for {username} (8 characters or more): "))
                .context("reading the password")?
        }
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    anyhow::ensure!(pumppilot_server::keys::password_allowed(&password), "the password must have 8 to 256 characters");
    // A new SQLite database is made with its secret beside it, as `serve` makes one (a database
    // without its secret is refused at the start).
    if pumppilot::store::Backend::of(&settings.database_url)? == pumppilot::store::Backend::Sqlite {
        pumppilot::store::load_secret(&settings)?;
    }
    let store: Arc<dyn pumppilot_store::Store> = pumppilot::store::open_store(&settings).await?;
    let master = app::create_master(store.as_ref(), username, &password, settings.clock.now())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    say(format_args!("Created master admin `{}`.", master.username));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_setting_that_would_silence_the_log_is_refused() {
        for good in ["info", "debug", "info,tower_http=warn", "warn,pumppilot_server=debug", "OFF"] {
            assert!(super::log_filter(good).is_ok(), "{good}");
        }
        for bad in ["verbose", "info,,=foo[", "", "info,chatty", "pumppilot_server=loud"] {
            let error = super::log_filter(bad).unwrap_err().to_string();
            assert!(error.starts_with("invalid setting PUMPPILOT_LOG"), "{bad}: {error}");
        }
    }

    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(super::redact("mongodb://app:hunter2@db:27017/pp"), "mongodb://***@db:27017/pp");
        assert_eq!(super::redact("sqlite://./data/pumppilot.db"), "sqlite://./data/pumppilot.db");
    }
}
