//! The store keeps the consolidated resident view. Two backends (Postgres for production,
//! SQLite for the embedded mode) pass one contract test suite.
//!
//! `apply` is idempotent: a record (taxpayer, account, liability, posting, balance) is replaced
//! only by a higher `source_version` of itself, so duplicates, replays and reordering are
//! harmless. Records without versions (rejected records, imports, settled payments, their
//! bookings, unmatched payments) are facts: the first event of a key stays, later copies are
//! ignored. A `payment.book` command is not part of the view and writes nothing. Every table
//! carries the tenant (TERYT).
//!
//! Beside the view, [`PaymentStore`] keeps the payment service's own records (baskets, gateway
//! orders, settlements, the notification audit and the transactional outbox) in the same
//! database.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use gsko_model::{Event, Pesel, Teryt};
use serde::Serialize;

pub mod audit;
pub mod cases_view;
pub mod cases_work;
pub mod delivery;
mod delivery_sql;
mod error;
pub mod filing;
mod filing_sql;
pub mod letters;
pub mod login;
mod payment_sql;
pub mod payments;
mod plan;
pub mod postgres;
mod read;
pub mod sqlite;
pub mod view;

pub use audit::*;
pub use cases_view::{CaseLetter, CaseView, TimelineEntry};
pub use cases_work::*;
pub use delivery::{Claimed, DeliveryRecord, DeliveryState, DeliveryStore};
pub use filing::{
    FilingOutcome, FilingRecord, FilingRoute, FilingStatus, FilingStore, FilingUpdate, NewFiling,
};
pub use letters::{LetterState, LetterView};
pub use login::{LoginStore, PendingLogin, SessionRecord};
pub use payments::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use view::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored row is corrupt ({table}, {key}): {reason}")]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },
}

impl StoreError {
    /// Whether trying again later may succeed (lost connection, pool timeout, serialization
    /// conflict) or not.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// What one `apply` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Records inserted or replaced by a newer version.
    pub applied: u64,
    /// Events that changed nothing (same or older version already stored).
    pub ignored: u64,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Applies a batch of events in one transaction; all or nothing.
    async fn apply(&self, events: &[Event]) -> Result<ApplyOutcome, StoreError>;

    /// Tenants (among `allowed`) where a taxpayer with this PESEL is known.
    async fn resident_tenants(
        &self,
        pesel: &Pesel,
        allowed: &[Teryt],
    ) -> Result<Vec<Teryt>, StoreError>;

    /// Everything the view holds for one resident in one tenant: their own taxpayer records, and
    /// every account they hold alone or as a co-owner with its liabilities, ledger and balance.
    /// `None` when the tenant knows no taxpayer with this PESEL.
    async fn resident_view(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Option<ResidentView>, StoreError>;

    /// Records an import rejected, newest first, for an admin.
    async fn rejected_records(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<RejectedRecordRow>, StoreError>;

    /// Imports that completed, newest first.
    async fn imports(&self, tenant: &Teryt, limit: u32) -> Result<Vec<ImportRow>, StoreError>;

    /// Payments kept for an admin instead of being booked, newest first.
    async fn unmatched_payments(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<UnmatchedPaymentRow>, StoreError>;

    /// Letters this resident signed (the PESEL their signature names), newest first, each with
    /// the decision that answered it.
    async fn resident_letters(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<LetterView>, StoreError>;

    /// How the deliveries of decisions to this resident ended, newest first.
    async fn resident_decisions(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<gsko_model::DecisionDelivered>, StoreError>;

    /// The cases this resident's letters went to (the letters their signature names), newest
    /// registration first, each with its status, timeline, letters and decisions.
    async fn resident_cases(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<CaseView>, StoreError>;

    /// One of [`Store::resident_cases`] by its znak sprawy (the one it has now, or one it had
    /// before a re-registration). `None` both when the tenant knows no such case and when it is
    /// not this resident's, so that a caller cannot tell the two apart.
    async fn resident_case(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
        case_ref: &gsko_model::CaseRef,
    ) -> Result<Option<CaseView>, StoreError>;

    /// Letters for an admin, newest first; with `flagged_only`, those with any problem
    /// (unsigned, signature not valid, a mismatch, an unreadable part).
    async fn letters(
        &self,
        tenant: &Teryt,
        flagged_only: bool,
        limit: u32,
    ) -> Result<Vec<gsko_model::Letter>, StoreError>;

    /// Cheap liveness probe of the database (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Row counts per table for one tenant (tests and benchmarks compare views with it).
    async fn counts(&self, tenant: &Teryt) -> Result<TableCounts, StoreError>;
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TableCounts {
    pub taxpayers: u64,
    pub accounts: u64,
    pub liabilities: u64,
    pub postings: u64,
    pub balances: u64,
    pub rejected_records: u64,
    pub payments: u64,
    pub unmatched_payments: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRecordRow {
    pub received_at: DateTime<Utc>,
    pub record: gsko_model::RejectedRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnmatchedPaymentRow {
    pub received_at: DateTime<Utc>,
    pub payment: gsko_model::UnmatchedPayment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRow {
    pub completed_at: DateTime<Utc>,
    pub import: gsko_model::ImportCompleted,
}

#[allow(dead_code)]
fn _uses(_: NaiveDate) {}
