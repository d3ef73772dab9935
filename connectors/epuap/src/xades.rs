//! Verification of the XAdES signature a resident's letter carries (spec §2.3), and the
//! signer's identity taken from it.
//!
//! A CRD document is signed with an *enveloped* XAdES-BES `ds:Signature`, a child of the root.
//! Two forms matter:
//!
//! - **podpis zaufany** (Profil Zaufany): the key is a COI system certificate; the person is
//!   named only in `xades:SignedProperties/…/xades:ClaimedRole`, as `ppZP:PodpisZP` (old) or
//!   `EPSignature` (new since 2025). The claim is trusted only because `SignedProperties`
//!   is itself covered by the signature, so that is checked before the claim is read.
//! - **qualified signature**: the person is in the certificate (ETSI EN 319 412-1
//!   `serialNumber` `PNOPL-<PESEL>`, `givenName`, `surname`).
//!
//! The cryptography (canonicalization, digests, RSA/ECDSA) is bergshamra's, as for
//! WS-Security ([`crate::wssec`]); this module decides what the signature must cover and reads
//! the identity from the very nodes bergshamra verified. Every outcome is a [`SignatureReport`]
//! with a status and precise problems; nothing here fails, because a letter is never dropped
//! for its signature.
//!
//! What is checked: exactly one signature under the root (others reported); only
//! same-document references; one reference covers the whole document (`URI=""` or the root's
//! id, with the enveloped-signature transform); no SHA-1 unless allowed; the key is the
//! KeyInfo certificate only; every digest and the signature value verify;
//! `xades:SigningCertificate` names that certificate; the certificate was valid at signing
//! time; for podpis zaufany, `SignedProperties` is signed and, when configured, the
//! certificate is one of COI's. Not checked: the qualified certificate's chain against the EU
//! trusted list (reported as a problem, the signature still counts as valid).

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use bergshamra::xml::uppsala::{Document, NodeId};
use bergshamra::{DsigContext, KeysManager, VerifyResult};
use chrono::{DateTime, Utc};
use gsko_model::{SignatureForm, SignatureStatus};
use sha2::Digest as _;

use crate::wssec::{algorithm_of, child_elements, count_id, fingerprint, is, is_weak, DSIG_NS};

const XADES_132: &str = "http://uri.etsi.org/01903/v1.3.2#";
const XADES_122: &str = "http://uri.etsi.org/01903/v1.2.2#";
const PPZP: &str = "http://crd.gov.pl/xml/schematy/ppzp/";
const PPZP_OSOBA: &str = "http://crd.gov.pl/xml/schematy/osoba/2009/03/06/";
const EPSIG: &str = "http://crd.gov.pl/xml/schematy/podpis_zaufany/";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";

/// Which signers are trusted for which form.
#[derive(Clone, Default)]
pub struct XadesTrust {
    /// COI's podpis-zaufany signing certificates (DER). `None`: not configured, any
    /// certificate is accepted for a podpis zaufany and that is reported as a problem.
    pub pz_signers: Option<Vec<Vec<u8>>>,
    /// Accept SHA-1 digests and RSA-SHA1 (old signatures); refused by default.
    pub allow_sha1: bool,
}

impl std::fmt::Debug for XadesTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XadesTrust")
            .field(
                "pz_signers",
                &self
                    .pz_signers
                    .as_ref()
                    .map(|v| v.iter().map(|c| fingerprint(c)).collect::<Vec<_>>()),
            )
            .field("allow_sha1", &self.allow_sha1)
            .finish()
    }
}

impl XadesTrust {
    /// Trusts these COI certificates (PEM bundle) for podpis zaufany.
    pub fn with_pz_certificates_pem(pem: &str) -> Result<Self, crate::wssec::WsSecError> {
        Ok(Self {
            pz_signers: Some(crate::wssec::certificates_from_pem(pem)?),
            allow_sha1: false,
        })
    }
}

/// What verifying a document's signature found. For a valid signature the identity fields
/// come only from parts the signature covers; for one that does not verify (status
/// `invalid`), they hold the identity it claims — unproven, so that the letter still reaches
/// the person it names, flagged.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SignatureReport {
    pub status: Option<SignatureStatus>,
    pub form: Option<SignatureForm>,
    /// The signer's PESEL as written in the signature (validated by the caller).
    pub signer_pesel: Option<String>,
    pub signer_name: Option<String>,
    /// The signer's ePUAP login (`IdKontaUzytkownikaEpuap`, old PZ form only).
    pub signer_epuap_login: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
    /// SHA-256 fingerprint of the signing certificate.
    pub certificate: Option<String>,
    /// One precise sentence per problem, no personal data in them.
    pub problems: Vec<String>,
}

impl SignatureReport {
    /// The status; `Absent` when no signature was looked at.
    pub fn status(&self) -> SignatureStatus {
        self.status.unwrap_or(SignatureStatus::Absent)
    }

    fn fail(mut self, status: SignatureStatus, problem: impl Into<String>) -> Self {
        self.status = Some(status);
        self.problems.push(problem.into());
        self
    }
}

/// Verifies the enveloped XAdES signature of `xml` (the document's exact bytes).
pub fn verify_document(xml: &[u8], trust: &XadesTrust) -> SignatureReport {
    let report = SignatureReport::default();
    let Ok(text) = std::str::from_utf8(xml) else {
        return report.fail(
            SignatureStatus::Unverifiable,
            "the document is not UTF-8, its signature cannot be checked",
        );
    };
    let doc = match crate::wssec::parse(text) {
        Ok(d) => d,
        Err(crate::wssec::WsSecError::Doctype) => {
            return report.fail(
                SignatureStatus::Unverifiable,
                "the document declares a DOCTYPE (refused), its signature was not checked",
            )
        }
        Err(e) => {
            return report.fail(
                SignatureStatus::Unverifiable,
                format!("the document is not well-formed XML ({e}), its signature was not checked"),
            )
        }
    };
    let Some(root) = doc.document_element() else {
        return report.fail(SignatureStatus::Unverifiable, "empty document");
    };
    let signatures: Vec<NodeId> = child_elements(&doc, root)
        .into_iter()
        .filter(|&c| is(&doc, c, DSIG_NS, "Signature"))
        .collect();
    let Some(&signature) = signatures.first() else {
        let nested = doc
            .descendants(root)
            .into_iter()
            .any(|n| is(&doc, n, DSIG_NS, "Signature"));
        let mut r = report;
        r.status = Some(if nested {
            SignatureStatus::Unverifiable
        } else {
            SignatureStatus::Absent
        });
        r.problems.push(if nested {
            "a ds:Signature is present but not as a child of the document's root element (only enveloped XAdES is supported)".into()
        } else {
            "the document carries no ds:Signature".into()
        });
        return r;
    };
    let mut report = report;
    if signatures.len() > 1 {
        report.problems.push(format!(
            "the document carries {} signatures; only the first was verified",
            signatures.len()
        ));
    }
    // bergshamra verifies the first ds:Signature in document order: it must be this one.
    let first_in_order = doc
        .descendants(doc.root())
        .into_iter()
        .find(|&n| is(&doc, n, DSIG_NS, "Signature"));
    if first_in_order != Some(signature) {
        return report.fail(
            SignatureStatus::Unverifiable,
            "another ds:Signature precedes the document's own signature",
        );
    }
    check_and_verify(&doc, text, root, signature, trust, report)
}

fn child(doc: &Document<'_>, parent: NodeId, ns: &str, local: &str) -> Option<NodeId> {
    child_elements(doc, parent)
        .into_iter()
        .find(|&c| is(doc, c, ns, local))
}

fn text(doc: &Document<'_>, node: NodeId) -> String {
    doc.text_content_deep(node).trim().to_owned()
}

fn attr<'d>(doc: &'d Document<'_>, node: NodeId, name: &str) -> Option<&'d str> {
    doc.element(node).and_then(|e| e.get_attribute(name))
}

struct Reference {
    uri: String,
    enveloped: bool,
    signed_properties_type: bool,
}

fn check_and_verify(
    doc: &Document<'_>,
    source: &str,
    root: NodeId,
    signature: NodeId,
    trust: &XadesTrust,
    mut report: SignatureReport,
) -> SignatureReport {
    use SignatureStatus::{Invalid, Unverifiable};
    let unverifiable = |r: SignatureReport, p: String| r.fail(Unverifiable, p);

    // --- SignedInfo: algorithms and references, before any cryptography.
    let Some(signed_info) = child(doc, signature, DSIG_NS, "SignedInfo") else {
        return unverifiable(report, "the ds:Signature has no ds:SignedInfo".into());
    };
    let method = child(doc, signed_info, DSIG_NS, "SignatureMethod")
        .and_then(|m| algorithm_of(doc, m).ok())
        .unwrap_or("");
    if method.is_empty() {
        return unverifiable(report, "ds:SignatureMethod has no Algorithm".into());
    }
    if is_weak(method) && !trust.allow_sha1 {
        return unverifiable(
            report,
            format!("the signature uses the weak algorithm {method}, which is not accepted"),
        );
    }
    let mut references = Vec::new();
    for r in child_elements(doc, signed_info)
        .into_iter()
        .filter(|&c| is(doc, c, DSIG_NS, "Reference"))
    {
        let uri = attr(doc, r, "URI").unwrap_or("").to_owned();
        if !(uri.is_empty() || uri.starts_with('#')) {
            return unverifiable(
                report,
                format!("Reference URI {uri:?} points outside the document; only same-document references are checked"),
            );
        }
        let transforms: Vec<String> = child(doc, r, DSIG_NS, "Transforms")
            .map(|t| {
                child_elements(doc, t)
                    .into_iter()
                    .filter_map(|tr| algorithm_of(doc, tr).ok().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if transforms
            .iter()
            .any(|t| t.contains("xpath") || t.contains("xslt"))
        {
            return unverifiable(
                report,
                format!("Reference {uri:?} uses an XPath/XSLT transform, which is not accepted"),
            );
        }
        let digest = child(doc, r, DSIG_NS, "DigestMethod")
            .and_then(|d| algorithm_of(doc, d).ok())
            .unwrap_or("");
        if is_weak(digest) && !trust.allow_sha1 {
            return unverifiable(
                report,
                format!("Reference {uri:?} uses the weak digest {digest}, which is not accepted"),
            );
        }
        references.push(Reference {
            enveloped: transforms.iter().any(|t| t == ENVELOPED),
            signed_properties_type: attr(doc, r, "Type") == Some(SIGNED_PROPERTIES_TYPE),
            uri,
        });
    }
    if references.is_empty() {
        return unverifiable(report, "ds:SignedInfo has no ds:Reference".into());
    }
    let root_id = doc.element(root).and_then(|e| {
        e.attributes
            .iter()
            .find(|a| matches!(&*a.name.local_name, "Id" | "ID" | "id"))
            .map(|a| a.value.to_string())
    });
    let covers_document = |r: &Reference| {
        r.enveloped
            && (r.uri.is_empty()
                || root_id
                    .as_deref()
                    .is_some_and(|id| r.uri == format!("#{id}")))
    };
    if !references.iter().any(covers_document) {
        return report.fail(
            Invalid,
            "no Reference covers the whole document (URI=\"\" with the enveloped-signature transform): the letter's content is not protected by the signature",
        );
    }
    for r in &references {
        if let Some(id) = r.uri.strip_prefix('#') {
            if count_id(doc, id) != 1 {
                return report.fail(
                    Invalid,
                    format!(
                        "Reference {:?} names an id that occurs {} times (signature wrapping)",
                        r.uri,
                        count_id(doc, id)
                    ),
                );
            }
        }
    }

    // --- The key: the certificate in KeyInfo/X509Data, nothing else.
    let certs: Vec<Vec<u8>> = child(doc, signature, DSIG_NS, "KeyInfo")
        .map(|ki| {
            doc.descendants(ki)
                .into_iter()
                .filter(|&n| is(doc, n, DSIG_NS, "X509Certificate"))
                .filter_map(|n| {
                    let b64: String = doc
                        .text_content_deep(n)
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .collect();
                    base64::engine::general_purpose::STANDARD.decode(b64).ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let xades = find_signed_properties(doc, signature);
    // With several certificates (a chain), the signer's is the one SigningCertificate names.
    let cert_der = match certs.as_slice() {
        [] => return unverifiable(
            report,
            "the signature's KeyInfo carries no X509Certificate; the signer cannot be identified"
                .into(),
        ),
        [one] => one.clone(),
        many => xades
            .and_then(|sp| signing_certificate_digest(doc, sp))
            .and_then(|(alg, want)| {
                many.iter()
                    .find(|c| digest_of(&alg, c).as_deref() == Some(&want[..]))
                    .cloned()
            })
            .unwrap_or_else(|| many[0].clone()),
    };
    report.certificate = Some(fingerprint(&cert_der));
    let key =
        match bergshamra::keys::loader::load_x509_cert_der(&cert_der) {
            Ok(k) => k,
            Err(_) => return unverifiable(
                report,
                "the certificate in KeyInfo cannot be read (malformed or an unsupported key type)"
                    .into(),
            ),
        };

    // --- The cryptography.
    let mut keys = KeysManager::new();
    keys.add_key(key);
    let ctx = DsigContext::new(keys)
        .with_trusted_keys_only(true)
        .with_strict_verification(false);
    let result =
        match bergshamra::dsig::verify::verify_document_with_source(&ctx, doc, Some(source)) {
            Ok(r) => r,
            Err(bergshamra::Error::DigestMismatch(_)) => return unproven(report, doc, xades).fail(
                Invalid,
                "a reference digest does not match: the document was changed after it was signed",
            ),
            Err(bergshamra::Error::Crypto(_)) | Err(bergshamra::Error::SignatureInvalid(_)) => {
                return unproven(report, doc, xades).fail(
                    Invalid,
                    "the signature value does not verify with the certificate in KeyInfo",
                )
            }
            Err(bergshamra::Error::UnsupportedAlgorithm(m)) => {
                return unverifiable(report, format!("unsupported algorithm: {m}"))
            }
            Err(e) => {
                return unverifiable(report, format!("the signature cannot be processed: {e}"))
            }
        };
    let verified = match result {
        VerifyResult::Valid { references, .. } => references,
        VerifyResult::Invalid { reason } => return unproven(report, doc, xades).fail(
            Invalid,
            if reason.starts_with("Reference digest failed") {
                "a reference digest does not match: the document was changed after it was signed"
                    .to_owned()
            } else {
                "the signature value does not verify with the certificate in KeyInfo".to_owned()
            },
        ),
    };
    if verified.iter().any(|r| !r.digest_verified) {
        return report.fail(Invalid, "a reference was not digested from the document");
    }
    let document_covered = verified
        .iter()
        .any(|r| r.digest_verified && (r.uri.is_empty() || r.resolved_node == Some(root)));
    if !document_covered {
        return report.fail(Invalid, "the verified references do not cover the document");
    }

    // --- XAdES: signing certificate, signing time, claimed role — only if signed.
    let mut cert_ok = true;
    let signed_xades = xades.filter(|&sp| {
        verified
            .iter()
            .any(|r| r.digest_verified && r.resolved_node == Some(sp))
    });
    if xades.is_none() {
        report
            .problems
            .push("no xades:SignedProperties: a plain XML signature, not XAdES".into());
    } else if signed_xades.is_none() {
        report.problems.push(
            "xades:SignedProperties are not covered by the signature; the signing time, certificate and claimed identity in them are ignored".into(),
        );
    } else if !references.iter().any(|r| r.signed_properties_type) {
        report
            .problems
            .push("the Reference to xades:SignedProperties lacks its Type attribute".into());
    }
    if let Some(sp) = signed_xades {
        match signing_certificate_digest(doc, sp) {
            Some((alg, want)) => {
                if digest_of(&alg, &cert_der).as_deref() != Some(&want[..]) {
                    cert_ok = false;
                }
            }
            None => report
                .problems
                .push("xades:SigningCertificate is missing: the signing certificate is not bound to the signature".into()),
        }
        report.signed_at = doc
            .descendants(sp)
            .into_iter()
            .find(|&n| is_xades(doc, n, "SigningTime"))
            .and_then(|n| DateTime::parse_from_rfc3339(&text(doc, n)).ok())
            .map(|t| t.with_timezone(&Utc));
    }
    if !cert_ok {
        return report.fail(
            Invalid,
            "xades:SigningCertificate names a different certificate than the one that signed",
        );
    }

    let cert = parse_certificate(&cert_der);
    if let Some((not_before, not_after)) = cert.as_ref().map(|c| c.validity) {
        let at = report.signed_at.unwrap_or_else(Utc::now);
        let at_secs = at.timestamp().max(0) as u64;
        let at_time = UNIX_EPOCH + Duration::from_secs(at_secs);
        if at_time < not_before || at_time > not_after {
            return report.fail(
                Invalid,
                "the signing certificate was not valid at the signing time",
            );
        }
    }

    // --- Who signed.
    let claim = signed_xades.and_then(|sp| claimed_identity(doc, sp));
    if let Some(claim) = claim {
        report.form = Some(SignatureForm::PodpisZaufany);
        report.signer_pesel = claim.pesel;
        report.signer_name = claim.name;
        report.signer_epuap_login = claim.login;
        match &trust.pz_signers {
            Some(pins) if !pins.iter().any(|p| p == &cert_der) => {
                return report.fail(
                    Unverifiable,
                    format!(
                        "a podpis zaufany made with certificate {}, which is not one of the configured Profil Zaufany signing certificates",
                        fingerprint(&cert_der)
                    ),
                );
            }
            Some(_) => {}
            None => report.problems.push(
                "the Profil Zaufany signing certificates are not configured (epuap.pz_certificates): the certificate was not checked against COI's".into(),
            ),
        }
    } else if let Some(person) = cert.as_ref().and_then(|c| c.person.clone()) {
        report.form = Some(SignatureForm::Qualified);
        report.signer_pesel = person.pesel;
        report.signer_name = person.name;
        report.problems.push(
            "the certificate chain is not checked against the EU trusted list; the signature is mathematically valid".into(),
        );
    } else {
        report.form = Some(SignatureForm::Other);
        report.signer_name = cert.and_then(|c| c.common_name);
        report.problems.push(
            "the signature names no person (no podpis zaufany claim, no PESEL in the certificate)"
                .into(),
        );
    }
    if report.signer_pesel.is_none() {
        report
            .problems
            .push("the signature does not name the signer's PESEL".into());
    }
    report.status = Some(SignatureStatus::Valid);
    report
}

/// For a signature that does not verify: the identity it claims, so that the letter still
/// reaches the person it names, flagged. The claim is unproven; the status says so.
fn unproven(
    mut report: SignatureReport,
    doc: &Document<'_>,
    xades: Option<NodeId>,
) -> SignatureReport {
    if let Some(claim) = xades.and_then(|sp| claimed_identity(doc, sp)) {
        report.form = Some(SignatureForm::PodpisZaufany);
        report.signer_pesel = claim.pesel;
        report.signer_name = claim.name;
        report.signer_epuap_login = claim.login;
    }
    report
}

fn is_xades(doc: &Document<'_>, n: NodeId, local: &str) -> bool {
    is(doc, n, XADES_132, local) || is(doc, n, XADES_122, local)
}

/// `ds:Object/xades:QualifyingProperties/xades:SignedProperties` of this signature.
fn find_signed_properties(doc: &Document<'_>, signature: NodeId) -> Option<NodeId> {
    child_elements(doc, signature)
        .into_iter()
        .filter(|&o| is(doc, o, DSIG_NS, "Object"))
        .flat_map(|o| child_elements(doc, o))
        .filter(|&q| is_xades(doc, q, "QualifyingProperties"))
        .flat_map(|q| child_elements(doc, q))
        .find(|&s| is_xades(doc, s, "SignedProperties"))
}

/// `(DigestMethod, digest bytes)` of `SigningCertificate(V2)/Cert/CertDigest`.
fn signing_certificate_digest(doc: &Document<'_>, sp: NodeId) -> Option<(String, Vec<u8>)> {
    let cert_digest = doc
        .descendants(sp)
        .into_iter()
        .find(|&n| is_xades(doc, n, "CertDigest"))?;
    let alg = child(doc, cert_digest, DSIG_NS, "DigestMethod")
        .and_then(|m| algorithm_of(doc, m).ok())?
        .to_owned();
    let value: String = child(doc, cert_digest, DSIG_NS, "DigestValue")
        .map(|v| doc.text_content_deep(v))?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let value = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    Some((alg, value))
}

fn digest_of(alg: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    Some(match alg.rsplit('#').next()? {
        "sha256" => sha2::Sha256::digest(bytes).to_vec(),
        "sha384" => sha2::Sha384::digest(bytes).to_vec(),
        "sha512" => sha2::Sha512::digest(bytes).to_vec(),
        "sha1" => sha1::Sha1::digest(bytes).to_vec(),
        _ => return None,
    })
}

struct Claim {
    pesel: Option<String>,
    name: Option<String>,
    login: Option<String>,
}

/// The podpis zaufany identity in `xades:ClaimedRole` (`PodpisZP` or `EPSignature`).
fn claimed_identity(doc: &Document<'_>, sp: NodeId) -> Option<Claim> {
    let roles: Vec<NodeId> = doc
        .descendants(sp)
        .into_iter()
        .filter(|&n| is_xades(doc, n, "ClaimedRole"))
        .collect();
    for role in roles {
        for n in doc.descendants(role) {
            if is(doc, n, PPZP, "PodpisZP") {
                let person = doc
                    .descendants(n)
                    .into_iter()
                    .find(|&p| is(doc, p, PPZP, "DaneZPOsobyFizycznej"));
                let get = |ns: &str, local: &str| {
                    person
                        .and_then(|p| child(doc, p, ns, local))
                        .map(|e| text(doc, e))
                        .filter(|t| !t.is_empty())
                };
                return Some(Claim {
                    pesel: get(PPZP_OSOBA, "PESEL"),
                    name: join_name(get(PPZP_OSOBA, "Imie"), get(PPZP_OSOBA, "Nazwisko")),
                    login: get(PPZP, "IdKontaUzytkownikaEpuap").or_else(|| {
                        doc.descendants(n)
                            .into_iter()
                            .find(|&p| is(doc, p, PPZP, "IdKontaUzytkownikaEpuap"))
                            .map(|e| text(doc, e))
                    }),
                });
            }
            if is(doc, n, EPSIG, "EPSignature") {
                let person = child(doc, n, EPSIG, "NaturalPerson");
                let get = |local: &str| {
                    person
                        .and_then(|p| child(doc, p, EPSIG, local))
                        .map(|e| text(doc, e))
                        .filter(|t| !t.is_empty())
                };
                return Some(Claim {
                    pesel: get("PersonalIdentifier").map(|p| strip_pno(&p)),
                    name: join_name(get("FirstName"), get("CurrentFamilyName")),
                    login: None,
                });
            }
        }
    }
    None
}

fn join_name(first: Option<String>, last: Option<String>) -> Option<String> {
    let n = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!n.is_empty()).then_some(n)
}

/// `PNOPL-44051401359` (ETSI semantics identifier) → `44051401359`.
fn strip_pno(s: &str) -> String {
    s.strip_prefix("PNOPL-").unwrap_or(s).to_owned()
}

struct CertInfo {
    validity: (std::time::SystemTime, std::time::SystemTime),
    common_name: Option<String>,
    person: Option<CertPerson>,
}

#[derive(Clone)]
struct CertPerson {
    pesel: Option<String>,
    name: Option<String>,
}

fn parse_certificate(der: &[u8]) -> Option<CertInfo> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    let mut cn = None;
    let mut serial = None;
    let mut given = None;
    let mut surname = None;
    for rdn in tbs.subject.0.iter() {
        for atv in rdn.0.iter() {
            let value = String::from_utf8_lossy(atv.value.value()).into_owned();
            match atv.oid.to_string().as_str() {
                "2.5.4.3" => cn = Some(value),
                "2.5.4.5" => serial = Some(value),
                "2.5.4.42" => given = Some(value),
                "2.5.4.4" => surname = Some(value),
                _ => {}
            }
        }
    }
    let pesel = serial
        .as_deref()
        .and_then(|s| s.strip_prefix("PNOPL-"))
        .map(str::to_owned);
    let person = pesel.as_ref().map(|_| CertPerson {
        pesel: pesel.clone(),
        name: join_name(given, surname).or_else(|| cn.clone()),
    });
    Some(CertInfo {
        validity: (
            tbs.validity.not_before.to_system_time(),
            tbs.validity.not_after.to_system_time(),
        ),
        common_name: cn,
        person,
    })
}
