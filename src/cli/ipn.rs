//! `ds24-proxy ipn setup|info|delete`: registers the proxy's IPN URL with
//! Digistore24 (`ipnSetup`), with a passphrase it then keeps in the store,
//! and wraps `ipnInfo` and `ipnDelete`. The calls run in-process through
//! the proxy's own router, like `ds24-proxy request`.

use anyhow::{Context, bail};
use axum::body::Body;
use http::{Method, Request, header};
use rand::Rng;
use secrecy::SecretString;
use serde_json::Value;

use super::local::{self, CallOptions};
use crate::store::Store;

/// The `domain_id` the registration is filed under unless one is given:
/// Digistore24 keys an IPN connection by (account, API key, domain_id), so
/// a fixed value makes `setup` update rather than add.
pub const DEFAULT_DOMAIN_ID: &str = "ds24-proxy";

/// `ds24-proxy ipn …`
#[derive(Debug, clap::Subcommand)]
pub enum IpnCommand {
    /// Register PUBLIC_URL (ending in /ipn/CONNECTION) with a fresh random
    /// passphrase (or --passphrase) and keep the passphrase in the store.
    Setup {
        /// The public address Digistore24 will post to, e.g.
        /// https://hooks.example.com/ipn/main.
        #[arg(long, value_name = "PUBLIC_URL")]
        url: String,
        /// Use this passphrase instead of a random one (at most 63
        /// characters); `-` reads it from stdin, so it stays out of the
        /// process list.
        #[arg(long, value_name = "PASSPHRASE")]
        passphrase: Option<String>,
        /// Which events: comma-separated `payment`, `refund`, `chargeback`,
        /// `payment_missed`, `rebill_cancelled`, `rebill_resumed`,
        /// `last_paid_day`, or `all`.
        #[arg(
            long,
            value_name = "LIST",
            default_value = "payment,refund,chargeback,payment_missed,rebill_cancelled,rebill_resumed,last_paid_day"
        )]
        transactions: String,
        /// Name shown in Digistore24's IPN settings.
        #[arg(long, default_value = "ds24-proxy")]
        name: String,
        /// The registration's domain_id.
        #[arg(long, value_name = "ID", default_value = DEFAULT_DOMAIN_ID)]
        domain_id: String,
        #[command(flatten)]
        call: CallOptions,
    },
    /// What Digistore24 has registered (ipnInfo).
    Info {
        /// The registration's domain_id.
        #[arg(long, value_name = "ID", default_value = DEFAULT_DOMAIN_ID)]
        domain_id: String,
        #[command(flatten)]
        call: CallOptions,
    },
    /// Remove the registration (ipnDelete).
    Delete {
        /// The registration's domain_id.
        #[arg(long, value_name = "ID", default_value = DEFAULT_DOMAIN_ID)]
        domain_id: String,
        #[command(flatten)]
        call: CallOptions,
    },
}

/// A random passphrase: 40 letters and digits (Digistore24 allows 63).
pub fn random_passphrase() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

async fn call(
    options: &CallOptions,
    function: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/{function}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .context("building the request")?;
    let reply = local::check(local::send(options, request).await?)
        .with_context(|| format!("{function} failed"))?;
    let envelope: Value = serde_json::from_slice(&reply.body)
        .with_context(|| format!("{function} did not answer with JSON"))?;
    if envelope["result"] != "success" {
        bail!(
            "{function} failed: Digistore24 refused the call: {}",
            envelope["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(envelope["data"].clone())
}

/// Runs the subcommand.
///
/// # Errors
/// When Digistore24 refuses, or the passphrase cannot be stored.
pub async fn run(command: IpnCommand) -> anyhow::Result<()> {
    match command {
        IpnCommand::Setup {
            url,
            passphrase,
            transactions,
            name,
            domain_id,
            call: options,
        } => {
            let connection = options
                .connection
                .clone()
                .unwrap_or_else(|| crate::config::DEFAULT_CONNECTION.to_owned());
            let parsed = url::Url::parse(&url)
                .context("--url must be a full URL like https://hooks.example.com/ipn/main")?;
            if !parsed.path().ends_with(&crate::ipn::path_for(&connection)) {
                bail!(
                    "--url must end in {} (the proxy's IPN route for connection `{connection}`)",
                    crate::ipn::path_for(&connection)
                );
            }
            let passphrase = match passphrase.as_deref() {
                Some("-") => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the passphrase from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
                Some(p) => p.to_owned(),
                None => random_passphrase(),
            };
            if passphrase.is_empty() || passphrase.chars().count() > 63 {
                bail!("--passphrase must have 1 to 63 characters");
            }
            let (config, store) = super::open_store(options.config.clone())?;
            if config
                .connections
                .get(&connection)
                .is_some_and(|c| c.ipn.passphrase.is_some())
            {
                eprintln!(
                    "warning: connection `{connection}` has a passphrase in its configuration (DS24_IPN_PASSPHRASE or passphrase_env/_file); it takes precedence over the one stored now: remove it"
                );
            }
            let data = call(
                &options,
                "ipnSetup",
                &[
                    ("ipn_url", url.as_str()),
                    ("name", name.as_str()),
                    ("product_ids", "all"),
                    ("domain_id", domain_id.as_str()),
                    ("categories", "orders"),
                    ("transactions", transactions.as_str()),
                    ("timing", "before_thankyou"),
                    ("sha_passphrase", passphrase.as_str()),
                ],
            )
            .await?;
            // Digistore24 may answer with the passphrase it keeps; that is
            // the one that signs.
            let registered = data["sha_passphrase"]
                .as_str()
                .filter(|p| !p.is_empty())
                .unwrap_or(&passphrase)
                .to_owned();
            if let Err(e) = store.save_ipn_passphrase(&connection, &SecretString::from(registered))
            {
                // Never printed: run setup again once the store works, which
                // registers a new passphrase.
                bail!(
                    "the URL is registered, but its passphrase could not be stored ({e}); every event will be refused until you run `ds24-proxy ipn setup` again"
                );
            }
            out!("registered {url} for connection `{connection}` (domain_id {domain_id})");
            out!("events: {transactions}");
            for key in ["ipn_config_id", "ipn_id", "created", "updated"] {
                if let Some(v) = data.get(key).filter(|v| !v.is_null()) {
                    out!(
                        "{key}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    );
                }
            }
            out!(
                "passphrase: stored encrypted in {} (not shown)",
                config.data_dir()?.display()
            );
        }
        IpnCommand::Info {
            domain_id,
            call: options,
        } => {
            let data = call(&options, "ipnInfo", &[("domain_id", domain_id.as_str())]).await?;
            let mut shown = data;
            // The passphrase signs events; it stays off the terminal.
            if let Some(p) = shown.get_mut("sha_passphrase") {
                *p = Value::String("[redacted]".to_owned());
            }
            out!("{}", serde_json::to_string_pretty(&shown)?);
        }
        IpnCommand::Delete {
            domain_id,
            call: options,
        } => {
            let data = call(&options, "ipnDelete", &[("domain_id", domain_id.as_str())]).await?;
            out!("{}", serde_json::to_string_pretty(&data)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_passphrase_has_40_letters_and_digits_and_differs_each_time() {
        let a = random_passphrase();
        assert_eq!(a.chars().count(), 40);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, random_passphrase());
    }
}
