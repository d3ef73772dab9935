//! The Profil Zaufany tpSigning5 simulator, driven by hand-built SOAP requests signed with the
//! `xmlsec1` command-line tool from a WS-Security template (§1.7); signed documents are checked
//! with `xmlsec1 --verify`. No connector code involved. Needs `openssl` and `xmlsec1` on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use base64::Engine as _;
use gsko_sim::pz::{PzDocumentState, PzPerson, PzSim, PzSimConfig, PzSimHandle};

const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const NS_SIGN: &str = "http://signing.ws.comarch.gov";

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

fn anna() -> PzPerson {
    PzPerson {
        first_name: "Anna".into(),
        surname: "Nowak".into(),
        pesel: "02270803624".into(),
        date_of_birth: "2002-07-08".into(),
    }
}

fn jan() -> PzPerson {
    PzPerson {
        first_name: "Jan".into(),
        surname: "Kowalski".into(),
        pesel: "44051401359".into(),
        date_of_birth: "1944-05-14".into(),
    }
}

async fn start() -> PzSimHandle {
    PzSim::start(
        PzSimConfig::new()
            .with_certificate(pki().gmina.cert_der.clone())
            .with_person(anna())
            .with_person(jan()),
    )
    .await
    .unwrap()
}

const LETTER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<wnio:Dokument xmlns:wnio=\"http://crd.gov.pl/wzor/2013/12/12/1410/\">\
<wnio:TrescDokumentu format=\"text/xml\" kodowanie=\"XML\">\
<wnio:Tytul>Wniosek o ulgę w podatku od nieruchomości</wnio:Tytul>\
<wnio:Informacje><wnio:Informacja>Proszę o ulgę.</wnio:Informacja></wnio:Informacje>\
</wnio:TrescDokumentu></wnio:Dokument>";

fn add_payload(doc: &str) -> String {
    format!(
        "<ns1:addDocumentToSigning xmlns:ns1=\"{NS_SIGN}\"><doc xmlns=\"\">{}</doc>\
         <successURL xmlns=\"\">https://gsko.example/pz/ok?x=1</successURL>\
         <failureURL xmlns=\"\">https://gsko.example/pz/anulowano</failureURL>\
         <additionalInfo xmlns=\"\">Wniosek 7/2026</additionalInfo></ns1:addDocumentToSigning>",
        base64::engine::general_purpose::STANDARD.encode(doc)
    )
}

fn get_payload(id: &str) -> String {
    format!("<ns1:getSignedDocument xmlns:ns1=\"{NS_SIGN}\"><id xmlns=\"\">{id}</id></ns1:getSignedDocument>")
}

fn unsigned_envelope(payload: &str) -> Vec<u8> {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\" xmlns:wsu=\"{NS_WSU}\"><soapenv:Header/>\
         <soapenv:Body wsu:Id=\"id-1\">{payload}</soapenv:Body></soapenv:Envelope>"
    )
    .into_bytes()
}

/// Signs like OMB's `Envelope.cs` (§1.7): BST, then the Signature over `#id-<n>`.
fn signed_envelope(payload: &str, who: &Identity) -> Vec<u8> {
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
         </ds:Signature></wsse:Security></soapenv:Header>\
         <soapenv:Body wsu:Id=\"id-{n}\">{payload}</soapenv:Body></soapenv:Envelope>"
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

    fn fault(&self) -> &str {
        assert_eq!(self.status, 500, "{}", self.text);
        assert!(self.text.contains("<soapenv:Fault>"), "{}", self.text);
        self.get("faultstring").unwrap()
    }
}

async fn call(sim: &PzSimHandle, body: Vec<u8>) -> Answer {
    let r = reqwest::Client::new()
        .post(sim.tp_signing_url())
        .header("content-type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    Answer {
        status: r.status().as_u16(),
        text: r.text().await.unwrap(),
    }
}

/// Adds [`LETTER`]; returns (page URL, id).
async fn add(sim: &PzSimHandle) -> (String, String) {
    let answer = call(sim, signed_envelope(&add_payload(LETTER), &pki().gmina)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.text.contains(&format!(
            "<ns1:addDocumentToSigningResponse xmlns:ns1=\"{NS_SIGN}\">"
        )),
        "{}",
        answer.text
    );
    let url = answer
        .get("addDocumentToSigningReturn")
        .unwrap()
        .to_string();
    let id = url.rsplit('/').next().unwrap().to_string();
    (url, id)
}

fn verify_xades(signed: &[u8], cert_der: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("signed.xml");
    let cert = dir.path().join("coi.der");
    std::fs::write(&doc, signed).unwrap();
    std::fs::write(&cert, cert_der).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--enabled-reference-uris")
        .arg("empty,same-doc")
        .arg("--id-attr:Id")
        .arg("http://uri.etsi.org/01903/v1.3.2#:SignedProperties")
        .arg("--pubkey-cert-der")
        .arg(&cert)
        .arg(&doc)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn a_document_added_signed_as_a_person_comes_back_signed_with_her_pesel() {
    let sim = start().await;
    let (url, id) = add(&sim).await;
    assert_eq!(url, sim.page_url(&id));

    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Wniosek o ulgę w podatku od nieruchomości"),
        "{html}"
    );
    assert!(
        html.contains("Anna Nowak") && html.contains("Jan Kowalski"),
        "{html}"
    );

    let before = call(&sim, signed_envelope(&get_payload(&id), &pki().gmina)).await;
    assert!(before.fault().contains("nie został jeszcze podpisany"));

    let signed = sim.sign_as(&id, &anna()).unwrap();
    let answer = call(&sim, signed_envelope(&get_payload(&id), &pki().gmina)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let returned = base64::engine::general_purpose::STANDARD
        .decode(answer.get("getSignedDocumentReturn").unwrap())
        .unwrap();
    assert_eq!(returned, signed);
    let text = String::from_utf8(returned.clone()).unwrap();
    assert!(text.starts_with(&LETTER[..LETTER.len() - "</wnio:Dokument>".len()]));
    let epsig = &text[text.find("EPSignature").expect("an EPSignature claim")..];
    assert!(epsig.contains("02270803624"), "{epsig}");
    assert!(
        epsig.contains("Nowak") && epsig.contains("2002-07-08"),
        "{epsig}"
    );
    assert!(!text.contains("44051401359"));
    verify_xades(&returned, &sim.signing_certificate_der()).unwrap();

    // The verifier is not a rubber stamp: one changed byte of content fails it.
    let tampered = text.replace("Proszę o ulgę.", "Proszę o ulgi.");
    assert!(verify_xades(tampered.as_bytes(), &sim.signing_certificate_der()).is_err());

    assert!(matches!(
        &sim.documents()[0].state,
        PzDocumentState::Signed { by, .. } if by.pesel == "02270803624"
    ));
    assert!(sim.sign_as(&id, &jan()).is_err(), "signed once only");
}

#[tokio::test]
async fn the_page_signs_or_cancels_and_redirects_back() {
    let sim = start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let (url, id) = add(&sim).await;
    let r = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("osoba=1&akcja=podpisz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "https://gsko.example/pz/ok?x=1");
    let answer = call(&sim, signed_envelope(&get_payload(&id), &pki().gmina)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let doc = base64::engine::general_purpose::STANDARD
        .decode(answer.get("getSignedDocumentReturn").unwrap())
        .unwrap();
    assert!(String::from_utf8(doc).unwrap().contains("44051401359"));
    let again = reqwest::get(&url).await.unwrap();
    assert_eq!(again.status().as_u16(), 409);

    let (url, id) = add(&sim).await;
    let r = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("akcja=anuluj")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "https://gsko.example/pz/anulowano");
    let answer = call(&sim, signed_envelope(&get_payload(&id), &pki().gmina)).await;
    assert!(answer.fault().contains("anulowane"));

    let unknown = call(
        &sim,
        signed_envelope(&get_payload("nie-ma-takiego"), &pki().gmina),
    )
    .await;
    assert!(unknown.fault().contains("Nie znaleziono dokumentu"));
}

#[tokio::test]
async fn unsigned_or_foreign_requests_are_faults() {
    let sim = start().await;
    let answer = call(&sim, unsigned_envelope(&add_payload(LETTER))).await;
    assert!(answer.fault().contains("Brak autoryzacji"));
    let answer = call(&sim, signed_envelope(&add_payload(LETTER), &pki().stranger)).await;
    assert!(answer.fault().contains("Brak autoryzacji"));

    // A genuine signature whose Body was changed afterwards.
    let signed = String::from_utf8(signed_envelope(&add_payload(LETTER), &pki().gmina)).unwrap();
    let other = base64::engine::general_purpose::STANDARD.encode(LETTER.replace("ulgę", "zwrot"));
    let start = signed.find("<doc xmlns=\"\">").unwrap() + "<doc xmlns=\"\">".len();
    let end = signed.find("</doc>").unwrap();
    let forged = format!("{}{other}{}", &signed[..start], &signed[end..]);
    let answer = call(&sim, forged.into_bytes()).await;
    assert!(answer.fault().contains("Brak autoryzacji"));

    assert!(sim.documents().is_empty());
    let reasons: Vec<String> = sim.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("wsse:Security"), "{reasons:?}");
    assert!(
        reasons[1].contains("not a registered certificate"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("xmlsec1"), "{reasons:?}");

    // Not XML at all is refused at addDocumentToSigning.
    let answer = call(
        &sim,
        signed_envelope(&add_payload("to nie jest XML"), &pki().gmina),
    )
    .await;
    assert!(answer.fault().contains("nie jest poprawnym dokumentem XML"));
}
