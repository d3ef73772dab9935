//! Assembly of the read side, shared by both backends: each backend fetches plain rows (ids and
//! JSON payload text), this module decodes and orders them. Ordering happens here rather than
//! in SQL so that both backends return byte-identical views whatever their text collation.

use crate::error::decode;
use crate::{AccountView, BookingStatus, PaymentView, ResidentView, StoreError};
use gsko_model::{
    Amount, Balance, LedgerPosting, Liability, Payment, PaymentBooked, TaxAccount, Taxpayer, Teryt,
};
use std::collections::HashMap;

/// The accounts a resident (all taxpayer records with their PESEL in the tenant) holds; binds
/// `$1` tenant and `$2` PESEL. Both backends read `$n` positionally.
pub(crate) const RESIDENT_ACCOUNTS: &str = "SELECT h.account_id FROM account_holders h
     JOIN taxpayers p ON p.tenant = h.tenant AND p.taxpayer_id = h.taxpayer_id
     WHERE p.tenant = $1 AND p.pesel = $2";

/// Payments with an item for one of the resident's accounts: (payment_id, payload).
pub(crate) fn resident_payments_sql() -> String {
    format!(
        "SELECT p.payment_id, CAST(p.payload AS TEXT) FROM payments p
         WHERE p.tenant = $1 AND p.payment_id IN ({})",
        resident_payment_ids()
    )
}

/// Bookings of those payments: (payment_id, posting_id, payload).
pub(crate) fn resident_bookings_sql() -> String {
    format!(
        "SELECT b.payment_id, b.posting_id, CAST(b.payload AS TEXT) FROM payment_bookings b
         WHERE b.tenant = $1 AND b.payment_id IN ({})",
        resident_payment_ids()
    )
}

fn resident_payment_ids() -> String {
    format!(
        "SELECT i.payment_id FROM payment_items i
         WHERE i.tenant = $1 AND i.account_id IN ({RESIDENT_ACCOUNTS})"
    )
}

/// Unmatched payments of a tenant, newest first: (payment_id, payload, received_at); binds
/// `$1` tenant and `$2` limit.
pub(crate) const UNMATCHED_SQL: &str =
    "SELECT payment_id, CAST(payload AS TEXT), received_at FROM unmatched_payments
     WHERE tenant = $1 ORDER BY received_at DESC, payment_id LIMIT $2";

/// Rows of one resident's view, as fetched. Every row but taxpayers and accounts carries its
/// account id first.
#[derive(Default)]
pub(crate) struct ViewRows {
    /// (taxpayer_id, payload)
    pub taxpayers: Vec<(String, String)>,
    /// (account_id, payload)
    pub accounts: Vec<(String, String)>,
    /// (taxpayer_id, name) of every holder of those accounts whose taxpayer record is known.
    pub holder_names: Vec<(String, String)>,
    /// (account_id, liability_id, payload)
    pub liabilities: Vec<(String, String, String)>,
    /// (account_id, posting_id, payload)
    pub postings: Vec<(String, String, String)>,
    /// (account_id, payload)
    pub balances: Vec<(String, String)>,
    /// (payment_id, payload) of the payments with an item for one of the accounts.
    pub payments: Vec<(String, String)>,
    /// (payment_id, posting_id, payload) of those payments' bookings.
    pub bookings: Vec<(String, String, String)>,
}

pub(crate) fn assemble(tenant: &Teryt, rows: ViewRows) -> Result<Option<ResidentView>, StoreError> {
    if rows.taxpayers.is_empty() {
        return Ok(None);
    }
    let mut taxpayers = rows
        .taxpayers
        .iter()
        .map(|(id, p)| decode::<Taxpayer>("taxpayers", id, p))
        .collect::<Result<Vec<_>, _>>()?;
    taxpayers.sort_by(|a, b| a.taxpayer_id.cmp(&b.taxpayer_id));

    let names: HashMap<&str, &str> = rows
        .holder_names
        .iter()
        .map(|(id, n)| (id.as_str(), n.as_str()))
        .collect();

    let mut liabilities: HashMap<&str, Vec<Liability>> = HashMap::new();
    for (account, id, p) in &rows.liabilities {
        liabilities
            .entry(account)
            .or_default()
            .push(decode("liabilities", id, p)?);
    }
    let mut postings: HashMap<&str, Vec<LedgerPosting>> = HashMap::new();
    for (account, id, p) in &rows.postings {
        postings
            .entry(account)
            .or_default()
            .push(decode("postings", id, p)?);
    }
    let mut balances: HashMap<&str, Balance> = HashMap::new();
    for (account, p) in &rows.balances {
        balances.insert(account, decode("balances", account, p)?);
    }

    let mut accounts = Vec::with_capacity(rows.accounts.len());
    for (id, p) in &rows.accounts {
        let account: TaxAccount = decode("accounts", id, p)?;
        // In the account's own order (the owner usually first); a holder whose taxpayer record
        // has not arrived yet has no name to show.
        let holder_names = account
            .holders
            .iter()
            .filter_map(|h| names.get(h.taxpayer_id.as_str()).map(|n| (*n).to_owned()))
            .collect();
        let mut liabilities = liabilities.remove(id.as_str()).unwrap_or_default();
        liabilities.sort_by(|a, b| (a.year, &a.liability_id).cmp(&(b.year, &b.liability_id)));
        let mut postings = postings.remove(id.as_str()).unwrap_or_default();
        postings.sort_by(|a, b| (a.value_date, &a.posting_id).cmp(&(b.value_date, &b.posting_id)));
        let balance = balances.remove(id.as_str());
        accounts.push(AccountView {
            account,
            holder_names,
            liabilities,
            postings,
            balance,
        });
    }
    accounts.sort_by(|a, b| a.account.account_id.cmp(&b.account.account_id));

    Ok(Some(ResidentView {
        tenant: tenant.to_string(),
        taxpayers,
        accounts,
        payments: payment_views(&rows.payments, &rows.bookings)?,
    }))
}

/// Payments newest `paid_on` first (then by id), each with its bookings oldest first and how
/// far they cover it.
fn payment_views(
    payments: &[(String, String)],
    bookings: &[(String, String, String)],
) -> Result<Vec<PaymentView>, StoreError> {
    let mut by_payment: HashMap<&str, Vec<PaymentBooked>> = HashMap::new();
    for (payment, posting, p) in bookings {
        by_payment.entry(payment).or_default().push(decode(
            "payment_bookings",
            &format!("{payment}/{posting}"),
            p,
        )?);
    }
    let mut views = Vec::with_capacity(payments.len());
    for (id, p) in payments {
        let payment: Payment = decode("payments", id, p)?;
        let mut bookings = by_payment.remove(id.as_str()).unwrap_or_default();
        bookings.sort_by(|a, b| (a.booked_on, &a.posting_id).cmp(&(b.booked_on, &b.posting_id)));
        let booked: i64 = bookings
            .iter()
            .fold(0i64, |sum, b| sum.saturating_add(b.amount.grosze()));
        let status = if bookings.is_empty() {
            BookingStatus::Received
        } else if booked >= payment.amount.grosze() {
            BookingStatus::Booked
        } else {
            BookingStatus::PartiallyBooked
        };
        let booked_amount = Amount::from_grosze(booked).map_err(|_| StoreError::Corrupt {
            table: "payment_bookings",
            key: id.clone(),
            reason: "booked amount out of range".to_owned(),
        })?;
        views.push(PaymentView {
            payment,
            status,
            booked_amount,
            bookings,
        });
    }
    views.sort_by(|a, b| {
        b.payment
            .paid_on
            .cmp(&a.payment.paid_on)
            .then_with(|| a.payment.payment_id.cmp(&b.payment.payment_id))
    });
    Ok(views)
}

/// Parses stored tenant codes, keeping only the allowed ones, sorted.
pub(crate) fn allowed_tenants(
    stored: Vec<String>,
    allowed: &[gsko_model::Teryt],
) -> Result<Vec<Teryt>, StoreError> {
    let mut out = Vec::new();
    for t in stored {
        let teryt = Teryt::parse(&t).map_err(|e| StoreError::Corrupt {
            table: "taxpayers",
            key: t.clone(),
            reason: e.to_string(),
        })?;
        if allowed.contains(&teryt) && !out.contains(&teryt) {
            out.push(teryt);
        }
    }
    out.sort();
    Ok(out)
}

/// Row counts of one tenant, one query on either backend (both read `$1` positionally).
pub(crate) const COUNTS_SQL: &str = "SELECT (SELECT count(*) FROM taxpayers WHERE tenant = $1),
        (SELECT count(*) FROM accounts WHERE tenant = $1),
        (SELECT count(*) FROM liabilities WHERE tenant = $1),
        (SELECT count(*) FROM postings WHERE tenant = $1),
        (SELECT count(*) FROM balances WHERE tenant = $1),
        (SELECT count(*) FROM rejected_records WHERE tenant = $1),
        (SELECT count(*) FROM payments WHERE tenant = $1),
        (SELECT count(*) FROM unmatched_payments WHERE tenant = $1)";

pub(crate) type CountsRow = (i64, i64, i64, i64, i64, i64, i64, i64);

pub(crate) fn counts(row: CountsRow) -> crate::TableCounts {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let (
        taxpayers,
        accounts,
        liabilities,
        postings,
        balances,
        rejected_records,
        payments,
        unmatched_payments,
    ) = row;
    crate::TableCounts {
        taxpayers: n(taxpayers),
        accounts: n(accounts),
        liabilities: n(liabilities),
        postings: n(postings),
        balances: n(balances),
        rejected_records: n(rejected_records),
        payments: n(payments),
        unmatched_payments: n(unmatched_payments),
    }
}
