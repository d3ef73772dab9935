//! The command-line tools the simulators sign, verify and make certificates with: `openssl`
//! and `xmlsec1` (libxmlsec1 on OpenSSL), a widely used C implementation that shares nothing
//! with GSKO's own signature code (ARCHITECTURE.md, "Simulators").

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Command;

/// Runs an `openssl` command and returns what it printed on standard output. Fails with
/// `NotFound` without `openssl`, and with `Other` carrying its stderr when it fails.
pub(crate) fn openssl(command: &mut Command) -> io::Result<Vec<u8>> {
    let out = command.output()?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(io::Error::other(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The key a simulated certificate is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa2048,
    EcP256,
}

/// Makes an unencrypted PKCS#8 key at `key_out` and a self-signed certificate
/// `C=PL, O=Symulator GSKO, CN=<common_name>` at `cert_out` (both PEM), with a random serial and
/// `keyUsage = <key_usage>`. Fails with `NotFound` without `openssl`.
///
/// The certificate is valid from 2020-01-01 to 2045-12-31, not from "now": documents and
/// assertions are dated before a simulator starts (a letter signed years ago, an assertion the
/// `ExpiredAssertion` fault dates back), and a verifier checks the certificate at that time.
/// `openssl req -x509` (OpenSSL 3.0) cannot backdate, `openssl ca -selfsign -startdate` can.
pub(crate) fn self_signed_certificate(
    key_type: KeyType,
    common_name: &str,
    key_usage: &str,
    key_out: &Path,
    cert_out: &Path,
) -> io::Result<()> {
    let work = tempfile::tempdir()?;
    let csr = work.path().join("request.pem");
    let new_key: &[&str] = match key_type {
        KeyType::Rsa2048 => &["rsa:2048"],
        KeyType::EcP256 => &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    openssl(
        Command::new("openssl")
            .args(["req", "-new", "-newkey"])
            .args(new_key)
            .args(["-nodes", "-sha256", "-utf8", "-subj"])
            // `-subj` separates RDNs with '/' and escapes with '\'.
            .arg(format!(
                "/C=PL/O=Symulator GSKO/CN={}",
                common_name.replace('\\', "\\\\").replace('/', "\\/")
            ))
            .arg("-keyout")
            .arg(key_out)
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
             [extensions]\nbasicConstraints = CA:FALSE\nkeyUsage = {key_usage}\n\
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
            .arg(key_out)
            .arg("-in")
            .arg(&csr)
            .args([
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20451231235959Z",
            ])
            .arg("-out")
            .arg(cert_out),
    )?;
    Ok(())
}

/// Whether `xmlsec1 --version` runs: the simulators that sign or verify refuse to start
/// without it rather than fail on the first request. Blocking, but only for a moment at start.
pub(crate) fn xmlsec1_runs(xmlsec1: &Path) -> bool {
    Command::new(xmlsec1)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// An `xmlsec1 --id-attr:<attribute> <element>` pair: the element (`namespace:LocalName`) a
/// same-document reference may point at, by its attribute `attribute` (`ID`, `Id`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdAttribute<'a> {
    pub attribute: &'a str,
    pub element: &'a str,
}

impl IdAttribute<'_> {
    fn args(&self) -> [OsString; 2] {
        [
            format!("--id-attr:{}", self.attribute).into(),
            self.element.into(),
        ]
    }
}

/// The `xmlsec1 --sign` command that fills in the template's first `ds:Signature` with the PEM
/// key and certificate and writes the signed document to `signed`. `reference_uris` is the
/// `--enabled-reference-uris` list (`same-doc`, `empty,same-doc`). Built as a
/// `std::process::Command` so that async callers can turn it into a Tokio one.
pub(crate) fn xmlsec1_sign_command(
    xmlsec1: &Path,
    key_pem: &Path,
    cert_pem: &Path,
    signed_element: IdAttribute<'_>,
    reference_uris: &str,
    template: &Path,
    signed: &Path,
) -> Command {
    let mut key_and_cert = key_pem.as_os_str().to_owned();
    key_and_cert.push(",");
    key_and_cert.push(cert_pem);
    let mut command = Command::new(xmlsec1);
    command
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(key_and_cert)
        .args(signed_element.args())
        .arg("--enabled-reference-uris")
        .arg(reference_uris)
        .arg("--output")
        .arg(signed)
        .arg(template);
    command
}

/// The certificate whose key alone may verify a signature.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VerifyingCertificate<'a> {
    Pem(&'a str),
    Der(&'a [u8]),
}

/// Verifies the document's first `ds:Signature` with `xmlsec1 --verify`, same-document
/// references only, resolved through `id_attributes`. Only `certificate` may verify: without
/// `--enabled-key-data key-name`, xmlsec1 would also take a key the message itself carries.
/// The caller checks which elements the signature references. The error is
/// `xmlsec1: <the last error line it printed>`, or why it could not run.
pub(crate) async fn xmlsec1_verify(
    xmlsec1: &Path,
    document: &[u8],
    certificate: VerifyingCertificate<'_>,
    id_attributes: &[IdAttribute<'_>],
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("message.xml");
    std::fs::write(&input, document).map_err(|e| e.to_string())?;
    let (cert_flag, cert_name, cert_bytes) = match certificate {
        VerifyingCertificate::Pem(pem) => ("--pubkey-cert-pem", "cert.pem", pem.as_bytes()),
        VerifyingCertificate::Der(der) => ("--pubkey-cert-der", "cert.der", der),
    };
    let cert = dir.path().join(cert_name);
    std::fs::write(&cert, cert_bytes).map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(xmlsec1);
    command
        .arg("--verify")
        .arg("--enabled-reference-uris")
        .arg("same-doc");
    for id in id_attributes {
        command.args(id.args());
    }
    let out = command
        .arg("--enabled-key-data")
        .arg("key-name")
        .arg(cert_flag)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_returns_stdout_or_its_complaint() {
        let Ok(version) = openssl(Command::new("openssl").arg("version")) else {
            eprintln!("skipped: openssl is not installed");
            return;
        };
        assert!(String::from_utf8_lossy(&version).starts_with("OpenSSL"));
        let err =
            openssl(Command::new("openssl").args(["x509", "-in", "/nonexistent"])).unwrap_err();
        assert!(err.to_string().starts_with("openssl failed: "), "{err}");
    }

    #[test]
    fn certificate_is_backdated_and_names_the_subject() {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
        match self_signed_certificate(KeyType::EcP256, "Test/CN", "digitalSignature", &key, &cert) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("skipped: openssl is not installed");
                return;
            }
            other => other.unwrap(),
        }
        let printed = openssl(
            Command::new("openssl")
                .args(["x509", "-noout", "-subject", "-startdate", "-enddate"])
                .args(["-nameopt", "RFC2253", "-in"])
                .arg(&cert),
        )
        .unwrap();
        let printed = String::from_utf8_lossy(&printed);
        assert!(
            printed.contains("CN=Test/CN,O=Symulator GSKO,C=PL"),
            "{printed}"
        );
        assert!(
            printed.contains("notBefore=Jan  1 00:00:00 2020 GMT"),
            "{printed}"
        );
        assert!(
            printed.contains("notAfter=Dec 31 23:59:59 2045 GMT"),
            "{printed}"
        );
        assert!(std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
    }
}
