//! Turns a batch of events into rows to write, shared by both backends.
//!
//! Within one batch the same record may come more than once (a redelivery next to the original,
//! or two versions published in quick succession). A multi-row `INSERT … ON CONFLICT DO UPDATE`
//! in Postgres refuses to touch one row twice, and counting must not depend on the backend, so
//! the batch is reduced first: per key only the highest version stays (the first one seen on a
//! tie, which is what applying them one after the other would keep). An event dropped here
//! writes no row, so it counts as ignored (`ignored = events - rows written`); a case's status
//! change writes two rows and counts by its timeline entry (the fact it adds). The rows are sorted by key so that concurrent transactions (several
//! daemon instances) lock rows in the same order and cannot deadlock each other.

use crate::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use gsko_model::{Event, EventData, HolderRole, TaxpayerKind, UnmatchedReason};
use serde::Serialize;
use std::collections::btree_map::{BTreeMap, Entry};

pub(crate) struct TaxpayerRow<'a> {
    pub tenant: &'a str,
    pub taxpayer_id: &'a str,
    pub version: i64,
    pub pesel: Option<&'a str>,
    pub nip: Option<&'a str>,
    pub name: &'a str,
    pub kind: &'static str,
    pub payload: String,
}

pub(crate) struct AccountRow<'a> {
    pub tenant: &'a str,
    pub account_id: &'a str,
    pub version: i64,
    pub levy: &'static str,
    pub virtual_account: Option<&'a str>,
    /// (taxpayer_id, role), duplicates removed.
    pub holders: Vec<(&'a str, &'static str)>,
    pub payload: String,
}

pub(crate) struct LiabilityRow<'a> {
    pub tenant: &'a str,
    pub liability_id: &'a str,
    pub account_id: &'a str,
    pub version: i64,
    pub levy: &'static str,
    pub year: i32,
    pub total_grosze: i64,
    pub payload: String,
}

pub(crate) struct PostingRow<'a> {
    pub tenant: &'a str,
    pub posting_id: &'a str,
    pub account_id: &'a str,
    pub version: i64,
    pub kind: &'static str,
    pub value_date: NaiveDate,
    pub amount_grosze: i64,
    pub payload: String,
}

pub(crate) struct BalanceRow<'a> {
    pub tenant: &'a str,
    pub account_id: &'a str,
    pub version: i64,
    pub as_of: NaiveDate,
    pub principal_grosze: i64,
    pub interest_grosze: i64,
    pub costs_grosze: i64,
    pub overpayment_grosze: i64,
    pub payload: String,
}

pub(crate) struct RejectedRow<'a> {
    pub tenant: &'a str,
    pub file_sha256: &'a str,
    pub line: i64,
    pub received_at: DateTime<Utc>,
    pub record: String,
}

pub(crate) struct ImportRow<'a> {
    pub tenant: &'a str,
    pub file_sha256: &'a str,
    pub completed_at: DateTime<Utc>,
    pub payload: String,
}

/// One item of a settled payment (its position in the payment's `items`).
pub(crate) struct PaymentItemRow<'a> {
    pub item_no: i32,
    pub account_id: &'a str,
    pub liability_id: Option<&'a str>,
    pub installment_seq: Option<i32>,
    pub amount_grosze: i64,
}

pub(crate) struct PaymentRow<'a> {
    pub tenant: &'a str,
    pub payment_id: &'a str,
    pub channel: &'static str,
    pub amount_grosze: i64,
    pub paid_on: NaiveDate,
    pub received_on: NaiveDate,
    pub payload: String,
    pub items: Vec<PaymentItemRow<'a>>,
}

pub(crate) struct BookingRow<'a> {
    pub tenant: &'a str,
    pub payment_id: &'a str,
    pub posting_id: &'a str,
    pub account_id: &'a str,
    pub amount_grosze: i64,
    pub booked_on: NaiveDate,
    pub payload: String,
}

pub(crate) struct UnmatchedRow<'a> {
    pub tenant: &'a str,
    pub payment_id: &'a str,
    pub reason: &'static str,
    pub received_at: DateTime<Utc>,
    pub payload: String,
}

/// The rows of one batch, deduplicated and sorted by key.
pub(crate) struct LetterRow<'a> {
    pub tenant: &'a str,
    pub letter_id: &'a str,
    pub signer_pesel: Option<&'a str>,
    pub received_at: DateTime<Utc>,
    pub signature_status: &'static str,
    pub flagged: bool,
    pub payload: String,
}

pub(crate) struct DecisionRow<'a> {
    pub tenant: &'a str,
    pub decision_id: &'a str,
    pub recipient_pesel: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub outcome: &'static str,
    pub at: DateTime<Utc>,
    pub payload: String,
}

pub(crate) struct CaseRow<'a> {
    pub tenant: &'a str,
    pub letter_id: &'a str,
    pub case_ref: &'a str,
    pub ezd_case_id: Option<&'a str>,
    pub registered_at: DateTime<Utc>,
    pub payload: String,
}

/// A case's latest status (`cases`), replaced only by a higher `seq`.
pub(crate) struct CaseStatusRow<'a> {
    pub tenant: &'a str,
    pub ezd_case_id: &'a str,
    pub case_ref: &'a str,
    pub status: &'static str,
    pub seq: i64,
    pub changed_at: DateTime<Utc>,
    pub title: Option<&'a str>,
    pub due_on: Option<NaiveDate>,
    pub payload: String,
}

/// One change of a case (`case_timeline`): a fact per (case, seq).
pub(crate) struct TimelineRow<'a> {
    pub tenant: &'a str,
    pub ezd_case_id: &'a str,
    pub seq: i64,
    pub status: &'static str,
    pub at: DateTime<Utc>,
    pub payload: String,
}

pub(crate) fn signature_status(s: gsko_model::SignatureStatus) -> &'static str {
    use gsko_model::SignatureStatus as S;
    match s {
        S::Valid => "valid",
        S::Invalid => "invalid",
        S::Absent => "absent",
        S::Unverifiable => "unverifiable",
    }
}

pub(crate) fn delivery_outcome(o: gsko_model::DeliveryOutcome) -> &'static str {
    use gsko_model::DeliveryOutcome as O;
    match o {
        O::Delivered => "delivered",
        O::DeemedDelivered => "deemed_delivered",
        O::Failed => "failed",
    }
}

#[derive(Default)]
pub(crate) struct Plan<'a> {
    pub taxpayers: Vec<TaxpayerRow<'a>>,
    pub accounts: Vec<AccountRow<'a>>,
    pub liabilities: Vec<LiabilityRow<'a>>,
    pub postings: Vec<PostingRow<'a>>,
    pub balances: Vec<BalanceRow<'a>>,
    pub rejected: Vec<RejectedRow<'a>>,
    pub imports: Vec<ImportRow<'a>>,
    pub payments: Vec<PaymentRow<'a>>,
    pub bookings: Vec<BookingRow<'a>>,
    pub unmatched: Vec<UnmatchedRow<'a>>,
    pub letters: Vec<LetterRow<'a>>,
    pub decisions: Vec<DecisionRow<'a>>,
    pub cases: Vec<CaseRow<'a>>,
    pub case_statuses: Vec<CaseStatusRow<'a>>,
    pub case_timeline: Vec<TimelineRow<'a>>,
}

/// Keeps, per key, the event with the highest version (the first on a tie).
struct Latest<'a, K, T> {
    map: BTreeMap<K, (i64, &'a Event, &'a T)>,
}

impl<'a, K: Ord, T> Latest<'a, K, T> {
    fn new() -> Self {
        Latest {
            map: BTreeMap::new(),
        }
    }

    fn offer(&mut self, key: K, event: &'a Event, data: &'a T) {
        self.offer_version(key, event.source_version, event, data);
    }

    /// Like `offer`, ordered by a version the payload carries (a case change's `seq`).
    fn offer_version(&mut self, key: K, version: i64, event: &'a Event, data: &'a T) {
        match self.map.entry(key) {
            Entry::Vacant(v) => {
                v.insert((version, event, data));
            }
            Entry::Occupied(mut o) => {
                if version > o.get().0 {
                    o.insert((version, event, data));
                }
            }
        }
    }

    /// Keeps the first event offered for a key: for records that are never replaced (a
    /// payment is settled once), whatever their version.
    fn offer_first(&mut self, key: K, event: &'a Event, data: &'a T) {
        self.map
            .entry(key)
            .or_insert((event.source_version, event, data));
    }

    fn into_values(self) -> impl Iterator<Item = (&'a Event, &'a T)> {
        self.map.into_values().map(|(_, e, d)| (e, d))
    }
}

/// The payload as stored. Every text column is a field of the payload, so refusing a NUL
/// character here (JSON writes it as `\u0000`) covers them all: Postgres cannot store NUL in
/// text or jsonb, and SQLite must refuse the same events so that both backends keep one
/// contract. Such an event is refused permanently, and the projector parks it alone.
fn to_json<T: Serialize>(event: &Event, value: &T) -> Result<String, StoreError> {
    // The model types serialize infallibly (string keys only); still no panic on a surprise.
    let json = serde_json::to_string(value).map_err(|_| {
        StoreError::Database(format!("event {}: payload does not serialize", event.id))
    })?;
    if has_escaped_nul(&json) {
        return Err(StoreError::Database(format!(
            "event {}: a text field contains a NUL character",
            event.id
        )));
    }
    Ok(json)
}

/// Whether serialized JSON holds the escape `\u0000` (and not an escaped backslash followed by
/// the text "u0000"): the escape's backslash is preceded by an even number of backslashes.
fn has_escaped_nul(json: &str) -> bool {
    let bytes = json.as_bytes();
    json.match_indices("\\u0000").any(|(i, _)| {
        let preceding = bytes[..i].iter().rev().take_while(|b| **b == b'\\').count();
        preceding % 2 == 0
    })
}

pub(crate) fn taxpayer_kind(k: TaxpayerKind) -> &'static str {
    match k {
        TaxpayerKind::Natural => "natural",
        TaxpayerKind::Legal => "legal",
        TaxpayerKind::OrgUnit => "org_unit",
    }
}

pub(crate) fn unmatched_reason(r: UnmatchedReason) -> &'static str {
    match r {
        UnmatchedReason::UnknownVirtualAccount => "unknown_virtual_account",
        UnmatchedReason::Unidentified => "unidentified",
        UnmatchedReason::AmountMismatch => "amount_mismatch",
        UnmatchedReason::Duplicate => "duplicate",
        UnmatchedReason::PayoutMismatch => "payout_mismatch",
    }
}

pub(crate) fn holder_role(r: HolderRole) -> &'static str {
    match r {
        HolderRole::Owner => "owner",
        HolderRole::CoOwner => "co_owner",
    }
}

impl<'a> Plan<'a> {
    pub fn build(events: &'a [Event]) -> Result<Plan<'a>, StoreError> {
        let mut taxpayers = Latest::new();
        let mut accounts = Latest::new();
        let mut liabilities = Latest::new();
        let mut postings = Latest::new();
        let mut balances = Latest::new();
        let mut rejected = Latest::new();
        let mut imports = Latest::new();
        let mut payments = Latest::new();
        let mut bookings = Latest::new();
        let mut unmatched = Latest::new();
        let mut letters = Latest::new();
        let mut decisions = Latest::new();
        let mut cases = Latest::new();
        let mut case_statuses = Latest::new();
        let mut case_timeline = Latest::new();
        for e in events {
            let t = e.tenant.as_str();
            match &e.data {
                EventData::TaxpayerUpserted(d) => {
                    taxpayers.offer((t, d.taxpayer_id.as_str()), e, d)
                }
                EventData::TaxAccountUpserted(d) => {
                    accounts.offer((t, d.account_id.as_str()), e, d)
                }
                EventData::LiabilityUpserted(d) => {
                    liabilities.offer((t, d.liability_id.as_str()), e, d)
                }
                EventData::PostingRecorded(d) => postings.offer((t, d.posting_id.as_str()), e, d),
                EventData::BalanceReported(d) => balances.offer((t, d.account_id.as_str()), e, d),
                // Insert-if-absent records have no version of their own: the first one stays.
                EventData::RecordRejected(d) => {
                    rejected.offer((t, d.file_sha256.as_str(), d.line), e, d)
                }
                EventData::ImportCompleted(d) => imports.offer((t, d.file_sha256.as_str()), e, d),
                // A payment, its bookings and an unmatched payment are facts that do not change:
                // the first event stays, in the batch as in the table.
                EventData::PaymentSettled(d) => {
                    payments.offer_first((t, d.payment_id.as_str()), e, d)
                }
                EventData::PaymentBooked(d) => {
                    bookings.offer_first((t, d.payment_id.as_str(), d.posting_id.as_str()), e, d)
                }
                EventData::PaymentUnmatched(d) => {
                    unmatched.offer_first((t, d.payment_id.as_str()), e, d)
                }
                // A command to the ledger's connector, not part of the view: it writes nothing
                // and counts as ignored.
                EventData::PaymentBook(_) => {}
                // A letter and a delivery's end are facts: the first event stays.
                EventData::LetterReceived(d) => {
                    letters.offer_first((t, d.letter_id.as_str()), e, d)
                }
                EventData::DecisionDelivered(d) => {
                    decisions.offer_first((t, d.decision_id.as_str()), e, d)
                }
                // Commands to connectors: not part of the view.
                EventData::LetterRegister(_) | EventData::DecisionDeliver(_) => {}
                EventData::CaseRegistered(d) => cases.offer_first((t, d.letter_id.as_str()), e, d),
                // A case's status is replaced only by a higher seq (the schema makes it the
                // event's source version too; the payload's own number decides, as it is the
                // one the timeline is keyed by); each change is a fact of the timeline.
                EventData::CaseStatusChanged(d) => {
                    case_statuses.offer_version(
                        (t, d.ezd_case_id.as_str()),
                        i64::from(d.seq),
                        e,
                        d,
                    );
                    case_timeline.offer_first((t, d.ezd_case_id.as_str(), d.seq), e, d);
                }
            }
        }
        let mut plan = Plan::default();
        for (e, d) in taxpayers.into_values() {
            plan.taxpayers.push(TaxpayerRow {
                tenant: e.tenant.as_str(),
                taxpayer_id: &d.taxpayer_id,
                version: e.source_version,
                pesel: d.pesel.as_ref().map(|p| p.as_str()),
                nip: d.nip.as_ref().map(|n| n.as_str()),
                name: &d.name,
                kind: taxpayer_kind(d.kind),
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in accounts.into_values() {
            let mut holders: Vec<(&str, &'static str)> = Vec::with_capacity(d.holders.len());
            for h in &d.holders {
                if !holders.iter().any(|(id, _)| *id == h.taxpayer_id) {
                    holders.push((&h.taxpayer_id, holder_role(h.role)));
                }
            }
            plan.accounts.push(AccountRow {
                tenant: e.tenant.as_str(),
                account_id: &d.account_id,
                version: e.source_version,
                levy: d.levy.as_str(),
                virtual_account: d.virtual_account.as_ref().map(|n| n.as_str()),
                holders,
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in liabilities.into_values() {
            plan.liabilities.push(LiabilityRow {
                tenant: e.tenant.as_str(),
                liability_id: &d.liability_id,
                account_id: &d.account_id,
                version: e.source_version,
                levy: d.levy.as_str(),
                year: d.year,
                total_grosze: d.total.grosze(),
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in postings.into_values() {
            plan.postings.push(PostingRow {
                tenant: e.tenant.as_str(),
                posting_id: &d.posting_id,
                account_id: &d.account_id,
                version: e.source_version,
                kind: d.kind.as_str(),
                value_date: d.value_date,
                amount_grosze: d.amount.grosze(),
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in balances.into_values() {
            plan.balances.push(BalanceRow {
                tenant: e.tenant.as_str(),
                account_id: &d.account_id,
                version: e.source_version,
                as_of: d.as_of,
                principal_grosze: d.principal.grosze(),
                interest_grosze: d.interest.grosze(),
                costs_grosze: d.costs.grosze(),
                overpayment_grosze: d.overpayment.grosze(),
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in rejected.into_values() {
            let line = i64::try_from(d.line).map_err(|_| {
                StoreError::Database(format!(
                    "event {}: rejected record's line number is out of range",
                    e.id
                ))
            })?;
            plan.rejected.push(RejectedRow {
                tenant: e.tenant.as_str(),
                file_sha256: &d.file_sha256,
                line,
                received_at: e.time,
                record: to_json(e, d)?,
            });
        }
        for (e, d) in imports.into_values() {
            plan.imports.push(ImportRow {
                tenant: e.tenant.as_str(),
                file_sha256: &d.file_sha256,
                completed_at: e.time,
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in payments.into_values() {
            let mut items = Vec::with_capacity(d.items.len());
            for (i, item) in d.items.iter().enumerate() {
                items.push(PaymentItemRow {
                    item_no: i32::try_from(i).map_err(|_| {
                        StoreError::Database(format!("event {}: too many payment items", e.id))
                    })?,
                    account_id: &item.account_id,
                    liability_id: item.liability_id.as_deref(),
                    installment_seq: item.installment_seq.map(i32::from),
                    amount_grosze: item.amount.grosze(),
                });
            }
            plan.payments.push(PaymentRow {
                tenant: e.tenant.as_str(),
                payment_id: &d.payment_id,
                channel: d.channel.as_str(),
                amount_grosze: d.amount.grosze(),
                paid_on: d.paid_on,
                received_on: d.received_on,
                payload: to_json(e, d)?,
                items,
            });
        }
        for (e, d) in bookings.into_values() {
            plan.bookings.push(BookingRow {
                tenant: e.tenant.as_str(),
                payment_id: &d.payment_id,
                posting_id: &d.posting_id,
                account_id: &d.account_id,
                amount_grosze: d.amount.grosze(),
                booked_on: d.booked_on,
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in unmatched.into_values() {
            plan.unmatched.push(UnmatchedRow {
                tenant: e.tenant.as_str(),
                payment_id: &d.payment_id,
                reason: unmatched_reason(d.reason),
                received_at: e.time,
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in letters.into_values() {
            plan.letters.push(LetterRow {
                tenant: e.tenant.as_str(),
                letter_id: &d.letter_id,
                signer_pesel: d.signature.signer_pesel.as_ref().map(|p| p.as_str()),
                received_at: d.received_at,
                signature_status: signature_status(d.signature.status),
                flagged: !d.problems.is_empty()
                    || d.signature.status != gsko_model::SignatureStatus::Valid
                    || !d.signature.problems.is_empty(),
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in cases.into_values() {
            plan.cases.push(CaseRow {
                tenant: e.tenant.as_str(),
                letter_id: &d.letter_id,
                case_ref: d.case_ref.as_str(),
                ezd_case_id: d.ezd_case_id.as_deref(),
                registered_at: d.registered_at,
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in case_statuses.into_values() {
            plan.case_statuses.push(CaseStatusRow {
                tenant: e.tenant.as_str(),
                ezd_case_id: &d.ezd_case_id,
                case_ref: d.case_ref.as_str(),
                status: d.status.as_str(),
                seq: i64::from(d.seq),
                changed_at: d.at,
                title: d.title.as_deref(),
                due_on: d.due_on,
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in case_timeline.into_values() {
            plan.case_timeline.push(TimelineRow {
                tenant: e.tenant.as_str(),
                ezd_case_id: &d.ezd_case_id,
                seq: i64::from(d.seq),
                status: d.status.as_str(),
                at: d.at,
                payload: to_json(e, d)?,
            });
        }
        for (e, d) in decisions.into_values() {
            plan.decisions.push(DecisionRow {
                tenant: e.tenant.as_str(),
                decision_id: &d.decision_id,
                recipient_pesel: d.recipient_pesel.as_ref().map(|p| p.as_str()),
                in_reply_to: d.in_reply_to.as_deref(),
                outcome: delivery_outcome(d.outcome),
                at: d.at,
                payload: to_json(e, d)?,
            });
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::has_escaped_nul;

    #[test]
    fn finds_escaped_nul_only() {
        assert!(has_escaped_nul(&serde_json::to_string("a\0b").unwrap()));
        assert!(!has_escaped_nul(
            &serde_json::to_string("a\\u0000b").unwrap()
        ));
        assert!(has_escaped_nul(&serde_json::to_string("a\\\0b").unwrap()));
        assert!(!has_escaped_nul(&serde_json::to_string("plain").unwrap()));
    }
}
