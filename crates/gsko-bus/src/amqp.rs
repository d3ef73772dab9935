//! The production bus: RabbitMQ through lapin.
//!
//! Reliability follows the RabbitMQ docs (see `docs/shared/specs/integration-practice.md` §B):
//! durable quorum queues, persistent messages, publisher confirms *and* `mandatory` (confirms
//! alone ack unroutable messages), manual acks with a per-consumer prefetch, a retry ladder of
//! TTL delay queues that dead-letter back to the work queue, and a parking queue.
//!
//! Connection loss is handled here rather than by the caller: `publish` reconnects with a
//! bounded, jittered exponential backoff and publishes again every message whose confirm it did
//! not see, and a subscription opens a new channel and keeps consuming. Both give up only when
//! the broker stays unreachable past `AmqpOptions::reconnect_deadline`. Republishing means a
//! consumer may see a message twice, which every GSKO handler tolerates (idempotent effects).

use crate::exhausted_reason;
use crate::topology::PARKING_QUEUE;
use crate::{
    headers, Bus, BusError, Delivery, Exchange, Outgoing, ParkedMessage, ParkingLot, Subscription,
    Topology,
};
use async_trait::async_trait;
use futures::future::join_all;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// AMQP `delivery_mode` of messages written to disk.
const PERSISTENT: u8 = 2;
/// Delivery tags are per channel; the subscription puts its channel generation above this bit
/// so an ack of a delivery from a channel that no longer exists is recognised (and skipped: the
/// broker has already requeued it) instead of acking an unrelated message on the new channel.
const GENERATION_SHIFT: u32 = 40;
const TAG_MASK: u64 = (1 << GENERATION_SHIFT) - 1;
/// Bound on opening a channel (and starting a consumer on it): a connection that cannot do this
/// in time is treated as dead.
const CHANNEL_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Tunables of the RabbitMQ backend. `Default` is what production uses.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// How long `publish` and a subscription keep trying to reach a lost broker before they
    /// return `BusError::Connection`. Long enough to ride out a broker restart.
    pub reconnect_deadline: Duration,
    /// Bound on the first connection (all attempts together), so a daemon or a test started
    /// without a broker fails clearly instead of hanging.
    pub connect_timeout: Duration,
    /// How long to wait for the confirms of a batch before declaring the connection dead and
    /// republishing on a new one (a half-open TCP connection never answers).
    pub confirm_timeout: Duration,
    /// Name of the parking queue. Only tests change it, to stay out of each other's way.
    pub parking_queue: String,
    /// Client-provided connection name, shown by `rabbitmqctl list_connections user_provided_name`.
    pub connection_name: String,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            reconnect_deadline: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(30),
            parking_queue: PARKING_QUEUE.to_owned(),
            connection_name: "gsko".to_owned(),
        }
    }
}

/// The delay queue of rung `rung` (1-based) of `queue`'s retry ladder.
pub fn retry_queue_name(queue: &str, rung: usize) -> String {
    format!("gsko.retry.{queue}.{rung}")
}

/// The RabbitMQ bus. One connection, shared by the publisher channel and every subscription's
/// channel; cheap to share behind an `Arc<dyn Bus>`.
pub struct AmqpBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBus")
            .field("connection_name", &self.inner.opts.connection_name)
            .finish()
    }
}

#[derive(Clone)]
struct Live {
    conn: Arc<Connection>,
    epoch: u64,
}

struct PubChannel {
    channel: Channel,
    epoch: u64,
}

struct Inner {
    url: String,
    topology: Topology,
    opts: AmqpOptions,
    conn: Mutex<Option<Live>>,
    /// The confirm-mode publisher channel. Its lock is held while a batch is *sent* (so delivery
    /// tags match the order frames hit the wire), not while confirms are awaited.
    publisher: Mutex<Option<PubChannel>>,
}

/// One message ready for the wire.
struct Raw<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    message_id: &'a str,
    properties: BasicProperties,
    body: &'a [u8],
}

enum Outcome {
    Confirmed,
    Returned,
    Nacked,
    Lost,
}

fn conn_err(e: impl std::fmt::Display) -> BusError {
    BusError::Connection(e.to_string())
}

fn proto_err(e: impl std::fmt::Display) -> BusError {
    BusError::Protocol(e.to_string())
}

/// Bounded exponential backoff with full jitter, so many daemons reconnecting after a broker
/// restart do not stampede it in lockstep.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    fn delay(&mut self) -> Duration {
        let cap = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let ms = u64::try_from(cap.as_millis()).unwrap_or(5_000).max(1);
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
    }
}

impl AmqpBus {
    /// Connects with the default options and declares the topology (exchanges, quorum queues
    /// with their bindings, retry delay queues, the parking queue).
    pub async fn connect(url: &str, topology: Topology) -> Result<AmqpBus, BusError> {
        Self::connect_with(url, topology, AmqpOptions::default()).await
    }

    /// Like [`AmqpBus::connect`], with explicit options.
    pub async fn connect_with(
        url: &str,
        topology: Topology,
        opts: AmqpOptions,
    ) -> Result<AmqpBus, BusError> {
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            topology,
            opts,
            conn: Mutex::new(None),
            publisher: Mutex::new(None),
        });
        let deadline = Instant::now() + inner.opts.connect_timeout;
        inner.connection(None, deadline).await?;
        Ok(AmqpBus { inner })
    }
}

impl Inner {
    fn deadline(&self) -> Instant {
        Instant::now() + self.opts.reconnect_deadline
    }

    fn knows_queue(&self, queue: &str) -> bool {
        queue == self.opts.parking_queue || self.topology.queues.iter().any(|q| q.name == queue)
    }

    /// The live connection; a new one (with the topology declared again) when there is none or
    /// it is closed. `replace` names a connection that still looks open but stopped answering
    /// (confirms or a channel open timed out): it is closed and replaced too. Retries until
    /// `deadline`.
    async fn connection(&self, replace: Option<u64>, deadline: Instant) -> Result<Live, BusError> {
        let mut guard = self.conn.lock().await;
        let mut epoch = 0;
        if let Some(live) = guard.as_ref() {
            if live.conn.status().connected() && replace != Some(live.epoch) {
                return Ok(live.clone());
            }
            epoch = live.epoch;
            let old = live.conn.clone();
            if old.status().connected() {
                // Replaced while still "connected" (e.g. confirms never came): close it so the
                // broker requeues what it holds for us.
                tokio::spawn(async move {
                    let _closed =
                        tokio::time::timeout(Duration::from_secs(5), old.close(320, "replaced"))
                            .await;
                });
            }
        }
        *guard = None;
        let mut backoff = Backoff::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(
                left.min(Duration::from_secs(10))
                    .max(Duration::from_millis(100)),
                self.open(),
            )
            .await;
            let err = match attempt {
                Ok(Ok(conn)) => {
                    let live = Live {
                        conn: Arc::new(conn),
                        epoch: epoch + 1,
                    };
                    tracing::info!(epoch = live.epoch, "connected to rabbitmq");
                    *guard = Some(live.clone());
                    return Ok(live);
                }
                Ok(Err(e)) => e,
                Err(_) => BusError::Connection("timed out connecting to rabbitmq".to_owned()),
            };
            // A topology mismatch will not heal by retrying.
            if matches!(err, BusError::Protocol(_)) {
                return Err(err);
            }
            let wait = backoff.delay();
            if Instant::now() + wait >= deadline {
                tracing::error!(error = %err, "rabbitmq unreachable, giving up");
                return Err(err);
            }
            tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, "rabbitmq unreachable, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn open(&self) -> Result<Connection, BusError> {
        let props = ConnectionProperties::default()
            .with_connection_name(self.opts.connection_name.clone().into());
        let conn = Connection::connect(&self.url, props)
            .await
            .map_err(conn_err)?;
        let ch = conn.create_channel().await.map_err(conn_err)?;
        self.declare(&ch).await?;
        // Best effort: the channel is only for declarations.
        let _closed = ch.close(200, "declared").await;
        Ok(conn)
    }

    /// Declares everything GSKO needs. Idempotent; run on every new connection so a broker that
    /// lost its definitions gets them back.
    async fn declare(&self, ch: &Channel) -> Result<(), BusError> {
        let durable_ex = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for ex in [Exchange::Events, Exchange::Commands] {
            ch.exchange_declare(
                ex.name(),
                ExchangeKind::Topic,
                durable_ex,
                FieldTable::default(),
            )
            .await
            .map_err(proto_err)?;
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for q in &self.topology.queues {
            ch.queue_declare(&q.name, durable, quorum_args())
                .await
                .map_err(proto_err)?;
            for pattern in &q.bindings {
                ch.queue_bind(
                    &q.name,
                    q.exchange.name(),
                    pattern,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(proto_err)?;
            }
            for (i, delay) in self.topology.retry_ladder.iter().enumerate() {
                let mut args = quorum_args();
                let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
                args.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString("".into()),
                );
                args.insert(
                    "x-dead-letter-routing-key".into(),
                    AMQPValue::LongString(q.name.as_str().into()),
                );
                // The default (at-most-once) dead-lettering could drop a retried message if a
                // node fails mid-move; at-least-once needs reject-publish overflow.
                args.insert("x-dead-letter-strategy".into(), long_str("at-least-once"));
                args.insert("x-overflow".into(), long_str("reject-publish"));
                ch.queue_declare(&retry_queue_name(&q.name, i + 1), durable, args)
                    .await
                    .map_err(proto_err)?;
            }
        }
        ch.queue_declare(&self.opts.parking_queue, durable, quorum_args())
            .await
            .map_err(proto_err)?;
        Ok(())
    }

    /// The publisher channel (confirm mode) and the connection epoch it lives on.
    async fn publisher(
        &self,
        replace: Option<u64>,
        deadline: Instant,
    ) -> Result<(Channel, u64), BusError> {
        let mut guard = self.publisher.lock().await;
        if let Some(p) = guard.as_ref() {
            if p.channel.status().connected() && replace.is_none() {
                return Ok((p.channel.clone(), p.epoch));
            }
        }
        let previous = guard.take().map(|p| p.epoch);
        let mut replace = replace;
        let mut backoff = Backoff::new();
        loop {
            let live = self.connection(replace, deadline).await?;
            let opened = tokio::time::timeout(CHANNEL_OPEN_TIMEOUT, async {
                let ch = live.conn.create_channel().await.map_err(conn_err)?;
                // The old channel died on a connection that lives on: the broker closed it for a
                // channel error, most likely a deleted exchange. Declare again before going on.
                if previous == Some(live.epoch) {
                    self.declare(&ch).await?;
                }
                ch.confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(conn_err)?;
                Ok::<_, BusError>(ch)
            })
            .await
            .unwrap_or_else(|_| {
                replace = Some(live.epoch);
                Err(BusError::Connection(
                    "timed out opening the publisher channel".to_owned(),
                ))
            });
            match opened {
                Ok(channel) => {
                    *guard = Some(PubChannel {
                        channel: channel.clone(),
                        epoch: live.epoch,
                    });
                    return Ok((channel, live.epoch));
                }
                Err(e) => {
                    let wait = backoff.delay();
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Publishes with confirms; republishes what was lost with the connection until `deadline`
    /// (measured from the first failure). Returns the first routing/nack error of the batch.
    async fn publish_raw(&self, msgs: &[Raw<'_>]) -> Result<(), BusError> {
        let mut pending: Vec<usize> = (0..msgs.len()).collect();
        let mut failures: Vec<(usize, BusError)> = Vec::new();
        let mut deadline: Option<Instant> = None;
        let mut backoff = Backoff::new();
        let mut replace = None;
        while !pending.is_empty() {
            let dl = deadline.unwrap_or_else(|| self.deadline());
            let (outcomes, epoch) = match self.publisher(replace.take(), dl).await {
                Ok((channel, epoch)) => (self.publish_once(&channel, msgs, &pending).await, epoch),
                Err(e) => {
                    tracing::error!(error = %e, unconfirmed = pending.len(), "publish failed, broker unreachable");
                    return Err(e);
                }
            };
            let (outcomes, timed_out) = outcomes;
            if timed_out {
                replace = Some(epoch);
            }
            let mut lost = Vec::new();
            for (&i, outcome) in pending.iter().zip(outcomes) {
                let m = &msgs[i];
                match outcome {
                    Outcome::Confirmed => {}
                    Outcome::Returned => failures.push((
                        i,
                        BusError::Unroutable {
                            exchange: m.exchange.to_owned(),
                            routing_key: m.routing_key.to_owned(),
                            message_id: m.message_id.to_owned(),
                        },
                    )),
                    Outcome::Nacked => failures.push((
                        i,
                        BusError::Nacked {
                            message_id: m.message_id.to_owned(),
                        },
                    )),
                    Outcome::Lost => lost.push(i),
                }
            }
            if lost.is_empty() {
                break;
            }
            let dl = *deadline.get_or_insert(dl);
            let wait = backoff.delay();
            if Instant::now() + wait >= dl {
                tracing::error!(
                    unconfirmed = lost.len(),
                    "publish gave up: no confirms before the reconnect deadline"
                );
                return Err(BusError::Connection(format!(
                    "{} messages unconfirmed when the reconnect deadline passed",
                    lost.len()
                )));
            }
            tracing::warn!(
                unconfirmed = lost.len(),
                "connection lost during publish, publishing unconfirmed messages again"
            );
            tokio::time::sleep(wait).await;
            pending = lost;
        }
        failures.sort_by_key(|(i, _)| *i);
        match failures.into_iter().next() {
            None => Ok(()),
            Some((_, e)) => {
                tracing::warn!(error = %e, "publish refused");
                Err(e)
            }
        }
    }

    /// One round: pipeline every publish, then await every confirm. The flag says the confirms
    /// timed out (the connection must be replaced, it will not answer).
    async fn publish_once(
        &self,
        channel: &Channel,
        msgs: &[Raw<'_>],
        which: &[usize],
    ) -> (Vec<Outcome>, bool) {
        let started = Instant::now();
        let sent = {
            let _sending = self.publisher.lock().await;
            let opts = BasicPublishOptions {
                mandatory: true,
                immediate: false,
            };
            join_all(which.iter().map(|&i| {
                let m = &msgs[i];
                channel.basic_publish(
                    m.exchange,
                    m.routing_key,
                    opts,
                    m.body,
                    m.properties.clone(),
                )
            }))
            .await
        };
        let confirms = join_all(sent.into_iter().map(|r| async move {
            match r {
                Ok(confirm) => match confirm.await {
                    Ok(Confirmation::Ack(None)) => Outcome::Confirmed,
                    Ok(Confirmation::Ack(Some(_))) => Outcome::Returned,
                    Ok(Confirmation::Nack(_)) => Outcome::Nacked,
                    // The channel is not in confirm mode: nothing is known, send again.
                    Ok(Confirmation::NotRequested) | Err(_) => Outcome::Lost,
                },
                Err(_) => Outcome::Lost,
            }
        }));
        let sent_in = started.elapsed();
        match tokio::time::timeout(self.opts.confirm_timeout, confirms).await {
            Ok(outcomes) => {
                tracing::trace!(
                    count = which.len(),
                    send_us = sent_in.as_micros() as u64,
                    total_us = started.elapsed().as_micros() as u64,
                    "batch confirmed"
                );
                (outcomes, false)
            }
            Err(_) => {
                tracing::warn!(count = which.len(), "confirms timed out");
                (which.iter().map(|_| Outcome::Lost).collect(), true)
            }
        }
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

fn header_str(h: Option<&FieldTable>, name: &str) -> Option<String> {
    match h?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_u32(h: Option<&FieldTable>, name: &str) -> u32 {
    let v = h.and_then(|h| h.inner().get(name));
    let n: i64 = match v {
        Some(AMQPValue::ShortShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongString(s)) => {
            String::from_utf8_lossy(s.as_bytes()).parse().unwrap_or(0)
        }
        _ => 0,
    };
    u32::try_from(n).unwrap_or(0)
}

fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

fn base_properties(message_id: &str, content_type: &str, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(ShortString::from(message_id))
        .with_content_type(ShortString::from(content_type))
        .with_headers(headers)
}

#[async_trait]
impl Bus for AmqpBus {
    async fn publish(&self, batch: &[Outgoing]) -> Result<(), BusError> {
        let raws: Vec<Raw<'_>> = batch
            .iter()
            .map(|m| {
                let mut h = FieldTable::default();
                h.insert(headers::TENANT.into(), long_str(&m.tenant));
                Raw {
                    exchange: m.exchange.name(),
                    routing_key: &m.routing_key,
                    message_id: &m.message_id,
                    properties: base_properties(&m.message_id, &m.content_type, h),
                    body: &m.body,
                }
            })
            .collect();
        self.inner.publish_raw(&raws).await
    }

    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        if !self.inner.knows_queue(queue) {
            return Err(BusError::UnknownQueue(queue.to_owned()));
        }
        let mut sub = AmqpSubscription {
            inner: self.inner.clone(),
            queue: queue.to_owned(),
            prefetch,
            current: None,
            generation: 0,
            unacked: BTreeSet::new(),
            content_types: std::collections::HashMap::new(),
        };
        sub.reopen().await?;
        Ok(Box::new(sub))
    }
}

#[async_trait]
impl ParkingLot for AmqpBus {
    /// Reads up to `limit` parked messages with `basic.get` on a throwaway channel and closes
    /// it unacknowledged, which puts them back. (So do not give the parking queue a
    /// delivery-limit policy: every look counts as a delivery.)
    async fn parked(&self, limit: usize) -> Result<Vec<ParkedMessage>, BusError> {
        let live = self.inner.connection(None, self.inner.deadline()).await?;
        let ch = tokio::time::timeout(CHANNEL_OPEN_TIMEOUT, live.conn.create_channel())
            .await
            .map_err(|_| BusError::Connection("timed out opening a channel".to_owned()))?
            .map_err(conn_err)?;
        let mut out = Vec::new();
        let result = async {
            while out.len() < limit {
                let got = ch
                    .basic_get(
                        &self.inner.opts.parking_queue,
                        BasicGetOptions { no_ack: false },
                    )
                    .await
                    .map_err(proto_err)?;
                let Some(msg) = got else { break };
                let d = &msg.delivery;
                let h = d.properties.headers().as_ref();
                // Messages the broker dead-lettered here (the delivery-limit policy of
                // deploy/rabbitmq) carry x-first-death-* instead of our headers.
                let reason = header_str(h, headers::PARK_REASON)
                    .or_else(|| {
                        header_str(h, "x-first-death-reason")
                            .map(|r| format!("dead-lettered by the broker: {r}"))
                    })
                    .unwrap_or_default();
                let original_queue = header_str(h, headers::ORIGINAL_QUEUE)
                    .or_else(|| header_str(h, "x-first-death-queue"))
                    .unwrap_or_default();
                out.push(ParkedMessage {
                    reason,
                    original_queue,
                    routing_key: header_str(h, headers::ROUTING_KEY)
                        .unwrap_or_else(|| d.routing_key.as_str().to_owned()),
                    message_id: d
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|s| s.as_str().to_owned()),
                    tenant: header_str(h, headers::TENANT),
                    attempt: header_u32(h, headers::ATTEMPT),
                    parked_at: header_str(h, headers::PARKED_AT).unwrap_or_default(),
                });
            }
            Ok::<_, BusError>(())
        }
        .await;
        // Closing without acking requeues everything we looked at.
        let _closed = ch.close(200, "inspected").await;
        result.map(|()| out)
    }
}

struct ConsumerChannel {
    channel: Channel,
    consumer: Consumer,
}

/// A consumer of one queue on its own channel.
struct AmqpSubscription {
    inner: Arc<Inner>,
    queue: String,
    prefetch: u16,
    current: Option<ConsumerChannel>,
    /// Incremented with every new channel; kept in the high bits of `Delivery::tag`.
    generation: u64,
    /// Delivery tags (of the current channel) handed out and not yet settled.
    unacked: BTreeSet<u64>,
    /// Content type of each unsettled delivery, needed to republish it down the ladder.
    content_types: std::collections::HashMap<u64, String>,
}

impl Drop for AmqpSubscription {
    fn drop(&mut self) {
        // Closing the channel makes the broker requeue what this consumer did not settle now,
        // rather than whenever lapin notices the last handle is gone.
        if let Some(cur) = self.current.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _closed = cur.channel.close(200, "subscription dropped").await;
                });
            }
        }
    }
}

impl AmqpSubscription {
    /// Opens a channel and starts consuming, reconnecting if needed, until the deadline.
    async fn reopen(&mut self) -> Result<(), BusError> {
        if let Some(old) = self.current.take() {
            if old.channel.status().connected() {
                let _closed = old.channel.close(200, "reopening").await;
            }
        }
        self.unacked.clear();
        self.content_types.clear();
        let deadline = self.inner.deadline();
        let mut replace = None;
        let mut backoff = Backoff::new();
        loop {
            let live = self.inner.connection(replace.take(), deadline).await?;
            let opened = tokio::time::timeout(CHANNEL_OPEN_TIMEOUT, async {
                let channel = live.conn.create_channel().await.map_err(conn_err)?;
                channel
                    .basic_qos(self.prefetch, BasicQosOptions { global: false })
                    .await
                    .map_err(conn_err)?;
                let consumer = channel
                    .basic_consume(
                        &self.queue,
                        "",
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(proto_err)?;
                Ok::<_, BusError>((channel, consumer))
            })
            .await
            .unwrap_or_else(|_| {
                replace = Some(live.epoch);
                Err(BusError::Connection(
                    "timed out opening the consumer channel".to_owned(),
                ))
            });
            match opened {
                Ok((channel, consumer)) => {
                    self.generation += 1;
                    self.current = Some(ConsumerChannel { channel, consumer });
                    tracing::debug!(queue = %self.queue, prefetch = self.prefetch, "consuming");
                    return Ok(());
                }
                Err(e) => {
                    let wait = backoff.delay();
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tracing::warn!(queue = %self.queue, error = %e, "cannot consume, retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn accept(&mut self, d: lapin::message::Delivery) -> Delivery {
        let h = d.properties.headers().as_ref();
        self.unacked.insert(d.delivery_tag);
        if let Some(ct) = d.properties.content_type() {
            self.content_types
                .insert(d.delivery_tag, ct.as_str().to_owned());
        }
        Delivery {
            routing_key: header_str(h, headers::ROUTING_KEY)
                .unwrap_or_else(|| d.routing_key.as_str().to_owned()),
            message_id: d
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            tenant: header_str(h, headers::TENANT),
            redelivered: d.redelivered,
            attempt: header_u32(h, headers::ATTEMPT),
            tag: (self.generation << GENERATION_SHIFT) | (d.delivery_tag & TAG_MASK),
            body: d.data,
        }
    }

    /// The AMQP tag of a delivery if it belongs to the current channel and is unsettled.
    fn current_tag(&self, d: &Delivery) -> Option<u64> {
        let tag = d.tag & TAG_MASK;
        (d.tag >> GENERATION_SHIFT == self.generation && self.unacked.contains(&tag)).then_some(tag)
    }

    /// The channel failed under us: whatever it held will be redelivered by the broker.
    async fn channel_lost(&mut self, e: impl std::fmt::Display) -> Result<(), BusError> {
        tracing::warn!(queue = %self.queue, error = %e, "consumer channel lost, reconnecting");
        self.reopen().await
    }

    async fn ack_tags(&mut self, tags: &[u64]) -> Result<(), BusError> {
        let Some(cur) = &self.current else {
            return Ok(());
        };
        let Some(&max) = tags.last() else {
            return Ok(());
        };
        // One multiple-ack settles every unacked tag up to `max`; allowed only when those are
        // exactly the ones being acked.
        let covered = self.unacked.range(..=max).count();
        let res = if covered == tags.len() {
            cur.channel
                .basic_ack(max, BasicAckOptions { multiple: true })
                .await
        } else {
            let mut r = Ok(());
            for &t in tags {
                r = cur
                    .channel
                    .basic_ack(t, BasicAckOptions { multiple: false })
                    .await;
                if r.is_err() {
                    break;
                }
            }
            r
        };
        match res {
            Ok(()) => {
                for t in tags {
                    self.unacked.remove(t);
                    self.content_types.remove(t);
                }
                Ok(())
            }
            Err(e) => {
                let err = conn_err(&e);
                self.channel_lost(e).await?;
                Err(err)
            }
        }
    }

    /// Publishes `props` + body to `routing_key` on the default exchange, then acks the original.
    async fn move_to(
        &mut self,
        d: Delivery,
        tag: u64,
        routing_key: &str,
        h: FieldTable,
    ) -> Result<(), BusError> {
        let message_id = d.message_id.clone().unwrap_or_default();
        let content_type = self.content_types.get(&tag).cloned().unwrap_or_default();
        let raw = Raw {
            exchange: "",
            routing_key,
            message_id: &message_id,
            properties: base_properties(&message_id, &content_type, h),
            body: &d.body,
        };
        self.inner.publish_raw(std::slice::from_ref(&raw)).await?;
        self.ack_tags(&[tag]).await
    }

    fn copy_headers(d: &Delivery, attempt: u32) -> FieldTable {
        let mut h = FieldTable::default();
        if let Some(t) = &d.tenant {
            h.insert(headers::TENANT.into(), long_str(t));
        }
        h.insert(
            headers::ATTEMPT.into(),
            AMQPValue::LongInt(i32::try_from(attempt).unwrap_or(i32::MAX)),
        );
        h.insert(headers::ROUTING_KEY.into(), long_str(&d.routing_key));
        h
    }

    async fn park_tag(&mut self, d: Delivery, tag: u64, reason: &str) -> Result<(), BusError> {
        tracing::warn!(queue = %self.queue, message_id = d.message_id.as_deref().unwrap_or(""), attempt = d.attempt, "message parked");
        let mut h = Self::copy_headers(&d, d.attempt);
        h.insert(headers::PARK_REASON.into(), long_str(reason));
        h.insert(headers::ORIGINAL_QUEUE.into(), long_str(&self.queue));
        h.insert(
            headers::PARKED_AT.into(),
            long_str(&chrono::Utc::now().to_rfc3339()),
        );
        let parking = self.inner.opts.parking_queue.clone();
        self.move_to(d, tag, &parking, h).await
    }
}

#[async_trait]
impl Subscription for AmqpSubscription {
    async fn next_batch(
        &mut self,
        max: usize,
        idle_wait: Duration,
        linger: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        if self.current.is_none() {
            self.reopen().await?;
        }
        let mut until = Instant::now() + idle_wait;
        while out.len() < max {
            let Some(cur) = self.current.as_mut() else {
                break;
            };
            match tokio::time::timeout_at(until, cur.consumer.next()).await {
                Err(_) => break,
                Ok(Some(Ok(d))) => {
                    let first = out.is_empty();
                    out.push(self.accept(d));
                    if first {
                        until = Instant::now() + linger;
                    }
                }
                Ok(Some(Err(e))) => {
                    // What we gathered came on a dead channel: the broker requeues it, and acking
                    // it is impossible, so hand out nothing and let it come again.
                    self.channel_lost(e).await?;
                    return Ok(Vec::new());
                }
                Ok(None) => {
                    self.channel_lost("consumer cancelled").await?;
                    return Ok(Vec::new());
                }
            }
        }
        Ok(out)
    }

    async fn ack(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let mut tags = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            match self.current_tag(d) {
                Some(t) => tags.push(t),
                None => {
                    tracing::debug!(queue = %self.queue, message_id = d.message_id.as_deref().unwrap_or(""), "ack of a delivery from a closed channel skipped; it will be redelivered")
                }
            }
        }
        tags.sort_unstable();
        tags.dedup();
        self.ack_tags(&tags).await
    }

    async fn retry(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError> {
        let Some(tag) = self.current_tag(&delivery) else {
            tracing::debug!(queue = %self.queue, "retry of a delivery from a closed channel skipped; it will be redelivered");
            return Ok(());
        };
        let rung = delivery.attempt as usize;
        if rung >= self.inner.topology.retry_ladder.len() {
            let reason = exhausted_reason(reason, delivery.attempt);
            return self.park_tag(delivery, tag, &reason).await;
        }
        tracing::debug!(queue = %self.queue, message_id = delivery.message_id.as_deref().unwrap_or(""), attempt = delivery.attempt + 1, "retrying later");
        let h = Self::copy_headers(&delivery, delivery.attempt + 1);
        let target = retry_queue_name(&self.queue, rung + 1);
        self.move_to(delivery, tag, &target, h).await
    }

    async fn park(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError> {
        let Some(tag) = self.current_tag(&delivery) else {
            tracing::debug!(queue = %self.queue, "park of a delivery from a closed channel skipped; it will be redelivered");
            return Ok(());
        };
        self.park_tag(delivery, tag, reason).await
    }
}
