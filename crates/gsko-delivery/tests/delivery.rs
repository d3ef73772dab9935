//! The delivery service against both simulators (ePUAP with WS-Doręczyciel and WS-Pull,
//! e-Doręczenia's UA API) and an SQLite store: a decision reaches its recipient through the
//! channel chosen for it, its delivery is followed to the end, and `decision.delivered` waits in
//! the outbox with the evidence stored. Commands seen twice and sends interrupted by a crash
//! never make a second shipment.
//!
//! `cargo test -p gsko-delivery --test delivery` (needs `openssl` and `xmlsec1`).

use gsko_bus::{Bus, Exchange, MemoryBus, Outgoing, QueueSpec, Topology};
use gsko_delivery::{choose_channel, DeliveryService, Preferred, TenantDelivery};
use gsko_edoreczenia::{Config, RetryPolicy as UaRetry, UaClient};
use gsko_epuap::client::{PullClient, RetryPolicy};
use gsko_epuap::pull::BoxAddress;
use gsko_epuap::receiver::{FileStore, ReceiptSink, Receiver};
use gsko_epuap::send::DoreczycielClient;
use gsko_epuap::wssec::SigningIdentity;
use gsko_model::*;
use gsko_sim::edoreczenia::{
    ade_address, EdoreczeniaSim, EdoreczeniaSimConfig, EdoreczeniaSimHandle,
};
use gsko_sim::epuap::{EpuapSim, EpuapSimConfig, EpuapSimHandle, PullFault, PullOperation};
use gsko_sim::xades::{coi_certificate, sign_enveloped, SignerClaim, SimCertificate};
use gsko_store::{DeliveryState, DeliveryStore, PaymentStore, SqliteStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const OFFICE: &str = "umboleslawiec";
const OFFICE_BOX: &str = "/umboleslawiec/skrytka";
const RESIDENT_BOX: &str = "/jkowalski/domyslna";
const SYSTEM: &str = "GSKO";

const DECISION: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Decyzja><Tresc>Ustala się wymiar podatku od nieruchomości na 2026 r.</Tresc></Decyzja>"#;

fn tenant() -> Teryt {
    Teryt::parse("0201011").expect("valid TERYT")
}

fn office_ade() -> AdeAddress {
    AdeAddress::parse(&ade_address(1)).expect("the simulator makes valid addresses")
}

fn resident_ade() -> AdeAddress {
    AdeAddress::parse(&ade_address(101)).expect("the simulator makes valid addresses")
}

fn pesel() -> Pesel {
    Pesel::parse("44051401359").expect("valid PESEL")
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
    }
}

/// The office's e-Doręczenia system certificate (an X.509 v3 one, which TLS client
/// authentication needs; the ePUAP simulator's certificates are v1).
struct UaIdentity {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
}

fn ua_identity() -> UaIdentity {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=UM Boleslawiec GSKO"])
        .output()
        .expect("openssl makes the test certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let der = std::process::Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl converts the certificate");
    assert!(der.status.success());
    UaIdentity {
        cert_pem: std::fs::read_to_string(cert).expect("cert"),
        key_pem: std::fs::read_to_string(key).expect("key"),
        cert_der: der.stdout,
    }
}

struct World {
    cert: UaIdentity,
    epuap: EpuapSimHandle,
    edor: EdoreczeniaSimHandle,
    identity: Arc<SigningIdentity>,
    store: Arc<SqliteStore>,
    _files_dir: tempfile::TempDir,
    files: FileStore,
    service: Arc<DeliveryService>,
    /// The signed decision, stored in `files`.
    document: StoredFile,
}

/// Both simulators, one tenant with both channels, an empty store.
async fn world() -> World {
    world_with(Preferred::Auto).await
}

async fn world_with(preferred: Preferred) -> World {
    let cert = SimCertificate::generate("UM Boleslawiec system").expect("openssl");
    let identity = Arc::new(SigningIdentity::from_pem(&cert.cert_pem, &cert.key_pem).unwrap());
    let ua_cert = ua_identity();
    let epuap = EpuapSim::start(
        EpuapSimConfig::new()
            .with_box(OFFICE, "skrytka")
            .with_box("jkowalski", "domyslna")
            .with_certificate(OFFICE, cert.cert_der.clone()),
    )
    .await
    .expect("ePUAP simulator starts");
    let edor = EdoreczeniaSim::start(
        EdoreczeniaSimConfig::new()
            .with_system(office_ade().as_str(), SYSTEM, ua_cert.cert_der.clone())
            .with_mailbox(resident_ade().as_str()),
    )
    .await
    .expect("e-Doręczenia simulator starts");
    let ua = ua_client(&edor, &ua_cert);
    let doreczyciel =
        DoreczycielClient::new(epuap.doreczyciel_url(), identity.clone(), OFFICE, quick()).unwrap();
    let store = Arc::new(SqliteStore::open(":memory:").await.expect("SQLite"));
    let files_dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(files_dir.path());
    let signed = sign_enveloped(
        DECISION.as_bytes(),
        coi_certificate(),
        &SignerClaim::None,
        "2026-11-28T10:00:00+01:00",
    )
    .expect("xmlsec1 signs the decision");
    let document = StoredFile {
        name: "decyzja.xml".into(),
        mime_type: "text/xml".into(),
        size_bytes: signed.len() as u64,
        sha256: files.put(&signed).unwrap(),
        description: None,
    };
    let mut tenants = BTreeMap::new();
    tenants.insert(
        tenant(),
        TenantDelivery {
            epuap: Some((doreczyciel, OFFICE_BOX.into())),
            edoreczenia: Some(ua),
            preferred,
        },
    );
    let service = Arc::new(
        DeliveryService::new(store.clone(), files.clone(), tenants)
            .with_sending_grace(Duration::ZERO)
            .with_poll_interval(Duration::from_millis(100)),
    );
    World {
        cert: ua_cert,
        epuap,
        edor,
        identity,
        store,
        _files_dir: files_dir,
        files,
        service,
        document,
    }
}

fn ua_client(edor: &EdoreczeniaSimHandle, cert: &UaIdentity) -> UaClient {
    UaClient::new(Config::new(
        edor.token_url(),
        edor.api_url(),
        office_ade(),
        SYSTEM,
        &cert.cert_pem,
        &cert.key_pem,
    ))
    .expect("UA client")
    .with_retry(UaRetry {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    })
}

impl World {
    fn command(&self, id: &str, box_: Option<&str>, ade: Option<AdeAddress>) -> DecisionDelivery {
        DecisionDelivery {
            decision_id: id.into(),
            case_ref: "FN.3120.7.2026".parse().unwrap(),
            title: "Decyzja w sprawie wymiaru podatku od nieruchomości na 2026 r.".into(),
            recipient: DecisionRecipient {
                name: "Jan Kowalski".into(),
                pesel: Some(pesel()),
                nip: None,
                epuap_address: box_.map(str::to_owned),
                ade_address: ade,
            },
            document: self.document.clone(),
            channel: DeliveryPreference::Auto,
            deliver_by: None,
            in_reply_to: Some("epuap-77".into()),
        }
    }

    /// The office's WS-Pull receiver, handing receipts to the service.
    fn receiver(&self) -> Receiver {
        Receiver {
            tenant: tenant(),
            client: PullClient::new(
                self.epuap.pull_url(),
                self.identity.clone(),
                BoxAddress::new(OFFICE, "skrytka"),
                quick(),
            )
            .unwrap(),
            files: self.files.clone(),
            max_attachment_bytes: 10 << 20,
            signatures: Default::default(),
            receipts: Some(self.service.clone() as Arc<dyn ReceiptSink>),
        }
    }

    async fn state(&self, id: &str) -> DeliveryState {
        self.store
            .by_decision(&tenant(), id)
            .await
            .unwrap()
            .expect("the delivery is recorded")
            .state
    }

    /// The `decision.delivered` events waiting in the outbox.
    async fn outbox(&self) -> Vec<DecisionDelivered> {
        self.store
            .outbox_pending(100)
            .await
            .unwrap()
            .into_iter()
            .map(|m| match m.event.data {
                EventData::DecisionDelivered(d) => d,
                other => panic!("unexpected outbox message {other:?}"),
            })
            .collect()
    }
}

async fn bus() -> MemoryBus {
    let mut topology = Topology::default();
    topology.queues.push(QueueSpec {
        name: "delivered".into(),
        exchange: Exchange::Events,
        bindings: vec!["pl.gsko.decision.delivered.#".into()],
    });
    MemoryBus::open(None, topology).await.unwrap()
}

#[tokio::test]
async fn an_epuap_delivery_ends_with_the_upd_pulled_from_the_office_box() {
    let w = world().await;
    let cmd = w.command("DEC-1", Some(RESIDENT_BOX), None);
    w.service.handle(&tenant(), &cmd).await.unwrap();

    let shipments = w.epuap.shipments();
    assert_eq!(shipments.len(), 1);
    let order = shipments[0].zlecenie_id.clone();
    assert_eq!(shipments[0].document_id, "DEC-1");
    assert_eq!(shipments[0].recipient.adres(), RESIDENT_BOX);
    assert_eq!(
        shipments[0].content,
        w.files.get(&w.document.sha256).unwrap()
    );
    assert_eq!(w.state("DEC-1").await, DeliveryState::Sent);
    assert!(w.outbox().await.is_empty(), "not delivered yet");

    // The resident collects; the UPD lands in the office's box and is pulled.
    let upd = w.epuap.collect(&order).unwrap();
    let report = w.receiver().run_once(&bus().await).await.unwrap();
    assert_eq!((report.receipts, report.received), (1, 0));

    assert_eq!(w.state("DEC-1").await, DeliveryState::Delivered);
    let events = w.outbox().await;
    assert_eq!(events.len(), 1);
    let d = &events[0];
    assert_eq!(d.outcome, DeliveryOutcome::Delivered);
    assert_eq!(d.channel, DeliveryChannel::Epuap);
    assert_eq!(d.shipment_id.as_deref(), Some(order.as_str()));
    assert_eq!(d.recipient_pesel, Some(pesel()));
    assert_eq!(
        d.case_ref.as_ref().map(|c| c.as_str()),
        Some("FN.3120.7.2026")
    );
    assert_eq!(d.in_reply_to.as_deref(), Some("epuap-77"));
    let evidence = d.evidence.as_ref().expect("a UPD as evidence");
    assert_eq!(evidence.kind, EvidenceKind::Upd);
    assert_eq!(evidence.id, upd.upd_id);
    assert_eq!(w.files.get(&evidence.sha256).unwrap(), upd.xml);
    // The command again, after the end: nothing is sent, nothing announced twice.
    w.service.handle(&tenant(), &cmd).await.unwrap();
    assert_eq!(w.epuap.shipments().len(), 1);
    assert_eq!(w.outbox().await.len(), 1);
}

#[tokio::test]
async fn an_uncollected_epuap_delivery_is_deemed_delivered() {
    let w = world().await;
    w.service
        .handle(&tenant(), &w.command("DEC-2", Some(RESIDENT_BOX), None))
        .await
        .unwrap();
    let order = w.epuap.shipments()[0].zlecenie_id.clone();
    w.epuap.deem_delivered(&order).unwrap();
    let report = w.receiver().run_once(&bus().await).await.unwrap();
    assert_eq!(report.receipts, 1);
    assert_eq!(w.state("DEC-2").await, DeliveryState::DeemedDelivered);
    let events = w.outbox().await;
    assert_eq!(events[0].outcome, DeliveryOutcome::DeemedDelivered);
    assert!(w
        .files
        .get(&events[0].evidence.as_ref().unwrap().sha256)
        .is_ok());
}

#[tokio::test]
async fn a_upd_that_is_not_ours_is_left_to_the_letter_flow() {
    let w = world().await;
    // Another system of the office delivered something: its UPD names no delivery of ours.
    let d = gsko_epuap::send::Dorecz {
        recipient_box: RESIDENT_BOX.into(),
        reply_box: OFFICE_BOX.into(),
        file_name: "pismo.xml".into(),
        mime_type: "text/xml".into(),
        content: w.files.get(&w.document.sha256).unwrap(),
        deliver_by: None,
        document_id: "EZD-555".into(),
        case_id: "X.1.2026".into(),
        dry_run: false,
    };
    let client = DoreczycielClient::new(
        w.epuap.doreczyciel_url(),
        w.identity.clone(),
        OFFICE,
        quick(),
    )
    .unwrap();
    let order = client.dorecz(&d).await.unwrap().order_id.unwrap();
    w.epuap.collect(&order).unwrap();
    let report = w.receiver().run_once(&bus().await).await.unwrap();
    assert_eq!((report.receipts, report.received), (0, 1));
    assert!(w.outbox().await.is_empty());
}

#[tokio::test]
async fn an_edoreczenia_delivery_is_polled_to_its_end_with_the_evidence_kept() {
    let w = world().await;
    let cmd = w.command("DEC-3", Some(RESIDENT_BOX), Some(resident_ade()));
    w.service.handle(&tenant(), &cmd).await.unwrap();

    // The ADE address wins over the ePUAP box.
    assert!(w.epuap.shipments().is_empty());
    let sent = w.edor.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient_ade, resident_ade().as_str());
    assert_eq!(
        sent[0].attachments[0].data,
        w.files.get(&w.document.sha256).unwrap()
    );
    assert_eq!(
        sent[0].request["messageMetadata"]["additionalData"]["gskoReference"],
        "DEC-3"
    );
    let message_id = sent[0].message_id.clone();

    // Not ended yet: polling changes nothing.
    assert_eq!(w.service.poll_once().await.unwrap(), 0);
    assert_eq!(w.state("DEC-3").await, DeliveryState::Sent);

    w.edor.receive(&message_id).unwrap();
    assert_eq!(w.service.poll_once().await.unwrap(), 1);
    assert_eq!(w.state("DEC-3").await, DeliveryState::Delivered);
    let events = w.outbox().await;
    assert_eq!(events.len(), 1);
    let d = &events[0];
    assert_eq!(d.outcome, DeliveryOutcome::Delivered);
    assert_eq!(d.channel, DeliveryChannel::EDoreczenia);
    assert_eq!(d.shipment_id.as_deref(), Some(message_id.as_str()));
    let evidence = d.evidence.as_ref().unwrap();
    assert_eq!(evidence.kind, EvidenceKind::AdeEvidence);
    assert_eq!(evidence.code.as_deref(), Some("D.1"));
    let stored = String::from_utf8(w.files.get(&evidence.sha256).unwrap()).unwrap();
    assert!(stored.contains(&evidence.id), "{stored}");
    let receipt = w.edor.message(&message_id).unwrap().receipt_date.unwrap();
    assert_eq!(
        d.at,
        chrono::DateTime::parse_from_rfc3339(&receipt).unwrap()
    );

    // Ended: no longer polled, nothing announced twice.
    assert_eq!(w.service.poll_once().await.unwrap(), 0);
    assert_eq!(w.outbox().await.len(), 1);
}

#[tokio::test]
async fn edoreczenia_deemed_and_failed_deliveries_end_with_their_evidence() {
    let w = world().await;
    for id in ["DEC-4", "DEC-5"] {
        w.service
            .handle(&tenant(), &w.command(id, None, Some(resident_ade())))
            .await
            .unwrap();
    }
    let sent = w.edor.sent();
    w.edor.deem_delivered(&sent[0].message_id).unwrap();
    w.edor
        .fail_delivery(&sent[1].message_id, "Skrzynka odbiorcy nieaktywna")
        .unwrap();
    assert_eq!(w.service.poll_once().await.unwrap(), 2);
    assert_eq!(w.state("DEC-4").await, DeliveryState::DeemedDelivered);
    assert_eq!(w.state("DEC-5").await, DeliveryState::Failed);
    let events = w.outbox().await;
    let deemed = events.iter().find(|e| e.decision_id == "DEC-4").unwrap();
    assert_eq!(deemed.outcome, DeliveryOutcome::DeemedDelivered);
    assert_eq!(
        deemed.evidence.as_ref().unwrap().code.as_deref(),
        Some("D.2")
    );
    let failed = events.iter().find(|e| e.decision_id == "DEC-5").unwrap();
    assert_eq!(failed.outcome, DeliveryOutcome::Failed);
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap()
            .contains("Skrzynka odbiorcy nieaktywna"),
        "{failed:?}"
    );
    assert_eq!(
        failed.evidence.as_ref().unwrap().code.as_deref(),
        Some("D.3")
    );
}

#[tokio::test]
async fn a_box_epuap_does_not_know_fails_the_delivery_with_the_reason() {
    let w = world().await;
    w.service
        .handle(&tenant(), &w.command("DEC-6", Some("/nikt/skrytka"), None))
        .await
        .unwrap();
    assert!(w.epuap.shipments().is_empty());
    assert_eq!(w.state("DEC-6").await, DeliveryState::Failed);
    let events = w.outbox().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, DeliveryOutcome::Failed);
    assert!(
        events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("ePUAP refused"),
        "{:?}",
        events[0].reason
    );
    assert_eq!(events[0].evidence, None);
}

#[tokio::test]
async fn a_recipient_no_channel_reaches_fails_with_the_reason() {
    let w = world().await;
    w.service
        .handle(&tenant(), &w.command("DEC-7", None, None))
        .await
        .unwrap();
    let events = w.outbox().await;
    assert_eq!(events[0].outcome, DeliveryOutcome::Failed);
    let reason = events[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("no ePUAP box") && reason.contains("no e-Doręczenia"),
        "{reason}"
    );
    assert!(w.epuap.shipments().is_empty() && w.edor.sent().is_empty());
}

#[tokio::test]
async fn the_same_command_twice_makes_one_shipment_on_each_channel() {
    let w = world().await;
    let by_epuap = w.command("DEC-8", Some(RESIDENT_BOX), None);
    let by_ade = w.command("DEC-9", None, Some(resident_ade()));
    for _ in 0..2 {
        w.service.handle(&tenant(), &by_epuap).await.unwrap();
        w.service.handle(&tenant(), &by_ade).await.unwrap();
    }
    assert_eq!(w.epuap.shipments().len(), 1);
    assert_eq!(w.edor.sent().len(), 1);
    for id in ["DEC-8", "DEC-9"] {
        let r = w.store.by_decision(&tenant(), id).await.unwrap().unwrap();
        assert_eq!((r.state, r.attempts), (DeliveryState::Sent, 1), "{id}");
    }
}

#[tokio::test]
async fn a_crash_between_dorecz_and_its_record_parks_the_delivery_and_never_sends_twice() {
    let w = world().await;
    let cmd = w.command("DEC-10", Some(RESIDENT_BOX), None);
    // ePUAP takes the shipment but answers late; the service "crashes" before the answer.
    w.epuap.fail_next(
        PullOperation::Dorecz,
        PullFault::Delay(Duration::from_secs(2)),
    );
    let crashed = tokio::time::timeout(
        Duration::from_millis(700),
        w.service.handle(&tenant(), &cmd),
    )
    .await;
    assert!(crashed.is_err(), "the handler was interrupted");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.epuap.shipments().len(), 1, "ePUAP did take it");
    assert_eq!(w.state("DEC-10").await, DeliveryState::Sending);

    // The command comes again (never acknowledged): parked, not sent again.
    w.service.handle(&tenant(), &cmd).await.unwrap();
    w.service.handle(&tenant(), &cmd).await.unwrap();
    assert_eq!(w.epuap.shipments().len(), 1);
    assert_eq!(w.state("DEC-10").await, DeliveryState::Uncertain);
    let parked = w.store.parked(&tenant()).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("interrupted"));

    // Its UPD still ends it: the resident did get the decision.
    let order = w.epuap.shipments()[0].zlecenie_id.clone();
    w.epuap.collect(&order).unwrap();
    assert_eq!(
        w.receiver().run_once(&bus().await).await.unwrap().receipts,
        1
    );
    assert_eq!(w.state("DEC-10").await, DeliveryState::Delivered);
    assert!(w.store.parked(&tenant()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_copy_arriving_while_a_send_is_in_progress_is_retried_later() {
    let w = world().await;
    // A service with the default grace: a `sending` record younger than it is someone else's.
    let mut tenants = BTreeMap::new();
    tenants.insert(
        tenant(),
        TenantDelivery {
            epuap: Some((
                DoreczycielClient::new(
                    w.epuap.doreczyciel_url(),
                    w.identity.clone(),
                    OFFICE,
                    quick(),
                )
                .unwrap(),
                OFFICE_BOX.into(),
            )),
            edoreczenia: None,
            preferred: Preferred::Auto,
        },
    );
    let patient = DeliveryService::new(w.store.clone(), w.files.clone(), tenants);
    let cmd = w.command("DEC-11", Some(RESIDENT_BOX), None);
    w.store
        .claim(&tenant(), &cmd, DeliveryChannel::Epuap)
        .await
        .unwrap();
    w.store.mark_sending(&tenant(), "DEC-11").await.unwrap();
    let e = patient.handle(&tenant(), &cmd).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(w.state("DEC-11").await, DeliveryState::Sending);
    assert!(w.epuap.shipments().is_empty());
}

#[tokio::test]
async fn an_interrupted_edoreczenia_send_the_mailbox_cannot_confirm_is_parked_not_resent() {
    let w = world().await;
    let cmd = w.command("DEC-12", None, Some(resident_ade()));
    // Get a token first so that the slow answer is the send's.
    w.service
        .handle(
            &tenant(),
            &w.command("DEC-warm", None, Some(resident_ade())),
        )
        .await
        .unwrap();
    w.edor.fail_next(
        1,
        gsko_sim::edoreczenia::Failure::Slow(Duration::from_secs(2)),
    );
    let crashed = tokio::time::timeout(
        Duration::from_millis(700),
        w.service.handle(&tenant(), &cmd),
    )
    .await;
    assert!(crashed.is_err());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.edor.sent().len(), 2);

    // The simulator serves no SENT listing: whether it went out cannot be told, so it waits
    // for an admin instead of being sent again.
    w.service.handle(&tenant(), &cmd).await.unwrap();
    assert_eq!(w.edor.sent().len(), 2);
    assert_eq!(w.state("DEC-12").await, DeliveryState::Uncertain);
}

#[tokio::test]
async fn auto_takes_the_ade_address_when_there_is_one_and_the_tenant_order_otherwise() {
    let w = world().await;
    let both = w.command("A", Some(RESIDENT_BOX), Some(resident_ade()));
    let box_only = w.command("B", Some(RESIDENT_BOX), None);
    let ade_only = w.command("C", None, Some(resident_ade()));
    let t = |preferred, epuap: bool, edor: bool| TenantDelivery {
        epuap: epuap.then(|| {
            (
                DoreczycielClient::new(
                    w.epuap.doreczyciel_url(),
                    w.identity.clone(),
                    OFFICE,
                    quick(),
                )
                .unwrap(),
                OFFICE_BOX.to_owned(),
            )
        }),
        edoreczenia: edor.then(|| ua_client(&w.edor, &w.cert)),
        preferred,
    };
    let full = t(Preferred::Auto, true, true);
    assert_eq!(
        choose_channel(&full, &both),
        Ok(DeliveryChannel::EDoreczenia)
    );
    assert_eq!(choose_channel(&full, &box_only), Ok(DeliveryChannel::Epuap));
    assert_eq!(
        choose_channel(&full, &ade_only),
        Ok(DeliveryChannel::EDoreczenia)
    );
    let epuap_first = t(Preferred::Epuap, true, true);
    assert_eq!(
        choose_channel(&epuap_first, &both),
        Ok(DeliveryChannel::Epuap)
    );
    assert_eq!(
        choose_channel(&epuap_first, &ade_only),
        Ok(DeliveryChannel::EDoreczenia)
    );
    // A tenant without e-Doręczenia reaches the ADE holder through ePUAP when it can.
    let epuap_only = t(Preferred::Auto, true, false);
    assert_eq!(
        choose_channel(&epuap_only, &both),
        Ok(DeliveryChannel::Epuap)
    );
    let none = choose_channel(&epuap_only, &ade_only).unwrap_err();
    assert!(
        none.reason.contains("no e-Doręczenia mailbox"),
        "{}",
        none.reason
    );
    // A command naming its channel gets that one or none.
    let mut named = box_only.clone();
    named.channel = DeliveryPreference::EDoreczenia;
    assert_eq!(
        choose_channel(&full, &named).unwrap_err().channel,
        DeliveryChannel::EDoreczenia
    );
}

#[tokio::test]
async fn the_running_service_takes_commands_from_the_bus_and_publishes_the_outcome() {
    let w = world().await;
    let bus: Arc<dyn Bus> = Arc::new(bus().await);
    let cmd = w.command("DEC-13", Some("/nikt/skrytka"), None);
    let ok = w.command("DEC-14", None, Some(resident_ade()));
    let command = |c: &DecisionDelivery| {
        Outgoing::event(&Event::new(
            "/gsko/test",
            tenant(),
            1,
            EventData::DecisionDeliver(c.clone()),
        ))
    };
    bus.publish(&[command(&cmd), command(&ok), command(&ok)])
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(w.service.clone().run(bus.clone(), rx));

    // The refused one ends at once; the other when the recipient opens it.
    let mut sub = bus.subscribe("delivered", 10).await.unwrap();
    let first = sub
        .next_batch(10, Duration::from_secs(10), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let ev = Event::from_json(&first[0].body).unwrap();
    assert!(
        matches!(&ev.data, EventData::DecisionDelivered(d) if d.decision_id == "DEC-13" && d.outcome == DeliveryOutcome::Failed)
    );
    sub.ack(first).await.unwrap();

    let sent = w.edor.sent();
    assert_eq!(sent.len(), 1, "the duplicate command sent nothing");
    w.edor.receive(&sent[0].message_id).unwrap();
    let second = sub
        .next_batch(10, Duration::from_secs(10), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    let ev = Event::from_json(&second[0].body).unwrap();
    assert!(
        matches!(&ev.data, EventData::DecisionDelivered(d) if d.decision_id == "DEC-14" && d.outcome == DeliveryOutcome::Delivered)
    );
    sub.ack(second).await.unwrap();

    stop.send(true).unwrap();
    let stats = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the service stops")
        .unwrap()
        .unwrap();
    assert_eq!(stats.handled, 3);
    // Published and marked so: nothing left for the relay.
    assert!(w.store.outbox_pending(10).await.unwrap().is_empty());
}
