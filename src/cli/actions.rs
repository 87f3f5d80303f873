//! `ds24-proxy actions list|show|run`: the catalog from the shell, through
//! the same routes as `GET /actions` and `POST /actions/{key}`.

use std::io::Read;

use anyhow::Context;
use axum::body::Body;
use http::{Request, header};
use serde_json::Value;

use super::local::{self, CallOptions};
use crate::server::routes::actions::describe;

/// `ds24-proxy actions …`
#[derive(Debug, clap::Subcommand)]
pub enum ActionsCommand {
    /// List actions (ranked by relevance with --intent).
    List {
        /// Plain words describing what you want to do.
        #[arg(long, value_name = "TEXT")]
        intent: Option<String>,
        /// Machine-readable output (the JSON of GET /actions).
        #[arg(long)]
        json: bool,
    },
    /// Show one action with its input schema (JSON).
    Show {
        /// Action key (`list-products`) or function name (`listProducts`).
        key: String,
    },
    /// Run an action and print `{"data", "meta"}`.
    Run {
        /// Action key or function name.
        key: String,
        /// Input: JSON text, `@file`, or `-` for stdin.
        #[arg(long, value_name = "JSON|@FILE|-", default_value = "{}")]
        input: String,
        #[command(flatten)]
        call: CallOptions,
    },
}

/// Runs the subcommand.
///
/// # Errors
/// Unknown actions, invalid input, upstream errors (exit status non-zero).
pub async fn run(command: ActionsCommand) -> anyhow::Result<()> {
    match command {
        // Listing and showing read the catalog directly: they need no
        // configuration, so they work in any environment.
        ActionsCommand::List { intent, json } => {
            let listed: Vec<Value> =
                match intent.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    Some(intent) => crate::actions::rank(intent)
                        .into_iter()
                        .map(|(a, _)| describe(a))
                        .collect(),
                    None => crate::actions::CATALOG.iter().map(describe).collect(),
                };
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "actions": listed }))?
                );
            } else {
                for a in &listed {
                    out!(
                        "{:<42} {:<6} {}",
                        a["key"].as_str().unwrap_or_default(),
                        a["effect"].as_str().unwrap_or_default(),
                        a["summary"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        ActionsCommand::Show { key } => {
            let action = crate::actions::find(&key).with_context(|| {
                let close = crate::actions::suggest(&key, 3);
                if close.is_empty() {
                    format!(
                        "unknown_action: there is no action `{key}`; `ds24-proxy actions list --intent WORDS` finds one"
                    )
                } else {
                    format!(
                        "unknown_action: there is no action `{key}`; closest: {}",
                        close.join(", ")
                    )
                }
            })?;
            out!("{}", serde_json::to_string_pretty(&describe(action))?);
        }
        ActionsCommand::Run { key, input, call } => {
            let body = match input.as_str() {
                "-" => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s
                }
                s if s.starts_with('@') => std::fs::read_to_string(&s[1..])
                    .with_context(|| format!("cannot read {}", &s[1..]))?,
                s => s.to_owned(),
            };
            let uri = format!(
                "/actions/{}",
                percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC)
            );
            let request = Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))?;
            let reply = local::send(&call, request).await?;
            let shown: Value = serde_json::from_slice(&reply.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&reply.body).into_owned())
            });
            if reply.status.is_success() {
                out!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                eprintln!("{}", serde_json::to_string_pretty(&shown)?);
                local::check(reply)?;
            }
        }
    }
    Ok(())
}
