//! Shared fixtures: a simulator, a connector pointed at it, and a tiny merchant endpoint that
//! receives notifications and verifies them the way the daemon will.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use gsko_payu::{
    NotificationError, Order, PayuClient, PayuConfig, Product, RetryPolicy, StoredOrder,
    VerifiedNotification,
};
use gsko_sim::payu::{PayuSim, PayuSimHandle, SimConfig};
use tokio::sync::mpsc;

pub fn sim_config() -> SimConfig {
    SimConfig {
        minute: Duration::from_millis(10),
        ..SimConfig::sandbox()
    }
}

pub async fn start_sim(cfg: SimConfig) -> PayuSimHandle {
    PayuSim::start(cfg).await.expect("simulator starts")
}

pub fn client_config(sim: &PayuSimHandle) -> PayuConfig {
    let c = sim.config();
    PayuConfig {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        },
        ..PayuConfig::new(
            sim.base_url.clone(),
            c.pos_id.clone(),
            c.client_id.clone(),
            c.client_secret.clone(),
            c.second_key.clone(),
        )
    }
}

pub fn order(ext_order_id: &str, amount: u64, notify_url: Option<String>) -> Order {
    Order {
        ext_order_id: ext_order_id.into(),
        total_amount: amount,
        currency: "PLN".into(),
        description: "Podatek od nieruchomości – rata I/2026".into(),
        customer_ip: "127.0.0.1".into(),
        notify_url,
        continue_url: Some("https://gsko.example/platnosci/powrot?x=1&y=/2".into()),
        buyer: None,
        products: vec![Product {
            name: "Rata I".into(),
            unit_price: amount,
            quantity: 1,
        }],
    }
}

/// What the merchant endpoint saw and concluded.
#[derive(Debug)]
pub struct Received {
    pub body: Vec<u8>,
    pub signature: Option<String>,
    pub result: Result<VerifiedNotification, NotificationError>,
    pub answered: u16,
}

#[derive(Clone)]
struct MerchantState {
    client: PayuClient,
    store: Arc<Mutex<HashMap<String, StoredOrder>>>,
    forced: Arc<Mutex<VecDeque<u16>>>,
    tx: mpsc::UnboundedSender<Received>,
}

/// The GSKO side of notifications: verifies with the connector against its own store,
/// records the last applied status, answers 200 for accepted and acknowledged ones.
pub struct Merchant {
    pub notify_url: String,
    pub store: Arc<Mutex<HashMap<String, StoredOrder>>>,
    /// HTTP statuses to answer before looking at the notification (for renotification tests).
    pub forced: Arc<Mutex<VecDeque<u16>>>,
    pub rx: mpsc::UnboundedReceiver<Received>,
}

impl Merchant {
    pub async fn start(client: PayuClient) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = MerchantState {
            client,
            store: Arc::default(),
            forced: Arc::default(),
            tx,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/payu/notify", post(notify))
            .with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("merchant endpoint serves");
        });
        Self {
            notify_url: format!("http://{addr}/payu/notify"),
            store: state.store,
            forced: state.forced,
            rx,
        }
    }

    pub fn remember(&self, stored: StoredOrder) {
        self.store
            .lock()
            .expect("store")
            .insert(stored.ext_order_id.clone(), stored);
    }

    pub fn stored(&self, ext_order_id: &str) -> Option<StoredOrder> {
        self.store.lock().expect("store").get(ext_order_id).cloned()
    }

    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a notification within 5 s")
            .expect("channel open")
    }
}

async fn notify(State(st): State<MerchantState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("OpenPayu-Signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let forced = st.forced.lock().expect("forced").pop_front();
    let (result, answer) = match forced {
        Some(code) => (
            Err(NotificationError::MalformedBody("forced answer".into())),
            code,
        ),
        None => {
            let result = st.client.verify_notification_with(
                &body,
                signature.as_deref().unwrap_or(""),
                |key| {
                    let store = st.store.lock().expect("store");
                    key.ext_order_id
                        .as_ref()
                        .and_then(|ext| store.get(ext).cloned())
                },
            );
            let answer = match &result {
                Ok(VerifiedNotification::Order(n)) => {
                    let mut store = st.store.lock().expect("store");
                    if let Some(s) = store.get_mut(&n.ext_order_id) {
                        s.last_status = Some(n.status);
                        s.order_id = Some(n.order_id.clone());
                    }
                    200
                }
                Ok(VerifiedNotification::Refund(_)) => 200,
                Err(e) if e.acknowledge() => 200,
                Err(_) => 400,
            };
            (result, answer)
        }
    };
    // The receiver lives as long as the test; a send error only means the test is over.
    st.tx
        .send(Received {
            body: body.to_vec(),
            signature,
            result,
            answered: answer,
        })
        .ok();
    StatusCode::from_u16(answer).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
