//! CloudEvents 1.0 envelope in structured JSON mode (`application/cloudevents+json`).
//!
//! GSKO's extension attributes: `tenant` (TERYT of the municipality), `correlationid` (ties the
//! events of one import, payment or letter together) and `sourceversion` (the source system's
//! version of the record: a record is only ever replaced by a higher version of itself).

use crate::cases::CaseStatusChanged;
use crate::letters::*;
use crate::payload::*;
use crate::Teryt;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const CONTENT_TYPE: &str = "application/cloudevents+json";
pub const SPEC_VERSION: &str = "1.0";
const SCHEMA_BASE: &str = "https://schemas.gsko.pl/messages/";

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("message is not valid JSON: {}", redact(&.0.to_string()))]
    Json(#[from] serde_json::Error),
    #[error("unsupported CloudEvents specversion {0:?}")]
    SpecVersion(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("data of {kind} does not match its schema: {}", redact(&.source.to_string()))]
    Data {
        kind: String,
        source: serde_json::Error,
    },
    #[error("attribute {attribute} is {found:?}, but type {kind} requires {expected:?}")]
    Inconsistent {
        kind: String,
        attribute: &'static str,
        found: String,
        expected: String,
    },
    #[error("attribute source must not be empty")]
    EmptySource,
}

/// Error texts of serde quote the offending value (`invalid type: integer `44051401359``,
/// `invalid value: string "Jan Kowalski"`); such texts end up in logs and parking headers, so
/// values are cut out. Field names (in backticks) stay: they are what an admin needs.
fn redact(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars().peekable();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 4 {
            out.push_str("***");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        if c == '"' {
            // skip the quoted value
            for d in chars.by_ref() {
                if d == '"' {
                    break;
                }
            }
            out.push_str("\"***\"");
            continue;
        }
        if c == '`' {
            // a backtick-quoted token: a field name stays, a value (digits, literal) goes
            let mut tok = String::new();
            for d in chars.by_ref() {
                if d == '`' {
                    break;
                }
                tok.push(d);
            }
            let is_name = tok
                .chars()
                .all(|x| x.is_ascii_lowercase() || x == '_' || x == '-')
                && !tok.is_empty();
            out.push('`');
            out.push_str(if is_name { &tok } else { "***" });
            out.push('`');
            continue;
        }
        out.push(c);
    }
    flush(&mut digits, &mut out);
    out
}

/// Every message type GSKO publishes, with its stable `type` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    TaxpayerUpserted,
    TaxAccountUpserted,
    LiabilityUpserted,
    PostingRecorded,
    BalanceReported,
    RecordRejected,
    ImportCompleted,
    PaymentSettled,
    PaymentBook,
    PaymentBooked,
    PaymentUnmatched,
    LetterReceived,
    LetterRegister,
    DecisionDeliver,
    DecisionDelivered,
    CaseRegistered,
    CaseStatusChanged,
}

impl MessageType {
    pub const ALL: [MessageType; 17] = [
        MessageType::TaxpayerUpserted,
        MessageType::TaxAccountUpserted,
        MessageType::LiabilityUpserted,
        MessageType::PostingRecorded,
        MessageType::BalanceReported,
        MessageType::RecordRejected,
        MessageType::ImportCompleted,
        MessageType::PaymentSettled,
        MessageType::PaymentBook,
        MessageType::PaymentBooked,
        MessageType::PaymentUnmatched,
        MessageType::LetterReceived,
        MessageType::LetterRegister,
        MessageType::DecisionDeliver,
        MessageType::DecisionDelivered,
        MessageType::CaseRegistered,
        MessageType::CaseStatusChanged,
    ];

    /// The CloudEvents `type`, e.g. `pl.gsko.liability.upserted.v1`.
    pub fn type_name(self) -> &'static str {
        match self {
            MessageType::TaxpayerUpserted => "pl.gsko.taxpayer.upserted.v1",
            MessageType::TaxAccountUpserted => "pl.gsko.tax-account.upserted.v1",
            MessageType::LiabilityUpserted => "pl.gsko.liability.upserted.v1",
            MessageType::PostingRecorded => "pl.gsko.posting.recorded.v1",
            MessageType::BalanceReported => "pl.gsko.balance.reported.v1",
            MessageType::RecordRejected => "pl.gsko.import.record-rejected.v1",
            MessageType::ImportCompleted => "pl.gsko.import.completed.v1",
            MessageType::PaymentSettled => "pl.gsko.payment.settled.v1",
            MessageType::PaymentBook => "pl.gsko.payment.book.v1",
            MessageType::PaymentBooked => "pl.gsko.payment.booked.v1",
            MessageType::PaymentUnmatched => "pl.gsko.payment.unmatched.v1",
            MessageType::LetterReceived => "pl.gsko.letter.received.v1",
            MessageType::LetterRegister => "pl.gsko.letter.register.v1",
            MessageType::DecisionDeliver => "pl.gsko.decision.deliver.v1",
            MessageType::DecisionDelivered => "pl.gsko.decision.delivered.v1",
            MessageType::CaseRegistered => "pl.gsko.case.registered.v1",
            MessageType::CaseStatusChanged => "pl.gsko.case.status-changed.v1",
        }
    }

    /// Commands ask one connector to act and travel on the commands exchange; everything else
    /// is an event (what happened) on the events exchange. `payment.book` goes to the RADIX
    /// connector, `letter.register` to the EZD connector, `decision.deliver` to the
    /// ePUAP/e-Doręczenia connector.
    pub fn is_command(self) -> bool {
        matches!(
            self,
            MessageType::PaymentBook | MessageType::LetterRegister | MessageType::DecisionDeliver
        )
    }

    pub fn from_type_name(s: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.type_name() == s)
    }

    /// File stem of the JSON Schema in `schemas/messages/`.
    pub fn schema_file(self) -> String {
        format!("{}.json", self.type_name().trim_start_matches("pl.gsko."))
    }

    pub fn dataschema(self) -> String {
        format!("{SCHEMA_BASE}{}", self.schema_file())
    }
}

/// Typed `data` of an event; the variant always agrees with the event's `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    TaxpayerUpserted(Taxpayer),
    TaxAccountUpserted(TaxAccount),
    LiabilityUpserted(Liability),
    PostingRecorded(LedgerPosting),
    BalanceReported(Balance),
    RecordRejected(RejectedRecord),
    ImportCompleted(ImportCompleted),
    PaymentSettled(Payment),
    PaymentBook(Payment),
    PaymentBooked(PaymentBooked),
    PaymentUnmatched(UnmatchedPayment),
    LetterReceived(Letter),
    LetterRegister(Letter),
    DecisionDeliver(DecisionDelivery),
    DecisionDelivered(DecisionDelivered),
    CaseRegistered(CaseRegistered),
    CaseStatusChanged(CaseStatusChanged),
}

impl EventData {
    pub fn message_type(&self) -> MessageType {
        match self {
            EventData::TaxpayerUpserted(_) => MessageType::TaxpayerUpserted,
            EventData::TaxAccountUpserted(_) => MessageType::TaxAccountUpserted,
            EventData::LiabilityUpserted(_) => MessageType::LiabilityUpserted,
            EventData::PostingRecorded(_) => MessageType::PostingRecorded,
            EventData::BalanceReported(_) => MessageType::BalanceReported,
            EventData::RecordRejected(_) => MessageType::RecordRejected,
            EventData::ImportCompleted(_) => MessageType::ImportCompleted,
            EventData::PaymentSettled(_) => MessageType::PaymentSettled,
            EventData::PaymentBook(_) => MessageType::PaymentBook,
            EventData::PaymentBooked(_) => MessageType::PaymentBooked,
            EventData::PaymentUnmatched(_) => MessageType::PaymentUnmatched,
            EventData::LetterReceived(_) => MessageType::LetterReceived,
            EventData::LetterRegister(_) => MessageType::LetterRegister,
            EventData::DecisionDeliver(_) => MessageType::DecisionDeliver,
            EventData::DecisionDelivered(_) => MessageType::DecisionDelivered,
            EventData::CaseRegistered(_) => MessageType::CaseRegistered,
            EventData::CaseStatusChanged(_) => MessageType::CaseStatusChanged,
        }
    }

    /// The CloudEvents `subject`: which record this is about, e.g. `liability/L-2026-17`.
    pub fn subject(&self) -> String {
        match self {
            EventData::TaxpayerUpserted(d) => format!("taxpayer/{}", d.taxpayer_id),
            EventData::TaxAccountUpserted(d) => format!("tax-account/{}", d.account_id),
            EventData::LiabilityUpserted(d) => format!("liability/{}", d.liability_id),
            EventData::PostingRecorded(d) => format!("posting/{}", d.posting_id),
            EventData::BalanceReported(d) => format!("balance/{}", d.account_id),
            EventData::RecordRejected(d) => format!("import/{}/line/{}", d.file_sha256, d.line),
            EventData::ImportCompleted(d) => format!("import/{}", d.file_sha256),
            EventData::PaymentSettled(d) | EventData::PaymentBook(d) => {
                format!("payment/{}", d.payment_id)
            }
            EventData::PaymentBooked(d) => {
                format!("payment/{}/posting/{}", d.payment_id, d.posting_id)
            }
            EventData::PaymentUnmatched(d) => format!("payment/{}", d.payment_id),
            EventData::LetterReceived(d) | EventData::LetterRegister(d) => {
                format!("letter/{}", d.letter_id)
            }
            EventData::DecisionDeliver(d) => format!("decision/{}", d.decision_id),
            EventData::DecisionDelivered(d) => format!("decision/{}", d.decision_id),
            EventData::CaseRegistered(d) => format!("letter/{}", d.letter_id),
            EventData::CaseStatusChanged(d) => format!("case/{}", d.ezd_case_id),
        }
    }

    fn to_value(&self) -> serde_json::Value {
        let v = match self {
            EventData::TaxpayerUpserted(d) => serde_json::to_value(d),
            EventData::TaxAccountUpserted(d) => serde_json::to_value(d),
            EventData::LiabilityUpserted(d) => serde_json::to_value(d),
            EventData::PostingRecorded(d) => serde_json::to_value(d),
            EventData::BalanceReported(d) => serde_json::to_value(d),
            EventData::RecordRejected(d) => serde_json::to_value(d),
            EventData::ImportCompleted(d) => serde_json::to_value(d),
            EventData::PaymentSettled(d) | EventData::PaymentBook(d) => serde_json::to_value(d),
            EventData::PaymentBooked(d) => serde_json::to_value(d),
            EventData::PaymentUnmatched(d) => serde_json::to_value(d),
            EventData::LetterReceived(d) | EventData::LetterRegister(d) => serde_json::to_value(d),
            EventData::DecisionDeliver(d) => serde_json::to_value(d),
            EventData::DecisionDelivered(d) => serde_json::to_value(d),
            EventData::CaseRegistered(d) => serde_json::to_value(d),
            EventData::CaseStatusChanged(d) => serde_json::to_value(d),
        };
        v.expect("payloads serialize infallibly")
    }

    fn from_value(t: MessageType, v: serde_json::Value) -> Result<Self, serde_json::Error> {
        Ok(match t {
            MessageType::TaxpayerUpserted => {
                EventData::TaxpayerUpserted(serde_json::from_value(v)?)
            }
            MessageType::TaxAccountUpserted => {
                EventData::TaxAccountUpserted(serde_json::from_value(v)?)
            }
            MessageType::LiabilityUpserted => {
                EventData::LiabilityUpserted(serde_json::from_value(v)?)
            }
            MessageType::PostingRecorded => EventData::PostingRecorded(serde_json::from_value(v)?),
            MessageType::BalanceReported => EventData::BalanceReported(serde_json::from_value(v)?),
            MessageType::RecordRejected => EventData::RecordRejected(serde_json::from_value(v)?),
            MessageType::ImportCompleted => EventData::ImportCompleted(serde_json::from_value(v)?),
            MessageType::PaymentSettled => EventData::PaymentSettled(serde_json::from_value(v)?),
            MessageType::PaymentBook => EventData::PaymentBook(serde_json::from_value(v)?),
            MessageType::PaymentBooked => EventData::PaymentBooked(serde_json::from_value(v)?),
            MessageType::PaymentUnmatched => {
                EventData::PaymentUnmatched(serde_json::from_value(v)?)
            }
            MessageType::LetterReceived => EventData::LetterReceived(serde_json::from_value(v)?),
            MessageType::LetterRegister => EventData::LetterRegister(serde_json::from_value(v)?),
            MessageType::DecisionDeliver => EventData::DecisionDeliver(serde_json::from_value(v)?),
            MessageType::DecisionDelivered => {
                EventData::DecisionDelivered(serde_json::from_value(v)?)
            }
            MessageType::CaseRegistered => EventData::CaseRegistered(serde_json::from_value(v)?),
            MessageType::CaseStatusChanged => {
                EventData::CaseStatusChanged(serde_json::from_value(v)?)
            }
        })
    }
}

/// Namespace of [`Event::with_stable_id`] (a fixed random UUID; changing it changes every id).
const STABLE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a0f_3c52_9d1e_4b8a_a7c3_51e2_0f9b_d4e6);

/// A normalized GSKO message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    /// URI-reference of the producer, e.g. `/gsko/radix/1465011`.
    pub source: String,
    pub time: DateTime<Utc>,
    pub tenant: Teryt,
    pub correlation_id: Option<String>,
    /// The source's version of the record; higher replaces lower, equal or lower is a no-op.
    pub source_version: i64,
    pub data: EventData,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    specversion: String,
    id: Uuid,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    datacontenttype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataschema: Option<String>,
    tenant: Teryt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlationid: Option<String>,
    sourceversion: i64,
    data: serde_json::Value,
}

impl Event {
    /// A new event with a fresh UUIDv7 id, stamped now.
    pub fn new(
        source: impl Into<String>,
        tenant: Teryt,
        source_version: i64,
        data: EventData,
    ) -> Self {
        Event {
            id: Uuid::now_v7(),
            source: source.into(),
            time: Utc::now(),
            tenant,
            correlation_id: None,
            source_version,
            data,
        }
    }

    /// Replaces the fresh id with one derived from the message's meaning (UUIDv5 of tenant,
    /// type and `key`), for producers that may send the same message again after a crash:
    /// the copy then carries the same id, and consumers can recognise it.
    pub fn with_stable_id(mut self, key: &str) -> Self {
        let name = format!(
            "{}/{}/{}",
            self.tenant,
            self.message_type().type_name(),
            key
        );
        self.id = Uuid::new_v5(&STABLE_ID_NAMESPACE, name.as_bytes());
        self
    }

    pub fn with_correlation(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    pub fn message_type(&self) -> MessageType {
        self.data.message_type()
    }

    /// AMQP routing key: `<type>.<tenant>`, so that a consumer can bind `pl.gsko.liability.#`
    /// (one type, all tenants) or `#.1465011` (one tenant, all types). The same form on both
    /// exchanges: events on `gsko.events`, commands ([`MessageType::is_command`]) on
    /// `gsko.commands`, e.g. `pl.gsko.payment.book.v1.1465011` for the RADIX connector's queue
    /// `gsko.radix.book` bound with `pl.gsko.payment.book.#`.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.message_type().type_name(), self.tenant)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let t = self.message_type();
        let w = Wire {
            specversion: SPEC_VERSION.to_owned(),
            id: self.id,
            source: self.source.clone(),
            kind: t.type_name().to_owned(),
            subject: Some(self.data.subject()),
            time: self.time,
            datacontenttype: Some("application/json".to_owned()),
            dataschema: Some(t.dataschema()),
            tenant: self.tenant.clone(),
            correlationid: self.correlation_id.clone(),
            sourceversion: self.source_version,
            data: self.data.to_value(),
        };
        serde_json::to_vec(&w).expect("events serialize infallibly")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Event, EventError> {
        let w: Wire = serde_json::from_slice(bytes)?;
        if w.specversion != SPEC_VERSION {
            return Err(EventError::SpecVersion(w.specversion));
        }
        let t = MessageType::from_type_name(&w.kind)
            .ok_or_else(|| EventError::UnknownType(w.kind.clone()))?;
        if w.source.is_empty() {
            return Err(EventError::EmptySource);
        }
        let data = EventData::from_value(t, w.data).map_err(|source| EventError::Data {
            kind: w.kind.clone(),
            source,
        })?;
        // Attributes that restate the type must agree with it: a message that contradicts itself
        // is refused rather than guessed at. (`subject` is informational and not compared.)
        let checks = [
            ("dataschema", w.dataschema, t.dataschema()),
            (
                "datacontenttype",
                w.datacontenttype,
                "application/json".to_owned(),
            ),
        ];
        for (attribute, found, expected) in checks {
            if let Some(found) = found {
                if found != expected {
                    return Err(EventError::Inconsistent {
                        kind: w.kind.clone(),
                        attribute,
                        found,
                        expected,
                    });
                }
            }
        }
        Ok(Event {
            id: w.id,
            source: w.source,
            time: w.time,
            tenant: w.tenant,
            correlation_id: w.correlationid,
            source_version: w.sourceversion,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_carry_no_values() {
        let e = serde_json::from_str::<crate::Taxpayer>(
            r#"{"taxpayer_id":"T1","kind":"natural","pesel":44051401359,"name":"Jan Kowalski"}"#,
        )
        .unwrap_err();
        let shown = redact(&e.to_string());
        assert!(!shown.contains("44051401359"), "{shown}");
        let e = serde_json::from_str::<crate::TaxpayerKind>(r#""Jan Kowalski""#).unwrap_err();
        let shown = redact(&e.to_string());
        assert!(!shown.contains("Kowalski"), "{shown}");
        let e = serde_json::from_str::<crate::Taxpayer>(r#"{"taxpayer_id":"T1","kind":"natural"}"#)
            .unwrap_err();
        assert!(
            redact(&e.to_string()).contains("`name`"),
            "field names stay"
        );
    }
}
