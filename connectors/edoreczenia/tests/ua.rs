//! The connector against the e-Doręczenia simulator (`gsko_sim::edoreczenia`), an independent
//! implementation of the token endpoint and the UA API, plus a stub mailbox for the SENT
//! listing (which the simulator does not serve).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use gsko_edoreczenia::{
    Config, DeliveryStatus, Error, Outcome, Outgoing, OutgoingFile, RetryPolicy, TokenSource,
    UaClient,
};
use gsko_model::AdeAddress;
use gsko_sim::edoreczenia::{
    ade_address, EdoreczeniaSim, EdoreczeniaSimConfig, EdoreczeniaSimHandle, Failure,
};

const SYSTEM: &str = "GSKO";

/// A self-signed system certificate made by the `openssl` CLI.
struct Identity {
    cert_pem: String,
    key_pem: String,
    public_pem: String,
    cert_der: Vec<u8>,
}

fn identity() -> Identity {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=UM Boleslawiec GSKO"])
        .output()
        .expect("openssl makes the test certificate (scripts/ensure-services.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl extracts the public key");
    assert!(public.status.success());
    let cert_pem = std::fs::read_to_string(cert).expect("cert");
    let b64: String = cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    Identity {
        cert_der: base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("PEM body"),
        cert_pem,
        key_pem: std::fs::read_to_string(key).expect("key"),
        public_pem: String::from_utf8(public.stdout).expect("PEM"),
    }
}

fn office() -> AdeAddress {
    AdeAddress::parse(&ade_address(1)).expect("the simulator makes valid addresses")
}

fn resident(seed: u64) -> AdeAddress {
    AdeAddress::parse(&ade_address(100 + seed)).expect("the simulator makes valid addresses")
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    }
}

fn config(sim: &EdoreczeniaSimHandle, id: &Identity) -> Config {
    Config::new(
        sim.token_url(),
        sim.api_url(),
        office(),
        SYSTEM,
        &id.cert_pem,
        &id.key_pem,
    )
}

/// A simulator knowing the office's system (with `registered`'s certificate) and residents 1-3.
async fn sim_with(registered: &Identity) -> EdoreczeniaSimHandle {
    let mut cfg = EdoreczeniaSimConfig::new().with_system(
        office().as_str(),
        SYSTEM,
        registered.cert_der.clone(),
    );
    for seed in 1..=3 {
        cfg = cfg.with_mailbox(resident(seed).as_str());
    }
    EdoreczeniaSim::start(cfg).await.expect("simulator starts")
}

fn decision(recipient: AdeAddress, reference: &str) -> Outgoing {
    Outgoing {
        recipient,
        subject: "Decyzja w sprawie podatku od nieruchomości".into(),
        text_body: "W załączeniu decyzja.".into(),
        attachments: vec![OutgoingFile {
            filename: "decyzja.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: b"%PDF-1.7 decyzja \x00\xff".to_vec(),
            description: Some("Decyzja".into()),
        }],
        thread_id: None,
        case_id: Some("FN.3120.7.2026".into()),
        reference: reference.into(),
    }
}

#[test]
fn the_client_assertion_carries_the_documented_claims() {
    let id = identity();
    let cfg = Config::new(
        "https://int-ow.edoreczenia.gov.pl/auth/realms/EDOR/protocol/openid-connect/token",
        "https://uaapi-int-ow.poczta-polska.pl/api/v1",
        AdeAddress::parse("AE:PL-97075-47631-STVJH-19").expect("spec sample"),
        "EZD",
        &id.cert_pem,
        &id.key_pem,
    );
    let source = TokenSource::new(&cfg, reqwest::Client::new()).expect("usable key");
    let jws = source.assertion().expect("signed");
    let header = jsonwebtoken::decode_header(&jws).expect("JWS header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let x5c = header.x5c.expect("x5c");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&x5c[0])
            .expect("base64"),
        id.cert_der
    );

    let key = jsonwebtoken::DecodingKey::from_rsa_pem(id.public_pem.as_bytes()).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[cfg.token_url.as_str()]);
    let claims = jsonwebtoken::decode::<gsko_edoreczenia::AssertionClaims>(&jws, &key, &validation)
        .expect("signature verifies with the certificate's key")
        .claims;
    assert_eq!(claims.iss, "AE:PL-97075-47631-STVJH-19.SYSTEM.EZD");
    assert_eq!(claims.sub, claims.iss);
    assert_eq!(claims.aud, cfg.token_url);
    assert_eq!(claims.exp - claims.iat, 300);
    assert_eq!(claims.nbf, claims.iat);
    assert!((claims.iat - chrono::Utc::now().timestamp()).abs() < 5);
    let jti = uuid::Uuid::parse_str(&claims.jti).expect("jti is a UUID");
    assert_eq!(jti.get_version_num(), 4);

    let other = jsonwebtoken::decode::<gsko_edoreczenia::AssertionClaims>(
        &source.assertion().expect("signed"),
        &key,
        &validation,
    )
    .expect("valid")
    .claims;
    assert_ne!(other.jti, claims.jti, "every assertion needs a new jti");

    let mut custom = cfg.clone();
    custom.audience = Some("https://int-ow.edoreczenia.gov.pl/auth/realms/EDOR".into());
    let source = TokenSource::new(&custom, reqwest::Client::new()).expect("usable key");
    assert_eq!(
        source.claims(0, "j".into()).aud,
        custom.audience.clone().expect("set")
    );
}

#[test]
fn an_unusable_key_is_a_configuration_error() {
    let id = identity();
    let mut cfg = Config::new(
        "http://127.0.0.1:9/token",
        "http://127.0.0.1:9/api/v1",
        office(),
        SYSTEM,
        &id.cert_pem,
        "not a key",
    );
    assert!(matches!(UaClient::new(cfg.clone()), Err(Error::Config(_))));
    cfg.private_key_pem = id.key_pem.clone();
    cfg.api_url = "not a url".into();
    assert!(matches!(UaClient::new(cfg), Err(Error::Config(_))));
}

#[tokio::test]
async fn a_decision_is_sent_followed_to_delivery_and_its_evidence_kept() {
    let id = identity();
    let sim = sim_with(&id).await;
    let client = UaClient::new(config(&sim, &id))
        .expect("client")
        .with_retry(quick());
    let msg = decision(resident(1), "dec-0001");

    let sent = client.send(&msg).await.expect("sent");
    assert_eq!(sent.status.as_deref(), Some("SUCCESS"));
    assert!(!sent.is_task_id);
    let at_sim = sim.message(&sent.message_id).expect("the simulator has it");
    assert_eq!(at_sim.recipient_ade, resident(1).as_str());
    assert_eq!(at_sim.sender_ade, office().as_str());
    assert_eq!(at_sim.subject, msg.subject);
    assert_eq!(at_sim.text_body.as_deref(), Some(msg.text_body.as_str()));
    assert_eq!(at_sim.attachments.len(), 1);
    assert_eq!(at_sim.attachments[0].data, msg.attachments[0].bytes);
    assert_eq!(at_sim.attachments[0].filename, "decyzja.pdf");
    assert_eq!(
        at_sim.request["messageMetadata"]["additionalData"]["gskoReference"],
        "dec-0001"
    );

    let state = client.message(&sent.message_id).await.expect("state");
    assert_eq!(state.status, DeliveryStatus::HandedOverForSending);
    assert_eq!(state.outcome(), None);
    assert!(state.submission_date.is_some());
    assert_eq!(state.receipt_date, None);

    let evidences = client.evidences(&sent.message_id).await.expect("evidences");
    assert_eq!(evidences.len(), 1);
    assert_eq!(evidences[0].kind, "A.1");
    assert_eq!(evidences[0].message_id, sent.message_id);
    let document = client
        .download_evidence(&evidences[0])
        .await
        .expect("document");
    let text = String::from_utf8(document).expect("XML");
    assert!(text.contains(&evidences[0].evidence_id), "{text}");
    assert!(text.contains("A.1"), "{text}");

    sim.receive(&sent.message_id).expect("recipient opens it");
    let state = client.message(&sent.message_id).await.expect("state");
    assert_eq!(state.status, DeliveryStatus::Delivered);
    assert_eq!(state.outcome(), Some(Outcome::Delivered));
    assert!(state.receipt_date.is_some());
    let evidences = client.evidences(&sent.message_id).await.expect("evidences");
    let kinds: Vec<&str> = evidences.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["A.1", "D.1"]);
    let receipt = client
        .download_evidence(&evidences[1])
        .await
        .expect("document");
    assert!(String::from_utf8_lossy(&receipt).contains(&evidences[1].evidence_id));

    // All of it with one access token.
    let tokens = sim.token_requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].refusal, None);
    assert_eq!(tokens[0].login_hint.as_deref(), Some(office().as_str()));
}

#[tokio::test]
async fn deemed_delivery_and_failed_delivery_are_outcomes() {
    let id = identity();
    let sim = sim_with(&id).await;
    let client = UaClient::new(config(&sim, &id))
        .expect("client")
        .with_retry(quick());

    let deemed = client
        .send(&decision(resident(2), "dec-2"))
        .await
        .expect("sent");
    let failed = client
        .send(&decision(resident(3), "dec-3"))
        .await
        .expect("sent");
    sim.deem_delivered(&deemed.message_id).expect("deemed");
    sim.fail_delivery(&failed.message_id, "Skrzynka odbiorcy nieaktywna")
        .expect("failed");

    let state = client.message(&deemed.message_id).await.expect("state");
    assert_eq!(state.status, DeliveryStatus::DeemedDelivered);
    assert_eq!(state.outcome(), Some(Outcome::DeemedDelivered));
    assert!(state.receipt_date.is_some());

    let state = client.message(&failed.message_id).await.expect("state");
    assert_eq!(state.status, DeliveryStatus::NotDelivered);
    assert_eq!(state.outcome(), Some(Outcome::Failed));
    assert_eq!(state.receipt_date, None);
    let evidences = client
        .evidences(&failed.message_id)
        .await
        .expect("evidences");
    let last = evidences.last().expect("a non-delivery evidence");
    assert_eq!(last.kind, "D.3");
    assert_eq!(
        last.reason_details.as_deref(),
        Some("Skrzynka odbiorcy nieaktywna")
    );
}

#[tokio::test]
async fn a_key_not_registered_is_unauthorized_naming_the_reason() {
    let registered = identity();
    let stranger = identity();
    let sim = sim_with(&registered).await;
    let client = UaClient::new(config(&sim, &stranger))
        .expect("client")
        .with_retry(quick());

    let err = client
        .send(&decision(resident(1), "dec-x"))
        .await
        .expect_err("the key does not match the registered certificate");
    let Error::Unauthorized(text) = &err else {
        panic!("expected Unauthorized, got {err:?}");
    };
    assert!(text.contains("signature does not verify"), "{text}");
    assert!(!err.is_transient());
    assert!(sim.sent().is_empty());
}

#[tokio::test]
async fn gets_are_retried_after_500_and_429() {
    let id = identity();
    let sim = sim_with(&id).await;
    let client = UaClient::new(config(&sim, &id))
        .expect("client")
        .with_retry(quick());
    let sent = client
        .send(&decision(resident(1), "dec-r"))
        .await
        .expect("sent");

    sim.fail_next(2, Failure::Http500);
    let state = client
        .message(&sent.message_id)
        .await
        .expect("third attempt succeeds");
    assert_eq!(state.status, DeliveryStatus::HandedOverForSending);

    sim.fail_next(3, Failure::Http500);
    let err = client
        .evidences(&sent.message_id)
        .await
        .expect_err("three failures");
    assert!(
        matches!(&err, Error::Unavailable(t) if t.contains("500")),
        "{err:?}"
    );
    assert!(err.is_transient());

    sim.fail_next(1, Failure::Http429);
    let started = Instant::now();
    client
        .message(&sent.message_id)
        .await
        .expect("after Retry-After");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_expired_token_is_renewed_transparently() {
    let id = identity();
    let sim = sim_with(&id).await;
    let client = UaClient::new(config(&sim, &id))
        .expect("client")
        .with_retry(quick());
    let sent = client
        .send(&decision(resident(1), "dec-t"))
        .await
        .expect("sent");

    sim.expire_tokens();
    client
        .message(&sent.message_id)
        .await
        .expect("renewed for a GET");
    sim.expire_tokens();
    client
        .send(&decision(resident(2), "dec-t2"))
        .await
        .expect("renewed for a send");

    let tokens = sim.token_requests();
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    assert!(tokens.iter().all(|t| t.refusal.is_none()));
    assert_eq!(
        sim.sent().len(),
        2,
        "the refused send went out once, not twice"
    );
}

#[tokio::test]
async fn a_send_is_never_repeated_once_it_may_have_arrived() {
    let id = identity();
    let sim = sim_with(&id).await;
    let mut cfg = config(&sim, &id);
    cfg.timeout = Duration::from_millis(700);
    let client = UaClient::new(cfg).expect("client").with_retry(quick());
    client
        .tokens()
        .token()
        .await
        .expect("token first, so that only the send is slow");

    // Processed, answered too late: the outcome is unknown and the message did go out.
    sim.fail_next(1, Failure::Slow(Duration::from_secs(2)));
    let err = client
        .send(&decision(resident(1), "dec-lost"))
        .await
        .expect_err("the answer is lost");
    assert!(matches!(err, Error::Uncertain(_)), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(sim.sent().len(), 1);

    // 500: refused without processing; reported as transient, not retried by `send`.
    sim.fail_next(1, Failure::Http500);
    let err = client
        .send(&decision(resident(2), "dec-500"))
        .await
        .expect_err("a 500 is not retried by send");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(sim.sent().len(), 1);

    // The API refuses an address not in the address base, naming why.
    let unknown = AdeAddress::parse(&ade_address(999)).expect("valid");
    let err = client
        .send(&decision(unknown, "dec-unknown"))
        .await
        .expect_err("not in the address base");
    assert!(
        matches!(&err, Error::Refused { status: 400, detail } if detail.contains("address base")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_send_to_a_closed_port_is_unavailable() {
    let id = identity();
    let sim = sim_with(&id).await;
    let mut cfg = config(&sim, &id);
    // Token from the simulator, API on a port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    cfg.api_url = format!("http://127.0.0.1:{port}/api/v1");
    let client = UaClient::new(cfg).expect("client").with_retry(quick());
    let err = client
        .send(&decision(resident(1), "dec-c"))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
}

/// A mailbox serving only the token and a SENT listing of `count` messages, `dec-0`…; counts
/// the listing requests.
async fn listing_stub(count: usize) -> (String, Arc<AtomicUsize>) {
    use axum::extract::{Query, State};
    use axum::routing::{get, post};
    use std::collections::HashMap;

    let pages = Arc::new(AtomicUsize::new(0));
    async fn list(
        State((count, pages)): State<(usize, Arc<AtomicUsize>)>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::Json<serde_json::Value> {
        pages.fetch_add(1, Ordering::SeqCst);
        assert_eq!(q.get("label").map(String::as_str), Some("SENT"));
        let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let limit: usize = q.get("limit").and_then(|o| o.parse().ok()).unwrap_or(20);
        let messages: Vec<serde_json::Value> = (offset..count.min(offset + limit))
            .map(|i| {
                serde_json::json!({"messageMetadata": {"messageId": format!("m-{i}"),
                    "additionalData": {"gskoReference": format!("dec-{i}")}}})
            })
            .collect();
        axum::Json(serde_json::json!({"messages": messages, "total": count}))
    }
    let app = axum::Router::new()
        .route(
            "/token",
            post(|| async {
                axum::Json(serde_json::json!({"access_token": "t", "expires_in": 300}))
            }),
        )
        .route("/api/v1/{ade}/messages", get(list))
        .with_state((count, pages.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, pages)
}

#[tokio::test]
async fn find_sent_reads_the_sent_listing_page_by_page() {
    let id = identity();
    let (base, pages) = listing_stub(250).await;
    let cfg = Config::new(
        format!("{base}/token"),
        format!("{base}/api/v1"),
        office(),
        SYSTEM,
        &id.cert_pem,
        &id.key_pem,
    );
    let client = UaClient::new(cfg).expect("client").with_retry(quick());

    assert_eq!(
        client.find_sent("dec-5").await.expect("listing"),
        Some("m-5".into())
    );
    assert_eq!(pages.swap(0, Ordering::SeqCst), 1);
    assert_eq!(
        client.find_sent("dec-230").await.expect("listing"),
        Some("m-230".into())
    );
    assert_eq!(pages.swap(0, Ordering::SeqCst), 3);
    assert_eq!(client.find_sent("dec-250").await.expect("listing"), None);
    assert_eq!(pages.swap(0, Ordering::SeqCst), 3, "stops at total");
}
