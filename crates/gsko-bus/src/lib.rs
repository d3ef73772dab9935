//! The bus: a narrow interface over a message broker with two backends that pass one contract
//! test suite — RabbitMQ through lapin (production) and an in-process bus (embedded mode).
//!
//! Semantics every backend keeps:
//! - `publish` returns only when every message of the batch is confirmed *and routed to at least
//!   one queue*; an unroutable message is `BusError::Unroutable`, never a silent loss. After a
//!   lost connection the backend reconnects with backoff and publishes again what was not
//!   confirmed (so consumers may see duplicates: every handler is idempotent).
//! - deliveries are acknowledged manually; an unacknowledged delivery comes again after a crash
//!   or a lost connection, with `redelivered = true`.
//! - `retry` sends a delivery down the retry ladder (increasing delays); past the last rung it is
//!   parked. `park` moves it to the parking queue at once. Parked messages keep the reason, the
//!   original queue and the attempt count in headers, for an admin to inspect and replay.
//!
//! Backends: [`AmqpBus`] (RabbitMQ; `deploy/rabbitmq/` holds the matching definitions) and
//! [`MemoryBus`] (in-process, with an optional SQLite journal). Both implement [`ParkingLot`], the
//! read-only view of parked messages for admin tools.
//!
//! Logging: this crate logs queue names, message ids and counts, never bodies. lapin itself logs
//! a returned (unroutable) message, body included, at WARN under the target
//! `lapin::returned_messages`; keep that target at `error` in production log filters.

use async_trait::async_trait;
use std::time::Duration;

pub mod amqp;
pub mod memory;
mod topic;
pub mod topology;
pub use amqp::{AmqpBus, AmqpOptions};
pub use memory::MemoryBus;
pub use topology::{QueueSpec, Topology};

/// The two topic exchanges of GSKO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// `gsko.events`: what happened. Portal vendors bind their own queues here.
    Events,
    /// `gsko.commands`: what a connector is asked to do.
    Commands,
}

impl Exchange {
    pub fn name(self) -> &'static str {
        match self {
            Exchange::Events => "gsko.events",
            Exchange::Commands => "gsko.commands",
        }
    }
}

/// Header names GSKO sets on messages (besides the AMQP `message_id` and `content_type`).
pub mod headers {
    pub const TENANT: &str = "x-gsko-tenant";
    pub const ATTEMPT: &str = "x-gsko-attempt";
    pub const PARK_REASON: &str = "x-gsko-park-reason";
    pub const ORIGINAL_QUEUE: &str = "x-gsko-original-queue";
    pub const PARKED_AT: &str = "x-gsko-parked-at";
    /// The routing key a message was first published with. The retry ladder and the parking
    /// queue move messages through the default exchange, which replaces the routing key, so the
    /// original is kept here and restored into `Delivery::routing_key`.
    pub const ROUTING_KEY: &str = "x-gsko-routing-key";
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub exchange: Exchange,
    pub routing_key: String,
    /// AMQP `message_id`: the CloudEvent id.
    pub message_id: String,
    /// The tenant's TERYT code, also carried as a header so brokers can filter without parsing.
    pub tenant: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Outgoing {
    /// An event (or command) in CloudEvents structured JSON mode, routed by type and tenant;
    /// commands go to the commands exchange.
    pub fn event(e: &gsko_model::Event) -> Self {
        Outgoing {
            exchange: if e.message_type().is_command() {
                Exchange::Commands
            } else {
                Exchange::Events
            },
            routing_key: e.routing_key(),
            message_id: e.id.to_string(),
            tenant: e.tenant.to_string(),
            content_type: gsko_model::CONTENT_TYPE.to_owned(),
            body: e.to_json(),
        }
    }
}

/// A message taken from a queue and not yet settled.
#[derive(Debug)]
pub struct Delivery {
    pub body: Vec<u8>,
    pub routing_key: String,
    pub message_id: Option<String>,
    pub tenant: Option<String>,
    /// True when the broker has delivered this message before (crash or lost connection).
    pub redelivered: bool,
    /// How many times this message went down the retry ladder (0 on first delivery).
    pub attempt: u32,
    /// Backend-specific handle (AMQP delivery tag, or the in-process sequence number).
    pub tag: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker connection failed: {0}")]
    Connection(String),
    #[error("message {message_id} to {exchange} with routing key {routing_key} was not routed to any queue")]
    Unroutable {
        exchange: String,
        routing_key: String,
        message_id: String,
    },
    #[error("broker refused message {message_id} (nack)")]
    Nacked { message_id: String },
    #[error("queue {0} is not declared in the topology")]
    UnknownQueue(String),
    #[error("bus closed")]
    Closed,
    #[error("broker protocol error: {0}")]
    Protocol(String),
    /// The embedded bus could not write or read its SQLite journal; nothing was acknowledged.
    #[error("bus journal error: {0}")]
    Journal(String),
}

impl BusError {
    /// Whether trying again later may succeed (a broken connection) or not (a routing mistake).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BusError::Connection(_) | BusError::Nacked { .. } | BusError::Closed
        )
    }
}

#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes a batch; returns once every message is confirmed and routed (see crate docs).
    async fn publish(&self, batch: &[Outgoing]) -> Result<(), BusError>;

    /// Starts consuming a queue of the topology with the given prefetch.
    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError>;
}

#[async_trait]
pub trait Subscription: Send {
    /// Waits for the first delivery (up to `idle_wait`; an empty Vec when none came), then
    /// gathers what is already there up to `max` deliveries, waiting at most `linger` for more.
    async fn next_batch(
        &mut self,
        max: usize,
        idle_wait: Duration,
        linger: Duration,
    ) -> Result<Vec<Delivery>, BusError>;

    /// Acknowledges deliveries whose effects are durable (one multiple-ack where possible).
    async fn ack(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError>;

    /// Transient failure: the message comes back after the next rung's delay; parked past the last.
    async fn retry(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError>;

    /// Permanent failure: the message goes to the parking queue with the reason.
    async fn park(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError>;
}

/// A message waiting in the parking queue, as an admin tool lists it (no body: it may carry
/// personal data, and listing must be safe to show on a console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedMessage {
    pub reason: String,
    pub original_queue: String,
    pub routing_key: String,
    pub message_id: Option<String>,
    pub tenant: Option<String>,
    pub attempt: u32,
    /// RFC 3339 time of parking.
    pub parked_at: String,
}

/// Read-only view of the parking queue, for admin tools. Listing does not remove anything.
#[async_trait]
pub trait ParkingLot: Send + Sync {
    /// Up to `limit` parked messages, oldest first.
    async fn parked(&self, limit: usize) -> Result<Vec<ParkedMessage>, BusError>;
}

/// The park reason of a message that failed on every rung: the last reason, and why it stopped.
pub(crate) fn exhausted_reason(reason: &str, attempts: u32) -> String {
    format!("{reason} (retry ladder exhausted after {attempts} attempts)")
}

/// Delays of the retry ladder (the default; configurable per deployment).
pub fn default_retry_ladder() -> Vec<Duration> {
    vec![
        Duration::from_secs(1),
        Duration::from_secs(10),
        Duration::from_secs(60),
        Duration::from_secs(600),
    ]
}
