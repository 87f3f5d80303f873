//! Reply shapes of the functions the sandbox answers from the catalog
//! alone: what the official spec's 200 reply schema says `data` holds,
//! as one deterministic example per function (`table.rs`, made by
//! `generate.py` from the spec; the binary ships without the spec).
//!
//! Where the spec models no `data` (no body, a broken `oneOf`; API-FACTS
//! §9.1, §9.2) there is no shape and the caller builds a generic one. The
//! one catalog function the spec lacks, `getTestpayKey`, has its shape here
//! from API-FACTS §8.

mod table;

use serde_json::Value;

pub(crate) use table::SHAPES;

/// `getTestpayKey`'s reply (S2, S5; not in the spec).
const TESTPAY_KEY: &str = r#"{"testpay_key":"SBXTESTPAY0000000000","get_param_name":"ds24testpay","expires_at":"2025-01-01 12:00:00"}"#;

/// The example `data` of `function` (any letter case), `None` when the spec
/// models none or does not know the function.
pub(crate) fn example(function: &str) -> Option<Value> {
    let text = if function.eq_ignore_ascii_case("getTestpayKey") {
        TESTPAY_KEY
    } else {
        SHAPES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(function))
            .and_then(|(_, shape)| *shape)?
    };
    // The table is generated JSON; a test parses every entry.
    serde_json::from_str(text).ok()
}
