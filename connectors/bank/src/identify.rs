//! Who paid: turning a statement entry into a taxpayer's account, a gateway payout, or a case
//! for a human (spec §4.2, §4.5).
//!
//! Order of evidence, strongest first:
//! 1. the municipality's per-taxpayer **virtual account** the money came in on (the bank
//!    computed its check digits, so a valid mod-97 NRB the directory knows is unambiguous);
//! 2. a **gateway payout** (Przelewy24, PayU): one credit settling many individual payments
//!    that were booked from the gateway's own notifications, matched to its batch by reference;
//! 3. a tax-account or decision number in the **title**, by configurable patterns, because
//!    titles are free text that payers type themselves;
//! 4. otherwise **unidentified**, with the reason, for manual booking.
//!
//! The spec gives no payout titles or counterparty names for the gateways and no statutory
//! title format for local taxes (§5), so all patterns here are configuration with documented
//! defaults.

use crate::layout86::COUNTERPARTY_ACCOUNT_FIELDS;
use crate::mt940::Transaction;
use gsko_model::{Nrb, Teryt};
use regex::Regex;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// Check digits for a 24-digit Polish BBAN: `98 − (BBAN ‖ "PL00" as digits) mod 97`.
/// Needed where a bank gives only the sort code and account, or only a payer id.
pub fn nrb_from_bban(bban: &str) -> Option<String> {
    if bban.len() != 24 || !bban.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rem = bban
        .bytes()
        .chain(*b"252100")
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    Some(format!("{:02}{bban}", 98 - rem))
}

/// The check digit of the 8-digit settlement number inside an NRB (positions 3–10): weights
/// 3,9,7,1,3,9,7 over the first seven digits (spec §4.1). `gsko-model`'s `Nrb` checks only
/// mod-97, which a mistyped sort code can still pass.
pub fn sort_code_valid(nrb: &str) -> bool {
    const W: [u32; 7] = [3, 9, 7, 1, 3, 9, 7];
    let Some(sort) = nrb.get(2..10) else {
        return false;
    };
    let d: Vec<u32> = sort.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 8 {
        return false;
    }
    let sum: u32 = d[..7].iter().zip(W).map(|(a, w)| a * w).sum();
    (10 - sum % 10) % 10 == d[7]
}

/// The account a payment is booked to: the tenant and RADIX's taxpayer-account key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AccountRef {
    pub tenant: Teryt,
    pub account_key: String,
}

/// A range of virtual accounts: the bank's sort code and the municipality's client code (the
/// 24-digit BBAN's first digits), followed by the payer id (spec §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualRange {
    /// Sort code (8 digits) + client code.
    pub bban_prefix: String,
}

/// Everything identification may look up: virtual accounts, ranges and title tokens.
#[derive(Debug, Clone, Default)]
pub struct VirtualAccountDirectory {
    accounts: HashMap<String, AccountRef>,
    ranges: Vec<VirtualRange>,
    title_tokens: HashMap<String, AccountRef>,
}

impl VirtualAccountDirectory {
    pub fn new() -> Self {
        Self::default()
    }
    /// Registers a taxpayer's virtual account.
    pub fn insert(&mut self, nrb: &Nrb, account: AccountRef) {
        self.accounts.insert(nrb.as_str().to_owned(), account);
    }
    /// Registers a virtual-account range, so a payer id (mBank `ID IPH`) can be turned into the
    /// full NRB, and a virtual account of ours that the directory lacks is reported as such.
    pub fn add_range(&mut self, range: VirtualRange) {
        self.ranges.push(range);
    }
    /// Registers a tax-account or decision number that titles may quote.
    pub fn insert_title_token(&mut self, token: &str, account: AccountRef) {
        self.title_tokens.insert(normalize_token(token), account);
    }
    pub fn get(&self, nrb: &str) -> Option<&AccountRef> {
        self.accounts.get(nrb)
    }
    fn in_our_range(&self, nrb: &str) -> bool {
        self.ranges
            .iter()
            .any(|r| nrb.get(2..).is_some_and(|b| b.starts_with(&r.bban_prefix)))
    }
    pub fn len(&self) -> usize {
        self.accounts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

fn normalize_token(t: &str) -> String {
    t.trim().to_uppercase()
}

/// Payment gateways whose payouts arrive on the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Gateway {
    Przelewy24,
    PayU,
}

/// Recognises one gateway's payouts: the counterparty name and a title holding the payout
/// (batch) reference in the named group `reference`.
#[derive(Debug, Clone)]
pub struct GatewayRule {
    pub gateway: Gateway,
    pub counterparty: Regex,
    pub title: Regex,
}

/// Finds a tax-account or decision number in a title: the named group `token`.
#[derive(Debug, Clone)]
pub struct TitleRule {
    pub name: String,
    pub pattern: Regex,
}

/// Configuration of identification.
#[derive(Debug, Clone)]
pub struct IdentifyRules {
    pub gateways: Vec<GatewayRule>,
    pub titles: Vec<TitleRule>,
}

/// A rule's regular expression did not compile or lacks its named group.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("pattern {pattern:?}: {source}")]
    Regex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("pattern {pattern:?} has no named group {group:?}")]
    MissingGroup {
        pattern: String,
        group: &'static str,
    },
}

fn compile(pattern: &str, group: Option<&'static str>) -> Result<Regex, RuleError> {
    let re = Regex::new(pattern).map_err(|source| RuleError::Regex {
        pattern: pattern.to_owned(),
        source,
    })?;
    if let Some(group) = group {
        if !re.capture_names().any(|n| n == Some(group)) {
            return Err(RuleError::MissingGroup {
                pattern: pattern.to_owned(),
                group,
            });
        }
    }
    Ok(re)
}

impl GatewayRule {
    pub fn new(gateway: Gateway, counterparty: &str, title: &str) -> Result<Self, RuleError> {
        Ok(GatewayRule {
            gateway,
            counterparty: compile(counterparty, None)?,
            title: compile(title, Some("reference"))?,
        })
    }
}

impl TitleRule {
    pub fn new(name: &str, pattern: &str) -> Result<Self, RuleError> {
        Ok(TitleRule {
            name: name.to_owned(),
            pattern: compile(pattern, Some("token"))?,
        })
    }
}

/// Default payout patterns. Przelewy24 is operated by PayPro S.A. and pays out in numbered
/// batches (`batchId`, spec §1.8); PayU S.A. pays out per report. Neither title format is
/// documented (spec §6): these match "… batch/paczka/wypłata (nr) REFERENCE" and are meant
/// to be overridden per bank once real statements are seen.
pub const P24_COUNTERPARTY: &str = r"(?i)\b(PAYPRO|PRZELEWY\s*24|P24)\b";
pub const P24_TITLE: &str =
    r"(?i)(?:batch|paczka|wyp[lł]ata)\W{0,3}(?:nr\W{0,3})?(?P<reference>\d{4,})";
pub const PAYU_COUNTERPARTY: &str = r"(?i)\bPAYU\b";
pub const PAYU_TITLE: &str =
    r"(?i)(?:payout|wyp[lł]ata|raport)\W{0,3}(?:nr\W{0,3})?(?P<reference>[A-Z0-9][A-Z0-9-]{5,})";
/// Default title patterns: "konto podatnika (nr) K0001234" and "decyzja (nr) FN.3120.1.2025"
/// (a znak sprawy per JRWA).
pub const TAX_ACCOUNT_TITLE: &str =
    r"(?i)\bkont(?:o|a)\s+podatnika\W{0,3}(?:nr\W{0,3})?(?P<token>[A-Z]{0,3}\d{4,12})\b";
pub const DECISION_TITLE: &str =
    r"(?i)\bdecyzj[aię]\W{0,3}(?:nr\W{0,3})?(?P<token>[A-Z]{2,4}\.\d{4}\.\d{1,6}\.\d{4})";

impl Default for IdentifyRules {
    fn default() -> Self {
        // The defaults are constants checked by the unit tests, so compiling them cannot fail.
        let rules = || -> Result<IdentifyRules, RuleError> {
            Ok(IdentifyRules {
                gateways: vec![
                    GatewayRule::new(Gateway::Przelewy24, P24_COUNTERPARTY, P24_TITLE)?,
                    GatewayRule::new(Gateway::PayU, PAYU_COUNTERPARTY, PAYU_TITLE)?,
                ],
                titles: vec![
                    TitleRule::new("tax-account", TAX_ACCOUNT_TITLE)?,
                    TitleRule::new("decision", DECISION_TITLE)?,
                ],
            })
        };
        rules().unwrap_or(IdentifyRules {
            gateways: Vec::new(),
            titles: Vec::new(),
        })
    }
}

/// Why an entry could not be attributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum UnidentifiedReason {
    /// Money going out (or a reversed credit): not a payment to book.
    NotACredit,
    /// Paid to a virtual account in our range that the directory does not know.
    UnknownVirtualAccount { nrb: String },
    /// A title rule matched, but the token names no known account.
    UnknownTitleToken { rule: String, token: String },
    /// Nothing to go on.
    NoEvidence,
}

impl fmt::Display for UnidentifiedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnidentifiedReason::NotACredit => write!(f, "not a credit"),
            UnidentifiedReason::UnknownVirtualAccount { .. } => {
                write!(f, "virtual account in our range but not in the directory")
            }
            UnidentifiedReason::UnknownTitleToken { rule, .. } => {
                write!(f, "title matched rule {rule} but names no known account")
            }
            UnidentifiedReason::NoEvidence => {
                write!(f, "no virtual account, gateway or title pattern")
            }
        }
    }
}

/// The result of identification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Identification {
    ByVirtualAccount {
        nrb: Nrb,
        account: AccountRef,
    },
    ByTitle {
        rule: String,
        token: String,
        account: AccountRef,
    },
    GatewayPayout {
        gateway: Gateway,
        reference: String,
    },
    Unidentified {
        reason: UnidentifiedReason,
    },
}

/// [`identify_with`] with the default rules (compiled once per process: compiling regular
/// expressions costs far more than matching them).
pub fn identify(tx: &Transaction, dir: &VirtualAccountDirectory) -> Identification {
    static DEFAULT: std::sync::OnceLock<IdentifyRules> = std::sync::OnceLock::new();
    identify_with(tx, dir, DEFAULT.get_or_init(IdentifyRules::default))
}

/// Every 26-digit run (optionally `PL`-prefixed, spaces allowed between groups of four is not
/// needed: banks print NRBs compactly in MT940) in a text.
fn nrb_candidates(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 26)
}

/// Attributes one entry.
pub fn identify_with(
    tx: &Transaction,
    dir: &VirtualAccountDirectory,
    rules: &IdentifyRules,
) -> Identification {
    if !tx.mark.is_inflow() {
        return Identification::Unidentified {
            reason: UnidentifiedReason::NotACredit,
        };
    }
    let details = tx.details.as_ref();
    let counterparty_account = details.and_then(|d| d.counterparty_account.as_deref());

    // 1. Virtual account: where the layout says, from a payer id, or any NRB in a
    //    non-counterparty subfield.
    let mut candidates: Vec<String> = Vec::new();
    if let Some(d) = details {
        candidates.extend(d.virtual_account.clone());
        if let Some(pid) = &d.payer_id {
            for r in &dir.ranges {
                let width = 24usize.saturating_sub(r.bban_prefix.len());
                if pid.len() <= width {
                    let bban = format!("{}{pid:0>width$}", r.bban_prefix);
                    candidates.extend(nrb_from_bban(&bban));
                }
            }
        }
        for (code, text) in &d.subfields {
            if COUNTERPARTY_ACCOUNT_FIELDS.contains(&code.as_str())
                || code == "Z RACH."
                || code == "NA RACH."
            {
                continue;
            }
            candidates.extend(nrb_candidates(text).map(str::to_owned));
        }
    } else if let Some(raw) = &tx.details_raw {
        candidates.extend(nrb_candidates(raw).map(str::to_owned));
    }
    let mut unknown_virtual = None;
    for c in candidates {
        if Some(c.as_str()) == counterparty_account {
            continue;
        }
        // Both checks of §4.1: mod-97 over the whole number and the sort code's own digit.
        let Ok(nrb) = Nrb::parse(&c) else {
            continue;
        };
        if !sort_code_valid(nrb.as_str()) {
            continue;
        }
        if let Some(account) = dir.get(nrb.as_str()) {
            return Identification::ByVirtualAccount {
                account: account.clone(),
                nrb,
            };
        }
        if dir.in_our_range(nrb.as_str()) && unknown_virtual.is_none() {
            unknown_virtual = Some(nrb.as_str().to_owned());
        }
    }

    let title = details.map(|d| d.title.as_str()).unwrap_or_default();
    let title = if title.is_empty() {
        tx.details_raw.as_deref().unwrap_or_default()
    } else {
        title
    };

    // 2. Gateway payout.
    let counterparty = details
        .and_then(|d| d.counterparty_name.as_deref())
        .unwrap_or_default();
    for g in &rules.gateways {
        if g.counterparty.is_match(counterparty) {
            if let Some(c) = g.title.captures(title) {
                if let Some(r) = c.name("reference") {
                    return Identification::GatewayPayout {
                        gateway: g.gateway,
                        reference: r.as_str().to_owned(),
                    };
                }
            }
        }
    }

    // 3. Title.
    let mut unknown_token = None;
    for rule in &rules.titles {
        for c in rule.pattern.captures_iter(title) {
            let Some(token) = c.name("token") else {
                continue;
            };
            let token = normalize_token(token.as_str());
            if let Some(account) = dir.title_tokens.get(&token) {
                return Identification::ByTitle {
                    rule: rule.name.clone(),
                    token,
                    account: account.clone(),
                };
            }
            unknown_token.get_or_insert((rule.name.clone(), token));
        }
    }

    let reason = match (unknown_virtual, unknown_token) {
        (Some(nrb), _) => UnidentifiedReason::UnknownVirtualAccount { nrb },
        (None, Some((rule, token))) => UnidentifiedReason::UnknownTitleToken { rule, token },
        (None, None) => UnidentifiedReason::NoEvidence,
    };
    Identification::Unidentified { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_virtual_account_vector() {
        assert_eq!(
            nrb_from_bban("102029641234000000012345").as_deref(),
            Some("66102029641234000000012345")
        );
        assert_eq!(
            nrb_from_bban("109010140000071219812874").as_deref(),
            Some("61109010140000071219812874")
        );
    }

    #[test]
    fn sort_code_digit() {
        for nrb in [
            "29114010810000267002001002",
            "61109010140000071219812874",
            "12124012551111000015237873",
            "54194010765205871800000000",
        ] {
            assert!(sort_code_valid(nrb), "{nrb}");
        }
        assert!(!sort_code_valid("29114010820000267002001002"));
    }

    #[test]
    fn default_rules_compile() {
        let r = IdentifyRules::default();
        assert_eq!(r.gateways.len(), 2);
        assert_eq!(r.titles.len(), 2);
        let c = r.titles[1]
            .pattern
            .captures("Podatek rolny, decyzja nr FN.3120.15.2026 rata 1")
            .unwrap();
        assert_eq!(&c["token"], "FN.3120.15.2026");
        let c = r.gateways[0]
            .title
            .captures("Przelewy24 wyplata batch 123456789")
            .unwrap();
        assert_eq!(&c["reference"], "123456789");
    }
}
