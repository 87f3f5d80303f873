//! IPN events as the store keeps them: the verified event, and one delivery
//! per target URL that the relay works through. Backend-neutral types;
//! `sqlite_ipn.rs` stores them.

use std::fmt;

/// A verified event to store.
#[derive(Clone)]
pub struct NewIpnEvent {
    /// The connection whose IPN URL received it.
    pub connection: String,
    /// The `event` field (`on_payment`, `on_refund`, `connection_test`, …).
    pub event: String,
    /// `order_id` (the purchase id), when the event has one.
    pub order_id: Option<String>,
    /// `transaction_id`, when the event has one.
    pub transaction_id: Option<String>,
    /// Hex digest of the fields (signature included): equal for a
    /// redelivery of the same event.
    pub fingerprint: String,
    /// Every received field, decoded once, in the order received. Sealed in
    /// the store.
    pub fields: Vec<(String, String)>,
    /// When it arrived, unix milliseconds.
    pub received_at_ms: i64,
}

impl fmt::Debug for NewIpnEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The fields carry buyers' personal data: only their number shows.
        f.debug_struct("NewIpnEvent")
            .field("connection", &self.connection)
            .field("event", &self.event)
            .field("order_id", &self.order_id)
            .field("transaction_id", &self.transaction_id)
            .field("fingerprint", &self.fingerprint)
            .field("fields", &self.fields.len())
            .field("received_at_ms", &self.received_at_ms)
            .finish()
    }
}

/// What storing an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpnStored {
    /// A new event, with its id; its deliveries were created.
    New(i64),
    /// The same event was stored before (id); counted as a redelivery.
    Duplicate(i64),
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet accepted by the target; retried.
    Pending,
    /// The target answered 2xx.
    Delivered,
    /// Given up on (attempts or age); waits for a replay.
    Dead,
}

impl DeliveryState {
    /// The value in the `state` column and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses a `state` column value.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// The event states `/events?state=` filters by: `stored` (no target),
/// `pending`, `delivered` (to every target) and `dead` (some delivery
/// dead-lettered).
pub const EVENT_STATES: &[&str] = &["stored", "pending", "delivered", "dead"];

/// One delivery of an event to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpnDelivery {
    /// The target URL.
    pub target: String,
    /// Its state.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending), unix ms.
    pub next_attempt_at_ms: i64,
    /// Why the last attempt failed (no response body, no personal data).
    pub last_error: Option<String>,
    /// When the target accepted it, unix ms.
    pub delivered_at_ms: Option<i64>,
}

/// A stored event.
#[derive(Clone, PartialEq, Eq)]
pub struct IpnEvent {
    /// Its id (also sent to the app).
    pub id: i64,
    /// Connection.
    pub connection: String,
    /// Event type.
    pub event: String,
    /// `order_id`, if any.
    pub order_id: Option<String>,
    /// `transaction_id`, if any.
    pub transaction_id: Option<String>,
    /// Received at, unix ms.
    pub received_at_ms: i64,
    /// How often Digistore24 delivered it again after the first time.
    pub redeliveries: u32,
    /// The fields, when asked for (opened from the store).
    pub fields: Option<Vec<(String, String)>>,
    /// Its deliveries, by target.
    pub deliveries: Vec<IpnDelivery>,
}

impl IpnEvent {
    /// The event's state as [`EVENT_STATES`] names it.
    pub fn state(&self) -> &'static str {
        if self.deliveries.is_empty() {
            "stored"
        } else if self
            .deliveries
            .iter()
            .any(|d| d.state == DeliveryState::Dead)
        {
            "dead"
        } else if self
            .deliveries
            .iter()
            .any(|d| d.state == DeliveryState::Pending)
        {
            "pending"
        } else {
            "delivered"
        }
    }
}

impl fmt::Debug for IpnEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpnEvent")
            .field("id", &self.id)
            .field("connection", &self.connection)
            .field("event", &self.event)
            .field("order_id", &self.order_id)
            .field("transaction_id", &self.transaction_id)
            .field("received_at_ms", &self.received_at_ms)
            .field("redeliveries", &self.redeliveries)
            .field("fields", &self.fields.as_ref().map(Vec::len))
            .field("deliveries", &self.deliveries)
            .finish()
    }
}

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct IpnFilter {
    /// Only this connection.
    pub connection: Option<String>,
    /// Only this event type.
    pub event: Option<String>,
    /// Only events in this state (one of [`EVENT_STATES`]).
    pub state: Option<String>,
    /// Only this purchase (`order_id`).
    pub order_id: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// A delivery that is due now, with its event (fields opened).
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The event.
    pub event: IpnEvent,
    /// The target URL.
    pub target: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Pending since (arrival or last replay), unix ms: its age counts from here.
    pub pending_since_ms: i64,
    /// The delivery's generation; pass it back to `ipn_attempted`.
    pub generation: i64,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// The target answered 2xx at this time (unix ms).
    Delivered {
        /// When.
        at_ms: i64,
    },
    /// It failed; try again at `next_at_ms`.
    Retry {
        /// Why (status or connection error).
        error: String,
        /// When to try again, unix ms.
        next_at_ms: i64,
    },
    /// It failed for the last time: dead-lettered.
    Dead {
        /// Why.
        error: String,
    },
}
