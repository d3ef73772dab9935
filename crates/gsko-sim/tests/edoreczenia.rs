//! The e-Doręczenia simulator, driven by hand-built requests: the client assertion is made
//! here with the `rsa` crate from a key `openssl` generated; no connector code involved.
//! Needs `openssl` on PATH.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use gsko_sim::edoreczenia::{
    ade_address, attachment_hash, EdoreczeniaSim, EdoreczeniaSimConfig, EdoreczeniaSimHandle,
    Failure, MessageStatus,
};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{json, Value};
use sha3::Digest as _;

const SYSTEM: &str = "GSKO";

struct Identity {
    key: rsa::RsaPrivateKey,
    cert_der: Vec<u8>,
}

struct Pki {
    gmina: Identity,
    stranger: Identity,
}

fn make_identity(dir: &Path, name: &str) -> Identity {
    let key = dir.join(format!("{name}.key.pem"));
    let der = dir.join(format!("{name}.cert.der"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
        ])
        .arg("-subj")
        .arg(format!("/CN={name}"))
        .args(["-outform", "DER", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&der)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(key).unwrap();
    Identity {
        key: rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("openssl writes PKCS#8"),
        cert_der: std::fs::read(der).unwrap(),
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        Pki {
            gmina: make_identity(dir.path(), "gmina"),
            stranger: make_identity(dir.path(), "stranger"),
        }
    })
}

fn gmina_ade() -> String {
    ade_address(1)
}

fn resident_ade() -> String {
    ade_address(2)
}

async fn start(
    config: impl FnOnce(EdoreczeniaSimConfig) -> EdoreczeniaSimConfig,
) -> EdoreczeniaSimHandle {
    let base = EdoreczeniaSimConfig::new()
        .with_system(&gmina_ade(), SYSTEM, pki().gmina.cert_der.clone())
        .with_mailbox(&resident_ade());
    EdoreczeniaSim::start(config(base)).await.unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(sim: &EdoreczeniaSimHandle) -> Value {
    let client = format!("{}.SYSTEM.{SYSTEM}", gmina_ade());
    let mut jti = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut jti);
    json!({
        "iss": client, "sub": client, "aud": sim.token_url(),
        "jti": hex::encode(jti), "iat": now(), "nbf": now(), "exp": now() + 120,
    })
}

fn jws(header: &Value, payload: &Value, key: &rsa::RsaPrivateKey) -> String {
    let signed = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes())
    );
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let signature = signer.sign(signed.as_bytes()).to_vec();
    format!("{signed}.{}", b64url(&signature))
}

fn rs256() -> Value {
    json!({"alg": "RS256", "typ": "JWT"})
}

async fn token_call(sim: &EdoreczeniaSimHandle, login_hint: &str, assertion: &str) -> (u16, Value) {
    let form = format!(
        "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    );
    let r = reqwest::Client::new()
        .post(sim.token_url())
        .query(&[("login_hint", login_hint)])
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn access_token(sim: &EdoreczeniaSimHandle) -> String {
    let (status, body) = token_call(
        sim,
        &gmina_ade(),
        &jws(&rs256(), &claims(sim), &pki().gmina.key),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

fn attachment(data: &[u8]) -> Value {
    json!({
        "order": 0,
        "attachmentId": "D41568F4-7175-42BB-9503-DAA282180D70",
        "file": {
            "fileMetadata": {
                "fileId": "D41568F4-7175-42BB-9503-DAA282180D70",
                "filename": "decyzja.pdf",
                "contentType": "application/pdf",
                "size": data.len(),
                "alg": "SHA-3",
                "hash": attachment_hash(data),
                "description": "Decyzja",
            },
            "file": base64::engine::general_purpose::STANDARD.encode(data),
        }
    })
}

fn message(to: &str, attachments: Vec<Value>) -> Value {
    json!({
        "messageControlData": {"MessageType": "Message"},
        "messageMetadata": {
            "to": [{"eDeliveryAddress": to}],
            "subject": "Decyzja w sprawie podatku od nieruchomości",
            "shippingService": "electronic",
        },
        "textBody": "W załączeniu decyzja.",
        "attachments": attachments,
    })
}

async fn send(sim: &EdoreczeniaSimHandle, token: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/{}/messages", sim.api_url(), gmina_ade()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get_json(token: &str, url: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_registered_system_gets_a_token_with_either_login_hint_form() {
    let sim = start(|c| c).await;
    for hint in [gmina_ade(), format!("ADE.{}", gmina_ade())] {
        let (status, body) =
            token_call(&sim, &hint, &jws(&rs256(), &claims(&sim), &pki().gmina.key)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 300);
        assert_eq!(body["scope"], "read_messages write_messages");
        assert!(body["access_token"].as_str().unwrap().len() >= 32);
    }
    // The realm URL is an accepted audience too, also inside an array.
    let mut c = claims(&sim);
    c["aud"] = json!(["https://elsewhere", sim.realm_url()]);
    let (status, body) = token_call(&sim, &gmina_ade(), &jws(&rs256(), &c, &pki().gmina.key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.token_requests().len(), 3);
    assert!(sim.token_requests().iter().all(|t| t.refusal.is_none()));
}

async fn refused(sim: &EdoreczeniaSimHandle, hint: &str, assertion: &str) -> String {
    let (status, body) = token_call(sim, hint, assertion).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    body["error_description"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn bad_client_assertions_are_refused_with_a_precise_reason() {
    let sim = start(|c| c).await;
    let gmina = &pki().gmina.key;
    let ade = gmina_ade();

    let reason = refused(
        &sim,
        &ade,
        &jws(&rs256(), &claims(&sim), &pki().stranger.key),
    )
    .await;
    assert!(reason.contains("signature does not verify"), "{reason}");

    let mut c = claims(&sim);
    c["aud"] =
        json!("https://ow.edoreczenia.gov.pl/auth/realms/EDOR/protocol/openid-connect/token");
    let reason = refused(&sim, &ade, &jws(&rs256(), &c, gmina)).await;
    assert!(reason.contains("audience"), "{reason}");

    let mut c = claims(&sim);
    c["exp"] = json!(now() - 5);
    let reason = refused(&sim, &ade, &jws(&rs256(), &c, gmina)).await;
    assert!(
        reason.contains("exp") && reason.contains("past"),
        "{reason}"
    );

    let mut c = claims(&sim);
    c["exp"] = json!(now() + 3600);
    let reason = refused(&sim, &ade, &jws(&rs256(), &c, gmina)).await;
    assert!(reason.contains("more than 600 s"), "{reason}");

    let c = claims(&sim);
    let once = jws(&rs256(), &c, gmina);
    let (status, _) = token_call(&sim, &ade, &once).await;
    assert_eq!(status, 200);
    let reason = refused(&sim, &ade, &once).await;
    assert!(reason.contains("already used"), "{reason}");

    // alg "none" with an empty signature, and HS256.
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none"}"#),
        b64url(claims(&sim).to_string().as_bytes())
    );
    let reason = refused(&sim, &ade, &none).await;
    assert!(
        reason.contains("\"none\"") && reason.contains("RS256"),
        "{reason}"
    );
    let reason = refused(
        &sim,
        &ade,
        &jws(&json!({"alg": "HS256"}), &claims(&sim), gmina),
    )
    .await;
    assert!(reason.contains("HS256"), "{reason}");

    // login_hint naming another ADE than iss.
    let reason = refused(&sim, &resident_ade(), &jws(&rs256(), &claims(&sim), gmina)).await;
    assert!(reason.contains("login_hint"), "{reason}");

    // An unregistered system name.
    let mut c = claims(&sim);
    let other = format!("{ade}.SYSTEM.Inny");
    c["iss"] = json!(other);
    c["sub"] = json!(other);
    let reason = refused(&sim, &ade, &jws(&rs256(), &c, gmina)).await;
    assert!(reason.contains("no system registered"), "{reason}");

    let granted = sim
        .token_requests()
        .iter()
        .filter(|t| t.refusal.is_none())
        .count();
    assert_eq!(granted, 1);
    assert_eq!(sim.rejections().len(), 9);
    assert!(sim
        .rejections()
        .iter()
        .all(|r| r.endpoint == "token" && r.status == 401));
}

#[tokio::test]
async fn a_sent_message_goes_through_its_statuses_with_evidences() {
    let sim = start(|c| c).await;
    let token = access_token(&sim).await;
    let pdf = b"%PDF-1.4 decyzja".to_vec();
    let (status, body) = send(
        &sim,
        &token,
        &message(&resident_ade(), vec![attachment(&pdf)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer = &body["messages"][0];
    assert_eq!(answer["addresseeAde"], resident_ade());
    assert_eq!(answer["status"], "SUCCESS");
    let id = answer["messageId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());

    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].attachments[0].data, pdf);
    assert_eq!(sent[0].attachments[0].filename, "decyzja.pdf");

    let msg_url = format!("{}/{}/messages/{id}", sim.api_url(), gmina_ade());
    let (status, got) = get_json(&token, &msg_url).await;
    assert_eq!(status, 200, "{got}");
    let m = &got.as_array().expect("GET message answers an array")[0];
    assert_eq!(m["messageControlData"]["status"], "Przekazana do wysyłki");
    assert_eq!(m["messageControlData"]["messageType"], "Message");
    assert_eq!(m["messageMetadata"]["messageId"], id.as_str());
    assert!(m["messageMetadata"]["submissionDate"].is_string());
    assert!(m["messageMetadata"]["receiptDate"].is_null());

    sim.dispatch(&id).unwrap();
    let (_, got) = get_json(&token, &format!("{msg_url}?format=metadata")).await;
    assert_eq!(got[0]["messageControlData"]["status"], "Wysłana");

    sim.receive(&id).unwrap();
    let (_, got) = get_json(&token, &msg_url).await;
    assert_eq!(got[0]["messageControlData"]["status"], "Doręczona");
    assert_eq!(got[0]["messageControlData"]["opened"], true);
    assert!(got[0]["messageMetadata"]["receiptDate"].is_string());
    assert!(
        sim.receive(&id).is_err(),
        "a final message cannot be received twice"
    );

    let (status, ev) = get_json(&token, &format!("{msg_url}/evidences")).await;
    assert_eq!(status, 200, "{ev}");
    let list = ev["evidences"].as_array().unwrap();
    let kinds: Vec<&str> = list.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["A.1", "D.1"]);
    assert!(list
        .iter()
        .all(|e| e["messageId"] == id.as_str() && e["downloaded"] == false));

    let d1 = list[1]["externalData"].as_str().unwrap();
    let r = reqwest::Client::new()
        .get(d1)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/xml");
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<ev:Type>D.1</ev:Type>"), "{xml}");
    assert!(
        xml.contains(&format!("<ev:MessageId>{id}</ev:MessageId>")),
        "{xml}"
    );
    assert!(
        xml.contains(&hex::encode(sha3::Sha3_512::digest(&pdf))),
        "{xml}"
    );
    assert!(xml.contains(&resident_ade()), "{xml}");

    let (_, ev) = get_json(&token, &format!("{msg_url}/evidences?downloaded=true")).await;
    let downloaded: Vec<&str> = ev["evidences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(downloaded, ["D.1"]);

    // Another box's view does not show the message.
    let other = format!("{}/{}/messages/{id}", sim.api_url(), resident_ade());
    let (status, _) = get_json(&token, &other).await;
    assert_eq!(status, 401, "the token is for the gmina's ADE only");
}

#[tokio::test]
async fn deemed_and_failed_deliveries_have_their_evidences() {
    let sim = start(|c| c).await;
    let token = access_token(&sim).await;
    let mut body = message(&resident_ade(), vec![]);
    body["messageMetadata"]["to"] =
        json!([{"eDeliveryAddress": resident_ade()}, {"eDeliveryAddress": resident_ade()}]);
    let (status, answer) = send(&sim, &token, &body).await;
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<String> = answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["messageId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    sim.deem_delivered(&ids[0]).unwrap();
    sim.fail_delivery(&ids[1], "Adresat zmarł").unwrap();
    assert_eq!(
        sim.message(&ids[0]).unwrap().status,
        MessageStatus::DeemedDelivered
    );

    let url = |id: &str| format!("{}/{}/messages/{id}", sim.api_url(), gmina_ade());
    let (_, m0) = get_json(&token, &url(&ids[0])).await;
    assert_eq!(m0[0]["messageControlData"]["status"], "Uznana za doręczoną");
    let (_, m1) = get_json(&token, &url(&ids[1])).await;
    assert_eq!(m1[0]["messageControlData"]["status"], "Niedoręczona");
    assert!(m1[0]["messageMetadata"]["receiptDate"].is_null());
    let (_, ev) = get_json(&token, &format!("{}/evidences?type=D.3", url(&ids[1]))).await;
    assert_eq!(ev["evidences"][0]["reasonDetails"], "Adresat zmarł");
    let (_, ev) = get_json(&token, &format!("{}/evidences", url(&ids[0]))).await;
    assert_eq!(ev["evidences"][1]["type"], "D.2");
}

#[tokio::test]
async fn auto_delivery_receives_after_the_delay() {
    let sim = start(|c| EdoreczeniaSimConfig {
        auto_deliver_after: Some(Duration::from_millis(50)),
        ..c
    })
    .await;
    let token = access_token(&sim).await;
    let (status, answer) = send(&sim, &token, &message(&resident_ade(), vec![])).await;
    assert_eq!(status, 200);
    let id = answer["messages"][0]["messageId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sim.message(&id).unwrap().status, MessageStatus::Submitted);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = sim.message(&id).unwrap();
    assert_eq!(m.status, MessageStatus::Delivered);
    assert_eq!(m.evidences.last().unwrap().kind, "D.1");
}

#[tokio::test]
async fn bad_addresses_and_attachments_are_400_with_reasons() {
    let sim = start(|c| c).await;
    let token = access_token(&sim).await;

    // Valid format, wrong check digits.
    let (status, body) = send(&sim, &token, &message("AE:PL-97075-47631-STVJH-18", vec![])).await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["error"], "invalid_address");
    assert!(
        body[0]["error_description"]
            .as_str()
            .unwrap()
            .contains("check digits"),
        "{body}"
    );

    // A valid address nobody has.
    let (status, body) = send(&sim, &token, &message(&ade_address(999), vec![])).await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["error"], "unknown_address");

    // A hash of other bytes; a hash in upper-case hex; a wrong size.
    let data = b"tresc".to_vec();
    let mut a = attachment(&data);
    a["file"]["fileMetadata"]["hash"] = json!(attachment_hash(b"inna tresc"));
    let (status, body) = send(&sim, &token, &message(&resident_ade(), vec![a])).await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["error"], "invalid_attachment");
    assert!(
        body[0]["error_description"]
            .as_str()
            .unwrap()
            .contains("SHA3-512"),
        "{body}"
    );
    let mut a = attachment(&data);
    let upper = hex::encode_upper(sha3::Sha3_512::digest(&data));
    a["file"]["fileMetadata"]["hash"] =
        json!(base64::engine::general_purpose::STANDARD.encode(upper));
    let (status, _) = send(&sim, &token, &message(&resident_ade(), vec![a])).await;
    assert_eq!(status, 400);
    let mut a = attachment(&data);
    a["file"]["fileMetadata"]["size"] = json!(data.len() + 1);
    let (status, body) = send(&sim, &token, &message(&resident_ade(), vec![a])).await;
    assert_eq!(status, 400);
    assert!(
        body[0]["error_description"]
            .as_str()
            .unwrap()
            .contains("size"),
        "{body}"
    );

    let mut empty_subject = message(&resident_ade(), vec![]);
    empty_subject["messageMetadata"]["subject"] = json!("  ");
    let (status, _) = send(&sim, &token, &empty_subject).await;
    assert_eq!(status, 400);

    assert!(sim.sent().is_empty());
    assert_eq!(sim.rejections().len(), 6);
}

#[tokio::test]
async fn api_calls_need_a_live_token_for_the_same_ade() {
    let sim = start(|c| c).await;
    let body = message(&resident_ade(), vec![]);
    let (status, _) = send(&sim, "made-up", &body).await;
    assert_eq!(status, 401);
    let token = access_token(&sim).await;
    let (status, _) = send(&sim, &token, &body).await;
    assert_eq!(status, 200);
    sim.expire_tokens();
    let (status, answer) = send(&sim, &token, &body).await;
    assert_eq!(status, 401);
    assert!(answer[0]["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
    assert_eq!(sim.sent().len(), 1);
}

#[tokio::test]
async fn injected_faults_are_served_then_normal_service_resumes() {
    let sim = start(|c| c).await;
    let token = access_token(&sim).await;
    let body = message(&resident_ade(), vec![]);
    sim.fail_next(1, Failure::Http500);
    sim.fail_next(1, Failure::Http429);
    let (status, _) = send(&sim, &token, &body).await;
    assert_eq!(status, 500);
    assert!(
        sim.sent().is_empty(),
        "a 500 before processing sends nothing"
    );
    let (status, _) = send(&sim, &token, &body).await;
    assert_eq!(status, 429);
    let (status, _) = send(&sim, &token, &body).await;
    assert_eq!(status, 200);
    assert_eq!(sim.sent().len(), 1);

    sim.fail_next(1, Failure::Slow(Duration::from_millis(400)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let timed_out = client
        .post(format!("{}/{}/messages", sim.api_url(), gmina_ade()))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await;
    assert!(
        timed_out.is_err(),
        "the slow answer outlives the client's timeout"
    );
    assert_eq!(
        sim.sent().len(),
        2,
        "a slow answer is processed nonetheless"
    );

    sim.fail_next_token(1, Failure::Http500);
    let (status, _) = token_call(
        &sim,
        &gmina_ade(),
        &jws(&rs256(), &claims(&sim), &pki().gmina.key),
    )
    .await;
    assert_eq!(status, 500);
}
