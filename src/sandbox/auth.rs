//! Who is calling and what they may do (API-FACTS §2): the key of a request
//! and the check of its permission against the function called.

use std::fmt;

use super::envelope::{ApiError, code};
use super::functions::Access;
use super::keys::{Keys, Permission};

/// A key the sandbox accepted.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiKey {
    /// The key as sent; `unregister` needs it to delete the key.
    pub text: String,
    /// The numeric prefix before the `-`, which Digistore24 uses as key id.
    pub id: String,
    /// What the key may do.
    pub permission: Permission,
    /// Whether it was created by the connect flow (or a test), and so may
    /// be deleted with `unregister`.
    pub interactive: bool,
}

/// Without the key text: sandbox keys are not secrets, but a `Debug` that
/// prints them would teach the wrong habit to code that copies it.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("permission", &self.permission)
            .field("interactive", &self.interactive)
            .finish_non_exhaustive()
    }
}

/// Finds the key of a request: the `X-DS-API-KEY` header, or else the key
/// segment of the legacy path.
///
/// # Errors
/// Code 10 when neither carries a key, code 2 when the key is unknown (or
/// was revoked or unregistered).
pub(crate) fn authenticate(
    keys: &Keys,
    header: Option<&http::HeaderValue>,
    path_key: Option<&str>,
) -> Result<ApiKey, ApiError> {
    let sent = match header {
        // A header that is not text cannot match a key; treat it as wrong,
        // not as absent.
        Some(value) => Some(value.to_str().unwrap_or("\u{0}")),
        None => path_key,
    };
    let sent = sent.map(str::trim).filter(|k| !k.is_empty());
    let Some(sent) = sent else {
        return Err(ApiError::new(code::KEY_MISSING, "Api key is missing."));
    };
    keys.find(sent)
        .ok_or_else(|| ApiError::new(code::BAD_KEY, "Invalid connection parameters."))
}

/// Checks the key's level against what the function needs: a developer key
/// may only run the connect flow, only a developer key may run it, and
/// writes need a `writable` key.
///
/// # Errors
/// Code 5 "Permission denied." (HTTP 403).
pub(crate) fn authorize(key: &ApiKey, access: Access) -> Result<(), ApiError> {
    let allowed = match (key.permission, access) {
        (Permission::Developer, access) => access == Access::Developer,
        (_, Access::Developer) => false,
        (Permission::Readonly, Access::Write) => false,
        (Permission::Readonly | Permission::Writable, Access::Read | Access::Write) => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(code::PERMISSION_DENIED, "Permission denied."))
    }
}
