//! Simulator of PayU REST API v2.1 (PayU GPO Europe), on loopback.
//!
//! A second, independent implementation of the protocol described in
//! `shared/specs/payments.md` §2: it shares nothing with `gsko-payu` (no JSON types, no
//! signing, no header code), so a test between the two fails when either misreads the spec.
//! JSON is handled as `serde_json::Value`, signatures are computed here with `md-5`/`sha2`.
//!
//! What it does, like the real service:
//! - `POST /pl/standard/user/oauth/authorize`: client-credentials tokens that expire
//!   ([`SimConfig::token_lifetime`], short in tests);
//! - `POST /api/v2_1/orders`: answers **302** with a JSON body carrying `redirectUri` (and a
//!   `Location` header to an HTML page, which a client that follows redirects gets instead);
//!   `extOrderId` is unique per POS (`ERROR_ORDER_NOT_UNIQUE`);
//! - `GET/DELETE /api/v2_1/orders/{id}`, `POST …/captures`, `POST …/refunds` (idempotent for
//!   identical data);
//! - the lifecycle NEW → PENDING → (WAITING_FOR_CONFIRMATION →) COMPLETED, or → CANCELED,
//!   driven by the simulated payer ([`PayuSimHandle::pay`], [`PayuSimHandle::reject_payment`],
//!   or the HTML payment page);
//! - notifications POSTed to `notifyUrl`, signed `OpenPayu-Signature`, resent on non-200
//!   after 1, 2, 5, 10, 30, 60, 120, 180, 360, 540, 720, 900, 1080, 1260 "minutes"
//!   ([`SimConfig::minute`] scales them for tests);
//! - fault injection: HTTP errors and late answers per endpoint ([`HttpFault`]), expired
//!   tokens, and bad notifications ([`NotificationFault`], [`PayuSimHandle::replay`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Offset as _;
use md5::Md5;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Renotification delays after the first attempt, in minutes (spec §2.4; the published table
/// was seen only up to attempt 15).
const RENOTIFY_MINUTES: [u32; 14] = [
    1, 2, 5, 10, 30, 60, 120, 180, 360, 540, 720, 900, 1080, 1260,
];

/// Hash the simulator signs notifications with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimHash {
    /// `MD5` (PayU's default).
    Md5,
    /// `SHA-256`.
    Sha256,
    /// `SHA-384`.
    Sha384,
    /// `SHA-512`.
    Sha512,
}

impl SimHash {
    fn name(self) -> &'static str {
        match self {
            SimHash::Md5 => "MD5",
            SimHash::Sha256 => "SHA-256",
            SimHash::Sha384 => "SHA-384",
            SimHash::Sha512 => "SHA-512",
        }
    }
}

/// `hex(HASH(document || key))`, computed by the simulator's own code: the pre-image is built
/// as one buffer rather than fed incrementally, a different path from the connector's.
pub fn sim_signature(hash: SimHash, document: &[u8], second_key: &str) -> String {
    let mut preimage = Vec::with_capacity(document.len() + second_key.len());
    preimage.extend_from_slice(document);
    preimage.extend_from_slice(second_key.as_bytes());
    match hash {
        SimHash::Md5 => hex::encode(Md5::digest(&preimage)),
        SimHash::Sha256 => hex::encode(Sha256::digest(&preimage)),
        SimHash::Sha384 => hex::encode(Sha384::digest(&preimage)),
        SimHash::Sha512 => hex::encode(Sha512::digest(&preimage)),
    }
}

/// Simulator settings. `pos_id`, `client_id`, `client_secret` and `second_key` are the POS
/// credentials the connector must present / verify with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `merchantPosId` orders must carry.
    pub pos_id: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Second key (MD5 key) signing notifications.
    pub second_key: String,
    /// Lifetime of issued access tokens (PayU: 43199 s). `expires_in` is sent rounded up to
    /// whole seconds; the token really dies at the exact lifetime.
    pub token_lifetime: Duration,
    /// Length of one "minute" of the renotification schedule; shrink it in tests.
    pub minute: Duration,
    /// How notifications are signed.
    pub hash: SimHash,
    /// PayU's "auto-receive": with `false`, paid orders wait in WAITING_FOR_CONFIRMATION for
    /// a capture.
    pub auto_receive: bool,
    /// Timeout of one notification POST.
    pub notify_timeout: Duration,
}

impl SimConfig {
    /// Settings with PayU-like defaults for the given credentials.
    pub fn new(
        pos_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        second_key: impl Into<String>,
    ) -> Self {
        Self {
            pos_id: pos_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            second_key: second_key.into(),
            token_lifetime: Duration::from_secs(43199),
            minute: Duration::from_secs(60),
            hash: SimHash::Md5,
            auto_receive: true,
            notify_timeout: Duration::from_secs(10),
        }
    }

    /// PayU's public sandbox POS (spec §2.1).
    pub fn sandbox() -> Self {
        Self::new(
            "300746",
            "300746",
            "2ee86a66e5d97e3fadc400c9f19b065d",
            "b6ca15b0d1020e8094d9b5f8d163db54",
        )
    }
}

/// Endpoints that accept [`HttpFault`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// OAuth token.
    Token,
    /// Order creation.
    CreateOrder,
    /// Order retrieval.
    GetOrder,
    /// Refund creation.
    Refund,
}

/// A fault for one request to an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFault {
    /// Answer with this HTTP status without doing anything.
    Status(u16),
    /// Do the work, then hold the answer this long (a client with a shorter timeout sees a
    /// timeout although the order/refund exists).
    DelayAfterProcessing(Duration),
}

/// How [`PayuSimHandle::send_notification`] spoils a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationFault {
    /// A genuine notification of the current status.
    None,
    /// Signed with a key other than the second key.
    WrongSignature,
    /// `totalAmount` replaced, then signed correctly (PayU-side data differs from the order).
    AmountChanged(u64),
    /// `totalAmount` replaced after signing (tampering in transit).
    TamperedAfterSigning(u64),
    /// Signed correctly with another hash than the configured one (e.g. a downgrade to MD5).
    SignedWith(SimHash),
    /// Header names an algorithm PayU does not use; the digest is MD5.
    AlgorithmName(String),
    /// About an order the merchant never created (fresh ids), signed correctly.
    UnknownOrder,
}

/// One notification document the simulator sent (any number of attempts).
#[derive(Debug, Clone)]
pub struct SentNotification {
    /// Index for [`PayuSimHandle::replay`].
    pub index: usize,
    /// PayU order id it is about.
    pub order_id: String,
    /// `order.status`, or `refund:<STATUS>` for refund notifications.
    pub status: String,
    /// Exact bytes POSTed.
    pub body: Vec<u8>,
    /// Exact `OpenPayu-Signature` value.
    pub signature_header: String,
    /// Where it went.
    pub notify_url: String,
    /// HTTP status of each attempt (`0` for a transport failure).
    pub attempts: Vec<u16>,
}

/// Errors of the simulator's control API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// No such order.
    UnknownOrder(String),
    /// No such refund.
    UnknownRefund(String),
    /// The order's status does not allow the step.
    WrongStatus(String),
    /// The order has no `notifyUrl`.
    NoNotifyUrl,
    /// No notification with this index.
    UnknownNotification(usize),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::UnknownOrder(id) => write!(f, "unknown order {id}"),
            SimError::UnknownRefund(id) => write!(f, "unknown refund {id}"),
            SimError::WrongStatus(s) => write!(f, "order in status {s}"),
            SimError::NoNotifyUrl => f.write_str("order has no notifyUrl"),
            SimError::UnknownNotification(i) => write!(f, "no notification #{i}"),
        }
    }
}

impl std::error::Error for SimError {}

#[derive(Debug, Clone)]
struct SimOrder {
    order_id: String,
    ext_order_id: Option<String>,
    create_date: String,
    notify_url: Option<String>,
    customer_ip: String,
    description: String,
    currency: String,
    total: u64,
    buyer: Option<Value>,
    products: Value,
    status: &'static str,
    payment_id: Option<String>,
    receipt_time: Option<String>,
    refunds: Vec<String>,
}

#[derive(Debug, Clone)]
struct SimRefund {
    refund_id: String,
    order_id: String,
    ext_refund_id: Option<String>,
    amount: u64,
    description: String,
    currency: String,
    status: &'static str,
    created: String,
}

#[derive(Default)]
struct SimState {
    tokens: HashMap<String, Instant>,
    token_requests: usize,
    orders: HashMap<String, SimOrder>,
    create_attempts_by_ext: HashMap<String, usize>,
    refunds: HashMap<String, SimRefund>,
    faults: HashMap<Endpoint, VecDeque<HttpFault>>,
    sent: Vec<SentNotification>,
    seq: u64,
}

struct Shared {
    cfg: SimConfig,
    base_url: String,
    state: Mutex<SimState>,
    http: reqwest::Client,
}

impl Shared {
    /// The state lock; a panic elsewhere must not wedge the simulator, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Entry point; see the module docs.
pub struct PayuSim;

impl PayuSim {
    /// Binds 127.0.0.1:0 and serves until the handle is dropped.
    pub async fn start(cfg: SimConfig) -> std::io::Result<PayuSimHandle> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let http = reqwest::Client::builder()
            .timeout(cfg.notify_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            cfg,
            base_url: base_url.clone(),
            state: Mutex::new(SimState::default()),
            http,
        });
        let app = Router::new()
            .route("/pl/standard/user/oauth/authorize", post(oauth))
            .route("/api/v2_1/orders", post(create_order))
            .route(
                "/api/v2_1/orders/{order_id}",
                get(get_order).delete(cancel_order),
            )
            .route("/api/v2_1/orders/{order_id}/captures", post(capture_order))
            .route("/api/v2_1/orders/{order_id}/refunds", post(create_refund))
            .route("/pay/", get(pay_page).post(pay_form))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "PayU simulator stopped");
            }
        });
        Ok(PayuSimHandle {
            base_url,
            addr,
            shared,
            server,
        })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct PayuSimHandle {
    /// `http://127.0.0.1:<port>`: the connector's `base_url`.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PayuSimHandle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl PayuSimHandle {
    /// The settings it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// Token requests answered so far (including refused ones).
    pub fn token_requests(&self) -> usize {
        self.shared.lock().token_requests
    }

    /// Makes every issued token expire now (the next API call gets 401).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for exp in self.shared.lock().tokens.values_mut() {
            *exp = now;
        }
    }

    /// Queues `fault` for the next `times` requests to `endpoint`.
    pub fn inject(&self, endpoint: Endpoint, fault: HttpFault, times: usize) {
        let mut st = self.shared.lock();
        let q = st.faults.entry(endpoint).or_default();
        q.extend(std::iter::repeat_n(fault, times));
    }

    /// Orders existing with this `extOrderId` (0 or 1: PayU keeps it unique).
    pub fn orders_with_ext_id(&self, ext_order_id: &str) -> usize {
        self.shared
            .lock()
            .orders
            .values()
            .filter(|o| o.ext_order_id.as_deref() == Some(ext_order_id))
            .count()
    }

    /// Creation requests received for this `extOrderId`, faulted ones included.
    pub fn create_attempts(&self, ext_order_id: &str) -> usize {
        self.shared
            .lock()
            .create_attempts_by_ext
            .get(ext_order_id)
            .copied()
            .unwrap_or(0)
    }

    /// The PayU order id for an `extOrderId`, if the order exists.
    pub fn order_id_for(&self, ext_order_id: &str) -> Option<String> {
        self.shared
            .lock()
            .orders
            .values()
            .find(|o| o.ext_order_id.as_deref() == Some(ext_order_id))
            .map(|o| o.order_id.clone())
    }

    /// Current status of an order (`NEW`, `PENDING`, …).
    pub fn order_status(&self, order_id: &str) -> Option<&'static str> {
        self.shared.lock().orders.get(order_id).map(|o| o.status)
    }

    /// Every notification document sent so far, with its attempts.
    pub fn notifications(&self) -> Vec<SentNotification> {
        self.shared.lock().sent.clone()
    }

    /// The payer pays: PENDING, then COMPLETED (or WAITING_FOR_CONFIRMATION without
    /// auto-receive). Returns after the first delivery attempt of each notification; resends
    /// run in the background.
    pub async fn pay(&self, order_id: &str) -> Result<(), SimError> {
        pay_order(&self.shared, order_id, true).await
    }

    /// The payment fails: PENDING, then CANCELED.
    pub async fn reject_payment(&self, order_id: &str) -> Result<(), SimError> {
        pay_order(&self.shared, order_id, false).await
    }

    /// The merchant's capture, as `POST …/captures` would do it.
    pub async fn capture(&self, order_id: &str) -> Result<(), SimError> {
        transition(
            &self.shared,
            order_id,
            &["WAITING_FOR_CONFIRMATION"],
            "COMPLETED",
        )?;
        notify_order(&self.shared, order_id).await
    }

    /// PayU pays a pending refund out: FINALIZED plus a refund notification.
    pub async fn finalize_refund(&self, refund_id: &str) -> Result<(), SimError> {
        let idx = {
            let mut st = self.shared.lock();
            let refund = st
                .refunds
                .get_mut(refund_id)
                .ok_or_else(|| SimError::UnknownRefund(refund_id.to_owned()))?;
            if refund.status != "PENDING" {
                return Err(SimError::WrongStatus(refund.status.to_owned()));
            }
            refund.status = "FINALIZED";
            let refund = refund.clone();
            let order = st
                .orders
                .get(&refund.order_id)
                .cloned()
                .ok_or_else(|| SimError::UnknownOrder(refund.order_id.clone()))?;
            let url = order.notify_url.clone().ok_or(SimError::NoNotifyUrl)?;
            let body = json!({
                "orderId": order.order_id,
                "extOrderId": order.ext_order_id,
                "refund": {
                    "refundId": refund.refund_id,
                    "extRefundId": refund.ext_refund_id,
                    "amount": refund.amount.to_string(),
                    "currencyCode": refund.currency,
                    "status": "FINALIZED",
                    "statusDateTime": now_payu(),
                    "reason": "refund",
                    "reasonDescription": refund.description,
                    "refundDate": refund.created,
                }
            });
            let bytes = to_bytes(&body);
            let header = signature_header(&self.shared.cfg, &bytes, &NotificationFault::None);
            record(
                &mut st,
                &order.order_id,
                "refund:FINALIZED",
                bytes,
                header,
                url,
            )
        };
        deliver_with_retries(self.shared.clone(), idx).await;
        Ok(())
    }

    /// Sends one notification about the order's current status, spoiled by `fault`; one
    /// attempt, no resends. Returns the merchant's HTTP status (0 on transport failure).
    pub async fn send_notification(
        &self,
        order_id: &str,
        fault: NotificationFault,
    ) -> Result<u16, SimError> {
        let idx = {
            let mut st = self.shared.lock();
            let order = st
                .orders
                .get(order_id)
                .cloned()
                .ok_or_else(|| SimError::UnknownOrder(order_id.to_owned()))?;
            let url = order.notify_url.clone().ok_or(SimError::NoNotifyUrl)?;
            let mut doc = order_document(&order, &self.shared.cfg.pos_id);
            match &fault {
                NotificationFault::AmountChanged(a) => {
                    doc["order"]["totalAmount"] = Value::String(a.to_string())
                }
                NotificationFault::UnknownOrder => {
                    doc["order"]["orderId"] = Value::String(new_order_id(&mut st));
                    doc["order"]["extOrderId"] = Value::String(format!("UNKNOWN-{}", st.seq));
                }
                _ => {}
            }
            let mut bytes = to_bytes(&doc);
            let header = signature_header(&self.shared.cfg, &bytes, &fault);
            if let NotificationFault::TamperedAfterSigning(a) = &fault {
                doc["order"]["totalAmount"] = Value::String(a.to_string());
                bytes = to_bytes(&doc);
            }
            record(&mut st, order_id, order.status, bytes, header, url)
        };
        Ok(attempt(&self.shared, idx).await)
    }

    /// Sends notification number `index` again, byte for byte (a replay). One attempt.
    pub async fn replay(&self, index: usize) -> Result<u16, SimError> {
        if self.shared.lock().sent.len() <= index {
            return Err(SimError::UnknownNotification(index));
        }
        Ok(attempt(&self.shared, index).await)
    }
}

// ---- lifecycle and notifications ----------------------------------------------------------

fn transition(
    shared: &Shared,
    order_id: &str,
    from: &[&str],
    to: &'static str,
) -> Result<(), SimError> {
    let mut st = shared.lock();
    let order = st
        .orders
        .get_mut(order_id)
        .ok_or_else(|| SimError::UnknownOrder(order_id.to_owned()))?;
    if !from.contains(&order.status) {
        return Err(SimError::WrongStatus(order.status.to_owned()));
    }
    order.status = to;
    if to == "COMPLETED" || to == "WAITING_FOR_CONFIRMATION" {
        st.seq += 1;
        let seq = st.seq;
        if let Some(o) = st.orders.get_mut(order_id) {
            o.receipt_time.get_or_insert_with(now_payu);
            o.payment_id
                .get_or_insert_with(|| format!("{}", 150_000_000 + seq));
        }
    }
    Ok(())
}

async fn pay_order(shared: &Arc<Shared>, order_id: &str, success: bool) -> Result<(), SimError> {
    transition(shared, order_id, &["NEW"], "PENDING")?;
    notify_order(shared, order_id).await?;
    let next = match (success, shared.cfg.auto_receive) {
        (false, _) => "CANCELED",
        (true, true) => "COMPLETED",
        (true, false) => "WAITING_FOR_CONFIRMATION",
    };
    transition(shared, order_id, &["PENDING"], next)?;
    notify_order(shared, order_id).await
}

/// Notifies the order's current status (if it has a notifyUrl): first attempt now, resends
/// in the background.
async fn notify_order(shared: &Arc<Shared>, order_id: &str) -> Result<(), SimError> {
    let idx = {
        let mut st = shared.lock();
        let order = st
            .orders
            .get(order_id)
            .cloned()
            .ok_or_else(|| SimError::UnknownOrder(order_id.to_owned()))?;
        let Some(url) = order.notify_url.clone() else {
            return Ok(());
        };
        let bytes = to_bytes(&order_document(&order, &shared.cfg.pos_id));
        let header = signature_header(&shared.cfg, &bytes, &NotificationFault::None);
        record(&mut st, order_id, order.status, bytes, header, url)
    };
    deliver_with_retries(shared.clone(), idx).await;
    Ok(())
}

fn record(
    st: &mut SimState,
    order_id: &str,
    status: &str,
    body: Vec<u8>,
    signature_header: String,
    notify_url: String,
) -> usize {
    let index = st.sent.len();
    st.sent.push(SentNotification {
        index,
        order_id: order_id.to_owned(),
        status: status.to_owned(),
        body,
        signature_header,
        notify_url,
        attempts: Vec::new(),
    });
    index
}

/// First attempt awaited; if it is not a 200, the renotification ladder runs in a task.
async fn deliver_with_retries(shared: Arc<Shared>, idx: usize) {
    if attempt(&shared, idx).await == 200 {
        return;
    }
    tokio::spawn(async move {
        for minutes in RENOTIFY_MINUTES {
            tokio::time::sleep(shared.cfg.minute.saturating_mul(minutes)).await;
            if attempt(&shared, idx).await == 200 {
                return;
            }
        }
        tracing::info!(notification = idx, "PayU simulator gave up renotifying");
    });
}

/// One POST of notification `idx`; records and returns the HTTP status (0 = no answer).
async fn attempt(shared: &Shared, idx: usize) -> u16 {
    let Some(n) = shared.lock().sent.get(idx).cloned() else {
        return 0;
    };
    let result = shared
        .http
        .post(&n.notify_url)
        .header(header::CONTENT_TYPE, "application/json;charset=UTF-8")
        .header("OpenPayu-Signature", &n.signature_header)
        .header("X-OpenPayU-Signature", &n.signature_header)
        .body(n.body.clone())
        .send()
        .await;
    let status = match result {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    };
    if let Some(n) = shared.lock().sent.get_mut(idx) {
        n.attempts.push(status);
    }
    status
}

fn signature_header(cfg: &SimConfig, body: &[u8], fault: &NotificationFault) -> String {
    let (hash, key, name) = match fault {
        NotificationFault::WrongSignature => (
            cfg.hash,
            "0123456789abcdef0123456789abcdef",
            cfg.hash.name(),
        ),
        NotificationFault::SignedWith(h) => (*h, cfg.second_key.as_str(), h.name()),
        NotificationFault::AlgorithmName(n) => (SimHash::Md5, cfg.second_key.as_str(), n.as_str()),
        _ => (cfg.hash, cfg.second_key.as_str(), cfg.hash.name()),
    };
    let sig = sim_signature(hash, body, key);
    format!("sender=checkout;signature={sig};algorithm={name};content=DOCUMENT")
}

fn order_json(o: &SimOrder, pos_id: &str) -> Value {
    let mut m = Map::new();
    m.insert("orderId".into(), json!(o.order_id));
    if let Some(ext) = &o.ext_order_id {
        m.insert("extOrderId".into(), json!(ext));
    }
    m.insert("orderCreateDate".into(), json!(o.create_date));
    if let Some(url) = &o.notify_url {
        m.insert("notifyUrl".into(), json!(url));
    }
    m.insert("customerIp".into(), json!(o.customer_ip));
    m.insert("merchantPosId".into(), json!(pos_id));
    m.insert("description".into(), json!(o.description));
    m.insert("currencyCode".into(), json!(o.currency));
    m.insert("totalAmount".into(), json!(o.total.to_string()));
    if let Some(b) = &o.buyer {
        m.insert("buyer".into(), b.clone());
    }
    if o.status != "NEW" {
        m.insert("payMethod".into(), json!({"type": "PBL"}));
    }
    m.insert("products".into(), o.products.clone());
    m.insert("status".into(), json!(o.status));
    Value::Object(m)
}

/// The notification document for an order's current status (spec §2.5).
fn order_document(o: &SimOrder, pos_id: &str) -> Value {
    let mut doc = json!({ "order": order_json(o, pos_id) });
    if o.status == "COMPLETED" {
        doc["localReceiptDateTime"] = json!(o.receipt_time);
        doc["properties"] = json!([{"name": "PAYMENT_ID", "value": o.payment_id}]);
    }
    doc
}

fn to_bytes(v: &Value) -> Vec<u8> {
    // Serializing a Value cannot fail (string keys only).
    serde_json::to_vec(v).unwrap_or_default()
}

/// PayU-style local time: `2016-03-02T12:58:14.828+01:00`.
fn now_payu() -> String {
    let offset = chrono::FixedOffset::east_opt(3600).unwrap_or_else(|| chrono::Utc.fix());
    chrono::Utc::now()
        .with_timezone(&offset)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// A 27-character id shaped like PayU's (`WZHF5FFDRJ140731GUEST000P01`).
fn new_order_id(st: &mut SimState) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    st.seq += 1;
    let mut n = rand::random::<u64>() ^ st.seq;
    let head: String = (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect();
    format!("{head}{}GUEST000P01", chrono::Utc::now().format("%y%m%d"))
}

// ---- HTTP handlers ------------------------------------------------------------------------

fn status_body(code: &str, desc: &str) -> Value {
    json!({"status": {"statusCode": code, "statusDesc": desc}})
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        to_bytes(body),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, desc: &str) -> Response {
    json_response(status, &status_body(code, desc))
}

/// What a queued fault asks of the handler.
enum FaultAction {
    /// Process normally; hold the answer this long, if at all.
    Proceed(Option<Duration>),
    /// Send this answer instead of processing.
    Answer(Box<Response>),
}

/// Pops the next queued fault for `ep`.
fn take_fault(shared: &Shared, ep: Endpoint) -> FaultAction {
    let fault = shared
        .lock()
        .faults
        .get_mut(&ep)
        .and_then(|q| q.pop_front());
    match fault {
        None => FaultAction::Proceed(None),
        Some(HttpFault::DelayAfterProcessing(d)) => FaultAction::Proceed(Some(d)),
        Some(HttpFault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            FaultAction::Answer(Box::new(error(status, "ERROR_INTERNAL", "Injected fault")))
        }
    }
}

async fn hold(delay: Option<Duration>, resp: Response) -> Response {
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    resp
}

/// `Some(401 answer)` unless the request carries a live bearer token.
fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, tok) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| tok.trim().to_owned())
        });
    let live = token
        .and_then(|t| shared.lock().tokens.get(&t).copied())
        .is_some_and(|exp| Instant::now() < exp);
    if live {
        None
    } else {
        Some(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_token", "error_description": "Invalid or expired access token"}),
        ))
    }
}

async fn oauth(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.lock().token_requests += 1;
    let delay = match take_fault(&shared, Endpoint::Token) {
        FaultAction::Proceed(d) => d,
        FaultAction::Answer(resp) => return *resp,
    };
    let cfg = &shared.cfg;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}),
        );
    }
    if form.get("client_id") != Some(&cfg.client_id)
        || form.get("client_secret") != Some(&cfg.client_secret)
    {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": "Bad client credentials"}),
        );
    }
    let token = uuid::Uuid::now_v7().to_string();
    shared
        .lock()
        .tokens
        .insert(token.clone(), Instant::now() + cfg.token_lifetime);
    let secs = cfg.token_lifetime.as_millis().div_ceil(1000);
    let body = json!({
        "access_token": token,
        "token_type": "bearer",
        "refresh_token": uuid::Uuid::now_v7().to_string(),
        "expires_in": secs,
        "grant_type": "client_credentials",
    });
    hold(delay, json_response(StatusCode::OK, &body)).await
}

/// A string of decimal digits, as PayU writes amounts.
fn digits(v: &Value) -> Option<u64> {
    let s = v.as_str()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn req_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

async fn create_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthorized(&shared, &headers) {
        return r;
    }
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(ext) = parsed.as_ref().and_then(|v| req_str(v, "extOrderId")) {
        *shared
            .lock()
            .create_attempts_by_ext
            .entry(ext.to_owned())
            .or_default() += 1;
    }
    let delay = match take_fault(&shared, Endpoint::CreateOrder) {
        FaultAction::Proceed(d) => d,
        FaultAction::Answer(resp) => return *resp,
    };
    let Some(v) = parsed.filter(Value::is_object) else {
        return error(StatusCode::BAD_REQUEST, "ERROR_SYNTAX", "Invalid JSON");
    };
    for key in ["customerIp", "merchantPosId", "description", "currencyCode"] {
        if req_str(&v, key).is_none() {
            return error(StatusCode::BAD_REQUEST, "ERROR_VALUE_MISSING", key);
        }
    }
    if req_str(&v, "merchantPosId") != Some(shared.cfg.pos_id.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "ERROR_VALUE_INVALID",
            "merchantPosId",
        );
    }
    let Some(total) = v.get("totalAmount").and_then(digits).filter(|t| *t > 0) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERROR_VALUE_INVALID",
            "totalAmount",
        );
    };
    let products_ok = v
        .get("products")
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            !ps.is_empty()
                && ps.iter().all(|p| {
                    req_str(p, "name").is_some()
                        && p.get("unitPrice").and_then(digits).is_some()
                        && p.get("quantity").and_then(digits).is_some_and(|q| q > 0)
                })
        });
    if !products_ok {
        return error(StatusCode::BAD_REQUEST, "ERROR_VALUE_INVALID", "products");
    }
    let ext_order_id = req_str(&v, "extOrderId").map(str::to_owned);
    let created = {
        let mut st = shared.lock();
        let duplicate = ext_order_id.as_ref().is_some_and(|ext| {
            st.orders
                .values()
                .any(|o| o.ext_order_id.as_ref() == Some(ext))
        });
        if duplicate {
            None
        } else {
            let order_id = new_order_id(&mut st);
            let order = SimOrder {
                order_id: order_id.clone(),
                ext_order_id: ext_order_id.clone(),
                create_date: now_payu(),
                notify_url: req_str(&v, "notifyUrl").map(str::to_owned),
                customer_ip: req_str(&v, "customerIp").unwrap_or_default().to_owned(),
                description: req_str(&v, "description").unwrap_or_default().to_owned(),
                currency: req_str(&v, "currencyCode").unwrap_or_default().to_owned(),
                total,
                buyer: v.get("buyer").cloned(),
                products: v.get("products").cloned().unwrap_or(Value::Null),
                status: "NEW",
                payment_id: None,
                receipt_time: None,
                refunds: Vec::new(),
            };
            st.orders.insert(order_id.clone(), order);
            Some((order_id, uuid::Uuid::now_v7().simple().to_string()))
        }
    };
    let Some((order_id, token)) = created else {
        let resp = error(
            StatusCode::BAD_REQUEST,
            "ERROR_ORDER_NOT_UNIQUE",
            "Order already exists",
        );
        return hold(delay, resp).await;
    };
    let redirect = format!("{}/pay/?orderId={order_id}&token={token}", shared.base_url);
    let mut body = json!({
        "status": {"statusCode": "SUCCESS"},
        "redirectUri": redirect,
        "orderId": order_id,
    });
    if let Some(ext) = ext_order_id {
        body["extOrderId"] = json!(ext);
    }
    let mut resp = json_response(StatusCode::FOUND, &body);
    if let Ok(loc) = header::HeaderValue::from_str(&redirect) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    hold(delay, resp).await
}

async fn get_order(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&shared, &headers) {
        return r;
    }
    let delay = match take_fault(&shared, Endpoint::GetOrder) {
        FaultAction::Proceed(d) => d,
        FaultAction::Answer(resp) => return *resp,
    };
    let Some(order) = shared.lock().orders.get(&order_id).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "DATA_NOT_FOUND",
            "Could not find order",
        );
    };
    let o = order_json(&order, &shared.cfg.pos_id);
    let mut body = json!({
        "orders": [o],
        "status": {"statusCode": "SUCCESS", "statusDesc": "Request processing successful"},
    });
    if let Some(pid) = &order.payment_id {
        body["properties"] = json!([{"name": "PAYMENT_ID", "value": pid}]);
    }
    hold(delay, json_response(StatusCode::OK, &body)).await
}

async fn cancel_order(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&shared, &headers) {
        return r;
    }
    match transition(
        &shared,
        &order_id,
        &["NEW", "PENDING", "WAITING_FOR_CONFIRMATION"],
        "CANCELED",
    ) {
        Ok(()) => {
            if let Err(e) = notify_order(&shared, &order_id).await {
                tracing::warn!(error = %e, "PayU simulator could not notify");
            }
            json_response(
                StatusCode::OK,
                &json!({"orderId": order_id, "status": {"statusCode": "SUCCESS"}}),
            )
        }
        Err(SimError::UnknownOrder(_)) => error(
            StatusCode::NOT_FOUND,
            "DATA_NOT_FOUND",
            "Could not find order",
        ),
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "BUSINESS_ERROR",
            "Wrong order status",
        ),
    }
}

async fn capture_order(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&shared, &headers) {
        return r;
    }
    match transition(
        &shared,
        &order_id,
        &["WAITING_FOR_CONFIRMATION"],
        "COMPLETED",
    ) {
        Ok(()) => {
            if let Err(e) = notify_order(&shared, &order_id).await {
                tracing::warn!(error = %e, "PayU simulator could not notify");
            }
            json_response(
                StatusCode::OK,
                &status_body("SUCCESS", "Status was updated"),
            )
        }
        Err(SimError::UnknownOrder(_)) => error(
            StatusCode::NOT_FOUND,
            "DATA_NOT_FOUND",
            "Could not find order",
        ),
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "BUSINESS_ERROR",
            "Wrong order status",
        ),
    }
}

fn refund_json(r: &SimRefund) -> Value {
    json!({
        "refundId": r.refund_id,
        "extRefundId": r.ext_refund_id,
        "amount": r.amount.to_string(),
        "currencyCode": r.currency,
        "description": r.description,
        "creationDateTime": r.created,
        "status": r.status,
        "statusDateTime": r.created,
    })
}

async fn create_refund(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthorized(&shared, &headers) {
        return r;
    }
    let delay = match take_fault(&shared, Endpoint::Refund) {
        FaultAction::Proceed(d) => d,
        FaultAction::Answer(resp) => return *resp,
    };
    let Some(req) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("refund").cloned())
        .filter(Value::is_object)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERROR_SYNTAX",
            "refund object missing",
        );
    };
    let Some(description) = req_str(&req, "description").map(str::to_owned) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERROR_VALUE_MISSING",
            "description",
        );
    };
    let amount = match req.get("amount") {
        None | Some(Value::Null) => None,
        Some(a) => match digits(a).filter(|a| *a > 0) {
            Some(a) => Some(a),
            None => return error(StatusCode::BAD_REQUEST, "ERROR_VALUE_INVALID", "amount"),
        },
    };
    let ext_refund_id = req_str(&req, "extRefundId").map(str::to_owned);
    let resp = {
        let mut st = shared.lock();
        let Some(order) = st.orders.get(&order_id).cloned() else {
            return error(
                StatusCode::NOT_FOUND,
                "DATA_NOT_FOUND",
                "Could not find order",
            );
        };
        if order.status != "COMPLETED" {
            return error(
                StatusCode::BAD_REQUEST,
                "BUSINESS_ERROR",
                "Order is not completed",
            );
        }
        let existing: Vec<SimRefund> = order
            .refunds
            .iter()
            .filter_map(|id| st.refunds.get(id).cloned())
            .collect();
        let refunded: u64 = existing
            .iter()
            .filter(|r| r.status != "CANCELED")
            .map(|r| r.amount)
            .sum();
        let available = order.total.saturating_sub(refunded);
        let wanted = amount.unwrap_or(available);
        // Identical data returns the existing refund (spec §2.6).
        if let Some(same) = existing.iter().find(|r| {
            r.ext_refund_id == ext_refund_id
                && r.description == description
                && (amount.is_none() || Some(r.amount) == amount)
        }) {
            json_response(
                StatusCode::OK,
                &json!({"orderId": order_id, "refund": refund_json(same),
                        "status": {"statusCode": "SUCCESS", "statusDesc": "Refund queued for processing"}}),
            )
        } else if ext_refund_id.is_some()
            && existing.iter().any(|r| r.ext_refund_id == ext_refund_id)
        {
            error(
                StatusCode::BAD_REQUEST,
                "ERROR_VALUE_INVALID",
                "extRefundId already used",
            )
        } else if wanted == 0 || wanted > available {
            error(
                StatusCode::BAD_REQUEST,
                "BUSINESS_ERROR",
                "Refund amount exceeds the available amount",
            )
        } else {
            st.seq += 1;
            let refund = SimRefund {
                refund_id: format!("{}", 5_000_000_000u64 + st.seq),
                order_id: order_id.clone(),
                ext_refund_id,
                amount: wanted,
                description,
                currency: order.currency.clone(),
                status: "PENDING",
                created: now_payu(),
            };
            let body = json!({"orderId": order_id, "refund": refund_json(&refund),
                              "status": {"statusCode": "SUCCESS", "statusDesc": "Refund queued for processing"}});
            if let Some(o) = st.orders.get_mut(&order_id) {
                o.refunds.push(refund.refund_id.clone());
            }
            st.refunds.insert(refund.refund_id.clone(), refund);
            json_response(StatusCode::OK, &body)
        }
    };
    hold(delay, resp).await
}

#[derive(serde::Deserialize)]
struct PayQuery {
    #[serde(rename = "orderId")]
    order_id: String,
}

/// What a client that follows the 302 gets: HTML with 200, as the official docs warn.
async fn pay_page(State(shared): State<Arc<Shared>>, Query(q): Query<PayQuery>) -> Response {
    let Some(order) = shared.lock().orders.get(&q.order_id).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Html("<html><body>Unknown order</body></html>".to_owned()),
        )
            .into_response();
    };
    let id = html_escape(&order.order_id);
    Html(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>PayU (simulator)</title></head>\
         <body><h1>PayU simulator</h1><p>Order {id}: {} {} grosze, status {}</p>\
         <form method=\"post\" action=\"/pay/\"><input type=\"hidden\" name=\"orderId\" value=\"{id}\">\
         <button name=\"action\" value=\"pay\">Pay</button>\
         <button name=\"action\" value=\"reject\">Cancel</button></form></body></html>",
        html_escape(&order.currency),
        order.total,
        order.status
    ))
    .into_response()
}

#[derive(serde::Deserialize)]
struct PayForm {
    #[serde(rename = "orderId")]
    order_id: String,
    action: String,
}

async fn pay_form(State(shared): State<Arc<Shared>>, Form(f): Form<PayForm>) -> Response {
    let result = pay_order(&shared, &f.order_id, f.action == "pay").await;
    match result {
        Ok(()) => Html("<html><body>Done. You may close this page.</body></html>".to_owned())
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Html(html_escape(&e.to_string()))).into_response(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        // §7: official SDK test and the MD5 sandbox vector.
        assert_eq!(
            sim_signature(
                SimHash::Sha256,
                b"TEST_OK",
                "13a980d4f851f3d9a1cfc792fb1f5e50"
            ),
            "846b2de129d2200443bd72abe691ce174fcec064f89dc529d6a5d98a046cbb4d"
        );
        let body = br#"{"order":{"orderId":"LDLW5N7MF4140324GUEST000P01","extOrderId":"TAX-2026-000123","totalAmount":"12345","currencyCode":"PLN","status":"COMPLETED"}}"#;
        assert_eq!(
            sim_signature(SimHash::Md5, body, "b6ca15b0d1020e8094d9b5f8d163db54"),
            "9f1fff5adbc15b5d6c680fe9e797697c"
        );
    }

    #[test]
    fn order_ids_look_like_payu() {
        let mut st = SimState::default();
        let id = new_order_id(&mut st);
        assert_eq!(id.len(), 27, "{id}");
        assert!(id.ends_with("GUEST000P01"));
    }
}
