//! `ds24-proxy events list|show|replay`: the IPN events in the store. Reads
//! and writes the store directly, so it works beside a running proxy (whose
//! relay notices a replay within a second) and without one.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::server::routes::events::{EventsQuery, event_json};
use crate::store::Store;

/// `ds24-proxy events …`
#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Newest first: id, time, connection, type, purchase, state.
    List {
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Only this event type (`on_payment`, `on_refund`, …).
        #[arg(long = "type", value_name = "TYPE")]
        event: Option<String>,
        /// `stored`, `pending`, `delivered` or `dead`.
        #[arg(long)]
        state: Option<String>,
        /// Only this purchase (`order_id`).
        #[arg(long, value_name = "ORDER_ID")]
        purchase: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Configuration file (for the data directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// One event with all its fields and deliveries, as JSON.
    Show {
        /// The event id.
        id: i64,
        /// Configuration file (for the data directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Deliver events to the app again (dead-lettered or not).
    Replay {
        /// Event ids.
        #[arg(required = true)]
        ids: Vec<i64>,
        /// Configuration file (for the data directory and the targets).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs the subcommand.
///
/// # Errors
/// When the store cannot be read, or an event does not exist.
pub async fn run(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List {
            connection,
            event,
            state,
            purchase,
            limit,
            json,
            config,
        } => {
            let (_, store) = super::open_store(config)?;
            let filter = EventsQuery {
                connection,
                event,
                state,
                purchase,
                limit: Some(limit),
            }
            .filter()
            .map_err(|e| anyhow::anyhow!(e.message))?;
            let events = store.ipn_events(&filter)?;
            if json {
                let list: Vec<Value> = events.iter().map(event_json).collect();
                out!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "events": list }))?
                );
            } else {
                out!(
                    "{:>6}  {:<24}  {:<10} {:<28} {:<14} STATE",
                    "ID",
                    "RECEIVED",
                    "CONNECTION",
                    "EVENT",
                    "ORDER"
                );
                for e in &events {
                    let shown = event_json(e);
                    out!(
                        "{:>6}  {:<24}  {:<10} {:<28} {:<14} {}",
                        e.id,
                        shown["received_at"].as_str().unwrap_or_default(),
                        e.connection,
                        e.event,
                        e.order_id.as_deref().unwrap_or("-"),
                        e.state()
                    );
                }
            }
        }
        EventsCommand::Show { id, config } => {
            let (_, store) = super::open_store(config)?;
            let event = store
                .ipn_event(id)?
                .with_context(|| format!("there is no event {id}; see `ds24-proxy events list`"))?;
            out!("{}", serde_json::to_string_pretty(&event_json(&event))?);
        }
        EventsCommand::Replay { ids, config } => {
            let (config, store) = super::open_store(config)?;
            let now = crate::ipn::now_ms();
            for id in ids {
                let Some(event) = store.ipn_event(id)? else {
                    bail!("there is no event {id}; see `ds24-proxy events list`");
                };
                let targets: Vec<String> = config
                    .connections
                    .get(&event.connection)
                    .map(|c| c.ipn.forward_to.iter().map(ToString::to_string).collect())
                    .unwrap_or_default();
                match store.ipn_replay(id, &targets, now)? {
                    Some(0) | None => bail!(
                        "event {id} has nowhere to go: set connections.{}.ipn.forward_to (or DS24_IPN_FORWARD_TO)",
                        event.connection
                    ),
                    Some(n) => out!(
                        "event {id}: {n} deliveries pending again (a running proxy sends them within a second)"
                    ),
                }
            }
        }
    }
    Ok(())
}
