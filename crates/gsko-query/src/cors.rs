//! CORS per tenant: a browser page of a municipality's portal (an origin the tenant lists in
//! `cors_origins`) may call that tenant's `/v1/tenants/{teryt}/…` routes directly; the
//! cross-tenant `/v1/resident/summary` accepts any tenant's origin. Every other origin gets no
//! CORS headers (the browser then refuses the answer) and its preflight a 403. Credentials are
//! bearer tokens, never cookies, so `Access-Control-Allow-Credentials` is never sent.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gsko_model::Teryt;
use std::str::FromStr;

const ALLOW_METHODS: &str = "GET, POST";
const ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key, x-resident-pesel";
const EXPOSE_HEADERS: &str = "retry-after";
const MAX_AGE_SECS: &str = "600";

/// Whether `origin` may call `path`.
fn allowed(state: &AppState, path: &str, origin: &str) -> bool {
    let lists = &state.cors;
    if path.starts_with("/v1/tenants/") {
        let Some(t) = crate::audit::tenant_of(path).and_then(|t| Teryt::from_str(&t).ok()) else {
            return false;
        };
        return lists.get(&t).is_some_and(|l| l.iter().any(|o| o == origin));
    }
    path.starts_with("/v1/resident/") && lists.values().flatten().any(|o| o == origin)
}

pub(crate) async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    let ok = allowed(&state, req.uri().path(), &origin);
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        if !ok {
            return StatusCode::FORBIDDEN.into_response();
        }
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECS),
        );
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    // The answer depends on the Origin: caches must keep them apart.
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if ok {
        if let Ok(v) = HeaderValue::from_str(&origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
    response
}
