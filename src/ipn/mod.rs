//! Digistore24's events (IPN): the proxy is the app's safe inbox.
//!
//! - `relay`: a background task delivers each stored event to the app's
//!   URLs as JSON, in order per purchase, with retries and a dead letter.
//! - `signature`: `sha_sign` (API-FACTS §7.2).
//!
//! The HTTP side lives at the edge: `server::routes::ipn` receives
//! (`GET`/`POST /ipn/{connection}`: the signature is checked, failing
//! closed, the event is stored durably, then `OK` is answered) and
//! `server::routes::events` shows and replays (`/events…`).
//! - `payload`: what the app receives.

pub mod payload;
pub mod relay;
pub mod signature;

use sha2::{Digest, Sha256};

/// The path a vendor registers with `ipnSetup`, below the proxy's public
/// address.
pub fn path_for(connection: &str) -> String {
    format!("/ipn/{connection}")
}

/// True for exactly `/ipn/{name}` with a valid connection name: the only
/// paths the inbound-token check lets through for IPN (anything longer
/// would be a pass-through call with the stored key).
pub fn is_receiver_path(path: &str) -> bool {
    path.strip_prefix("/ipn/").is_some_and(|name| {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The digest that tells a redelivery: what the signature covers (the
/// non-empty fields but the signature, sorted) and the signature as it
/// verifies (trimmed, upper case). Length-prefixed so that no two forms
/// give the same bytes. A copy with an added empty field or the signature
/// in lower case is the same event, not a new one for the app.
pub fn fingerprint(fields: &[(String, String)]) -> String {
    let is_signature = |k: &str| {
        signature::SIGNATURE_FIELDS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(k))
    };
    let mut signed: Vec<&(String, String)> = fields
        .iter()
        .filter(|(k, v)| !v.is_empty() && !is_signature(k))
        .collect();
    signed.sort();
    let sign = fields
        .iter()
        .find(|(k, _)| is_signature(k))
        .map(|(_, v)| v.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let mut hash = Sha256::new();
    for (k, v) in signed {
        hash.update((k.len() as u64).to_be_bytes());
        hash.update(k.as_bytes());
        hash.update((v.len() as u64).to_be_bytes());
        hash.update(v.as_bytes());
    }
    hash.update(b"\0sha_sign\0");
    hash.update(sign.as_bytes());
    hex::encode(hash.finalize())
}

/// The first value of field `name`, if not empty.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_receiver_path_is_one() {
        assert!(is_receiver_path("/ipn/main"));
        assert!(is_receiver_path("/ipn/shop-2_b"));
        for path in [
            "/ipn/",
            "/ipn",
            "/ipn/main/",
            "/ipn/main/listProducts",
            "/ipn/../listProducts",
            "/ipn/ma%2Fin",
            "/IPN/main",
            "/api/call/ipn/main",
        ] {
            assert!(!is_receiver_path(path), "{path}");
        }
    }

    #[test]
    fn the_fingerprint_ignores_order_and_tells_every_change() {
        let a = vec![
            ("order_id".to_owned(), "O1".to_owned()),
            ("sha_sign".to_owned(), "AB".to_owned()),
        ];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = a.clone();
        c[1].1 = "AC".to_owned();
        assert_ne!(fingerprint(&a), fingerprint(&c));
        // Length prefixes: moving a character between key and value differs.
        let d = vec![("order_idO".to_owned(), "1".to_owned())];
        let e = vec![("order_id".to_owned(), "O1".to_owned())];
        assert_ne!(fingerprint(&d), fingerprint(&e));
    }

    #[test]
    fn a_copy_that_verifies_the_same_is_the_same_event() {
        let a = vec![
            ("order_id".to_owned(), "O1".to_owned()),
            ("sha_sign".to_owned(), "ABCDEF".to_owned()),
        ];
        let mut lower = a.clone();
        lower[1].1 = " abcdef ".to_owned();
        assert_eq!(fingerprint(&a), fingerprint(&lower));
        let mut padded = a.clone();
        padded.push(("x".to_owned(), String::new()));
        assert_eq!(fingerprint(&a), fingerprint(&padded));
        let mut renamed = a.clone();
        renamed[1].0 = "SHASIGN".to_owned();
        assert_eq!(fingerprint(&a), fingerprint(&renamed));
    }
}
