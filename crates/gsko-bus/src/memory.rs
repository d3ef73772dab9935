//! The in-process bus for embedded mode (`gsko demo`, a small municipality on one machine).
//!
//! It keeps the semantics of the RabbitMQ backend so the same daemon code and the same contract
//! tests run on both: topic routing exactly as AMQP does it, an unroutable message is an error,
//! per-queue FIFO, a prefetch limit of unacknowledged deliveries, redelivery (`redelivered =
//! true`) of what a dropped subscription did not acknowledge, the retry ladder with real delays
//! and the parking queue.
//!
//! Durability comes from an optional SQLite journal: every queued copy of a message is written
//! (one transaction per publish batch) before `publish` returns and deleted when it is
//! acknowledged, so after a crash reopening the file redelivers everything not acknowledged.
//! WAL with `synchronous=NORMAL` survives a killed process; only an OS crash or power loss can
//! lose the last transactions, which is the trade-off the embedded mode accepts for speed.

use crate::exhausted_reason;
use crate::topology::PARKING_QUEUE;
use crate::{
    topic, Bus, BusError, Delivery, Exchange, Outgoing, ParkedMessage, ParkingLot, Subscription,
    Topology,
};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Rows per multi-row statement: well under SQLite's bound-parameter limit (32,766), large enough
/// that a 1,000-message batch is two statements.
const JOURNAL_CHUNK: usize = 500;

/// Why a message sits in the parking queue.
#[derive(Debug, Clone)]
struct ParkInfo {
    reason: String,
    original_queue: String,
    parked_at: String,
}

/// One queued copy of a message (a message routed to two queues is two copies, like in AMQP).
#[derive(Debug, Clone)]
struct Msg {
    /// Journal key and delivery tag; unique for the life of the journal.
    seq: u64,
    queue: String,
    exchange: &'static str,
    routing_key: String,
    message_id: String,
    tenant: String,
    content_type: String,
    body: Arc<[u8]>,
    attempt: u32,
    redelivered: bool,
    /// Unix milliseconds before which a retried message must not be delivered (0: at once).
    not_before_ms: i64,
    park: Option<ParkInfo>,
}

impl Msg {
    fn delivery(&self) -> Delivery {
        Delivery {
            body: self.body.to_vec(),
            routing_key: self.routing_key.clone(),
            message_id: Some(self.message_id.clone()),
            tenant: Some(self.tenant.clone()),
            redelivered: self.redelivered,
            attempt: self.attempt,
            tag: self.seq,
        }
    }
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<Msg>,
    notify: Arc<Notify>,
    /// Live subscriptions; publishers wait for a queue that has consumers and is full.
    consumers: usize,
}

/// A queue with consumers holding this many ready messages makes publishers wait: the
/// in-process counterpart of RabbitMQ's flow control. Without it an import that reads faster
/// than the projector writes would pile the whole file up in memory.
const HIGH_WATER: usize = 20_000;

struct Inner {
    topology: Topology,
    queues: Mutex<HashMap<String, QueueState>>,
    journal: Option<Journal>,
    next_seq: AtomicU64,
}

/// The in-process bus. Cheap to share behind an `Arc<dyn Bus>`.
pub struct MemoryBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("journal", &self.inner.journal.is_some())
            .finish()
    }
}

impl MemoryBus {
    /// Opens the bus. With `path`, messages are journaled in that SQLite file and whatever was
    /// not acknowledged before the last shutdown or crash is queued again (`redelivered = true`,
    /// since it may have been seen); without it, the bus lives in memory only.
    pub async fn open(path: Option<&Path>, topology: Topology) -> Result<MemoryBus, BusError> {
        let journal = match path {
            Some(p) => Some(Journal::open(p).await?),
            None => None,
        };
        let mut queues = HashMap::new();
        for q in &topology.queues {
            queues.insert(q.name.clone(), QueueState::default());
        }
        queues.insert(PARKING_QUEUE.to_owned(), QueueState::default());
        let inner = Arc::new(Inner {
            topology,
            queues: Mutex::new(queues),
            journal,
            next_seq: AtomicU64::new(1),
        });
        if let Some(j) = &inner.journal {
            let rows = j.load().await?;
            let max = rows.iter().map(|m| m.seq).max().unwrap_or(0);
            inner.next_seq.store(max + 1, Ordering::SeqCst);
            let count = rows.len();
            for mut m in rows {
                m.redelivered = true;
                inner.schedule(m);
            }
            if count > 0 {
                tracing::info!(
                    count,
                    "journal replayed: unacknowledged messages queued again"
                );
            }
        }
        Ok(MemoryBus { inner })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, QueueState>> {
        // A panic while holding this lock cannot leave the map half-updated (every critical
        // section is a push or a pop), so a poisoned lock is safe to keep using.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    fn knows_queue(&self, queue: &str) -> bool {
        queue == PARKING_QUEUE || self.topology.queues.iter().any(|q| q.name == queue)
    }

    /// Makes messages visible to consumers, in order, and wakes waiting consumers.
    fn enqueue(&self, msgs: Vec<Msg>) {
        let mut to_wake = Vec::new();
        {
            let mut queues = self.lock();
            for m in msgs {
                let q = queues.entry(m.queue.clone()).or_default();
                q.ready.push_back(m);
                to_wake.push(q.notify.clone());
            }
        }
        for n in to_wake {
            n.notify_waiters();
        }
    }

    /// Puts back deliveries a consumer did not settle, ahead of newer messages (as a broker
    /// requeues them), marked as redelivered.
    fn requeue(&self, mut msgs: Vec<Msg>) {
        msgs.sort_by_key(|m| std::cmp::Reverse(m.seq));
        let mut to_wake = Vec::new();
        {
            let mut queues = self.lock();
            for mut m in msgs {
                m.redelivered = true;
                let q = queues.entry(m.queue.clone()).or_default();
                q.ready.push_front(m);
                to_wake.push(q.notify.clone());
            }
        }
        for n in to_wake {
            n.notify_waiters();
        }
    }

    /// Queues a message now or, for a retried one, when its delay has passed.
    fn schedule(self: &Arc<Self>, msg: Msg) {
        let wait_ms = msg.not_before_ms - now_ms();
        if wait_ms <= 0 {
            self.enqueue(vec![msg]);
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
            // If the bus is gone the message is still in the journal for the next start.
            if let Some(inner) = weak.upgrade() {
                inner.enqueue(vec![msg]);
            }
        });
    }

    fn notifier(&self, queue: &str) -> Arc<Notify> {
        self.lock()
            .entry(queue.to_owned())
            .or_default()
            .notify
            .clone()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, batch: &[Outgoing]) -> Result<(), BusError> {
        let inner = &self.inner;
        let mut copies = Vec::with_capacity(batch.len());
        let mut unroutable = None;
        for m in batch {
            let mut routed = false;
            for q in inner
                .topology
                .queues
                .iter()
                .filter(|q| q.exchange == m.exchange)
            {
                if q.bindings.iter().any(|b| topic::matches(b, &m.routing_key)) {
                    routed = true;
                    copies.push(Msg {
                        seq: inner.seq(),
                        queue: q.name.clone(),
                        exchange: m.exchange.name(),
                        routing_key: m.routing_key.clone(),
                        message_id: m.message_id.clone(),
                        tenant: m.tenant.clone(),
                        content_type: m.content_type.clone(),
                        body: Arc::from(m.body.as_slice()),
                        attempt: 0,
                        redelivered: false,
                        not_before_ms: 0,
                        park: None,
                    });
                }
            }
            if !routed && unroutable.is_none() {
                // Like the broker, the routable rest of the batch is still delivered.
                unroutable = Some(BusError::Unroutable {
                    exchange: m.exchange.name().to_owned(),
                    routing_key: m.routing_key.clone(),
                    message_id: m.message_id.clone(),
                });
            }
        }
        // Flow control: wait while a consumed target queue is over the high-water mark. Queues
        // nobody consumes (the parking queue, a queue of a stopped component) never block.
        loop {
            let full = {
                let queues = inner.lock();
                copies.iter().any(|c| {
                    queues
                        .get(&c.queue)
                        .is_some_and(|q| q.consumers > 0 && q.ready.len() >= HIGH_WATER)
                })
            };
            if !full {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if let Some(j) = &inner.journal {
            j.insert(&copies).await?;
        }
        inner.enqueue(copies);
        match unroutable {
            Some(e) => {
                tracing::warn!(error = %e, "unroutable message");
                Err(e)
            }
            None => Ok(()),
        }
    }

    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        if !self.inner.knows_queue(queue) {
            return Err(BusError::UnknownQueue(queue.to_owned()));
        }
        self.inner
            .lock()
            .entry(queue.to_owned())
            .or_default()
            .consumers += 1;
        Ok(Box::new(MemorySubscription {
            inner: self.inner.clone(),
            queue: queue.to_owned(),
            prefetch: usize::from(prefetch),
            unacked: BTreeMap::new(),
        }))
    }
}

#[async_trait]
impl ParkingLot for MemoryBus {
    async fn parked(&self, limit: usize) -> Result<Vec<ParkedMessage>, BusError> {
        let queues = self.inner.lock();
        let Some(q) = queues.get(PARKING_QUEUE) else {
            return Ok(Vec::new());
        };
        Ok(q.ready
            .iter()
            .take(limit)
            .map(|m| {
                let p = m.park.clone().unwrap_or_else(|| ParkInfo {
                    reason: String::new(),
                    original_queue: String::new(),
                    parked_at: String::new(),
                });
                ParkedMessage {
                    reason: p.reason,
                    original_queue: p.original_queue,
                    routing_key: m.routing_key.clone(),
                    message_id: Some(m.message_id.clone()),
                    tenant: Some(m.tenant.clone()),
                    attempt: m.attempt,
                    parked_at: p.parked_at,
                }
            })
            .collect())
    }
}

/// A consumer of one queue. Dropping it without settling returns its deliveries to the queue.
struct MemorySubscription {
    inner: Arc<Inner>,
    queue: String,
    /// 0 means unlimited, as in AMQP `basic.qos`.
    prefetch: usize,
    unacked: BTreeMap<u64, Msg>,
}

impl MemorySubscription {
    /// The unsettled delivery with this tag. `None` for one already settled (or handed out by
    /// another subscription): like the AMQP backend, settling it again is a no-op, not an error.
    fn take(&mut self, tag: u64) -> Option<Msg> {
        let m = self.unacked.remove(&tag);
        if m.is_none() {
            tracing::debug!(queue = %self.queue, tag, "settling an unknown or already settled delivery skipped");
        }
        m
    }

    /// Replaces the delivery by `copy` (a retry or a parked copy) in one journal transaction,
    /// so a crash in between leaves exactly one of them.
    async fn replace(&mut self, original: Msg, copy: Msg) -> Result<(), BusError> {
        if let Some(j) = &self.inner.journal {
            if let Err(e) = j.replace(original.seq, &copy).await {
                self.unacked.insert(original.seq, original);
                return Err(e);
            }
        }
        self.inner.schedule(copy);
        Ok(())
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        if let Some(q) = self.inner.lock().get_mut(&self.queue) {
            q.consumers = q.consumers.saturating_sub(1);
        }
        let msgs: Vec<Msg> = std::mem::take(&mut self.unacked).into_values().collect();
        if !msgs.is_empty() {
            tracing::debug!(queue = %self.queue, count = msgs.len(), "subscription dropped, requeueing unacked deliveries");
            self.inner.requeue(msgs);
        }
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
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
        let first_deadline = Instant::now() + idle_wait;
        let mut linger_deadline: Option<Instant> = None;
        let notify = self.inner.notifier(&self.queue);
        loop {
            // Register interest before looking, so an enqueue between the look and the wait
            // is not missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut queues = self.inner.lock();
                let q = queues.entry(self.queue.clone()).or_default();
                while out.len() < max && (self.prefetch == 0 || self.unacked.len() < self.prefetch)
                {
                    let Some(m) = q.ready.pop_front() else { break };
                    out.push(m.delivery());
                    self.unacked.insert(m.seq, m);
                }
            }
            if out.len() >= max {
                return Ok(out);
            }
            if !out.is_empty() && linger_deadline.is_none() {
                linger_deadline = Some(Instant::now() + linger);
            }
            let until = linger_deadline.unwrap_or(first_deadline);
            if Instant::now() >= until {
                return Ok(out);
            }
            // A timeout here only means "nothing more came"; the loop decides what to return.
            let _timed_out = tokio::time::timeout_at(until, notified).await.is_err();
        }
    }

    async fn ack(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let msgs: Vec<Msg> = deliveries.iter().filter_map(|d| self.take(d.tag)).collect();
        if let Some(j) = &self.inner.journal {
            let seqs: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
            if let Err(e) = j.delete(&seqs).await {
                for m in msgs {
                    self.unacked.insert(m.seq, m);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn retry(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError> {
        let Some(original) = self.take(delivery.tag) else {
            return Ok(());
        };
        let ladder = &self.inner.topology.retry_ladder;
        let Some(delay) = ladder.get(original.attempt as usize).copied() else {
            let reason = exhausted_reason(reason, original.attempt);
            return self.park_msg(original, &reason).await;
        };
        tracing::debug!(queue = %self.queue, message_id = %original.message_id, attempt = original.attempt + 1, "retrying later");
        let copy = Msg {
            seq: self.inner.seq(),
            attempt: original.attempt + 1,
            redelivered: false,
            not_before_ms: now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
            ..original.clone()
        };
        self.replace(original, copy).await
    }

    async fn park(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError> {
        let Some(original) = self.take(delivery.tag) else {
            return Ok(());
        };
        self.park_msg(original, reason).await
    }
}

impl MemorySubscription {
    async fn park_msg(&mut self, original: Msg, reason: &str) -> Result<(), BusError> {
        tracing::warn!(queue = %self.queue, message_id = %original.message_id, attempt = original.attempt, "message parked");
        let copy = Msg {
            seq: self.inner.seq(),
            queue: PARKING_QUEUE.to_owned(),
            redelivered: false,
            not_before_ms: 0,
            park: Some(ParkInfo {
                reason: reason.to_owned(),
                original_queue: original.queue.clone(),
                parked_at: chrono::Utc::now().to_rfc3339(),
            }),
            ..original.clone()
        };
        self.replace(original, copy).await
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
        .unwrap_or(0)
}

/// The SQLite journal: one row per queued copy, deleted on acknowledgement.
struct Journal {
    pool: SqlitePool,
}

fn jerr(e: sqlx::Error) -> BusError {
    BusError::Journal(e.to_string())
}

impl Journal {
    async fn open(path: &Path) -> Result<Journal, BusError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // One connection: every write is serialized anyway, and it keeps commit order equal to
        // call order.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(jerr)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bus_journal (
                seq INTEGER PRIMARY KEY,
                queue TEXT NOT NULL,
                exchange TEXT NOT NULL,
                routing_key TEXT NOT NULL,
                message_id TEXT NOT NULL,
                tenant TEXT NOT NULL,
                content_type TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                body BLOB NOT NULL,
                not_before INTEGER NOT NULL,
                park_reason TEXT,
                original_queue TEXT,
                parked_at TEXT
            )",
        )
        .execute(&pool)
        .await
        .map_err(jerr)?;
        Ok(Journal { pool })
    }

    async fn load(&self) -> Result<Vec<Msg>, BusError> {
        let rows = sqlx::query(
            "SELECT seq, queue, exchange, routing_key, message_id, tenant, content_type, attempt, body, not_before,
                    park_reason, original_queue, parked_at
             FROM bus_journal ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(jerr)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let exchange: String = r.try_get("exchange").map_err(jerr)?;
            let park_reason: Option<String> = r.try_get("park_reason").map_err(jerr)?;
            let seq: i64 = r.try_get("seq").map_err(jerr)?;
            let attempt: i64 = r.try_get("attempt").map_err(jerr)?;
            let body: Vec<u8> = r.try_get("body").map_err(jerr)?;
            out.push(Msg {
                seq: u64::try_from(seq)
                    .map_err(|_| BusError::Journal(format!("negative seq {seq}")))?,
                queue: r.try_get("queue").map_err(jerr)?,
                exchange: if exchange == Exchange::Commands.name() {
                    Exchange::Commands.name()
                } else {
                    Exchange::Events.name()
                },
                routing_key: r.try_get("routing_key").map_err(jerr)?,
                message_id: r.try_get("message_id").map_err(jerr)?,
                tenant: r.try_get("tenant").map_err(jerr)?,
                content_type: r.try_get("content_type").map_err(jerr)?,
                body: Arc::from(body.as_slice()),
                attempt: u32::try_from(attempt).unwrap_or(0),
                redelivered: true,
                not_before_ms: r.try_get("not_before").map_err(jerr)?,
                park: match park_reason {
                    Some(reason) => Some(ParkInfo {
                        reason,
                        original_queue: r
                            .try_get::<Option<String>, _>("original_queue")
                            .map_err(jerr)?
                            .unwrap_or_default(),
                        parked_at: r
                            .try_get::<Option<String>, _>("parked_at")
                            .map_err(jerr)?
                            .unwrap_or_default(),
                    }),
                    None => None,
                },
            });
        }
        Ok(out)
    }

    fn push_inserts(tx_rows: &[Msg]) -> Vec<QueryBuilder<'_, Sqlite>> {
        tx_rows
            .chunks(JOURNAL_CHUNK)
            .map(|chunk| {
                let mut qb = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO bus_journal (seq, queue, exchange, routing_key, message_id, tenant, content_type, attempt, body, not_before, park_reason, original_queue, parked_at) ",
                );
                qb.push_values(chunk, |mut b, m| {
                    b.push_bind(m.seq as i64)
                        .push_bind(m.queue.as_str())
                        .push_bind(m.exchange)
                        .push_bind(m.routing_key.as_str())
                        .push_bind(m.message_id.as_str())
                        .push_bind(m.tenant.as_str())
                        .push_bind(m.content_type.as_str())
                        .push_bind(i64::from(m.attempt))
                        .push_bind(&*m.body)
                        .push_bind(m.not_before_ms)
                        .push_bind(m.park.as_ref().map(|p| p.reason.as_str()))
                        .push_bind(m.park.as_ref().map(|p| p.original_queue.as_str()))
                        .push_bind(m.park.as_ref().map(|p| p.parked_at.as_str()));
                });
                qb
            })
            .collect()
    }

    /// Writes a publish batch in one transaction.
    async fn insert(&self, msgs: &[Msg]) -> Result<(), BusError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(jerr)?;
        for mut qb in Self::push_inserts(msgs) {
            qb.build().execute(&mut *tx).await.map_err(jerr)?;
        }
        tx.commit().await.map_err(jerr)
    }

    /// Forgets acknowledged messages, one transaction per ack batch.
    async fn delete(&self, seqs: &[u64]) -> Result<(), BusError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(jerr)?;
        for chunk in seqs.chunks(JOURNAL_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM bus_journal WHERE seq IN (");
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s as i64);
            }
            sep.push_unseparated(")");
            qb.build().execute(&mut *tx).await.map_err(jerr)?;
        }
        tx.commit().await.map_err(jerr)
    }

    /// Swaps a message for its retried or parked copy atomically.
    async fn replace(&self, old_seq: u64, copy: &Msg) -> Result<(), BusError> {
        let mut tx = self.pool.begin().await.map_err(jerr)?;
        sqlx::query("DELETE FROM bus_journal WHERE seq = ?")
            .bind(old_seq as i64)
            .execute(&mut *tx)
            .await
            .map_err(jerr)?;
        for mut qb in Self::push_inserts(std::slice::from_ref(copy)) {
            qb.build().execute(&mut *tx).await.map_err(jerr)?;
        }
        tx.commit().await.map_err(jerr)
    }
}
