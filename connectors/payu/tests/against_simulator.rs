//! The connector against the independent PayU simulator.

mod common;

use std::time::Duration;

use common::*;
use gsko_payu::{
    NotificationError, OrderStatus, PayuClient, PayuConfig, PayuError, RefundRequest, RefundStatus,
    RetryPolicy, SignatureAlgorithm, StoredOrder, VerifiedNotification,
};
use gsko_sim::payu::{Endpoint, HttpFault, NotificationFault, SimConfig, SimHash};

fn stored(ext: &str, amount: u64, order_id: &str) -> StoredOrder {
    StoredOrder {
        ext_order_id: ext.into(),
        order_id: Some(order_id.into()),
        total_amount: amount,
        currency: "PLN".into(),
        last_status: None,
    }
}

fn expect_order(r: &Received) -> &gsko_payu::OrderNotification {
    match &r.result {
        Ok(VerifiedNotification::Order(n)) => n,
        other => panic!("expected a verified order notification, got {other:?}"),
    }
}

#[tokio::test]
async fn happy_path_create_pay_notify_complete() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let mut merchant = Merchant::start(client.clone()).await;

    let ext = "TAX-2026-000123";
    let created = client
        .create_order(&order(ext, 12345, Some(merchant.notify_url.clone())))
        .await
        .expect("order created from the 302 body");
    assert!(
        created
            .redirect_uri
            .starts_with(&format!("{}/pay/?orderId=", sim.base_url)),
        "{}",
        created.redirect_uri
    );
    merchant.remember(stored(ext, 12345, &created.order_id));
    let info = client.order(&created.order_id).await.expect("status");
    assert_eq!(info.status, OrderStatus::New);
    assert_eq!(info.total_amount, 12345);
    assert_eq!(info.ext_order_id.as_deref(), Some(ext));

    sim.pay(&created.order_id).await.expect("payer pays");

    let pending = merchant.next().await;
    assert_eq!(expect_order(&pending).status, OrderStatus::Pending);
    assert!(pending
        .signature
        .as_deref()
        .is_some_and(|s| s.contains("algorithm=MD5")));
    let completed = merchant.next().await;
    let n = expect_order(&completed);
    assert_eq!(n.status, OrderStatus::Completed);
    assert_eq!(n.total_amount, 12345);
    assert_eq!(n.ext_order_id, ext);
    assert!(n.payment_id.is_some());
    assert!(
        n.receipt_time().is_some(),
        "{:?}",
        n.local_receipt_date_time
    );
    assert_eq!(n.algorithm, SignatureAlgorithm::Md5);

    assert_eq!(
        client
            .order(&created.order_id)
            .await
            .expect("status")
            .status,
        OrderStatus::Completed
    );
    assert_eq!(
        merchant.stored(ext).and_then(|s| s.last_status),
        Some(OrderStatus::Completed)
    );
    for sent in sim.notifications() {
        assert_eq!(sent.attempts, vec![200], "{}", sent.status);
    }
    assert_eq!(client.token_fetches(), 1, "one token serves every call");
    assert_eq!(sim.token_requests(), 1);
}

/// A client that follows redirects gets the HTML payment page instead of the JSON, which is
/// why the connector must not follow them (spec §2.3). This checks the simulator is faithful.
#[tokio::test]
async fn simulator_answers_302_with_json_body() {
    let sim = start_sim(sim_config()).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let token = reqwest::Client::new()
        .post(format!("{}/pl/standard/user/oauth/authorize", sim.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "300746"),
            ("client_secret", "2ee86a66e5d97e3fadc400c9f19b065d"),
        ])
        .send()
        .await
        .expect("token")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    let bearer = token["access_token"].as_str().expect("token").to_owned();
    let body = serde_json::json!({
        "customerIp": "127.0.0.1", "merchantPosId": "300746", "description": "x",
        "currencyCode": "PLN", "totalAmount": "100", "extOrderId": "R-302",
        "products": [{"name": "x", "unitPrice": "100", "quantity": "1"}]
    });
    let resp = plain
        .post(format!("{}/api/v2_1/orders", sim.base_url))
        .bearer_auth(&bearer)
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status().as_u16(), 302);
    assert!(resp.headers().contains_key("location"));
    let json: serde_json::Value = resp.json().await.expect("json body");
    assert_eq!(json["status"]["statusCode"], "SUCCESS");

    let following = reqwest::Client::new();
    let mut body2 = body.clone();
    body2["extOrderId"] = "R-302-b".into();
    let resp = following
        .post(format!("{}/api/v2_1/orders", sim.base_url))
        .bearer_auth(&bearer)
        .json(&body2)
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.expect("text").contains("<html"));
}

#[tokio::test]
async fn token_is_renewed_before_expiry() {
    let sim = start_sim(SimConfig {
        token_lifetime: Duration::from_secs(1),
        ..sim_config()
    })
    .await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let created = client
        .create_order(&order("TAX-EXP-1", 100, None))
        .await
        .expect("create");
    assert_eq!(client.token_fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.order(&created.order_id).await.expect("status");
    assert_eq!(client.token_fetches(), 2, "renewed proactively");
    assert_eq!(sim.token_requests(), 2, "no 401 round trip was needed");
}

#[tokio::test]
async fn revoked_token_is_renewed_on_401_once_under_concurrency() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let created = client
        .create_order(&order("TAX-401-1", 100, None))
        .await
        .expect("create");
    assert_eq!(client.token_fetches(), 1);
    sim.expire_tokens();
    let calls = (0..8).map(|_| {
        let c = client.clone();
        let id = created.order_id.clone();
        tokio::spawn(async move { c.order(&id).await })
    });
    for call in calls {
        call.await.expect("join").expect("status after renewal");
    }
    assert_eq!(client.token_fetches(), 2, "one refresh for eight callers");
    assert_eq!(sim.token_requests(), 2);
}

#[tokio::test]
async fn concurrent_first_calls_fetch_one_token() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.create_order(&order(&format!("C-{i}"), 100, None)).await })
        })
        .collect();
    for call in calls {
        call.await.expect("join").expect("created");
    }
    assert_eq!(sim.token_requests(), 1);
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_auth_error() {
    let sim = start_sim(sim_config()).await;
    let mut cfg = client_config(&sim);
    cfg.client_secret = "wrong".into();
    let client = PayuClient::new(cfg).expect("client");
    let err = client.order("X").await.expect_err("refused");
    assert!(
        matches!(
            err,
            PayuError::Auth {
                http_status: 401,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(sim.token_requests(), 1, "not retried");
}

#[tokio::test]
async fn refund_is_idempotent_and_notified() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let mut merchant = Merchant::start(client.clone()).await;
    let ext = "TAX-REF-1";
    let created = client
        .create_order(&order(ext, 10000, Some(merchant.notify_url.clone())))
        .await
        .expect("create");
    merchant.remember(stored(ext, 10000, &created.order_id));

    let early = RefundRequest {
        ext_refund_id: "R-1".into(),
        amount: Some(4000),
        description: "Nadpłata".into(),
    };
    let err = client
        .refund(&created.order_id, &early)
        .await
        .expect_err("not paid yet");
    assert!(
        matches!(&err, PayuError::Rejected { status_code, .. } if status_code == "BUSINESS_ERROR"),
        "{err:?}"
    );

    sim.pay(&created.order_id).await.expect("pay");
    merchant.next().await;
    merchant.next().await;

    let refund = client
        .refund(&created.order_id, &early)
        .await
        .expect("refund");
    assert_eq!(refund.status, RefundStatus::Pending);
    assert_eq!(refund.amount, 4000);
    let again = client
        .refund(&created.order_id, &early)
        .await
        .expect("same refund");
    assert_eq!(
        again.refund_id, refund.refund_id,
        "identical request, same refund"
    );

    let too_much = RefundRequest {
        ext_refund_id: "R-2".into(),
        amount: Some(6001),
        description: "Za dużo".into(),
    };
    let err = client
        .refund(&created.order_id, &too_much)
        .await
        .expect_err("exceeds the rest");
    assert!(matches!(err, PayuError::Rejected { .. }), "{err:?}");
    assert!(!err.is_transient());

    sim.finalize_refund(&refund.refund_id)
        .await
        .expect("finalize");
    let note = merchant.next().await;
    match note.result {
        Ok(VerifiedNotification::Refund(r)) => {
            assert_eq!(r.refund_id, refund.refund_id);
            assert_eq!(r.amount, 4000);
            assert_eq!(r.status, RefundStatus::Finalized);
            assert_eq!(r.ext_refund_id.as_deref(), Some("R-1"));
        }
        other => panic!("expected a refund notification, got {other:?}"),
    }

    sim.inject(Endpoint::Refund, HttpFault::Status(503), 1);
    let rest = RefundRequest {
        ext_refund_id: "R-3".into(),
        amount: None,
        description: "Reszta".into(),
    };
    let r = client
        .refund(&created.order_id, &rest)
        .await
        .expect("retried after 503");
    assert_eq!(r.amount, 6000, "amount omitted refunds the rest");
}

/// Every kind of bad notification is refused with its own error, and the genuine flow still
/// verifies afterwards. The POS signs with SHA-256 and GSKO requires at least SHA-256.
#[tokio::test]
async fn bad_notifications_are_rejected_specifically() {
    let sim = start_sim(SimConfig {
        hash: SimHash::Sha256,
        ..sim_config()
    })
    .await;
    let client = PayuClient::new(PayuConfig {
        minimum_signature_algorithm: SignatureAlgorithm::Sha256,
        ..client_config(&sim)
    })
    .expect("client");
    let mut merchant = Merchant::start(client.clone()).await;
    let ext = "TAX-BAD-1";
    let created = client
        .create_order(&order(ext, 12345, Some(merchant.notify_url.clone())))
        .await
        .expect("create");
    merchant.remember(stored(ext, 12345, &created.order_id));
    let id = created.order_id.as_str();

    type Check = fn(&NotificationError) -> bool;
    let cases: Vec<(NotificationFault, Check)> = vec![
        (NotificationFault::WrongSignature, |e| {
            *e == NotificationError::BadSignature
        }),
        (NotificationFault::TamperedAfterSigning(1), |e| {
            *e == NotificationError::BadSignature
        }),
        (NotificationFault::AmountChanged(12344), |e| {
            *e == NotificationError::AmountMismatch {
                expected: 12345,
                received: 12344,
            }
        }),
        (NotificationFault::UnknownOrder, |e| {
            matches!(e, NotificationError::UnknownOrder { .. })
        }),
        (NotificationFault::SignedWith(SimHash::Md5), |e| {
            *e == NotificationError::DowngradedAlgorithm {
                received: SignatureAlgorithm::Md5,
                minimum: SignatureAlgorithm::Sha256,
            }
        }),
        (NotificationFault::AlgorithmName("CRC32".into()), |e| {
            *e == NotificationError::UnknownAlgorithm("CRC32".into())
        }),
    ];
    for (fault, check) in cases {
        let answered = sim
            .send_notification(id, fault.clone())
            .await
            .expect("sent");
        let got = merchant.next().await;
        let err = got.result.as_ref().expect_err("refused");
        assert!(check(err), "{fault:?} gave {err:?}");
        assert!(!err.acknowledge());
        assert_eq!(answered, 400, "{fault:?}");
    }
    // A stronger algorithm than the minimum is fine.
    sim.send_notification(id, NotificationFault::SignedWith(SimHash::Sha512))
        .await
        .expect("sent");
    let got = merchant.next().await;
    assert_eq!(expect_order(&got).algorithm, SignatureAlgorithm::Sha512);

    // The genuine lifecycle still verifies after all that.
    sim.pay(id).await.expect("pay");
    assert_eq!(
        expect_order(&merchant.next().await).status,
        OrderStatus::Pending
    );
    let done = merchant.next().await;
    assert_eq!(expect_order(&done).status, OrderStatus::Completed);
    assert_eq!(expect_order(&done).algorithm, SignatureAlgorithm::Sha256);

    // Replays of earlier genuine notifications: refused as replays but acknowledged.
    let sent = sim.notifications();
    let pending_idx = sent
        .iter()
        .find(|n| n.status == "PENDING")
        .expect("pending sent")
        .index;
    let completed_idx = sent
        .iter()
        .rev()
        .find(|n| n.status == "COMPLETED")
        .expect("completed sent")
        .index;
    for idx in [pending_idx, completed_idx] {
        let answered = sim.replay(idx).await.expect("replayed");
        let got = merchant.next().await;
        assert!(
            matches!(
                got.result,
                Err(NotificationError::Replayed {
                    stored: OrderStatus::Completed,
                    ..
                })
            ),
            "{:?}",
            got.result
        );
        assert_eq!(answered, 200, "PayU must get 200 so it stops resending");
    }
    assert_eq!(
        merchant.stored(ext).and_then(|s| s.last_status),
        Some(OrderStatus::Completed)
    );
}

#[tokio::test]
async fn notification_for_another_stored_order_is_refused() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let mut merchant = Merchant::start(client.clone()).await;
    let a = client
        .create_order(&order("TAX-A", 500, Some(merchant.notify_url.clone())))
        .await
        .expect("a");
    merchant.remember(stored("TAX-A", 500, &a.order_id));
    sim.send_notification(&a.order_id, NotificationFault::None)
        .await
        .expect("sent");
    let got = merchant.next().await;
    // Check it directly against a different stored order.
    let other = StoredOrder {
        ext_order_id: "TAX-B".into(),
        ..stored("TAX-B", 500, "OTHERORDER")
    };
    let sig = got.signature.clone().expect("signed");
    assert!(matches!(
        client.verify_notification(&got.body, &sig, &other),
        Err(NotificationError::UnknownOrder { .. })
    ));
    let same_ext_other_id = stored("TAX-A", 500, "OTHERORDER");
    assert!(matches!(
        client.verify_notification(&got.body, &sig, &same_ext_other_id),
        Err(NotificationError::OrderIdMismatch { .. })
    ));
    let other_currency = StoredOrder {
        currency: "EUR".into(),
        ..stored("TAX-A", 500, &a.order_id)
    };
    assert!(matches!(
        client.verify_notification(&got.body, &sig, &other_currency),
        Err(NotificationError::CurrencyMismatch { .. })
    ));
    assert!(client
        .verify_notification(&got.body, &sig, &stored("TAX-A", 500, &a.order_id))
        .is_ok());
}

#[tokio::test]
async fn renotifies_until_answered_200() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let mut merchant = Merchant::start(client.clone()).await;
    let created = client
        .create_order(&order("TAX-RN-1", 700, Some(merchant.notify_url.clone())))
        .await
        .expect("create");
    merchant.remember(stored("TAX-RN-1", 700, &created.order_id));
    merchant.forced.lock().expect("forced").extend([500, 503]);
    sim.pay(&created.order_id).await.expect("pay");
    // First attempts: PENDING gets 500, COMPLETED 503. Each is resent after one "minute";
    // the COMPLETED resend may overtake the PENDING one, as in real life.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(merchant.next().await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = sim.notifications();
    let attempts = |status: &str| {
        sent.iter()
            .find(|n| n.status == status)
            .map(|n| n.attempts.clone())
            .expect("sent")
    };
    assert_eq!(attempts("PENDING"), vec![500, 200]);
    assert_eq!(attempts("COMPLETED"), vec![503, 200]);
    assert_eq!(
        merchant.stored("TAX-RN-1").and_then(|s| s.last_status),
        Some(OrderStatus::Completed)
    );
    assert!(seen.iter().all(|r| r.answered != 200
        || r.result.is_ok()
        || matches!(r.result, Err(NotificationError::Replayed { .. }))));
}

#[tokio::test]
async fn server_errors_are_retried_without_duplicate_orders() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");

    sim.inject(Endpoint::CreateOrder, HttpFault::Status(500), 1);
    client
        .create_order(&order("TAX-500-1", 100, None))
        .await
        .expect("second attempt succeeds");
    assert_eq!(sim.create_attempts("TAX-500-1"), 2);
    assert_eq!(sim.orders_with_ext_id("TAX-500-1"), 1);

    sim.inject(Endpoint::CreateOrder, HttpFault::Status(500), 3);
    let err = client
        .create_order(&order("TAX-500-2", 100, None))
        .await
        .expect_err("attempts exhausted");
    assert!(
        matches!(
            err,
            PayuError::Server {
                http_status: 500,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(sim.create_attempts("TAX-500-2"), 3);
    assert_eq!(sim.orders_with_ext_id("TAX-500-2"), 0);

    sim.inject(Endpoint::GetOrder, HttpFault::Status(503), 3);
    let err = client.order("WHATEVER").await.expect_err("exhausted");
    assert!(err.is_transient(), "{err:?}");

    sim.inject(Endpoint::Token, HttpFault::Status(502), 1);
    sim.expire_tokens();
    let fresh = PayuClient::new(client_config(&sim)).expect("client");
    fresh
        .create_order(&order("TAX-500-3", 100, None))
        .await
        .expect("token fetch retried");
}

#[tokio::test]
async fn timeout_is_transient_and_never_duplicates_the_order() {
    let sim = start_sim(sim_config()).await;
    let mut cfg = client_config(&sim);
    cfg.timeout = Duration::from_millis(300);
    cfg.retry = RetryPolicy::NONE;
    let once = PayuClient::new(cfg.clone()).expect("client");
    once.order("warm-up").await.expect_err("warms the token");

    // Without retries: the order is created but the answer is lost.
    sim.inject(
        Endpoint::CreateOrder,
        HttpFault::DelayAfterProcessing(Duration::from_secs(1)),
        1,
    );
    let err = once
        .create_order(&order("TAX-TO-1", 100, None))
        .await
        .expect_err("times out");
    assert!(matches!(err, PayuError::Timeout), "{err:?}");
    assert!(err.is_transient());
    // The bus retries the command: PayU refuses the duplicate.
    let err = once
        .create_order(&order("TAX-TO-1", 100, None))
        .await
        .expect_err("not unique");
    assert!(
        matches!(err, PayuError::OrderNotUnique { after_retry: false }),
        "{err:?}"
    );
    assert_eq!(sim.orders_with_ext_id("TAX-TO-1"), 1);

    // With retries inside the connector.
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    };
    let retrying = PayuClient::new(cfg).expect("client");
    sim.inject(
        Endpoint::CreateOrder,
        HttpFault::DelayAfterProcessing(Duration::from_secs(1)),
        1,
    );
    let err = retrying
        .create_order(&order("TAX-TO-2", 100, None))
        .await
        .expect_err("outcome of the first attempt is known only to PayU");
    assert!(
        matches!(err, PayuError::OrderNotUnique { after_retry: true }),
        "{err:?}"
    );
    assert_eq!(sim.create_attempts("TAX-TO-2"), 2);
    assert_eq!(sim.orders_with_ext_id("TAX-TO-2"), 1);
}

#[tokio::test]
async fn invalid_orders_fail_locally() {
    let sim = start_sim(sim_config()).await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let mut o = order("TAX-INV", 0, None);
    assert!(matches!(
        client.create_order(&o).await,
        Err(PayuError::InvalidInput(_))
    ));
    o.total_amount = 100;
    o.currency = "zł".into();
    assert!(matches!(
        client.create_order(&o).await,
        Err(PayuError::InvalidInput(_))
    ));
    o.currency = "PLN".into();
    o.products.clear();
    assert!(matches!(
        client.create_order(&o).await,
        Err(PayuError::InvalidInput(_))
    ));
    assert_eq!(sim.token_requests(), 0, "nothing was sent");
    let err = client.order("NOSUCHORDER").await.expect_err("unknown");
    assert!(matches!(err, PayuError::NotFound), "{err:?}");
}

#[tokio::test]
async fn capture_and_cancel() {
    let sim = start_sim(SimConfig {
        auto_receive: false,
        ..sim_config()
    })
    .await;
    let client = PayuClient::new(client_config(&sim)).expect("client");
    let mut merchant = Merchant::start(client.clone()).await;

    let paid = client
        .create_order(&order("TAX-CAP-1", 900, Some(merchant.notify_url.clone())))
        .await
        .expect("create");
    merchant.remember(stored("TAX-CAP-1", 900, &paid.order_id));
    sim.pay(&paid.order_id).await.expect("pay");
    assert_eq!(
        expect_order(&merchant.next().await).status,
        OrderStatus::Pending
    );
    assert_eq!(
        expect_order(&merchant.next().await).status,
        OrderStatus::WaitingForConfirmation
    );
    client.capture(&paid.order_id).await.expect("capture");
    assert_eq!(
        expect_order(&merchant.next().await).status,
        OrderStatus::Completed
    );
    let err = client
        .capture(&paid.order_id)
        .await
        .expect_err("already captured");
    assert!(matches!(err, PayuError::Rejected { .. }), "{err:?}");

    let unpaid = client
        .create_order(&order("TAX-CAN-1", 900, Some(merchant.notify_url.clone())))
        .await
        .expect("create");
    merchant.remember(stored("TAX-CAN-1", 900, &unpaid.order_id));
    client.cancel(&unpaid.order_id).await.expect("cancel");
    assert_eq!(
        expect_order(&merchant.next().await).status,
        OrderStatus::Canceled
    );
    assert_eq!(
        client.order(&unpaid.order_id).await.expect("status").status,
        OrderStatus::Canceled
    );
}
