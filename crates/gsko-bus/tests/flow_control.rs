//! The in-process bus pushes back on publishers when a consumed queue is full, so an import
//! that reads faster than the projector writes cannot pile a whole file up in memory.

use gsko_bus::{Bus, Exchange, MemoryBus, Outgoing, QueueSpec, Topology};
use std::time::Duration;

fn msg(i: usize) -> Outgoing {
    Outgoing {
        exchange: Exchange::Events,
        routing_key: "pl.gsko.test.v1.0201011".into(),
        message_id: format!("m{i}"),
        tenant: "0201011".into(),
        content_type: "application/cloudevents+json".into(),
        body: vec![b'x'; 16],
    }
}

fn topology() -> Topology {
    Topology {
        queues: vec![QueueSpec {
            name: "q".into(),
            exchange: Exchange::Events,
            bindings: vec!["pl.gsko.#".into()],
        }],
        retry_ladder: vec![Duration::from_millis(100)],
    }
}

#[tokio::test]
async fn a_full_consumed_queue_makes_publishers_wait_until_it_drains() {
    let bus = MemoryBus::open(None, topology()).await.unwrap();
    let mut sub = bus.subscribe("q", 1000).await.unwrap();
    let batch: Vec<Outgoing> = (0..1000).map(msg).collect();
    let mut published = 0;
    // Fill the queue: at some point a publish must stop returning.
    while let Ok(r) = tokio::time::timeout(Duration::from_millis(300), bus.publish(&batch)).await {
        r.unwrap();
        published += batch.len();
        assert!(published <= 100_000, "publishing never waited");
    }
    assert!(published >= 10_000, "waited too early, after {published}");
    // Draining lets the next publish through.
    let publisher = {
        let batch = batch.clone();
        let bus = std::sync::Arc::new(bus);
        let b = bus.clone();
        (tokio::spawn(async move { b.publish(&batch).await }), bus)
    };
    for _ in 0..5 {
        let got = sub
            .next_batch(1000, Duration::from_secs(1), Duration::from_millis(10))
            .await
            .unwrap();
        sub.ack(got).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(5), publisher.0)
        .await
        .expect("publish resumed after draining")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_queue_without_consumers_never_blocks_publishers() {
    let bus = MemoryBus::open(None, topology()).await.unwrap();
    let batch: Vec<Outgoing> = (0..1000).map(msg).collect();
    for _ in 0..30 {
        tokio::time::timeout(Duration::from_secs(2), bus.publish(&batch))
            .await
            .expect("no flow control without consumers")
            .unwrap();
    }
}
