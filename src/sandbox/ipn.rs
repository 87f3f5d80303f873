//! IPN in the sandbox: `ipnSetup`/`ipnInfo`/`ipnDelete` keep registrations,
//! and the sandbox posts signed events to them the way Digistore24 does: a
//! form with `sha_sign` (API-FACTS §7), retried until the receiver answers
//! `OK`. Events go out when a purchase is refunded through the API, when
//! one is made with `POST /sandbox/purchases`, and on demand with
//! `POST /sandbox/ipn`.
//!
//! Unlike Digistore24, the sandbox accepts `http://127.0.0.1` URLs, so the
//! whole loop runs offline.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::Sandbox;
use super::store::{Store, TxKind, money, text};
use crate::ipn::signature;

/// A signed form and where it goes.
type Outgoing = (String, Vec<(String, String)>);

/// One registration made with `ipnSetup`.
#[derive(Debug, Clone)]
pub(crate) struct IpnRegistration {
    pub domain_id: String,
    pub url: String,
    pub passphrase: String,
    pub name: String,
    pub transactions: String,
    pub ipn_config_id: u64,
}

impl IpnRegistration {
    /// Whether it asked for `event` (`on_refund` → `refund`).
    fn wants(&self, event: &str) -> bool {
        let kind = event.strip_prefix("on_").unwrap_or(event);
        event == "connection_test"
            || self
                .transactions
                .split(',')
                .map(str::trim)
                .any(|t| t == "all" || t == kind)
    }
}

/// The fields of `event` about purchase `purchase_id`, unsigned; `None` for
/// an unknown purchase.
pub(crate) fn fields_for(
    store: &Store,
    purchase_id: &str,
    event: &str,
    registration: Option<&IpnRegistration>,
) -> Option<Vec<(String, String)>> {
    let purchase = store.purchase(purchase_id)?;
    let buyer = store.buyer(purchase.buyer_id);
    let buyer_field =
        |name: &str| buyer.map_or(String::new(), |b| text(&b.fields, name).to_owned());
    let kind = if event == "on_refund" || event == "on_chargeback" {
        TxKind::Refund
    } else {
        TxKind::Payment
    };
    let transaction = store
        .transactions_of(&purchase.id)
        .filter(|t| t.kind == kind)
        .last();
    let mut fields = vec![
        ("event", event.to_owned()),
        ("api_mode", "test".to_owned()),
        ("ipn_version", "1.6".to_owned()),
        ("merchant_id", "1000".to_owned()),
        ("order_id", purchase.id.clone()),
        (
            "transaction_id",
            transaction.map(|t| t.id.to_string()).unwrap_or_default(),
        ),
        ("product_id", purchase.product_id.to_string()),
        ("product_name", purchase.product_name.clone()),
        (
            "amount",
            money(transaction.map_or(purchase.amount, |t| t.amount.abs())),
        ),
        ("currency", purchase.currency.clone()),
        ("billing_type", purchase.billing_type.to_owned()),
        ("pay_method", purchase.pay_method.to_owned()),
        ("buyer_email", buyer_field("email")),
        ("buyer_first_name", buyer_field("first_name")),
        ("buyer_last_name", buyer_field("last_name")),
        ("custom", purchase.custom.clone()),
    ];
    if let Some(r) = registration {
        fields.push(("ipn_config_id", r.ipn_config_id.to_string()));
        fields.push(("ipn_config_domain_id", r.domain_id.clone()));
    }
    Some(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// `fields` with `sha_sign` added.
pub fn signed(mut fields: Vec<(String, String)>, passphrase: &str) -> Vec<(String, String)> {
    fields.retain(|(k, _)| !signature::SIGNATURE_FIELDS.contains(&k.as_str()));
    let sign = signature::sign(&fields, passphrase, false);
    fields.push(("sha_sign".to_owned(), sign));
    fields
}

/// The sandbox's one client for IPNs (built once; redirects not followed,
/// as Digistore24 does not follow them).
fn client() -> Result<reqwest::Client, String> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let built = crate::upstream::client_builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(CLIENT.get_or_init(|| built).clone())
}

/// Posts one signed form to `url`: the receiver's status and body.
///
/// # Errors
/// When the receiver cannot be reached.
pub async fn post(url: &str, fields: &[(String, String)]) -> Result<(u16, String), String> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let response = client()?
        .post(url)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{url} could not be reached: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Ok((status, text))
}

/// Digistore24's success test: HTTP 200 and a body starting with `OK`.
fn acknowledged(status: u16, body: &str) -> bool {
    status == 200 && body.trim_start().starts_with("OK")
}

/// Checks a URL the way `ipnSetup` does: a GET that must answer 200.
pub(crate) async fn validate_url(url: &str) -> Result<(), String> {
    match client()?
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) if r.status() == StatusCode::OK => Ok(()),
        Ok(r) => Err(format!(
            "The IPN URL answered HTTP {} to a GET; it must answer 200.",
            r.status().as_u16()
        )),
        Err(_) => Err("The IPN URL could not be reached.".to_owned()),
    }
}

impl Sandbox {
    /// Sends `event` about `purchase_id` to every registration that asked
    /// for it, in the background, each retried (a few times, quickly) until
    /// it answers `OK`.
    pub(crate) fn notify(&self, purchase_id: &str, event: &str) {
        let sends: Vec<Outgoing> = {
            let store = self.store();
            store
                .ipn
                .iter()
                .filter(|r| r.wants(event))
                .filter_map(|r| {
                    fields_for(&store, purchase_id, event, Some(r))
                        .map(|f| (r.url.clone(), signed(f, &r.passphrase)))
                })
                .collect()
        };
        for (url, fields) in sends {
            tokio::spawn(async move {
                let mut wait = Duration::from_millis(200);
                for attempt in 1..=6 {
                    match post(&url, &fields).await {
                        Ok((status, body)) if acknowledged(status, &body) => return,
                        Ok((status, _)) => {
                            tracing::info!(
                                attempt,
                                status,
                                "sandbox IPN not acknowledged; retrying"
                            );
                        }
                        Err(e) => {
                            tracing::info!(attempt, error = %e, "sandbox IPN not delivered; retrying");
                        }
                    }
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                tracing::warn!("sandbox IPN given up after 6 attempts");
            });
        }
    }
}

/// Form of `POST /sandbox/ipn`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct SendForm {
    /// Event type (default `on_payment`).
    event: Option<String>,
    /// Purchase the event is about (default `SBX00001`).
    order_id: Option<String>,
    /// Where to (default: every registration).
    url: Option<String>,
    /// Signing passphrase (default: the registration's; required with `url`).
    passphrase: Option<String>,
}

/// `POST /sandbox/ipn`: sends one signed event now and reports each
/// receiver's answer.
pub(crate) async fn send_now(
    State(sandbox): State<Sandbox>,
    Form(form): Form<SendForm>,
) -> Response {
    let event = form.event.unwrap_or_else(|| "on_payment".to_owned());
    let order_id = form.order_id.unwrap_or_else(|| "SBX00001".to_owned());
    let targets: Result<Vec<Outgoing>, String> = {
        let store = sandbox.store();
        match (&form.url, &form.passphrase) {
            (Some(url), Some(passphrase)) => fields_for(&store, &order_id, &event, None)
                .map(|f| vec![(url.clone(), signed(f, passphrase))])
                .ok_or_else(|| format!("there is no purchase {order_id}")),
            (Some(_), None) => Err("give `passphrase` with `url`".to_owned()),
            (None, _) if store.ipn.is_empty() => Err(
                "no IPN URL is registered: call ipnSetup, or give `url` and `passphrase`"
                    .to_owned(),
            ),
            (None, _) => store
                .ipn
                .iter()
                .map(|r| {
                    fields_for(&store, &order_id, &event, Some(r))
                        .map(|f| (r.url.clone(), signed(f, &r.passphrase)))
                        .ok_or_else(|| format!("there is no purchase {order_id}"))
                })
                .collect(),
        }
    };
    let targets = match targets {
        Ok(t) => t,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": message})),
            )
                .into_response();
        }
    };
    let mut sent = Vec::new();
    for (url, fields) in targets {
        let answer = match post(&url, &fields).await {
            Ok((status, body)) => {
                json!({"url": url, "status": status, "acknowledged": acknowledged(status, &body), "body": body.chars().take(500).collect::<String>()})
            }
            Err(e) => json!({"url": url, "error": e}),
        };
        sent.push(answer);
    }
    axum::Json(json!({"event": event, "order_id": order_id, "sent": sent})).into_response()
}

/// Form of `POST /sandbox/purchases`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PurchaseForm {
    /// Product bought (default `10001`).
    product_id: Option<u64>,
    /// Buyer (default `50001`).
    buyer_id: Option<u64>,
}

/// `POST /sandbox/purchases`: a buyer buys: a new purchase with one
/// payment, announced to every registration with `on_payment`.
pub(crate) async fn create_purchase(
    State(sandbox): State<Sandbox>,
    Form(form): Form<PurchaseForm>,
) -> Response {
    let now = super::clock::now();
    let created = {
        let mut store = sandbox.store();
        let product_id = form.product_id.unwrap_or(10001);
        let buyer_id = form.buyer_id.unwrap_or(50001);
        let product = store.product(&product_id.to_string()).cloned();
        match (product, store.buyer(buyer_id).is_some()) {
            (Some(product), true) => {
                let id = format!("SBX{:05}", store.purchases.len() + 1);
                // Products keep no price; a sale costs what the last one did.
                let amount = store
                    .purchases
                    .iter()
                    .rev()
                    .find(|p| p.product_id == product_id)
                    .map_or(1000, |p| p.amount);
                let purchase = super::store::Purchase {
                    id: id.clone(),
                    product_id,
                    product_name: text(&product.fields, "name").to_owned(),
                    buyer_id,
                    created_at: now,
                    amount,
                    currency: text(&product.fields, "currency").to_owned(),
                    billing_type: "single_payment",
                    billing_status: "completed",
                    payment_status: "paid",
                    pay_method: "creditcard",
                    next_payment_at: None,
                    tracking_param: String::new(),
                    custom: String::new(),
                    unlock_invoices: "N".to_owned(),
                    affiliate_name: String::new(),
                    refund_period_over: false,
                    refunded_at: None,
                };
                let tx = store.add_transaction(&purchase, TxKind::Payment, amount, now);
                store.purchases.push(purchase);
                Ok(
                    json!({"purchase_id": id, "transaction_id": tx.to_string(), "amount": money(amount)}),
                )
            }
            _ => Err(format!("unknown product {product_id} or buyer {buyer_id}")),
        }
    };
    match created {
        Ok(data) => {
            if let Some(id) = data["purchase_id"].as_str() {
                sandbox.notify(id, "on_payment");
            }
            axum::Json(data).into_response()
        }
        Err(message) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": message})),
        )
            .into_response(),
    }
}

/// The registrations as `ipnInfo` shows them.
pub(crate) fn info(registration: &IpnRegistration) -> Value {
    json!({
        "have_settings": "Y",
        "domain_id": registration.domain_id,
        "ipn_url": registration.url,
        "name": registration.name,
        "transactions": registration.transactions,
        "sha_passphrase": registration.passphrase,
        "ipn_config_id": registration.ipn_config_id.to_string(),
    })
}
