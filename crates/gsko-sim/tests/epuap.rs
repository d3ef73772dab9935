//! The ePUAP WS-Pull simulator, driven by hand-built SOAP requests signed with the `xmlsec1`
//! command-line tool from a WS-Security template (§1.7, §1.8): no connector code involved.
//! Needs `openssl` and `xmlsec1` on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use gsko_model::Pesel;
use gsko_sim::epuap::{
    generate_letter, skrot_of, BoxAddress, EpuapSim, EpuapSimConfig, EpuapSimHandle, LetterSpec,
    PullFault, PullOperation, RejectionKind, SimLetter, KOD_AWARIA, KOD_BLEDNE_ZAPYTANIE,
    KOD_BRAK_AUTORYZACJI, KOD_NIEZGODNY_ADRES, KOD_NIEZGODNY_SKROT, KOD_NIEZNANA_SKRYTKA, NS_WNIO,
};
use gsko_sim::SimDate;

const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";

/// A key pair and self-signed certificate made by `openssl`.
struct Identity {
    key_pem: PathBuf,
    cert_der: Vec<u8>,
}

struct Pki {
    _dir: tempfile::TempDir,
    gmina: Identity,
    stranger: Identity,
}

fn make_identity(dir: &Path, name: &str) -> Identity {
    let key = dir.join(format!("{name}.key.pem"));
    let cert = dir.join(format!("{name}.cert.pem"));
    let der = dir.join(format!("{name}.cert.der"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .arg("-subj")
        .arg(format!("/CN={name}/O=Test"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ok = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(&der)
        .output()
        .unwrap();
    assert!(ok.status.success());
    Identity {
        key_pem: key,
        cert_der: std::fs::read(der).unwrap(),
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let gmina = make_identity(dir.path(), "gmina");
        let stranger = make_identity(dir.path(), "stranger");
        Pki {
            _dir: dir,
            gmina,
            stranger,
        }
    })
}

/// The request's Body payload: a `ob:Zapytanie…` element with unqualified children.
fn payload(op: &str, podmiot: &str, nazwa: &str, adres: &str, skrot: Option<&str>) -> String {
    let skrot = skrot
        .map(|s| format!("<skrot xmlns=\"\">{s}</skrot>"))
        .unwrap_or_default();
    format!(
        "<{op} xmlns=\"http://wsdl.epuap.gov.pl/obiekty/\"><podmiot xmlns=\"\">{podmiot}</podmiot>\
         <nazwaSkrytki xmlns=\"\">{nazwa}</nazwaSkrytki><adresSkrytki xmlns=\"\">{adres}</adresSkrytki>{skrot}</{op}>"
    )
}

fn unsigned_envelope(body_payload: &str) -> Vec<u8> {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\" xmlns:wsu=\"{NS_WSU}\"><soapenv:Header/>\
         <soapenv:Body wsu:Id=\"id-1\">{body_payload}</soapenv:Body></soapenv:Envelope>"
    )
    .into_bytes()
}

/// Signs like OMB's `Envelope.cs` (§1.7): BST, then the Signature over `#id-<n>`.
fn signed_envelope(body_payload: &str, who: &Identity) -> Vec<u8> {
    signed_envelope_with(body_payload, who, false)
}

/// With `timestamp`, like the Sejm CXF client: a signed `wsu:Timestamp` as well.
fn signed_envelope_with(body_payload: &str, who: &Identity, timestamp: bool) -> Vec<u8> {
    static N: AtomicUsize = AtomicUsize::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&who.cert_der);
    let (ts, ts_ref) = if timestamp {
        (
            format!(
                "<wsu:Timestamp wsu:Id=\"TS-{n}\"><wsu:Created>2026-05-10T10:00:00.000Z</wsu:Created>\
                 <wsu:Expires>2026-05-10T10:05:00.000Z</wsu:Expires></wsu:Timestamp>"
            ),
            format!(
                "<ds:Reference URI=\"#TS-{n}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
                 <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue/></ds:Reference>"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    let template = format!(
        "<soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\" xmlns:wsse=\"{NS_WSSE}\" xmlns:wsu=\"{NS_WSU}\">\
         <soapenv:Header><wsse:Security>\
         <wsse:BinarySecurityToken wsu:Id=\"X509-{n}\" EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\" ValueType=\"{X509V3}\">{b64}</wsse:BinarySecurityToken>\
         <ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
         <ds:Reference URI=\"#id-{n}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue/></ds:Reference>\
         {ts_ref}</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><wsse:SecurityTokenReference>\
         <wsse:Reference URI=\"#X509-{n}\" ValueType=\"{X509V3}\"/></wsse:SecurityTokenReference></ds:KeyInfo>\
         </ds:Signature>{ts}</wsse:Security></soapenv:Header>\
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
        .arg("--id-attr:Id")
        .arg(format!("{NS_WSU}:Timestamp"))
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

fn signed(op: &str, b: &BoxAddress, skrot: Option<&str>) -> Vec<u8> {
    signed_envelope(
        &payload(op, &b.podmiot, &b.nazwa, &b.adres(), skrot),
        &pki().gmina,
    )
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

    /// `dokument/zawartosc`, decoded.
    fn zawartosc(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(self.get("zawartosc").expect("zawartosc"))
            .unwrap()
    }
}

async fn post(sim: &EpuapSimHandle, body: Vec<u8>) -> Answer {
    let r = reqwest::Client::new()
        .post(sim.pull_url())
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

async fn oczekujace(sim: &EpuapSimHandle, b: &BoxAddress) -> i64 {
    let a = post(sim, signed("ZapytaniePullOczekujace", b, None)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.kod(), 1);
    a.get("oczekujace").unwrap().parse().unwrap()
}

async fn pobierz(sim: &EpuapSimHandle, b: &BoxAddress) -> Answer {
    post(sim, signed("ZapytaniePullPobierz", b, None)).await
}

async fn potwierdz(sim: &EpuapSimHandle, b: &BoxAddress, skrot: &str) -> Answer {
    post(sim, signed("ZapytaniePullPotwierdz", b, Some(skrot))).await
}

fn box_a() -> BoxAddress {
    BoxAddress::new("ug_gromadka", "skrytka")
}

fn box_b() -> BoxAddress {
    BoxAddress::new("ug_gromadka", "podatki")
}

async fn start() -> EpuapSimHandle {
    let config = EpuapSimConfig::new()
        .with_box("ug_gromadka", "skrytka")
        .with_box("ug_gromadka", "podatki")
        .with_certificate("ug_gromadka", pki().gmina.cert_der.clone())
        // The stranger's certificate is registered, but for another podmiot.
        .with_box("ug_warta", "skrytka")
        .with_certificate("ug_warta", pki().stranger.cert_der.clone());
    EpuapSim::start(config).await.expect("xmlsec1 installed")
}

fn letter(seed: u64) -> SimLetter {
    let spec = LetterSpec::new(
        "Urząd Gminy Gromadka",
        "Gromadka",
        "59-706",
        SimDate::new(2026, 5, 10).unwrap(),
    );
    generate_letter(seed, &spec).letter
}

#[tokio::test]
async fn fifo_order_over_three_letters_in_two_boxes() {
    let sim = start().await;
    let (a1, b1, a2) = (letter(1), letter(2), letter(3));
    sim.deposit(&box_a(), a1.clone()).unwrap();
    sim.deposit(&box_b(), b1.clone()).unwrap();
    sim.deposit(&box_a(), a2.clone()).unwrap();
    assert_eq!(oczekujace(&sim, &box_a()).await, 2);
    assert_eq!(oczekujace(&sim, &box_b()).await, 1);

    for (b, expected) in [(box_a(), &a1), (box_b(), &b1), (box_a(), &a2)] {
        let got = pobierz(&sim, &b).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.kod(), 1);
        assert!(got.text.contains(
            "<p140:OdpowiedzPullPobierz xmlns:p140=\"http://wsdl.epuap.gov.pl/obiekty/\"><status>"
        ));
        assert_eq!(got.zawartosc(), expected.content);
        assert_eq!(got.get("adresSkrytki"), Some(b.adres().as_str()));
        assert_eq!(got.get("nazwaSkrytki"), Some(b.nazwa.as_str()));
        assert_eq!(got.get("nazwaPliku"), Some("Pismo_ogolne.xml"));
        assert_eq!(got.get("pesel"), expected.sender.pesel.as_deref());
        assert_eq!(got.get("dataNadania"), Some(expected.data_nadania.as_str()));
        let extra = base64::engine::general_purpose::STANDARD
            .decode(got.get("daneDodatkowe").unwrap())
            .unwrap();
        let extra = String::from_utf8(extra).unwrap();
        assert!(extra.contains(&format!(
            "<IdentyfikatorDokumentu>{}</IdentyfikatorDokumentu>",
            expected.document_id
        )));
        let confirmed = potwierdz(&sim, &b, &skrot_of(&got.zawartosc())).await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.text);
        assert_eq!(confirmed.kod(), 1);
    }
    assert_eq!(oczekujace(&sim, &box_a()).await, 0);
    let ids: Vec<String> = sim
        .confirmed(&box_a())
        .into_iter()
        .map(|c| c.document_id)
        .collect();
    assert_eq!(ids, vec![a1.document_id.clone(), a2.document_id.clone()]);
    assert_eq!(sim.confirmed(&box_b())[0].skrot, b1.skrot());
    assert!(sim.rejections().is_empty(), "{:?}", sim.rejections());
    assert_eq!(sim.signed_requests(), 2 + 3 * 2 + 1);
}

#[tokio::test]
async fn pobierz_does_not_remove() {
    let sim = start().await;
    let l = letter(7);
    sim.deposit(&box_a(), l.clone()).unwrap();
    let first = pobierz(&sim, &box_a()).await;
    let second = pobierz(&sim, &box_a()).await;
    assert_eq!(first.zawartosc(), l.content);
    assert_eq!(second.zawartosc(), l.content);
    assert_eq!(oczekujace(&sim, &box_a()).await, 1);
    assert_eq!(sim.pending(&box_a()).len(), 1);
    assert!(sim.confirmed(&box_a()).is_empty());
}

#[tokio::test]
async fn confirm_with_wrong_digest_faults_and_keeps_then_right_digest_removes() {
    let sim = start().await;
    let l = letter(8);
    let l2 = letter(9);
    sim.deposit(&box_a(), l.clone()).unwrap();
    sim.deposit(&box_a(), l2.clone()).unwrap();
    // The digest of the second letter is not the head's.
    let wrong = potwierdz(&sim, &box_a(), &l2.skrot()).await;
    assert!(wrong.is_fault(), "{}", wrong.text);
    assert!(wrong
        .text
        .contains("<ob:Wyjatek xmlns:ob=\"http://wsdl.epuap.gov.pl/obiekty/\"><kod>"));
    assert_eq!(wrong.kod(), KOD_NIEZGODNY_SKROT);
    // Hex instead of Base64 is wrong too.
    let hex: String = l.skrot().bytes().map(|b| format!("{b:02x}")).collect();
    assert!(potwierdz(&sim, &box_a(), &hex).await.is_fault());
    assert_eq!(sim.pending(&box_a()).len(), 2);
    assert!(sim.confirmed(&box_a()).is_empty());
    let kinds: Vec<RejectionKind> = sim.rejections().iter().map(|r| r.kind).collect();
    assert_eq!(kinds, vec![RejectionKind::WrongDigest; 2]);

    let ok = potwierdz(&sim, &box_a(), &l.skrot()).await;
    assert_eq!((ok.status, ok.kod()), (200, 1), "{}", ok.text);
    assert_eq!(sim.pending(&box_a())[0].letter, l2);
    assert_eq!(sim.confirmed(&box_a())[0].document_id, l.document_id);
}

#[tokio::test]
async fn empty_box_answers_kod_0_and_confirming_nothing_faults() {
    let sim = start().await;
    let a = pobierz(&sim, &box_a()).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.kod(), 0);
    assert!(a.get("dokument").is_none());
    assert_eq!(oczekujace(&sim, &box_a()).await, 0);
    let c = potwierdz(&sim, &box_a(), &skrot_of(b"x")).await;
    assert!(c.is_fault());
    assert_eq!(sim.rejections()[0].kind, RejectionKind::NothingToConfirm);
}

#[tokio::test]
async fn unknown_box_and_disagreeing_address_fault() {
    let sim = start().await;
    let unknown = BoxAddress::new("ug_gromadka", "nie_ma");
    let a = pobierz(&sim, &unknown).await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(a.kod(), KOD_NIEZNANA_SKRYTKA);
    // adresSkrytki naming another box than podmiot + nazwaSkrytki.
    let body = payload(
        "ZapytaniePullPobierz",
        "ug_gromadka",
        "skrytka",
        "/ug_gromadka/podatki",
        None,
    );
    let a = post(&sim, signed_envelope(&body, &pki().gmina)).await;
    assert!(a.is_fault());
    assert_eq!(a.kod(), KOD_NIEZGODNY_ADRES);
    let kinds: Vec<RejectionKind> = sim.rejections().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![RejectionKind::UnknownBox, RejectionKind::AddressMismatch]
    );
}

#[tokio::test]
async fn qualified_children_are_refused() {
    let sim = start().await;
    sim.deposit(&box_a(), letter(11)).unwrap();
    let body = "<ob:ZapytaniePullPobierz xmlns:ob=\"http://wsdl.epuap.gov.pl/obiekty/\">\
        <ob:podmiot>ug_gromadka</ob:podmiot><ob:nazwaSkrytki>skrytka</ob:nazwaSkrytki>\
        <ob:adresSkrytki>/ug_gromadka/skrytka</ob:adresSkrytki></ob:ZapytaniePullPobierz>";
    let a = post(&sim, signed_envelope(body, &pki().gmina)).await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(a.kod(), KOD_BLEDNE_ZAPYTANIE);
    assert_eq!(sim.rejections()[0].kind, RejectionKind::Malformed);
}

#[tokio::test]
async fn unsigned_and_foreign_signed_requests_are_rejected() {
    let sim = start().await;
    sim.deposit(&box_a(), letter(12)).unwrap();
    let b = box_a();
    let body = payload(
        "ZapytaniePullPobierz",
        &b.podmiot,
        &b.nazwa,
        &b.adres(),
        None,
    );

    let unsigned = post(&sim, unsigned_envelope(&body)).await;
    assert!(unsigned.is_fault(), "{}", unsigned.text);
    assert_eq!(unsigned.kod(), KOD_BRAK_AUTORYZACJI);

    // A valid signature, but by a certificate registered for another podmiot.
    let foreign = post(&sim, signed_envelope(&body, &pki().stranger)).await;
    assert!(foreign.is_fault());
    assert_eq!(foreign.kod(), KOD_BRAK_AUTORYZACJI);

    // The registered certificate in the token, but signed with another key.
    let impostor = Identity {
        key_pem: pki().stranger.key_pem.clone(),
        cert_der: pki().gmina.cert_der.clone(),
    };
    let forged = post(&sim, signed_envelope(&body, &impostor)).await;
    assert!(forged.is_fault());
    assert_eq!(forged.kod(), KOD_BRAK_AUTORYZACJI);

    // Signed by the right certificate, then the Body changed.
    let tampered = String::from_utf8(signed("ZapytaniePullPobierz", &b, None))
        .unwrap()
        .replace(">skrytka</nazwaSkrytki>", ">podatki</nazwaSkrytki>")
        .replace(">/ug_gromadka/skrytka<", ">/ug_gromadka/podatki<");
    let tampered = post(&sim, tampered.into_bytes()).await;
    assert!(tampered.is_fault());
    assert_eq!(tampered.kod(), KOD_BRAK_AUTORYZACJI);

    // The stranger's own box accepts the stranger (the certificate itself is fine).
    let w = BoxAddress::new("ug_warta", "skrytka");
    let own = post(
        &sim,
        signed_envelope(
            &payload(
                "ZapytaniePullPobierz",
                &w.podmiot,
                &w.nazwa,
                &w.adres(),
                None,
            ),
            &pki().stranger,
        ),
    )
    .await;
    assert_eq!((own.status, own.kod()), (200, 0), "{}", own.text);

    let kinds: Vec<RejectionKind> = sim.rejections().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            RejectionKind::Unsigned,
            RejectionKind::UnregisteredCertificate,
            RejectionKind::InvalidSignature,
            RejectionKind::InvalidSignature
        ]
    );
    assert!(kinds.iter().all(|k| k.is_authentication()));
    assert_eq!(sim.signed_requests(), 1);
    assert_eq!(sim.pending(&b).len(), 1);
}

#[tokio::test]
async fn signature_not_covering_the_body_is_rejected() {
    let sim = start().await;
    let b = box_a();
    // Re-point the Body's Id: the Reference no longer names the Body that is read.
    let signed = String::from_utf8(signed("ZapytaniePullOczekujace", &b, None)).unwrap();
    let moved = signed.replacen(
        "<soapenv:Body wsu:Id=\"id-",
        "<soapenv:Body wsu:Id=\"other-",
        1,
    );
    let a = post(&sim, moved.into_bytes()).await;
    assert!(a.is_fault(), "{}", a.text);
    assert_eq!(sim.rejections()[0].kind, RejectionKind::InvalidSignature);
    assert!(sim.rejections()[0]
        .detail
        .contains("no Reference to the Body"));
}

#[tokio::test]
async fn injected_http_500_and_soap_fault_happen_once_then_normal() {
    let sim = start().await;
    let l = letter(21);
    sim.deposit(&box_a(), l.clone()).unwrap();

    sim.fail_next(PullOperation::Pobierz, PullFault::Http500);
    let a = pobierz(&sim, &box_a()).await;
    assert_eq!(a.status, 500);
    assert!(!a.text.contains("Envelope"));
    let a = pobierz(&sim, &box_a()).await;
    assert_eq!((a.status, a.kod()), (200, 1));

    sim.fail_next(PullOperation::Oczekujace, PullFault::soap_fault());
    let a = post(&sim, signed("ZapytaniePullOczekujace", &box_a(), None)).await;
    assert!(a.is_fault());
    assert!(a.text.contains("<faultcode>soapenv:Server</faultcode>"));
    assert_eq!(a.kod(), KOD_AWARIA);
    assert_eq!(oczekujace(&sim, &box_a()).await, 1);

    assert_eq!(sim.calls(PullOperation::Pobierz), 2);
    assert_eq!(sim.calls(PullOperation::Oczekujace), 2);
    // Injected faults are not rejections.
    assert!(sim.rejections().is_empty());
}

#[tokio::test]
async fn injected_delay_happens_once() {
    let sim = start().await;
    sim.deposit(&box_a(), letter(22)).unwrap();
    sim.fail_next(
        PullOperation::Pobierz,
        PullFault::Delay(Duration::from_millis(400)),
    );
    let t = Instant::now();
    let slow = pobierz(&sim, &box_a()).await;
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(slow.kod(), 1);
    // A client that gives up earlier sees a timeout.
    sim.fail_next(
        PullOperation::Pobierz,
        PullFault::Delay(Duration::from_millis(2000)),
    );
    let timed_out = reqwest::Client::new()
        .post(sim.pull_url())
        .header("Content-Type", "text/xml")
        .body(signed("ZapytaniePullPobierz", &box_a(), None))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    let t = Instant::now();
    let normal = pobierz(&sim, &box_a()).await;
    assert_eq!(normal.kod(), 1);
    assert!(t.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn corrupted_content_has_a_wrong_digest_and_confirms_nothing() {
    let sim = start().await;
    let l = letter(23);
    sim.deposit(&box_a(), l.clone()).unwrap();
    sim.fail_next(PullOperation::Pobierz, PullFault::CorruptContent);
    let bad = pobierz(&sim, &box_a()).await;
    assert_eq!(bad.kod(), 1);
    assert_ne!(bad.zawartosc(), l.content);
    let refused = potwierdz(&sim, &box_a(), &skrot_of(&bad.zawartosc())).await;
    assert!(refused.is_fault());
    assert_eq!(sim.pending(&box_a()).len(), 1);
    // Fetching again gives the genuine letter, which confirms.
    let good = pobierz(&sim, &box_a()).await;
    assert_eq!(good.zawartosc(), l.content);
    let ok = potwierdz(&sim, &box_a(), &skrot_of(&good.zawartosc())).await;
    assert_eq!(ok.kod(), 1);
    assert_eq!(sim.confirmed(&box_a()).len(), 1);
}

#[tokio::test]
async fn confirmation_whose_answer_is_lost_still_removed_the_letter() {
    let sim = start().await;
    let (l1, l2) = (letter(31), letter(32));
    sim.deposit(&box_a(), l1.clone()).unwrap();
    sim.deposit(&box_a(), l2.clone()).unwrap();
    sim.fail_next(PullOperation::Potwierdz, PullFault::Http500AfterProcessing);
    let lost = potwierdz(&sim, &box_a(), &l1.skrot()).await;
    assert_eq!(lost.status, 500);
    assert_eq!(sim.confirmed(&box_a()).len(), 1);
    // The retry of the same confirmation meets the next letter: refused, l2 kept.
    let retry = potwierdz(&sim, &box_a(), &l1.skrot()).await;
    assert!(retry.is_fault());
    assert_eq!(sim.pending(&box_a())[0].letter, l2);
    assert_eq!(sim.confirmed(&box_a()).len(), 1);
}

#[test]
fn generated_letters_are_deterministic_crd_documents() {
    let spec = LetterSpec {
        attachments: 3,
        addressee_regon: Some("230821351".into()),
        ..LetterSpec::new(
            "Urząd Gminy Gromadka",
            "Gromadka",
            "59-706",
            SimDate::new(2026, 1, 14).unwrap(),
        )
    };
    let a = generate_letter(42, &spec);
    let b = generate_letter(42, &spec);
    let c = generate_letter(43, &spec);
    assert_eq!(a, b);
    assert_ne!(a.xml, c.xml);
    assert_eq!(a.letter.content, a.xml);
    assert!(a.letter.data_nadania.starts_with("2026-01-14T"));
    assert!(a.letter.data_nadania.ends_with("+01:00"));
    Pesel::parse(&a.pesel).expect("a valid PESEL");
    assert_eq!(a.attachments.len(), 3);

    // Walk the XML with namespace resolution: root, title, sender, attachments.
    let xml = String::from_utf8(a.xml.clone()).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?xml-stylesheet"));
    let mut reader = quick_xml::NsReader::from_str(&xml);
    let mut path: Vec<(String, String)> = Vec::new();
    let mut seen = Vec::new();
    let mut attachments = Vec::new();
    let mut current_attachment: Option<(String, String)> = None;
    loop {
        let (ns, ev) = reader.read_resolved_event().unwrap();
        let ns = match ns {
            quick_xml::name::ResolveResult::Bound(n) => String::from_utf8(n.0.to_vec()).unwrap(),
            _ => String::new(),
        };
        match ev {
            quick_xml::events::Event::Start(e) => {
                let local = String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
                if local == "Zalacznik" {
                    let attr = |n: &str| {
                        e.try_get_attribute(n)
                            .unwrap()
                            .unwrap()
                            .unescape_value()
                            .unwrap()
                            .into_owned()
                    };
                    assert_eq!(attr("kodowanie"), "base64");
                    current_attachment = Some((attr("nazwaPliku"), attr("format")));
                }
                path.push((ns, local));
            }
            quick_xml::events::Event::Text(t) if !path.is_empty() => {
                let text = t.unescape().unwrap().into_owned();
                let here: Vec<&str> = path.iter().map(|(_, l)| l.as_str()).collect();
                seen.push((here.join("/"), path.last().unwrap().0.clone(), text.clone()));
                if here.last() == Some(&"DaneZalacznika") {
                    let (name, mime) = current_attachment.clone().unwrap();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .unwrap();
                    attachments.push((name, mime, bytes));
                }
            }
            quick_xml::events::Event::End(_) => {
                path.pop();
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    let find = |p: &str| {
        seen.iter()
            .find(|(path, _, _)| path == p)
            .unwrap_or_else(|| panic!("no {p}"))
    };
    let (_, ns, title) = find("Dokument/TrescDokumentu/Tytul");
    assert_eq!(ns, NS_WNIO);
    assert_eq!(title, &a.title);
    let (_, ns, pesel) = find("Dokument/DaneDokumentu/Nadawcy/Podmiot/Osoba/IdOsoby/PESEL");
    assert_eq!(ns, "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/");
    assert_eq!(pesel, &a.pesel);
    let (_, ns, _) = find("Dokument/DaneDokumentu/Adresaci/Podmiot/Instytucja/NazwaInstytucji");
    assert_eq!(ns, "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/");
    let (_, _, body) = find("Dokument/TrescDokumentu/Informacje/Informacja");
    assert_eq!(body, &a.body);
    let expected: Vec<(String, String, Vec<u8>)> = a
        .attachments
        .iter()
        .map(|x| (x.file_name.clone(), x.mime_type.clone(), x.content.clone()))
        .collect();
    assert_eq!(attachments, expected);
}

#[tokio::test]
async fn signed_timestamp_is_accepted_and_soap_12_content_type_refused() {
    let sim = start().await;
    let b = box_a();
    let body = payload(
        "ZapytaniePullOczekujace",
        &b.podmiot,
        &b.nazwa,
        &b.adres(),
        None,
    );
    let with_ts = signed_envelope_with(&body, &pki().gmina, true);
    assert!(String::from_utf8_lossy(&with_ts).contains("<ds:Reference URI=\"#TS-"));
    let a = post(&sim, with_ts).await;
    assert_eq!((a.status, a.kod()), (200, 1), "{}", a.text);
    assert_eq!(a.get("oczekujace"), Some("0"));

    let r = reqwest::Client::new()
        .post(sim.pull_url())
        .header("Content-Type", "application/soap+xml; charset=utf-8")
        .body(signed("ZapytaniePullOczekujace", &b, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(sim.rejections().len(), 1);
    assert_eq!(sim.rejections()[0].kind, RejectionKind::Malformed);
    assert_eq!(sim.signed_requests(), 1);
}
