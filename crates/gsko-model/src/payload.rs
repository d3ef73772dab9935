//! Payloads of the normalized messages. Field names are the JSON names (snake_case); every
//! payload names its record by the source system's own key, so a newer version of the same
//! record replaces the older one wherever it is applied.

use crate::{Amount, Nip, Nrb, Pesel, Regon};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxpayerKind {
    /// osoba fizyczna
    Natural,
    /// osoba prawna
    Legal,
    /// jednostka organizacyjna bez osobowości prawnej
    OrgUnit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// TERYT SIMC id of the locality, when the source knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simc: Option<String>,
    #[serde(default = "default_country")]
    pub country: String,
}

fn default_country() -> String {
    "PL".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Email,
    Phone,
    /// ePUAP box address, e.g. `/abc123/SkrytkaESP`
    EpuapBox,
    /// e-Doręczenia address, `AE:PL-XXXXX-XXXXX-YYYYY-ZZ`
    Ade,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactChannel {
    pub kind: ContactKind,
    pub value: String,
}

/// A person or organisation liable for local taxes (`pl.gsko.taxpayer.upserted.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxpayer {
    pub taxpayer_id: String,
    pub kind: TaxpayerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pesel: Option<Pesel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nip: Option<Nip>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regon: Option<Regon>,
    /// Given names and surname for a person, full name for an organisation.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactChannel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevyKind {
    /// podatek od nieruchomości
    Property,
    /// podatek rolny
    Agricultural,
    /// podatek leśny
    Forest,
    /// łączne zobowiązanie pieniężne
    Joint,
    /// podatek od środków transportowych
    Vehicle,
    /// opłata za gospodarowanie odpadami komunalnymi
    WasteFee,
    /// opłata od posiadania psów
    DogFee,
    /// dzierżawa, najem, użytkowanie wieczyste
    LeaseRent,
    Other,
}

impl LevyKind {
    pub const ALL: [LevyKind; 9] = [
        LevyKind::Property,
        LevyKind::Agricultural,
        LevyKind::Forest,
        LevyKind::Joint,
        LevyKind::Vehicle,
        LevyKind::WasteFee,
        LevyKind::DogFee,
        LevyKind::LeaseRent,
        LevyKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LevyKind::Property => "property",
            LevyKind::Agricultural => "agricultural",
            LevyKind::Forest => "forest",
            LevyKind::Joint => "joint",
            LevyKind::Vehicle => "vehicle",
            LevyKind::WasteFee => "waste_fee",
            LevyKind::DogFee => "dog_fee",
            LevyKind::LeaseRent => "lease_rent",
            LevyKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<LevyKind> {
        LevyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderRole {
    Owner,
    /// współwłaściciel, jointly liable
    CoOwner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountHolder {
    pub taxpayer_id: String,
    pub role: HolderRole,
}

/// A tax account (karta kontowa) for one levy, held by one or more jointly liable taxpayers
/// (`pl.gsko.tax-account.upserted.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxAccount {
    pub account_id: String,
    pub levy: LevyKind,
    pub holders: Vec<AccountHolder>,
    /// Per-taxpayer virtual bank account (rachunek wirtualny), if the municipality issues one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<Nrb>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Decision or payment-order number as printed on it.
    pub number: String,
    pub issued_on: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installment {
    /// 1-based installment number (rata).
    pub seq: u8,
    pub due_date: NaiveDate,
    pub amount: Amount,
}

/// An assessed liability with its installments (`pl.gsko.liability.upserted.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Liability {
    pub liability_id: String,
    pub account_id: String,
    pub levy: LevyKind,
    pub year: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub total: Amount,
    pub installments: Vec<Installment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostingKind {
    /// przypis
    Charge,
    /// odpis
    Reversal,
    /// wpłata
    Payment,
    /// zwrot
    Refund,
    /// przeksięgowanie
    Transfer,
    /// umorzenie
    WriteOff,
    /// odsetki
    Interest,
    /// koszty upomnienia
    ReminderCost,
    /// koszty egzekucyjne
    EnforcementCost,
}

impl PostingKind {
    pub const ALL: [PostingKind; 9] = [
        PostingKind::Charge,
        PostingKind::Reversal,
        PostingKind::Payment,
        PostingKind::Refund,
        PostingKind::Transfer,
        PostingKind::WriteOff,
        PostingKind::Interest,
        PostingKind::ReminderCost,
        PostingKind::EnforcementCost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PostingKind::Charge => "charge",
            PostingKind::Reversal => "reversal",
            PostingKind::Payment => "payment",
            PostingKind::Refund => "refund",
            PostingKind::Transfer => "transfer",
            PostingKind::WriteOff => "write_off",
            PostingKind::Interest => "interest",
            PostingKind::ReminderCost => "reminder_cost",
            PostingKind::EnforcementCost => "enforcement_cost",
        }
    }

    pub fn parse(s: &str) -> Option<PostingKind> {
        PostingKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of a tax account's ledger (`pl.gsko.posting.recorded.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerPosting {
    pub posting_id: String,
    pub account_id: String,
    pub kind: PostingKind,
    pub value_date: NaiveDate,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liability_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installment_seq: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What the ledger says an account owes or holds, as of a date (`pl.gsko.balance.reported.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    pub account_id: String,
    pub as_of: NaiveDate,
    /// należność główna still unpaid (due or not yet due)
    pub principal: Amount,
    /// odsetki za zwłokę as the ledger computed them
    pub interest: Amount,
    /// koszty upomnienia and enforcement costs
    pub costs: Amount,
    /// nadpłata
    pub overpayment: Amount,
}

/// A record an import could not accept (`pl.gsko.import.record-rejected.v1`). Kept for an admin
/// with where it was and why; the raw record travels along so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedRecord {
    /// File name of the export as received.
    pub file: String,
    /// SHA-256 of the whole file, hex.
    pub file_sha256: String,
    /// 1-based line where the record starts.
    pub line: u64,
    /// The record's element or CSV record type, e.g. "taxpayer".
    pub record_type: String,
    /// The record's own id, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// Field (attribute, element or column) at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
    /// The record's source text (may hold personal data: stored, never logged).
    pub raw: String,
}

/// An export file was fully read and all its events confirmed (`pl.gsko.import.completed.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportCompleted {
    pub file: String,
    pub file_sha256: String,
    /// "full" or "incremental"
    pub export_kind: String,
    pub records_accepted: u64,
    pub records_rejected: u64,
}
