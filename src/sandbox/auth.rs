//! The sandbox's two API keys and what each may do (API-FACTS §2).

use super::envelope::{ApiError, code};
use super::{READONLY_KEY, WRITABLE_KEY};

/// Permission level of a key, named as Digistore24 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permission {
    /// May call read functions only.
    Readonly,
    /// Full access.
    Writable,
}

impl Permission {
    /// The level as Digistore24 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Readonly => "readonly",
            Self::Writable => "writable",
        }
    }
}

/// A key the sandbox accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ApiKey {
    /// The numeric prefix before the `-`, which Digistore24 uses as key id.
    pub id: &'static str,
    /// What the key may do.
    pub permission: Permission,
}

const KEYS: [(&str, ApiKey); 2] = [
    (
        WRITABLE_KEY,
        ApiKey {
            id: "1000",
            permission: Permission::Writable,
        },
    ),
    (
        READONLY_KEY,
        ApiKey {
            id: "1001",
            permission: Permission::Readonly,
        },
    ),
];

/// Finds the key of a request: the `X-DS-API-KEY` header, or else the key
/// segment of the legacy path.
///
/// # Errors
/// Code 10 when neither carries a key, code 2 when the key is unknown.
pub(crate) fn authenticate(
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
    KEYS.iter()
        .find(|(key, _)| *key == sent)
        .map(|(_, api_key)| *api_key)
        .ok_or_else(|| ApiError::new(code::BAD_KEY, "Invalid connection parameters."))
}

/// Refuses a write with a key that may only read.
///
/// # Errors
/// Code 5 "Permission denied." (HTTP 403).
pub(crate) fn authorize(key: ApiKey, writes: bool) -> Result<(), ApiError> {
    if writes && key.permission == Permission::Readonly {
        return Err(ApiError::new(code::PERMISSION_DENIED, "Permission denied."));
    }
    Ok(())
}
