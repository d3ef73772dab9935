//! XAdES-signed letters (§2.3): the simulator's signatures (made with `xmlsec1 --sign`) and
//! the third-party Python signer `scripts/xades_sign.py` (signxml), each checked by
//! `xmlsec1 --verify` with the expected certificate as the only key. Needs `openssl`,
//! `xmlsec1`, `python3` with signxml (`scripts/ensure-services.sh`).

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use gsko_model::Pesel;
use gsko_sim::epuap::{generate_letter, GeneratedLetter, LetterSignature, LetterSpec};
use gsko_sim::xades::{
    coi_certificate, epuap_certificate, sign_enveloped, tamper, SignerClaim, SimCertificate,
    XadesSimError,
};
use gsko_sim::SimDate;
use sha2::{Digest, Sha256};

const NS_XADES: &str = "http://uri.etsi.org/01903/v1.3.2#";
const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// `xmlsec1 --verify` with `cert` as the only key (keys in the document's KeyInfo are
/// ignored); `Err(stderr)` when it fails.
fn verify(xml: &[u8], cert: &SimCertificate) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("signed.xml");
    let pem = dir.path().join("cert.pem");
    std::fs::write(&doc, xml).unwrap();
    std::fs::write(&pem, &cert.cert_pem).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(&pem)
        .arg("--id-attr:Id")
        .arg(format!("{NS_XADES}:SignedProperties"))
        // signxml also signs its KeyInfo (by Id).
        .arg("--id-attr:Id")
        .arg(format!("{NS_DS}:KeyInfo"))
        .arg("--enabled-reference-uris")
        .arg("empty,same-doc")
        // Only the given key: without this, xmlsec1 takes a ds:KeyValue from the document
        // itself, and any self-consistent signature would pass.
        .arg("--enabled-key-data")
        .arg("key-name")
        .arg(&doc)
        .output()
        .expect("xmlsec1 must be installed (scripts/ensure-services.sh)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn letter(seed: u64, signature: LetterSignature) -> GeneratedLetter {
    let spec = LetterSpec {
        signature,
        ..LetterSpec::new(
            "Urząd Gminy Gromadka",
            "Gromadka",
            "59-706",
            SimDate::new(2026, 3, 12).unwrap(),
        )
    };
    generate_letter(seed, &spec)
}

fn text(xml: &[u8]) -> &str {
    std::str::from_utf8(xml).expect("UTF-8")
}

/// The text of the first `<tag>…</tag>` after `from`.
fn element_text<'a>(xml: &'a str, from: &str, tag: &str) -> Option<&'a str> {
    let rest = &xml[xml.find(from)?..];
    let open = format!("<{tag}>");
    let start = rest.find(&open)? + open.len();
    let end = start + rest[start..].find(&format!("</{tag}>"))?;
    Some(&rest[start..end])
}

/// The signed letter is the unsigned letter with the signature as the root's last child.
fn assert_wraps_unsigned(signed: &GeneratedLetter, unsigned: &GeneratedLetter) {
    let close = b"</wnio:Dokument>";
    let body = &unsigned.xml[..unsigned.xml.len() - close.len()];
    assert!(unsigned.xml.ends_with(close));
    assert!(
        signed.xml.starts_with(body),
        "the signed letter must keep the unsigned bytes"
    );
    let rest = text(&signed.xml[body.len()..]);
    assert!(rest.starts_with("<ds:Signature "), "{rest}");
    assert!(rest.ends_with("</ds:Signature></wnio:Dokument>"), "{rest}");
    assert_eq!(rest.matches("<ds:Signature ").count(), 1);
    assert_eq!(
        (
            &signed.title,
            &signed.body,
            &signed.pesel,
            &signed.letter.sender
        ),
        (
            &unsigned.title,
            &unsigned.body,
            &unsigned.pesel,
            &unsigned.letter.sender
        )
    );
    assert!(text(&signed.xml).contains(&format!("<wnio:Tytul>{}</wnio:Tytul>", signed.title)));
}

#[test]
fn podpis_zaufany_letter_verifies_and_names_the_sender() {
    for seed in [1, 2, 3] {
        let unsigned = letter(seed, LetterSignature::Unsigned);
        assert_eq!(unsigned.signer_pesel, None);
        assert!(!text(&unsigned.xml).contains("Signature"));
        let l = letter(seed, LetterSignature::PodpisZaufany);
        verify(&l.xml, coi_certificate()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            verify(&l.xml, epuap_certificate()).is_err(),
            "another certificate's key must not verify the signature"
        );
        assert_wraps_unsigned(&l, &unsigned);
        let xml = text(&l.xml);
        assert_eq!(l.signer_pesel.as_deref(), Some(l.pesel.as_str()));
        let claim = "<ppZP:PodpisZP xmlns:ppZP=\"http://crd.gov.pl/xml/schematy/ppzp/\" \
                     xmlns:os=\"http://crd.gov.pl/xml/schematy/osoba/2009/03/06/\">";
        assert!(xml.contains(claim), "{xml}");
        assert_eq!(element_text(xml, claim, "os:PESEL"), Some(l.pesel.as_str()));
        assert_eq!(
            element_text(xml, claim, "os:Imie"),
            Some(l.first_name.as_str())
        );
        assert_eq!(
            element_text(xml, claim, "os:Nazwisko"),
            Some(l.surname.as_str())
        );
        assert_eq!(
            element_text(xml, "<ppZP:DanePodpisu>", "ppZP:IdKontaUzytkownikaEpuap"),
            Some(l.epuap_login.as_str())
        );
        assert_eq!(
            element_text(xml, "<ds:Signature", "xades:SigningTime"),
            Some("2026-03-12T10:00:00+01:00")
        );
        // The deposited content is the signed document.
        assert_eq!(l.letter.content, l.xml);
        // Deterministic for a given certificate.
        assert_eq!(letter(seed, LetterSignature::PodpisZaufany).xml, l.xml);
    }
}

#[test]
fn signature_layout_follows_omb_xades_bes() {
    let l = letter(7, LetterSignature::PodpisZaufany);
    let xml = text(&l.xml);
    let sig = &xml[xml.find("<ds:Signature ").unwrap()..];
    let id = element_attr(sig, "<ds:Signature ", "Id");
    let n = id.strip_prefix("Signature-").expect("Id=Signature-<n>");
    for needle in [
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>".to_string(),
        "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>".into(),
        format!("<ds:Reference Id=\"Reference-{n}\" URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>"),
        format!("<ds:Reference Type=\"http://uri.etsi.org/01903#SignedProperties\" URI=\"#SignedProperties-{n}\">"),
        format!("<xades:QualifyingProperties xmlns:xades=\"{NS_XADES}\" Target=\"#Signature-{n}\">"),
        format!("<xades:SignedProperties Id=\"SignedProperties-{n}\">"),
        format!("<xades:DataObjectFormat ObjectReference=\"#Reference-{n}\"><xades:MimeType>text/xml</xades:MimeType>"),
    ] {
        assert!(sig.contains(&needle), "missing {needle} in {sig}");
    }
    let cert = coi_certificate();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        element_text(sig, "<xades:CertDigest>", "ds:DigestValue"),
        Some(b64.encode(Sha256::digest(&cert.cert_der)).as_str())
    );
    let embedded: String = element_text(sig, "<ds:KeyInfo>", "ds:X509Certificate")
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(b64.decode(embedded).unwrap(), cert.cert_der);
    // Issuer and serial as an independent X.509 parser (Python `cryptography`) reads them.
    let py = python(&[
        "-c",
        "import sys; from cryptography import x509; \
         c = x509.load_pem_x509_certificate(sys.stdin.buffer.read()); \
         print(c.serial_number); print(c.issuer.rfc4514_string())",
    ])
    .stdin_bytes(cert.cert_pem.as_bytes());
    let mut lines = py.lines();
    assert_eq!(
        element_text(sig, "<xades:IssuerSerial>", "ds:X509SerialNumber"),
        lines.next()
    );
    assert_eq!(
        element_text(sig, "<xades:IssuerSerial>", "ds:X509IssuerName"),
        lines.next()
    );
    assert_eq!(
        cert.issuer_name,
        "CN=Symulator COI - podpis zaufany,O=Symulator GSKO,C=PL"
    );
}

fn element_attr<'a>(xml: &'a str, start_tag: &str, attr: &str) -> &'a str {
    let rest = &xml[xml.find(start_tag).unwrap()..];
    let rest = &rest[..rest.find('>').unwrap()];
    let key = format!(" {attr}=\"");
    let v = &rest[rest.find(&key).unwrap() + key.len()..];
    &v[..v.find('"').unwrap()]
}

#[test]
fn ep_signature_letter_verifies_and_names_the_sender() {
    let unsigned = letter(11, LetterSignature::Unsigned);
    let l = letter(11, LetterSignature::EpSignature);
    verify(&l.xml, coi_certificate()).unwrap();
    assert_wraps_unsigned(&l, &unsigned);
    let xml = text(&l.xml);
    let claim = "<EPSignature xmlns=\"http://crd.gov.pl/xml/schematy/podpis_zaufany/\">";
    assert!(xml.contains(claim), "{xml}");
    assert!(!xml.contains("PodpisZP"));
    assert_eq!(l.signer_pesel.as_deref(), Some(l.pesel.as_str()));
    assert_eq!(
        element_text(xml, claim, "PersonalIdentifier"),
        Some(l.pesel.as_str())
    );
    assert_eq!(
        element_text(xml, claim, "FirstName"),
        Some(l.first_name.as_str())
    );
    assert_eq!(
        element_text(xml, claim, "CurrentFamilyName"),
        Some(l.surname.as_str())
    );
    assert_eq!(
        element_text(xml, claim, "IdentityIssuer"),
        Some("Profil Zaufany")
    );
    // DateOfBirth agrees with the PESEL (born 1940–2004: month digits 01–12 or 21–32).
    let dob = element_text(xml, claim, "DateOfBirth").unwrap();
    let p = &l.pesel;
    let (yy, mm, dd) = (&p[0..2], p[2..4].parse::<u32>().unwrap(), &p[4..6]);
    let (century, month) = if mm > 20 { ("20", mm - 20) } else { ("19", mm) };
    assert_eq!(dob, format!("{century}{yy}-{month:02}-{dd}"));
}

#[test]
fn letter_signed_by_someone_else_verifies_but_names_another_person() {
    let unsigned = letter(21, LetterSignature::Unsigned);
    let l = letter(21, LetterSignature::SignedBySomeoneElse);
    verify(&l.xml, coi_certificate()).unwrap();
    assert_wraps_unsigned(&l, &unsigned);
    let xml = text(&l.xml);
    let signer = l.signer_pesel.clone().expect("signed");
    assert_ne!(signer, l.pesel);
    Pesel::parse(&signer).expect("the other signer has a valid PESEL");
    assert_eq!(
        element_text(xml, "<ppZP:PodpisZP", "os:PESEL"),
        Some(signer.as_str())
    );
    // The declared sender is still the original one.
    assert_eq!(
        element_text(xml, "<str:Nadawcy>", "oso:PESEL"),
        Some(l.pesel.as_str())
    );
    assert_eq!(
        letter(21, LetterSignature::SignedBySomeoneElse).signer_pesel,
        Some(signer)
    );
}

#[test]
fn tampered_letter_fails_verification() {
    let good = letter(31, LetterSignature::PodpisZaufany);
    let bad = letter(31, LetterSignature::Tampered);
    assert_eq!(bad.signer_pesel, good.signer_pesel);
    let err = verify(&bad.xml, coi_certificate()).expect_err("a tampered letter must not verify");
    assert!(err.contains("FAIL") || err.contains("digest"), "{err}");
    // Exactly one byte differs, and it is in the title.
    assert_eq!(bad.xml.len(), good.xml.len());
    let diff: Vec<usize> = (0..good.xml.len())
        .filter(|&i| good.xml[i] != bad.xml[i])
        .collect();
    assert_eq!(diff.len(), 1, "{diff:?}");
    let title_at = text(&good.xml).find("<wnio:Tytul>").unwrap() + "<wnio:Tytul>".len();
    assert!((title_at..title_at + good.title.len()).contains(&diff[0]));
    assert!(!text(&bad.xml).contains(&good.title));
}

#[test]
fn sign_enveloped_without_claim_and_on_bad_input() {
    let doc = b"<?xml version=\"1.0\"?>\n<p:Dok xmlns:p=\"urn:x\" a=\"1\"><p:T>tekst &amp; \xc5\xbc</p:T></p:Dok>\n";
    let signed = sign_enveloped(
        doc,
        epuap_certificate(),
        &SignerClaim::None,
        "2026-01-02T03:04:05Z",
    )
    .unwrap();
    verify(&signed, epuap_certificate()).unwrap();
    assert!(verify(&signed, coi_certificate()).is_err());
    let s = text(&signed);
    assert!(!s.contains("SignerRole"));
    assert!(s.starts_with("<?xml version=\"1.0\"?>\n<p:Dok xmlns:p=\"urn:x\" a=\"1\"><p:T>tekst &amp; ż</p:T><ds:Signature "));
    assert!(s.ends_with("</ds:Signature></p:Dok>\n"));
    let t = tamper(&signed);
    assert!(text(&t).contains("<p:T>uekst &amp; ż</p:T>"));
    assert!(verify(&t, epuap_certificate()).is_err());

    // An empty-element root gets the signature as its only child.
    let signed = sign_enveloped(
        b"<r/>",
        coi_certificate(),
        &SignerClaim::None,
        "2026-01-02T03:04:05Z",
    )
    .unwrap();
    verify(&signed, coi_certificate()).unwrap();
    assert!(text(&signed).starts_with("<r><ds:Signature "));

    for bad in [&b"<a><b></a>"[..], b"", b"text only", b"<a/><b/>"] {
        match sign_enveloped(
            bad,
            coi_certificate(),
            &SignerClaim::None,
            "2026-01-02T03:04:05Z",
        ) {
            Err(XadesSimError::NotXml(_)) => {}
            other => panic!("{:?}: {other:?}", text(bad)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The third-party signer: scripts/xades_sign.py (signxml).

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

struct Python(Command);

fn python(args: &[&str]) -> Python {
    let probe = Command::new("python3")
        .args(["-c", "import signxml, cryptography, lxml"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "python3 with signxml is needed (scripts/requirements-test.txt); \
             run scripts/ensure-services.sh or pip install -r scripts/requirements-test.txt"
        ),
    }
    let mut cmd = Command::new("python3");
    cmd.args(args).current_dir(repo_root());
    Python(cmd)
}

impl Python {
    fn stdin_bytes(mut self, input: &[u8]) -> String {
        use std::io::Write as _;
        use std::process::Stdio;
        let mut child = self
            .0
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn python_signxml_signer_output_verifies_with_xmlsec1() {
    let dir = tempfile::tempdir().unwrap();
    let cert = coi_certificate();
    let cert_pem = dir.path().join("cert.pem");
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&cert_pem, &cert.cert_pem).unwrap();
    std::fs::write(&key_pem, &cert.key_pem).unwrap();
    let unsigned = letter(41, LetterSignature::Unsigned);
    let signed = python(&[
        "scripts/xades_sign.py",
        "--cert",
        cert_pem.to_str().unwrap(),
        "--key",
        key_pem.to_str().unwrap(),
        "--pesel",
        &unsigned.pesel,
        "--first-name",
        &unsigned.first_name,
        "--surname",
        &unsigned.surname,
        "--login",
        &unsigned.epuap_login,
        "--signing-time",
        "2026-03-12T10:00:00+01:00",
    ])
    .stdin_bytes(&unsigned.xml);

    verify(signed.as_bytes(), cert).unwrap_or_else(|e| panic!("{e}\n{signed}"));
    assert!(verify(signed.as_bytes(), epuap_certificate()).is_err());
    // Still the letter, with its stylesheet, and the signature last in the root.
    assert!(signed.contains("<?xml-stylesheet type=\"text/xsl\" href=\"http://crd.gov.pl/wzor/2013/12/12/1410/styl.xsl\"?>"));
    assert!(signed.contains(&format!("<wnio:Tytul>{}</wnio:Tytul>", unsigned.title)));
    assert!(signed
        .trim_end()
        .ends_with("</ds:Signature></wnio:Dokument>"));
    let claim = "<ppZP:PodpisZP";
    let role = &signed[signed.find("<xades:ClaimedRole>").expect("a ClaimedRole")..];
    assert!(
        role.starts_with("<xades:ClaimedRole><ppZP:PodpisZP"),
        "{role}"
    );
    assert_eq!(
        element_text(&signed, claim, "os:PESEL"),
        Some(unsigned.pesel.as_str())
    );
    assert_eq!(
        element_text(
            &signed,
            "<ppZP:DanePodpisu>",
            "ppZP:IdKontaUzytkownikaEpuap"
        ),
        Some(unsigned.epuap_login.as_str())
    );
    assert!(signed.contains("xmlns:os=\"http://crd.gov.pl/xml/schematy/osoba/2009/03/06/\""));
    assert!(verify(&tamper(signed.as_bytes()), cert).is_err());
}
