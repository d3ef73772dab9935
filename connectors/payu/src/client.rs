//! The HTTP client: OAuth token cache, orders, refunds.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{redirect, Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::config::{PayuConfig, Secret};
use crate::error::{NotificationError, PayuError};
use crate::model::*;
use crate::notification::{self, NotificationKey};

const TOKEN_PATH: [&str; 5] = ["pl", "standard", "user", "oauth", "authorize"];
const ORDERS_PATH: [&str; 3] = ["api", "v2_1", "orders"];

/// A cached OAuth access token.
struct CachedToken {
    value: Secret,
    /// When to fetch a new one: a little before PayU's expiry, so a request never leaves
    /// with a token that dies in flight.
    renew_at: Instant,
}

struct Inner {
    cfg: PayuConfig,
    base: Url,
    http: reqwest::Client,
    /// Held across a token fetch on purpose: concurrent callers wait for the one refresh in
    /// flight instead of each asking PayU for a token.
    token: Mutex<Option<CachedToken>>,
    token_fetches: AtomicU64,
}

/// Client of one PayU POS. Cheap to clone; clones share the token cache.
///
/// Retries (see [`crate::RetryPolicy`]) apply only to transient failures and only where
/// repeating is harmless:
/// - token requests and order reads are side-effect free;
/// - order creation is retried because PayU keeps `extOrderId` unique per POS and answers a
///   repeat with `ERROR_ORDER_NOT_UNIQUE` instead of creating a second order (spec §2.3);
/// - refunds are retried because PayU treats an identical refund request as the same refund
///   (spec §2.6), and [`RefundRequest::ext_refund_id`] makes it identical.
///
/// An API call answered 401 gets one new token and one more try (the token may have been
/// revoked or expired early on PayU's side).
#[derive(Clone)]
pub struct PayuClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PayuClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayuClient")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// Raw answer of one exchange.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl PayuClient {
    /// Builds the client. Redirects are never followed: PayU answers order creation with 302
    /// and the JSON we need is in that response's body, not behind its `Location`.
    pub fn new(cfg: PayuConfig) -> Result<Self, PayuError> {
        let base =
            Url::parse(&cfg.base_url).map_err(|e| PayuError::Config(format!("base_url: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(PayuError::Config("base_url must be an http(s) URL".into()));
        }
        if cfg.pos_id.is_empty() || cfg.client_id.is_empty() {
            return Err(PayuError::Config(
                "pos_id and client_id are required".into(),
            ));
        }
        if cfg.client_secret.expose().is_empty() || cfg.second_key.expose().is_empty() {
            // An empty second key would make every signature forgeable.
            return Err(PayuError::Config(
                "client_secret and second_key are required".into(),
            ));
        }
        if cfg.timeout.is_zero() {
            return Err(PayuError::Config("timeout must be positive".into()));
        }
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| PayuError::Config(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                base,
                http,
                token: Mutex::new(None),
                token_fetches: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PayuConfig {
        &self.inner.cfg
    }

    /// How many access tokens this client has requested (a metric, and a test hook).
    pub fn token_fetches(&self) -> u64 {
        self.inner.token_fetches.load(Ordering::Relaxed)
    }

    /// Creates an order and returns PayU's order id and the payer's redirect URI.
    ///
    /// 302 and 201 are both success (spec §2.3): the answer's JSON body carries `orderId`
    /// and `redirectUri` either way.
    pub async fn create_order(&self, order: &Order) -> Result<CreatedOrder, PayuError> {
        validate_order(order)?;
        let products = order
            .products
            .iter()
            .map(|p| WireProduct {
                name: &p.name,
                unit_price: p.unit_price.to_string(),
                quantity: p.quantity.to_string(),
            })
            .collect();
        let wire = WireOrderRequest {
            notify_url: order.notify_url.as_deref(),
            continue_url: order.continue_url.as_deref(),
            customer_ip: &order.customer_ip,
            merchant_pos_id: &self.inner.cfg.pos_id,
            description: &order.description,
            currency_code: &order.currency,
            total_amount: order.total_amount.to_string(),
            ext_order_id: &order.ext_order_id,
            buyer: order.buyer.as_ref(),
            products,
        };
        let body = serde_json::to_vec(&wire).map_err(|e| PayuError::InvalidInput(e.to_string()))?;
        let url = self.url(&ORDERS_PATH, &[])?;
        self.with_retry("create_order", |attempt| {
            let url = url.clone();
            let body = body.clone();
            async move {
                let answer = self.send_authed(Method::POST, url, Some(body)).await?;
                match parse_create(answer) {
                    Err(PayuError::OrderNotUnique { .. }) => Err(PayuError::OrderNotUnique {
                        after_retry: attempt > 1,
                    }),
                    other => other,
                }
            }
        })
        .await
    }

    /// Current state of an order.
    pub async fn order(&self, order_id: &str) -> Result<OrderInfo, PayuError> {
        check_id(order_id)?;
        let url = self.url(&ORDERS_PATH, &[order_id])?;
        self.with_retry("order", |_| {
            let url = url.clone();
            async move {
                let answer = self.send_authed(Method::GET, url, None).await?;
                let resp: WireOrdersResponse = parse_ok(answer)?;
                let o = resp
                    .orders
                    .into_iter()
                    .next()
                    .ok_or_else(|| PayuError::Protocol("no order in the answer".into()))?;
                Ok(OrderInfo {
                    order_id: o.order_id,
                    ext_order_id: o.ext_order_id,
                    status: o.status,
                    total_amount: o.total_amount,
                    currency: o.currency_code,
                })
            }
        })
        .await
    }

    /// Refunds all or part of a completed order.
    pub async fn refund(
        &self,
        order_id: &str,
        request: &RefundRequest,
    ) -> Result<RefundInfo, PayuError> {
        check_id(order_id)?;
        if request.ext_refund_id.is_empty() || request.ext_refund_id.len() > 1024 {
            return Err(PayuError::InvalidInput(
                "ext_refund_id must be 1..=1024 chars".into(),
            ));
        }
        if request.description.is_empty() {
            return Err(PayuError::InvalidInput(
                "refund description is required".into(),
            ));
        }
        if request.amount == Some(0) {
            return Err(PayuError::InvalidInput(
                "refund amount must be positive".into(),
            ));
        }
        let wire = WireRefundRequestBody {
            refund: WireRefundRequest {
                description: &request.description,
                amount: request.amount.map(|a| a.to_string()),
                ext_refund_id: &request.ext_refund_id,
            },
        };
        let body = serde_json::to_vec(&wire).map_err(|e| PayuError::InvalidInput(e.to_string()))?;
        let url = self.url(&ORDERS_PATH, &[order_id, "refunds"])?;
        self.with_retry("refund", |_| {
            let url = url.clone();
            let body = body.clone();
            async move {
                let answer = self.send_authed(Method::POST, url, Some(body)).await?;
                let resp: WireRefundResponse = parse_ok(answer)?;
                let r = resp
                    .refund
                    .ok_or_else(|| PayuError::Protocol("no refund in the answer".into()))?;
                Ok(RefundInfo {
                    refund_id: r.refund_id,
                    ext_refund_id: r.ext_refund_id,
                    amount: r.amount,
                    currency: r.currency_code,
                    status: r.status,
                })
            }
        })
        .await
    }

    /// Captures an order waiting in WAITING_FOR_CONFIRMATION (POS without auto-receive).
    ///
    /// Retried on transient errors: a capture of an already captured order is refused by
    /// PayU, not repeated, so a retry cannot take money twice.
    pub async fn capture(&self, order_id: &str) -> Result<(), PayuError> {
        check_id(order_id)?;
        let url = self.url(&ORDERS_PATH, &[order_id, "captures"])?;
        self.with_retry("capture", |_| {
            let url = url.clone();
            async move {
                let answer = self
                    .send_authed(Method::POST, url, Some(b"{}".to_vec()))
                    .await?;
                parse_ok::<serde_json::Value>(answer).map(drop)
            }
        })
        .await
    }

    /// Cancels an order that is not paid yet (`DELETE /api/v2_1/orders/{id}`), e.g. one whose
    /// `redirectUri` was lost ([`PayuError::OrderNotUnique`]). Retried like [`Self::capture`].
    pub async fn cancel(&self, order_id: &str) -> Result<(), PayuError> {
        check_id(order_id)?;
        let url = self.url(&ORDERS_PATH, &[order_id])?;
        self.with_retry("cancel", |_| {
            let url = url.clone();
            async move {
                let answer = self.send_authed(Method::DELETE, url, None).await?;
                parse_ok::<serde_json::Value>(answer).map(drop)
            }
        })
        .await
    }

    /// Verifies a notification against the order GSKO stored for it.
    ///
    /// `raw_body` must be the bytes exactly as received (never re-serialized JSON) and
    /// `signature_header` the value of `OpenPayu-Signature` (or `X-OpenPayU-Signature`).
    pub fn verify_notification(
        &self,
        raw_body: &[u8],
        signature_header: &str,
        expected: &StoredOrder,
    ) -> Result<VerifiedNotification, NotificationError> {
        notification::verify(&self.inner.cfg, raw_body, signature_header, |_| {
            Some(expected.clone())
        })
    }

    /// Like [`Self::verify_notification`], but finds the stored order itself once the
    /// signature has been checked: `lookup` gets the ids from the (authenticated) body and
    /// returns `None` for an order GSKO never created, which yields
    /// [`NotificationError::UnknownOrder`].
    pub fn verify_notification_with(
        &self,
        raw_body: &[u8],
        signature_header: &str,
        lookup: impl FnOnce(&NotificationKey) -> Option<StoredOrder>,
    ) -> Result<VerifiedNotification, NotificationError> {
        notification::verify(&self.inner.cfg, raw_body, signature_header, lookup)
    }

    // ---- plumbing ---------------------------------------------------------------------------

    fn url(&self, path: &[&str], more: &[&str]) -> Result<Url, PayuError> {
        let mut url = self.inner.base.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|()| PayuError::Config("base_url cannot be a base".into()))?;
            // Percent-encodes each segment, so an id can never change the path.
            segs.pop_if_empty().extend(path).extend(more);
        }
        Ok(url)
    }

    /// Runs `op` until it succeeds, fails permanently, or the attempts run out.
    async fn with_retry<T, F, Fut>(&self, what: &'static str, mut op: F) -> Result<T, PayuError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, PayuError>>,
    {
        let policy = self.inner.cfg.retry;
        let max = policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Err(e) if e.is_transient() && attempt < max => {
                    attempt += 1;
                    let pause = policy.backoff(attempt);
                    tracing::warn!(call = what, attempt, error = %e, ?pause, "PayU call failed, retrying");
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    /// Sends one API request with a bearer token; on 401 renews the token once and resends.
    async fn send_authed(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, PayuError> {
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| PayuError::Protocol("access token is not a valid header".into()))?;
            // Keeps the token out of any Debug output of the request (hyper, reqwest, tower).
            bearer.set_sensitive(true);
            let mut req = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, bearer)
                .header(ACCEPT, "application/json");
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let answer = send(req).await?;
            if answer.status == StatusCode::UNAUTHORIZED {
                if renewed {
                    return Err(PayuError::Unauthorized);
                }
                tracing::info!("PayU refused the access token, renewing it");
                self.invalidate(&token).await;
                renewed = true;
                continue;
            }
            return Ok(answer);
        }
    }

    /// A valid access token, from the cache or freshly fetched (one fetch at a time).
    async fn token(&self) -> Result<Secret, PayuError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        // Not retried here: the API call around it retries as a whole, which keeps the total
        // number of attempts at `max_attempts` instead of its square.
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *guard = Some(fresh);
        Ok(value)
    }

    /// Drops the cached token if it is still `stale`; if another task already replaced it,
    /// the newer token is kept, so a burst of 401s causes one refresh, not many.
    async fn invalidate(&self, stale: &Secret) {
        let mut guard = self.inner.token.lock().await;
        if guard.as_ref().is_some_and(|t| t.value == *stale) {
            *guard = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, PayuError> {
        let cfg = &self.inner.cfg;
        let url = self.url(&TOKEN_PATH, &[])?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.expose()),
        ];
        let requested = Instant::now();
        self.inner.token_fetches.fetch_add(1, Ordering::Relaxed);
        let answer = send(self.inner.http.post(url).form(&form)).await?;
        let status = answer.status;
        if status.is_server_error() {
            return Err(PayuError::Server {
                http_status: status.as_u16(),
                status_code: None,
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(PayuError::RateLimited);
        }
        if !status.is_success() {
            let error = serde_json::from_slice::<WireOAuthError>(&answer.body)
                .ok()
                .and_then(|e| e.error)
                .unwrap_or_else(|| "no error code".into());
            return Err(PayuError::Auth {
                http_status: status.as_u16(),
                error,
            });
        }
        let tok: WireToken = serde_json::from_slice(&answer.body)
            .map_err(|e| PayuError::Protocol(format!("OAuth answer: {e}")))?;
        let lifetime = Duration::from_secs(tok.expires_in);
        // Renew 10% early, at most a minute early: 43199 s tokens renew a minute before
        // expiry, a 2 s test token 0.2 s before.
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        Ok(CachedToken {
            value: Secret::new(tok.access_token),
            // Counted from the request, not the answer: PayU's clock started no later.
            renew_at: requested + lifetime - margin,
        })
    }
}

/// One exchange, body read completely (the client timeout covers both).
async fn send(req: reqwest::RequestBuilder) -> Result<Answer, PayuError> {
    let started = Instant::now();
    let result = async {
        let resp = req.send().await?;
        let status = resp.status();
        Ok::<_, reqwest::Error>((status, resp.bytes().await?))
    }
    .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let (status, body) = match result {
        Ok(ok) => ok,
        Err(e) => {
            let e = PayuError::from_reqwest(e);
            tracing::debug!(target: "gsko_payu::http", elapsed_ms, error = %e, "PayU exchange failed");
            return Err(e);
        }
    };
    tracing::debug!(target: "gsko_payu::http", elapsed_ms, status = status.as_u16(), "PayU exchange");
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}

/// The `status` object of an answer, if it has one.
fn status_of(body: &[u8]) -> Option<WireStatus> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        status: Option<WireStatus>,
    }
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.status)
}

/// Maps a non-success answer to an error, classifying transient ones.
fn error_of(answer: &Answer) -> PayuError {
    let st = status_of(&answer.body);
    let code = st.as_ref().map(|s| s.status_code.clone());
    let http_status = answer.status.as_u16();
    if answer.status.is_server_error() {
        return PayuError::Server {
            http_status,
            status_code: code,
        };
    }
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        return PayuError::RateLimited;
    }
    match code.as_deref() {
        Some("ERROR_ORDER_NOT_UNIQUE") => PayuError::OrderNotUnique { after_retry: false },
        Some("DATA_NOT_FOUND") => PayuError::NotFound,
        _ if answer.status == StatusCode::NOT_FOUND => PayuError::NotFound,
        Some(c) if !c.is_empty() => PayuError::Rejected {
            http_status,
            status_code: c.to_owned(),
            status_desc: st.and_then(|s| s.status_desc),
        },
        _ => PayuError::Protocol(format!("HTTP {http_status} without a PayU status")),
    }
}

/// Parses a 200 answer whose `status.statusCode`, if present, is SUCCESS.
fn parse_ok<T: DeserializeOwned>(answer: Answer) -> Result<T, PayuError> {
    if answer.status != StatusCode::OK && answer.status != StatusCode::CREATED {
        return Err(error_of(&answer));
    }
    if let Some(st) = status_of(&answer.body) {
        if !st.status_code.is_empty() && st.status_code != "SUCCESS" {
            return Err(error_of(&Answer {
                status: StatusCode::BAD_REQUEST,
                body: answer.body,
            }));
        }
    }
    serde_json::from_slice(&answer.body).map_err(|e| PayuError::Protocol(e.to_string()))
}

fn parse_create(answer: Answer) -> Result<CreatedOrder, PayuError> {
    let s = answer.status;
    if s == StatusCode::OK && !answer.body.starts_with(b"{") {
        // The official docs' warning: HTML with 200 means a redirect was followed.
        return Err(PayuError::Protocol(
            "HTML answer to order creation (was a redirect followed?)".into(),
        ));
    }
    if !(s == StatusCode::FOUND || s == StatusCode::CREATED || s == StatusCode::OK) {
        return Err(error_of(&answer));
    }
    let resp: WireCreateResponse = serde_json::from_slice(&answer.body)
        .map_err(|e| PayuError::Protocol(format!("order creation answer: {e}")))?;
    match resp.status.status_code.as_str() {
        // The SDK treats WARNING_CONTINUE_REDIRECT as success: the payer must be redirected.
        "SUCCESS" | "WARNING_CONTINUE_REDIRECT" => {}
        _ => {
            return Err(error_of(&Answer {
                status: StatusCode::BAD_REQUEST,
                body: answer.body,
            }))
        }
    }
    match (resp.order_id, resp.redirect_uri) {
        (Some(order_id), Some(redirect_uri)) if !order_id.is_empty() => Ok(CreatedOrder {
            order_id,
            redirect_uri,
        }),
        _ => Err(PayuError::Protocol(
            "order creation answer without orderId or redirectUri".into(),
        )),
    }
}

/// PayU order ids are short strings; an empty or huge one is a caller bug. (Ids go into the
/// URL path percent-encoded, so no character can change the path.)
fn check_id(id: &str) -> Result<(), PayuError> {
    if id.is_empty() || id.len() > 128 {
        return Err(PayuError::InvalidInput(
            "order id must be 1..=128 chars".into(),
        ));
    }
    Ok(())
}

/// Local checks of PayU's documented limits (spec §2.3), so a bad order fails fast with a
/// clear message instead of a remote `ERROR_VALUE_INVALID`.
fn validate_order(o: &Order) -> Result<(), PayuError> {
    let bad = |m: &str| Err(PayuError::InvalidInput(m.to_owned()));
    if o.ext_order_id.is_empty() || o.ext_order_id.len() > 1024 {
        return bad("ext_order_id must be 1..=1024 chars");
    }
    if o.total_amount == 0 {
        return bad("total_amount must be positive");
    }
    if o.currency.len() != 3 || !o.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return bad("currency must be an ISO 4217 code such as PLN");
    }
    if o.description.is_empty() || o.description.chars().count() > 4000 {
        return bad("description must be 1..=4000 chars");
    }
    if o.customer_ip.is_empty() {
        return bad("customer_ip is required");
    }
    for url in [&o.notify_url, &o.continue_url].into_iter().flatten() {
        if url.len() > 1024 || Url::parse(url).is_err() {
            return bad("notify_url/continue_url must be absolute URLs of at most 1024 chars");
        }
    }
    if o.products.is_empty() {
        return bad("at least one product is required");
    }
    if o.products
        .iter()
        .any(|p| p.name.is_empty() || p.quantity == 0)
    {
        return bad("every product needs a name and a positive quantity");
    }
    Ok(())
}
