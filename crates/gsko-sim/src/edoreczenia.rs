//! Simulator: e-Doręczenia (KSDE) token endpoint and UA API
//! (`/work/shared/specs/epuap-login-edoreczenia.md` §4).
//!
//! A second, independent implementation: it shares nothing with the connector
//! `gsko-edoreczenia`. The `private_key_jwt` client assertion is taken apart and verified here
//! by hand (base64url parts, RS256 = RSASSA-PKCS1-v1_5 with SHA-256 over `header.payload`,
//! the key read from the registered X.509 certificate), request bodies are read as untyped
//! JSON, and the ADE check digits and the attachment hash (base64 of the lowercase hex of
//! SHA3-512) are computed by this module's own code.
//!
//! What it serves on `127.0.0.1:<random port>`:
//! - `POST /auth/realms/EDOR/protocol/openid-connect/token?login_hint=<ADE | ADE.<ADE>>`
//!   (§4.3): `client_credentials` with a JWS client assertion.
//! - `POST /api/v1/{ade}/messages` (§4.5, §4.6): sends one message per recipient.
//! - `GET  /api/v1/{ade}/messages/{messageId}?format=fullExtended|full|metadata|minimal`:
//!   a JSON array with one Message.
//! - `GET  /api/v1/{ade}/messages/{messageId}/evidences?type=&downloaded=`
//! - `GET  /api/v1/{ade}/messages/evidences/{evidenceId}`: the evidence document (XML).
//!
//! Token checks, in this order (each refusal names its reason in `error_description`):
//! `grant_type`, `client_assertion_type`, `login_hint`, three base64url JWS parts, header
//! `alg` exactly `RS256` (`none` and everything else refused), `iss == sub ==
//! "<ADE>.SYSTEM.<system name>"` of a registered system, that ADE equal to `login_hint`'s,
//! the signature with that system's certificate key, `aud` (string or array) containing
//! `<base>/auth/realms/EDOR` or `<base>/auth/realms/EDOR/protocol/openid-connect/token`,
//! `exp` in the future and at most 10 minutes (+60 s clock skew) ahead, `nbf`/`iat` (when
//! present) not more than 60 s in the future, `jti` present and never seen in a granted
//! request. Malformed requests get HTTP 400, failed client authentication HTTP 401, both
//! `{"error": …, "error_description": …}` as Keycloak answers.
//!
//! Message life (sender's view; evidence codes are this simulator's **inferred** mapping, the
//! spec (§4.6) says their real meaning is not confirmed):
//! - submission: status "Przekazana do wysyłki", evidence **A.1** (submission acceptance);
//! - dispatch ([`EdoreczeniaSimHandle::dispatch`], or automatically after
//!   [`EdoreczeniaSimConfig::dispatch_after`], or implied by any later event): "Wysłana";
//! - [`EdoreczeniaSimHandle::receive`] (the recipient opened it) or, automatically, after
//!   [`EdoreczeniaSimConfig::auto_deliver_after`]: "Doręczona", `receiptDate` set,
//!   `opened` true, evidence **D.1**;
//! - [`EdoreczeniaSimHandle::deem_delivered`]: "Uznana za doręczoną", `receiptDate` set,
//!   evidence **D.2**;
//! - [`EdoreczeniaSimHandle::fail_delivery`]: "Niedoręczona", evidence **D.3** with
//!   `reasonDetails`.
//!
//! Choices where the spec is silent (documented so tests can rely on them):
//! - The address base holds [`EdoreczeniaSimConfig::mailboxes`] and the ADEs of the
//!   registered systems. A recipient must have a valid ADE (format and check digits, §4.4)
//!   and be in that base.
//! - A message is visible only under its sender's ADE; `opened` there reports whether the
//!   recipient opened it.
//! - 400 answers are the ErrorResponse array `[{"error", "error_description"}]`; the `error`
//!   codes (`invalid_address`, `unknown_address`, `invalid_attachment`, `invalid_message`) are
//!   this simulator's own. 401 on the UA API carries the same array with `error`
//!   `"unauthorized"` and `WWW-Authenticate: Bearer error="invalid_token"`.
//! - Only `shippingService` "electronic" (or absent) is simulated; "hybrid" is a 400.
//! - The evidence document is an unsigned XML of this simulator's own design
//!   (namespace [`NS_EVIDENCE`]): the real format was not found (§5).
//! - No mTLS: the spec leaves it unresolved (§4.3).
//!
//! Faults for tests: [`EdoreczeniaSimHandle::fail_next`] (UA API) and
//! [`EdoreczeniaSimHandle::fail_next_token`] queue HTTP 500, HTTP 429 (both without
//! processing) or a slow answer (processed, answered late).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use serde_json::{json, Value};
use sha3::Digest as _;
use x509_cert::der::{Decode as _, Encode as _};

use crate::xml::escape_into;

/// The token endpoint's path under the base URL.
pub const TOKEN_PATH: &str = "/auth/realms/EDOR/protocol/openid-connect/token";
/// The realm's issuer path: one of the two accepted audiences.
pub const REALM_PATH: &str = "/auth/realms/EDOR";
/// Namespace of this simulator's own evidence documents.
pub const NS_EVIDENCE: &str = "urn:gsko:sim:edoreczenia:evidence:1";
/// Lifetime of an access token, seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 300;
/// The farthest `exp` may lie in the future, seconds (plus [`CLOCK_SKEW_SECS`]).
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 600;
/// Tolerated clock difference for `exp`, `nbf` and `iat`, seconds.
pub const CLOCK_SKEW_SECS: i64 = 60;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// ---------------------------------------------------------------------------------------
// ADE addresses (§4.4).

/// The two check digits of an ADE: `|Σ ASCII(letters) − (D1 + D2)|`, then the sum of that
/// number's decimal digits. `d1`, `d2` are the two five-digit groups as numbers.
pub fn ade_check_digits(d1: u32, d2: u32, letters: &str) -> u32 {
    let ascii: i64 = letters.bytes().map(i64::from).sum();
    let base = (ascii - (i64::from(d1) + i64::from(d2))).unsigned_abs();
    base.to_string().bytes().map(|b| u32::from(b - b'0')).sum()
}

/// Checks `AE:PL-DDDDD-DDDDD-LLLLL-CC` and its check digits; the error says what is wrong.
pub fn check_ade(ade: &str) -> Result<(), String> {
    let rest = ade
        .strip_prefix("AE:PL-")
        .ok_or_else(|| format!("{ade:?} does not start with \"AE:PL-\""))?;
    let parts: Vec<&str> = rest.split('-').collect();
    let [d1, d2, letters, cc] = parts.as_slice() else {
        return Err(format!(
            "{ade:?} is not AE:PL-DDDDD-DDDDD-LLLLL-CC (wrong number of groups)"
        ));
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(d1, 5) || !digits(d2, 5) {
        return Err(format!(
            "{ade:?}: the first two groups must be 5 digits each"
        ));
    }
    if !(letters.len() == 5 && letters.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(format!("{ade:?}: the third group must be 5 letters A-Z"));
    }
    if !digits(cc, 2) {
        return Err(format!("{ade:?}: the check group must be 2 digits"));
    }
    let (Ok(n1), Ok(n2), Ok(given)) = (d1.parse(), d2.parse(), cc.parse::<u32>()) else {
        return Err(format!("{ade:?}: digits do not parse"));
    };
    let expected = ade_check_digits(n1, n2, letters);
    if expected != given {
        return Err(format!(
            "{ade:?}: check digits {cc} are wrong, expected {expected:02}"
        ));
    }
    Ok(())
}

/// A valid ADE address, deterministic in `seed` (different seeds give different addresses
/// with overwhelming probability).
pub fn ade_address(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xADE0_ADE0_ADE0_ADE0);
    let d1: u32 = rng.gen_range(0..100_000);
    let d2: u32 = rng.gen_range(0..100_000);
    let letters: String = (0..5)
        .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
        .collect();
    let cc = ade_check_digits(d1, d2, &letters);
    format!("AE:PL-{d1:05}-{d2:05}-{letters}-{cc:02}")
}

/// `base64(hex(SHA3-512(data)))` with lowercase hex: the `fileMetadata.hash` form (§4.6).
pub fn attachment_hash(data: &[u8]) -> String {
    let digest = sha3::Sha3_512::digest(data);
    base64::engine::general_purpose::STANDARD.encode(hex::encode(digest))
}

// ---------------------------------------------------------------------------------------
// Configuration and public types.

/// A system registered for an ADE: it authenticates as `<ade>.SYSTEM.<system_name>` with a
/// JWS signed by the RSA key of `certificate_der`.
#[derive(Debug, Clone)]
pub struct RegisteredSystem {
    pub ade: String,
    pub system_name: String,
    pub certificate_der: Vec<u8>,
}

/// What the simulator knows.
#[derive(Debug, Clone, Default)]
pub struct EdoreczeniaSimConfig {
    pub systems: Vec<RegisteredSystem>,
    /// ADE addresses that exist in the address base (residents' boxes…).
    pub mailboxes: Vec<String>,
    /// Receive every message automatically this long after submission.
    pub auto_deliver_after: Option<Duration>,
    /// Move every message to "Wysłana" this long after submission; `None`: only on
    /// [`EdoreczeniaSimHandle::dispatch`] or a delivery event.
    pub dispatch_after: Option<Duration>,
}

impl EdoreczeniaSimConfig {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_system(mut self, ade: &str, system_name: &str, certificate_der: Vec<u8>) -> Self {
        self.systems.push(RegisteredSystem {
            ade: ade.to_string(),
            system_name: system_name.to_string(),
            certificate_der,
        });
        self
    }

    pub fn with_mailbox(mut self, ade: &str) -> Self {
        self.mailboxes.push(ade.to_string());
        self
    }
}

/// A fault for the next request(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer 500 without doing anything.
    Http500,
    /// Answer 429 (`Retry-After: 1`) without doing anything.
    Http429,
    /// Do the work, answer after this delay.
    Slow(Duration),
}

/// The status of a message (`messageControlData.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Submitted,
    Sent,
    Delivered,
    DeemedDelivered,
    NotDelivered,
}

impl MessageStatus {
    /// The API's text.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Submitted => "Przekazana do wysyłki",
            MessageStatus::Sent => "Wysłana",
            MessageStatus::Delivered => "Doręczona",
            MessageStatus::DeemedDelivered => "Uznana za doręczoną",
            MessageStatus::NotDelivered => "Niedoręczona",
        }
    }

    fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered | MessageStatus::DeemedDelivered | MessageStatus::NotDelivered
        )
    }
}

/// An attachment as the simulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAttachment {
    pub order: i64,
    pub attachment_id: Option<String>,
    pub file_id: String,
    pub filename: String,
    pub content_type: Option<String>,
    /// The decoded file.
    pub data: Vec<u8>,
    pub hash: String,
}

/// One evidence (dowód).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvidence {
    pub evidence_id: String,
    pub message_id: String,
    /// "A.1", "D.1", "D.2" or "D.3".
    pub kind: String,
    pub event_date: String,
    pub reason_details: Option<String>,
    pub downloaded: bool,
}

/// A snapshot of one sent message (one recipient).
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub message_id: String,
    pub sender_ade: String,
    pub recipient_ade: String,
    pub subject: String,
    pub text_body: Option<String>,
    pub thread_id: Option<String>,
    pub attachments: Vec<SentAttachment>,
    pub status: MessageStatus,
    pub opened: bool,
    pub submission_date: String,
    pub receipt_date: Option<String>,
    pub evidences: Vec<SimEvidence>,
    /// The request body as received.
    pub request: Value,
}

/// One call of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub login_hint: Option<String>,
    /// `iss` of the assertion, when it could be read.
    pub client_id: Option<String>,
    pub jti: Option<String>,
    /// `None`: a token was granted; otherwise why not.
    pub refusal: Option<String>,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// e.g. "token", "send", "get message".
    pub endpoint: String,
    pub status: u16,
    pub reason: String,
}

/// Errors of the handle's methods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdoreczeniaSimError {
    #[error("e-Doręczenia sim: no message {0}")]
    UnknownMessage(String),
    #[error("e-Doręczenia sim: message {id} is already final ({status})")]
    AlreadyFinal { id: String, status: &'static str },
}

// ---------------------------------------------------------------------------------------
// State.

struct Msg {
    snapshot: SentMessage,
}

struct Token {
    ade: String,
    expires: Instant,
}

#[derive(Default)]
struct Data {
    messages: Vec<Msg>,
    tokens: HashMap<String, Token>,
    seen_jti: HashSet<String>,
    api_failures: VecDeque<Failure>,
    token_failures: VecDeque<Failure>,
    token_requests: Vec<TokenRequest>,
    rejections: Vec<Rejection>,
}

struct System {
    ade: String,
    name: String,
    key: rsa::RsaPublicKey,
}

struct Shared {
    base_url: String,
    systems: Vec<System>,
    address_base: HashSet<String>,
    auto_deliver_after: Option<Duration>,
    dispatch_after: Option<Duration>,
    data: Mutex<Data>,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock only happens in a failing test; keep serving.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_rejection(&self, endpoint: &str, status: StatusCode, reason: &str) {
        // The reason can name a resident's ADE: it stays in `rejections`, out of the log.
        tracing::debug!(
            endpoint,
            status = status.as_u16(),
            "e-Doręczenia sim: request refused"
        );
        self.lock().rejections.push(Rejection {
            endpoint: endpoint.to_string(),
            status: status.as_u16(),
            reason: reason.to_string(),
        });
    }

    /// The UA API's ErrorResponse (an array).
    fn api_error(&self, endpoint: &str, status: StatusCode, error: &str, reason: &str) -> Response {
        self.record_rejection(endpoint, status, reason);
        let body = json!([{"error": error, "error_description": reason}]);
        if status == StatusCode::UNAUTHORIZED {
            (
                status,
                [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
                axum::Json(body),
            )
                .into_response()
        } else {
            (status, axum::Json(body)).into_response()
        }
    }
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The RSA public key of a DER certificate.
fn certificate_key(der: &[u8]) -> Result<rsa::RsaPublicKey, String> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| format!("certificate is not DER X.509: {e}"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("cannot re-encode the SubjectPublicKeyInfo: {e}"))?;
    rsa::RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| format!("certificate key is not RSA: {e}"))
}

// ---------------------------------------------------------------------------------------
// Server.

/// The simulator. Dropping the handle stops the server.
pub struct EdoreczeniaSim;

impl EdoreczeniaSim {
    /// Starts the server on `127.0.0.1:0` inside the current Tokio runtime. Fails with
    /// [`std::io::ErrorKind::InvalidInput`] when a registered certificate has no RSA key.
    pub async fn start(config: EdoreczeniaSimConfig) -> std::io::Result<EdoreczeniaSimHandle> {
        let mut systems = Vec::new();
        for s in &config.systems {
            let key = certificate_key(&s.certificate_der).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("system {}.SYSTEM.{}: {e}", s.ade, s.system_name),
                )
            })?;
            systems.push(System {
                ade: s.ade.clone(),
                name: s.system_name.clone(),
                key,
            });
        }
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let address_base = config
            .mailboxes
            .iter()
            .chain(config.systems.iter().map(|s| &s.ade))
            .cloned()
            .collect();
        let shared = Arc::new(Shared {
            base_url: base_url.clone(),
            systems,
            address_base,
            auto_deliver_after: config.auto_deliver_after,
            dispatch_after: config.dispatch_after,
            data: Mutex::new(Data::default()),
            runtime: tokio::runtime::Handle::current(),
        });
        let app = Router::new()
            .route(TOKEN_PATH, post(token))
            .route("/api/v1/{ade}/messages", post(send_message))
            .route("/api/v1/{ade}/messages/{message_id}", get(get_message))
            .route(
                "/api/v1/{ade}/messages/{message_id}/evidences",
                get(list_evidences),
            )
            .route(
                "/api/v1/{ade}/messages/evidences/{evidence_id}",
                get(evidence_document),
            )
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
                tracing::warn!(error = %e, "e-Doręczenia sim server stopped");
            }
        });
        Ok(EdoreczeniaSimHandle {
            base_url,
            shared,
            stop: Some(stop_tx),
            server,
        })
    }
}

/// Control of a running simulator.
pub struct EdoreczeniaSimHandle {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for EdoreczeniaSimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing to do then.
            stop.send(()).ok();
        }
        self.server.abort();
    }
}

impl EdoreczeniaSimHandle {
    /// `<base>/auth/realms/EDOR/protocol/openid-connect/token`: also an accepted `aud`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url)
    }

    /// `<base>/auth/realms/EDOR`: the other accepted `aud`.
    pub fn realm_url(&self) -> String {
        format!("{}{REALM_PATH}", self.base_url)
    }

    /// `<base>/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.base_url)
    }

    /// Queues `failure` for each of the next `n` UA API requests.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut d = self.shared.lock();
        d.api_failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Queues `failure` for each of the next `n` token requests.
    pub fn fail_next_token(&self, n: usize, failure: Failure) {
        let mut d = self.shared.lock();
        d.token_failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Makes every access token issued so far expired.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for t in self.shared.lock().tokens.values_mut() {
            t.expires = now;
        }
    }

    /// Every message sent, in submission order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared
            .lock()
            .messages
            .iter()
            .map(|m| m.snapshot.clone())
            .collect()
    }

    /// One message.
    pub fn message(&self, message_id: &str) -> Option<SentMessage> {
        self.shared
            .lock()
            .messages
            .iter()
            .find(|m| m.snapshot.message_id == message_id)
            .map(|m| m.snapshot.clone())
    }

    /// Every token request, granted or not.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.shared.lock().token_requests.clone()
    }

    /// Every refused request with its reason.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejections.clone()
    }

    /// "Wysłana" (no evidence).
    pub fn dispatch(&self, message_id: &str) -> Result<(), EdoreczeniaSimError> {
        let mut d = self.shared.lock();
        let m = find_mut(&mut d, message_id)?;
        if m.snapshot.status == MessageStatus::Submitted {
            m.snapshot.status = MessageStatus::Sent;
        }
        Ok(())
    }

    /// The recipient opened the message: "Doręczona", `receiptDate`, evidence D.1.
    pub fn receive(&self, message_id: &str) -> Result<(), EdoreczeniaSimError> {
        finalize(&self.shared, message_id, MessageStatus::Delivered, None)
    }

    /// Deemed delivered (the recipient did not open it in time): "Uznana za doręczoną",
    /// `receiptDate`, evidence D.2.
    pub fn deem_delivered(&self, message_id: &str) -> Result<(), EdoreczeniaSimError> {
        finalize(
            &self.shared,
            message_id,
            MessageStatus::DeemedDelivered,
            None,
        )
    }

    /// Delivery failed: "Niedoręczona", evidence D.3 with `reasonDetails`.
    pub fn fail_delivery(&self, message_id: &str, reason: &str) -> Result<(), EdoreczeniaSimError> {
        finalize(
            &self.shared,
            message_id,
            MessageStatus::NotDelivered,
            Some(reason.to_string()),
        )
    }
}

fn find_mut<'a>(d: &'a mut Data, message_id: &str) -> Result<&'a mut Msg, EdoreczeniaSimError> {
    d.messages
        .iter_mut()
        .find(|m| m.snapshot.message_id == message_id)
        .ok_or_else(|| EdoreczeniaSimError::UnknownMessage(message_id.to_string()))
}

fn finalize(
    shared: &Shared,
    message_id: &str,
    status: MessageStatus,
    reason: Option<String>,
) -> Result<(), EdoreczeniaSimError> {
    let mut d = shared.lock();
    let m = find_mut(&mut d, message_id)?;
    if m.snapshot.status.is_final() {
        return Err(EdoreczeniaSimError::AlreadyFinal {
            id: message_id.to_string(),
            status: m.snapshot.status.as_str(),
        });
    }
    let now = now_text();
    let kind = match status {
        MessageStatus::Delivered => "D.1",
        MessageStatus::DeemedDelivered => "D.2",
        _ => "D.3",
    };
    m.snapshot.status = status;
    if status != MessageStatus::NotDelivered {
        m.snapshot.receipt_date = Some(now.clone());
    }
    if status == MessageStatus::Delivered {
        m.snapshot.opened = true;
    }
    m.snapshot.evidences.push(SimEvidence {
        evidence_id: random_uuid(),
        message_id: message_id.to_string(),
        kind: kind.to_string(),
        event_date: now,
        reason_details: reason,
        downloaded: false,
    });
    Ok(())
}

fn take_failure(queue: &mut VecDeque<Failure>) -> Option<Failure> {
    queue.pop_front()
}

/// Applies a queued fault around the work.
async fn with_failure<F>(failure: Option<Failure>, work: F) -> Response
where
    F: FnOnce() -> Response,
{
    match failure {
        Some(Failure::Http500) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(
                json!([{"error": "internal_error", "error_description": "injected HTTP 500"}]),
            ),
        )
            .into_response(),
        Some(Failure::Http429) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            axum::Json(
                json!([{"error": "too_many_requests", "error_description": "injected HTTP 429"}]),
            ),
        )
            .into_response(),
        Some(Failure::Slow(delay)) => {
            let response = work();
            tokio::time::sleep(delay).await;
            response
        }
        None => work(),
    }
}

// ---------------------------------------------------------------------------------------
// Token endpoint (§4.3).

/// A refusal: HTTP status, `error`, `error_description`.
type TokenRefusal = (StatusCode, &'static str, String);

fn client_error(reason: impl Into<String>) -> TokenRefusal {
    (StatusCode::UNAUTHORIZED, "invalid_client", reason.into())
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let failure = take_failure(&mut shared.lock().token_failures);
    with_failure(failure, || token_checked(&shared, &query, &body)).await
}

fn token_checked(shared: &Shared, query: &HashMap<String, String>, body: &Bytes) -> Response {
    let form: HashMap<String, String> = url_form(body);
    let mut record = TokenRequest {
        login_hint: query.get("login_hint").cloned(),
        client_id: None,
        jti: None,
        refusal: None,
    };
    let outcome = verify_assertion(shared, query, &form, &mut record);
    match outcome {
        Ok(ade) => {
            let access_token = random_token();
            let mut d = shared.lock();
            if let Some(jti) = &record.jti {
                d.seen_jti.insert(jti.clone());
            }
            d.tokens.insert(
                access_token.clone(),
                Token {
                    ade,
                    expires: Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
                },
            );
            d.token_requests.push(record);
            axum::Json(json!({
                "access_token": access_token,
                "expires_in": TOKEN_LIFETIME_SECS,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "read_messages write_messages",
            }))
            .into_response()
        }
        Err((status, error, reason)) => {
            record.refusal = Some(reason.clone());
            shared.lock().token_requests.push(record);
            shared.record_rejection("token", status, &reason);
            (
                status,
                axum::Json(json!({"error": error, "error_description": reason})),
            )
                .into_response()
        }
    }
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    // serde_urlencoded is not a dependency; a form is simple enough to read by hand.
    let hex = |b: u8| (b as char).to_digit(16);
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        // Two hex digits make one byte.
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn b64url_json(part: &str, what: &str) -> Result<Value, TokenRefusal> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| client_error(format!("client_assertion {what} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| client_error(format!("client_assertion {what} is not JSON: {e}")))
}

fn numeric_claim(payload: &Value, name: &str) -> Result<Option<i64>, TokenRefusal> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| client_error(format!("claim {name} is not a number"))),
    }
}

/// Returns the ADE the token is for.
fn verify_assertion(
    shared: &Shared,
    query: &HashMap<String, String>,
    form: &HashMap<String, String>,
    record: &mut TokenRequest,
) -> Result<String, TokenRefusal> {
    let bad = |error: &'static str, reason: String| (StatusCode::BAD_REQUEST, error, reason);
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(bad(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported, only client_credentials"),
            ))
        }
        None => {
            return Err(bad(
                "invalid_request",
                "Missing form parameter: grant_type".into(),
            ))
        }
    }
    match form.get("client_assertion_type").map(String::as_str) {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(bad(
                "invalid_client",
                format!("client_assertion_type {other:?} is not {JWT_BEARER}"),
            ))
        }
        None => {
            return Err(bad(
                "invalid_client",
                "Parameter client_assertion_type is missing".into(),
            ))
        }
    }
    let assertion = form
        .get("client_assertion")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            bad(
                "invalid_client",
                "Parameter client_assertion is missing".into(),
            )
        })?;
    let hint = query
        .get("login_hint")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            bad(
                "invalid_request",
                "Missing query parameter: login_hint".into(),
            )
        })?;
    let hint_ade = hint.strip_prefix("ADE.").unwrap_or(hint);

    let parts: Vec<&str> = assertion.split('.').collect();
    let [h64, p64, s64] = parts.as_slice() else {
        return Err(bad(
            "invalid_client",
            format!(
                "client_assertion has {} dot-separated parts, a JWS has 3",
                parts.len()
            ),
        ));
    };
    let header = b64url_json(h64, "header")?;
    match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => {}
        Some(other) => {
            return Err(client_error(format!(
                "JWS alg {other:?} is not accepted, only RS256"
            )))
        }
        None => return Err(client_error("JWS header has no alg")),
    }
    let payload = b64url_json(p64, "payload")?;
    let iss = payload.get("iss").and_then(Value::as_str);
    let sub = payload.get("sub").and_then(Value::as_str);
    record.client_id = iss.map(str::to_string);
    record.jti = payload
        .get("jti")
        .and_then(Value::as_str)
        .map(str::to_string);
    let iss = iss.ok_or_else(|| client_error("claim iss is missing or not a string"))?;
    if sub != Some(iss) {
        return Err(client_error(format!(
            "claim sub {sub:?} differs from iss {iss:?}"
        )));
    }
    let (iss_ade, name) = iss.split_once(".SYSTEM.").ok_or_else(|| {
        client_error(format!("iss {iss:?} is not \"<ADE>.SYSTEM.<system name>\""))
    })?;
    let system = shared
        .systems
        .iter()
        .find(|s| s.ade == iss_ade && s.name == name)
        .ok_or_else(|| client_error(format!("no system registered as {iss:?}")))?;
    if iss_ade != hint_ade {
        return Err(client_error(format!(
            "login_hint ADE {hint_ade:?} differs from the ADE of iss {iss:?}"
        )));
    }
    let signature_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|e| client_error(format!("JWS signature is not base64url: {e}")))?;
    let signature = rsa::pkcs1v15::Signature::try_from(signature_bytes.as_slice())
        .map_err(|e| client_error(format!("JWS signature is malformed: {e}")))?;
    let verifying = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(system.key.clone());
    let signed = format!("{h64}.{p64}");
    verifying
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| {
            client_error(format!(
                "JWS signature does not verify with the certificate registered for {iss:?}"
            ))
        })?;

    let accepted = [
        format!("{}{REALM_PATH}", shared.base_url),
        format!("{}{TOKEN_PATH}", shared.base_url),
    ];
    let auds: Vec<&str> = match payload.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(client_error("claim aud is missing")),
    };
    if !auds.iter().any(|a| accepted.iter().any(|x| x == a)) {
        return Err(client_error(format!(
            "Invalid token audience {auds:?}; expected one of {accepted:?}"
        )));
    }
    let now = chrono::Utc::now().timestamp();
    let exp =
        numeric_claim(&payload, "exp")?.ok_or_else(|| client_error("claim exp is missing"))?;
    if exp <= now {
        return Err(client_error(format!(
            "Token is not active: exp {exp} is {} s in the past",
            now - exp
        )));
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS + CLOCK_SKEW_SECS {
        return Err(client_error(format!(
            "exp {exp} is {} s ahead, more than {MAX_ASSERTION_LIFETIME_SECS} s",
            exp - now
        )));
    }
    for claim in ["nbf", "iat"] {
        if let Some(t) = numeric_claim(&payload, claim)? {
            if t > now + CLOCK_SKEW_SECS {
                return Err(client_error(format!(
                    "claim {claim} {t} is {} s in the future",
                    t - now
                )));
            }
        }
    }
    let jti = record
        .jti
        .as_deref()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| client_error("claim jti is missing"))?;
    if shared.lock().seen_jti.contains(jti) {
        return Err(client_error(format!(
            "Token reuse detected: jti {jti:?} was already used"
        )));
    }
    Ok(system.ade.clone())
}

// ---------------------------------------------------------------------------------------
// UA API (§4.5).

/// Checks the Bearer token against the path's ADE; the error is the reason.
fn authorize(shared: &Shared, headers: &HeaderMap, ade: &str) -> Result<(), String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("no Authorization header")?
        .to_str()
        .map_err(|_| "Authorization header is not ASCII")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("Authorization is not \"Bearer <token>\"")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!("Authorization scheme {scheme:?} is not Bearer"));
    }
    let d = shared.lock();
    let t = d.tokens.get(token.trim()).ok_or("unknown access token")?;
    if t.expires <= Instant::now() {
        return Err("access token expired".into());
    }
    if t.ade != ade {
        return Err(format!("the access token is for {}, not for {ade}", t.ade));
    }
    Ok(())
}

async fn send_message(
    State(shared): State<Arc<Shared>>,
    Path(ade): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let failure = take_failure(&mut shared.lock().api_failures);
    with_failure(failure, || {
        if let Err(reason) = authorize(&shared, &headers, &ade) {
            return shared.api_error("send", StatusCode::UNAUTHORIZED, "unauthorized", &reason);
        }
        match read_message(&shared, &ade, &body) {
            Ok(messages) => {
                let answer: Vec<Value> = messages
                    .iter()
                    .map(|m| {
                        json!({
                            "messageId": m.message_id,
                            "addresseeAde": m.recipient_ade,
                            "status": "SUCCESS",
                        })
                    })
                    .collect();
                let ids: Vec<String> = messages.iter().map(|m| m.message_id.clone()).collect();
                {
                    let mut d = shared.lock();
                    d.messages
                        .extend(messages.into_iter().map(|snapshot| Msg { snapshot }));
                }
                schedule(&shared, &ids);
                axum::Json(json!({"messages": answer})).into_response()
            }
            Err((error, reason)) => {
                shared.api_error("send", StatusCode::BAD_REQUEST, error, &reason)
            }
        }
    })
    .await
}

fn schedule(shared: &Arc<Shared>, ids: &[String]) {
    if let Some(delay) = shared.dispatch_after {
        for id in ids {
            let (s, id) = (shared.clone(), id.clone());
            shared.runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                let mut d = s.lock();
                if let Ok(m) = find_mut(&mut d, &id) {
                    if m.snapshot.status == MessageStatus::Submitted {
                        m.snapshot.status = MessageStatus::Sent;
                    }
                }
            });
        }
    }
    if let Some(delay) = shared.auto_deliver_after {
        for id in ids {
            let (s, id) = (shared.clone(), id.clone());
            shared.runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                // Already final (a test decided otherwise): nothing to do.
                finalize(&s, &id, MessageStatus::Delivered, None).ok();
            });
        }
    }
}

type Invalid = (&'static str, String);

fn read_message(shared: &Shared, sender: &str, body: &[u8]) -> Result<Vec<SentMessage>, Invalid> {
    let invalid = |reason: String| ("invalid_message", reason);
    let request: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("body is not JSON: {e}")))?;
    let meta = request
        .get("messageMetadata")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("messageMetadata is missing or not an object".into()))?;
    let subject = meta
        .get("subject")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("messageMetadata.subject is missing or empty".into()))?;
    if let Some(service) = meta.get("shippingService") {
        if service.as_str() != Some("electronic") {
            return Err(invalid(format!(
                "messageMetadata.shippingService {service} is not simulated, only \"electronic\""
            )));
        }
    }
    if let Some(from) = meta.get("from") {
        let from_ade = from.get("eDeliveryAddress").and_then(Value::as_str);
        if from_ade.is_some_and(|f| f != sender) {
            return Err(invalid(format!(
                "messageMetadata.from.eDeliveryAddress {from_ade:?} is not the sender {sender}"
            )));
        }
    }
    let to = meta
        .get("to")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("messageMetadata.to is missing or empty".into()))?;
    let mut recipients = Vec::new();
    for (i, r) in to.iter().enumerate() {
        let ade = r
            .get("eDeliveryAddress")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                (
                    "invalid_address",
                    format!("messageMetadata.to[{i}].eDeliveryAddress is missing"),
                )
            })?;
        check_ade(ade).map_err(|e| {
            (
                "invalid_address",
                format!("messageMetadata.to[{i}].eDeliveryAddress: {e}"),
            )
        })?;
        if !shared.address_base.contains(ade) {
            return Err((
                "unknown_address",
                format!(
                    "messageMetadata.to[{i}].eDeliveryAddress {ade} is not in the address base"
                ),
            ));
        }
        recipients.push(ade.to_string());
    }
    let text_body = match request.get("textBody") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("textBody is not a string".into())),
    };
    let attachments = match request.get("attachments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, a)| read_attachment(i, a))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(invalid("attachments is not an array".into())),
    };
    let thread_id = meta
        .get("threadId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let now = now_text();
    Ok(recipients
        .into_iter()
        .map(|recipient| {
            let message_id = random_uuid();
            SentMessage {
                evidences: vec![SimEvidence {
                    evidence_id: random_uuid(),
                    message_id: message_id.clone(),
                    kind: "A.1".into(),
                    event_date: now.clone(),
                    reason_details: None,
                    downloaded: false,
                }],
                message_id,
                sender_ade: sender.to_string(),
                recipient_ade: recipient,
                subject: subject.to_string(),
                text_body: text_body.clone(),
                thread_id: thread_id.clone(),
                attachments: attachments.clone(),
                status: MessageStatus::Submitted,
                opened: false,
                submission_date: now.clone(),
                receipt_date: None,
                request: request.clone(),
            }
        })
        .collect())
}

fn read_attachment(i: usize, a: &Value) -> Result<SentAttachment, Invalid> {
    let invalid = |reason: String| ("invalid_attachment", format!("attachments[{i}]: {reason}"));
    let file = a
        .get("file")
        .ok_or_else(|| invalid("file is missing".into()))?;
    let meta = file
        .get("fileMetadata")
        .ok_or_else(|| invalid("file.fileMetadata is missing".into()))?;
    let text = |name: &str| meta.get(name).and_then(Value::as_str);
    let file_id = text("fileId").ok_or_else(|| invalid("fileMetadata.fileId is missing".into()))?;
    uuid::Uuid::parse_str(file_id).map_err(|e| {
        invalid(format!(
            "fileMetadata.fileId {file_id:?} is not a UUID: {e}"
        ))
    })?;
    let filename = text("filename")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| invalid("fileMetadata.filename is missing".into()))?;
    match text("alg") {
        Some("SHA-3") => {}
        other => {
            return Err(invalid(format!(
                "fileMetadata.alg {other:?} is not \"SHA-3\""
            )))
        }
    }
    let encoded = file
        .get("file")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("file.file (base64 content) is missing".into()))?;
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let data = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| invalid(format!("file.file is not base64: {e}")))?;
    let size = meta
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("fileMetadata.size is missing or not an integer".into()))?;
    if size != data.len() as u64 {
        return Err(invalid(format!(
            "fileMetadata.size {size} differs from the decoded file's {} bytes",
            data.len()
        )));
    }
    let hash = text("hash").ok_or_else(|| invalid("fileMetadata.hash is missing".into()))?;
    let expected = attachment_hash(&data);
    if hash != expected {
        return Err(invalid(format!(
            "fileMetadata.hash {hash:?} is not base64(hex(SHA3-512(file))) = {expected:?}"
        )));
    }
    Ok(SentAttachment {
        order: a.get("order").and_then(Value::as_i64).unwrap_or(i as i64),
        attachment_id: a
            .get("attachmentId")
            .and_then(Value::as_str)
            .map(str::to_string),
        file_id: file_id.to_string(),
        filename: filename.to_string(),
        content_type: text("contentType").map(str::to_string),
        data,
        hash: hash.to_string(),
    })
}

fn evidence_json(shared: &Shared, ade: &str, e: &SimEvidence) -> Value {
    let mut v = json!({
        "evidenceId": e.evidence_id,
        "messageId": e.message_id,
        "createDate": e.event_date,
        "eventDate": e.event_date,
        "type": e.kind,
        "externalData": format!(
            "{}/api/v1/{ade}/messages/evidences/{}",
            shared.base_url, e.evidence_id
        ),
        "downloaded": e.downloaded,
    });
    if let Some(r) = &e.reason_details {
        v["reasonDetails"] = json!(r);
    }
    v
}

fn message_json(shared: &Shared, m: &SentMessage, format: &str) -> Value {
    let mut out = json!({
        "messageControlData": {
            "status": m.status.as_str(),
            "messageType": "Message",
            "opened": m.opened,
            "labels": [{"label": "SENT"}],
        },
        "messageMetadata": {
            "messageId": m.message_id,
            "subject": m.subject,
            "from": {"eDeliveryAddress": m.sender_ade},
            "to": [{"eDeliveryAddress": m.recipient_ade}],
            "submissionDate": m.submission_date,
            "eventDate": m.submission_date,
            "receiptDate": m.receipt_date,
            "shippingService": "electronic",
            "threadId": m.thread_id,
        },
    });
    if format == "full" || format == "fullExtended" {
        out["textBody"] = json!(m.text_body);
        out["attachments"] = m
            .attachments
            .iter()
            .map(|a| {
                json!({
                    "order": a.order,
                    "attachmentId": a.attachment_id.clone().unwrap_or_else(|| a.file_id.clone()),
                    "file": {"fileMetadata": {
                        "fileId": a.file_id,
                        "filename": a.filename,
                        "contentType": a.content_type,
                        "size": a.data.len(),
                        "alg": "SHA-3",
                        "hash": a.hash,
                    }},
                })
            })
            .collect();
    }
    if format == "fullExtended" {
        out["evidences"] = m
            .evidences
            .iter()
            .map(|e| evidence_json(shared, &m.sender_ade, e))
            .collect();
    }
    out
}

async fn get_message(
    State(shared): State<Arc<Shared>>,
    Path((ade, message_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let failure = take_failure(&mut shared.lock().api_failures);
    with_failure(failure, || {
        if let Err(reason) = authorize(&shared, &headers, &ade) {
            return shared.api_error(
                "get message",
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &reason,
            );
        }
        let format = query.get("format").map(String::as_str).unwrap_or("full");
        if !matches!(format, "fullExtended" | "full" | "metadata" | "minimal") {
            return shared.api_error(
                "get message",
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("format {format:?} is not fullExtended|full|metadata|minimal"),
            );
        }
        let found = shared
            .lock()
            .messages
            .iter()
            .find(|m| m.snapshot.message_id == message_id && m.snapshot.sender_ade == ade)
            .map(|m| m.snapshot.clone());
        match found {
            Some(m) => axum::Json(json!([message_json(&shared, &m, format)])).into_response(),
            None => shared.api_error(
                "get message",
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no message {message_id} in the box {ade}"),
            ),
        }
    })
    .await
}

async fn list_evidences(
    State(shared): State<Arc<Shared>>,
    Path((ade, message_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let failure = take_failure(&mut shared.lock().api_failures);
    with_failure(failure, || {
        if let Err(reason) = authorize(&shared, &headers, &ade) {
            return shared.api_error(
                "list evidences",
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &reason,
            );
        }
        let found = shared
            .lock()
            .messages
            .iter()
            .find(|m| m.snapshot.message_id == message_id && m.snapshot.sender_ade == ade)
            .map(|m| m.snapshot.evidences.clone());
        let Some(evidences) = found else {
            return shared.api_error(
                "list evidences",
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no message {message_id} in the box {ade}"),
            );
        };
        let kind = query.get("type");
        let downloaded = query.get("downloaded").map(|d| d == "true");
        let list: Vec<Value> = evidences
            .iter()
            .filter(|e| kind.is_none_or(|k| *k == e.kind))
            .filter(|e| downloaded.is_none_or(|d| d == e.downloaded))
            .map(|e| evidence_json(&shared, &ade, e))
            .collect();
        axum::Json(json!({"evidences": list})).into_response()
    })
    .await
}

async fn evidence_document(
    State(shared): State<Arc<Shared>>,
    Path((ade, evidence_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let failure = take_failure(&mut shared.lock().api_failures);
    with_failure(failure, || {
        if let Err(reason) = authorize(&shared, &headers, &ade) {
            return shared.api_error(
                "evidence document",
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &reason,
            );
        }
        let mut d = shared.lock();
        let found = d
            .messages
            .iter_mut()
            .filter(|m| m.snapshot.sender_ade == ade)
            .find_map(|m| {
                let msg = m.snapshot.clone();
                m.snapshot
                    .evidences
                    .iter_mut()
                    .find(|e| e.evidence_id == evidence_id)
                    .map(|e| {
                        e.downloaded = true;
                        evidence_xml(&msg, e)
                    })
            });
        drop(d);
        match found {
            Some(xml) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/xml")],
                xml,
            )
                .into_response(),
            None => shared.api_error(
                "evidence document",
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no evidence {evidence_id} in the box {ade}"),
            ),
        }
    })
    .await
}

/// This simulator's own evidence document (the real format was not found, §5).
fn evidence_xml(m: &SentMessage, e: &SimEvidence) -> Vec<u8> {
    let mut out = Vec::new();
    let el = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(format!("<ev:{name}>").as_bytes());
        escape_into(out, value);
        out.extend_from_slice(format!("</ev:{name}>").as_bytes());
    };
    out.extend_from_slice(
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ev:Evidence xmlns:ev=\"{NS_EVIDENCE}\">"
        )
        .as_bytes(),
    );
    el(&mut out, "EvidenceId", &e.evidence_id);
    el(&mut out, "Type", &e.kind);
    el(&mut out, "MessageId", &e.message_id);
    el(&mut out, "EventTime", &e.event_date);
    el(&mut out, "SenderAde", &m.sender_ade);
    el(&mut out, "RecipientAde", &m.recipient_ade);
    el(&mut out, "Subject", &m.subject);
    if let Some(r) = &e.reason_details {
        el(&mut out, "ReasonDetails", r);
    }
    out.extend_from_slice(b"<ev:Attachments>");
    for a in &m.attachments {
        out.extend_from_slice(b"<ev:Attachment fileId=\"");
        escape_into(&mut out, &a.file_id);
        out.extend_from_slice(b"\" filename=\"");
        escape_into(&mut out, &a.filename);
        out.extend_from_slice(b"\" alg=\"SHA3-512\">");
        out.extend_from_slice(hex::encode(sha3::Sha3_512::digest(&a.data)).as_bytes());
        out.extend_from_slice(b"</ev:Attachment>");
    }
    out.extend_from_slice(b"</ev:Attachments></ev:Evidence>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_addresses_have_valid_check_digits() {
        for ade in [
            "AE:PL-97075-47631-STVJH-19",
            "AE:PL-00000-00014-AAAAA-05",
            "AE:PL-00000-00013-AAAAA-06",
            "AE:PL-13447-72418-ECVIU-30",
            "AE:PL-25888-20449-HTFCF-29",
        ] {
            assert_eq!(check_ade(ade), Ok(()), "{ade}");
        }
        assert!(check_ade("AE:PL-97075-47631-STVJH-18")
            .unwrap_err()
            .contains("expected 19"));
        assert!(check_ade("AE:PL-97075-47631-STVjH-19").is_err());
        assert!(check_ade("AE:PL-9707-47631-STVJH-19").is_err());
    }

    #[test]
    fn generated_addresses_are_valid_and_distinct() {
        let a: Vec<String> = (0..50).map(ade_address).collect();
        for ade in &a {
            assert_eq!(check_ade(ade), Ok(()), "{ade}");
        }
        let unique: HashSet<&String> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        assert_eq!(ade_address(7), ade_address(7));
    }

    #[test]
    fn hash_is_base64_of_lowercase_hex() {
        // SHA3-512("") = a69f73cca23a9ac5…
        let h = attachment_hash(b"");
        let hex = base64::engine::general_purpose::STANDARD.decode(h).unwrap();
        let hex = String::from_utf8(hex).unwrap();
        assert_eq!(hex.len(), 128);
        assert!(hex.starts_with("a69f73cca23a9ac5"));
    }

    #[test]
    fn form_decoding() {
        let f = url_form(b"a=b%3Ac+d&e=&f");
        assert_eq!(f["a"], "b:c d");
        assert_eq!(f["e"], "");
        assert_eq!(f["f"], "");
    }
}
