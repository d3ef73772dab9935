//! The payment service against the gateway simulators (which share no protocol code with the
//! connectors), on loopback, with the embedded store: baskets into orders, idempotency,
//! gateways that fail, and every kind of bad notification — refused or ignored as the gateway
//! expects, audited, nothing settled, and a genuine notification afterwards still works.
//!
//! `cargo test -p gsko-payments --test gateways`

use gsko_model::{Amount, EventData, LevyKind, Pesel, Teryt};
use gsko_payments::{
    BasketLine, BasketRequest, GatewayKind, InitiateError, Merchant, PaymentService, TenantPayments,
};
use gsko_payu::{PayuClient, PayuConfig};
use gsko_przelewy24::{P24Client, P24Config};
use gsko_sim::payu::{self as payu_sim, PayuSim, PayuSimHandle};
use gsko_sim::przelewy24::{self as p24_sim, P24Sim, P24SimHandle};
use gsko_store::{NotificationOutcome, OrderStatus, PaymentStore, SqliteStore};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TENANT: &str = "0201011";
const JAN: &str = "78031501236";

struct World {
    store: Arc<SqliteStore>,
    service: Arc<PaymentService>,
    p24: P24SimHandle,
    payu: PayuSimHandle,
}

fn teryt() -> Teryt {
    Teryt::from_str(TENANT).unwrap()
}

async fn world() -> World {
    let mut p24_cfg = p24_sim::SimConfig::new(51_001, 51_001, "api-key", "crc-key");
    // The retry schedule of unanswered notifications, scaled (3 min → 18 ms).
    p24_cfg.time_scale = 0.0001;
    let p24 = P24Sim::start(p24_cfg).await.unwrap();
    let mut payu_cfg = payu_sim::SimConfig::new("61001", "61001", "payu-secret", "second-key");
    payu_cfg.minute = Duration::from_millis(20);
    let payu = PayuSim::start(payu_cfg).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::new(SqliteStore::open(":memory:").await.unwrap());

    let p24_client = |url: &str| {
        let mut c = P24Config::new(url, 51_001, "api-key", "crc-key");
        c.timeout = Duration::from_secs(2);
        P24Client::new(c).unwrap()
    };
    let payu_client = |url: &str| {
        let mut c = PayuConfig::new(url, "61001", "61001", "payu-secret", "second-key");
        c.timeout = Duration::from_secs(2);
        PayuClient::new(c).unwrap()
    };
    let merchants = BTreeMap::from([
        (
            "taxes".to_owned(),
            Merchant {
                name: "taxes".into(),
                levies: vec![LevyKind::Property, LevyKind::Agricultural],
                przelewy24: Some(p24_client(&p24.base_url)),
                payu: Some(payu_client(&payu.base_url)),
            },
        ),
        (
            "waste".to_owned(),
            Merchant {
                name: "waste".into(),
                levies: vec![LevyKind::WasteFee],
                przelewy24: None,
                payu: Some(payu_client(&payu.base_url)),
            },
        ),
    ]);
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
        payu,
    }
}

fn line(levy: LevyKind, liability: &str, seq: u8, grosze: i64) -> BasketLine {
    BasketLine {
        account_id: format!("A-{liability}"),
        levy,
        liability_id: liability.into(),
        installment_seq: Some(seq),
        amount: Amount::from_grosze(grosze).unwrap(),
        label: format!("{} rata {seq}", levy.as_str()),
    }
}

fn request(key: &str, gateway: Option<GatewayKind>, lines: Vec<BasketLine>) -> BasketRequest {
    BasketRequest {
        tenant: teryt(),
        client: "portal".into(),
        idempotency_key: key.into(),
        pesel: Pesel::from_str(JAN).unwrap(),
        requested: lines
            .iter()
            .map(|l| (l.liability_id.clone(), l.installment_seq))
            .collect(),
        lines,
        gateway,
        return_url: None,
        email: Some("jan@example.pl".into()),
        customer_ip: Some("192.0.2.1".into()),
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

/// Settlement messages waiting in the outbox, as (type, payment id).
async fn outbox(store: &SqliteStore) -> Vec<(String, String)> {
    store
        .outbox_pending(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            let id = match &m.event.data {
                EventData::PaymentSettled(p) | EventData::PaymentBook(p) => p.payment_id.clone(),
                EventData::PaymentUnmatched(u) => u.payment_id.clone(),
                other => format!("{other:?}"),
            };
            (m.event.message_type().type_name().to_owned(), id)
        })
        .collect()
}

async fn audit(store: &SqliteStore) -> Vec<(String, NotificationOutcome, String)> {
    let mut rows: Vec<_> = store
        .notifications(&teryt(), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.gateway, n.outcome, n.reason))
        .collect();
    rows.reverse();
    rows
}

fn token(redirect: &str) -> &str {
    redirect.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn one_basket_becomes_one_order_per_merchant_account_and_a_retry_creates_none() {
    let w = world().await;
    let lines = vec![
        line(LevyKind::Property, "L-PROP-1", 2, 25_075),
        line(LevyKind::WasteFee, "L-ODP-1", 11, 4_400),
        line(LevyKind::Property, "L-PROP-1", 3, 25_075),
    ];
    let first = w
        .service
        .initiate(request(
            "key-split-0001",
            Some(GatewayKind::Payu),
            lines.clone(),
        ))
        .await
        .unwrap();
    assert!(first.created && first.ready, "{first:?}");
    let mut merchants: Vec<(&str, i64)> = first
        .orders
        .iter()
        .map(|o| (o.merchant.as_str(), o.amount.grosze()))
        .collect();
    merchants.sort();
    assert_eq!(merchants, vec![("taxes", 50_150), ("waste", 4_400)]);
    assert_eq!(first.total.grosze(), 54_550);
    for o in &first.orders {
        assert_eq!(o.status, OrderStatus::Registered);
        assert!(o
            .redirect_url
            .as_deref()
            .unwrap()
            .starts_with(&w.payu.base_url));
        assert_eq!(w.payu.orders_with_ext_id(&o.order_id), 1);
    }
    let again = w
        .service
        .initiate(request(
            "key-split-0001",
            Some(GatewayKind::Payu),
            lines.clone(),
        ))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.basket_id, first.basket_id);
    for o in &first.orders {
        assert_eq!(
            w.payu.create_attempts(&o.order_id),
            1,
            "a retry must not call PayU again"
        );
    }
    // The same key for another basket is refused; another tenant's gateway is not offered.
    let other = w
        .service
        .initiate(request(
            "key-split-0001",
            Some(GatewayKind::Payu),
            vec![line(LevyKind::Property, "L-PROP-1", 4, 25_075)],
        ))
        .await;
    assert!(
        matches!(other, Err(InitiateError::KeyReused { .. })),
        "{other:?}"
    );
    let waste_by_p24 = w
        .service
        .initiate(request(
            "key-split-0002",
            Some(GatewayKind::Przelewy24),
            vec![line(LevyKind::WasteFee, "L-ODP-1", 12, 4_400)],
        ))
        .await;
    assert!(
        matches!(waste_by_p24, Err(InitiateError::GatewayNotOffered { .. })),
        "{waste_by_p24:?}"
    );
    let dog = w
        .service
        .initiate(request(
            "key-split-0003",
            None,
            vec![line(LevyKind::DogFee, "L-DOG-1", 1, 5_000)],
        ))
        .await;
    assert!(
        matches!(dog, Err(InitiateError::NoMerchant { .. })),
        "{dog:?}"
    );
    // The basket is shown only to the resident who made it.
    let stranger = Pesel::from_str("81072204569").unwrap();
    assert!(w
        .service
        .basket(&teryt(), &first.basket_id, &stranger)
        .await
        .unwrap()
        .is_none());
    assert!(w
        .service
        .basket(&teryt(), &first.basket_id, &Pesel::from_str(JAN).unwrap())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn an_unreachable_gateway_leaves_the_order_pending_and_the_retry_registers_it_once() {
    let w = world().await;
    let lines = vec![line(LevyKind::Property, "L-PROP-1", 2, 25_075)];
    w.p24
        .fail_next(p24_sim::SimEndpoint::Register, p24_sim::SimFailure::Http500);
    let failed = w
        .service
        .initiate(request(
            "key-down-0001",
            Some(GatewayKind::Przelewy24),
            lines.clone(),
        ))
        .await
        .unwrap();
    assert!(!failed.ready, "{failed:?}");
    let order = &failed.orders[0];
    assert_eq!(order.status, OrderStatus::Created);
    assert!(order.redirect_url.is_none());
    assert!(
        order.detail.as_deref().unwrap().contains("Przelewy24"),
        "{order:?}"
    );
    assert!(w.p24.transactions_for_session(&order.order_id).is_empty());
    let retried = w
        .service
        .initiate(request(
            "key-down-0001",
            Some(GatewayKind::Przelewy24),
            lines.clone(),
        ))
        .await
        .unwrap();
    assert!(retried.ready && !retried.created, "{retried:?}");
    assert_eq!(retried.orders[0].order_id, order.order_id);
    assert_eq!(w.p24.transactions_for_session(&order.order_id).len(), 1);

    // The gateway takes the order but its answer is lost: the retry does not register a
    // second transaction for the session; the order is closed and the resident told to start
    // again.
    w.p24.fail_next(
        p24_sim::SimEndpoint::Register,
        p24_sim::SimFailure::Http500AfterProcessing,
    );
    let lost = w
        .service
        .initiate(request(
            "key-down-0002",
            Some(GatewayKind::Przelewy24),
            lines.clone(),
        ))
        .await
        .unwrap();
    let session = lost.orders[0].order_id.clone();
    assert_eq!(lost.orders[0].status, OrderStatus::Created, "{lost:?}");
    let again = w
        .service
        .initiate(request(
            "key-down-0002",
            Some(GatewayKind::Przelewy24),
            lines,
        ))
        .await
        .unwrap();
    assert_eq!(again.orders[0].status, OrderStatus::Canceled, "{again:?}");
    assert!(again.orders[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("new payment"));
    assert_eq!(w.p24.transactions_for_session(&session).len(), 1);
}

#[tokio::test]
async fn przelewy24_bad_notifications_are_refused_and_audited_and_a_genuine_one_settles_once() {
    let w = world().await;
    let basket = w
        .service
        .initiate(request(
            "key-p24-0001",
            Some(GatewayKind::Przelewy24),
            vec![line(LevyKind::Property, "L-PROP-1", 2, 25_075)],
        ))
        .await
        .unwrap();
    let order = &basket.orders[0];
    let payment_id = format!("p24-{}", order.order_id);

    // First a forged sign, then a notification for a session GSKO never registered; P24's
    // retries then deliver the genuine notification.
    w.p24
        .inject_notification_fault(p24_sim::NotificationFault::WrongSign);
    w.p24
        .inject_notification_fault(p24_sim::NotificationFault::UnknownSession);
    w.p24
        .pay(token(order.redirect_url.as_deref().unwrap()))
        .unwrap();
    wait_until("the order is paid", || async {
        w.store
            .order(&teryt(), &order.order_id)
            .await
            .unwrap()
            .is_some_and(|o| o.status == OrderStatus::Paid)
    })
    .await;
    let rows = audit(&w.store).await;
    assert_eq!(
        rows.iter().map(|r| (r.1, r.2.as_str())).collect::<Vec<_>>()[..3],
        [
            (NotificationOutcome::Rejected, "bad_signature"),
            (NotificationOutcome::Rejected, "unknown_session"),
            (NotificationOutcome::Accepted, "settled"),
        ],
        "{rows:?}"
    );
    // verify was called: P24 counts the money as the municipality's.
    assert!(w
        .p24
        .transactions_for_session(&order.order_id)
        .iter()
        .all(|t| t.state == p24_sim::SimTxState::Verified));
    // A replay is acknowledged (so P24 stops) and books nothing again.
    let status = w
        .p24
        .replay_last_notification(&order.order_id)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let rows = audit(&w.store).await;
    assert_eq!(
        rows.last().unwrap().1,
        NotificationOutcome::Replayed,
        "{rows:?}"
    );
    assert_eq!(
        outbox(&w.store).await,
        vec![
            ("pl.gsko.payment.settled.v1".to_owned(), payment_id.clone()),
            ("pl.gsko.payment.book.v1".to_owned(), payment_id.clone()),
        ]
    );
}

#[tokio::test]
async fn a_przelewy24_payment_of_another_amount_is_disputed_for_an_admin_never_settled() {
    let w = world().await;
    let basket = w
        .service
        .initiate(request(
            "key-p24-0002",
            Some(GatewayKind::Przelewy24),
            vec![line(LevyKind::Property, "L-PROP-1", 2, 25_075)],
        ))
        .await
        .unwrap();
    let order = &basket.orders[0];
    w.p24
        .inject_notification_fault(p24_sim::NotificationFault::DifferentAmount(100));
    w.p24
        .pay(token(order.redirect_url.as_deref().unwrap()))
        .unwrap();
    wait_until("the order is disputed", || async {
        w.store
            .order(&teryt(), &order.order_id)
            .await
            .unwrap()
            .is_some_and(|o| o.status == OrderStatus::Disputed)
    })
    .await;
    // The genuine retries that follow find a disputed order: still nothing settled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = outbox(&w.store).await;
    assert_eq!(
        messages,
        vec![(
            "pl.gsko.payment.unmatched.v1".to_owned(),
            format!("p24-{}", order.order_id)
        )],
        "{messages:?}"
    );
    let pending = w.store.outbox_pending(10).await.unwrap();
    let EventData::PaymentUnmatched(u) = &pending[0].event.data else {
        panic!("not an unmatched payment")
    };
    assert_eq!(u.reason, gsko_model::UnmatchedReason::AmountMismatch);
    assert!(u.detail.contains("amount"), "{}", u.detail);
    let rows = audit(&w.store).await;
    assert_eq!(rows[0].2, "amount_mismatch", "{rows:?}");
    assert!(
        rows.iter().all(|r| r.1 != NotificationOutcome::Accepted),
        "{rows:?}"
    );
    assert!(w
        .p24
        .transactions_for_session(&order.order_id)
        .iter()
        .all(|t| t.state != p24_sim::SimTxState::Verified));
}

#[tokio::test]
async fn payu_bad_notifications_are_refused_and_audited_and_the_genuine_one_settles_once() {
    let w = world().await;
    let basket = w
        .service
        .initiate(request(
            "key-payu-0001",
            Some(GatewayKind::Payu),
            vec![line(LevyKind::Property, "L-PROP-1", 4, 25_078)],
        ))
        .await
        .unwrap();
    let order = &basket.orders[0];
    let payu_id = w.payu.order_id_for(&order.order_id).unwrap();
    for (fault, expected) in [
        (payu_sim::NotificationFault::WrongSignature, "bad_signature"),
        (
            payu_sim::NotificationFault::TamperedAfterSigning(1),
            "bad_signature",
        ),
        (payu_sim::NotificationFault::UnknownOrder, "unknown_session"),
        (
            payu_sim::NotificationFault::AlgorithmName("CRC32".into()),
            "malformed_signature",
        ),
    ] {
        let status = w.payu.send_notification(&payu_id, fault).await.unwrap();
        assert_eq!(status, 400, "{expected}");
        let rows = audit(&w.store).await;
        assert_eq!(
            (rows.last().unwrap().1, rows.last().unwrap().2.as_str()),
            (NotificationOutcome::Rejected, expected)
        );
    }
    assert!(outbox(&w.store).await.is_empty());
    w.payu.pay(&payu_id).await.unwrap();
    wait_until("the order is paid", || async {
        w.store
            .order(&teryt(), &order.order_id)
            .await
            .unwrap()
            .is_some_and(|o| o.status == OrderStatus::Paid)
    })
    .await;
    // Replaying every genuine notification PayU sent (the four spoiled ones came first):
    // acknowledged, nothing new.
    for n in w.payu.notifications().into_iter().skip(4) {
        let status = w.payu.replay(n.index).await.unwrap();
        assert_eq!(status, 200, "{}", n.status);
    }
    let payment_id = format!("payu-{}", order.order_id);
    assert_eq!(
        outbox(&w.store).await,
        vec![
            ("pl.gsko.payment.settled.v1".to_owned(), payment_id.clone()),
            ("pl.gsko.payment.book.v1".to_owned(), payment_id.clone()),
        ]
    );
    let pending = w.store.outbox_pending(10).await.unwrap();
    let EventData::PaymentSettled(p) = &pending[0].event.data else {
        panic!("not a settlement")
    };
    assert_eq!(p.amount.grosze(), 25_078);
    assert_eq!(p.external_ref.as_deref(), Some(payu_id.as_str()));
    assert_eq!(p.items.len(), 1);
}

#[tokio::test]
async fn the_relay_publishes_the_outbox_in_order_and_once() {
    use gsko_bus::{Bus, Exchange, MemoryBus, QueueSpec, Topology};
    let w = world().await;
    let basket = w
        .service
        .initiate(request(
            "key-relay-0001",
            Some(GatewayKind::Przelewy24),
            vec![line(LevyKind::Property, "L-PROP-1", 2, 25_075)],
        ))
        .await
        .unwrap();
    w.p24
        .pay(token(basket.orders[0].redirect_url.as_deref().unwrap()))
        .unwrap();
    wait_until("settled", || async { outbox(&w.store).await.len() == 2 }).await;
    let topology = Topology {
        queues: vec![
            QueueSpec {
                name: "events".into(),
                exchange: Exchange::Events,
                bindings: vec!["pl.gsko.#".into()],
            },
            QueueSpec {
                name: "book".into(),
                exchange: Exchange::Commands,
                bindings: vec!["pl.gsko.payment.book.#".into()],
            },
        ],
        ..Topology::default()
    };
    let bus = MemoryBus::open(None, topology).await.unwrap();
    let n = gsko_payments::relay::relay_once(w.store.as_ref(), &bus)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        gsko_payments::relay::relay_once(w.store.as_ref(), &bus)
            .await
            .unwrap(),
        0
    );
    let mut events = bus.subscribe("events", 10).await.unwrap();
    let got = events
        .next_batch(10, Duration::from_secs(2), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0]
        .routing_key
        .starts_with("pl.gsko.payment.settled.v1."));
    let mut commands = bus.subscribe("book", 10).await.unwrap();
    let got = commands
        .next_batch(10, Duration::from_secs(2), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].routing_key.starts_with("pl.gsko.payment.book.v1."));
}
