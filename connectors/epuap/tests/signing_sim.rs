//! Profil Zaufany signing (tpSigning5): the messages in the form OMB sends them, and the
//! client against the PZ simulator — a document handed over comes back signed by the person
//! who signed it; before that, and after a cancellation, the service says so.
//!
//! `cargo test -p gsko-epuap --test signing_sim`

use gsko_epuap::client::{ClientError, Operation, RetryPolicy};
use gsko_epuap::pull::PullError;
use gsko_epuap::signing::{
    add_document_body, document_id_from_url, parse_add_document, parse_signed_document,
    signed_document_body, TpSigningClient,
};
use gsko_epuap::wssec::SigningIdentity;
use gsko_sim::pz::{PzPerson, PzSim, PzSimConfig};
use gsko_sim::xades::SimCertificate;
use std::sync::Arc;
use std::time::Duration;

const WNIOSEK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/"><wnio:OpisDokumentu/><wnio:DaneDokumentu/><wnio:TrescDokumentu><wnio:Tytul>Deklaracja o wysokości opłaty</wnio:Tytul></wnio:TrescDokumentu></wnio:Dokument>"#;

fn env(body: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

#[test]
fn requests_qualify_only_the_operation_element() {
    assert_eq!(
        add_document_body(
            b"abc",
            "https://gsko/ok?a=1&b=2",
            "https://gsko/nie",
            "Deklaracja"
        ),
        r#"<addDocumentToSigning xmlns="http://signing.ws.comarch.gov"><doc xmlns="">YWJj</doc><successURL xmlns="">https://gsko/ok?a=1&amp;b=2</successURL><failureURL xmlns="">https://gsko/nie</failureURL><additionalInfo xmlns="">Deklaracja</additionalInfo></addDocumentToSigning>"#
    );
    assert_eq!(
        signed_document_body("https://pz.gov.pl/x?id=1&t=2"),
        r#"<getSignedDocument xmlns="http://signing.ws.comarch.gov"><id xmlns="">https://pz.gov.pl/x?id=1&amp;t=2</id></getSignedDocument>"#
    );
}

#[test]
fn answers_are_read_by_their_return_element() {
    let url = parse_add_document(&env(
        r#"<ns1:addDocumentToSigningResponse xmlns:ns1="http://signing.ws.comarch.gov"><addDocumentToSigningReturn> https://pz.gov.pl/podpis/1 </addDocumentToSigningReturn></ns1:addDocumentToSigningResponse>"#,
    ))
    .unwrap();
    assert_eq!(url, "https://pz.gov.pl/podpis/1");
    assert!(matches!(
        parse_add_document(&env(
            r#"<ns1:addDocumentToSigningResponse xmlns:ns1="http://signing.ws.comarch.gov"/>"#
        )),
        Err(PullError::Malformed(_))
    ));
    let doc = parse_signed_document(&env(
        r#"<ns1:getSignedDocumentResponse xmlns:ns1="http://signing.ws.comarch.gov"><getSignedDocumentReturn>PGEvPg==</getSignedDocumentReturn></ns1:getSignedDocumentResponse>"#,
    ))
    .unwrap();
    assert_eq!(doc.as_deref(), Some(&b"<a/>"[..]));
    let none = parse_signed_document(&env(
        r#"<ns1:getSignedDocumentResponse xmlns:ns1="http://signing.ws.comarch.gov"><getSignedDocumentReturn xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/></ns1:getSignedDocumentResponse>"#,
    ))
    .unwrap();
    assert_eq!(none, None);
    assert!(matches!(
        parse_signed_document(&env(
            r#"<soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>Nie znaleziono</faultstring></soapenv:Fault>"#
        )),
        Err(PullError::Fault { .. })
    ));
}

#[test]
fn the_document_id_is_the_url_pz_answered() {
    // OMB's demos keep the returned URL and pass it whole to getSignedDocument.
    assert_eq!(
        document_id_from_url(" https://pz.gov.pl/pz/podpisz?ticket=a1 ").as_deref(),
        Some("https://pz.gov.pl/pz/podpisz?ticket=a1")
    );
    assert_eq!(document_id_from_url("ftp://pz.gov.pl/x"), None);
    assert_eq!(document_id_from_url("https:///x"), None);
    assert_eq!(document_id_from_url("podpisz/1"), None);
}

fn person() -> PzPerson {
    PzPerson {
        first_name: "Anna".into(),
        surname: "Nowak".into(),
        pesel: "85010212343".into(),
        date_of_birth: "1985-01-02".into(),
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

async fn setup() -> (gsko_sim::pz::PzSimHandle, TpSigningClient) {
    let cert = SimCertificate::generate("UM Boleslawiec system").expect("openssl");
    let identity = Arc::new(SigningIdentity::from_pem(&cert.cert_pem, &cert.key_pem).unwrap());
    let handle = PzSim::start(
        PzSimConfig::new()
            .with_certificate(cert.cert_der.clone())
            .with_person(person()),
    )
    .await
    .unwrap();
    let client = TpSigningClient::new(handle.tp_signing_url(), identity, retry()).unwrap();
    (handle, client)
}

/// The simulator's own id of the only document handed over (to act as the resident).
fn sim_id(handle: &gsko_sim::pz::PzSimHandle) -> String {
    let docs = handle.documents();
    assert_eq!(docs.len(), 1);
    docs[0].id.clone()
}

#[tokio::test]
async fn a_document_comes_back_signed_by_the_person_who_signed_it() {
    let (handle, client) = setup().await;
    let url = client
        .add_document(
            WNIOSEK.as_bytes(),
            "https://gsko.example/podpis/ok",
            "https://gsko.example/podpis/anulowano",
            "Deklaracja o wysokości opłaty",
        )
        .await
        .unwrap();
    let id = document_id_from_url(&url).expect("PZ answers an absolute URL");
    assert_eq!(handle.documents()[0].document, WNIOSEK.as_bytes());
    assert_eq!(
        handle.documents()[0].success_url,
        "https://gsko.example/podpis/ok"
    );

    handle.sign_as(&sim_id(&handle), &person()).unwrap();
    let signed = client
        .signed_document(&id)
        .await
        .unwrap()
        .expect("the signed document");
    let text = String::from_utf8(signed).unwrap();
    assert!(
        text.contains("85010212343"),
        "the signer's PESEL is in the signature"
    );
    assert!(text.contains("Deklaracja o wysokości opłaty"));
}

#[tokio::test]
async fn before_signing_and_after_a_cancellation_there_is_no_document() {
    let (handle, client) = setup().await;
    let url = client
        .add_document(WNIOSEK.as_bytes(), "https://g/ok", "https://g/nie", "x")
        .await
        .unwrap();
    let id = document_id_from_url(&url).unwrap();
    // Not signed yet: the simulator answers a client fault (real PZ's answer is unknown).
    match client.signed_document(&id).await {
        Ok(None) => {}
        Err(ClientError::Refused {
            operation: Operation::GetSignedDocument,
            source: PullError::Fault { faultstring, .. },
        }) => assert!(
            faultstring.contains("nie został jeszcze podpisany"),
            "{faultstring}"
        ),
        other => panic!("expected no document yet, got {other:?}"),
    }
    handle.cancel(&sim_id(&handle)).unwrap();
    let e = client.signed_document(&id).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { source: PullError::Fault { faultstring, .. }, .. } if faultstring.contains("anulowane")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_document_that_is_not_xml_is_refused() {
    let (_handle, client) = setup().await;
    let e = client
        .add_document(b"not xml", "https://g/ok", "https://g/nie", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Refused {
                operation: Operation::AddDocumentToSigning,
                ..
            }
        ),
        "{e:?}"
    );
}
