//! The pump owner's pages: the pump (motor, device, queue, device keys), farmers (balances,
//! recharge, suspend, cards), minute requests, usage (charts, CSV) and the audit log.

use std::collections::HashMap;

use axum::{
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::html;
use serde::Deserialize;
use serde_json::json;

use crate::routes::{admin::csv_field, cards::card_uid};

use super::{
    Flash, Live, OwnerPage, PageQuery, Posted, Tab, Visit, WebState,
    api::{Audit, Card, Device, DeviceCreated, MinuteRequest, Queue, Status, Usage, UserBalance, Wallet},
    chart::{self, Bar},
    farmer::usage_table,
    finish,
    i18n::{Zone, date_time, day_month, duration, fill, minutes as fmt_minutes, parse_signed, parse_whole},
    message_page, parts, redirect, signed_in_as, words,
};

/// Ids in paths are the API's (uuid text); anything else is no object at all.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A farmer's name as the pump has it now, for the sentence after a change to them (not the name
/// the form's page had: they may have been renamed since).
async fn farmer_name(web: &WebState, token: &str, id: &str) -> String {
    let users = web.api.get("/api/admin/users", token).await.into::<Vec<UserBalance>>().unwrap_or_default();
    users.into_iter().find(|u| u.user.id == id).map(|u| u.user.name).unwrap_or_default()
}

pub(super) fn not_found(visit: &Visit) -> Response {
    let t = visit.t();
    message_page(visit, None, StatusCode::NOT_FOUND, t.not_found_title, t.not_found_text)
}

macro_rules! page_or_return {
    ($web:expr, $visit:expr) => {
        match signed_in_as(&$web, $visit, "admin").await {
            Ok(page) => page,
            Err(response) => return response,
        }
    };
}

macro_rules! token_or_login {
    ($posted:expr) => {
        match $posted.visit.session.clone() {
            Some(token) => token,
            None => return redirect("/login", &[]),
        }
    };
}

mod farmers;
mod log;
mod owner;
mod pump;
mod requests;
mod usage;

pub use farmers::{
    bind_card, correct, create_farmer, enrol_phone, farmer, farmers, recharge, remove_card, suspend, unsuspend,
};
pub use log::log;
pub use owner::{
    ReceiptLang, new_password_card, receipt, receipt_paper, rename, reset_password, set_terms, void_receipt,
};
pub use pump::{move_waiting, pump, register_device, remove_waiting, rotate_key, stop};
pub use requests::{approve, reject, requests};
pub use usage::{usage, usage_csv};
