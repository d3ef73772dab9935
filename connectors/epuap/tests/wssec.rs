//! WS-Security layer of the ePUAP connector: the §1.7 layout, interoperability with an
//! independent implementation (the xmlsec1 command-line tool, libxmlsec1 over OpenSSL) in
//! both directions, and refusal of tampered, wrapped, weak and untrusted messages.
//!
//! Test certificates and keys are generated per run with the `openssl` command into a
//! temporary directory; nothing secret is committed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use gsko_epuap::wssec::{
    envelope, sign_envelope, verify_envelope, SigningIdentity, TrustPolicy, WsSecError, DSIG_NS,
    EXC_C14N, RSA_SHA256, SHA256, SOAP11_NS, WSSE_NS, WSU_NS,
};

const OBIEKTY_NS: &str = "http://wsdl.epuap.gov.pl/obiekty/";
const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
const X509_V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// §1.8: pobierzNastepny, children unqualified.
const PULL_POBIERZ: &str = concat!(
    r#"<ZapytaniePullPobierz xmlns="http://wsdl.epuap.gov.pl/obiekty/">"#,
    r#"<podmiot xmlns="">vulcandpo</podmiot>"#,
    r#"<nazwaSkrytki xmlns="">testowa</nazwaSkrytki>"#,
    r#"<adresSkrytki xmlns="">/vulcandpo/testowa</adresSkrytki>"#,
    r#"</ZapytaniePullPobierz>"#
);

// ------------------------------------------------------------------------------------------
// Test keys and tools

struct TestCert {
    _dir: tempfile::TempDir,
    cert_path: PathBuf,
    key_path: PathBuf,
    cert_pem: String,
    key_pem: String,
}

impl TestCert {
    fn generate(cn: &str, days: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
            .arg("-keyout")
            .arg(&key_path)
            .arg("-out")
            .arg(&cert_path)
            .args(["-days", &days.to_string(), "-subj", &format!("/CN={cn}")])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `openssl` ({e}) to make test certificates: install it \
                     (Debian: apt-get install openssl; scripts/ensure-services.sh brings it \
                     with its packages)"
                )
            });
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cert_pem = std::fs::read_to_string(&cert_path).unwrap();
        let key_pem = std::fs::read_to_string(&key_path).unwrap();
        Self {
            _dir: dir,
            cert_path,
            key_path,
            cert_pem,
            key_pem,
        }
    }

    fn identity(&self) -> SigningIdentity {
        SigningIdentity::from_pem(&self.cert_pem, &self.key_pem).expect("identity")
    }

    fn der(&self) -> Vec<u8> {
        self.identity().certificate_der().to_vec()
    }

    fn base64(&self) -> String {
        self.cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect()
    }

    fn pinned(&self) -> TrustPolicy {
        TrustPolicy::pinned([self.der()])
    }
}

/// The office's system certificate.
fn office() -> &'static TestCert {
    static C: OnceLock<TestCert> = OnceLock::new();
    C.get_or_init(|| TestCert::generate("GSKO test office (test only)", 30))
}

/// Somebody else.
fn stranger() -> &'static TestCert {
    static C: OnceLock<TestCert> = OnceLock::new();
    C.get_or_init(|| TestCert::generate("stranger (test only)", 30))
}

/// The independent implementation; its absence is a failure, not a skip.
fn xmlsec1() -> Command {
    match Command::new("xmlsec1").arg("--version").output() {
        Ok(out) if out.status.success() => Command::new("xmlsec1"),
        _ => panic!(
            "the `xmlsec1` command (Debian package xmlsec1) is not installed; these tests use \
             it as an independent XML-signature implementation: run scripts/ensure-services.sh"
        ),
    }
}

/// xmlsec1 arguments that make `wsu:Id` an ID on the Body and on the token.
fn id_attr_args(cmd: &mut Command) -> &mut Command {
    cmd.arg("--id-attr:Id")
        .arg(format!("{SOAP11_NS}:Body"))
        .arg("--id-attr:Id")
        .arg(format!("{WSSE_NS}:BinarySecurityToken"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn signed_pull() -> String {
    sign_envelope(&envelope(PULL_POBIERZ, &[]), &office().identity()).expect("sign")
}

/// The hand-written template in tests/fixtures, filled in.
fn template(cert: &TestCert, sig_alg: &str, digest_alg: &str) -> String {
    include_str!("fixtures/xmlsec1-template-pobierz.xml")
        .replace("@CERT@", &cert.base64())
        .replace("@SIGALG@", sig_alg)
        .replace("@DIGALG@", digest_alg)
}

/// Signs the hand-written template in tests/fixtures with `xmlsec1 --sign`.
fn xmlsec1_signed(cert: &TestCert, sig_alg: &str, digest_alg: &str) -> String {
    xmlsec1_sign(cert, &template(cert, sig_alg, digest_alg), &[])
}

/// `xmlsec1 --sign` over `template`; `more_id_nodes` are further `ns:local` elements whose
/// `Id` attribute is an ID.
fn xmlsec1_sign(cert: &TestCert, template: &str, more_id_nodes: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let tmpl = write(dir.path(), "template.xml", template);
    let out_path = dir.path().join("signed.xml");
    let mut cmd = xmlsec1();
    cmd.arg("--sign").arg("--privkey-pem").arg(&cert.key_path);
    id_attr_args(&mut cmd);
    for node in more_id_nodes {
        cmd.arg("--id-attr:Id").arg(node);
    }
    let out = cmd
        .arg("--output")
        .arg(&out_path)
        .arg(&tmpl)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmlsec1 --sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(out_path).unwrap()
}

fn element_children<'a, 'i>(node: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    node.children().filter(|n| n.is_element()).collect()
}

fn assert_name(node: roxmltree::Node<'_, '_>, ns: &str, local: &str) {
    assert_eq!(
        (node.tag_name().namespace(), node.tag_name().name()),
        (Some(ns), local),
        "unexpected element"
    );
}

// ------------------------------------------------------------------------------------------
// 1. Layout and round trip

#[test]
fn signs_pull_request_in_the_epuap_layout_and_verifies_it() {
    let signed = signed_pull();
    let doc = roxmltree::Document::parse(&signed).expect("well-formed");

    let env = doc.root_element();
    assert_name(env, SOAP11_NS, "Envelope");
    let parts = element_children(env);
    assert_eq!(parts.len(), 2);
    let (header, body) = (parts[0], parts[1]);
    assert_name(header, SOAP11_NS, "Header");
    assert_name(body, SOAP11_NS, "Body");
    let body_id = body.attribute((WSU_NS, "Id")).expect("Body wsu:Id");
    assert!(body_id.starts_with("id-"), "{body_id}");

    let headers = element_children(header);
    assert_eq!(headers.len(), 1);
    let security = headers[0];
    assert_name(security, WSSE_NS, "Security");
    assert!(security.attribute((SOAP11_NS, "mustUnderstand")).is_none());
    let sec = element_children(security);
    assert_eq!(
        sec.len(),
        2,
        "BinarySecurityToken and Signature, no Timestamp"
    );
    let (bst, sig) = (sec[0], sec[1]);

    // The token.
    assert_name(bst, WSSE_NS, "BinarySecurityToken");
    let token_id = bst.attribute((WSU_NS, "Id")).expect("token wsu:Id");
    assert!(token_id.starts_with("X509-"), "{token_id}");
    assert_eq!(bst.attribute("EncodingType"), Some(BASE64_BINARY));
    assert_eq!(bst.attribute("ValueType"), Some(X509_V3));
    assert_eq!(bst.text(), Some(office().base64().as_str()));

    // The signature, immediately after the token.
    assert_name(sig, DSIG_NS, "Signature");
    let s = element_children(sig);
    assert_eq!(s.len(), 3);
    let (si, sv, ki) = (s[0], s[1], s[2]);
    assert_name(si, DSIG_NS, "SignedInfo");
    assert_name(sv, DSIG_NS, "SignatureValue");
    assert_name(ki, DSIG_NS, "KeyInfo");
    assert!(!sv.text().unwrap_or("").trim().is_empty());

    let si_children = element_children(si);
    assert_eq!(si_children.len(), 3, "c14n, method, exactly one Reference");
    assert_name(si_children[0], DSIG_NS, "CanonicalizationMethod");
    assert_eq!(si_children[0].attribute("Algorithm"), Some(EXC_C14N));
    assert_name(si_children[1], DSIG_NS, "SignatureMethod");
    assert_eq!(si_children[1].attribute("Algorithm"), Some(RSA_SHA256));
    let reference = si_children[2];
    assert_name(reference, DSIG_NS, "Reference");
    assert_eq!(
        reference.attribute("URI").map(str::to_owned),
        Some(format!("#{body_id}"))
    );
    let r = element_children(reference);
    assert_eq!(r.len(), 3);
    assert_name(r[0], DSIG_NS, "Transforms");
    let transforms = element_children(r[0]);
    assert_eq!(transforms.len(), 1, "a single exc-c14n transform");
    assert_name(transforms[0], DSIG_NS, "Transform");
    assert_eq!(transforms[0].attribute("Algorithm"), Some(EXC_C14N));
    assert_name(r[1], DSIG_NS, "DigestMethod");
    assert_eq!(r[1].attribute("Algorithm"), Some(SHA256));
    assert_name(r[2], DSIG_NS, "DigestValue");
    assert_eq!(r[2].text().map(str::len), Some(44), "base64 of 32 bytes");

    let k = element_children(ki);
    assert_eq!(k.len(), 1);
    assert_name(k[0], WSSE_NS, "SecurityTokenReference");
    let str_ref = element_children(k[0]);
    assert_eq!(str_ref.len(), 1);
    assert_name(str_ref[0], WSSE_NS, "Reference");
    assert_eq!(
        str_ref[0].attribute("URI").map(str::to_owned),
        Some(format!("#{token_id}"))
    );
    assert_eq!(str_ref[0].attribute("ValueType"), Some(X509_V3));

    // The body is untouched, children unqualified.
    let op = element_children(body);
    assert_eq!(op.len(), 1);
    assert_name(op[0], OBIEKTY_NS, "ZapytaniePullPobierz");
    let fields: Vec<_> = element_children(op[0])
        .iter()
        .map(|n| {
            let ns = n.tag_name().namespace().filter(|ns| !ns.is_empty());
            (ns, n.tag_name().name(), n.text())
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            (None, "podmiot", Some("vulcandpo")),
            (None, "nazwaSkrytki", Some("testowa")),
            (None, "adresSkrytki", Some("/vulcandpo/testowa")),
        ]
    );

    // And it verifies, pinned to the office's certificate.
    let verified = verify_envelope(&signed, &office().pinned()).expect("verifies");
    assert_eq!(verified.signer_certificate, office().der());
    assert_eq!(verified.body_id, body_id);
    assert_eq!(verified.signature_method, RSA_SHA256);
    assert_eq!(verified.digest_method, SHA256);
    // The verified body is the exclusive-canonical Body: self-contained, parseable alone.
    let body_doc = roxmltree::Document::parse(&verified.body).expect("canonical body parses");
    assert_name(body_doc.root_element(), SOAP11_NS, "Body");
    let op = element_children(body_doc.root_element())[0];
    assert_name(op, OBIEKTY_NS, "ZapytaniePullPobierz");
    assert!(verified
        .body
        .contains(r#"<podmiot xmlns="">vulcandpo</podmiot>"#));
}

#[test]
fn headers_are_kept_and_the_security_header_comes_first() {
    let headers = [
        r#"<obi:CzyProbne xmlns:obi="http://wsdl.epuap.gov.pl/obiekty/">0</obi:CzyProbne>"#,
        r#"<obi:AdresSkrytki xmlns:obi="http://wsdl.epuap.gov.pl/obiekty/">/adresat/skrytka</obi:AdresSkrytki>"#,
    ];
    let body = r#"<Dokument xmlns="http://wsdl.epuap.gov.pl/obiekty/"><nazwaPliku xmlns="">pismo.xml</nazwaPliku><typPliku xmlns="">text/xml</typPliku><zawartosc xmlns="">PD94bWwvPg==</zawartosc></Dokument>"#;
    let signed = sign_envelope(&envelope(body, &headers), &office().identity()).unwrap();
    for h in headers {
        assert!(signed.contains(h), "header kept verbatim: {h}");
    }
    let doc = roxmltree::Document::parse(&signed).unwrap();
    let header = element_children(doc.root_element())[0];
    let names: Vec<_> = element_children(header)
        .iter()
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(names, ["Security", "CzyProbne", "AdresSkrytki"]);
    verify_envelope(&signed, &office().pinned()).expect("verifies");
}

#[test]
fn envelopes_from_elsewhere_are_signed_in_place() {
    let id = office().identity();
    // No Header at all, other prefixes, whitespace: a Header is added, the rest kept.
    let no_header = format!(
        "<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"{SOAP11_NS}\" xmlns:u=\"{WSU_NS}\">\n  <s:Body u:Id=\"id-7\">{PULL_POBIERZ}</s:Body>\n</s:Envelope>\n"
    );
    let signed = sign_envelope(&no_header, &id).unwrap();
    assert!(signed.ends_with(&format!(
        "<s:Body u:Id=\"id-7\">{PULL_POBIERZ}</s:Body>\n</s:Envelope>\n"
    )));
    let v = verify_envelope(&signed, &office().pinned()).unwrap();
    assert_eq!(v.body_id, "id-7");

    // A self-closing Header.
    let empty_header = format!(
        "<s:Envelope xmlns:s=\"{SOAP11_NS}\" xmlns:u=\"{WSU_NS}\"><s:Header/><s:Body u:Id=\"b1\">{PULL_POBIERZ}</s:Body></s:Envelope>"
    );
    let signed = sign_envelope(&empty_header, &id).unwrap();
    verify_envelope(&signed, &office().pinned()).unwrap();

    // A Body without wsu:Id cannot be signed; an already signed envelope is not re-signed.
    let no_id =
        format!("<s:Envelope xmlns:s=\"{SOAP11_NS}\"><s:Body>{PULL_POBIERZ}</s:Body></s:Envelope>");
    assert!(matches!(
        sign_envelope(&no_id, &id),
        Err(WsSecError::Malformed(_))
    ));
    assert!(matches!(
        sign_envelope(&signed, &id),
        Err(WsSecError::Malformed(_))
    ));
}

#[test]
fn signing_identity_hides_its_key_and_checks_it_matches() {
    let id = office().identity();
    let debug = format!("{id:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
    let key_body: String = office()
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for chunk in key_body.as_bytes().chunks(16) {
        let chunk = std::str::from_utf8(chunk).unwrap();
        assert!(!debug.contains(chunk), "key material in Debug: {debug}");
    }
    assert!(matches!(
        SigningIdentity::from_pem(&office().cert_pem, &stranger().key_pem),
        Err(WsSecError::Identity(_))
    ));
    assert!(matches!(
        SigningIdentity::from_pem("not a pem", &office().key_pem),
        Err(WsSecError::Identity(_))
    ));
}

// ------------------------------------------------------------------------------------------
// 2. The independent implementation, both directions

#[test]
fn xmlsec1_verifies_what_we_sign() {
    let signed = signed_pull();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "signed.xml", &signed);
    let mut cmd = xmlsec1();
    cmd.arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(&office().cert_path);
    id_attr_args(&mut cmd);
    let out = cmd.arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "xmlsec1 --verify refused our signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("OK"));

    // The check has teeth: xmlsec1 refuses the same document with the body changed.
    let tampered = write(
        dir.path(),
        "tampered.xml",
        &signed.replace(">vulcandpo<", ">vulcandpx<"),
    );
    let mut cmd = xmlsec1();
    cmd.arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(&office().cert_path);
    id_attr_args(&mut cmd);
    let out = cmd.arg(&tampered).output().unwrap();
    assert!(!out.status.success(), "xmlsec1 accepted a tampered body");
}

#[test]
fn we_verify_what_xmlsec1_signs() {
    let signed = xmlsec1_signed(office(), RSA_SHA256, SHA256);
    let v = verify_envelope(&signed, &office().pinned()).expect("xmlsec1's signature verifies");
    assert_eq!(v.body_id, "id-123");
    assert_eq!(v.signer_certificate, office().der());
    assert!(v.body.contains("<podmiot xmlns=\"\">vulcandpo</podmiot>"));

    let tampered = signed.replace(">testowa<", ">testowb<");
    assert_eq!(
        verify_envelope(&tampered, &office().pinned()),
        Err(WsSecError::BadDigest)
    );
}

#[test]
fn a_signed_timestamp_next_to_the_body_is_accepted_other_references_are_not() {
    // The Sejm CXF client signs a wsu:Timestamp in the Security header as well.
    let reference = |uri: &str| {
        format!(
            concat!(
                "<ds:Reference URI=\"#{}\"><ds:Transforms><ds:Transform Algorithm=\"{}\"/>",
                "</ds:Transforms><ds:DigestMethod Algorithm=\"{}\"/><ds:DigestValue></ds:DigestValue>",
                "</ds:Reference>"
            ),
            uri, EXC_C14N, SHA256
        )
    };
    let base = template(office(), RSA_SHA256, SHA256);
    let with_timestamp = base
        .replace(
            "<wsse:Security>",
            concat!(
                "<wsse:Security><wsu:Timestamp wsu:Id=\"TS-1\"><wsu:Created>2026-01-01T00:00:00Z",
                "</wsu:Created><wsu:Expires>2026-01-01T00:05:00Z</wsu:Expires></wsu:Timestamp>"
            ),
        )
        .replace(
            "</ds:SignedInfo>",
            &format!("{}</ds:SignedInfo>", reference("TS-1")),
        );
    let signed = xmlsec1_sign(office(), &with_timestamp, &[&format!("{WSU_NS}:Timestamp")]);
    let v = verify_envelope(&signed, &office().pinned()).expect("Body + Timestamp verifies");
    assert_eq!(v.body_id, "id-123");

    // A signed reference to some other header is not what the profile signs.
    let other_header = base
        .replace(
            "</soapenv:Header>",
            &format!(
                "<obi:CzyProbne xmlns:obi=\"{OBIEKTY_NS}\" wsu:Id=\"h-1\">0</obi:CzyProbne></soapenv:Header>"
            ),
        )
        .replace("</ds:SignedInfo>", &format!("{}</ds:SignedInfo>", reference("h-1")));
    let signed = xmlsec1_sign(
        office(),
        &other_header,
        &[&format!("{OBIEKTY_NS}:CzyProbne")],
    );
    assert!(matches!(
        verify_envelope(&signed, &office().pinned()),
        Err(WsSecError::WrongReference(_))
    ));
}

// ------------------------------------------------------------------------------------------
// 3. Refusals

#[test]
fn a_changed_body_is_a_bad_digest() {
    let signed = signed_pull();
    let tampered = signed.replace(">vulcandpo</podmiot>", ">vulcandpx</podmiot>");
    assert_ne!(signed, tampered);
    assert_eq!(
        verify_envelope(&tampered, &office().pinned()),
        Err(WsSecError::BadDigest)
    );
}

#[test]
fn a_changed_signature_value_is_a_bad_signature() {
    let signed = signed_pull();
    let start = signed.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let i = start + 10;
    let c = signed.as_bytes()[i];
    let replacement = if c == b'A' { "B" } else { "A" };
    let mut tampered = signed.clone();
    tampered.replace_range(i..i + 1, replacement);
    assert_eq!(
        verify_envelope(&tampered, &office().pinned()),
        Err(WsSecError::BadSignature)
    );

    // Changing what SignedInfo says (here: the reference's digest) is caught too.
    let dv = signed.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
    let mut tampered = signed.clone();
    let c = signed.as_bytes()[dv + 3];
    tampered.replace_range(dv + 3..dv + 4, if c == b'A' { "B" } else { "A" });
    assert!(matches!(
        verify_envelope(&tampered, &office().pinned()),
        Err(WsSecError::BadDigest | WsSecError::BadSignature)
    ));
}

#[test]
fn a_wrapped_body_is_refused() {
    let signed = signed_pull();
    let body_start = signed.find("<soapenv:Body").unwrap();
    let body_end = signed.find("</soapenv:Body>").unwrap() + "</soapenv:Body>".len();
    let signed_body = &signed[body_start..body_end];
    let body_id = {
        let doc = roxmltree::Document::parse(&signed).unwrap();
        element_children(doc.root_element())[1]
            .attribute((WSU_NS, "Id"))
            .unwrap()
            .to_owned()
    };
    let evil_op = PULL_POBIERZ.replace("vulcandpo", "ofiara");
    let wrap = |unsigned_body: &str| {
        let head = signed[..body_start].replace(
            "</wsse:Security>",
            &format!(
                "</wsse:Security><w:Wrapper xmlns:w=\"urn:attacker\">{signed_body}</w:Wrapper>"
            ),
        );
        format!("{head}{unsigned_body}{}", &signed[body_end..])
    };
    // The signed body moves into a header; an unsigned body takes its place...
    let cases = [
        // ...without an id,
        format!("<soapenv:Body>{evil_op}</soapenv:Body>"),
        // ...with another id,
        format!("<soapenv:Body wsu:Id=\"id-evil\">{evil_op}</soapenv:Body>"),
        // ...with the same id.
        format!("<soapenv:Body wsu:Id=\"{body_id}\">{evil_op}</soapenv:Body>"),
    ];
    for unsigned in cases {
        let attack = wrap(&unsigned);
        assert!(attack.contains("urn:attacker") && attack.contains("ofiara"));
        let r = verify_envelope(&attack, &office().pinned());
        assert!(
            matches!(r, Err(WsSecError::WrongReference(_))),
            "wrapping not refused ({unsigned}): {r:?}"
        );
    }
}

#[test]
fn rsa_sha1_is_weak_unless_allowed() {
    // Signed by xmlsec1 with RSA-SHA1 and a SHA-1 digest.
    let sha1 = xmlsec1_signed(office(), RSA_SHA1, SHA1);
    assert!(matches!(
        verify_envelope(&sha1, &office().pinned()),
        Err(WsSecError::WeakAlgorithm(_))
    ));
    verify_envelope(&sha1, &office().pinned().allow_sha1(true)).expect("allowed explicitly");

    // A SHA-1 digest under an RSA-SHA256 signature is weak too.
    let sha1_digest = xmlsec1_signed(office(), RSA_SHA256, SHA1);
    assert!(matches!(
        verify_envelope(&sha1_digest, &office().pinned()),
        Err(WsSecError::WeakAlgorithm(_))
    ));

    // Relabelling our signature as RSA-SHA1 (a downgrade) is refused before any crypto.
    let relabelled = signed_pull().replace(RSA_SHA256, RSA_SHA1);
    assert!(matches!(
        verify_envelope(&relabelled, &office().pinned()),
        Err(WsSecError::WeakAlgorithm(_))
    ));
}

#[test]
fn other_algorithms_and_transforms_are_refused() {
    let signed = signed_pull();
    let inclusive = signed.replacen(
        &format!("<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>"),
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/>",
        1,
    );
    assert!(matches!(
        verify_envelope(&inclusive, &office().pinned()),
        Err(WsSecError::UnsupportedAlgorithm(_))
    ));
    let xpath = signed.replace(
        &format!("<ds:Transform Algorithm=\"{EXC_C14N}\"/>"),
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/>",
    );
    assert!(matches!(
        verify_envelope(&xpath, &office().pinned()),
        Err(WsSecError::UnsupportedAlgorithm(_))
    ));
    let no_transform = signed.replace(
        &format!("<ds:Transforms><ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms>"),
        "",
    );
    assert_ne!(no_transform, signed);
    assert!(matches!(
        verify_envelope(&no_transform, &office().pinned()),
        Err(WsSecError::Malformed(_) | WsSecError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn a_doctype_is_refused() {
    let signed = signed_pull();
    let with_entity = format!(
        "<!DOCTYPE soapenv:Envelope [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        signed.replace(">vulcandpo<", ">&x;<")
    );
    assert_eq!(
        verify_envelope(&with_entity, &office().pinned()),
        Err(WsSecError::Doctype)
    );
    let plain = format!("<!DOCTYPE soapenv:Envelope>{signed}");
    assert_eq!(
        verify_envelope(&plain, &office().pinned()),
        Err(WsSecError::Doctype)
    );
    assert_eq!(
        sign_envelope(
            &format!("<!DOCTYPE x>{}", envelope(PULL_POBIERZ, &[])),
            &office().identity()
        ),
        Err(WsSecError::Doctype)
    );
}

#[test]
fn an_unsigned_envelope_is_not_signed() {
    assert_eq!(
        verify_envelope(&envelope(PULL_POBIERZ, &[]), &office().pinned()),
        Err(WsSecError::NotSigned)
    );
    let no_header =
        format!("<s:Envelope xmlns:s=\"{SOAP11_NS}\"><s:Body>{PULL_POBIERZ}</s:Body></s:Envelope>");
    assert_eq!(
        verify_envelope(&no_header, &TrustPolicy::any_certificate()),
        Err(WsSecError::NotSigned)
    );
    // Not SOAP 1.1 / not XML at all.
    assert!(matches!(
        verify_envelope("<a>", &office().pinned()),
        Err(WsSecError::Malformed(_))
    ));
    let soap12 =
        "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body/></e:Envelope>";
    assert!(matches!(
        verify_envelope(soap12, &office().pinned()),
        Err(WsSecError::Malformed(_))
    ));
}

#[test]
fn certificates_outside_the_policy_are_untrusted() {
    // Signed correctly, but by a certificate that is not pinned.
    let by_stranger = sign_envelope(&envelope(PULL_POBIERZ, &[]), &stranger().identity()).unwrap();
    assert!(matches!(
        verify_envelope(&by_stranger, &office().pinned()),
        Err(WsSecError::UntrustedCertificate(_))
    ));
    // The simulator policy takes any well-formed certificate and reports which one.
    let v = verify_envelope(&by_stranger, &TrustPolicy::any_certificate()).unwrap();
    assert_eq!(v.signer_certificate, stranger().der());

    // Swapping the office's token for the stranger's certificate breaks the signature
    // (any-certificate policy) or the pin.
    let ours = signed_pull();
    let swapped = ours.replace(&office().base64(), &stranger().base64());
    assert_eq!(
        verify_envelope(&swapped, &TrustPolicy::any_certificate()),
        Err(WsSecError::BadSignature)
    );
    assert!(matches!(
        verify_envelope(&swapped, &office().pinned()),
        Err(WsSecError::UntrustedCertificate(_))
    ));

    // Validity period: the 30-day test certificate has expired a year from now.
    let next_year = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
    assert!(matches!(
        verify_envelope(&ours, &office().pinned().validity_at(next_year)),
        Err(WsSecError::UntrustedCertificate(_))
    ));
    verify_envelope(
        &ours,
        &office().pinned().validity_at(next_year).ignore_validity(),
    )
    .expect("validity check can be switched off");
}
