//! Simulator: the Profil Zaufany signing service tpSigning5
//! (`/work/shared/specs/epuap-login-edoreczenia.md` §1.2, §2.3).
//!
//! A second, independent implementation of `https://pz.gov.pl/ep-services/tpSigning5`: it
//! shares nothing with the connector. Requests are read with the simulators' own small
//! quick-xml tree reader, answers are written by hand, the WS-Security signature of each
//! request is verified by the `xmlsec1` command-line tool (as the ePUAP simulator does,
//! [`crate::epuap`]), and documents are signed with [`crate::xades::sign_enveloped`] under
//! COI's simulated certificate with the new `EPSignature` claim (the form tpSigning5 returns).
//!
//! What it serves on `127.0.0.1:<random port>`:
//! - `POST /ep-services/tpSigning5` (SOAP 1.1, `text/xml`, SOAPAction not required), body
//!   elements in `http://signing.ws.comarch.gov` with unqualified children, as OMB's
//!   `AddDocumentToSigning5Request` / `GetSignedDocument5Request` write them:
//!   - `addDocumentToSigning{doc (base64 XML), successURL, failureURL, additionalInfo}` →
//!     `addDocumentToSigningResponse/addDocumentToSigningReturn` (unqualified) = the URL of
//!     the signing page `<base>/pz/podpisz/<id>`;
//!   - `getSignedDocument{id}` → `getSignedDocumentResponse/getSignedDocumentReturn`
//!     (unqualified) = base64 of the signed document.
//! - `GET /pz/podpisz/<id>`: the resident's page (document title from `wnio:Tytul`, a choice of
//!   [`PzSimConfig::people`], "Podpisz" / "Anuluj"); `POST /pz/podpisz/<id>` with
//!   `osoba=<index>&akcja=podpisz` signs and answers 303 to `successURL`, `akcja=anuluj`
//!   answers 303 to `failureURL`.
//!
//! The id in the page URL is the one `getSignedDocument` takes (OMB's clients keep the URL's
//! last segment as the document's id — *inferred*; the real id format is not known).
//!
//! Authentication (§1.7): each request must carry `wsse:Security` with a
//! `wsse:BinarySecurityToken` whose DER is one of [`PzSimConfig::certificates`] and exactly one
//! `ds:Signature` (in that `wsse:Security`, rsa-sha256, exc-c14n) with a Reference to the
//! `wsu:Id` of `soapenv:Body`, which no other element may carry; then `xmlsec1 --verify` with
//! that certificate as the only key. Anything else is a SOAP Fault.
//!
//! Choices where the spec is silent (documented so tests can rely on them):
//! - Faults are SOAP 1.1 `soapenv:Fault{faultcode, faultstring}` with HTTP 500 (OMB reads
//!   `faultcode`/`faultstring` from the error body); `faultcode` is `soapenv:Client` for the
//!   caller's errors. The Polish `faultstring` texts are this simulator's own.
//! - A document that is not well-formed XML is refused at `addDocumentToSigning` (PZ signs
//!   XML documents with an enveloped signature).
//! - `getSignedDocument` may be repeated; it returns the same bytes every time.
//! - A document can be signed or cancelled once; the page then says so (HTTP 409).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use rand::RngCore;

use crate::xades::{coi_certificate, sign_enveloped, SignerClaim, XadesSimError};
use crate::xml::{escape_into, escaped, parse_document, El};

/// The service path (§1.2).
pub const TP_SIGNING5_PATH: &str = "/ep-services/tpSigning5";
/// OMB `Namespaces.COMARCH_SIGN`: the namespace of the tpSigning5 body elements.
pub const NS_COMARCH_SIGN: &str = "http://signing.ws.comarch.gov";

const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const NS_WNIO: &str = "http://crd.gov.pl/wzor/2013/12/12/1410/";
const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// A person who can sign on the simulated page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PzPerson {
    pub first_name: String,
    pub surname: String,
    pub pesel: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
}

/// What the simulator knows.
#[derive(Debug, Clone)]
pub struct PzSimConfig {
    /// DER certificates whose WS-Security signatures are accepted.
    pub certificates: Vec<Vec<u8>>,
    /// The people offered on the signing page.
    pub people: Vec<PzPerson>,
    /// The `xmlsec1` binary.
    pub xmlsec1: PathBuf,
}

impl Default for PzSimConfig {
    fn default() -> Self {
        Self {
            certificates: Vec::new(),
            people: Vec::new(),
            xmlsec1: PathBuf::from("xmlsec1"),
        }
    }
}

impl PzSimConfig {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_certificate(mut self, der: Vec<u8>) -> Self {
        self.certificates.push(der);
        self
    }

    pub fn with_person(mut self, person: PzPerson) -> Self {
        self.people.push(person);
        self
    }
}

/// Where a document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PzDocumentState {
    Pending,
    Signed { by: PzPerson, signed: Vec<u8> },
    Cancelled,
}

/// A snapshot of one document given to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PzDocument {
    pub id: String,
    /// The document as received (decoded).
    pub document: Vec<u8>,
    pub title: Option<String>,
    pub success_url: String,
    pub failure_url: String,
    pub additional_info: String,
    pub state: PzDocumentState,
}

/// A refused SOAP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PzRejection {
    /// `addDocumentToSigning`, `getSignedDocument`, or `None` when not known.
    pub operation: Option<String>,
    pub reason: String,
}

/// Errors of the handle's methods.
#[derive(Debug, thiserror::Error)]
pub enum PzSimError {
    #[error("PZ sim: no document {0}")]
    UnknownDocument(String),
    #[error("PZ sim: document {0} was already signed")]
    AlreadySigned(String),
    #[error("PZ sim: document {0} was cancelled")]
    Cancelled(String),
    #[error("PZ sim: signing document {id} failed: {source}")]
    Signing {
        id: String,
        #[source]
        source: XadesSimError,
    },
}

struct Doc {
    snapshot: PzDocument,
}

#[derive(Default)]
struct Data {
    documents: Vec<Doc>,
    rejections: Vec<PzRejection>,
    signed_requests: usize,
}

struct Shared {
    base_url: String,
    certificates: Vec<Vec<u8>>,
    people: Vec<PzPerson>,
    xmlsec1: PathBuf,
    data: Mutex<Data>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock only happens in a failing test; keep serving.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reject(&self, operation: Option<&str>, reason: String, faultstring: &str) -> Response {
        tracing::debug!(?operation, %reason, "PZ sim: request refused");
        self.lock().rejections.push(PzRejection {
            operation: operation.map(str::to_string),
            reason,
        });
        soap_fault("soapenv:Client", faultstring)
    }
}

/// The simulator. Dropping the handle stops the server.
pub struct PzSim;

impl PzSim {
    /// Starts the server on `127.0.0.1:0` inside the current Tokio runtime. Fails with
    /// `NotFound` when `xmlsec1` cannot be run.
    pub async fn start(config: PzSimConfig) -> std::io::Result<PzSimHandle> {
        if !crate::tools::xmlsec1_runs(&config.xmlsec1) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the PZ simulator verifies WS-Security and signs with `{}`, which cannot be \
                     run (apt-get install xmlsec1)",
                    config.xmlsec1.display()
                ),
            ));
        }
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            base_url: base_url.clone(),
            certificates: config.certificates,
            people: config.people,
            xmlsec1: config.xmlsec1,
            data: Mutex::new(Data::default()),
        });
        let app = Router::new()
            .route(TP_SIGNING5_PATH, post(tp_signing5))
            .route("/pz/podpisz/{id}", get(page).post(page_action))
            .with_state(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender also means stop.
                    stop_rx.await.ok();
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "PZ sim server stopped");
            }
        });
        Ok(PzSimHandle {
            base_url,
            shared,
            stop: Some(stop_tx),
            server,
        })
    }
}

/// Control of a running simulator.
pub struct PzSimHandle {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PzSimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing to do then.
            stop.send(()).ok();
        }
        self.server.abort();
    }
}

impl PzSimHandle {
    /// `<base>/ep-services/tpSigning5`.
    pub fn tp_signing_url(&self) -> String {
        format!("{}{TP_SIGNING5_PATH}", self.base_url)
    }

    /// The signing page of a document.
    pub fn page_url(&self, id: &str) -> String {
        format!("{}/pz/podpisz/{id}", self.base_url)
    }

    /// The DER of the certificate signed documents carry (COI's simulated one).
    pub fn signing_certificate_der(&self) -> Vec<u8> {
        coi_certificate().cert_der.clone()
    }

    /// Signs as `person` (what the page does); returns the signed document. Blocks while
    /// `xmlsec1` runs.
    pub fn sign_as(&self, id: &str, person: &PzPerson) -> Result<Vec<u8>, PzSimError> {
        sign_document(&self.shared, id, person)
    }

    /// The resident cancels (what the page's "Anuluj" does).
    pub fn cancel(&self, id: &str) -> Result<(), PzSimError> {
        cancel_document(&self.shared, id).map(|_| ())
    }

    /// Every document given to sign, in order.
    pub fn documents(&self) -> Vec<PzDocument> {
        self.shared
            .lock()
            .documents
            .iter()
            .map(|d| d.snapshot.clone())
            .collect()
    }

    /// Every refused SOAP request with its reason.
    pub fn rejections(&self) -> Vec<PzRejection> {
        self.shared.lock().rejections.clone()
    }

    /// Requests whose WS-Security signature verified.
    pub fn signed_requests(&self) -> usize {
        self.shared.lock().signed_requests
    }
}

/// Checks the state, signs without holding the lock, stores the result.
fn sign_document(shared: &Shared, id: &str, person: &PzPerson) -> Result<Vec<u8>, PzSimError> {
    let document = {
        let d = shared.lock();
        let doc = find(&d, id)?;
        check_pending(&doc.snapshot)?;
        doc.snapshot.document.clone()
    };
    let claim = SignerClaim::EpSignature {
        first_name: person.first_name.clone(),
        surname: person.surname.clone(),
        pesel: person.pesel.clone(),
        date_of_birth: person.date_of_birth.clone(),
    };
    let signing_time = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let signed =
        sign_enveloped(&document, coi_certificate(), &claim, &signing_time).map_err(|source| {
            PzSimError::Signing {
                id: id.to_string(),
                source,
            }
        })?;
    let mut d = shared.lock();
    let doc = find_mut(&mut d, id)?;
    // Someone else may have signed or cancelled while xmlsec1 ran.
    check_pending(&doc.snapshot)?;
    doc.snapshot.state = PzDocumentState::Signed {
        by: person.clone(),
        signed: signed.clone(),
    };
    Ok(signed)
}

/// Returns the failure URL.
fn cancel_document(shared: &Shared, id: &str) -> Result<String, PzSimError> {
    let mut d = shared.lock();
    let doc = find_mut(&mut d, id)?;
    check_pending(&doc.snapshot)?;
    doc.snapshot.state = PzDocumentState::Cancelled;
    Ok(doc.snapshot.failure_url.clone())
}

fn check_pending(doc: &PzDocument) -> Result<(), PzSimError> {
    match doc.state {
        PzDocumentState::Pending => Ok(()),
        PzDocumentState::Signed { .. } => Err(PzSimError::AlreadySigned(doc.id.clone())),
        PzDocumentState::Cancelled => Err(PzSimError::Cancelled(doc.id.clone())),
    }
}

/// The document `id` names: its bare id, or the whole signing-page URL that
/// `addDocumentToSigning` returned (what OMB's demos pass back to `getSignedDocument`).
fn names(doc: &Doc, id: &str) -> bool {
    let id = id.trim();
    doc.snapshot.id == id
        || id
            .trim_end_matches('/')
            .rsplit_once("/pz/podpisz/")
            .is_some_and(|(_, last)| last == doc.snapshot.id)
}

fn find<'a>(d: &'a Data, id: &str) -> Result<&'a Doc, PzSimError> {
    d.documents
        .iter()
        .find(|doc| names(doc, id))
        .ok_or_else(|| PzSimError::UnknownDocument(id.to_string()))
}

fn find_mut<'a>(d: &'a mut Data, id: &str) -> Result<&'a mut Doc, PzSimError> {
    d.documents
        .iter_mut()
        .find(|doc| names(doc, id))
        .ok_or_else(|| PzSimError::UnknownDocument(id.to_string()))
}

// ---------------------------------------------------------------------------------------
// The SOAP endpoint.

async fn tp_signing5(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/xml")
    {
        shared.lock().rejections.push(PzRejection {
            operation: None,
            reason: format!("Content-Type {content_type:?} is not text/xml (SOAP 1.1)"),
        });
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type, SOAP 1.1 expects text/xml",
        )
            .into_response();
    }
    let doc = match parse_document(&body) {
        Ok(doc) => doc,
        Err(e) => {
            return shared.reject(
                None,
                format!("request is not well-formed XML: {e}"),
                "Błędne zapytanie: niepoprawny XML",
            )
        }
    };
    let payload = match soap_part(&doc, "Body").and_then(|b| match b.children.as_slice() {
        [one] => Ok(one),
        _ => Err("soapenv:Body must hold exactly one element".to_string()),
    }) {
        Ok(p) => p,
        Err(e) => return shared.reject(None, e, "Błędne zapytanie"),
    };
    let operation = match (payload.ns.as_deref(), payload.local.as_str()) {
        (Some(NS_COMARCH_SIGN), op @ ("addDocumentToSigning" | "getSignedDocument")) => op,
        (ns, local) => {
            return shared.reject(
                None,
                format!("unknown operation {{{}}}{local}", ns.unwrap_or("")),
                "Nieznana operacja",
            )
        }
    };
    if let Err(reason) = authenticate(&shared, &doc, &body).await {
        return shared.reject(
            Some(operation),
            reason,
            "Brak autoryzacji: nieprawidłowy podpis WS-Security",
        );
    }
    shared.lock().signed_requests += 1;
    if operation == "addDocumentToSigning" {
        add_document(&shared, payload)
    } else {
        get_signed(&shared, payload)
    }
}

/// The text of an unqualified child.
fn field<'a>(payload: &'a El, name: &str) -> Option<&'a str> {
    payload
        .children
        .iter()
        .find(|c| c.ns.is_none() && c.local == name)
        .map(|c| c.text.as_str())
}

fn add_document(shared: &Shared, payload: &El) -> Response {
    let op = Some("addDocumentToSigning");
    let Some(doc_b64) = field(payload, "doc") else {
        return shared.reject(
            op,
            "no unqualified <doc> in addDocumentToSigning".into(),
            "Brak dokumentu do podpisania",
        );
    };
    let compact: String = doc_b64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let document = match base64::engine::general_purpose::STANDARD.decode(compact) {
        Ok(d) if !d.is_empty() => d,
        Ok(_) => return shared.reject(op, "<doc> is empty".into(), "Brak dokumentu do podpisania"),
        Err(e) => {
            return shared.reject(
                op,
                format!("<doc> is not base64: {e}"),
                "Dokument nie jest poprawnie zakodowany (base64)",
            )
        }
    };
    let parsed = match parse_document(&document) {
        Ok(p) => p,
        Err(e) => {
            return shared.reject(
                op,
                format!("the document is not well-formed XML: {e}"),
                "Dokument nie jest poprawnym dokumentem XML",
            )
        }
    };
    let url = |name: &str| {
        field(payload, name)
            .map(str::trim)
            .filter(|u| !u.is_empty())
    };
    let (Some(success_url), Some(failure_url)) = (url("successURL"), url("failureURL")) else {
        return shared.reject(
            op,
            "successURL or failureURL is missing or empty".into(),
            "Brak adresu powrotu (successURL/failureURL)",
        );
    };
    let mut title = Vec::new();
    parsed.descendants(NS_WNIO, "Tytul", &mut title);
    let title = title
        .first()
        .map(|t| t.text.trim().to_string())
        .filter(|t| !t.is_empty());
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    let id = hex::encode(raw);
    let page_url = format!("{}/pz/podpisz/{id}", shared.base_url);
    shared.lock().documents.push(Doc {
        snapshot: PzDocument {
            id,
            document,
            title,
            success_url: success_url.to_string(),
            failure_url: failure_url.to_string(),
            additional_info: field(payload, "additionalInfo").unwrap_or("").to_string(),
            state: PzDocumentState::Pending,
        },
    });
    soap_response("addDocumentToSigning", &page_url)
}

fn get_signed(shared: &Shared, payload: &El) -> Response {
    let op = Some("getSignedDocument");
    let Some(id) = field(payload, "id").map(str::trim) else {
        return shared.reject(
            op,
            "no unqualified <id> in getSignedDocument".into(),
            "Brak identyfikatora dokumentu",
        );
    };
    let state = {
        let d = shared.lock();
        find(&d, id).map(|doc| doc.snapshot.state.clone())
    };
    match state {
        Ok(PzDocumentState::Signed { signed, .. }) => soap_response(
            "getSignedDocument",
            &base64::engine::general_purpose::STANDARD.encode(signed),
        ),
        Ok(PzDocumentState::Pending) => shared.reject(
            op,
            format!("document {id} is not signed yet"),
            &format!("Dokument o identyfikatorze {id} nie został jeszcze podpisany"),
        ),
        Ok(PzDocumentState::Cancelled) => shared.reject(
            op,
            format!("document {id} was cancelled"),
            &format!(
                "Podpisywanie dokumentu o identyfikatorze {id} zostało anulowane przez użytkownika"
            ),
        ),
        Err(_) => shared.reject(
            op,
            format!("no document {id}"),
            &format!("Nie znaleziono dokumentu o identyfikatorze {id}"),
        ),
    }
}

fn soap_response(operation: &str, value: &str) -> Response {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\">\
         <soapenv:Body><ns1:{operation}Response xmlns:ns1=\"{NS_COMARCH_SIGN}\"><{operation}Return>"
    )
    .into_bytes();
    escape_into(&mut x, value);
    x.extend_from_slice(
        format!("</{operation}Return></ns1:{operation}Response></soapenv:Body></soapenv:Envelope>")
            .as_bytes(),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        x,
    )
        .into_response()
}

fn soap_fault(faultcode: &str, faultstring: &str) -> Response {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\">\
         <soapenv:Body><soapenv:Fault><faultcode>{faultcode}</faultcode><faultstring>"
    )
    .into_bytes();
    escape_into(&mut x, faultstring);
    x.extend_from_slice(b"</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        x,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// WS-Security (§1.7).

fn soap_part<'a>(doc: &'a El, local: &str) -> Result<&'a El, String> {
    if !doc.is(NS_SOAP, "Envelope") {
        return Err("the root is not a SOAP 1.1 soapenv:Envelope".into());
    }
    let parts: Vec<&El> = doc
        .children
        .iter()
        .filter(|c| c.is(NS_SOAP, local))
        .collect();
    match parts.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no soapenv:{local}")),
        _ => Err(format!("more than one soapenv:{local}")),
    }
}

/// Structure checks that `xmlsec1` alone would not make (which token, which element is
/// signed), then `xmlsec1 --verify`; the error is the reason.
async fn authenticate(shared: &Shared, doc: &El, raw: &[u8]) -> Result<(), String> {
    let header = soap_part(doc, "Header")?;
    let body = soap_part(doc, "Body")?;
    let securities: Vec<&El> = header
        .children
        .iter()
        .filter(|c| c.is(NS_WSSE, "Security"))
        .collect();
    let [security] = securities.as_slice() else {
        return Err(format!(
            "{} wsse:Security headers, expected one",
            securities.len()
        ));
    };
    let mut signatures = Vec::new();
    doc.descendants(NS_DS, "Signature", &mut signatures);
    let [signature] = signatures.as_slice() else {
        return Err(format!(
            "{} ds:Signature elements in the message, expected one",
            signatures.len()
        ));
    };
    if !security
        .children
        .iter()
        .any(|c| std::ptr::eq(c, *signature))
    {
        return Err("ds:Signature is not a child of wsse:Security".into());
    }
    let token_id = signature
        .child(NS_DS, "KeyInfo")
        .and_then(|k| k.child(NS_WSSE, "SecurityTokenReference"))
        .and_then(|s| s.child(NS_WSSE, "Reference"))
        .and_then(|r| r.attr(None, "URI"))
        .and_then(|u| u.strip_prefix('#'))
        .ok_or("KeyInfo has no wsse:SecurityTokenReference/wsse:Reference URI=\"#…\"")?;
    let token = security
        .children
        .iter()
        .find(|c| {
            c.is(NS_WSSE, "BinarySecurityToken") && c.attr(Some(NS_WSU), "Id") == Some(token_id)
        })
        .ok_or_else(|| format!("no wsse:BinarySecurityToken with wsu:Id {token_id:?}"))?;
    if token.attr(None, "ValueType") != Some(X509V3) {
        return Err("BinarySecurityToken is not X509v3".into());
    }
    let compact: String = token
        .text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("BinarySecurityToken is not base64: {e}"))?;
    if !shared.certificates.contains(&der) {
        return Err("the BinarySecurityToken is not a registered certificate".into());
    }
    let signed_info = signature
        .child(NS_DS, "SignedInfo")
        .ok_or("no ds:SignedInfo")?;
    let alg = |el: Option<&El>| {
        el.and_then(|e| e.attr(None, "Algorithm"))
            .unwrap_or("")
            .to_string()
    };
    if alg(signed_info.child(NS_DS, "CanonicalizationMethod")) != EXC_C14N {
        return Err("CanonicalizationMethod is not exc-c14n".into());
    }
    if alg(signed_info.child(NS_DS, "SignatureMethod")) != RSA_SHA256 {
        return Err("SignatureMethod is not rsa-sha256".into());
    }
    let body_id = body
        .attr(Some(NS_WSU), "Id")
        .ok_or("soapenv:Body has no wsu:Id")?;
    let body_signed = signed_info
        .children
        .iter()
        .filter(|c| c.is(NS_DS, "Reference"))
        .any(|r| r.attr(None, "URI").and_then(|u| u.strip_prefix('#')) == Some(body_id));
    if !body_signed {
        return Err(format!("no ds:Reference to the Body (#{body_id})"));
    }
    let same_id = doc.count_ids(body_id);
    if same_id != 1 {
        return Err(format!(
            "{same_id} elements carry the Body's Id {body_id:?}"
        ));
    }
    crate::epuap::verify_ws_security(&shared.xmlsec1, raw, &der).await
}

// ---------------------------------------------------------------------------------------
// The resident's page.

const CSS: &str = "body{font-family:sans-serif;max-width:40em;margin:2em auto;color:#222}\
h1{font-size:1.3em;color:#b00}.dok{border:1px solid #ccc;padding:1em;margin:1em 0}\
button{padding:.5em 1.2em;margin-right:1em}";

fn html_page(status: StatusCode, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html lang=\"pl\"><head><meta charset=\"utf-8\">\
             <title>Profil Zaufany – podpisywanie dokumentu (symulator)</title>\
             <style>{CSS}</style></head><body><h1>Profil Zaufany (symulator)</h1>{body}</body></html>"
        )),
    )
        .into_response()
}

async fn page(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let doc = {
        let d = shared.lock();
        find(&d, &id).map(|doc| doc.snapshot.clone())
    };
    let Ok(doc) = doc else {
        return html_page(
            StatusCode::NOT_FOUND,
            "<p>Nie znaleziono dokumentu do podpisania.</p>",
        );
    };
    if let Err(e) = check_pending(&doc) {
        return html_page(StatusCode::CONFLICT, &state_text(&e));
    }
    let title = doc.title.as_deref().unwrap_or("Dokument bez tytułu");
    let mut options = String::new();
    for (i, p) in shared.people.iter().enumerate() {
        options.push_str(&format!(
            "<option value=\"{i}\">{} {}</option>",
            escaped(&p.first_name),
            escaped(&p.surname)
        ));
    }
    let info = if doc.additional_info.is_empty() {
        String::new()
    } else {
        format!("<p>{}</p>", escaped(&doc.additional_info))
    };
    html_page(
        StatusCode::OK,
        &format!(
            "<p>Podpisujesz dokument:</p><div class=\"dok\"><strong>{}</strong>{info}</div>\
             <form method=\"post\"><p><label>Podpisujący: <select name=\"osoba\">{options}</select>\
             </label></p><button name=\"akcja\" value=\"podpisz\">Podpisz podpisem zaufanym</button>\
             <button name=\"akcja\" value=\"anuluj\">Anuluj</button></form>",
            escaped(title)
        ),
    )
}

fn state_text(e: &PzSimError) -> String {
    match e {
        PzSimError::AlreadySigned(_) => "<p>Ten dokument został już podpisany.</p>".into(),
        PzSimError::Cancelled(_) => "<p>Podpisywanie tego dokumentu zostało anulowane.</p>".into(),
        PzSimError::UnknownDocument(_) => "<p>Nie znaleziono dokumentu do podpisania.</p>".into(),
        PzSimError::Signing { .. } => "<p>Podpisanie dokumentu nie powiodło się.</p>".into(),
    }
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

async fn page_action(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = String::from_utf8_lossy(&body).into_owned();
    let value = |name: &str| {
        form.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    match value("akcja").as_deref() {
        Some("anuluj") => match cancel_document(&shared, &id) {
            Ok(failure_url) => see_other(&failure_url),
            Err(e) => html_page(StatusCode::CONFLICT, &state_text(&e)),
        },
        Some("podpisz") => {
            let person = value("osoba")
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| shared.people.get(i).cloned());
            let Some(person) = person else {
                return html_page(StatusCode::BAD_REQUEST, "<p>Wybierz osobę podpisującą.</p>");
            };
            let (s, doc_id) = (shared.clone(), id.clone());
            // xmlsec1 runs as a child process; keep it off the async workers.
            let signed =
                tokio::task::spawn_blocking(move || sign_document(&s, &doc_id, &person)).await;
            match signed {
                Ok(Ok(_)) => {
                    let d = shared.lock();
                    match find(&d, &id) {
                        Ok(doc) => see_other(&doc.snapshot.success_url),
                        Err(e) => html_page(StatusCode::NOT_FOUND, &state_text(&e)),
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(document = %id, error = %e, "PZ sim: signing failed");
                    let status = match e {
                        PzSimError::Signing { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                        PzSimError::UnknownDocument(_) => StatusCode::NOT_FOUND,
                        _ => StatusCode::CONFLICT,
                    };
                    html_page(status, &state_text(&e))
                }
                Err(e) => {
                    tracing::warn!(document = %id, error = %e, "PZ sim: signing task failed");
                    html_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "<p>Podpisanie dokumentu nie powiodło się.</p>",
                    )
                }
            }
        }
        _ => html_page(StatusCode::BAD_REQUEST, "<p>Nieznana akcja.</p>"),
    }
}
