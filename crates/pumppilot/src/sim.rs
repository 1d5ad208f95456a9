//! `pumppilot sim`: virtual devices against a PumpPilot server, printing what each relay did.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use pumppilot_sim::{DeviceSpec, Line, MqttSpec, Script, Summary, VirtualDevice, http_client, provision_devices};
use tokio::sync::mpsc;

/// Devices beyond this many print only their summary.
const PRINT_LIMIT: usize = 20;

#[derive(clap::Args)]
#[command(after_help = "SCRIPT steps, separated by commas (times from the start):\n  \
    shed@10s..25s       the grid is down (load shedding) from 10 s to 25 s\n  \
    notready@30s..35s   the pump reports not ready\n  \
    cut@40s..1m         the network is gone\n  \
    card@5s=04A1B2C3    a card is held to the reader\n\n\
    Examples:\n  \
    pumppilot sim --key pp_dev_…:pp_link_… --script 'shed@20s..35s, card@50s=04A1B2C3'\n  \
    pumppilot sim --mqtt 127.0.0.1:1883 --device-id 0190… --key pp_dev_…:pp_link_…\n  \
    PUMPPILOT_ADMIN_PASSWORD=… pumppilot sim --admin rahim --devices 2000 --duration 30s")]
pub struct SimArgs {
    /// The PumpPilot server.
    #[arg(long, env = "PUMPPILOT_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A device key, or `key:link-secret` for a device that signs its requests (repeat for several devices).
    #[arg(long = "key", env = "PUMPPILOT_DEVICE_KEY", value_delimiter = ',')]
    keys: Vec<String>,
    /// A file with one device key (or `key:link-secret`) per line.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// Register this many new devices for `--admin` (password in PUMPPILOT_ADMIN_PASSWORD) and run them.
    #[arg(long, requires = "admin")]
    devices: Option<usize>,
    /// The admin whose tenant gets the new devices.
    #[arg(long)]
    admin: Option<String>,
    /// What happens at every device (see below).
    #[arg(long, default_value = "")]
    script: String,
    /// How long to run: 90s, 5m… (default: 10 s past the script's last step, or until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Long-poll (`wait=`): commands arrive at once instead of at the next poll.
    #[arg(long)]
    long_poll: bool,
    /// Print only the summary.
    #[arg(long)]
    quiet: bool,
    /// Talk MQTT to the server's listener at HOST:PORT (`PUMPPILOT_MQTT_BIND`) instead of polling:
    /// reports go up, commands are pushed. Needs each device's id (`--device-id`, or `--admin`).
    #[arg(long, value_name = "HOST:PORT")]
    mqtt: Option<String>,
    /// The ids of the `--key` devices, in the same order (for `--mqtt`).
    #[arg(long = "device-id", value_delimiter = ',')]
    device_ids: Vec<String>,
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let script = Script::parse(&args.script).context("--script")?;
    let mut keys = args.keys.clone();
    if let Some(path) = &args.keys_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        keys.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    let mut ids = args.device_ids.clone();
    if args.mqtt.is_some() && ids.len() != keys.len() {
        bail!("--mqtt needs one --device-id for each --key ({} ids, {} keys)", ids.len(), keys.len());
    }
    if let (Some(count), Some(admin)) = (args.devices, &args.admin) {
        let password = std::env::var("PUMPPILOT_ADMIN_PASSWORD")
            .context("--devices needs the admin's password in PUMPPILOT_ADMIN_PASSWORD")?;
        eprintln!("Registering {count} devices for {admin} on {}…", args.server);
        for (id, credentials) in provision_devices(&args.server, admin, &password, count).await? {
            ids.push(id);
            keys.push(credentials);
        }
    }
    if keys.is_empty() {
        bail!("no device: give --key (or PUMPPILOT_DEVICE_KEY), --keys-file, or --admin with --devices");
    }
    let duration = args.duration.or_else(|| (!script.0.is_empty()).then(|| script.end() + Duration::from_secs(10)));
    let live = !args.quiet && keys.len() <= PRINT_LIMIT;
    let (observer, mut lines) = mpsc::unbounded_channel();
    let http = http_client(keys.len());
    let devices: Vec<VirtualDevice> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let mut spec = DeviceSpec::with_credentials(format!("device {}", n + 1), &args.server, key);
            spec.script = Some(script.clone());
            spec.settings.long_poll = args.long_poll;
            if keys.len() > PRINT_LIMIT {
                spec.tick = pumppilot_sim::device::FLEET_TICK;
            }
            spec.observer = live.then(|| observer.clone());
            spec.mqtt = args.mqtt.as_ref().map(|addr| MqttSpec { addr: addr.clone(), device_id: ids[n].clone() });
            VirtualDevice::spawn(spec, http.clone())
        })
        .collect();
    drop(observer);
    let target = args.mqtt.as_ref().map_or(args.server.as_str(), |addr| addr.as_str());
    let mode = match (&args.mqtt, args.long_poll) {
        (Some(_), _) => "over MQTT to",
        (None, true) => "long-polling",
        (None, false) => "polling",
    };
    eprintln!("{} virtual device(s) {mode} {target}; Ctrl-C stops them.", devices.len());

    let progress = match (live, duration) {
        (false, Some(duration)) if !args.quiet || devices.len() > PRINT_LIMIT => {
            let bar = ProgressBar::new(duration.as_secs());
            bar.set_style(ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} s {msg}")?);
            Some(bar)
        }
        _ => None,
    };
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            Some((name, at, what)) = lines.recv() => println!("{}", Line(&name, at, &what)),
            _ = second.tick() => {
                if let Some(bar) = &progress { bar.inc(1) }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) { break }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut timelines = Vec::with_capacity(devices.len());
    for device in devices {
        timelines.push(device.stop().await);
    }
    while let Ok((name, at, what)) = lines.try_recv() {
        println!("{}", Line(&name, at, &what));
    }
    let summary = Summary::of(&timelines);
    println!("Summary: {summary}");
    if summary.errors > 0 {
        bail!("{} polls got no usable answer", summary.errors);
    }
    Ok(())
}
