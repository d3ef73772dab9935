//! End to end, production mode, with every external system simulated on loopback:
//!
//! - a resident files a letter through the query service; it is signed in the simulated PZ
//!   signing service (tpSigning5), submitted to the municipality's simulated ePUAP box with
//!   WS-Skrytka `nadaj` (the UPP kept), pulled back like any other letter, and shown in the
//!   resident's view as a letter with a valid podpis zaufany;
//! - two `decision.deliver` commands: one is delivered through ePUAP (WS-Doręczyciel `dorecz`,
//!   the UPD coming back through the office's box), the other through e-Doręczenia (the UA
//!   API, polled until its evidence); both end with their evidence in the recipients' views.
//!
//! `cargo test -p gsko --test e2e_documents`

mod common;

use common::*;
use gsko_bus::{Bus, Outgoing, Topology};
use gsko_model::{
    DecisionDelivery, DecisionRecipient, DeliveryPreference, Event, EventData, StoredFile, Teryt,
};
use gsko_sim::edoreczenia::{ade_address, EdoreczeniaSim, EdoreczeniaSimConfig};
use gsko_sim::epuap::{BoxAddress, EpuapSim, EpuapSimConfig};
use gsko_sim::pz::{PzPerson, PzSim, PzSimConfig};
use gsko_sim::xades::{coi_certificate, sign_enveloped, SignerClaim, SimCertificate};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::time::Duration;

const T: (&str, &str, &str) = ("0201011", "Bolesławiec", "umboleslawiec");
/// Jan files a letter and gets a decision through ePUAP.
const JAN: (&str, &str, &str) = ("78031501236", "Jan", "Kowalski");
/// Anna has an e-Doręczenia address: her decision goes there.
const ANNA: &str = "81072204569";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The office's system certificate, written as PEM files into `dir`.
fn office(dir: &std::path::Path) -> SimCertificate {
    let c = SimCertificate::generate("umboleslawiec system").expect("openssl");
    std::fs::write(dir.join("office.crt"), &c.cert_pem).unwrap();
    std::fs::write(dir.join("office.key"), &c.key_pem).unwrap();
    std::fs::write(dir.join("coi.pem"), &coi_certificate().cert_pem).unwrap();
    c
}

fn append_tenant(env: &Env, text: &str) {
    let file = env.path().join("tenants").join(format!("{}.toml", T.0));
    let mut t = std::fs::read_to_string(&file).unwrap();
    t.push_str(text);
    std::fs::write(&file, t).unwrap();
}

fn epuap_section(epuap: &gsko_sim::epuap::EpuapSimHandle, certs: &std::path::Path) -> String {
    format!(
        "\n[epuap]\npull_url = \"{pull}\"\npodmiot = \"{podmiot}\"\nboxes = [\"skrytka\"]\n\
         certificate = {{ file = \"{dir}/office.crt\" }}\nprivate_key = {{ file = \"{dir}/office.key\" }}\n\
         pz_certificates = {{ file = \"{dir}/coi.pem\" }}\nschedule = \"*/1 * * * * *\"\n\
         skrytka_url = \"{skrytka}\"\ndoreczyciel_url = \"{doreczyciel}\"\n",
        pull = epuap.pull_url(),
        podmiot = T.2,
        dir = certs.display(),
        skrytka = epuap.skrytka_url(),
        doreczyciel = epuap.doreczyciel_url(),
    )
}

#[test]
fn a_letter_filed_through_gsko_is_signed_submitted_pulled_back_and_shown() {
    let rt = runtime();
    let env = Env::new();
    env.write_config(&[(T.0, T.1)], &[("portal", PORTAL_KEY, &["*"], true)]);
    let certs = env.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let office = office(&certs);
    let epuap = rt
        .block_on(EpuapSim::start(
            EpuapSimConfig::new()
                .with_box(T.2, "skrytka")
                .with_certificate(T.2, office.cert_der.clone()),
        ))
        .unwrap();
    let jan = PzPerson {
        first_name: JAN.1.into(),
        surname: JAN.2.into(),
        pesel: JAN.0.into(),
        date_of_birth: "1978-03-15".into(),
    };
    let pz = rt
        .block_on(PzSim::start(PzSimConfig {
            certificates: vec![office.cert_der.clone()],
            people: vec![jan.clone()],
            ..PzSimConfig::default()
        }))
        .unwrap();
    append_tenant(
        &env,
        &format!(
            "{}tp_signing_url = \"{}\"\nallowed_return_urls = [\"https://portal.example.pl/\"]\n",
            epuap_section(&epuap, &certs),
            pz.tp_signing_url()
        ),
    );
    let mut d = env.spawn();

    let attachment = b"%PDF-1.4 skan wniosku".to_vec();
    let letter = json!({
        "title": "Wniosek o rozłożenie zaległości na raty",
        "body": "Wnoszę o rozłożenie zaległości na raty.\n\nZ poważaniem\nJan Kowalski",
        "sender": {"first_name": JAN.1, "surname": JAN.2},
        "attachments": [{
            "name": "skan.pdf",
            "mime_type": "application/pdf",
            "content_base64": base64_encode(&attachment),
        }],
        "return_url": "https://portal.example.pl/pisma",
    });
    let (status, filed) = d.send(
        "POST",
        &format!("/v1/tenants/{}/resident/filings", T.0),
        Some(PORTAL_KEY),
        Some(JAN.0),
        &[("Idempotency-Key", "e2e-filing-0001")],
        Some(&letter),
    );
    assert_eq!(status, 201, "{filed}\n{}", env.logs());
    assert_eq!(filed["status"], "awaiting_signature");
    let id = filed["filing_id"].as_str().unwrap().to_owned();
    let sign_url = filed["sign_url"].as_str().unwrap().to_owned();

    // The resident signs on the (simulated) PZ page, which sends the browser back to GSKO.
    pz.sign_as(&sign_url, &jan)
        .expect("signed in the simulated PZ");
    let (status, _) = request(
        "GET",
        &format!("{}/filing/{}/{id}/signed", d.base, T.0),
        None,
        None,
        &[],
        None,
    )
    .unwrap();
    assert_eq!(status, 303, "{}", env.logs());
    let v = d.get_ok(
        &format!("/v1/tenants/{}/resident/filings/{id}", T.0),
        Some(PORTAL_KEY),
        Some(JAN.0),
        Duration::from_secs(10),
    );
    assert_eq!(v["status"], "submitted", "{v}");
    assert!(
        v["upp_id"].as_str().is_some_and(|u| !u.is_empty()),
        "the UPP is kept: {v}"
    );
    assert_eq!(epuap.sent().len(), 1, "submitted once with nadaj");

    // Pulled back from the box like any letter, and in Jan's view with a valid signature.
    let v = d.get_when(
        &format!("/v1/tenants/{}/resident/letters", T.0),
        Some(PORTAL_KEY),
        Some(JAN.0),
        Duration::from_secs(60),
        |v| v["letters"].as_array().is_some_and(|l| !l.is_empty()),
    );
    let l = &v["letters"][0]["letter"];
    assert_eq!(l["title"], "Wniosek o rozłożenie zaległości na raty", "{v}");
    assert_eq!(l["signature"]["status"], "valid", "{l}");
    assert_eq!(l["signature"]["form"], "podpis_zaufany");
    assert_eq!(l["signature"]["signer_pesel"], JAN.0);
    assert_eq!(
        l["attachments"][0]["sha256"],
        hex::encode(Sha256::digest(&attachment)).as_str()
    );
    // Confirmed to ePUAP after the events are published, so possibly a moment after the view
    // shows the letter.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !epuap.pending(&BoxAddress::new(T.2, "skrytka")).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the letter was never confirmed: {}",
            env.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.stop();
}

#[test]
fn decisions_are_delivered_through_epuap_and_e_doreczenia_and_end_with_evidence() {
    let rt = runtime();
    let env = Env::new();
    env.write_config(&[(T.0, T.1)], &[("portal", PORTAL_KEY, &["*"], true)]);
    let certs = env.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let office = office(&certs);
    let jan_box = BoxAddress::new("jkowalski", "domyslna");
    let mut epuap_config = EpuapSimConfig::new()
        .with_box(T.2, "skrytka")
        .with_box(&jan_box.podmiot, &jan_box.nazwa)
        .with_certificate(T.2, office.cert_der.clone());
    // Jan opens his box (and signs the UPD) a moment after the decision arrives.
    epuap_config.auto_collect_after = Some(Duration::from_millis(500));
    let epuap = rt.block_on(EpuapSim::start(epuap_config)).unwrap();
    let (office_ade, anna_ade) = (ade_address(1), ade_address(2));
    let mut edor_config = EdoreczeniaSimConfig::new()
        .with_system(&office_ade, "GSKO", office.cert_der.clone())
        .with_mailbox(&anna_ade);
    edor_config.auto_deliver_after = Some(Duration::from_millis(500));
    let edor = rt.block_on(EdoreczeniaSim::start(edor_config)).unwrap();
    append_tenant(
        &env,
        &format!(
            "{}\n[edoreczenia]\ntoken_url = \"{}\"\napi_url = \"{}\"\nade = \"{office_ade}\"\nsystem_name = \"GSKO\"\n\
             certificate = {{ file = \"{dir}/office.crt\" }}\nprivate_key = {{ file = \"{dir}/office.key\" }}\npoll_secs = 1\n",
            epuap_section(&epuap, &certs),
            edor.token_url(),
            edor.api_url(),
            dir = certs.display(),
        ),
    );
    let mut d = env.spawn();

    // The signed decisions are in the tenant's content store (where EZD's connector puts them).
    let decision = |n: u32| {
        let xml = format!("<Decyzja xmlns=\"urn:example:decyzja\"><Numer>FN.3120.{n}.2026</Numer><Tresc>Rozkłada się zaległość na raty.</Tresc></Decyzja>");
        let signed = sign_enveloped(
            xml.as_bytes(),
            coi_certificate(),
            &SignerClaim::None,
            "2026-11-27T10:00:00+01:00",
        )
        .unwrap();
        let sha = hex::encode(Sha256::digest(&signed));
        let path = env.path().join("documents").join(T.0).join(&sha[..2]);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(&sha), &signed).unwrap();
        StoredFile {
            name: format!("decyzja-{n}.xml"),
            mime_type: "application/xml".into(),
            size_bytes: signed.len() as u64,
            sha256: sha,
            description: None,
        }
    };
    let tenant = Teryt::from_str(T.0).unwrap();
    let command = |id: &str, recipient: DecisionRecipient, document: StoredFile| {
        Event::new(
            "/gsko/e2e",
            tenant.clone(),
            1,
            EventData::DecisionDeliver(DecisionDelivery {
                decision_id: id.into(),
                case_ref: "FN.3120.1.2026".parse().unwrap(),
                title: "Decyzja w sprawie rozłożenia zaległości na raty".into(),
                recipient,
                document,
                channel: DeliveryPreference::Auto,
                deliver_by: None,
                in_reply_to: None,
            }),
        )
    };
    let to_jan = command(
        "ezd-1",
        DecisionRecipient {
            name: "Jan Kowalski".into(),
            pesel: Some(JAN.0.parse().unwrap()),
            nip: None,
            epuap_address: Some(jan_box.to_string()),
            ade_address: None,
        },
        decision(1),
    );
    let to_anna = command(
        "ezd-2",
        DecisionRecipient {
            name: "Anna Nowak".into(),
            pesel: Some(ANNA.parse().unwrap()),
            nip: None,
            epuap_address: None,
            ade_address: Some(anna_ade.parse().unwrap()),
        },
        decision(2),
    );
    rt.block_on(async {
        let bus = gsko_bus::amqp::AmqpBus::connect(
            &env.amqp_url,
            // The daemon's configuration: retry_delays_secs = [1, 2].
            Topology {
                retry_ladder: vec![Duration::from_secs(1), Duration::from_secs(2)],
                ..Topology::default()
            },
        )
        .await
        .unwrap();
        // Sent twice: delivered once all the same.
        for e in [&to_jan, &to_anna, &to_jan] {
            bus.publish(&[Outgoing::event(e)]).await.unwrap();
        }
    });

    for (pesel, channel, evidence) in [
        (JAN.0, "epuap", "upd"),
        (ANNA, "e_doreczenia", "ade_evidence"),
    ] {
        let v = d.get_when(
            &format!("/v1/tenants/{}/resident/decisions", T.0),
            Some(PORTAL_KEY),
            Some(pesel),
            Duration::from_secs(90),
            |v| v["decisions"].as_array().is_some_and(|l| !l.is_empty()),
        );
        let dd = &v["decisions"][0];
        assert_eq!(dd["outcome"], "delivered", "{v}\n{}", env.logs());
        assert_eq!(dd["channel"], channel);
        assert_eq!(dd["evidence"]["kind"], evidence);
        assert_eq!(dd["case_ref"], "FN.3120.1.2026");
        // The evidence is kept in the tenant's content store.
        let sha = dd["evidence"]["sha256"].as_str().unwrap();
        let kept = env
            .path()
            .join("documents")
            .join(T.0)
            .join(&sha[..2])
            .join(sha);
        let bytes = std::fs::read(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display()));
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);
    }
    assert_eq!(epuap.shipments().len(), 1, "dorecz called once for ezd-1");
    assert_eq!(edor.sent().len(), 1, "one e-Doręczenia message for ezd-2");
    d.stop();
}

fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
