//! Who is calling, and the resident's login.
//!
//! Every request's credential is resolved once, before the audit and the handlers see it
//! ([`resolve_principal`]): a portal key (`Authorization: Bearer <key>`), or a resident's
//! session token — in the `gsko_session` cookie (a browser) or as the bearer (a portal backend
//! that exchanged a one-time code for it). A session is checked against the store on every
//! request, so logout and revocation take effect at once on every instance.
//!
//! The login itself (`/login` → login.gov.pl → `/login/acs`) is `gsko_login::LoginService`;
//! this module is its HTTP face: the HTML form of the POST binding, the cookie, the redirect
//! back, one-time codes for portals, renewal and logout.

use crate::{authenticate, bearer, portal_key, ApiError, AppState, Authed, Caller};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use gsko_login::{LoginService, Return, SessionError, SessionKeys};
use gsko_store::SessionRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The cookie carrying a browser's session token.
pub const SESSION_COOKIE: &str = "gsko_session";

/// The caller of a request, as resolved from its credential.
#[derive(Clone)]
pub(crate) enum Principal {
    /// No credential.
    Anonymous,
    /// A portal key (index into `AppState::keys`).
    Portal(usize),
    /// A bearer that is no portal key.
    UnknownKey,
    /// A resident's live session.
    Resident(Arc<SessionRecord>),
    /// A session token that is forged, expired, ended or from a key no longer configured.
    BadSession,
    /// The session could not be checked (store unavailable).
    Unavailable,
}

impl Principal {
    /// The caller as the audit names it: never a key, never a PESEL.
    pub(crate) fn actor(&self, state: &AppState) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::Portal(i) => {
                let k = &state.keys[*i];
                if k.admin {
                    format!("admin:{}", k.name)
                } else {
                    format!("portal:{}", k.name)
                }
            }
            Principal::UnknownKey => "unknown".into(),
            Principal::Resident(s) => format!("resident:{}", session_label(&s.sid)),
            Principal::BadSession => "invalid-session".into(),
            Principal::Unavailable => "unverified".into(),
        }
    }
}

/// A short, stable label of a session for the audit (not the whole id).
fn session_label(sid: &str) -> &str {
    &sid[..sid.len().min(12)]
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

async fn principal_of(state: &AppState, headers: &HeaderMap) -> Principal {
    let credential = bearer(headers).or_else(|| cookie(headers, SESSION_COOKIE));
    let Some(credential) = credential else {
        return Principal::Anonymous;
    };
    if SessionKeys::is_token(credential) {
        let Some(login) = &state.login else {
            return Principal::BadSession;
        };
        return match login.authenticate(credential, chrono::Utc::now()).await {
            Ok(s) => Principal::Resident(Arc::new(s)),
            Err(SessionError::Store(e)) => {
                tracing::warn!(error = %e, "session store unavailable");
                Principal::Unavailable
            }
            Err(_) => Principal::BadSession,
        };
    }
    portal_key(state, credential).map_or(Principal::UnknownKey, Principal::Portal)
}

/// Resolves the caller once per request, for the audit, the limiter and the handlers.
pub(crate) async fn resolve_principal(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let p = principal_of(&state, req.headers()).await;
    req.extensions_mut().insert(p);
    next.run(req).await
}

/// What a login handler tells the audit beyond the status: the resident now logged in (or
/// out), and why a login was refused.
#[derive(Clone)]
pub(crate) struct AuditNote {
    pub actor: Option<String>,
    pub pesel: Option<String>,
    pub detail: Option<&'static str>,
}

fn service(s: &AppState) -> Result<&LoginService, ApiError> {
    s.login.as_deref().ok_or(ApiError::LoginNotConfigured)
}

fn session_cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.max(0)
    ))
    .expect("a token is ASCII")
}

#[derive(Deserialize)]
pub(crate) struct LoginParams {
    return_to: Option<String>,
}

/// `GET /login`: the page that posts a signed AuthnRequest to login.gov.pl.
pub(crate) async fn login(
    State(s): State<AppState>,
    Query(p): Query<LoginParams>,
) -> Result<Response, ApiError> {
    let svc = service(&s)?;
    let return_to = p.return_to.unwrap_or_default();
    if svc.check_return(&return_to).is_none() {
        return Err(ApiError::BadQuery(
            "return_to must be a GSKO path or a page of an allowed portal origin".into(),
        ));
    }
    let page = svc
        .begin(&return_to, chrono::Utc::now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not start a login");
            ApiError::Unavailable
        })?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                gsko_login::ServiceProvider::post_form_csp(),
            ),
        ],
        Html(page),
    )
        .into_response())
}

/// The ACS parameters, whatever their case (`SAMLart`, `SAMLArt`).
fn acs_params(fields: HashMap<String, String>) -> (Option<String>, Option<String>) {
    let mut artifact = None;
    let mut relay = None;
    for (k, v) in fields {
        if k.eq_ignore_ascii_case("SAMLart") {
            artifact = Some(v);
        } else if k.eq_ignore_ascii_case("RelayState") {
            relay = Some(v);
        }
    }
    (artifact, relay)
}

pub(crate) async fn acs_post(
    State(s): State<AppState>,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    acs(s, fields).await
}

pub(crate) async fn acs_get(
    State(s): State<AppState>,
    Query(fields): Query<HashMap<String, String>>,
) -> Response {
    acs(s, fields).await
}

/// The assertion consumer service: the artifact resolved, the session created, the browser
/// sent back with a cookie (GSKO page) or a one-time code (portal page).
async fn acs(s: AppState, fields: HashMap<String, String>) -> Response {
    let svc = match service(&s) {
        Ok(svc) => svc,
        Err(e) => return e.into_response(),
    };
    let (Some(artifact), Some(relay)) = acs_params(fields) else {
        return ApiError::BadRequest("SAMLart and RelayState are required".into()).into_response();
    };
    let now = chrono::Utc::now();
    let (session, back) = match svc.complete(&artifact, &relay, now).await {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(reason = e.code(), error = %e, "login refused");
            let mut r = (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({
                    "error": "login_refused",
                    "message": format!("the login could not be completed ({}); please try again", e.code()),
                })),
            )
                .into_response();
            r.extensions_mut().insert(AuditNote {
                actor: None,
                pesel: None,
                detail: Some(e.code()),
            });
            return r;
        }
    };
    let token = svc.token(&session);
    let mut r = match back {
        Return::Local(path) => {
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, path)]).into_response();
            let ttl = (session.expires_at - now).num_seconds();
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&s, &token, ttl));
            r
        }
        Return::Portal(url) => match svc.issue_code(&session, now).await {
            Ok(code) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, format!("{url}{sep}gsko_code={code}"))],
                )
                    .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.extensions_mut().insert(AuditNote {
        actor: Some(format!("resident:{}", session_label(&session.sid))),
        pesel: Some(session.pesel.clone()),
        detail: Some("logged_in"),
    });
    r
}

fn resident_session<'a>(caller: &Caller<'a>) -> Result<&'a SessionRecord, ApiError> {
    match caller {
        Caller::Resident(s) => Ok(s),
        Caller::Portal(_) => Err(ApiError::NotResident),
    }
}

#[derive(Serialize)]
pub(crate) struct SessionInfo {
    given_name: String,
    family_name: String,
    loa: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    max_until: chrono::DateTime<chrono::Utc>,
    /// Municipalities where the resident has data.
    tenants: Vec<String>,
}

/// `GET /v1/session`: who is logged in, until when, and where they have data.
pub(crate) async fn session_info(
    State(s): State<AppState>,
    headers: Authed,
) -> Result<Json<SessionInfo>, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let session = resident_session(&caller)?;
    let pesel: gsko_model::Pesel = session.pesel.parse().map_err(|_| ApiError::Internal)?;
    let all: Vec<gsko_model::Teryt> = s.tenants.keys().cloned().collect();
    let tenants = s.store.resident_tenants(&pesel, &all).await?;
    Ok(Json(SessionInfo {
        given_name: session.given_name.clone(),
        family_name: session.family_name.clone(),
        loa: session.loa.clone(),
        expires_at: session.expires_at,
        max_until: session.max_until,
        tenants: tenants.iter().map(ToString::to_string).collect(),
    }))
}

#[derive(Serialize)]
pub(crate) struct TokenAnswer {
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

fn session_failure(e: SessionError) -> ApiError {
    match e {
        SessionError::Store(e) => e.into(),
        SessionError::TooOld => ApiError::SessionTooOld,
        _ => ApiError::InvalidSession,
    }
}

/// `POST /v1/session/renew`: a new session (and token) replaces the current one.
pub(crate) async fn renew(
    State(s): State<AppState>,
    headers: Authed,
) -> Result<Response, ApiError> {
    let svc = service(&s)?;
    let caller = authenticate(&s, &headers)?;
    let current = resident_session(&caller)?;
    let now = chrono::Utc::now();
    let next = svc.renew(current, now).await.map_err(session_failure)?;
    let token = svc.token(&next);
    let mut r = Json(TokenAnswer {
        token: token.clone(),
        expires_at: next.expires_at,
    })
    .into_response();
    if cookie(&headers, SESSION_COOKIE).is_some() && bearer(&headers).is_none() {
        let ttl = (next.expires_at - now).num_seconds();
        r.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(&s, &token, ttl));
    }
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExchangeRequest {
    code: String,
}

/// `POST /v1/session/exchange`: a portal backend trades the one-time code its page received
/// for the resident's bearer token.
pub(crate) async fn exchange(
    State(s): State<AppState>,
    headers: Authed,
    body: axum::body::Bytes,
) -> Result<Json<TokenAnswer>, ApiError> {
    let svc = service(&s)?;
    match authenticate(&s, &headers)? {
        Caller::Portal(_) => {}
        Caller::Resident(_) => return Err(ApiError::NotPortal),
    }
    let req: ExchangeRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
    let session = svc
        .exchange(req.code.trim(), chrono::Utc::now())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(TokenAnswer {
        token: svc.token(&session),
        expires_at: session.expires_at,
    }))
}

/// `POST /logout`: the session ends here and at login.gov.pl; the cookie is cleared.
pub(crate) async fn logout(
    State(s): State<AppState>,
    headers: Authed,
) -> Result<Response, ApiError> {
    let svc = service(&s)?;
    let caller = authenticate(&s, &headers)?;
    let session = resident_session(&caller)?;
    svc.logout(session, chrono::Utc::now())
        .await
        .map_err(session_failure)?;
    let mut r = Json(serde_json::json!({ "logged_out": true })).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&s, "", 0));
    r.extensions_mut().insert(AuditNote {
        actor: None,
        pesel: None,
        detail: Some("logged_out"),
    });
    Ok(r)
}

/// `GET /`: a plain page to try the login in a browser.
pub(crate) async fn home(State(s): State<AppState>) -> Html<String> {
    let login = if s.login.is_some() {
        concat!(
            "<p><a id=\"login\" href=\"/login?return_to=/v1/session\">Zaloguj się przez login.gov.pl</a></p>",
            "<p><a href=\"/v1/session\">Moja sesja</a> · <a href=\"/v1/resident/summary\">Moje podatki</a></p>",
            "<form method=\"post\" action=\"/logout\"><button id=\"logout\" type=\"submit\">Wyloguj</button></form>"
        )
    } else {
        "<p>Logging in is not configured in this deployment.</p>"
    };
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"pl\"><head><meta charset=\"utf-8\"><title>GSKO</title></head><body><h1>GSKO</h1>{login}<p><a href=\"/openapi.yaml\">OpenAPI</a></p></body></html>\n"
    ))
}
