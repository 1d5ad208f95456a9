//! The master's firmware page: the releases with their rollout and how many devices run each, the
//! upload of a signed image, and the rollout (one pump owner first, or a share of all devices).
//! Both forms go through the JSON API (`routes::firmware`), which holds every rule: the signature
//! against `PUMPPILOT_FIRMWARE_PUBLIC_KEY`, the size, the version, who a rollout includes.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{Multipart, State, multipart::MultipartRejection},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use maud::{Markup, html};
use serde_json::json;

use crate::{
    routes::firmware::{FleetFirmware, MAX_IMAGE_BYTES, ReleaseView},
    web::{
        Flash, Live, MasterPage, Page, PageQuery, Posted, Tab, Web, WebState,
        api::{AdminPage, AdminSummary, Failure},
        csrf, finish, form_token_matches,
        i18n::{Lang, Text, date_time, fill, number},
        message_page, redirect, refused,
    },
};

/// The most the upload form's body may be: the largest image, its signature file, the version and
/// the form's token with their multipart headers.
pub const UPLOAD_LIMIT: usize = MAX_IMAGE_BYTES + 64 * 1024;

const PAGE: &str = "/master/firmware";

/// One release with what the devices say about it.
struct Row {
    release: ReleaseView,
    /// Devices that report running this version.
    running: u64,
    /// Devices it is offered to (meant for them, not running it yet).
    offered: u64,
}

/// Owners offered in the rollout form's list (by username; the master finds others by username).
const OWNERS_LISTED: usize = 50;

/// `/master/firmware`'s query: the start of the username of the owner to roll out to.
#[derive(serde::Deserialize, Default)]
pub struct FirmwareFilter {
    owner: Option<String>,
}

/// The names of the owners the releases are rolled out to first (one read each).
async fn rollout_names(web: &Web, session: &str, releases: &[ReleaseView]) -> HashMap<String, String> {
    let mut ids: Vec<&str> = releases.iter().filter_map(|r| r.rollout_tenant.as_deref()).collect();
    ids.sort_unstable();
    ids.dedup();
    let paths: Vec<String> = ids.iter().map(|id| format!("/api/master/admins/{id}")).collect();
    let answers = futures_util::future::join_all(paths.iter().map(|path| web.api.get(path, session))).await;
    ids.iter()
        .zip(answers)
        .filter_map(|(id, answer)| Some(((*id).to_owned(), answer.into::<AdminSummary>().ok()?.user.name)))
        .collect()
}

/// `GET /master/firmware?owner=`: the releases, the upload form and the rollout form (its list of
/// owners: the first [`OWNERS_LISTED`] by username, or those whose username begins with `owner`).
pub async fn page(
    State(web): State<WebState>,
    PageQuery(filter): PageQuery<FirmwareFilter>,
    MasterPage(page): MasterPage,
) -> Result<Response, Response> {
    let find = filter.owner.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let owners_path = super::owners_api_path(OWNERS_LISTED, find, None);
    let (releases, owners, fleet) = tokio::join!(
        page.get::<Vec<ReleaseView>>(&web, "/api/master/firmware"),
        page.get::<AdminPage>(&web, &owners_path),
        page.get::<FleetFirmware>(&web, "/api/master/firmware/devices"),
    );
    let (releases, owners, fleet) = (releases?, owners?, fleet?);
    let names = rollout_names(&web, &page.token, &releases).await;
    let rows: Vec<Row> = releases
        .into_iter()
        .map(|release| {
            let count = fleet.releases.iter().find(|c| c.version == release.version);
            let (running, offered) = count.map_or((0, 0), |c| (c.running, c.offered));
            Row { release, running, offered }
        })
        .collect();
    let devices = fleet.devices;
    let t = page.t();
    let f = t.updates;
    let has_key = web.app.settings.firmware_key.is_some();
    let content = html! {
        h1 { (f.title) }
        p.hint { (f.intro) }
        section.card #releases {
            h2 { (f.releases_title) }
            @if rows.is_empty() { p.muted { (f.no_releases) } }
            @else {
                table.table.releases {
                    thead { tr {
                        th { (f.version) } th { (f.rollout) } th { (f.running) } th { (f.offered) }
                        th { (f.size) } th { (f.sha256) } th { (f.published) }
                    } }
                    tbody {
                        @for row in &rows { (release_row(&page, &names, row, devices)) }
                    }
                }
            }
        }
        // On a wide screen the two forms side by side; on a phone, the rollout first.
        div.cols {
            div.col { @if !rows.is_empty() { (rollout_form(&page, &owners, find, &rows)) } @else { (upload_form(&page, has_key)) } }
            div.col { @if !rows.is_empty() { (upload_form(&page, has_key)) } }
        }
    };
    Ok(page.render(Tab::MasterFirmware, Live::Off, f.title, content))
}

fn release_row(page: &Page, names: &HashMap<String, String>, row: &Row, total: u64) -> Markup {
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let f = t.updates;
    let r = &row.release;
    let share = (row.running * 100).checked_div(total).unwrap_or(0);
    let running_of = if total == 1 { f.running_of_one } else { f.running_of };
    let running_of = fill(running_of, &[&number(row.running as i64, lang), &number(total as i64, lang)]);
    html! {
        tr data-version=(r.version) {
            td data-label=(f.version) { strong.version { (r.version) } }
            td data-label=(f.rollout) .rollout { (rollout_words(t, lang, names, r)) }
            td data-label=(f.running) .running {
                span.count { (running_of) }
                // How many of all devices run it, at a glance (the words above say it for a reader).
                svg.fw-bar viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" {
                    rect width="100" height="8" fill="#e9eef3" {}
                    rect width=(share) height="8" fill="#0f7b3a" {}
                }
            }
            td data-label=(f.offered) .offered .num { (number(row.offered as i64, lang)) }
            td data-label=(f.size) .num { (fill(f.bytes, &[&number(i64::from(r.size), lang)])) }
            td data-label=(f.sha256) { code title=(r.sha256) { (r.sha256.get(..12).unwrap_or(&r.sha256)) "…" } }
            td data-label=(f.published) { (date_time(&r.published_at, zone, lang)) }
        }
    }
}

/// Who a release is meant for, in words (`names`: the owners' names by id).
fn rollout_words(t: &Text, lang: Lang, names: &HashMap<String, String>, release: &ReleaseView) -> String {
    let f = t.updates;
    match &release.rollout_tenant {
        Some(id) => {
            let name = names.get(id).map_or(id.as_str(), String::as_str);
            fill(f.rollout_first, &[name])
        }
        None if release.rollout_percent == 0 => f.rollout_nobody.to_string(),
        None => fill(f.rollout_share, &[&number(i64::from(release.rollout_percent), lang)]),
    }
}

fn rollout_form(page: &Page, list: &AdminPage, find: Option<&str>, rows: &[Row]) -> Markup {
    let t = page.t();
    let (f, o, lang) = (t.updates, t.owner, page.lang());
    let kept_to = page.visit.kept("to");
    let owners = &list.admins;
    html! {
        section.card #rollout {
            h2 { (f.rollout_title) }
            p.hint { (f.rollout_help) }
            // Many owners: the list holds the first by username, or those the master looks for.
            @if list.next.is_some() || find.is_some() {
                form.period #find-rollout-owner method="get" action=(PAGE) role="search" {
                    label { (o.find_owner) " "
                        input type="search" name="owner" value=(find.unwrap_or_default()) maxlength="64"
                            autocapitalize="none" autocomplete="off" spellcheck="false";
                    }
                    button.secondary type="submit" { (o.find) }
                }
                p.hint #rollout-owners-shown {
                    (fill(o.owners_shown, &[&number(owners.len() as i64, lang), &number(list.total as i64, lang)]))
                }
            }
            // One form for every release (the release is a field), so the page stays short.
            form method="post" action="/master/firmware/rollout" {
                (page.csrf_field())
                label for="ro-version" { (f.release) }
                select #ro-version name="version" required {
                    @for row in rows {
                        option value=(row.release.version) selected[page.visit.kept("version") == row.release.version] { (row.release.version) }
                    }
                }
                label for="ro-to" { (f.to_whom) }
                select #ro-to name="to" required {
                    option value="all" selected[kept_to.is_empty() || kept_to == "all"] { (f.to_share) }
                    @if !owners.is_empty() {
                        optgroup label=(f.to_owner_first) {
                            @for o in owners {
                                option value=(o.user.id) selected[kept_to == o.user.id] { (o.user.name) }
                            }
                        }
                    }
                }
                label for="ro-percent" { (f.percent) }
                p.hint #ro-percent-help { (f.percent_help) }
                input #ro-percent type="text" name="percent" inputmode="numeric" maxlength="3" autocomplete="off"
                    aria-describedby="ro-percent-help" value=(page.visit.kept("percent"));
                label.check { input type="checkbox" name="confirm" value="yes" required; " " (f.confirm) }
                button type="submit" { (f.set_rollout) }
            }
        }
    }
}

fn upload_form(page: &Page, has_key: bool) -> Markup {
    let f = page.t().updates;
    html! {
        section.card #upload {
            h2 { (f.upload_title) }
            @if !has_key { p.warn #no-key { (f.no_key) } }
            p.hint { (f.upload_help) }
            // The command breaks only between its arguments.
            p { code.command {
                @for (i, part) in ["pumppilot firmware sign", "--key KEY", "--version VERSION", "IMAGE"].iter().enumerate() {
                    @if i > 0 { " " } span { (part) }
                }
            } }
            form method="post" action=(PAGE) enctype="multipart/form-data" {
                (page.csrf_field())
                label for="fw-image" { (f.image_file) }
                input #fw-image type="file" name="image" required;
                label for="fw-signature" { (f.signature_file) }
                input #fw-signature type="file" name="signature" required;
                label for="fw-version" { (f.version) }
                p.hint #fw-version-help { (f.version_help) }
                input #fw-version type="text" name="version" required maxlength="32" autocapitalize="none"
                    autocomplete="off" spellcheck="false" aria-describedby="fw-version-help" value=(page.visit.kept("version"));
                button type="submit" { (f.upload) }
            }
        }
    }
}

/// What the upload form posted.
#[derive(Default)]
struct Upload {
    token: String,
    version: String,
    signature: String,
    image: Bytes,
}

/// Reads the multipart form (within [`UPLOAD_LIMIT`]); the error is what to tell the master.
async fn read_upload(multipart: Result<Multipart, MultipartRejection>) -> Result<Upload, Failure> {
    let refused = |status: StatusCode| {
        let (code, message) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "the form is over the largest image"),
            _ => ("VALIDATION", "image: the form could not be read"),
        };
        Failure { status, code: code.into(), message: message.into() }
    };
    let mut multipart = multipart.map_err(|rejection| refused(rejection.status()))?;
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await.map_err(|err| refused(err.status()))? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|err| refused(err.status()))?;
        let text = || String::from_utf8_lossy(&bytes).trim().chars().take(200).collect::<String>();
        match name.as_str() {
            csrf::FIELD => upload.token = text(),
            "version" => upload.version = text(),
            "signature" => upload.signature = text(),
            "image" => upload.image = bytes,
            _ => {}
        }
    }
    Ok(upload)
}

/// `POST /master/firmware` (multipart: the image, its `.sig` file, the version): publishes through
/// `POST /api/master/firmware`, so a refused image is refused by the same rule, nothing kept.
///
/// Only a signed-in master's form is read: the session and its role are in the head
/// (`MasterPage`, before the body), so a stranger gets the sign-in page and another role the 403
/// page without a byte of the body read, and hyper closes the connection after the answer. Read
/// first, the form cost anyone up to [`UPLOAD_LIMIT`] of memory and a connection for as long as
/// the body's deadline. The form's token is in the body and is checked once it is read: the
/// session cookie is `SameSite=Strict`, so another site's post carries none and is refused in the
/// head already.
pub async fn upload(
    State(web): State<WebState>,
    MasterPage(page): MasterPage,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let visit = &page.visit;
    if csrf::cross_site(&headers) {
        return refused(visit, false);
    }
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        // Nothing was read that could be trusted: the token may be in what was not read.
        Err(failure) => return redirect(PAGE, &[Flash::error(&failure).cookie()]),
    };
    if !form_token_matches(&web, visit, &upload.token) {
        return refused(visit, false);
    }
    let session = page.token.clone();
    let kept = vec![("version".to_owned(), upload.version.clone())];
    if upload.image.is_empty() {
        let failure = Failure {
            status: StatusCode::BAD_REQUEST,
            code: "VALIDATION".into(),
            message: "image: no image file".into(),
        };
        return redirect(PAGE, &[Flash { kept, ..Flash::error(&failure) }.cookie()]);
    }
    // Letters, digits and `.-+_` reach the query as they are; anything else is encoded and then
    // refused by the API's own check of the version.
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("version", &upload.version)
        .append_pair("signature", &upload.signature)
        .finish();
    let answer = web.api.post_bytes(&format!("/api/master/firmware?{query}"), &session, upload.image).await;
    if answer.status == StatusCode::UNAUTHORIZED {
        return redirect("/login", &[]);
    }
    let flash = if answer.status.is_success() {
        let size = answer.body["size"].as_i64().unwrap_or_default();
        let t = visit.t();
        let size = fill(t.updates.bytes, &[&number(size, visit.lang)]);
        Flash::ok("firmware_published", &[answer.body["version"].as_str().unwrap_or_default(), &size])
    } else {
        Flash { kept, ..Flash::error(&answer.failure()) }
    };
    redirect(PAGE, &[flash.cookie()])
}

/// `POST /master/firmware/rollout` (`version`, `to`: `all` or a pump owner's id, `percent`,
/// `confirm`): sets who the release is meant for through `PUT /api/master/firmware/{version}/rollout`.
pub async fn rollout(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(session) = posted.visit.session.clone() else { return redirect("/login", &[]) };
    let version = posted.field("version");
    if !pumppilot_protocol::firmware::valid_version(version) {
        let t = posted.visit.t();
        return message_page(&posted.visit, None, StatusCode::NOT_FOUND, t.not_found_title, t.not_found_text);
    }
    if posted.field("confirm") != "yes" {
        return redirect(PAGE, &[Flash::refused("rollout_confirm", &[]).keeping(&posted).cookie()]);
    }
    let percent = posted.field("percent").trim();
    // A number goes as one and the API checks it (0 to 100); anything else (nothing typed, say)
    // goes as typed, and the API refuses it naming the field.
    let percent = percent.parse::<u64>().map_or_else(|_| json!(percent), |n| json!(n));
    let body = match posted.field("to") {
        "all" | "" => json!({"percent": percent}),
        owner => json!({"percent": 0, "adminId": owner}),
    };
    let answer = web.api.put(&format!("/api/master/firmware/{version}/rollout"), &session, body).await;
    let release: Option<ReleaseView> = serde_json::from_value(answer.body.clone()).ok();
    let names = rollout_names(&web, &session, release.as_slice()).await;
    let (t, lang) = (posted.visit.t(), posted.visit.lang);
    finish(&posted, answer, PAGE, |release| {
        let release: ReleaseView = serde_json::from_value(release.clone()).ok()?;
        Some(Flash::ok("rollout_set", &[&release.version, &rollout_words(t, lang, &names, &release)]))
    })
}
