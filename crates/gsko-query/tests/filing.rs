//! Filing a letter through the query service, as a portal and the resident's browser see it:
//! against the simulated PZ signing service and ePUAP, with the embedded store.
//!
//! `cargo test -p gsko-query --test filing`

mod common;
mod filing_support;

use axum::http::StatusCode;
use common::*;
use filing_support::*;
use serde_json::Value;

fn filings_url() -> String {
    format!("/v1/tenants/{T1}/resident/filings")
}

async fn file(f: &FilingApp, key: &str, body: Value) -> (StatusCode, Value) {
    send_json(
        &f.app.router,
        &Req::post(
            filings_url(),
            Some("k-all"),
            Some(JAN),
            Some(key),
            body.to_string(),
        ),
    )
    .await
}

/// Follows a browser callback; answers the status and where it redirects to.
async fn callback(f: &FilingApp, url: &str) -> (StatusCode, String) {
    let (status, ct, body) = send(&f.app.router, &Req::get(url, None, None)).await;
    let body = String::from_utf8(body).unwrap();
    if status == StatusCode::SEE_OTHER {
        assert!(ct.starts_with("text/plain"), "{ct}");
        let location = body.trim().strip_prefix("See ").unwrap().to_owned();
        (status, location)
    } else {
        (status, body)
    }
}

#[tokio::test]
async fn a_letter_is_signed_at_pz_submitted_with_a_upp_and_shown_to_its_resident() {
    let f = filing_app().await;
    let (s, filed) = file(&f, "jan-letter-1", letter_json("Wniosek o raty")).await;
    assert_eq!(s, StatusCode::CREATED, "{filed}");
    assert_eq!(filed["status"], "awaiting_signature");
    assert_eq!(filed["created"], true);
    let id = filed["filing_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "128 random bits");
    assert!(filed["sign_url"].as_str().unwrap().starts_with("http"));
    // The same key again: the same filing, nothing handed to PZ twice.
    let (s, again) = file(&f, "jan-letter-1", letter_json("Wniosek o raty")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["filing_id"], id.as_str());
    assert_eq!(f.pz.documents().len(), 1);

    f.pz.sign_as(&last_pz_id(&f.pz), &jan_at_pz()).unwrap();
    let (s, location) = callback(&f, &format!("/filing/{T1}/{id}/signed")).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(
        location,
        format!("{PORTAL_RETURN}?filing={id}&status=submitted")
    );
    assert_eq!(f.epuap.sent().len(), 1);

    let url = format!("/v1/tenants/{T1}/resident/filings/{id}");
    let (s, v) = send_json(&f.app.router, &Req::get(&url, Some("k-all"), Some(JAN))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "submitted");
    assert_eq!(v["signed"], true);
    assert_eq!(v["upp_id"], f.epuap.sent()[0].upp_id.as_str());
    assert_eq!(v["document_sha256"].as_str().unwrap().len(), 64);
    assert!(v.get("sign_url").is_none());
    // Another resident, or a key scoped to another tenant, sees nothing.
    let (s, _) = send_json(&f.app.router, &Req::get(&url, Some("k-all"), Some(ANNA))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The browser coming back again: harmless.
    let (s, location) = callback(&f, &format!("/filing/{T1}/{id}/signed")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(location.ends_with("status=submitted"));
    assert_eq!(f.epuap.sent().len(), 1);
}

#[tokio::test]
async fn a_cancelled_letter_returns_the_resident_with_status_cancelled() {
    let f = filing_app().await;
    let (_, filed) = file(&f, "jan-letter-2", letter_json("Skarga")).await;
    let id = filed["filing_id"].as_str().unwrap();
    f.pz.cancel(&last_pz_id(&f.pz)).unwrap();
    let (s, location) = callback(&f, &format!("/filing/{T1}/{id}/cancelled")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        location,
        format!("{PORTAL_RETURN}?filing={id}&status=cancelled")
    );
    assert!(f.epuap.sent().is_empty());
}

#[tokio::test]
async fn bad_letters_are_refused_naming_the_field_and_nothing_reaches_pz() {
    let f = filing_app().await;
    let mut too_many = letter_json("x");
    too_many["attachments"] = Value::Array(vec![too_many["attachments"][0].clone(); 11]);
    let mut bad_url = letter_json("x");
    bad_url["return_url"] = "https://evil.example/".into();
    let mut unknown = letter_json("x");
    unknown["pesel"] = "78031501236".into();
    for (body, field) in [
        (letter_json(""), "title"),
        (too_many, "attachments"),
        (bad_url, "return_url"),
        (unknown, "unknown field `pesel`"),
    ] {
        let (s, v) = file(&f, "jan-letter-3", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["message"].as_str().unwrap().contains(field), "{v}");
    }
    // No Idempotency-Key.
    let (s, v) = send_json(
        &f.app.router,
        &Req::post(
            filings_url(),
            Some("k-all"),
            Some(JAN),
            None,
            letter_json("x").to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(f.pz.documents().is_empty());
}
