//! EZD's webhooks (`POST /hooks/ezd/{teryt}`): hints that something changed, never the truth.
//!
//! EZD RP's contract names the events (`ezdrp.v2.rpw.sprawa.utworzono`, …) but neither the
//! payload nor how deliveries are signed, so GSKO believes nothing a webhook says: a hint only
//! makes the tenant's next round start now, reading first the case it names when GSKO watches
//! it. A hint about an unknown case, or one that cannot be read, changes nothing else. A flood
//! of hints costs at most one round at a time (hints coalesce).

use crate::CaseService;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use gsko_model::Teryt;
use std::sync::Arc;

/// Webhook payloads are small; anything bigger is refused before it is read.
pub const HOOK_BODY_LIMIT: usize = 64 * 1024;

pub fn routes(service: Arc<CaseService>) -> Router {
    Router::new()
        .route("/hooks/ezd/{teryt}", post(hook))
        .layer(axum::extract::DefaultBodyLimit::max(HOOK_BODY_LIMIT))
        .with_state(service)
}

async fn hook(
    State(service): State<Arc<CaseService>>,
    Path(teryt): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let Ok(tenant) = Teryt::parse(&teryt) else {
        return StatusCode::NOT_FOUND;
    };
    let case_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| case_id_of(&v));
    if service.hint(&tenant, case_id) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::NOT_FOUND
    }
}

/// The case a hint names, wherever the payload puts it (`idSprawa` at the top or one level
/// down, e.g. under `dane`).
fn case_id_of(v: &serde_json::Value) -> Option<String> {
    let direct = |o: &serde_json::Value| {
        o.get("idSprawa")
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .map(str::to_owned)
    };
    direct(v).or_else(|| {
        v.as_object()?
            .values()
            .filter(|x| x.is_object())
            .find_map(direct)
    })
}

#[cfg(test)]
mod tests {
    use super::case_id_of;

    #[test]
    fn finds_the_case_wherever_it_is() {
        let v = serde_json::json!({"kluczZdarzenia": "x", "dane": {"idSprawa": "42"}});
        assert_eq!(case_id_of(&v).as_deref(), Some("42"));
        assert_eq!(
            case_id_of(&serde_json::json!({"idSprawa": "7"})).as_deref(),
            Some("7")
        );
        assert_eq!(
            case_id_of(&serde_json::json!({"dane": {"idSprawa": 7}})),
            None
        );
        assert_eq!(case_id_of(&serde_json::json!([1, 2])), None);
    }
}
