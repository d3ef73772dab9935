//! The JSON of the UA API (spec §4.5, §4.6): what GSKO sends and how it reads the answers.
//!
//! The API's key case drifts between its OpenAPI text and real answers (`messages` vs
//! `Messages`, `MessageId` vs `messageId`), and `GET /messages/{id}` answered an object before
//! it answered an array, so every lookup here is case-insensitive and both shapes are accepted.

use std::fmt;

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use gsko_model::AdeAddress;
use serde_json::{json, Map, Value};
use sha3::{Digest, Sha3_512};

use crate::error::Error;

/// `additionalData` key that carries GSKO's own id of what was sent, so that a send whose answer
/// was lost can be found again in the SENT folder.
pub const REFERENCE_KEY: &str = "gskoReference";

/// A decision (or other letter) to send.
#[derive(Clone)]
pub struct Outgoing {
    pub recipient: AdeAddress,
    pub subject: String,
    pub text_body: String,
    pub attachments: Vec<OutgoingFile>,
    /// Keeps a reply in the thread of the message it answers (spec §4.5).
    pub thread_id: Option<String>,
    pub case_id: Option<String>,
    /// GSKO's id of the decision; stored in `messageMetadata.additionalData.gskoReference`.
    pub reference: String,
}

impl fmt::Debug for Outgoing {
    /// Subject, body and recipient identify a person's affairs: only the reference and sizes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("reference", &self.reference)
            .field("attachments", &self.attachments.len())
            .finish_non_exhaustive()
    }
}

/// One attached file.
#[derive(Clone)]
pub struct OutgoingFile {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub description: Option<String>,
}

impl fmt::Debug for OutgoingFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingFile")
            .field("content_type", &self.content_type)
            .field("size", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// What the API answered to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The message id to follow; when the API answered only `{"messageTaskId": …}` this is the
    /// task id (see `is_task_id`).
    pub message_id: String,
    /// `true` when the answer had only a `messageTaskId` (seen once in a real answer, spec §4.6).
    pub is_task_id: bool,
    /// Per-recipient `Status` (`SUCCESS` in the documented answer), when given.
    pub status: Option<String>,
}

/// `MessageControlData.status` (spec §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// "W weryfikacji"
    InVerification,
    /// "Przekazana do wysyłki"
    HandedOverForSending,
    /// "Odrzucona": the operator refused the message.
    Rejected,
    /// "Nadana"
    Posted,
    /// "Wysłana"
    Sent,
    /// "Czeka na doręczenie"
    AwaitingDelivery,
    /// "Doręczona": the recipient received it.
    Delivered,
    /// "Uznana za doręczoną": deemed delivered after the statutory period (fikcja doręczenia).
    DeemedDelivered,
    /// "Niedoręczona"
    NotDelivered,
    /// A value not in the spec, kept verbatim.
    Unknown(String),
}

/// The end of a delivery, from GSKO's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Delivered,
    DeemedDelivered,
    Failed,
}

impl DeliveryStatus {
    const NAMES: [(&'static str, DeliveryStatus); 9] = [
        ("W weryfikacji", DeliveryStatus::InVerification),
        (
            "Przekazana do wysyłki",
            DeliveryStatus::HandedOverForSending,
        ),
        ("Odrzucona", DeliveryStatus::Rejected),
        ("Nadana", DeliveryStatus::Posted),
        ("Wysłana", DeliveryStatus::Sent),
        ("Czeka na doręczenie", DeliveryStatus::AwaitingDelivery),
        ("Doręczona", DeliveryStatus::Delivered),
        ("Uznana za doręczoną", DeliveryStatus::DeemedDelivered),
        ("Niedoręczona", DeliveryStatus::NotDelivered),
    ];

    /// Maps the API's text, ignoring case and surrounding spaces.
    pub fn parse(text: &str) -> Self {
        let wanted = text.trim().to_lowercase();
        Self::NAMES
            .iter()
            .find(|(name, _)| name.to_lowercase() == wanted)
            .map(|(_, status)| status.clone())
            .unwrap_or_else(|| DeliveryStatus::Unknown(text.to_owned()))
    }

    /// The API's text of this status.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Unknown(text) => text,
            known => Self::NAMES
                .iter()
                .find(|(_, s)| s == known)
                .map(|(name, _)| *name)
                .expect("every known status has a name"),
        }
    }

    /// `Some` once the delivery has ended; rejection and non-delivery are failures.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            DeliveryStatus::Delivered => Some(Outcome::Delivered),
            DeliveryStatus::DeemedDelivered => Some(Outcome::DeemedDelivered),
            DeliveryStatus::Rejected | DeliveryStatus::NotDelivered => Some(Outcome::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a sent message (`GET /messages/{id}?format=metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    pub status: DeliveryStatus,
    /// `statusDescription` (";"-separated reasons, e.g. why it was not delivered); empty when
    /// the API gives none.
    pub status_text: String,
    /// From the business receipt confirmation or the H.EPO evidence.
    pub receipt_date: Option<DateTime<Utc>>,
    /// Submission time (M03) from the A.1 or H.PN evidence.
    pub submission_date: Option<DateTime<Utc>>,
    /// Event time (G05) from the A.1 or H.PN evidence.
    pub event_date: Option<DateTime<Utc>>,
}

impl MessageState {
    pub fn outcome(&self) -> Option<Outcome> {
        self.status.outcome()
    }
}

/// One delivery evidence (dowód) of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub evidence_id: String,
    pub message_id: String,
    pub create_date: Option<DateTime<Utc>>,
    pub event_date: Option<DateTime<Utc>>,
    /// Evidence code: `A.1`, `D.1`, `H.EPO`…
    pub kind: String,
    pub reason_details: Option<String>,
    /// URL of the evidence file.
    pub external_data: Option<String>,
}

/// `base64(lowercase hex(SHA3-512(bytes)))`: the `hash` of `FileMetadata` (spec §4.6: the
/// documented example decodes to 128 hex digits).
pub fn file_hash(bytes: &[u8]) -> String {
    let digest = Sha3_512::digest(bytes);
    base64::engine::general_purpose::STANDARD.encode(hex::encode(digest))
}

/// The body of `POST /{ade}/messages` for `msg` sent from `from` (spec §4.6).
pub fn message_body(from: &AdeAddress, msg: &Outgoing) -> Value {
    let mut metadata = Map::new();
    metadata.insert("from".into(), json!({ "eDeliveryAddress": from.as_str() }));
    metadata.insert(
        "to".into(),
        json!([{ "eDeliveryAddress": msg.recipient.as_str() }]),
    );
    metadata.insert("subject".into(), json!(msg.subject));
    metadata.insert("shippingService".into(), json!("electronic"));
    if let Some(thread) = &msg.thread_id {
        metadata.insert("threadId".into(), json!(thread));
    }
    if let Some(case) = &msg.case_id {
        metadata.insert("caseId".into(), json!(case));
    }
    metadata.insert(
        "additionalData".into(),
        json!({ REFERENCE_KEY: msg.reference }),
    );
    let attachments: Vec<Value> = msg
        .attachments
        .iter()
        .enumerate()
        .map(|(order, file)| {
            // The documented example uses one UUID for both ids.
            let id = uuid::Uuid::new_v4().to_string();
            let mut meta = json!({
                "fileId": id,
                "filename": file.filename,
                "contentType": file.content_type,
                "size": file.bytes.len(),
                "alg": "SHA-3",
                "hash": file_hash(&file.bytes),
            });
            if let Some(description) = &file.description {
                meta["description"] = json!(description);
            }
            json!({
                "order": order,
                "attachmentId": id,
                "file": {
                    "fileMetadata": meta,
                    "file": base64::engine::general_purpose::STANDARD.encode(&file.bytes),
                }
            })
        })
        .collect();
    json!({
        "messageControlData": { "MessageType": "Message" },
        "messageMetadata": Value::Object(metadata),
        "textBody": msg.text_body,
        "attachments": attachments,
    })
}

/// `obj[key]`, the exact key first, else any key equal ignoring ASCII case.
pub(crate) fn field<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A string field; numbers are accepted as their text (ids have been seen as both).
fn text(obj: &Value, key: &str) -> Option<String> {
    match field(obj, key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// RFC 3339, or an ISO date-time without offset (taken as UTC).
fn date(obj: &Value, key: &str) -> Result<Option<DateTime<Utc>>, Error> {
    let Some(raw) = text(obj, key).filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let raw = raw.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(d.with_timezone(&Utc)));
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|d| Some(d.and_utc()))
        .map_err(|_| Error::Malformed(format!("{key} is not a date-time: {raw:?}")))
}

/// The message id out of a send answer: `{"messages"|"Messages": [{"messageId"|"MessageId"}]}`
/// or a bare `{"messageTaskId": …}`.
pub fn parse_sent(answer: &Value) -> Result<SentMessage, Error> {
    if let Some(first) = field(answer, "messages")
        .and_then(Value::as_array)
        .and_then(|m| m.first())
    {
        if let Some(id) = text(first, "messageId") {
            return Ok(SentMessage {
                message_id: id,
                is_task_id: false,
                status: text(first, "status"),
            });
        }
    }
    if let Some(id) = text(answer, "messageId") {
        return Ok(SentMessage {
            message_id: id,
            is_task_id: false,
            status: text(answer, "status"),
        });
    }
    if let Some(id) = text(answer, "messageTaskId") {
        return Ok(SentMessage {
            message_id: id,
            is_task_id: true,
            status: None,
        });
    }
    Err(Error::Malformed(
        "send answer has neither messages[].messageId nor messageTaskId".into(),
    ))
}

/// The message out of `GET /messages/{id}`: an array of one message, or the message itself.
fn single_message(answer: &Value) -> Result<&Value, Error> {
    match answer {
        Value::Array(items) => items
            .first()
            .ok_or_else(|| Error::Malformed("message answer is an empty array".into())),
        Value::Object(_) => Ok(answer),
        _ => Err(Error::Malformed(
            "message answer is neither an array nor an object".into(),
        )),
    }
}

/// The state out of `GET /messages/{id}?format=metadata`.
pub fn parse_state(answer: &Value) -> Result<MessageState, Error> {
    let message = single_message(answer)?;
    let control = field(message, "messageControlData")
        .ok_or_else(|| Error::Malformed("message has no messageControlData".into()))?;
    let status = text(control, "status")
        .ok_or_else(|| Error::Malformed("messageControlData has no status".into()))?;
    let empty = Value::Null;
    let metadata = field(message, "messageMetadata").unwrap_or(&empty);
    Ok(MessageState {
        status: DeliveryStatus::parse(&status),
        status_text: text(control, "statusDescription").unwrap_or_default(),
        receipt_date: date(metadata, "receiptDate")?,
        submission_date: date(metadata, "submissionDate")?,
        event_date: date(metadata, "eventDate")?,
    })
}

/// Evidences out of `{"evidences": [...]}` (or a bare array).
pub fn parse_evidences(answer: &Value) -> Result<Vec<Evidence>, Error> {
    let items = match answer {
        Value::Array(items) => items,
        _ => field(answer, "evidences")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Malformed("evidence answer has no evidences array".into()))?,
    };
    items
        .iter()
        .map(|e| {
            Ok(Evidence {
                evidence_id: text(e, "evidenceId")
                    .ok_or_else(|| Error::Malformed("evidence without evidenceId".into()))?,
                message_id: text(e, "messageId")
                    .ok_or_else(|| Error::Malformed("evidence without messageId".into()))?,
                create_date: date(e, "createDate")?,
                event_date: date(e, "eventDate")?,
                kind: text(e, "type").unwrap_or_default(),
                reason_details: text(e, "reasonDetails"),
                external_data: text(e, "externalData"),
            })
        })
        .collect()
}

/// A message of the SENT listing: its id and its `gskoReference`, if any.
pub(crate) type Listed = (String, Option<String>);

/// One page of `GET /messages`: the messages and `total`.
pub(crate) fn parse_listing(answer: &Value) -> Result<(Vec<Listed>, Option<u64>), Error> {
    let items = match answer {
        Value::Array(items) => items,
        _ => field(answer, "messages")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Malformed("message list has no messages array".into()))?,
    };
    let total = field(answer, "total").and_then(Value::as_u64);
    let found = items
        .iter()
        .filter_map(|m| {
            let metadata = field(m, "messageMetadata");
            let id = metadata
                .and_then(|md| text(md, "messageId"))
                .or_else(|| text(m, "messageId"))?;
            let reference = metadata
                .and_then(|md| field(md, "additionalData"))
                .and_then(additional_reference);
            Some((id, reference))
        })
        .collect();
    Ok((found, total))
}

/// `gskoReference` out of `additionalData`, written as the schema's map or as a list of
/// `{key, value}` pairs.
fn additional_reference(data: &Value) -> Option<String> {
    match data {
        Value::Object(_) => text(data, REFERENCE_KEY),
        Value::Array(pairs) => pairs.iter().find_map(|p| {
            (text(p, "key")?.eq_ignore_ascii_case(REFERENCE_KEY))
                .then(|| text(p, "value"))
                .flatten()
        }),
        _ => None,
    }
}

/// `error_description`s of an ErrorResponse array (or a single ErrorInfo object).
pub(crate) fn error_detail(body: &Value) -> Option<String> {
    let infos: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![body],
        _ => return None,
    };
    let parts: Vec<String> = infos
        .into_iter()
        .filter_map(|i| {
            let error = text(i, "error");
            let description = text(i, "error_description")
                .or_else(|| text(i, "errorDescription"))
                .or_else(|| text(i, "message"));
            match (error, description) {
                (Some(e), Some(d)) => Some(format!("{e}: {d}")),
                (e, d) => e.or(d),
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ade(s: &str) -> AdeAddress {
        AdeAddress::parse(s).expect("sample address from the spec")
    }

    #[test]
    fn hash_is_base64_of_lowercase_hex_sha3_512() {
        // SHA3-512("abc") from FIPS 202's examples.
        let expected_hex = "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e\
                            10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0";
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(file_hash(b"abc"))
            .expect("base64");
        assert_eq!(String::from_utf8(decoded).expect("ascii"), expected_hex);
        // 128 hex digits, as in the spec's example hash.
        assert_eq!(file_hash(b"").len(), 172);
    }

    #[test]
    fn body_follows_the_documented_example() {
        let msg = Outgoing {
            recipient: ade("AE:PL-13447-72418-ECVIU-30"),
            subject: "Decyzja".into(),
            text_body: "Treść".into(),
            attachments: vec![OutgoingFile {
                filename: "decyzja.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: b"%PDF-1.7".to_vec(),
                description: Some("Decyzja podatkowa".into()),
            }],
            thread_id: None,
            case_id: Some("FN.3120.1.2026".into()),
            reference: "dec-42".into(),
        };
        let body = message_body(&ade("AE:PL-97075-47631-STVJH-19"), &msg);
        assert_eq!(body["messageControlData"]["MessageType"], "Message");
        let md = &body["messageMetadata"];
        assert_eq!(
            md["to"][0]["eDeliveryAddress"],
            "AE:PL-13447-72418-ECVIU-30"
        );
        assert_eq!(md["from"]["eDeliveryAddress"], "AE:PL-97075-47631-STVJH-19");
        assert_eq!(md["shippingService"], "electronic");
        assert_eq!(md["caseId"], "FN.3120.1.2026");
        assert!(md.get("threadId").is_none());
        assert_eq!(md["additionalData"]["gskoReference"], "dec-42");
        let a = &body["attachments"][0];
        assert_eq!(a["order"], 0);
        let meta = &a["file"]["fileMetadata"];
        assert_eq!(meta["fileId"], a["attachmentId"]);
        assert!(uuid::Uuid::parse_str(meta["fileId"].as_str().expect("id")).is_ok());
        assert_eq!(meta["alg"], "SHA-3");
        assert_eq!(meta["size"], 8);
        assert_eq!(meta["hash"], file_hash(b"%PDF-1.7").as_str());
        assert_eq!(a["file"]["file"], "JVBERi0xLjc=");
        assert_eq!(meta["description"], "Decyzja podatkowa");
    }

    #[test]
    fn send_answers_in_every_seen_casing() {
        let documented = json!({"Messages":[{"messageId":"ed28","AddresseeADE":"AE:PL-13447-72418-ECVIU-30","Status":"SUCCESS"}]});
        let s = parse_sent(&documented).expect("documented answer");
        assert_eq!(
            (s.message_id.as_str(), s.status.as_deref(), s.is_task_id),
            ("ed28", Some("SUCCESS"), false)
        );
        let schema = json!({"warning":null,"messages":[{"MessageId":"m1","AddresseeAde":"x","Status":"SUCCESS"}]});
        assert_eq!(parse_sent(&schema).expect("schema answer").message_id, "m1");
        let task = json!({"messageTaskId":"t9"});
        let s = parse_sent(&task).expect("task answer");
        assert_eq!((s.message_id.as_str(), s.is_task_id), ("t9", true));
        assert!(matches!(
            parse_sent(&json!({"messages":[]})),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn every_spec_status_maps_and_unknown_is_kept() {
        let cases = [
            ("W weryfikacji", DeliveryStatus::InVerification, None),
            (
                "Przekazana do wysyłki",
                DeliveryStatus::HandedOverForSending,
                None,
            ),
            ("Odrzucona", DeliveryStatus::Rejected, Some(Outcome::Failed)),
            ("Nadana", DeliveryStatus::Posted, None),
            ("Wysłana", DeliveryStatus::Sent, None),
            (
                "Czeka na doręczenie",
                DeliveryStatus::AwaitingDelivery,
                None,
            ),
            (
                "Doręczona",
                DeliveryStatus::Delivered,
                Some(Outcome::Delivered),
            ),
            (
                "Uznana za doręczoną",
                DeliveryStatus::DeemedDelivered,
                Some(Outcome::DeemedDelivered),
            ),
            (
                "Niedoręczona",
                DeliveryStatus::NotDelivered,
                Some(Outcome::Failed),
            ),
        ];
        for (text, status, outcome) in cases {
            assert_eq!(DeliveryStatus::parse(text), status, "{text}");
            assert_eq!(status.as_str(), text);
            assert_eq!(status.outcome(), outcome, "{text}");
        }
        assert_eq!(
            DeliveryStatus::parse(" DORĘCZONA "),
            DeliveryStatus::Delivered
        );
        assert_eq!(
            DeliveryStatus::parse("Zarchiwizowana"),
            DeliveryStatus::Unknown("Zarchiwizowana".into())
        );
        assert_eq!(DeliveryStatus::parse("Zarchiwizowana").outcome(), None);
    }

    #[test]
    fn state_from_array_or_object() {
        let msg = json!({
            "messageControlData": {"status": "Niedoręczona", "statusDescription": "Adres nieaktywny"},
            "messageMetadata": {"submissionDate": "2026-01-02T10:00:00Z", "eventDate": "2026-01-02T10:00:01.5",
                                "receiptDate": null}
        });
        for answer in [json!([msg.clone()]), msg] {
            let s = parse_state(&answer).expect("state");
            assert_eq!(s.status, DeliveryStatus::NotDelivered);
            assert_eq!(s.outcome(), Some(Outcome::Failed));
            assert_eq!(s.status_text, "Adres nieaktywny");
            assert_eq!(
                s.submission_date.expect("date").to_rfc3339(),
                "2026-01-02T10:00:00+00:00"
            );
            assert!(s.event_date.is_some());
            assert_eq!(s.receipt_date, None);
        }
        let upper = json!([{"MessageControlData": {"Status": "Doręczona"}}]);
        assert_eq!(
            parse_state(&upper).expect("upper case keys").status,
            DeliveryStatus::Delivered
        );
        assert!(matches!(parse_state(&json!([])), Err(Error::Malformed(_))));
        let bad_date = json!({"messageControlData": {"status": "Nadana"}, "messageMetadata": {"eventDate": "wczoraj"}});
        assert!(
            matches!(parse_state(&bad_date), Err(Error::Malformed(m)) if m.contains("eventDate"))
        );
    }

    #[test]
    fn evidences_as_documented() {
        let answer = json!({"evidences":[{"evidenceId":"830f","messageId":"ed28",
            "createDate":"2021-06-30T13:01:22.268462Z",
            "externalData":"http://poczta-polska.pl/edor/AE:PL-13447-72418-ECVIU-30/evidences/qerds/34e0","type":"A.1"}]});
        let e = parse_evidences(&answer).expect("evidences");
        assert_eq!(e.len(), 1);
        assert_eq!(
            (
                e[0].evidence_id.as_str(),
                e[0].message_id.as_str(),
                e[0].kind.as_str()
            ),
            ("830f", "ed28", "A.1")
        );
        assert!(e[0].create_date.is_some());
        assert!(e[0]
            .external_data
            .as_deref()
            .is_some_and(|u| u.ends_with("/34e0")));
        assert!(matches!(
            parse_evidences(&json!({"evidences":[{"messageId":"x"}]})),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn listing_finds_references_in_both_additional_data_shapes() {
        let page = json!({"messages":[
            {"messageMetadata":{"messageId":"a","additionalData":{"gskoReference":"r1"}}},
            {"messageMetadata":{"messageId":"b","additionalData":[{"key":"gskoReference","value":"r2"}]}},
            {"messageMetadata":{"messageId":"c"}}
        ],"total":3});
        let (items, total) = parse_listing(&page).expect("listing");
        assert_eq!(total, Some(3));
        assert_eq!(
            items,
            vec![
                ("a".to_owned(), Some("r1".to_owned())),
                ("b".to_owned(), Some("r2".to_owned())),
                ("c".to_owned(), None),
            ]
        );
    }

    #[test]
    fn error_detail_joins_the_error_response() {
        let body = json!([{"error":"invalid_request","error_description":"Brak odbiorcy"},
                          {"error":"invalid_file","error_description":"Zły skrót"}]);
        assert_eq!(
            error_detail(&body).as_deref(),
            Some("invalid_request: Brak odbiorcy; invalid_file: Zły skrót")
        );
        assert_eq!(error_detail(&json!("x")), None);
    }
}
