//! `pumppilot backup` while the server runs and writes, and `pumppilot restore` into an empty
//! store: through the real binary, with the data, the secret (old tokens and device keys still
//! work) and the checks of both.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{Client, PASSWORD, Site, start_server};
use reqwest::StatusCode;
use serde_json::json;

fn pumppilot(dir: &Path, args: &[&str]) -> Output {
    pumppilot_on(dir, &format!("sqlite://{}", dir.join("pumppilot.db").display()), None, args)
}

fn pumppilot_on(dir: &Path, url: &str, secret: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pumppilot"));
    command.args(args).current_dir(dir).env_remove("PUMPPILOT_SECRET").env("PUMPPILOT_LOG", "warn");
    if let Some(secret) = secret {
        command.env("PUMPPILOT_SECRET", secret);
    }
    command.env("PUMPPILOT_DATABASE_URL", url).output().unwrap()
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn refused(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must be refused: {}", String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains(expected), "{expected:?} missing from: {stderr}");
}

#[tokio::test]
async fn a_backup_taken_while_the_server_writes_restores_into_an_empty_store_with_its_secret() {
    let live = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server(live.path());
    let site = Site { base };
    let t = site.tenant("rahim", 2, 30).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    common::leave_alerts(&t.admin, &t.users[0], "rahim-farmer-0", "+8801711000001").await;
    let alerts = common::alerts_of(&[&t.admin, &t.users[0]]).await;

    // Writes go on while the copy is taken: recharges and polls.
    let writer = {
        let admin = t.admin.clone();
        let user = t.user_ids[1].clone();
        let device = t.device.client.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                admin.ok("/api/admin/recharge", json!({"userId": user, "minutes": 1})).await;
                device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=1&fw=test").await;
            }
        })
    };
    let file = live.path().join("nightly.ppbackup");
    let out = tokio::task::spawn_blocking({
        let (dir, file) = (live.path().to_path_buf(), file.clone());
        move || pumppilot(&dir, &["backup", file.to_str().unwrap()])
    })
    .await
    .unwrap();
    let said = succeeded(&out);
    assert!(said.contains("Backed up") && said.contains("keep it private"), "{said}");
    writer.await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let head = std::fs::read(&file).unwrap();
    assert!(head.starts_with(b"PUMPPILOT-BACKUP 1 "));
    assert!(
        std::fs::read_dir(live.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("scratch"))
    );
    // A second backup never overwrites a file.
    refused(&pumppilot(live.path(), &["backup", file.to_str().unwrap()]), "exists already");
    let device_key = t.device.client.token.clone().unwrap();
    server.kill();

    // Restored into an empty folder: the data, the secret, the old device key.
    let fresh = tempfile::tempdir().unwrap();
    let said = succeeded(&pumppilot(fresh.path(), &["restore", file.to_str().unwrap()]));
    assert!(said.contains("verified"), "{said}");
    assert_eq!(
        std::fs::read_to_string(fresh.path().join("secret.key")).unwrap().trim(),
        std::fs::read_to_string(live.path().join("secret.key")).unwrap().trim(),
        "the secret came with the backup"
    );
    let (mut restored, base) = start_server(fresh.path());
    let site = Site { base };
    let admin = site.login("rahim", PASSWORD).await;
    let (status, users) = admin.get("/api/admin/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users.as_array().unwrap().len(), 2);
    let device = Client { token: Some(device_key), ..site.anonymous() };
    let (status, answer) = device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=1&fw=test").await;
    assert_eq!(status, StatusCode::OK, "the old device key works: {answer}");
    let farmer = site.login("rahim-farmer-0", PASSWORD).await;
    assert_eq!(common::alerts_of(&[&admin, &farmer]).await, alerts, "the phone, the push token and the bells came");
    restored.kill();

    // A store that holds something is refused unless told.
    refused(&pumppilot(fresh.path(), &["restore", file.to_str().unwrap()]), "already holds");
    succeeded(&pumppilot(fresh.path(), &["restore", "--force", file.to_str().unwrap()]));
}

fn damaged_copy(file: &Path, at_end: usize) -> PathBuf {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() - at_end;
    bytes[at] ^= 0x01;
    let copy = file.with_extension("damaged");
    std::fs::write(&copy, bytes).unwrap();
    copy
}

#[tokio::test]
async fn a_damaged_or_foreign_file_is_refused_and_the_target_left_empty() {
    let live = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server(live.path());
    Site { base }.tenant("rahim", 1, 10).await;
    let file = live.path().join("pp.backup");
    succeeded(&pumppilot(live.path(), &["backup", file.to_str().unwrap()]));
    server.kill();

    let fresh = tempfile::tempdir().unwrap();
    refused(&pumppilot(fresh.path(), &["restore", damaged_copy(&file, 100).to_str().unwrap()]), "damaged");
    let text = std::fs::read(&file).unwrap();
    let manifest_at = text.iter().position(|&b| b == b'\n').unwrap() + 20;
    refused(
        &pumppilot(fresh.path(), &["restore", damaged_copy(&file, text.len() - manifest_at).to_str().unwrap()]),
        "manifest does not match",
    );
    let foreign = fresh.path().join("notes.txt");
    std::fs::write(&foreign, "hello\n").unwrap();
    refused(&pumppilot(fresh.path(), &["restore", foreign.to_str().unwrap()]), "is not a PumpPilot backup");
    assert!(!fresh.path().join("pumppilot.db").exists(), "nothing was written");
    // The real one still restores.
    succeeded(&pumppilot(fresh.path(), &["restore", file.to_str().unwrap()]));
}

#[tokio::test]
async fn a_mongodb_installation_is_backed_up_through_the_driver_and_restored_into_sqlite() {
    const SECRET: &str = "a-test-secret-of-at-least-32-characters";
    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let live = tempfile::tempdir().unwrap();
    let (mut server, base) =
        common::start_server_with(live.path(), &[("PUMPPILOT_DATABASE_URL", &url), ("PUMPPILOT_SECRET", SECRET)]);
    let t = Site { base }.tenant("rahim", 2, 15).await;
    common::leave_alerts(&t.admin, &t.users[0], "rahim-farmer-0", "+8801711000001").await;
    let alerts = common::alerts_of(&[&t.admin, &t.users[0]]).await;
    let file = live.path().join("mongo.backup");
    let said = succeeded(&pumppilot_on(live.path(), &url, Some(SECRET), &["backup", file.to_str().unwrap()]));
    assert!(said.contains("(mongodb)"), "{said}");
    server.kill();
    // Into MongoDB again only with the same secret set.
    let other = pumppilot_store_mongodb::testing::server().fresh_url();
    refused(&pumppilot_on(live.path(), &other, None, &["restore", file.to_str().unwrap()]), "PUMPPILOT_SECRET");
    let wrong = "another-secret-of-at-least-32-characters";
    refused(
        &pumppilot_on(live.path(), &other, Some(wrong), &["restore", file.to_str().unwrap()]),
        "is not the backup's",
    );

    let fresh = tempfile::tempdir().unwrap();
    succeeded(&pumppilot(fresh.path(), &["restore", file.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(fresh.path().join("secret.key")).unwrap(), SECRET);
    let (mut restored, base) = start_server(fresh.path());
    let site = Site { base };
    let farmer = site.login("rahim-farmer-1", PASSWORD).await;
    assert_eq!(farmer.status().await["me"]["availableSeconds"], 15 * 60, "{}", farmer.status().await);
    let (owner, asking) = (site.login("rahim", PASSWORD).await, site.login("rahim-farmer-0", PASSWORD).await);
    assert_eq!(common::alerts_of(&[&owner, &asking]).await, alerts, "the phone, the push token and the bells came");
    let device = Client { base: site.base.clone(), ..t.device.client.clone() };
    assert_eq!(device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0&fw=test").await.0, StatusCode::OK);
    restored.kill();
}

#[tokio::test]
async fn a_backup_whose_manifest_counts_no_alerts_restores_what_its_data_holds_of_them() {
    let live = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server(live.path());
    let t = Site { base }.tenant("rahim", 1, 10).await;
    common::leave_alerts(&t.admin, &t.users[0], "rahim-farmer-0", "+8801711000001").await;
    let alerts = common::alerts_of(&[&t.admin, &t.users[0]]).await;
    let file = live.path().join("pp.backup");
    succeeded(&pumppilot(live.path(), &["backup", file.to_str().unwrap()]));
    server.kill();

    // The manifest as a PumpPilot that did not count the alerts wrote it (its data, a copy of the
    // SQLite database, holds them all the same).
    let bytes = std::fs::read(&file).unwrap();
    let head = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let end = head + bytes[head..].iter().position(|&b| b == b'\n').unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes[head..end]).unwrap();
    for kind in ["alert profiles", "notifications"] {
        assert!(manifest["counts"].as_object_mut().unwrap().remove(kind).is_some(), "{kind} is counted now");
    }
    let manifest = manifest.to_string();
    let sum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(manifest.as_bytes()));
    let older = live.path().join("older.backup");
    std::fs::write(&older, [format!("PUMPPILOT-BACKUP 1 {sum}\n{manifest}").as_bytes(), &bytes[end..]].concat())
        .unwrap();

    let fresh = tempfile::tempdir().unwrap();
    succeeded(&pumppilot(fresh.path(), &["restore", older.to_str().unwrap()]));
    let (mut restored, base) = start_server(fresh.path());
    let site = Site { base };
    let (owner, farmer) = (site.login("rahim", PASSWORD).await, site.login("rahim-farmer-0", PASSWORD).await);
    assert_eq!(common::alerts_of(&[&owner, &farmer]).await, alerts);
    restored.kill();
}
