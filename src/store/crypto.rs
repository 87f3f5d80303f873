//! The master key and sealing: XChaCha20-Poly1305, a fresh random 24-byte
//! nonce per write, associated data binding a blob to its row.
//!
//! A sealed blob is `version (1 byte) || nonce (24 bytes) || ciphertext+tag`.
//! The master key is used directly as the AEAD key; it exists in memory only
//! inside the cipher, which zeroizes it on drop, and in short-lived
//! [`Zeroizing`] buffers while it is parsed or generated.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;

/// The first byte of every sealed blob.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The length of the master key in bytes.
pub(super) const KEY_LEN: usize = 32;

/// The plaintext of the key check value in `store_meta`.
pub(super) const KEY_CHECK_PLAINTEXT: &[u8] = b"ds24-proxy master key check";
/// The associated data of the key check value.
pub(super) const KEY_CHECK_AAD: &[u8] = b"ds24-proxy/key-check/v1";

/// The master key, held only as a ready cipher (which zeroizes the key on drop).
pub(super) struct Sealer {
    aead: XChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(XChaCha20-Poly1305, key redacted)")
    }
}

/// Why a blob did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenError {
    /// Too short, or an unknown format byte.
    Malformed,
    /// The tag did not verify: another key, another row, or altered bytes.
    Authentication,
}

impl Sealer {
    pub(super) fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            aead: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Encrypts `plaintext` under a fresh random nonce. `None` only for a
    /// plaintext too long for the cipher (about 256 GiB).
    pub(super) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        blob.push(FORMAT_V1);
        blob.extend_from_slice(&nonce);
        let ciphertext = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .ok()?;
        blob.extend_from_slice(&ciphertext);
        Some(blob)
    }

    /// Decrypts a blob made by [`Self::seal`] with the same associated data.
    pub(super) fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != FORMAT_V1 {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = blob[1..].split_at(NONCE_LEN);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Authentication)
    }
}

/// The associated data of a secret: binds its blob to (connection, name).
/// Length-prefixed, so no two (connection, name) pairs give the same bytes.
pub(super) fn secret_aad(connection: &str, name: &str) -> Vec<u8> {
    const DOMAIN: &[u8] = b"ds24-proxy/secret/v1\0";
    let mut aad = Vec::with_capacity(DOMAIN.len() + 16 + connection.len() + name.len());
    aad.extend_from_slice(DOMAIN);
    aad.extend_from_slice(&(connection.len() as u64).to_be_bytes());
    aad.extend_from_slice(connection.as_bytes());
    aad.extend_from_slice(&(name.len() as u64).to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// The associated data of an IPN event's fields: binds the blob to its
/// connection and fingerprint (the digest of the fields themselves).
pub(super) fn ipn_fields_aad(connection: &str, fingerprint: &str) -> Vec<u8> {
    const DOMAIN: &[u8] = b"ds24-proxy/ipn-fields/v1\0";
    let mut aad = Vec::with_capacity(DOMAIN.len() + 16 + connection.len() + fingerprint.len());
    aad.extend_from_slice(DOMAIN);
    for field in [connection, fingerprint] {
        aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad
}

/// The associated data of a recorded reply body: binds its blob to the
/// idempotency record (connection, key) and to the rest of the reply it
/// belongs to (the request's fingerprint, the status, the content type), so
/// neither a moved blob nor an edited plain column is ever replayed.
/// Length-prefixed like [`secret_aad`]; an absent content type is told apart
/// from an empty one by a presence byte.
pub(super) fn reply_body_aad(
    connection: &str,
    key: &str,
    fingerprint: &str,
    status: u16,
    content_type: Option<&str>,
) -> Vec<u8> {
    const DOMAIN: &[u8] = b"ds24-proxy/idempotent-reply/v1\0";
    let mut aad = Vec::with_capacity(DOMAIN.len() + 64 + connection.len() + key.len());
    aad.extend_from_slice(DOMAIN);
    for field in [connection, key, fingerprint] {
        aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad.extend_from_slice(&status.to_be_bytes());
    match content_type {
        None => aad.push(0),
        Some(content_type) => {
            aad.push(1);
            aad.extend_from_slice(&(content_type.len() as u64).to_be_bytes());
            aad.extend_from_slice(content_type.as_bytes());
        }
    }
    aad
}

/// Makes a new random master key.
pub(super) fn generate_key() -> Result<Zeroizing<[u8; KEY_LEN]>, rand::rand_core::OsError> {
    use rand::TryRngCore;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.try_fill_bytes(key.as_mut())?;
    Ok(key)
}

/// Parses a master key: 64 hex characters, or base64 (standard or URL-safe
/// alphabet, padding optional) of 32 bytes. Surrounding whitespace is ignored.
/// The error says what is wrong without quoting any of the key.
pub(super) fn parse_key(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".into());
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let all_hex = text.bytes().all(|b| b.is_ascii_hexdigit());
    if all_hex && text.len() == 2 * KEY_LEN {
        hex::decode_to_slice(text, key.as_mut()).map_err(|_| "it is not valid hex".to_owned())?;
        return Ok(key);
    }
    match base64_decode(text) {
        Some(bytes) if bytes.len() == KEY_LEN => {
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Some(bytes) if !all_hex => Err(format!(
            "it is base64 of {} bytes, not {KEY_LEN}",
            bytes.len()
        )),
        _ if all_hex => Err(format!(
            "it has {} hex characters, not {}",
            text.len(),
            2 * KEY_LEN
        )),
        _ => Err("it is neither hex nor base64".into()),
    }
}

/// Decodes base64 in the standard or URL-safe alphabet, with or without
/// padding. `None` if it is not base64.
fn base64_decode(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    }
    let unpadded = text.trim_end_matches('=');
    let padding = text.len() - unpadded.len();
    if padding > 2 || (padding > 0 && !text.len().is_multiple_of(4)) || unpadded.len() % 4 == 1 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(unpadded.len() * 3 / 4));
    let mut acc = Zeroizing::new(0u32);
    let mut bits = 0u32;
    for &c in unpadded.as_bytes() {
        *acc = (*acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((*acc >> bits) as u8);
            *acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn base64_decoding_matches_known_vectors() {
        let cases: &[(&str, &[u8])] = &[
            ("", b""),
            ("Zg==", b"f"),
            ("Zg", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
            ("-_8", &[0xfb, 0xff]),
            ("+/8=", &[0xfb, 0xff]),
        ];
        for (text, bytes) in cases {
            assert_eq!(
                base64_decode(text).as_deref().map(Vec::as_slice),
                Some(*bytes),
                "{text}"
            );
        }
        for bad in ["Z", "Zg=", "Zg===", "Zm9v!", "Z=g="] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_key_parses_from_hex_and_from_both_base64_alphabets() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(251));
        let hex_key = hex::encode(bytes);
        assert_eq!(*parse_key(&hex_key).unwrap(), bytes);
        assert_eq!(
            *parse_key(&format!("  {}\n", hex_key.to_uppercase())).unwrap(),
            bytes
        );
        let b64 = encode_base64_for_test(&bytes);
        assert_eq!(*parse_key(&b64).unwrap(), bytes);
        assert_eq!(*parse_key(b64.trim_end_matches('=')).unwrap(), bytes);
        let url = b64.replace('+', "-").replace('/', "_");
        assert_eq!(*parse_key(&url).unwrap(), bytes);
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_own_associated_data() {
        let sealer = Sealer::new(&[7u8; 32]);
        let a = sealer
            .seal(&secret_aad("main", "api_key"), b"value")
            .unwrap();
        let b = sealer
            .seal(&secret_aad("main", "api_key"), b"value")
            .unwrap();
        assert_ne!(a, b, "every seal takes a fresh nonce");
        assert_eq!(
            sealer
                .open(&secret_aad("main", "api_key"), &a)
                .unwrap()
                .as_slice(),
            b"value"
        );
        assert_eq!(
            sealer.open(&secret_aad("main", "refresh_token"), &a),
            Err(OpenError::Authentication)
        );
        // The length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(secret_aad("ab", "c"), secret_aad("a", "bc"));
        assert_eq!(sealer.open(b"", &a[..10]), Err(OpenError::Malformed));
        assert_eq!(
            Sealer::new(&[8u8; 32]).open(&secret_aad("main", "api_key"), &a),
            Err(OpenError::Authentication)
        );
    }

    #[test]
    fn a_reply_body_is_bound_to_its_record_status_and_content_type() {
        let aad = |key: &str, fingerprint: &str, status: u16, content_type: Option<&str>| {
            reply_body_aad("main", key, fingerprint, status, content_type)
        };
        let base = aad("k", "ab", 200, Some("application/json"));
        for other in [
            reply_body_aad("shop2", "k", "ab", 200, Some("application/json")),
            aad("k2", "ab", 200, Some("application/json")),
            aad("k", "ac", 200, Some("application/json")),
            aad("k", "ab", 201, Some("application/json")),
            aad("k", "ab", 200, Some("text/plain")),
            aad("k", "ab", 200, None),
        ] {
            assert_ne!(base, other);
        }
        // An absent content type differs from an empty one; the length
        // prefixes keep the fields apart.
        assert_ne!(aad("k", "ab", 200, None), aad("k", "ab", 200, Some("")));
        assert_ne!(aad("ka", "b", 200, None), aad("k", "ab", 200, None));
        // And no reply's associated data is a secret's.
        assert_ne!(
            reply_body_aad("main", "api_key", "ab", 200, None),
            secret_aad("main", "api_key")
        );
    }

    pub(in crate::store) fn encode_base64_for_test(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
        out
    }
}
