//! Firmware updates over the air, server side: the master publishes signed images and rolls each
//! out (one tenant first, or a share of all devices); a poll answer names the image meant for the
//! device (`update`); the device reads its signed description and downloads it in ranges (each
//! answer signed on the authenticated link). The device's own checks and decisions are
//! `pumppilot_controller::Update` (see docs/DEVICE.md, "Firmware updates").

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

use axum::{
    Json,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use pumppilot_engine::{AdminId, DeviceId, Timestamp};
use pumppilot_protocol::firmware;
use pumppilot_store::{FirmwareDownload, FirmwareRelease, Rollout};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::{App, AppState},
    auth::Master,
    clock::rfc3339,
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    link::DeviceLink,
    routes::openapi::{Body, Device, Missing, Refused, SignedIn},
};

/// Largest firmware image accepted: one OTA slot (1,966,080 bytes; a device refuses anything larger).
pub const MAX_IMAGE_BYTES: usize = firmware::OTA_SLOT_BYTES as usize;
/// Largest range a device gets in one answer.
pub const MAX_CHUNK_BYTES: usize = 16 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish, list))
        .routes(routes!(fleet))
        .routes(routes!(set_rollout))
        .routes(routes!(release))
        .routes(routes!(download))
}

/// The releases, kept in memory for the poll path (loaded at start, updated by this server's
/// publishing and rollouts, and read again when the change feed says another server changed
/// them), with the bytes of those devices download, and what this server served of each
/// device's download since it last wrote it to the store.
#[derive(Default)]
pub struct Releases {
    list: RwLock<Vec<FirmwareRelease>>,
    bytes: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    downloads: Mutex<HashMap<DeviceId, Served>>,
}

/// How often a device's download progress is written to the store at most while it moves: the
/// first range of an image and its last are written at once, the ranges between at most this
/// often (per device and server). A device asks for its image 16 KiB at a time: writing every
/// range would be up to 120 writes an image (a 1.9 MiB slot), each a document change every other
/// server's change feed carries; this is a few a minute, and the owner's view (which reads the
/// store, and on the server that served the range also what it has not written yet) lags a
/// download elsewhere by at most this long. A crash loses at most this much progress, never its
/// start or its end.
pub const PROGRESS_WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a download record is kept after its last range: finished ones (the owner sees
/// FAILED until the device runs the image, or it is offered again) and abandoned ones alike. A
/// week: a downloaded image is installed only when the pump is off, and an owner who looks in
/// once a week still sees how the last try went; after that the device is simply offered the
/// image again. Each device has one record, so the store holds at most one per device anyway.
pub const DOWNLOAD_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// A device's download as this server served it, and how far of it was written to the store.
#[derive(Debug, Clone)]
struct Served {
    download: FirmwareDownload,
    /// What of this download was written last (`received`, when it was written).
    written: Option<(u32, Timestamp)>,
}

/// How far a device has got with the update meant for it, from what the server knows: the offer in
/// its poll answers, the ranges it downloaded, the version it reports and when it last started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    /// Meant for it; it has downloaded nothing of it yet.
    Offered,
    /// It has downloaded part of it, or all of it and not started again yet (it installs only
    /// with the relay open).
    Downloading,
    /// It downloaded all of it and has started again since, still running another version: the
    /// image failed a check on the device or did not reach the server and was rolled back.
    Failed,
    /// It runs the newest release meant for it.
    Updated,
}

impl UpdateState {
    pub const fn as_str(self) -> &'static str {
        match self {
            UpdateState::Offered => "OFFERED",
            UpdateState::Downloading => "DOWNLOADING",
            UpdateState::Failed => "FAILED",
            UpdateState::Updated => "UPDATED",
        }
    }
}

/// A device's update: the release meant for it, how far it has got, and (while downloading) how
/// much of the image it has, 0 to 100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateProgress {
    pub version: String,
    pub state: UpdateState,
    pub percent: Option<u8>,
}

/// The later of two records of one device's download: of one version, the furthest range and
/// the latest time of either; of two versions, the one written last.
fn merged(a: FirmwareDownload, b: &FirmwareDownload) -> FirmwareDownload {
    if a.version == b.version {
        FirmwareDownload { received: a.received.max(b.received), at: a.at.max(b.at), ..a }
    } else if b.at > a.at {
        b.clone()
    } else {
        a
    }
}

/// Where a device running `running` (started last at `started_at`) stands with `version`, given
/// its download record.
fn state_of(
    version: String,
    running: Option<&str>,
    started_at: Option<Timestamp>,
    download: Option<&FirmwareDownload>,
) -> UpdateProgress {
    let (state, percent) = if running.map(running_version) == Some(version.as_str()) {
        (UpdateState::Updated, None)
    } else {
        match download.filter(|d| d.version == version) {
            None => (UpdateState::Offered, None),
            Some(d) if d.received >= d.size && started_at.is_some_and(|at| at > d.at) => (UpdateState::Failed, None),
            Some(d) => {
                let percent = u64::from(d.received) * 100 / u64::from(d.size.max(1));
                (UpdateState::Downloading, Some(u8::try_from(percent.min(100)).unwrap_or(100)))
            }
        }
    };
    UpdateProgress { version, state, percent }
}

impl Releases {
    pub fn new(list: Vec<FirmwareRelease>) -> Self {
        Releases { list: RwLock::new(list), ..Releases::default() }
    }

    /// Where a device stands with the newest release meant for it (`None` when none is): `running`
    /// is the firmware it reports, `started_at` when it last started, `download` its record
    /// ([`Releases::downloads`]).
    pub fn progress(
        &self,
        admin: AdminId,
        device: DeviceId,
        running: Option<&str>,
        started_at: Option<Timestamp>,
        download: Option<&FirmwareDownload>,
    ) -> Option<UpdateProgress> {
        let version = {
            let list = self.list.read().expect("releases lock");
            list.iter().find(|release| included(release.rollout, admin, device))?.version.clone()
        };
        Some(state_of(version, running, started_at, download))
    }

    /// The download records of a tenant's devices, as the store has them from every server,
    /// brought forward by what this server served and has not written yet.
    pub async fn downloads(&self, app: &App, admin: AdminId) -> Result<HashMap<DeviceId, FirmwareDownload>, ApiError> {
        let mut downloads: HashMap<DeviceId, FirmwareDownload> =
            app.store.firmware_downloads(admin).await?.into_iter().map(|d| (d.device, d)).collect();
        let served = self.downloads.lock().expect("firmware downloads lock");
        for local in served.values().filter(|s| s.download.admin == admin) {
            let download = match downloads.remove(&local.download.device) {
                Some(stored) => merged(stored, &local.download),
                None => local.download.clone(),
            };
            downloads.insert(download.device, download);
        }
        Ok(downloads)
    }

    /// Notes a range served to a device (`end`: the byte after its last), and writes the
    /// download's progress to the store when it is due ([`PROGRESS_WRITE_EVERY`]). A write that
    /// fails is logged and tried again with the next range: the device's download goes on.
    async fn served(&self, app: &App, link: &DeviceLink, version: &str, end: u32, size: u32, at: Timestamp) {
        let due = {
            let mut downloads = self.downloads.lock().expect("firmware downloads lock");
            let fresh = || Served {
                download: FirmwareDownload {
                    device: link.device,
                    admin: link.admin,
                    version: version.to_owned(),
                    received: 0,
                    size,
                    at,
                },
                written: None,
            };
            let served = downloads
                .entry(link.device)
                .and_modify(|s| {
                    if s.download.version != version {
                        *s = fresh();
                    }
                })
                .or_insert_with(fresh);
            served.download.received = served.download.received.max(end);
            served.download.at = at;
            let every = i64::try_from(PROGRESS_WRITE_EVERY.as_millis()).unwrap_or(i64::MAX);
            let d = &served.download;
            let due = match served.written {
                None => true,
                Some((received, _)) if d.received >= d.size && received < d.size => true,
                Some((received, written_at)) => d.received > received && at - written_at >= every,
            };
            due.then(|| d.clone())
        };
        let Some(download) = due else { return };
        match app.store.record_firmware_download(&download).await {
            Ok(()) => {
                let mut downloads = self.downloads.lock().expect("firmware downloads lock");
                if let Some(served) =
                    downloads.get_mut(&download.device).filter(|s| s.download.version == download.version)
                {
                    let before = served.written.map_or(0, |(received, _)| received);
                    served.written = Some((download.received.max(before), at));
                }
            }
            Err(err) => {
                tracing::warn!(%err, device = %download.device, "could not write a firmware download's progress");
            }
        }
    }

    /// Forgets what this server served of downloads whose last range is older than `before`
    /// (the store's records are purged by [`purge_downloads`]).
    pub fn forget_served_before(&self, before: Timestamp) {
        self.downloads.lock().expect("firmware downloads lock").retain(|_, s| s.download.at >= before);
    }

    /// The newest release meant for this device, unless it runs it already (`running` is the
    /// firmware it reports, `name/version` or `version`).
    pub fn meant_for(&self, admin: AdminId, device: DeviceId, running: Option<&str>) -> Option<String> {
        meant_in(&self.list.read().expect("releases lock"), admin, device, running)
            .map(|release| release.version.clone())
    }

    /// For each release (newest first), how many of `devices` (each with the firmware it reports)
    /// run it and how many it is offered to ([`Releases::meant_for`]).
    pub fn count<'a>(
        &self,
        devices: impl IntoIterator<Item = (AdminId, DeviceId, Option<&'a str>)>,
    ) -> Vec<ReleaseCount> {
        let list = self.list.read().expect("releases lock");
        let mut counts: Vec<ReleaseCount> = list
            .iter()
            .map(|release| ReleaseCount { version: release.version.clone(), running: 0, offered: 0 })
            .collect();
        for (admin, device, reported) in devices {
            let running = reported.map(running_version);
            if let Some(count) = counts.iter_mut().find(|c| Some(c.version.as_str()) == running) {
                count.running += 1;
            }
            if let Some(offered) = meant_in(&list, admin, device, reported)
                && let Some(count) = counts.iter_mut().find(|c| c.version == offered.version)
            {
                count.offered += 1;
            }
        }
        counts
    }

    fn replace(&self, list: Vec<FirmwareRelease>) {
        *self.list.write().expect("releases lock") = list;
    }

    /// Reads the releases again (another server published one or changed a rollout).
    pub async fn reload(&self, app: &App) {
        match app.store.firmware_releases().await {
            Ok(list) => self.replace(list),
            Err(err) => tracing::warn!(%err, "could not read the firmware releases again"),
        }
    }

    async fn bytes(&self, app: &App, version: &str) -> Result<Option<Arc<Vec<u8>>>, ApiError> {
        if let Some(bytes) = self.bytes.lock().expect("firmware bytes lock").get(version) {
            return Ok(Some(Arc::clone(bytes)));
        }
        let Some(bytes) = app.store.firmware_bytes(version).await? else { return Ok(None) };
        let bytes = Arc::new(bytes);
        self.bytes.lock().expect("firmware bytes lock").insert(version.to_owned(), Arc::clone(&bytes));
        Ok(Some(bytes))
    }
}

/// Deletes the download records whose last range is older than [`DOWNLOAD_KEPT`], from the
/// store and from this server's memory, by the server's clock (every server does, hourly, with
/// the notifications' purge; a second purge finds nothing).
pub async fn purge_downloads(app: &App) {
    let before = app.now() - i64::try_from(DOWNLOAD_KEPT.as_millis()).unwrap_or(i64::MAX);
    app.firmware.forget_served_before(before);
    match app.store.purge_firmware_downloads(before).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "purged old firmware download records"),
        Err(err) => tracing::warn!(%err, "could not purge old firmware download records"),
    }
}

/// The newest release of `list` (newest first) meant for this device, unless it runs it already
/// (`running` is the firmware it reports, `name/version` or `version`).
fn meant_in<'a>(
    list: &'a [FirmwareRelease],
    admin: AdminId,
    device: DeviceId,
    running: Option<&str>,
) -> Option<&'a FirmwareRelease> {
    let newest = list.iter().find(|release| included(release.rollout, admin, device))?;
    (running.map(running_version) != Some(newest.version.as_str())).then_some(newest)
}

/// The version in what a device reports running (`name/version`, or `version` alone).
pub fn running_version(fw: &str) -> &str {
    fw.rsplit('/').next().unwrap_or(fw).trim()
}

/// Whether a rollout includes a device: every device of its tenant when it names one, else the
/// devices whose id falls in the first `percent` of 100 buckets (a hash of the id, so the same
/// devices stay in as the share grows).
pub fn included(rollout: Rollout, admin: AdminId, device: DeviceId) -> bool {
    match rollout.tenant {
        Some(tenant) => tenant == admin,
        None => {
            let digest = Sha256::digest(device.to_string().as_bytes());
            u16::from_be_bytes([digest[0], digest[1]]) % 100 < u16::from(rollout.percent)
        }
    }
}

/// A published firmware image.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseView {
    pub version: String,
    pub size: u32,
    /// 64 hex digits.
    pub sha256: String,
    /// The Ed25519 signature, 128 hex digits.
    pub signature: String,
    pub published_at: String,
    /// The share of all devices (0 to 100) it is meant for, unless `tenant` goes first.
    pub rollout_percent: u8,
    /// One tenant first: all of its devices (and only those).
    pub rollout_tenant: Option<String>,
}

impl ReleaseView {
    fn new(release: &FirmwareRelease) -> Self {
        ReleaseView {
            version: release.version.clone(),
            size: release.size,
            sha256: hex::encode(release.sha256),
            signature: hex::encode(release.signature),
            published_at: rfc3339(release.published_at),
            rollout_percent: release.rollout.percent,
            rollout_tenant: release.rollout.tenant.map(|t| t.to_string()),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PublishQuery {
    /// 1 to 32 of letters, digits and `.-+_`.
    version: String,
    /// The Ed25519 signature `pumppilot firmware sign` made (128 hex digits).
    signature: String,
}

/// The image as the body (any content type), at most [`MAX_IMAGE_BYTES`] (its own limit, above the
/// API's 64 KiB); a larger one is 413.
struct Image(Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Image {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        axum::body::to_bytes(req.into_body(), MAX_IMAGE_BYTES).await.map(Image).map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("a firmware image is at most {MAX_IMAGE_BYTES} bytes"),
            )
        })
    }
}

/// Publishes a signed firmware image (the body); it is meant for no device until rolled out.
#[utoipa::path(post, path = "/api/master/firmware", tag = "master", params(PublishQuery),
    security(("bearer" = []), ("sessionCookie" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the image, at most 1,966,080 bytes (one OTA slot)"),
    responses((status = 201, description = "The release", body = ReleaseView), SignedIn, Body, Refused))]
async fn publish(
    State(app): State<AppState>,
    _: Master,
    ApiQuery(q): ApiQuery<PublishQuery>,
    Image(bytes): Image,
) -> Result<(StatusCode, Json<ReleaseView>), ApiError> {
    let Some(key) = app.settings.firmware_key else {
        return Err(ApiError::conflict(
            "NO_FIRMWARE_KEY",
            "set PUMPPILOT_FIRMWARE_PUBLIC_KEY to the key images are signed for before publishing",
        ));
    };
    if !firmware::valid_version(&q.version) {
        return Err(ApiError::validation("version: 1 to 32 of letters, digits and .-+_"));
    }
    let signature = hex::decode(q.signature.trim())
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .ok_or_else(|| ApiError::validation("signature: the 128 hex digits `pumppilot firmware sign` wrote"))?;
    if bytes.is_empty() {
        return Err(ApiError::validation("image: the image is empty"));
    }
    let size = u32::try_from(bytes.len()).map_err(|_| ApiError::validation("the image is too large"))?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    firmware::verify(&key, &q.version, size, &sha256, &signature)
        .map_err(|err| ApiError::validation(format!("signature: {err}")))?;
    if app.firmware.list.read().expect("releases lock").iter().any(|r| r.version == q.version) {
        return Err(ApiError::conflict("VERSION_EXISTS", format!("firmware {} is published already", q.version)));
    }
    let release = FirmwareRelease {
        version: q.version,
        size,
        sha256,
        signature,
        published_at: app.now(),
        rollout: Rollout::default(),
    };
    app.store.put_firmware(&release, &bytes).await?;
    app.firmware.replace(app.store.firmware_releases().await?);
    tracing::info!(version = ?release.version, size, "firmware published");
    Ok((StatusCode::CREATED, Json(ReleaseView::new(&release))))
}

/// Every published firmware image, newest first, with its rollout.
#[utoipa::path(get, path = "/api/master/firmware", tag = "master", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The releases", body = [ReleaseView]), SignedIn))]
async fn list(State(app): State<AppState>, _: Master) -> Result<Json<Vec<ReleaseView>>, ApiError> {
    Ok(Json(app.store.firmware_releases().await?.iter().map(ReleaseView::new).collect()))
}

/// The fleet's devices and, for each release, how many run it and how many it is offered to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetFirmware {
    /// Every device of every pump.
    pub devices: u64,
    /// Newest first, as `GET /api/master/firmware` lists them.
    pub releases: Vec<ReleaseCount>,
}

/// One release's devices.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseCount {
    pub version: String,
    /// Devices whose last report names this version.
    pub running: u64,
    /// Devices it is the newest release meant for, running another version.
    pub offered: u64,
}

/// How many devices run each release and how many it is offered to: one read of the firmware each
/// device last reported (to this server, or as written to the store), whatever the number of pump
/// owners.
#[utoipa::path(get, path = "/api/master/firmware/devices", tag = "master", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The devices' firmware", body = FleetFirmware), SignedIn))]
async fn fleet(State(app): State<AppState>, _: Master) -> Result<Json<FleetFirmware>, ApiError> {
    let mut devices = app.store.reported_firmware().await?;
    // What each last reported here and this server has not written yet, else what the store has.
    for device in &mut devices {
        if let Some(pending) = app.runtime.pending_telemetry(device.device).and_then(|t| t.firmware) {
            device.version = Some(pending);
        }
    }
    let releases = app.firmware.count(devices.iter().map(|d| (d.admin, d.device, d.version.as_deref())));
    Ok(Json(FleetFirmware { devices: devices.len() as u64, releases }))
}

/// Which devices a release is meant for.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutBody {
    /// 0 to 100: this share of all devices.
    #[schema(minimum = 0, maximum = 100)]
    percent: u8,
    /// One tenant first: all of its devices and no other's (the percentage then does not count).
    admin_id: Option<String>,
}

/// Sets which devices a release is meant for: one tenant first, or a share of all devices.
#[utoipa::path(put, path = "/api/master/firmware/{version}/rollout", tag = "master", params(("version" = String, Path)),
    security(("bearer" = []), ("sessionCookie" = [])), request_body = RolloutBody,
    responses((status = 200, description = "The release", body = ReleaseView), SignedIn, Body, Missing))]
async fn set_rollout(
    State(app): State<AppState>,
    _: Master,
    ApiPath(version): ApiPath<String>,
    ApiJson(body): ApiJson<RolloutBody>,
) -> Result<Json<ReleaseView>, ApiError> {
    if body.percent > 100 {
        return Err(ApiError::validation("percent: 0 to 100"));
    }
    let tenant = match body.admin_id.as_deref() {
        None => None,
        Some(text) => {
            let admin: AdminId = text.parse().map_err(|_| ApiError::validation("adminId: not an admin"))?;
            // That one account, not every tenant's id.
            if !app.store.account(admin.0).await?.is_some_and(|account| account.role == pumppilot_store::Role::Admin) {
                return Err(ApiError::validation("adminId: not an admin"));
            }
            Some(admin)
        }
    };
    app.store.set_firmware_rollout(&version, Rollout { percent: body.percent, tenant }).await.map_err(
        |err| match err {
            pumppilot_store::StoreError::NotFound => ApiError::not_found("firmware version"),
            other => ApiError::from(other),
        },
    )?;
    let list = app.store.firmware_releases().await?;
    let release = list.iter().find(|r| r.version == version).map(ReleaseView::new).ok_or_else(ApiError::internal)?;
    app.firmware.replace(list);
    tracing::info!(version = ?version, percent = body.percent, tenant = ?tenant, "firmware rollout set");
    Ok(Json(release))
}

/// The signed description of an image, for a device to check before downloading it.
#[utoipa::path(get, path = "/api/esp32/firmware/{version}/release", tag = "device", params(("version" = String, Path)),
    security(("deviceKey" = [])),
    responses((status = 200, description = "`{version, size, sha256, signature, …}`", body = ReleaseView), Device, Missing))]
async fn release(State(app): State<AppState>, ApiPath(version): ApiPath<String>, link: DeviceLink) -> Response {
    let found = app.firmware.list.read().expect("releases lock").iter().find(|r| r.version == version).cloned();
    let result = found.map(|r| Json(ReleaseView::new(&r))).ok_or_else(|| ApiError::not_found("firmware version"));
    link.answer(result).await
}

/// Parses `bytes=first-last` or `bytes=first-` against an image of `size` bytes; `None` for a
/// range this server does not serve (several ranges, a suffix range, past the end).
fn byte_range(value: &str, size: usize) -> Option<(usize, usize)> {
    let (first, last) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    let first: usize = first.parse().ok()?;
    let last: usize = if last.is_empty() { size.checked_sub(1)? } else { last.parse().ok()? };
    (first <= last && first < size).then_some((first, last.min(size - 1)))
}

/// Part of an image: `Range: bytes=first-last` (206, at most 16 KiB), or from the start without
/// one (200, the first 16 KiB, with `Content-Range` saying how much there is). A dropped
/// download resumes with the next range.
#[utoipa::path(get, path = "/api/esp32/firmware/{version}", tag = "device", params(("version" = String, Path)),
    security(("deviceKey" = [])),
    responses((status = 206, description = "the bytes asked for", content_type = "application/octet-stream", body = Vec<u8>),
        Device, Body, Missing))]
async fn download(
    State(app): State<AppState>,
    ApiPath(version): ApiPath<String>,
    headers: axum::http::HeaderMap,
    link: DeviceLink,
) -> Response {
    let result = async {
        let bytes = app.firmware.bytes(&app, &version).await?.ok_or_else(|| ApiError::not_found("firmware version"))?;
        let size = bytes.len();
        let range = match headers.get(header::RANGE) {
            None => (0, size.min(MAX_CHUNK_BYTES).saturating_sub(1)),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| byte_range(v, size))
                .ok_or_else(|| ApiError::validation(format!("range: bytes=first-last within 0-{}", size - 1)))?,
        };
        let (first, last) = (range.0, range.1.min(range.0 + MAX_CHUNK_BYTES - 1));
        let end = u32::try_from(last + 1).unwrap_or(u32::MAX);
        app.firmware.served(&app, &link, &version, end, u32::try_from(size).unwrap_or(u32::MAX), app.now()).await;
        let mut response = (StatusCode::PARTIAL_CONTENT, bytes[first..=last].to_vec()).into_response();
        let content_range = format!("bytes {first}-{last}/{size}");
        response.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&content_range).expect("ascii"));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        Ok::<_, ApiError>(response)
    }
    .await;
    link.answer(result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_strictly() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=900-5000", 1000), Some((900, 999)));
        for bad in ["bytes=1000-", "bytes=5-4", "bytes=-100", "items=0-1", "bytes=0-1,5-6", "bytes=a-b", ""] {
            assert_eq!(byte_range(bad, 1000), None, "{bad}");
        }
    }

    #[test]
    fn a_device_is_offered_then_downloads_then_runs_it_or_fails() {
        let (admin, device) = (AdminId(pumppilot_engine::UserId::new()), DeviceId::new());
        let release = |version: &str, tenant| FirmwareRelease {
            version: version.into(),
            size: 1000,
            sha256: [0; 32],
            signature: [0; 64],
            published_at: Timestamp(0),
            rollout: Rollout { percent: 0, tenant },
        };
        let releases = Releases::new(vec![release("2.0.0", Some(admin))]);
        let at = Timestamp;
        let record = |version: &str, received, when| FirmwareDownload {
            device,
            admin,
            version: version.into(),
            received,
            size: 1000,
            at: at(when),
        };
        let state = |running, started, download: Option<&FirmwareDownload>| {
            releases.progress(admin, device, running, started, download).map(|p| (p.version, p.state, p.percent))
        };
        let offered = Some(("2.0.0".to_owned(), UpdateState::Offered, None));
        assert_eq!(state(Some("fw/1.0.0"), None, None), offered);
        assert_eq!(
            releases.progress(AdminId(pumppilot_engine::UserId::new()), device, None, None, None),
            None,
            "not meant for it"
        );
        // Another image's download is not this one's progress.
        assert_eq!(state(Some("fw/1.0.0"), None, Some(&record("1.9.0", 500, 5))), offered);
        // Two servers' records of one download: the furthest range and the latest time.
        let both = merged(record("2.0.0", 400, 10), &record("2.0.0", 200, 11));
        assert_eq!((both.received, both.at), (400, at(11)));
        assert_eq!(merged(record("1.9.0", 900, 12), &record("2.0.0", 100, 11)).version, "1.9.0", "the later version");
        assert_eq!(
            state(Some("fw/1.0.0"), None, Some(&both)),
            Some(("2.0.0".into(), UpdateState::Downloading, Some(40)))
        );
        let all = record("2.0.0", 1000, 20);
        // All of it, and no start since: it installs when the relay is open.
        assert_eq!(
            state(Some("fw/1.0.0"), Some(at(1)), Some(&all)),
            Some(("2.0.0".into(), UpdateState::Downloading, Some(100)))
        );
        assert_eq!(
            state(Some("fw/1.0.0"), Some(at(30)), Some(&all)),
            Some(("2.0.0".into(), UpdateState::Failed, None))
        );
        assert_eq!(
            state(Some("fw/2.0.0"), Some(at(30)), Some(&all)),
            Some(("2.0.0".into(), UpdateState::Updated, None))
        );
    }

    #[test]
    fn a_share_keeps_the_same_devices_as_it_grows_and_a_tenant_goes_alone() {
        let devices: Vec<DeviceId> = (0..1000).map(|_| DeviceId::new()).collect();
        let admin = AdminId(pumppilot_engine::UserId::new());
        let share =
            |percent| devices.iter().filter(|d| included(Rollout { percent, tenant: None }, admin, **d)).count();
        assert_eq!((share(0), share(100)), (0, 1000));
        let ten = share(10);
        assert!((50..=150).contains(&ten), "{ten} of 1000 at 10%");
        for d in &devices {
            if included(Rollout { percent: 10, tenant: None }, admin, *d) {
                assert!(included(Rollout { percent: 50, tenant: None }, admin, *d));
            }
        }
        let first = Rollout { percent: 100, tenant: Some(admin) };
        assert!(
            included(first, admin, devices[0])
                && !included(first, AdminId(pumppilot_engine::UserId::new()), devices[0])
        );
    }
}
