//! `ds24-proxy connections list|show|test|remove`: the configured and
//! stored connections, from the shell. Never prints a secret.

use anyhow::{Context, bail};
use axum::body::Body;
use http::Request;
use serde_json::{Value, json};

use super::local::{self, CallOptions};
use crate::app::AppState;
use crate::call::direct::call_with_key;
use crate::config::{self, Overrides, ProcessEnv};
use crate::credentials::CredentialSource;
use crate::server::routes::connections::describe;

/// `ds24-proxy connections …`
#[derive(Debug, clap::Subcommand)]
pub enum ConnectionsCommand {
    /// List connections: name, source, state, key id, expiry, last renewal, last error.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Show one connection.
    Show {
        /// Connection name.
        name: String,
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Check the key with a harmless call (`getUserInfo`).
    Test {
        /// Connection name.
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Remove a stored connection (from `connect`).
    Remove {
        /// Connection name.
        name: String,
        /// Also delete the key at Digistore24 (`unregister`).
        #[arg(long)]
        unregister: bool,
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
}

fn state(config_file: Option<std::path::PathBuf>) -> anyhow::Result<AppState> {
    let config = config::load(
        &ProcessEnv,
        &Overrides {
            config_file,
            ..Overrides::default()
        },
    )?;
    crate::telemetry::init_cli(config.log_format);
    // Without a data directory the stored connections cannot be seen: a
    // listing without them would look complete and be wrong.
    config.data_dir()?;
    AppState::new(config)
}

/// Loads the keys of local sources (env, file, stored) so the listing can
/// show key ids; commands and token endpoints are not run for a listing.
async fn described(state: &AppState) -> Vec<Value> {
    let mut connections: Vec<_> = state.connections().collect();
    connections.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for conn in connections {
        let local = matches!(
            conn.credential.source(),
            CredentialSource::Env { .. }
                | CredentialSource::File { .. }
                | CredentialSource::Stored
                | CredentialSource::Static(_)
        );
        if local {
            let _ = conn.credential.key().await;
        }
        out.push(describe(conn));
    }
    out
}

/// One row of the table; [`HEADER`] names its columns.
fn line(c: &Value) -> String {
    let text = |k: &str| c[k].as_str().unwrap_or("-").to_owned();
    format!(
        "{:<16} {:<8} {:<16} {:<8} {:<30} {:<30} {}",
        text("name"),
        text("source"),
        text("state"),
        text("key_id"),
        text("expires_at"),
        text("last_renewal_at"),
        text("last_error"),
    )
}

/// The header row of `connections list`.
const HEADER: &str = "NAME             SOURCE   STATE            KEY ID   EXPIRES                        RENEWED                        LAST ERROR";

/// Runs the subcommand.
///
/// # Errors
/// Unknown connection, failed test (non-zero exit).
pub async fn run(command: ConnectionsCommand) -> anyhow::Result<()> {
    match command {
        ConnectionsCommand::List { json, config } => {
            let listed = described(&state(config)?).await;
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "connections": listed }))?
                );
            } else {
                out!("{HEADER}");
                for c in &listed {
                    out!("{}", line(c));
                }
            }
        }
        ConnectionsCommand::Show { name, config } => {
            let listed = described(&state(config)?).await;
            let one = listed
                .into_iter()
                .find(|c| c["name"] == name.as_str())
                .with_context(|| format!("no connection named `{name}`"))?;
            out!("{}", serde_json::to_string_pretty(&one)?);
        }
        ConnectionsCommand::Test { name, json, config } => {
            let options = CallOptions {
                connection: Some(name.clone()),
                config,
            };
            let request = Request::post("/actions/get-user-info")
                .header("content-type", "application/json")
                .body(Body::from("{}"))?;
            let reply = local::send(&options, request).await?;
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            if json {
                out!("{}", serde_json::to_string_pretty(&body)?);
            }
            local::check(reply)?;
            if !json {
                let perms = body["data"]["permissions"].as_str().unwrap_or("unknown");
                out!("`{name}` works: Digistore24 accepted the key (permissions: {perms})");
            }
        }
        ConnectionsCommand::Remove {
            name,
            unregister,
            config,
        } => {
            let state = state(config)?;
            let conn = state
                .connection(&name)
                .with_context(|| format!("no connection named `{name}`"))?;
            if !matches!(conn.credential.source(), CredentialSource::Stored) {
                bail!(
                    "`{name}` comes from the configuration ({} source); remove it there",
                    conn.credential.source().kind()
                );
            }
            let store = state.store().context("the store is not open")?;
            if unregister {
                // Read the key straight from the store: loading it through the
                // credential would write its state back after the removal.
                let secret = store
                    .secret(&name, "api_key")?
                    .with_context(|| format!("no key is stored for `{name}`"))?;
                let key = crate::credentials::ApiKey::from_secret(&secret)
                    .map_err(|e| anyhow::anyhow!("the stored key is unusable: {e}"))?;
                call_with_key(state.upstream(), &conn.base_url, "unregister", &[], &key)
                    .await
                    .map_err(|e| anyhow::anyhow!("unregister failed, nothing was removed: {e}"))?;
                eprintln!("the key was deleted at Digistore24");
            }
            store.remove(&name)?;
            eprintln!("removed `{name}` from the store");
        }
    }
    Ok(())
}
