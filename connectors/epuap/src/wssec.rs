//! WS-Security for the ePUAP SOAP services: X.509 BinarySecurityToken signatures over the
//! SOAP 1.1 Body, made and checked exactly in the layout ePUAP accepts (spec §1.7).
//!
//! # Layout
//!
//! ```text
//! soapenv:Envelope
//!   soapenv:Header
//!     wsse:Security
//!       wsse:BinarySecurityToken  wsu:Id="X509-…" EncodingType=…#Base64Binary ValueType=…#X509v3
//!       ds:Signature              (immediately after the token)
//!         ds:SignedInfo
//!           ds:CanonicalizationMethod  exc-c14n
//!           ds:SignatureMethod         rsa-sha256
//!           ds:Reference URI="#id-…"   (the Body's wsu:Id)
//!             ds:Transforms/ds:Transform  exc-c14n
//!             ds:DigestMethod             sha256
//!             ds:DigestValue
//!         ds:SignatureValue
//!         ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference URI="#X509-…" ValueType=…#X509v3
//!     (other headers)
//!   soapenv:Body wsu:Id="id-…"
//! ```
//!
//! No `wsu:Timestamp` and no `mustUnderstand` are written, as in the client that works
//! against production (OldMusicBox). The verifier also accepts a signed `wsu:Timestamp`
//! reference next to the Body one (the Sejm CXF client sends one), but nothing else; the
//! Timestamp's `Created`/`Expires` are not checked here.
//!
//! # Library choice
//!
//! Canonicalization, digests and RSA are not written here: they come from
//! [`bergshamra`] (0.11.1, the newest release on crates.io; pure Rust, maintained, tested
//! against the xmlsec1 interoperability suite), built with its RustCrypto provider only. It was evaluated first, as asked, and covers this
//! profile with two pieces of glue, both done here and neither touching canonical XML:
//!
//! * **`wsu:Id`**: bergshamra registers ID attributes by local name, so `wsu:Id` on the Body
//!   and on the token is found without configuration, and duplicate ID values anywhere in
//!   the document are refused by it.
//! * **`SecurityTokenReference`**: bergshamra does not resolve WS-Security token references.
//!   This module resolves the reference to the `BinarySecurityToken` itself, applies the
//!   [`TrustPolicy`] to that certificate, and hands bergshamra that one key with
//!   `trusted_keys_only`, so no key embedded elsewhere in the document can be used.
//!
//! bergshamra's own "strict" position check (reference target must be an ancestor or a
//! sibling of the Signature) does not fit WS-Security, where the Body is neither; the
//! wrapping defence is done here instead: before verification the single Reference must name
//! the `wsu:Id` of *the* `soapenv:Body` child of the Envelope (and that ID value must occur
//! once in the document), and after verification the node bergshamra digested must be that
//! very Body node of the same parsed tree.
//!
//! The fallback, the `xmlsec` crate over libxmlsec1, was not needed; the Debian `xmlsec1`
//! command-line tool is used by the tests as an independent implementation.
//!
//! # Input hardening
//!
//! Documents with a DOCTYPE are refused before anything else (SOAP 1.1 forbids them; this
//! also rules out entity expansion and external entities). Only RSA with SHA-256/384/512
//! and SHA-256/384/512 digests are accepted; SHA-1 only when [`TrustPolicy::allow_sha1`]
//! says so. A Reference must have exactly one transform, exclusive C14N, and the only
//! URIs accepted are same-document `#id` references, so verification never reads files or
//! the network.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bergshamra::c14n::C14nMode;
use bergshamra::xml::uppsala::{self, Document, NodeId, NodeKind};
use bergshamra::xml::NodeSet;
use bergshamra::{DsigContext, Key, KeysManager, VerifyResult};
use sha2::{Digest as _, Sha256};

/// SOAP 1.1 envelope namespace.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Security 1.0 extension namespace (`wsse`).
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security 1.0 utility namespace (`wsu`).
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
/// XML-DSig namespace (`ds`).
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// `EncodingType` of the token.
pub const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
/// `ValueType` of the token and of the token reference.
pub const X509_V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
/// Exclusive XML canonicalization 1.0 (without comments).
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// RSA PKCS#1 v1.5 with SHA-256.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// SHA-256 digest.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// How bergshamra words a digest mismatch in `VerifyResult::Invalid` (it has no separate
/// variant); `tests/wssec.rs` pins the resulting `BadDigest` / `BadSignature` split.
const INVALID_DIGEST_PREFIX: &str = "Reference digest failed";

/// Why signing or verification failed. Each kind of failure has its own variant, so a
/// caller (and a simulator answering with a SOAP fault) can tell them apart. Messages name
/// elements and algorithms, never message content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsSecError {
    /// The document has a DOCTYPE declaration (refused: SOAP forbids it, and it is the door
    /// to entity expansion and external entities).
    #[error("the XML has a DOCTYPE declaration, which a SOAP message must not have")]
    Doctype,
    /// Not well-formed XML, not a SOAP 1.1 envelope, or a WS-Security header that does not
    /// have the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// There is no `wsse:Security` header with a `ds:Signature`.
    #[error("the envelope carries no WS-Security signature")]
    NotSigned,
    /// The signature does not cover the `soapenv:Body` child of the Envelope: its Reference
    /// names another element, the Body has no `wsu:Id`, the ID is ambiguous, or the signed
    /// element was moved (signature wrapping).
    #[error("the signature does not cover the SOAP Body: {0}")]
    WrongReference(String),
    /// A weak algorithm (SHA-1, MD5) that the [`TrustPolicy`] does not allow.
    #[error("weak algorithm refused: {0}")]
    WeakAlgorithm(String),
    /// An algorithm or transform outside the ePUAP profile (inclusive C14N, comments,
    /// XPath, ECDSA, HMAC, …).
    #[error("algorithm not allowed by the ePUAP WS-Security profile: {0}")]
    UnsupportedAlgorithm(String),
    /// The signed Body was changed: its digest does not match the signed DigestValue.
    #[error("the SOAP Body does not match the digest in the signature")]
    BadDigest,
    /// The SignatureValue does not verify with the token's certificate.
    #[error("the signature value does not verify with the signer's certificate")]
    BadSignature,
    /// The token's certificate is not acceptable under the [`TrustPolicy`] (not pinned,
    /// outside its validity period, not an RSA certificate, not parseable).
    #[error("untrusted certificate: {0}")]
    UntrustedCertificate(String),
    /// The certificate or private key given to [`SigningIdentity::from_pem`] is unusable.
    #[error("invalid signing identity: {0}")]
    Identity(String),
}

// ------------------------------------------------------------------------------------------
// Signing identity

/// The office's system certificate and its RSA private key, used to sign requests.
///
/// `Debug` shows the certificate's SHA-256 fingerprint only; the key is never printed.
#[derive(Clone)]
pub struct SigningIdentity {
    cert_der: Vec<u8>,
    key: Key,
}

impl SigningIdentity {
    /// Loads the identity from PEM: the certificate (the first `CERTIFICATE` block is the
    /// signer's; a chain after it is ignored) and an unencrypted RSA private key (PKCS#8
    /// `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`). Fails when the key does not belong to
    /// the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, WsSecError> {
        let cert_der = certificates_from_pem(cert_pem)
            .map_err(|e| WsSecError::Identity(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| WsSecError::Identity("no CERTIFICATE block in the PEM".into()))?;
        let public = bergshamra::keys::loader::load_x509_cert_der(&cert_der)
            .map_err(|_| WsSecError::Identity("the certificate cannot be parsed".into()))?;
        if public.algorithm_name() != "RSA" {
            return Err(WsSecError::Identity(format!(
                "ePUAP needs an RSA certificate, this one has an {} key",
                public.algorithm_name()
            )));
        }
        let mut key =
            bergshamra::keys::loader::load_rsa_private_pem(key_pem.as_bytes()).map_err(|_| {
                WsSecError::Identity(
                    "the private key is not an unencrypted RSA key in PEM (PKCS#8 or PKCS#1)"
                        .into(),
                )
            })?;
        if key.to_spki_der().is_none() || key.to_spki_der() != public.to_spki_der() {
            return Err(WsSecError::Identity(
                "the private key does not belong to the certificate".into(),
            ));
        }
        key.x509_chain = vec![cert_der.clone()];
        Ok(Self { cert_der, key })
    }

    /// The signer's certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("certificate_sha256", &fingerprint(&self.cert_der))
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// SHA-256 fingerprint of a DER certificate, lowercase hex with colons.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Every `CERTIFICATE` block of a PEM text, DER-decoded, in order (e.g. the certificates
/// COI publishes for verifying responses, for [`TrustPolicy::pinned`]).
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, WsSecError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after
            .find(END)
            .ok_or_else(|| WsSecError::Malformed("unterminated CERTIFICATE block".into()))?;
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| WsSecError::Malformed("bad base64 in a CERTIFICATE block".into()))?;
        out.push(der);
        rest = &after[end + END.len()..];
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Envelope and signing

/// Builds a SOAP 1.1 envelope around `body_xml` (the operation element, e.g.
/// `ZapytaniePullPobierz`) with `headers_xml` as the Header's children, in order. The Body
/// gets a fresh `wsu:Id="id-…"`; `soapenv`, `wsse` and `wsu` are declared on the Envelope
/// as in §1.8. The fragments are inserted verbatim: they must be well-formed XML (which
/// [`sign_envelope`] checks) and declare their own namespaces.
pub fn envelope(body_xml: &str, headers_xml: &[&str]) -> String {
    let body_id = format!("id-{}", uuid::Uuid::now_v7().simple());
    let mut out = String::with_capacity(body_xml.len() + 512);
    out.push_str(&format!(
        r#"<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}" xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}">"#
    ));
    out.push_str("<soapenv:Header>");
    for h in headers_xml {
        out.push_str(h);
    }
    out.push_str("</soapenv:Header>");
    out.push_str(&format!(r#"<soapenv:Body wsu:Id="{body_id}">"#));
    out.push_str(body_xml);
    out.push_str("</soapenv:Body></soapenv:Envelope>");
    out
}

/// Signs a SOAP 1.1 envelope: inserts, as the first child of `soapenv:Header` (created
/// when missing), a `wsse:Security` header with the BinarySecurityToken and the signature
/// over the Body in the §1.7 layout. The Body must already carry a `wsu:Id` (as built by
/// [`envelope`]); the rest of the text is kept byte for byte.
pub fn sign_envelope(envelope: &str, identity: &SigningIdentity) -> Result<String, WsSecError> {
    let doc = parse(envelope)?;
    let soap = SoapParts::locate(&doc)?;
    let body_id = doc
        .element(soap.body)
        .and_then(|e| e.get_attribute_ns(WSU_NS, "Id"))
        .ok_or_else(|| {
            WsSecError::Malformed(
                "the soapenv:Body has no wsu:Id to sign (build it with envelope())".into(),
            )
        })?
        .to_owned();
    check_ncname_id(&body_id)?;
    if let Some(header) = soap.header {
        if child_elements(&doc, header)
            .iter()
            .any(|&c| is(&doc, c, WSSE_NS, "Security"))
        {
            return Err(WsSecError::Malformed(
                "the envelope already has a wsse:Security header".into(),
            ));
        }
    }

    let token_id = format!("X509-{}", uuid::Uuid::now_v7().hyphenated());
    let cert_b64 = base64::engine::general_purpose::STANDARD.encode(&identity.cert_der);
    let security = format!(
        concat!(
            r#"<wsse:Security xmlns:wsse="{wsse}" xmlns:wsu="{wsu}">"#,
            r#"<wsse:BinarySecurityToken EncodingType="{enc}" ValueType="{x509}" wsu:Id="{tid}">{cert}</wsse:BinarySecurityToken>"#,
            r#"<ds:Signature xmlns:ds="{ds}">"#,
            r#"<ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="{c14n}"/>"#,
            r#"<ds:SignatureMethod Algorithm="{rsa}"/>"#,
            r##"<ds:Reference URI="#{bid}">"##,
            r#"<ds:Transforms><ds:Transform Algorithm="{c14n}"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="{sha}"/>"#,
            r#"<ds:DigestValue></ds:DigestValue>"#,
            r#"</ds:Reference>"#,
            r#"</ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue>"#,
            r#"<ds:KeyInfo><wsse:SecurityTokenReference>"#,
            r##"<wsse:Reference URI="#{tid}" ValueType="{x509}"/>"##,
            r#"</wsse:SecurityTokenReference></ds:KeyInfo>"#,
            r#"</ds:Signature>"#,
            r#"</wsse:Security>"#
        ),
        wsse = WSSE_NS,
        wsu = WSU_NS,
        enc = BASE64_BINARY,
        x509 = X509_V3,
        tid = token_id,
        cert = cert_b64,
        ds = DSIG_NS,
        c14n = EXC_C14N,
        rsa = RSA_SHA256,
        bid = body_id,
        sha = SHA256,
    );

    // Where the header goes, in the original text.
    let (range, insert) = match soap.header {
        Some(header) => {
            let start = doc
                .node_range(header)
                .ok_or_else(|| WsSecError::Malformed("no source position for Header".into()))?
                .start;
            let (tag_end, self_closing) = start_tag_end(envelope, start)?;
            if self_closing {
                let name = doc
                    .element(header)
                    .map(|e| e.name.prefixed_name().into_owned())
                    .unwrap_or_default();
                let tag = &envelope[start..tag_end - 2];
                (start..tag_end, format!("{tag}>{security}</{name}>"))
            } else {
                (tag_end..tag_end, security)
            }
        }
        None => {
            let start = doc
                .node_range(soap.body)
                .ok_or_else(|| WsSecError::Malformed("no source position for Body".into()))?
                .start;
            (
                start..start,
                format!(
                    r#"<soapenv:Header xmlns:soapenv="{SOAP11_NS}">{security}</soapenv:Header>"#
                ),
            )
        }
    };
    drop(doc);
    let mut template = String::with_capacity(envelope.len() + insert.len() + 512);
    template.push_str(&envelope[..range.start]);
    template.push_str(&insert);
    template.push_str(&envelope[range.end..]);

    let mut keys = KeysManager::new();
    keys.add_key(identity.key.clone());
    let ctx = DsigContext::new(keys);
    bergshamra::sign(&ctx, &template)
        .map_err(|e| WsSecError::Malformed(format!("signing failed: {e}")))
}

// ------------------------------------------------------------------------------------------
// Verification

/// Which signer certificates [`verify_envelope`] accepts, and which weak algorithms.
#[derive(Clone)]
pub struct TrustPolicy {
    anchors: Anchors,
    allow_sha1: bool,
    validity: Validity,
}

#[derive(Clone)]
enum Anchors {
    Pinned(Vec<Vec<u8>>),
    Any,
}

#[derive(Clone, Copy, Debug)]
enum Validity {
    Now,
    At(SystemTime),
    Ignore,
}

impl TrustPolicy {
    /// Accepts only these certificates (DER, compared byte for byte), e.g. ePUAP's
    /// response-signing certificates, or the offices' registered system certificates in a
    /// simulator. The certificate must also be within its validity period (now).
    pub fn pinned<I, C>(certificates: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Vec<u8>>,
    {
        Self {
            anchors: Anchors::Pinned(certificates.into_iter().map(Into::into).collect()),
            allow_sha1: false,
            validity: Validity::Now,
        }
    }

    /// Accepts any well-formed RSA certificate in the token (still within its validity
    /// period). Proves only that the message was not changed since whoever holds that key
    /// signed it: for simulators and tests, never for production traffic.
    pub fn any_certificate() -> Self {
        Self {
            anchors: Anchors::Any,
            allow_sha1: false,
            validity: Validity::Now,
        }
    }

    /// Allows RSA-SHA1 signatures and SHA-1 digests (refused by default).
    pub fn allow_sha1(mut self, allow: bool) -> Self {
        self.allow_sha1 = allow;
        self
    }

    /// Checks the certificate's validity period at `time` instead of now (replaying a
    /// recorded message).
    pub fn validity_at(mut self, time: SystemTime) -> Self {
        self.validity = Validity::At(time);
        self
    }

    /// Does not check the certificate's validity period.
    pub fn ignore_validity(mut self) -> Self {
        self.validity = Validity::Ignore;
        self
    }

    fn check_certificate(&self, der: &[u8]) -> Result<(), WsSecError> {
        use x509_cert::der::Decode as _;
        let cert = x509_cert::Certificate::from_der(der).map_err(|_| {
            WsSecError::UntrustedCertificate(
                "the BinarySecurityToken is not a well-formed X.509 certificate".into(),
            )
        })?;
        if let Anchors::Pinned(pins) = &self.anchors {
            if !pins.iter().any(|p| p.as_slice() == der) {
                return Err(WsSecError::UntrustedCertificate(format!(
                    "certificate {} is not one of the pinned certificates",
                    fingerprint(der)
                )));
            }
        }
        let at = match self.validity {
            Validity::Now => SystemTime::now(),
            Validity::At(t) => t,
            Validity::Ignore => return Ok(()),
        };
        let at = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let validity = &cert.tbs_certificate.validity;
        if at < validity.not_before.to_unix_duration() {
            return Err(WsSecError::UntrustedCertificate(format!(
                "certificate {} is not valid yet",
                fingerprint(der)
            )));
        }
        if at > validity.not_after.to_unix_duration() {
            return Err(WsSecError::UntrustedCertificate(format!(
                "certificate {} has expired",
                fingerprint(der)
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for TrustPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let anchors = match &self.anchors {
            Anchors::Pinned(p) => p.iter().map(|c| fingerprint(c)).collect::<Vec<_>>(),
            Anchors::Any => vec!["<any certificate>".to_owned()],
        };
        f.debug_struct("TrustPolicy")
            .field("anchors", &anchors)
            .field("allow_sha1", &self.allow_sha1)
            .field("validity", &self.validity)
            .finish()
    }
}

/// What a successful [`verify_envelope`] proved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedEnvelope {
    /// The signer's certificate (DER), taken from the BinarySecurityToken.
    pub signer_certificate: Vec<u8>,
    /// The Body's `wsu:Id`.
    pub body_id: String,
    /// The verified `soapenv:Body` element in exclusive canonical form: exactly the octets
    /// whose digest the signature covers, a self-contained XML document (every namespace it
    /// uses is declared in it). Parse the operation element from this, not from the input.
    pub body: String,
    /// The SignatureMethod algorithm URI.
    pub signature_method: String,
    /// The Body Reference's DigestMethod algorithm URI.
    pub digest_method: String,
}

/// Verifies the WS-Security signature of a SOAP 1.1 envelope and returns the signed Body.
///
/// Succeeds only when the `wsse:Security` header has a `ds:Signature` whose key is the
/// header's X.509 BinarySecurityToken (accepted by `trust`), whose algorithms are the
/// profile's (exc-c14n, RSA-SHA256/384/512, SHA-256/384/512; SHA-1 only if allowed), whose
/// only Reference besides an optional signed `wsu:Timestamp` is the `wsu:Id` of the
/// Envelope's own `soapenv:Body`, and whose digest and signature value verify.
pub fn verify_envelope(signed: &str, trust: &TrustPolicy) -> Result<VerifiedEnvelope, WsSecError> {
    let doc = parse(signed)?;
    let soap = SoapParts::locate(&doc)?;
    let header = soap.header.ok_or(WsSecError::NotSigned)?;
    let securities: Vec<NodeId> = child_elements(&doc, header)
        .into_iter()
        .filter(|&c| is(&doc, c, WSSE_NS, "Security"))
        .collect();
    let security = match securities.as_slice() {
        [] => return Err(WsSecError::NotSigned),
        [one] => *one,
        _ => {
            return Err(WsSecError::Malformed(
                "more than one wsse:Security header".into(),
            ))
        }
    };
    let signatures: Vec<NodeId> = child_elements(&doc, security)
        .into_iter()
        .filter(|&c| is(&doc, c, DSIG_NS, "Signature"))
        .collect();
    let signature = match signatures.as_slice() {
        [] => return Err(WsSecError::NotSigned),
        [one] => *one,
        _ => {
            return Err(WsSecError::Malformed(
                "more than one ds:Signature in wsse:Security".into(),
            ))
        }
    };
    // bergshamra verifies the first ds:Signature in document order: make sure it is this one.
    let first_signature = doc
        .descendants(doc.root())
        .into_iter()
        .find(|&n| is(&doc, n, DSIG_NS, "Signature"));
    if first_signature != Some(signature) {
        return Err(WsSecError::Malformed(
            "another ds:Signature precedes the WS-Security signature".into(),
        ));
    }

    // --- SignedInfo: algorithms and references, checked before any cryptography.
    let signed_info = required_child(&doc, signature, DSIG_NS, "SignedInfo")?;
    let c14n = algorithm_of(
        &doc,
        required_child(&doc, signed_info, DSIG_NS, "CanonicalizationMethod")?,
    )?;
    if c14n != EXC_C14N {
        return Err(WsSecError::UnsupportedAlgorithm(format!(
            "CanonicalizationMethod {c14n}"
        )));
    }
    let signature_method = algorithm_of(
        &doc,
        required_child(&doc, signed_info, DSIG_NS, "SignatureMethod")?,
    )?;
    check_signature_method(signature_method, trust.allow_sha1)?;

    let body_id = doc
        .element(soap.body)
        .and_then(|e| e.get_attribute_ns(WSU_NS, "Id"))
        .ok_or_else(|| {
            WsSecError::WrongReference("the soapenv:Body has no wsu:Id, nothing signs it".into())
        })?
        .to_owned();
    if count_id(&doc, &body_id) != 1 {
        return Err(WsSecError::WrongReference(
            "the Body's wsu:Id value is carried by another element too (signature wrapping)".into(),
        ));
    }
    let timestamp_id = child_elements(&doc, security)
        .into_iter()
        .find(|&c| is(&doc, c, WSU_NS, "Timestamp"))
        .and_then(|t| {
            doc.element(t)
                .and_then(|e| e.get_attribute_ns(WSU_NS, "Id"))
        })
        .map(str::to_owned);

    let references: Vec<NodeId> = child_elements(&doc, signed_info)
        .into_iter()
        .filter(|&c| is(&doc, c, DSIG_NS, "Reference"))
        .collect();
    let mut body_reference = None;
    for &reference in &references {
        let uri = doc
            .element(reference)
            .and_then(|e| e.get_attribute("URI"))
            .unwrap_or("");
        let Some(target) = uri.strip_prefix('#').filter(|t| !t.is_empty()) else {
            return Err(WsSecError::WrongReference(format!(
                "Reference URI {uri:?} is not a same-document #id reference"
            )));
        };
        if target == body_id {
            if body_reference.is_some() {
                return Err(WsSecError::WrongReference(
                    "the Body is referenced twice".into(),
                ));
            }
            body_reference = Some(reference);
        } else if timestamp_id.as_deref() != Some(target) {
            return Err(WsSecError::WrongReference(
                "a Reference points at something other than the soapenv:Body of this envelope"
                    .into(),
            ));
        }
        check_reference_algorithms(&doc, reference, trust.allow_sha1)?;
    }
    let body_reference = body_reference.ok_or_else(|| {
        WsSecError::WrongReference(
            "no Reference points at the wsu:Id of the soapenv:Body of this envelope".into(),
        )
    })?;
    let digest_method = algorithm_of(
        &doc,
        required_child(&doc, body_reference, DSIG_NS, "DigestMethod")?,
    )?
    .to_owned();

    // --- Key: KeyInfo/SecurityTokenReference/Reference -> the BinarySecurityToken.
    let cert_der = token_certificate(&doc, security, signature)?;
    trust.check_certificate(&cert_der)?;
    let key = bergshamra::keys::loader::load_x509_cert_der(&cert_der).map_err(|_| {
        WsSecError::UntrustedCertificate("the certificate's public key cannot be read".into())
    })?;
    if key.algorithm_name() != "RSA" {
        return Err(WsSecError::UntrustedCertificate(format!(
            "the certificate has an {} key, the profile signs with RSA",
            key.algorithm_name()
        )));
    }

    // --- The cryptography: bergshamra, with this one key only.
    let mut keys = KeysManager::new();
    keys.add_key(key);
    let ctx = DsigContext::new(keys).with_strict_verification(false);
    let result = bergshamra::dsig::verify::verify_document_with_source(&ctx, &doc, Some(signed))
        .map_err(map_verify_error)?;
    match result {
        VerifyResult::Valid { references, .. } => {
            let body_uri = format!("#{body_id}");
            let covered = references.iter().any(|r| {
                r.uri == body_uri && r.resolved_node == Some(soap.body) && r.digest_verified
            });
            if !covered || references.iter().any(|r| !r.digest_verified) {
                return Err(WsSecError::WrongReference(
                    "the verified element is not the soapenv:Body of this envelope".into(),
                ));
            }
        }
        VerifyResult::Invalid { reason } => {
            return Err(if reason.starts_with(INVALID_DIGEST_PREFIX) {
                WsSecError::BadDigest
            } else {
                WsSecError::BadSignature
            });
        }
    }

    // --- The verified Body, canonical (same transform as the Reference's).
    let prefixes = reference_inclusive_prefixes(&doc, body_reference);
    let node_set = NodeSet::tree_without_comments(soap.body, &doc);
    let canonical =
        bergshamra::c14n::canonicalize_doc(&doc, C14nMode::Exclusive, Some(&node_set), &prefixes)
            .map_err(|e| WsSecError::Malformed(format!("canonicalizing the Body: {e}")))?;
    let body = String::from_utf8(canonical)
        .map_err(|_| WsSecError::Malformed("canonical Body is not UTF-8".into()))?;

    Ok(VerifiedEnvelope {
        signer_certificate: cert_der,
        body_id,
        body,
        signature_method: signature_method.to_owned(),
        digest_method,
    })
}

fn map_verify_error(e: bergshamra::Error) -> WsSecError {
    use bergshamra::Error as E;
    match e {
        E::XmlStructure(m) if m.contains("duplicate ID") => WsSecError::WrongReference(
            "an ID value occurs on more than one element (signature wrapping)".into(),
        ),
        E::UnsupportedAlgorithm(m) => WsSecError::UnsupportedAlgorithm(m),
        E::Crypto(_) | E::SignatureInvalid(_) => WsSecError::BadSignature,
        E::DigestMismatch(_) => WsSecError::BadDigest,
        E::Base64(m) => WsSecError::Malformed(format!("base64: {m}")),
        other => WsSecError::Malformed(other.to_string()),
    }
}

fn check_signature_method(uri: &str, allow_sha1: bool) -> Result<(), WsSecError> {
    match uri {
        RSA_SHA256 | RSA_SHA384 | RSA_SHA512 => Ok(()),
        RSA_SHA1 if allow_sha1 => Ok(()),
        _ if is_weak(uri) => Err(WsSecError::WeakAlgorithm(format!("SignatureMethod {uri}"))),
        _ => Err(WsSecError::UnsupportedAlgorithm(format!(
            "SignatureMethod {uri}"
        ))),
    }
}

fn check_digest_method(uri: &str, allow_sha1: bool) -> Result<(), WsSecError> {
    match uri {
        SHA256 | SHA384 | SHA512 => Ok(()),
        SHA1 if allow_sha1 => Ok(()),
        _ if is_weak(uri) => Err(WsSecError::WeakAlgorithm(format!("DigestMethod {uri}"))),
        _ => Err(WsSecError::UnsupportedAlgorithm(format!(
            "DigestMethod {uri}"
        ))),
    }
}

pub(crate) fn is_weak(uri: &str) -> bool {
    let fragment = uri.rsplit('#').next().unwrap_or("");
    fragment.contains("sha1") || fragment.contains("md5") || fragment.contains("ripemd")
}

fn check_reference_algorithms(
    doc: &Document<'_>,
    reference: NodeId,
    allow_sha1: bool,
) -> Result<(), WsSecError> {
    // Exactly one transform, exclusive C14N (without it a node-set reference would fall
    // back to inclusive C14N, which the profile does not use).
    let transforms = required_child(doc, reference, DSIG_NS, "Transforms")?;
    let transforms = child_elements(doc, transforms);
    let [transform] = transforms.as_slice() else {
        return Err(WsSecError::UnsupportedAlgorithm(
            "a Reference must have exactly one Transform, exclusive C14N".into(),
        ));
    };
    if !is(doc, *transform, DSIG_NS, "Transform") {
        return Err(WsSecError::Malformed(
            "unexpected element in Transforms".into(),
        ));
    }
    let uri = algorithm_of(doc, *transform)?;
    if uri != EXC_C14N {
        return Err(WsSecError::UnsupportedAlgorithm(format!("Transform {uri}")));
    }
    let digest = algorithm_of(
        doc,
        required_child(doc, reference, DSIG_NS, "DigestMethod")?,
    )?;
    check_digest_method(digest, allow_sha1)
}

fn reference_inclusive_prefixes(doc: &Document<'_>, reference: NodeId) -> Vec<String> {
    let mut prefixes = Vec::new();
    for transforms in child_elements(doc, reference) {
        if !is(doc, transforms, DSIG_NS, "Transforms") {
            continue;
        }
        for transform in child_elements(doc, transforms) {
            for inc in child_elements(doc, transform) {
                if let Some(list) = doc
                    .element(inc)
                    .filter(|e| e.name.local_name == "InclusiveNamespaces")
                    .and_then(|e| e.get_attribute("PrefixList"))
                {
                    prefixes.extend(list.split_whitespace().map(str::to_owned));
                }
            }
        }
    }
    prefixes
}

/// The DER certificate of the BinarySecurityToken that the Signature's
/// KeyInfo/SecurityTokenReference/Reference names, inside the same Security header.
fn token_certificate(
    doc: &Document<'_>,
    security: NodeId,
    signature: NodeId,
) -> Result<Vec<u8>, WsSecError> {
    let key_info = required_child(doc, signature, DSIG_NS, "KeyInfo")?;
    let str_node = child_elements(doc, key_info)
        .into_iter()
        .find(|&c| is(doc, c, WSSE_NS, "SecurityTokenReference"))
        .ok_or_else(|| {
            WsSecError::Malformed("KeyInfo has no wsse:SecurityTokenReference".into())
        })?;
    let reference = child_elements(doc, str_node)
        .into_iter()
        .find(|&c| is(doc, c, WSSE_NS, "Reference"))
        .ok_or_else(|| {
            WsSecError::Malformed(
                "unsupported token reference: expected wsse:Reference to a BinarySecurityToken"
                    .into(),
            )
        })?;
    let reference = doc.element(reference).expect("element");
    if let Some(vt) = reference.get_attribute("ValueType") {
        if vt != X509_V3 {
            return Err(WsSecError::Malformed(format!(
                "token reference ValueType {vt} is not X509v3"
            )));
        }
    }
    let token_id = reference
        .get_attribute("URI")
        .and_then(|u| u.strip_prefix('#'))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            WsSecError::Malformed("token reference URI is not a same-document #id".into())
        })?;
    if count_id(doc, token_id) != 1 {
        return Err(WsSecError::Malformed(
            "the token's wsu:Id value is not unique".into(),
        ));
    }
    let token = child_elements(doc, security)
        .into_iter()
        .find(|&c| {
            doc.element(c)
                .and_then(|e| e.get_attribute_ns(WSU_NS, "Id"))
                == Some(token_id)
        })
        .ok_or_else(|| {
            WsSecError::Malformed(
                "the token reference does not name an element of this wsse:Security".into(),
            )
        })?;
    if !is(doc, token, WSSE_NS, "BinarySecurityToken") {
        return Err(WsSecError::Malformed(
            "the token reference does not name a wsse:BinarySecurityToken".into(),
        ));
    }
    let token_el = doc.element(token).expect("element");
    if token_el.get_attribute("ValueType") != Some(X509_V3) {
        return Err(WsSecError::Malformed(
            "the BinarySecurityToken is not an X509v3 token".into(),
        ));
    }
    if let Some(enc) = token_el.get_attribute("EncodingType") {
        if enc != BASE64_BINARY {
            return Err(WsSecError::Malformed(format!(
                "BinarySecurityToken EncodingType {enc} is not Base64Binary"
            )));
        }
    }
    let b64: String = doc
        .text_content_deep(token)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| WsSecError::Malformed("BinarySecurityToken is not valid base64".into()))
}

// ------------------------------------------------------------------------------------------
// XML helpers (navigation only; canonical XML is bergshamra's)

pub(crate) fn parse(xml: &str) -> Result<Document<'_>, WsSecError> {
    uppsala::Parser::new()
        .with_forbid_dtd(true)
        .parse(xml)
        .map_err(|e| {
            if xml.contains("<!DOCTYPE") {
                WsSecError::Doctype
            } else {
                WsSecError::Malformed(format!("not well-formed XML: {e}"))
            }
        })
}

/// The Envelope, its optional Header and its Body.
struct SoapParts {
    header: Option<NodeId>,
    body: NodeId,
}

impl SoapParts {
    fn locate(doc: &Document<'_>) -> Result<Self, WsSecError> {
        let envelope = doc
            .document_element()
            .ok_or_else(|| WsSecError::Malformed("empty document".into()))?;
        if !is(doc, envelope, SOAP11_NS, "Envelope") {
            return Err(WsSecError::Malformed(
                "the root element is not a SOAP 1.1 soapenv:Envelope".into(),
            ));
        }
        let mut header = None;
        let mut body = None;
        for child in doc.children(envelope) {
            match doc.node_kind(child) {
                Some(NodeKind::Element(_)) => {}
                Some(NodeKind::Text(t)) if t.trim().is_empty() => continue,
                Some(NodeKind::Comment(_)) | Some(NodeKind::ProcessingInstruction(_)) => continue,
                _ => {
                    return Err(WsSecError::Malformed(
                        "text directly inside soapenv:Envelope".into(),
                    ))
                }
            }
            if is(doc, child, SOAP11_NS, "Header") && header.is_none() && body.is_none() {
                header = Some(child);
            } else if is(doc, child, SOAP11_NS, "Body") && body.is_none() {
                body = Some(child);
            } else {
                return Err(WsSecError::Malformed(
                    "soapenv:Envelope must hold an optional soapenv:Header and one soapenv:Body, nothing else"
                        .into(),
                ));
            }
        }
        let body = body.ok_or_else(|| WsSecError::Malformed("no soapenv:Body".into()))?;
        Ok(Self { header, body })
    }
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

fn required_child(
    doc: &Document<'_>,
    parent: NodeId,
    ns: &str,
    local: &str,
) -> Result<NodeId, WsSecError> {
    let found: Vec<NodeId> = child_elements(doc, parent)
        .into_iter()
        .filter(|&c| is(doc, c, ns, local))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(WsSecError::Malformed(format!("missing ds:{local}"))),
        _ => Err(WsSecError::Malformed(format!("more than one ds:{local}"))),
    }
}

pub(crate) fn algorithm_of<'d>(doc: &'d Document<'_>, node: NodeId) -> Result<&'d str, WsSecError> {
    doc.element(node)
        .and_then(|e| e.get_attribute("Algorithm"))
        .ok_or_else(|| WsSecError::Malformed("an algorithm element has no Algorithm".into()))
}

/// How many elements carry `id` in an attribute that XML-DSig implementations treat as an
/// ID (any `Id`/`ID`/`id`/`AssertionID`, whatever its namespace, or `xml:id`).
pub(crate) fn count_id(doc: &Document<'_>, id: &str) -> usize {
    doc.descendants(doc.root())
        .into_iter()
        .filter(|&n| {
            doc.element(n).is_some_and(|e| {
                e.attributes.iter().any(|a| {
                    matches!(&*a.name.local_name, "Id" | "ID" | "id" | "AssertionID")
                        && a.value == id
                })
            })
        })
        .count()
}

fn check_ncname_id(id: &str) -> Result<(), WsSecError> {
    let ok = id
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(WsSecError::Malformed(
            "the Body's wsu:Id is not an NCName".into(),
        ))
    }
}

/// The byte offset just past the `>` that ends the start tag beginning at `start`, and
/// whether the tag is self-closing (`/>`).
fn start_tag_end(xml: &str, start: usize) -> Result<(usize, bool), WsSecError> {
    let bytes = xml.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return Ok((i + 1, i > start && bytes[i - 1] == b'/')),
            None => {}
        }
        i += 1;
    }
    Err(WsSecError::Malformed("unterminated start tag".into()))
}
