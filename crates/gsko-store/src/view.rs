//! Read-side shapes of the consolidated view, serialized as the query service's JSON.

use gsko_model::{
    Amount, Balance, LedgerPosting, Liability, Payment, PaymentBooked, TaxAccount, Taxpayer,
};
use serde::Serialize;

/// One resident in one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResidentView {
    pub tenant: String,
    /// The resident's own taxpayer records in this tenant (usually one).
    pub taxpayers: Vec<Taxpayer>,
    pub accounts: Vec<AccountView>,
    /// Payments GSKO saw settle for any of these accounts, newest `paid_on` first (then by
    /// payment id), with how far the ledger has booked them.
    pub payments: Vec<PaymentView>,
}

/// Whether the ledger has booked a settled payment yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// The money is in; the ledger's export does not show it yet.
    Received,
    /// The ledger booked part of it (e.g. one of two items).
    PartiallyBooked,
    /// The ledger's postings naming this payment add up to its amount.
    Booked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    pub payment: Payment,
    pub status: BookingStatus,
    pub booked_amount: Amount,
    /// The ledger's postings that name this payment, oldest first.
    pub bookings: Vec<PaymentBooked>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub account: TaxAccount,
    /// Names of the co-holders (first names and surnames only, no identifiers), for a
    /// co-owner to recognise the shared account.
    pub holder_names: Vec<String>,
    pub liabilities: Vec<Liability>,
    /// Oldest first.
    pub postings: Vec<LedgerPosting>,
    pub balance: Option<Balance>,
}
