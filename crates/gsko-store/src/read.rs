//! Assembly of the read side, shared by both backends: each backend fetches plain rows (ids and
//! JSON payload text), this module decodes and orders them. Ordering happens here rather than
//! in SQL so that both backends return byte-identical views whatever their text collation.

use crate::error::decode;
use crate::{AccountView, ResidentView, StoreError};
use gsko_model::{Balance, LedgerPosting, Liability, TaxAccount, Taxpayer, Teryt};
use std::collections::HashMap;

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
    }))
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
        (SELECT count(*) FROM rejected_records WHERE tenant = $1)";

pub(crate) type CountsRow = (i64, i64, i64, i64, i64, i64);

pub(crate) fn counts(row: CountsRow) -> crate::TableCounts {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let (taxpayers, accounts, liabilities, postings, balances, rejected_records) = row;
    crate::TableCounts {
        taxpayers: n(taxpayers),
        accounts: n(accounts),
        liabilities: n(liabilities),
        postings: n(postings),
        balances: n(balances),
        rejected_records: n(rejected_records),
    }
}
