//! What the app receives for one event: a JSON object, and headers saying
//! that the proxy verified it and which event it is.

use serde_json::{Map, Value};

use crate::store::IpnEvent;

/// The event id (also the body's `id`): the app's idempotency key, since a
/// delivery may come more than once.
pub const EVENT_ID: &str = "x-ds24-event-id";
/// `sha512`: the proxy checked `sha_sign` with the connection's passphrase.
pub const VERIFIED: &str = "x-ds24-verified";
/// The event type (`on_payment`, …).
pub const EVENT: &str = "x-ds24-event";
/// The connection that received it.
pub const CONNECTION: &str = "x-ds24-connection";
/// Which attempt this is, from 1.
pub const ATTEMPT: &str = "x-ds24-delivery-attempt";

/// Unix ms as RFC 3339 (UTC).
pub fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The fields as one JSON object; a name that came more than once becomes
/// an array of its values, in order, so nothing is lost.
pub fn fields_object(fields: &[(String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in fields {
        match out.get_mut(k) {
            None => {
                out.insert(k.clone(), Value::String(v.clone()));
            }
            Some(Value::Array(values)) => values.push(Value::String(v.clone())),
            Some(first) => {
                let first = first.take();
                out.insert(
                    k.clone(),
                    Value::Array(vec![first, Value::String(v.clone())]),
                );
            }
        }
    }
    out
}

/// What the app and `/events` both show of an event: its id, connection,
/// type, purchase and transaction, and when it arrived.
pub fn summary(event: &IpnEvent) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), event.id.into());
    out.insert("connection".into(), event.connection.clone().into());
    out.insert("event".into(), event.event.clone().into());
    out.insert("order_id".into(), event.order_id.clone().into());
    out.insert("transaction_id".into(), event.transaction_id.clone().into());
    out.insert(
        "received_at".into(),
        rfc3339_ms(event.received_at_ms).into(),
    );
    out
}

/// The JSON body for `event` (its fields must be loaded).
pub fn body(event: &IpnEvent, attempt: u32) -> Value {
    let mut out = summary(event);
    out.insert("verified".into(), Value::Bool(true));
    out.insert("attempt".into(), attempt.into());
    out.insert(
        "fields".into(),
        Value::Object(fields_object(event.fields.as_deref().unwrap_or_default())),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repeated_names_keep_every_value() {
        let fields = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "x".to_owned()),
            ("a".to_owned(), "2".to_owned()),
            ("a".to_owned(), "3".to_owned()),
        ];
        let object = fields_object(&fields);
        assert_eq!(object["a"], json!(["1", "2", "3"]));
        assert_eq!(object["b"], "x");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
