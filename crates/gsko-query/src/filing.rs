//! Filing a letter: the portal sends the resident's letter, GSKO stores it and answers where
//! the resident signs it with Profil Zaufany; PZ sends the resident's browser back to the
//! callbacks here, which fetch, verify and submit the signed letter (through
//! [`gsko_filing::FilingService`]) and send the browser on to the portal.
//!
//! The callbacks carry no API key (the browser comes from PZ): the filing id, random and
//! unguessable, is what they know, and they reveal nothing but a redirect to the address the
//! portal gave.

use crate::{authenticate, resident, tenant, ApiError, AppState, ErrorBody};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use gsko_filing::{FilingError, FilingRequest, FilingService, FilingView, LetterForm};
use gsko_model::Teryt;
use std::str::FromStr;

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub(crate) fn filing_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/v1/tenants/{teryt}/resident/filings", post(create_filing)),
        (
            "/v1/tenants/{teryt}/resident/filings/{filing_id}",
            get(filing),
        ),
        ("/filing/{teryt}/{filing_id}/signed", get(signed)),
        ("/filing/{teryt}/{filing_id}/cancelled", get(cancelled)),
    ]
}

/// Errors of these endpoints: the query service's own, and those only filing has.
enum FilingApiError {
    Api(ApiError),
    NotConfigured,
    SigningUnavailable,
}

impl From<ApiError> for FilingApiError {
    fn from(e: ApiError) -> Self {
        FilingApiError::Api(e)
    }
}

impl From<FilingError> for FilingApiError {
    fn from(e: FilingError) -> Self {
        match e {
            FilingError::NotConfigured => FilingApiError::NotConfigured,
            FilingError::Invalid { .. } => ApiError::BadRequest(e.to_string()).into(),
            FilingError::KeyReused { .. } => ApiError::Conflict(e.to_string()).into(),
            FilingError::SigningUnavailable(_) => FilingApiError::SigningUnavailable,
            FilingError::NotFound => ApiError::NotFound.into(),
            FilingError::Store(e) => ApiError::from(e).into(),
            FilingError::Files(e) => {
                tracing::error!(error = %e, "filing: keeping a document failed");
                ApiError::Internal.into()
            }
        }
    }
}

impl IntoResponse for FilingApiError {
    fn into_response(self) -> Response {
        let (status, error, message) = match self {
            FilingApiError::Api(e) => return e.into_response(),
            FilingApiError::NotConfigured => (
                StatusCode::NOT_FOUND,
                "filing_not_configured",
                "filing letters is not available in this tenant",
            ),
            FilingApiError::SigningUnavailable => (
                StatusCode::BAD_GATEWAY,
                "signing_unavailable",
                "the Profil Zaufany signing service did not take the letter; it is stored. Send the same request with the same Idempotency-Key again to retry.",
            ),
        };
        (
            status,
            Json(ErrorBody {
                error,
                message: message.to_owned(),
            }),
        )
            .into_response()
    }
}

fn service(s: &AppState) -> Result<&FilingService, FilingApiError> {
    s.filing.as_deref().ok_or(FilingApiError::NotConfigured)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let v = headers
        .get(IDEMPOTENCY_HEADER)
        .ok_or_else(|| ApiError::BadRequest("missing Idempotency-Key header".into()))?;
    v.to_str()
        .ok()
        .filter(|s| (8..=100).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Idempotency-Key must be 8 to 100 printable ASCII characters".into(),
            )
        })
}

async fn create_filing(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
    body: Bytes,
) -> Result<Response, FilingApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    let key = idempotency_key(&headers)?;
    let letter: LetterForm = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
    let svc = service(&s)?;
    let view = svc
        .file(FilingRequest {
            tenant: t,
            client: caller.client(),
            idempotency_key: key,
            pesel,
            letter,
        })
        .await?;
    let status = if view.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

async fn filing(
    State(s): State<AppState>,
    Path((raw, filing_id)): Path<(String, String)>,
    headers: crate::Authed,
) -> Result<Json<FilingView>, FilingApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    let svc = service(&s)?;
    svc.filing(&t, &filing_id, &pesel)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound.into())
}

/// The tenant of a callback, without a caller: known to the deployment, or 404.
fn callback_tenant(s: &AppState, raw: &str) -> Result<Teryt, FilingApiError> {
    Teryt::from_str(raw)
        .ok()
        .filter(|t| s.tenants.contains_key(t))
        .ok_or(FilingApiError::Api(ApiError::NotFound))
}

/// 303 to the portal, with a short text body for clients that do not follow redirects.
fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
        ],
        format!("See {location}\n"),
    )
        .into_response()
}

async fn signed(
    State(s): State<AppState>,
    Path((raw, filing_id)): Path<(String, String)>,
) -> Result<Response, FilingApiError> {
    let t = callback_tenant(&s, &raw)?;
    let svc = service(&s)?;
    let r = svc.signed(&t, &filing_id).await?;
    Ok(see_other(&FilingService::return_to(&r)))
}

async fn cancelled(
    State(s): State<AppState>,
    Path((raw, filing_id)): Path<(String, String)>,
) -> Result<Response, FilingApiError> {
    let t = callback_tenant(&s, &raw)?;
    let svc = service(&s)?;
    let r = svc.cancelled(&t, &filing_id).await?;
    Ok(see_other(&FilingService::return_to(&r)))
}
