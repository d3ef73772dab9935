//! Gateway payouts reconciled against the P24 simulator's batch reports, with the embedded
//! store: real orders paid through the simulator and settled from its notifications, a batch
//! paid out by the simulator, then the payout as the statement shows it. A payout equal to the
//! batch matches its payments; any difference (amount, a session GSKO does not know), an
//! unknown batch, an unreachable report and a PayU payout go to an admin as one
//! `payment.unmatched` (reason `payout_mismatch`). The last test reads the payout from a bank
//! simulator statement through `import_statement`.
//!
//! `cargo test -p gsko-payments --test payout`

use chrono::NaiveDate;
use gsko_bank::Gateway;
use gsko_config::BankConfig;
use gsko_model::UnmatchedReason;
use gsko_model::{Amount, EventData, LevyKind, PaymentChannel, Pesel, Teryt, UnmatchedPayment};
use gsko_payments::payout::{
    payout_id, reconcile_payouts, MismatchReason, PayoutOutcome, PayoutReconciliation,
    UnresolvedReason,
};
use gsko_payments::statement::{import_statement, PayoutLine, StatementOptions};
use gsko_payments::{
    gateway_payment_id, BasketLine, BasketRequest, GatewayKind, Merchant, PaymentService,
    TenantPayments,
};
use gsko_przelewy24::{P24Client, P24Config, RegisterOrder, RetryPolicy, VerifyRequest};
use gsko_sim::bank::{self as bank_sim, BankProfile, BankSimSpec, SimGateway, SimPayout};
use gsko_sim::przelewy24::{self as p24_sim, P24Sim, P24SimHandle};
use gsko_store::{OrderStatus, PaymentStore, SqliteStore};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TENANT: &str = "0201011";
const JAN: &str = "78031501236";

struct World {
    store: Arc<SqliteStore>,
    service: Arc<PaymentService>,
    p24: P24SimHandle,
}

fn teryt() -> Teryt {
    Teryt::from_str(TENANT).unwrap()
}

fn p24_client(url: &str) -> P24Client {
    let mut c = P24Config::new(url, 51_001, "api-key", "crc-key");
    c.timeout = Duration::from_secs(2);
    c.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    P24Client::new(c).unwrap()
}

async fn world() -> World {
    let mut p24_cfg = p24_sim::SimConfig::new(51_001, 51_001, "api-key", "crc-key");
    p24_cfg.time_scale = 0.0001;
    let p24 = P24Sim::start(p24_cfg).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::new(SqliteStore::open(":memory:").await.unwrap());
    let merchants = BTreeMap::from([(
        "taxes".to_owned(),
        Merchant {
            name: "taxes".into(),
            levies: vec![LevyKind::Property, LevyKind::Agricultural],
            przelewy24: Some(p24_client(&p24.base_url)),
            payu: None,
        },
    )]);
    let tenants = BTreeMap::from([(
        teryt(),
        TenantPayments {
            name: "Bolesławiec".into(),
            return_url: "https://portal.example.pl/wynik".into(),
            allowed_return_urls: vec!["https://portal.example.pl/".into()],
            merchants,
        },
    )]);
    let service = Arc::new(PaymentService::new(store.clone(), tenants, public_url));
    let app = gsko_payments::notify::routes(service.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    World {
        store,
        service,
        p24,
    }
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A resident pays `grosze` through P24 for one property-tax installment; returns the session
/// id once GSKO settled the order (notification checked, `transaction/verify` called).
async fn paid_order(w: &World, key: &str, grosze: i64) -> String {
    let basket = w
        .service
        .initiate(BasketRequest {
            tenant: teryt(),
            client: "portal".into(),
            idempotency_key: key.into(),
            pesel: Pesel::from_str(JAN).unwrap(),
            requested: vec![(format!("L-{key}"), Some(1))],
            lines: vec![BasketLine {
                account_id: format!("A-{key}"),
                levy: LevyKind::Property,
                liability_id: format!("L-{key}"),
                installment_seq: Some(1),
                amount: Amount::from_grosze(grosze).unwrap(),
                label: "property rata 1".into(),
            }],
            gateway: Some(GatewayKind::Przelewy24),
            return_url: None,
            email: Some("jan@example.pl".into()),
            customer_ip: Some("192.0.2.1".into()),
        })
        .await
        .unwrap();
    let order = &basket.orders[0];
    let token = order
        .redirect_url
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    w.p24.pay(token).unwrap();
    let session = order.order_id.clone();
    wait_until("the order is paid", || async {
        w.store
            .order(&teryt(), &session)
            .await
            .unwrap()
            .is_some_and(|o| o.status == OrderStatus::Paid)
    })
    .await;
    session
}

fn payout(gateway: Gateway, reference: &str, grosze: i64) -> PayoutLine {
    PayoutLine {
        gateway,
        reference: reference.into(),
        amount: Amount::from_grosze(grosze).unwrap(),
        value_date: NaiveDate::from_ymd_opt(2026, 3, 13).unwrap(),
        source: "wyciag.sta:14".into(),
    }
}

/// The `payment.unmatched` entries waiting in the outbox.
async fn unmatched(store: &SqliteStore) -> Vec<UnmatchedPayment> {
    store
        .outbox_pending(1000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m.event.data {
            EventData::PaymentUnmatched(u) => Some(u),
            _ => None,
        })
        .collect()
}

async fn reconcile_one(w: &World, p: PayoutLine) -> PayoutReconciliation {
    let mut r = reconcile_payouts(&w.service, &teryt(), &[p]).await;
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn a_payout_equal_to_its_batch_matches_the_payments_it_settles() {
    let w = world().await;
    let a = paid_order(&w, "payout-match-1", 25_075).await;
    let b = paid_order(&w, "payout-match-2", 4_400).await;
    let batch = w.p24.settle_batch().expect("a batch was paid out");

    let r = reconcile_one(&w, payout(Gateway::Przelewy24, &batch.to_string(), 29_475)).await;
    assert_eq!(r.outcome, PayoutOutcome::Matched, "{r:?}");
    assert_eq!(r.batch, batch.to_string());
    assert_eq!(r.merchant.as_deref(), Some("taxes"));
    assert_eq!(r.transactions, 2);
    assert_eq!(
        sorted(r.settled_payments.clone()),
        sorted(vec![
            gateway_payment_id(GatewayKind::Przelewy24, &a),
            gateway_payment_id(GatewayKind::Przelewy24, &b),
        ])
    );
    assert!(!r.unmatched_queued);
    assert!(unmatched(&w.store).await.is_empty());
}

#[tokio::test]
async fn a_payout_of_another_amount_is_a_mismatch_queued_once_for_an_admin() {
    let w = world().await;
    let a = paid_order(&w, "payout-sum-1", 10_000).await;
    let batch = w.p24.settle_batch().unwrap();
    let line = payout(Gateway::Przelewy24, &batch.to_string(), 9_990);

    let r = reconcile_one(&w, line.clone()).await;
    assert_eq!(
        r.outcome,
        PayoutOutcome::Mismatch {
            reasons: vec![MismatchReason::TotalDiffers {
                payout: Amount::from_grosze(9_990).unwrap(),
                report: Some(10_000),
            }]
        }
    );
    // The payment itself is GSKO's and paid: it is listed as settled by the payout.
    assert_eq!(
        r.settled_payments,
        vec![gateway_payment_id(GatewayKind::Przelewy24, &a)]
    );
    assert!(r.unmatched_queued);

    let queued = unmatched(&w.store).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let u = &queued[0];
    assert_eq!(u.reason, UnmatchedReason::PayoutMismatch);
    assert_eq!(u.payment_id, payout_id(&line));
    assert_eq!(u.payment_id, r.payout_id);
    assert!(u.payment_id.starts_with("payout-") && u.payment_id.len() <= 35);
    assert_eq!(u.source, "wyciag.sta:14");
    assert_eq!(u.channel, PaymentChannel::Przelewy24);
    assert_eq!(u.amount.grosze(), 9_990);
    assert_eq!(u.external_ref.as_deref(), Some(batch.to_string().as_str()));
    assert!(
        u.detail.contains("99.90") && u.detail.contains("100.00"),
        "{}",
        u.detail
    );
    // The id is stable: the same payout read again has the same id.
    assert_eq!(payout_id(&line), payout_id(&line.clone()));
}

#[tokio::test]
async fn a_batch_with_a_session_gsko_does_not_know_is_a_mismatch_naming_that_session() {
    let w = world().await;
    let ours = paid_order(&w, "payout-foreign-1", 12_300).await;

    // Someone else's payment in the same P24 account (a session GSKO never registered):
    // registered, paid and verified at the simulator directly.
    let client = p24_client(&w.p24.base_url);
    let foreign = "obcy-session-0001";
    let registered = client
        .register(&RegisterOrder::new(
            foreign,
            5_000,
            "opłata spoza GSKO",
            "ktos@example.pl",
            "https://portal.example.pl/wynik",
        ))
        .await
        .unwrap();
    let token = registered.redirect_url.rsplit('/').next().unwrap();
    let tx = w.p24.pay(token).unwrap();
    client
        .verify(&VerifyRequest {
            session_id: foreign.into(),
            order_id: tx.order_id,
            amount: 5_000,
            currency: "PLN".into(),
        })
        .await
        .unwrap();
    let batch = w.p24.settle_batch().unwrap();

    // The payout is the batch's full amount: only the unknown session differs.
    let r = reconcile_one(&w, payout(Gateway::Przelewy24, &batch.to_string(), 17_300)).await;
    assert_eq!(
        r.outcome,
        PayoutOutcome::Mismatch {
            reasons: vec![MismatchReason::UnknownSession {
                session_id: foreign.into(),
                order_id: Some(tx.order_id),
                amount: Some(5_000),
            }]
        }
    );
    assert_eq!(r.transactions, 2);
    assert_eq!(
        r.settled_payments,
        vec![gateway_payment_id(GatewayKind::Przelewy24, &ours)]
    );
    let queued = unmatched(&w.store).await;
    assert_eq!(queued.len(), 1);
    assert!(queued[0].detail.contains(foreign), "{}", queued[0].detail);
    assert!(!queued[0].detail.contains(&ours), "{}", queued[0].detail);
}

#[tokio::test]
async fn an_unknown_batch_is_unresolved_and_goes_to_an_admin() {
    let w = world().await;
    paid_order(&w, "payout-unknown-1", 1_000).await;
    w.p24.settle_batch().unwrap();

    let r = reconcile_one(&w, payout(Gateway::Przelewy24, "41000123", 1_000)).await;
    assert_eq!(
        r.outcome,
        PayoutOutcome::Unresolved {
            reason: UnresolvedReason::UnknownBatch {
                merchants: vec!["taxes".into()]
            }
        }
    );
    assert!(r.settled_payments.is_empty());
    assert!(r.unmatched_queued);
    let queued = unmatched(&w.store).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].reason, UnmatchedReason::PayoutMismatch);
    assert!(
        queued[0].detail.contains("41000123"),
        "{}",
        queued[0].detail
    );
}

#[tokio::test]
async fn a_report_that_cannot_be_fetched_after_the_retries_goes_to_an_admin() {
    let w = world().await;
    paid_order(&w, "payout-down-1", 1_000).await;
    let batch = w.p24.settle_batch().unwrap();
    for _ in 0..3 {
        w.p24.fail_next(
            p24_sim::SimEndpoint::BatchDetails,
            p24_sim::SimFailure::Http500,
        );
    }

    let r = reconcile_one(&w, payout(Gateway::Przelewy24, &batch.to_string(), 1_000)).await;
    assert!(
        matches!(
            &r.outcome,
            PayoutOutcome::Unresolved {
                reason: UnresolvedReason::ReportUnavailable { merchant, .. }
            } if merchant == "taxes"
        ),
        "{r:?}"
    );
    // The client's bounded retries were used up before giving up.
    assert_eq!(w.p24.calls(p24_sim::SimEndpoint::BatchDetails), 3);
    assert!(r.unmatched_queued);
    assert_eq!(unmatched(&w.store).await.len(), 1);

    // A reference that is no batch id is not sent to P24 at all.
    let r = reconcile_one(&w, payout(Gateway::Przelewy24, "AB-12", 1_000)).await;
    assert!(
        matches!(
            r.outcome,
            PayoutOutcome::Unresolved {
                reason: UnresolvedReason::NoBatchId { .. }
            }
        ),
        "{r:?}"
    );
    assert_eq!(w.p24.calls(p24_sim::SimEndpoint::BatchDetails), 3);
}

#[tokio::test]
async fn a_payu_payout_goes_to_an_admin_for_manual_reconciliation() {
    let w = world().await;
    let line = payout(Gateway::PayU, "PU2718AB", 54_550);
    let r = reconcile_one(&w, line.clone()).await;
    assert_eq!(
        r.outcome,
        PayoutOutcome::Unresolved {
            reason: UnresolvedReason::PayuNotSupported
        }
    );
    assert!(r.unmatched_queued);
    let queued = unmatched(&w.store).await;
    assert_eq!(queued.len(), 1);
    let u = &queued[0];
    assert_eq!(u.reason, UnmatchedReason::PayoutMismatch);
    assert_eq!(u.channel, PaymentChannel::Payu);
    assert_eq!(u.payment_id, payout_id(&line));
    assert_eq!(u.external_ref.as_deref(), Some("PU2718AB"));
    assert!(u.detail.contains("by hand"), "{}", u.detail);
}

#[tokio::test]
async fn a_payout_read_from_a_bank_statement_is_reconciled_against_its_batch() {
    let w = world().await;
    let a = paid_order(&w, "payout-mt940-1", 31_400).await;
    let b = paid_order(&w, "payout-mt940-2", 2_600).await;
    let batch = w.p24.settle_batch().unwrap();

    // The bank's statement: a debit, the P24 payout of that batch, and a PayU payout.
    let spec = BankSimSpec {
        statements: 1,
        virtual_credits: 0,
        title_credits: 0,
        gateway_payouts: 0,
        debits: 1,
        fixed_payouts: vec![
            SimPayout {
                statement: 0,
                gateway: SimGateway::Przelewy24,
                reference: batch.to_string(),
                amount_grosze: 34_000,
            },
            SimPayout {
                statement: 0,
                gateway: SimGateway::Payu,
                reference: "PU2718AB".into(),
                amount_grosze: 1_500,
            },
        ],
        ..BankSimSpec::new(77, BankProfile::PkoBp)
    };
    let mut bytes = Vec::new();
    bank_sim::write_statements(&spec, &mut bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wyciag.sta");
    std::fs::write(&path, &bytes).unwrap();
    let options = StatementOptions::from_config(&BankConfig {
        directory: PathBuf::from("bank"),
        layout: "separated".into(),
        charset: "utf-8".into(),
        schedule: "0 */15 * * * *".into(),
    })
    .unwrap();
    let report = import_statement(&path, &teryt(), w.store.as_ref(), &options)
        .await
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.payouts.len(), 2, "{report:?}");
    let p24_line = &report.payouts[0];
    assert_eq!(p24_line.gateway, Gateway::Przelewy24);
    assert_eq!(p24_line.reference, batch.to_string());
    assert!(p24_line.source.starts_with("wyciag.sta:"));

    let results = reconcile_payouts(&w.service, &teryt(), &report.payouts).await;
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].outcome,
        PayoutOutcome::Matched,
        "{:?}",
        results[0]
    );
    assert_eq!(
        sorted(results[0].settled_payments.clone()),
        sorted(vec![
            gateway_payment_id(GatewayKind::Przelewy24, &a),
            gateway_payment_id(GatewayKind::Przelewy24, &b),
        ])
    );
    assert_eq!(
        results[1].outcome,
        PayoutOutcome::Unresolved {
            reason: UnresolvedReason::PayuNotSupported
        }
    );
    // Only the PayU payout waits for an admin, with the statement line as its source.
    let queued = unmatched(&w.store).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].source, report.payouts[1].source);
}
