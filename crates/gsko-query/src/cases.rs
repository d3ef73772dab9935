//! A resident's cases: those their signed letters went to in the municipality's EZD.
//!
//! Like letters, the list answers empty rather than 404 for a resident the tenant has no
//! taxpayer record of. One case is found by its znak sprawy, percent-encoded in the path
//! (`OŚ.6131.2.2026` is `O%C5%9A.6131.2.2026`); a case that does not exist and a case of
//! someone else's answer the same 404, so that a caller cannot probe for znaki.

use crate::{authenticate, resident, tenant, ApiError, AppState};
use axum::extract::{Path, State};
use axum::Json;
use gsko_model::CaseRef;
use gsko_store::CaseView;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Cases {
    pub tenant: String,
    pub cases: Vec<CaseView>,
}

pub(crate) async fn cases(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
) -> Result<Json<Cases>, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    let cases = s.store.resident_cases(&t, &pesel).await?;
    Ok(Json(Cases {
        tenant: t.to_string(),
        cases,
    }))
}

pub(crate) async fn case(
    State(s): State<AppState>,
    Path((raw, raw_ref)): Path<(String, String)>,
    headers: crate::Authed,
) -> Result<Json<CaseView>, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    // The parser's message names the part of the znak that is wrong.
    let case_ref = CaseRef::parse(&raw_ref).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    s.store
        .resident_case(&t, &pesel, &case_ref)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}
