//! The dashboard's stylesheet, script and icon, compiled into the binary and served under a name that
//! carries a hash of their content, so browsers may keep them for a year and still never run a
//! stale copy after an upgrade. Nothing is loaded from anywhere else (no CDN, no web fonts).

use std::sync::LazyLock;

use axum::{
    extract::Path,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

struct Asset {
    name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

impl Asset {
    fn new(stem: &str, ext: &str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
        let hash = hex::encode(&Sha256::digest(bytes)[..6]);
        Asset { name: format!("{stem}-{hash}.{ext}"), content_type, bytes }
    }
}

static CSS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("app", "css", "text/css; charset=utf-8", include_bytes!("../../assets/web/app.css")));
static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new("app", "js", "text/javascript; charset=utf-8", include_bytes!("../../assets/web/app.js"))
});

/// The stylesheet's URL.
pub fn css() -> String {
    format!("/static/{}", CSS.name)
}

static ICON: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("icon", "svg", "image/svg+xml", include_bytes!("../../assets/web/icon.svg")));

/// The icon's URL (the tab's and a home screen's; without it a browser asks for `/favicon.ico`).
pub fn icon() -> String {
    format!("/static/{}", ICON.name)
}

/// The script's URL.
pub fn js() -> String {
    format!("/static/{}", JS.name)
}

/// `GET /static/{file}`: only the current names exist.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = [&*CSS, &*JS, &*ICON].into_iter().find(|a| a.name == file) else {
        return crate::error::ApiError::not_found("file").into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}
