//! Simulator: Węzeł Krajowy (login.gov.pl), the SAML 2.0 identity provider residents log in
//! with (`/work/shared/specs/epuap-login-edoreczenia.md` §3).
//!
//! A second, independent implementation of the IdP side: it shares nothing with GSKO's
//! service provider. Requests are read with the simulators' own quick-xml tree, answers are
//! written by hand, every XML signature is made and checked by the `xmlsec1` command-line tool
//! (ECDSA P-256 keys made by `openssl`), and the assertion is encrypted here with RustCrypto
//! primitives (ECDH-ES, a ConcatKDF written here, AES key wrap, AES-256-GCM).
//!
//! What it serves on `127.0.0.1:<random port>`:
//! - `POST /login/SingleSignOnService` (HTTP-POST binding): `SAMLRequest` = base64 (not
//!   deflated) of a signed `saml2p:AuthnRequest`, and `RelayState`. A valid request gets the
//!   login page with one form per [`SimIdentity`]; anything else gets HTTP 400 and the reason.
//! - `POST /login/choose` (`pending`, `pesel`): the resident's choice; the answer is a page that
//!   auto-POSTs `SAMLart` and `RelayState` to the ACS (HTTP-Artifact binding).
//! - `POST /login-services/idpArtifactResolutionService` (SOAP 1.1): a signed
//!   `saml2p:ArtifactResolve` → signed `ArtifactResponse` ⊃ signed `Response` ⊃
//!   `EncryptedAssertion` ⊃ signed `Assertion`.
//! - `POST /login-services/singleLogoutService` (SOAP 1.1): a signed `saml2p:LogoutRequest` →
//!   signed `LogoutResponse`; the `SessionIndex` is recorded ([`LoginSim::logged_out`]).
//!
//! Choices where the spec is silent (documented so tests can rely on them):
//! - A pending login (the login page's `pending`) can be chosen once, within 30 minutes.
//! - Artifacts live 5 minutes and resolve once; an unknown, expired or used artifact gets a
//!   signed `ArtifactResponse` (Success) holding a `Response` with Status `Requester` and no
//!   assertion.
//! - A SOAP request that cannot be read, is not signed by the SP's signing key or comes from
//!   another Issuer gets a SOAP 1.1 `soap:Client` fault with HTTP 500.
//! - `IssueInstant` of every SP request must be within 5 minutes of the simulator's clock.
//! - The signing faults ([`LoginFault::UnsignedResponse`], [`LoginFault::Sha1Signatures`])
//!   apply to every message the simulator signs, failure answers and `LogoutResponse` included.

mod crypto;
mod messages;
mod xmlsec;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use rand::RngCore;
use sha1::Digest as _;

use crate::xml::{escaped, parse_document, El};
use messages::{Header, NS_SAML, NS_SAMLP, NS_SOAP11, NS_SOAP12};
use xmlsec::Digest;

/// The simulator's default Issuer (the real simulator's host name, spec §3.1).
pub const DEFAULT_ENTITY_ID: &str = "symulator.login.gov.pl";
pub const LOA_LOW: &str = "http://eidas.europa.eu/LoA/low";
pub const LOA_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
pub const LOA_HIGH: &str = "http://eidas.europa.eu/LoA/high";
/// The only `ProtocolBinding` an AuthnRequest may ask for.
pub const HTTP_ARTIFACT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact";

const SSO_PATH: &str = "/login/SingleSignOnService";
const CHOOSE_PATH: &str = "/login/choose";
const ARTIFACT_PATH: &str = "/login-services/idpArtifactResolutionService";
const LOGOUT_PATH: &str = "/login-services/singleLogoutService";

const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
const ARTIFACT_LIFETIME: Duration = Duration::from_secs(5 * 60);
const PENDING_LIFETIME: Duration = Duration::from_secs(30 * 60);
const ASSERTION_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// Audience and Recipient of the `WrongAudience` / `WrongRecipient` faults.
pub const SOMEONE_ELSE: &str = "https://someone-else.example";

/// A resident who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimIdentity {
    pub pesel: String,
    pub given_name: String,
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
}

impl SimIdentity {
    pub fn new(pesel: &str, given_name: &str, family_name: &str, date_of_birth: &str) -> Self {
        Self {
            pesel: pesel.to_string(),
            given_name: given_name.to_string(),
            family_name: family_name.to_string(),
            date_of_birth: date_of_birth.to_string(),
        }
    }
}

/// What the simulator knows about the one SP it serves.
#[derive(Debug, Clone)]
pub struct LoginSimConfig {
    /// The IdP's Issuer (PartyUInfo of the KDF).
    pub entity_id: String,
    /// The SP's Issuer: the only accepted requester, the Audience and PartyVInfo.
    pub sp_entity_id: String,
    /// The only accepted `AssertionConsumerServiceURL`.
    pub acs_url: String,
    /// Verifies AuthnRequest, ArtifactResolve and LogoutRequest signatures.
    pub sp_signing_cert_pem: String,
    /// The EC P-256 certificate assertions are encrypted to.
    pub sp_encryption_cert_pem: String,
    /// Who can log in (offered on the login page).
    pub residents: Vec<SimIdentity>,
    /// The `xmlsec1` binary.
    pub xmlsec1: String,
}

impl LoginSimConfig {
    /// A configuration with the default entity id, no residents and `xmlsec1` from `PATH`.
    pub fn new(
        sp_entity_id: &str,
        acs_url: &str,
        sp_signing_cert_pem: &str,
        sp_encryption_cert_pem: &str,
    ) -> Self {
        Self {
            entity_id: DEFAULT_ENTITY_ID.to_string(),
            sp_entity_id: sp_entity_id.to_string(),
            acs_url: acs_url.to_string(),
            sp_signing_cert_pem: sp_signing_cert_pem.to_string(),
            sp_encryption_cert_pem: sp_encryption_cert_pem.to_string(),
            residents: Vec::new(),
            xmlsec1: "xmlsec1".to_string(),
        }
    }

    pub fn with_resident(mut self, resident: SimIdentity) -> Self {
        self.residents.push(resident);
        self
    }
}

/// What the simulator does wrong on purpose, for the SP's bad-input tests. Applies to every
/// artifact resolution until changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginFault {
    #[default]
    None,
    /// The NameID (PESEL) is changed after the assertion was signed, before encryption.
    TamperedAssertion,
    /// IssueInstant 40 minutes ago, NotOnOrAfter (Conditions and SubjectConfirmationData)
    /// 10 minutes ago.
    ExpiredAssertion,
    /// Conditions NotBefore 10 minutes ahead.
    FutureAssertion,
    /// Audience [`SOMEONE_ELSE`].
    WrongAudience,
    /// No `ds:Signature` on the ArtifactResponse, the Response or the Assertion.
    UnsignedResponse,
    /// Every signature ecdsa-sha1 with sha1 digests.
    Sha1Signatures,
    /// Artifacts resolve more than once.
    ReplayableArtifacts,
    /// Response and SubjectConfirmationData `InResponseTo` name a request never made.
    WrongInResponseTo,
    /// AuthnContextClassRef [`LOA_LOW`], whatever was requested.
    LowLoa,
    /// SubjectConfirmationData `Recipient` is `<SOMEONE_ELSE>/acs`.
    WrongRecipient,
}

/// The SP's two key pairs (EC P-256, unencrypted PKCS#8 PEM, self-signed certificates), as
/// text and as files.
#[derive(Debug, Clone)]
pub struct SpCredentials {
    pub signing_key_pem: String,
    pub signing_cert_pem: String,
    pub encryption_key_pem: String,
    pub encryption_cert_pem: String,
    pub signing_key_path: PathBuf,
    pub signing_cert_path: PathBuf,
    pub encryption_key_path: PathBuf,
    pub encryption_cert_path: PathBuf,
}

/// Makes an SP's signing and encryption keys and certificates in `dir` with the `openssl` CLI
/// (`sp-signing-{key,cert}.pem`, `sp-encryption-{key,cert}.pem`).
pub fn make_sp_credentials(dir: &Path) -> io::Result<SpCredentials> {
    let (signing_key_path, signing_cert_path) =
        xmlsec::ec_key_and_certificate(dir, "sp-signing", "GSKO SP - podpis")?;
    let (encryption_key_path, encryption_cert_path) =
        xmlsec::ec_key_and_certificate(dir, "sp-encryption", "GSKO SP - szyfrowanie")?;
    Ok(SpCredentials {
        signing_key_pem: std::fs::read_to_string(&signing_key_path)?,
        signing_cert_pem: std::fs::read_to_string(&signing_cert_path)?,
        encryption_key_pem: std::fs::read_to_string(&encryption_key_path)?,
        encryption_cert_pem: std::fs::read_to_string(&encryption_cert_path)?,
        signing_key_path,
        signing_cert_path,
        encryption_key_path,
        encryption_cert_path,
    })
}

struct Pending {
    authn_request_id: String,
    relay_state: Option<String>,
    loa: String,
    created: Instant,
}

struct Issued {
    identity: SimIdentity,
    authn_request_id: String,
    loa: String,
    session_index: String,
    created: Instant,
    resolved: bool,
}

#[derive(Default)]
struct Data {
    fault: LoginFault,
    pending: HashMap<String, Pending>,
    artifacts: HashMap<String, Issued>,
    logged_out: Vec<String>,
    resolved: usize,
}

struct Shared {
    config: LoginSimConfig,
    xmlsec1: PathBuf,
    sp_encryption_key: p256::PublicKey,
    idp_key_path: PathBuf,
    idp_cert_path: PathBuf,
    idp_cert_pem: String,
    data: Mutex<Data>,
    /// Holds the IdP's key files while the simulator runs.
    _key_dir: tempfile::TempDir,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock only happens in a failing test; keep serving.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running simulator; dropping it stops the server.
pub struct LoginSim {
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LoginSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing to do then.
            stop.send(()).ok();
        }
        self.server.abort();
    }
}

impl LoginSim {
    /// Makes the IdP's signing key (`openssl`), binds `127.0.0.1:0` and serves on the current
    /// Tokio runtime until dropped. Fails with `NotFound` when `xmlsec1` or `openssl` cannot
    /// be run, `InvalidInput` when the SP's encryption certificate is not EC P-256, `Other`
    /// outside a Tokio runtime.
    pub fn start(config: LoginSimConfig) -> io::Result<LoginSim> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("LoginSim::start must be called inside a Tokio runtime")
        })?;
        if !crate::tools::xmlsec1_runs(Path::new(&config.xmlsec1)) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the login.gov.pl simulator signs with `{}`, which cannot be run \
                     (apt-get install xmlsec1)",
                    config.xmlsec1
                ),
            ));
        }
        let sp_encryption_key = crypto::certificate_public_key(&config.sp_encryption_cert_pem)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("sp_encryption_cert_pem: {e}"),
                )
            })?;
        let key_dir = tempfile::tempdir()?;
        let (idp_key_path, idp_cert_path) = xmlsec::ec_key_and_certificate(
            key_dir.path(),
            "idp-signing",
            "Symulator login.gov.pl - podpis",
        )?;
        let idp_cert_pem = std::fs::read_to_string(&idp_cert_path)?;

        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared {
            xmlsec1: PathBuf::from(&config.xmlsec1),
            config,
            sp_encryption_key,
            idp_key_path,
            idp_cert_path,
            idp_cert_pem,
            data: Mutex::new(Data::default()),
            _key_dir: key_dir,
        });
        let app = Router::new()
            .route(SSO_PATH, post(single_sign_on))
            .route(CHOOSE_PATH, post(choose))
            .route(ARTIFACT_PATH, post(resolve_artifact))
            .route(LOGOUT_PATH, post(single_logout))
            .with_state(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender also means stop.
                    stop_rx.await.ok();
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "login.gov.pl sim server stopped");
            }
        });
        Ok(LoginSim {
            base_url,
            shared,
            stop: Some(stop_tx),
            server,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn sso_url(&self) -> String {
        format!("{}{SSO_PATH}", self.base_url)
    }

    pub fn artifact_resolution_url(&self) -> String {
        format!("{}{ARTIFACT_PATH}", self.base_url)
    }

    pub fn logout_url(&self) -> String {
        format!("{}{LOGOUT_PATH}", self.base_url)
    }

    pub fn entity_id(&self) -> &str {
        &self.shared.config.entity_id
    }

    /// The certificate of the IdP's signing key (EC P-256), which the SP must trust.
    pub fn idp_certificate_pem(&self) -> &str {
        &self.shared.idp_cert_pem
    }

    /// Applies `fault` to every artifact resolution (and signed answer) from now on.
    pub fn set_fault(&self, fault: LoginFault) {
        self.shared.lock().fault = fault;
    }

    /// The `SessionIndex` values logged out through single logout, in order.
    pub fn logged_out(&self) -> Vec<String> {
        self.shared.lock().logged_out.clone()
    }

    /// How many artifact resolutions returned an assertion.
    pub fn resolved_count(&self) -> usize {
        self.shared.lock().resolved
    }
}

// ---------------------------------------------------------------------------------------
// Checks shared by the three signed requests.

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

fn issuer(el: &El) -> Result<&str, String> {
    el.child(NS_SAML, "Issuer")
        .map(|i| i.text.trim())
        .ok_or_else(|| format!("{} has no saml2:Issuer", el.local))
}

fn check_issue_instant(el: &El) -> Result<(), String> {
    let value = el
        .attr(None, "IssueInstant")
        .ok_or_else(|| format!("{} has no IssueInstant", el.local))?;
    let at = chrono::DateTime::parse_from_rfc3339(value)
        .map_err(|e| format!("IssueInstant {value:?} is not an xsd:dateTime: {e}"))?;
    let skew = chrono::Utc::now().signed_duration_since(at).abs();
    if skew > CLOCK_SKEW {
        return Err(format!(
            "IssueInstant {value} is more than 5 minutes from the simulator's clock"
        ));
    }
    Ok(())
}

/// The signature of `signed` (an element of `document`, whose raw bytes are `raw`): exactly
/// one `ds:Signature` in the document, right after `signed`'s Issuer, ecdsa-sha256, one
/// Reference to `signed`'s unique `ID`; then `xmlsec1` with the SP's signing certificate.
async fn check_signature(
    shared: &Shared,
    document: &El,
    signed: &El,
    raw: &[u8],
    id_element: &str,
) -> Result<(), String> {
    let id = signed
        .attr(None, "ID")
        .ok_or_else(|| format!("{} has no ID", signed.local))?;
    let mut signatures = Vec::new();
    document.descendants(xmlsec::NS_DS, "Signature", &mut signatures);
    let [signature] = signatures.as_slice() else {
        return Err(format!(
            "{} ds:Signature elements, expected one (the request is not signed)",
            signatures.len()
        ));
    };
    let placed = signed.children.len() >= 2
        && signed.children[0].is(NS_SAML, "Issuer")
        && std::ptr::eq(&signed.children[1], *signature);
    if !placed {
        return Err(format!(
            "ds:Signature is not the child of {} right after saml2:Issuer",
            signed.local
        ));
    }
    let signed_info = signature
        .child(xmlsec::NS_DS, "SignedInfo")
        .ok_or("ds:Signature has no ds:SignedInfo")?;
    let method = signed_info
        .child(xmlsec::NS_DS, "SignatureMethod")
        .and_then(|m| m.attr(None, "Algorithm"))
        .unwrap_or("");
    if method != xmlsec::ECDSA_SHA256 {
        return Err(format!("SignatureMethod {method:?} is not ecdsa-sha256"));
    }
    let references: Vec<&El> = signed_info
        .children
        .iter()
        .filter(|c| c.is(xmlsec::NS_DS, "Reference"))
        .collect();
    let expected = format!("#{id}");
    match references.as_slice() {
        [one] if one.attr(None, "URI") == Some(expected.as_str()) => {}
        _ => {
            return Err(format!(
                "the signature must have one ds:Reference URI=\"{expected}\""
            ))
        }
    }
    let same_id = document.count_ids(id);
    if same_id != 1 {
        return Err(format!("{same_id} elements carry the ID {id:?}"));
    }
    xmlsec::verify(
        &shared.xmlsec1,
        &shared.config.sp_signing_cert_pem,
        raw,
        id_element,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// The browser side: AuthnRequest, login page, artifact.

const CSS: &str = "body{font-family:sans-serif;max-width:40em;margin:2em auto;color:#222}\
h1{font-size:1.3em;color:#d4213d}form{margin:.6em 0}button{padding:.5em 1.2em}";

fn html_page(status: StatusCode, body_attrs: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html lang=\"pl\"><head><meta charset=\"utf-8\">\
             <title>login.gov.pl (symulator)</title><style>{CSS}</style></head>\
             <body{body_attrs}><h1>login.gov.pl – Węzeł Krajowy (symulator)</h1>{body}</body></html>"
        )),
    )
        .into_response()
}

fn refuse_page(status: StatusCode, reason: &str) -> Response {
    tracing::debug!(%reason, "login.gov.pl sim: browser request refused");
    html_page(
        status,
        "",
        &format!(
            "<p>Nie można zalogować: błędne żądanie.</p><p id=\"reason\">{}</p>",
            escaped(reason)
        ),
    )
}

async fn single_sign_on(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match read_authn_request(&shared, &form).await {
        Ok(pending) => login_page(&shared, pending),
        Err(reason) => refuse_page(StatusCode::BAD_REQUEST, &reason),
    }
}

async fn read_authn_request(
    shared: &Shared,
    form: &HashMap<String, String>,
) -> Result<Pending, String> {
    let encoded = form.get("SAMLRequest").ok_or("no SAMLRequest")?;
    let compact: String = encoded.split_ascii_whitespace().collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("SAMLRequest is not base64: {e}"))?;
    let request = parse_document(&raw).map_err(|e| format!("SAMLRequest is not XML: {e}"))?;
    if !request.is(NS_SAMLP, "AuthnRequest") {
        return Err(format!(
            "the root element is {{{}}}{}, not saml2p:AuthnRequest",
            request.ns.as_deref().unwrap_or(""),
            request.local
        ));
    }
    check_signature(
        shared,
        &request,
        &request,
        &raw,
        "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
    )
    .await?;
    let config = &shared.config;
    let sp = issuer(&request)?;
    if sp != config.sp_entity_id {
        return Err(format!("Issuer {sp:?} is not the registered SP"));
    }
    let acs = request
        .attr(None, "AssertionConsumerServiceURL")
        .unwrap_or("");
    if acs != config.acs_url {
        return Err(format!(
            "AssertionConsumerServiceURL {acs:?} is not the registered one"
        ));
    }
    let binding = request.attr(None, "ProtocolBinding").unwrap_or("");
    if binding != HTTP_ARTIFACT {
        return Err(format!("ProtocolBinding {binding:?} is not HTTP-Artifact"));
    }
    check_issue_instant(&request)?;
    let loa = request
        .child(NS_SAMLP, "RequestedAuthnContext")
        .and_then(|c| c.child(NS_SAML, "AuthnContextClassRef"))
        .map_or(LOA_SUBSTANTIAL, |r| r.text.trim());
    if ![LOA_LOW, LOA_SUBSTANTIAL, LOA_HIGH].contains(&loa) {
        return Err(format!("AuthnContextClassRef {loa:?} is not an eIDAS LoA"));
    }
    Ok(Pending {
        authn_request_id: request.attr(None, "ID").unwrap_or("").to_string(),
        relay_state: form.get("RelayState").cloned(),
        loa: loa.to_string(),
        created: Instant::now(),
    })
}

fn login_page(shared: &Shared, pending: Pending) -> Response {
    let pending_id = random_hex(16);
    let loa = pending.loa.clone();
    {
        let mut d = shared.lock();
        d.pending
            .retain(|_, p| p.created.elapsed() < PENDING_LIFETIME);
        d.pending.insert(pending_id.clone(), pending);
    }
    let mut forms = String::new();
    for r in &shared.config.residents {
        forms.push_str(&format!(
            "<form method=\"post\" action=\"{CHOOSE_PATH}\">\
             <input type=\"hidden\" name=\"pending\" value=\"{pending_id}\">\
             <input type=\"hidden\" name=\"pesel\" value=\"{pesel}\">\
             <button type=\"submit\" id=\"login-{pesel}\">Zaloguj jako {given} {family}</button></form>",
            pesel = escaped(&r.pesel),
            given = escaped(&r.given_name),
            family = escaped(&r.family_name),
        ));
    }
    if forms.is_empty() {
        forms.push_str("<p>Symulator nie ma żadnych mieszkańców do wyboru.</p>");
    }
    html_page(
        StatusCode::OK,
        "",
        &format!(
            "<p>Usługa <strong>{sp}</strong> prosi o zalogowanie (poziom bezpieczeństwa {loa}).</p>\
             <p>Wybierz osobę, jako która chcesz się zalogować:</p>{forms}",
            sp = escaped(&shared.config.sp_entity_id),
            loa = escaped(&loa),
        ),
    )
}

/// A SAML 2.0 type 0x0004 artifact: type code, endpoint index 0, SourceID = SHA-1 of the
/// IdP's entity id, 20 random bytes of message handle.
fn new_artifact(entity_id: &str) -> String {
    let mut raw = vec![0x00, 0x04, 0x00, 0x00];
    raw.extend_from_slice(&sha1::Sha1::digest(entity_id.as_bytes()));
    let mut handle = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut handle);
    raw.extend_from_slice(&handle);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

async fn choose(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (Some(pending_id), Some(pesel)) = (form.get("pending"), form.get("pesel")) else {
        return refuse_page(StatusCode::BAD_REQUEST, "the form lacks pending or pesel");
    };
    let Some(identity) = shared
        .config
        .residents
        .iter()
        .find(|r| &r.pesel == pesel)
        .cloned()
    else {
        return refuse_page(StatusCode::BAD_REQUEST, "no such resident");
    };
    let artifact = new_artifact(&shared.config.entity_id);
    let pending = {
        let mut d = shared.lock();
        let pending = d
            .pending
            .remove(pending_id)
            .filter(|p| p.created.elapsed() < PENDING_LIFETIME);
        if let Some(p) = &pending {
            d.artifacts
                .retain(|_, a| a.created.elapsed() < ARTIFACT_LIFETIME);
            d.artifacts.insert(
                artifact.clone(),
                Issued {
                    identity,
                    authn_request_id: p.authn_request_id.clone(),
                    loa: p.loa.clone(),
                    session_index: messages::random_uuid().to_string(),
                    created: Instant::now(),
                    resolved: false,
                },
            );
        }
        pending
    };
    let Some(pending) = pending else {
        return refuse_page(
            StatusCode::BAD_REQUEST,
            "this login was already used or has expired; start again from the service",
        );
    };
    let relay_state = pending
        .relay_state
        .as_deref()
        .map_or_else(String::new, |r| {
            format!(
                "<input type=\"hidden\" name=\"RelayState\" value=\"{}\">",
                escaped(r)
            )
        });
    html_page(
        StatusCode::OK,
        " onload=\"document.forms[0].submit()\"",
        &format!(
            "<form method=\"post\" action=\"{acs}\">\
             <input type=\"hidden\" name=\"SAMLart\" value=\"{artifact}\">{relay_state}\
             <p>Zalogowano. Jeśli przeglądarka nie wróci sama do usługi, kliknij:</p>\
             <button type=\"submit\">Wróć do usługi</button></form>",
            acs = escaped(&shared.config.acs_url),
            artifact = escaped(&artifact),
        ),
    )
}

// ---------------------------------------------------------------------------------------
// The SOAP side: ArtifactResolve and LogoutRequest.

fn soap_answer(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn soap_refusal(what: &str, reason: &str) -> Response {
    tracing::debug!(%reason, request = what, "login.gov.pl sim: SOAP request refused");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        messages::soap_fault(&format!("{what}: {reason}")),
    )
        .into_response()
}

/// Reads a SOAP envelope (1.1, or 1.2 as some clients send) whose Body holds exactly one
/// `{ns}local` element; the answer is always SOAP 1.1.
fn soap_payload(headers: &HeaderMap, body: &[u8], ns: &str, local: &str) -> Result<El, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start()
        .to_ascii_lowercase();
    if !(content_type.starts_with("text/xml") || content_type.starts_with("application/soap+xml")) {
        return Err(format!(
            "Content-Type {content_type:?} is neither text/xml nor application/soap+xml"
        ));
    }
    let envelope = parse_document(body).map_err(|e| format!("not well-formed XML: {e}"))?;
    let soap_ns = envelope.ns.clone().unwrap_or_default();
    if !(envelope.is(NS_SOAP11, "Envelope") || envelope.is(NS_SOAP12, "Envelope")) {
        return Err("the root is not a SOAP Envelope".into());
    }
    let payload = envelope
        .child(&soap_ns, "Body")
        .map(|b| b.children.as_slice());
    match payload {
        Some([one]) if one.is(ns, local) => Ok(envelope),
        _ => Err(format!(
            "the SOAP Body must hold exactly one saml2p:{local}"
        )),
    }
}

fn body_element(envelope: &El) -> &El {
    // soap_payload checked that the Body holds exactly one element.
    &envelope
        .children
        .iter()
        .find(|c| c.local == "Body")
        .expect("checked by soap_payload")
        .children[0]
}

/// Reads and authenticates a signed SOAP request from the SP.
async fn signed_soap_request(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    local: &str,
) -> Result<El, String> {
    let envelope = soap_payload(headers, body, NS_SAMLP, local)?;
    let request = body_element(&envelope);
    check_signature(
        shared,
        &envelope,
        request,
        body,
        &format!("{NS_SAMLP}:{local}"),
    )
    .await?;
    let sp = issuer(request)?;
    if sp != shared.config.sp_entity_id {
        return Err(format!("Issuer {sp:?} is not the registered SP"));
    }
    check_issue_instant(request)?;
    Ok(envelope)
}

fn signing_digest(fault: LoginFault) -> Option<Digest> {
    match fault {
        LoginFault::UnsignedResponse => None,
        LoginFault::Sha1Signatures => Some(Digest::Sha1),
        _ => Some(Digest::Sha256),
    }
}

async fn sign_if(
    shared: &Shared,
    template: String,
    digest: Option<Digest>,
    id_element: &str,
) -> Result<Vec<u8>, String> {
    if digest.is_none() {
        return Ok(template.into_bytes());
    }
    xmlsec::sign(
        &shared.xmlsec1,
        &shared.idp_key_path,
        &shared.idp_cert_path,
        template.as_bytes(),
        id_element,
    )
    .await
}

fn ecc_id() -> String {
    format!("ECC-ID-{}", messages::random_uuid())
}

async fn resolve_artifact(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let envelope = match signed_soap_request(&shared, &headers, &body, "ArtifactResolve").await {
        Ok(e) => e,
        Err(reason) => return soap_refusal("ArtifactResolve", &reason),
    };
    let request = body_element(&envelope);
    let resolve_id = request.attr(None, "ID").unwrap_or("").to_string();
    let artifact = request
        .child(NS_SAMLP, "Artifact")
        .map(|a| a.text.trim().to_string())
        .unwrap_or_default();
    let (fault, issued) = {
        let mut d = shared.lock();
        let fault = d.fault;
        let issued = match d.artifacts.get_mut(&artifact) {
            Some(a)
                if a.created.elapsed() < ARTIFACT_LIFETIME
                    && (!a.resolved || fault == LoginFault::ReplayableArtifacts) =>
            {
                a.resolved = true;
                Some((
                    a.identity.clone(),
                    a.authn_request_id.clone(),
                    a.loa.clone(),
                    a.session_index.clone(),
                ))
            }
            _ => None,
        };
        if issued.is_some() {
            d.resolved += 1;
        }
        (fault, issued)
    };
    match artifact_response(&shared, fault, &resolve_id, issued).await {
        Ok(xml) => soap_answer(messages::soap_envelope(&xml)),
        Err(e) => {
            tracing::warn!(error = %e, "login.gov.pl sim: building the ArtifactResponse failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e).into_response()
        }
    }
}

/// The signed ArtifactResponse; `issued` is None for an unknown, expired or used artifact.
async fn artifact_response(
    shared: &Shared,
    fault: LoginFault,
    resolve_id: &str,
    issued: Option<(SimIdentity, String, String, String)>,
) -> Result<Vec<u8>, String> {
    let config = &shared.config;
    let digest = signing_digest(fault);
    let now = chrono::Utc::now();
    let now_text = messages::instant(now);
    let response_id = ecc_id();
    let (status, in_response_to, content) = match issued {
        None => (messages::STATUS_REQUESTER, String::new(), String::new()),
        Some((identity, authn_request_id, loa, session_index)) => {
            let in_response_to = if fault == LoginFault::WrongInResponseTo {
                format!("ID-{}", messages::random_uuid())
            } else {
                authn_request_id
            };
            let assertion = signed_assertion(
                shared,
                fault,
                now,
                &identity,
                &in_response_to,
                &loa,
                &session_index,
            )
            .await?;
            let encrypted = crypto::encrypt(
                &assertion,
                &shared.sp_encryption_key,
                &config.entity_id,
                &config.sp_entity_id,
            )?;
            (
                messages::STATUS_SUCCESS,
                in_response_to,
                messages::encrypted_assertion(&encrypted),
            )
        }
    };
    let response = messages::response(
        &Header {
            id: &response_id,
            in_response_to: &in_response_to,
            issue_instant: &now_text,
            issuer: &config.entity_id,
        },
        &config.acs_url,
        status,
        &content,
        digest,
    );
    let response = sign_if(shared, response, digest, messages::ID_RESPONSE).await?;
    let outer_id = ecc_id();
    let outer = messages::artifact_response(
        &Header {
            id: &outer_id,
            in_response_to: resolve_id,
            issue_instant: &now_text,
            issuer: &config.entity_id,
        },
        &String::from_utf8_lossy(&response),
        digest,
    );
    sign_if(shared, outer, digest, messages::ID_ARTIFACT_RESPONSE).await
}

/// The assertion as it is encrypted: signed (unless the fault says otherwise), then tampered
/// with when the fault says so.
async fn signed_assertion(
    shared: &Shared,
    fault: LoginFault,
    now: chrono::DateTime<chrono::Utc>,
    identity: &SimIdentity,
    in_response_to: &str,
    loa: &str,
    session_index: &str,
) -> Result<Vec<u8>, String> {
    let config = &shared.config;
    let minutes = chrono::TimeDelta::minutes;
    let (issued_at, not_before, not_on_or_after) = match fault {
        LoginFault::ExpiredAssertion => (now - minutes(40), now - minutes(40), now - minutes(10)),
        LoginFault::FutureAssertion => (now, now + minutes(10), now + ASSERTION_LIFETIME),
        _ => (now, now, now + ASSERTION_LIFETIME),
    };
    let recipient = if fault == LoginFault::WrongRecipient {
        format!("{SOMEONE_ELSE}/acs")
    } else {
        config.acs_url.clone()
    };
    let audience = if fault == LoginFault::WrongAudience {
        SOMEONE_ELSE
    } else {
        &config.sp_entity_id
    };
    let loa = if fault == LoginFault::LowLoa {
        LOA_LOW
    } else {
        loa
    };
    let id = format!("ID-{}", messages::random_uuid());
    let fields = messages::AssertionFields {
        id: &id,
        issue_instant: &messages::instant(issued_at),
        issuer: &config.entity_id,
        pesel: &identity.pesel,
        given_name: &identity.given_name,
        family_name: &identity.family_name,
        date_of_birth: &identity.date_of_birth,
        in_response_to,
        recipient: &recipient,
        not_before: &messages::instant(not_before),
        not_on_or_after: &messages::instant(not_on_or_after),
        audience,
        session_index,
        loa,
    };
    let digest = signing_digest(fault);
    let signed = sign_if(
        shared,
        messages::assertion(&fields, digest),
        digest,
        messages::ID_ASSERTION,
    )
    .await?;
    if fault != LoginFault::TamperedAssertion {
        return Ok(signed);
    }
    let text = String::from_utf8_lossy(&signed).into_owned();
    let original = format!(">{}</saml2:NameID>", escaped(&identity.pesel));
    let forged = format!(">{}</saml2:NameID>", escaped(&tampered(&identity.pesel)));
    if !text.contains(&original) {
        return Err("xmlsec1 changed the NameID text; cannot tamper with it".into());
    }
    Ok(text.replacen(&original, &forged, 1).into_bytes())
}

/// Another identifier of the same length: each last digit moved by one (`9` → `0`), or `X`
/// appended when the value has no digits.
fn tampered(pesel: &str) -> String {
    let mut chars: Vec<char> = pesel.chars().collect();
    match chars.iter().rposition(char::is_ascii_digit) {
        Some(i) => {
            let d = chars[i].to_digit(10).unwrap_or(0);
            chars[i] = char::from_digit((d + 1) % 10, 10).unwrap_or('0');
            chars.into_iter().collect()
        }
        None => format!("{pesel}X"),
    }
}

async fn single_logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let envelope = match signed_soap_request(&shared, &headers, &body, "LogoutRequest").await {
        Ok(e) => e,
        Err(reason) => return soap_refusal("LogoutRequest", &reason),
    };
    let request = body_element(&envelope);
    if request.child(NS_SAML, "NameID").is_none() {
        return soap_refusal("LogoutRequest", "no saml2:NameID");
    }
    let sessions: Vec<String> = request
        .children
        .iter()
        .filter(|c| c.is(NS_SAMLP, "SessionIndex"))
        .map(|c| c.text.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if sessions.is_empty() {
        return soap_refusal("LogoutRequest", "no saml2p:SessionIndex");
    }
    let fault = {
        let mut d = shared.lock();
        d.logged_out.extend(sessions);
        d.fault
    };
    let digest = signing_digest(fault);
    let id = ecc_id();
    let template = messages::logout_response(
        &Header {
            id: &id,
            in_response_to: request.attr(None, "ID").unwrap_or(""),
            issue_instant: &messages::instant(chrono::Utc::now()),
            issuer: &shared.config.entity_id,
        },
        messages::STATUS_SUCCESS,
        digest,
    );
    match sign_if(&shared, template, digest, messages::ID_LOGOUT_RESPONSE).await {
        Ok(xml) => soap_answer(messages::soap_envelope(&xml)),
        Err(e) => {
            tracing::warn!(error = %e, "login.gov.pl sim: signing the LogoutResponse failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_is_type_4_with_the_source_id_of_the_entity() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(new_artifact(DEFAULT_ENTITY_ID))
            .unwrap();
        assert_eq!(raw.len(), 44);
        assert_eq!(&raw[..4], &[0, 4, 0, 0]);
        assert_eq!(
            &raw[4..24],
            sha1::Sha1::digest(DEFAULT_ENTITY_ID.as_bytes()).as_slice()
        );
        assert_ne!(
            new_artifact(DEFAULT_ENTITY_ID),
            new_artifact(DEFAULT_ENTITY_ID)
        );
    }

    #[test]
    fn tampering_changes_one_digit() {
        assert_eq!(tampered("44051401359"), "44051401350");
        assert_eq!(tampered("02270803624"), "02270803625");
        assert_eq!(tampered("abc"), "abcX");
    }
}
