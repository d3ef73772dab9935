//! A resident's letters and decisions, and the admin's list of letters.
//!
//! Unlike the tax endpoints, these answer an empty list rather than 404 for a resident the
//! tenant has no taxpayer record of: anyone may write to the municipality.

use crate::{admin_tenant, authenticate, resident, tenant, ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub struct Letters {
    pub tenant: String,
    pub letters: Vec<gsko_store::LetterView>,
}

pub(crate) async fn letters(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
) -> Result<Json<Letters>, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    let letters = s.store.resident_letters(&t, &pesel).await?;
    Ok(Json(Letters {
        tenant: t.to_string(),
        letters,
    }))
}

#[derive(Debug, Serialize)]
pub struct Decisions {
    pub tenant: String,
    pub decisions: Vec<gsko_model::DecisionDelivered>,
}

pub(crate) async fn decisions(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
) -> Result<Json<Decisions>, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    let decisions = s.store.resident_decisions(&t, &pesel).await?;
    Ok(Json(Decisions {
        tenant: t.to_string(),
        decisions,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminLettersQuery {
    #[serde(default)]
    flagged: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AdminLetters {
    pub tenant: String,
    pub letters: Vec<gsko_model::Letter>,
}

pub(crate) async fn admin_letters(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
    query: Result<Query<AdminLettersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AdminLetters>, ApiError> {
    let t = admin_tenant(&s, &headers, &raw)?;
    let Query(q) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let flagged = match q.flagged.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadQuery(format!(
                "flagged={other:?}: expected true or false"
            )))
        }
    };
    let letters = s.store.letters(&t, flagged, 1000).await?;
    Ok(Json(AdminLetters {
        tenant: t.to_string(),
        letters,
    }))
}
