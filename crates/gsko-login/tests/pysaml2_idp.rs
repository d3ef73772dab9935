//! GSKO's service provider against a third-party SAML implementation: the pysaml2 identity
//! provider of `scripts/wk_idp_pysaml2.py` (xmlsec1 signatures, `cryptography` ECDH-ES), run as
//! a separate process on loopback. It shares no code with GSKO or with `gsko-sim`.

mod support;

use base64::Engine;
use chrono::Duration;
use gsko_login::{
    certificates_from_pem, DecryptionKey, IdpEndpoints, LoginError, LoginService, Return,
    ServiceProvider, SessionError, SessionKeys, SessionPolicy, Signer, SpSettings,
};
use gsko_sim::login::{make_sp_credentials, SpCredentials};
use gsko_store::SqliteStore;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use support::{hidden, now, ACS, ANNA, SP_ENTITY};

const IDP_ENTITY: &str = "pysaml2-idp.test";
const INSTALL_HINT: &str = "pip install -r scripts/requirements-test.txt";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The interop test is part of `make test`, which installs pysaml2 (scripts/ensure-services.sh):
/// a missing library is a broken environment, so it fails here rather than passing unnoticed.
fn require_pysaml2() {
    let probe = Command::new("python3")
        .args(["-c", "import saml2, lxml, cryptography"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python3 cannot import pysaml2, lxml or cryptography ({}); run `{INSTALL_HINT}` \
             (make test does it through scripts/ensure-services.sh)",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => panic!(
            "python3 cannot be run ({e}); install Python 3 and run `{INSTALL_HINT}` \
             (make test does it through scripts/ensure-services.sh)"
        ),
    }
}

/// The running pysaml2 identity provider; killed when dropped, so a failed assertion leaves no
/// process behind.
struct PysamlIdp {
    child: Child,
    base_url: String,
    certificate_pem: String,
    stderr_path: PathBuf,
}

impl PysamlIdp {
    fn start(workdir: &Path, creds: &SpCredentials, resident: &str) -> PysamlIdp {
        require_pysaml2();
        let stderr_path = workdir.join("idp-stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new("python3")
            .arg(repo_root().join("scripts/wk_idp_pysaml2.py"))
            .args(["--port", "0", "--entity-id", IDP_ENTITY])
            .args(["--sp-entity-id", SP_ENTITY, "--acs-url", ACS])
            .arg("--sp-signing-cert")
            .arg(&creds.signing_cert_path)
            .arg("--sp-encryption-cert")
            .arg(&creds.encryption_cert_path)
            .args(["--resident", resident])
            .arg("--workdir")
            .arg(workdir.join("idp"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("python3 starts the pysaml2 identity provider");
        // Read the READY line on a thread so that an IdP that hangs fails the test in time.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // A read error leaves the line empty, which the waiting side reports.
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).ok();
            // The waiting side may have given up already.
            tx.send(line).ok();
        });
        let mut idp = PysamlIdp {
            child,
            base_url: String::new(),
            certificate_pem: String::new(),
            stderr_path,
        };
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_default();
        let mut words = line.split_whitespace();
        let (Some("READY"), Some(base_url), Some(cert_path)) =
            (words.next(), words.next(), words.next())
        else {
            panic!(
                "the pysaml2 IdP did not get ready (stdout {line:?}); its stderr:\n{}",
                idp.stderr()
            );
        };
        idp.base_url = base_url.to_owned();
        idp.certificate_pem = std::fs::read_to_string(cert_path).unwrap();
        idp
    }

    fn sso_url(&self) -> String {
        format!("{}/login/SingleSignOnService", self.base_url)
    }

    /// What the IdP wrote to stderr: it logs only refusals (and pysaml2 is silenced).
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for PysamlIdp {
    fn drop(&mut self) {
        // The process may have exited on its own; then there is nothing to stop.
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

struct Interop {
    _dir: tempfile::TempDir,
    idp: PysamlIdp,
    login: LoginService,
    http: reqwest::Client,
}

async fn interop(resident: &str) -> Interop {
    let dir = tempfile::tempdir().unwrap();
    let creds = make_sp_credentials(dir.path()).unwrap();
    let idp = PysamlIdp::start(dir.path(), &creds, resident);
    let settings = SpSettings::new(
        SP_ENTITY,
        ACS,
        IdpEndpoints::under(IDP_ENTITY, &idp.base_url),
    );
    let sp = ServiceProvider::new(
        settings,
        Signer::from_pem(&creds.signing_cert_pem, &creds.signing_key_pem).unwrap(),
        DecryptionKey::from_pem(&creds.encryption_key_pem).unwrap(),
        certificates_from_pem(&idp.certificate_pem).unwrap(),
    )
    .unwrap();
    let store = Arc::new(
        SqliteStore::open(dir.path().join("login.db"))
            .await
            .unwrap(),
    );
    let login = LoginService {
        sp,
        keys: SessionKeys::new(vec![vec![7; 32]]).unwrap(),
        store,
        policy: SessionPolicy {
            ttl: Duration::minutes(15),
            max: Duration::hours(8),
            login_timeout: Duration::minutes(10),
            return_origins: vec![],
        },
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    Interop {
        _dir: dir,
        idp,
        login,
        http,
    }
}

/// Posts GSKO's login form to the pysaml2 IdP (which logs its one resident in at once) and
/// returns the (SAMLart, RelayState) of the form it sends back towards the ACS.
async fn at_pysaml2_idp(w: &Interop, form: &str) -> (String, String) {
    let answer = w
        .http
        .post(w.idp.sso_url())
        .form(&[
            (
                "SAMLRequest",
                hidden(form, "SAMLRequest").expect("SAMLRequest"),
            ),
            (
                "RelayState",
                hidden(form, "RelayState").expect("RelayState"),
            ),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let page = answer.text().await.unwrap();
    assert_eq!(
        status,
        200,
        "pysaml2 accepts GSKO's AuthnRequest: {page}; IdP stderr:\n{}",
        w.idp.stderr()
    );
    (
        hidden(&page, "SAMLart").expect("SAMLart"),
        hidden(&page, "RelayState").expect("RelayState"),
    )
}

/// The ID of the AuthnRequest a login form carries (what the Response must answer).
fn request_id(form: &str) -> String {
    let xml = base64::engine::general_purpose::STANDARD
        .decode(hidden(form, "SAMLRequest").unwrap())
        .unwrap();
    let xml = String::from_utf8(xml).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.root_element().attribute("ID").unwrap().to_owned()
}

#[tokio::test]
async fn a_resident_logs_in_through_pysaml2_and_logs_out_there() {
    let w = interop(&format!("{ANNA},Anna,Wiśniewska,2002-07-08")).await;
    let form = w.login.begin("", now()).await.unwrap();
    let sent_relay = hidden(&form, "RelayState").unwrap();
    let (artifact, relay) = at_pysaml2_idp(&w, &form).await;
    assert_eq!(
        relay, sent_relay,
        "the IdP returns the RelayState unchanged"
    );

    let (session, back) = w
        .login
        .complete(&artifact, &relay, now())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "GSKO accepts pysaml2's answer: {e}; IdP stderr:\n{}",
                w.idp.stderr()
            )
        });
    assert_eq!(session.pesel, ANNA, "PersonIdentifier gives the PESEL");
    assert_eq!(session.given_name, "Anna");
    assert_eq!(session.family_name, "Wiśniewska", "non-ASCII names survive");
    assert_eq!(session.loa, "http://eidas.europa.eu/LoA/substantial");
    assert_eq!(session.name_id, ANNA, "the IdP's NameID is kept for logout");
    assert!(
        session.session_index.is_some(),
        "the SessionIndex is kept for logout"
    );
    assert_eq!(back, Return::Local("/v1/session".into()));
    let token = w.login.token(&session);
    assert!(w.login.authenticate(&token, now()).await.is_ok());

    // The SP's own call, whose error `LoginService::logout` would only log: pysaml2 must take
    // the signed LogoutRequest and its signed LogoutResponse must verify here.
    w.login
        .sp
        .logout(&session.name_id, session.session_index.as_deref(), now())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "single logout at pysaml2: {e}; IdP stderr:\n{}",
                w.idp.stderr()
            )
        });
    w.login.logout(&session, now()).await.unwrap();
    assert!(matches!(
        w.login.authenticate(&token, now()).await,
        Err(SessionError::Ended)
    ));
    assert_eq!(
        w.idp.stderr(),
        "",
        "the IdP refused nothing GSKO sent (it logs only refusals)"
    );
}

#[tokio::test]
async fn a_pysaml2_artifact_is_used_once() {
    let w = interop(&format!("{ANNA},Anna,Nowak,2002-07-08")).await;
    let form = w.login.begin("", now()).await.unwrap();
    let (artifact, relay) = at_pysaml2_idp(&w, &form).await;
    let (session, _) = w.login.complete(&artifact, &relay, now()).await.unwrap();
    assert_eq!(session.pesel, ANNA);

    // GSKO refuses the replay itself, before asking the IdP.
    let replay = w.login.complete(&artifact, &relay, now()).await;
    assert!(matches!(replay, Err(LoginError::Replayed)), "{replay:?}");

    // And pysaml2 resolves an artifact once: asked again, it answers without a Response, which
    // GSKO reads as a refusal.
    let again = w
        .login
        .sp
        .resolve(&artifact, &request_id(&form), now())
        .await;
    assert!(matches!(again, Err(LoginError::Status(_))), "{again:?}");
}
