//! The login.gov.pl simulator against a minimal service provider written here: requests signed
//! by `xmlsec1` from this file's own templates, the assertion decrypted by Python's
//! `cryptography` (an implementation independent of the simulator's RustCrypto code), every
//! signature of the answers verified by `xmlsec1` with the IdP's certificate.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use gsko_sim::login::{
    make_sp_credentials, LoginFault, LoginSim, LoginSimConfig, SimIdentity, SpCredentials,
};

const SP_ENTITY_ID: &str = "https://gsko.example/sp";
const ACS_URL: &str = "https://gsko.example/login/acs";
const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const LOA_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";

fn anna() -> SimIdentity {
    SimIdentity::new("02270803624", "Anna", "Nowak", "2002-07-08")
}

fn jan() -> SimIdentity {
    SimIdentity::new("44051401359", "Jan", "Kowalski", "1944-05-14")
}

struct TestSp {
    creds: SpCredentials,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

fn setup() -> (TestSp, LoginSim) {
    let dir = tempfile::tempdir().unwrap();
    let creds = make_sp_credentials(dir.path()).unwrap();
    let config = LoginSimConfig::new(
        SP_ENTITY_ID,
        ACS_URL,
        &creds.signing_cert_pem,
        &creds.encryption_cert_pem,
    )
    .with_resident(anna())
    .with_resident(jan());
    let sim = LoginSim::start(config).unwrap();
    let http = reqwest::Client::new();
    (TestSp { creds, dir, http }, sim)
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn new_id() -> String {
    format!("ID-{}", rand::random::<u64>())
}

// ---------------------------------------------------------------------------------------
// The test SP's XML-DSig: a template of its own, signed and verified by xmlsec1.

fn signature_template(id: &str) -> String {
    format!(
        "<ds:Signature xmlns:ds=\"{NS_DS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>\
         <ds:Reference URI=\"#{id}\"><ds:Transforms>\
         <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
         <ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
         <ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>\
         <ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"
    )
}

fn xmlsec_sign(dir: &Path, key: &Path, cert: &Path, xml: &str, id_element: &str) -> String {
    let input = dir.join("to-sign.xml");
    let output = dir.join("signed.xml");
    std::fs::write(&input, xml).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", key.display(), cert.display()))
        .arg("--id-attr:ID")
        .arg(id_element)
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&output).unwrap()
}

/// Whether the first ds:Signature of `xml` verifies with `cert_pem` as the only key.
fn xmlsec_verifies(dir: &Path, xml: &str, id_element: &str, cert_pem: &str) -> bool {
    let input = dir.join("to-verify.xml");
    let cert = dir.join("trusted.pem");
    std::fs::write(&input, xml).unwrap();
    std::fs::write(&cert, cert_pem).unwrap();
    Command::new("xmlsec1")
        .arg("--verify")
        .arg("--id-attr:ID")
        .arg(id_element)
        .arg("--enabled-key-data")
        .arg("key-name")
        .arg("--pubkey-cert-pem")
        .arg(&cert)
        .arg(&input)
        .output()
        .unwrap()
        .status
        .success()
}

impl TestSp {
    fn sign(&self, xml: &str, id_element: &str) -> String {
        xmlsec_sign(
            self.dir.path(),
            &self.creds.signing_key_path,
            &self.creds.signing_cert_path,
            xml,
            id_element,
        )
    }

    fn authn_request(&self, id: &str, issue_instant: &str, acs: &str, signed: bool) -> String {
        let signature = if signed {
            signature_template(id)
        } else {
            String::new()
        };
        let xml = format!(
            "<saml2p:AuthnRequest xmlns:saml2p=\"{NS_SAMLP}\" xmlns:saml2=\"{NS_SAML}\" \
             AssertionConsumerServiceURL=\"{acs}\" Destination=\"https://symulator.login.gov.pl/login/SingleSignOnService\" \
             ForceAuthn=\"true\" ID=\"{id}\" IssueInstant=\"{issue_instant}\" \
             ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact\" ProviderName=\"gsko\" Version=\"2.0\">\
             <saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>{signature}\
             <saml2p:NameIDPolicy AllowCreate=\"true\" Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\"/>\
             <saml2p:RequestedAuthnContext Comparison=\"minimum\">\
             <saml2:AuthnContextClassRef>{LOA_SUBSTANTIAL}</saml2:AuthnContextClassRef>\
             </saml2p:RequestedAuthnContext></saml2p:AuthnRequest>"
        );
        if signed {
            self.sign(&xml, &format!("{NS_SAMLP}:AuthnRequest"))
        } else {
            xml
        }
    }

    async fn post_authn_request(&self, sim: &LoginSim, xml: &str) -> (u16, String) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        let r = self
            .http
            .post(sim.sso_url())
            .form(&[("SAMLRequest", encoded.as_str()), ("RelayState", "rs-42")])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Logs in as `pesel` through the two pages; returns (artifact, AuthnRequest ID).
    async fn login(&self, sim: &LoginSim, pesel: &str) -> (String, String) {
        let id = new_id();
        let request = self.authn_request(&id, &now(), ACS_URL, true);
        let (status, page) = self.post_authn_request(sim, &request).await;
        assert_eq!(status, 200, "{page}");
        let form = form_of(&page, &format!("id=\"login-{pesel}\""));
        let pending = hidden(form, "pending");
        assert_eq!(hidden(form, "pesel"), pesel);
        let r = self
            .http
            .post(format!("{}/login/choose", sim.base_url()))
            .form(&[("pending", pending.as_str()), ("pesel", pesel)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("<body onload=\"document.forms[0].submit()\">"));
        assert!(page.contains(&format!("<form method=\"post\" action=\"{ACS_URL}\">")));
        assert_eq!(hidden(&page, "RelayState"), "rs-42");
        (hidden(&page, "SAMLart"), id)
    }

    fn artifact_resolve(&self, id: &str, artifact: &str) -> String {
        let resolve = format!(
            "<saml2p:ArtifactResolve xmlns:saml2p=\"{NS_SAMLP}\" xmlns:saml2=\"{NS_SAML}\" ID=\"{id}\" \
             IssueInstant=\"{}\" Version=\"2.0\"><saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>{}\
             <saml2p:Artifact>{artifact}</saml2p:Artifact></saml2p:ArtifactResolve>",
            now(),
            signature_template(id)
        );
        soap(&resolve)
    }

    /// POSTs a signed SOAP request; returns (status, body).
    async fn soap_call(&self, url: &str, envelope: &str, id_element: &str) -> (u16, String) {
        let signed = self.sign(envelope, id_element);
        let r = self
            .http
            .post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(signed)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn resolve(&self, sim: &LoginSim, artifact: &str) -> Resolved {
        let resolve_id = new_id();
        let (status, body) = self
            .soap_call(
                &sim.artifact_resolution_url(),
                &self.artifact_resolve(&resolve_id, artifact),
                &format!("{NS_SAMLP}:ArtifactResolve"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let outer = element(&body, "saml2p:ArtifactResponse").to_string();
        assert_eq!(
            attr(&outer, "saml2p:ArtifactResponse", "InResponseTo"),
            resolve_id
        );
        let response = element(&outer, "saml2p:Response").to_string();
        Resolved {
            soap: body,
            outer,
            response,
        }
    }

    /// Decrypts the EncryptedAssertion with Python's `cryptography`.
    fn decrypt(&self, soap: &str) -> String {
        let input = self.dir.path().join("encrypted.xml");
        std::fs::write(&input, soap).unwrap();
        let out = Command::new("python3")
            .arg("-c")
            .arg(PYTHON_DECRYPT)
            .arg(&input)
            .arg(&self.creds.encryption_key_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn verifies(&self, xml: &str, id_element: &str, cert_pem: &str) -> bool {
        xmlsec_verifies(self.dir.path(), xml, id_element, cert_pem)
    }
}

struct Resolved {
    soap: String,
    /// The ArtifactResponse element.
    outer: String,
    /// The Response element.
    response: String,
}

const PYTHON_DECRYPT: &str = r#"
import base64, sys
import xml.etree.ElementTree as ET
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

ns = {
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xenc11": "http://www.w3.org/2009/xmlenc11#",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "dsig11": "http://www.w3.org/2009/xmldsig11#",
}
data = ET.parse(sys.argv[1]).getroot().find(".//xenc:EncryptedData", ns)
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
encrypted_key = data.find("ds:KeyInfo/xenc:EncryptedKey", ns)
agreement = encrypted_key.find("ds:KeyInfo/xenc:AgreementMethod", ns)
params = agreement.find("xenc11:KeyDerivationMethod/xenc11:ConcatKDFParams", ns)
point = base64.b64decode(agreement.find(".//dsig11:PublicKey", ns).text)
ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
z = key.exchange(ec.ECDH(), ephemeral)
other = b"".join(bytes.fromhex(params.get(a)) for a in ("AlgorithmID", "PartyUInfo", "PartyVInfo"))
kek = ConcatKDFHash(hashes.SHA256(), 32, other).derive(z)
cek = aes_key_unwrap(kek, base64.b64decode(encrypted_key.find("xenc:CipherData/xenc:CipherValue", ns).text))
blob = base64.b64decode(data.find("xenc:CipherData/xenc:CipherValue", ns).text)
sys.stdout.buffer.write(AESGCM(cek).decrypt(blob[:12], blob[12:], None))
"#;

fn soap(body: &str) -> String {
    format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

// ---------------------------------------------------------------------------------------
// Reading HTML and XML by plain string search (the SP here is deliberately naive).

/// The `<form …>…</form>` containing `marker`.
fn form_of<'a>(page: &'a str, marker: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {page}"));
    let start = page[..at].rfind("<form").unwrap();
    let end = at + page[at..].find("</form>").unwrap();
    &page[start..end]
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("<input type=\"hidden\" name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_string()
}

/// The first `<tag …>…</tag>` (or `<tag …/>`).
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    element_opt(xml, tag).unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

fn element_opt<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = [format!("<{tag} "), format!("<{tag}>"), format!("<{tag}/")]
        .iter()
        .filter_map(|m| xml.find(m.as_str()))
        .min()?;
    let rest = &xml[start..];
    let open_end = rest.find('>').unwrap();
    if rest[..open_end].ends_with('/') {
        return Some(&rest[..=open_end]);
    }
    let close = format!("</{tag}>");
    let end = rest.find(&close).unwrap() + close.len();
    Some(&rest[..end])
}

fn text(xml: &str, tag: &str) -> String {
    let el = element(xml, tag);
    let start = el.find('>').unwrap() + 1;
    let end = el.rfind("</").unwrap();
    el[start..end].trim().to_string()
}

fn attr(xml: &str, tag: &str, name: &str) -> String {
    let el = element(xml, tag);
    let open = &el[..el.find('>').unwrap()];
    let marker = format!(" {name}=\"");
    let start = open
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} on <{tag}> in {open}"))
        + marker.len();
    open[start..start + open[start..].find('"').unwrap()].to_string()
}

fn status_code(response: &str) -> String {
    attr(response, "saml2p:StatusCode", "Value")
}

fn parse_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
}

/// Whole minutes from now to `s`, rounded to the nearest.
fn minutes_from_now(s: &str) -> i64 {
    let seconds = (parse_time(s) - chrono::Utc::now()).num_seconds() as f64;
    (seconds / 60.0).round() as i64
}

const ID_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion";
const ID_RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:Response";
const ID_ARTIFACT_RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:ArtifactResponse";

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_resident_logs_in_and_the_sp_gets_a_signed_encrypted_assertion() {
    let (sp, sim) = setup();
    let idp_cert = sim.idp_certificate_pem().to_string();

    // The login page offers both residents.
    let id = new_id();
    let (status, page) = sp
        .post_authn_request(&sim, &sp.authn_request(&id, &now(), ACS_URL, true))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(
        "<button type=\"submit\" id=\"login-02270803624\">Zaloguj jako Anna Nowak</button>"
    ));
    assert!(page.contains(
        "<button type=\"submit\" id=\"login-44051401359\">Zaloguj jako Jan Kowalski</button>"
    ));
    assert!(page.contains("<form method=\"post\" action=\"/login/choose\">"));

    let (artifact, authn_id) = sp.login(&sim, "44051401359").await;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&artifact)
        .unwrap();
    assert_eq!(raw.len(), 44);
    assert_eq!(&raw[..4], &[0, 4, 0, 0], "type 0x0004, endpoint index 0");
    use sha1::Digest as _;
    assert_eq!(&raw[4..24], sha1::Sha1::digest(sim.entity_id()).as_slice());

    let resolved = sp.resolve(&sim, &artifact).await;
    assert_eq!(sim.resolved_count(), 1);
    // ArtifactResponse: signed by the IdP, and not by just any key.
    assert!(attr(&resolved.outer, "saml2p:ArtifactResponse", "ID").starts_with("ECC-ID-"));
    assert_eq!(
        text(&resolved.outer, "saml2:Issuer"),
        "symulator.login.gov.pl"
    );
    assert!(sp.verifies(&resolved.soap, ID_ARTIFACT_RESPONSE, &idp_cert));
    assert!(!sp.verifies(
        &resolved.soap,
        ID_ARTIFACT_RESPONSE,
        &sp.creds.signing_cert_pem
    ));
    // Response: for our AuthnRequest, to our ACS, signed on its own.
    let response = &resolved.response;
    assert!(attr(response, "saml2p:Response", "ID").starts_with("ECC-ID-"));
    assert_eq!(attr(response, "saml2p:Response", "InResponseTo"), authn_id);
    assert_eq!(attr(response, "saml2p:Response", "Destination"), ACS_URL);
    assert_eq!(
        status_code(response),
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
    assert!(sp.verifies(response, ID_RESPONSE, &idp_cert));
    // The KDF parameters name both parties, length-prefixed.
    let params = element(response, "xenc11:ConcatKDFParams");
    assert_eq!(
        attr(params, "xenc11:ConcatKDFParams", "PartyUInfo"),
        format!("00000016{}", hex::encode_upper("symulator.login.gov.pl"))
    );
    assert_eq!(
        attr(params, "xenc11:ConcatKDFParams", "PartyVInfo"),
        format!(
            "{:08X}{}",
            SP_ENTITY_ID.len(),
            hex::encode_upper(SP_ENTITY_ID)
        )
    );

    // The decrypted assertion stands alone and verifies with the IdP's certificate.
    let assertion = sp.decrypt(&resolved.soap);
    assert!(assertion.starts_with("<saml2:Assertion "), "{assertion}");
    assert!(sp.verifies(&assertion, ID_ASSERTION, &idp_cert));
    assert!(attr(&assertion, "saml2:Assertion", "ID").starts_with("ID-"));
    let signature_value = base64::engine::general_purpose::STANDARD
        .decode(text(&assertion, "ds:SignatureValue").replace(['\n', '\r', ' '], ""))
        .unwrap();
    assert_eq!(signature_value.len(), 64, "raw r‖s, not DER");
    assert_eq!(text(&assertion, "saml2:NameID"), "44051401359");
    assert_eq!(
        attr(&assertion, "saml2:SubjectConfirmationData", "InResponseTo"),
        authn_id
    );
    assert_eq!(
        attr(&assertion, "saml2:SubjectConfirmationData", "Recipient"),
        ACS_URL
    );
    assert_eq!(
        minutes_from_now(&attr(
            &assertion,
            "saml2:SubjectConfirmationData",
            "NotOnOrAfter"
        )),
        30
    );
    assert_eq!(text(&assertion, "saml2:Audience"), SP_ENTITY_ID);
    assert_eq!(
        text(&assertion, "saml2:AuthnContextClassRef"),
        LOA_SUBSTANTIAL
    );
    assert_eq!(
        text(&assertion, "saml2:AuthenticatingAuthority"),
        "pz.gov.pl"
    );
    assert!(!attr(&assertion, "saml2:AuthnStatement", "SessionIndex").is_empty());
    for expected in [
        "FriendlyName=\"FirstName\" Name=\"http://eidas.europa.eu/attributes/naturalperson/CurrentGivenName\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\"><saml2:AttributeValue xsi:type=\"naturalperson:CurrentGivenNameType\">Jan<",
        "FriendlyName=\"FamilyName\" Name=\"http://eidas.europa.eu/attributes/naturalperson/CurrentFamilyName\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\"><saml2:AttributeValue xsi:type=\"naturalperson:CurrentFamilyNameType\">Kowalski<",
        "FriendlyName=\"DateOfBirth\" Name=\"http://eidas.europa.eu/attributes/naturalperson/DateOfBirth\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\"><saml2:AttributeValue xsi:type=\"naturalperson:DateOfBirthType\">1944-05-14<",
        "FriendlyName=\"PersonIdentifier\" Name=\"http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\"><saml2:AttributeValue xsi:type=\"naturalperson:PersonIdentifierType\">44051401359<",
    ] {
        assert!(assertion.contains(expected), "{expected} in {assertion}");
    }
}

#[tokio::test]
async fn bad_authn_requests_are_refused_with_a_reason() {
    let (sp, sim) = setup();
    let unsigned = sp.authn_request(&new_id(), &now(), ACS_URL, false);
    let (status, page) = sp.post_authn_request(&sim, &unsigned).await;
    assert_eq!(status, 400);
    assert!(page.contains("not signed"), "{page}");

    // Signed, but by a key the simulator does not know.
    let other_dir = tempfile::tempdir().unwrap();
    let other = make_sp_credentials(other_dir.path()).unwrap();
    let id = new_id();
    let forged = xmlsec_sign(
        other_dir.path(),
        &other.signing_key_path,
        &other.signing_cert_path,
        &sp.authn_request(&id, &now(), ACS_URL, false).replace(
            &format!("<saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>"),
            &format!(
                "<saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>{}",
                signature_template(&id)
            ),
        ),
        &format!("{NS_SAMLP}:AuthnRequest"),
    );
    let (status, page) = sp.post_authn_request(&sim, &forged).await;
    assert_eq!(status, 400);
    assert!(page.contains("xmlsec1"), "{page}");

    let (status, page) = sp
        .post_authn_request(
            &sim,
            &sp.authn_request(&new_id(), &now(), "https://evil.example/acs", true),
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("AssertionConsumerServiceURL"), "{page}");

    let stale = (chrono::Utc::now() - chrono::TimeDelta::minutes(10))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (status, page) = sp
        .post_authn_request(&sim, &sp.authn_request(&new_id(), &stale, ACS_URL, true))
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("IssueInstant"), "{page}");

    // The same request, fresh and signed, passes: the refusals above were for their reason.
    let (status, _) = sp
        .post_authn_request(&sim, &sp.authn_request(&new_id(), &now(), ACS_URL, true))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_artifact_resolves_once_unless_replay_is_allowed() {
    let (sp, sim) = setup();
    let idp_cert = sim.idp_certificate_pem().to_string();
    let (artifact, _) = sp.login(&sim, "02270803624").await;
    let first = sp.resolve(&sim, &artifact).await;
    assert_eq!(
        status_code(&first.response),
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
    let second = sp.resolve(&sim, &artifact).await;
    assert_eq!(
        status_code(&second.response),
        "urn:oasis:names:tc:SAML:2.0:status:Requester"
    );
    assert!(element_opt(&second.response, "saml2:EncryptedAssertion").is_none());
    assert!(sp.verifies(&second.soap, ID_ARTIFACT_RESPONSE, &idp_cert));
    let unknown = sp
        .resolve(&sim, "AAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(
        status_code(&unknown.response),
        "urn:oasis:names:tc:SAML:2.0:status:Requester"
    );
    assert_eq!(sim.resolved_count(), 1);

    sim.set_fault(LoginFault::ReplayableArtifacts);
    let (artifact, _) = sp.login(&sim, "02270803624").await;
    for _ in 0..2 {
        let again = sp.resolve(&sim, &artifact).await;
        assert_eq!(
            status_code(&again.response),
            "urn:oasis:names:tc:SAML:2.0:status:Success"
        );
        assert_eq!(
            text(&sp.decrypt(&again.soap), "saml2:NameID"),
            "02270803624"
        );
    }
    assert_eq!(sim.resolved_count(), 3);
}

#[tokio::test]
async fn an_artifact_resolve_signed_by_another_key_gets_a_soap_fault() {
    let (sp, sim) = setup();
    let (artifact, _) = sp.login(&sim, "02270803624").await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = make_sp_credentials(other_dir.path()).unwrap();
    let signed = xmlsec_sign(
        other_dir.path(),
        &other.signing_key_path,
        &other.signing_cert_path,
        &sp.artifact_resolve(&new_id(), &artifact),
        &format!("{NS_SAMLP}:ArtifactResolve"),
    );
    let r = sp
        .http
        .post(sim.artifact_resolution_url())
        .header("Content-Type", "application/soap+xml; charset=utf-8")
        .body(signed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<faultcode>soap:Client</faultcode>"));
    assert_eq!(sim.resolved_count(), 0);
    // The artifact was not spent by the refused request.
    let resolved = sp.resolve(&sim, &artifact).await;
    assert_eq!(
        status_code(&resolved.response),
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
}

/// Logs in as Anna under `fault` and returns what the SP receives.
async fn login_under(sp: &TestSp, sim: &LoginSim, fault: LoginFault) -> (Resolved, String, String) {
    sim.set_fault(fault);
    let (artifact, authn_id) = sp.login(sim, "02270803624").await;
    let resolved = sp.resolve(sim, &artifact).await;
    let assertion = sp.decrypt(&resolved.soap);
    (resolved, assertion, authn_id)
}

#[tokio::test]
async fn each_fault_changes_what_the_assertion_says() {
    let (sp, sim) = setup();
    let idp = sim.idp_certificate_pem().to_string();

    let (r, a, _) = login_under(&sp, &sim, LoginFault::TamperedAssertion).await;
    assert_eq!(text(&a, "saml2:NameID"), "02270803625");
    assert!(
        !sp.verifies(&a, ID_ASSERTION, &idp),
        "tampered assertion verified"
    );
    assert!(sp.verifies(&r.response, ID_RESPONSE, &idp));

    let (_, a, _) = login_under(&sp, &sim, LoginFault::ExpiredAssertion).await;
    assert!(sp.verifies(&a, ID_ASSERTION, &idp));
    assert_eq!(
        minutes_from_now(&attr(&a, "saml2:Conditions", "NotOnOrAfter")),
        -10
    );
    assert_eq!(
        minutes_from_now(&attr(&a, "saml2:SubjectConfirmationData", "NotOnOrAfter")),
        -10
    );
    assert_eq!(
        minutes_from_now(&attr(&a, "saml2:Assertion", "IssueInstant")),
        -40
    );
    // The signer's certificate was already valid then: only the assertion is out of date.
    let cert = sp.dir.path().join("idp.pem");
    std::fs::write(&cert, &idp).unwrap();
    let dates = Command::new("openssl")
        .args(["x509", "-noout", "-startdate", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&dates.stdout).trim(),
        "notBefore=Jan  1 00:00:00 2020 GMT"
    );

    let (_, a, _) = login_under(&sp, &sim, LoginFault::FutureAssertion).await;
    assert_eq!(
        minutes_from_now(&attr(&a, "saml2:Conditions", "NotBefore")),
        10
    );

    let (_, a, _) = login_under(&sp, &sim, LoginFault::WrongAudience).await;
    assert_eq!(text(&a, "saml2:Audience"), "https://someone-else.example");
    assert!(sp.verifies(&a, ID_ASSERTION, &idp));

    let (r, a, _) = login_under(&sp, &sim, LoginFault::UnsignedResponse).await;
    assert!(!r.soap.contains("<ds:Signature"), "{}", r.soap);
    assert!(!a.contains("<ds:Signature"));
    assert_eq!(text(&a, "saml2:NameID"), "02270803624");

    let (r, a, _) = login_under(&sp, &sim, LoginFault::Sha1Signatures).await;
    for xml in [&r.outer, &r.response, &a] {
        assert_eq!(
            attr(xml, "ds:SignatureMethod", "Algorithm"),
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
        );
        assert_eq!(
            attr(xml, "ds:DigestMethod", "Algorithm"),
            "http://www.w3.org/2000/09/xmldsig#sha1"
        );
    }
    assert!(sp.verifies(&a, ID_ASSERTION, &idp));
    assert!(sp.verifies(&r.soap, ID_ARTIFACT_RESPONSE, &idp));

    let (r, a, authn_id) = login_under(&sp, &sim, LoginFault::WrongInResponseTo).await;
    assert_ne!(
        attr(&r.response, "saml2p:Response", "InResponseTo"),
        authn_id
    );
    assert_ne!(
        attr(&a, "saml2:SubjectConfirmationData", "InResponseTo"),
        authn_id
    );

    let (_, a, _) = login_under(&sp, &sim, LoginFault::LowLoa).await;
    assert_eq!(
        text(&a, "saml2:AuthnContextClassRef"),
        "http://eidas.europa.eu/LoA/low"
    );

    let (_, a, _) = login_under(&sp, &sim, LoginFault::WrongRecipient).await;
    assert_ne!(
        attr(&a, "saml2:SubjectConfirmationData", "Recipient"),
        ACS_URL
    );

    // Back to normal: the same checks pass again.
    let (r, a, authn_id) = login_under(&sp, &sim, LoginFault::None).await;
    assert!(sp.verifies(&a, ID_ASSERTION, &idp));
    assert_eq!(text(&a, "saml2:NameID"), "02270803624");
    assert_eq!(
        attr(&r.response, "saml2p:Response", "InResponseTo"),
        authn_id
    );
    assert_eq!(
        attr(&a, "saml2:SubjectConfirmationData", "Recipient"),
        ACS_URL
    );
    assert_eq!(text(&a, "saml2:Audience"), SP_ENTITY_ID);
    assert_eq!(
        minutes_from_now(&attr(&a, "saml2:Conditions", "NotBefore")),
        0
    );
}

#[tokio::test]
async fn single_logout_records_the_session_index() {
    let (sp, sim) = setup();
    let (_, assertion, _) = login_under(&sp, &sim, LoginFault::None).await;
    let session = attr(&assertion, "saml2:AuthnStatement", "SessionIndex");
    assert!(sim.logged_out().is_empty());
    let id = new_id();
    let request = format!(
        "<saml2p:LogoutRequest xmlns:saml2p=\"{NS_SAMLP}\" xmlns:saml2=\"{NS_SAML}\" ID=\"{id}\" \
         IssueInstant=\"{}\" Version=\"2.0\"><saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>{}\
         <saml2:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">02270803624</saml2:NameID>\
         <saml2p:SessionIndex>{session}</saml2p:SessionIndex></saml2p:LogoutRequest>",
        now(),
        signature_template(&id)
    );
    let (status, body) = sp
        .soap_call(
            &sim.logout_url(),
            &soap(&request),
            &format!("{NS_SAMLP}:LogoutRequest"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(attr(&body, "saml2p:LogoutResponse", "InResponseTo"), id);
    assert_eq!(
        status_code(&body),
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
    assert!(sp.verifies(
        &body,
        "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
        sim.idp_certificate_pem()
    ));
    assert_eq!(sim.logged_out(), vec![session]);

    // An unsigned LogoutRequest logs nobody out.
    let unsigned = request.replace(&signature_template(&id), "");
    let r = sp
        .http
        .post(sim.logout_url())
        .header("Content-Type", "text/xml")
        .body(soap(&unsigned))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(sim.logged_out().len(), 1);
}
