//! `GET /events`, `GET /events/{id}` and `POST /events/{id}/replay`: what
//! the proxy received from Digistore24 and where each event stands.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::Effect;
use crate::app::AppState;
use crate::ipn::payload::{fields_object, rfc3339_ms, summary};
use crate::policy::Caller;
use crate::server::error::{ApiError, ErrorKind};
use crate::store::{EVENT_STATES, IpnEvent, IpnFilter, Store, StoreError};

/// Query of `GET /events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this connection.
    pub connection: Option<String>,
    /// Only this event type (`on_payment`, …).
    #[serde(rename = "type")]
    pub event: Option<String>,
    /// `stored`, `pending`, `delivered` or `dead`.
    pub state: Option<String>,
    /// Only this purchase (`order_id`).
    pub purchase: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

impl EventsQuery {
    /// The store filter.
    ///
    /// # Errors
    /// `bad_request` for an unknown state.
    pub fn filter(self) -> Result<IpnFilter, ApiError> {
        if let Some(state) = &self.state
            && !EVENT_STATES.contains(&state.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "`{state}` is not an event state; use one of {}",
                EVENT_STATES.join(", ")
            )));
        }
        Ok(IpnFilter {
            connection: self.connection,
            event: self.event,
            state: self.state,
            order_id: self.purchase,
            limit: self.limit,
        })
    }
}

/// One event as JSON; `fields` only when loaded.
pub fn event_json(event: &IpnEvent) -> Value {
    let deliveries: Vec<Value> = event
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "target": crate::ipn::relay::shown_target(&d.target),
                "state": d.state.as_str(),
                "attempts": d.attempts,
                "next_attempt_at": (d.state == crate::store::DeliveryState::Pending).then(|| rfc3339_ms(d.next_attempt_at_ms)),
                "last_error": d.last_error,
                "delivered_at": d.delivered_at_ms.map(rfc3339_ms),
            })
        })
        .collect();
    let mut out = summary(event);
    out.insert("redeliveries".into(), event.redeliveries.into());
    out.insert("state".into(), event.state().into());
    out.insert("deliveries".into(), Value::Array(deliveries));
    if let Some(fields) = &event.fields {
        out.insert("fields".into(), Value::Object(fields_object(fields)));
    }
    Value::Object(out)
}

fn store_error(e: &StoreError) -> ApiError {
    ApiError::new(
        ErrorKind::Internal,
        format!("the event store cannot be read ({e}); check DS24_PROXY_DATA_DIR"),
    )
}

async fn blocking<T: Send + 'static>(
    store: std::sync::Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| store_error(&e))
}

/// What an event is, for token policies: reading one shows buyers' data
/// like `listPurchases`; a replay makes the app act again, a write.
const READ_AS: &str = "listPurchases";
const REPLAY_AS: (&str, Effect) = ("ipnSetup", Effect::Write);

fn may_read(caller: &Caller, connection: &str) -> Result<(), String> {
    caller.check(connection, READ_AS, Effect::Read)
}

fn refused(why: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ForbiddenByPolicy,
        format!("{why} (events count as {READ_AS}; a replay as a write)"),
    )
}

/// `GET /events`: only the connections the caller's policy may read.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = query.filter()?;
    if let Some(connection) = &filter.connection {
        may_read(&caller, connection).map_err(|why| refused(&why))?;
    }
    let store = state.ledger().await?;
    let events = blocking(store, move |s| s.ipn_events(&filter)).await?;
    Ok(Json(json!({
        "events": events
            .iter()
            .filter(|e| may_read(&caller, &e.connection).is_ok())
            .map(event_json)
            .collect::<Vec<_>>(),
    })))
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("there is no event {id}; list them with GET /events"),
    )
}

/// `GET /events/{id}`: with its fields.
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let store = state.ledger().await?;
    let event = blocking(store, move |s| s.ipn_event(id))
        .await?
        .ok_or_else(|| not_found(id))?;
    may_read(&caller, &event.connection).map_err(|why| refused(&why))?;
    Ok(Json(event_json(&event)))
}

/// `POST /events/{id}/replay`: deliver it again to every target (the ones
/// configured now included).
pub async fn replay(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let store = state.ledger().await?;
    let event = blocking(store.clone(), move |s| s.ipn_event(id))
        .await?
        .ok_or_else(|| not_found(id))?;
    may_read(&caller, &event.connection)
        .and_then(|()| caller.check(&event.connection, REPLAY_AS.0, REPLAY_AS.1))
        .map_err(|why| refused(&why))?;
    let targets: Vec<String> = state
        .config()
        .connections
        .get(&event.connection)
        .map(|c| c.ipn.forward_to.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let now = crate::ipn::now_ms();
    let n = blocking(store, move |s| s.ipn_replay(id, &targets, now))
        .await?
        .ok_or_else(|| not_found(id))?;
    if n == 0 {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            format!(
                "event {id} has nowhere to go: set connections.{}.ipn.forward_to (or DS24_IPN_FORWARD_TO)",
                event.connection
            ),
        )
        .with_status(http::StatusCode::CONFLICT));
    }
    state.ipn_wake();
    Ok(Json(json!({"id": id, "replayed_deliveries": n})))
}
