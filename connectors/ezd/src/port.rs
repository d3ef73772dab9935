//! The EZD port: the few operations GSKO needs from any EZD product, in GSKO's terms.
//!
//! Contract every adapter keeps:
//! - `register` is resumable: it first finds how far an earlier attempt for the same
//!   `letter_id` got (the adapter leaves the letter id in EZD where `find_incoming` can see it)
//!   and continues from there; it never repeats a mutating call that already took effect.
//! - A mutating call whose outcome is unknown (a timeout or 5xx after the request was sent)
//!   ends the operation with [`EzdError::Uncertain`]; the caller looks the letter up with
//!   `find_incoming` before anything else and parks it for an admin when in doubt.
//! - Errors are classified (configuration, rate limit, transient, uncertain, refused,
//!   malformed answer) so that the caller can pause, wait, retry or park.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use gsko_model::CaseStatus;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EzdError {
    /// 401/403 or a refused token: the credentials or permissions are wrong. Nothing will work
    /// until an admin fixes the configuration; the caller pauses the connector.
    #[error("EZD refused the credentials or permissions ({0}); check the tenant's EZD settings")]
    Config(String),
    /// 429: wait at least `retry_after` before the next call.
    #[error("EZD asks to slow down (retry after {retry_after:?})")]
    RateLimited { retry_after: Duration },
    /// Nothing changed in EZD (a read failed, a connection was refused before sending, a 5xx
    /// on a read): safe to try again after a backoff.
    #[error("EZD unavailable: {0}")]
    Transient(String),
    /// A mutating call was sent and its outcome is unknown (timeout, connection lost, 5xx).
    /// Never repeat it blindly: look the item up first.
    #[error("outcome of {operation} unknown: {detail}")]
    Uncertain { operation: String, detail: String },
    /// EZD refused the request for this item (400, 404, 409 and other 4xx); trying again will
    /// not help. Says which call and EZD's own reason.
    #[error("EZD refused {operation}: {detail}")]
    Refused { operation: String, detail: String },
    /// EZD answered something the adapter cannot read (invalid JSON, a missing field).
    #[error("EZD answered {operation} with something unreadable: {detail}")]
    Protocol { operation: String, detail: String },
}

impl EzdError {
    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, EzdError::Transient(_) | EzdError::RateLimited { .. })
    }
}

/// A file to hand to EZD.
#[derive(Clone, PartialEq, Eq)]
pub struct FileContent {
    /// File name as EZD should show it.
    pub name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FileContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileContent")
            .field("name", &self.name)
            .field("mime_type", &self.mime_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Who sent the letter, for EZD's contact base (the RPW's sender). Personal data: never
/// logged (`Debug` is redacted).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SenderContact {
    /// Organisation's name, or empty for a person.
    pub organisation: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// PESEL of a person, digits.
    pub pesel: Option<String>,
    pub nip: Option<String>,
    pub email: Option<String>,
    /// ePUAP box to answer to, e.g. `/jkowalski/skrytka`.
    pub epuap_address: Option<String>,
}

impl std::fmt::Debug for SenderContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SenderContact(..)")
    }
}

/// A letter to register as an incoming item.
#[derive(Debug, Clone)]
pub struct IncomingLetter {
    /// GSKO's stable letter id (`epuap-…`, `sha256-…`). The adapter leaves it in EZD (the
    /// document's file name and the item's reference) so that `find_incoming` finds it.
    pub letter_id: String,
    pub title: String,
    pub received_at: DateTime<Utc>,
    /// How it came: `epuap` or `portal` (EZD's "sposób dostarczenia").
    pub delivered_via: DeliveredVia,
    pub sender: SenderContact,
    /// The letter itself (the signed XML document).
    pub document: FileContent,
    pub attachments: Vec<FileContent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveredVia {
    Epuap,
    Portal,
}

/// Where the registered letter goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseTarget {
    /// A new case in a JRWA class.
    New(NewCase),
    /// An existing case (the resident's open case in the same matter).
    Existing { ezd_case_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    /// EZD's id of the JRWA class (EZD RP `idWykaz`).
    pub class_id: String,
    /// Archival category of the class (`A`, `B5`, …).
    pub archival_category: String,
    /// Case title (EZD RP wants 1–500 characters).
    pub title: String,
    /// Year the case is opened in (normally the year the letter came).
    pub year: i32,
}

/// How far a letter's registration got in EZD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// EZD has no trace of the letter.
    Absent,
    /// Some steps took effect (e.g. the document is in EZD, or it has its RPW number) but the
    /// letter is not in a case yet: `register` would continue from there.
    Partial { detail: String },
    /// Registered and in a case.
    Registered(Registration),
}

/// A letter registered in EZD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The incoming item's number, e.g. `RPW/17/2026`.
    pub rpw: Option<String>,
    pub ezd_case_id: String,
    /// Znak sprawy exactly as EZD gave it; the caller parses it (EZD may return a malformed one).
    pub case_ref: String,
    pub case_title: Option<String>,
    pub registered_at: DateTime<Utc>,
    /// EZD's id of the sender in its contact base, which outgoing documents name as their
    /// addressee (so GSKO can tell which documents go back to this resident).
    pub sender_contact_id: Option<String>,
}

/// A case as EZD shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSnapshot {
    pub ezd_case_id: String,
    /// Znak sprawy as EZD gives it (unparsed).
    pub case_ref: Option<String>,
    pub title: Option<String>,
    pub status: CaseStatus,
    /// EZD's own status, code and name, e.g. `3 Zawieszona`.
    pub source_status: String,
    pub registered_at: Option<DateTime<Utc>>,
    pub due_on: Option<NaiveDate>,
    /// Whether EZD marks the case deleted.
    pub deleted: bool,
}

/// An outgoing item (korespondencja wychodząca) of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingItem {
    /// EZD's id of the item (EZD RP `idKorespondencja`).
    pub id: String,
    /// EZD's contact-base id of the addressee, when EZD names one.
    pub addressee_contact_id: Option<String>,
    /// EZD's status text, e.g. `Przyjęta`.
    pub status: String,
    pub cancelled: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub documents: Vec<OutgoingDocument>,
}

/// A document of an outgoing item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingDocument {
    /// EZD's id to fetch it by (EZD RP `idDokumentPrzestrzeni`).
    pub id: String,
    /// File name, e.g. `Decyzja FN.3120.7.2026.pdf`.
    pub name: String,
    pub mime_type: String,
    /// Whether EZD says the file carries a valid signature; `None` when it does not say.
    pub signature_valid: Option<bool>,
}

/// What GSKO needs from an EZD product.
#[async_trait]
pub trait EzdPort: Send + Sync {
    /// Short name of the product/adapter for logs and metrics, e.g. `ezdrp`.
    fn kind(&self) -> &'static str;

    /// Checks that the credentials work (one cheap authenticated call); used to end a pause.
    async fn check(&self) -> Result<(), EzdError>;

    /// How far the registration of `letter_id` got.
    async fn find_incoming(&self, letter_id: &str) -> Result<Lookup, EzdError>;

    /// Registers the letter (or completes an earlier partial registration) and puts it in the
    /// target case. For an existing registration returns it unchanged, whatever `target` says.
    async fn register(
        &self,
        letter: &IncomingLetter,
        target: &CaseTarget,
    ) -> Result<Registration, EzdError>;

    /// The case as it is now.
    async fn case(&self, ezd_case_id: &str) -> Result<CaseSnapshot, EzdError>;

    /// Cases that closed between `from` and `to` (inclusive); callers overlap consecutive
    /// windows so that a closure EZD dates late is not missed.
    async fn cases_closed_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CaseSnapshot>, EzdError>;

    /// The outgoing items of a case, oldest first.
    async fn outgoing(&self, ezd_case_id: &str) -> Result<Vec<OutgoingItem>, EzdError>;

    /// The content of an outgoing document. The adapter refuses a download from a host other
    /// than the configured EZD and file repository origins.
    async fn fetch(&self, document: &OutgoingDocument) -> Result<Vec<u8>, EzdError>;
}

/// EZD RP's `StatusSprawy` code as GSKO's normalized status.
pub fn ezdrp_case_status(code: i64) -> Option<CaseStatus> {
    Some(match code {
        1 => CaseStatus::InProgress,
        2 => CaseStatus::Postponed,
        3 => CaseStatus::Suspended,
        4 => CaseStatus::Closed,
        5 => CaseStatus::Resumed,
        6 => CaseStatus::ReRegistered,
        7 | 8 | 12 | 13 | 14 | 16 | 17 | 18 => CaseStatus::Archived,
        11 => CaseStatus::Assigned,
        _ => return None,
    })
}
