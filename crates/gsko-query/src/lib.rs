//! The query service: a thin HTTP JSON API over the consolidated resident view.
//!
//! Callers are portal backends, each with an API key scoped to tenants (`Authorization: Bearer
//! <key>`); the resident is named by `X-Resident-Pesel` — a header, so the PESEL stays out of
//! URLs and access logs. A tenant outside the key's scope answers exactly like a tenant where the
//! resident is unknown (404), so a key cannot probe other municipalities.
//! The OpenAPI document is `schemas/openapi.yaml`, served at `/openapi.yaml`.

pub mod audit;
mod cases;
mod cors;
mod due;
mod filing;
mod harden;
mod letters;
mod login;
pub mod metrics;
mod pay;
mod resident;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gsko_config::PortalKey;
use gsko_model::{Pesel, Teryt};
use gsko_store::{Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use harden::RateLimiter;
pub use login::SESSION_COOKIE;
pub use metrics::Registry;
pub use resident::*;

/// The OpenAPI document, kept equal to what the service does by the crate's tests.
pub const OPENAPI_YAML: &str = include_str!("../../../schemas/openapi.yaml");

pub const RESIDENT_HEADER: &str = "x-resident-pesel";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<Vec<PortalKey>>,
    /// Every tenant of the deployment, with its name.
    pub tenants: Arc<BTreeMap<Teryt, String>>,
    pub metrics: Arc<Registry>,
    /// Today's date for "next installment" (overridable in tests).
    pub today: fn() -> chrono::NaiveDate,
    /// Interest rates on arrears by effective date (data shipped with GSKO).
    pub rates: Arc<gsko_taxrules::InterestRates>,
    /// Online payments; `None` when no tenant of the deployment has them configured.
    pub payments: Option<Arc<gsko_payments::PaymentService>>,
    /// Letters filed through GSKO (signed with Profil Zaufany); `None` when no tenant has it.
    pub filing: Option<Arc<gsko_filing::FilingService>>,
    /// The EZD connector's records (registrations parked for an admin); `None` when not wired.
    pub cases: Option<Arc<dyn gsko_store::CaseWorkStore>>,
    /// The audit trail every `/v1/` request is written to before it is answered; `None` only
    /// in tests that do not look at it.
    pub audit: Option<audit::AuditTrail>,
    /// Token buckets per client on `/v1/`; `None`: no limit.
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// Whether answers carry `Strict-Transport-Security` (the service is reached over HTTPS).
    pub hsts: bool,
    /// Browser origins allowed per tenant (CORS); empty: none.
    pub cors: Arc<BTreeMap<Teryt, Vec<String>>>,
    /// Resident login (login.gov.pl) and sessions; `None`: only portal keys.
    pub login: Option<Arc<gsko_login::LoginService>>,
    /// Whether the session cookie is marked `Secure` (off only for plain-HTTP development).
    pub secure_cookie: bool,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Vec<PortalKey>,
        tenants: BTreeMap<Teryt, String>,
        metrics: Arc<Registry>,
    ) -> Self {
        AppState {
            store,
            keys: Arc::new(keys),
            tenants: Arc::new(tenants),
            metrics,
            today: || chrono::Utc::now().date_naive(),
            // The table is data compiled into the binary and validated by gsko-taxrules' tests.
            rates: Arc::new(
                gsko_taxrules::InterestRates::builtin()
                    .expect("the built-in interest rate table is valid"),
            ),
            payments: None,
            filing: None,
            cases: None,
            audit: None,
            rate_limit: None,
            hsts: false,
            cors: Arc::new(BTreeMap::new()),
            login: None,
            secure_cookie: true,
        }
    }

    /// Lets residents log in with login.gov.pl and use the service with their session.
    pub fn with_login(mut self, login: Arc<gsko_login::LoginService>, secure_cookie: bool) -> Self {
        self.login = Some(login);
        self.secure_cookie = secure_cookie;
        self
    }

    /// Audits every `/v1/` request into `store` (see [`audit`]).
    pub fn with_audit(mut self, store: Arc<dyn gsko_store::AuditStore>) -> Self {
        self.audit = Some(audit::AuditTrail::spawn(store));
        self
    }

    /// Limits every client to `per_second` requests on `/v1/`, with bursts of `burst`; a
    /// rate of 0 means no limit.
    pub fn with_rate_limit(mut self, per_second: f64, burst: u32) -> Self {
        self.rate_limit = RateLimiter::new(per_second, burst).map(Arc::new);
        self
    }

    /// Sends `Strict-Transport-Security` (set when GSKO or its proxy serves HTTPS).
    /// The browser origins each tenant's portal pages are served from (see [`cors`]).
    pub fn with_cors(mut self, origins: BTreeMap<Teryt, Vec<String>>) -> Self {
        self.cors = Arc::new(origins);
        self
    }

    pub fn with_hsts(mut self, hsts: bool) -> Self {
        self.hsts = hsts;
        self
    }

    pub fn with_cases(mut self, cases: Arc<dyn gsko_store::CaseWorkStore>) -> Self {
        self.cases = Some(cases);
        self
    }

    pub fn with_payments(mut self, payments: Arc<gsko_payments::PaymentService>) -> Self {
        self.payments = Some(payments);
        self
    }
}

/// Errors as the caller sees them: a status, a stable code, a message without internals.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or malformed Authorization header (expected: Bearer <api key>)")]
    MissingKey,
    #[error("unknown API key")]
    UnknownKey,
    #[error("this key may not use operations endpoints")]
    NotAdmin,
    #[error("the session is invalid or has ended; log in again")]
    InvalidSession,
    #[error("the session reached its longest lifetime; log in again")]
    SessionTooOld,
    #[error("this operation is for a logged-in resident")]
    NotResident,
    #[error("this operation is for a portal backend's key")]
    NotPortal,
    #[error("resident login is not configured in this deployment")]
    LoginNotConfigured,
    #[error("missing X-Resident-Pesel header")]
    MissingResident,
    #[error("X-Resident-Pesel: {0}")]
    BadResident(String),
    #[error("{0}")]
    BadTenant(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("online payments are not available in this tenant")]
    PaymentsNotConfigured,
    #[error("no data for this resident in this tenant")]
    NotFound,
    #[error("too many requests from this client; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the view is temporarily unavailable, try again")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MissingKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            ApiError::UnknownKey => (StatusCode::UNAUTHORIZED, "unknown_api_key"),
            ApiError::NotAdmin => (StatusCode::FORBIDDEN, "not_admin"),
            ApiError::InvalidSession => (StatusCode::UNAUTHORIZED, "invalid_session"),
            ApiError::SessionTooOld => (StatusCode::UNAUTHORIZED, "session_too_old"),
            ApiError::NotResident => (StatusCode::FORBIDDEN, "not_resident"),
            ApiError::NotPortal => (StatusCode::FORBIDDEN, "not_portal"),
            ApiError::LoginNotConfigured => (StatusCode::NOT_FOUND, "login_not_configured"),
            ApiError::MissingResident => (StatusCode::BAD_REQUEST, "missing_resident"),
            ApiError::BadResident(_) => (StatusCode::BAD_REQUEST, "invalid_resident"),
            ApiError::BadTenant(_) => (StatusCode::BAD_REQUEST, "invalid_tenant"),
            ApiError::BadQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "idempotency_key_reused"),
            ApiError::PaymentsNotConfigured => (StatusCode::NOT_FOUND, "payments_not_configured"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        let mut r = (
            status,
            Json(ErrorBody {
                error: code,
                message: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "store unavailable");
            ApiError::Unavailable
        } else {
            tracing::error!(error = %e, "store error");
            ApiError::Internal
        }
    }
}

/// The authenticated caller: a portal backend's key, or a logged-in resident.
pub(crate) enum Caller<'a> {
    Portal(&'a PortalKey),
    Resident(&'a gsko_store::SessionRecord),
}

impl Caller<'_> {
    /// A portal key reads its tenants; a resident reads their own data in every tenant.
    fn may_read(&self, t: &Teryt) -> bool {
        match self {
            Caller::Portal(key) => key.tenants.as_ref().is_none_or(|ts| ts.contains(t)),
            Caller::Resident(_) => true,
        }
    }

    fn is_admin(&self) -> bool {
        matches!(self, Caller::Portal(k) if k.admin)
    }

    /// Who started an order or a filing (kept with it).
    fn client(&self) -> String {
        match self {
            Caller::Portal(k) => k.name.clone(),
            Caller::Resident(_) => "resident-session".into(),
        }
    }
}

/// A request's headers with the caller resolved for it (see [`login::resolve_principal`]).
pub struct Authed {
    headers: HeaderMap,
    principal: login::Principal,
}

impl std::ops::Deref for Authed {
    type Target = HeaderMap;
    fn deref(&self) -> &HeaderMap {
        &self.headers
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Authed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Authed {
            headers: parts.headers.clone(),
            principal: parts
                .extensions
                .get::<login::Principal>()
                .cloned()
                .unwrap_or(login::Principal::Anonymous),
        })
    }
}

/// The bearer token of a request, when its `Authorization` header carries one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The index in `state.keys` of the portal key a token belongs to. Hashes are compared, not
/// keys: equal-length digests, and no key material kept in memory.
pub(crate) fn portal_key(state: &AppState, token: &str) -> Option<usize> {
    let hash = gsko_config::sha256(token.as_bytes());
    state.keys.iter().position(|k| k.key_sha256 == hash)
}

fn authenticate<'a>(state: &'a AppState, req: &'a Authed) -> Result<Caller<'a>, ApiError> {
    match &req.principal {
        login::Principal::Portal(i) => state
            .keys
            .get(*i)
            .map(Caller::Portal)
            .ok_or(ApiError::UnknownKey),
        login::Principal::Resident(s) => Ok(Caller::Resident(s)),
        login::Principal::Anonymous => Err(ApiError::MissingKey),
        login::Principal::UnknownKey => Err(ApiError::UnknownKey),
        login::Principal::BadSession => Err(ApiError::InvalidSession),
        login::Principal::Unavailable => Err(ApiError::Unavailable),
    }
}

/// The resident a request is about: a portal names them in `X-Resident-Pesel`; a logged-in
/// resident is themselves, and naming anyone else answers like unknown data (404).
fn resident(caller: &Caller<'_>, headers: &HeaderMap) -> Result<Pesel, ApiError> {
    if let Caller::Resident(s) = caller {
        let own = Pesel::from_str(&s.pesel).map_err(|_| ApiError::Internal)?;
        return match headers.get(RESIDENT_HEADER) {
            None => Ok(own),
            Some(v) if v.to_str().ok() == Some(own.as_str()) => Ok(own),
            Some(_) => Err(ApiError::NotFound),
        };
    }
    let v = headers
        .get(RESIDENT_HEADER)
        .ok_or(ApiError::MissingResident)?;
    let s = v
        .to_str()
        .map_err(|_| ApiError::BadResident("not ASCII".into()))?;
    Pesel::from_str(s).map_err(|e| ApiError::BadResident(e.to_string()))
}

fn tenant(state: &AppState, caller: &Caller<'_>, raw: &str) -> Result<Teryt, ApiError> {
    let t =
        Teryt::from_str(raw).map_err(|e| ApiError::BadTenant(format!("tenant {raw:?}: {e}")))?;
    if !state.tenants.contains_key(&t) || !caller.may_read(&t) {
        return Err(ApiError::NotFound);
    }
    Ok(t)
}

/// Every route with its handler; `route_paths` exposes the paths so that a test can keep the
/// OpenAPI document and the router equal.
fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    let mut routes = vec![
        ("/healthz", get(healthz)),
        ("/readyz", get(readyz)),
        ("/metrics", get(metrics_text)),
        ("/openapi.yaml", get(openapi)),
        ("/v1/session", get(login::session_info)),
        ("/v1/session/renew", post(login::renew)),
        ("/v1/session/exchange", post(login::exchange)),
        ("/v1/resident/summary", get(all_summaries)),
        ("/v1/tenants/{teryt}/resident/summary", get(summary)),
        ("/v1/tenants/{teryt}/resident/liabilities", get(liabilities)),
        ("/v1/tenants/{teryt}/resident/balance", get(balance)),
        ("/v1/tenants/{teryt}/resident/ledger", get(ledger)),
        ("/v1/tenants/{teryt}/resident/due", get(due)),
        ("/v1/tenants/{teryt}/resident/payments", get(pay::payments)),
        (
            "/v1/tenants/{teryt}/resident/letters",
            get(letters::letters),
        ),
        (
            "/v1/tenants/{teryt}/resident/decisions",
            get(letters::decisions),
        ),
        ("/v1/tenants/{teryt}/resident/cases", get(cases::cases)),
        (
            "/v1/tenants/{teryt}/resident/cases/{case_ref}",
            get(cases::case),
        ),
        (
            "/v1/tenants/{teryt}/resident/payment-orders",
            post(pay::create_payment_order),
        ),
        (
            "/v1/tenants/{teryt}/resident/payment-orders/{basket_id}",
            get(pay::payment_order),
        ),
        (
            "/v1/tenants/{teryt}/admin/rejected-records",
            get(rejected_records),
        ),
        ("/v1/tenants/{teryt}/admin/imports", get(imports)),
        (
            "/v1/tenants/{teryt}/admin/ezd-registrations",
            get(parked_registrations),
        ),
        (
            "/v1/tenants/{teryt}/admin/letters",
            get(letters::admin_letters),
        ),
        (
            "/v1/tenants/{teryt}/admin/unmatched-payments",
            get(pay::unmatched_payments),
        ),
        (
            "/v1/tenants/{teryt}/admin/gateway-notifications",
            get(pay::gateway_notifications),
        ),
    ];
    routes.extend(filing::filing_routes());
    routes
}

/// The browser's side of the login: HTML pages and redirects of the SAML bindings, outside
/// the JSON API (and its OpenAPI document); described in the README.
fn browser_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::login))
        .route("/login/acs", get(login::acs_get).post(login::acs_post))
        .route("/logout", post(login::logout))
}

pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(p, _)| p).collect()
}

/// The largest letter a resident may file through GSKO (its attachments base64-encoded in
/// the JSON body); every other request is held to `http.body_limit`.
pub const FILING_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn router(state: AppState, body_limit: usize) -> Router {
    let requests = RequestCounters::new(&state.metrics);
    let filing_paths: Vec<&str> = filing::filing_routes()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let (filing, other): (Vec<_>, Vec<_>) = routes()
        .into_iter()
        .partition(|(path, _)| filing_paths.contains(path));
    let fold = |routes: Vec<(&'static str, axum::routing::MethodRouter<AppState>)>| {
        routes
            .into_iter()
            .fold(Router::new(), |r, (path, handler)| r.route(path, handler))
    };
    let other = fold(other)
        .merge(browser_routes())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit));
    let filing = fold(filing).layer(tower_http::limit::RequestBodyLimitLayer::new(
        FILING_BODY_LIMIT.max(body_limit),
    ));
    // The last layer added runs first. The limiter is inside the audit layer so that refusals
    // (429) are audited and counted like any answer; the security headers are outermost so
    // that every answer carries them, the audit's own 503 included.
    other
        .merge(filing)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            harden::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::audit_requests,
        ))
        // Before the audit: the audit names the caller this resolved.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            login::resolve_principal,
        ))
        .layer(axum::middleware::from_fn_with_state(
            requests,
            count_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            harden::security_headers,
        ))
        // Outermost: a preflight is answered here, before authentication or limits.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .with_state(state)
}

/// Requests by status class, for `/metrics`.
#[derive(Clone)]
struct RequestCounters {
    by_class: Arc<[Arc<AtomicU64>; 5]>,
}

impl RequestCounters {
    fn new(r: &Registry) -> Self {
        let c = |class: &str| {
            r.counter(
                "gsko_http_requests_total",
                "HTTP requests answered, by status class",
                &[("class", class)],
            )
        };
        RequestCounters {
            by_class: Arc::new([c("1xx"), c("2xx"), c("3xx"), c("4xx"), c("5xx")]),
        }
    }
}

async fn count_requests(
    State(c): State<RequestCounters>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let r = next.run(req).await;
    let i = (r.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    c.by_class[i].fetch_add(1, Ordering::Relaxed);
    r
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    s.store.ping().await?;
    Ok("ready\n")
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}

async fn all_summaries(
    State(s): State<AppState>,
    headers: Authed,
) -> Result<Json<AllSummaries>, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let pesel = resident(&caller, &headers)?;
    let allowed: Vec<Teryt> = s
        .tenants
        .keys()
        .filter(|t| caller.may_read(t))
        .cloned()
        .collect();
    let found = s.store.resident_tenants(&pesel, &allowed).await?;
    let mut tenants = Vec::new();
    for t in found {
        if let Some(v) = s.store.resident_view(&t, &pesel).await? {
            tenants.push(Summary::of(
                &v,
                s.tenants.get(&t).map(String::as_str).unwrap_or_default(),
                (s.today)(),
            ));
        }
    }
    Ok(Json(AllSummaries { tenants }))
}

async fn view(
    s: &AppState,
    headers: &Authed,
    raw: &str,
) -> Result<(Teryt, gsko_store::ResidentView), ApiError> {
    let caller = authenticate(s, headers)?;
    let t = tenant(s, &caller, raw)?;
    let pesel = resident(&caller, headers)?;
    let v = s
        .store
        .resident_view(&t, &pesel)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((t, v))
}

async fn summary(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: Authed,
) -> Result<Json<Summary>, ApiError> {
    let (t, v) = view(&s, &headers, &raw).await?;
    Ok(Json(Summary::of(
        &v,
        s.tenants.get(&t).map(String::as_str).unwrap_or_default(),
        (s.today)(),
    )))
}

async fn liabilities(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: Authed,
) -> Result<Json<Liabilities>, ApiError> {
    let (_, v) = view(&s, &headers, &raw).await?;
    Ok(Json(Liabilities::of(&v)))
}

async fn balance(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: Authed,
) -> Result<Json<Balances>, ApiError> {
    let (_, v) = view(&s, &headers, &raw).await?;
    Ok(Json(Balances::of(&v)))
}

async fn ledger(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: Authed,
) -> Result<Json<Ledger>, ApiError> {
    let (_, v) = view(&s, &headers, &raw).await?;
    Ok(Json(Ledger::of(&v)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DueParams {
    /// Day to compute for (the planned payment day); today when absent.
    date: Option<String>,
    /// An amount (grosze) the resident is about to pay: the answer shows how it would apply.
    pay: Option<String>,
}

async fn due(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: Authed,
) -> Result<Json<due::Due>, ApiError> {
    let params: DueParams = serde_urlencoded_query(query.as_deref().unwrap_or(""))?;
    let as_of = match params.date.as_deref() {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::BadQuery(format!("date {d:?} is not YYYY-MM-DD")))?,
        None => (s.today)(),
    };
    let pay = match params.pay.as_deref() {
        Some(p) => Some(
            p.parse::<i64>()
                .ok()
                .and_then(|g| gsko_model::Amount::from_grosze(g).ok())
                .filter(|a| a.grosze() > 0)
                .ok_or_else(|| {
                    ApiError::BadQuery(format!(
                        "pay {p:?} is not a positive whole number of grosze"
                    ))
                })?,
        ),
        None => None,
    };
    let (_, v) = view(&s, &headers, &raw).await?;
    let d =
        due::compute(&v, as_of, pay, &s.rates).map_err(|e| ApiError::BadQuery(e.to_string()))?;
    Ok(Json(d))
}

/// Parses `a=1&b=2` into the parameters struct, refusing unknown names and repeats.
fn serde_urlencoded_query<T: serde::de::DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let mut map = serde_json::Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if map
            .insert(k.to_owned(), serde_json::Value::String(v.to_owned()))
            .is_some()
        {
            return Err(ApiError::BadQuery(format!("parameter {k:?} given twice")));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| ApiError::BadQuery(e.to_string()))
}

fn admin_tenant(s: &AppState, headers: &Authed, raw: &str) -> Result<Teryt, ApiError> {
    let caller = authenticate(s, headers)?;
    if !caller.is_admin() {
        return Err(ApiError::NotAdmin);
    }
    tenant(s, &caller, raw)
}

async fn rejected_records(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: Authed,
) -> Result<Json<RejectedRecords>, ApiError> {
    let t = admin_tenant(&s, &headers, &raw)?;
    let records = s.store.rejected_records(&t, 1000).await?;
    Ok(Json(RejectedRecords {
        tenant: t.to_string(),
        records,
    }))
}

/// Letters the EZD connector could not register with certainty, kept for an admin with the
/// reason (and what EZD returned, when it did).
async fn parked_registrations(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = admin_tenant(&s, &headers, &raw)?;
    let registrations = match &s.cases {
        Some(c) => c.parked_registrations(&t, 1000).await?,
        None => Vec::new(),
    };
    Ok(Json(serde_json::json!({
        "tenant": t.to_string(),
        "registrations": registrations,
    })))
}

async fn imports(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: Authed,
) -> Result<Json<Imports>, ApiError> {
    let t = admin_tenant(&s, &headers, &raw)?;
    let imports = s.store.imports(&t, 1000).await?;
    Ok(Json(Imports {
        tenant: t.to_string(),
        imports,
    }))
}
