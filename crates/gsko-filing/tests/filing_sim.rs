//! Filing a letter end to end against the simulated PZ signing service and ePUAP, with the
//! embedded store: filed → signed at PZ → submitted to the office's box with its UPP → pulled
//! back like any letter, signed by the filer, and shown in the resident's view. Also: a
//! cancellation, a signature by someone else, an unknown `nadaj` outcome, idempotency, and the
//! direct route to EZD through the outbox.
//!
//! `cargo test -p gsko-filing --test filing_sim`

use base64::Engine as _;
use gsko_bus::{Bus, Exchange, MemoryBus, QueueSpec, Topology};
use gsko_config::FilingMode;
use gsko_epuap::client::{PullClient, RetryPolicy};
use gsko_epuap::pull::BoxAddress;
use gsko_epuap::receiver::{FileStore, Receiver};
use gsko_epuap::send::SkrytkaClient;
use gsko_epuap::signing::TpSigningClient;
use gsko_epuap::upo;
use gsko_epuap::wssec::SigningIdentity;
use gsko_epuap::xades::XadesTrust;
use gsko_filing::{
    FilingAddress, FilingAttachment, FilingError, FilingRequest, FilingSender, FilingService,
    FilingTenant, LetterForm,
};
use gsko_model::{Event, EventData, LetterChannel, Pesel, SignatureForm, SignatureStatus, Teryt};
use gsko_sim::epuap::{EpuapSim, EpuapSimConfig, EpuapSimHandle, PullFault, PullOperation};
use gsko_sim::pz::{PzPerson, PzSim, PzSimConfig, PzSimHandle};
use gsko_sim::xades::SimCertificate;
use gsko_store::{FilingRoute, FilingStatus, FilingStore, PaymentStore, SqliteStore, Store};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const OFFICE: &str = "umboleslawiec";
const OFFICE_BOX: &str = "/umboleslawiec/skrytka";
const TENANT: &str = "0201011";
const PORTAL: &str = "https://portal.example.pl/";

fn anna() -> PzPerson {
    PzPerson {
        first_name: "Anna".into(),
        surname: "Nowak".into(),
        pesel: "81072204569".into(),
        date_of_birth: "1981-07-22".into(),
    }
}

fn jan() -> PzPerson {
    PzPerson {
        first_name: "Jan".into(),
        surname: "Kowalski".into(),
        pesel: "78031501236".into(),
        date_of_birth: "1978-03-15".into(),
    }
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        timeout: Duration::from_secs(5),
    }
}

fn teryt() -> Teryt {
    Teryt::from_str(TENANT).unwrap()
}

struct Setup {
    pz: PzSimHandle,
    epuap: EpuapSimHandle,
    identity: Arc<SigningIdentity>,
    store: SqliteStore,
    service: FilingService,
    files: FileStore,
    trust: XadesTrust,
    _dir: tempfile::TempDir,
}

async fn setup(mode: FilingMode) -> Setup {
    let cert = SimCertificate::generate("UM Boleslawiec system").expect("openssl");
    let identity = Arc::new(SigningIdentity::from_pem(&cert.cert_pem, &cert.key_pem).unwrap());
    let pz = PzSim::start(
        PzSimConfig::new()
            .with_certificate(cert.cert_der.clone())
            .with_person(anna())
            .with_person(jan()),
    )
    .await
    .unwrap();
    let epuap = EpuapSim::start(
        EpuapSimConfig::new()
            .with_box(OFFICE, "skrytka")
            .with_certificate(OFFICE, cert.cert_der.clone()),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("gsko.db")).await.unwrap();
    let files = FileStore::new(dir.path().join("documents"));
    let trust = XadesTrust {
        pz_signers: Some(vec![pz.signing_certificate_der()]),
        allow_sha1: false,
    };
    let tenant = FilingTenant {
        office_name: "Urząd Miasta Bolesławiec".into(),
        place: "Bolesławiec".into(),
        mode,
        filing_box: OFFICE_BOX.into(),
        skrytka: Some(
            SkrytkaClient::new(epuap.skrytka_url(), identity.clone(), OFFICE, retry()).unwrap(),
        ),
        signing: TpSigningClient::new(pz.tp_signing_url(), identity.clone(), retry()).unwrap(),
        files: files.clone(),
        trust: trust.clone(),
        allowed_return_urls: vec![PORTAL.into()],
    };
    let service = FilingService::new(
        Arc::new(store.clone()),
        BTreeMap::from([(teryt(), tenant)]),
        "https://gsko.example.pl/",
    );
    Setup {
        pz,
        epuap,
        identity,
        store,
        service,
        files,
        trust,
        _dir: dir,
    }
}

fn letter() -> LetterForm {
    LetterForm {
        title: "Wniosek o zwrot nadpłaty <podatku> & odsetek".into(),
        body: "Szanowni Państwo,\r\n\r\nproszę o zwrot nadpłaty za 2025 r.\nZ poważaniem".into(),
        kind: None,
        sender: FilingSender {
            first_name: "Anna".into(),
            surname: "Nowak".into(),
            address: Some(FilingAddress {
                street: Some("ul. Łąkowa".into()),
                building: Some("7".into()),
                flat: None,
                postal_code: Some("59-700".into()),
                town: Some("Bolesławiec".into()),
            }),
        },
        attachments: vec![FilingAttachment {
            name: "potwierdzenie.pdf".into(),
            mime_type: "application/pdf".into(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 wplata"),
            description: Some("Potwierdzenie wpłaty".into()),
        }],
        return_url: format!("{PORTAL}pisma?x=1"),
    }
}

fn request(key: &str, pesel: &str, letter: LetterForm) -> FilingRequest {
    FilingRequest {
        tenant: teryt(),
        client: "portal".into(),
        idempotency_key: key.into(),
        pesel: Pesel::from_str(pesel).unwrap(),
        letter,
    }
}

/// The simulator's id of the newest document handed over (acting as the resident).
fn last_pz_id(pz: &PzSimHandle) -> String {
    pz.documents().last().expect("a document at PZ").id.clone()
}

fn bus_topology() -> Topology {
    Topology {
        queues: vec![
            QueueSpec {
                name: "letters".into(),
                exchange: Exchange::Events,
                bindings: vec!["pl.gsko.letter.#".into()],
            },
            QueueSpec {
                name: "registrations".into(),
                exchange: Exchange::Commands,
                bindings: vec!["pl.gsko.letter.register.#".into()],
            },
        ],
        ..Topology::default()
    }
}

async fn taken(bus: &MemoryBus, queue: &str) -> Vec<Event> {
    let mut sub = bus.subscribe(queue, 100).await.unwrap();
    let batch = sub
        .next_batch(100, Duration::from_millis(300), Duration::from_millis(50))
        .await
        .unwrap();
    let events = batch
        .iter()
        .map(|d| Event::from_json(&d.body).unwrap())
        .collect();
    sub.ack(batch).await.unwrap();
    events
}

#[tokio::test]
async fn a_signed_letter_reaches_the_box_with_its_upp_and_comes_back_as_the_filers_letter() {
    let s = setup(FilingMode::Epuap).await;
    let filed = s
        .service
        .file(request("anna-0001", "81072204569", letter()))
        .await
        .unwrap();
    assert!(filed.created);
    assert_eq!(filed.status, FilingStatus::AwaitingSignature);
    assert_eq!(filed.route, FilingRoute::Epuap);
    let sign_url = filed.sign_url.clone().expect("a URL to sign at");
    assert!(sign_url.starts_with("http"), "{sign_url}");
    // PZ got the document GSKO built, with callbacks to this filing.
    let at_pz = s.pz.documents();
    assert_eq!(at_pz.len(), 1);
    assert_eq!(
        at_pz[0].success_url,
        format!(
            "https://gsko.example.pl/filing/{TENANT}/{}/signed",
            filed.filing_id
        )
    );
    let unsigned = gsko_epuap::document::parse(&at_pz[0].document, 1 << 20).unwrap();
    assert_eq!(unsigned.title.as_deref(), Some(letter().title.as_str()));
    assert_eq!(
        unsigned.body,
        "Szanowni Państwo,\n\nproszę o zwrot nadpłaty za 2025 r.\nZ poważaniem"
    );
    assert_eq!(unsigned.senders[0].pesel.as_deref(), Some("81072204569"));

    // Coming back before signing changes nothing.
    let r = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(r.status, FilingStatus::AwaitingSignature);
    assert!(s.epuap.sent().is_empty());

    s.pz.sign_as(&last_pz_id(&s.pz), &anna()).unwrap();
    let r = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(r.status, FilingStatus::Submitted, "{:?}", r.status_detail);
    assert_eq!(
        gsko_filing::FilingService::return_to(&r),
        format!(
            "{PORTAL}pisma?x=1&filing={}&status=submitted",
            filed.filing_id
        )
    );
    // The UPP is kept and names the document ePUAP took.
    let upp = upo::read(&s.files.get(r.upp_sha256.as_deref().unwrap()).unwrap()).unwrap();
    assert_eq!(upp.kind, upo::Kind::Upp);
    assert_eq!(Some(upp.id.clone()), r.upp_id);
    assert_eq!(upp.document_id, r.epuap_document_id);
    let sent = s.epuap.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target.adres(), OFFICE_BOX);
    assert_eq!(sent[0].adres_odpowiedzi.as_deref(), Some(OFFICE_BOX));
    // What went to ePUAP is the signed document GSKO kept.
    assert_eq!(
        sent[0].content,
        s.files.get(r.signed_sha256.as_deref().unwrap()).unwrap()
    );

    // The resident's view of the filing; another resident sees nothing.
    let anna_pesel = Pesel::from_str("81072204569").unwrap();
    let view = s
        .service
        .filing(&teryt(), &filed.filing_id, &anna_pesel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, FilingStatus::Submitted);
    assert_eq!(view.upp_id, r.upp_id);
    assert!(view.signed);
    assert_eq!(view.sign_url, None);
    assert_eq!(
        s.service
            .filing(
                &teryt(),
                &filed.filing_id,
                &Pesel::from_str("78031501236").unwrap()
            )
            .await
            .unwrap(),
        None
    );

    // The callback again: nothing is sent twice.
    let again = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(again.status, FilingStatus::Submitted);
    assert_eq!(s.epuap.sent().len(), 1);

    // Pulled from the box like any letter: signed validly by the filer.
    let docs = tempfile::tempdir().unwrap();
    let receiver = Receiver {
        tenant: teryt(),
        client: PullClient::new(
            s.epuap.pull_url(),
            s.identity.clone(),
            BoxAddress::new(OFFICE, "skrytka"),
            retry(),
        )
        .unwrap(),
        files: FileStore::new(docs.path()),
        max_attachment_bytes: 1 << 20,
        signatures: s.trust.clone(),
        receipts: None,
    };
    let bus = MemoryBus::open(None, bus_topology()).await.unwrap();
    let report = receiver.run_once(&bus).await.unwrap();
    assert_eq!(report.received, 1);
    let events = taken(&bus, "letters").await;
    assert_eq!(events.len(), 1);
    let EventData::LetterReceived(l) = &events[0].data else {
        panic!("{:?}", events[0].data)
    };
    assert_eq!(l.channel, LetterChannel::Epuap);
    assert_eq!(
        l.signature.status,
        SignatureStatus::Valid,
        "{:?}",
        l.signature
    );
    assert_eq!(l.signature.form, Some(SignatureForm::PodpisZaufany));
    assert_eq!(l.signature.signer_pesel.as_ref(), Some(&anna_pesel));
    assert_eq!(l.sender.pesel.as_ref(), Some(&anna_pesel));
    assert_eq!(l.title, letter().title);
    assert_eq!(l.attachments.len(), 1);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    assert!(
        l.signature.problems.is_empty(),
        "{:?}",
        l.signature.problems
    );

    // … and shown in the resident's view once projected.
    s.store.apply(&events).await.unwrap();
    let letters = s
        .store
        .resident_letters(&teryt(), &anna_pesel)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].letter.title, letter().title);
}

#[tokio::test]
async fn a_cancelled_letter_is_never_submitted() {
    let s = setup(FilingMode::Epuap).await;
    let filed = s
        .service
        .file(request("anna-0002", "81072204569", letter()))
        .await
        .unwrap();
    s.pz.cancel(&last_pz_id(&s.pz)).unwrap();
    let r = s
        .service
        .cancelled(&teryt(), &filed.filing_id)
        .await
        .unwrap();
    assert_eq!(r.status, FilingStatus::Cancelled);
    assert!(gsko_filing::FilingService::return_to(&r).ends_with("&status=cancelled"));
    // Coming back to "signed" afterwards changes nothing.
    let r = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(r.status, FilingStatus::Cancelled);
    assert!(s.epuap.sent().is_empty());
}

#[tokio::test]
async fn a_letter_signed_by_someone_else_is_refused() {
    let s = setup(FilingMode::Epuap).await;
    let filed = s
        .service
        .file(request("anna-0003", "81072204569", letter()))
        .await
        .unwrap();
    s.pz.sign_as(&last_pz_id(&s.pz), &jan()).unwrap();
    let r = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(r.status, FilingStatus::Failed);
    let detail = r.status_detail.unwrap();
    assert!(detail.contains("other than the resident"), "{detail}");
    assert!(!detail.contains("78031501236") && !detail.contains("81072204569"));
    assert!(s.epuap.sent().is_empty());
    assert_eq!(r.signed_sha256, None);
}

#[tokio::test]
async fn an_unknown_nadaj_outcome_is_left_uncertain_and_never_resent() {
    let s = setup(FilingMode::Epuap).await;
    let filed = s
        .service
        .file(request("anna-0004", "81072204569", letter()))
        .await
        .unwrap();
    s.pz.sign_as(&last_pz_id(&s.pz), &anna()).unwrap();
    s.epuap
        .fail_next(PullOperation::Nadaj, PullFault::Http500AfterProcessing);
    let r = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(r.status, FilingStatus::Uncertain, "{:?}", r.status_detail);
    let r = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(r.status, FilingStatus::Uncertain);
    assert_eq!(s.epuap.calls(PullOperation::Nadaj), 1);
    assert_eq!(
        s.store
            .filings_in(&teryt(), FilingStatus::Uncertain, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_same_key_is_the_same_filing_and_another_letter_under_it_is_refused() {
    let s = setup(FilingMode::Epuap).await;
    let first = s
        .service
        .file(request("anna-0005", "81072204569", letter()))
        .await
        .unwrap();
    let again = s
        .service
        .file(request("anna-0005", "81072204569", letter()))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.filing_id, first.filing_id);
    assert_eq!(again.sign_url, first.sign_url);
    assert_eq!(s.pz.documents().len(), 1, "handed to PZ once");
    let mut other = letter();
    other.title = "Inny tytuł".into();
    match s
        .service
        .file(request("anna-0005", "81072204569", other))
        .await
    {
        Err(FilingError::KeyReused { filing_id }) => assert_eq!(filing_id, first.filing_id),
        other => panic!("{other:?}"),
    }
}

/// One way to spoil a letter.
type Change = Box<dyn Fn(&mut LetterForm)>;

#[tokio::test]
async fn bad_requests_name_the_field() {
    let s = setup(FilingMode::Epuap).await;
    let cases: Vec<(&str, Change)> = vec![
        ("title", Box::new(|l| l.title = "  ".into())),
        ("body", Box::new(|l| l.body = "\n\n ".into())),
        ("sender.surname", Box::new(|l| l.sender.surname.clear())),
        (
            "attachments[0].content_base64",
            Box::new(|l| l.attachments[0].content_base64 = "!!".into()),
        ),
        (
            "attachments[0].name",
            Box::new(|l| l.attachments[0].name = "../x.pdf".into()),
        ),
        (
            "attachments[0].mime_type",
            Box::new(|l| l.attachments[0].mime_type = "pdf".into()),
        ),
        (
            "return_url",
            Box::new(|l| l.return_url = "https://evil.example/".into()),
        ),
    ];
    for (field, change) in cases {
        let mut l = letter();
        change(&mut l);
        match s.service.file(request("anna-0006", "81072204569", l)).await {
            Err(FilingError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(s.pz.documents().is_empty());
}

#[tokio::test]
async fn in_ezd_mode_the_signed_letter_goes_to_the_outbox_not_to_epuap() {
    let s = setup(FilingMode::Ezd).await;
    let filed = s
        .service
        .file(request("anna-0007", "81072204569", letter()))
        .await
        .unwrap();
    assert_eq!(filed.route, FilingRoute::Ezd);
    s.pz.sign_as(&last_pz_id(&s.pz), &anna()).unwrap();
    let r = s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(r.status, FilingStatus::Submitted, "{:?}", r.status_detail);
    assert!(s.epuap.sent().is_empty());
    let pending = s.store.outbox_pending(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let (EventData::LetterReceived(a), EventData::LetterRegister(b)) =
        (&pending[0].event.data, &pending[1].event.data)
    else {
        panic!("{:?}", pending)
    };
    assert_eq!(a, b);
    assert_eq!(a.channel, LetterChannel::GskoPortal);
    assert_eq!(Some(a.letter_id.clone()), r.letter_id);
    assert_eq!(a.signature.status, SignatureStatus::Valid);
    assert_eq!(
        a.signature.signer_pesel,
        Some(Pesel::from_str("81072204569").unwrap())
    );
    assert_eq!(a.document.sha256, r.signed_sha256.clone().unwrap());
    // The callback again queues nothing more.
    s.service.signed(&teryt(), &filed.filing_id).await.unwrap();
    assert_eq!(s.store.outbox_pending(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn when_pz_does_not_answer_the_filing_is_kept_and_retried_under_the_same_key() {
    let s = setup(FilingMode::Epuap).await;
    let mut tenant = s.service.tenant(&teryt()).unwrap().clone();
    tenant.signing = TpSigningClient::new(
        "http://127.0.0.1:9/ep-services/tpSigning5",
        s.identity.clone(),
        retry(),
    )
    .unwrap();
    let down = FilingService::new(
        Arc::new(s.store.clone()),
        BTreeMap::from([(teryt(), tenant)]),
        "https://gsko.example.pl",
    );
    for _ in 0..2 {
        match down
            .file(request("anna-0008", "81072204569", letter()))
            .await
        {
            Err(FilingError::SigningUnavailable(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let kept = s
        .store
        .filings_in(&teryt(), FilingStatus::Created, 10)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "stored once, before PZ was called");
    assert!(kept[0]
        .status_detail
        .as_deref()
        .unwrap()
        .contains("tpSigning5"));
    // PZ answers again: the same key hands the same filing over.
    let filed = s
        .service
        .file(request("anna-0008", "81072204569", letter()))
        .await
        .unwrap();
    assert_eq!(filed.filing_id, kept[0].filing_id);
    assert_eq!(filed.status, FilingStatus::AwaitingSignature);
    assert_eq!(filed.detail, None);
}
