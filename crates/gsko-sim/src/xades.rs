//! Enveloped XAdES-BES signatures for simulated documents
//! (`/work/shared/specs/epuap-login-edoreczenia.md` §2.3–§2.4).
//!
//! Residents' letters pulled from ePUAP carry an enveloped `ds:Signature` as the last child of
//! the document's root; for Profil Zaufany the signing certificate is COI's system certificate
//! and the person is named only inside `xades:ClaimedRole` ([`SignerClaim`]). This module makes
//! such signatures for the simulators, so the connector's verifier meets real ones.
//!
//! The cryptography is done by the `xmlsec1` command-line tool (libxmlsec1 on OpenSSL) from a
//! template written here, and the certificates by the `openssl` command-line tool: a second,
//! widely used C implementation of exclusive C14N, digests and RSA-SHA256, sharing nothing with
//! the connector's signature code (ARCHITECTURE.md, "Simulators"). Both tools must be on `PATH`
//! (`scripts/ensure-services.sh` installs `xmlsec1`).
//!
//! Layout (OMB `XAdESBESSigner`, plus SHA-256 and `DataObjectFormat` as in the qualified example
//! of §2.3): `ds:Signature Id="Signature-<n>"` with exc-c14n and rsa-sha256; Reference 1
//! `URI=""` (enveloped-signature, exc-c14n, sha256); Reference 2 to
//! `#SignedProperties-<n>` typed `http://uri.etsi.org/01903#SignedProperties`;
//! `KeyInfo/X509Data/X509Certificate`; `ds:Object/xades:QualifyingProperties` with SigningTime,
//! SigningCertificate (SHA-256 CertDigest, IssuerSerial), the optional SignerRole and
//! `DataObjectFormat` (`text/xml`). `<n>` is derived from the SHA-256 of the unsigned input, so
//! a document signed twice gets distinct Ids and the same input gets the same signature bytes
//! (RSA PKCS#1 v1.5 is deterministic) for a given certificate.
//!
//! The document itself is never re-serialised: the template is the input with the signature
//! template inserted before the root's closing tag, and the signed `ds:Signature` that `xmlsec1`
//! writes is spliced into the original bytes at the same place. The letter a test generated is
//! therefore byte for byte the letter the connector reads, plus the signature.

use std::fmt;
use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use sha2::{Digest, Sha256};

use crate::tools::{openssl, self_signed_certificate, xmlsec1_sign_command, IdAttribute, KeyType};
use crate::xml::escaped;

const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XAdES 1.3.2, the namespace of `QualifyingProperties`.
pub const NS_XADES: &str = "http://uri.etsi.org/01903/v1.3.2#";
/// The old Profil Zaufany claim `ppZP:PodpisZP`.
pub const NS_PPZP: &str = "http://crd.gov.pl/xml/schematy/ppzp/";
/// `os:` inside `ppZP:PodpisZP`: osoba 2009/03/06, not the letter's 2009/11/16 (§2.3).
pub const NS_OS_2009_03: &str = "http://crd.gov.pl/xml/schematy/osoba/2009/03/06/";
/// The new Profil Zaufany claim `EPSignature`.
pub const NS_PODPIS_ZAUFANY: &str = "http://crd.gov.pl/xml/schematy/podpis_zaufany/";
const NS_WNIO: &str = "http://crd.gov.pl/wzor/2013/12/12/1410/";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";

/// An RSA-2048 certificate and key for simulators, made with the `openssl` CLI, self-signed,
/// valid from 2020-01-01 to 2045-12-31.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCertificate {
    pub cert_pem: String,
    /// Unencrypted PKCS#8 PEM.
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// The issuer as `openssl x509 -nameopt RFC2253` prints it, for `ds:X509IssuerName`.
    pub issuer_name: String,
    /// The serial number in decimal, for `ds:X509SerialNumber`.
    pub serial_decimal: String,
}

impl SimCertificate {
    /// A new key and self-signed certificate `C=PL, O=Symulator GSKO, CN=<common_name>`.
    /// Fails with `NotFound` when `openssl` is not installed, `Other` when it fails.
    pub fn generate(common_name: &str) -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        // Valid from 2020 to 2045, like a long-lived COI certificate: letters are signed days
        // or years before a simulator starts, and a verifier checks the certificate at the
        // signing time.
        self_signed_certificate(
            KeyType::Rsa2048,
            common_name,
            "digitalSignature, nonRepudiation",
            &key,
            &cert,
        )?;
        let printed = openssl(
            Command::new("openssl")
                .args([
                    "x509", "-noout", "-issuer", "-serial", "-nameopt", "RFC2253",
                ])
                .arg("-in")
                .arg(&cert),
        )?;
        let printed = String::from_utf8_lossy(&printed);
        let field = |name: &str| {
            printed
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .ok_or_else(|| {
                    io::Error::other(format!("openssl x509 printed no {name:?} line: {printed}"))
                })
        };
        let issuer_name = field("issuer=")?;
        let serial_decimal = hex_to_decimal(&field("serial=")?).ok_or_else(|| {
            io::Error::other(format!(
                "openssl x509 printed a serial that is not hex: {printed}"
            ))
        })?;
        let cert_pem = std::fs::read_to_string(&cert)?;
        let key_pem = std::fs::read_to_string(&key)?;
        let cert_der = pem_body(&cert_pem).ok_or_else(|| {
            io::Error::other(format!(
                "openssl wrote a certificate that is not PEM: {cert_pem}"
            ))
        })?;
        Ok(Self {
            cert_pem,
            key_pem,
            cert_der,
            issuer_name,
            serial_decimal,
        })
    }
}

/// COI's podpis-zaufany signing certificate ("Symulator COI - podpis zaufany"), one per process.
///
/// # Panics
/// When `openssl` cannot make it (not installed): simulators cannot sign without it.
pub fn coi_certificate() -> &'static SimCertificate {
    static CERT: OnceLock<SimCertificate> = OnceLock::new();
    CERT.get_or_init(|| {
        SimCertificate::generate("Symulator COI - podpis zaufany")
            .expect("openssl (on PATH) must make the simulated COI certificate")
    })
}

/// ePUAP's UPP/UPD signing certificate ("Symulator ePUAP - poswiadczenia"), one per process.
///
/// # Panics
/// When `openssl` cannot make it (not installed).
pub fn epuap_certificate() -> &'static SimCertificate {
    static CERT: OnceLock<SimCertificate> = OnceLock::new();
    CERT.get_or_init(|| {
        SimCertificate::generate("Symulator ePUAP - poswiadczenia")
            .expect("openssl (on PATH) must make the simulated ePUAP certificate")
    })
}

/// Who the signature names in `xades:ClaimedRole` (§2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerClaim {
    /// Old form: `ppZP:PodpisZP` with `DaneZP/DaneZPOsobyFizycznej/{os:Nazwisko, os:Imie,
    /// os:PESEL, ppZP:IdKontaUzytkownikaEpuap}` and `DanePodpisu/IdKontaUzytkownikaEpuap`.
    PodpisZp {
        first_name: String,
        surname: String,
        pesel: String,
        epuap_login: String,
    },
    /// New form: `EPSignature` with `NaturalPerson/{CurrentFamilyName, FirstName, DateOfBirth
    /// (YYYY-MM-DD), PersonalIdentifier (the PESEL)}` and `SignatureData/{IdentityIssuer
    /// ("Profil Zaufany"), IdentityIssueTimestamp (the signing time)}`.
    EpSignature {
        first_name: String,
        surname: String,
        pesel: String,
        date_of_birth: String,
    },
    /// No `SignerRole` (a qualified-like signature or an ePUAP poświadczenie).
    None,
}

/// Why a document could not be signed.
#[derive(Debug)]
pub enum XadesSimError {
    /// Writing the temporary files or starting `xmlsec1` failed (`NotFound`: not installed).
    Io(io::Error),
    /// `xmlsec1 --sign` failed; its stderr.
    Xmlsec1(String),
    /// The input is not a well-formed XML document; what is wrong.
    NotXml(String),
}

impl fmt::Display for XadesSimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot run xmlsec1 to sign the document: {e}"),
            Self::Xmlsec1(stderr) => write!(f, "xmlsec1 --sign failed: {}", stderr.trim()),
            Self::NotXml(why) => write!(f, "the document to sign is not well-formed XML: {why}"),
        }
    }
}

impl std::error::Error for XadesSimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for XadesSimError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Appends an enveloped XAdES-BES `ds:Signature` as the last child of the document's root and
/// returns the signed bytes; everything before the insertion point and after it is kept
/// byte for byte. `signing_time` is an xsd:dateTime for `xades:SigningTime`. The document must
/// be UTF-8 (the claim's names are written as UTF-8 into it).
pub fn sign_enveloped(
    xml: &[u8],
    cert: &SimCertificate,
    claim: &SignerClaim,
    signing_time: &str,
) -> Result<Vec<u8>, XadesSimError> {
    let root = root_end(xml)?;
    let n = hex::encode_upper(&Sha256::digest(xml)[..4]);
    let signature = signature_template(&n, cert, claim, signing_time);
    let template = root.insert(xml, &signature);

    let dir = tempfile::tempdir()?;
    let write = |name: &str, bytes: &[u8]| -> io::Result<std::path::PathBuf> {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    };
    let key_path = write("key.pem", cert.key_pem.as_bytes())?;
    let cert_path = write("cert.pem", cert.cert_pem.as_bytes())?;
    let template_path = write("template.xml", &template)?;
    let out_path = dir.path().join("signed.xml");
    let signed_properties = format!("{NS_XADES}:SignedProperties");
    let out = xmlsec1_sign_command(
        Path::new("xmlsec1"),
        &key_path,
        &cert_path,
        IdAttribute {
            attribute: "Id",
            element: &signed_properties,
        },
        "empty,same-doc",
        &template_path,
        &out_path,
    )
    .output()?;
    if !out.status.success() {
        return Err(XadesSimError::Xmlsec1(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let signed = std::fs::read(&out_path)?;
    // xmlsec1 re-serialises the whole document; keep only the signature it filled in. Ours is
    // the root's last child, so it is the last `ds:Signature` start tag and end tag.
    let open = format!("<ds:Signature xmlns:ds=\"{NS_DS}\" Id=\"Signature-{n}\"");
    let start = find_last(&signed, open.as_bytes());
    let end = find_last(&signed, b"</ds:Signature>").map(|e| e + b"</ds:Signature>".len());
    let filled = match (start, end) {
        (Some(s), Some(e)) if s < e => &signed[s..e],
        _ => {
            return Err(XadesSimError::Xmlsec1(format!(
                "xmlsec1 wrote no ds:Signature Id=\"Signature-{n}\" in its output"
            )))
        }
    };
    Ok(root.insert(xml, filled))
}

/// The same document with one character of visible text changed, so that a signature's
/// reference digest no longer matches: the first text of `wnio:Tytul` if there is one, else
/// the first non-blank text of any element. An ASCII letter or digit is replaced by the next
/// one (`z`→`a`, `9`→`0`); text without one has its first character replaced by `X`.
/// Never panics: input with no text at all, or that cannot be read as XML up to such text, is
/// returned unchanged.
pub fn tamper(signed: &[u8]) -> Vec<u8> {
    let mut out = signed.to_vec();
    if let Some((start, end)) = text_to_tamper(signed) {
        change_one_char(&mut out, start, end);
    }
    out
}

// ---------------------------------------------------------------------------------------

/// Where the root element ends, found with a namespace-aware reader (which also checks that
/// the input is XML up to there).
struct RootEnd {
    /// Offset of `</root>`, or of `/>` when the root is an empty-element tag.
    at: usize,
    /// For an empty-element root: its qualified name and the end of `/>`.
    empty: Option<(String, usize)>,
}

impl RootEnd {
    /// The document with `inner` as the root's last child.
    fn insert(&self, xml: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(xml.len() + inner.len() + 64);
        out.extend_from_slice(&xml[..self.at]);
        match &self.empty {
            None => {
                out.extend_from_slice(inner);
                out.extend_from_slice(&xml[self.at..]);
            }
            Some((name, after)) => {
                out.push(b'>');
                out.extend_from_slice(inner);
                out.extend_from_slice(b"</");
                out.extend_from_slice(name.as_bytes());
                out.push(b'>');
                out.extend_from_slice(&xml[*after..]);
            }
        }
        out
    }
}

fn root_end(xml: &[u8]) -> Result<RootEnd, XadesSimError> {
    let mut reader = NsReader::from_reader(xml);
    let mut depth = 0usize;
    let mut found = None;
    loop {
        let before = position(&reader);
        let event = reader
            .read_event()
            .map_err(|e| XadesSimError::NotXml(format!("at byte {before}: {e}")))?;
        match event {
            Event::Start(_) => {
                if depth == 0 && found.is_some() {
                    return Err(XadesSimError::NotXml("more than one root element".into()));
                }
                depth += 1;
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    found = Some(RootEnd {
                        at: before,
                        empty: None,
                    });
                }
            }
            Event::Empty(ref e) if depth == 0 => {
                if found.is_some() {
                    return Err(XadesSimError::NotXml("more than one root element".into()));
                }
                let after = position(&reader);
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                found = Some(RootEnd {
                    at: after - 2,
                    empty: Some((name, after)),
                });
            }
            Event::Eof => break,
            _ => {}
        }
    }
    found.ok_or_else(|| XadesSimError::NotXml("no root element".into()))
}

fn position(reader: &NsReader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).expect("an in-memory document fits in usize")
}

/// The byte range of the raw text to change (see [`tamper`]).
fn text_to_tamper(xml: &[u8]) -> Option<(usize, usize)> {
    let mut reader = NsReader::from_reader(xml);
    let mut stack: Vec<bool> = Vec::new(); // is the element wnio:Tytul?
    let mut first_text = None;
    loop {
        let before = position(&reader);
        let Ok((ns, event)) = reader.read_resolved_event() else {
            return first_text;
        };
        match event {
            Event::Start(ref e) => {
                let tytul = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NS_WNIO.as_bytes())
                    && e.local_name().as_ref() == b"Tytul";
                stack.push(tytul);
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(ref t) if !stack.is_empty() => {
                if t.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let range = (before, position(&reader));
                if stack.last() == Some(&true) {
                    return Some(range);
                }
                first_text.get_or_insert(range);
            }
            Event::Eof => return first_text,
            _ => {}
        }
    }
}

/// Changes one character of the raw text `buf[start..end]`, outside entity references.
fn change_one_char(buf: &mut Vec<u8>, start: usize, end: usize) {
    let mut in_ref = false;
    let mut first_plain = None;
    for (i, b) in buf.iter_mut().enumerate().take(end).skip(start) {
        if in_ref {
            in_ref = *b != b';';
            continue;
        }
        match *b {
            b'&' => in_ref = true,
            b'a'..=b'y' | b'A'..=b'Y' | b'0'..=b'8' => {
                *b += 1;
                return;
            }
            b'z' | b'Z' => {
                *b -= 25;
                return;
            }
            b'9' => {
                *b = b'0';
                return;
            }
            c if !c.is_ascii_whitespace() && first_plain.is_none() => first_plain = Some(i),
            _ => {}
        }
    }
    // No ASCII letter or digit: replace the first other character (its whole UTF-8 sequence)
    // by one ASCII letter.
    let Some(i) = first_plain else { return };
    let len = match buf[i] {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    };
    // Not an ASCII letter, so never already `X`.
    buf.splice(i..(i + len).min(end), [b'X']);
}

fn signature_template(
    n: &str,
    cert: &SimCertificate,
    claim: &SignerClaim,
    signing_time: &str,
) -> Vec<u8> {
    let cert_digest =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&cert.cert_der));
    let mut s = Vec::new();
    let mut push = |part: &str| s.extend_from_slice(part.as_bytes());
    push(&format!(
        "<ds:Signature xmlns:ds=\"{NS_DS}\" Id=\"Signature-{n}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
         <ds:SignatureMethod Algorithm=\"{RSA_SHA256}\"/>\
         <ds:Reference Id=\"Reference-{n}\" URI=\"\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{ENVELOPED}\"/><ds:Transform Algorithm=\"{EXC_C14N}\"/>\
         </ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue/></ds:Reference>\
         <ds:Reference Type=\"{SIGNED_PROPERTIES_TYPE}\" URI=\"#SignedProperties-{n}\">\
         <ds:Transforms><ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue/></ds:Reference>\
         </ds:SignedInfo><ds:SignatureValue/>\
         <ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>\
         <ds:Object><xades:QualifyingProperties xmlns:xades=\"{NS_XADES}\" Target=\"#Signature-{n}\">\
         <xades:SignedProperties Id=\"SignedProperties-{n}\"><xades:SignedSignatureProperties>"
    ));
    push(&text("xades:SigningTime", signing_time));
    push(&format!(
        "<xades:SigningCertificate><xades:Cert><xades:CertDigest>\
         <ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue>{cert_digest}</ds:DigestValue>\
         </xades:CertDigest><xades:IssuerSerial>"
    ));
    push(&text("ds:X509IssuerName", &cert.issuer_name));
    push(&text("ds:X509SerialNumber", &cert.serial_decimal));
    push("</xades:IssuerSerial></xades:Cert></xades:SigningCertificate>");
    match claim {
        SignerClaim::None => {}
        SignerClaim::PodpisZp {
            first_name,
            surname,
            pesel,
            epuap_login,
        } => {
            push(&format!(
                "<xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>\
                 <ppZP:PodpisZP xmlns:ppZP=\"{NS_PPZP}\" xmlns:os=\"{NS_OS_2009_03}\">\
                 <ppZP:DaneZP><ppZP:DaneZPOsobyFizycznej>"
            ));
            push(&text("os:Nazwisko", surname));
            push(&text("os:Imie", first_name));
            push(&text("os:PESEL", pesel));
            push(&text("ppZP:IdKontaUzytkownikaEpuap", epuap_login));
            push("</ppZP:DaneZPOsobyFizycznej></ppZP:DaneZP><ppZP:DanePodpisu>");
            push(&text("ppZP:IdKontaUzytkownikaEpuap", epuap_login));
            push(
                "</ppZP:DanePodpisu></ppZP:PodpisZP>\
                 </xades:ClaimedRole></xades:ClaimedRoles></xades:SignerRole>",
            );
        }
        SignerClaim::EpSignature {
            first_name,
            surname,
            pesel,
            date_of_birth,
        } => {
            push(&format!(
                "<xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>\
                 <EPSignature xmlns=\"{NS_PODPIS_ZAUFANY}\"><NaturalPerson>"
            ));
            push(&text("CurrentFamilyName", surname));
            push(&text("FirstName", first_name));
            push(&text("DateOfBirth", date_of_birth));
            push(&text("PersonalIdentifier", pesel));
            push("</NaturalPerson><SignatureData>");
            push(&text("IdentityIssuer", "Profil Zaufany"));
            push(&text("IdentityIssueTimestamp", signing_time));
            push(
                "</SignatureData></EPSignature>\
                 </xades:ClaimedRole></xades:ClaimedRoles></xades:SignerRole>",
            );
        }
    }
    push(&format!(
        "</xades:SignedSignatureProperties><xades:SignedDataObjectProperties>\
         <xades:DataObjectFormat ObjectReference=\"#Reference-{n}\">\
         <xades:MimeType>text/xml</xades:MimeType></xades:DataObjectFormat>\
         </xades:SignedDataObjectProperties></xades:SignedProperties>\
         </xades:QualifyingProperties></ds:Object></ds:Signature>"
    ));
    s
}

/// `<name>escaped value</name>`.
fn text(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escaped(value))
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// The DER inside the first PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A hex number of any length in decimal (serial numbers are up to 20 bytes).
fn hex_to_decimal(hex: &str) -> Option<String> {
    // Little-endian base-10^9 limbs.
    let mut limbs: Vec<u64> = vec![0];
    if hex.is_empty() {
        return None;
    }
    for c in hex.chars() {
        let mut carry = u64::from(c.to_digit(16)?);
        for limb in &mut limbs {
            let v = *limb * 16 + carry;
            *limb = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut out = limbs.last().copied().unwrap_or(0).to_string();
    for limb in limbs.iter().rev().skip(1) {
        out.push_str(&format!("{limb:09}"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_serials_in_decimal() {
        assert_eq!(hex_to_decimal("0").as_deref(), Some("0"));
        assert_eq!(hex_to_decimal("FF").as_deref(), Some("255"));
        assert_eq!(
            hex_to_decimal("795A5AC5804D5A5928EEE432732089AA776B5949").as_deref(),
            Some("692802857649455303161439530540908407889993619785")
        );
        assert_eq!(hex_to_decimal("xyz"), None);
    }

    #[test]
    fn root_end_for_open_and_empty_roots() {
        let xml = b"<?xml version=\"1.0\"?>\n<a:r xmlns:a=\"urn:a\"><a:x/></a:r>\n";
        let r = root_end(xml).unwrap();
        assert_eq!(
            r.insert(xml, b"<s/>"),
            b"<?xml version=\"1.0\"?>\n<a:r xmlns:a=\"urn:a\"><a:x/><s/></a:r>\n"
        );
        let xml = b"<r a=\"/>\"/>";
        assert_eq!(
            root_end(xml).unwrap().insert(xml, b"<s/>"),
            b"<r a=\"/>\"><s/></r>"
        );
        assert!(matches!(
            root_end(b"<a><b></a>"),
            Err(XadesSimError::NotXml(_))
        ));
        assert!(matches!(root_end(b"  "), Err(XadesSimError::NotXml(_))));
    }

    #[test]
    fn tamper_changes_exactly_one_character_of_the_title() {
        let xml = "<w:D xmlns:w=\"http://crd.gov.pl/wzor/2013/12/12/1410/\"><w:A>abc</w:A>\
                   <w:Tytul>&amp;Wniosek</w:Tytul></w:D>";
        let t = String::from_utf8(tamper(xml.as_bytes())).unwrap();
        assert_eq!(t, xml.replace("&amp;Wniosek", "&amp;Xniosek"));
        let no_title = "<d><e>  </e><f>żz</f></d>";
        assert_eq!(
            String::from_utf8(tamper(no_title.as_bytes())).unwrap(),
            "<d><e>  </e><f>ża</f></d>"
        );
        let polish = "<d>żółć</d>";
        assert_eq!(
            String::from_utf8(tamper(polish.as_bytes())).unwrap(),
            "<d>Xółć</d>"
        );
        assert_eq!(tamper(b"<d><e/></d>"), b"<d><e/></d>");
        assert_eq!(tamper(b"not xml"), b"not xml");
    }
}
