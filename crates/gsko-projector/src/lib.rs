//! The projector: takes events from a bus subscription in batches, applies each batch to the
//! store in one transaction, and acknowledges the deliveries only after the commit. A crash at
//! any point therefore loses nothing (unacknowledged deliveries come again) and a redelivery
//! harms nothing (the store ignores versions it already has).
//!
//! Failure handling follows what can heal and what cannot:
//! - a delivery that does not decode as a GSKO event will never decode: it is parked at once
//!   with the decode error as the reason, and the rest of the batch goes on;
//! - a transient store error (database down, pool exhausted, deadlock) says nothing about the
//!   events: the projector keeps the batch unacknowledged, waits with exponential backoff and
//!   applies the same batch again. Sending a whole batch down the bus' retry ladder would only
//!   shuffle it and, past the last rung, park good events because the database was away;
//! - a permanent store error means some event of the batch cannot be stored: the projector
//!   applies the batch's events one by one and parks only those that fail.

use gsko_bus::{BusError, Delivery, Subscription};
use gsko_model::{Event, EventError};
use gsko_store::{ApplyOutcome, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, error, info, info_span, warn, Instrument};

/// Tuning of a projector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectorConfig {
    /// Most deliveries applied in one transaction. Larger batches amortise the commit (one
    /// fsync) and the per-statement round trips; 500 keeps a transaction short.
    pub batch_size: usize,
    /// How long to wait for more deliveries once the first one has arrived, so that a trickle
    /// of events still forms batches without adding noticeable latency.
    pub linger: Duration,
    /// How long one `next_batch` waits for a first delivery. It also bounds how long a shutdown
    /// request waits, because a pending `next_batch` is never cancelled (a backend may hold
    /// deliveries it has taken but not yet returned).
    pub idle_wait: Duration,
    /// First wait after a transient store or bus error; doubled after each further one.
    pub backoff_initial: Duration,
    /// Longest wait between two attempts.
    pub backoff_max: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            batch_size: 500,
            linger: Duration::from_millis(50),
            idle_wait: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The subscription failed in a way retrying cannot fix (e.g. the queue is not declared).
    #[error("subscription failed: {0}")]
    Bus(#[from] BusError),
}

#[derive(Debug, Default)]
struct Counters {
    applied: AtomicU64,
    ignored: AtomicU64,
    parked: AtomicU64,
    batches: AtomicU64,
    store_retries: AtomicU64,
}

/// Live counters of a projector, cheap to clone and read from another task (the metrics
/// exporter). Monotonic: they only ever grow.
#[derive(Debug, Clone, Default)]
pub struct ProjectorStats(Arc<Counters>);

impl ProjectorStats {
    /// Events that inserted or replaced a record.
    pub fn applied(&self) -> u64 {
        self.0.applied.load(Ordering::Relaxed)
    }
    /// Events that changed nothing (same or older version already stored).
    pub fn ignored(&self) -> u64 {
        self.0.ignored.load(Ordering::Relaxed)
    }
    /// Deliveries moved to the parking queue (undecodable, or refused by the store).
    pub fn parked(&self) -> u64 {
        self.0.parked.load(Ordering::Relaxed)
    }
    /// Batches committed (including the single-event ones of a fallback).
    pub fn batches(&self) -> u64 {
        self.0.batches.load(Ordering::Relaxed)
    }
    /// Transient store errors after which the same events were applied again.
    pub fn store_retries(&self) -> u64 {
        self.0.store_retries.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn record(&self, outcome: ApplyOutcome) {
        Self::add(&self.0.applied, outcome.applied);
        Self::add(&self.0.ignored, outcome.ignored);
        Self::add(&self.0.batches, 1);
    }
}

/// Applies events from one subscription to the store.
pub struct Projector {
    store: Arc<dyn Store>,
    config: ProjectorConfig,
    stats: ProjectorStats,
}

/// How an apply with retries ended.
enum Applied {
    Done(ApplyOutcome),
    Permanent(StoreError),
    /// Shutdown was requested while waiting out a transient error; nothing was acknowledged.
    Shutdown,
}

/// Exponential backoff between `initial` and `max`.
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(config: &ProjectorConfig) -> Self {
        Backoff {
            initial: config.backoff_initial,
            max: config.backoff_max,
            next: config.backoff_initial,
        }
    }
    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Sleeps for `d` unless a shutdown is requested first; returns whether it was.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        changed = shutdown.changed() => match changed {
            Ok(()) => *shutdown.borrow(),
            // The sender is gone: nobody can ask for a shutdown any more; just wait.
            Err(_) => {
                tokio::time::sleep(d).await;
                false
            }
        },
    }
}

/// What went wrong in a decode, without the message text: serde's messages may quote values
/// from the payload (personal data), so logs get the category only. The park reason, which
/// travels with the message itself, gets the full text.
fn decode_error_kind(e: &EventError) -> &'static str {
    match e {
        EventError::Json(_) => "not valid JSON",
        EventError::SpecVersion(_) => "unsupported specversion",
        EventError::UnknownType(_) => "unknown message type",
        EventError::Data { .. } => "data does not match its schema",
        EventError::Inconsistent { .. } => "attributes contradict the type",
        EventError::EmptySource => "empty source attribute",
    }
}

impl Projector {
    pub fn new(store: Arc<dyn Store>, config: ProjectorConfig) -> Self {
        Projector {
            store,
            config,
            stats: ProjectorStats::default(),
        }
    }

    /// A handle on this projector's counters; stays valid after `run` consumes the projector.
    pub fn stats(&self) -> ProjectorStats {
        self.stats.clone()
    }

    /// Runs until `shutdown` becomes true (then returns `Ok`) or the subscription fails
    /// permanently. Deliveries taken but not yet durable when it stops stay unacknowledged, so
    /// the broker delivers them again.
    pub async fn run(
        self,
        mut sub: Box<dyn Subscription>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        info!(batch_size = self.config.batch_size, "Projector started.");
        let mut bus_backoff = Backoff::new(&self.config);
        loop {
            if *shutdown.borrow() {
                info!("Projector stopped.");
                return Ok(());
            }
            let deliveries = match sub
                .next_batch(
                    self.config.batch_size,
                    self.config.idle_wait,
                    self.config.linger,
                )
                .await
            {
                Ok(d) => {
                    bus_backoff.reset();
                    d
                }
                Err(e) if e.is_transient() => {
                    warn!(error = %e, "Subscription unavailable; waiting before asking again.");
                    sleep_or_shutdown(bus_backoff.next_delay(), &mut shutdown).await;
                    continue;
                }
                Err(e) => {
                    error!(error = %e, "Subscription failed permanently; projector stops.");
                    return Err(e.into());
                }
            };
            if deliveries.is_empty() {
                continue;
            }
            let span = info_span!("projector_batch", size = deliveries.len());
            self.handle_batch(sub.as_mut(), deliveries, &mut shutdown)
                .instrument(span)
                .await?;
        }
    }

    async fn handle_batch(
        &self,
        sub: &mut dyn Subscription,
        deliveries: Vec<Delivery>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let mut valid = Vec::with_capacity(deliveries.len());
        let mut events = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match Event::from_json(&d.body) {
                Ok(e) => {
                    events.push(e);
                    valid.push(d);
                }
                Err(err) => {
                    let span = info_span!(
                        "undecodable_delivery",
                        message_id = d.message_id.as_deref().unwrap_or(""),
                        tenant = d.tenant.as_deref().unwrap_or(""),
                    );
                    span.in_scope(|| {
                        warn!(kind = decode_error_kind(&err), routing_key = %d.routing_key, "Parking a delivery that is not a valid event.")
                    });
                    self.park(sub, d, &format!("undecodable event: {err}"))
                        .instrument(span)
                        .await?;
                }
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        match self.apply_with_retry(&events, shutdown).await {
            Applied::Done(outcome) => {
                self.stats.record(outcome);
                debug!(
                    applied = outcome.applied,
                    ignored = outcome.ignored,
                    "Batch applied."
                );
                self.ack(sub, valid).await
            }
            Applied::Shutdown => Ok(()),
            Applied::Permanent(err) => {
                warn!(error = %err, events = events.len(), "Store refused the batch; applying its events one by one.");
                self.one_by_one(sub, valid, events, shutdown).await
            }
        }
    }

    /// The fallback after a permanent error: every event in its own transaction, parking only
    /// those the store refuses.
    async fn one_by_one(
        &self,
        sub: &mut dyn Subscription,
        deliveries: Vec<Delivery>,
        events: Vec<Event>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let mut done = Vec::with_capacity(deliveries.len());
        for (d, e) in deliveries.into_iter().zip(events) {
            let span = info_span!("project_event", tenant = %e.tenant, message_id = %e.id, r#type = e.message_type().type_name());
            match self
                .apply_with_retry(std::slice::from_ref(&e), shutdown)
                .instrument(span.clone())
                .await
            {
                Applied::Done(outcome) => {
                    self.stats.record(outcome);
                    done.push(d);
                }
                Applied::Permanent(err) => {
                    span.in_scope(|| error!(error = %err, "Store refused the event; parking it."));
                    self.park(sub, d, &format!("store refused event: {err}"))
                        .instrument(span)
                        .await?;
                }
                Applied::Shutdown => break,
            }
        }
        self.ack(sub, done).await
    }

    async fn apply_with_retry(
        &self,
        events: &[Event],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Applied {
        let mut backoff = Backoff::new(&self.config);
        loop {
            match self.store.apply(events).await {
                Ok(outcome) => return Applied::Done(outcome),
                Err(e) if e.is_transient() => {
                    ProjectorStats::add(&self.stats.0.store_retries, 1);
                    let delay = backoff.next_delay();
                    warn!(error = %e, delay_ms = delay.as_millis() as u64, "Store unavailable; the batch stays unacknowledged and will be applied again.");
                    if sleep_or_shutdown(delay, shutdown).await {
                        info!("Shutdown requested while the store is unavailable; leaving the batch unacknowledged.");
                        return Applied::Shutdown;
                    }
                }
                Err(e) => return Applied::Permanent(e),
            }
        }
    }

    async fn ack(
        &self,
        sub: &mut dyn Subscription,
        deliveries: Vec<Delivery>,
    ) -> Result<(), ProjectorError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let n = deliveries.len();
        match sub.ack(deliveries).await {
            Ok(()) => Ok(()),
            // The effects are committed; the broker will deliver these again and the store
            // will ignore them. Nothing is lost, so carry on.
            Err(e) if e.is_transient() => {
                warn!(error = %e, deliveries = n, "Acknowledgement failed; the deliveries will come again (harmless).");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn park(
        &self,
        sub: &mut dyn Subscription,
        delivery: Delivery,
        reason: &str,
    ) -> Result<(), ProjectorError> {
        match sub.park(delivery, reason).await {
            Ok(()) => {
                ProjectorStats::add(&self.stats.0.parked, 1);
                Ok(())
            }
            // Unacknowledged, the delivery comes again and is parked then.
            Err(e) if e.is_transient() => {
                warn!(error = %e, "Parking failed; the delivery will come again.");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
