//! Response bodies. All amounts are integer grosze (1/100 PLN), as everywhere in GSKO.

use chrono::NaiveDate;
use gsko_model::{Amount, Balance, HolderRole, LedgerPosting, LevyKind, Liability, TaxpayerKind};
use gsko_store::{ImportRow, RejectedRecordRow, ResidentView};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct AllSummaries {
    pub tenants: Vec<Summary>,
}

#[derive(Debug, Serialize)]
pub struct TaxpayerRef {
    pub taxpayer_id: String,
    pub kind: TaxpayerKind,
    pub name: String,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Figures {
    pub principal: i64,
    pub interest: i64,
    pub costs: i64,
    pub overpayment: i64,
}

impl Figures {
    fn add(&mut self, b: &Balance) {
        self.principal += b.principal.grosze();
        self.interest += b.interest.grosze();
        self.costs += b.costs.grosze();
        self.overpayment += b.overpayment.grosze();
    }
}

#[derive(Debug, Serialize)]
pub struct AccountSummary {
    pub account_id: String,
    pub levy: LevyKind,
    /// The resident's role on this account: `owner` or `co_owner`.
    pub role: HolderRole,
    /// Names of everyone liable on the account (jointly liable co-owners included).
    pub holders: Vec<String>,
    /// Bank account to pay this levy to (the taxpayer's virtual account), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<String>,
    /// What the ledger reported, as of `balance.as_of`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<Balance>,
}

#[derive(Debug, Serialize)]
pub struct NextInstallment {
    pub liability_id: String,
    pub account_id: String,
    pub levy: LevyKind,
    pub seq: u8,
    pub due_date: NaiveDate,
    pub amount: Amount,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub tenant: String,
    pub tenant_name: String,
    pub taxpayers: Vec<TaxpayerRef>,
    pub accounts: Vec<AccountSummary>,
    /// Sum of the ledger balances of all the resident's accounts in this tenant.
    pub totals: Figures,
    /// The earliest installment due today or later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_installment: Option<NextInstallment>,
}

impl Summary {
    pub fn of(v: &ResidentView, tenant_name: &str, today: NaiveDate) -> Summary {
        let own: Vec<&str> = v.taxpayers.iter().map(|t| t.taxpayer_id.as_str()).collect();
        let mut totals = Figures::default();
        let mut next: Option<NextInstallment> = None;
        let accounts = v
            .accounts
            .iter()
            .map(|a| {
                if let Some(b) = &a.balance {
                    totals.add(b);
                }
                for l in &a.liabilities {
                    for i in l.installments.iter().filter(|i| i.due_date >= today) {
                        if next.as_ref().is_none_or(|n| i.due_date < n.due_date) {
                            next = Some(NextInstallment {
                                liability_id: l.liability_id.clone(),
                                account_id: l.account_id.clone(),
                                levy: l.levy,
                                seq: i.seq,
                                due_date: i.due_date,
                                amount: i.amount,
                            });
                        }
                    }
                }
                let role = a
                    .account
                    .holders
                    .iter()
                    .find(|h| own.contains(&h.taxpayer_id.as_str()))
                    .map_or(HolderRole::Owner, |h| h.role);
                AccountSummary {
                    account_id: a.account.account_id.clone(),
                    levy: a.account.levy,
                    role,
                    holders: a.holder_names.clone(),
                    virtual_account: a.account.virtual_account.as_ref().map(|n| n.to_string()),
                    balance: a.balance.clone(),
                }
            })
            .collect();
        Summary {
            tenant: v.tenant.clone(),
            tenant_name: tenant_name.to_owned(),
            taxpayers: v
                .taxpayers
                .iter()
                .map(|t| TaxpayerRef {
                    taxpayer_id: t.taxpayer_id.clone(),
                    kind: t.kind,
                    name: t.name.clone(),
                })
                .collect(),
            accounts,
            totals,
            next_installment: next,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Liabilities {
    pub tenant: String,
    pub liabilities: Vec<Liability>,
}

impl Liabilities {
    pub fn of(v: &ResidentView) -> Self {
        Liabilities {
            tenant: v.tenant.clone(),
            liabilities: v
                .accounts
                .iter()
                .flat_map(|a| a.liabilities.iter().cloned())
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Balances {
    pub tenant: String,
    pub balances: Vec<Balance>,
    pub totals: Figures,
}

impl Balances {
    pub fn of(v: &ResidentView) -> Self {
        let balances: Vec<Balance> = v
            .accounts
            .iter()
            .filter_map(|a| a.balance.clone())
            .collect();
        let mut totals = Figures::default();
        balances.iter().for_each(|b| totals.add(b));
        Balances {
            tenant: v.tenant.clone(),
            balances,
            totals,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AccountLedger {
    pub account_id: String,
    pub levy: LevyKind,
    pub postings: Vec<LedgerPosting>,
}

#[derive(Debug, Serialize)]
pub struct Ledger {
    pub tenant: String,
    pub accounts: Vec<AccountLedger>,
}

impl Ledger {
    pub fn of(v: &ResidentView) -> Self {
        Ledger {
            tenant: v.tenant.clone(),
            accounts: v
                .accounts
                .iter()
                .map(|a| AccountLedger {
                    account_id: a.account.account_id.clone(),
                    levy: a.account.levy,
                    postings: a.postings.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RejectedRecords {
    pub tenant: String,
    pub records: Vec<RejectedRecordRow>,
}

#[derive(Debug, Serialize)]
pub struct Imports {
    pub tenant: String,
    pub imports: Vec<ImportRow>,
}
