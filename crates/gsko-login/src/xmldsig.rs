//! Enveloped XML signatures as Węzeł Krajowy uses them (spec §3.4): ECDSA P-256 with SHA-256,
//! exclusive c14n, one Reference to the signed element's `ID`, the signature right after
//! `saml2:Issuer`, the signer's certificate in `KeyInfo`. The cryptography and the canonical
//! XML are bergshamra's; this module decides what is acceptable and which element a valid
//! signature actually covers (against signature wrapping).

use crate::LoginError;
use base64::Engine;
use bergshamra::c14n::C14nMode;
use bergshamra::xml::uppsala::{self, Document, NodeId};
use bergshamra::xml::NodeSet;
use bergshamra::{DsigContext, Key, KeysManager, VerifyResult};
use x509_cert::der::Encode;

pub(crate) const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub(crate) const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Signature methods accepted from the identity provider. SHA-1 (and anything else) is a
/// downgrade and refused.
const ACCEPTED_SIGNATURE_METHODS: [&str; 5] = [
    ECDSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
];
const ACCEPTED_DIGESTS: [&str; 3] = [
    SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

/// Every certificate of a PEM text, DER-encoded, in order.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, LoginError> {
    let certs = x509_cert::Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| LoginError::Config(format!("not a PEM certificate: {e}")))?;
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map_err(|e| LoginError::Config(format!("certificate: {e}")))
        })
        .collect()
}

/// A P-256 key with its certificate, signing the SP's messages.
#[derive(Clone)]
pub struct Signer {
    key: Key,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(P-256)")
    }
}

impl Signer {
    /// From an unencrypted PKCS#8 P-256 key and its certificate (PEM); refuses a key that does
    /// not belong to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, LoginError> {
        let cert_der = certificates_from_pem(cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                LoginError::Config("no CERTIFICATE in the signing certificate file".into())
            })?;
        let public = bergshamra::keys::loader::load_x509_cert_der(&cert_der)
            .map_err(|_| LoginError::Config("the signing certificate cannot be read".into()))?;
        let mut key = bergshamra::keys::loader::load_ec_p256_private_pem(key_pem.as_bytes())
            .map_err(|_| {
                LoginError::Config(
                    "the signing key is not an unencrypted EC P-256 private key in PEM".into(),
                )
            })?;
        if key.to_spki_der().is_none() || key.to_spki_der() != public.to_spki_der() {
            return Err(LoginError::Config(
                "the signing key does not belong to the signing certificate".into(),
            ));
        }
        key.x509_chain = vec![cert_der.clone()];
        Ok(Signer { key, cert_der })
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Signs the element whose `ID` is `id`: `xml` must contain the marker [`SIGNATURE_SLOT`]
    /// where the signature goes (right after the element's `saml2:Issuer`).
    pub fn sign(&self, xml: &str, id: &str) -> Result<String, LoginError> {
        let cert = base64::engine::general_purpose::STANDARD.encode(&self.cert_der);
        let template = format!(
            concat!(
                r#"<ds:Signature xmlns:ds="{ds}"><ds:SignedInfo>"#,
                r#"<ds:CanonicalizationMethod Algorithm="{c14n}"/>"#,
                r#"<ds:SignatureMethod Algorithm="{alg}"/>"#,
                r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
                r#"<ds:Transform Algorithm="{env}"/><ds:Transform Algorithm="{c14n}"/>"#,
                r#"</ds:Transforms><ds:DigestMethod Algorithm="{sha}"/><ds:DigestValue></ds:DigestValue>"#,
                r#"</ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"#,
                r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"#,
                r#"</ds:Signature>"#
            ),
            ds = DSIG_NS,
            c14n = EXC_C14N,
            alg = ECDSA_SHA256,
            id = id,
            env = ENVELOPED,
            sha = SHA256,
            cert = cert,
        );
        if xml.matches(SIGNATURE_SLOT).count() != 1 {
            return Err(LoginError::Malformed(
                "internal: the message has no single signature slot".into(),
            ));
        }
        let unsigned = xml.replacen(SIGNATURE_SLOT, &template, 1);
        let mut keys = KeysManager::new();
        keys.add_key(self.key.clone());
        bergshamra::sign(&DsigContext::new(keys), &unsigned)
            .map_err(|e| LoginError::Malformed(format!("signing failed: {e}")))
    }
}

/// Where [`Signer::sign`] puts the signature.
pub const SIGNATURE_SLOT: &str = "<!--gsko:signature-->";

/// Parses XML for verification; a DTD is refused (no entity tricks).
pub(crate) fn parse(xml: &str) -> Result<Document<'_>, LoginError> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(LoginError::Malformed("a DOCTYPE is not allowed".into()));
    }
    uppsala::Parser::new()
        .with_forbid_dtd(true)
        .parse(xml)
        .map_err(|e| LoginError::Malformed(format!("not well-formed XML: {e}")))
}

pub(crate) fn is(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> bool {
    doc.element(node)
        .is_some_and(|e| e.name.local_name == local && e.name.namespace_uri.as_deref() == Some(ns))
}

pub(crate) fn child_elements(doc: &Document<'_>, node: NodeId) -> Vec<NodeId> {
    doc.children(node)
        .into_iter()
        .filter(|&c| doc.element(c).is_some())
        .collect()
}

/// The only child element `ns:local` of `parent`.
pub(crate) fn child(
    doc: &Document<'_>,
    parent: NodeId,
    ns: &str,
    local: &str,
) -> Result<NodeId, LoginError> {
    let found: Vec<NodeId> = child_elements(doc, parent)
        .into_iter()
        .filter(|&c| is(doc, c, ns, local))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(LoginError::Malformed(format!("missing {local}"))),
        _ => Err(LoginError::Malformed(format!("more than one {local}"))),
    }
}

fn algorithm<'d>(doc: &'d Document<'_>, node: NodeId) -> &'d str {
    doc.element(node)
        .and_then(|e| e.get_attribute("Algorithm"))
        .unwrap_or("")
}

/// Verifies the enveloped signature of `target` (an element of `doc`, parsed from `source`)
/// with the identity provider's pinned certificates, and returns the canonical form of
/// `target` — what the signature covers, and therefore the only text the caller may read.
/// `what` names the element in errors ("Response", ...).
pub(crate) fn verify_element(
    doc: &Document<'_>,
    source: &str,
    target: NodeId,
    trusted: &[Vec<u8>],
    what: &'static str,
) -> Result<String, LoginError> {
    let signatures: Vec<NodeId> = child_elements(doc, target)
        .into_iter()
        .filter(|&c| is(doc, c, DSIG_NS, "Signature"))
        .collect();
    let signature = match signatures.as_slice() {
        [one] => *one,
        [] => return Err(LoginError::Unsigned(what)),
        _ => {
            return Err(LoginError::Malformed(format!(
                "{what} carries two signatures"
            )))
        }
    };
    let id = doc
        .element(target)
        .and_then(|e| e.get_attribute("ID"))
        .ok_or_else(|| LoginError::Malformed(format!("{what} has no ID")))?
        .to_owned();

    // The algorithms, before any cryptography: a downgrade is refused by name.
    let signed_info = child(doc, signature, DSIG_NS, "SignedInfo")?;
    let method = algorithm(doc, child(doc, signed_info, DSIG_NS, "SignatureMethod")?);
    if !ACCEPTED_SIGNATURE_METHODS.contains(&method) {
        return Err(LoginError::Algorithm(format!(
            "{what} is signed with {method:?}; accepted: ECDSA or RSA with SHA-256 or stronger"
        )));
    }
    let c14n = algorithm(
        doc,
        child(doc, signed_info, DSIG_NS, "CanonicalizationMethod")?,
    );
    if c14n != EXC_C14N {
        return Err(LoginError::Algorithm(format!(
            "{what}'s signature uses canonicalization {c14n:?}; accepted: exclusive c14n"
        )));
    }
    let references: Vec<NodeId> = child_elements(doc, signed_info)
        .into_iter()
        .filter(|&c| is(doc, c, DSIG_NS, "Reference"))
        .collect();
    let [reference] = references.as_slice() else {
        return Err(LoginError::Malformed(format!(
            "{what}'s signature must have exactly one Reference"
        )));
    };
    let uri = doc
        .element(*reference)
        .and_then(|e| e.get_attribute("URI"))
        .unwrap_or("");
    if uri != format!("#{id}") {
        return Err(LoginError::BadSignature(what));
    }
    let digest = algorithm(doc, child(doc, *reference, DSIG_NS, "DigestMethod")?);
    if !ACCEPTED_DIGESTS.contains(&digest) {
        return Err(LoginError::Algorithm(format!(
            "{what}'s signature digests with {digest:?}; accepted: SHA-256 or stronger"
        )));
    }

    // The key: the certificate in KeyInfo must be one the deployment pinned.
    let cert_der = keyinfo_certificate(doc, signature)?;
    if !trusted.contains(&cert_der) {
        return Err(LoginError::UntrustedCertificate(what));
    }
    let key = bergshamra::keys::loader::load_x509_cert_der(&cert_der)
        .map_err(|_| LoginError::UntrustedCertificate(what))?;
    let mut keys = KeysManager::new();
    keys.add_key(key);
    let ctx = DsigContext::new(keys).with_strict_verification(false);
    let results =
        bergshamra::dsig::verify::verify_all_document_with_source(&ctx, doc, Some(source))
            .map_err(|e| match e {
                bergshamra::Error::XmlStructure(m) if m.contains("duplicate ID") => {
                    LoginError::Malformed("an ID occurs twice (signature wrapping)".into())
                }
                other => LoginError::Malformed(other.to_string()),
            })?;
    let covered = results.iter().any(|r| match r {
        VerifyResult::Valid {
            signature_node,
            references,
            ..
        } => {
            *signature_node == signature
                && references.len() == 1
                && references[0].resolved_node == Some(target)
                && references[0].digest_verified
        }
        VerifyResult::Invalid { .. } => false,
    });
    if !covered {
        return Err(LoginError::BadSignature(what));
    }

    let node_set = NodeSet::tree_without_comments(target, doc);
    let canonical = bergshamra::c14n::canonicalize_doc(
        doc,
        C14nMode::Exclusive,
        Some(&node_set),
        &[] as &[&str],
    )
    .map_err(|e| LoginError::Malformed(format!("canonicalizing {what}: {e}")))?;
    String::from_utf8(canonical).map_err(|_| LoginError::Malformed(format!("{what} is not UTF-8")))
}

fn keyinfo_certificate(doc: &Document<'_>, signature: NodeId) -> Result<Vec<u8>, LoginError> {
    let key_info = child(doc, signature, DSIG_NS, "KeyInfo")?;
    let x509 = child(doc, key_info, DSIG_NS, "X509Data")?;
    let cert = child(doc, x509, DSIG_NS, "X509Certificate")?;
    let text: String = doc
        .text_content_deep(cert)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| LoginError::Malformed("X509Certificate is not base64".into()))
}
