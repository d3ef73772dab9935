//! Signing and verifying with the `xmlsec1` command-line tool, and EC P-256 keys made with the
//! `openssl` command-line tool: the simulator's XML-DSig is libxmlsec1's, not GSKO's.

use std::io;
use std::path::{Path, PathBuf};

use crate::tools::{
    self_signed_certificate, xmlsec1_sign_command, xmlsec1_verify, IdAttribute, KeyType,
    VerifyingCertificate,
};

pub(crate) const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub(crate) const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const ECDSA_SHA1: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// Which digest the simulator's signatures use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    Sha256,
    /// For the `Sha1Signatures` fault.
    Sha1,
}

/// An unsigned `ds:Signature` for the element with `ID="{id}"`, to be placed right after its
/// `saml2:Issuer`; the `ds` prefix must be declared on that element. The exc-c14n transform
/// carries the `InclusiveNamespaces` list Węzeł Krajowy's own signatures carry (spec §3.4).
pub(crate) fn signature_template(id: &str, digest: Digest) -> String {
    let (signature_method, digest_method) = match digest {
        Digest::Sha256 => (ECDSA_SHA256, SHA256),
        Digest::Sha1 => (ECDSA_SHA1, SHA1),
    };
    format!(
        "<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
         <ds:SignatureMethod Algorithm=\"{signature_method}\"/><ds:Reference URI=\"#{id}\">\
         <ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"/><ds:Transform Algorithm=\"{EXC_C14N}\">\
         <ec:InclusiveNamespaces xmlns:ec=\"{EXC_C14N}\" PrefixList=\"ds saml2 saml2p xenc\"/>\
         </ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"{digest_method}\"/>\
         <ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>\
         <ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\
         </ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"
    )
}

/// Drops a leading `<?xml …?>` declaration (and the whitespace after it) so that a signed
/// element can be embedded in another document.
pub(crate) fn strip_declaration(xml: &[u8]) -> &[u8] {
    let mut rest = xml;
    if rest.starts_with(b"<?xml") {
        if let Some(end) = rest.windows(2).position(|w| w == b"?>") {
            rest = &rest[end + 2..];
        }
    }
    let start = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let end = rest
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &rest[start..end]
}

/// Signs the template's first `ds:Signature`; `id_element` is the signed element as
/// `namespace:LocalName` (its `ID` attribute is declared an ID). Returns the signed document
/// without its XML declaration.
pub(crate) async fn sign(
    xmlsec1: &Path,
    key_path: &Path,
    cert_path: &Path,
    template: &[u8],
    id_element: &str,
) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("template.xml");
    let output = dir.path().join("signed.xml");
    std::fs::write(&input, template).map_err(|e| e.to_string())?;
    let command = xmlsec1_sign_command(
        xmlsec1,
        key_path,
        cert_path,
        id_attribute(id_element),
        "same-doc",
        &input,
        &output,
    );
    let out = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run xmlsec1: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "xmlsec1 --sign failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let signed = std::fs::read(&output).map_err(|e| e.to_string())?;
    Ok(strip_declaration(&signed).to_vec())
}

/// Verifies the document's first `ds:Signature` with `cert_pem` as the only key: `KeyInfo`
/// in the message is ignored, so a message signed by any other key fails. The caller checks
/// which element the signature references.
pub(crate) async fn verify(
    xmlsec1: &Path,
    cert_pem: &str,
    document: &[u8],
    id_element: &str,
) -> Result<(), String> {
    xmlsec1_verify(
        xmlsec1,
        document,
        VerifyingCertificate::Pem(cert_pem),
        &[id_attribute(id_element)],
    )
    .await
}

/// SAML messages are referenced by their `ID` attribute.
fn id_attribute(element: &str) -> IdAttribute<'_> {
    IdAttribute {
        attribute: "ID",
        element,
    }
}

/// Makes an unencrypted PKCS#8 EC P-256 key and a self-signed certificate (for signing and
/// ECDH key agreement) in `dir` as `<stem>-key.pem` and `<stem>-cert.pem`. Fails with
/// `NotFound` without `openssl`. Valid from 2020, so that an assertion the `ExpiredAssertion`
/// fault dates 40 minutes back still falls inside its signer's validity and a verifier reports
/// the expiry, not the certificate.
pub(crate) fn ec_key_and_certificate(
    dir: &Path,
    stem: &str,
    common_name: &str,
) -> io::Result<(PathBuf, PathBuf)> {
    let key = dir.join(format!("{stem}-key.pem"));
    let cert = dir.join(format!("{stem}-cert.pem"));
    self_signed_certificate(
        KeyType::EcP256,
        common_name,
        "digitalSignature, keyAgreement",
        &key,
        &cert,
    )?;
    Ok((key, cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_the_declaration() {
        assert_eq!(
            strip_declaration(b"<?xml version=\"1.0\"?>\n<a>x</a>\n"),
            b"<a>x</a>"
        );
        assert_eq!(strip_declaration(b"<a/>"), b"<a/>");
    }
}
