//! `getUserInfo`, `ping` and `listOrderforms`: facts about the account.

use serde_json::{Value, json};

use super::Call;
use crate::sandbox::clock;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::store::Store;

/// Layout filters of `listOrderforms` (S6).
#[rustfmt::skip]
const LAYOUTS: &[&str] = &[
    "all", "orderform_responsive", "orderform_widget", "orderform_legacy",
];

/// `getUserInfo`: the spec's `user_id`, `user_name`, `granted_roles` and
/// `granted_roles_msg`, plus what the real API does not tell but a sandbox
/// user wants to see: the calling key's id and permission level.
pub(super) fn get_user_info(_store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    Ok(json!({
        "user_id": "424242",
        "user_name": "sandbox_vendor",
        "email": "vendor@sandbox.invalid",
        "first_name": "Sandbox",
        "last_name": "Vendor",
        "granted_roles": "user,affiliate,merchant",
        "granted_roles_msg": "User,Affiliate,Vendor",
        "api_key_id": call.key.id,
        "permissions": call.key.permission.as_str(),
        "is_sandbox": "Y",
    }))
}

/// `ping`: `data.server_time`.
pub(super) fn ping(_store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    Ok(json!({ "server_time": clock::format(call.now) }))
}

/// `listOrderforms`: `data.orderforms` and the `layout` filter used
/// (`all` by default).
pub(super) fn list_orderforms(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let layout = match call.optional("layout")?.map(str::trim) {
        None | Some("") => "all",
        Some(layout) if LAYOUTS.contains(&layout) => layout,
        Some(_) => {
            return Err(ApiError::invalid(
                "layout",
                &format!("expected one of {}.", LAYOUTS.join(", ")),
            ));
        }
    };
    let forms: Vec<Value> = store
        .orderforms
        .iter()
        .filter(|f| layout == "all" || f.layout == layout)
        .map(|f| {
            json!({
                "id": f.id.to_string(), "name": f.name, "layout": f.layout,
                "created_at": clock::format(f.created_at),
                "modified_at": clock::format(f.created_at),
            })
        })
        .collect();
    Ok(json!({ "orderforms": forms, "layout": layout }))
}
