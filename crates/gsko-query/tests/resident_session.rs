//! A logged-in resident reads their own data (and the accounts they co-own) with their
//! session, by cookie or bearer; everything else is refused with a plain 401/403/404, audited,
//! and the next legitimate request still works.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use gsko_store::{AuditStore, LoginStore};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

enum Cred<'a> {
    Cookie(&'a str),
    Bearer(&'a str),
}

async fn call(
    app: &App,
    method: &str,
    url: &str,
    cred: Cred<'_>,
    pesel: Option<&str>,
) -> (StatusCode, Value) {
    let mut r = Request::builder().method(method).uri(url);
    r = match cred {
        Cred::Cookie(t) => r.header("cookie", format!("lang=pl; gsko_session={t}")),
        Cred::Bearer(t) => r.header("authorization", format!("Bearer {t}")),
    };
    if let Some(p) = pesel {
        r = r.header("x-resident-pesel", p);
    }
    let resp = app
        .router
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn audited_app() -> App {
    let app = app_with(false, |s| s).await;
    // The audit shares the app's store; built here so the test can read it back.
    let store = app.store.clone();
    App {
        router: gsko_query::router(
            {
                let mut s = gsko_query::AppState::new(
                    store.clone() as Arc<dyn gsko_store::Store>,
                    keys(),
                    [
                        (teryt(T1), "Bolesławiec".to_owned()),
                        (teryt(T2), "Gromadka".to_owned()),
                    ]
                    .into_iter()
                    .collect(),
                    gsko_query::Registry::new(),
                );
                s.today = || chrono::NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
                s.with_audit(store.clone() as Arc<dyn AuditStore>)
                    .with_login(login_service(store.clone(), app._dir.path()), true)
            },
            4096,
        ),
        ..app
    }
}

fn summary(t: &str) -> String {
    format!("/v1/tenants/{t}/resident/summary")
}

#[tokio::test]
async fn a_resident_reads_only_their_own_data() {
    let app = audited_app().await;
    let jan = session_token(&app.store, JAN).await;

    // Their own data, by cookie and by bearer, with or without naming themselves.
    let (s, v) = call(&app, "GET", &summary(T1), Cred::Cookie(&jan), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = call(&app, "GET", &summary(T1), Cred::Bearer(&jan), Some(JAN)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        &app,
        "GET",
        "/v1/resident/summary",
        Cred::Cookie(&jan),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["tenants"].as_array().unwrap().len(),
        2,
        "Jan has data in both tenants"
    );

    // Someone else's data: answered like unknown data, whoever that is.
    let (s, v) = call(&app, "GET", &summary(T2), Cred::Cookie(&jan), Some(ANNA)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "not_found");
    let (s2, v2) = call(&app, "GET", &summary(T2), Cred::Cookie(&jan), Some(EWA)).await;
    assert_eq!(
        (s2, &v2),
        (s, &v),
        "an existing and another resident look the same"
    );

    // Operations endpoints are not a resident's.
    let (s, v) = call(
        &app,
        "GET",
        &format!("/v1/tenants/{T1}/admin/imports"),
        Cred::Cookie(&jan),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"], "not_admin");

    // And the next legitimate request still works.
    let (s, _) = call(
        &app,
        "GET",
        &format!("/v1/tenants/{T1}/resident/liabilities"),
        Cred::Cookie(&jan),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // Every one of these is in the audit, refused ones included, under the session.
    let rows = app.store.audit_of_resident(T2, JAN, 50).await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.entry.outcome == "404" && r.entry.actor.starts_with("resident:")),
        "the refused read of another resident is audited: {rows:?}"
    );
}

#[tokio::test]
async fn a_co_owner_sees_the_shared_account() {
    let app = audited_app().await;
    let piotr = session_token(&app.store, PIOTR).await;
    let (s, v) = call(
        &app,
        "GET",
        &format!("/v1/tenants/{T2}/resident/liabilities"),
        Cred::Cookie(&piotr),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v.to_string().contains("L2"),
        "Piotr sees the liability of the house he co-owns: {v}"
    );
}

#[tokio::test]
async fn forged_revoked_and_foreign_credentials_are_refused_and_audited() {
    let app = audited_app().await;
    let jan = session_token(&app.store, JAN).await;

    // A forged cookie (the signature altered), a token of a key this service does not have.
    let mut forged = jan.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (s, v) = call(&app, "GET", &summary(T1), Cred::Cookie(&forged), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "invalid_session");
    let other = gsko_login::SessionKeys::new(vec![vec![1; 32]]).unwrap();
    let foreign = other.sign(
        jan.split('.').nth(2).unwrap(),
        chrono::Utc::now() + chrono::Duration::minutes(5),
    );
    let (s, _) = call(&app, "GET", &summary(T1), Cred::Bearer(&foreign), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A portal key on a tenant it does not serve.
    let (s, v) = call(&app, "GET", &summary(T2), Cred::Bearer("k-t1"), Some(ANNA)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "not_found");

    // The genuine session still works; once revoked (logout, an admin), it does not.
    let (s, _) = call(&app, "GET", &summary(T1), Cred::Cookie(&jan), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.store
            .session_revoke_resident(JAN, chrono::Utc::now())
            .await
            .unwrap(),
        1
    );
    let (s, _) = call(&app, "GET", &summary(T1), Cred::Cookie(&jan), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let report = app.store.audit_verify(100).await.unwrap();
    assert!(report.problems.is_empty());
    let refused = app.store.audit_of_resident(T2, ANNA, 10).await.unwrap();
    assert!(refused
        .iter()
        .any(|r| r.entry.actor == "portal:t1" && r.entry.outcome == "404"));
    let all = app
        .store
        .audit_oldest_before(chrono::Utc::now() + chrono::Duration::hours(1), 1000)
        .await
        .unwrap();
    let invalid = all
        .iter()
        .filter(|r| r.entry.actor == "invalid-session" && r.entry.outcome == "401")
        .count();
    assert_eq!(
        invalid, 3,
        "the forged, the foreign and the revoked token are audited"
    );
}
