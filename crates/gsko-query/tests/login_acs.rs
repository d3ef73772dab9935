//! The login's HTTP face against the simulated login.gov.pl: `/login` posts a signed
//! AuthnRequest, `/login/acs` sets a Secure, HttpOnly session cookie and sends the browser
//! back; a refused answer is a plain 403 that names the failed check, is audited, and the next
//! login works; logout ends the session at both ends.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use gsko_sim::login::{LoginFault, LoginSim, LoginSimConfig, SimIdentity};
use gsko_store::AuditStore;
use std::sync::Arc;
use tower::ServiceExt;

const ACS: &str = "http://gsko.test/login/acs";

struct World {
    router: axum::Router,
    store: Arc<gsko_store::SqliteStore>,
    sim: LoginSim,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let (store, dir) = populated().await;
    let creds = gsko_sim::login::make_sp_credentials(dir.path()).unwrap();
    let sim = LoginSim::start(
        LoginSimConfig::new(
            "gsko.test",
            ACS,
            &creds.signing_cert_pem,
            &creds.encryption_cert_pem,
        )
        .with_resident(SimIdentity::new(JAN, "Jan", "Kowalski", "1978-03-15")),
    )
    .unwrap();
    let sp = gsko_login::ServiceProvider::new(
        gsko_login::SpSettings::new(
            "gsko.test",
            ACS,
            gsko_login::IdpEndpoints::under(sim.entity_id(), sim.base_url()),
        ),
        gsko_login::Signer::from_pem(&creds.signing_cert_pem, &creds.signing_key_pem).unwrap(),
        gsko_login::DecryptionKey::from_pem(&creds.encryption_key_pem).unwrap(),
        gsko_login::certificates_from_pem(sim.idp_certificate_pem()).unwrap(),
    )
    .unwrap();
    let login = Arc::new(gsko_login::LoginService {
        sp,
        keys: session_keys(),
        store: store.clone(),
        policy: gsko_login::SessionPolicy {
            ttl: chrono::Duration::minutes(15),
            max: chrono::Duration::hours(8),
            login_timeout: chrono::Duration::minutes(10),
            return_origins: vec![],
        },
    });
    let state = gsko_query::AppState::new(
        store.clone() as Arc<dyn gsko_store::Store>,
        keys(),
        [
            (teryt(T1), "Bolesławiec".to_owned()),
            (teryt(T2), "Gromadka".to_owned()),
        ]
        .into_iter()
        .collect(),
        gsko_query::Registry::new(),
    )
    .with_audit(store.clone() as Arc<dyn AuditStore>)
    .with_login(login, true);
    World {
        router: gsko_query::router(state, 4096),
        store,
        sim,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].replace("&amp;", "&")
}

async fn call(w: &World, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = w.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// `req` sent with the session cookie `token`.
async fn with_cookie(
    w: &World,
    req: axum::http::request::Builder,
    token: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let req = req
        .header(header::COOKIE, format!("gsko_session={token}"))
        .body(Body::empty())
        .unwrap();
    call(w, req).await
}

/// The browser's round: GSKO's form → the simulator → GSKO's ACS; the ACS answer.
async fn log_in(w: &World) -> (StatusCode, axum::http::HeaderMap, String) {
    let (s, h, form) = call(
        w,
        Request::get("/login?return_to=/v1/resident/summary")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'sha256-"),
        "the page may run its one script only: {csp}"
    );
    let page = w
        .http
        .post(w.sim.sso_url())
        .form(&[
            ("SAMLRequest", hidden(&form, "SAMLRequest")),
            ("RelayState", hidden(&form, "RelayState")),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let back = w
        .http
        .post(format!("{}/login/choose", w.sim.base_url()))
        .form(&[
            ("pending", hidden(&page, "pending")),
            ("pesel", JAN.to_owned()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body = format!(
        "SAMLart={}&RelayState={}",
        urlencode(&hidden(&back, "SAMLart")),
        urlencode(&hidden(&back, "RelayState"))
    );
    call(
        w,
        Request::post("/login/acs")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn audit_outcomes(w: &World) -> Vec<(String, Option<String>, String)> {
    w.store
        .audit_oldest_before(chrono::Utc::now() + chrono::Duration::hours(1), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.action.contains("/login/acs") || r.entry.action.contains("/logout"))
        .map(|r| (r.entry.action, r.entry.resident_pesel, r.entry.outcome))
        .collect()
}

#[tokio::test]
async fn a_login_sets_a_secure_cookie_and_a_refused_one_is_audited() {
    let w = world().await;

    // Refused: a tampered assertion. Plain 403 naming the check; no cookie.
    w.sim.set_fault(LoginFault::TamperedAssertion);
    let (s, h, body) = log_in(&w).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("bad_signature"), "{body}");
    assert!(!h.contains_key(header::SET_COOKIE));

    // The next login works: 303 back where it started, with the session cookie.
    w.sim.set_fault(LoginFault::None);
    let (s, h, _) = log_in(&w).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/v1/resident/summary");
    let cookie = h[header::SET_COOKIE].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    let token = cookie
        .strip_prefix("gsko_session=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();

    // The cookie reads the resident's own data.
    let (s, _, body) = with_cookie(&w, Request::get("/v1/resident/summary"), &token).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Logout: the session ends here and at login.gov.pl; the cookie is cleared.
    let (s, h, _) = with_cookie(&w, Request::post("/logout"), &token).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(w.sim.logged_out().len(), 1);
    let (s, _, _) = with_cookie(&w, Request::get("/v1/session"), &token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // All three are in the audit: the refusal with its reason, the login and the logout under
    // the resident.
    let audit = audit_outcomes(&w).await;
    assert_eq!(
        audit,
        vec![
            (
                "POST /login/acs".to_owned(),
                None,
                "403 bad_signature".to_owned()
            ),
            (
                "POST /login/acs".to_owned(),
                Some(JAN.to_owned()),
                "303 logged_in".to_owned()
            ),
            (
                "POST /logout".to_owned(),
                Some(JAN.to_owned()),
                "200 logged_out".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_foreign_return_address_is_refused_before_login_gov_pl_is_asked() {
    let w = world().await;
    let (s, _, body) = call(
        &w,
        Request::get("/login?return_to=https://evil.example/")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _, body) = call(
        &w,
        Request::post("/login/acs")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("RelayState=x"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(w.sim.resolved_count(), 0);
}
