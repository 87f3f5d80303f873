//! `ds24-proxy audit list`: the recorded write and money calls.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use crate::store::{AuditFilter, Store};

/// `ds24-proxy audit …`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Newest first: time, connection, caller, function, effect, request id,
    /// outcome and a digest of the parameters.
    List {
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Only this function (name or action key).
        #[arg(long)]
        function: Option<String>,
        /// Only entries from this RFC 3339 time on.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Configuration file (for the data directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs the subcommand.
///
/// # Errors
/// When the store cannot be read.
pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        connection,
        function,
        since,
        limit,
        json,
        config,
    } = command;
    let (_, store) = super::open_store(config)?;
    let since = since
        .map(|s| {
            time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
        })
        .transpose()
        .context("--since must be an RFC 3339 time like 2026-11-28T00:00:00Z")?;
    let function = function.map(|f| crate::actions::find(&f).map_or(f, |a| a.function.to_owned()));
    let entries = store.audit(&AuditFilter {
        connection,
        function,
        since,
        limit: Some(limit),
    })?;
    let when = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    };
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| json!({ "id": e.id, "at": when(e.at), "connection": e.connection, "caller": e.token, "function": e.function, "effect": e.effect, "request_id": e.request_id, "outcome": e.outcome, "params_digest": e.params_digest }))
            .collect();
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({ "entries": list }))?
        );
    } else {
        out!(
            "{:<20}  {:<10} {:<12} {:<24} {:<6} {:<28} {:<36}  PARAMS DIGEST",
            "AT",
            "CONNECTION",
            "CALLER",
            "FUNCTION",
            "EFFECT",
            "OUTCOME",
            "REQUEST ID"
        );
        for e in &entries {
            out!(
                "{:<20}  {:<10} {:<12} {:<24} {:<6} {:<28} {:<36}  {}",
                when(e.at),
                e.connection,
                e.token,
                e.function,
                e.effect,
                e.outcome,
                e.request_id,
                &e.params_digest[..e.params_digest.len().min(16)]
            );
        }
    }
    Ok(())
}
