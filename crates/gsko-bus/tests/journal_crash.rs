//! The embedded bus after a real crash: a child process (this same test binary) publishes,
//! consumes and acknowledges part of the messages, then is killed with SIGKILL while holding
//! the rest unacknowledged. Reopening its journal must give back exactly the unacknowledged ones.

use gsko_bus::{Bus, Exchange, MemoryBus, Outgoing, QueueSpec, Topology};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "GSKO_BUS_CRASH_CHILD_JOURNAL";
const TOTAL: usize = 1000;
const ACKED: usize = 200;
const TAKEN: usize = 300;

fn topology() -> Topology {
    Topology {
        queues: vec![QueueSpec {
            name: "t.crash".into(),
            exchange: Exchange::Events,
            bindings: vec!["pl.gsko.#".into()],
        }],
        retry_ladder: vec![Duration::from_secs(1)],
    }
}

fn id(i: usize) -> String {
    format!("m{i:04}")
}

/// The child: leaves 200 acked, 100 delivered but unacked, 700 never delivered, then waits to die.
async fn child(journal: &Path) {
    let bus = MemoryBus::open(Some(journal), topology())
        .await
        .expect("open");
    for chunk in (0..TOTAL).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<Outgoing> = chunk
            .iter()
            .map(|&i| Outgoing {
                exchange: Exchange::Events,
                routing_key: "pl.gsko.radix.liability.upserted.1465011".into(),
                message_id: id(i),
                tenant: "1465011".into(),
                content_type: "application/cloudevents+json".into(),
                body: vec![b'x'; 512],
            })
            .collect();
        bus.publish(&batch).await.expect("publish");
    }
    let mut sub = bus.subscribe("t.crash", 1000).await.expect("subscribe");
    let mut got = Vec::new();
    while got.len() < TAKEN {
        let batch = sub
            .next_batch(
                TAKEN - got.len(),
                Duration::from_secs(1),
                Duration::from_millis(10),
            )
            .await
            .expect("next_batch");
        got.extend(batch);
    }
    let unacked = got.split_off(ACKED);
    sub.ack(got).await.expect("ack");
    std::fs::write(journal.with_extension("ready"), b"ready").expect("marker");
    // Hold the unacked deliveries until SIGKILL.
    let _held = (sub, unacked, bus);
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn memory_journal_survives_kill_9() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(Path::new(&path)).await;
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("bus.sqlite");
    let exe = std::env::current_exe().expect("test binary");
    let mut proc = std::process::Command::new(exe)
        .args(["--exact", "memory_journal_survives_kill_9", "--nocapture"])
        .env(CHILD_ENV, &journal)
        .spawn()
        .expect("spawn child");
    let marker = journal.with_extension("ready");
    let end = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        if let Ok(Some(status)) = proc.try_wait() {
            panic!("child exited early: {status}");
        }
        assert!(Instant::now() < end, "child never got ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proc.kill().expect("SIGKILL");
    let status = proc.wait().expect("wait");
    assert!(!status.success(), "the child was killed, not finished");

    let bus = MemoryBus::open(Some(&journal), topology())
        .await
        .expect("reopen");
    let mut sub = bus.subscribe("t.crash", 2000).await.expect("subscribe");
    let mut got = Vec::new();
    loop {
        let batch = sub
            .next_batch(2000, Duration::from_millis(300), Duration::from_millis(10))
            .await
            .expect("next_batch");
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    let ids: BTreeSet<String> = got.iter().filter_map(|d| d.message_id.clone()).collect();
    let want: BTreeSet<String> = (ACKED..TOTAL).map(id).collect();
    assert_eq!(got.len(), TOTAL - ACKED, "no duplicates, nothing lost");
    assert_eq!(ids, want);
    assert!(got.iter().all(|d| d.redelivered));
    let order: Vec<String> = got.iter().filter_map(|d| d.message_id.clone()).collect();
    assert_eq!(
        order,
        want.into_iter().collect::<Vec<_>>(),
        "FIFO survives the restart"
    );
}
