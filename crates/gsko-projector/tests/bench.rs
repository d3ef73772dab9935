//! Throughput of the projector without a broker: deliveries (CloudEvents JSON, as they come off
//! the bus) are decoded, applied in batches of 500 and acknowledged. Ignored by default; run in
//! release mode:
//!
//! `cargo test --release -p gsko-projector --test bench -- --ignored --nocapture`
//!
//! Postgres: a fresh database on `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped afterwards. `BENCH_EVENTS` overrides the number of events (default 500,000).

use async_trait::async_trait;
use gsko_bus::{BusError, Delivery, Subscription};
use gsko_model::*;
use gsko_projector::{Projector, ProjectorConfig};
use gsko_store::{PgStore, SqliteStore, Store};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const TENANTS: [&str; 5] = ["1465011", "1432034", "0201011", "1261011", "3064011"];

struct Feed {
    batches: VecDeque<Vec<Delivery>>,
    settled: Arc<AtomicU64>,
}

#[async_trait]
impl Subscription for Feed {
    async fn next_batch(
        &mut self,
        _max: usize,
        idle_wait: Duration,
        _linger: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        match self.batches.pop_front() {
            Some(b) => Ok(b),
            None => {
                tokio::time::sleep(idle_wait).await;
                Ok(Vec::new())
            }
        }
    }
    async fn ack(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        self.settled
            .fetch_add(deliveries.len() as u64, Ordering::SeqCst);
        Ok(())
    }
    async fn retry(&mut self, _d: Delivery, _reason: &str) -> Result<(), BusError> {
        panic!("the projector never retries single deliveries")
    }
    async fn park(&mut self, _d: Delivery, reason: &str) -> Result<(), BusError> {
        panic!("nothing should be parked: {reason}")
    }
}

fn amount(g: i64) -> Amount {
    Amount::from_grosze(g).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Ten events per resident: taxpayer, account, two liabilities, five postings, a balance.
fn resident(n: usize) -> Vec<Event> {
    let t = Teryt::parse(TENANTS[n % TENANTS.len()]).unwrap();
    let (tp, acc) = (format!("T-{n}"), format!("K-{n}"));
    let e = |data| {
        Event::new("/gsko/radix/bench", t.clone(), 1, data)
            .with_correlation(format!("import-{}", n / 1000))
    };
    let mut out = vec![
        e(EventData::TaxpayerUpserted(Taxpayer {
            taxpayer_id: tp.clone(),
            kind: TaxpayerKind::Natural,
            pesel: Some(Pesel::parse("44051401359").unwrap()),
            nip: None,
            regon: None,
            name: format!("Jan Kowalski {n}"),
            address: Some(Address {
                street: Some("ul. Lipowa".to_owned()),
                building: Some(format!("{}", n % 200)),
                unit: None,
                postal_code: "05-500".to_owned(),
                city: "Piaseczno".to_owned(),
                simc: Some("0921410".to_owned()),
                country: "PL".to_owned(),
            }),
            contacts: vec![ContactChannel {
                kind: ContactKind::Email,
                value: format!("jan{n}@example.org"),
            }],
        })),
        e(EventData::TaxAccountUpserted(TaxAccount {
            account_id: acc.clone(),
            levy: LevyKind::Joint,
            holders: vec![AccountHolder {
                taxpayer_id: tp.clone(),
                role: HolderRole::Owner,
            }],
            virtual_account: None,
        })),
    ];
    for year in [2025, 2026] {
        out.push(e(EventData::LiabilityUpserted(Liability {
            liability_id: format!("L-{n}-{year}"),
            account_id: acc.clone(),
            levy: LevyKind::Joint,
            year,
            decision: Some(Decision {
                number: format!("FN.3120.{n}.{year}"),
                issued_on: day(year, 2, 1),
                delivered_on: Some(day(year, 2, 10)),
            }),
            total: amount(40_000),
            installments: [(3, 15), (5, 15), (9, 15), (11, 15)]
                .iter()
                .enumerate()
                .map(|(i, (m, d))| Installment {
                    seq: i as u8 + 1,
                    due_date: day(year, *m, *d),
                    amount: amount(10_000),
                })
                .collect(),
        })));
    }
    for i in 0..5 {
        out.push(e(EventData::PostingRecorded(LedgerPosting {
            posting_id: format!("P-{n}-{i}"),
            account_id: acc.clone(),
            kind: if i < 2 {
                PostingKind::Charge
            } else {
                PostingKind::Payment
            },
            value_date: day(2026, 3 + i, 15),
            amount: amount(10_000),
            liability_id: Some(format!("L-{n}-2026")),
            installment_seq: Some(1),
            description: Some("wpłata".to_owned()),
        })));
    }
    out.push(e(EventData::BalanceReported(Balance {
        account_id: acc,
        as_of: day(2026, 6, 30),
        principal: amount(30_000),
        interest: amount(123),
        costs: amount(0),
        overpayment: amount(0),
    })));
    out
}

async fn run(name: &str, store: Arc<dyn Store>) {
    let total: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(total);
    for n in 0..total / 10 {
        for e in resident(n) {
            let tag = deliveries.len() as u64;
            deliveries.push(Delivery {
                body: e.to_json(),
                routing_key: e.routing_key(),
                message_id: Some(e.id.to_string()),
                tenant: Some(e.tenant.to_string()),
                redelivered: false,
                attempt: 0,
                tag,
            });
        }
    }
    let count = deliveries.len() as u64;
    let mut batches = VecDeque::new();
    let mut it = deliveries.into_iter().peekable();
    while it.peek().is_some() {
        batches.push_back(it.by_ref().take(500).collect::<Vec<_>>());
    }
    let settled = Arc::new(AtomicU64::new(0));
    let feed = Feed {
        batches,
        settled: settled.clone(),
    };
    let config = ProjectorConfig {
        idle_wait: Duration::from_millis(5),
        ..ProjectorConfig::default()
    };
    let projector = Projector::new(store, config);
    let stats = projector.stats();
    let (tx, rx) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(projector.run(Box::new(feed), rx));
    while settled.load(Ordering::SeqCst) < count {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    println!(
        "projector -> {name}: {count} deliveries decoded, applied ({}), acknowledged in {secs:.2} s: {:.0} events/s",
        stats.applied(),
        count as f64 / secs
    );
    assert_eq!(stats.applied(), count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn bench_projector_postgres() {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let admin = sqlx::PgPool::connect(&server)
        .await
        .expect("Postgres reachable");
    let name = format!("gsko_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let options: sqlx::postgres::PgConnectOptions = server
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .database(&name);
    let store = PgStore::connect_with(options, 2).await.unwrap();
    run("postgres", Arc::new(store.clone())).await;
    store.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn bench_projector_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db"))
        .await
        .unwrap();
    run("sqlite (WAL file)", Arc::new(store.clone())).await;
    store.close().await;
}
