//! Throughput of `apply`: 500,000 events (taxpayers, accounts, liabilities with installments,
//! postings, balances; five tenants) in batches of 500, on Postgres and on SQLite. Ignored by
//! default; run in release mode:
//!
//! `cargo test --release -p gsko-store --test bench -- --ignored --nocapture`
//!
//! `BENCH_EVENTS` overrides the number of events. Only the time spent in `apply` is measured
//! (building the events is not), and the run ends by checking the row counts.

mod support;

use gsko_model::{Event, HolderRole};
use gsko_store::{SqliteStore, Store};
use std::time::{Duration, Instant};
use support::*;

const BATCH: usize = 500;
const TENANTS: [&str; 5] = ["1465011", "1432034", "0201011", "1261011", "3064011"];
/// Events per resident: taxpayer, account, 2 liabilities, 5 postings, balance.
const PER_RESIDENT: usize = 10;

fn total_events() -> usize {
    std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000)
}

/// The events of resident `n`: every tenth one shares its account with the previous resident.
fn resident_events(n: usize) -> Vec<Event> {
    let t = teryt(TENANTS[n % TENANTS.len()]);
    let tp = format!("T-{n}");
    let acc = format!("K-{n}");
    let mut holders = vec![(tp.as_str(), HolderRole::Owner)];
    let prev = format!("T-{}", n.saturating_sub(TENANTS.len()));
    if n % 10 == 9 {
        holders.push((prev.as_str(), HolderRole::CoOwner));
    }
    let v = 1 + (n as i64 % 3);
    let mut out = vec![
        ev(
            &t,
            v,
            taxpayer(&tp, Some(&pesel(n as u32)), &format!("Jan Kowalski {n}")),
        ),
        ev(&t, v, account(&acc, &holders)),
        ev(
            &t,
            v,
            liability(
                &format!("L-{n}-2025"),
                &acc,
                2025,
                38_000 + n as i64 % 5_000,
            ),
        ),
        ev(
            &t,
            v,
            liability(
                &format!("L-{n}-2026"),
                &acc,
                2026,
                40_000 + n as i64 % 5_000,
            ),
        ),
    ];
    for (i, m) in [3u32, 5, 9, 11, 12].iter().enumerate() {
        out.push(ev(
            &t,
            v,
            posting(
                &format!("P-{n}-{i}"),
                &acc,
                date(2026, *m, 15),
                10_000 + i as i64,
            ),
        ));
    }
    out.push(ev(&t, v, balance(&acc, 12_345)));
    out
}

async fn run(name: &str, store: &dyn Store) {
    let total = total_events();
    let residents = total / PER_RESIDENT;
    let mut spent = Duration::ZERO;
    let mut applied = 0;
    let mut pending: Vec<Event> = Vec::with_capacity(BATCH + PER_RESIDENT);
    let mut count = 0;
    for n in 0..residents {
        pending.extend(resident_events(n));
        if pending.len() >= BATCH || n + 1 == residents {
            let take = pending.len().min(BATCH);
            let batch: Vec<Event> = pending.drain(..take).collect();
            let started = Instant::now();
            let outcome = store.apply(&batch).await.expect("apply");
            spent += started.elapsed();
            applied += outcome.applied;
            count += batch.len();
        }
    }
    if !pending.is_empty() {
        let started = Instant::now();
        applied += store.apply(&pending).await.expect("apply").applied;
        spent += started.elapsed();
        count += pending.len();
    }
    let rate = count as f64 / spent.as_secs_f64();
    println!(
        "{name}: {count} events ({applied} applied) in {:.2} s of apply: {rate:.0} events/s",
        spent.as_secs_f64()
    );

    let mut postings = 0;
    for t in TENANTS {
        postings += store.counts(&teryt(t)).await.unwrap().postings;
    }
    assert_eq!(postings as usize, residents * 5);
    assert_eq!(applied as usize, count);

    // A second pass over the first 50,000 events: all duplicates, all ignored.
    let dup: Vec<Event> = (0..(50_000 / PER_RESIDENT).min(residents))
        .flat_map(resident_events)
        .collect();
    let started = Instant::now();
    let mut ignored = 0;
    for batch in dup.chunks(BATCH) {
        ignored += store.apply(batch).await.unwrap().ignored;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: {} redelivered events ({ignored} ignored): {:.0} events/s",
        dup.len(),
        dup.len() as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn bench_postgres() {
    with_pg(|store| async move { run("postgres", store.as_ref()).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn bench_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db"))
        .await
        .unwrap();
    run("sqlite (WAL file)", &store).await;
    store.close().await;
}
