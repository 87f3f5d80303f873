//! `requestApiKey`, `retrieveApiKey` and `unregister`: the connect flow
//! that turns a developer key and a vendor's click into a vendor key
//! (API-FACTS §6).

use serde_json::{Value, json};

use super::{Call, secure_url};
use crate::sandbox::approval;
use crate::sandbox::envelope::{ApiError, code};
use crate::sandbox::keys::{Keys, Permission, random_text};
use crate::sandbox::requests::{KeyRequest, Status};

/// Length of the `thankyou_page_key` a completed request carries (some real
/// accounts send one; S2 keeps it as the IPN passphrase).
const THANKYOU_KEY_LEN: usize = 16;

/// `requestApiKey`: `permissions` (`readonly`, `read-only` or `writable`),
/// `return_url` (public https), optional `cancel_url`, `site_url` (public
/// https too) and `comment`. Answers `data.request_url`, the approval page
/// on this sandbox, and `data.request_token`.
pub(super) fn request(keys: &mut Keys, call: &Call<'_>) -> Result<Value, ApiError> {
    // The spec spells the level `read-only`, every connector `readonly`
    // (API-FACTS §6); the sandbox takes both so neither client is wrong.
    let permission = match call.required("permissions")?.to_ascii_lowercase().as_str() {
        "readonly" | "read-only" => Permission::Readonly,
        "writable" => Permission::Writable,
        _ => {
            return Err(ApiError::invalid(
                "permissions",
                "expected readonly, read-only or writable.",
            ));
        }
    };
    let return_url = url(call, "return_url")?.ok_or_else(|| ApiError::missing("return_url"))?;
    let request = KeyRequest {
        permission,
        return_url,
        cancel_url: url(call, "cancel_url")?,
        site_url: url(call, "site_url")?,
        comment: text(call, "comment")?,
        status: Status::Pending,
    };
    let token = keys.requests.add(request);
    Ok(json!({
        "request_url": format!("http://{}{}{token}", call.host, approval::PATH),
        "request_token": token,
    }))
}

/// `retrieveApiKey`: `token`. Answers `data.request_status` (`pending`,
/// `aborted` or `completed`), `data.api_key` (empty unless this call
/// completes the request) and `data.note` (why there is no key). The first
/// retrieve after approval mints the key and spends the token.
pub(super) fn retrieve(keys: &mut Keys, call: &Call<'_>) -> Result<Value, ApiError> {
    let token = call.required("token")?;
    let Some(request) = keys.requests.get(token) else {
        // Not `pending`: a client polling for a token that can never
        // complete must stop, and `aborted` is the status that says so.
        return Ok(no_key("aborted", "Unknown or invalid token."));
    };
    let permission = request.permission;
    match request.status {
        Status::Pending => Ok(no_key("pending", "The request has not been approved yet.")),
        Status::Aborted => Ok(no_key("aborted", "The request was aborted by the vendor.")),
        Status::Used => Ok(no_key(
            "completed",
            "Token already used: the key was handed out before.",
        )),
        Status::Approved => {
            let api_key = keys.mint(permission);
            if let Some(request) = keys.requests.get_mut(token) {
                request.status = Status::Used;
            }
            Ok(json!({
                "request_status": "completed",
                "api_key": api_key,
                "note": "",
                "thankyou_page_key": random_text(THANKYOU_KEY_LEN),
            }))
        }
    }
}

/// `unregister`: deletes the calling key if the connect flow created it.
/// Answers `data.modified` and `data.note` as the real API does.
pub(super) fn unregister(keys: &mut Keys, call: &Call<'_>) -> Result<Value, ApiError> {
    if !call.key.interactive {
        return Err(ApiError::new(
            code::PERMISSION_DENIED,
            "Permission denied: this key was not created interactively and cannot be unregistered.",
        ));
    }
    keys.remove(&call.key.text);
    Ok(json!({ "modified": "Y", "note": "The API key was deleted." }))
}

/// A reply without a key.
fn no_key(status: &str, note: &str) -> Value {
    json!({ "request_status": status, "api_key": "", "note": note })
}

/// An optional URL parameter, which must be public https when given.
fn url(call: &Call<'_>, name: &str) -> Result<Option<String>, ApiError> {
    match text(call, name)? {
        Some(url) if !secure_url(&url) => Err(ApiError::refused(
            "Please only use secure URLs with https://",
        )),
        url => Ok(url),
    }
}

/// An optional text parameter, trimmed; `None` when absent or blank.
fn text(call: &Call<'_>, name: &str) -> Result<Option<String>, ApiError> {
    Ok(call
        .optional(name)?
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned))
}
