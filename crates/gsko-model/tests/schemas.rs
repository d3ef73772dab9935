//! Agreement between the JSON Schemas in `schemas/messages/` (the published contract portal
//! vendors validate against) and the Rust model (what GSKO actually sends and accepts).
//!
//! 1. every message type has its schema file, and the schema names the type it describes;
//! 2. every schema example is accepted by `Event::from_json`, and its `to_json` validates;
//! 3. Rust-built events covering every enum variant and optional field validate;
//! 4. every mutation the Rust types reject is rejected by the schema too. Mutations are made
//!    systematically (each field removed, each value replaced by values of other types and
//!    edge values, an unknown member added to each object), so a schema drifting from the
//!    model fails here. Where the schema is deliberately stricter than the model, the place is
//!    listed in [`schema_may_be_stricter`] with the reason.
//!
//! What a JSON Schema cannot say and the model checks: checksums of PESEL/NIP/REGON/NRB, a
//! PESEL's date of birth, and that an integer is written without a fraction (`1.0` is an integer
//! for JSON Schema, not for serde). What neither checks: that a payment's `items` add up to its
//! `amount` (documented in both; the producers' and consumers' business).
//!
//! Commands (`MessageType::is_command`, e.g. `pl.gsko.payment.book.v1`) are messages like any
//! other here: one schema each, the same checks.
//!
//! Each check returns the problems it found instead of panicking, so that
//! [`deliberately_broken_schemas_are_caught`] can run the same checks against sabotaged copies
//! of the schemas and prove the checks can fail.

use chrono::{NaiveDate, TimeZone, Utc};
use gsko_model::*;
use jsonschema::{Draft, Resource, Validator};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const COMMON_ID: &str = "https://schemas.gsko.pl/messages/common.json";

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/messages")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[derive(Clone)]
struct Schemas {
    common: Value,
    by_type: Vec<(MessageType, Value)>,
}

impl Schemas {
    fn load() -> Schemas {
        let dir = schema_dir();
        Schemas {
            common: read_json(&dir.join("common.json")),
            by_type: MessageType::ALL
                .into_iter()
                .map(|t| {
                    let path = dir.join(t.schema_file());
                    assert!(
                        path.exists(),
                        "no schema for {}: {} is missing",
                        t.type_name(),
                        path.display()
                    );
                    (t, read_json(&path))
                })
                .collect(),
        }
    }

    fn schema(&self, t: MessageType) -> &Value {
        &self.by_type.iter().find(|(k, _)| *k == t).unwrap().1
    }

    fn schema_mut(&mut self, t: MessageType) -> &mut Value {
        &mut self.by_type.iter_mut().find(|(k, _)| *k == t).unwrap().1
    }

    /// Validator for one message type, with `common.json` resolvable by its `$id` and format
    /// assertions on (dates, date-times and UUIDs are checked as the model checks them).
    fn validator(&self, t: MessageType) -> Result<Validator, String> {
        let common = Resource::from_contents(self.common.clone()).map_err(|e| e.to_string())?;
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .with_resource(COMMON_ID, common)
            .build(self.schema(t))
            .map_err(|e| format!("schema of {} does not compile: {e}", t.type_name()))
    }
}

fn rust_accepts(v: &Value) -> bool {
    Event::from_json(&serde_json::to_vec(v).unwrap()).is_ok()
}

fn first_error(validator: &Validator, v: &Value) -> String {
    validator
        .iter_errors(v)
        .next()
        .map_or_else(String::new, |e| format!("{} at {}", e, e.instance_path))
}

// ------------------------------------------------------------------------------------------
// (1) files, identity, enums

fn check_files_and_identity(s: &Schemas) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = jsonschema::meta::validate(&s.common) {
        problems.push(format!("common.json is not a valid JSON Schema: {e}"));
    }
    if s.common["$id"] != COMMON_ID {
        problems.push("common.json has the wrong $id".into());
    }
    for (t, schema) in &s.by_type {
        if let Err(e) = jsonschema::meta::validate(schema) {
            problems.push(format!(
                "{} is not a valid JSON Schema: {e}",
                t.schema_file()
            ));
        }
        if schema["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
            problems.push(format!("{} is not draft 2020-12", t.schema_file()));
        }
        if schema["$id"] != t.dataschema().as_str() {
            problems.push(format!(
                "{}: $id must be the event's dataschema {}",
                t.schema_file(),
                t.dataschema()
            ));
        }
        if schema["properties"]["type"]["const"] != t.type_name() {
            problems.push(format!(
                "{}: type const must be {}",
                t.schema_file(),
                t.type_name()
            ));
        }
        if let Err(e) = s.validator(*t) {
            problems.push(e);
        }
    }
    // No stray schema files that no message type uses.
    let expected: BTreeSet<String> = MessageType::ALL
        .iter()
        .map(|t| t.schema_file())
        .chain(["common.json".to_owned()])
        .collect();
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") && !expected.contains(&name) {
            problems.push(format!("{name} belongs to no MessageType"));
        }
    }
    problems
}

/// The serde names of a Rust enum, from serializing every variant.
fn serde_names<T: serde::Serialize>(all: &[T]) -> BTreeSet<String> {
    all.iter()
        .map(|v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn taxpayer_kinds() -> Vec<TaxpayerKind> {
    use TaxpayerKind::*;
    let all = vec![Natural, Legal, OrgUnit];
    // Fails to compile when a variant is added, so this list cannot silently fall behind.
    all.iter().for_each(|k| match k {
        Natural | Legal | OrgUnit => {}
    });
    all
}

fn contact_kinds() -> Vec<ContactKind> {
    use ContactKind::*;
    let all = vec![Email, Phone, EpuapBox, Ade];
    all.iter().for_each(|k| match k {
        Email | Phone | EpuapBox | Ade => {}
    });
    all
}

fn holder_roles() -> Vec<HolderRole> {
    use HolderRole::*;
    let all = vec![Owner, CoOwner];
    all.iter().for_each(|k| match k {
        Owner | CoOwner => {}
    });
    all
}

fn payment_channels() -> Vec<PaymentChannel> {
    use PaymentChannel::*;
    let all = vec![Przelewy24, Payu, BankTransfer];
    all.iter().for_each(|k| match k {
        Przelewy24 | Payu | BankTransfer => {}
    });
    all
}

fn unmatched_reasons() -> Vec<UnmatchedReason> {
    use UnmatchedReason::*;
    let all = vec![
        UnknownVirtualAccount,
        Unidentified,
        AmountMismatch,
        Duplicate,
        PayoutMismatch,
    ];
    all.iter().for_each(|k| match k {
        UnknownVirtualAccount | Unidentified | AmountMismatch | Duplicate | PayoutMismatch => {}
    });
    all
}

fn letter_channels() -> Vec<LetterChannel> {
    use LetterChannel::*;
    let all = vec![Epuap, GskoPortal];
    all.iter().for_each(|k| match k {
        Epuap | GskoPortal => {}
    });
    all
}

fn sender_kinds() -> Vec<SenderKind> {
    use SenderKind::*;
    let all = vec![Person, Organisation];
    all.iter().for_each(|k| match k {
        Person | Organisation => {}
    });
    all
}

fn signature_statuses() -> Vec<SignatureStatus> {
    use SignatureStatus::*;
    let all = vec![Valid, Invalid, Absent, Unverifiable];
    all.iter().for_each(|k| match k {
        Valid | Invalid | Absent | Unverifiable => {}
    });
    all
}

fn signature_forms() -> Vec<SignatureForm> {
    use SignatureForm::*;
    let all = vec![PodpisZaufany, Qualified, Other];
    all.iter().for_each(|k| match k {
        PodpisZaufany | Qualified | Other => {}
    });
    all
}

fn delivery_preferences() -> Vec<DeliveryPreference> {
    use DeliveryPreference::*;
    let all = vec![Auto, Epuap, EDoreczenia];
    all.iter().for_each(|k| match k {
        Auto | Epuap | EDoreczenia => {}
    });
    all
}

fn delivery_channels() -> Vec<DeliveryChannel> {
    use DeliveryChannel::*;
    let all = vec![Epuap, EDoreczenia];
    all.iter().for_each(|k| match k {
        Epuap | EDoreczenia => {}
    });
    all
}

fn delivery_outcomes() -> Vec<DeliveryOutcome> {
    use DeliveryOutcome::*;
    let all = vec![Delivered, DeemedDelivered, Failed];
    all.iter().for_each(|k| match k {
        Delivered | DeemedDelivered | Failed => {}
    });
    all
}

fn evidence_kinds() -> Vec<EvidenceKind> {
    use EvidenceKind::*;
    let all = vec![Upd, AdeEvidence];
    all.iter().for_each(|k| match k {
        Upd | AdeEvidence => {}
    });
    all
}

fn check_enums(s: &Schemas) -> Vec<String> {
    let defs = &s.common["$defs"];
    let schema_enum = |name: &str| -> BTreeSet<String> {
        defs[name]["enum"]
            .as_array()
            .map_or_else(BTreeSet::new, |a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or("?").to_owned())
                    .collect()
            })
    };
    let mut problems = Vec::new();
    for (name, rust) in [
        ("levyKind", serde_names(&LevyKind::ALL)),
        ("postingKind", serde_names(&PostingKind::ALL)),
        ("taxpayerKind", serde_names(&taxpayer_kinds())),
        ("contactKind", serde_names(&contact_kinds())),
        ("holderRole", serde_names(&holder_roles())),
        ("paymentChannel", serde_names(&payment_channels())),
        ("unmatchedReason", serde_names(&unmatched_reasons())),
        ("letterChannel", serde_names(&letter_channels())),
        ("senderKind", serde_names(&sender_kinds())),
        ("signatureStatus", serde_names(&signature_statuses())),
        ("signatureForm", serde_names(&signature_forms())),
        ("deliveryPreference", serde_names(&delivery_preferences())),
        ("deliveryChannel", serde_names(&delivery_channels())),
        ("deliveryOutcome", serde_names(&delivery_outcomes())),
        ("evidenceKind", serde_names(&evidence_kinds())),
    ] {
        if schema_enum(name) != rust {
            problems.push(format!(
                "enum {name}: schema {:?} != Rust {rust:?}",
                schema_enum(name)
            ));
        }
    }
    // as_str() is what the connectors write into files; it must agree with serde.
    for k in LevyKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    for k in PostingKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    for k in payment_channels() {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    problems
}

// ------------------------------------------------------------------------------------------
// (2) examples

/// Envelope attributes `to_json` always writes, which a minimal example may leave out.
const DERIVED_ATTRIBUTES: [&str; 3] = ["subject", "datacontenttype", "dataschema"];

fn examples(s: &Schemas, t: MessageType) -> Vec<Value> {
    s.schema(t)["examples"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn check_examples(s: &Schemas) -> Vec<String> {
    let mut problems = Vec::new();
    for t in MessageType::ALL {
        let Ok(validator) = s.validator(t) else {
            continue;
        };
        let ex = examples(s, t);
        if ex.is_empty() {
            problems.push(format!("{} has no examples", t.schema_file()));
        }
        for (i, example) in ex.iter().enumerate() {
            let name = format!("{} example {i}", t.schema_file());
            if !validator.is_valid(example) {
                problems.push(format!(
                    "{name} does not validate against its schema: {}",
                    first_error(&validator, example)
                ));
            }
            let event = match Event::from_json(&serde_json::to_vec(example).unwrap()) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(format!("{name} is rejected by Event::from_json: {e}"));
                    continue;
                }
            };
            if event.message_type() != t {
                problems.push(format!(
                    "{name} parses as {}",
                    event.message_type().type_name()
                ));
            }
            let back: Value = serde_json::from_slice(&event.to_json()).unwrap();
            if !validator.is_valid(&back) {
                problems.push(format!(
                    "{name}: to_json output does not validate: {}",
                    first_error(&validator, &back)
                ));
            }
            // Nothing is lost or renamed on the way through the model.
            let strip = |v: &Value| {
                let mut v = v.clone();
                DERIVED_ATTRIBUTES
                    .iter()
                    .for_each(|k| drop(v.as_object_mut().unwrap().remove(*k)));
                v
            };
            if strip(&back) != strip(example) {
                problems.push(format!(
                    "{name} does not round-trip:\n  example {}\n  to_json {}",
                    strip(example),
                    strip(&back)
                ));
            }
            if example.get("subject").is_some() && example["subject"] != back["subject"] {
                problems.push(format!(
                    "{name}: subject {} but the model says {}",
                    example["subject"], back["subject"]
                ));
            }
        }
    }
    problems
}

// ------------------------------------------------------------------------------------------
// (3) events built in Rust

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn amt(g: i64) -> Amount {
    Amount::from_grosze(g).unwrap()
}

fn sha() -> String {
    "ab".repeat(32)
}

/// Events covering every enum variant, and every optional field both present and absent.
fn rust_events() -> Vec<Event> {
    let mut data = Vec::new();
    let full_address = Address {
        street: Some("ul. Kościuszki".into()),
        building: Some("3a".into()),
        unit: Some("12".into()),
        postal_code: "59-730".into(),
        city: "Nowogrodziec".into(),
        simc: Some("0189110".into()),
        country: "PL".into(),
    };
    let min_address = Address {
        street: None,
        building: None,
        unit: None,
        postal_code: "59-700".into(),
        city: "Bolesławiec".into(),
        simc: None,
        country: "PL".into(),
    };
    for (i, kind) in taxpayer_kinds().into_iter().enumerate() {
        data.push(EventData::TaxpayerUpserted(Taxpayer {
            taxpayer_id: format!("T{i}"),
            kind,
            pesel: Some(Pesel::parse("44051401359").unwrap()),
            nip: Some(Nip::parse("5260001246").unwrap()),
            regon: Some(
                Regon::parse(if i % 2 == 0 {
                    "123456785"
                } else {
                    "12345678512347"
                })
                .unwrap(),
            ),
            name: "Zażółć „Gęślą” & <Jaźń>".into(),
            address: Some(if i % 2 == 0 {
                full_address.clone()
            } else {
                min_address.clone()
            }),
            contacts: contact_kinds()
                .into_iter()
                .map(|kind| ContactChannel {
                    kind,
                    value: "x@example.pl".into(),
                })
                .collect(),
        }));
        data.push(EventData::TaxpayerUpserted(Taxpayer {
            taxpayer_id: format!("T{i}-min"),
            kind,
            pesel: None,
            nip: None,
            regon: None,
            name: "N".into(),
            address: None,
            contacts: vec![],
        }));
    }
    for (i, levy) in LevyKind::ALL.into_iter().enumerate() {
        let holders = holder_roles()
            .into_iter()
            .take(1 + i % 2)
            .enumerate()
            .map(|(j, role)| AccountHolder {
                taxpayer_id: format!("T{j}"),
                role,
            })
            .collect();
        data.push(EventData::TaxAccountUpserted(TaxAccount {
            account_id: format!("A-{i}"),
            levy,
            holders,
            virtual_account: (i % 2 == 0)
                .then(|| Nrb::parse("61109010140000071219812874").unwrap()),
        }));
        let decision = match i % 3 {
            0 => None,
            1 => Some(Decision {
                number: "FN.3120.1.2026".into(),
                issued_on: d(2026, 2, 10),
                delivered_on: None,
            }),
            _ => Some(Decision {
                number: "FN.3120.2.2026".into(),
                issued_on: d(2026, 2, 10),
                delivered_on: Some(d(2026, 2, 20)),
            }),
        };
        let installments = (1..=(i % 5) as u8)
            .map(|seq| Installment {
                seq,
                due_date: d(2026, 3, 15),
                amount: amt(25_075),
            })
            .collect();
        data.push(EventData::LiabilityUpserted(Liability {
            liability_id: format!("L-{i}"),
            account_id: format!("A-{i}"),
            levy,
            year: 2026,
            decision,
            total: amt(100_300),
            installments,
        }));
    }
    for (i, kind) in PostingKind::ALL.into_iter().enumerate() {
        let some = i % 2 == 0;
        data.push(EventData::PostingRecorded(LedgerPosting {
            posting_id: format!("P-{i}"),
            account_id: "A-1".into(),
            kind,
            value_date: d(2026, 3, 14),
            amount: amt(i as i64 * 1000),
            liability_id: some.then(|| "L-1".into()),
            installment_seq: some.then_some(255),
            description: some.then(|| "wpłata przelew".into()),
        }));
    }
    data.push(EventData::BalanceReported(Balance {
        account_id: "A-1".into(),
        as_of: d(2026, 3, 1),
        principal: amt(75_225),
        interest: amt(0),
        costs: amt(1600),
        overpayment: amt(i64::MAX),
    }));
    for some in [true, false] {
        data.push(EventData::RecordRejected(RejectedRecord {
            file: "radix.xml".into(),
            file_sha256: sha(),
            line: u64::MAX,
            record_type: "taxpayer".into(),
            record_id: some.then(|| "T1".into()),
            field: some.then(|| "pesel".into()),
            reason: "PESEL checksum does not match".into(),
            raw: "<taxpayer/>".into(),
        }));
    }
    for kind in ["full", "incremental"] {
        data.push(EventData::ImportCompleted(ImportCompleted {
            file: "radix.xml".into(),
            file_sha256: sha(),
            export_kind: kind.into(),
            records_accepted: u64::MAX,
            records_rejected: 0,
        }));
    }
    let virtual_account = || Nrb::parse("61109010140000071219812874").unwrap();
    for (i, channel) in payment_channels().into_iter().enumerate() {
        for some in [true, false] {
            let items = if some {
                vec![
                    PaymentItem {
                        account_id: "A-1".into(),
                        liability_id: Some("L-1".into()),
                        installment_seq: Some(255),
                        amount: amt(25_075),
                    },
                    PaymentItem {
                        account_id: "A-2".into(),
                        liability_id: Some("L-2".into()),
                        installment_seq: None,
                        amount: amt(0),
                    },
                ]
            } else {
                vec![PaymentItem {
                    account_id: "A-1".into(),
                    liability_id: None,
                    installment_seq: None,
                    amount: amt(i64::MAX),
                }]
            };
            let amount = items
                .iter()
                .try_fold(Amount::ZERO, |sum, item| sum.checked_add(item.amount))
                .unwrap();
            let short_id = format!("{}-{i}", channel.as_str());
            let payment = Payment {
                // The longest id the ledger takes (35 characters), and a short one.
                payment_id: if some {
                    format!("{short_id:-<35}")
                } else {
                    short_id
                },
                channel,
                amount,
                paid_on: d(2026, 3, 13),
                received_on: d(2026, 3, 16),
                items,
                external_ref: some.then(|| "4183516932".into()),
                virtual_account: some.then(virtual_account),
                title: some.then(|| "Podatek „od nieruchomości” 2026 & <rata 1>".into()),
            };
            data.push(EventData::PaymentSettled(payment.clone()));
            data.push(EventData::PaymentBook(payment));
        }
    }
    for (i, amount) in [0, i64::MAX].into_iter().enumerate() {
        data.push(EventData::PaymentBooked(PaymentBooked {
            payment_id: format!("bank-20260316-{i:06}"),
            account_id: "A-1".into(),
            posting_id: format!("P-{i}"),
            amount: amt(amount),
            booked_on: d(2026, 3, 13),
        }));
    }
    let channels = payment_channels();
    for (i, reason) in unmatched_reasons().into_iter().enumerate() {
        let some = i % 2 == 0;
        data.push(EventData::PaymentUnmatched(UnmatchedPayment {
            // Not a GSKO payment id: whatever identifies what was seen.
            payment_id: format!("statement 20260316.sta/line {i}"),
            channel: channels[i % channels.len()],
            amount: amt(i as i64 * 100),
            paid_on: some.then(|| d(2026, 3, 13)),
            reason,
            detail: "rachunek wirtualny nieznany".into(),
            source: format!("20260316.sta:{i}"),
            external_ref: some.then(|| "CEN2603131234568".into()),
            virtual_account: some.then(virtual_account),
            title: some.then(|| "OPLATA ZA PSA 2026".into()),
            raw: ":61:2603130313C150,00NTRFNONREF\n:86:152~00PRZELEW".into(),
        }));
    }
    data.extend(letter_events(&full_address));
    let tenant = Teryt::parse("0201043").unwrap();
    data.into_iter()
        .enumerate()
        .map(|(i, data)| {
            let mut e = Event::new("/gsko/radix/0201043", tenant.clone(), i as i64 - 3, data);
            if i % 2 == 0 {
                e = e.with_correlation(format!("corr-{i}"));
            }
            if i % 4 == 1 {
                // A UUIDv5 id, as producers that may resend a message give it.
                e = e.with_stable_id(&format!("key-{i}"));
            }
            if i % 3 == 0 {
                // Whole seconds serialize without a fraction; cover both shapes of `time`.
                e.time = Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap();
            }
            e
        })
        .collect()
}

fn file(name: &str, description: Option<&str>) -> StoredFile {
    StoredFile {
        name: name.into(),
        mime_type: "application/pdf".into(),
        size_bytes: if description.is_some() { u64::MAX } else { 0 },
        sha256: sha(),
        description: description.map(Into::into),
    }
}

/// Letters and decisions: every enum variant, every optional field present and absent.
fn letter_events(full_address: &Address) -> Vec<EventData> {
    let mut data = Vec::new();
    let pesel = || Pesel::parse("44051401359").unwrap();
    let statuses = signature_statuses();
    let forms = signature_forms();
    let kinds = sender_kinds();
    let mut i = 0;
    for channel in letter_channels() {
        for some in [true, false] {
            let status = statuses[i % statuses.len()];
            let letter = Letter {
                // The longest id the schema takes, and a short one.
                letter_id: if some {
                    format!("{:-<128}", format!("epuap-{i}"))
                } else {
                    format!("sha256-{i}")
                },
                channel,
                received_at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 14, 27).unwrap(),
                epuap_box: some.then(|| "/ugnowogrodziec/skrytka".into()),
                sender: LetterSender {
                    kind: kinds[i % kinds.len()],
                    name: "Zażółć „Gęślą” & <Jaźń>".into(),
                    pesel: some.then(pesel),
                    nip: some.then(|| Nip::parse("5260001246").unwrap()),
                    regon: some.then(|| Regon::parse("12345678512347").unwrap()),
                    epuap_login: some.then(|| "jkowalski".into()),
                    reply_address: some.then(|| "/jkowalski/skrytka".into()),
                    address: some.then(|| full_address.clone()),
                    contacts: if some {
                        contact_kinds()
                            .into_iter()
                            .map(|kind| ContactChannel {
                                kind,
                                value: "x@example.pl".into(),
                            })
                            .collect()
                    } else {
                        vec![]
                    },
                },
                addressee: some.then(|| "Urząd Gminy i Miasta Nowogrodziec".into()),
                title: "Wniosek o rozłożenie na raty".into(),
                body_text: some.then(|| "Treść\n\npisma \"w cudzysłowie\" \u{1F600}".repeat(500)),
                form: some.then(|| LetterForm {
                    namespace: "http://crd.gov.pl/wzor/2013/12/12/1410/".into(),
                    name: (i % 2 == 0).then(|| "Pismo ogólne do podmiotu publicznego".into()),
                }),
                document: file("Pismo.xml", some.then_some("pismo")),
                attachments: if some {
                    vec![file("a.pdf", Some("skan")), file("b.jpg", None)]
                } else {
                    vec![]
                },
                signature: LetterSignature {
                    status,
                    form: some.then(|| forms[i % forms.len()]),
                    signer_pesel: some.then(pesel),
                    signer_name: some.then(|| "JAN KOWALSKI".into()),
                    signed_at: some.then(|| Utc.with_ymd_and_hms(2026, 3, 2, 9, 13, 58).unwrap()),
                    problems: if some {
                        vec!["signed by a person other than the declared sender".into()]
                    } else {
                        vec![]
                    },
                },
                test: some,
                upp_id: some.then(|| "81234568".into()),
                problems: if some {
                    vec!["attachment c.zip exceeds 20 MB and was not stored".into()]
                } else {
                    vec![]
                },
            };
            data.push(EventData::LetterReceived(letter.clone()));
            data.push(EventData::LetterRegister(letter));
            i += 1;
        }
    }
    // The remaining signature statuses and forms.
    for (j, status) in statuses.into_iter().enumerate() {
        let form = forms[j % forms.len()];
        data.push(EventData::LetterReceived(Letter {
            letter_id: format!("epuap-{j}"),
            channel: LetterChannel::Epuap,
            received_at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 14, 27).unwrap(),
            epuap_box: None,
            sender: LetterSender {
                kind: SenderKind::Person,
                name: "N".into(),
                pesel: None,
                nip: None,
                regon: None,
                epuap_login: None,
                reply_address: None,
                address: None,
                contacts: vec![],
            },
            addressee: None,
            title: "".into(),
            body_text: Some("".into()),
            form: None,
            document: file("x", None),
            attachments: vec![],
            signature: LetterSignature {
                status,
                form: Some(form),
                signer_pesel: None,
                signer_name: None,
                signed_at: None,
                problems: vec![],
            },
            test: false,
            upp_id: None,
            problems: vec![],
        }));
    }
    for (j, channel) in delivery_preferences().into_iter().enumerate() {
        for some in [true, false] {
            data.push(EventData::DecisionDeliver(DecisionDelivery {
                decision_id: format!("ezd-{j}"),
                case_ref: "FN.3120.7.2026".parse().unwrap(),
                title: "Decyzja".into(),
                recipient: DecisionRecipient {
                    name: "Jan Kowalski".into(),
                    pesel: some.then(pesel),
                    nip: some.then(|| Nip::parse("5260001246").unwrap()),
                    epuap_address: some.then(|| "/jkowalski/skrytka".into()),
                    ade_address: some
                        .then(|| AdeAddress::parse("AE:PL-97075-47631-STVJH-19").unwrap()),
                },
                document: file("decyzja.pdf", some.then_some("decyzja")),
                channel,
                deliver_by: some.then(|| d(2026, 3, 30)),
                in_reply_to: some.then(|| "epuap-81234567".into()),
            }));
        }
    }
    let channels = delivery_channels();
    let kinds = evidence_kinds();
    for (j, outcome) in delivery_outcomes().into_iter().enumerate() {
        for some in [true, false] {
            let failed = outcome == DeliveryOutcome::Failed;
            data.push(EventData::DecisionDelivered(DecisionDelivered {
                decision_id: format!("ezd-{j}"),
                outcome,
                channel: channels[(j + usize::from(some)) % channels.len()],
                at: Utc.with_ymd_and_hms(2026, 3, 18, 7, 12, 40).unwrap(),
                shipment_id: some.then(|| "5129934".into()),
                evidence: (some || !failed).then(|| DeliveryEvidence {
                    kind: kinds[(j + usize::from(some)) % kinds.len()],
                    id: "UPD-5129934-1".into(),
                    code: some.then(|| "A.1".into()),
                    sha256: sha(),
                }),
                reason: (some || failed).then(|| "skrytka nie istnieje".into()),
                recipient_pesel: some.then(|| "44051401359".parse().unwrap()),
                case_ref: some.then(|| "FN.3120.7.2026".parse().unwrap()),
                title: some.then(|| "Decyzja w sprawie podatku od nieruchomości".into()),
                in_reply_to: some.then(|| "epuap-77120345".into()),
            }));
        }
    }
    for some in [true, false] {
        data.push(EventData::CaseRegistered(CaseRegistered {
            letter_id: "epuap-77120345".into(),
            case_ref: "FN.3120.7.2026".parse().unwrap(),
            rpw: some.then(|| "RPW/1234/2026".into()),
            registered_at: Utc.with_ymd_and_hms(2026, 3, 12, 8, 14, 55).unwrap(),
            ezd_case_id: some.then(|| "6f1c2b1e-5d1a-4c1e-9d8e-0a4b7c2d9e10".into()),
            title: some.then(|| "Wniosek o zwrot nadpłaty".into()),
        }));
    }
    for (j, status) in [
        CaseStatus::Registered,
        CaseStatus::Assigned,
        CaseStatus::InProgress,
        CaseStatus::Postponed,
        CaseStatus::Suspended,
        CaseStatus::Resumed,
        CaseStatus::ReRegistered,
        CaseStatus::Closed,
        CaseStatus::Archived,
    ]
    .into_iter()
    .enumerate()
    {
        let some = j % 2 == 0;
        data.push(EventData::CaseStatusChanged(CaseStatusChanged {
            case_ref: if some {
                "FN.3120.7.2026"
            } else {
                "OŚ-A.6131.2.1.2026.ŁK"
            }
            .parse()
            .unwrap(),
            ezd_case_id: format!("sprawa-{j}"),
            status,
            at: Utc.with_ymd_and_hms(2026, 3, 20, 10, 1, 0).unwrap(),
            seq: u32::try_from(j).unwrap() + 1,
            title: some.then(|| "Wniosek o zwrot nadpłaty".into()),
            source_status: some.then(|| "3 Zawieszona".into()),
            due_on: some.then(|| d(2026, 4, 11)),
        }));
    }
    data
}

fn check_rust_events(s: &Schemas) -> Vec<String> {
    let mut problems = Vec::new();
    let events = rust_events();
    for t in MessageType::ALL {
        if !events.iter().any(|e| e.message_type() == t) {
            problems.push(format!("no Rust-built event of {}", t.type_name()));
        }
    }
    for e in events {
        let Ok(validator) = s.validator(e.message_type()) else {
            continue;
        };
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        if !validator.is_valid(&v) {
            problems.push(format!(
                "Rust-built {} fails its schema: {}\n  {v}",
                e.message_type().type_name(),
                first_error(&validator, &v)
            ));
        }
        // And the same JSON read back gives the same event.
        if Event::from_json(&e.to_json()).ok().as_ref() != Some(&e) {
            problems.push(format!(
                "{} does not round-trip through JSON",
                e.message_type().type_name()
            ));
        }
    }
    problems
}

// ------------------------------------------------------------------------------------------
// (4) mutations

/// Every JSON pointer inside `v` (objects' members and arrays' elements, recursively).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(0),
        json!(256),
        json!(1.5),
        json!(""),
        json!("x"),
        json!("2026-02-30"),
        json!(i64::MAX as u64 + 1),
        json!({}),
        json!([]),
    ]
}

#[derive(Debug)]
enum Mutation {
    Replace(String, Value),
    Remove(String),
    AddMember(String),
}

fn apply(example: &Value, m: &Mutation) -> Value {
    let mut v = example.clone();
    let parent_and_key = |p: &str| -> (String, String) {
        let (parent, key) = p.rsplit_once('/').unwrap();
        (parent.to_owned(), key.to_owned())
    };
    match m {
        Mutation::Replace(p, new) => *v.pointer_mut(p).unwrap() = new.clone(),
        Mutation::Remove(p) => {
            let (parent, key) = parent_and_key(p);
            match v.pointer_mut(&parent).unwrap() {
                Value::Object(o) => drop(o.remove(&key)),
                Value::Array(a) => drop(a.remove(key.parse::<usize>().unwrap())),
                _ => unreachable!(),
            }
        }
        Mutation::AddMember(p) => {
            if let Some(Value::Object(o)) = v.pointer_mut(p) {
                o.insert("unexpected".into(), json!(1));
            }
        }
    }
    v
}

/// Places where the schema is deliberately stricter than the model (the model accepts the
/// mutation, the schema rejects it), with the reason. Anything else the model accepts, the
/// schema must accept too.
fn schema_may_be_stricter(m: &Mutation) -> Option<&'static str> {
    let (path, value) = match m {
        Mutation::Replace(p, v) => (p.as_str(), Some(v)),
        Mutation::Remove(p) | Mutation::AddMember(p) => (p.as_str(), None),
    };
    let last = path.rsplit('/').next().unwrap_or("");
    match (path, value) {
        (_, Some(Value::Null)) => {
            Some("optional fields are left out, never null (serde reads null as None)")
        }
        ("/subject", Some(_)) => Some(
            "the model derives the subject from the record and does not compare it on read; the schema pins its form",
        ),
        ("/data/export_kind" | "/data/file_sha256", Some(_)) => {
            Some("a String in the model, documented as full|incremental and a SHA-256 hex digest")
        }
        (p, Some(_)) if p.starts_with("/data/") && last == "sha256" => Some(
            "a String in the model (StoredFile::sha256, DeliveryEvidence::sha256), documented as a SHA-256 lowercase hex digest: the key in the content store",
        ),
        (_, Some(v)) if v == 0 && matches!(last, "seq" | "installment_seq" | "line") => {
            Some("1-based, as the model documents")
        }
        ("/data/holders", Some(v)) if v == &json!([]) => {
            Some("an account is held by one or more taxpayers")
        }
        ("/data/items", Some(v)) if v == &json!([]) => Some(
            "a payment goes to one or more tax accounts (Payment::items is documented as at least one); an empty list cannot be booked",
        ),
        ("/data/letter_id" | "/data/decision_id" | "/data/in_reply_to", Some(v)) if v == "" => {
            Some(
                "letter and decision ids are 1 to 128 printable ASCII characters, as Letter::letter_id and DecisionDelivery::decision_id document: they name the record in subjects",
            )
        }
        ("/data/payment_id", Some(v)) if v == "" => Some(
            "GSKO's payment ids are 1 to 35 printable ASCII characters, as Payment::payment_id documents: the ledger echoes them back in its files",
        ),
        (p, None)
            if matches!(m, Mutation::Remove(_))
                && p.starts_with("/data/items/")
                && last == "liability_id" =>
        {
            Some(
                "an installment number means nothing without its liability (PaymentItem::installment_seq is documented as only together with liability_id)",
            )
        }
        _ => None,
    }
}

/// Removing something from an array is not a meaningful "missing field"; skip those.
fn in_array(example: &Value, p: &str) -> bool {
    let parent = p.rsplit_once('/').unwrap().0;
    example.pointer(parent).is_some_and(Value::is_array)
}

/// The systematic mutations of one example: an unknown member added to every object, every
/// object member removed, every value replaced by each of [`replacements`].
fn mutations_of(example: &Value) -> Vec<Mutation> {
    let mut ptrs = Vec::new();
    pointers(example, String::new(), &mut ptrs);
    let mut mutations = vec![Mutation::AddMember(String::new())];
    for p in &ptrs {
        if !in_array(example, p) {
            mutations.push(Mutation::Remove(p.clone()));
        }
        if example.pointer(p).is_some_and(Value::is_object) {
            mutations.push(Mutation::AddMember(p.clone()));
        }
        mutations.extend(
            replacements()
                .into_iter()
                .map(|r| Mutation::Replace(p.clone(), r)),
        );
    }
    mutations
}

/// Every reason [`schema_may_be_stricter`] can give, so that a stale entry is noticed.
const STRICTER_REASONS: usize = 10;

struct MutationReport {
    problems: Vec<String>,
    rejected_by_both: usize,
    accepted_by_both: usize,
    stricter_used: BTreeSet<&'static str>,
}

fn check_mutations(s: &Schemas) -> MutationReport {
    let mut problems = Vec::new();
    let mut rejected_by_both = 0;
    let mut accepted_by_both = 0;
    let mut stricter_used = BTreeSet::new();
    for t in MessageType::ALL {
        let Ok(validator) = s.validator(t) else {
            continue;
        };
        for example in examples(s, t) {
            if !rust_accepts(&example) {
                continue; // reported by check_examples
            }
            let mutations = mutations_of(&example);
            for m in mutations {
                let v = apply(&example, &m);
                let rust = rust_accepts(&v);
                let schema = validator.is_valid(&v);
                match (rust, schema) {
                    (false, true) => problems.push(format!(
                        "{}: the model rejects {m:?} but the schema accepts it",
                        t.schema_file()
                    )),
                    (true, false) => match schema_may_be_stricter(&m) {
                        Some(reason) => drop(stricter_used.insert(reason)),
                        None => problems.push(format!(
                            "{}: the model accepts {m:?} but the schema rejects it: {}",
                            t.schema_file(),
                            first_error(&validator, &v)
                        )),
                    },
                    (false, false) => rejected_by_both += 1,
                    (true, true) => accepted_by_both += 1,
                }
            }
        }
    }
    MutationReport {
        problems,
        rejected_by_both,
        accepted_by_both,
        stricter_used,
    }
}

/// The mutations the brief names, spelled out (they are also among the systematic ones).
fn check_named_mutations(s: &Schemas) -> Vec<String> {
    let mut problems = Vec::new();
    let liability = examples(s, MessageType::LiabilityUpserted)
        .into_iter()
        .next();
    let Some(liability) = liability else {
        return vec!["no liability example".into()];
    };
    let Ok(validator) = s.validator(MessageType::LiabilityUpserted) else {
        return vec!["liability schema does not compile".into()];
    };
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "unknown levy",
            Mutation::Replace("/data/levy".into(), json!("casino_tax")),
        ),
        (
            "negative amount",
            Mutation::Replace("/data/total".into(), json!(-100)),
        ),
        (
            "negative installment",
            Mutation::Replace("/data/installments/0/amount".into(), json!(-1)),
        ),
        (
            "missing required field",
            Mutation::Remove("/data/account_id".into()),
        ),
        ("missing tenant", Mutation::Remove("/tenant".into())),
        ("extra field in data", Mutation::AddMember("/data".into())),
        (
            "extra field in an installment",
            Mutation::AddMember("/data/installments/0".into()),
        ),
        (
            "extra field in the decision",
            Mutation::AddMember("/data/decision".into()),
        ),
        (
            "bad TERYT kind digit",
            Mutation::Replace("/tenant".into(), json!("0201047")),
        ),
        (
            "impossible date",
            Mutation::Replace("/data/installments/0/due_date".into(), json!("2026-02-30")),
        ),
        (
            "amount as a decimal string",
            Mutation::Replace("/data/total".into(), json!("1003.00")),
        ),
        (
            "wrong spec version",
            Mutation::Replace("/specversion".into(), json!("0.3")),
        ),
        (
            "other message type",
            Mutation::Replace("/type".into(), json!("pl.gsko.posting.recorded.v1")),
        ),
    ];
    for (name, m) in cases {
        let v = apply(&liability, &m);
        if rust_accepts(&v) {
            problems.push(format!("{name}: the model was expected to reject it"));
        }
        if validator.is_valid(&v) {
            problems.push(format!("{name}: the schema accepts it"));
        }
    }
    // An extension attribute is fine for both (CloudEvents allows them).
    let mut ext = liability.clone();
    ext.as_object_mut()
        .unwrap()
        .insert("traceparent".into(), json!("00-abc-def-01"));
    if !(rust_accepts(&ext) && validator.is_valid(&ext)) {
        problems.push("an extension attribute must be accepted by both".into());
    }
    // Identifiers in a non-canonical form are read by the model (it normalises them) but are
    // not what GSKO sends; the schema only admits the canonical digit strings.
    let mut taxpayer = examples(s, MessageType::TaxpayerUpserted)
        .into_iter()
        .find(|e| e["data"]["nip"].is_string())
        .unwrap_or(Value::Null);
    if let Some(data) = taxpayer.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("nip".into(), json!("526-000-12-46"));
        if s.validator(MessageType::TaxpayerUpserted)
            .is_ok_and(|v| v.is_valid(&taxpayer))
        {
            problems.push("the schema accepts a NIP with separators".into());
        }
    }
    problems
}

/// The payment messages' own named mutations: each must be rejected by both.
fn check_named_payment_mutations(s: &Schemas) -> Vec<String> {
    let mut problems = Vec::new();
    let path = |m: &Mutation| match m {
        Mutation::Replace(p, _) | Mutation::Remove(p) | Mutation::AddMember(p) => p.clone(),
    };
    let r = |p: &str, v: Value| Mutation::Replace(p.into(), v);
    let cases: Vec<(MessageType, &str, Mutation)> = vec![
        (
            MessageType::PaymentSettled,
            "unknown payment channel",
            r("/data/channel", json!("blik")),
        ),
        (
            MessageType::PaymentSettled,
            "negative item amount",
            r("/data/items/0/amount", json!(-1)),
        ),
        (
            MessageType::PaymentSettled,
            "amount in złoty",
            r("/data/amount", json!(250.75)),
        ),
        (
            MessageType::PaymentSettled,
            "missing paid_on",
            Mutation::Remove("/data/paid_on".into()),
        ),
        (
            MessageType::PaymentSettled,
            "paid_on as a timestamp",
            r("/data/paid_on", json!("2026-03-13T10:00:00Z")),
        ),
        (
            MessageType::PaymentSettled,
            "virtual account with the PL prefix",
            r(
                "/data/virtual_account",
                json!("PL61109010140000071219812874"),
            ),
        ),
        (
            MessageType::PaymentSettled,
            "extra field in an item",
            Mutation::AddMember("/data/items/0".into()),
        ),
        (
            MessageType::PaymentSettled,
            "missing items",
            Mutation::Remove("/data/items".into()),
        ),
        (
            MessageType::PaymentBook,
            "a book command relabelled as the settled event",
            r("/type", json!("pl.gsko.payment.settled.v1")),
        ),
        (
            MessageType::PaymentBooked,
            "missing posting_id",
            Mutation::Remove("/data/posting_id".into()),
        ),
        (
            MessageType::PaymentUnmatched,
            "unknown reason",
            r("/data/reason", json!("lost")),
        ),
        (
            MessageType::PaymentUnmatched,
            "missing raw record",
            Mutation::Remove("/data/raw".into()),
        ),
    ];
    for (t, name, m) in cases {
        // The first example that has the field to mutate.
        let example = examples(s, t)
            .into_iter()
            .find(|e| e.pointer(&path(&m)).is_some());
        let (Some(example), Ok(validator)) = (example, s.validator(t)) else {
            problems.push(format!(
                "{name}: no {} example has {} (or the schema does not compile)",
                t.schema_file(),
                path(&m)
            ));
            continue;
        };
        let v = apply(&example, &m);
        if rust_accepts(&v) {
            problems.push(format!("{name}: the model was expected to reject it"));
        }
        if validator.is_valid(&v) {
            problems.push(format!("{name}: the schema accepts it"));
        }
    }
    // Deliberately stricter (see schema_may_be_stricter): an installment 0 or one without its
    // liability, a payment id the ledger could not echo. The model reads them; the schema
    // must not.
    if let Ok(validator) = s.validator(MessageType::PaymentBook) {
        let item_with_seq = examples(s, MessageType::PaymentBook)
            .into_iter()
            .find_map(|e| {
                let items = e["data"]["items"].as_array()?;
                let i = items.iter().position(|i| i["installment_seq"].is_u64())?;
                Some((e.clone(), i))
            });
        match item_with_seq {
            None => problems.push("no book example has an item with an installment".into()),
            Some((example, i)) => {
                let stricter = [
                    (
                        "an installment without its liability",
                        Mutation::Remove(format!("/data/items/{i}/liability_id")),
                    ),
                    (
                        "installment 0",
                        r(&format!("/data/items/{i}/installment_seq"), json!(0)),
                    ),
                    ("an empty payment id", r("/data/payment_id", json!(""))),
                    (
                        "a 36-character payment id",
                        r("/data/payment_id", json!("p".repeat(36))),
                    ),
                    (
                        "a payment id with a space",
                        r("/data/payment_id", json!("p24 4183516932")),
                    ),
                ];
                for (name, m) in stricter {
                    let v = apply(&example, &m);
                    if !rust_accepts(&v) {
                        problems.push(format!(
                            "{name}: the model now rejects it; drop the STRICTER entry"
                        ));
                    }
                    if validator.is_valid(&v) {
                        problems.push(format!("{name}: the schema accepts it"));
                    }
                }
            }
        }
    }
    problems
}

/// The letter and decision messages' own named mutations: each must be rejected by both.
fn check_named_letter_mutations(s: &Schemas) -> Vec<String> {
    let mut problems = Vec::new();
    let path = |m: &Mutation| match m {
        Mutation::Replace(p, _) | Mutation::Remove(p) | Mutation::AddMember(p) => p.clone(),
    };
    let r = |p: &str, v: Value| Mutation::Replace(p.into(), v);
    use MessageType::{DecisionDeliver, DecisionDelivered, LetterReceived, LetterRegister};
    let cases: Vec<(MessageType, &str, Mutation)> = vec![
        (
            LetterReceived,
            "unknown channel",
            r("/data/channel", json!("fax")),
        ),
        (
            LetterReceived,
            "unknown signature status",
            r("/data/signature/status", json!("ok")),
        ),
        (
            LetterReceived,
            "unknown signature form",
            r("/data/signature/form", json!("podpis_osobisty")),
        ),
        (
            LetterReceived,
            "signer PESEL with a separator",
            r("/data/signature/signer_pesel", json!("440514-01359")),
        ),
        (
            LetterReceived,
            "missing signature",
            Mutation::Remove("/data/signature".into()),
        ),
        (
            LetterReceived,
            "missing document",
            Mutation::Remove("/data/document".into()),
        ),
        (
            LetterReceived,
            "missing test flag",
            Mutation::Remove("/data/test".into()),
        ),
        (
            LetterReceived,
            "test flag as a string",
            r("/data/test", json!("false")),
        ),
        (
            LetterReceived,
            "received_at as a date",
            r("/data/received_at", json!("2026-03-02")),
        ),
        (
            LetterReceived,
            "negative attachment size",
            r("/data/attachments/0/size_bytes", json!(-1)),
        ),
        (
            LetterReceived,
            "attachment with its content inline",
            Mutation::AddMember("/data/attachments/0".into()),
        ),
        (
            LetterReceived,
            "extra field in the signature",
            Mutation::AddMember("/data/signature".into()),
        ),
        (
            LetterReceived,
            "extra field in the sender",
            Mutation::AddMember("/data/sender".into()),
        ),
        (
            LetterReceived,
            "problems as one string",
            r("/data/problems", json!("no title")),
        ),
        (
            LetterRegister,
            "a register command relabelled as the received event",
            r("/type", json!("pl.gsko.letter.received.v1")),
        ),
        (
            DecisionDeliver,
            "ADE address in lower case",
            r(
                "/data/recipient/ade_address",
                json!("ae:pl-13447-72418-ecviu-30"),
            ),
        ),
        (
            DecisionDeliver,
            "ADE address without its check digits",
            r(
                "/data/recipient/ade_address",
                json!("AE:PL-13447-72418-ECVIU"),
            ),
        ),
        (
            DecisionDeliver,
            "ADE address with the ADE. prefix",
            r(
                "/data/recipient/ade_address",
                json!("ADE.AE:PL-13447-72418-ECVIU-30"),
            ),
        ),
        (
            DecisionDeliver,
            "unknown channel preference",
            r("/data/channel", json!("post")),
        ),
        (
            DecisionDeliver,
            "missing recipient",
            Mutation::Remove("/data/recipient".into()),
        ),
        (
            DecisionDeliver,
            "document without its hash",
            Mutation::Remove("/data/document/sha256".into()),
        ),
        (
            DecisionDeliver,
            "deliver_by as a timestamp",
            r("/data/deliver_by", json!("2026-03-30T00:00:00Z")),
        ),
        (
            DecisionDelivered,
            "delivered without evidence",
            Mutation::Remove("/data/evidence".into()),
        ),
        (
            DecisionDelivered,
            "failed without a reason",
            Mutation::Remove("/data/reason".into()),
        ),
        (
            DecisionDelivered,
            "unknown outcome",
            r("/data/outcome", json!("lost")),
        ),
        (
            DecisionDelivered,
            "unknown evidence kind",
            r("/data/evidence/kind", json!("pdf")),
        ),
        (
            DecisionDelivered,
            "a channel preference as the channel",
            r("/data/channel", json!("auto")),
        ),
    ];
    for (t, name, m) in cases {
        let example = examples(s, t)
            .into_iter()
            .find(|e| e.pointer(&path(&m)).is_some());
        let (Some(example), Ok(validator)) = (example, s.validator(t)) else {
            problems.push(format!(
                "{name}: no {} example has {} (or the schema does not compile)",
                t.schema_file(),
                path(&m)
            ));
            continue;
        };
        let v = apply(&example, &m);
        if rust_accepts(&v) {
            problems.push(format!("{name}: the model was expected to reject it"));
        }
        if validator.is_valid(&v) {
            problems.push(format!("{name}: the schema accepts it"));
        }
    }
    // A deemed delivery with its evidence and a failed one without: both fine for both.
    if let Ok(validator) = s.validator(DecisionDelivered) {
        for example in examples(s, DecisionDelivered) {
            let outcome = example["data"]["outcome"].as_str().unwrap_or("");
            let m = if outcome == "failed" {
                Mutation::Remove("/data/evidence".into())
            } else {
                Mutation::Remove("/data/shipment_id".into())
            };
            if example.pointer(&path(&m)).is_none() {
                continue;
            }
            let v = apply(&example, &m);
            if !(rust_accepts(&v) && validator.is_valid(&v)) {
                problems.push(format!(
                    "a {outcome} delivery without {} must be accepted by both",
                    path(&m)
                ));
            }
        }
    }
    problems
}

fn all_problems(s: &Schemas) -> Vec<String> {
    let mut p = check_files_and_identity(s);
    p.extend(check_enums(s));
    p.extend(check_examples(s));
    p.extend(check_rust_events(s));
    p.extend(check_mutations(s).problems);
    p.extend(check_named_mutations(s));
    p.extend(check_named_payment_mutations(s));
    p.extend(check_named_letter_mutations(s));
    p
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_message_type_has_a_schema_that_names_it() {
    assert_none(check_files_and_identity(&Schemas::load()));
}

#[test]
fn schema_enums_match_the_rust_enums_exactly() {
    assert_none(check_enums(&Schemas::load()));
}

#[test]
fn examples_are_read_by_the_model_and_its_output_validates() {
    assert_none(check_examples(&Schemas::load()));
}

#[test]
fn rust_built_events_validate() {
    assert_none(check_rust_events(&Schemas::load()));
}

#[test]
fn what_the_model_rejects_the_schema_rejects() {
    let r = check_mutations(&Schemas::load());
    println!(
        "mutations: {} rejected by both, {} accepted by both, schema stricter for: {:#?}",
        r.rejected_by_both, r.accepted_by_both, r.stricter_used
    );
    assert_none(r.problems);
    // Guard against a vacuous pass (no examples, mutations not applied, ...).
    assert!(
        r.rejected_by_both > 500,
        "only {} mutations were rejected by both",
        r.rejected_by_both
    );
    assert!(
        r.accepted_by_both > 50,
        "only {} mutations were accepted by both",
        r.accepted_by_both
    );
    // Every listed divergence really occurs: the list documents the schema, not a wish.
    assert_eq!(
        r.stricter_used.len(),
        STRICTER_REASONS,
        "unused entries in schema_may_be_stricter: {:?}",
        r.stricter_used
    );
}

#[test]
fn named_mutations_are_rejected_by_both() {
    assert_none(check_named_mutations(&Schemas::load()));
}

#[test]
fn named_payment_mutations_are_rejected_by_both() {
    assert_none(check_named_payment_mutations(&Schemas::load()));
}

#[test]
fn named_letter_mutations_are_rejected_by_both() {
    assert_none(check_named_letter_mutations(&Schemas::load()));
}

/// The checks above can fail: each sabotage of the schemas must be reported by them.
#[test]
fn deliberately_broken_schemas_are_caught() {
    type Sabotage = (&'static str, fn(&mut Schemas));
    let sabotages: Vec<Sabotage> = vec![
        ("levy enum lacks dog_fee", |s| {
            let e = s.common["$defs"]["levyKind"]["enum"]
                .as_array_mut()
                .unwrap();
            e.retain(|v| v != "dog_fee");
        }),
        ("levy enum has an extra value", |s| {
            s.common["$defs"]["levyKind"]["enum"]
                .as_array_mut()
                .unwrap()
                .push(json!("casino_tax"));
        }),
        ("amounts may be negative", |s| {
            s.common["$defs"]["amount"]
                .as_object_mut()
                .unwrap()
                .remove("minimum");
        }),
        ("liability data allows unknown fields", |s| {
            s.schema_mut(MessageType::LiabilityUpserted)["properties"]["data"]
                .as_object_mut()
                .unwrap()
                .remove("additionalProperties");
        }),
        ("installment allows unknown fields", |s| {
            s.common["$defs"]["installment"]
                .as_object_mut()
                .unwrap()
                .remove("additionalProperties");
        }),
        ("posting value_date not required", |s| {
            let r = s.schema_mut(MessageType::PostingRecorded)["properties"]["data"]["required"]
                .as_array_mut()
                .unwrap();
            r.retain(|v| v != "value_date");
        }),
        ("posting value_date renamed", |s| {
            let data = &mut s.schema_mut(MessageType::PostingRecorded)["properties"]["data"];
            let props = data["properties"].as_object_mut().unwrap();
            let v = props.remove("value_date").unwrap();
            props.insert("valueDate".into(), v);
            for r in data["required"].as_array_mut().unwrap() {
                if r == "value_date" {
                    *r = json!("valueDate");
                }
            }
        }),
        ("year typed as string", |s| {
            s.common["$defs"]["year"] = json!({"type": "string"});
        }),
        ("tenant not required", |s| {
            s.common["$defs"]["envelope"]["required"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "tenant");
        }),
        ("balance example has a float amount", |s| {
            s.schema_mut(MessageType::BalanceReported)["examples"][0]["data"]["principal"] =
                json!(752.25);
        }),
        ("taxpayer schema has no examples", |s| {
            s.schema_mut(MessageType::TaxpayerUpserted)
                .as_object_mut()
                .unwrap()
                .remove("examples");
        }),
        ("PESEL pattern accepts anything", |s| {
            s.common["$defs"]["pesel"] = json!({"type": "string"});
        }),
        ("payment channel enum lacks payu", |s| {
            s.common["$defs"]["paymentChannel"]["enum"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "payu");
        }),
        ("unmatched reason enum has an extra value", |s| {
            s.common["$defs"]["unmatchedReason"]["enum"]
                .as_array_mut()
                .unwrap()
                .push(json!("lost"));
        }),
        ("payment paid_on not required", |s| {
            s.common["$defs"]["payment"]["required"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "paid_on");
        }),
        ("payment item allows unknown fields", |s| {
            s.common["$defs"]["paymentItem"]
                .as_object_mut()
                .unwrap()
                .remove("additionalProperties");
        }),
        ("payment virtual account accepts the PL prefix", |s| {
            s.common["$defs"]["payment"]["properties"]["virtual_account"] =
                json!({"type": "string"});
        }),
        ("book command data is not a payment", |s| {
            s.schema_mut(MessageType::PaymentBook)["properties"]["data"] =
                json!({"type": "object"});
        }),
        ("book command schema names the settled event", |s| {
            s.schema_mut(MessageType::PaymentBook)["properties"]["type"]["const"] =
                json!("pl.gsko.payment.settled.v1");
        }),
        ("booked subject lacks the posting", |s| {
            s.schema_mut(MessageType::PaymentBooked)["properties"]["subject"]["pattern"] =
                json!("^payment/[^/]+$");
        }),
        ("unmatched paid_on typed as a date-time", |s| {
            s.schema_mut(MessageType::PaymentUnmatched)["properties"]["data"]["properties"]
                ["paid_on"] = json!({"$ref": "common.json#/$defs/dateTime"});
        }),
        ("unmatched schema allows unknown fields", |s| {
            s.schema_mut(MessageType::PaymentUnmatched)["properties"]["data"]
                .as_object_mut()
                .unwrap()
                .remove("additionalProperties");
        }),
        ("signature status enum lacks unverifiable", |s| {
            s.common["$defs"]["signatureStatus"]["enum"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "unverifiable");
        }),
        ("delivery outcome enum has an extra value", |s| {
            s.common["$defs"]["deliveryOutcome"]["enum"]
                .as_array_mut()
                .unwrap()
                .push(json!("returned"));
        }),
        ("letter allows unknown fields", |s| {
            s.common["$defs"]["letter"]
                .as_object_mut()
                .unwrap()
                .remove("additionalProperties");
        }),
        ("letter signature not required", |s| {
            s.common["$defs"]["letter"]["required"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "signature");
        }),
        ("letter test flag typed as a string", |s| {
            s.common["$defs"]["letter"]["properties"]["test"] = json!({"type": "string"});
        }),
        ("stored file size may be negative", |s| {
            s.common["$defs"]["storedFile"]["properties"]["size_bytes"] =
                json!({"type": "integer"});
        }),
        ("ADE address pattern accepts anything", |s| {
            s.common["$defs"]["adeAddress"] = json!({"type": "string"});
        }),
        ("register command data is not a letter", |s| {
            s.schema_mut(MessageType::LetterRegister)["properties"]["data"] =
                json!({"type": "object"});
        }),
        ("register command schema names the received event", |s| {
            s.schema_mut(MessageType::LetterRegister)["properties"]["type"]["const"] =
                json!("pl.gsko.letter.received.v1");
        }),
        ("deliver recipient not required", |s| {
            s.schema_mut(MessageType::DecisionDeliver)["properties"]["data"]["required"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "recipient");
        }),
        ("delivered without evidence is accepted", |s| {
            s.schema_mut(MessageType::DecisionDelivered)["properties"]["data"]
                .as_object_mut()
                .unwrap()
                .remove("else");
        }),
        ("failed without a reason is accepted", |s| {
            s.schema_mut(MessageType::DecisionDelivered)["properties"]["data"]
                .as_object_mut()
                .unwrap()
                .remove("then");
        }),
        ("delivered requires evidence even when failed", |s| {
            s.schema_mut(MessageType::DecisionDelivered)["properties"]["data"]["required"]
                .as_array_mut()
                .unwrap()
                .push(json!("evidence"));
        }),
        ("delivered subject names the letter", |s| {
            s.schema_mut(MessageType::DecisionDelivered)["properties"]["subject"]["pattern"] =
                json!("^letter/.+$");
        }),
        (
            "letter example has an unsigned letter marked valid with no signer",
            |s| {
                s.schema_mut(MessageType::LetterReceived)["examples"][1]["data"]["signature"]
                    ["status"] = json!("unsigned");
            },
        ),
        ("settled example has an installment 0", |s| {
            s.schema_mut(MessageType::PaymentSettled)["examples"][0]["data"]["items"][0]
                ["installment_seq"] = json!(0);
        }),
    ];
    let good = Schemas::load();
    for (name, sabotage) in sabotages {
        let mut s = good.clone();
        sabotage(&mut s);
        let problems = all_problems(&s);
        assert!(!problems.is_empty(), "sabotage {name:?} went unnoticed");
    }
}

// ------------------------------------------------------------------------------------------
// A third-party implementation

/// Runs with Python's `jsonschema` (and, when installed, the CloudEvents Python SDK): they must
/// accept every example and Rust-built event, and reject every mutation the model rejects. This
/// catches schema constructs that only the Rust validator understands (regex dialects, `$ref`
/// resolution), which matters because portal vendors validate with their own tools.
const PYTHON_CROSS_CHECK: &str = r#"
import json, sys
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
p = json.load(sys.stdin)
docs = [p["common"], *p["schemas"].values()]
for d in docs:
    Draft202012Validator.check_schema(d)
reg = Registry().with_resources([(d["$id"], Resource.from_contents(d)) for d in docs])
val = {t: Draft202012Validator(s, registry=reg, format_checker=FormatChecker()) for t, s in p["schemas"].items()}
problems = []
for t, inst in p["valid"]:
    errs = list(val[t].iter_errors(inst))
    if errs:
        problems.append(f"python-jsonschema rejects a valid {t}: {errs[0].message} at {list(errs[0].path)}")
for t, inst, name in p["invalid"]:
    if val[t].is_valid(inst):
        problems.append(f"python-jsonschema accepts what the model rejects: {t} {name}")
try:
    from cloudevents.core.formats.json import JSONFormat
except ImportError:
    JSONFormat = None
    print("SKIPPED the CloudEvents SDK parse: pip install cloudevents>=2", file=sys.stderr)
if JSONFormat:
    for t, inst in p["valid"]:
        try:
            ev = JSONFormat().read(None, json.dumps(inst).encode())
            if ev.get_type() != t or ev.get_extension("tenant") != inst["tenant"] or ev.get_data() != inst["data"]:
                problems.append(f"CloudEvents SDK reads {t} differently")
        except Exception as e:
            problems.append(f"CloudEvents SDK cannot read {t}: {e!r}")
print("\n".join(problems))
print(f"checked {len(p['valid'])} valid and {len(p['invalid'])} invalid messages", file=sys.stderr)
sys.exit(1 if problems else 0)
"#;

#[test]
fn a_third_party_validator_agrees() {
    let has_python = std::process::Command::new("python3")
        .args(["-c", "import jsonschema, referencing"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_python {
        eprintln!("SKIPPED: python3 with the jsonschema package is not available");
        return;
    }
    let s = Schemas::load();
    let mut valid: Vec<Value> = Vec::new();
    let mut invalid: Vec<Value> = Vec::new();
    for t in MessageType::ALL {
        for example in examples(&s, t) {
            valid.push(json!([t.type_name(), example]));
            for m in mutations_of(&example) {
                let v = apply(&example, &m);
                if !rust_accepts(&v) {
                    invalid.push(json!([t.type_name(), v, format!("{m:?}")]));
                }
            }
        }
    }
    for e in rust_events() {
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        valid.push(json!([e.message_type().type_name(), v]));
    }
    let schemas: serde_json::Map<String, Value> = s
        .by_type
        .iter()
        .map(|(t, v)| (t.type_name().to_owned(), v.clone()))
        .collect();
    let input = json!({"common": s.common, "schemas": schemas, "valid": valid, "invalid": invalid});

    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", PYTHON_CROSS_CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&input).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "third-party validation failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
