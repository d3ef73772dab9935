//! The HTTP surface is hardened: every answer carries the security headers (resident data is
//! never cacheable, HSTS only when configured), and a client over its request rate is refused
//! with 429 and told when to come back — without slowing other clients, and with the refusal
//! in the audit log.

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::*;
use gsko_query::{router, AppState};
use gsko_store::AuditStore;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

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

/// A GET with an optional key, the resident Jan, and an optional `X-Forwarded-For`.
async fn get(
    app: &axum::Router,
    path: &str,
    key: Option<&str>,
    forwarded_for: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut r = Request::get(path).header("x-resident-pesel", JAN);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(f) = forwarded_for {
        r = r.header("x-forwarded-for", f);
    }
    let resp = app
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, v)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn assert_security_headers(h: &HeaderMap, what: &str) {
    assert_eq!(
        header(h, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header(h, "referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(header(h, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(h, "content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'"),
        "{what}"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_resident_data_is_not_cached() {
    let (store, _dir) = populated().await;
    let app = router(state(store), 4096);
    let letters = format!("/v1/tenants/{T1}/resident/letters");
    let outside = format!("/v1/tenants/{T2}/resident/letters");
    for (path, key, want) in [
        (letters.as_str(), Some("k-all"), StatusCode::OK),
        (outside.as_str(), Some("k-t1"), StatusCode::NOT_FOUND),
        (letters.as_str(), Some("nope"), StatusCode::UNAUTHORIZED),
    ] {
        let (s, h, _) = get(&app, path, key, None).await;
        assert_eq!(s, want, "{path}");
        assert_security_headers(&h, &format!("{path} {s}"));
        assert_eq!(header(&h, "cache-control"), Some("no-store"), "{path} {s}");
        assert_eq!(header(&h, "strict-transport-security"), None, "{path}");
    }
    let (s, h, _) = get(&app, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_security_headers(&h, "/healthz");
    assert_eq!(
        header(&h, "cache-control"),
        None,
        "/healthz holds no personal data"
    );
}

#[tokio::test]
async fn hsts_only_when_configured() {
    let (store, _dir) = populated().await;
    let app = router(state(store).with_hsts(true), 4096);
    for path in ["/healthz", &format!("/v1/tenants/{T1}/resident/letters")] {
        let (_, h, _) = get(&app, path, Some("k-all"), None).await;
        assert_eq!(
            header(&h, "strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_key_over_its_burst_is_refused_until_a_token_comes_back_and_others_are_served() {
    let (store, _dir) = populated().await;
    let app = router(state(store).with_rate_limit(5.0, 3), 4096);
    let letters = format!("/v1/tenants/{T1}/resident/letters");
    for i in 0..3 {
        let (s, _, _) = get(&app, &letters, Some("k-all"), None).await;
        assert_eq!(s, StatusCode::OK, "request {i} is within the burst");
    }
    let (s, h, v) = get(&app, &letters, Some("k-all"), None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&h, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(retry >= 1, "{retry}");
    assert_eq!(v["error"], "rate_limited", "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_security_headers(&h, "429");
    // Another key has its own bucket.
    let (s, _, _) = get(&app, &letters, Some("k-t1"), None).await;
    assert_eq!(s, StatusCode::OK);
    // Not under /v1/: never limited.
    let (s, _, _) = get(&app, "/healthz", Some("k-all"), None).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (s, _, _) = get(&app, &letters, Some("k-all"), None).await;
    assert_eq!(s, StatusCode::OK, "served again after Retry-After");
}

#[tokio::test]
async fn without_a_key_clients_are_told_apart_by_address() {
    let (store, _dir) = populated().await;
    let app = router(state(store).with_rate_limit(0.01, 2), 4096);
    let letters = format!("/v1/tenants/{T1}/resident/letters");
    for _ in 0..2 {
        let (s, _, _) = get(&app, &letters, None, Some("192.0.2.1")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, _) = get(&app, &letters, None, Some("192.0.2.1, 10.0.0.1")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // An unknown key does not buy a fresh bucket: it counts against the address.
    let (s, _, _) = get(&app, &letters, Some("invented"), Some("192.0.2.1")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, _, _) = get(&app, &letters, None, Some("192.0.2.2")).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "another address is not limited"
    );
}

#[tokio::test]
async fn refusals_for_rate_are_audited() {
    let (store, _dir) = populated().await;
    let app = router(
        state(store.clone())
            .with_audit(store.clone() as Arc<dyn AuditStore>)
            .with_rate_limit(0.01, 1),
        4096,
    );
    let letters = format!("/v1/tenants/{T1}/resident/letters");
    let (s, _, _) = get(&app, &letters, Some("k-all"), Some("192.0.2.9")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = get(&app, &letters, Some("k-all"), Some("192.0.2.9")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let jan = store.audit_of_resident(T1, JAN, 10).await.unwrap();
    let refused = jan
        .iter()
        .find(|r| r.entry.outcome == "429")
        .unwrap_or_else(|| panic!("no 429 in the audit: {jan:?}"));
    assert_eq!(refused.entry.actor, "portal:all");
    assert_eq!(
        refused.entry.action,
        "GET /v1/tenants/{teryt}/resident/letters"
    );
    assert_eq!(refused.entry.remote.as_deref(), Some("192.0.2.9"));
}
