//! The case service's own records (`gsko-cases`), beside the projected view in the same
//! database: which letters it registered in the tenant's EZD, the EZD cases it follows, and the
//! decisions it raised from outgoing EZD documents. Keyed by tenant first, like every table.
//!
//! Why records: commands arrive at least once and the service may crash at any point. A letter
//! is looked up before it is registered, so a copy of `letter.register` does not open a second
//! case; the registration and the start of the watch on its case are written in one
//! transaction, so a case is never registered and then forgotten. Status changes are numbered
//! per case (`seq`) and one is recorded only as the next number, so a replayed poll or a stale
//! poller running beside a newer one changes nothing. Registrations EZD refused (or answered
//! with something unusable) are parked for an admin, never retried on their own.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gsko_model::{CaseRef, CaseStatus, DecisionRecipient, Pesel, Teryt};
use serde::{Deserialize, Serialize};

// The SQL and the two backend implementations (one statement text for both).
#[path = "cases_work_sql.rs"]
mod sql;

/// Where the registration of one letter in EZD stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationState {
    /// EZD registered the letter; the case is watched.
    Registered,
    /// Left for an admin with the reason (`problem`); a later registration may still succeed.
    Parked,
}

impl RegistrationState {
    pub const ALL: [RegistrationState; 2] =
        [RegistrationState::Registered, RegistrationState::Parked];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Registered => "registered",
            RegistrationState::Parked => "parked",
        }
    }

    pub fn parse(s: &str) -> Option<RegistrationState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The registration of one letter as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationRecord {
    pub tenant: Teryt,
    pub letter_id: String,
    pub state: RegistrationState,
    /// EZD's own id of the case (EZD RP `idSprawa`), once EZD returned one.
    pub ezd_case_id: Option<String>,
    /// Znak sprawy as EZD returned it: raw, and possibly malformed when the row is parked.
    pub case_ref: Option<String>,
    /// The number of the incoming item in the register (RPW), when EZD gave one.
    pub rpw: Option<String>,
    /// Why the registration is parked; `None` once registered.
    pub problem: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// One EZD case the service follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedCase {
    pub tenant: Teryt,
    pub ezd_case_id: String,
    /// Znak sprawy as EZD writes it now (a re-registered case gets a new one).
    pub case_ref: CaseRef,
    /// The letter that opened the case.
    pub letter_id: String,
    /// The resident the case is about, when known.
    pub resident_pesel: Option<Pesel>,
    /// Whom a decision of this case is delivered to.
    pub recipient: DecisionRecipient,
    /// The sender's contact (interesant) id in EZD, when the letter was registered with one.
    pub sender_contact_id: Option<String>,
    /// The JRWA class the case was opened in.
    pub jrwa_symbol: String,
    pub status: CaseStatus,
    /// The position of the last recorded status change in the case's timeline.
    pub seq: u32,
    /// Whether the case is still followed (polled, joined by the resident's next letters).
    pub open: bool,
    pub registered_at: DateTime<Utc>,
    pub last_polled_at: Option<DateTime<Utc>>,
}

/// The case service's records. Instants are kept to the microsecond (both backends' precision):
/// a time written is read back cut to whole microseconds.
#[async_trait]
pub trait CaseWorkStore: Send + Sync {
    /// The registration of a letter, if the service ever registered or parked it.
    async fn registration(
        &self,
        tenant: &Teryt,
        letter_id: &str,
    ) -> Result<Option<RegistrationRecord>, StoreError>;

    /// Records a registration as done (state registered, problem cleared, whatever `rec.state`
    /// and `rec.problem` say) and starts watching its case: the case row is inserted if absent
    /// (a case several letters joined is watched once and keeps its status/seq). One
    /// transaction.
    ///
    /// Idempotent: recording the same registration again changes nothing (the first
    /// `updated_at` stays). A letter already registered to another EZD case is refused with an
    /// error and nothing written; so is a record whose tenant, or whose `ezd_case_id` (when
    /// given), is not the watched case's. `rec.case_ref`, when absent, is the watched case's.
    async fn record_registration(
        &self,
        rec: &RegistrationRecord,
        watch: &WatchedCase,
    ) -> Result<(), StoreError>;

    /// Parks a registration for an admin with the reason (and what EZD returned, when it did).
    /// Upsert; never downgrades a `registered` row. Parking again replaces the problem and
    /// keeps an earlier EZD answer that the new call does not have.
    async fn park_registration(
        &self,
        tenant: &Teryt,
        letter_id: &str,
        problem: &str,
        ezd_case_id: Option<&str>,
        case_ref: Option<&str>,
        rpw: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The tenant's parked registrations, least recently changed first, at most `limit`.
    async fn parked_registrations(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<RegistrationRecord>, StoreError>;

    /// The resident's open watched case in this JRWA class, most recently registered first.
    async fn open_case_of(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
        jrwa_symbol: &str,
    ) -> Result<Option<WatchedCase>, StoreError>;

    async fn watched_case(
        &self,
        tenant: &Teryt,
        ezd_case_id: &str,
    ) -> Result<Option<WatchedCase>, StoreError>;

    /// Open watched cases of a tenant, never-polled first then least recently polled, at most
    /// `limit`.
    async fn cases_to_poll(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<WatchedCase>, StoreError>;

    /// Records a status change only when `seq` is the stored seq + 1 (a replay or a stale
    /// writer changes nothing); returns whether it applied (`false` for an unknown case too).
    /// `case_ref` updates the znak (a re-registered case gets a new one).
    async fn record_status(
        &self,
        tenant: &Teryt,
        ezd_case_id: &str,
        case_ref: &CaseRef,
        status: CaseStatus,
        seq: u32,
        open: bool,
    ) -> Result<bool, StoreError>;

    /// Notes when the case was last asked about (an unknown case is ignored).
    async fn mark_polled(
        &self,
        tenant: &Teryt,
        ezd_case_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The SHA-256 recorded for a decision raised from an outgoing document, if any.
    async fn decision_sha(
        &self,
        tenant: &Teryt,
        decision_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Remembers a raised decision (insert if absent; an existing row is kept as it is).
    async fn record_decision(
        &self,
        tenant: &Teryt,
        decision_id: &str,
        ezd_case_id: &str,
        sha256: &str,
    ) -> Result<(), StoreError>;
}
