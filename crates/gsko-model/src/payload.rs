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

/// How a payment reached the municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentChannel {
    Przelewy24,
    Payu,
    /// A transfer seen on the municipality's bank statement (usually to a virtual account).
    BankTransfer,
}

impl PaymentChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentChannel::Przelewy24 => "przelewy24",
            PaymentChannel::Payu => "payu",
            PaymentChannel::BankTransfer => "bank_transfer",
        }
    }
}

/// What part of a payment goes to which tax account, and (when the resident chose it) to which
/// liability and installment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentItem {
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liability_id: Option<String>,
    /// Only together with `liability_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installment_seq: Option<u8>,
    pub amount: Amount,
}

/// A payment that reached the municipality: the body of both `pl.gsko.payment.settled.v1`
/// (the event: money is in) and `pl.gsko.payment.book.v1` (the command to the tenant's RADIX
/// connector: hand it to the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// GSKO's stable id of the payment (`p24-…`, `payu-…`, `bank-…`); the ledger echoes it back
    /// in the posting that books it, so it must survive its file formats (ASCII, ≤ 35 chars).
    pub payment_id: String,
    pub channel: PaymentChannel,
    /// The whole amount; equals the sum of `items`.
    pub amount: Amount,
    /// The legal payment date (Ordynacja podatkowa art. 60): the day the payment was
    /// authorized (gateway) or the payer's account debited (bank transfer), not the day the
    /// municipality's account was credited.
    pub paid_on: NaiveDate,
    /// The day the municipality learned of it (notification or statement date).
    pub received_on: NaiveDate,
    /// At least one.
    pub items: Vec<PaymentItem>,
    /// The gateway's transaction id (P24 `orderId`, PayU `orderId`) or the bank's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    /// The virtual account the transfer was made to, for bank transfers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<Nrb>,
    /// The transfer title as the payer wrote it, or the order's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The ledger booked (part of) a payment (`pl.gsko.payment.booked.v1`): its export holds a
/// posting that names the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentBooked {
    pub payment_id: String,
    pub account_id: String,
    pub posting_id: String,
    pub amount: Amount,
    /// The posting's value date.
    pub booked_on: NaiveDate,
}

/// Why a payment could not be attributed and booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedReason {
    /// A transfer to a virtual account no tax account of the tenant has.
    UnknownVirtualAccount,
    /// Neither a virtual account nor the title identifies the taxpayer.
    Unidentified,
    /// The gateway reports an amount other than the order's.
    AmountMismatch,
    /// The same payment was already received (another statement line or another order).
    Duplicate,
    /// A gateway payout on the statement does not add up to the payments it should settle.
    PayoutMismatch,
}

/// A payment kept for an admin instead of being booked (`pl.gsko.payment.unmatched.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmatchedPayment {
    /// Stable id of what was seen (statement line, gateway session), so a re-import does not
    /// list it twice.
    pub payment_id: String,
    pub channel: PaymentChannel,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_on: Option<NaiveDate>,
    pub reason: UnmatchedReason,
    /// What exactly did not match, for the admin (may name accounts and amounts: stored, never
    /// logged).
    pub detail: String,
    /// Where it was seen: `file:line` of a statement, or the gateway and session id.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<Nrb>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The raw record (statement entry or notification body) as received.
    pub raw: String,
}
