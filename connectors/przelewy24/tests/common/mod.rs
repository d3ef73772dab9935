//! A tiny merchant for the tests: an axum `urlStatus` handler that does what GSKO's payment
//! service will do with a notification (check it against the stored order, then verify), and
//! reports every outcome on a channel.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use gsko_przelewy24::{
    NotificationError, P24Client, P24Config, P24Error, RefundNotification, StoredOrder,
};
use gsko_sim::przelewy24::{P24Sim, P24SimHandle, SimConfig};
use tokio::sync::mpsc;

pub const MERCHANT_ID: i64 = 12345;
pub const POS_ID: i64 = 12345;
pub const API_KEY: &str = "raporty-klucz-0123456789";
pub const CRC: &str = "crc-klucz-abcdef";
/// 3 minutes → 180 ms: fast, yet slow enough that a retry does not overtake a verification
/// on a loaded machine.
pub const TIME_SCALE: f64 = 0.001;

#[derive(Debug)]
pub enum Outcome {
    Verified { session_id: String, order_id: i64 },
    Rejected(NotificationError),
    VerifyFailed(P24Error),
    Refund(RefundNotification),
    RefundRejected(NotificationError),
}

#[derive(Clone)]
struct MerchantState {
    client: P24Client,
    orders: Arc<Mutex<HashMap<String, StoredOrder>>>,
    verify: bool,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

pub struct Merchant {
    pub client: P24Client,
    pub orders: Arc<Mutex<HashMap<String, StoredOrder>>>,
    pub outcomes: mpsc::UnboundedReceiver<Outcome>,
    pub status_url: String,
    pub refund_url: String,
}

impl Merchant {
    /// Stores the order as the municipality does before registering (spec §1.6).
    pub fn store(&self, session_id: &str, amount: i64) {
        self.orders.lock().unwrap().insert(
            session_id.to_string(),
            StoredOrder {
                session_id: session_id.to_string(),
                amount,
                currency: "PLN".into(),
                verified_order_id: None,
            },
        );
    }

    pub async fn next_outcome(&mut self) -> Outcome {
        tokio::time::timeout(Duration::from_secs(10), self.outcomes.recv())
            .await
            .expect("no notification outcome within 10 s")
            .expect("merchant stopped")
    }
}

/// The test may have finished reading outcomes; a closed channel is fine.
fn report(state: &MerchantState, outcome: Outcome) {
    state.outcomes.send(outcome).ok();
}

async fn status_handler(State(state): State<MerchantState>, body: Bytes) -> StatusCode {
    let result = state.client.verify_notification_with(&body, |session_id| {
        state.orders.lock().unwrap().get(session_id).cloned()
    });
    match result {
        Ok(notification) => {
            if !state.verify {
                return StatusCode::OK;
            }
            match state.client.verify(&notification.verify_request()).await {
                Ok(()) => {
                    if let Some(order) = state
                        .orders
                        .lock()
                        .unwrap()
                        .get_mut(&notification.session_id)
                    {
                        order.verified_order_id = Some(notification.order_id);
                    }
                    report(
                        &state,
                        Outcome::Verified {
                            session_id: notification.session_id.clone(),
                            order_id: notification.order_id,
                        },
                    );
                    StatusCode::OK
                }
                Err(e) => {
                    report(&state, Outcome::VerifyFailed(e));
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }
        Err(e) => {
            let status = if matches!(e, NotificationError::Replayed { .. }) {
                // Already booked: acknowledge so nothing is redone.
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            report(&state, Outcome::Rejected(e));
            status
        }
    }
}

async fn refund_handler(State(state): State<MerchantState>, body: Bytes) -> StatusCode {
    match state.client.parse_and_verify_refund_notification(&body) {
        Ok(n) => {
            report(&state, Outcome::Refund(n));
            StatusCode::OK
        }
        Err(e) => {
            report(&state, Outcome::RefundRejected(e));
            StatusCode::BAD_REQUEST
        }
    }
}

pub fn config_for(base_url: &str) -> P24Config {
    let mut config = P24Config::new(base_url, MERCHANT_ID, API_KEY, CRC);
    config.pos_id = POS_ID;
    config.timeout = Duration::from_secs(2);
    config.retry.base_delay = Duration::from_millis(20);
    config.retry.max_delay = Duration::from_millis(100);
    config
}

pub async fn start_sim(time_scale: f64) -> P24SimHandle {
    let mut config = SimConfig::new(MERCHANT_ID, POS_ID, API_KEY, CRC);
    config.time_scale = time_scale;
    P24Sim::start(config).await.expect("simulator starts")
}

/// Starts the merchant's notification endpoint; `verify = false` makes a merchant that
/// accepts notifications but never verifies.
pub async fn start_merchant(client: P24Client, verify: bool) -> Merchant {
    let orders = Arc::new(Mutex::new(HashMap::new()));
    let (tx, rx) = mpsc::unbounded_channel();
    let state = MerchantState {
        client: client.clone(),
        orders: orders.clone(),
        verify,
        outcomes: tx,
    };
    let app = Router::new()
        .route("/p24/status", post(status_handler))
        .route("/p24/refund", post(refund_handler))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Merchant {
        client,
        orders,
        outcomes: rx,
        status_url: format!("http://{addr}/p24/status"),
        refund_url: format!("http://{addr}/p24/refund"),
    }
}

pub async fn setup() -> (P24SimHandle, Merchant) {
    setup_with(TIME_SCALE).await
}

pub async fn setup_with(time_scale: f64) -> (P24SimHandle, Merchant) {
    let sim = start_sim(time_scale).await;
    let client = P24Client::new(config_for(&sim.base_url)).unwrap();
    let merchant = start_merchant(client, true).await;
    (sim, merchant)
}
