//! Signing and verifying with the `xmlsec1` command-line tool, and EC P-256 keys made with the
//! `openssl` command-line tool: the simulator's XML-DSig is libxmlsec1's, not GSKO's.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    let out = tokio::process::Command::new(xmlsec1)
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", key_path.display(), cert_path.display()))
        .arg("--id-attr:ID")
        .arg(id_element)
        .arg("--enabled-reference-uris")
        .arg("same-doc")
        .arg("--output")
        .arg(&output)
        .arg(&input)
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
/// in the message is ignored (`--enabled-key-data key-name`), so a message signed by any other
/// key fails. The caller checks which element the signature references.
pub(crate) async fn verify(
    xmlsec1: &Path,
    cert_pem: &str,
    document: &[u8],
    id_element: &str,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("message.xml");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&input, document).map_err(|e| e.to_string())?;
    std::fs::write(&cert, cert_pem).map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new(xmlsec1)
        .arg("--verify")
        .arg("--enabled-reference-uris")
        .arg("same-doc")
        .arg("--id-attr:ID")
        .arg(id_element)
        .arg("--enabled-key-data")
        .arg("key-name")
        .arg("--pubkey-cert-pem")
        .arg(&cert)
        .arg(&input)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run xmlsec1: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rfind(|l| l.contains("error") || l.starts_with("FAIL"))
            .unwrap_or("verification failed");
        Err(format!("xmlsec1: {last}"))
    }
}

/// Makes an unencrypted PKCS#8 EC P-256 key and a self-signed certificate in `dir` as
/// `<stem>-key.pem` and `<stem>-cert.pem`. Fails with `NotFound` without `openssl`.
///
/// The certificate is valid from 2020-01-01 to 2045-12-31, not from "now": an assertion the
/// `ExpiredAssertion` fault dates 40 minutes back must still fall inside its signer's
/// validity, so that a verifier reports the expiry and not the certificate. `openssl req -x509`
/// (OpenSSL 3.0) cannot backdate, `openssl ca -selfsign -startdate` can.
pub(crate) fn ec_key_and_certificate(
    dir: &Path,
    stem: &str,
    common_name: &str,
) -> io::Result<(PathBuf, PathBuf)> {
    let key = dir.join(format!("{stem}-key.pem"));
    let cert = dir.join(format!("{stem}-cert.pem"));
    let work = tempfile::tempdir()?;
    let csr = work.path().join("request.pem");
    openssl(
        Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .args(["-nodes", "-sha256", "-utf8", "-subj"])
            .arg(format!(
                "/C=PL/O=Symulator GSKO/CN={}",
                common_name.replace('\\', "\\\\").replace('/', "\\/")
            ))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    )?;
    let database = work.path().join("index.txt");
    std::fs::write(&database, b"")?;
    // `openssl ca` wants a serial file even when `-rand_serial` chooses the number.
    let serial = work.path().join("serial");
    std::fs::write(&serial, b"01\n")?;
    let config = work.path().join("ca.cnf");
    std::fs::write(
        &config,
        format!(
            "[ca]\ndefault_ca = self\n[self]\ndatabase = {database}\nnew_certs_dir = {work}\nserial = {serial}\n\
             default_md = sha256\npolicy = anything\nunique_subject = no\npreserve = yes\n\
             x509_extensions = extensions\n\
             [anything]\ncountryName = optional\norganizationName = optional\ncommonName = supplied\n\
             [extensions]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyAgreement\n\
             subjectKeyIdentifier = hash\n",
            database = database.display(),
            serial = serial.display(),
            work = work.path().display(),
        ),
    )?;
    openssl(
        Command::new("openssl")
            .args([
                "ca",
                "-batch",
                "-selfsign",
                "-notext",
                "-utf8",
                "-rand_serial",
            ])
            .arg("-config")
            .arg(&config)
            .arg("-keyfile")
            .arg(&key)
            .arg("-in")
            .arg(&csr)
            .args([
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20451231235959Z",
            ])
            .arg("-out")
            .arg(&cert),
    )?;
    Ok((key, cert))
}

fn openssl(command: &mut Command) -> io::Result<()> {
    let out = command.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
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
