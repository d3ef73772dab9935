//! CORS per tenant: a tenant's listed browser origin may call that tenant's routes (preflight
//! answered, the origin echoed); another tenant's origin and unlisted origins get nothing but a
//! refused preflight; the cross-tenant summary accepts any tenant's origin.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use std::collections::BTreeMap;
use tower::ServiceExt;

const EBOK_T1: &str = "https://ebok.boleslawiec.example";
const EBOK_T2: &str = "https://ebok.gromadka.example";

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    origin: Option<&str>,
    preflight: bool,
) -> axum::http::Response<Body> {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if preflight {
        r = r.header("access-control-request-method", "GET").header(
            "access-control-request-headers",
            "authorization, x-resident-pesel",
        );
    } else {
        r = r
            .header("authorization", "Bearer k-all")
            .header("x-resident-pesel", JAN);
    }
    app.clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn acao(r: &axum::http::Response<Body>) -> Option<String> {
    r.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn each_tenant_admits_its_own_portal_origin_only() {
    let app = app_with(false, |s| {
        s.with_cors(BTreeMap::from([
            (teryt(T1), vec![EBOK_T1.to_owned()]),
            (teryt(T2), vec![EBOK_T2.to_owned()]),
        ]))
    })
    .await;
    let letters = format!("/v1/tenants/{T1}/resident/letters");

    let r = call(&app.router, "OPTIONS", &letters, Some(EBOK_T1), true).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(acao(&r).as_deref(), Some(EBOK_T1));
    let allow = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allow.contains("x-resident-pesel") && allow.contains("authorization"));
    assert!(r
        .headers()
        .get("access-control-allow-credentials")
        .is_none());

    let r = call(&app.router, "GET", &letters, Some(EBOK_T1), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(acao(&r).as_deref(), Some(EBOK_T1));
    assert!(r.headers()["vary"].to_str().unwrap().contains("origin"));

    // Gromadka's portal may not read Bolesławiec's data from a browser.
    let r = call(&app.router, "OPTIONS", &letters, Some(EBOK_T2), true).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(acao(&r), None);
    let r = call(
        &app.router,
        "GET",
        &letters,
        Some("https://evil.example"),
        false,
    )
    .await;
    assert_eq!(
        acao(&r),
        None,
        "no CORS headers: the browser withholds the answer"
    );

    // The cross-tenant summary: any tenant's portal.
    let r = call(
        &app.router,
        "OPTIONS",
        "/v1/resident/summary",
        Some(EBOK_T2),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(acao(&r).as_deref(), Some(EBOK_T2));

    // Server-side callers send no Origin and see no CORS headers.
    let r = call(&app.router, "GET", &letters, None, false).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(acao(&r), None);
}
