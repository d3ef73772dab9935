//! The connector against `gsko_sim::przelewy24`, an independent implementation of P24.

mod common;

use std::time::Duration;

use common::*;
use gsko_przelewy24::{
    NotificationError, P24Client, P24Error, RefundItem, RefundRequest, RegisterOrder,
    TransactionStatus,
};
use gsko_sim::przelewy24::{NotificationFault, SimEndpoint, SimFailure, SimTxState};

fn order(merchant: &Merchant, session_id: &str, amount: i64) -> RegisterOrder {
    let mut order = RegisterOrder::new(
        session_id,
        amount,
        "Podatek od nieruchomości, rata 1/2026 — Łódź",
        "jan.kowalski@example.pl",
        "https://gsko.example/platnosc/powrot",
    );
    order.url_status = Some(merchant.status_url.clone());
    order.client = Some("Jan Kowalski".into());
    order
}

/// Stores, registers and pays (through the payer page); returns the token.
async fn register_and_pay(merchant: &Merchant, session_id: &str, amount: i64) -> String {
    merchant.store(session_id, amount);
    let registered = merchant
        .client
        .register(&order(merchant, session_id, amount))
        .await
        .expect("register");
    // The payer opens the payment page; the simulator's page pays at once.
    let page = reqwest::get(&registered.redirect_url).await.unwrap();
    assert!(page.status().is_success());
    registered.token
}

async fn expect_verified(merchant: &mut Merchant, session_id: &str) -> i64 {
    match merchant.next_outcome().await {
        common::Outcome::Verified {
            session_id: s,
            order_id,
        } => {
            assert_eq!(s, session_id);
            order_id
        }
        other => panic!("expected verification, got {other:?}"),
    }
}

async fn expect_rejected(merchant: &mut Merchant) -> NotificationError {
    match merchant.next_outcome().await {
        common::Outcome::Rejected(e) => e,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn happy_path_register_pay_notify_verify() {
    let (sim, mut merchant) = setup().await;
    merchant.client.test_access().await.expect("testAccess");

    let session = "PN/2026/000123";
    let token = register_and_pay(&merchant, session, 12_345).await;
    assert!(token.len() >= 16);
    let order_id = expect_verified(&mut merchant, session).await;

    let info = merchant
        .client
        .transaction_by_session_id(session)
        .await
        .unwrap()
        .expect("transaction exists");
    assert_eq!(info.status, TransactionStatus::PaymentMade);
    assert_eq!(info.order_id, order_id);
    assert_eq!(info.amount, 12_345);
    assert!(info.date_of_transaction.is_some());

    // Verified: P24 stops notifying. Wait past two retry gaps and count.
    tokio::time::sleep(sim.notification_schedule()[0] * 3).await;
    let tx = &sim.transactions_for_session(session)[0];
    assert_eq!(tx.state, SimTxState::Verified);
    assert_eq!(tx.notification_attempts, 1);
    assert!(sim.rejections().is_empty(), "{:?}", sim.rejections());
}

#[tokio::test]
async fn unknown_session_id_is_none() {
    let (_sim, merchant) = setup().await;
    assert!(merchant
        .client
        .transaction_by_session_id("nie-ma/takiej")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn refund_partial_then_full() {
    let (_sim, mut merchant) = setup().await;
    let session = "PN/2026/000200";
    register_and_pay(&merchant, session, 10_000).await;
    let order_id = expect_verified(&mut merchant, session).await;

    let request = |request_id: &str, amount: i64| RefundRequest {
        request_id: request_id.into(),
        refunds_uuid: format!("U-{request_id}"),
        url_status: Some(merchant.refund_url.clone()),
        refunds: vec![RefundItem {
            order_id,
            session_id: session.into(),
            amount,
            description: Some("Zwrot nadpłaty".into()),
        }],
    };
    let items = merchant
        .client
        .refund(&request("R-1", 4_000))
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].status);
    let info = merchant
        .client
        .transaction_by_session_id(session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.status, TransactionStatus::PaymentMade);

    // The same request again (a caller that lost the answer) is recognised, not repeated.
    assert!(matches!(
        merchant.client.refund(&request("R-1", 4_000)).await,
        Err(P24Error::RefundRequestAlreadyExists)
    ));
    // More than what is left: refused item by item, permanent.
    match merchant.client.refund(&request("R-2", 7_000)).await {
        Err(e @ P24Error::RefundRejected { .. }) => {
            assert!(!e.is_transient());
            let P24Error::RefundRejected { items } = e else {
                unreachable!()
            };
            assert!(items[0].message.contains("exceeds"));
        }
        other => panic!("expected RefundRejected, got {other:?}"),
    }
    merchant
        .client
        .refund(&request("R-3", 6_000))
        .await
        .unwrap();
    let info = merchant
        .client
        .transaction_by_session_id(session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.status, TransactionStatus::Returned);

    // P24 confirms each accepted refund on the refund's urlStatus, signed.
    let mut confirmed = Vec::new();
    for _ in 0..2 {
        match merchant.next_outcome().await {
            common::Outcome::Refund(n) => {
                assert!(n.completed);
                assert_eq!(n.order_id, order_id);
                confirmed.push((n.request_id, n.amount));
            }
            other => panic!("expected a refund notification, got {other:?}"),
        }
    }
    confirmed.sort();
    assert_eq!(
        confirmed,
        [("R-1".to_string(), 4_000), ("R-3".to_string(), 6_000)]
    );
}

#[tokio::test]
async fn wrong_signature_rejected_then_genuine_verifies() {
    let (sim, mut merchant) = setup().await;
    sim.inject_notification_fault(NotificationFault::WrongSign);
    let session = "PN/2026/000301";
    register_and_pay(&merchant, session, 5_000).await;
    assert_eq!(
        expect_rejected(&mut merchant).await,
        NotificationError::BadSign
    );
    // The scheduled retry carries the genuine notification.
    expect_verified(&mut merchant, session).await;
}

#[tokio::test]
async fn amount_differing_from_order_rejected_then_genuine_verifies() {
    let (sim, mut merchant) = setup().await;
    sim.inject_notification_fault(NotificationFault::DifferentAmount(4_999));
    let session = "PN/2026/000302";
    register_and_pay(&merchant, session, 5_000).await;
    assert_eq!(
        expect_rejected(&mut merchant).await,
        NotificationError::AmountMismatch { field: "amount" }
    );
    expect_verified(&mut merchant, session).await;
}

#[tokio::test]
async fn unknown_session_rejected_then_genuine_verifies() {
    let (sim, mut merchant) = setup().await;
    sim.inject_notification_fault(NotificationFault::UnknownSession);
    let session = "PN/2026/000303";
    register_and_pay(&merchant, session, 5_000).await;
    assert_eq!(
        expect_rejected(&mut merchant).await,
        NotificationError::UnknownSession
    );
    expect_verified(&mut merchant, session).await;
}

#[tokio::test]
async fn replayed_notification_rejected_and_later_payment_verifies() {
    let (sim, mut merchant) = setup().await;
    // A duplicate delivery right after the first one.
    sim.inject_notification_fault(NotificationFault::Duplicate);
    let session = "PN/2026/000304";
    register_and_pay(&merchant, session, 7_700).await;
    let order_id = expect_verified(&mut merchant, session).await;
    assert_eq!(
        expect_rejected(&mut merchant).await,
        NotificationError::Replayed { order_id }
    );
    // A captured notification POSTed again later: still a replay, acknowledged (200).
    let status = sim.replay_last_notification(session).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        expect_rejected(&mut merchant).await,
        NotificationError::Replayed { order_id }
    );
    // A genuine notification afterwards (next payment) still verifies.
    let next = "PN/2026/000305";
    register_and_pay(&merchant, next, 100).await;
    expect_verified(&mut merchant, next).await;
    assert_eq!(
        sim.transactions_for_session(session)[0].state,
        SimTxState::Verified
    );
}

#[tokio::test]
async fn register_500_is_transient_and_retry_creates_one_order() {
    let (sim, merchant) = setup().await;
    let session = "PN/2026/000401";
    merchant.store(session, 1_000);
    sim.fail_next(SimEndpoint::Register, SimFailure::Http500);
    let err = merchant
        .client
        .register(&order(&merchant, session, 1_000))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(matches!(err, P24Error::Server { status: 500, .. }));
    // Not retried blindly by the client.
    assert_eq!(sim.calls(SimEndpoint::Register), 1);
    assert!(sim.transactions_for_session(session).is_empty());
    // The caller retries: nothing was created, so this registers.
    merchant
        .client
        .register(&order(&merchant, session, 1_000))
        .await
        .unwrap();
    assert_eq!(sim.transactions_for_session(session).len(), 1);
}

#[tokio::test]
async fn register_500_after_processing_no_duplicate_on_retry() {
    let (sim, merchant) = setup().await;
    let session = "PN/2026/000402";
    sim.fail_next(SimEndpoint::Register, SimFailure::Http500AfterProcessing);
    let err = merchant
        .client
        .register(&order(&merchant, session, 1_000))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(sim.transactions_for_session(session).len(), 1);
    let retry = merchant
        .client
        .register(&order(&merchant, session, 1_000))
        .await
        .unwrap_err();
    assert!(
        matches!(retry, P24Error::SessionAlreadyRegistered { status: 0, .. }),
        "{retry:?}"
    );
    assert!(!retry.is_transient());
    assert_eq!(sim.transactions_for_session(session).len(), 1);
    assert_eq!(sim.calls(SimEndpoint::Register), 1);
}

#[tokio::test]
async fn register_timeout_is_transient_and_no_duplicate_on_retry() {
    let sim = start_sim(TIME_SCALE).await;
    let mut config = config_for(&sim.base_url);
    config.timeout = Duration::from_millis(300);
    let client = P24Client::new(config).unwrap();
    let merchant = start_merchant(client, true).await;
    let session = "PN/2026/000403";
    sim.fail_next(
        SimEndpoint::Register,
        SimFailure::SlowResponse(Duration::from_millis(1_500)),
    );
    let err = merchant
        .client
        .register(&order(&merchant, session, 1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, P24Error::Timeout(_)), "{err:?}");
    assert!(err.is_transient());
    let retry = merchant
        .client
        .register(&order(&merchant, session, 1_000))
        .await
        .unwrap_err();
    assert!(matches!(retry, P24Error::SessionAlreadyRegistered { .. }));
    assert_eq!(sim.transactions_for_session(session).len(), 1);
    assert_eq!(sim.calls(SimEndpoint::Register), 1);
}

#[tokio::test]
async fn verify_and_lookup_are_retried_on_500() {
    // Retry gap 1.8 s: the verify retries finish long before P24 would notify again.
    let (sim, mut merchant) = setup_with(0.01).await;
    sim.fail_next(SimEndpoint::Verify, SimFailure::Http500AfterProcessing);
    sim.fail_next(SimEndpoint::Verify, SimFailure::Http500);
    let session = "PN/2026/000501";
    register_and_pay(&merchant, session, 2_500).await;
    // Verified within one notification: the client repeated the (idempotent) verify.
    expect_verified(&mut merchant, session).await;
    assert_eq!(sim.calls(SimEndpoint::Verify), 3);

    sim.fail_next(SimEndpoint::BySessionId, SimFailure::Http500);
    let info = merchant
        .client
        .transaction_by_session_id(session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.status, TransactionStatus::PaymentMade);
}

#[tokio::test]
async fn wrong_api_key_is_permanent() {
    let sim = start_sim(TIME_SCALE).await;
    let mut config = config_for(&sim.base_url);
    config.api_key = "zly-klucz".into();
    let client = P24Client::new(config).unwrap();
    let err = client.test_access().await.unwrap_err();
    assert!(matches!(err, P24Error::Unauthorized(_)));
    assert!(!err.is_transient());
    assert_eq!(sim.calls(SimEndpoint::TestAccess), 1);
}

#[tokio::test]
async fn wrong_crc_register_is_rejected_as_invalid_input() {
    let sim = start_sim(TIME_SCALE).await;
    let mut config = config_for(&sim.base_url);
    config.crc = "inny-crc".into();
    let client = P24Client::new(config).unwrap();
    let merchant = start_merchant(client, true).await;
    let err = merchant
        .client
        .register(&order(&merchant, "PN/2026/000601", 100))
        .await
        .unwrap_err();
    assert!(matches!(err, P24Error::InvalidInput { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(
        sim.rejections(),
        vec!["register: sign mismatch".to_string()]
    );
}

#[tokio::test]
async fn unreachable_p24_is_transient() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = P24Client::new(config_for(&format!("http://{addr}"))).unwrap();
    let err = client.test_access().await.unwrap_err();
    assert!(matches!(err, P24Error::Connect(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn unverified_payment_stays_advance_payment() {
    // Real schedule 3+5+15+30+60+150+450 min, scaled to about 0.4 s.
    let sim = start_sim(0.000_006).await;
    let client = P24Client::new(config_for(&sim.base_url)).unwrap();
    let merchant = start_merchant(client, false).await;
    let session = "PN/2026/000701";
    merchant.store(session, 3_000);
    let registered = merchant
        .client
        .register(&order(&merchant, session, 3_000))
        .await
        .unwrap();
    sim.pay(&registered.token).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sim.transactions_for_session(session)[0].notifications_exhausted {
        assert!(
            tokio::time::Instant::now() < deadline,
            "schedule not finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tx = &sim.transactions_for_session(session)[0];
    // First attempt + 7 retries.
    assert_eq!(tx.notification_attempts, 8);
    assert_eq!(tx.state, SimTxState::Notified);
    let info = merchant
        .client
        .transaction_by_session_id(session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.status, TransactionStatus::AdvancePayment);
}

#[tokio::test]
async fn batch_report_lists_verified_payments() {
    let (sim, mut merchant) = setup().await;
    register_and_pay(&merchant, "PN/2026/000801", 1_100).await;
    expect_verified(&mut merchant, "PN/2026/000801").await;
    register_and_pay(&merchant, "PN/2026/000802", 2_200).await;
    expect_verified(&mut merchant, "PN/2026/000802").await;
    let batch_id = sim.settle_batch().expect("a batch");
    let info = merchant
        .client
        .transaction_by_session_id("PN/2026/000802")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.batch_id, Some(batch_id));
    let report = merchant.client.batch_details(batch_id).await.unwrap();
    assert_eq!(report.overall.batch_id, Some(batch_id));
    let mut sessions: Vec<_> = report
        .transactions
        .iter()
        .filter_map(|t| t.session_id.clone())
        .collect();
    sessions.sort();
    assert_eq!(sessions, ["PN/2026/000801", "PN/2026/000802"]);
    assert_eq!(report.net_settled(), Some(3_300));
}
