//! Simulator: EZD RP "Integrator API v2" (NASK's document management system), the subset
//! GSKO uses to register incoming letters, open and follow cases and read outgoing mail.
//!
//! A second, independent implementation of the contract (`/tmp/ezd/contract.md`, the OpenAPI
//! file `ezdrp-v2.json`): it shares nothing with the connector `gsko-ezd`. Requests are read as
//! untyped JSON and checked field by field, so a connector that misnames or omits a required
//! field gets the 400 `invalid-params` answer EZD would give.
//!
//! What it serves on `127.0.0.1:<random port>` (API prefix `/ezdrp/integrator/v2`):
//! - `POST /connect/token` (`grant_type=api_credentials`, every field checked, `rt` ±5 min);
//! - `POST /obiegi` (multipart `file`), `GET /obiegi`, `GET /obiegi/{id}/dokumenty`,
//!   `POST /obiegi/{id}/sprawy`, `POST /obiegi/{id}/sprawy/{idSprawa}`;
//! - `POST /dokumenty/{id}/rpw`, `GET /dokumenty/{id}`, `GET /dokumenty/{id}/link`,
//!   `POST /dokumenty/_search`, and `GET /repo/{token}` (the file repository, no bearer);
//! - `GET /rpw/{numer}/{rok}`, `GET|PUT /rpw/{numer}/{rok}/metadane`,
//!   `POST /rpw/{numer}/{rok}/zalaczniki`, `POST /rpw/_search`;
//! - `POST /adresaci`, `POST /adresaci/_search`, `GET /adresaci/{id}`;
//! - `GET /sprawy/{id}`, `POST /sprawy/_search`, `GET /sprawy/{id}/dokumenty`,
//!   `GET /sprawy/{id}/kw`, `PATCH /sprawy/{id}/{zakonczenie|zawieszenie|wznowienie|odlozenie}`;
//! - `GET /struktura/uzytkownik`, `POST|GET /subskrypcje`, `GET|DELETE /subskrypcje/{id}`.
//!
//! Every API call needs `Authorization: Bearer <token from /connect/token, not expired>`
//! (else 401, empty body) and `SID: <configured stanowisko>` (else 403, problem+json).
//! Errors are `application/problem+json` in the contract's shapes: 400 with `invalid-params`
//! naming the field, 404/409/500 with `title`/`detail`.
//!
//! Webhooks. The contract lists event keys but not the delivered payload, so this simulator
//! defines it: a `POST` to the subscription's `Url` with the JSON body
//! `{"kluczZdarzenia", "idPodmiot", "dataZdarzenia" (RFC 3339), "dane": {"idSprawa"?,
//! "znakSprawy"?, "numerRpw"?, "idDokumentPrzestrzeni"?, "idObieg"?}}` and no signature
//! header (the contract defines none; `apiSekret` is only returned). Events sent:
//! `ezdrp.v2.pismo.dodanie.dodano` (an RPW number was given), `ezdrp.v2.rpw.sprawa.utworzono`
//! / `ezdrp.v2.rpw.sprawa.dolaczono` (a task opened / joined a case),
//! `ezdrp.v2.dokument.podpis.zlozono` (a signed outgoing document, see
//! [`EzdSim::add_outgoing`]) and `ezdrp.v2.zadanie.zakonczono`, which this simulator sends when
//! a case's status is changed through [`EzdSim::set_case_status`] or the autopilot: EZD RP has
//! no case-status event, so a connector must not rely on it; it only wakes a poller up.
//! Delivery runs in the background; a non-2xx answer or a timeout (the subscription's
//! `Timeout`) is retried after each of [`EzdSimConfig::webhook_retry_delays`], then given up.
//! `MaksymalnaLiczbaZadan` is stored but not enforced.
//!
//! Choices where the contract is silent (documented so tests can rely on them):
//! - Case signs are `{unit}.{symbol}.{n}.{year}`; `n` counts per (unit, symbol, year) from 1;
//!   `numer` > 0 in `POST /obiegi/{id}/sprawy` takes that number if it is free (else 409).
//! - RPW numbers are `RPW/{n}/{year}`, `n` per year from 1. RPW status: 1 after the number,
//!   2 after `PUT …/metadane`, 3 once its task opened or joined a case.
//! - `PUT …/metadane`: `czyAnonimowy: true` needs an empty `adresaci`, `false` at least one.
//! - PESEL, NIP and REGON of an addressee are taken from `metadaneAdresata` entries whose
//!   `nazwa` or `klucz` contains "pesel" / "nip" / "regon"; they are searchable with
//!   `POST /adresaci/_search` and never returned (the contract returns them nowhere).
//! - `GET /sprawy/{id}/kw` gives one group per outgoing item; `adresat` is
//!   `{"idAdresat", "nazwa"}` (untyped in the contract).
//! - `GET /struktura/uzytkownik` top-level fields other than `listaStanowisk` are invented.
//! - `rokZalozenia` outside 2000..=2100 is a 400 (EZD checks "Dopuszczalne roczniki").
//! - While the key is revoked ([`EzdSim::revoke_credentials`]) the token endpoint answers 401
//!   `invalid_client` too; wrong token fields are 400 `invalid_grant` (`unsupported_grant_type`
//!   for a wrong `grant_type`).
//! - Lifecycle PATCHes check the current status (e.g. closing a closed case is a 409).
//! - 409 answers use the `invalid-params` shape with the name `body`.
//!
//! Control for tests and the demo: [`EzdSim`] methods (faults, credential revocation, case
//! status, outgoing mail, inspection, an autopilot "clerk", an HTTP rate limit).

// Request helpers return the ready HTTP error as their `Err`: one per request, size is moot.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The API path prefix of every Integrator v2 operation.
pub const API_PREFIX: &str = "/ezdrp/integrator/v2";

/// The event keys a subscription may name (contract, `SubskrypcjaZdarzenia`).
pub const EVENT_KEYS: [&str; 12] = [
    "ezdrp.v2.dokument.akceptacja.anulowano",
    "ezdrp.v2.dokument.akceptacja.odrzucono",
    "ezdrp.v2.dokument.akceptacja.zaakceptowano",
    "ezdrp.v2.dokument.podpis.anulowano",
    "ezdrp.v2.dokument.podpis.odrzucono",
    "ezdrp.v2.dokument.podpis.zlozono",
    "ezdrp.v2.metadane.zmienionoKluczApi",
    "ezdrp.v2.pismo.dodanie.dodano",
    "ezdrp.v2.rpw.sprawa.dolaczono",
    "ezdrp.v2.rpw.sprawa.utworzono",
    "ezdrp.v2.zadanie.anulowano",
    "ezdrp.v2.zadanie.zakonczono",
];

const EV_PISMO: &str = "ezdrp.v2.pismo.dodanie.dodano";
const EV_UTWORZONO: &str = "ezdrp.v2.rpw.sprawa.utworzono";
const EV_DOLACZONO: &str = "ezdrp.v2.rpw.sprawa.dolaczono";
const EV_PODPIS: &str = "ezdrp.v2.dokument.podpis.zlozono";
const EV_ZAKONCZONO: &str = "ezdrp.v2.zadanie.zakonczono";

/// A small valid PDF, used by the autopilot's decisions.
pub const SMALL_PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\nxref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n0000000101 00000 n \ntrailer<</Size 4/Root 1 0 R>>\nstartxref\n164\n%%EOF\n";

/// One JRWA class the simulated office keeps cases in.
#[derive(Debug, Clone)]
pub struct EzdClass {
    /// `idWykaz` a client sends in `POST /obiegi/{id}/sprawy`.
    pub id_wykaz: String,
    /// Organisational unit symbol, the first part of the case sign ("FN").
    pub unit: String,
    /// JRWA symbol ("3120").
    pub symbol: String,
    /// Archival category ("B5").
    pub archival_category: String,
    pub title: String,
}

/// Configuration of one simulated podmiot (office).
#[derive(Debug, Clone)]
pub struct EzdSimConfig {
    /// EZD web host; `client_id` must be `"api_" + base64(sha256(web_host))`.
    pub web_host: String,
    pub podmiot_id: String,
    pub api_key_id: String,
    pub api_key: String,
    /// The technical user's stanowisko: the `SID` header.
    pub stanowisko_id: String,
    pub token_ttl: Duration,
    pub classes: Vec<EzdClass>,
    /// Gaps before the 2nd, 3rd, … webhook attempt; after the last one delivery is given up.
    pub webhook_retry_delays: Vec<Duration>,
    /// More than this many requests in one second get 429 with `Retry-After: 1`.
    pub rate_limit_per_second: Option<u32>,
}

impl EzdSimConfig {
    /// The demo office: classes FN/3120 (`wykaz-3120`, B5) and OŚ/6131 (`wykaz-6131`, BE10).
    pub fn demo() -> EzdSimConfig {
        EzdSimConfig {
            web_host: "ezd.gmina-demo.gov.pl".to_string(),
            podmiot_id: "podmiot-demo".to_string(),
            api_key_id: "klucz-demo".to_string(),
            api_key: "sekret-klucza-api-demo".to_string(),
            stanowisko_id: "stanowisko-integracja".to_string(),
            token_ttl: Duration::from_secs(3600),
            classes: vec![
                EzdClass {
                    id_wykaz: "wykaz-3120".to_string(),
                    unit: "FN".to_string(),
                    symbol: "3120".to_string(),
                    archival_category: "B5".to_string(),
                    title: "Podatki i opłaty lokalne".to_string(),
                },
                EzdClass {
                    id_wykaz: "wykaz-6131".to_string(),
                    unit: "OŚ".to_string(),
                    symbol: "6131".to_string(),
                    archival_category: "BE10".to_string(),
                    title: "Gospodarka odpadami".to_string(),
                },
            ],
            webhook_retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
            ],
            rate_limit_per_second: None,
        }
    }
}

impl Default for EzdSimConfig {
    fn default() -> Self {
        EzdSimConfig::demo()
    }
}

/// A fault injected with [`EzdSim::inject`].
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status (problem+json body) without doing anything.
    Status(u16),
    /// 429 with `Retry-After: retry_after_secs`.
    RateLimited { retry_after_secs: u64 },
    /// 401, empty body.
    Unauthorized,
    /// 403, problem+json.
    Forbidden,
    /// Do the work, then answer only after this delay ("sent but no answer" for a client
    /// with a shorter timeout).
    Delay(Duration),
    /// The next case(s) created get a malformed sign like `FN/3120/7/2026`.
    MalformedZnak,
}

/// Failures of the control API.
#[derive(Debug, thiserror::Error)]
pub enum EzdSimError {
    #[error("ezd sim: no case with idSprawa {0}")]
    UnknownCase(String),
    #[error("ezd sim: no addressee with idAdresat {0}")]
    UnknownAddressee(String),
    #[error("ezd sim: {0} is not a StatusSprawy code")]
    UnknownStatus(i32),
}

/// A case as the control API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCase {
    pub id_sprawa: String,
    pub znak: String,
    pub title: String,
    pub status_code: i32,
    pub registered_at: DateTime<Utc>,
    /// Set when the case reached status 4 (Zakończona).
    pub closed_at: Option<DateTime<Utc>>,
    /// `RPW/n/year` numbers of the letters in the case.
    pub rpw_numbers: Vec<String>,
    /// Outgoing items (KW) in the case.
    pub outgoing_count: usize,
}

// ---------------------------------------------------------------------------------------
// State

struct Doc {
    id_dp: String,
    id_dok: String,
    id_wersja: String,
    id_przestrzen: String,
    nazwa: String,
    bytes: Vec<u8>,
    created: DateTime<Utc>,
    numer_rpw: Option<String>,
    signed: bool,
    incoming: bool,
    outgoing: bool,
    case_id: Option<String>,
}

struct Obieg {
    id: String,
    id_zadanie: String,
    created: DateTime<Utc>,
    doc_ids: Vec<String>,
    case_id: Option<String>,
    /// StatusZadania flag: 1 Niepodjęte, 64 Założono sprawę, 128 Dołączono do sprawy.
    status: i32,
}

struct RpwMeta {
    data_wplywu: String,
    data_nadania: Option<String>,
    data_na_pismie: Option<String>,
    uwagi: Option<String>,
    znak_na_pismie: Option<String>,
    numer_nadawczy: Option<String>,
    sposob: String,
    rodzaj: String,
    typ: String,
    dostep: String,
    anonim: bool,
    niesystemowe: Vec<(String, String)>,
    /// (idAdresWersja, rodzaj)
    adresaci: Vec<(String, String)>,
}

struct Rpw {
    id_pismo: String,
    numer: u32,
    rok: i32,
    doc_id: String,
    obieg_id: Option<String>,
    created: DateTime<Utc>,
    status: i32,
    meta: Option<RpwMeta>,
    attachments: Vec<String>,
    case_id: Option<String>,
}

impl Rpw {
    fn numer_rpw(&self) -> String {
        format!("RPW/{}/{}", self.numer, self.rok)
    }
}

struct Adresat {
    id: String,
    typ: i64,
    imie: Option<String>,
    drugie_imie: Option<String>,
    nazwisko: Option<String>,
    nazwa_podmiotu: Option<String>,
    prefix: Option<String>,
    sufix: Option<String>,
    pesel: Option<String>,
    nip: Option<String>,
    regon: Option<String>,
    /// (idAdresWersja, request item)
    adresy: Vec<(String, Value)>,
    /// (idAdres, email, czyDomyslny, idAdresWersja)
    emails: Vec<(String, String, bool, String)>,
    /// (idAdres, identyfikator, skrytka, czyDomyslny)
    epuap: Vec<(String, String, String, bool)>,
    /// (idAdres, adres, czyDomyslny)
    ade: Vec<(String, String, bool)>,
    metadane: Vec<(String, String)>,
    czy_zbiorczy: bool,
    typ_kom: i64,
}

impl Adresat {
    fn display_name(&self) -> String {
        if self.typ == 1 {
            self.nazwa_podmiotu.clone().unwrap_or_default()
        } else {
            let parts: Vec<&str> = [self.imie.as_deref(), self.nazwisko.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            parts.join(" ")
        }
    }

    fn has_version(&self, id_wersja: &str) -> bool {
        self.adresy.iter().any(|(v, _)| v == id_wersja)
            || self.emails.iter().any(|e| e.3 == id_wersja)
            || self.display_version() == id_wersja
    }

    /// The version naming the contact as a whole (`idAdresWersjaDoWyswietlenia`): what an RPW
    /// sender without a postal address points at (the contract's `V2AdresatDto` says so for
    /// e-mail-only contacts; every contact has one here, ePUAP-only ones included).
    fn display_version(&self) -> String {
        format!("{}-wyswietlanie", self.id)
    }
}

struct Outgoing {
    id_grupa: String,
    id_kor: String,
    numer_rkw: String,
    adresat_id: String,
    adresat_nazwa: String,
    doc_id: String,
    created: DateTime<Utc>,
}

struct Case {
    id: String,
    znak: String,
    numer: i64,
    rok: i64,
    class_idx: usize,
    title: String,
    kategoria: String,
    status: i32,
    registered: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    rpw_numbers: Vec<String>,
    outgoing: Vec<Outgoing>,
    uwagi: Option<String>,
    /// The autopilot already added its decision.
    decided: bool,
}

struct Subscription {
    id: String,
    created: DateTime<Utc>,
    key: String,
    url: String,
    timeout: Duration,
}

struct FaultRule {
    fault: Fault,
    matching: String,
    method: Option<String>,
    remaining: u32,
}

struct Data {
    tokens: HashMap<String, Instant>,
    revoked: bool,
    faults: Vec<FaultRule>,
    malformed_znak: u32,
    obiegi: Vec<Obieg>,
    docs: Vec<Doc>,
    rpws: Vec<Rpw>,
    rpw_counters: HashMap<i32, u32>,
    adresaci: Vec<Adresat>,
    cases: Vec<Case>,
    case_counters: HashMap<(String, String, i64), i64>,
    links: HashMap<String, String>,
    subs: Vec<Subscription>,
    rkw_counter: u32,
    window: (Instant, u32),
}

struct Shared {
    config: EzdSimConfig,
    base_url: String,
    data: Mutex<Data>,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    requests: AtomicU64,
    webhook_attempts: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic in another handler must not take the whole simulator down with it.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Event {
    key: &'static str,
    dane: Value,
}

type Reply = (Response, Vec<Event>);

// ---------------------------------------------------------------------------------------
// Handle

/// A running EZD RP simulator. Dropping it stops the server (and the autopilot).
pub struct EzdSim {
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    autopilot: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for EzdSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing to do then.
            stop.send(()).ok();
        }
        self.server.abort();
        if let Some(task) = self
            .autopilot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl EzdSim {
    /// Starts the server on `127.0.0.1:0` inside the current Tokio runtime.
    pub async fn start(config: EzdSimConfig) -> std::io::Result<EzdSim> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let http = reqwest::Client::builder()
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            config,
            base_url: base_url.clone(),
            data: Mutex::new(Data {
                tokens: HashMap::new(),
                revoked: false,
                faults: Vec::new(),
                malformed_znak: 0,
                obiegi: Vec::new(),
                docs: Vec::new(),
                rpws: Vec::new(),
                rpw_counters: HashMap::new(),
                adresaci: Vec::new(),
                cases: Vec::new(),
                case_counters: HashMap::new(),
                links: HashMap::new(),
                subs: Vec::new(),
                rkw_counter: 0,
                window: (Instant::now(), 0),
            }),
            http,
            runtime: tokio::runtime::Handle::current(),
            requests: AtomicU64::new(0),
            webhook_attempts: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender also means stop.
                    stop_rx.await.ok();
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "ezd sim server stopped");
            }
        });
        Ok(EzdSim {
            base_url,
            shared,
            stop: Some(stop_tx),
            server,
            autopilot: Mutex::new(None),
        })
    }

    /// `http://127.0.0.1:<port>`: token at `{base}/connect/token`, API at `{base}/ezdrp/integrator/v2`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `{base}/ezdrp/integrator/v2`.
    pub fn api_url(&self) -> String {
        format!("{}{API_PREFIX}", self.base_url)
    }

    /// The configuration the simulator runs with.
    pub fn config(&self) -> &EzdSimConfig {
        &self.shared.config
    }

    /// Stops the server now (also done on drop).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }

    /// Makes the next `times` requests whose path contains `matching` (and whose method is
    /// `method`, when given, e.g. `Some("POST")`) fail with `fault`. For
    /// [`Fault::MalformedZnak`] the next `times` cases created get a malformed sign.
    pub fn inject(&self, fault: Fault, matching: &str, method: Option<&str>, times: u32) {
        let mut data = self.shared.lock();
        if fault == Fault::MalformedZnak {
            data.malformed_znak += times;
            return;
        }
        data.faults.push(FaultRule {
            fault,
            matching: matching.to_string(),
            method: method.map(|m| m.to_ascii_uppercase()),
            remaining: times,
        });
    }

    /// While `true`, every call (token included) answers 401: the key was revoked.
    pub fn revoke_credentials(&self, revoked: bool) {
        let mut data = self.shared.lock();
        data.revoked = revoked;
        if revoked {
            data.tokens.clear();
        }
    }

    /// Sets a case's status to any `StatusSprawy` code (4 records the closing time now) and
    /// sends `ezdrp.v2.zadanie.zakonczono` (see the module docs).
    pub fn set_case_status(&self, id_sprawa: &str, code: i32) -> Result<(), EzdSimError> {
        // 15 is in the StatusSprawy enum without a name; 0 (Wszystkie) is only a filter.
        if (status_text(code).is_none() && code != 15) || code == 0 {
            return Err(EzdSimError::UnknownStatus(code));
        }
        let event = {
            let mut data = self.shared.lock();
            let case = data
                .cases
                .iter_mut()
                .find(|c| c.id == id_sprawa)
                .ok_or_else(|| EzdSimError::UnknownCase(id_sprawa.to_string()))?;
            apply_status(case, code, Utc::now());
            case_event(EV_ZAKONCZONO, case)
        };
        fire(&self.shared, vec![event]);
        Ok(())
    }

    /// Adds an outgoing letter to a case: a new document `file_name` in the case and a KW item
    /// addressed to `addressee_id` (an `idAdresat`). A signed document sends
    /// `ezdrp.v2.dokument.podpis.zlozono`. Returns the `idKorespondencja`.
    pub fn add_outgoing(
        &self,
        id_sprawa: &str,
        addressee_id: &str,
        file_name: &str,
        bytes: &[u8],
        signed: bool,
    ) -> Result<String, EzdSimError> {
        let (id_kor, events) = {
            let mut data = self.shared.lock();
            add_outgoing_locked(&mut data, id_sprawa, addressee_id, file_name, bytes, signed)?
        };
        fire(&self.shared, events);
        Ok(id_kor)
    }

    /// All cases, oldest first.
    pub fn cases(&self) -> Vec<SimCase> {
        let data = self.shared.lock();
        data.cases
            .iter()
            .map(|c| SimCase {
                id_sprawa: c.id.clone(),
                znak: c.znak.clone(),
                title: c.title.clone(),
                status_code: c.status,
                registered_at: c.registered,
                closed_at: c.closed_at,
                rpw_numbers: c.rpw_numbers.clone(),
                outgoing_count: c.outgoing.len(),
            })
            .collect()
    }

    /// How many documents (of any kind) carry this `nazwa`: catches duplicate uploads.
    pub fn count_documents_named(&self, name: &str) -> usize {
        self.shared
            .lock()
            .docs
            .iter()
            .filter(|d| d.nazwa == name)
            .count()
    }

    /// RPW numbers given so far.
    pub fn rpw_count(&self) -> usize {
        self.shared.lock().rpws.len()
    }

    pub fn case_count(&self) -> usize {
        self.shared.lock().cases.len()
    }

    /// Webhook POSTs attempted (successful or not).
    pub fn webhook_attempts(&self) -> usize {
        self.shared.webhook_attempts.load(Ordering::SeqCst)
    }

    /// HTTP requests received (rejected ones included).
    pub fn requests_served(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Starts a background clerk (off unless called): every `interval` each open case moves
    /// one step (1 W toku → 11 Przydzielone → 3 Zawieszona → 5 Wznowiona → a signed outgoing
    /// `Decyzja <znak>.xml` (XAdES, as ePUAP's `dorecz` wants it) to the letter's first sender
    /// → 4 Zakończona). Calling it again
    /// replaces the previous clerk. A case whose letter has no sender gets no decision.
    pub fn autopilot(&self, interval: Duration) {
        let shared = self.shared.clone();
        let task = self.shared.runtime.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let (mut events, decisions) = {
                    let mut data = shared.lock();
                    autopilot_step(&mut data)
                };
                // Signed outside the lock: xmlsec1 is a process.
                let signed: Vec<_> = decisions
                    .into_iter()
                    .map(|(id, adresat, znak)| {
                        let (name, bytes) = decision_document(&znak);
                        (id, adresat, name, bytes)
                    })
                    .collect();
                {
                    let mut data = shared.lock();
                    for (id, adresat, name, bytes) in signed {
                        if let Ok((_, mut ev)) =
                            add_outgoing_locked(&mut data, &id, &adresat, &name, &bytes, true)
                        {
                            events.append(&mut ev);
                        }
                    }
                }
                fire(&shared, events);
            }
        });
        let mut slot = self.autopilot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.replace(task) {
            old.abort();
        }
    }
}

/// The clerk's decision: an XML document with an enveloped XAdES signature (what ePUAP's
/// `dorecz` takes), or the small PDF when xmlsec1 is not there to sign.
fn decision_document(znak: &str) -> (String, Vec<u8>) {
    let xml = format!(
        "<Decyzja xmlns=\"urn:gsko:sim:ezd:decyzja\"><Znak>{znak}</Znak>\
         <Tresc>Orzeka się zgodnie z wnioskiem.</Tresc></Decyzja>"
    );
    let when = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match crate::xades::sign_enveloped(
        xml.as_bytes(),
        crate::xades::coi_certificate(),
        &crate::xades::SignerClaim::None,
        &when,
    ) {
        Ok(signed) => (format!("Decyzja {znak}.xml"), signed),
        Err(_) => (format!("Decyzja {znak}.pdf"), SMALL_PDF.to_vec()),
    }
}

/// One step of the clerk: the events of the status changes, and the decisions to add
/// (case id, addressee id, znak).
fn autopilot_step(data: &mut Data) -> (Vec<Event>, Vec<(String, String, String)>) {
    let now = Utc::now();
    let mut events = Vec::new();
    let mut decisions = Vec::new();
    for case in data.cases.iter_mut() {
        let next = match case.status {
            1 => Some(11),
            11 => Some(3),
            3 => Some(5),
            5 if !case.decided => {
                case.decided = true;
                decisions.push((case.id.clone(), case.znak.clone(), case.rpw_numbers.clone()));
                None
            }
            5 => Some(4),
            _ => None,
        };
        if let Some(code) = next {
            apply_status(case, code, now);
            events.push(case_event(EV_ZAKONCZONO, case));
        }
    }
    let mut to_add = Vec::new();
    for (id, znak, rpws) in decisions {
        let sender = rpws.iter().find_map(|n| first_sender(data, n));
        if let Some(adresat_id) = sender {
            to_add.push((id, adresat_id, znak));
        }
    }
    (events, to_add)
}

fn first_sender(data: &Data, numer_rpw: &str) -> Option<String> {
    let rpw = data.rpws.iter().find(|r| r.numer_rpw() == numer_rpw)?;
    let (wersja, _) = rpw.meta.as_ref()?.adresaci.first()?;
    data.adresaci
        .iter()
        .find(|a| a.has_version(wersja))
        .map(|a| a.id.clone())
}

fn add_outgoing_locked(
    data: &mut Data,
    id_sprawa: &str,
    addressee_id: &str,
    file_name: &str,
    bytes: &[u8],
    signed: bool,
) -> Result<(String, Vec<Event>), EzdSimError> {
    let adresat_nazwa = data
        .adresaci
        .iter()
        .find(|a| a.id == addressee_id)
        .map(Adresat::display_name)
        .ok_or_else(|| EzdSimError::UnknownAddressee(addressee_id.to_string()))?;
    if !data.cases.iter().any(|c| c.id == id_sprawa) {
        return Err(EzdSimError::UnknownCase(id_sprawa.to_string()));
    }
    let now = Utc::now();
    let mut doc = new_doc(file_name, bytes.to_vec(), now);
    doc.outgoing = true;
    doc.signed = signed;
    doc.case_id = Some(id_sprawa.to_string());
    let doc_id = doc.id_dp.clone();
    data.docs.push(doc);
    data.rkw_counter += 1;
    let numer_rkw = format!("RKW/{}/{}", data.rkw_counter, now.format("%Y"));
    let id_kor = new_id();
    let case = data
        .cases
        .iter_mut()
        .find(|c| c.id == id_sprawa)
        .ok_or_else(|| EzdSimError::UnknownCase(id_sprawa.to_string()))?;
    case.outgoing.push(Outgoing {
        id_grupa: new_id(),
        id_kor: id_kor.clone(),
        numer_rkw,
        adresat_id: addressee_id.to_string(),
        adresat_nazwa,
        doc_id: doc_id.clone(),
        created: now,
    });
    let mut events = Vec::new();
    if signed {
        let mut ev = case_event(EV_PODPIS, case);
        if let Some(d) = ev.dane.as_object_mut() {
            d.insert("idDokumentPrzestrzeni".into(), json!(doc_id));
        }
        events.push(ev);
    }
    Ok((id_kor, events))
}

fn apply_status(case: &mut Case, code: i32, now: DateTime<Utc>) {
    case.status = code;
    if code == 4 {
        case.closed_at = Some(now);
    } else if code != 7 && code != 8 {
        // Reopening clears the closing date; archiving keeps it.
        case.closed_at = None;
    }
}

fn case_event(key: &'static str, case: &Case) -> Event {
    let mut dane = Map::new();
    dane.insert("idSprawa".into(), json!(case.id));
    dane.insert("znakSprawy".into(), json!(case.znak));
    if let Some(n) = case.rpw_numbers.first() {
        dane.insert("numerRpw".into(), json!(n));
    }
    Event {
        key,
        dane: Value::Object(dane),
    }
}

// ---------------------------------------------------------------------------------------
// Webhooks

fn fire(shared: &Arc<Shared>, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let targets: Vec<(String, Duration, Value)> = {
        let data = shared.lock();
        let mut t = Vec::new();
        for ev in &events {
            for sub in data.subs.iter().filter(|s| s.key == ev.key) {
                let body = json!({
                    "kluczZdarzenia": ev.key,
                    "idPodmiot": shared.config.podmiot_id,
                    "dataZdarzenia": rfc3339(Utc::now()),
                    "dane": ev.dane,
                });
                t.push((sub.url.clone(), sub.timeout, body));
            }
        }
        t
    };
    for (url, timeout, body) in targets {
        let shared = shared.clone();
        shared.runtime.clone().spawn(async move {
            deliver(shared, url, timeout, body).await;
        });
    }
}

async fn deliver(shared: Arc<Shared>, url: String, timeout: Duration, body: Value) {
    let delays = shared.config.webhook_retry_delays.clone();
    let mut attempt = 0usize;
    loop {
        shared.webhook_attempts.fetch_add(1, Ordering::SeqCst);
        let result = shared
            .http
            .post(&url)
            .timeout(timeout)
            .json(&body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::debug!(status = %r.status(), attempt, "ezd sim webhook refused"),
            Err(e) => tracing::debug!(error = %e, attempt, "ezd sim webhook failed"),
        }
        match delays.get(attempt) {
            Some(d) => tokio::time::sleep(*d).await,
            None => {
                tracing::debug!(attempts = attempt + 1, "ezd sim webhook given up");
                return;
            }
        }
        attempt += 1;
    }
}

// ---------------------------------------------------------------------------------------
// HTTP front: counting, rate limit, faults, auth, routing

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 600 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &path,
                "Nie można odczytać treści żądania",
                None,
            )
        }
    };

    // Rate limit and injected faults come first: they model the front proxy.
    let mut delay = None;
    {
        let mut data = shared.lock();
        if let Some(limit) = shared.config.rate_limit_per_second {
            let now = Instant::now();
            if now.duration_since(data.window.0) >= Duration::from_secs(1) {
                data.window = (now, 0);
            }
            data.window.1 += 1;
            if data.window.1 > limit {
                return too_many(1);
            }
        }
        let hit = data.faults.iter_mut().find(|f| {
            f.remaining > 0
                && path.contains(&f.matching)
                && f.method.as_deref().is_none_or(|m| m == method.as_str())
        });
        if let Some(rule) = hit {
            rule.remaining -= 1;
            match rule.fault.clone() {
                Fault::Status(code) => {
                    let status =
                        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    return problem(status, &path, "Wstrzyknięty błąd symulatora", None);
                }
                Fault::RateLimited { retry_after_secs } => return too_many(retry_after_secs),
                Fault::Unauthorized => return StatusCode::UNAUTHORIZED.into_response(),
                Fault::Forbidden => {
                    return problem(
                        StatusCode::FORBIDDEN,
                        &path,
                        "Brak wymaganych uprawnień",
                        None,
                    )
                }
                Fault::Delay(d) => delay = Some(d),
                Fault::MalformedZnak => {}
            }
        }
        data.faults.retain(|f| f.remaining > 0);
    }

    let reply = route(&shared, &method, &path, &query, &headers, &body);
    let (response, events) = reply;
    fire(&shared, events);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    response
}

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    if path == "/connect/token" && method == Method::POST {
        return (token(shared, body), vec![]);
    }
    if let Some(token) = path.strip_prefix("/repo/") {
        let data = shared.lock();
        let doc = data
            .links
            .get(token)
            .and_then(|id| data.docs.iter().find(|d| &d.id_dp == id));
        return match doc {
            Some(d) => (
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    d.bytes.clone(),
                )
                    .into_response(),
                vec![],
            ),
            None => (not_found(path, "Nie znaleziono pliku"), vec![]),
        };
    }
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return (not_found(path, "Nieznana ścieżka"), vec![]);
    };

    // Authentication: a live token, then the SID.
    {
        let mut data = shared.lock();
        let now = Instant::now();
        data.tokens.retain(|_, exp| *exp > now);
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let ok = !data.revoked && bearer.is_some_and(|t| data.tokens.contains_key(t.trim()));
        if !ok {
            return (StatusCode::UNAUTHORIZED.into_response(), vec![]);
        }
        let sid = headers.get("SID").and_then(|v| v.to_str().ok());
        if sid != Some(shared.config.stanowisko_id.as_str()) {
            return (
                problem(
                    StatusCode::FORBIDDEN,
                    path,
                    "Brak dostępu do stanowiska (SID)",
                    None,
                ),
                vec![],
            );
        }
    }

    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let ctx = Ctx {
        shared,
        path,
        query,
        headers,
        body,
    };
    let m = method.as_str();
    let mut data = shared.lock();
    let d = &mut *data;
    match (m, segs.as_slice()) {
        ("POST", ["obiegi"]) => post_obieg(d, &ctx),
        ("GET", ["obiegi"]) => (get_obiegi(d, &ctx), vec![]),
        ("GET", ["obiegi", id, "dokumenty"]) => (get_obieg_docs(d, &ctx, id), vec![]),
        ("POST", ["obiegi", id, "sprawy"]) => post_obieg_sprawa(d, &ctx, id),
        ("POST", ["obiegi", id, "sprawy", id_sprawa]) => attach_obieg(d, &ctx, id, id_sprawa),
        ("POST", ["dokumenty", "_search"]) => (search_docs(d, &ctx), vec![]),
        ("GET", ["dokumenty", id]) => (get_doc(d, &ctx, id), vec![]),
        ("GET", ["dokumenty", id, "link"]) => (get_link(d, &ctx, id), vec![]),
        ("POST", ["dokumenty", id, "rpw"]) => post_rpw(d, &ctx, id),
        ("POST", ["rpw", "_search"]) => (search_rpw(d, &ctx), vec![]),
        ("GET", ["rpw", n, r]) => (get_rpw(d, &ctx, n, r), vec![]),
        ("GET", ["rpw", n, r, "metadane"]) => (get_rpw_meta(d, &ctx, n, r), vec![]),
        ("PUT", ["rpw", n, r, "metadane"]) => (put_rpw_meta(d, &ctx, n, r), vec![]),
        ("POST", ["rpw", n, r, "zalaczniki"]) => (post_rpw_attachment(d, &ctx, n, r), vec![]),
        ("POST", ["adresaci", "_search"]) => (search_adresaci(d, &ctx), vec![]),
        ("POST", ["adresaci"]) => (post_adresat(d, &ctx), vec![]),
        ("GET", ["adresaci", id]) => (get_adresat(d, &ctx, id), vec![]),
        ("POST", ["sprawy", "_search"]) => (search_cases(d, &ctx), vec![]),
        ("GET", ["sprawy", id]) => (get_case(d, &ctx, id), vec![]),
        ("GET", ["sprawy", id, "dokumenty"]) => (get_case_docs(d, &ctx, id), vec![]),
        ("GET", ["sprawy", id, "kw"]) => (get_case_kw(d, &ctx, id), vec![]),
        ("PATCH", ["sprawy", id, op]) => (patch_case(d, &ctx, id, op), vec![]),
        ("GET", ["struktura", "uzytkownik"]) => (get_user(&ctx), vec![]),
        ("POST", ["subskrypcje"]) => (post_sub(d, &ctx), vec![]),
        ("GET", ["subskrypcje"]) => (get_subs(d), vec![]),
        ("GET", ["subskrypcje", id]) => (get_sub(d, &ctx, id), vec![]),
        ("DELETE", ["subskrypcje", id]) => (delete_sub(d, &ctx, id), vec![]),
        _ => (not_found(path, "Nieznana operacja"), vec![]),
    }
}

struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

impl Ctx<'_> {
    fn cfg(&self) -> &EzdSimConfig {
        &self.shared.config
    }

    /// The JSON body as an object, or a 400 naming the body.
    fn json(&self) -> Result<Map<String, Value>, Response> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad_request(
                self.path,
                vec![("body".into(), "Treść żądania musi być obiektem JSON".into())],
            )),
        }
    }

    /// `(page, pageSize)` from the query string; defaults 0 and 10.
    fn query_paging(&self) -> Result<(i64, i64), Response> {
        let q = parse_form(self.query);
        let page = match q.get("page") {
            Some(v) if !v.is_empty() => v.parse::<i64>().ok().filter(|p| *p >= 0),
            _ => Some(0),
        };
        let size = match q.get("pageSize") {
            Some(v) if !v.is_empty() => v.parse::<i64>().ok().filter(|p| *p >= 1),
            _ => Some(10),
        };
        match (page, size) {
            (Some(p), Some(s)) => Ok((p, s)),
            (None, _) => Err(bad_request(
                self.path,
                vec![("page".into(), "Niepoprawny numer strony".into())],
            )),
            (_, None) => Err(bad_request(
                self.path,
                vec![("pageSize".into(), "Niepoprawny rozmiar strony".into())],
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Token

fn token(shared: &Arc<Shared>, body: &Bytes) -> Response {
    let cfg = &shared.config;
    let form = parse_form(&String::from_utf8_lossy(body));
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let invalid = |what: &str| -> Response {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": what})),
        )
            .into_response()
    };
    if shared.lock().revoked {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": "API key revoked"})),
        )
            .into_response();
    }
    if field("grant_type") != "api_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type", "error_description": "grant_type must be api_credentials"})),
        )
            .into_response();
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let client_id = format!(
        "api_{}",
        b64.encode(Sha256::digest(cfg.web_host.as_bytes()))
    );
    if field("client_id") != client_id {
        return invalid("client_id does not match the EZD web host");
    }
    if field("scope") != "api.ezdrp.gov.pl" {
        return invalid("scope must be api.ezdrp.gov.pl");
    }
    if field("pid") != cfg.podmiot_id {
        return invalid("unknown pid");
    }
    if field("aki") != cfg.api_key_id {
        return invalid("unknown aki");
    }
    let rt = field("rt");
    let Ok(rt_time) = DateTime::parse_from_rfc3339(rt) else {
        return invalid("rt is not an ISO-8601 timestamp with offset");
    };
    let skew = (Utc::now() - rt_time.with_timezone(&Utc))
        .num_seconds()
        .abs();
    if skew > 300 {
        return invalid("rt is more than 5 minutes away from server time");
    }
    let mut h = Sha256::new();
    h.update(rt.as_bytes());
    h.update(cfg.api_key.as_bytes());
    if field("akh") != b64.encode(h.finalize()) {
        return invalid("akh does not match");
    }
    let token = random_token();
    shared
        .lock()
        .tokens
        .insert(token.clone(), Instant::now() + cfg.token_ttl);
    (
        StatusCode::OK,
        axum::Json(json!({
            "access_token": token,
            "expires_in": cfg.token_ttl.as_secs(),
            "token_type": "Bearer",
        })),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Obiegi

fn post_obieg(d: &mut Data, ctx: &Ctx) -> Reply {
    let file = match multipart_file(ctx.headers, ctx.body, &["file"]) {
        Ok(f) => f,
        Err(reason) => return (bad_request(ctx.path, vec![("file".into(), reason)]), vec![]),
    };
    let now = Utc::now();
    let mut doc = new_doc(&file.0, file.1, now);
    doc.incoming = true;
    let obieg = Obieg {
        id: new_id(),
        id_zadanie: new_id(),
        created: now,
        doc_ids: vec![doc.id_dp.clone()],
        case_id: None,
        status: 1,
    };
    let id = obieg.id.clone();
    d.docs.push(doc);
    d.obiegi.push(obieg);
    (
        json_resp(StatusCode::CREATED, json!({"listaIdObieg": [id]})),
        vec![],
    )
}

fn get_obiegi(d: &Data, ctx: &Ctx) -> Response {
    let (page, size) = match ctx.query_paging() {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items: Vec<Value> = d
        .obiegi
        .iter()
        .map(|o| {
            let case = o.case_id.as_ref().and_then(|id| d.cases.iter().find(|c| &c.id == id));
            let tytul_dok = o
                .doc_ids
                .first()
                .and_then(|id| d.docs.iter().find(|x| &x.id_dp == id))
                .map(|x| x.nazwa.clone());
            let user = user_object(ctx.cfg());
            json!({
                "idObieg": o.id,
                "idZadanie": o.id_zadanie,
                "dataOtrzymania": rfc3339(o.created),
                "dataUtworzenia": rfc3339(o.created),
                "numerSprawy": case.map(|c| c.znak.clone()),
                "tytulSprawy": case.map(|c| c.title.clone()),
                "autor": user,
                "otrzymanoOd": user,
                "status": o.status,
                "statusOpis": match o.status { 64 => "Założono sprawę", 128 => "Dołączono do sprawy", _ => "Niepodjęte" },
                "typZadania": 1,
                "typZadaniaOpis": "Dokument",
                "opis": null,
                "tytulDokumentu": tytul_dok,
                "terminRealizacji": null,
                "czyZakonczone": o.case_id.is_some(),
                "czyMoznaPrzekazacDoWiadomosci": false,
            })
        })
        .collect();
    json_resp(StatusCode::OK, paged(items, page, size))
}

fn get_obieg_docs(d: &Data, ctx: &Ctx, id: &str) -> Response {
    let (page, size) = match ctx.query_paging() {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(obieg) = d.obiegi.iter().find(|o| o.id == id) else {
        return not_found(ctx.path, "Nie znaleziono zadania");
    };
    let items: Vec<Value> = obieg
        .doc_ids
        .iter()
        .filter_map(|id| d.docs.iter().find(|x| &x.id_dp == id))
        .map(|doc| {
            json!({
                "idDokumentPrzestrzeni": doc.id_dp,
                "idNadrzedny": null,
                "idDokument": doc.id_dok,
                "idDokumentWersja": doc.id_wersja,
                "nazwa": doc.nazwa,
                "numerRpw": doc.numer_rpw,
                "dataUtworzenia": rfc3339(doc.created),
                "idPrzestrzenRobocza": doc.id_przestrzen,
                "czyDokumentWplywu": doc.incoming,
                "typDokumentu": doc_type(doc),
                "typOdwzorowania": 6,
                "isFileSignatureValid": null,
                "zalaczniki": [],
            })
        })
        .collect();
    json_resp(StatusCode::OK, paged(items, page, size))
}

fn post_obieg_sprawa(d: &mut Data, ctx: &Ctx, id_obieg: &str) -> Reply {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return (r, vec![]),
    };
    let mut bad = Vec::new();
    let id_wykaz = req_str(&body, "idWykaz", &mut bad);
    let tytul = req_str(&body, "tytul", &mut bad);
    let kategoria = req_str(&body, "kategoriaArchiwalna", &mut bad);
    let numer = req_int(&body, "numer", &mut bad);
    let rok = req_int(&body, "rokZalozenia", &mut bad);
    if let Some(t) = &tytul {
        let words = t
            .split_whitespace()
            .filter(|w| w.chars().count() >= 3)
            .count();
        if t.chars().count() > 500 {
            bad.push(("tytul".into(), "Tytuł może mieć najwyżej 500 znaków".into()));
        } else if words < 2 {
            bad.push((
                "tytul".into(),
                "Tytuł musi składać się z dwóch lub więcej wyrazów (min. 3 znaki każdy)".into(),
            ));
        }
    }
    if let Some(n) = numer {
        if n < 0 {
            bad.push(("numer".into(), "Numer nie może być ujemny".into()));
        }
    }
    if let Some(r) = rok {
        if !(2000..=2100).contains(&r) {
            bad.push(("rokZalozenia".into(), "Niedopuszczalny rocznik".into()));
        }
    }
    if !bad.is_empty() {
        return (bad_request(ctx.path, bad), vec![]);
    }
    let (Some(id_wykaz), Some(tytul), Some(kategoria), Some(numer), Some(rok)) =
        (id_wykaz, tytul, kategoria, numer, rok)
    else {
        return (
            bad_request(ctx.path, vec![("body".into(), "Brak pól".into())]),
            vec![],
        );
    };
    let Some(oi) = d.obiegi.iter().position(|o| o.id == id_obieg) else {
        return (not_found(ctx.path, "Nie znaleziono zadania"), vec![]);
    };
    let Some(class_idx) = ctx
        .cfg()
        .classes
        .iter()
        .position(|c| c.id_wykaz == id_wykaz)
    else {
        return (
            not_found(ctx.path, "Nie znaleziono pozycji wykazu JRWA"),
            vec![],
        );
    };
    if d.obiegi[oi].case_id.is_some() {
        return (
            conflict(ctx.path, "Zadanie jest już powiązane ze sprawą"),
            vec![],
        );
    }
    let class = &ctx.cfg().classes[class_idx];
    let key = (class.unit.clone(), class.symbol.clone(), rok);
    let taken = |n: i64| {
        d.cases
            .iter()
            .any(|c| c.class_idx == class_idx && c.rok == rok && c.numer == n)
    };
    let n = if numer == 0 {
        d.case_counters.get(&key).copied().unwrap_or(0) + 1
    } else if taken(numer) {
        return (
            conflict(ctx.path, "Sprawa o podanym numerze już istnieje"),
            vec![],
        );
    } else {
        numer
    };
    let counter = d.case_counters.entry(key).or_insert(0);
    *counter = (*counter).max(n);
    let znak = if d.malformed_znak > 0 {
        d.malformed_znak -= 1;
        format!("{}/{}/{}/{}", class.unit, class.symbol, n, rok)
    } else {
        format!("{}.{}.{}.{}", class.unit, class.symbol, n, rok)
    };
    let now = Utc::now();
    let case = Case {
        id: new_id(),
        znak,
        numer: n,
        rok,
        class_idx,
        title: tytul,
        kategoria,
        status: 1,
        registered: now,
        closed_at: None,
        rpw_numbers: Vec::new(),
        outgoing: Vec::new(),
        uwagi: None,
        decided: false,
    };
    let case_id = case.id.clone();
    d.cases.push(case);
    let events = link_obieg(d, oi, &case_id, 64, EV_UTWORZONO);
    let Some(case) = d.cases.iter().find(|c| c.id == case_id) else {
        return (server_error(ctx.path), events);
    };
    let cfg = ctx.cfg();
    let resp = json!({
        "idSprawa": case.id,
        "idPrzestrzenRobocza": format!("przestrzen-{}", case.id),
        "idJRWASchematWykaz": id_wykaz,
        "idPodteczka": body.get("idPodteczka").cloned().unwrap_or(Value::Null),
        "idStanowiskoInicjujacy": cfg.stanowisko_id,
        "idJednostka": format!("jednostka-{}", class.unit),
        "tytul": case.title,
        "kategoriaArchiwalna": case.kategoria,
        "znak": case.znak,
        "typProwadzenia": "Elektroniczny",
        "rokZalozenia": case.rok,
        "dataRejestracji": rfc3339(case.registered),
        "terminZalatwienia": rfc3339(case.registered + chrono::Duration::days(30)),
        "dataWszczecia": rfc3339(case.registered),
        "numer": case.numer,
        "idPodmiotWlascicielBiznesowy": cfg.podmiot_id,
    });
    (json_resp(StatusCode::CREATED, resp), events)
}

/// Joins the task's documents (and their RPW letters) to a case.
fn link_obieg(d: &mut Data, oi: usize, case_id: &str, flag: i32, key: &'static str) -> Vec<Event> {
    d.obiegi[oi].case_id = Some(case_id.to_string());
    d.obiegi[oi].status = flag;
    let doc_ids = d.obiegi[oi].doc_ids.clone();
    let obieg_id = d.obiegi[oi].id.clone();
    let mut numbers = Vec::new();
    for doc in d.docs.iter_mut().filter(|x| doc_ids.contains(&x.id_dp)) {
        doc.case_id = Some(case_id.to_string());
    }
    for rpw in d.rpws.iter_mut().filter(|r| doc_ids.contains(&r.doc_id)) {
        rpw.case_id = Some(case_id.to_string());
        rpw.status = 3;
        numbers.push(rpw.numer_rpw());
        for att in &rpw.attachments {
            if let Some(doc) = d.docs.iter_mut().find(|x| &x.id_dp == att) {
                doc.case_id = Some(case_id.to_string());
            }
        }
    }
    let Some(case) = d.cases.iter_mut().find(|c| c.id == case_id) else {
        return vec![];
    };
    for n in &numbers {
        if !case.rpw_numbers.contains(n) {
            case.rpw_numbers.push(n.clone());
        }
    }
    let mut dane = Map::new();
    dane.insert("idSprawa".into(), json!(case.id));
    dane.insert("znakSprawy".into(), json!(case.znak));
    dane.insert("idObieg".into(), json!(obieg_id));
    if let Some(n) = numbers.first() {
        dane.insert("numerRpw".into(), json!(n));
    }
    if let Some(id) = doc_ids.first() {
        dane.insert("idDokumentPrzestrzeni".into(), json!(id));
    }
    vec![Event {
        key,
        dane: Value::Object(dane),
    }]
}

fn attach_obieg(d: &mut Data, ctx: &Ctx, id_obieg: &str, id_sprawa: &str) -> Reply {
    if let Err(r) = ctx.json() {
        return (r, vec![]);
    }
    let Some(oi) = d.obiegi.iter().position(|o| o.id == id_obieg) else {
        return (not_found(ctx.path, "Nie znaleziono zadania"), vec![]);
    };
    if !d.cases.iter().any(|c| c.id == id_sprawa) {
        return (not_found(ctx.path, "Nie znaleziono sprawy"), vec![]);
    }
    if d.obiegi[oi].case_id.is_some() {
        return (
            conflict(ctx.path, "Zadanie jest już powiązane ze sprawą"),
            vec![],
        );
    }
    let events = link_obieg(d, oi, id_sprawa, 128, EV_DOLACZONO);
    (StatusCode::NO_CONTENT.into_response(), events)
}

// ---------------------------------------------------------------------------------------
// Documents

fn doc_type(doc: &Doc) -> i32 {
    if doc.outgoing {
        13
    } else if doc.numer_rpw.is_some() {
        2
    } else {
        1
    }
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn doc_json(doc: &Doc, cfg: &EzdSimConfig) -> Value {
    json!({
        "idDokumentPrzestrzeni": doc.id_dp,
        "idDokument": doc.id_dok,
        "idDokumentWersja": doc.id_wersja,
        "nazwa": doc.nazwa,
        "numerRpw": doc.numer_rpw,
        "dataModyfikacji": null,
        "dataUtworzenia": rfc3339(doc.created),
        "idPrzestrzenRobocza": doc.id_przestrzen,
        "liczbaZalacznikow": 0,
        "idNadrzednyDokumentPrzestrzeni": null,
        "zalaczniki": [],
        "czyPodpisany": doc.signed,
        "czyZaakceptowany": null,
        "czyMetadane": false,
        "czyWSkladzieChronologicznym": false,
        "etykieta": null,
        "czyWystawionoZadanie": false,
        "czyWystawionoZadanieUdostepnienia": false,
        "czyWystawionoZadanieUdostepnieniaDoRealizacji": false,
        "dostep": 0,
        "czyDokumentWplywu": doc.incoming,
        "czyZaakceptowanyWklad": false,
        "rozszerzenie": extension(&doc.nazwa),
        "statusy": {"values": null, "names": null},
        "czyTylkoDoOdczytuDlaNowoTworzonychZadan": false,
        "typObiektuWyroznika": 1,
        "idStanowiskoAutor": cfg.stanowisko_id,
        "idStanowiskoWlasciciel": cfg.stanowisko_id,
        "typDokumentu": doc_type(doc),
        "typOdwzorowania": 6,
        "isFileSignatureValid": if doc.signed { Some(true) } else { None },
        "idDokumentOryginal": doc.id_dok,
        "idDokumentPrzestrzeniOryginal": doc.id_dp,
        "dokumentWirtualny": false,
        "czyKopia": false,
        "czyIstniejeNowszaWersjaDokumentu": false,
    })
}

fn get_doc(d: &Data, ctx: &Ctx, id: &str) -> Response {
    match d.docs.iter().find(|x| x.id_dp == id) {
        Some(doc) => json_resp(StatusCode::OK, doc_json(doc, ctx.cfg())),
        None => not_found(ctx.path, "Nie znaleziono dokumentu"),
    }
}

fn get_link(d: &mut Data, ctx: &Ctx, id: &str) -> Response {
    if !d.docs.iter().any(|x| x.id_dp == id) {
        return not_found(ctx.path, "Nie znaleziono dokumentu");
    }
    let token = random_token();
    d.links.insert(token.clone(), id.to_string());
    json_resp(
        StatusCode::OK,
        json!({"link": format!("{}/repo/{token}", ctx.shared.base_url)}),
    )
}

fn search_docs(d: &Data, ctx: &Ctx) -> Response {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (page, size) = match nested_paging(&body, ctx.path) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let tytul = opt_str(&body, "tytul").map(|s| s.to_lowercase());
    let id_dok = opt_str(&body, "idDokument");
    let cfg = ctx.cfg();
    let items: Vec<Value> = d
        .docs
        .iter()
        .filter(|doc| {
            tytul
                .as_ref()
                .is_none_or(|t| doc.nazwa.to_lowercase().contains(t))
        })
        .filter(|doc| id_dok.as_ref().is_none_or(|i| &doc.id_dok == i))
        .map(|doc| {
            let sprawy: Vec<Value> = doc
                .case_id
                .as_ref()
                .and_then(|id| d.cases.iter().find(|c| &c.id == id))
                .map(|c| {
                    vec![json!({
                        "idSprawa": c.id,
                        "znakSprawy": c.znak,
                        "tytul": c.title,
                        "kategoriaArchiwalna": c.kategoria,
                        "idStanowiskoProwadzacy": cfg.stanowisko_id,
                        "listaIdPrzestrzenRobocza": [format!("przestrzen-{}", c.id)],
                    })]
                })
                .unwrap_or_default();
            json!({
                "idDokument": doc.id_dok,
                "nazwa": doc.nazwa,
                "dataUtworzenia": rfc3339(doc.created),
                "listaDokumentPrzestrzeni": [{
                    "idDokumentPrzestrzeni": doc.id_dp,
                    "idPrzestrzenRobocza": doc.id_przestrzen,
                }],
                "idStanowiskoWlasciciel": cfg.stanowisko_id,
                "wlasciciel": {
                    "imie": "Konto",
                    "nazwisko": "Integracyjne",
                    "komorkaOrganizacyjna": "Referat Informatyki",
                    "stanowisko": "Integracja GSKO",
                    "symbolKomorki": "INF",
                },
                "sprawy": sprawy,
            })
        })
        .collect();
    json_resp(StatusCode::OK, paged(items, page, size))
}

// ---------------------------------------------------------------------------------------
// RPW

fn post_rpw(d: &mut Data, ctx: &Ctx, id: &str) -> Reply {
    if let Err(r) = ctx.json() {
        return (r, vec![]);
    }
    let Some(di) = d.docs.iter().position(|x| x.id_dp == id) else {
        return (not_found(ctx.path, "Nie znaleziono dokumentu"), vec![]);
    };
    if d.docs[di].numer_rpw.is_some() {
        return (
            conflict(ctx.path, "Dokument jest już zarejestrowany w RPW"),
            vec![],
        );
    }
    let now = Utc::now();
    let rok = now.year();
    let counter = d.rpw_counters.entry(rok).or_insert(0);
    *counter += 1;
    let rpw = Rpw {
        id_pismo: new_id(),
        numer: *counter,
        rok,
        doc_id: id.to_string(),
        obieg_id: d
            .obiegi
            .iter()
            .find(|o| o.doc_ids.iter().any(|x| x == id))
            .map(|o| o.id.clone()),
        created: now,
        status: 1,
        meta: None,
        attachments: Vec::new(),
        case_id: d.docs[di].case_id.clone(),
    };
    let numer = rpw.numer_rpw();
    let mut dane = Map::new();
    dane.insert("numerRpw".into(), json!(numer));
    dane.insert("idDokumentPrzestrzeni".into(), json!(id));
    if let Some(o) = &rpw.obieg_id {
        dane.insert("idObieg".into(), json!(o));
    }
    let resp = json!({"idPismo": rpw.id_pismo, "numerRpw": numer});
    d.docs[di].numer_rpw = Some(numer);
    d.rpws.push(rpw);
    (
        json_resp(StatusCode::CREATED, resp),
        vec![Event {
            key: EV_PISMO,
            dane: Value::Object(dane),
        }],
    )
}

fn find_rpw(d: &Data, numer: &str, rok: &str) -> Option<usize> {
    d.rpws
        .iter()
        .position(|r| r.numer.to_string() == numer && r.rok.to_string() == rok)
}

fn rpw_title(d: &Data, rpw: &Rpw) -> String {
    d.docs
        .iter()
        .find(|x| x.id_dp == rpw.doc_id)
        .map(|x| x.nazwa.clone())
        .unwrap_or_default()
}

fn rpw_files(d: &Data, rpw: &Rpw) -> Vec<Value> {
    std::iter::once(&rpw.doc_id)
        .chain(rpw.attachments.iter())
        .filter_map(|id| d.docs.iter().find(|x| &x.id_dp == id))
        .map(|x| json!({"idDokumentPrzestrzeni": x.id_dp, "nazwa": x.nazwa}))
        .collect()
}

/// Senders of a letter: `(adresat, idAdresWersja)`.
fn rpw_senders<'a>(d: &'a Data, rpw: &Rpw) -> Vec<(&'a Adresat, String)> {
    let Some(meta) = &rpw.meta else {
        return vec![];
    };
    meta.adresaci
        .iter()
        .filter_map(|(w, _)| {
            d.adresaci
                .iter()
                .find(|a| a.has_version(w))
                .map(|a| (a, w.clone()))
        })
        .collect()
}

fn registering_user() -> Value {
    json!({
        "imie": "Konto",
        "nazwisko": "Integracyjne",
        "stanowisko": "Integracja GSKO",
        "komorkaOrganizacyjna": "Referat Informatyki",
    })
}

fn get_rpw(d: &Data, ctx: &Ctx, numer: &str, rok: &str) -> Response {
    let Some(ri) = find_rpw(d, numer, rok) else {
        return not_found(ctx.path, "Nie znaleziono wpływu");
    };
    let rpw = &d.rpws[ri];
    let nadawcy: Vec<Value> = rpw_senders(d, rpw)
        .into_iter()
        .map(|(a, w)| {
            json!({
                "idAdresWersja": w,
                "nazwa": a.display_name(),
                "idAdresat": a.id,
                "imie": a.imie,
                "nazwisko": a.nazwisko,
            })
        })
        .collect();
    let mut worker = registering_user();
    if let Some(o) = worker.as_object_mut() {
        o.insert("idStanowisko".into(), json!(ctx.cfg().stanowisko_id));
    }
    json_resp(
        StatusCode::OK,
        json!({
            "tytul": rpw_title(d, rpw),
            "numerRPW": rpw.numer_rpw(),
            "dataWplywu": rpw.meta.as_ref().map(|m| m.data_wplywu.clone()),
            "nadawcy": nadawcy,
            "zalaczniki": rpw_files(d, rpw),
            "pracownikRejestrujacy": worker,
            "sposobDostarczenia": rpw.meta.as_ref().map(|m| m.sposob.clone()).unwrap_or_default(),
            "numerNadawczy": rpw.meta.as_ref().and_then(|m| m.numer_nadawczy.clone()),
        }),
    )
}

fn dictionary(values: &[(&str, &str)]) -> Value {
    Value::Array(
        values
            .iter()
            .map(|(k, n)| json!({"id": k, "klucz": k, "nazwa": n}))
            .collect(),
    )
}

fn get_rpw_meta(d: &Data, ctx: &Ctx, numer: &str, rok: &str) -> Response {
    let Some(ri) = find_rpw(d, numer, rok) else {
        return not_found(ctx.path, "Nie znaleziono wpływu");
    };
    let rpw = &d.rpws[ri];
    let m = rpw.meta.as_ref();
    let slownik = |v: Option<String>, vals: &[(&str, &str)]| json!({"wartosc": v.unwrap_or_default(), "listaDostepnychWartosci": dictionary(vals)});
    let zalaczniki: Vec<Value> = rpw
        .attachments
        .iter()
        .filter_map(|id| d.docs.iter().find(|x| &x.id_dp == id))
        .map(|x| {
            json!({
                "idDokumentPrzestrzeni": x.id_dp,
                "idNadrzedny": rpw.doc_id,
                "idDokument": x.id_dok,
                "idDokumentWersja": x.id_wersja,
                "nazwa": x.nazwa,
                "numerRpw": rpw.numer_rpw(),
                "kodKreskowy": format!("KK{}", x.id_dok.replace('-', "").chars().take(12).collect::<String>()),
                "idPrzestrzenRobocza": x.id_przestrzen,
                "liczbaZalacznikow": 0,
                "zalaczniki": [],
            })
        })
        .collect();
    let nadawcy: Vec<Value> = rpw_senders(d, rpw)
        .into_iter()
        .map(|(a, w)| {
            json!({
                "idAdresat": a.id,
                "imie": a.imie,
                "drugieImie": a.drugie_imie,
                "nazwisko": a.nazwisko,
                "nazwaPodmiotu": a.nazwa_podmiotu,
                "idAdresWersja": w,
                "typAdresata": a.typ,
            })
        })
        .collect();
    let niesystemowe: Vec<Value> = m
        .map(|m| {
            m.niesystemowe
                .iter()
                .map(|(id, w)| {
                    json!({
                        "wartosc": w, "idKonfiguracja": id, "nazwa": id, "typPola": 1,
                        "typPolaKlucz": "EZDRP.Metadane.TypPola1", "kluczSlownika": "",
                        "kluczSystemowy": "", "kolejnosc": null, "czyWymagane": false,
                        "czyAktywne": true, "czyNiewypelnione": false, "czySystemowy": false,
                        "dostepKlucz": "", "czyUnikalne": false, "iloscZnakow": null,
                        "dataModyfikacji": null, "listaDostepnychWartosci": [],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json_resp(
        StatusCode::OK,
        json!({
            "numerRPW": rpw.numer_rpw(),
            "idPismo": rpw.id_pismo,
            "idPrzestrzenRobocza": format!("przestrzen-{}", rpw.id_pismo),
            "dataRejestracji": rfc3339(rpw.created),
            "liczbaZalacznikow": rpw.attachments.len(),
            "czyUzupelnioneMetadane": m.is_some(),
            "czyDoZarejestrowaniaWSkladzie": false,
            "czyAnonimowe": m.is_some_and(|m| m.anonim),
            "czyKopia": false,
            "czyOdwzorowane": true,
            "status": rpw.status,
            "statusArchiwizacji": null,
            "idStanowiskoOdbiorca": ctx.cfg().stanowisko_id,
            "idJednostka": null,
            "dataModyfikacji": null,
            "rodzajWplywu": 1,
            "typOdwzorowania": 0,
            "idStanowiskoRejestracja": ctx.cfg().stanowisko_id,
            "czyMetadaneZalacznikow": false,
            "czyTylkoOdczyt": false,
            "zalaczniki": zalaczniki,
            "nadawcy": nadawcy,
            "metadane": {
                "metadaneSystemowe": {
                    "dataWplywu": m.map(|m| m.data_wplywu.clone()),
                    "dataNadania": m.and_then(|m| m.data_nadania.clone()),
                    "dataNaPismie": m.and_then(|m| m.data_na_pismie.clone()),
                    "uwagi": m.and_then(|m| m.uwagi.clone()),
                    "znakNaPismie": m.and_then(|m| m.znak_na_pismie.clone()),
                    "numerNadawczy": m.and_then(|m| m.numer_nadawczy.clone()),
                    "sposobDostarczenia": slownik(m.map(|m| m.sposob.clone()), &[
                        ("EZDRP.Metadane.SposobDostarczenia1", "Osobiście"),
                        ("EZDRP.Metadane.SposobDostarczenia10", "ePUAP"),
                        ("EZDRP.Metadane.SposobDostarczenia11", "e-Doręczenia"),
                    ]),
                    "rodzajDokumentu": slownik(m.map(|m| m.rodzaj.clone()), &[
                        ("EZDRP.Metadane.Rodzaj.Dokumentu.18", "Wniosek"),
                        ("EZDRP.Metadane.Rodzaj.Dokumentu.7", "Deklaracja"),
                    ]),
                    "typDokumentu": slownik(m.map(|m| m.typ.clone()), &[
                        ("EZDRP.Metadane.RPW.Typ.8", "Elektroniczny"),
                    ]),
                    "dostep": slownik(m.map(|m| m.dostep.clone()), &[
                        ("EZDRP.Metadane.RPW.Dostep1", "Publiczny"),
                        ("EZDRP.Metadane.RPW.Dostep2", "Ograniczony"),
                    ]),
                },
                "metadaneNiesystemowe": niesystemowe,
            },
        }),
    )
}

fn put_rpw_meta(d: &mut Data, ctx: &Ctx, numer: &str, rok: &str) -> Response {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(ri) = find_rpw(d, numer, rok) else {
        return not_found(ctx.path, "Nie znaleziono wpływu");
    };
    let mut bad: Vec<(String, String)> = Vec::new();
    let empty = Map::new();
    let sys = match body.get("metadaneSystemowe") {
        Some(Value::Object(o)) => o,
        _ => {
            bad.push(("metadaneSystemowe".into(), "Pole jest wymagane".into()));
            &empty
        }
    };
    let prefixed = |bad: &mut Vec<(String, String)>, k: &str| {
        let v = opt_str(sys, k).filter(|s| !s.trim().is_empty());
        if v.is_none() {
            bad.push((
                format!("metadaneSystemowe.{k}"),
                "Pole jest wymagane".into(),
            ));
        }
        v
    };
    let data_wplywu = prefixed(&mut bad, "dataWplywu");
    if let Some(dw) = &data_wplywu {
        if parse_date(dw).is_none() {
            bad.push((
                "metadaneSystemowe.dataWplywu".into(),
                "Niepoprawna data (YYYY-MM-DD)".into(),
            ));
        }
    }
    for k in ["dataNadania", "dataNaPismie"] {
        if let Some(v) = opt_str(sys, k) {
            if parse_date(&v).is_none() {
                bad.push((
                    format!("metadaneSystemowe.{k}"),
                    "Niepoprawna data (YYYY-MM-DD)".into(),
                ));
            }
        }
    }
    let sposob = prefixed(&mut bad, "sposobDostarczenia");
    let rodzaj = prefixed(&mut bad, "rodzajDokumentu");
    let typ = prefixed(&mut bad, "typDokumentu");
    let dostep = prefixed(&mut bad, "dostep");
    let anonim = match sys.get("czyAnonimowy") {
        Some(Value::Bool(b)) => Some(*b),
        _ => {
            if !bad.iter().any(|(n, _)| n == "metadaneSystemowe") {
                bad.push((
                    "metadaneSystemowe.czyAnonimowy".into(),
                    "Pole jest wymagane (true/false)".into(),
                ));
            }
            None
        }
    };
    let mut niesystemowe = Vec::new();
    match body.get("metadaneNiesystemowe") {
        Some(Value::Array(items)) => {
            for (i, it) in items.iter().enumerate() {
                let id = it.get("id").and_then(Value::as_str);
                let w = it.get("wartosc").and_then(Value::as_str);
                match (id, w) {
                    (Some(id), Some(w)) if !id.is_empty() => {
                        niesystemowe.push((id.to_string(), w.to_string()))
                    }
                    _ => bad.push((
                        format!("metadaneNiesystemowe[{i}]"),
                        "Wymagane pola id i wartosc".into(),
                    )),
                }
            }
        }
        _ => bad.push((
            "metadaneNiesystemowe".into(),
            "Pole jest wymagane (może być pustą tablicą)".into(),
        )),
    }
    let mut adresaci = Vec::new();
    match body.get("adresaci") {
        Some(Value::Array(items)) => {
            for (i, it) in items.iter().enumerate() {
                let w = it
                    .get("idAdresWersja")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let r = it.get("rodzaj").and_then(Value::as_str).unwrap_or("");
                if w.is_empty() {
                    bad.push((
                        format!("adresaci[{i}].idAdresWersja"),
                        "Pole jest wymagane".into(),
                    ));
                } else if !d.adresaci.iter().any(|a| a.has_version(w)) {
                    bad.push((
                        format!("adresaci[{i}].idAdresWersja"),
                        "Nie znaleziono adresu o podanym identyfikatorze".into(),
                    ));
                }
                if r.is_empty() {
                    bad.push((format!("adresaci[{i}].rodzaj"), "Pole jest wymagane".into()));
                }
                adresaci.push((w.to_string(), r.to_string()));
            }
        }
        _ => bad.push(("adresaci".into(), "Pole jest wymagane".into())),
    }
    match anonim {
        Some(true) if !adresaci.is_empty() => bad.push((
            "adresaci".into(),
            "Dla wpływu anonimowego tablica adresaci pozostaje pusta".into(),
        )),
        Some(false) if adresaci.is_empty() && body.get("adresaci").is_some() => bad.push((
            "adresaci".into(),
            "Wymagany przynajmniej jeden nadawca".into(),
        )),
        _ => {}
    }
    if !bad.is_empty() {
        return bad_request(ctx.path, bad);
    }
    let (Some(dw), Some(sposob), Some(rodzaj), Some(typ), Some(dostep), Some(anonim)) =
        (data_wplywu, sposob, rodzaj, typ, dostep, anonim)
    else {
        return server_error(ctx.path);
    };
    let rpw = &mut d.rpws[ri];
    rpw.meta = Some(RpwMeta {
        data_wplywu: dw,
        data_nadania: opt_str(sys, "dataNadania"),
        data_na_pismie: opt_str(sys, "dataNaPismie"),
        uwagi: opt_str(sys, "uwagi"),
        znak_na_pismie: opt_str(sys, "znakNaPismie"),
        numer_nadawczy: opt_str(sys, "numerNadawczy"),
        sposob,
        rodzaj,
        typ,
        dostep,
        anonim,
        niesystemowe,
        adresaci,
    });
    if rpw.status == 1 {
        rpw.status = 2;
    }
    StatusCode::NO_CONTENT.into_response()
}

fn post_rpw_attachment(d: &mut Data, ctx: &Ctx, numer: &str, rok: &str) -> Response {
    let Some(ri) = find_rpw(d, numer, rok) else {
        return not_found(ctx.path, "Nie znaleziono wpływu");
    };
    let file = match multipart_file(ctx.headers, ctx.body, &["file"]) {
        Ok(f) => f,
        Err(reason) => return bad_request(ctx.path, vec![("file".into(), reason)]),
    };
    let mut doc = new_doc(&file.0, file.1, Utc::now());
    doc.incoming = true;
    doc.numer_rpw = Some(d.rpws[ri].numer_rpw());
    doc.case_id = d.rpws[ri].case_id.clone();
    d.rpws[ri].attachments.push(doc.id_dp.clone());
    d.docs.push(doc);
    json_resp(StatusCode::CREATED, json!({}))
}

fn search_rpw(d: &Data, ctx: &Ctx) -> Response {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (page, size) = match top_paging(&body, ctx.path) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let search = opt_str(&body, "searchValue").map(|s| s.to_lowercase());
    let rok = body.get("rok").and_then(Value::as_i64);
    let od = opt_str(&body, "dataOd").and_then(|s| parse_date(&s));
    let do_ = opt_str(&body, "dataDo")
        .and_then(|s| parse_date(&s))
        .map(|d| d + chrono::Duration::days(1));
    let sposob = opt_str(&body, "sposobDostarczenia");
    let rodzaj = opt_str(&body, "rodzajDokumentu");
    let cfg = ctx.cfg();
    let items: Vec<Value> = d
        .rpws
        .iter()
        .filter(|r| {
            let title = rpw_title(d, r);
            let znak = r
                .meta
                .as_ref()
                .and_then(|m| m.znak_na_pismie.clone())
                .unwrap_or_default();
            let matches = search.as_ref().is_none_or(|s| {
                r.numer_rpw().to_lowercase().contains(s)
                    || title.to_lowercase().contains(s)
                    || znak.to_lowercase().contains(s)
            });
            let when = r
                .meta
                .as_ref()
                .and_then(|m| parse_date(&m.data_wplywu))
                .unwrap_or(r.created);
            matches
                && rok.is_none_or(|y| i64::from(r.rok) == y)
                && od.is_none_or(|o| when >= o)
                && do_.is_none_or(|x| when < x)
                && sposob
                    .as_ref()
                    .is_none_or(|s| r.meta.as_ref().is_some_and(|m| &m.sposob == s))
                && rodzaj
                    .as_ref()
                    .is_none_or(|s| r.meta.as_ref().is_some_and(|m| &m.rodzaj == s))
        })
        .map(|r| {
            let m = r.meta.as_ref();
            let case = r
                .case_id
                .as_ref()
                .and_then(|id| d.cases.iter().find(|c| &c.id == id));
            let nadawcy: Vec<Value> = rpw_senders(d, r)
                .into_iter()
                .map(|(a, w)| {
                    json!({
                        "imie": a.imie.clone().unwrap_or_default(),
                        "nazwisko": a.nazwisko.clone().unwrap_or_default(),
                        "idAdresat": a.id,
                        "nazwa": a.display_name(),
                        "typAdresata": a.typ,
                        "idAdresWersja": w,
                    })
                })
                .collect();
            json!({
                "idRejestrPrzesylekWplywajacych": r.id_pismo,
                "idPismo": r.id_pismo,
                "numerRPW": r.numer_rpw(),
                "dataNadania": m.and_then(|m| m.data_nadania.clone()),
                "dataWplywu": m.map(|m| m.data_wplywu.clone()),
                "znakNaPismie": m.and_then(|m| m.znak_na_pismie.clone()).unwrap_or_default(),
                "dataNaPismie": m.and_then(|m| m.data_na_pismie.clone()),
                "numerNadawczy": m.and_then(|m| m.numer_nadawczy.clone()).unwrap_or_default(),
                "sposobDostarczenia": m.map(|m| m.sposob.clone()).unwrap_or_default(),
                "dataRejestracji": rfc3339(r.created),
                "pracownikRejestrujacyImie": "Konto",
                "pracownikRejestrujacyNazwisko": "Integracyjne",
                "pracownikRejestrujacyStanowisko": "Integracja GSKO",
                "pracownikRejestrujacyKomorkaOrganizacyjna": "Referat Informatyki",
                "pracownikRejestrujacySymbolKomorkaOrganizacyjna": "INF",
                "pelnaPrezentacja": "Konto Integracyjne",
                "znakSprawy": case.map(|c| c.znak.clone()).unwrap_or_default(),
                "rodzajDokumentu": m.map(|m| m.rodzaj.clone()).unwrap_or_default(),
                "czyUsuniety": false,
                "tytul": rpw_title(d, r),
                "typDokumentu": m.map(|m| m.typ.clone()).unwrap_or_default(),
                "zalaczniki": rpw_files(d, r),
                "nadawcy": nadawcy,
                "uwagi": m.and_then(|m| m.uwagi.clone()).unwrap_or_default(),
                "dataUtworzenia": rfc3339(r.created),
                "idPodmiotWlascicielBiznesowy": cfg.podmiot_id,
                "sprawa": case.map(|c| json!({
                    "idSprawa": c.id,
                    "tytul": c.title,
                    "znak": c.znak,
                    "dataRejestracji": rfc3339(c.registered),
                    "terminZalatwienia": rfc3339(c.registered + chrono::Duration::days(30)),
                    "kategoriaArchiwalna": c.kategoria,
                    "rokZalozenia": c.rok,
                    "idStanowiskoProwadzacy": cfg.stanowisko_id,
                    "status": c.status,
                })),
                "pismo": {"idPismo": r.id_pismo, "idStanowiskoRejestracja": cfg.stanowisko_id},
            })
        })
        .collect();
    json_resp(StatusCode::OK, paged(items, page, size))
}

// ---------------------------------------------------------------------------------------
// Adresaci

fn post_adresat(d: &mut Data, ctx: &Ctx) -> Response {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut bad: Vec<(String, String)> = Vec::new();
    let typ = body.get("typAdresata").and_then(Value::as_i64);
    if !matches!(typ, Some(1) | Some(3)) {
        bad.push((
            "typAdresata".into(),
            "Wymagana wartość 1 (Podmiot) lub 3 (Osoba Fizyczna)".into(),
        ));
    }
    let arr = |k: &str| {
        body.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (adresy, emails, epuap, ade) = (
        arr("listaAdresow"),
        arr("listaAdresowEmail"),
        arr("listaAdresowEPUAP"),
        arr("listaAdresowEDoreczenia"),
    );
    if adresy.is_empty() && emails.is_empty() && epuap.is_empty() && ade.is_empty() {
        bad.push((
            "listaAdresow".into(),
            "Wymagany przynajmniej jeden adres (pocztowy, e-mail, ePUAP lub e-Doręczeń)".into(),
        ));
    }
    for (i, a) in adresy.iter().enumerate() {
        if a.get("idKraj")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            bad.push((
                format!("listaAdresow[{i}].idKraj"),
                "Pole jest wymagane".into(),
            ));
        }
        if a.get("typAdresu").and_then(Value::as_i64).is_none() {
            bad.push((
                format!("listaAdresow[{i}].typAdresu"),
                "Pole jest wymagane".into(),
            ));
        }
    }
    for (i, a) in ade.iter().enumerate() {
        let adres = a.get("adres").and_then(Value::as_str).unwrap_or("");
        if !adres.starts_with("AE:PL-") {
            bad.push((
                format!("listaAdresowEDoreczenia[{i}].adres"),
                "Adres w formacie AE:PL-XXXXX-XXXXX-YYYYY-ZZ".into(),
            ));
        }
    }
    match typ {
        Some(3) if opt_str(&body, "nazwisko").is_none_or(|s| s.trim().is_empty()) => {
            bad.push(("nazwisko".into(), "Wymagane dla osoby fizycznej".into()))
        }
        Some(1) if opt_str(&body, "nazwaPodmiotu").is_none_or(|s| s.trim().is_empty()) => {
            bad.push(("nazwaPodmiotu".into(), "Wymagane dla podmiotu".into()))
        }
        _ => {}
    }
    if !bad.is_empty() {
        return bad_request(ctx.path, bad);
    }
    let mut pesel = None;
    let mut nip = None;
    let mut regon = None;
    let mut metadane = Vec::new();
    for m in arr("metadaneAdresata") {
        let nazwa = m
            .get("nazwa")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let klucz = m
            .get("klucz")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let wartosc = m
            .get("wartosc")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let label = format!("{} {klucz}", nazwa.to_lowercase());
        if label.contains("pesel") {
            pesel = Some(wartosc);
        } else if label.contains("nip") {
            nip = Some(wartosc);
        } else if label.contains("regon") {
            regon = Some(wartosc);
        } else {
            metadane.push((nazwa, wartosc));
        }
    }
    let flag = |v: &Value| {
        v.get("czyDomyslny")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let adresat = Adresat {
        id: new_id(),
        typ: typ.unwrap_or(3),
        imie: opt_str(&body, "imie"),
        drugie_imie: opt_str(&body, "drugieImie"),
        nazwisko: opt_str(&body, "nazwisko"),
        nazwa_podmiotu: opt_str(&body, "nazwaPodmiotu"),
        prefix: opt_str(&body, "prefix"),
        sufix: opt_str(&body, "sufix"),
        pesel,
        nip,
        regon,
        adresy: adresy.into_iter().map(|a| (new_id(), a)).collect(),
        emails: emails
            .iter()
            .map(|e| (new_id(), s(e, "email"), flag(e), new_id()))
            .collect(),
        epuap: epuap
            .iter()
            .map(|e| (new_id(), s(e, "identyfikator"), s(e, "skrytka"), flag(e)))
            .collect(),
        ade: ade
            .iter()
            .map(|e| (new_id(), s(e, "adres"), flag(e)))
            .collect(),
        metadane,
        czy_zbiorczy: body
            .get("czyZbiorczy")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        typ_kom: body
            .get("typKomunikacjiEpuap")
            .and_then(Value::as_i64)
            .unwrap_or(2),
    };
    let id = adresat.id.clone();
    d.adresaci.push(adresat);
    json_resp(StatusCode::CREATED, json!({"idAdresat": id}))
}

fn address_json(a: &Adresat, id_wersja: &str, src: &Value, search: bool) -> Value {
    let s = |k: &str| src.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let kraj = s("idKraj");
    let mut v = json!({
        "idAdresat": a.id,
        "idAdresWersja": id_wersja,
        "idAdresWersjaAktualna": id_wersja,
        "miejscowosc": {
            "id": src.get("idMiejscowosc").cloned().unwrap_or(Value::Null),
            "nazwa": s("miejscowoscNazwa"), "nazwaWojewodztwo": "", "powiat": "", "gmina": "",
            "rodzajMiejscowosci": "", "idRodzajMiejscowosci": 0,
        },
        "ulica": {"id": src.get("idUlica").cloned().unwrap_or(Value::Null), "nazwa": s("ulicaNazwa")},
        "kraj": if search { json!({"id": kraj, "angielskaNazwa": kraj, "nazwaLaczona": kraj}) } else { json!({"id": kraj, "nazwa": kraj}) },
        "numerDomu": s("numerDomu"),
        "numerLokalu": s("numerLokalu"),
        "kodPocztowy": s("kodPocztowy"),
        "typAdresu": src.get("typAdresu").cloned().unwrap_or(json!(0)),
        "skrytkaPocztowa": s("skrytkaPocztowa"),
        "poczta": s("poczta"),
        "prowincja": s("prowincja"),
        "dzielnica": s("dzielnica"),
        "czyAdresSpozaTerytu": src.get("idMiejscowosc").is_none_or(Value::is_null),
        "czyAdresZagraniczny": kraj != "PL",
        "czyNiepelnyAdres": src.get("idUlica").is_none_or(Value::is_null),
    });
    if search {
        if let Some(o) = v.as_object_mut() {
            o.insert("czyUsuniety".into(), json!(false));
        }
    }
    v
}

fn adresat_json(a: &Adresat, search: bool) -> Value {
    let adresy: Vec<Value> = a
        .adresy
        .iter()
        .map(|(w, src)| address_json(a, w, src, search))
        .collect();
    let emails: Vec<Value> = a
        .emails
        .iter()
        .map(|(id, e, def, w)| {
            if search {
                json!({"id": id, "idAdresat": a.id, "email": e, "czyDomyslny": def, "czyUsuniety": false, "idAdresWersja": w})
            } else {
                json!({"idAdres": id, "email": e, "czyDomyslny": def, "idAdresWersja": w})
            }
        })
        .collect();
    let epuap: Vec<Value> = a
        .epuap
        .iter()
        .map(|(id, ident, skrytka, def)| {
            let nazwa = format!("/{ident}/{skrytka}");
            if search {
                json!({"id": id, "epuapId": id, "nazwa": nazwa, "czyDomyslny": def, "identyfikator": ident, "skrytka": skrytka})
            } else {
                json!({"idAdres": id, "nazwa": nazwa, "czyDomyslny": def, "identyfikator": ident, "skrytka": skrytka})
            }
        })
        .collect();
    let ade: Vec<Value> = a
        .ade
        .iter()
        .map(|(id, adres, def)| json!({"idAdres": id, "adres": adres, "czyDomyslny": def}))
        .collect();
    let metadane: Vec<Value> = a
        .metadane
        .iter()
        .map(|(n, w)| json!({"nazwa": n, "wartosc": w}))
        .collect();
    let mut v = json!({
        "idAdresat": a.id,
        "prefix": a.prefix.clone().unwrap_or_default(),
        "sufix": a.sufix.clone().unwrap_or_default(),
        "nazwaPodmiotu": a.nazwa_podmiotu.clone().unwrap_or_default(),
        "typAdresata": a.typ,
        "listaAdresow": adresy,
        "listaAdresowEmail": emails,
        "listaAdresowEPUAP": epuap,
        "listaAdresowEDoreczenia": ade,
        "metadane": metadane,
        "czyZbiorczy": a.czy_zbiorczy,
        "czyBrakDostepuDoDanych": false,
        "typKomunikacjiEpuap": a.typ_kom,
    });
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    o.insert(
        "idAdresWersjaDoWyswietlenia".into(),
        json!(a.display_version()),
    );
    if search {
        o.insert("imie".into(), json!(a.imie.clone().unwrap_or_default()));
        o.insert(
            "drugieImie".into(),
            json!(a.drugie_imie.clone().unwrap_or_default()),
        );
        o.insert(
            "nazwisko".into(),
            json!(a.nazwisko.clone().unwrap_or_default()),
        );
        o.insert("pelnaNazwa".into(), json!(a.display_name()));
        o.insert("listaPodadresaci".into(), json!([]));
    } else {
        o.insert(
            "imie".into(),
            a.imie.as_ref().map_or(
                Value::Null,
                |i| json!({"id": format!("imie-{i}"), "imie": i}),
            ),
        );
        o.insert(
            "drugieImie".into(),
            a.drugie_imie.as_ref().map_or(
                Value::Null,
                |i| json!({"id": format!("imie-{i}"), "imie": i}),
            ),
        );
        o.insert(
            "nazwisko".into(),
            a.nazwisko.as_ref().map_or(
                Value::Null,
                |n| json!({"id": format!("nazwisko-{n}"), "nazwisko": n}),
            ),
        );
        o.insert("listaPodadresatow".into(), json!([]));
        o.insert("czyAdresatZZewnetrznejBazyKontaktow".into(), json!(false));
        o.insert("identyfikatorZewnetrznejBazyKontaktow".into(), json!(""));
    }
    v
}

fn get_adresat(d: &Data, ctx: &Ctx, id: &str) -> Response {
    match d.adresaci.iter().find(|a| a.id == id) {
        Some(a) => json_resp(StatusCode::OK, adresat_json(a, false)),
        None => not_found(ctx.path, "Nie znaleziono adresata"),
    }
}

fn search_adresaci(d: &Data, ctx: &Ctx) -> Response {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (page, size) = match top_paging(&body, ctx.path) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let crit = |k: &str| opt_str(&body, k).filter(|s| !s.trim().is_empty());
    let contains = |have: &Option<String>, want: &Option<String>| {
        want.as_ref().is_none_or(|w| {
            have.as_ref()
                .is_some_and(|h| h.to_lowercase().contains(&w.to_lowercase()))
        })
    };
    let exact = |have: &Option<String>, want: &Option<String>| {
        want.as_ref()
            .is_none_or(|w| have.as_deref() == Some(w.as_str()))
    };
    let (imie, nazwisko, nazwa, pesel, nip, regon, email) = (
        crit("imie"),
        crit("nazwisko"),
        crit("nazwaPodmiotu"),
        crit("pesel"),
        crit("nip"),
        crit("regon"),
        crit("email"),
    );
    let typ = body.get("typAdresata").and_then(Value::as_i64);
    let items: Vec<Value> = d
        .adresaci
        .iter()
        .filter(|a| {
            contains(&a.imie, &imie)
                && contains(&a.nazwisko, &nazwisko)
                && contains(&a.nazwa_podmiotu, &nazwa)
                && exact(&a.pesel, &pesel)
                && exact(&a.nip, &nip)
                && exact(&a.regon, &regon)
                && email
                    .as_ref()
                    .is_none_or(|e| a.emails.iter().any(|x| x.1.eq_ignore_ascii_case(e)))
                && typ.is_none_or(|t| t == a.typ)
        })
        .map(|a| adresat_json(a, true))
        .collect();
    json_resp(StatusCode::OK, paged(items, page, size))
}

// ---------------------------------------------------------------------------------------
// Sprawy

/// Text of a `StatusSprawy` code, `None` for codes without a name.
pub fn status_text(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "Wszystkie",
        1 => "W toku",
        2 => "Odłożona",
        3 => "Zawieszona",
        4 => "Zakończona",
        5 => "Wznowiona",
        6 => "Przerejestrowana",
        7 => "Zarchiwizowana",
        8 => "W trakcie archiwizacji",
        11 => "Przydzielone",
        12 => "W trakcie brakowania",
        13 => "Zbrakowana",
        14 => "Przygotowane do brakowania",
        16 => "Do poprawy archiwum",
        17 => "Zamówiona do wycofania z archiwum",
        18 => "Zaakceptowana do wycofania z archiwum",
        _ => return None,
    })
}

fn case_senders(d: &Data, case: &Case) -> Vec<Value> {
    let mut out = Vec::new();
    for n in &case.rpw_numbers {
        if let Some(r) = d.rpws.iter().find(|r| &r.numer_rpw() == n) {
            for (a, _) in rpw_senders(d, r) {
                out.push(json!({"nazwa": a.display_name(), "czyWylaczony": false}));
            }
        }
    }
    out
}

fn get_case(d: &Data, ctx: &Ctx, id: &str) -> Response {
    let Some(c) = d.cases.iter().find(|c| c.id == id) else {
        return not_found(ctx.path, "Nie znaleziono sprawy");
    };
    let cfg = ctx.cfg();
    let class = &cfg.classes[c.class_idx];
    json_resp(
        StatusCode::OK,
        json!({
            "idSprawa": c.id,
            "idPrzestrzenRobocza": format!("przestrzen-{}", c.id),
            "idJRWASchematWykaz": class.id_wykaz,
            "idStanowiskoInicjujacy": cfg.stanowisko_id,
            "idStanowiskoProwadzacy": cfg.stanowisko_id,
            "idJednostka": format!("jednostka-{}", class.unit),
            "tytul": c.title,
            "kategoriaArchiwalna": c.kategoria,
            "znak": c.znak,
            "status": status_text(c.status).unwrap_or(""),
            "statusEnum": c.status,
            "typProwadzenia": "Elektroniczny",
            "rokZalozenia": c.rok,
            "dataRejestracji": rfc3339(c.registered),
            "terminZalatwienia": rfc3339(c.registered + chrono::Duration::days(30)),
            "dataWszczecia": rfc3339(c.registered),
            "czasRealizacjiDni": 30,
            "numer": c.numer,
            "udostepnieniaSprawy": [],
            "prowadzacy": {
                "id": "uzytkownik-integracja",
                "idStanowisko": cfg.stanowisko_id,
                "imie": "Konto",
                "nazwisko": "Integracyjne",
                "czyAktywny": true,
                "pelnaPrezentacja": "Konto Integracyjne",
            },
            "doOdczytu": false,
            "czyUsuniety": false,
            "czyNoweAkta": false,
            "czyArchiwista": false,
            "czyDoPoprawy": false,
            "listaIdPrzestrzeniSprawy": [format!("przestrzen-{}", c.id)],
            "listaIdStanowiskoUdostepnione": [],
            "sprawaDodatkowyDostepEdycja": false,
            "idPodmiotWlascicielBiznesowy": cfg.podmiot_id,
            "typObiektuWyroznika": 4,
            "noweZadania": false,
            "nadawcy": case_senders(d, c),
            "uwagi": c.uwagi,
        }),
    )
}

fn search_cases(d: &Data, ctx: &Ctx) -> Response {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (page, size) = match nested_paging(&body, ctx.path) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(status) = body.get("status").and_then(Value::as_i64) else {
        return bad_request(
            ctx.path,
            vec![("status".into(), "Pole jest wymagane (0 = wszystkie)".into())],
        );
    };
    let mut bad = Vec::new();
    let mut date = |k: &str, end: bool| match opt_str(&body, k) {
        None => None,
        Some(s) => match parse_date(&s) {
            Some(t) if end && s.len() == 10 => Some(t + chrono::Duration::days(1)),
            Some(t) => Some(t),
            None => {
                bad.push((k.to_string(), "Niepoprawna data".to_string()));
                None
            }
        },
    };
    let zak_od = date("dataZakonczeniaOd", false);
    let zak_do = date("dataZakonczeniaDo", true);
    if !bad.is_empty() {
        return bad_request(ctx.path, bad);
    }
    let znak = opt_str(&body, "znakSprawy").map(|s| s.to_lowercase());
    let tytul = opt_str(&body, "tytulSprawy").map(|s| s.to_lowercase());
    let jrwa = opt_str(&body, "jrwa");
    let cfg = ctx.cfg();
    let items: Vec<Value> = d
        .cases
        .iter()
        .filter(|c| status == 0 || i64::from(c.status) == status)
        .filter(|c| {
            znak.as_ref()
                .is_none_or(|z| c.znak.to_lowercase().contains(z))
        })
        .filter(|c| {
            tytul
                .as_ref()
                .is_none_or(|t| c.title.to_lowercase().contains(t))
        })
        .filter(|c| {
            jrwa.as_ref()
                .is_none_or(|j| &cfg.classes[c.class_idx].symbol == j)
        })
        .filter(|c| {
            (zak_od.is_none() && zak_do.is_none())
                || c.closed_at
                    .is_some_and(|t| zak_od.is_none_or(|o| t >= o) && zak_do.is_none_or(|x| t < x))
        })
        .map(|c| {
            json!({
                "idSprawa": c.id,
                "tytul": c.title,
                "znak": c.znak,
                "status": status_text(c.status).unwrap_or(""),
                "statusEnum": c.status,
                "typProwadzenia": "Elektroniczny",
                "rokZalozenia": c.rok,
                "dataRejestracji": rfc3339(c.registered),
                "terminZalatwienia": rfc3339(c.registered + chrono::Duration::days(30)),
                "dataWszczecia": rfc3339(c.registered),
                "czasRealizacjiDni": 30,
                "numer": c.numer,
                "prowadzacy": {"czyAktywny": true, "pelnaPrezentacja": "Konto Integracyjne"},
                "doOdczytu": false,
                "czyUsuniety": false,
                "czyNoweAkta": false,
                "czyArchiwista": false,
                "czyDoPoprawy": false,
                "sprawaDodatkowyDostepEdycja": false,
                "listaDostepnychOperacji": [],
                "czySprawaUdostepniona": false,
                "noweZadania": false,
                "typObiektuWyroznika": 4,
                "nadawcy": case_senders(d, c),
            })
        })
        .collect();
    json_resp(StatusCode::OK, paged(items, page, size))
}

fn get_case_docs(d: &Data, ctx: &Ctx, id: &str) -> Response {
    let (page, size) = match ctx.query_paging() {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !d.cases.iter().any(|c| c.id == id) {
        return not_found(ctx.path, "Nie znaleziono sprawy");
    }
    let search = parse_form(ctx.query)
        .get("searchValue")
        .map(|s| s.to_lowercase());
    let items: Vec<Value> = d
        .docs
        .iter()
        .filter(|x| x.case_id.as_deref() == Some(id))
        .filter(|x| {
            search
                .as_ref()
                .is_none_or(|s| s.is_empty() || x.nazwa.to_lowercase().contains(s))
        })
        .map(|x| {
            let mut dp = doc_json(x, ctx.cfg());
            if let Some(o) = dp.as_object_mut() {
                o.insert("czyKorespondencjaWychodzaca".into(), json!(x.outgoing));
                o.insert("tagi".into(), json!([]));
                o.insert("idNadrzedny".into(), Value::Null);
                o.insert(
                    "numerRpw".into(),
                    json!(x.numer_rpw.clone().unwrap_or_default()),
                );
            }
            json!({"dokumentPrzestrzeni": dp})
        })
        .collect();
    json_resp(StatusCode::OK, paged(items, page, size))
}

fn get_case_kw(d: &Data, ctx: &Ctx, id: &str) -> Response {
    let Some(c) = d.cases.iter().find(|c| c.id == id) else {
        return not_found(ctx.path, "Nie znaleziono sprawy");
    };
    let lista: Vec<Value> = c
        .outgoing
        .iter()
        .map(|o| {
            let doc = d.docs.iter().find(|x| x.id_dp == o.doc_id);
            let docs: Vec<Value> = doc
                .map(|x| {
                    vec![json!({
                        "idDokument": x.id_dok,
                        "dataUtworzenia": rfc3339(x.created),
                        "rozszerzenie": extension(&x.nazwa),
                        "nazwa": x.nazwa,
                        "pelnaNazwa": x.nazwa,
                        "idStanowiskoAutor": ctx.cfg().stanowisko_id,
                    })]
                })
                .unwrap_or_default();
            json!({
                "idGrupaKorespondencji": o.id_grupa,
                "dataUtworzenia": rfc3339(o.created),
                "korespondencja": [{
                    "idKorespondencja": o.id_kor,
                    "idKorespondencjaPapierowa": null,
                    "numerRKW": o.numer_rkw,
                    "adresat": {"idAdresat": o.adresat_id, "nazwa": o.adresat_nazwa},
                    "listaOdbiorcowEmail": null,
                    "listaDokumentow": docs,
                    "status": "Przyjęta",
                    "rodzaj": "Elektroniczna",
                    "idRodzajPrzesylki": "rodzaj-elektroniczna",
                    "typPrzesylki": "Elektroniczna",
                    "czyPriorytet": false,
                    "czyZbiorcza": false,
                    "numerFax": null,
                    "dataUtworzenia": rfc3339(o.created),
                    "dataPrzyjecia": rfc3339(o.created),
                    "dataNadania": null,
                    "dataWyslania": null,
                    "numerR": null,
                    "dataAnulowania": null,
                    "dataDoreczenia": null,
                    "sposobKomunikacjiEdoreczen": 0,
                }],
            })
        })
        .collect();
    json_resp(StatusCode::OK, json!({"lista": lista}))
}

fn patch_case(d: &mut Data, ctx: &Ctx, id: &str, op: &str) -> Response {
    if !matches!(
        op,
        "zakonczenie" | "zawieszenie" | "wznowienie" | "odlozenie"
    ) {
        return not_found(ctx.path, "Nieznana operacja");
    }
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut bad: Vec<(String, String)> = Vec::new();
    let uwagi = opt_str(&body, "uwagi");
    if uwagi.as_ref().is_some_and(|u| u.chars().count() > 73) {
        bad.push(("uwagi".into(), "Uwagi mogą mieć najwyżej 73 znaki".into()));
    }
    let mut closed_at = None;
    if op == "zakonczenie" {
        if opt_str(&body, "idPowodZakonczenia").is_none_or(|s| s.is_empty()) {
            bad.push(("idPowodZakonczenia".into(), "Pole jest wymagane".into()));
        }
        match opt_str(&body, "dataZakonczenia").map(|s| parse_date(&s)) {
            Some(Some(t)) => closed_at = Some(t),
            _ => bad.push(("dataZakonczenia".into(), "Pole jest wymagane (data)".into())),
        }
    } else if uwagi.as_ref().is_none_or(|u| u.is_empty()) {
        bad.push(("uwagi".into(), "Pole jest wymagane (1..73 znaki)".into()));
    }
    if !bad.is_empty() {
        return bad_request(ctx.path, bad);
    }
    let Some(case) = d.cases.iter_mut().find(|c| c.id == id) else {
        return not_found(ctx.path, "Nie znaleziono sprawy");
    };
    let (allowed, target): (&[i32], i32) = match op {
        "zakonczenie" => (&[1, 2, 3, 5, 11], 4),
        "zawieszenie" => (&[1, 2, 5, 11], 3),
        "odlozenie" => (&[1, 3, 5, 11], 2),
        _ => (&[2, 3, 4], 5),
    };
    if !allowed.contains(&case.status) {
        return conflict(
            ctx.path,
            &format!(
                "Operacja niedozwolona dla sprawy w statusie {}",
                status_text(case.status).unwrap_or("?")
            ),
        );
    }
    apply_status(case, target, Utc::now());
    if let Some(t) = closed_at {
        case.closed_at = Some(t);
    }
    if uwagi.is_some() {
        case.uwagi = uwagi;
    }
    let out = json!({"idSprawa": case.id, "statusSprawy": target});
    match op {
        "zawieszenie" | "odlozenie" => json_resp(StatusCode::OK, out),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Struktura, subskrypcje

fn user_object(cfg: &EzdSimConfig) -> Value {
    json!({
        "idObiekt": cfg.stanowisko_id,
        "inicjaly": "KI",
        "nazwa": "Konto Integracyjne",
        "stanowisko": "Integracja GSKO",
        "symbolKomorkiOrganizacyjnej": "INF",
        "typObiektu": 1,
    })
}

fn get_user(ctx: &Ctx) -> Response {
    let cfg = ctx.cfg();
    json_resp(
        StatusCode::OK,
        json!({
            "idUzytkownik": "uzytkownik-integracja",
            "imie": "Konto",
            "nazwisko": "Integracyjne",
            "login": "integracja.gsko",
            "listaStanowisk": [{
                "idUzytkownik": "uzytkownik-integracja",
                "idStanowisko": cfg.stanowisko_id,
                "idStanowiskoWersjaAktualna": cfg.stanowisko_id,
                "idUzytkownikWersjaAktualna": "uzytkownik-integracja",
                "stanowiskoNazwa": "Integracja GSKO",
                "idKomorkaOrganizacyjna": "komorka-inf",
                "komorkaOrganizacyjnaNazwa": "Referat Informatyki",
                "komorkaOrganizacyjnaSymbol": "INF",
                "idPodmiotWlascicielBiznesowy": cfg.podmiot_id,
            }],
        }),
    )
}

fn post_sub(d: &mut Data, ctx: &Ctx) -> Response {
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut bad: Vec<(String, String)> = Vec::new();
    let mut keys = Vec::new();
    match body.get("zdarzenia").and_then(Value::as_array) {
        Some(items) if !items.is_empty() => {
            for (i, it) in items.iter().enumerate() {
                match it.get("kluczZdarzenia").and_then(Value::as_str) {
                    Some(k) if EVENT_KEYS.contains(&k) => keys.push(k.to_string()),
                    _ => bad.push((
                        format!("zdarzenia[{i}].kluczZdarzenia"),
                        "Nieznany klucz zdarzenia".into(),
                    )),
                }
            }
        }
        _ => bad.push((
            "zdarzenia".into(),
            "Wymagane przynajmniej jedno zdarzenie".into(),
        )),
    }
    if body.get("kanalDostawy").and_then(Value::as_i64) != Some(0) {
        bad.push(("kanalDostawy".into(), "Dostępny kanał: 0 (Http)".into()));
    }
    if opt_str(&body, "email").is_none_or(|s| s.is_empty()) {
        bad.push(("email".into(), "Pole jest wymagane".into()));
    }
    let konf = opt_str(&body, "konfiguracja")
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .filter(Value::is_object);
    let url = konf
        .as_ref()
        .and_then(|k| k.get("Url"))
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .map(str::to_string);
    if url.is_none() {
        bad.push((
            "konfiguracja".into(),
            "Wymagany JSON z polem \"Url\" (adres http/https)".into(),
        ));
    }
    if !bad.is_empty() {
        return bad_request(ctx.path, bad);
    }
    let timeout = konf
        .as_ref()
        .and_then(|k| k.get("Timeout"))
        .and_then(Value::as_u64)
        .unwrap_or(10);
    let url = url.unwrap_or_default();
    let now = Utc::now();
    for key in keys {
        d.subs.push(Subscription {
            id: new_id(),
            created: now,
            key,
            url: url.clone(),
            timeout: Duration::from_secs(timeout.max(1)),
        });
    }
    json_resp(StatusCode::CREATED, json!({"apiSekret": random_token()}))
}

fn sub_json(s: &Subscription) -> Value {
    json!({"id": s.id, "dataUtworzenia": rfc3339(s.created), "kluczZdarzenia": s.key})
}

fn get_subs(d: &Data) -> Response {
    let lista: Vec<Value> = d.subs.iter().map(sub_json).collect();
    json_resp(StatusCode::OK, json!({"lista": lista}))
}

fn get_sub(d: &Data, ctx: &Ctx, id: &str) -> Response {
    match d.subs.iter().find(|s| s.id == id) {
        Some(s) => json_resp(StatusCode::OK, sub_json(s)),
        None => bad_request_status(
            StatusCode::NOT_FOUND,
            ctx.path,
            vec![("idSubskrypcja".into(), "Nie znaleziono subskrypcji".into())],
        ),
    }
}

fn delete_sub(d: &mut Data, ctx: &Ctx, id: &str) -> Response {
    let before = d.subs.len();
    d.subs.retain(|s| s.id != id);
    if d.subs.len() == before {
        return bad_request_status(
            StatusCode::NOT_FOUND,
            ctx.path,
            vec![("idSubskrypcja".into(), "Nie znaleziono subskrypcji".into())],
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------
// Helpers

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    hex::encode(bytes)
}

fn new_doc(name: &str, bytes: Vec<u8>, now: DateTime<Utc>) -> Doc {
    Doc {
        id_dp: new_id(),
        id_dok: new_id(),
        id_wersja: new_id(),
        id_przestrzen: new_id(),
        nazwa: name.to_string(),
        bytes,
        created: now,
        numer_rpw: None,
        signed: false,
        incoming: false,
        outgoing: false,
        case_id: None,
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Accepts `YYYY-MM-DD`, RFC 3339 and a date-time without offset (taken as UTC).
fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

fn opt_str(body: &Map<String, Value>, k: &str) -> Option<String> {
    body.get(k).and_then(Value::as_str).map(str::to_string)
}

fn req_str(body: &Map<String, Value>, k: &str, bad: &mut Vec<(String, String)>) -> Option<String> {
    match body.get(k).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Some(s.to_string()),
        _ => {
            bad.push((k.to_string(), "Pole jest wymagane".to_string()));
            None
        }
    }
}

fn req_int(body: &Map<String, Value>, k: &str, bad: &mut Vec<(String, String)>) -> Option<i64> {
    match body.get(k).and_then(Value::as_i64) {
        Some(v) => Some(v),
        None => {
            bad.push((
                k.to_string(),
                "Pole jest wymagane (liczba całkowita)".to_string(),
            ));
            None
        }
    }
}

fn check_paging(
    page: Option<&Value>,
    size: Option<&Value>,
    prefix: &str,
    path: &str,
) -> Result<(i64, i64), Response> {
    let mut bad = Vec::new();
    let page = match page {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(p) if p >= 0 => p,
            _ => {
                bad.push((
                    format!("{prefix}page"),
                    "Numer strony musi być liczbą ≥ 0".to_string(),
                ));
                0
            }
        },
    };
    let size = match size {
        None | Some(Value::Null) => 10,
        Some(v) => match v.as_i64() {
            Some(s) if (1..=25).contains(&s) => s,
            _ => {
                bad.push((
                    format!("{prefix}pageSize"),
                    "Rozmiar strony musi być z zakresu 1..25".to_string(),
                ));
                10
            }
        },
    };
    if bad.is_empty() {
        Ok((page, size))
    } else {
        Err(bad_request(path, bad))
    }
}

/// Paging at the top level of the body (`page`, `pageSize`): `/rpw/_search`, `/adresaci/_search`.
fn top_paging(body: &Map<String, Value>, path: &str) -> Result<(i64, i64), Response> {
    check_paging(body.get("page"), body.get("pageSize"), "", path)
}

/// Paging nested as `pageInfo {pageNumber, pageSize}`: `/sprawy/_search`, `/dokumenty/_search`.
fn nested_paging(body: &Map<String, Value>, path: &str) -> Result<(i64, i64), Response> {
    let info = body.get("pageInfo");
    check_paging(
        info.and_then(|i| i.get("pageNumber")),
        info.and_then(|i| i.get("pageSize")),
        "pageInfo.",
        path,
    )
}

fn paged(items: Vec<Value>, page: i64, size: i64) -> Value {
    let total = items.len() as i64;
    // Saturating: a client may ask for page 2^62.
    let start = page.saturating_mul(size).min(total);
    let end = page.saturating_add(1).saturating_mul(size).min(total);
    let pages = if total == 0 {
        0
    } else {
        total / size + i64::from(total % size != 0)
    };
    let lista: Vec<Value> = items
        .into_iter()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect();
    json!({
        "lista": lista,
        "pageInfo": {
            "indexStart": start,
            "indexEnd": end,
            "pageNumber": page,
            "pageSize": size,
            "pagesCount": pages,
            "isNextPageExists": end < total,
        }
    })
}

fn json_resp(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn problem_resp(status: StatusCode, v: Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

fn type_uri(status: StatusCode) -> String {
    format!("https://httpstatuses.io/{}", status.as_u16())
}

/// Not-found / internal-error / conflict shape (`IntegratorProblemDetailsNotFoundDto`).
fn problem(status: StatusCode, instance: &str, title: &str, detail: Option<&str>) -> Response {
    problem_resp(
        status,
        json!({
            "type": type_uri(status),
            "title": title,
            "status": status.as_u16(),
            "instance": instance,
            "errorId": new_id(),
            "message": title,
            "detail": detail,
        }),
    )
}

fn not_found(instance: &str, title: &str) -> Response {
    problem(StatusCode::NOT_FOUND, instance, title, None)
}

fn conflict(instance: &str, title: &str) -> Response {
    bad_request_status(
        StatusCode::CONFLICT,
        instance,
        vec![("body".into(), title.to_string())],
    )
}

fn server_error(instance: &str) -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        instance,
        "Błąd wewnętrzny symulatora",
        None,
    )
}

fn bad_request(instance: &str, params: Vec<(String, String)>) -> Response {
    bad_request_status(StatusCode::BAD_REQUEST, instance, params)
}

/// `IntegratorProblemDetailsBadRequestDto` with `invalid-params`.
fn bad_request_status(
    status: StatusCode,
    instance: &str,
    params: Vec<(String, String)>,
) -> Response {
    let title = params
        .first()
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| "Niepoprawne żądanie".to_string());
    let invalid: Vec<Value> = params
        .into_iter()
        .map(|(n, r)| json!({"name": n, "reason": r}))
        .collect();
    problem_resp(
        status,
        json!({
            "type": type_uri(status),
            "title": title,
            "status": status.as_u16(),
            "instance": instance,
            "errorId": new_id(),
            "invalid-params": invalid,
        }),
    )
}

fn too_many(retry_after: u64) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// `application/x-www-form-urlencoded` (also query strings) into a map; later keys win.
fn parse_form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// `%XX` decoding; `+` means a space only in form encoding.
fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// The first file part named one of `names` of a `multipart/form-data` body:
/// `(file name, bytes)`. Parsed by hand so a malformed body is the client's 400, not ours.
fn multipart_file(
    headers: &HeaderMap,
    body: &[u8],
    names: &[&str],
) -> Result<(String, Vec<u8>), String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err("Wymagane multipart/form-data z polem file".to_string());
    }
    let boundary = ct
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| "Brak parametru boundary".to_string())?;
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0).ok_or_else(|| "Niepoprawna treść multipart".to_string())?;
    loop {
        let start = pos + delim.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let head_start = start + 2;
        let Some(head_end) = find(body, b"\r\n\r\n", head_start) else {
            break;
        };
        let Some(next) = find(body, delim, head_end + 4) else {
            break;
        };
        let head = String::from_utf8_lossy(&body[head_start..head_end]).to_string();
        let content_end = next.saturating_sub(2).max(head_end + 4);
        let content = &body[head_end + 4..content_end];
        let disp = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        let param = |key: &str| {
            disp.split(';')
                .filter_map(|p| p.trim().strip_prefix(&format!("{key}=")))
                .next()
                .map(|v| v.trim_matches('"').to_string())
        };
        // RFC 5987 `filename*=utf-8''…` wins; a plain `filename` may be percent-encoded
        // (reqwest does that for non-ASCII names).
        let filename = param("filename*")
            .and_then(|v| v.split_once("''").map(|(_, n)| percent_decode(n, false)))
            .or_else(|| param("filename").map(|f| percent_decode(&f, false)));
        if let (Some(name), Some(filename)) = (param("name"), filename) {
            if names.contains(&name.as_str()) {
                if filename.is_empty() {
                    return Err("Plik musi mieć nazwę".to_string());
                }
                return Ok((filename, content.to_vec()));
            }
        }
        pos = next;
    }
    Err(format!("Brak pliku w polu {}", names.join("/")))
}
