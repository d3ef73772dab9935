//! The projector against a real store (SQLite in memory) and a hand-written subscription that
//! hands out fixed batches and records what was acknowledged and parked.

use async_trait::async_trait;
use gsko_bus::{BusError, Delivery, Subscription};
use gsko_model::*;
use gsko_projector::{Projector, ProjectorConfig, ProjectorStats};
use gsko_store::{
    ApplyOutcome, ImportRow, RejectedRecordRow, ResidentView, SqliteStore, Store, StoreError,
    TableCounts, UnmatchedPaymentRow,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Log {
    acked: Vec<u64>,
    ack_calls: u32,
    parked: Vec<(u64, String)>,
    retried: Vec<u64>,
}

struct FakeSubscription {
    batches: VecDeque<Vec<Delivery>>,
    log: Arc<Mutex<Log>>,
}

#[async_trait]
impl Subscription for FakeSubscription {
    async fn next_batch(
        &mut self,
        max: usize,
        idle_wait: Duration,
        _linger: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        match self.batches.pop_front() {
            Some(b) => {
                assert!(b.len() <= max);
                Ok(b)
            }
            None => {
                tokio::time::sleep(idle_wait).await;
                Ok(Vec::new())
            }
        }
    }

    async fn ack(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let mut log = self.log.lock().unwrap();
        log.ack_calls += 1;
        log.acked.extend(deliveries.iter().map(|d| d.tag));
        Ok(())
    }

    async fn retry(&mut self, delivery: Delivery, _reason: &str) -> Result<(), BusError> {
        self.log.lock().unwrap().retried.push(delivery.tag);
        Ok(())
    }

    async fn park(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError> {
        self.log
            .lock()
            .unwrap()
            .parked
            .push((delivery.tag, reason.to_owned()));
        Ok(())
    }
}

/// A store that reports `Unavailable` for the first `failures` applies (or forever with
/// `u32::MAX`), then delegates.
struct FlakyStore {
    inner: SqliteStore,
    failures: u32,
    attempts: AtomicU32,
}

#[async_trait]
impl Store for FlakyStore {
    async fn apply(&self, events: &[Event]) -> Result<ApplyOutcome, StoreError> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err(StoreError::Unavailable("simulated outage".to_owned()));
        }
        self.inner.apply(events).await
    }
    async fn resident_tenants(
        &self,
        pesel: &Pesel,
        allowed: &[Teryt],
    ) -> Result<Vec<Teryt>, StoreError> {
        self.inner.resident_tenants(pesel, allowed).await
    }
    async fn resident_view(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Option<ResidentView>, StoreError> {
        self.inner.resident_view(tenant, pesel).await
    }
    async fn rejected_records(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<RejectedRecordRow>, StoreError> {
        self.inner.rejected_records(tenant, limit).await
    }
    async fn imports(&self, tenant: &Teryt, limit: u32) -> Result<Vec<ImportRow>, StoreError> {
        self.inner.imports(tenant, limit).await
    }
    async fn unmatched_payments(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<UnmatchedPaymentRow>, StoreError> {
        self.inner.unmatched_payments(tenant, limit).await
    }
    async fn resident_letters(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<gsko_store::LetterView>, StoreError> {
        self.inner.resident_letters(tenant, pesel).await
    }
    async fn resident_decisions(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<gsko_model::DecisionDelivered>, StoreError> {
        self.inner.resident_decisions(tenant, pesel).await
    }
    async fn resident_cases(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<gsko_store::CaseView>, StoreError> {
        self.inner.resident_cases(tenant, pesel).await
    }
    async fn resident_case(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
        case_ref: &gsko_model::CaseRef,
    ) -> Result<Option<gsko_store::CaseView>, StoreError> {
        self.inner.resident_case(tenant, pesel, case_ref).await
    }
    async fn letters(
        &self,
        tenant: &Teryt,
        flagged_only: bool,
        limit: u32,
    ) -> Result<Vec<gsko_model::Letter>, StoreError> {
        self.inner.letters(tenant, flagged_only, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn counts(&self, tenant: &Teryt) -> Result<TableCounts, StoreError> {
        self.inner.counts(tenant).await
    }
}

fn tenant() -> Teryt {
    Teryt::parse("1465011").unwrap()
}

fn pesel() -> Pesel {
    Pesel::parse("44051401359").unwrap()
}

fn taxpayer_event(version: i64) -> Event {
    Event::new(
        "/gsko/radix/1465011",
        tenant(),
        version,
        EventData::TaxpayerUpserted(Taxpayer {
            taxpayer_id: "T-1".to_owned(),
            kind: TaxpayerKind::Natural,
            pesel: Some(pesel()),
            nip: None,
            regon: None,
            name: "Jan Kowalski".to_owned(),
            address: None,
            contacts: vec![],
        }),
    )
}

fn account_event() -> Event {
    Event::new(
        "/gsko/radix/1465011",
        tenant(),
        1,
        EventData::TaxAccountUpserted(TaxAccount {
            account_id: "K-1".to_owned(),
            levy: LevyKind::Property,
            holders: vec![AccountHolder {
                taxpayer_id: "T-1".to_owned(),
                role: HolderRole::Owner,
            }],
            virtual_account: None,
        }),
    )
}

fn liability_event() -> Event {
    Event::new(
        "/gsko/radix/1465011",
        tenant(),
        1,
        EventData::LiabilityUpserted(Liability {
            liability_id: "L-1".to_owned(),
            account_id: "K-1".to_owned(),
            levy: LevyKind::Property,
            year: 2026,
            decision: None,
            total: Amount::from_grosze(40_000).unwrap(),
            installments: vec![Installment {
                seq: 1,
                due_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
                amount: Amount::from_grosze(40_000).unwrap(),
            }],
        }),
    )
}

/// Decodes fine, but the store refuses it (a line number Postgres' BIGINT cannot hold).
fn unstorable_event() -> Event {
    Event::new(
        "/gsko/radix/1465011",
        tenant(),
        1,
        EventData::RecordRejected(RejectedRecord {
            file: "x.xml".to_owned(),
            file_sha256: "ab".repeat(32),
            line: u64::MAX,
            record_type: "taxpayer".to_owned(),
            record_id: None,
            field: None,
            reason: "test".to_owned(),
            raw: String::new(),
        }),
    )
}

fn delivery(tag: u64, body: Vec<u8>) -> Delivery {
    Delivery {
        body,
        routing_key: "pl.gsko.test.1465011".to_owned(),
        message_id: Some(format!("m-{tag}")),
        tenant: Some("1465011".to_owned()),
        redelivered: false,
        attempt: 0,
        tag,
    }
}

fn config() -> ProjectorConfig {
    ProjectorConfig {
        idle_wait: Duration::from_millis(10),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        ..ProjectorConfig::default()
    }
}

/// Runs a projector over `batches` until `done(log)` holds, then shuts it down.
async fn run_until(
    store: Arc<dyn Store>,
    batches: Vec<Vec<Delivery>>,
    done: impl Fn(&Log) -> bool,
) -> (Log, ProjectorStats) {
    let log = Arc::new(Mutex::new(Log::default()));
    let sub = FakeSubscription {
        batches: batches.into(),
        log: log.clone(),
    };
    let projector = Projector::new(store, config());
    let stats = projector.stats();
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(projector.run(Box::new(sub), rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&log.lock().unwrap()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "projector did not finish: {:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("projector stops on shutdown")
        .unwrap()
        .unwrap();
    let log = std::mem::take(&mut *log.lock().unwrap());
    (log, stats)
}

async fn sqlite() -> SqliteStore {
    SqliteStore::open(":memory:").await.unwrap()
}

#[tokio::test]
async fn applies_acks_and_parks_what_does_not_decode() {
    let store = sqlite().await;
    let mut wrong_type = taxpayer_event(1).to_json();
    let pos = wrong_type.windows(7).position(|w| w == b"pl.gsko").unwrap();
    wrong_type[pos..pos + 7].copy_from_slice(b"pl.xxxx");
    let batch = vec![
        delivery(1, taxpayer_event(1).to_json()),
        delivery(2, b"{not json".to_vec()),
        delivery(3, account_event().to_json()),
        delivery(4, wrong_type),
        delivery(5, liability_event().to_json()),
    ];
    let (log, stats) = run_until(Arc::new(store.clone()), vec![batch], |l| {
        l.acked.len() + l.parked.len() == 5
    })
    .await;
    assert_eq!(log.acked, vec![1, 3, 5]);
    let parked: Vec<u64> = log.parked.iter().map(|(t, _)| *t).collect();
    assert_eq!(parked, vec![2, 4]);
    assert!(
        log.parked
            .iter()
            .all(|(_, r)| r.starts_with("undecodable event")),
        "{:?}",
        log.parked
    );
    assert!(
        log.parked[1].1.contains("unknown message type"),
        "{:?}",
        log.parked
    );
    assert!(log.retried.is_empty());
    assert_eq!(
        (
            stats.applied(),
            stats.ignored(),
            stats.parked(),
            stats.batches()
        ),
        (3, 0, 2, 1)
    );

    let view = store
        .resident_view(&tenant(), &pesel())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.accounts[0].liabilities.len(), 1);
}

#[tokio::test]
async fn redelivered_batch_is_acked_and_counted_as_ignored() {
    let store = sqlite().await;
    let events = [taxpayer_event(2), account_event(), liability_event()];
    let batch = |base: u64| {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| delivery(base + i as u64, e.to_json()))
            .collect::<Vec<_>>()
    };
    let older = vec![delivery(20, taxpayer_event(1).to_json())];
    let (log, stats) = run_until(
        Arc::new(store.clone()),
        vec![batch(0), batch(10), older],
        |l| l.acked.len() == 7,
    )
    .await;
    assert_eq!(log.acked, vec![0, 1, 2, 10, 11, 12, 20]);
    assert_eq!(
        (stats.applied(), stats.ignored(), stats.parked()),
        (3, 4, 0)
    );
}

#[tokio::test]
async fn permanent_store_error_parks_only_the_event_that_fails() {
    let store = sqlite().await;
    let batch = vec![
        delivery(1, taxpayer_event(1).to_json()),
        delivery(2, unstorable_event().to_json()),
        delivery(3, account_event().to_json()),
    ];
    let (log, stats) = run_until(Arc::new(store.clone()), vec![batch], |l| {
        l.acked.len() + l.parked.len() == 3
    })
    .await;
    assert_eq!(log.acked, vec![1, 3]);
    assert_eq!(log.parked.len(), 1);
    assert_eq!(log.parked[0].0, 2);
    assert!(
        log.parked[0].1.starts_with("store refused event"),
        "{}",
        log.parked[0].1
    );
    assert_eq!((stats.applied(), stats.parked()), (2, 1));
    let view = store
        .resident_view(&tenant(), &pesel())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.accounts.len(),
        1,
        "the good events of the batch are stored"
    );
}

#[tokio::test]
async fn transient_store_error_waits_and_applies_the_same_batch_again() {
    let store = Arc::new(FlakyStore {
        inner: sqlite().await,
        failures: 3,
        attempts: AtomicU32::new(0),
    });
    let batch = vec![
        delivery(1, taxpayer_event(1).to_json()),
        delivery(2, account_event().to_json()),
    ];
    let (log, stats) = run_until(store.clone(), vec![batch], |l| l.acked.len() == 2).await;
    assert_eq!(log.ack_calls, 1, "acknowledged once, after the commit");
    assert!(log.parked.is_empty() && log.retried.is_empty(), "{log:?}");
    assert_eq!(store.attempts.load(Ordering::SeqCst), 4);
    assert_eq!((stats.applied(), stats.store_retries()), (2, 3));
    assert!(store
        .resident_view(&tenant(), &pesel())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn shutdown_during_an_outage_leaves_the_batch_unacknowledged() {
    let store = Arc::new(FlakyStore {
        inner: sqlite().await,
        failures: u32::MAX,
        attempts: AtomicU32::new(0),
    });
    let batch = vec![delivery(1, taxpayer_event(1).to_json())];
    let watched = store.clone();
    let (log, stats) = run_until(store, vec![batch], move |_| {
        watched.attempts.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert!(
        log.acked.is_empty() && log.parked.is_empty() && log.retried.is_empty(),
        "{log:?}"
    );
    assert_eq!(stats.applied(), 0);
}
