//! Firmware updates over the air, server side, with the real binary on a real port: the signing
//! key made, an image signed and published with `pumppilot firmware`; an unsigned, mis-signed,
//! oversized or repeated upload refused; the poll answer names the image only for the devices
//! its rollout includes (one tenant first, then a share); the device reads the signed description
//! and downloads the image in ranges (resuming), every answer signed on its link, and the
//! controller's own checks pass on what it got; the owner sees how far it got, from any server
//! of a fleet and after a restart.

mod common;

use std::process::Command;

use common::{PASSWORD, Site, start_server_with};
use pumppilot_controller::{Offer, Stage, Update};
use pumppilot_protocol::link::{self, LinkSecret};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn pumppilot(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pumppilot")).args(args).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "pumppilot {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A registered device with its key and link secret, signing as the firmware does.
struct Board {
    base: String,
    key: String,
    secret: LinkSecret,
    counter: std::cell::Cell<u64>,
}

impl Board {
    async fn register(site: &Site, admin: &common::Client) -> Board {
        let created = admin.ok("/api/admin/devices", json!({"name": "well"})).await;
        Board {
            base: site.base.clone(),
            key: created["deviceKey"].as_str().unwrap().to_owned(),
            secret: LinkSecret::parse(created["linkSecret"].as_str().unwrap()).unwrap(),
            counter: std::cell::Cell::new(0),
        }
    }

    /// A signed request; returns the status, the body and the headers after checking the
    /// answer's MAC (a test failure when it does not check).
    async fn send(&self, method: &str, path: &str, body: &[u8], range: Option<&str>) -> (StatusCode, Vec<u8>) {
        let counter = self.counter.get() + 1;
        self.counter.set(counter);
        let tag = self.secret.request_tag(method, path, counter, body);
        let mut request = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header(link::COUNTER_HEADER, counter)
            .header(link::MAC_HEADER, String::from_utf8(link::to_hex(&tag).to_vec()).unwrap());
        if method == "POST" {
            request = request.header("content-type", "application/json").body(body.to_vec());
        }
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let answer = request.send().await.unwrap();
        let (status, headers) = (answer.status(), answer.headers().clone());
        let bytes = answer.bytes().await.unwrap().to_vec();
        let mac = link::from_hex(headers[link::MAC_HEADER].as_bytes()).unwrap();
        assert!(self.secret.check_answer(&tag, status.as_u16(), counter, &bytes, &mac), "{path}: a signed answer");
        (status, bytes)
    }

    async fn poll(&self, fw: &str) -> Value {
        let body = format!(r#"{{"loadShedding":false,"ready":true,"relay":false,"fw":"{fw}"}}"#);
        let (status, answer) = self.send("POST", "/api/esp32/poll", body.as_bytes(), None).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&answer).unwrap()
    }
}

async fn upload(site: &Site, token: &str, query: &str, image: Vec<u8>) -> (StatusCode, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/api/master/firmware{query}", site.base))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(image)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_signed_image_is_published_rolled_out_and_downloaded_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("firmware.key");
    let public = pumppilot(&["firmware", "keygen", "--out", key.to_str().unwrap()], &[]);
    assert_eq!(public.len(), 64, "{public}");
    let image: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let image_path = dir.path().join("pump.bin");
    std::fs::write(&image_path, &image).unwrap();
    let signature = pumppilot(
        &["firmware", "sign", "--key", key.to_str().unwrap(), "--version", "2.0.0", image_path.to_str().unwrap()],
        &[],
    );
    assert_eq!(signature.len(), 128);

    let (mut server, base) = start_server_with(dir.path(), &[("PUMPPILOT_FIRMWARE_PUBLIC_KEY", &public)]);
    let site = Site { base: base.clone() };
    pumppilot(
        &["firmware", "publish", "--server", &base, "--version", "2.0.0", image_path.to_str().unwrap()],
        &[("PUMPPILOT_MASTER_PASSWORD", "master-password")],
    );

    // Refused uploads: unsigned, signed for another version, too large, the same version again,
    // and from someone who is not the master.
    let master = site.master().await;
    let token = master.token.clone().unwrap();
    let refused = [
        ("?version=2.0.1".to_owned(), image.clone(), StatusCode::BAD_REQUEST),
        (format!("?version=2.0.1&signature={signature}"), image.clone(), StatusCode::BAD_REQUEST),
        (format!("?version=2.0.1&signature={signature}"), vec![0; 2 * 1024 * 1024 + 1], StatusCode::PAYLOAD_TOO_LARGE),
        (format!("?version=2.0.0&signature={signature}"), image.clone(), StatusCode::CONFLICT),
    ];
    for (query, body, status) in refused {
        let (got, answer) = upload(&site, &token, &query, body).await;
        assert_eq!(got, status, "{query}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": PASSWORD})).await;
    master.ok("/api/master/admins", json!({"name": "Karim", "username": "karim", "password": PASSWORD})).await;
    let rahim = site.login("rahim", PASSWORD).await;
    let karim = site.login("karim", PASSWORD).await;
    let (status, _) =
        upload(&site, rahim.token.as_deref().unwrap(), &format!("?version=3.0.0&signature={signature}"), image.clone())
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, releases) = master.get("/api/master/firmware").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(releases.as_array().unwrap().len(), 1, "{releases}");
    assert_eq!((releases[0]["version"].as_str(), releases[0]["size"].as_u64()), (Some("2.0.0"), Some(40_000)));
    assert_eq!(releases[0]["rolloutPercent"], 0);

    // Meant for nobody yet; then for Rahim's pump first; then for everyone.
    let well = Board::register(&site, &rahim).await;
    let other = Board::register(&site, &karim).await;
    assert!(well.poll("pumppilot-fw/1.0.0").await.get("update").is_none());
    let rahim_id = master.get("/api/master/admins?q=rahim").await.1["admins"][0]["id"].clone();
    let set = master
        .request(
            reqwest::Method::PUT,
            "/api/master/firmware/2.0.0/rollout",
            Some(json!({"percent": 0, "adminId": rahim_id})),
        )
        .await;
    assert_eq!(set.0, StatusCode::OK, "{}", set.1);
    assert_eq!(well.poll("pumppilot-fw/1.0.0").await["update"], "2.0.0");
    let update_to = || async { rahim.get("/api/admin/devices").await.1[0]["updateTo"].clone() };
    assert_eq!(update_to().await, "2.0.0", "the owner sees the update offered");
    // The master's count of the fleet: every device, and each release's running and offered.
    let fleet = || async {
        let (status, fleet) = master.get("/api/master/firmware/devices").await;
        assert_eq!(status, StatusCode::OK, "{fleet}");
        fleet
    };
    assert_eq!(fleet().await, json!({"devices": 2, "releases": [{"version": "2.0.0", "running": 0, "offered": 1}]}));
    assert_eq!(rahim.get("/api/master/firmware/devices").await.0, StatusCode::FORBIDDEN);
    assert!(well.poll("pumppilot-fw/2.0.0").await.get("update").is_none(), "it runs it already");
    assert_eq!(update_to().await, Value::Null, "and then that it runs it");
    assert_eq!(fleet().await, json!({"devices": 2, "releases": [{"version": "2.0.0", "running": 1, "offered": 0}]}));
    assert!(other.poll("pumppilot-fw/1.0.0").await.get("update").is_none(), "another tenant waits");
    let missing =
        master.request(reqwest::Method::PUT, "/api/master/firmware/9.9.9/rollout", Some(json!({"percent": 100}))).await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    let bad =
        master.request(reqwest::Method::PUT, "/api/master/firmware/2.0.0/rollout", Some(json!({"percent": 101}))).await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
    master.request(reqwest::Method::PUT, "/api/master/firmware/2.0.0/rollout", Some(json!({"percent": 100}))).await;
    assert_eq!(other.poll("pumppilot-fw/1.0.0").await["update"], "2.0.0");
    assert_eq!(fleet().await, json!({"devices": 2, "releases": [{"version": "2.0.0", "running": 1, "offered": 1}]}));

    // The device reads the signed description, checks it with the key built into it, and
    // downloads in ranges; the third range is "dropped" and asked for again.
    let (status, description) = well.send("GET", "/api/esp32/firmware/2.0.0/release", b"", None).await;
    assert_eq!(status, StatusCode::OK);
    let description: Value = serde_json::from_slice(&description).unwrap();
    let offer = Offer {
        version: "2.0.0",
        size: 40_000,
        sha256: hex_array(description["sha256"].as_str().unwrap()),
        signature: hex_array(description["signature"].as_str().unwrap()),
    };
    let public_hex = public.clone();
    let public: [u8; 32] = hex_array(&public);
    let mut update = Update::begin(&public, 1_900_000, &offer).expect("the description checks");
    let mut slot = vec![0u8; 40_000];
    let mut asked = 0;
    while let Some((first, last)) = update.next_range(16 * 1024) {
        asked += 1;
        let range = format!("bytes={first}-{last}");
        let (status, bytes) = well.send("GET", "/api/esp32/firmware/2.0.0", b"", Some(&range)).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        if asked == 3 {
            continue; // the connection dropped: nothing taken, the same range is asked again
        }
        let at = update.received(first, &bytes).unwrap() as usize;
        slot[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    assert_eq!(update.finish(), Ok(()));
    assert_eq!(update.stage(), Stage::Verified);
    assert_eq!(slot, image);
    assert_eq!(asked, 4, "three ranges of at most 16 KiB, one asked twice");
    let (status, _) = well.send("GET", "/api/esp32/firmware/2.0.0", b"", Some("bytes=40000-")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "past the end");
    let (status, _) = well.send("GET", "/api/esp32/firmware/9.9.9", b"", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Karim's device starts its download: he sees how far it got, and still does once the server
    // was killed and started again (the progress is in the store, not in the server's memory).
    let (status, _) = other.send("GET", "/api/esp32/firmware/2.0.0", b"", Some("bytes=0-16383")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let progress = |owner: common::Client| async move {
        let devices = owner.get("/api/admin/devices").await.1;
        (devices[0]["updateState"].clone(), devices[0]["updatePercent"].clone())
    };
    assert_eq!(progress(karim.clone()).await, (json!("DOWNLOADING"), json!(40)));
    server.kill();
    let (_server, base) = start_server_with(dir.path(), &[("PUMPPILOT_FIRMWARE_PUBLIC_KEY", &public_hex)]);
    assert_eq!(progress(common::Client { base, ..karim }).await, (json!("DOWNLOADING"), json!(40)));
}

#[tokio::test]
async fn a_simulated_device_updates_itself_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("firmware.key");
    let public = pumppilot(&["firmware", "keygen", "--out", key.to_str().unwrap()], &[]);
    let image: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let image_path = dir.path().join("pump.bin");
    std::fs::write(&image_path, &image).unwrap();
    pumppilot(
        &["firmware", "sign", "--key", key.to_str().unwrap(), "--version", "3.1.0", image_path.to_str().unwrap()],
        &[],
    );
    let (_server, base) = start_server_with(dir.path(), &[("PUMPPILOT_FIRMWARE_PUBLIC_KEY", &public)]);
    pumppilot(
        &["firmware", "publish", "--server", &base, "--version", "3.1.0", image_path.to_str().unwrap()],
        &[("PUMPPILOT_MASTER_PASSWORD", "master-password")],
    );
    let site = Site { base: base.clone() };
    let master = site.master().await;
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": PASSWORD})).await;
    let rahim = site.login("rahim", PASSWORD).await;
    let created = rahim.ok("/api/admin/devices", json!({"name": "well"})).await;
    let set =
        master.request(reqwest::Method::PUT, "/api/master/firmware/3.1.0/rollout", Some(json!({"percent": 100}))).await;
    assert_eq!(set.0, StatusCode::OK);

    let credentials = format!("{}:{}", created["deviceKey"].as_str().unwrap(), created["linkSecret"].as_str().unwrap());
    let mut spec = pumppilot_sim::DeviceSpec::with_credentials("well", &base, &credentials);
    spec.firmware_key = Some(hex_array(&public));
    let (observer, mut seen) = tokio::sync::mpsc::unbounded_channel();
    spec.observer = Some(observer);
    let device = pumppilot_sim::VirtualDevice::spawn(spec, pumppilot_sim::http_client(1));
    let stages = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut stages = Vec::new();
        while let Some((_, _, happening)) = seen.recv().await {
            if let pumppilot_sim::Happening::Firmware { version, stage } = happening {
                assert_eq!(version, "3.1.0");
                let done =
                    matches!(stage, pumppilot_sim::UpdateStage::Confirmed | pumppilot_sim::UpdateStage::Failed(_));
                stages.push(stage);
                if done {
                    break;
                }
            }
        }
        stages
    })
    .await
    .expect("the update finished within 30 s");
    use pumppilot_sim::UpdateStage::*;
    assert_eq!(stages, [Offered, Verified, Rebooted, Confirmed]);
    // The owner sees the new version and no update left to do.
    let devices = rahim.get("/api/admin/devices").await.1;
    assert_eq!(devices[0]["firmware"], "pumppilot-sim/3.1.0", "{devices}");
    assert_eq!(devices[0]["updateTo"], Value::Null);
    let timeline = device.stop().await;
    assert!(timeline.relay_changes().is_empty(), "the relay never closed:\n{timeline}");
}

fn hex_array<const N: usize>(text: &str) -> [u8; N] {
    let bytes: Vec<u8> = (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect();
    bytes.try_into().unwrap()
}

/// Two servers of one fleet on one MongoDB (SecantusDB), in this process on one manual clock: a
/// device downloads an image from server A, and its owner, answered by server B, sees how far it
/// got; so does a server started after A stopped. A writes the progress when the download starts
/// and ends at once and in between at most every `PROGRESS_WRITE_EVERY`, not for every range.
#[tokio::test]
async fn a_download_served_by_one_server_shows_its_progress_on_another_and_after_a_restart() {
    use pumppilot_server::{PROGRESS_WRITE_EVERY, clock::ManualClock, config::Secret};
    use pumppilot_store::{FirmwareRelease, Rollout, Store};

    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let secret = || Some(Secret("a-test-secret-of-at-least-32-characters".into()));
    let clock = ManualClock::starting_now();
    // A release meant for every device, published before the servers start (they read it then).
    let image: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let store = pumppilot_store_mongodb::MongoStore::connect(&url).await.unwrap();
    let release = FirmwareRelease {
        version: "2.0.0".into(),
        size: 40_000,
        sha256: [1; 32],
        signature: [2; 64],
        published_at: pumppilot_server::clock::Clock::now(clock.as_ref()),
        rollout: Rollout::default(),
    };
    store.put_firmware(&release, &image).await.unwrap();
    store.set_firmware_rollout("2.0.0", Rollout { percent: 100, tenant: None }).await.unwrap();

    let a = common::spawn_app_at(&url, secret(), clock.clone()).await;
    let b = common::spawn_app_at(&url, secret(), clock.clone()).await;
    let t = a.tenant("rahim", 0, 0).await;
    let owner_on = |site: &common::TestApp| common::Client { base: site.base.clone(), ..t.admin.clone() };
    let (owner_on_a, owner_on_b) = (owner_on(&a), owner_on(&b));
    let progress = |owner: &common::Client| {
        let owner = owner.clone();
        async move {
            let (status, devices) = owner.get("/api/admin/devices").await;
            assert_eq!(status, StatusCode::OK, "{devices}");
            (devices[0]["updateState"].as_str().unwrap().to_owned(), devices[0]["updatePercent"].as_u64())
        }
    };
    let download = |range: &'static str| {
        let device = t.device.client.clone();
        async move {
            let answer = device
                .http
                .get(format!("{}/api/esp32/firmware/2.0.0", device.base))
                .bearer_auth(device.token.as_deref().unwrap())
                .header("range", range)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        }
    };
    let state = |name: &str, percent| (name.to_owned(), percent);
    assert_eq!(progress(&owner_on_b).await, state("OFFERED", None));

    // The first range, from A: written at once, so B shows it.
    download("bytes=0-16383").await;
    assert_eq!(progress(&owner_on_b).await, state("DOWNLOADING", Some(40)));
    // The next one at the same moment: A shows it, and has not written it yet.
    download("bytes=16384-32767").await;
    assert_eq!(progress(&owner_on_a).await, state("DOWNLOADING", Some(81)));
    assert_eq!(progress(&owner_on_b).await, state("DOWNLOADING", Some(40)), "not written for every range");
    // A range asked again once PROGRESS_WRITE_EVERY has passed: A writes how far it has got.
    clock.advance(PROGRESS_WRITE_EVERY);
    download("bytes=16384-32767").await;
    assert_eq!(progress(&owner_on_b).await, state("DOWNLOADING", Some(81)));
    // The last range is written at once.
    download("bytes=32768-39999").await;
    assert_eq!(progress(&owner_on_b).await, state("DOWNLOADING", Some(100)));

    // A stops; a server started afterwards knows as much.
    a.shutdown().await;
    let c = common::spawn_app_at(&url, secret(), clock.clone()).await;
    assert_eq!(progress(&owner_on(&c)).await, state("DOWNLOADING", Some(100)));
}
