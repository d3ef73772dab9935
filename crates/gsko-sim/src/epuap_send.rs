//! Simulator: ePUAP's sending services, WS-Skrytka `nadaj` ("tryb UPP") and WS-Doręczyciel
//! `dorecz` ("tryb UPD") (`/work/shared/specs/epuap-login-edoreczenia.md` §1.4–§1.8, §2.4).
//!
//! Served by the same server as WS-Pull ([`crate::epuap::EpuapSim`]), with the same request
//! handling: SOAP 1.1 `text/xml` (another Content-Type gets HTTP 415), this crate's own XML
//! reader, and WS-Security checked by [`crate::epuap`]'s structural checks and `xmlsec1`. The
//! signer's certificate must be registered for the podmiot named in the
//! `ob:IdentyfikatorPodmiotu` header. The headers (`ob:IdentyfikatorPodmiotu`, `ob:AdresSkrytki`,
//! …) are global elements, so qualified in `http://wsdl.epuap.gov.pl/obiekty/`; the Body is one
//! `ob:Dokument` whose children (`nazwaPliku`, `typPliku`, `zawartosc`) are unqualified (§1.3).
//!
//! - `POST /pk_external_ws/services/skrytka` — `nadaj`: the target box (`ob:AdresSkrytki`)
//!   must exist. With `ob:CzyProbne` true (`1`/`true`) the request is only validated: `kod` 1,
//!   nothing delivered, no UPP. Otherwise the document is appended to the target box's FIFO as
//!   a letter from the sending podmiot (`typOsoby` P), so the box's owner pulls it like any
//!   other letter, and the answer `ob:OdpowiedzSkrytki` carries the UPP signed by ePUAP in
//!   `zalacznik` (`UPP.xml`, `text/xml`). Every accepted shipment is kept
//!   ([`EpuapSimHandle::sent`]).
//! - `POST /pk_external_ws/services/doreczyciel` — `dorecz`: the document must carry a
//!   `ds:Signature` as a child of its root ("tylko dokumenty podpisane", §1.6; the signature
//!   itself is not verified), the recipient box (`ob:AdresSkrytki`, a resident's box, created
//!   with [`EpuapSimHandle::add_box`]) must exist, and `ob:AdresOdpowiedzi` must be an existing
//!   box of the requesting podmiot, because that is where the UPD will arrive. The answer
//!   `ob:OdpowiedzDoreczyciela` gives the caller's `identyfikatorDokumentu` and a new
//!   `identyfikatorZlecenia`. The shipment then waits for the recipient
//!   ([`EpuapSimHandle::shipments`]): [`EpuapSimHandle::collect`] (the resident signs the UPD
//!   and opens the document) or [`EpuapSimHandle::deem_delivered`] (14 days passed: fikcja
//!   doręczenia) issue a UPD signed by ePUAP and deposit it as `UPD.xml` into the reply box, so
//!   the office receives it by WS-Pull. With [`crate::epuap::EpuapSimConfig::auto_collect_after`] (or
//!   [`EpuapSimHandle::set_auto_collect_after`]) a background task collects each shipment that
//!   long after it was accepted.
//!
//! Faults: [`PullOperation::Nadaj`] and [`PullOperation::Dorecz`] take part in
//! [`EpuapSimHandle::fail_next`] and [`EpuapSimHandle::calls`] like the WS-Pull operations
//! ([`PullFault::CorruptContent`] has no effect on them).
//!
//! Choices where the spec is silent (invented; tests may rely on them, a connector should not
//! rely on more than §1 and §2.4 say):
//! - Identifiers (document, UPP, UPD, zlecenie) are 10-digit decimal strings from one counter,
//!   unique within a simulator and distinct from the 8-digit ids of generated letters.
//! - The `pos:Nazwa` of a podmiot is its identifier (the simulator knows no names); ePUAP as
//!   the issuer of a UPD is `Nazwa` "ePUAP", `IdentyfikatorPodmiotu` "epuap". No
//!   `TypIdentyfikatora` attribute is written (its form on the wire is unverified, §2.4).
//! - UPP `InformacjaUzupelniajaca TypInformacjiUzupelniajacej="Skrot dokumentu"` holds
//!   Base64(SHA-256(document)); UPD `InformacjaUzupelniajaca
//!   TypInformacjiUzupelniajacej="Sposob doreczenia"` holds `odebrany` (collected) or
//!   `doreczenie zastepcze` (deemed delivered). Both wordings are this simulator's own; no real
//!   UPP/UPD instance was found (§5). The attributes are unqualified.
//! - A deemed delivery's `DataOdbioru` and `DataUtworzeniaPoswiadczenia` are the shipment's
//!   acceptance time plus 14 days (the simulated clock jumps); a collection's are now.
//! - An `ob:UPD` header (a UPD prepared by the sender) is accepted and recorded, but the
//!   simulator always issues its own.
//! - The UPD letter in the reply box comes from `ePUAP` (`typOsoby` P) with a new document id
//!   and no `adresOdpowiedzi`; the UPP of `nadaj` is only returned in the answer, never also
//!   put into the sender's box.
//! - `CzyProbne` answers carry an empty `identyfikatorDokumentu` (`nadaj`) or a nil
//!   `identyfikatorZlecenia` (`dorecz`). A document that is not well-formed XML is refused
//!   by both operations ([`KOD_DOKUMENT_NIE_XML`]): ePUAP sends only XML documents (§1.1).
//! - The dates are xsd:dateTime in Polish time with milliseconds (`…T10:11:12.000+02:00`).

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::epuap::{
    authenticate, envelope, http_500, soap_fault, soap_part, text_el, write_status, BoxAddress,
    EpuapSimHandle, PullFault, PullOperation, QueuedLetter, Rejection, RejectionKind, Shared,
    SimLetter, SimSender, KOD_AWARIA, NS_DS, NS_OBIEKTY,
};
use crate::xades::{epuap_certificate, sign_enveloped, SignerClaim};
use crate::xml::{escape_into, parse_document, El};

/// The path of WS-Skrytka (§1.2).
pub const SKRYTKA_PATH: &str = "/pk_external_ws/services/skrytka";
/// The path of WS-Doręczyciel (§1.2).
pub const DORECZYCIEL_PATH: &str = "/pk_external_ws/services/doreczyciel";
/// `pos`: the namespace of UPP and UPD (§2.4).
pub const NS_UPO: &str = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/";

/// `Wyjatek/kod` (this simulator's own): the document is not well-formed XML.
pub const KOD_DOKUMENT_NIE_XML: i32 = 106;
/// `Wyjatek/kod` (this simulator's own): `dorecz` of a document without `ds:Signature`.
pub const KOD_DOKUMENT_NIEPODPISANY: i32 = 107;

/// `UPP.xml`, the name of the UPP in `OdpowiedzSkrytki/zalacznik`.
pub const UPP_FILE_NAME: &str = "UPP.xml";
/// `UPD.xml`, the name of the UPD letter deposited into the reply box.
pub const UPD_FILE_NAME: &str = "UPD.xml";
/// `UPD/InformacjaUzupelniajaca` of a collected shipment (invented wording).
pub const SPOSOB_ODEBRANY: &str = "odebrany";
/// `UPD/InformacjaUzupelniajaca` of a shipment deemed delivered (invented wording).
pub const SPOSOB_ZASTEPCZE: &str = "doreczenie zastepcze";

/// ePUAP as issuer of poświadczenia and sender of UPD letters.
const EPUAP_NAZWA: &str = "ePUAP";
const EPUAP_ID: &str = "epuap";
/// Fikcja doręczenia: a shipment not collected is deemed delivered after 14 days.
const DEEMED_AFTER_DAYS: i64 = 14;

// ---------------------------------------------------------------------------------------
// Public types.

/// A document accepted by `nadaj` (not a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDocument {
    /// `ob:AdresSkrytki`: the box it was delivered to.
    pub target: BoxAddress,
    /// `ob:IdentyfikatorPodmiotu` of the sender.
    pub sender: String,
    /// `ob:AdresOdpowiedzi`, if given.
    pub adres_odpowiedzi: Option<String>,
    pub file_name: String,
    pub mime_type: Option<String>,
    /// The document, decoded.
    pub content: Vec<u8>,
    /// `identyfikatorDokumentu` of the answer (also the letter's id in the target box).
    pub document_id: String,
    /// `identyfikatorUpp` of the answer.
    pub upp_id: String,
    /// The signed UPP returned in `zalacznik`.
    pub upp: Vec<u8>,
}

/// Where a `dorecz` shipment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentState {
    /// Not yet collected nor deemed delivered.
    Waiting,
    /// The recipient signed the UPD and opened the document.
    Collected,
    /// 14 days passed (fikcja doręczenia).
    DeemedDelivered,
}

impl fmt::Display for ShipmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShipmentState::Waiting => "waiting",
            ShipmentState::Collected => "collected",
            ShipmentState::DeemedDelivered => "deemed delivered",
        })
    }
}

/// A document accepted by `dorecz` (not a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// `identyfikatorZlecenia` of the answer.
    pub zlecenie_id: String,
    /// `ob:IdentyfikatorPodmiotu` of the sending office.
    pub sender: String,
    /// `ob:AdresSkrytki`: the recipient's box.
    pub recipient: BoxAddress,
    /// `ob:AdresOdpowiedzi`: the office's box, where the UPD arrives.
    pub reply_to: BoxAddress,
    /// `ob:IdentyfikatorDokumentu` (the sender's), written into the UPD.
    pub document_id: String,
    /// `ob:IdentyfikatorSprawy`, written into the UPD when given.
    pub case_id: Option<String>,
    /// `ob:TerminDoreczenia`, as sent.
    pub termin_doreczenia: Option<String>,
    pub file_name: String,
    pub mime_type: Option<String>,
    /// The document, decoded.
    pub content: Vec<u8>,
    /// The decoded `zawartosc` of an `ob:UPD` header, if the sender gave one (not used).
    pub upd_from_sender: Option<Vec<u8>>,
    /// When `dorecz` accepted it (xsd:dateTime, Polish time).
    pub accepted_at: String,
    pub state: ShipmentState,
    /// `IdentyfikatorPoswiadczenia` of the UPD, once issued.
    pub upd_id: Option<String>,
    accepted_utc: DateTime<Utc>,
}

/// A UPD issued by [`EpuapSimHandle::collect`] or [`EpuapSimHandle::deem_delivered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedUpd {
    pub zlecenie_id: String,
    /// `IdentyfikatorPoswiadczenia`.
    pub upd_id: String,
    /// The signed UPD, as deposited.
    pub xml: Vec<u8>,
    /// The box it was deposited into.
    pub reply_to: BoxAddress,
    /// `skrot` of the deposited letter.
    pub skrot: String,
}

/// Errors of the handle's sending-side methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendSimError {
    /// No `dorecz` shipment has this `identyfikatorZlecenia`.
    UnknownShipment(String),
    /// The shipment already has its UPD.
    AlreadyFinished {
        zlecenie_id: String,
        state: ShipmentState,
    },
    /// The reply box disappeared (cannot happen through the public API).
    ReplyBoxMissing(String),
    /// ePUAP's signature over the UPD could not be made.
    Signing { zlecenie_id: String, detail: String },
}

impl fmt::Display for SendSimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendSimError::UnknownShipment(id) => {
                write!(f, "no dorecz shipment with identyfikatorZlecenia {id}")
            }
            SendSimError::AlreadyFinished { zlecenie_id, state } => write!(
                f,
                "dorecz shipment {zlecenie_id} is already {state}: its UPD was issued"
            ),
            SendSimError::ReplyBoxMissing(b) => {
                write!(f, "the reply box {b} of a dorecz shipment does not exist")
            }
            SendSimError::Signing {
                zlecenie_id,
                detail,
            } => write!(
                f,
                "signing the UPD of dorecz shipment {zlecenie_id} failed: {detail}"
            ),
        }
    }
}

impl std::error::Error for SendSimError {}

// ---------------------------------------------------------------------------------------
// UPP and UPD writers (§2.4). Unsigned: ePUAP's signature is appended by `sign_enveloped`.

/// A podmiot as `pos:Adresat` / `pos:Nadawca` / `pos:PodmiotWystawiajacyPoswiadczenie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosPodmiot {
    pub nazwa: String,
    pub identyfikator: String,
}

impl PosPodmiot {
    /// A podmiot the simulator knows only by its identifier (its name is the identifier).
    pub fn known_by_id(id: &str) -> Self {
        Self {
            nazwa: id.to_string(),
            identyfikator: id.to_string(),
        }
    }
}

/// The content of a UPP (Urzędowe Poświadczenie Przedłożenia).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upp {
    pub identyfikator_poswiadczenia: String,
    pub adresat: PosPodmiot,
    pub nadawca: PosPodmiot,
    pub data_doreczenia: String,
    pub data_wytworzenia: String,
    pub identyfikator_dokumentu: String,
    /// Base64(SHA-256(document)), written as `InformacjaUzupelniajaca` "Skrot dokumentu".
    pub skrot_dokumentu: String,
}

/// The content of a UPD (Urzędowe Poświadczenie Doręczenia / Odbioru).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upd {
    pub identyfikator_poswiadczenia: String,
    pub wystawca: PosPodmiot,
    pub adresat: PosPodmiot,
    pub data_odbioru: String,
    pub data_utworzenia: String,
    pub identyfikator_sprawy: Option<String>,
    pub identyfikator_dokumentu: String,
    /// [`SPOSOB_ODEBRANY`] or [`SPOSOB_ZASTEPCZE`], as `InformacjaUzupelniajaca` "Sposob doreczenia".
    pub sposob_doreczenia: String,
}

fn pos_podmiot(x: &mut Vec<u8>, element: &str, p: &PosPodmiot) {
    x.extend_from_slice(format!("<pos:{element}>").as_bytes());
    text_el(x, "pos:Nazwa", &p.nazwa);
    text_el(x, "pos:IdentyfikatorPodmiotu", &p.identyfikator);
    x.extend_from_slice(format!("</pos:{element}>").as_bytes());
}

fn informacja(x: &mut Vec<u8>, typ: &str, value: &str) {
    x.extend_from_slice(b"<pos:InformacjaUzupelniajaca TypInformacjiUzupelniajacej=\"");
    escape_into(x, typ);
    x.extend_from_slice(b"\">");
    escape_into(x, value);
    x.extend_from_slice(b"</pos:InformacjaUzupelniajaca>");
}

fn pos_open() -> Vec<u8> {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pos:Dokument xmlns:pos=\"{NS_UPO}\">")
        .into_bytes()
}

/// The unsigned UPP document: `pos:Dokument/pos:UPP/…`.
pub fn write_upp(upp: &Upp) -> Vec<u8> {
    let mut x = pos_open();
    x.extend_from_slice(b"<pos:UPP>");
    text_el(
        &mut x,
        "pos:IdentyfikatorPoswiadczenia",
        &upp.identyfikator_poswiadczenia,
    );
    pos_podmiot(&mut x, "Adresat", &upp.adresat);
    pos_podmiot(&mut x, "Nadawca", &upp.nadawca);
    text_el(&mut x, "pos:DataDoreczenia", &upp.data_doreczenia);
    text_el(
        &mut x,
        "pos:DataWytworzeniaPoswiadczenia",
        &upp.data_wytworzenia,
    );
    text_el(
        &mut x,
        "pos:IdentyfikatorDokumentu",
        &upp.identyfikator_dokumentu,
    );
    informacja(&mut x, "Skrot dokumentu", &upp.skrot_dokumentu);
    x.extend_from_slice(b"</pos:UPP></pos:Dokument>");
    x
}

/// The unsigned UPD document: `pos:Dokument/pos:UPD/…`.
pub fn write_upd(upd: &Upd) -> Vec<u8> {
    let mut x = pos_open();
    x.extend_from_slice(b"<pos:UPD>");
    text_el(
        &mut x,
        "pos:IdentyfikatorPoswiadczenia",
        &upd.identyfikator_poswiadczenia,
    );
    pos_podmiot(&mut x, "PodmiotWystawiajacyPoswiadczenie", &upd.wystawca);
    pos_podmiot(&mut x, "Adresat", &upd.adresat);
    text_el(&mut x, "pos:DataOdbioru", &upd.data_odbioru);
    text_el(
        &mut x,
        "pos:DataUtworzeniaPoswiadczenia",
        &upd.data_utworzenia,
    );
    if let Some(sprawa) = &upd.identyfikator_sprawy {
        text_el(&mut x, "pos:IdentyfikatorSprawy", sprawa);
    }
    text_el(
        &mut x,
        "pos:IdentyfikatorDokumentu",
        &upd.identyfikator_dokumentu,
    );
    informacja(&mut x, "Sposob doreczenia", &upd.sposob_doreczenia);
    x.extend_from_slice(b"</pos:UPD></pos:Dokument>");
    x
}

/// Base64(SHA-256(bytes)): the UPP's "Skrot dokumentu".
pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Signs a poświadczenie as ePUAP: enveloped XAdES-BES, no ClaimedRole.
fn sign_as_epuap(xml: &[u8], signing_time: &str) -> Result<Vec<u8>, String> {
    sign_enveloped(xml, epuap_certificate(), &SignerClaim::None, signing_time)
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// State kept in `epuap::Data`.

/// The sending side's part of the simulator state.
#[derive(Default)]
pub(crate) struct SendState {
    sent: Vec<SentDocument>,
    shipments: Vec<Shipment>,
    last_id: u64,
    auto_collect_after: Option<Duration>,
}

impl SendState {
    pub(crate) fn new(auto_collect_after: Option<Duration>) -> Self {
        Self {
            auto_collect_after,
            ..Self::default()
        }
    }

    /// A new 10-digit identifier, unique within this simulator.
    fn new_id(&mut self) -> String {
        self.last_id += 1;
        format!("{}", 1_000_000_000 + self.last_id)
    }
}

// ---------------------------------------------------------------------------------------
// Time.

/// Polish time: CEST from the last Sunday of March 01:00 UTC to the last Sunday of October
/// 01:00 UTC, CET otherwise.
fn warsaw(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    let year = t.year();
    let last_sunday_1am = |month: u32| {
        let last =
            NaiveDate::from_ymd_opt(year, month, 31).expect("March and October have 31 days");
        let sunday =
            last - chrono::Duration::days(i64::from(last.weekday().num_days_from_sunday()));
        Utc.from_utc_datetime(
            &sunday
                .and_hms_opt(1, 0, 0)
                .expect("01:00:00 is a valid time"),
        )
    };
    let summer = t >= last_sunday_1am(3) && t < last_sunday_1am(10);
    let offset = FixedOffset::east_opt(if summer { 7200 } else { 3600 })
        .expect("+01:00 and +02:00 are valid offsets");
    t.with_timezone(&offset)
}

/// xsd:dateTime as ePUAP writes it: `2024-05-10T10:11:12.000+02:00`.
fn xsd_date_time(t: DateTime<Utc>) -> String {
    warsaw(t).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

// ---------------------------------------------------------------------------------------
// The endpoints.

/// A `nadaj` or `dorecz` request as read from the envelope.
struct SendRequest {
    podmiot: String,
    adres_skrytki: String,
    adres_odpowiedzi: Option<String>,
    czy_probne: bool,
    termin_doreczenia: Option<String>,
    identyfikator_dokumentu: Option<String>,
    identyfikator_sprawy: Option<String>,
    upd: Option<Vec<u8>>,
    file_name: String,
    mime_type: Option<String>,
    content: Vec<u8>,
}

/// `POST /pk_external_ws/services/skrytka`.
pub(crate) async fn skrytka(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(shared, headers, body, PullOperation::Nadaj).await
}

/// `POST /pk_external_ws/services/doreczyciel`.
pub(crate) async fn doreczyciel(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(shared, headers, body, PullOperation::Dorecz).await
}

async fn serve(
    shared: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
    op: PullOperation,
) -> Response {
    // SOAP 1.1 only, as WS-Pull.
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
            operation: Some(op),
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
            return shared.reject(RejectionKind::Malformed, Some(op), format!("not XML: {e}"));
        }
    };
    let request = match read_send_request(&doc, op) {
        Ok(r) => r,
        Err(e) => return shared.reject(RejectionKind::Malformed, Some(op), e),
    };
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
    let response = match op {
        PullOperation::Dorecz => dorecz(&shared, request),
        _ => nadaj(&shared, request).await,
    };
    match failure {
        Some(PullFault::Http500AfterProcessing) => http_500(),
        Some(PullFault::Delay(d)) => {
            tokio::time::sleep(d).await;
            response
        }
        _ => response,
    }
}

fn read_send_request(doc: &El, op: PullOperation) -> Result<SendRequest, String> {
    let header = soap_part(doc, "Header")?;
    let body = soap_part(doc, "Body")?;
    let header_el = |name: &str| -> Result<Option<&El>, String> {
        let found: Vec<&El> = header
            .children
            .iter()
            .filter(|c| c.is(NS_OBIEKTY, name))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(format!("header ob:{name} given more than once")),
        }
    };
    let header_text = |name: &str| -> Result<Option<String>, String> {
        Ok(header_el(name)?.map(|e| e.text.trim().to_string()))
    };
    let podmiot = header_text("IdentyfikatorPodmiotu")?
        .filter(|p| !p.is_empty())
        .ok_or("header ob:IdentyfikatorPodmiotu missing or empty")?;
    if podmiot.chars().count() > 100 {
        return Err("ob:IdentyfikatorPodmiotu longer than 100 characters".into());
    }
    let adres_skrytki = header_text("AdresSkrytki")?.ok_or("header ob:AdresSkrytki missing")?;
    let adres_odpowiedzi = header_text("AdresOdpowiedzi")?.filter(|a| !a.is_empty());
    let czy_probne = match header_text("CzyProbne")?.as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(format!("ob:CzyProbne {other:?} is not an xsd:boolean")),
    };
    let (termin_doreczenia, identyfikator_dokumentu, identyfikator_sprawy, upd) = if op
        == PullOperation::Dorecz
    {
        let dokument_id = header_text("IdentyfikatorDokumentu")?
            .filter(|d| !d.is_empty())
            .ok_or("header ob:IdentyfikatorDokumentu missing or empty (dorecz)")?;
        if adres_odpowiedzi.is_none() {
            return Err("header ob:AdresOdpowiedzi missing (dorecz: the UPD goes there)".into());
        }
        let upd = match header_el("UPD")? {
            Some(el) => Some(dokument_typ(el, "ob:UPD")?.2),
            None => None,
        };
        (
            header_text("TerminDoreczenia")?.filter(|t| !t.is_empty()),
            Some(dokument_id),
            header_text("IdentyfikatorSprawy")?.filter(|s| !s.is_empty()),
            upd,
        )
    } else {
        (None, None, None, None)
    };
    let [payload] = body.children.as_slice() else {
        return Err("soapenv:Body must hold exactly one element".into());
    };
    if !payload.is(NS_OBIEKTY, "Dokument") {
        return Err(format!(
            "the Body holds {{{}}}{}, expected ob:Dokument in {NS_OBIEKTY}",
            payload.ns.as_deref().unwrap_or(""),
            payload.local
        ));
    }
    let (file_name, mime_type, content) = dokument_typ(payload, "ob:Dokument")?;
    Ok(SendRequest {
        podmiot,
        adres_skrytki,
        adres_odpowiedzi,
        czy_probne,
        termin_doreczenia,
        identyfikator_dokumentu,
        identyfikator_sprawy,
        upd,
        file_name,
        mime_type,
        content,
    })
}

/// A DokumentTyp: `nazwaPliku`, `typPliku?`, `zawartosc` (base64), all unqualified.
fn dokument_typ(el: &El, what: &str) -> Result<(String, Option<String>, Vec<u8>), String> {
    let field = |name: &str| -> Result<Option<String>, String> {
        let mut found = None;
        for c in el.children.iter().filter(|c| c.local == name) {
            if c.ns.is_some() {
                return Err(format!(
                    "{what}/<{name}> must be unqualified (xmlns=\"\"), is in {:?}",
                    c.ns
                ));
            }
            if found.is_some() {
                return Err(format!("{what}/<{name}> given twice"));
            }
            found = Some(c.text.clone());
        }
        Ok(found)
    };
    let file_name = field("nazwaPliku")?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{what}/<nazwaPliku> missing or empty"))?;
    let mime_type = field("typPliku")?.map(|t| t.trim().to_string());
    let zawartosc = field("zawartosc")?.ok_or_else(|| format!("{what}/<zawartosc> missing"))?;
    let compact: String = zawartosc
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("{what}/<zawartosc> is not base64: {e}"))?;
    Ok((file_name, mime_type, content))
}

/// The decoded document as XML, or the rejection for a document that is not.
fn document_root(shared: &Shared, op: PullOperation, content: &[u8]) -> Result<El, Box<Response>> {
    parse_document(content).map_err(|e| {
        Box::new(shared.reject(
            RejectionKind::DocumentNotXml,
            Some(op),
            format!("the document is not well-formed XML: {e}"),
        ))
    })
}

/// An existing box named by a header, or the rejection.
fn existing_box(
    shared: &Shared,
    op: PullOperation,
    header: &str,
    adres: &str,
) -> Result<BoxAddress, Box<Response>> {
    // Boxed: a Response is large and this is the rare path.
    let Some(b) = BoxAddress::parse(adres) else {
        return Err(Box::new(shared.reject(
            RejectionKind::UnknownBox,
            Some(op),
            format!("ob:{header} {adres:?} is not /<podmiot>/<nazwa>"),
        )));
    };
    if !shared.lock().boxes.contains_key(&b) {
        return Err(Box::new(shared.reject(
            RejectionKind::UnknownBox,
            Some(op),
            format!("ob:{header}: no skrytka {b}"),
        )));
    }
    Ok(b)
}

async fn nadaj(shared: &Arc<Shared>, req: SendRequest) -> Response {
    let op = PullOperation::Nadaj;
    let target = match existing_box(shared, op, "AdresSkrytki", &req.adres_skrytki) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Err(r) = document_root(shared, op, &req.content) {
        return *r;
    }
    if req.czy_probne {
        let mut x = Vec::new();
        write_status(
            &mut x,
            1,
            "Wysyłka próbna: dokument poprawny, nie został doręczony",
        );
        x.extend_from_slice(b"<identyfikatorDokumentu></identyfikatorDokumentu>");
        return envelope("OdpowiedzSkrytki", &x);
    }
    let (document_id, upp_id) = {
        let mut d = shared.lock();
        (d.send.new_id(), d.send.new_id())
    };
    let now = Utc::now();
    let stamp = xsd_date_time(now);
    let upp = Upp {
        identyfikator_poswiadczenia: upp_id.clone(),
        adresat: PosPodmiot::known_by_id(&target.podmiot),
        nadawca: PosPodmiot::known_by_id(&req.podmiot),
        data_doreczenia: stamp.clone(),
        data_wytworzenia: stamp.clone(),
        identyfikator_dokumentu: document_id.clone(),
        skrot_dokumentu: sha256_base64(&req.content),
    };
    let unsigned = write_upp(&upp);
    let signing_time = stamp.clone();
    // xmlsec1 runs as a child process: keep it off the async workers.
    let signed = tokio::task::spawn_blocking(move || sign_as_epuap(&unsigned, &signing_time))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    let signed_upp = match signed {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "epuap sim: signing a UPP failed");
            return soap_fault("soapenv:Server", KOD_AWARIA, "Nie udało się wytworzyć UPP");
        }
    };
    let letter = SimLetter {
        file_name: req.file_name.clone(),
        mime_type: req
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        content: req.content.clone(),
        sender: office_sender(&req.podmiot),
        data_nadania: stamp,
        czy_testowe: false,
        document_id: document_id.clone(),
        adres_odpowiedzi: req.adres_odpowiedzi.clone(),
    };
    {
        let mut d = shared.lock();
        let Some(state) = d.boxes.get_mut(&target) else {
            drop(d);
            return shared.reject(
                RejectionKind::UnknownBox,
                Some(op),
                format!("ob:AdresSkrytki: no skrytka {target}"),
            );
        };
        state.queue.push_back(QueuedLetter {
            skrot: letter.skrot(),
            letter,
        });
        d.send.sent.push(SentDocument {
            target,
            sender: req.podmiot,
            adres_odpowiedzi: req.adres_odpowiedzi,
            file_name: req.file_name,
            mime_type: req.mime_type,
            content: req.content,
            document_id: document_id.clone(),
            upp_id: upp_id.clone(),
            upp: signed_upp.clone(),
        });
    }
    tracing::debug!(%document_id, %upp_id, "epuap sim: nadaj delivered a document");
    let mut x = Vec::new();
    write_status(&mut x, 1, "OK");
    text_el(&mut x, "identyfikatorDokumentu", &document_id);
    text_el(&mut x, "identyfikatorUpp", &upp_id);
    x.extend_from_slice(b"<zalacznik>");
    text_el(&mut x, "nazwaPliku", UPP_FILE_NAME);
    text_el(&mut x, "typPliku", "text/xml");
    text_el(
        &mut x,
        "zawartosc",
        &base64::engine::general_purpose::STANDARD.encode(&signed_upp),
    );
    x.extend_from_slice(b"</zalacznik>");
    envelope("OdpowiedzSkrytki", &x)
}

/// `danePodmiotu` of a letter sent by an office's system.
fn office_sender(podmiot: &str) -> SimSender {
    SimSender {
        identyfikator: podmiot.to_string(),
        typ_osoby: 'P',
        imie: None,
        nazwisko_nazwa: None,
        pesel: None,
        nip: None,
        regon: None,
        zgoda: true,
        uzytkownik: None,
        system: None,
    }
}

fn dorecz(shared: &Arc<Shared>, req: SendRequest) -> Response {
    let op = PullOperation::Dorecz;
    let recipient = match existing_box(shared, op, "AdresSkrytki", &req.adres_skrytki) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let adres_odpowiedzi = req.adres_odpowiedzi.clone().unwrap_or_default();
    if let Some(b) = BoxAddress::parse(&adres_odpowiedzi) {
        if b.podmiot != req.podmiot {
            return shared.reject(
                RejectionKind::AddressMismatch,
                Some(op),
                format!(
                    "ob:AdresOdpowiedzi {b} is not a box of podmiot {:?}",
                    req.podmiot
                ),
            );
        }
    }
    let reply_to = match existing_box(shared, op, "AdresOdpowiedzi", &adres_odpowiedzi) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let root = match document_root(shared, op, &req.content) {
        Ok(root) => root,
        Err(r) => return *r,
    };
    if root.child(NS_DS, "Signature").is_none() {
        return shared.reject(
            RejectionKind::DocumentUnsigned,
            Some(op),
            "the document's root has no ds:Signature child (dorecz takes only signed documents)",
        );
    }
    let document_id = req.identyfikator_dokumentu.clone().unwrap_or_default();
    if req.czy_probne {
        let mut x = Vec::new();
        write_status(
            &mut x,
            1,
            "Wysyłka próbna: dokument poprawny, nie został doręczony",
        );
        text_el(&mut x, "identyfikatorDokumentu", &document_id);
        x.extend_from_slice(
            b"<identyfikatorZlecenia xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\"/>",
        );
        return envelope("OdpowiedzDoreczyciela", &x);
    }
    let now = Utc::now();
    let (zlecenie_id, auto) = {
        let mut d = shared.lock();
        let zlecenie_id = d.send.new_id();
        d.send.shipments.push(Shipment {
            zlecenie_id: zlecenie_id.clone(),
            sender: req.podmiot,
            recipient,
            reply_to,
            document_id: document_id.clone(),
            case_id: req.identyfikator_sprawy,
            termin_doreczenia: req.termin_doreczenia,
            file_name: req.file_name,
            mime_type: req.mime_type,
            content: req.content,
            upd_from_sender: req.upd,
            accepted_at: xsd_date_time(now),
            state: ShipmentState::Waiting,
            upd_id: None,
            accepted_utc: now,
        });
        (zlecenie_id, d.send.auto_collect_after)
    };
    tracing::debug!(%zlecenie_id, "epuap sim: dorecz accepted a shipment");
    if let Some(after) = auto {
        spawn_auto_collect(Arc::downgrade(shared), zlecenie_id.clone(), after);
    }
    let mut x = Vec::new();
    write_status(&mut x, 1, "OK");
    text_el(&mut x, "identyfikatorDokumentu", &document_id);
    text_el(&mut x, "identyfikatorZlecenia", &zlecenie_id);
    envelope("OdpowiedzDoreczyciela", &x)
}

/// Collects the shipment `after` from now, unless the simulator is gone by then or the
/// shipment was finished by hand.
fn spawn_auto_collect(shared: Weak<Shared>, zlecenie_id: String, after: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let id = zlecenie_id.clone();
        let result =
            tokio::task::spawn_blocking(move || finish(&shared, &id, ShipmentState::Collected))
                .await;
        match result {
            Ok(Ok(_)) | Ok(Err(SendSimError::AlreadyFinished { .. })) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "epuap sim: auto-collect failed"),
            Err(e) => {
                tracing::warn!(%zlecenie_id, error = %e, "epuap sim: auto-collect task failed")
            }
        }
    });
}

/// Issues the UPD of a waiting shipment and deposits it into the reply box. Blocks while
/// `xmlsec1` signs.
fn finish(
    shared: &Shared,
    zlecenie_id: &str,
    how: ShipmentState,
) -> Result<IssuedUpd, SendSimError> {
    // Claim the shipment under the lock, so a concurrent collect cannot issue a second UPD.
    let (shipment, upd_id, letter_id) = {
        let mut d = shared.lock();
        let send = &mut d.send;
        let Some(i) = send
            .shipments
            .iter()
            .position(|s| s.zlecenie_id == zlecenie_id)
        else {
            return Err(SendSimError::UnknownShipment(zlecenie_id.to_string()));
        };
        if send.shipments[i].state != ShipmentState::Waiting {
            return Err(SendSimError::AlreadyFinished {
                zlecenie_id: zlecenie_id.to_string(),
                state: send.shipments[i].state,
            });
        }
        send.shipments[i].state = how;
        let upd_id = send.new_id();
        let letter_id = send.new_id();
        (send.shipments[i].clone(), upd_id, letter_id)
    };
    let revert = |shared: &Shared| {
        let mut d = shared.lock();
        if let Some(s) = d
            .send
            .shipments
            .iter_mut()
            .find(|s| s.zlecenie_id == zlecenie_id)
        {
            s.state = ShipmentState::Waiting;
        }
    };
    let (when, sposob) = match how {
        ShipmentState::DeemedDelivered => (
            shipment.accepted_utc + chrono::Duration::days(DEEMED_AFTER_DAYS),
            SPOSOB_ZASTEPCZE,
        ),
        _ => (Utc::now(), SPOSOB_ODEBRANY),
    };
    let stamp = xsd_date_time(when);
    let upd = Upd {
        identyfikator_poswiadczenia: upd_id.clone(),
        wystawca: PosPodmiot {
            nazwa: EPUAP_NAZWA.into(),
            identyfikator: EPUAP_ID.into(),
        },
        adresat: PosPodmiot::known_by_id(&shipment.recipient.podmiot),
        data_odbioru: stamp.clone(),
        data_utworzenia: stamp.clone(),
        identyfikator_sprawy: shipment.case_id.clone(),
        identyfikator_dokumentu: shipment.document_id.clone(),
        sposob_doreczenia: sposob.into(),
    };
    let xml = match sign_as_epuap(&write_upd(&upd), &stamp) {
        Ok(xml) => xml,
        Err(detail) => {
            revert(shared);
            return Err(SendSimError::Signing {
                zlecenie_id: zlecenie_id.to_string(),
                detail,
            });
        }
    };
    let letter = SimLetter {
        file_name: UPD_FILE_NAME.into(),
        mime_type: "text/xml".into(),
        content: xml.clone(),
        sender: SimSender {
            identyfikator: EPUAP_NAZWA.into(),
            typ_osoby: 'P',
            imie: None,
            nazwisko_nazwa: Some(EPUAP_NAZWA.into()),
            pesel: None,
            nip: None,
            regon: None,
            zgoda: true,
            uzytkownik: None,
            system: Some(EPUAP_NAZWA.into()),
        },
        data_nadania: stamp,
        czy_testowe: false,
        document_id: letter_id,
        adres_odpowiedzi: None,
    };
    let skrot = letter.skrot();
    let mut d = shared.lock();
    let Some(reply_box) = d.boxes.get_mut(&shipment.reply_to) else {
        drop(d);
        revert(shared);
        return Err(SendSimError::ReplyBoxMissing(shipment.reply_to.adres()));
    };
    reply_box.queue.push_back(QueuedLetter {
        skrot: skrot.clone(),
        letter,
    });
    if let Some(s) = d
        .send
        .shipments
        .iter_mut()
        .find(|s| s.zlecenie_id == zlecenie_id)
    {
        s.upd_id = Some(upd_id.clone());
    }
    drop(d);
    tracing::debug!(%zlecenie_id, %upd_id, state = %how, "epuap sim: UPD issued");
    Ok(IssuedUpd {
        zlecenie_id: zlecenie_id.to_string(),
        upd_id,
        xml,
        reply_to: shipment.reply_to,
        skrot,
    })
}

// ---------------------------------------------------------------------------------------
// The handle.

impl EpuapSimHandle {
    /// The WS-Skrytka endpoint: `<base_url>/pk_external_ws/services/skrytka`.
    pub fn skrytka_url(&self) -> String {
        format!("{}{SKRYTKA_PATH}", self.base_url)
    }

    /// The WS-Doręczyciel endpoint: `<base_url>/pk_external_ws/services/doreczyciel`.
    pub fn doreczyciel_url(&self) -> String {
        format!("{}{DORECZYCIEL_PATH}", self.base_url)
    }

    /// Every document `nadaj` delivered (dry runs excluded), oldest first.
    pub fn sent(&self) -> Vec<SentDocument> {
        self.shared.lock().send.sent.clone()
    }

    /// Every `dorecz` shipment (dry runs excluded), oldest first.
    pub fn shipments(&self) -> Vec<Shipment> {
        self.shared.lock().send.shipments.clone()
    }

    /// The recipient collects the shipment: ePUAP issues a UPD "odebrany" into the reply box.
    /// Fails for an unknown shipment or one whose UPD was already issued (a second call).
    /// Blocks while `xmlsec1` signs the UPD.
    pub fn collect(&self, zlecenie_id: &str) -> Result<IssuedUpd, SendSimError> {
        finish(&self.shared, zlecenie_id, ShipmentState::Collected)
    }

    /// 14 days passed without collection: ePUAP issues a UPD "doreczenie zastepcze" dated
    /// 14 days after acceptance into the reply box. Fails like [`EpuapSimHandle::collect`].
    pub fn deem_delivered(&self, zlecenie_id: &str) -> Result<IssuedUpd, SendSimError> {
        finish(&self.shared, zlecenie_id, ShipmentState::DeemedDelivered)
    }

    /// Sets (or clears) automatic collection for shipments accepted from now on
    /// ([`crate::epuap::EpuapSimConfig::auto_collect_after`]).
    pub fn set_auto_collect_after(&self, after: Option<Duration>) {
        self.shared.lock().send.auto_collect_after = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polish_time_switches_on_the_last_sundays() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            xsd_date_time(at("2026-03-29T00:59:59Z")),
            "2026-03-29T01:59:59.000+01:00"
        );
        assert_eq!(
            xsd_date_time(at("2026-03-29T01:00:00Z")),
            "2026-03-29T03:00:00.000+02:00"
        );
        assert_eq!(
            xsd_date_time(at("2026-10-25T00:59:00Z")),
            "2026-10-25T02:59:00.000+02:00"
        );
        assert_eq!(
            xsd_date_time(at("2026-10-25T01:00:00Z")),
            "2026-10-25T02:00:00.000+01:00"
        );
    }

    #[test]
    fn upd_names_case_and_document() {
        let x = write_upd(&Upd {
            identyfikator_poswiadczenia: "1".into(),
            wystawca: PosPodmiot::known_by_id("epuap"),
            adresat: PosPodmiot::known_by_id("jan&co"),
            data_odbioru: "d".into(),
            data_utworzenia: "d".into(),
            identyfikator_sprawy: Some("FN.3120.1.2026".into()),
            identyfikator_dokumentu: "DOC-1".into(),
            sposob_doreczenia: SPOSOB_ODEBRANY.into(),
        });
        let root = parse_document(&x).unwrap();
        assert!(root.is(NS_UPO, "Dokument"));
        let upd = root.child(NS_UPO, "UPD").unwrap();
        assert_eq!(
            upd.child(NS_UPO, "IdentyfikatorSprawy").unwrap().text,
            "FN.3120.1.2026"
        );
        let adresat = upd.child(NS_UPO, "Adresat").unwrap();
        assert_eq!(
            adresat.child(NS_UPO, "IdentyfikatorPodmiotu").unwrap().text,
            "jan&co"
        );
    }

    #[test]
    fn ids_are_unique_and_ten_digits() {
        let mut s = SendState::new(None);
        let (a, b) = (s.new_id(), s.new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 10);
    }
}
