//! Simulator: ePUAP ESP web services, WS-Pull (`/work/shared/specs/epuap-login-edoreczenia.md` §1).
//!
//! A second, independent implementation of ePUAP's skrytka in PULL mode: it shares nothing with
//! the connector `gsko-epuap`. Requests are read with the simulators' own small quick-xml tree
//! reader, responses are written by hand, and the WS-Security signature is verified by the
//! `xmlsec1` command-line tool (libxmlsec1 on OpenSSL), not by the connector's
//! XML-signature crate. That choice is deliberate: a bug in the connector's canonicalisation
//! or digesting cannot be mirrored by the verifier, because the verifier is a different,
//! widely used C implementation of exclusive C14N and RSA-SHA256 (the same one the Python
//! `xmlsec` bindings wrap). `xmlsec1` must be installed (`apt-get install xmlsec1`);
//! [`EpuapSim::start`] fails with [`std::io::ErrorKind::NotFound`] otherwise.
//!
//! What it serves on `127.0.0.1:<random port>`:
//! - `POST /pk_external_ws/services/pull` (SOAP 1.1, `text/xml`, SOAPAction not required, §1.4;
//!   another Content-Type gets HTTP 415):
//!   `ob:ZapytaniePullOczekujace` → `ob:OdpowiedzPullOczekujace`,
//!   `ob:ZapytaniePullPobierz` → `ob:OdpowiedzPullPobierz`,
//!   `ob:ZapytaniePullPotwierdz` → `ob:OdpowiedzPullPotwierdz`.
//! - `POST /pk_external_ws/services/skrytka` (`nadaj`) and `.../doreczyciel` (`dorecz`), with
//!   the same request handling and authentication: see [`crate::epuap_send`].
//!
//! Semantics (§1.6): one FIFO per skrytka, addressed `/<podmiot>/<nazwaSkrytki>`; a request
//! must carry `podmiot`, `nazwaSkrytki` and `adresSkrytki` that agree. `pobierzNastepny`
//! returns the head without removing it (`status/kod` 1) or `kod` 0 when the box is empty;
//! `potwierdzOdebranie` removes the head only when `skrot` = Base64(SHA-1(decoded
//! `zawartosc`)) of the head. Element form as §1.3: the global elements are qualified in
//! `http://wsdl.epuap.gov.pl/obiekty/`, their children unqualified; a request whose children
//! are qualified is refused as malformed (a JAX-WS server would not bind them either).
//!
//! Authentication (§1.7): every request must carry `wsse:Security` with a
//! `wsse:BinarySecurityToken` (X.509v3, base64 DER) and one `ds:Signature` (exc-c14n,
//! rsa-sha256, sha256 digests) whose `KeyInfo/wsse:SecurityTokenReference` points at that
//! token and one of whose References is `#<wsu:Id of soapenv:Body>`. The token must be a
//! certificate registered for the request's `podmiot` ([`EpuapSimConfig::with_certificate`]).
//! Before `xmlsec1` runs, this module checks the structure itself, so that a valid signature
//! over something other than the Body that is then read cannot pass (signature wrapping):
//! exactly one `soapenv:Header` and one `soapenv:Body` under the Envelope, exactly one
//! `ds:Signature` in the document and it sits in `Header/wsse:Security`, and no other element
//! carries the Body's Id. `xmlsec1` then gets the registered certificate as the only key
//! (`--pubkey-cert-der`), the Body and an optional `wsu:Timestamp` registered as Id holders,
//! and same-document reference URIs only.
//!
//! Choices where the spec is silent (documented so tests can rely on them):
//! - Authentication comes before the box is looked up: a request naming a podmiot with no
//!   certificate registered is refused as unauthenticated, whether or not the box exists.
//! - Errors are SOAP 1.1 Faults answered with HTTP 500 (the SOAP 1.1 HTTP binding);
//!   `faultcode` is `soapenv:Client` for the caller's errors, `soapenv:Server` for injected
//!   faults; `detail/ob:Wyjatek/{kod, komunikat}`. The `kod` values are this simulator's own
//!   ([`KOD_BRAK_AUTORYZACJI`] …): the real ones were not found (§5).
//! - An empty `pobierzNastepny` answer carries only `status` (`kod` 0, "Brak dokumentów"):
//!   the real empty answer was not captured; clients check `kod` first (Sejm lib).
//! - `potwierdzOdebranie` on an empty box is a Fault ([`KOD_BRAK_DOKUMENTU`]).
//! - `daneDodatkowe` is `<DaneDodatkowe><IdentyfikatorDokumentu>…</IdentyfikatorDokumentu>
//!   </DaneDodatkowe>`, unqualified, base64 (the Sejm lib reads `(//IdentyfikatorDokumentu)[last()]`;
//!   the full structure is unknown).
//! - A `wsu:Timestamp` is accepted but its times are not checked; certificate validity dates
//!   are not checked either (the registered certificate is trusted as a key).
//! - Responses are not signed (ePUAP's response signature layout was not captured).
//!
//! Faults for tests: [`EpuapSimHandle::fail_next`] queues, per operation, a SOAP fault, a bare
//! HTTP 500 (before or after processing), a slow answer, or a `pobierzNastepny` answer whose
//! content is corrupted (its digest is then wrong and a confirmation with it is refused). A
//! queued fault is consumed by the next request naming that operation, whether or not it is
//! authenticated.
//!
//! [`generate_letter`] writes deterministic CRD "Pismo ogólne do podmiotu publicznego" letters
//! (§2.1–2.2) to put into boxes with [`EpuapSimHandle::deposit`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha1::{Digest, Sha1};

use crate::date::SimDate;
use crate::identifiers::pesel;
use crate::names::{feminine_surname, FEMALE_FIRST, MALE_FIRST, STREETS, SURNAMES};
use crate::tools::{xmlsec1_runs, xmlsec1_verify, IdAttribute, VerifyingCertificate};
use crate::xml::{escape_into, parse_document, El};

/// The path of WS-Pull (§1.2).
pub const PULL_PATH: &str = "/pk_external_ws/services/pull";

/// `http://wsdl.epuap.gov.pl/obiekty/` (§1.3).
pub const NS_OBIEKTY: &str = "http://wsdl.epuap.gov.pl/obiekty/";
pub(crate) const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub(crate) const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const BASE64_BINARY: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// `Wyjatek/kod`: the request carries no valid signature by a registered certificate.
pub const KOD_BRAK_AUTORYZACJI: i32 = 100;
/// `Wyjatek/kod`: no such skrytka.
pub const KOD_NIEZNANA_SKRYTKA: i32 = 101;
/// `Wyjatek/kod`: `podmiot`, `nazwaSkrytki` and `adresSkrytki` disagree.
pub const KOD_NIEZGODNY_ADRES: i32 = 102;
/// `Wyjatek/kod`: `skrot` is not the digest of the document at the head of the queue.
pub const KOD_NIEZGODNY_SKROT: i32 = 103;
/// `Wyjatek/kod`: `potwierdzOdebranie` on an empty skrytka.
pub const KOD_BRAK_DOKUMENTU: i32 = 104;
/// `Wyjatek/kod`: the request is not a well-formed WS-Pull request.
pub const KOD_BLEDNE_ZAPYTANIE: i32 = 105;
/// `Wyjatek/kod` of an injected fault ([`PullFault::SoapFault`] default).
pub const KOD_AWARIA: i32 = 500;

// ---------------------------------------------------------------------------------------
// Configuration and public types.

/// A skrytka address: `/<podmiot>/<nazwaSkrytki>` (§1.6).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoxAddress {
    pub podmiot: String,
    pub nazwa: String,
}

impl BoxAddress {
    pub fn new(podmiot: impl Into<String>, nazwa: impl Into<String>) -> Self {
        Self {
            podmiot: podmiot.into(),
            nazwa: nazwa.into(),
        }
    }

    /// Parses `/<podmiot>/<nazwa>`; `None` for anything else.
    pub fn parse(adres: &str) -> Option<Self> {
        let rest = adres.strip_prefix('/')?;
        let (podmiot, nazwa) = rest.split_once('/')?;
        if podmiot.is_empty() || nazwa.is_empty() || nazwa.contains('/') {
            return None;
        }
        Some(Self::new(podmiot, nazwa))
    }

    /// `/<podmiot>/<nazwa>`.
    pub fn adres(&self) -> String {
        format!("/{}/{}", self.podmiot, self.nazwa)
    }
}

impl std::fmt::Display for BoxAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}/{}", self.podmiot, self.nazwa)
    }
}

/// The boxes that exist and the certificates allowed to use them.
#[derive(Debug, Clone)]
pub struct EpuapSimConfig {
    pub boxes: Vec<BoxAddress>,
    /// podmiot → DER certificates registered for it ("Administrowanie / Systemy", §1.7).
    pub certificates: HashMap<String, Vec<Vec<u8>>>,
    /// The `xmlsec1` binary; `"xmlsec1"` (found on `PATH`) by default.
    pub xmlsec1: PathBuf,
    /// WS-Doręczyciel: when set, every `dorecz` shipment is collected by its recipient this long
    /// after it was accepted (end-to-end tests and the demo; see [`crate::epuap_send`]).
    pub auto_collect_after: Option<Duration>,
}

impl Default for EpuapSimConfig {
    fn default() -> Self {
        Self {
            boxes: Vec::new(),
            certificates: HashMap::new(),
            xmlsec1: PathBuf::from("xmlsec1"),
            auto_collect_after: None,
        }
    }
}

impl EpuapSimConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the skrytka `/<podmiot>/<nazwa>`.
    pub fn with_box(mut self, podmiot: &str, nazwa: &str) -> Self {
        self.boxes.push(BoxAddress::new(podmiot, nazwa));
        self
    }

    /// Registers a system certificate (DER) for `podmiot`.
    pub fn with_certificate(mut self, podmiot: &str, der: Vec<u8>) -> Self {
        self.certificates
            .entry(podmiot.to_string())
            .or_default()
            .push(der);
        self
    }
}

/// `danePodmiotu` (DanePodmiotuTyp) and `daneNadawcy` (DaneNadawcyTyp) of a letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSender {
    /// `danePodmiotu/identyfikator`: the sender's ePUAP login or podmiot id.
    pub identyfikator: String,
    /// `'F'` (osoba fizyczna) or `'P'` (prawna).
    pub typ_osoby: char,
    pub imie: Option<String>,
    /// Surname, or the name of an organisation.
    pub nazwisko_nazwa: Option<String>,
    pub pesel: Option<String>,
    pub nip: Option<String>,
    pub regon: Option<String>,
    /// Consent to electronic correspondence.
    pub zgoda: bool,
    /// `daneNadawcy/uzytkownik`.
    pub uzytkownik: Option<String>,
    /// `daneNadawcy/system`.
    pub system: Option<String>,
}

/// A letter waiting in a skrytka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimLetter {
    /// `dokument/nazwaPliku`.
    pub file_name: String,
    /// `dokument/typPliku`.
    pub mime_type: String,
    /// `dokument/zawartosc`, decoded.
    pub content: Vec<u8>,
    pub sender: SimSender,
    /// `dataNadania`, an xsd:dateTime as ePUAP writes it (`2024-05-10T10:11:12.000+02:00`).
    pub data_nadania: String,
    pub czy_testowe: bool,
    /// `IdentyfikatorDokumentu` inside `daneDodatkowe`: ePUAP's id of the document.
    pub document_id: String,
    /// `adresOdpowiedzi`; `None` is sent as `xsi:nil`.
    pub adres_odpowiedzi: Option<String>,
}

impl SimLetter {
    /// `skrot` of this letter: Base64(SHA-1(content)) (§1.6).
    pub fn skrot(&self) -> String {
        skrot_of(&self.content)
    }
}

/// Base64(SHA-1(bytes)), the `skrot` of `potwierdzOdebranie` (§1.6).
pub fn skrot_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(bytes))
}

/// A letter in a box's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedLetter {
    pub skrot: String,
    pub letter: SimLetter,
}

/// A letter whose receipt was confirmed (and which left the box).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedLetter {
    pub skrot: String,
    pub document_id: String,
}

/// The operations the simulator serves: the three of WS-Pull, and the sending ones of
/// WS-Skrytka and WS-Doręczyciel ([`crate::epuap_send`]), so that one fault-injection and call
/// counting mechanism covers them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullOperation {
    /// `oczekujaceDokumenty`
    Oczekujace,
    /// `pobierzNastepny`
    Pobierz,
    /// `potwierdzOdebranie`
    Potwierdz,
    /// WS-Skrytka `nadaj`.
    Nadaj,
    /// WS-Doręczyciel `dorecz`.
    Dorecz,
}

impl PullOperation {
    fn request_element(self) -> &'static str {
        match self {
            PullOperation::Oczekujace => "ZapytaniePullOczekujace",
            PullOperation::Pobierz => "ZapytaniePullPobierz",
            PullOperation::Potwierdz => "ZapytaniePullPotwierdz",
            // Both send an `ob:Dokument`; the endpoint, not the element, tells them apart.
            PullOperation::Nadaj | PullOperation::Dorecz => "Dokument",
        }
    }

    fn from_request_element(local: &str) -> Option<Self> {
        [
            PullOperation::Oczekujace,
            PullOperation::Pobierz,
            PullOperation::Potwierdz,
        ]
        .into_iter()
        .find(|op| op.request_element() == local)
    }
}

/// A fault for the next call of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullFault {
    /// A SOAP Fault (HTTP 500, `soapenv:Server`, `ob:Wyjatek` with this kod/komunikat),
    /// nothing done.
    SoapFault { kod: i32, komunikat: String },
    /// HTTP 500 with a non-SOAP body, nothing done.
    Http500,
    /// The request is processed (a confirmation removes the letter), then HTTP 500: the
    /// answer is lost.
    Http500AfterProcessing,
    /// The request is processed and answered after this delay (a client timeout loses it).
    Delay(Duration),
    /// `pobierzNastepny` only: the answer's `zawartosc` has one byte changed, so its digest is
    /// wrong and `potwierdzOdebranie` with it is refused. For other operations: no effect.
    CorruptContent,
}

impl PullFault {
    /// A SOAP fault with [`KOD_AWARIA`].
    pub fn soap_fault() -> Self {
        PullFault::SoapFault {
            kod: KOD_AWARIA,
            komunikat: "Błąd wewnętrzny systemu (symulowany)".into(),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    /// No `wsse:Security`, no token or no `ds:Signature`.
    Unsigned,
    /// The token is not a certificate registered for the request's podmiot.
    UnregisteredCertificate,
    /// The signature does not verify, does not cover the Body, uses other algorithms than
    /// §1.7, or the message is laid out so that the signed Body may not be the one read.
    InvalidSignature,
    /// Not a well-formed WS-Pull request.
    Malformed,
    UnknownBox,
    /// `podmiot`, `nazwaSkrytki`, `adresSkrytki` disagree.
    AddressMismatch,
    /// `skrot` differs from the head's digest.
    WrongDigest,
    /// `potwierdzOdebranie` on an empty box.
    NothingToConfirm,
    /// `nadaj`/`dorecz`: the document is not well-formed XML (ePUAP sends only XML documents).
    DocumentNotXml,
    /// `dorecz`: the document's root carries no `ds:Signature` (§1.6).
    DocumentUnsigned,
}

impl RejectionKind {
    /// True for authentication failures.
    pub fn is_authentication(self) -> bool {
        matches!(
            self,
            RejectionKind::Unsigned
                | RejectionKind::UnregisteredCertificate
                | RejectionKind::InvalidSignature
        )
    }
}

/// A request the simulator refused with a SOAP Fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectionKind,
    /// `None` when the operation could not be told.
    pub operation: Option<PullOperation>,
    pub detail: String,
}

/// Errors of the handle's methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpuapSimError {
    UnknownBox(String),
}

impl std::fmt::Display for EpuapSimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EpuapSimError::UnknownBox(b) => write!(f, "unknown skrytka {b}"),
        }
    }
}

impl std::error::Error for EpuapSimError {}

// ---------------------------------------------------------------------------------------
// State.

#[derive(Default)]
pub(crate) struct BoxState {
    pub(crate) queue: VecDeque<QueuedLetter>,
    confirmed: Vec<ConfirmedLetter>,
}

#[derive(Default)]
pub(crate) struct Data {
    pub(crate) boxes: BTreeMap<BoxAddress, BoxState>,
    certificates: HashMap<String, Vec<Vec<u8>>>,
    failures: HashMap<PullOperation, VecDeque<PullFault>>,
    calls: HashMap<PullOperation, usize>,
    pub(crate) rejections: Vec<Rejection>,
    pub(crate) signed_requests: usize,
    /// WS-Skrytka / WS-Doręczyciel state ([`crate::epuap_send`]).
    pub(crate) send: crate::epuap_send::SendState,
}

pub(crate) struct Shared {
    xmlsec1: PathBuf,
    data: Mutex<Data>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock only happens in a failing test; keep serving.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn take_failure(&self, op: PullOperation) -> Option<PullFault> {
        let mut d = self.lock();
        *d.calls.entry(op).or_default() += 1;
        d.failures.get_mut(&op).and_then(VecDeque::pop_front)
    }

    pub(crate) fn reject(
        &self,
        kind: RejectionKind,
        operation: Option<PullOperation>,
        detail: impl Into<String>,
    ) -> Response {
        let detail = detail.into();
        tracing::debug!(?kind, %detail, "epuap sim: request refused");
        self.lock().rejections.push(Rejection {
            kind,
            operation,
            detail: detail.clone(),
        });
        let (kod, komunikat) = match kind {
            RejectionKind::Unsigned
            | RejectionKind::UnregisteredCertificate
            | RejectionKind::InvalidSignature => (
                KOD_BRAK_AUTORYZACJI,
                "Brak autoryzacji: nieprawidłowy podpis WS-Security",
            ),
            RejectionKind::Malformed => (KOD_BLEDNE_ZAPYTANIE, "Błędne zapytanie"),
            RejectionKind::UnknownBox => (KOD_NIEZNANA_SKRYTKA, "Skrytka nie istnieje"),
            RejectionKind::AddressMismatch => {
                (KOD_NIEZGODNY_ADRES, "Niezgodny adres skrytki i podmiot")
            }
            RejectionKind::WrongDigest => (
                KOD_NIEZGODNY_SKROT,
                "Skrót nie odpowiada pierwszemu dokumentowi w kolejce",
            ),
            RejectionKind::NothingToConfirm => {
                (KOD_BRAK_DOKUMENTU, "Brak dokumentu do potwierdzenia")
            }
            RejectionKind::DocumentNotXml => (
                crate::epuap_send::KOD_DOKUMENT_NIE_XML,
                "Dokument nie jest poprawnym dokumentem XML",
            ),
            RejectionKind::DocumentUnsigned => (
                crate::epuap_send::KOD_DOKUMENT_NIEPODPISANY,
                "Doręczyciel przyjmuje tylko dokumenty podpisane",
            ),
        };
        soap_fault("soapenv:Client", kod, komunikat)
    }
}

/// The simulator. [`EpuapSim::start`] runs it.
pub struct EpuapSim;

impl EpuapSim {
    /// Starts the server on `127.0.0.1:0` inside the current Tokio runtime. Fails with
    /// `NotFound` when `xmlsec1` cannot be run.
    pub async fn start(config: EpuapSimConfig) -> std::io::Result<EpuapSimHandle> {
        if !xmlsec1_runs(&config.xmlsec1) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the ePUAP simulator verifies WS-Security with `{}`, which cannot be run \
                     (apt-get install xmlsec1)",
                    config.xmlsec1.display()
                ),
            ));
        }
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            xmlsec1: config.xmlsec1.clone(),
            data: Mutex::new(Data {
                boxes: config
                    .boxes
                    .iter()
                    .map(|b| (b.clone(), BoxState::default()))
                    .collect(),
                certificates: config.certificates.clone(),
                send: crate::epuap_send::SendState::new(config.auto_collect_after),
                ..Data::default()
            }),
        });
        let app = Router::new()
            .route(PULL_PATH, post(pull))
            .route(
                crate::epuap_send::SKRYTKA_PATH,
                post(crate::epuap_send::skrytka),
            )
            .route(
                crate::epuap_send::DORECZYCIEL_PATH,
                post(crate::epuap_send::doreczyciel),
            )
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
                tracing::warn!(error = %e, "epuap sim server stopped");
            }
        });
        Ok(EpuapSimHandle {
            base_url,
            shared,
            stop: Some(stop_tx),
            server,
        })
    }
}

/// Control of a running simulator. Dropping it stops the server.
pub struct EpuapSimHandle {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub(crate) shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for EpuapSimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing to do then.
            stop.send(()).ok();
        }
        self.server.abort();
    }
}

impl EpuapSimHandle {
    /// The WS-Pull endpoint: `<base_url>/pk_external_ws/services/pull`.
    pub fn pull_url(&self) -> String {
        format!("{}{PULL_PATH}", self.base_url)
    }

    /// Creates a skrytka (no effect if it exists).
    pub fn add_box(&self, b: &BoxAddress) {
        self.shared.lock().boxes.entry(b.clone()).or_default();
    }

    /// Registers one more certificate (DER) for `podmiot`.
    pub fn register_certificate(&self, podmiot: &str, der: Vec<u8>) {
        self.shared
            .lock()
            .certificates
            .entry(podmiot.to_string())
            .or_default()
            .push(der);
    }

    /// Puts a letter at the tail of the box's queue; returns its `skrot`.
    pub fn deposit(&self, b: &BoxAddress, letter: SimLetter) -> Result<String, EpuapSimError> {
        let mut d = self.shared.lock();
        let state = d
            .boxes
            .get_mut(b)
            .ok_or_else(|| EpuapSimError::UnknownBox(b.adres()))?;
        let skrot = letter.skrot();
        state.queue.push_back(QueuedLetter {
            skrot: skrot.clone(),
            letter,
        });
        Ok(skrot)
    }

    /// The letters waiting in the box, head first (empty for an unknown box).
    pub fn pending(&self, b: &BoxAddress) -> Vec<QueuedLetter> {
        self.shared
            .lock()
            .boxes
            .get(b)
            .map(|s| s.queue.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The letters confirmed (and removed) from the box, in order.
    pub fn confirmed(&self, b: &BoxAddress) -> Vec<ConfirmedLetter> {
        self.shared
            .lock()
            .boxes
            .get(b)
            .map(|s| s.confirmed.clone())
            .unwrap_or_default()
    }

    /// Every request refused with a SOAP Fault, oldest first (injected faults excluded).
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejections.clone()
    }

    /// Requests whose WS-Security signature verified.
    pub fn signed_requests(&self) -> usize {
        self.shared.lock().signed_requests
    }

    /// Requests that named `op`, faults and refusals included.
    pub fn calls(&self, op: PullOperation) -> usize {
        self.shared.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Queues a fault for the next call of `op` (several calls queue several faults).
    pub fn fail_next(&self, op: PullOperation, fault: PullFault) {
        self.fail_next_n(op, fault, 1);
    }

    /// Queues the same fault for the next `n` calls of `op`.
    pub fn fail_next_n(&self, op: PullOperation, fault: PullFault, n: usize) {
        let mut d = self.shared.lock();
        let q = d.failures.entry(op).or_default();
        for _ in 0..n {
            q.push_back(fault.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------
// The endpoint.

struct PullRequest {
    op: PullOperation,
    podmiot: String,
    nazwa: String,
    adres: String,
    skrot: Option<String>,
}

async fn pull(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    // SOAP 1.1 is `text/xml`; a SOAP 1.2 (`application/soap+xml`) or bare request is refused
    // with 415 as a JAX-WS endpoint does.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/xml")
    {
        shared.lock().rejections.push(Rejection {
            kind: RejectionKind::Malformed,
            operation: None,
            detail: format!("Content-Type {content_type:?} is not text/xml (SOAP 1.1)"),
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
            return shared.reject(RejectionKind::Malformed, None, format!("not XML: {e}"));
        }
    };
    let request = match read_request(&doc) {
        Ok(r) => r,
        Err((op, e)) => return shared.reject(RejectionKind::Malformed, op, e),
    };
    let op = request.op;
    let failure = shared.take_failure(op);
    match &failure {
        Some(PullFault::Http500) => return http_500(),
        Some(PullFault::SoapFault { kod, komunikat }) => {
            return soap_fault("soapenv:Server", *kod, komunikat)
        }
        _ => {}
    }
    if let Err((kind, detail)) = authenticate(&shared, &doc, &body, &request.podmiot).await {
        return shared.reject(kind, Some(op), detail);
    }
    shared.lock().signed_requests += 1;
    let response = answer(&shared, &request, failure.as_ref());
    match failure {
        Some(PullFault::Http500AfterProcessing) => http_500(),
        Some(PullFault::Delay(d)) => {
            tokio::time::sleep(d).await;
            response
        }
        _ => response,
    }
}

fn answer(shared: &Shared, req: &PullRequest, failure: Option<&PullFault>) -> Response {
    let op = Some(req.op);
    let Some(b) = BoxAddress::parse(&req.adres) else {
        return shared.reject(
            RejectionKind::AddressMismatch,
            op,
            format!("adresSkrytki {:?} is not /<podmiot>/<nazwa>", req.adres),
        );
    };
    if b.podmiot != req.podmiot || b.nazwa != req.nazwa {
        return shared.reject(
            RejectionKind::AddressMismatch,
            op,
            format!(
                "adresSkrytki {} vs podmiot {:?}, nazwaSkrytki {:?}",
                req.adres, req.podmiot, req.nazwa
            ),
        );
    }
    let mut d = shared.lock();
    let Some(state) = d.boxes.get_mut(&b) else {
        drop(d);
        return shared.reject(RejectionKind::UnknownBox, op, format!("no skrytka {b}"));
    };
    match req.op {
        PullOperation::Oczekujace => {
            let n = state.queue.len();
            drop(d);
            let mut x = Vec::new();
            write_status(&mut x, 1, "OK");
            write!(x, "<oczekujace>{n}</oczekujace>").ok();
            envelope("OdpowiedzPullOczekujace", &x)
        }
        PullOperation::Pobierz => {
            let Some(head) = state.queue.front().cloned() else {
                drop(d);
                let mut x = Vec::new();
                write_status(&mut x, 0, "Brak dokumentów");
                return envelope("OdpowiedzPullPobierz", &x);
            };
            drop(d);
            let mut letter = head.letter;
            if failure == Some(&PullFault::CorruptContent) {
                match letter.content.first_mut() {
                    Some(first) => *first ^= 0x20,
                    None => letter.content.push(b' '),
                }
            }
            envelope("OdpowiedzPullPobierz", &pobierz_body(&b, &letter))
        }
        // `read_request` only yields WS-Pull operations.
        PullOperation::Nadaj | PullOperation::Dorecz => {
            drop(d);
            shared.reject(
                RejectionKind::Malformed,
                op,
                "nadaj/dorecz are not WS-Pull operations",
            )
        }
        PullOperation::Potwierdz => {
            let skrot = req.skrot.as_deref().unwrap_or_default().trim();
            let Some(head) = state.queue.front() else {
                drop(d);
                return shared.reject(RejectionKind::NothingToConfirm, op, format!("{b} is empty"));
            };
            if head.skrot != skrot {
                let expected = head.skrot.clone();
                drop(d);
                return shared.reject(
                    RejectionKind::WrongDigest,
                    op,
                    format!("skrot {skrot:?}, head of {b} has {expected:?}"),
                );
            }
            if let Some(head) = state.queue.pop_front() {
                state.confirmed.push(ConfirmedLetter {
                    skrot: head.skrot,
                    document_id: head.letter.document_id,
                });
            }
            drop(d);
            let mut x = Vec::new();
            write_status(&mut x, 1, "OK");
            envelope("OdpowiedzPullPotwierdz", &x)
        }
    }
}

fn read_request(doc: &El) -> Result<PullRequest, (Option<PullOperation>, String)> {
    let body = soap_part(doc, "Body").map_err(|e| (None, e))?;
    let elements: Vec<&El> = body.children.iter().collect();
    let [payload] = elements.as_slice() else {
        return Err((None, "soapenv:Body must hold exactly one element".into()));
    };
    if payload.ns.as_deref() != Some(NS_OBIEKTY) {
        return Err((
            None,
            format!("{} is not in the namespace {NS_OBIEKTY}", payload.local),
        ));
    }
    let Some(op) = PullOperation::from_request_element(&payload.local) else {
        return Err((None, format!("unknown operation ob:{}", payload.local)));
    };
    let field = |name: &str| -> Result<Option<String>, (Option<PullOperation>, String)> {
        let mut found = None;
        for c in &payload.children {
            if c.local != name {
                continue;
            }
            if c.ns.is_some() {
                return Err((
                    Some(op),
                    format!(
                        "<{name}> must be unqualified (xmlns=\"\"), is in {:?}",
                        c.ns
                    ),
                ));
            }
            if found.is_some() {
                return Err((Some(op), format!("<{name}> given twice")));
            }
            found = Some(c.text.clone());
        }
        Ok(found)
    };
    let required = |name: &str| -> Result<String, (Option<PullOperation>, String)> {
        field(name)?.ok_or_else(|| (Some(op), format!("<{name}> missing")))
    };
    let podmiot = required("podmiot")?;
    let nazwa = required("nazwaSkrytki")?;
    let adres = required("adresSkrytki")?;
    let skrot = if op == PullOperation::Potwierdz {
        Some(required("skrot")?)
    } else {
        None
    };
    if podmiot.chars().count() > 100 {
        return Err((Some(op), "podmiot longer than 100 characters".into()));
    }
    Ok(PullRequest {
        op,
        podmiot,
        nazwa,
        adres,
        skrot,
    })
}

/// The one `soapenv:Header` or `soapenv:Body` under a SOAP 1.1 Envelope.
pub(crate) fn soap_part<'a>(doc: &'a El, local: &str) -> Result<&'a El, String> {
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

// ---------------------------------------------------------------------------------------
// WS-Security.

type AuthError = (RejectionKind, String);

pub(crate) async fn authenticate(
    shared: &Shared,
    doc: &El,
    raw: &[u8],
    podmiot: &str,
) -> Result<(), AuthError> {
    let invalid = |s: String| (RejectionKind::InvalidSignature, s);
    let unsigned = |s: &str| (RejectionKind::Unsigned, s.to_string());
    let header = soap_part(doc, "Header").map_err(|_| unsigned("no soapenv:Header"))?;
    let body = soap_part(doc, "Body").map_err(invalid)?;
    let securities: Vec<&El> = header
        .children
        .iter()
        .filter(|c| c.is(NS_WSSE, "Security"))
        .collect();
    let security = match securities.as_slice() {
        [] => return Err(unsigned("no wsse:Security header")),
        [one] => *one,
        _ => return Err(invalid("more than one wsse:Security header".into())),
    };
    let mut signatures = Vec::new();
    doc.descendants(NS_DS, "Signature", &mut signatures);
    let signature = match signatures.as_slice() {
        [] => return Err(unsigned("no ds:Signature")),
        [one] => *one,
        _ => return Err(invalid("more than one ds:Signature in the message".into())),
    };
    if !security.children.iter().any(|c| std::ptr::eq(c, signature)) {
        return Err(invalid("ds:Signature is not in wsse:Security".into()));
    }
    // The token the signature points at.
    let token_ref = signature
        .child(NS_DS, "KeyInfo")
        .and_then(|k| k.child(NS_WSSE, "SecurityTokenReference"))
        .and_then(|s| s.child(NS_WSSE, "Reference"))
        .and_then(|r| r.attr(None, "URI"))
        .ok_or_else(|| {
            invalid("KeyInfo has no wsse:SecurityTokenReference/wsse:Reference@URI".into())
        })?;
    let token_id = token_ref
        .strip_prefix('#')
        .ok_or_else(|| invalid(format!("token reference {token_ref:?} is not local")))?;
    let tokens: Vec<&El> = security
        .children
        .iter()
        .filter(|c| c.is(NS_WSSE, "BinarySecurityToken"))
        .collect();
    if tokens.is_empty() {
        return Err(unsigned("no wsse:BinarySecurityToken"));
    }
    let token = tokens
        .iter()
        .find(|t| t.attr(Some(NS_WSU), "Id") == Some(token_id))
        .ok_or_else(|| invalid(format!("no BinarySecurityToken with wsu:Id {token_id:?}")))?;
    if token.attr(None, "ValueType") != Some(X509V3) {
        return Err(invalid("BinarySecurityToken is not X509v3".into()));
    }
    if token
        .attr(None, "EncodingType")
        .is_some_and(|e| e != BASE64_BINARY)
    {
        return Err(invalid("BinarySecurityToken is not Base64Binary".into()));
    }
    let compact: String = token
        .text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| invalid(format!("BinarySecurityToken is not base64: {e}")))?;
    let registered = shared
        .lock()
        .certificates
        .get(podmiot)
        .is_some_and(|certs| certs.contains(&der));
    if !registered {
        return Err((
            RejectionKind::UnregisteredCertificate,
            format!("the token is not a certificate registered for podmiot {podmiot:?}"),
        ));
    }
    // The algorithms of §1.7 and a Reference to the Body that is read.
    let signed_info = signature
        .child(NS_DS, "SignedInfo")
        .ok_or_else(|| invalid("no ds:SignedInfo".into()))?;
    fn alg(el: Option<&El>) -> &str {
        el.and_then(|e| e.attr(None, "Algorithm")).unwrap_or("")
    }
    if alg(signed_info.child(NS_DS, "CanonicalizationMethod")) != EXC_C14N {
        return Err(invalid("CanonicalizationMethod is not exc-c14n".into()));
    }
    if alg(signed_info.child(NS_DS, "SignatureMethod")) != RSA_SHA256 {
        return Err(invalid("SignatureMethod is not rsa-sha256".into()));
    }
    let body_id = body
        .attr(Some(NS_WSU), "Id")
        .ok_or_else(|| invalid("soapenv:Body has no wsu:Id".into()))?;
    let mut body_signed = false;
    for reference in signed_info
        .children
        .iter()
        .filter(|c| c.is(NS_DS, "Reference"))
    {
        let uri = reference.attr(None, "URI").unwrap_or("");
        if !uri.starts_with('#') {
            return Err(invalid(format!("Reference URI {uri:?} is not a local #id")));
        }
        if alg(reference.child(NS_DS, "DigestMethod")) != SHA256 {
            return Err(invalid(format!(
                "Reference {uri} is not digested with sha256"
            )));
        }
        body_signed |= uri.strip_prefix('#') == Some(body_id);
    }
    if !body_signed {
        return Err(invalid(format!("no Reference to the Body (#{body_id})")));
    }
    let same_id = doc.count_ids(body_id);
    if same_id != 1 {
        return Err(invalid(format!(
            "{same_id} elements carry the Body's Id {body_id:?}"
        )));
    }
    verify_ws_security(&shared.xmlsec1, raw, &der)
        .await
        .map_err(invalid)
}

/// `xmlsec1 --verify` of a WS-Security message with the registered certificate as the only
/// key; the Body and the Timestamp are referenced by `wsu:Id`.
pub(crate) async fn verify_ws_security(
    xmlsec1: &std::path::Path,
    raw: &[u8],
    der: &[u8],
) -> Result<(), String> {
    let body = format!("{NS_SOAP}:Body");
    let timestamp = format!("{NS_WSU}:Timestamp");
    xmlsec1_verify(
        xmlsec1,
        raw,
        VerifyingCertificate::Der(der),
        &[
            IdAttribute {
                attribute: "Id",
                element: &body,
            },
            IdAttribute {
                attribute: "Id",
                element: &timestamp,
            },
        ],
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Writing responses.

pub(crate) fn text_el(out: &mut Vec<u8>, name: &str, value: &str) {
    write!(out, "<{name}>").ok();
    escape_into(out, value);
    write!(out, "</{name}>").ok();
}

pub(crate) fn write_status(out: &mut Vec<u8>, kod: i32, komunikat: &str) {
    write!(out, "<status><kod>{kod}</kod>").ok();
    text_el(out, "komunikat", komunikat);
    out.extend_from_slice(b"</status>");
}

fn pobierz_body(b: &BoxAddress, letter: &SimLetter) -> Vec<u8> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let s = &letter.sender;
    let mut x = Vec::new();
    write_status(&mut x, 1, "OK");
    x.extend_from_slice(b"<danePodmiotu>");
    text_el(&mut x, "identyfikator", &s.identyfikator);
    text_el(&mut x, "typOsoby", &s.typ_osoby.to_string());
    for (name, value) in [
        ("imieSkrot", &s.imie),
        ("nazwiskoNazwa", &s.nazwisko_nazwa),
        ("nip", &s.nip),
        ("pesel", &s.pesel),
        ("regon", &s.regon),
    ] {
        if let Some(v) = value {
            text_el(&mut x, name, v);
        }
    }
    text_el(&mut x, "zgoda", if s.zgoda { "true" } else { "false" });
    x.extend_from_slice(b"</danePodmiotu><daneNadawcy>");
    if let Some(u) = &s.uzytkownik {
        text_el(&mut x, "uzytkownik", u);
    }
    if let Some(sys) = &s.system {
        text_el(&mut x, "system", sys);
    }
    x.extend_from_slice(b"</daneNadawcy>");
    text_el(&mut x, "dataNadania", &letter.data_nadania);
    text_el(&mut x, "nazwaSkrytki", &b.nazwa);
    text_el(&mut x, "adresSkrytki", &b.adres());
    match &letter.adres_odpowiedzi {
        Some(a) => text_el(&mut x, "adresOdpowiedzi", a),
        None => x.extend_from_slice(
            b"<adresOdpowiedzi xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\"/>",
        ),
    }
    text_el(
        &mut x,
        "czyTestowe",
        if letter.czy_testowe { "true" } else { "false" },
    );
    text_el(
        &mut x,
        "daneDodatkowe",
        &b64.encode(dane_dodatkowe(&letter.document_id)),
    );
    x.extend_from_slice(b"<dokument>");
    text_el(&mut x, "nazwaPliku", &letter.file_name);
    text_el(&mut x, "typPliku", &letter.mime_type);
    text_el(&mut x, "zawartosc", &b64.encode(&letter.content));
    x.extend_from_slice(b"</dokument>");
    x
}

/// The `daneDodatkowe` XML (decoded) of a letter.
pub fn dane_dodatkowe(document_id: &str) -> Vec<u8> {
    let mut x = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><DaneDodatkowe>".to_vec();
    text_el(&mut x, "IdentyfikatorDokumentu", document_id);
    x.extend_from_slice(b"</DaneDodatkowe>");
    x
}

/// A response envelope: `p140:<element>` (qualified) around unqualified children.
pub(crate) fn envelope(element: &str, inner: &[u8]) -> Response {
    let mut x = Vec::with_capacity(inner.len() + 300);
    write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\">\
         <soapenv:Body><p140:{element} xmlns:p140=\"{NS_OBIEKTY}\">"
    )
    .ok();
    x.extend_from_slice(inner);
    write!(x, "</p140:{element}></soapenv:Body></soapenv:Envelope>").ok();
    xml_response(StatusCode::OK, x)
}

pub(crate) fn soap_fault(faultcode: &str, kod: i32, komunikat: &str) -> Response {
    let mut x = Vec::new();
    write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{NS_SOAP}\">\
         <soapenv:Body><soapenv:Fault><faultcode>{faultcode}</faultcode>"
    )
    .ok();
    text_el(&mut x, "faultstring", komunikat);
    write!(
        x,
        "<detail><ob:Wyjatek xmlns:ob=\"{NS_OBIEKTY}\"><kod>{kod}</kod>"
    )
    .ok();
    text_el(&mut x, "komunikat", komunikat);
    x.extend_from_slice(
        b"</ob:Wyjatek></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>",
    );
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, x)
}

pub(crate) fn xml_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=UTF-8")],
        body,
    )
        .into_response()
}

pub(crate) fn http_500() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>500 Internal Server Error</h1></body></html>",
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Letters: CRD "Pismo ogólne do podmiotu publicznego" (§2.1–2.2).

/// `wnio`: the wzór "Pismo ogólne do podmiotu publicznego".
pub const NS_WNIO: &str = "http://crd.gov.pl/wzor/2013/12/12/1410/";
const NS_META: &str = "http://crd.gov.pl/xml/schematy/meta/2009/11/16/";
const NS_STR: &str = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/";
const NS_ADR: &str = "http://crd.gov.pl/xml/schematy/adres/2009/11/09/";
const NS_OSO: &str = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/";
const NS_INST: &str = "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/";

/// How the generated letter is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LetterSignature {
    /// No `ds:Signature`.
    #[default]
    Unsigned,
    /// Podpis zaufany, old form: an enveloped XAdES-BES `ds:Signature` as the last child of
    /// `wnio:Dokument` (§2.3), made with the simulated COI certificate
    /// ([`crate::xades::coi_certificate`]), naming the sender in `ppZP:PodpisZP` (with the
    /// sender's ePUAP login).
    PodpisZaufany,
    /// Podpis zaufany, new form: the sender named in `EPSignature` (with the date of birth).
    EpSignature,
    /// [`LetterSignature::PodpisZaufany`], then one character of the title changed
    /// ([`crate::xades::tamper`]): the signature no longer verifies.
    Tampered,
    /// A valid [`LetterSignature::PodpisZaufany`] naming a different (deterministic) person
    /// with a valid PESEL, while `str:Nadawcy` still declares the original sender: the
    /// signature verifies, but the signer is not who the letter says it is from.
    SignedBySomeoneElse,
}

/// What letter to generate; everything else comes from the seed.
#[derive(Debug, Clone)]
pub struct LetterSpec {
    /// The addressee office, e.g. "Urząd Gminy Gromadka".
    pub addressee: String,
    /// The office's REGON, if known (written as `inst:IdInstytucji/inst:REGON`).
    pub addressee_regon: Option<String>,
    /// The letter's date (`meta:Data typDaty="stworzony"`, and the day of `dataNadania`).
    pub date: SimDate,
    /// `wnio:MiejscowoscDokumentu` and the sender's town.
    pub locality: String,
    pub postal_code: String,
    /// How many attachments (0–5 are sensible).
    pub attachments: usize,
    pub czy_testowe: bool,
    pub signature: LetterSignature,
    /// A given sender instead of one drawn from the seed (the demo's residents):
    /// `(first name, surname, PESEL)`; the ePUAP login derives from the names.
    pub sender: Option<(String, String, String)>,
}

impl LetterSpec {
    pub fn new(addressee: &str, locality: &str, postal_code: &str, date: SimDate) -> Self {
        Self {
            addressee: addressee.to_string(),
            addressee_regon: None,
            date,
            locality: locality.to_string(),
            postal_code: postal_code.to_string(),
            attachments: 1,
            czy_testowe: false,
            signature: LetterSignature::Unsigned,
            sender: None,
        }
    }
}

/// An attachment of a generated letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedAttachment {
    pub file_name: String,
    pub mime_type: String,
    pub content: Vec<u8>,
}

/// A generated letter: its CRD XML, what went into it, and the [`SimLetter`] to deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedLetter {
    /// The document XML (UTF-8).
    pub xml: Vec<u8>,
    pub first_name: String,
    pub surname: String,
    pub pesel: String,
    /// The sender's ePUAP login.
    pub epuap_login: String,
    pub title: String,
    pub body: String,
    pub attachments: Vec<GeneratedAttachment>,
    /// Ready for [`EpuapSimHandle::deposit`]: file `Pismo_ogolne.xml`, `application/xml`.
    pub letter: SimLetter,
    /// The PESEL the signature's claim names: the sender's, another person's for
    /// [`LetterSignature::SignedBySomeoneElse`], `None` when unsigned.
    pub signer_pesel: Option<String>,
}

const TOPICS: &[(&str, &str)] = &[
    (
        "Wniosek o wydanie zaświadczenia o niezaleganiu w podatkach",
        "Zwracam się z prośbą o wydanie zaświadczenia o niezaleganiu w podatkach lokalnych. \
         Zaświadczenie jest mi potrzebne do złożenia wniosku o kredyt.",
    ),
    (
        "Wniosek o rozłożenie zaległości na raty",
        "Wnoszę o rozłożenie na raty zaległości w podatku od nieruchomości za bieżący rok. \
         Z powodu choroby moje dochody w ostatnich miesiącach znacznie się zmniejszyły.",
    ),
    (
        "Korekta deklaracji o wysokości opłaty za gospodarowanie odpadami",
        "W związku ze zmianą liczby osób zamieszkujących nieruchomość składam korektę \
         deklaracji. Od początku miesiąca w lokalu mieszkają trzy osoby.",
    ),
    (
        "Zapytanie o stan konta podatnika",
        "Proszę o informację o stanie mojego konta podatkowego oraz o ewentualnych \
         zaległościach wraz z odsetkami.",
    ),
    (
        "Wniosek o zwrot nadpłaty",
        "Wnoszę o zwrot nadpłaty w podatku od nieruchomości na mój rachunek bankowy. \
         Wpłaty dokonałem omyłkowo dwukrotnie.",
    ),
    (
        "Zgłoszenie zmiany adresu do korespondencji",
        "Informuję, że zmieniłem adres do korespondencji. Proszę o kierowanie pism na \
         adres podany w niniejszym piśmie.",
    ),
];

/// A deterministic letter: the same seed and spec give the same bytes.
/// The birth date a PESEL encodes (the month carries the century).
fn birth_in_pesel(pesel: &str) -> Option<SimDate> {
    let d: Vec<u32> = pesel
        .chars()
        .take(6)
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    let [y1, y2, m1, m2, d1, d2] = d.as_slice() else {
        return None;
    };
    let (yy, mm, dd) = (y1 * 10 + y2, m1 * 10 + m2, d1 * 10 + d2);
    let (century, month) = match mm {
        1..=12 => (1900, mm),
        21..=32 => (2000, mm - 20),
        41..=52 => (2100, mm - 40),
        61..=72 => (2200, mm - 60),
        81..=92 => (1800, mm - 80),
        _ => return None,
    };
    SimDate::new(century + yy as i32, month, dd)
}

pub fn generate_letter(seed: u64, spec: &LetterSpec) -> GeneratedLetter {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6570_7561_7020_6c65);
    let male = rng.gen_bool(0.5);
    let first_name = if male {
        MALE_FIRST[rng.gen_range(0..MALE_FIRST.len())]
    } else {
        FEMALE_FIRST[rng.gen_range(0..FEMALE_FIRST.len())]
    }
    .to_string();
    let male_surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
    let surname = if male {
        male_surname.to_string()
    } else {
        feminine_surname(male_surname)
    };
    let birth = SimDate::ymd(1940, 1, 1).add_days(rng.gen_range(0..365 * 65));
    let pesel = pesel(birth, rng.gen_range(0..1000), male, rng.gen_range(0..5));
    // The draws above happen either way, so the rest of the letter stays the same.
    let (first_name, surname, pesel, birth) = match &spec.sender {
        Some((f, s, p)) => (
            f.clone(),
            s.clone(),
            p.clone(),
            birth_in_pesel(p).unwrap_or(birth),
        ),
        None => (first_name, surname, pesel, birth),
    };
    let epuap_login = format!(
        "{}{}{}",
        ascii_lower(&first_name[..first_name.char_indices().nth(1).map_or(1, |(i, _)| i)]),
        ascii_lower(&surname),
        rng.gen_range(1..100)
    );
    let street = STREETS[rng.gen_range(0..STREETS.len())];
    let building = rng.gen_range(1..120).to_string();
    let (title, text) = TOPICS[rng.gen_range(0..TOPICS.len())];
    let title = title.to_string();
    let body = format!("{text}\n\nZ poważaniem\n{first_name} {surname}",);
    let attachments: Vec<GeneratedAttachment> = (0..spec.attachments)
        .map(|i| attachment(&mut rng, i, &first_name, &surname, &title))
        .collect();
    let hour = rng.gen_range(7..22);
    let minute = rng.gen_range(0..60);
    let second = rng.gen_range(0..60);
    let millis = rng.gen_range(0..1000);
    let document_id = format!("{}", rng.gen_range(10_000_000u64..99_999_999));

    let mut x = Vec::new();
    write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <?xml-stylesheet type=\"text/xsl\" href=\"{NS_WNIO}styl.xsl\"?>\n\
         <wnio:Dokument xmlns:wnio=\"{NS_WNIO}\" xmlns:meta=\"{NS_META}\" xmlns:str=\"{NS_STR}\" \
         xmlns:adr=\"{NS_ADR}\" xmlns:oso=\"{NS_OSO}\" xmlns:inst=\"{NS_INST}\">"
    )
    .ok();
    let date = spec.date.to_string();
    write!(
        x,
        "<wnio:OpisDokumentu><meta:Data typDaty=\"stworzony\"><meta:Czas>{date}</meta:Czas>\
         </meta:Data></wnio:OpisDokumentu><wnio:DaneDokumentu><str:Naglowek>\
         <str:NazwaDokumentu>Pismo ogólne do podmiotu publicznego</str:NazwaDokumentu>\
         </str:Naglowek><meta:Data typDaty=\"stworzony\"><meta:Czas>{date}</meta:Czas></meta:Data>\
         <str:Adresaci><meta:Podmiot><inst:Instytucja>"
    )
    .ok();
    text_el(&mut x, "inst:NazwaInstytucji", &spec.addressee);
    if let Some(regon) = &spec.addressee_regon {
        x.extend_from_slice(b"<inst:IdInstytucji>");
        text_el(&mut x, "inst:REGON", regon);
        x.extend_from_slice(b"</inst:IdInstytucji>");
    }
    x.extend_from_slice(
        b"</inst:Instytucja></meta:Podmiot></str:Adresaci><str:Nadawcy><meta:Podmiot><oso:Osoba>",
    );
    text_el(&mut x, "oso:Imie", &first_name);
    text_el(&mut x, "oso:Nazwisko", &surname);
    x.extend_from_slice(b"<adr:Adres>");
    text_el(&mut x, "adr:KodPocztowy", &spec.postal_code);
    text_el(&mut x, "adr:Poczta", &spec.locality);
    text_el(&mut x, "adr:Miejscowosc", &spec.locality);
    text_el(&mut x, "adr:Ulica", street);
    text_el(&mut x, "adr:Budynek", &building);
    x.extend_from_slice(b"</adr:Adres><oso:IdOsoby>");
    text_el(&mut x, "oso:PESEL", &pesel);
    x.extend_from_slice(
        b"</oso:IdOsoby></oso:Osoba></meta:Podmiot></str:Nadawcy></wnio:DaneDokumentu>",
    );
    x.extend_from_slice(b"<wnio:TrescDokumentu format=\"text/xml\" kodowanie=\"XML\">");
    text_el(&mut x, "wnio:MiejscowoscDokumentu", &spec.locality);
    text_el(&mut x, "wnio:Tytul", &title);
    // `jakiInny` as the CRD stylesheet reads it (§2.2), not OMB's `jakisInny`.
    let (rodzaj, jaki_inny) = if title.starts_with("Wniosek") {
        ("wniosek", "")
    } else {
        ("inne pismo", "pismo ogólne")
    };
    write!(
        x,
        "<wnio:RodzajWnioskuRozszerzony rodzaj=\"{rodzaj}\" jakiInny=\"{jaki_inny}\"/>"
    )
    .ok();
    x.extend_from_slice(b"<wnio:Informacje>");
    text_el(&mut x, "wnio:Informacja", &body);
    x.extend_from_slice(b"</wnio:Informacje><wnio:Podpis>");
    text_el(&mut x, "oso:Imie", &first_name);
    text_el(&mut x, "oso:Nazwisko", &surname);
    x.extend_from_slice(b"</wnio:Podpis>");
    if !attachments.is_empty() {
        x.extend_from_slice(b"<str:Zalaczniki>");
        for a in &attachments {
            x.extend_from_slice(b"<str:Zalacznik format=\"");
            escape_into(&mut x, &a.mime_type);
            x.extend_from_slice(b"\" kodowanie=\"base64\" nazwaPliku=\"");
            escape_into(&mut x, &a.file_name);
            x.extend_from_slice(b"\">");
            text_el(
                &mut x,
                "str:DaneZalacznika",
                &base64::engine::general_purpose::STANDARD.encode(&a.content),
            );
            text_el(&mut x, "str:OpisZalacznika", &a.file_name);
            x.extend_from_slice(b"</str:Zalacznik>");
        }
        x.extend_from_slice(b"</str:Zalaczniki>");
    }
    x.extend_from_slice(b"</wnio:TrescDokumentu></wnio:Dokument>");
    // The signing hook (see [`LetterSignature`]): signed variants wrap the unsigned bytes here.
    // Signed at 10:00 on the letter's date; the claim and certificate per variant.
    let signing_time = format!("{date}T10:00:00+01:00");
    let sign = |claim: &crate::xades::SignerClaim| {
        crate::xades::sign_enveloped(&x, crate::xades::coi_certificate(), claim, &signing_time)
            .unwrap_or_else(|e| panic!("xmlsec1 must sign the generated letter: {e}"))
    };
    let sender_zp = || crate::xades::SignerClaim::PodpisZp {
        first_name: first_name.clone(),
        surname: surname.clone(),
        pesel: pesel.clone(),
        epuap_login: epuap_login.clone(),
    };
    let (xml, signer_pesel) = match spec.signature {
        LetterSignature::Unsigned => (x, None),
        LetterSignature::PodpisZaufany => (sign(&sender_zp()), Some(pesel.clone())),
        LetterSignature::EpSignature => {
            let claim = crate::xades::SignerClaim::EpSignature {
                first_name: first_name.clone(),
                surname: surname.clone(),
                pesel: pesel.clone(),
                date_of_birth: birth.to_string(),
            };
            (sign(&claim), Some(pesel.clone()))
        }
        LetterSignature::Tampered => (
            crate::xades::tamper(&sign(&sender_zp())),
            Some(pesel.clone()),
        ),
        LetterSignature::SignedBySomeoneElse => {
            let (other, other_pesel) = someone_else(seed, &pesel);
            (sign(&other), Some(other_pesel))
        }
    };
    let (y, m, d) = spec.date.parts();
    let offset = if is_cest(spec.date) {
        "+02:00"
    } else {
        "+01:00"
    };
    let letter = SimLetter {
        file_name: "Pismo_ogolne.xml".into(),
        mime_type: "application/xml".into(),
        content: xml.clone(),
        sender: SimSender {
            identyfikator: epuap_login.clone(),
            typ_osoby: 'F',
            imie: Some(first_name.clone()),
            nazwisko_nazwa: Some(surname.clone()),
            pesel: Some(pesel.clone()),
            nip: None,
            regon: None,
            zgoda: rng.gen_bool(0.8),
            uzytkownik: Some(epuap_login.clone()),
            system: None,
        },
        data_nadania: format!(
            "{y:04}-{m:02}-{d:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}{offset}"
        ),
        czy_testowe: spec.czy_testowe,
        document_id,
        adres_odpowiedzi: Some(format!("/{epuap_login}/domyslna")),
    };
    GeneratedLetter {
        xml,
        first_name,
        surname,
        pesel,
        epuap_login,
        title,
        body,
        attachments,
        letter,
        signer_pesel,
    }
}

/// The person who signs a [`LetterSignature::SignedBySomeoneElse`] letter: drawn from its own
/// stream of the seed (so the letter itself is the same as with any other variant), never the
/// sender. Returns the claim and its PESEL.
fn someone_else(seed: u64, sender_pesel: &str) -> (crate::xades::SignerClaim, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x696e_6e79_2073_6967);
    let male = rng.gen_bool(0.5);
    let first_name = if male {
        MALE_FIRST[rng.gen_range(0..MALE_FIRST.len())]
    } else {
        FEMALE_FIRST[rng.gen_range(0..FEMALE_FIRST.len())]
    }
    .to_string();
    let male_surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
    let surname = if male {
        male_surname.to_string()
    } else {
        feminine_surname(male_surname)
    };
    let birth = SimDate::ymd(1940, 1, 1).add_days(rng.gen_range(0..365 * 65));
    let serial = rng.gen_range(0..1000);
    let mut other = pesel(birth, serial, male, 0);
    if other == sender_pesel {
        other = pesel(birth, (serial + 1) % 1000, male, 0);
    }
    let epuap_login = format!("{}{}", ascii_lower(&surname), rng.gen_range(100..1000));
    let claim = crate::xades::SignerClaim::PodpisZp {
        first_name,
        surname,
        pesel: other.clone(),
        epuap_login,
    };
    (claim, other)
}

fn attachment(
    rng: &mut ChaCha8Rng,
    i: usize,
    first: &str,
    surname: &str,
    title: &str,
) -> GeneratedAttachment {
    match rng.gen_range(0..3) {
        0 => {
            // A small but well-formed one-page PDF.
            let text = format!("{first} {surname}: {title}");
            let stream = format!("BT /F1 12 Tf 72 720 Td ({}) Tj ET", pdf_text(&text));
            let objects = [
                "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
                "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
                 /Resources << /Font << /F1 5 0 R >> >> >>"
                    .to_string(),
                format!(
                    "<< /Length {} >>\nstream\n{stream}\nendstream",
                    stream.len()
                ),
                "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
            ];
            let mut pdf = b"%PDF-1.4\n".to_vec();
            let mut offsets = Vec::new();
            for (n, o) in objects.iter().enumerate() {
                offsets.push(pdf.len());
                write!(pdf, "{} 0 obj\n{o}\nendobj\n", n + 1).ok();
            }
            let xref = pdf.len();
            write!(pdf, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).ok();
            for off in offsets {
                writeln!(pdf, "{off:010} 00000 n ").ok();
            }
            write!(
                pdf,
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .ok();
            GeneratedAttachment {
                file_name: format!("zalacznik_{}.pdf", i + 1),
                mime_type: "application/pdf".into(),
                content: pdf,
            }
        }
        1 => GeneratedAttachment {
            file_name: format!("wyjasnienie_{}.txt", i + 1),
            mime_type: "text/plain".into(),
            content: format!(
                "{first} {surname}\n{title}\nZałącznik nr {}: wyjaśnienie do pisma.\n",
                i + 1
            )
            .into_bytes(),
        },
        _ => {
            // A JPEG-looking blob: SOI, JFIF APP0 header, random bytes, EOI.
            let mut jpg = vec![
                0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00,
                0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
            ];
            let n = rng.gen_range(200..600);
            jpg.extend((0..n).map(|_| rng.gen::<u8>()));
            jpg.extend([0xFF, 0xD9]);
            GeneratedAttachment {
                file_name: format!("skan_{}.jpg", i + 1),
                mime_type: "image/jpeg".into(),
                content: jpg,
            }
        }
    }
}

fn ascii_lower(s: &str) -> String {
    crate::names::ascii_fold(s).to_ascii_lowercase()
}

/// Text for a PDF string literal with the standard Helvetica encoding: Polish letters folded
/// word by word (spaces and punctuation kept), parentheses and backslashes dropped.
fn pdf_text(s: &str) -> String {
    s.split(' ')
        .map(|word| {
            word.chars()
                .map(|c| {
                    let folded = crate::names::ascii_fold(&c.to_string());
                    match folded.chars().next() {
                        Some(f) if c.is_uppercase() => f.to_ascii_uppercase().to_string(),
                        Some(_) => folded,
                        None if c.is_ascii() && !matches!(c, '(' | ')' | '\\') => c.to_string(),
                        None => String::new(),
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polish summer time (CEST): from the last Sunday of March to the last Sunday of October
/// (the hour of the switch is ignored).
fn is_cest(date: SimDate) -> bool {
    let (y, m, _) = date.parts();
    let last_sunday = |month: u32| {
        let last = SimDate::ymd(y, month, 31);
        // 1970-01-01 was a Thursday (weekday 3, Monday = 0).
        let weekday = (SimDate::ymd(1970, 1, 1).days_until(last) + 3).rem_euclid(7);
        last.add_days(-((weekday + 1) % 7))
    };
    match m {
        4..=9 => true,
        3 => date >= last_sunday(3),
        10 => date < last_sunday(10),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_text_folds_polish_letters() {
        assert_eq!(pdf_text("Żółć (x) Łąka: a\\b"), "Zolc x Laka: ab");
    }

    #[test]
    fn box_address_round_trip() {
        let b = BoxAddress::parse("/vulcandpo/testowa").unwrap();
        assert_eq!(b, BoxAddress::new("vulcandpo", "testowa"));
        assert_eq!(b.adres(), "/vulcandpo/testowa");
        assert!(BoxAddress::parse("vulcandpo/testowa").is_none());
        assert!(BoxAddress::parse("/a/b/c").is_none());
        assert!(BoxAddress::parse("//b").is_none());
    }

    #[test]
    fn skrot_is_base64_sha1() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d
        assert_eq!(skrot_of(b"abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    }

    #[test]
    fn summer_time() {
        assert!(!is_cest(SimDate::ymd(2026, 3, 28)));
        assert!(is_cest(SimDate::ymd(2026, 3, 29)));
        assert!(is_cest(SimDate::ymd(2026, 10, 24)));
        assert!(!is_cest(SimDate::ymd(2026, 10, 25)));
        assert!(!is_cest(SimDate::ymd(2026, 1, 5)));
    }

    #[test]
    fn tree_reader_resolves_namespaces() {
        let doc = parse_document(
            br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body a:Id="x" xmlns:a="urn:a"><Z xmlns="urn:z"><p xmlns="">v&amp;w</p></Z></e:Body></e:Envelope>"#,
        )
        .unwrap();
        let body = soap_part(&doc, "Body").unwrap();
        assert_eq!(body.attr(Some("urn:a"), "Id"), Some("x"));
        let z = &body.children[0];
        assert_eq!(z.ns.as_deref(), Some("urn:z"));
        assert_eq!(z.children[0].ns, None);
        assert_eq!(z.children[0].text, "v&w");
    }
}
