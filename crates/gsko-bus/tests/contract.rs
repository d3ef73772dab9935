//! The bus contract: one suite, run against the in-process bus and against RabbitMQ.
//!
//! RabbitMQ tests need a broker on 127.0.0.1:5672 (guest/guest). They run in their own vhost,
//! `gsko-bus-test` (created with `rabbitmqctl` if missing), so the broad patterns tested here
//! (`pl.gsko.#`, `*`) never meet a real `gsko.projector` queue; each test declares its own
//! uniquely named queues and parking queue and deletes them afterwards, even when it fails.
//! Set `GSKO_BUS_TEST_AMQP_URL` to use another broker or vhost.

use gsko_bus::amqp::retry_queue_name;
use gsko_bus::{
    AmqpBus, AmqpOptions, Bus, BusError, Delivery, Exchange, MemoryBus, Outgoing, ParkingLot,
    QueueSpec, Subscription, Topology,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const VHOST: &str = "gsko-bus-test";
const RETRY_DELAY: Duration = Duration::from_millis(200);

trait TestBus: Bus + ParkingLot {}
impl<T: Bus + ParkingLot> TestBus for T {}

fn amqp_url() -> String {
    if let Ok(url) = std::env::var("GSKO_BUS_TEST_AMQP_URL") {
        return url;
    }
    static VHOST_READY: OnceLock<()> = OnceLock::new();
    VHOST_READY.get_or_init(|| {
        // Best effort: if rabbitmqctl is missing the connect below fails with a clear message.
        let _added = std::process::Command::new("rabbitmqctl")
            .args(["add_vhost", VHOST])
            .output();
        let _granted = std::process::Command::new("rabbitmqctl")
            .args(["set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"])
            .output();
    });
    format!("amqp://guest:guest@127.0.0.1:5672/{VHOST}")
}

/// Shows the bus's own logs in failing tests (`RUST_LOG=gsko_bus=debug` for more).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "gsko_bus=info".into());
    // Already installed by another test of this binary: fine.
    let _installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Amqp,
}

/// A bus with its own queues; deletes them (on RabbitMQ) when dropped.
struct Fixture {
    bus: Box<dyn TestBus>,
    sfx: String,
    delete: Vec<String>,
}

impl Fixture {
    fn q(&self, name: &str) -> String {
        format!("t.{}.{name}", self.sfx)
    }
    /// A routing key no other test's binding matches.
    fn key(&self, rest: &str) -> String {
        format!("t.{}.{rest}", self.sfx)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.delete.is_empty() {
            return;
        }
        let names = std::mem::take(&mut self.delete);
        let url = amqp_url();
        // lapin runs its own I/O threads, so blocking here (even inside a runtime) is fine.
        let cleanup = std::thread::spawn(move || {
            futures::executor::block_on(async move {
                let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
                    .await?;
                let ch = conn.create_channel().await?;
                for n in names {
                    ch.queue_delete(&n, lapin::options::QueueDeleteOptions::default())
                        .await?;
                }
                conn.close(200, "cleanup").await
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("cleanup of test queues failed: {e}");
        }
    }
}

/// Builds a bus with `queues` (names relative to the test suffix) and a 200 ms retry ladder of
/// `rungs` rungs.
async fn fixture(backend: Backend, queues: &[(&str, Exchange, &[&str])], rungs: usize) -> Fixture {
    fixture_with(backend, queues, rungs, |_| {}).await
}

async fn fixture_with(
    backend: Backend,
    queues: &[(&str, Exchange, &[&str])],
    rungs: usize,
    tweak: impl FnOnce(&mut AmqpOptions),
) -> Fixture {
    init_tracing();
    let sfx = suffix();
    let specs: Vec<QueueSpec> = queues
        .iter()
        .map(|(name, exchange, bindings)| QueueSpec {
            name: format!("t.{sfx}.{name}"),
            exchange: *exchange,
            bindings: bindings.iter().map(|b| b.replace("{sfx}", &sfx)).collect(),
        })
        .collect();
    let topology = Topology {
        queues: specs.clone(),
        retry_ladder: vec![RETRY_DELAY; rungs],
    };
    match backend {
        Backend::Memory => {
            let bus = MemoryBus::open(None, topology)
                .await
                .expect("memory bus opens");
            Fixture {
                bus: Box::new(bus),
                sfx,
                delete: Vec::new(),
            }
        }
        Backend::Amqp => {
            let parking = format!("t.{sfx}.parked");
            let mut delete: Vec<String> = specs.iter().map(|q| q.name.clone()).collect();
            for q in &specs {
                delete.extend((1..=rungs).map(|i| retry_queue_name(&q.name, i)));
            }
            delete.push(parking.clone());
            let mut opts = AmqpOptions {
                connect_timeout: Duration::from_secs(5),
                reconnect_deadline: Duration::from_secs(30),
                parking_queue: parking,
                connection_name: format!("gsko-bus-test-{sfx}"),
                ..AmqpOptions::default()
            };
            tweak(&mut opts);
            let bus = match AmqpBus::connect_with(&amqp_url(), topology, opts).await {
                Ok(b) => b,
                Err(e) => panic!("RabbitMQ is not reachable at {} ({e}); start it with `rabbitmq-server -detached`", amqp_url()),
            };
            Fixture {
                bus: Box::new(bus),
                sfx,
                delete,
            }
        }
    }
}

fn msg(exchange: Exchange, routing_key: &str, id: &str) -> Outgoing {
    Outgoing {
        exchange,
        routing_key: routing_key.to_owned(),
        message_id: id.to_owned(),
        tenant: "1465011".to_owned(),
        content_type: "application/cloudevents+json".to_owned(),
        body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
    }
}

/// Takes up to `n` deliveries, waiting at most `within` overall.
async fn take(sub: &mut Box<dyn Subscription>, n: usize, within: Duration) -> Vec<Delivery> {
    let end = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let batch = sub
            .next_batch(
                n - out.len(),
                left.min(Duration::from_millis(500)),
                Duration::from_millis(20),
            )
            .await
            .expect("next_batch");
        out.extend(batch);
    }
    out
}

async fn ids_in(f: &Fixture, queue: &str) -> HashSet<String> {
    let mut sub = f.bus.subscribe(&f.q(queue), 100).await.expect("subscribe");
    // Every publish is confirmed before we look, so a short idle wait is enough.
    let got = take(&mut sub, 100, Duration::from_millis(700)).await;
    let ids = got.iter().filter_map(|d| d.message_id.clone()).collect();
    sub.ack(got).await.expect("ack");
    ids
}

fn set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// The behaviours, each a generic async fn run on both backends.

async fn routing_by_topic_pattern(b: Backend) {
    let f = fixture(
        b,
        &[
            ("all", Exchange::Events, &["pl.gsko.#"]),
            ("tenant", Exchange::Events, &["#.1465011"]),
            ("oneword", Exchange::Events, &["*"]),
            ("cmds", Exchange::Commands, &["pl.gsko.#"]),
        ],
        1,
    )
    .await;
    f.bus
        .publish(&[
            msg(
                Exchange::Events,
                "pl.gsko.radix.liability.upserted.1465011",
                "e1",
            ),
            msg(
                Exchange::Events,
                "pl.gsko.epuap.letter.received.0201011",
                "e2",
            ),
            msg(Exchange::Events, "other.1465011", "e3"),
            msg(Exchange::Events, "single", "e4"),
            msg(Exchange::Commands, "pl.gsko.payment.book.1465011", "c1"),
        ])
        .await
        .expect("all routable");
    assert_eq!(ids_in(&f, "all").await, set(&["e1", "e2"]));
    assert_eq!(ids_in(&f, "tenant").await, set(&["e1", "e3"]));
    assert_eq!(ids_in(&f, "oneword").await, set(&["e4"]));
    assert_eq!(ids_in(&f, "cmds").await, set(&["c1"]));
}

async fn unroutable_is_an_error(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let key = format!("nobody.listens.{}", f.sfx);
    let err = f
        .bus
        .publish(&[msg(Exchange::Events, &key, "lost")])
        .await
        .expect_err("unroutable must fail");
    match &err {
        BusError::Unroutable {
            exchange,
            routing_key,
            message_id,
        } => {
            assert_eq!(exchange, "gsko.events");
            assert_eq!(routing_key, &key);
            assert_eq!(message_id, "lost");
        }
        other => panic!("expected Unroutable, got {other:?}"),
    }
    assert!(!err.is_transient());
    // The routable rest of a batch is still delivered (as the broker does).
    let err = f
        .bus
        .publish(&[
            msg(Exchange::Events, &f.key("ok"), "ok"),
            msg(Exchange::Events, &key, "lost2"),
        ])
        .await
        .expect_err("batch with an unroutable message fails");
    assert!(
        matches!(err, BusError::Unroutable { ref message_id, .. } if message_id == "lost2"),
        "{err:?}"
    );
    assert_eq!(ids_in(&f, "q").await, set(&["ok"]));
}

async fn round_trip_preserves_message(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let mut m = msg(
        Exchange::Events,
        &f.key("radix.liability.upserted.1465011"),
        "018f-rt",
    );
    m.body = (0..=255u8).cycle().take(3000).collect();
    m.tenant = "0201011".to_owned();
    f.bus
        .publish(std::slice::from_ref(&m))
        .await
        .expect("publish");
    let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
    let got = take(&mut sub, 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert_eq!(d.body, m.body);
    assert_eq!(d.message_id.as_deref(), Some("018f-rt"));
    assert_eq!(d.tenant.as_deref(), Some("0201011"));
    assert_eq!(d.routing_key, m.routing_key);
    assert!(!d.redelivered);
    assert_eq!(d.attempt, 0);
    sub.ack(got).await.expect("ack");
}

async fn unknown_queue_is_an_error(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let err = f
        .bus
        .subscribe(&f.q("nope"), 10)
        .await
        .err()
        .expect("unknown queue");
    assert!(matches!(err, BusError::UnknownQueue(_)), "{err:?}");
}

async fn ack_removes(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let batch: Vec<Outgoing> = (0..5)
        .map(|i| msg(Exchange::Events, &f.key("x"), &format!("a{i}")))
        .collect();
    f.bus.publish(&batch).await.expect("publish");
    {
        let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
        let got = take(&mut sub, 5, Duration::from_secs(3)).await;
        assert_eq!(got.len(), 5);
        // Out-of-order subset first (individual acks), then the rest.
        let mut got = got;
        let later = got.split_off(3);
        let (first, rest): (Vec<_>, Vec<_>) = got
            .into_iter()
            .partition(|d| d.message_id.as_deref() != Some("a1"));
        sub.ack(first).await.expect("ack");
        sub.ack(later).await.expect("ack");
        sub.ack(rest).await.expect("ack");
    }
    let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
    let again = take(&mut sub, 5, Duration::from_millis(800)).await;
    assert!(
        again.is_empty(),
        "acked messages came back: {:?}",
        again.iter().map(|d| &d.message_id).collect::<Vec<_>>()
    );
}

async fn settling_twice_is_harmless(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    f.bus
        .publish(&[msg(Exchange::Events, &f.key("x"), "s1")])
        .await
        .expect("publish");
    let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
    let d = take(&mut sub, 1, Duration::from_secs(3))
        .await
        .pop()
        .expect("delivery");
    let again = || Delivery {
        body: Vec::new(),
        routing_key: d.routing_key.clone(),
        message_id: d.message_id.clone(),
        tenant: d.tenant.clone(),
        redelivered: d.redelivered,
        attempt: d.attempt,
        tag: d.tag,
    };
    let (twice, thrice) = (again(), again());
    sub.ack(vec![d]).await.expect("ack");
    sub.ack(vec![twice]).await.expect("a second ack is a no-op");
    sub.park(thrice, "late")
        .await
        .expect("parking a settled delivery is a no-op");
    assert!(f.bus.parked(10).await.expect("parked").is_empty());
    let none = take(&mut sub, 1, Duration::from_millis(500)).await;
    assert!(none.is_empty());
}

async fn dropped_subscription_redelivers(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let batch: Vec<Outgoing> = (0..3)
        .map(|i| msg(Exchange::Events, &f.key("x"), &format!("d{i}")))
        .collect();
    f.bus.publish(&batch).await.expect("publish");
    {
        let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
        let got = take(&mut sub, 3, Duration::from_secs(3)).await;
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|d| !d.redelivered));
        // Settle one; drop the subscription holding the other two.
        let mut got = got;
        let one = got.remove(0);
        sub.ack(vec![one]).await.expect("ack");
    }
    let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
    let again = take(&mut sub, 3, Duration::from_secs(3)).await;
    assert_eq!(
        again.len(),
        2,
        "the two unacked deliveries come back, the acked one does not"
    );
    assert!(again.iter().all(|d| d.redelivered));
    assert_eq!(
        again
            .iter()
            .filter_map(|d| d.message_id.clone())
            .collect::<HashSet<_>>(),
        set(&["d1", "d2"])
    );
    sub.ack(again).await.expect("ack");
}

async fn prefetch_bounds_in_flight(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let batch: Vec<Outgoing> = (0..10)
        .map(|i| msg(Exchange::Events, &f.key("x"), &format!("p{i}")))
        .collect();
    f.bus.publish(&batch).await.expect("publish");
    let mut sub = f.bus.subscribe(&f.q("q"), 3).await.expect("subscribe");
    let first = sub
        .next_batch(10, Duration::from_secs(3), Duration::from_millis(300))
        .await
        .expect("batch");
    assert_eq!(first.len(), 3, "prefetch 3 allows 3 unacked deliveries");
    let none = sub
        .next_batch(10, Duration::from_millis(400), Duration::from_millis(100))
        .await
        .expect("batch");
    assert!(none.is_empty(), "nothing more until something is acked");
    let ids: Vec<_> = first.iter().filter_map(|d| d.message_id.clone()).collect();
    assert_eq!(ids, vec!["p0", "p1", "p2"], "FIFO");
    sub.ack(first).await.expect("ack");
    let second = sub
        .next_batch(10, Duration::from_secs(3), Duration::from_millis(300))
        .await
        .expect("batch");
    assert_eq!(second.len(), 3);
    assert_eq!(second[0].message_id.as_deref(), Some("p3"));
    sub.ack(second).await.expect("ack");
}

async fn retry_comes_back_then_parks(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let key = f.key("radix.sync.1465011");
    f.bus
        .publish(&[msg(Exchange::Events, &key, "r1")])
        .await
        .expect("publish");
    let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
    let d = take(&mut sub, 1, Duration::from_secs(3))
        .await
        .pop()
        .expect("delivery");
    assert_eq!(d.attempt, 0);
    let retried_at = Instant::now();
    sub.retry(d, "radix timed out").await.expect("retry");
    let d = take(&mut sub, 1, Duration::from_secs(5))
        .await
        .pop()
        .expect("retried delivery comes back");
    let waited = retried_at.elapsed();
    assert!(
        waited >= RETRY_DELAY - Duration::from_millis(20),
        "came back after {waited:?}, before the rung's delay"
    );
    assert_eq!(d.attempt, 1);
    assert_eq!(d.message_id.as_deref(), Some("r1"));
    assert_eq!(d.tenant.as_deref(), Some("1465011"));
    assert_eq!(d.routing_key, key);
    assert_eq!(d.body, b"{\"id\":\"r1\"}");
    // The ladder has one rung: the next failure parks it.
    sub.retry(d, "radix timed out again")
        .await
        .expect("retry past the ladder");
    let none = take(&mut sub, 1, Duration::from_millis(600)).await;
    assert!(
        none.is_empty(),
        "a message past the ladder does not come back"
    );
    let parked = f.bus.parked(100).await.expect("parked");
    assert_eq!(parked.len(), 1, "{parked:?}");
    let p = &parked[0];
    assert!(p.reason.contains("radix timed out again"), "{p:?}");
    assert_eq!(p.original_queue, f.q("q"));
    assert_eq!(p.attempt, 1);
    assert_eq!(p.routing_key, key);
    assert_eq!(p.message_id.as_deref(), Some("r1"));
}

async fn park_keeps_reason_and_queue(b: Backend) {
    let f = fixture(b, &[("q", Exchange::Events, &["t.{sfx}.#"])], 2).await;
    let key = f.key("epuap.letter.received.1465011");
    f.bus
        .publish(&[
            msg(Exchange::Events, &key, "k1"),
            msg(Exchange::Events, &key, "k2"),
        ])
        .await
        .expect("publish");
    let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
    let mut got = take(&mut sub, 2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 2);
    let second = got.pop().expect("two");
    let first = got.pop().expect("two");
    sub.park(first, "XSD validation failed: element Kwota")
        .await
        .expect("park");
    sub.ack(vec![second])
        .await
        .expect("ack the rest of the batch");
    let parked = f.bus.parked(10).await.expect("parked");
    assert_eq!(parked.len(), 1, "{parked:?}");
    let p = &parked[0];
    assert_eq!(p.reason, "XSD validation failed: element Kwota");
    assert_eq!(p.original_queue, f.q("q"));
    assert_eq!(p.routing_key, key);
    assert_eq!(p.message_id.as_deref(), Some("k1"));
    assert_eq!(p.tenant.as_deref(), Some("1465011"));
    assert_eq!(p.attempt, 0);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&p.parked_at).is_ok(),
        "{p:?}"
    );
    // Listing does not consume: the message is still there.
    assert_eq!(f.bus.parked(10).await.expect("parked").len(), 1);
    let none = take(&mut sub, 1, Duration::from_millis(500)).await;
    assert!(none.is_empty());
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Memory).await })*
        }
        mod amqp {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Amqp).await })*
        }
    };
}

contract!(
    routing_by_topic_pattern,
    unroutable_is_an_error,
    round_trip_preserves_message,
    unknown_queue_is_an_error,
    ack_removes,
    settling_twice_is_harmless,
    dropped_subscription_redelivers,
    prefetch_bounds_in_flight,
    retry_comes_back_then_parks,
    park_keeps_reason_and_queue,
);

// ---------------------------------------------------------------------------------------------
// Backend-specific behaviour.

fn close_connections_named(name: &str) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "--no-table-headers",
            "--silent",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("rabbitmqctl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut closed = 0;
    for line in text.lines().filter(|l| l.contains(name)) {
        if let Some(pid) = line.split_whitespace().next() {
            let st = std::process::Command::new("rabbitmqctl")
                .args(["close_connection", pid, "test: forced connection loss"])
                .status()
                .expect("rabbitmqctl runs");
            if st.success() {
                closed += 1;
            }
        }
    }
    closed
}

/// The broker drops the connection in the middle of a stream of publish batches; every message
/// must still be delivered (duplicates allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_connection_loss_during_publish_loses_nothing() {
    let f = fixture(Backend::Amqp, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let name = format!("gsko-bus-test-{}", f.sfx);
    let closer = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(300));
        close_connections_named(&name)
    });
    let body = vec![b'x'; 1024];
    let mut sent = Vec::new();
    let mut batches_after_close = 0;
    let mut n = 0;
    while batches_after_close < 5 {
        let batch: Vec<Outgoing> = (0..2000)
            .map(|_| {
                n += 1;
                let mut m = msg(Exchange::Events, &f.key("load"), &format!("m{n}"));
                m.body = body.clone();
                m
            })
            .collect();
        f.bus
            .publish(&batch)
            .await
            .expect("publish survives the connection loss");
        sent.extend(batch.into_iter().map(|m| m.message_id));
        if closer.is_finished() {
            batches_after_close += 1;
        }
        assert!(n < 2_000_000, "the connection was never closed");
    }
    let closed = closer.await.expect("closer");
    assert!(
        closed >= 1,
        "the test did not manage to close the bus connection"
    );
    let mut want: HashSet<String> = sent.into_iter().collect();
    let total = want.len();
    let mut sub = f
        .bus
        .subscribe(&f.q("q"), 1000)
        .await
        .expect("subscribe after reconnect");
    let end = Instant::now() + Duration::from_secs(60);
    while !want.is_empty() && Instant::now() < end {
        let batch = sub
            .next_batch(1000, Duration::from_secs(2), Duration::from_millis(50))
            .await
            .expect("next_batch");
        for d in &batch {
            if let Some(id) = &d.message_id {
                want.remove(id);
            }
        }
        sub.ack(batch).await.expect("ack");
    }
    assert!(
        want.is_empty(),
        "{} of {total} published messages never arrived",
        want.len()
    );
}

/// A consumer whose connection is closed by the broker keeps consuming on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_consumer_survives_connection_loss() {
    let f = fixture(Backend::Amqp, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    f.bus
        .publish(&[msg(Exchange::Events, &f.key("x"), "c1")])
        .await
        .expect("publish");
    let mut sub = f.bus.subscribe(&f.q("q"), 10).await.expect("subscribe");
    let got = take(&mut sub, 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    let name = format!("gsko-bus-test-{}", f.sfx);
    let closed = tokio::task::spawn_blocking(move || close_connections_named(&name))
        .await
        .expect("closer");
    assert!(closed >= 1);
    // The ack of a delivery from the dead channel is skipped (or fails); it comes back redelivered.
    let _skipped_or_failed = sub.ack(got).await;
    let again = take(&mut sub, 1, Duration::from_secs(20)).await;
    assert_eq!(
        again.len(),
        1,
        "the unacked delivery comes back on the new connection"
    );
    assert!(again[0].redelivered);
    sub.ack(again).await.expect("ack on the new channel");
    f.bus
        .publish(&[msg(Exchange::Events, &f.key("x"), "c2")])
        .await
        .expect("publish after reconnect");
    let more = take(&mut sub, 1, Duration::from_secs(5)).await;
    assert_eq!(
        more.first().and_then(|d| d.message_id.as_deref()),
        Some("c2")
    );
    sub.ack(more).await.expect("ack");
}

/// Connecting to a closed port fails within the connect timeout instead of hanging.
#[tokio::test]
async fn amqp_connect_fails_fast_without_broker() {
    let opts = AmqpOptions {
        connect_timeout: Duration::from_secs(2),
        ..AmqpOptions::default()
    };
    let started = Instant::now();
    let res = AmqpBus::connect_with(
        "amqp://guest:guest@127.0.0.1:1/%2f",
        Topology::default(),
        opts,
    )
    .await;
    assert!(matches!(res, Err(BusError::Connection(_))), "{res:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Reopening the journal after a crash redelivers every message not acknowledged, including
/// retried (delayed) and parked ones, and nothing that was acknowledged.
#[tokio::test]
async fn memory_journal_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bus.sqlite");
    let topology = Topology {
        queues: vec![QueueSpec {
            name: "t.q".into(),
            exchange: Exchange::Events,
            bindings: vec!["pl.gsko.#".into()],
        }],
        retry_ladder: vec![RETRY_DELAY],
    };
    {
        let bus = MemoryBus::open(Some(&path), topology.clone())
            .await
            .expect("open");
        let batch: Vec<Outgoing> = (0..10)
            .map(|i| msg(Exchange::Events, "pl.gsko.x.1465011", &format!("j{i}")))
            .collect();
        bus.publish(&batch).await.expect("publish");
        let mut sub = bus.subscribe("t.q", 100).await.expect("subscribe");
        let mut got = take(&mut sub, 10, Duration::from_secs(2)).await;
        assert_eq!(got.len(), 10);
        let rest = got.split_off(4);
        sub.ack(got).await.expect("ack j0..j3");
        let mut rest = rest.into_iter();
        sub.retry(rest.next().expect("j4"), "later")
            .await
            .expect("retry j4");
        sub.park(rest.next().expect("j5"), "bad")
            .await
            .expect("park j5");
        // j6..j9 stay unacked: simulate a crash by forgetting the bus without any shutdown.
        std::mem::forget(sub);
        std::mem::forget(bus);
    }
    let bus = MemoryBus::open(Some(&path), topology)
        .await
        .expect("reopen");
    let mut sub = bus.subscribe("t.q", 100).await.expect("subscribe");
    let got = take(&mut sub, 10, Duration::from_secs(2)).await;
    let ids: BTreeMap<String, (bool, u32)> = got
        .iter()
        .map(|d| {
            (
                d.message_id.clone().unwrap_or_default(),
                (d.redelivered, d.attempt),
            )
        })
        .collect();
    assert_eq!(
        ids.keys().cloned().collect::<HashSet<_>>(),
        set(&["j4", "j6", "j7", "j8", "j9"]),
        "{ids:?}"
    );
    assert_eq!(ids["j4"].1, 1, "the retried copy keeps its attempt count");
    assert!(ids["j6"].0, "unacked messages come back as redelivered");
    let parked = bus.parked(10).await.expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].reason, "bad");
    assert_eq!(parked[0].original_queue, "t.q");
    sub.ack(got).await.expect("ack");
    drop(sub);
    drop(bus);
    let bus = MemoryBus::open(Some(&path), Topology::default())
        .await
        .expect("reopen again");
    assert_eq!(
        bus.parked(10).await.expect("parked").len(),
        1,
        "only the parked message is left"
    );
}

/// Journaled publishing keeps up with the embedded mode's target (~10,000 msg/s in batches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run with --ignored --nocapture"]
async fn memory_journal_publish_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topology = Topology {
        queues: vec![QueueSpec {
            name: "t.q".into(),
            exchange: Exchange::Events,
            bindings: vec!["#".into()],
        }],
        retry_ladder: vec![RETRY_DELAY],
    };
    let bus = MemoryBus::open(Some(&dir.path().join("bus.sqlite")), topology)
        .await
        .expect("open");
    let body = vec![b'x'; 1024];
    let started = Instant::now();
    for b in 0..100 {
        let batch: Vec<Outgoing> = (0..1000)
            .map(|i| {
                let mut m = msg(Exchange::Events, "pl.gsko.x", &format!("b{b}-{i}"));
                m.body = body.clone();
                m
            })
            .collect();
        bus.publish(&batch).await.expect("publish");
    }
    let publish = started.elapsed();
    let mut sub = bus.subscribe("t.q", 1000).await.expect("subscribe");
    let started = Instant::now();
    let mut n = 0;
    while n < 100_000 {
        let batch = sub
            .next_batch(1000, Duration::from_secs(1), Duration::from_millis(10))
            .await
            .expect("batch");
        n += batch.len();
        sub.ack(batch).await.expect("ack");
    }
    let consume = started.elapsed();
    println!(
        "memory bus with journal: publish {:.0} msg/s, consume+ack {:.0} msg/s",
        100_000.0 / publish.as_secs_f64(),
        100_000.0 / consume.as_secs_f64()
    );
}

/// The brief's measurement: 100,000 ~1 KB messages in batches of 1,000 to a quorum queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run with --ignored --nocapture"]
async fn amqp_publish_rate() {
    let f = fixture(Backend::Amqp, &[("q", Exchange::Events, &["t.{sfx}.#"])], 1).await;
    let body = vec![b'x'; 1024];
    let key = f.key("bench");
    let batches: Vec<Vec<Outgoing>> = (0..100)
        .map(|b| {
            (0..1000)
                .map(|i| {
                    let mut m = msg(Exchange::Events, &key, &format!("b{b}-{i}"));
                    m.body = body.clone();
                    m
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for batch in &batches {
        f.bus.publish(batch).await.expect("publish");
    }
    let took = started.elapsed();
    println!(
        "amqp publish: 100000 msgs of 1 KB in {took:?} = {:.0} msg/s",
        100_000.0 / took.as_secs_f64()
    );
}
