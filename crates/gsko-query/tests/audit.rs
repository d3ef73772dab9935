//! Every `/v1/` request — served or refused — is in the audit log before its answer leaves,
//! with who asked, whose data, what, when, from where and how it ended; the chain verifies;
//! when the audit log cannot be written the data is withheld (503).

mod common;

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::*;
use gsko_query::{router, AppState};
use gsko_store::{AuditEntry, AuditReport, AuditRow, AuditStore, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;

fn state(store: Arc<gsko_store::SqliteStore>) -> AppState {
    let tenants: BTreeMap<_, _> = [(T1, "Bolesławiec"), (T2, "Gromadka")]
        .into_iter()
        .map(|(t, n)| (teryt(t), n.to_owned()))
        .collect();
    AppState::new(
        store as Arc<dyn gsko_store::Store>,
        keys(),
        tenants,
        gsko_query::Registry::new(),
    )
}

#[tokio::test]
async fn reads_and_refusals_are_audited_and_the_chain_verifies() {
    let (store, _dir) = populated().await;
    let app = router(
        state(store.clone()).with_audit(store.clone() as Arc<dyn AuditStore>),
        4096,
    );
    let letters = format!("/v1/tenants/{T1}/resident/letters");
    let (s, _) = send_json(&app, &Req::get(&letters, Some("k-all"), Some(JAN))).await;
    assert_eq!(s, StatusCode::OK);
    // Refused: a key scoped to T1 asking about T2; an unknown key; an admin route without admin.
    let (s, _) = send_json(
        &app,
        &Req::get(
            format!("/v1/tenants/{T2}/resident/letters"),
            Some("k-t1"),
            Some(ANNA),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = send_json(&app, &Req::get(&letters, Some("nope"), Some(JAN))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = send_json(
        &app,
        &Req::get(
            format!("/v1/tenants/{T1}/admin/letters"),
            Some("k-all"),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Not resident data: not audited.
    let (s, _, _) = send(&app, &Req::get("/healthz", None, None)).await;
    assert_eq!(s, StatusCode::OK);

    let jan = store.audit_of_resident(T1, JAN, 10).await.unwrap();
    assert_eq!(jan.len(), 2, "{jan:?}");
    let read = jan.iter().find(|r| r.entry.outcome == "200").unwrap();
    assert_eq!(read.entry.actor, "portal:all");
    assert_eq!(
        read.entry.action,
        "GET /v1/tenants/{teryt}/resident/letters"
    );
    assert_eq!(read.entry.tenant.as_deref(), Some(T1));
    let unknown = jan.iter().find(|r| r.entry.outcome == "401").unwrap();
    assert_eq!(unknown.entry.actor, "unknown");
    let anna = store.audit_of_resident(T2, ANNA, 10).await.unwrap();
    assert_eq!(anna.len(), 1);
    assert_eq!(anna[0].entry.outcome, "404");
    assert_eq!(anna[0].entry.actor, "portal:t1");

    let report = store.audit_verify(100).await.unwrap();
    assert_eq!(report.rows, 4, "four /v1/ requests, /healthz not");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// An audit log that refuses every write.
struct Broken;

#[async_trait]
impl AuditStore for Broken {
    async fn audit_append(&self, _: &[AuditEntry]) -> Result<Vec<AuditRow>, StoreError> {
        Err(StoreError::Unavailable("disk full".into()))
    }
    async fn audit_verify(&self, _: u32) -> Result<AuditReport, StoreError> {
        Ok(AuditReport::default())
    }
    async fn audit_oldest_before(
        &self,
        _: DateTime<Utc>,
        _: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(vec![])
    }
    async fn audit_prune_through(&self, _: &AuditRow) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn audit_of_resident(
        &self,
        _: &str,
        _: &str,
        _: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn nothing_is_served_unaudited() {
    let (store, _dir) = populated().await;
    let app = router(state(store).with_audit(Arc::new(Broken)), 4096);
    let (s, v) = send_json(
        &app,
        &Req::get(
            format!("/v1/tenants/{T1}/resident/letters"),
            Some("k-all"),
            Some(JAN),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"], "unavailable");
    assert!(v.to_string().find(JAN).is_none(), "no data in the refusal");
}
