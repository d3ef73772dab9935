//! ePUAP WS-Skrytka `nadaj` and WS-Doręczyciel `dorecz` in the simulator, driven by hand-built
//! SOAP requests signed with the `xmlsec1` command-line tool (§1.7, §1.8): no connector code.
//! UPP and UPD are checked with `xmlsec1 --verify` against ePUAP's simulated certificate.
//! Needs `openssl` and `xmlsec1` on PATH.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use gsko_sim::epuap::{
    BoxAddress, EpuapSim, EpuapSimConfig, EpuapSimHandle, PullFault, PullOperation, RejectionKind,
    KOD_AWARIA, KOD_BLEDNE_ZAPYTANIE, KOD_BRAK_AUTORYZACJI, KOD_NIEZGODNY_ADRES,
    KOD_NIEZNANA_SKRYTKA,
};
use gsko_sim::epuap_send::{
    SendSimError, ShipmentState, KOD_DOKUMENT_NIEPODPISANY, KOD_DOKUMENT_NIE_XML, NS_UPO,
};
use gsko_sim::xades::{epuap_certificate, sign_enveloped, tamper, SignerClaim, SimCertificate};

const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const NS_OB: &str = "http://wsdl.epuap.gov.pl/obiekty/";
const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const NS_XADES: &str = "http://uri.etsi.org/01903/v1.3.2#";

const OFFICE: &str = "ug_gromadka";
const OTHER_OFFICE: &str = "ug_warta";

/// A WS-Security identity: the key as a PEM file for `xmlsec1 --sign`, the certificate as DER.
struct Identity {
    key_pem: PathBuf,
    cert_der: Vec<u8>,
}

struct Pki {
    _dir: tempfile::TempDir,
    gmina: Identity,
    warta: Identity,
    /// Not WS-Security: the office's document signing certificate (decisions are signed).
    document_signer: SimCertificate,
    /// ePUAP's certificate as a PEM file, for verifying UPP/UPD.
    epuap_cert_pem: PathBuf,
}

fn identity(dir: &std::path::Path, name: &str) -> Identity {
    let cert = SimCertificate::generate(name).expect("openssl must be installed");
    let key_pem = dir.join(format!("{name}.key.pem"));
    std::fs::write(&key_pem, &cert.key_pem).unwrap();
    Identity {
        key_pem,
        cert_der: cert.cert_der,
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let epuap_cert_pem = dir.path().join("epuap.cert.pem");
        std::fs::write(&epuap_cert_pem, &epuap_certificate().cert_pem).unwrap();
        Pki {
            gmina: identity(dir.path(), "gmina"),
            warta: identity(dir.path(), "warta"),
            document_signer: SimCertificate::generate("UG Gromadka - dokumenty").unwrap(),
            epuap_cert_pem,
            _dir: dir,
        }
    })
}

/// `xmlsec1 --verify` of an enveloped XAdES document with ePUAP's certificate as the only key.
fn verifies_as_epuap(xml: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    std::fs::write(&doc, xml).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(&pki().epuap_cert_pem)
        .arg("--id-attr:Id")
        .arg(format!("{NS_XADES}:SignedProperties"))
        .arg(&doc)
        .output()
        .expect("xmlsec1 must be installed");
    out.status.success()
}

/// Qualified ESP headers (`obi:<name>`), in the order OMB writes them (§1.8).
fn headers(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("<obi:{name} xmlns:obi=\"{NS_OB}\">{value}</obi:{name}>"))
        .collect()
}

/// `ob:Dokument` with unqualified children.
fn dokument(file_name: &str, content: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    format!(
        "<Dokument xmlns=\"{NS_OB}\"><nazwaPliku xmlns=\"\">{file_name}</nazwaPliku>\
         <typPliku xmlns=\"\">text/xml</typPliku><zawartosc xmlns=\"\">{b64}</zawartosc></Dokument>"
    )
}

fn unsigned_envelope(header_xml: &str, body_payload: &str) -> Vec<u8> {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\" xmlns:wsu=\"{NS_WSU}\"><soapenv:Header>{header_xml}</soapenv:Header>\
         <soapenv:Body wsu:Id=\"id-1\">{body_payload}</soapenv:Body></soapenv:Envelope>"
    )
    .into_bytes()
}

/// Signs like OMB's `Envelope.cs` (§1.7): BST, then the Signature over the Body only; the ESP
/// headers follow `wsse:Security` in the Header.
fn signed_envelope(header_xml: &str, body_payload: &str, who: &Identity) -> Vec<u8> {
    static N: AtomicUsize = AtomicUsize::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&who.cert_der);
    let template = format!(
        "<soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\" xmlns:wsse=\"{NS_WSSE}\" xmlns:wsu=\"{NS_WSU}\">\
         <soapenv:Header><wsse:Security>\
         <wsse:BinarySecurityToken wsu:Id=\"X509-{n}\" EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\" ValueType=\"{X509V3}\">{b64}</wsse:BinarySecurityToken>\
         <ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
         <ds:Reference URI=\"#id-{n}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue/></ds:Reference>\
         </ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><wsse:SecurityTokenReference>\
         <wsse:Reference URI=\"#X509-{n}\" ValueType=\"{X509V3}\"/></wsse:SecurityTokenReference></ds:KeyInfo>\
         </ds:Signature></wsse:Security>{header_xml}</soapenv:Header>\
         <soapenv:Body wsu:Id=\"id-{n}\">{body_payload}</soapenv:Body></soapenv:Envelope>"
    );
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("template.xml");
    let output = dir.path().join("signed.xml");
    std::fs::write(&input, template).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(&who.key_pem)
        .arg("--id-attr:Id")
        .arg(format!("{NS_SOAP}:Body"))
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .expect("xmlsec1 must be installed");
    assert!(
        out.status.success(),
        "xmlsec1 --sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(output).unwrap()
}

struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn get(&self, element: &str) -> Option<&str> {
        let open = format!("<{element}>");
        let start = self.text.find(&open)? + open.len();
        let end = self.text[start..].find(&format!("</{element}>"))? + start;
        Some(&self.text[start..end])
    }

    fn kod(&self) -> i32 {
        self.get("kod")
            .unwrap_or_else(|| panic!("no kod in {}", self.text))
            .parse()
            .unwrap()
    }

    fn is_fault(&self) -> bool {
        self.status == 500 && self.text.contains("<soapenv:Fault>")
    }

    fn zawartosc(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(self.get("zawartosc").expect("zawartosc"))
            .unwrap()
    }
}

async fn post(url: String, body: Vec<u8>) -> Answer {
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    Answer {
        status,
        text: r.text().await.unwrap(),
    }
}

fn office_box() -> BoxAddress {
    BoxAddress::new(OFFICE, "skrytka")
}

fn other_office_box() -> BoxAddress {
    BoxAddress::new(OTHER_OFFICE, "skrytka")
}

fn resident_box() -> BoxAddress {
    BoxAddress::new("jkowalski", "domyslna")
}

fn config() -> EpuapSimConfig {
    EpuapSimConfig::new()
        .with_box(OFFICE, "skrytka")
        .with_certificate(OFFICE, pki().gmina.cert_der.clone())
        .with_box(OTHER_OFFICE, "skrytka")
        .with_certificate(OTHER_OFFICE, pki().warta.cert_der.clone())
}

async fn start_with(config: EpuapSimConfig) -> EpuapSimHandle {
    let sim = EpuapSim::start(config).await.expect("xmlsec1 installed");
    sim.add_box(&resident_box());
    sim
}

async fn start() -> EpuapSimHandle {
    start_with(config()).await
}

const PISMO: &[u8] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pismo xmlns=\"urn:test\">\
    <tytul>Odpowiedź na wniosek</tytul></pismo>"
    .as_bytes();

fn nadaj_request(target: &str, czy_probne: &str, content: &[u8]) -> Vec<u8> {
    signed_envelope(
        &headers(&[
            ("DaneDodatkowe", ""),
            ("CzyProbne", czy_probne),
            ("AdresOdpowiedzi", "/ug_gromadka/skrytka"),
            ("AdresSkrytki", target),
            ("IdentyfikatorPodmiotu", OFFICE),
        ]),
        &dokument("pismo.xml", content),
        &pki().gmina,
    )
}

/// A decision signed by the office (enveloped XAdES), as `dorecz` requires.
fn signed_decision() -> Vec<u8> {
    let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<decyzja xmlns=\"urn:test\">\
               <znak>FN.3120.1.2026</znak><tresc>Decyzja wymiarowa</tresc></decyzja>";
    sign_enveloped(
        doc.as_bytes(),
        &pki().document_signer,
        &SignerClaim::None,
        "2026-05-10T10:00:00+02:00",
    )
    .expect("xmlsec1 signs the decision")
}

fn dorecz_request(recipient: &str, reply_to: &str, czy_probne: &str, content: &[u8]) -> Vec<u8> {
    signed_envelope(
        &headers(&[
            ("IdentyfikatorPodmiotu", OFFICE),
            ("AdresSkrytki", recipient),
            ("AdresOdpowiedzi", reply_to),
            ("TerminDoreczenia", "2026-05-24T10:00:00.0000000+02:00"),
            ("CzyProbne", czy_probne),
            ("IdentyfikatorDokumentu", "DEC-2026-17"),
            ("IdentyfikatorSprawy", "FN.3120.1.2026"),
        ]),
        &dokument("decyzja.xml", content),
        &pki().gmina,
    )
}

async fn dorecz_ok(sim: &EpuapSimHandle) -> String {
    let a = post(
        sim.doreczyciel_url(),
        dorecz_request(
            "/jkowalski/domyslna",
            "/ug_gromadka/skrytka",
            "0",
            &signed_decision(),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.kod(), 1);
    assert!(a.text.contains(
        "<p140:OdpowiedzDoreczyciela xmlns:p140=\"http://wsdl.epuap.gov.pl/obiekty/\"><status>"
    ));
    assert_eq!(a.get("identyfikatorDokumentu"), Some("DEC-2026-17"));
    a.get("identyfikatorZlecenia")
        .expect("identyfikatorZlecenia")
        .to_string()
}

/// WS-Pull `pobierzNastepny` on `b`, signed by the box owner's certificate.
async fn pobierz(sim: &EpuapSimHandle, b: &BoxAddress, who: &Identity) -> Answer {
    let payload = format!(
        "<ZapytaniePullPobierz xmlns=\"{NS_OB}\"><podmiot xmlns=\"\">{}</podmiot>\
         <nazwaSkrytki xmlns=\"\">{}</nazwaSkrytki><adresSkrytki xmlns=\"\">{}</adresSkrytki>\
         </ZapytaniePullPobierz>",
        b.podmiot,
        b.nazwa,
        b.adres()
    );
    post(sim.pull_url(), signed_envelope("", &payload, who)).await
}

fn text_of<'a>(xml: &'a str, element: &str) -> Option<&'a str> {
    let open = format!("<{element}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{element}>"))? + start;
    Some(&xml[start..end])
}

#[tokio::test]
async fn nadaj_delivers_into_the_box_and_answers_with_a_upp_signed_by_epuap() {
    let sim = start().await;
    let a = post(
        sim.skrytka_url(),
        nadaj_request("/ug_warta/skrytka", "0", PISMO),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.kod(), 1);
    assert!(a.text.contains(
        "<p140:OdpowiedzSkrytki xmlns:p140=\"http://wsdl.epuap.gov.pl/obiekty/\"><status>"
    ));
    let document_id = a.get("identyfikatorDokumentu").unwrap().to_string();
    let upp_id = a.get("identyfikatorUpp").unwrap().to_string();
    assert_ne!(document_id, upp_id);
    assert_eq!(a.get("nazwaPliku"), Some("UPP.xml"));
    assert_eq!(a.get("typPliku"), Some("text/xml"));

    // The UPP: ePUAP's signature verifies, and it names the document, both parties and the
    // document's SHA-256.
    let upp = a.zawartosc();
    assert!(verifies_as_epuap(&upp), "{}", String::from_utf8_lossy(&upp));
    assert!(
        !verifies_as_epuap(&tamper(&upp)),
        "a changed UPP must not verify"
    );
    let upp_text = String::from_utf8(upp.clone()).unwrap();
    assert!(upp_text.contains(&format!("xmlns:pos=\"{NS_UPO}\"")));
    assert_eq!(
        text_of(&upp_text, "pos:IdentyfikatorPoswiadczenia"),
        Some(upp_id.as_str())
    );
    assert_eq!(
        text_of(&upp_text, "pos:IdentyfikatorDokumentu"),
        Some(document_id.as_str())
    );
    assert!(upp_text.contains(
        "<pos:Adresat><pos:Nazwa>ug_warta</pos:Nazwa><pos:IdentyfikatorPodmiotu>ug_warta</pos:IdentyfikatorPodmiotu></pos:Adresat>"
    ));
    assert!(upp_text.contains(
        "<pos:Nadawca><pos:Nazwa>ug_gromadka</pos:Nazwa><pos:IdentyfikatorPodmiotu>ug_gromadka</pos:IdentyfikatorPodmiotu></pos:Nadawca>"
    ));
    let sha256 = {
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(PISMO))
    };
    assert!(upp_text.contains(&format!(
        "<pos:InformacjaUzupelniajaca TypInformacjiUzupelniajacej=\"Skrot dokumentu\">{sha256}</pos:InformacjaUzupelniajaca>"
    )));

    // The recipient office pulls it like any other letter.
    let got = pobierz(&sim, &other_office_box(), &pki().warta).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.kod(), 1);
    assert_eq!(got.zawartosc(), PISMO);
    assert_eq!(got.get("nazwaPliku"), Some("pismo.xml"));
    assert_eq!(got.get("identyfikator"), Some(OFFICE));
    assert_eq!(got.get("typOsoby"), Some("P"));
    assert_eq!(got.get("adresOdpowiedzi"), Some("/ug_gromadka/skrytka"));
    let extra = base64::engine::general_purpose::STANDARD
        .decode(got.get("daneDodatkowe").unwrap())
        .unwrap();
    assert!(String::from_utf8(extra).unwrap().contains(&format!(
        "<IdentyfikatorDokumentu>{document_id}</IdentyfikatorDokumentu>"
    )));
    // Nothing landed in the sender's own box.
    assert!(sim.pending(&office_box()).is_empty());

    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, other_office_box());
    assert_eq!(sent[0].content, PISMO);
    assert_eq!(sent[0].upp_id, upp_id);
    assert_eq!(sent[0].document_id, document_id);
    assert_eq!(sent[0].upp, upp);
}

#[tokio::test]
async fn nadaj_dry_run_validates_but_delivers_nothing() {
    let sim = start().await;
    for czy_probne in ["1", "true"] {
        let a = post(
            sim.skrytka_url(),
            nadaj_request("/ug_warta/skrytka", czy_probne, PISMO),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.kod(), 1);
        assert!(!a.text.contains("<zalacznik>"), "{}", a.text);
        assert!(a.get("identyfikatorUpp").is_none());
    }
    // A dry run to an unknown box is still refused: it validates.
    let a = post(
        sim.skrytka_url(),
        nadaj_request("/nikt/skrytka", "1", PISMO),
    )
    .await;
    assert!(a.is_fault(), "{}", a.text);
    assert!(sim.pending(&other_office_box()).is_empty());
    assert!(sim.sent().is_empty());
    // "0" and "false" deliver.
    for czy_probne in ["0", "false"] {
        let a = post(
            sim.skrytka_url(),
            nadaj_request("/ug_warta/skrytka", czy_probne, PISMO),
        )
        .await;
        assert_eq!(a.kod(), 1, "{}", a.text);
    }
    assert_eq!(sim.pending(&other_office_box()).len(), 2);
}

#[tokio::test]
async fn nadaj_to_an_unknown_box_or_of_a_non_xml_document_is_a_fault() {
    let sim = start().await;
    let a = post(
        sim.skrytka_url(),
        nadaj_request("/nikt/skrytka", "0", PISMO),
    )
    .await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(a.kod(), KOD_NIEZNANA_SKRYTKA);
    let a = post(sim.skrytka_url(), nadaj_request("nie-adres", "0", PISMO)).await;
    assert_eq!(a.kod(), KOD_NIEZNANA_SKRYTKA, "{}", a.text);
    let a = post(
        sim.skrytka_url(),
        nadaj_request("/ug_warta/skrytka", "0", b"%PDF-1.4 not xml"),
    )
    .await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(a.kod(), KOD_DOKUMENT_NIE_XML);
    let kinds: Vec<_> = sim.rejections().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            RejectionKind::UnknownBox,
            RejectionKind::UnknownBox,
            RejectionKind::DocumentNotXml
        ]
    );
    assert!(sim.sent().is_empty());
    assert!(sim.pending(&other_office_box()).is_empty());
}

#[tokio::test]
async fn unsigned_or_foreign_signed_requests_are_refused() {
    let sim = start().await;
    let nadaj_headers = headers(&[
        ("AdresSkrytki", "/ug_warta/skrytka"),
        ("IdentyfikatorPodmiotu", OFFICE),
    ]);
    let a = post(
        sim.skrytka_url(),
        unsigned_envelope(&nadaj_headers, &dokument("pismo.xml", PISMO)),
    )
    .await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(a.kod(), KOD_BRAK_AUTORYZACJI);
    // Signed with ug_warta's certificate, but naming ug_gromadka.
    let a = post(
        sim.skrytka_url(),
        signed_envelope(&nadaj_headers, &dokument("pismo.xml", PISMO), &pki().warta),
    )
    .await;
    assert_eq!(a.kod(), KOD_BRAK_AUTORYZACJI, "{}", a.text);
    let dorecz_headers = headers(&[
        ("IdentyfikatorPodmiotu", OFFICE),
        ("AdresSkrytki", "/jkowalski/domyslna"),
        ("AdresOdpowiedzi", "/ug_gromadka/skrytka"),
        ("IdentyfikatorDokumentu", "DEC-1"),
    ]);
    let a = post(
        sim.doreczyciel_url(),
        unsigned_envelope(
            &dorecz_headers,
            &dokument("decyzja.xml", &signed_decision()),
        ),
    )
    .await;
    assert_eq!(a.kod(), KOD_BRAK_AUTORYZACJI, "{}", a.text);
    // No IdentyfikatorPodmiotu: nobody to authenticate.
    let a = post(
        sim.skrytka_url(),
        signed_envelope(
            &headers(&[("AdresSkrytki", "/ug_warta/skrytka")]),
            &dokument("pismo.xml", PISMO),
            &pki().gmina,
        ),
    )
    .await;
    assert_eq!(a.kod(), KOD_BLEDNE_ZAPYTANIE, "{}", a.text);
    let kinds: Vec<_> = sim.rejections().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            RejectionKind::Unsigned,
            RejectionKind::UnregisteredCertificate,
            RejectionKind::Unsigned,
            RejectionKind::Malformed
        ]
    );
    assert!(sim.sent().is_empty());
    assert!(sim.shipments().is_empty());
    assert!(sim.pending(&other_office_box()).is_empty());
}

#[tokio::test]
async fn dorecz_refuses_unsigned_documents_unknown_recipients_and_foreign_reply_boxes() {
    let sim = start().await;
    let a = post(
        sim.doreczyciel_url(),
        dorecz_request("/jkowalski/domyslna", "/ug_gromadka/skrytka", "0", PISMO),
    )
    .await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(a.kod(), KOD_DOKUMENT_NIEPODPISANY);
    let a = post(
        sim.doreczyciel_url(),
        dorecz_request(
            "/nieznany/domyslna",
            "/ug_gromadka/skrytka",
            "0",
            &signed_decision(),
        ),
    )
    .await;
    assert_eq!(a.kod(), KOD_NIEZNANA_SKRYTKA, "{}", a.text);
    // The reply box exists, but is ug_warta's.
    let a = post(
        sim.doreczyciel_url(),
        dorecz_request(
            "/jkowalski/domyslna",
            "/ug_warta/skrytka",
            "0",
            &signed_decision(),
        ),
    )
    .await;
    assert_eq!(a.kod(), KOD_NIEZGODNY_ADRES, "{}", a.text);
    let kinds: Vec<_> = sim.rejections().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            RejectionKind::DocumentUnsigned,
            RejectionKind::UnknownBox,
            RejectionKind::AddressMismatch
        ]
    );
    assert!(sim.shipments().is_empty());
    // A dry run of a good request: kod 1, no shipment.
    let a = post(
        sim.doreczyciel_url(),
        dorecz_request(
            "/jkowalski/domyslna",
            "/ug_gromadka/skrytka",
            "1",
            &signed_decision(),
        ),
    )
    .await;
    assert_eq!(a.kod(), 1, "{}", a.text);
    assert!(sim.shipments().is_empty());
}

#[tokio::test]
async fn dorecz_then_collect_puts_a_signed_upd_into_the_reply_box() {
    let sim = start().await;
    let decision = signed_decision();
    let zlecenie = dorecz_ok(&sim).await;
    let shipments = sim.shipments();
    assert_eq!(shipments.len(), 1);
    let s = &shipments[0];
    assert_eq!(s.zlecenie_id, zlecenie);
    assert_eq!(s.state, ShipmentState::Waiting);
    assert_eq!(s.recipient, resident_box());
    assert_eq!(s.reply_to, office_box());
    assert_eq!(s.document_id, "DEC-2026-17");
    assert_eq!(s.case_id.as_deref(), Some("FN.3120.1.2026"));
    assert_eq!(s.content, decision);
    // Nothing arrives before the resident collects.
    assert!(sim.pending(&office_box()).is_empty());

    let issued = sim.collect(&zlecenie).expect("first collect");
    assert_eq!(sim.shipments()[0].state, ShipmentState::Collected);
    assert_eq!(sim.shipments()[0].upd_id.as_ref(), Some(&issued.upd_id));

    // The office receives the UPD by WS-Pull.
    let got = pobierz(&sim, &office_box(), &pki().gmina).await;
    assert_eq!(got.kod(), 1, "{}", got.text);
    assert_eq!(got.get("nazwaPliku"), Some("UPD.xml"));
    assert_eq!(got.get("typPliku"), Some("text/xml"));
    assert_eq!(got.get("identyfikator"), Some("ePUAP"));
    let upd = got.zawartosc();
    assert_eq!(upd, issued.xml);
    assert!(verifies_as_epuap(&upd), "{}", String::from_utf8_lossy(&upd));
    let text = String::from_utf8(upd).unwrap();
    assert_eq!(
        text_of(&text, "pos:IdentyfikatorDokumentu"),
        Some("DEC-2026-17")
    );
    assert_eq!(
        text_of(&text, "pos:IdentyfikatorSprawy"),
        Some("FN.3120.1.2026")
    );
    assert_eq!(
        text_of(&text, "pos:IdentyfikatorPoswiadczenia"),
        Some(issued.upd_id.as_str())
    );
    assert!(text.contains("<pos:IdentyfikatorPodmiotu>jkowalski</pos:IdentyfikatorPodmiotu>"));
    assert!(text.contains(">odebrany</pos:InformacjaUzupelniajaca>"));

    // A second collect is refused and delivers nothing more.
    assert_eq!(
        sim.collect(&zlecenie),
        Err(SendSimError::AlreadyFinished {
            zlecenie_id: zlecenie.clone(),
            state: ShipmentState::Collected
        })
    );
    assert!(sim.deem_delivered(&zlecenie).is_err());
    assert!(matches!(
        sim.collect("0"),
        Err(SendSimError::UnknownShipment(_))
    ));
    assert_eq!(sim.pending(&office_box()).len(), 1);
}

#[tokio::test]
async fn deem_delivered_issues_a_substitute_delivery_upd_dated_14_days_later() {
    let sim = start().await;
    let zlecenie = dorecz_ok(&sim).await;
    let issued = sim.deem_delivered(&zlecenie).expect("deem delivered");
    assert_eq!(sim.shipments()[0].state, ShipmentState::DeemedDelivered);
    assert!(verifies_as_epuap(&issued.xml));
    let text = String::from_utf8(issued.xml.clone()).unwrap();
    assert!(
        text.contains(">doreczenie zastepcze</pos:InformacjaUzupelniajaca>"),
        "{text}"
    );
    let accepted = chrono::DateTime::parse_from_rfc3339(&sim.shipments()[0].accepted_at).unwrap();
    let odbior =
        chrono::DateTime::parse_from_rfc3339(text_of(&text, "pos:DataOdbioru").unwrap()).unwrap();
    assert_eq!(odbior - accepted, chrono::Duration::days(14));
    let pending = sim.pending(&office_box());
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].letter.file_name, "UPD.xml");
    assert_eq!(pending[0].letter.content, issued.xml);
    assert!(sim.collect(&zlecenie).is_err());
}

async fn wait_for_upd(sim: &EpuapSimHandle) -> Duration {
    let start = Instant::now();
    while sim.pending(&office_box()).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no UPD was auto-collected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn auto_collect_delivers_the_upd_without_a_hand_collect() {
    let sim = start_with(EpuapSimConfig {
        auto_collect_after: Some(Duration::from_millis(300)),
        ..config()
    })
    .await;
    let zlecenie = dorecz_ok(&sim).await;
    assert_eq!(sim.shipments()[0].state, ShipmentState::Waiting);
    wait_for_upd(&sim).await;
    let s = &sim.shipments()[0];
    assert_eq!(s.zlecenie_id, zlecenie);
    assert_eq!(s.state, ShipmentState::Collected);
    let upd = &sim.pending(&office_box())[0].letter;
    assert_eq!(upd.file_name, "UPD.xml");
    assert!(String::from_utf8_lossy(&upd.content).contains("DEC-2026-17"));
    assert!(sim.collect(&zlecenie).is_err());
}

#[tokio::test]
async fn auto_collect_can_be_switched_on_the_handle() {
    let sim = start().await;
    let manual = dorecz_ok(&sim).await;
    sim.set_auto_collect_after(Some(Duration::from_millis(50)));
    let auto = dorecz_ok(&sim).await;
    wait_for_upd(&sim).await;
    let states: Vec<_> = sim
        .shipments()
        .into_iter()
        .map(|s| (s.zlecenie_id, s.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (manual, ShipmentState::Waiting),
            (auto, ShipmentState::Collected)
        ]
    );
}

#[tokio::test]
async fn injected_faults_cover_nadaj_and_dorecz() {
    let sim = start().await;
    sim.fail_next(PullOperation::Nadaj, PullFault::soap_fault());
    let a = post(
        sim.skrytka_url(),
        nadaj_request("/ug_warta/skrytka", "0", PISMO),
    )
    .await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(a.kod(), KOD_AWARIA);
    assert!(sim.sent().is_empty());
    let a = post(
        sim.skrytka_url(),
        nadaj_request("/ug_warta/skrytka", "0", PISMO),
    )
    .await;
    assert_eq!(a.kod(), 1, "{}", a.text);
    assert_eq!(sim.calls(PullOperation::Nadaj), 2);

    // The shipment is accepted, but its answer is lost.
    sim.fail_next(PullOperation::Dorecz, PullFault::Http500AfterProcessing);
    let a = post(
        sim.doreczyciel_url(),
        dorecz_request(
            "/jkowalski/domyslna",
            "/ug_gromadka/skrytka",
            "0",
            &signed_decision(),
        ),
    )
    .await;
    assert_eq!(a.status, 500);
    assert!(!a.text.contains("Fault"));
    assert_eq!(sim.shipments().len(), 1);
    assert_eq!(sim.calls(PullOperation::Dorecz), 1);
    assert_eq!(sim.calls(PullOperation::Pobierz), 0);
}
