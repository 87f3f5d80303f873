//! `ipnSetup`, `ipnInfo`, `ipnDelete` (API-FACTS §7.5). The URL check
//! (a GET that must answer 200) runs in the handler before `ipnSetup`,
//! since it needs the network.

use rand::Rng;
use serde_json::{Value, json};

use super::Call;
use crate::sandbox::envelope::ApiError;
use crate::sandbox::ipn::{IpnRegistration, info as describe};
use crate::sandbox::store::Store;

const DEFAULT_DOMAIN: &str = "default";

/// `ipnSetup`: creates or updates the registration of `domain_id`.
/// `sha_passphrase=random` (or none) makes one, as Digistore24 does.
pub(super) fn setup(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let url = call.required("ipn_url")?.to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::invalid("ipn_url", "it must be an http(s) URL"));
    }
    let domain_id = call
        .optional("domain_id")?
        .unwrap_or(DEFAULT_DOMAIN)
        .to_owned();
    let passphrase = match call.optional("sha_passphrase")? {
        None | Some("random") => rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(30)
            .map(char::from)
            .collect(),
        Some(p) if p.chars().count() > 63 => {
            return Err(ApiError::invalid(
                "sha_passphrase",
                "it may have at most 63 characters",
            ));
        }
        Some(p) => p.to_owned(),
    };
    let transactions = call
        .optional("transactions")?
        .unwrap_or("payment,refund,chargeback,payment_missed")
        .to_owned();
    let name = call.optional("name")?.unwrap_or("IPN").to_owned();
    let existing = store.ipn.iter().position(|r| r.domain_id == domain_id);
    let ipn_config_id = match existing {
        Some(i) => store.ipn[i].ipn_config_id,
        None => {
            store.next_ipn_config_id += 1;
            40_000 + store.next_ipn_config_id
        }
    };
    let registration = IpnRegistration {
        domain_id: domain_id.clone(),
        url,
        passphrase: passphrase.clone(),
        name,
        transactions,
        ipn_config_id,
    };
    let created = existing.is_none();
    match existing {
        Some(i) => store.ipn[i] = registration,
        None => store.ipn.push(registration),
    }
    Ok(json!({
        "created": if created { "Y" } else { "N" },
        "updated": if created { "N" } else { "Y" },
        "deleted": "N",
        "domain_id": domain_id,
        "sha_passphrase": passphrase,
        "ipn_config_id": ipn_config_id.to_string(),
        "ipn_id": ipn_config_id.to_string(),
    }))
}

/// `ipnInfo`: the registration of `domain_id` (or the first one).
pub(super) fn info(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let domain_id = call.optional("domain_id")?;
    let found = store
        .ipn
        .iter()
        .find(|r| domain_id.is_none_or(|d| r.domain_id == d));
    Ok(found.map_or_else(|| json!({"have_settings": "N"}), describe))
}

/// `ipnDelete`: removes the registration of `domain_id`.
pub(super) fn delete(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let domain_id = call.required("domain_id")?;
    let before = store.ipn.len();
    store.ipn.retain(|r| r.domain_id != domain_id);
    Ok(json!({"modified": if store.ipn.len() < before { "Y" } else { "N" }}))
}
