//! Letters residents file through GSKO: the filing service's own records (one row per filing),
//! beside the view in the same database.
//!
//! A filing is stored (`created`) before the PZ signing service is called, under the portal's
//! idempotency key, so a retried request never files twice. Every later change is a
//! compare-and-set from the states it may leave ([`FilingStore::update_filing`]): two browser
//! callbacks racing submit the letter once, and a letter that may have reached ePUAP
//! (`submitting`, `uncertain`) is never submitted again. Messages for the bus (`letter.received`
//! and `letter.register` when the letter goes straight to EZD) are queued in the outbox in the
//! same transaction as the state that sends them.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gsko_model::{Event, Teryt};
use serde::{Deserialize, Serialize};

/// Where a filing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingStatus {
    /// Stored; the signing service has not (knowingly) taken the document yet.
    Created,
    /// PZ holds the document; the resident is sent to `sign_url`.
    AwaitingSignature,
    /// Signed, verified and stored; not submitted yet (or a submission certainly failed and
    /// may be tried again).
    Signed,
    /// Being submitted to ePUAP. A filing left here by a crash may have reached ePUAP: like
    /// `uncertain`, it is never submitted again automatically.
    Submitting,
    /// In the office's box (with a UPP) or handed to EZD.
    Submitted,
    /// The resident cancelled at PZ.
    Cancelled,
    /// Refused for good: signed by someone else, the document changed, ePUAP refused it.
    Failed,
    /// ePUAP may or may not have taken it (the answer was lost); for an admin.
    Uncertain,
}

impl FilingStatus {
    pub const ALL: [FilingStatus; 8] = [
        FilingStatus::Created,
        FilingStatus::AwaitingSignature,
        FilingStatus::Signed,
        FilingStatus::Submitting,
        FilingStatus::Submitted,
        FilingStatus::Cancelled,
        FilingStatus::Failed,
        FilingStatus::Uncertain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FilingStatus::Created => "created",
            FilingStatus::AwaitingSignature => "awaiting_signature",
            FilingStatus::Signed => "signed",
            FilingStatus::Submitting => "submitting",
            FilingStatus::Submitted => "submitted",
            FilingStatus::Cancelled => "cancelled",
            FilingStatus::Failed => "failed",
            FilingStatus::Uncertain => "uncertain",
        }
    }

    pub fn parse(s: &str) -> Option<FilingStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Submitted, cancelled, failed and uncertain filings never change again by themselves.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            FilingStatus::Submitted
                | FilingStatus::Cancelled
                | FilingStatus::Failed
                | FilingStatus::Uncertain
        )
    }
}

/// Where the signed letter goes (the tenant's `epuap.filing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingRoute {
    Epuap,
    Ezd,
}

impl FilingRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            FilingRoute::Epuap => "epuap",
            FilingRoute::Ezd => "ezd",
        }
    }

    pub fn parse(s: &str) -> Option<FilingRoute> {
        match s {
            "epuap" => Some(FilingRoute::Epuap),
            "ezd" => Some(FilingRoute::Ezd),
            _ => None,
        }
    }
}

/// A filing as the service wants it stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFiling {
    pub tenant: Teryt,
    /// Unguessable (the browser callbacks carry no other credential).
    pub filing_id: String,
    /// The portal's name from configuration; idempotency keys are per client.
    pub client: String,
    pub idempotency_key: String,
    /// SHA-256 (hex) of the canonical request; the same key with another request is refused.
    pub request_hash: String,
    /// Keyed hash of the filer's PESEL, never the PESEL itself.
    pub resident_ref: String,
    pub route: FilingRoute,
    pub title: String,
    pub return_url: String,
    /// SHA-256 of the document handed to PZ (kept in the file store).
    pub unsigned_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilingRecord {
    pub tenant: Teryt,
    pub filing_id: String,
    pub client: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub resident_ref: String,
    pub route: FilingRoute,
    pub title: String,
    pub return_url: String,
    pub status: FilingStatus,
    pub unsigned_sha256: String,
    pub sign_url: Option<String>,
    pub signed_sha256: Option<String>,
    pub upp_sha256: Option<String>,
    pub upp_id: Option<String>,
    pub epuap_document_id: Option<String>,
    pub letter_id: Option<String>,
    /// Why the filing is where it is (a refusal, a failed call), without personal data.
    pub status_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`FilingStore::create_filing`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilingOutcome {
    /// Stored now, `created`.
    Created(FilingRecord),
    /// The same client already sent this key with the same request: that filing as it stands.
    Existing(FilingRecord),
    /// The same client already sent this key with a different request.
    KeyReused { filing_id: String },
}

/// A state change: the new status, and the fields it sets (`None` leaves a field as it is;
/// `status_detail` is always replaced, `None` clearing it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingUpdate {
    pub status: FilingStatus,
    pub sign_url: Option<String>,
    pub signed_sha256: Option<String>,
    pub upp_sha256: Option<String>,
    pub upp_id: Option<String>,
    pub epuap_document_id: Option<String>,
    pub letter_id: Option<String>,
    pub status_detail: Option<String>,
}

impl FilingUpdate {
    /// Only the status (and no detail).
    pub fn to(status: FilingStatus) -> Self {
        FilingUpdate {
            status,
            sign_url: None,
            signed_sha256: None,
            upp_sha256: None,
            upp_id: None,
            epuap_document_id: None,
            letter_id: None,
            status_detail: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.status_detail = Some(detail.into());
        self
    }
}

#[async_trait]
pub trait FilingStore: Send + Sync {
    /// Stores a filing (`created`) unless the client already used the idempotency key in this
    /// tenant (then nothing is written).
    async fn create_filing(&self, filing: &NewFiling) -> Result<FilingOutcome, StoreError>;

    async fn filing(
        &self,
        tenant: &Teryt,
        filing_id: &str,
    ) -> Result<Option<FilingRecord>, StoreError>;

    /// Applies `update` if the filing is in one of `from`, and queues `outbox` in the same
    /// transaction. Returns the filing as it now stands when it moved, `None` (writing
    /// nothing) when it is unknown or in another state.
    async fn update_filing(
        &self,
        tenant: &Teryt,
        filing_id: &str,
        from: &[FilingStatus],
        update: &FilingUpdate,
        outbox: &[Event],
    ) -> Result<Option<FilingRecord>, StoreError>;

    /// Filings in a status (e.g. `uncertain`, for an admin), oldest change first.
    async fn filings_in(
        &self,
        tenant: &Teryt,
        status: FilingStatus,
        limit: u32,
    ) -> Result<Vec<FilingRecord>, StoreError>;
}
