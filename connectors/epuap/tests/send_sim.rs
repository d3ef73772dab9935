//! Sending from the office: the `nadaj` and `dorecz` messages in the form ePUAP expects, their
//! answers read, and both clients against the ePUAP simulator (an independent implementation
//! that verifies signatures with xmlsec1): a sent document arrives in the addressee's box with
//! a UPP; a dry run delivers nothing; refusals are final; a `dorecz` comes back as a UPD that
//! names our document; a lost answer is reported as uncertain and never sent twice.
//!
//! `cargo test -p gsko-epuap --test send_sim`

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use gsko_epuap::client::{ClientError, Operation, PullClient, RetryPolicy};
use gsko_epuap::pull::{BoxAddress, PullError};
use gsko_epuap::send::{
    document_body, dorecz_headers, nadaj_headers, parse_dorecz, parse_nadaj, Dorecz,
    DoreczycielClient, Nadaj, SkrytkaClient,
};
use gsko_epuap::upo::{self, Kind};
use gsko_epuap::wssec::SigningIdentity;
use gsko_sim::epuap::{
    self as sim, EpuapSim, EpuapSimConfig, EpuapSimHandle, PullFault, PullOperation as SimOp,
};
use gsko_sim::xades::{coi_certificate, sign_enveloped, SignerClaim, SimCertificate};
use std::sync::Arc;
use std::time::Duration;

const OB: &str = "http://wsdl.epuap.gov.pl/obiekty/";
const OFFICE: &str = "umboleslawiec";
const OFFICE_BOX: &str = "/umboleslawiec/skrytka";
/// Another office, reached by `nadaj`.
const OTHER: &str = "ugzgorzelec";
const OTHER_BOX: &str = "/ugzgorzelec/skrytka";
/// A resident, reached by `dorecz`.
const RESIDENT_BOX: &str = "/jkowalski/domyslna";

const LETTER: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Pismo><Tresc>Zawiadomienie o wysokości opłaty</Tresc></Pismo>"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn nadaj(target: &str, dry_run: bool) -> Nadaj {
    Nadaj {
        target_box: target.into(),
        reply_box: OFFICE_BOX.into(),
        file_name: "pismo.xml".into(),
        mime_type: "text/xml".into(),
        content: LETTER.as_bytes().to_vec(),
        dry_run,
        extra: None,
    }
}

fn dorecz(content: Vec<u8>, dry_run: bool) -> Dorecz {
    Dorecz {
        recipient_box: RESIDENT_BOX.into(),
        reply_box: OFFICE_BOX.into(),
        file_name: "decyzja.xml".into(),
        mime_type: "text/xml".into(),
        content,
        deliver_by: Some(Utc.with_ymd_and_hms(2026, 12, 12, 9, 30, 0).unwrap()),
        document_id: "DEC-2026-0042".into(),
        case_id: "FN.3120.7.2026".into(),
        dry_run,
    }
}

fn signed_letter() -> Vec<u8> {
    sign_enveloped(
        LETTER.as_bytes(),
        coi_certificate(),
        &SignerClaim::None,
        "2026-11-28T10:00:00+01:00",
    )
    .expect("xmlsec1 signs the test decision")
}

fn env(body: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

// ------------------------------------------------------------------------------------------
// Messages

#[test]
fn nadaj_sends_qualified_headers_and_a_document_with_unqualified_children() {
    let mut n = nadaj("/a&b/skrytka", true);
    n.extra = Some(b"<DaneDodatkowe/>".to_vec());
    let h = nadaj_headers(OFFICE, &n);
    assert_eq!(
        h,
        vec![
            format!(
                r#"<ob:DaneDodatkowe xmlns:ob="{OB}">{}</ob:DaneDodatkowe>"#,
                b64(b"<DaneDodatkowe/>")
            ),
            format!(r#"<ob:CzyProbne xmlns:ob="{OB}">1</ob:CzyProbne>"#),
            format!(r#"<ob:AdresOdpowiedzi xmlns:ob="{OB}">{OFFICE_BOX}</ob:AdresOdpowiedzi>"#),
            format!(r#"<ob:AdresSkrytki xmlns:ob="{OB}">/a&amp;b/skrytka</ob:AdresSkrytki>"#),
            format!(
                r#"<ob:IdentyfikatorPodmiotu xmlns:ob="{OB}">{OFFICE}</ob:IdentyfikatorPodmiotu>"#
            ),
        ]
    );
    let h = nadaj_headers(OFFICE, &nadaj(OTHER_BOX, false));
    assert_eq!(h[0], format!(r#"<ob:DaneDodatkowe xmlns:ob="{OB}"/>"#));
    assert_eq!(
        h[1],
        format!(r#"<ob:CzyProbne xmlns:ob="{OB}">0</ob:CzyProbne>"#)
    );
    assert_eq!(
        document_body("p<1>.xml", "text/xml", b"abc"),
        format!(
            r#"<Dokument xmlns="{OB}"><nazwaPliku xmlns="">p&lt;1&gt;.xml</nazwaPliku><typPliku xmlns="">text/xml</typPliku><zawartosc xmlns="">YWJj</zawartosc></Dokument>"#
        )
    );
}

#[test]
fn dorecz_names_our_document_case_and_deadline() {
    let h = dorecz_headers(OFFICE, &dorecz(b"x".to_vec(), false));
    let names: Vec<&str> = h.iter().map(|x| &x[4..x.find(' ').unwrap()]).collect();
    assert_eq!(
        names,
        [
            "DaneDodatkowe",
            "IdentyfikatorSprawy",
            "IdentyfikatorDokumentu",
            "CzyProbne",
            "TerminDoreczenia",
            "AdresOdpowiedzi",
            "AdresSkrytki",
            "IdentyfikatorPodmiotu"
        ]
    );
    assert!(h.contains(&format!(
        r#"<ob:TerminDoreczenia xmlns:ob="{OB}">2026-12-12T09:30:00Z</ob:TerminDoreczenia>"#
    )));
    assert!(h.contains(&format!(
        r#"<ob:IdentyfikatorDokumentu xmlns:ob="{OB}">DEC-2026-0042</ob:IdentyfikatorDokumentu>"#
    )));
    let mut d = dorecz(b"x".to_vec(), false);
    d.deliver_by = None;
    assert!(!dorecz_headers(OFFICE, &d)
        .iter()
        .any(|x| x.contains("TerminDoreczenia")));
}

#[test]
fn answers_give_receipts_and_refusals_keep_the_wyjatek() {
    let r = parse_nadaj(&env(&format!(
        r#"<p:OdpowiedzSkrytki xmlns:p="{OB}"><status><kod>1</kod><komunikat>OK</komunikat></status><identyfikatorDokumentu>123</identyfikatorDokumentu><identyfikatorUpp>456</identyfikatorUpp><statusOdbiorcy><kod>1</kod><komunikat>OK</komunikat></statusOdbiorcy><zalacznik><nazwaPliku>UPP.xml</nazwaPliku><zawartosc>{}</zawartosc></zalacznik></p:OdpowiedzSkrytki>"#,
        b64(b"<upp/>")
    )))
    .unwrap();
    assert_eq!(r.document_id, "123");
    assert_eq!(r.upp_id.as_deref(), Some("456"));
    assert_eq!(r.upp.as_deref(), Some(&b"<upp/>"[..]));
    assert_eq!(r.recipient_status, Some((1, "OK".into())));

    let r = parse_dorecz(&env(&format!(
        r#"<p:OdpowiedzDoreczyciela xmlns:p="{OB}"><status><kod>1</kod></status><identyfikatorDokumentu>D1</identyfikatorDokumentu><identyfikatorZlecenia xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/></p:OdpowiedzDoreczyciela>"#
    )))
    .unwrap();
    assert_eq!(r.document_id.as_deref(), Some("D1"));
    assert_eq!(r.order_id, None);

    let e = parse_nadaj(&env(&format!(
        r#"<soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>Brak skrytki</faultstring><detail><ob:Wyjatek xmlns:ob="{OB}"><kod>101</kod><komunikat>Nie ma skrytki</komunikat></ob:Wyjatek></detail></soapenv:Fault>"#
    )))
    .unwrap_err();
    assert_eq!(
        e,
        PullError::Fault {
            faultcode: "soapenv:Client".into(),
            faultstring: "Brak skrytki".into(),
            kod: Some(101),
            komunikat: Some("Nie ma skrytki".into()),
        }
    );
    let e = parse_dorecz(&env(&format!(
        r#"<p:OdpowiedzDoreczyciela xmlns:p="{OB}"><status><kod>7</kod><komunikat>Odmowa</komunikat></status></p:OdpowiedzDoreczyciela>"#
    )))
    .unwrap_err();
    assert_eq!(
        e,
        PullError::Status {
            kod: 7,
            komunikat: "Odmowa".into()
        }
    );
    // The answer of the other service is not taken for this one.
    assert!(matches!(
        parse_dorecz(&env(&format!(
            r#"<p:OdpowiedzSkrytki xmlns:p="{OB}"><status><kod>1</kod></status></p:OdpowiedzSkrytki>"#
        ))),
        Err(PullError::Malformed(_))
    ));
}

// ------------------------------------------------------------------------------------------
// Against the simulator

struct Setup {
    handle: EpuapSimHandle,
    identity: Arc<SigningIdentity>,
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
    }
}

async fn setup() -> Setup {
    let cert = SimCertificate::generate("UM Boleslawiec system").expect("openssl");
    let identity = Arc::new(SigningIdentity::from_pem(&cert.cert_pem, &cert.key_pem).unwrap());
    let handle = EpuapSim::start(
        EpuapSimConfig::new()
            .with_box(OFFICE, "skrytka")
            .with_box(OTHER, "skrytka")
            .with_box("jkowalski", "domyslna")
            .with_certificate(OFFICE, cert.cert_der.clone())
            // The same test certificate lets this test pull the other office's box.
            .with_certificate(OTHER, cert.cert_der.clone()),
    )
    .await
    .unwrap();
    Setup { handle, identity }
}

impl Setup {
    fn skrytka(&self) -> SkrytkaClient {
        SkrytkaClient::new(
            self.handle.skrytka_url(),
            self.identity.clone(),
            OFFICE,
            retry(),
        )
        .unwrap()
    }

    fn doreczyciel(&self, retry: RetryPolicy) -> DoreczycielClient {
        DoreczycielClient::new(
            self.handle.doreczyciel_url(),
            self.identity.clone(),
            OFFICE,
            retry,
        )
        .unwrap()
    }

    fn pull(&self, podmiot: &str) -> PullClient {
        PullClient::new(
            self.handle.pull_url(),
            self.identity.clone(),
            BoxAddress::new(podmiot, "skrytka"),
            retry(),
        )
        .unwrap()
    }
}

#[tokio::test]
async fn a_sent_document_arrives_in_the_addressees_box_with_a_upp() {
    let s = setup().await;
    let receipt = s.skrytka().nadaj(&nadaj(OTHER_BOX, false)).await.unwrap();
    assert!(!receipt.document_id.is_empty());

    // The UPP names the document, its addressee and us.
    let upp = upo::read(receipt.upp.as_deref().expect("the answer carries the UPP")).unwrap();
    assert_eq!(upp.kind, Kind::Upp);
    assert_eq!(
        upp.document_id.as_deref(),
        Some(receipt.document_id.as_str())
    );
    assert_eq!(receipt.upp_id.as_deref(), Some(upp.id.as_str()));
    assert_eq!(upp.addressee.unwrap().id.as_deref(), Some(OTHER));
    assert_eq!(upp.sender_or_issuer.unwrap().id.as_deref(), Some(OFFICE));
    assert!(upp.signed);

    // The other office pulls exactly our document.
    let pull = s.pull(OTHER);
    assert_eq!(pull.pending().await.unwrap(), 1);
    let got = pull.next().await.unwrap().unwrap();
    assert_eq!(got.content, LETTER.as_bytes());
    assert_eq!(got.file_name, "pismo.xml");
    assert_eq!(got.reply_address.as_deref(), Some(OFFICE_BOX));
    pull.confirm(&got.digest()).await.unwrap();
    assert_eq!(s.handle.sent().len(), 1);
}

#[tokio::test]
async fn a_dry_run_is_checked_but_delivers_nothing() {
    let s = setup().await;
    let receipt = s.skrytka().nadaj(&nadaj(OTHER_BOX, true)).await.unwrap();
    assert_eq!(receipt.upp, None);
    assert!(s.handle.sent().is_empty());
    assert_eq!(s.pull(OTHER).pending().await.unwrap(), 0);
}

#[tokio::test]
async fn an_unknown_box_is_refused_once_with_the_wyjatek() {
    let s = setup().await;
    let e = s
        .skrytka()
        .nadaj(&nadaj("/nikt/skrytka", false))
        .await
        .unwrap_err();
    match e {
        ClientError::Refused {
            operation: Operation::Nadaj,
            source: PullError::Fault { faultcode, kod, .. },
        } => {
            assert!(faultcode.ends_with("Client"), "{faultcode}");
            assert_eq!(kod, Some(sim::KOD_NIEZNANA_SKRYTKA));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(s.handle.calls(SimOp::Nadaj), 1);
    assert!(s.handle.sent().is_empty());
}

#[tokio::test]
async fn a_server_fault_before_processing_is_retried_and_delivers_once() {
    let s = setup().await;
    s.handle.fail_next(SimOp::Nadaj, PullFault::soap_fault());
    s.skrytka().nadaj(&nadaj(OTHER_BOX, false)).await.unwrap();
    assert_eq!(s.handle.calls(SimOp::Nadaj), 2);
    assert_eq!(s.handle.sent().len(), 1);
}

#[tokio::test]
async fn a_bare_http_500_may_have_delivered_so_it_is_uncertain_and_not_repeated() {
    let s = setup().await;
    s.handle
        .fail_next(SimOp::Nadaj, PullFault::Http500AfterProcessing);
    let e = s
        .skrytka()
        .nadaj(&nadaj(OTHER_BOX, false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Uncertain {
                operation: Operation::Nadaj,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_uncertain() && !e.is_transient());
    assert_eq!(s.handle.calls(SimOp::Nadaj), 1);
    // It was in fact delivered: sending again would have made two.
    assert_eq!(s.handle.sent().len(), 1);
}

#[tokio::test]
async fn a_signed_decision_is_delivered_and_its_upd_comes_back_naming_it() {
    let s = setup().await;
    let d = dorecz(signed_letter(), false);
    let receipt = s.doreczyciel(retry()).dorecz(&d).await.unwrap();
    let order = receipt.order_id.expect("an order id");
    let shipments = s.handle.shipments();
    assert_eq!(shipments.len(), 1);
    assert_eq!(shipments[0].zlecenie_id, order);
    assert_eq!(shipments[0].case_id.as_deref(), Some("FN.3120.7.2026"));

    // Nothing yet in our box; the resident collects; the UPD arrives by pull.
    let pull = s.pull(OFFICE);
    assert_eq!(pull.pending().await.unwrap(), 0);
    s.handle.collect(&order).unwrap();
    let got = pull.next().await.unwrap().expect("the UPD letter");
    assert_eq!(got.file_name, "UPD.xml");
    assert!(upo::is_upo(&got.content));
    let upd = upo::read(&got.content).unwrap();
    assert_eq!(upd.kind, Kind::Upd);
    assert_eq!(upd.document_id.as_deref(), Some("DEC-2026-0042"));
    assert_eq!(upd.case_id.as_deref(), Some("FN.3120.7.2026"));
    assert_eq!(upd.addressee.unwrap().id.as_deref(), Some("jkowalski"));
    assert!(upd.delivered_at.is_some() && upd.signed);
}

#[tokio::test]
async fn an_unsigned_decision_is_refused() {
    let s = setup().await;
    let e = s
        .doreczyciel(retry())
        .dorecz(&dorecz(LETTER.as_bytes().to_vec(), false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Refused {
                operation: Operation::Dorecz,
                source: PullError::Fault { kod: Some(k), .. }
            } if *k == gsko_sim::epuap_send::KOD_DOKUMENT_NIEPODPISANY
        ),
        "{e:?}"
    );
    assert!(s.handle.shipments().is_empty());
}

#[tokio::test]
async fn a_dorecz_dry_run_orders_nothing() {
    let s = setup().await;
    let r = s
        .doreczyciel(retry())
        .dorecz(&dorecz(signed_letter(), true))
        .await
        .unwrap();
    assert_eq!(r.order_id, None);
    assert!(s.handle.shipments().is_empty());
}

#[tokio::test]
async fn a_timeout_on_dorecz_is_uncertain_and_sent_exactly_once() {
    let s = setup().await;
    s.handle
        .fail_next(SimOp::Dorecz, PullFault::Delay(Duration::from_secs(3)));
    let short = RetryPolicy {
        timeout: Duration::from_millis(800),
        ..retry()
    };
    let e = s
        .doreczyciel(short)
        .dorecz(&dorecz(signed_letter(), false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Uncertain {
                operation: Operation::Dorecz,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(s.handle.calls(SimOp::Dorecz), 1);
    // ePUAP did take it: a second call would have ordered a second delivery.
    assert_eq!(s.handle.shipments().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported_unavailable() {
    // Nothing listens there: the request certainly never arrived, so retrying is safe.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/pk_external_ws/services/skrytka",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let cert = SimCertificate::generate("UM Boleslawiec system").expect("openssl");
    let identity = Arc::new(SigningIdentity::from_pem(&cert.cert_pem, &cert.key_pem).unwrap());
    let client = SkrytkaClient::new(url, identity, OFFICE, retry()).unwrap();
    let e = client.nadaj(&nadaj(OTHER_BOX, false)).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Unavailable {
                operation: Operation::Nadaj,
                attempts: 3,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_unregistered_certificate_is_refused_without_retrying() {
    let s = setup().await;
    let stranger = SimCertificate::generate("Nie zarejestrowany").expect("openssl");
    let identity =
        Arc::new(SigningIdentity::from_pem(&stranger.cert_pem, &stranger.key_pem).unwrap());
    let client = SkrytkaClient::new(s.handle.skrytka_url(), identity, OFFICE, retry()).unwrap();
    let e = client.nadaj(&nadaj(OTHER_BOX, false)).await.unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Refused {
                source: PullError::Fault { kod: Some(k), .. },
                ..
            } if *k == sim::KOD_BRAK_AUTORYZACJI
        ),
        "{e:?}"
    );
    assert_eq!(s.handle.calls(SimOp::Nadaj), 1);
    assert!(s.handle.sent().is_empty());
}
