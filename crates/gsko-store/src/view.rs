//! Read-side shapes of the consolidated view, serialized as the query service's JSON.

use gsko_model::{Balance, LedgerPosting, Liability, TaxAccount, Taxpayer};
use serde::Serialize;

/// One resident in one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResidentView {
    pub tenant: String,
    /// The resident's own taxpayer records in this tenant (usually one).
    pub taxpayers: Vec<Taxpayer>,
    pub accounts: Vec<AccountView>,
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
