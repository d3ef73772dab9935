//! Simulator: Przelewy24 REST API v1 (`/work/shared/specs/payments.md` §1).
//!
//! A second, independent implementation of P24: it shares nothing with the connector
//! `gsko-przelewy24`. Requests are read as untyped JSON, the `sign` pre-images are written by
//! hand with a PHP-`json_encode`-style string escaper, so a connector that orders, types or
//! escapes a field wrongly fails against it.
//!
//! What it serves on `127.0.0.1:<random port>`:
//! - `GET  /api/v1/testAccess`
//! - `POST /api/v1/transaction/register` (Basic auth, `sign` check)
//! - `PUT  /api/v1/transaction/verify` (Basic auth, `sign` check, idempotent)
//! - `GET  /api/v1/transaction/by/sessionId/{sessionId}`
//! - `POST /api/v1/transaction/refund` (+ refund notification to its `urlStatus`)
//! - `GET  /api/v1/report/batch/details?batch=` (after [`P24SimHandle::settle_batch`])
//! - `GET  /trnRequest/{token}`: the payer's page; opening it pays (like [`P24SimHandle::pay`]).
//!
//! Transaction life: registered (status 0) → paid (status 1, "advance payment": P24 POSTs the
//! notification to `urlStatus` immediately and again after 3, 5, 15, 30, 60, 150 and 450
//! minutes, scaled by [`SimConfig::time_scale`], until verified) → notified (a notification was
//! answered 2xx; still status 1) → verified (status 2) → returned (status 3, fully refunded).
//! A paid transaction that is never verified stays status 1 for ever: the spec says the money
//! then stays at the payer's disposal as an advance payment and is not settled.
//!
//! Choices where the spec is silent (documented so tests can rely on them):
//! - Registering a sessionId twice creates a second transaction (P24 does not document that
//!   it refuses it); [`P24SimHandle::transactions_for_session`] lets tests catch duplicates.
//!   `by/sessionId` then reports the newest one.
//! - The retry delays are taken as gaps between consecutive attempts; the ±5 min jitter is
//!   left out to keep tests deterministic.
//! - Verify of an already verified transaction answers success again.
//! - Payouts carry no commission (a municipal contract with invoiced commission).
//!
//! Faults for tests: [`P24SimHandle::fail_next`] (HTTP 500 before or after processing, slow
//! answers), [`P24SimHandle::inject_notification_fault`] (wrong sign, different amount,
//! unknown session, duplicate delivery), [`P24SimHandle::replay_last_notification`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha384};

/// The retry schedule of the status notification, minutes between attempts (spec §1.6).
pub const NOTIFICATION_RETRY_MINUTES: [u64; 7] = [3, 5, 15, 30, 60, 150, 450];

/// One simulated shop.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub merchant_id: i64,
    pub pos_id: i64,
    /// Basic-auth password ("klucz do raportów").
    pub api_key: String,
    /// CRC key for `sign`.
    pub crc: String,
    /// Multiplies the notification retry delays: 1.0 is real time; a test uses e.g. 0.0003
    /// (3 minutes → 54 ms).
    pub time_scale: f64,
}

impl SimConfig {
    /// Real-time schedule.
    pub fn new(
        merchant_id: i64,
        pos_id: i64,
        api_key: impl Into<String>,
        crc: impl Into<String>,
    ) -> Self {
        Self {
            merchant_id,
            pos_id,
            api_key: api_key.into(),
            crc: crc.into(),
            time_scale: 1.0,
        }
    }
}

/// Endpoints that faults can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimEndpoint {
    TestAccess,
    Register,
    Verify,
    BySessionId,
    Refund,
    BatchDetails,
}

/// A fault for the next call of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFailure {
    /// Answer 500 without doing anything.
    Http500,
    /// Do the work (create the order, verify...), then answer 500: the answer is lost.
    Http500AfterProcessing,
    /// Do the work, then answer only after this delay (a client timeout loses the answer).
    SlowResponse(Duration),
}

/// A fault for the next status notification the simulator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationFault {
    /// Correct body, corrupted `sign`.
    WrongSign,
    /// `amount` (paid) set to this value, signed correctly: a genuine P24 message reporting a
    /// payment that differs from the order.
    DifferentAmount(i64),
    /// `sessionId` replaced by one the merchant never registered, signed correctly.
    UnknownSession,
    /// The notification is delivered twice in a row (a replay before verification).
    Duplicate,
}

/// Where a transaction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimTxState {
    Registered,
    Paid,
    Notified,
    Verified,
    Returned,
}

impl SimTxState {
    /// The P24 status code (`by/sessionId`).
    pub fn status_code(self) -> i64 {
        match self {
            SimTxState::Registered => 0,
            SimTxState::Paid | SimTxState::Notified => 1,
            SimTxState::Verified => 2,
            SimTxState::Returned => 3,
        }
    }
}

/// A snapshot of one simulated transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTransaction {
    pub token: String,
    pub order_id: i64,
    pub session_id: String,
    pub amount: i64,
    pub currency: String,
    pub url_status: Option<String>,
    pub state: SimTxState,
    pub refunded: i64,
    pub batch_id: Option<i64>,
    /// Notification attempts made so far.
    pub notification_attempts: u32,
    /// All scheduled attempts were made without verification.
    pub notifications_exhausted: bool,
}

/// One notification POST the simulator made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationAttempt {
    pub order_id: i64,
    /// 0 for the first attempt.
    pub attempt: u32,
    pub fault: Option<NotificationFault>,
    /// HTTP status of the merchant's answer, `None` if the POST failed.
    pub response_status: Option<u16>,
    /// The exact body sent.
    pub body: String,
}

/// Errors of the handle's methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    UnknownToken,
    WrongState(SimTxState),
    Io(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::UnknownToken => f.write_str("unknown token"),
            SimError::WrongState(s) => write!(f, "transaction in state {s:?}"),
            SimError::Io(e) => write!(f, "io: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

struct Tx {
    token: String,
    order_id: i64,
    session_id: String,
    amount: i64,
    currency: String,
    description: String,
    email: String,
    client: Option<String>,
    url_status: Option<String>,
    method_id: i64,
    statement: String,
    state: SimTxState,
    refunded: i64,
    batch_id: Option<i64>,
    registered_at: chrono::DateTime<chrono::Utc>,
    paid_at: Option<chrono::DateTime<chrono::Utc>>,
    verified_at: Option<chrono::DateTime<chrono::Utc>>,
    notification_attempts: u32,
    notifications_exhausted: bool,
    last_notification: Option<String>,
}

impl Tx {
    fn snapshot(&self) -> SimTransaction {
        SimTransaction {
            token: self.token.clone(),
            order_id: self.order_id,
            session_id: self.session_id.clone(),
            amount: self.amount,
            currency: self.currency.clone(),
            url_status: self.url_status.clone(),
            state: self.state,
            refunded: self.refunded,
            batch_id: self.batch_id,
            notification_attempts: self.notification_attempts,
            notifications_exhausted: self.notifications_exhausted,
        }
    }
}

#[derive(Default)]
struct Data {
    /// In registration order.
    txs: Vec<Tx>,
    next_order_id: i64,
    next_batch_id: i64,
    failures: HashMap<SimEndpoint, VecDeque<SimFailure>>,
    notification_faults: VecDeque<NotificationFault>,
    notifications: Vec<NotificationAttempt>,
    refund_request_ids: Vec<String>,
    /// Calls per endpoint, faults included.
    calls: HashMap<SimEndpoint, usize>,
    /// Why the last 400 answers were given (newest last), for test diagnostics.
    rejections: Vec<String>,
}

struct Shared {
    config: SimConfig,
    data: Mutex<Data>,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock only happens in a failing test; keep serving.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_failure(&self, endpoint: SimEndpoint) -> Option<SimFailure> {
        let mut d = self.lock();
        *d.calls.entry(endpoint).or_default() += 1;
        d.failures.get_mut(&endpoint).and_then(VecDeque::pop_front)
    }

    fn reject(&self, reason: impl Into<String>) -> Response {
        let reason = reason.into();
        tracing::debug!(%reason, "p24 sim: invalid input");
        self.lock().rejections.push(reason);
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "Invalid input data", "code": 400})),
        )
            .into_response()
    }
}

/// A running simulator. Dropping it stops the server.
pub struct P24Sim;

impl P24Sim {
    /// Starts the server on `127.0.0.1:0` inside the current Tokio runtime.
    pub async fn start(config: SimConfig) -> std::io::Result<P24SimHandle> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            config,
            data: Mutex::new(Data {
                next_order_id: 310_000_001,
                next_batch_id: 9001,
                ..Data::default()
            }),
            http,
            runtime: tokio::runtime::Handle::current(),
        });
        let app = Router::new()
            .route("/api/v1/testAccess", get(test_access))
            .route("/api/v1/transaction/register", post(register))
            .route("/api/v1/transaction/verify", put(verify))
            .route(
                "/api/v1/transaction/by/sessionId/{*session_id}",
                get(by_session_id),
            )
            .route("/api/v1/transaction/refund", post(refund))
            .route("/api/v1/report/batch/details", get(batch_details))
            .route("/trnRequest/{token}", get(payer_page))
            .with_state(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender also means stop.
                    stop_rx.await.ok();
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "p24 sim server stopped");
            }
        });
        Ok(P24SimHandle {
            base_url,
            shared,
            stop: Some(stop_tx),
            server,
        })
    }
}

/// Control of a running simulator.
pub struct P24SimHandle {
    /// `http://127.0.0.1:<port>`: the connector's `base_url`.
    pub base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for P24SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing to do then.
            stop.send(()).ok();
        }
        self.server.abort();
    }
}

impl P24SimHandle {
    /// The payer pays the transaction `token` (in full). Starts the notification schedule.
    pub fn pay(&self, token: &str) -> Result<SimTransaction, SimError> {
        pay_token(&self.shared, token)
    }

    /// Queues a fault for the next call of `endpoint` (several calls queue several faults).
    pub fn fail_next(&self, endpoint: SimEndpoint, failure: SimFailure) {
        self.shared
            .lock()
            .failures
            .entry(endpoint)
            .or_default()
            .push_back(failure);
    }

    /// Queues a fault for the next notification sent (any transaction); the retry after it is
    /// genuine again.
    pub fn inject_notification_fault(&self, fault: NotificationFault) {
        self.shared.lock().notification_faults.push_back(fault);
    }

    /// POSTs the last genuine notification of the session's newest transaction again,
    /// verbatim; returns the merchant's HTTP status.
    pub async fn replay_last_notification(&self, session_id: &str) -> Result<u16, SimError> {
        let (url, body, order_id) = {
            let d = self.shared.lock();
            let tx = d
                .txs
                .iter()
                .rev()
                .find(|t| t.session_id == session_id)
                .ok_or(SimError::UnknownToken)?;
            let body = tx
                .last_notification
                .clone()
                .ok_or(SimError::WrongState(tx.state))?;
            let url = tx
                .url_status
                .clone()
                .ok_or(SimError::WrongState(tx.state))?;
            (url, body, tx.order_id)
        };
        let status = post_json(&self.shared.http, &url, body.clone()).await;
        self.shared.lock().notifications.push(NotificationAttempt {
            order_id,
            attempt: u32::MAX,
            fault: None,
            response_status: status,
            body,
        });
        status.ok_or_else(|| SimError::Io("replay POST failed".into()))
    }

    /// All transactions, in registration order.
    pub fn transactions(&self) -> Vec<SimTransaction> {
        self.shared.lock().txs.iter().map(Tx::snapshot).collect()
    }

    /// The transactions registered under `session_id` (more than one = a duplicate order).
    pub fn transactions_for_session(&self, session_id: &str) -> Vec<SimTransaction> {
        self.shared
            .lock()
            .txs
            .iter()
            .filter(|t| t.session_id == session_id)
            .map(Tx::snapshot)
            .collect()
    }

    /// Every notification POST made so far.
    pub fn notifications(&self) -> Vec<NotificationAttempt> {
        self.shared.lock().notifications.clone()
    }

    /// How many times `endpoint` was called (faulted calls included).
    pub fn calls(&self, endpoint: SimEndpoint) -> usize {
        self.shared
            .lock()
            .calls
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Reasons of the 400 answers given so far.
    pub fn rejections(&self) -> Vec<String> {
        self.shared.lock().rejections.clone()
    }

    /// The notification retry delays as this simulator applies them.
    pub fn notification_schedule(&self) -> Vec<Duration> {
        scaled_schedule(self.shared.config.time_scale)
    }

    /// Pays out every verified transaction not yet in a batch; returns the new batchId, or
    /// `None` if there was nothing to pay out.
    pub fn settle_batch(&self) -> Option<i64> {
        let mut d = self.shared.lock();
        let id = d.next_batch_id;
        let mut any = false;
        for tx in d.txs.iter_mut() {
            if tx.batch_id.is_none() && tx.state == SimTxState::Verified {
                tx.batch_id = Some(id);
                any = true;
            }
        }
        if any {
            d.next_batch_id += 1;
            Some(id)
        } else {
            None
        }
    }
}

fn scaled_schedule(scale: f64) -> Vec<Duration> {
    NOTIFICATION_RETRY_MINUTES
        .iter()
        .map(|m| Duration::from_secs_f64((*m as f64) * 60.0 * scale.max(0.0)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Signing, written independently of the connector: a PHP json_encode string escaper
// (JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES) and hand-assembled objects.

fn php_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn sha384_hex(text: &str) -> String {
    let digest = Sha384::digest(text.as_bytes());
    let mut out = String::with_capacity(96);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn sign_register(
    session_id: &str,
    merchant_id: i64,
    amount: i64,
    currency: &str,
    crc: &str,
) -> String {
    sha384_hex(&format!(
        "{{\"sessionId\":{},\"merchantId\":{},\"amount\":{},\"currency\":{},\"crc\":{}}}",
        php_json_string(session_id),
        merchant_id,
        amount,
        php_json_string(currency),
        php_json_string(crc)
    ))
}

fn sign_verify(session_id: &str, order_id: i64, amount: i64, currency: &str, crc: &str) -> String {
    sha384_hex(&format!(
        "{{\"sessionId\":{},\"orderId\":{},\"amount\":{},\"currency\":{},\"crc\":{}}}",
        php_json_string(session_id),
        order_id,
        amount,
        php_json_string(currency),
        php_json_string(crc)
    ))
}

/// The notification body: the signed members in signed order, then `sign`.
#[allow(clippy::too_many_arguments)]
fn notification_body(
    merchant_id: i64,
    pos_id: i64,
    session_id: &str,
    amount: i64,
    origin_amount: i64,
    currency: &str,
    order_id: i64,
    method_id: i64,
    statement: &str,
    crc: &str,
    corrupt_sign: bool,
) -> String {
    let members = format!(
        "\"merchantId\":{},\"posId\":{},\"sessionId\":{},\"amount\":{},\"originAmount\":{},\"currency\":{},\"orderId\":{},\"methodId\":{},\"statement\":{}",
        merchant_id,
        pos_id,
        php_json_string(session_id),
        amount,
        origin_amount,
        php_json_string(currency),
        order_id,
        method_id,
        php_json_string(statement)
    );
    let mut sign = sha384_hex(&format!("{{{members},\"crc\":{}}}", php_json_string(crc)));
    if corrupt_sign {
        // Flip the first hex digit: same length, same alphabet, wrong value.
        let first = if sign.starts_with('0') { "1" } else { "0" };
        sign.replace_range(0..1, first);
    }
    format!("{{{members},\"sign\":{}}}", php_json_string(&sign))
}

#[allow(clippy::too_many_arguments)]
fn refund_notification_body(
    order_id: i64,
    session_id: &str,
    merchant_id: i64,
    request_id: &str,
    refunds_uuid: &str,
    amount: i64,
    currency: &str,
    status: i64,
    crc: &str,
) -> String {
    let sign = sha384_hex(&format!(
        "{{\"orderId\":{},\"sessionId\":{},\"refundsUuid\":{},\"merchantId\":{},\"amount\":{},\"currency\":{},\"status\":{},\"crc\":{}}}",
        order_id,
        php_json_string(session_id),
        php_json_string(refunds_uuid),
        merchant_id,
        amount,
        php_json_string(currency),
        status,
        php_json_string(crc)
    ));
    format!(
        "{{\"orderId\":{},\"sessionId\":{},\"merchantId\":{},\"requestId\":{},\"refundsUuid\":{},\"amount\":{},\"currency\":{},\"timestamp\":{},\"status\":{},\"sign\":{}}}",
        order_id,
        php_json_string(session_id),
        merchant_id,
        php_json_string(request_id),
        php_json_string(refunds_uuid),
        amount,
        php_json_string(currency),
        chrono::Utc::now().timestamp(),
        status,
        php_json_string(&sign)
    )
}

fn hex_eq_ct(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

// ---------------------------------------------------------------------------------------
// HTTP plumbing.

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "Incorrect authentication", "code": 401})),
    )
        .into_response()
}

fn server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": "Internal server error", "code": 500})),
    )
        .into_response()
}

/// Basic auth: user = posId, password = API key (spec §1.2).
fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, password)) = text.split_once(':') else {
        return false;
    };
    user == shared.config.pos_id.to_string() && password == shared.config.api_key
}

/// Applies a queued fault around `work`.
async fn with_failure<F>(failure: Option<SimFailure>, work: F) -> Response
where
    F: FnOnce() -> Response,
{
    if failure == Some(SimFailure::Http500) {
        return server_error();
    }
    let response = work();
    match failure {
        Some(SimFailure::Http500AfterProcessing) => server_error(),
        Some(SimFailure::SlowResponse(delay)) => {
            tokio::time::sleep(delay).await;
            response
        }
        _ => response,
    }
}

fn int_field(body: &Value, name: &str) -> Result<i64, String> {
    body.get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{name}: missing or not an integer"))
}

fn str_field<'a>(body: &'a Value, name: &str, max: usize) -> Result<&'a str, String> {
    let s = body
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{name}: missing or not a string"))?;
    if s.chars().count() > max {
        return Err(format!("{name}: longer than {max}"));
    }
    Ok(s)
}

fn opt_str_field<'a>(body: &'a Value, name: &str, max: usize) -> Result<Option<&'a str>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => str_field(body, name, max).map(Some),
    }
}

async fn test_access(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let failure = shared.take_failure(SimEndpoint::TestAccess);
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    with_failure(failure, || {
        axum::Json(json!({"data": true, "error": ""})).into_response()
    })
    .await
}

async fn register(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let failure = shared.take_failure(SimEndpoint::Register);
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    let work = || {
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return shared.reject("register: body is not JSON");
        };
        match register_checked(&shared, &body) {
            Ok(token) => {
                axum::Json(json!({"data": {"token": token}, "responseCode": 0})).into_response()
            }
            Err(reason) => shared.reject(format!("register: {reason}")),
        }
    };
    with_failure(failure, work).await
}

fn register_checked(shared: &Shared, body: &Value) -> Result<String, String> {
    let cfg = &shared.config;
    let merchant_id = int_field(body, "merchantId")?;
    let pos_id = int_field(body, "posId")?;
    let session_id = str_field(body, "sessionId", 100)?;
    let amount = int_field(body, "amount")?;
    let currency = str_field(body, "currency", 3)?;
    let description = str_field(body, "description", 1024)?;
    let email = str_field(body, "email", 50)?;
    let client = opt_str_field(body, "client", 40)?;
    let country = str_field(body, "country", 2)?;
    let language = str_field(body, "language", 2)?;
    let _url_return = str_field(body, "urlReturn", 250)?;
    let url_status = opt_str_field(body, "urlStatus", 250)?;
    let _label = opt_str_field(body, "transferLabel", 20)?;
    let sign = str_field(body, "sign", 200)?;
    if merchant_id != cfg.merchant_id || pos_id != cfg.pos_id {
        return Err("merchantId/posId not this shop".into());
    }
    if session_id.is_empty() || amount <= 0 || currency.len() != 3 || country.len() != 2 {
        return Err("sessionId/amount/currency/country invalid".into());
    }
    const LANGUAGES: [&str; 15] = [
        "bg", "cs", "de", "en", "es", "fr", "hr", "hu", "it", "nl", "pl", "pt", "se", "sk", "ro",
    ];
    if !LANGUAGES.contains(&language) {
        return Err("language not supported".into());
    }
    let expected = sign_register(session_id, merchant_id, amount, currency, &cfg.crc);
    if !hex_eq_ct(&expected, sign) {
        return Err("sign mismatch".into());
    }
    let mut d = shared.lock();
    let order_id = d.next_order_id;
    d.next_order_id += 1;
    let token = uuid::Uuid::now_v7().simple().to_string().to_uppercase();
    let statement = format!("p24-{}-{}-{}", &token[0..3], &token[3..6], &token[6..9]);
    d.txs.push(Tx {
        token: token.clone(),
        order_id,
        session_id: session_id.to_string(),
        amount,
        currency: currency.to_string(),
        description: description.to_string(),
        email: email.to_string(),
        client: client.map(str::to_string),
        url_status: url_status.map(str::to_string),
        method_id: 25,
        statement,
        state: SimTxState::Registered,
        refunded: 0,
        batch_id: None,
        registered_at: chrono::Utc::now(),
        paid_at: None,
        verified_at: None,
        notification_attempts: 0,
        notifications_exhausted: false,
        last_notification: None,
    });
    Ok(token)
}

async fn verify(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let failure = shared.take_failure(SimEndpoint::Verify);
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    let work = || {
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return shared.reject("verify: body is not JSON");
        };
        match verify_checked(&shared, &body) {
            Ok(()) => axum::Json(json!({"data": {"status": "success"}, "responseCode": 0}))
                .into_response(),
            Err(reason) => shared.reject(format!("verify: {reason}")),
        }
    };
    with_failure(failure, work).await
}

fn verify_checked(shared: &Shared, body: &Value) -> Result<(), String> {
    let cfg = &shared.config;
    let merchant_id = int_field(body, "merchantId")?;
    let pos_id = int_field(body, "posId")?;
    let session_id = str_field(body, "sessionId", 100)?;
    let amount = int_field(body, "amount")?;
    let currency = str_field(body, "currency", 3)?;
    let order_id = int_field(body, "orderId")?;
    let sign = str_field(body, "sign", 200)?;
    if merchant_id != cfg.merchant_id || pos_id != cfg.pos_id {
        return Err("merchantId/posId not this shop".into());
    }
    let expected = sign_verify(session_id, order_id, amount, currency, &cfg.crc);
    if !hex_eq_ct(&expected, sign) {
        return Err("sign mismatch".into());
    }
    let mut d = shared.lock();
    let tx = d
        .txs
        .iter_mut()
        .find(|t| t.order_id == order_id && t.session_id == session_id)
        .ok_or("no such orderId for this sessionId")?;
    if tx.amount != amount || tx.currency != currency {
        return Err("amount/currency differ from the transaction".into());
    }
    match tx.state {
        SimTxState::Registered => Err("transaction not paid".into()),
        SimTxState::Paid | SimTxState::Notified => {
            tx.state = SimTxState::Verified;
            tx.verified_at = Some(chrono::Utc::now());
            Ok(())
        }
        SimTxState::Verified | SimTxState::Returned => Ok(()),
    }
}

async fn by_session_id(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
) -> Response {
    let failure = shared.take_failure(SimEndpoint::BySessionId);
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    let work = || {
        let d = shared.lock();
        let Some(tx) = d.txs.iter().rev().find(|t| t.session_id == session_id) else {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "Transaction not found", "responseCode": 0})),
            )
                .into_response();
        };
        let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        };
        let data = json!({
            "statement": tx.statement,
            "orderId": tx.order_id,
            "sessionId": tx.session_id,
            "status": tx.state.status_code(),
            "amount": tx.amount,
            "currency": tx.currency,
            "date": fmt(Some(tx.registered_at)),
            "dateOfTransaction": fmt(tx.paid_at),
            "clientEmail": tx.email,
            "accountMD5": "",
            "paymentMethod": tx.method_id,
            "description": tx.description,
            "clientName": tx.client.clone().unwrap_or_default(),
            "clientAddress": "",
            "clientCity": "",
            "clientPostcode": "",
            "batchId": tx.batch_id.unwrap_or(0),
            "fee": "0",
        });
        axum::Json(json!({"data": data, "responseCode": 0})).into_response()
    };
    with_failure(failure, work).await
}

async fn refund(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let failure = shared.take_failure(SimEndpoint::Refund);
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    let work = || {
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return shared.reject("refund: body is not JSON");
        };
        refund_checked(&shared, &body)
    };
    with_failure(failure, work).await
}

fn refund_checked(shared: &Arc<Shared>, body: &Value) -> Response {
    let invalid = |msg: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": msg, "code": 400})),
        )
            .into_response()
    };
    let (Ok(request_id), Ok(refunds_uuid)) = (
        str_field(body, "requestId", 45),
        str_field(body, "refundsUuid", 35),
    ) else {
        return invalid("Invalid input parameters");
    };
    let Ok(url_status) = opt_str_field(body, "urlStatus", 250) else {
        return invalid("Invalid input parameters");
    };
    let Some(items) = body.get("refunds").and_then(Value::as_array) else {
        return invalid("Invalid input parameters");
    };
    let mut parsed = Vec::new();
    for item in items {
        let (Ok(order_id), Ok(session_id), Ok(amount)) = (
            int_field(item, "orderId"),
            str_field(item, "sessionId", 100),
            int_field(item, "amount"),
        ) else {
            return invalid("Invalid input parameters");
        };
        let Ok(description) = opt_str_field(item, "description", 35) else {
            return invalid("Invalid input parameters");
        };
        if amount <= 0 {
            return invalid("Invalid input parameters");
        }
        parsed.push((
            order_id,
            session_id.to_string(),
            amount,
            description.map(str::to_string),
        ));
    }
    if parsed.is_empty() {
        return invalid("Invalid input parameters");
    }
    let mut d = shared.lock();
    if d.refund_request_ids.iter().any(|r| r == request_id) {
        return invalid("Request already exists");
    }
    // All or nothing: check every item first.
    let mut results = Vec::new();
    let mut all_ok = true;
    for (order_id, session_id, amount, description) in &parsed {
        let message = match d
            .txs
            .iter()
            .find(|t| t.order_id == *order_id && t.session_id == *session_id)
        {
            None => Some("Transaction not found"),
            Some(tx) if tx.state != SimTxState::Verified => {
                Some("Transaction in wrong status - cannot refund")
            }
            Some(tx) if tx.amount - tx.refunded < *amount => {
                Some("The amount of refund exceeds available amount for the transaction")
            }
            Some(_) => None,
        };
        all_ok &= message.is_none();
        results.push(json!({
            "orderId": order_id,
            "sessionId": session_id,
            "amount": amount,
            "description": description.clone().unwrap_or_default(),
            "status": message.is_none(),
            "message": message.unwrap_or("success"),
        }));
    }
    if !all_ok {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({"error": results, "code": 409})),
        )
            .into_response();
    }
    d.refund_request_ids.push(request_id.to_string());
    let mut notices = Vec::new();
    for (order_id, session_id, amount, _) in &parsed {
        if let Some(tx) = d
            .txs
            .iter_mut()
            .find(|t| t.order_id == *order_id && t.session_id == *session_id)
        {
            tx.refunded += amount;
            if tx.refunded >= tx.amount {
                tx.state = SimTxState::Returned;
            }
            if let Some(url) = url_status {
                notices.push((
                    url.to_string(),
                    refund_notification_body(
                        *order_id,
                        session_id,
                        shared.config.merchant_id,
                        request_id,
                        refunds_uuid,
                        *amount,
                        &tx.currency,
                        0,
                        &shared.config.crc,
                    ),
                ));
            }
        }
    }
    drop(d);
    for (url, body) in notices {
        let http = shared.http.clone();
        shared.runtime.spawn(async move {
            // One attempt: the spec documents no retry schedule for refund notifications.
            let _ = post_json(&http, &url, body).await;
        });
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({"data": results, "responseCode": 0})),
    )
        .into_response()
}

async fn batch_details(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let failure = shared.take_failure(SimEndpoint::BatchDetails);
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    let work = || {
        let Some(batch) = query.get("batch").and_then(|b| b.parse::<i64>().ok()) else {
            return shared.reject("batch details: batch missing");
        };
        let d = shared.lock();
        let txs: Vec<&Tx> = d.txs.iter().filter(|t| t.batch_id == Some(batch)).collect();
        if txs.is_empty() {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "Batch not found", "code": 404})),
            )
                .into_response();
        }
        let total: i64 = txs.iter().map(|t| t.amount).sum();
        let transactions: Vec<Value> = txs
            .iter()
            .map(|t| {
                json!({
                    "orderId": t.order_id,
                    "sessionId": t.session_id,
                    "amount": t.amount,
                    "settledAmount": t.amount,
                    "status": 2,
                    "dateOfVerification": t.verified_at.map(|v| v.format("%Y-%m-%d %H:%M:%S").to_string()),
                    "fee": "0",
                })
            })
            .collect();
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        axum::Json(json!({
            "token": "",
            "responseCode": 0,
            "pageInformation": {"recordsOnPage": transactions.len(), "recordsAll": transactions.len(), "pageCount": 1},
            "data": [{
                "overall": {"batchId": batch, "dateIn": today, "dateOut": today, "commision": "0", "charge": total.to_string(), "refund": "0"},
                "transactions": transactions,
                "refunds": [],
            }],
        }))
        .into_response()
    };
    with_failure(failure, work).await
}

async fn payer_page(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    match pay_token(&shared, &token) {
        Ok(_) | Err(SimError::WrongState(_)) => {
            Html("<!doctype html><title>Przelewy24 (symulator)</title><p>Płatność przyjęta.</p>")
                .into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "unknown token").into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Payment and notifications.

fn pay_token(shared: &Arc<Shared>, token: &str) -> Result<SimTransaction, SimError> {
    let snapshot = {
        let mut d = shared.lock();
        let tx = d
            .txs
            .iter_mut()
            .find(|t| t.token == token)
            .ok_or(SimError::UnknownToken)?;
        if tx.state != SimTxState::Registered {
            return Err(SimError::WrongState(tx.state));
        }
        tx.state = SimTxState::Paid;
        tx.paid_at = Some(chrono::Utc::now());
        tx.snapshot()
    };
    let task_shared = shared.clone();
    let order_id = snapshot.order_id;
    shared
        .runtime
        .spawn(async move { deliver_notifications(task_shared, order_id).await });
    Ok(snapshot)
}

async fn post_json(http: &reqwest::Client, url: &str, body: String) -> Option<u16> {
    http.post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// The first attempt at once, then one per scheduled delay, until the transaction is verified.
async fn deliver_notifications(shared: Arc<Shared>, order_id: i64) {
    let schedule = scaled_schedule(shared.config.time_scale);
    for attempt in 0..=schedule.len() as u32 {
        if attempt > 0 {
            tokio::time::sleep(schedule[attempt as usize - 1]).await;
        }
        let prepared = {
            let mut d = shared.lock();
            let fault = d.notification_faults.pop_front();
            let cfg = &shared.config;
            let Some(tx) = d.txs.iter_mut().find(|t| t.order_id == order_id) else {
                return;
            };
            if matches!(tx.state, SimTxState::Verified | SimTxState::Returned) {
                return;
            }
            let Some(url) = tx.url_status.clone() else {
                return;
            };
            tx.notification_attempts += 1;
            let genuine = notification_body(
                cfg.merchant_id,
                cfg.pos_id,
                &tx.session_id,
                tx.amount,
                tx.amount,
                &tx.currency,
                tx.order_id,
                tx.method_id,
                &tx.statement,
                &cfg.crc,
                false,
            );
            let body = match &fault {
                None | Some(NotificationFault::Duplicate) => genuine.clone(),
                Some(NotificationFault::WrongSign) => notification_body(
                    cfg.merchant_id,
                    cfg.pos_id,
                    &tx.session_id,
                    tx.amount,
                    tx.amount,
                    &tx.currency,
                    tx.order_id,
                    tx.method_id,
                    &tx.statement,
                    &cfg.crc,
                    true,
                ),
                Some(NotificationFault::DifferentAmount(paid)) => notification_body(
                    cfg.merchant_id,
                    cfg.pos_id,
                    &tx.session_id,
                    *paid,
                    tx.amount,
                    &tx.currency,
                    tx.order_id,
                    tx.method_id,
                    &tx.statement,
                    &cfg.crc,
                    false,
                ),
                Some(NotificationFault::UnknownSession) => notification_body(
                    cfg.merchant_id,
                    cfg.pos_id,
                    &format!("UNKNOWN-{}", tx.order_id),
                    tx.amount,
                    tx.amount,
                    &tx.currency,
                    tx.order_id,
                    tx.method_id,
                    &tx.statement,
                    &cfg.crc,
                    false,
                ),
            };
            if fault.is_none() || fault == Some(NotificationFault::Duplicate) {
                tx.last_notification = Some(genuine);
            }
            (url, body, fault)
        };
        let (url, body, fault) = prepared;
        let sends = if fault == Some(NotificationFault::Duplicate) {
            2
        } else {
            1
        };
        for _ in 0..sends {
            let status = post_json(&shared.http, &url, body.clone()).await;
            let mut d = shared.lock();
            d.notifications.push(NotificationAttempt {
                order_id,
                attempt,
                fault: fault.clone(),
                response_status: status,
                body: body.clone(),
            });
            if let Some(tx) = d.txs.iter_mut().find(|t| t.order_id == order_id) {
                if status.is_some_and(|s| (200..300).contains(&s)) && tx.state == SimTxState::Paid {
                    tx.state = SimTxState::Notified;
                }
            }
        }
    }
    // Never verified: P24 stops notifying; the money stays the payer's advance payment.
    let mut d = shared.lock();
    if let Some(tx) = d.txs.iter_mut().find(|t| t.order_id == order_id) {
        if matches!(tx.state, SimTxState::Paid | SimTxState::Notified) {
            tx.notifications_exhausted = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The spec's §7 vectors, against this module's own implementation.
    #[test]
    fn spec_vectors() {
        assert_eq!(
            sign_register("sessionId", 999999, 1000, "PLN", "crc"),
            "a34cf822f00b51d8d75e2d21334d6ffb5f2fac8408574f4cd7d4897f07ed61312244f9875e18ce63a4fbe2668d7ffc30"
        );
        assert_eq!(
            sign_verify("sessionId", 999999, 1000, "PLN", "crc"),
            "3edcfa853ade37780fdcd00541b2c266117a7d35fab662ddc26498495c09b048e736f28424b616d2f1fbd882f6a47f0c"
        );
        assert_eq!(
            sign_register("PN/2026/000123", 12345, 12345, "PLN", "bar"),
            "fcceb1c9f4760d3866a6a9d95bfe28ea4cb6de5e38f716e29ee54cd53c517ad75f5f5c28484d125140ec489875524556"
        );
        let body = notification_body(
            12345,
            123,
            "0beec7",
            1500,
            1500,
            "PLN",
            123456789,
            32,
            "p24-XXX-YYY-ZZZ",
            "bar",
            false,
        );
        assert!(body.ends_with(
            "\"sign\":\"703e946290d92230297c35d3bc8f554d4a458a4c97c9917665929c5ef5e682f7a868ac36e5dff20184c6a5302ef66c77\"}"
        ));
    }

    #[test]
    fn php_escaping() {
        assert_eq!(php_json_string("a/ż\"\u{1}"), "\"a/ż\\\"\\u0001\"");
    }
}
