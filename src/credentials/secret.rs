//! The secret types. A key is wrapped the moment it is read and is exposed in
//! exactly one place: [`ApiKey::header_value`], when the upstream request is
//! built. `Debug` and `Display` never show the secret part.

use std::fmt;

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

/// A Digistore24 API key (`<numeric id>-<secret>`, API-FACTS §2).
#[derive(Clone)]
pub struct ApiKey {
    secret: SecretString,
    /// The digits before the dash: not secret (Digistore24 itself shows it in
    /// IPN field `ipn_config_api_key_id`), useful to tell keys apart in logs.
    id: Option<String>,
}

/// Why a string is not usable as an API key. Never carries the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("the key is empty")]
    Empty,
    #[error("the key contains whitespace or control characters inside it")]
    BadCharacter,
}

impl ApiKey {
    /// Wraps a key read from a source. Surrounding whitespace (a trailing
    /// newline from a file or `echo`) is not part of the key.
    ///
    /// # Errors
    /// [`KeyFormatError`] when nothing is left or the key could not travel in
    /// an HTTP header.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyFormatError::BadCharacter);
        }
        let id = trimmed
            .split_once('-')
            .map(|(prefix, _)| prefix)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned);
        Ok(Self {
            secret: SecretString::from(trimmed.to_owned()),
            id,
        })
    }

    /// Wraps a secret read from the store.
    ///
    /// # Errors
    /// As [`ApiKey::parse`].
    pub fn from_secret(secret: &SecretString) -> Result<Self, KeyFormatError> {
        Self::parse(secret.expose_secret())
    }

    /// The key as a [`SecretString`], for writing it to the store.
    pub fn to_secret(&self) -> SecretString {
        self.secret.clone()
    }

    /// The key id (digits before the dash), if the key has the usual shape.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The header value for `X-DS-API-KEY`, marked sensitive so that tracing
    /// layers and `Debug` of the header map redact it.
    pub fn header_value(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(self.secret.expose_secret())
            .expect("parse() admits only visible ASCII, which is a valid header value");
        value.set_sensitive(true);
        value
    }

    /// The value for a header that carries the key after a fixed prefix
    /// (`Authorization: Bearer <token>` for brokered tokens), marked sensitive.
    pub fn header_value_with_prefix(&self, prefix: &str) -> HeaderValue {
        if prefix.is_empty() {
            return self.header_value();
        }
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.secret.expose_secret()))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    /// The raw key, for the form body of an OAuth2 token request (the one
    /// place besides the header where a secret has to leave the process).
    pub(crate) fn expose_for_form(&self) -> &str {
        self.secret.expose_secret()
    }

    /// Compares two keys without exposing either (used to tell whether a
    /// re-read source yielded a different key).
    pub fn same_as(&self, other: &ApiKey) -> bool {
        self.secret.expose_secret() == other.secret.expose_secret()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}-[redacted])", self.id().unwrap_or("?"))
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let key = ApiKey::parse("1234-SuperSecretValue42\n").unwrap();
        for shown in [
            format!("{key:?}"),
            format!("{key}"),
            format!("{:?}", Some(&key)),
        ] {
            assert!(!shown.contains("SuperSecret"), "{shown}");
            assert!(shown.contains("1234"), "{shown}");
        }
    }

    #[test]
    fn surrounding_whitespace_is_not_part_of_the_key() {
        let a = ApiKey::parse("  77-abc\n").unwrap();
        let b = ApiKey::parse("77-abc").unwrap();
        assert!(a.same_as(&b));
        assert_eq!(a.header_value(), "77-abc");
        assert!(a.header_value().is_sensitive());
    }

    #[test]
    fn unusable_keys_are_refused_with_a_reason() {
        assert_eq!(ApiKey::parse(" \n").unwrap_err(), KeyFormatError::Empty);
        assert_eq!(
            ApiKey::parse("12-a b").unwrap_err(),
            KeyFormatError::BadCharacter
        );
        assert_eq!(
            ApiKey::parse("12-a\u{7f}").unwrap_err(),
            KeyFormatError::BadCharacter
        );
        assert_eq!(ApiKey::parse("nodash").unwrap().id(), None);
    }
}
