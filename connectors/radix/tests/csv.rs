//! The CSV adapter: column mappings from TOML, three legacy code pages with Polish letters, and
//! per-record rejections with the CSV line.

use gsko_model::{EventData, LevyKind, PostingKind, RejectedRecord, Teryt};
use gsko_radix::csv::{CsvMapping, CsvSource};
use gsko_radix::{FileMeta, RecordSource, SourceItem};

const POLISH: &str = "ąćęłńóśźż ĄĆĘŁŃÓŚŹŻ";

/// Byte of each Polish letter, from the published tables (independent of the crate's encoder).
const MAZOVIA: [(char, u8); 18] = [
    ('ą', 0x86),
    ('ć', 0x8D),
    ('ę', 0x91),
    ('ł', 0x92),
    ('ń', 0xA4),
    ('ó', 0xA2),
    ('ś', 0x9E),
    ('ź', 0xA6),
    ('ż', 0xA7),
    ('Ą', 0x8F),
    ('Ć', 0x95),
    ('Ę', 0x90),
    ('Ł', 0x9C),
    ('Ń', 0xA5),
    ('Ó', 0xA3),
    ('Ś', 0x98),
    ('Ź', 0xA0),
    ('Ż', 0xA1),
];
const CP852: [(char, u8); 18] = [
    ('ą', 0xA5),
    ('ć', 0x86),
    ('ę', 0xA9),
    ('ł', 0x88),
    ('ń', 0xE4),
    ('ó', 0xA2),
    ('ś', 0x98),
    ('ź', 0xAB),
    ('ż', 0xBE),
    ('Ą', 0xA4),
    ('Ć', 0x8F),
    ('Ę', 0xA8),
    ('Ł', 0x9D),
    ('Ń', 0xE3),
    ('Ó', 0xE0),
    ('Ś', 0x97),
    ('Ź', 0x8D),
    ('Ż', 0xBD),
];

fn encode(text: &str, table: &[(char, u8)]) -> Vec<u8> {
    text.chars()
        .map(|c| {
            if c.is_ascii() {
                c as u8
            } else {
                table
                    .iter()
                    .find(|(t, _)| *t == c)
                    .unwrap_or_else(|| panic!("{c}"))
                    .1
            }
        })
        .collect()
}

fn encode_as(encoding: &str, text: &str) -> Vec<u8> {
    match encoding {
        "mazovia" => encode(text, &MAZOVIA),
        "cp852" => encode(text, &CP852),
        "cp1250" => {
            let (b, _, bad) = encoding_rs::WINDOWS_1250.encode(text);
            assert!(!bad);
            b.into_owned()
        }
        _ => text.as_bytes().to_vec(),
    }
}

fn tenant() -> Teryt {
    Teryt::parse("1465011").unwrap()
}

fn read(mapping_toml: &str, bytes: Vec<u8>) -> (Vec<(EventData, i64, u64)>, Vec<RejectedRecord>) {
    let mapping: CsvMapping = toml::from_str(mapping_toml).expect("mapping parses");
    let meta = FileMeta {
        name: "export.csv".into(),
        sha256: "cd".repeat(32),
    };
    let mut src = CsvSource::new(std::io::Cursor::new(bytes), meta, mapping, tenant())
        .unwrap()
        .with_fallback_version(1234);
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    while let Some(item) = src.next_item().unwrap() {
        match item {
            SourceItem::Record(r) => ok.push((r.data, r.source_version, r.line)),
            SourceItem::Rejected(r) => bad.push(*r),
        }
    }
    (ok, bad)
}

#[test]
fn taxpayers_in_three_legacy_encodings_come_out_right() {
    for enc in ["cp852", "cp1250", "mazovia"] {
        let mapping = format!(
            r#"
encoding = "{enc}"
[layout]
record = "taxpayers"
id = "NR"
version = "WERSJA"
pesel = "PESEL"
nip = "NIP"
name = "NAZWISKO"
given_names = "IMIĘ"
street = "ULICA"
building = "NR_DOMU"
postal_code = "KOD"
city = "MIASTO"
"#
        );
        let csv = format!(
            "NR;PESEL;NIP;NAZWISKO;IMIĘ;ULICA;NR_DOMU;KOD;MIASTO;WERSJA\r\n\
             T1;44051401359;;{POLISH};Zażółć;ul. Źródlana;5;90-001;Łódź;3\r\n\
             T2;44051401358;;Błędny;Jan;;;;;1\r\n\
             T3;;526-000-12-46;\"Spółdzielnia \"\"Śnieżka\"\"\";;;;;;2\r\n"
        );
        let (ok, bad) = read(&mapping, encode_as(enc, &csv));
        assert_eq!(ok.len(), 2, "{enc}: {bad:?}");
        let EventData::TaxpayerUpserted(t1) = &ok[0].0 else {
            panic!()
        };
        assert_eq!(t1.name, format!("Zażółć {POLISH}"), "{enc}");
        let a = t1.address.as_ref().unwrap();
        assert_eq!(
            (a.street.as_deref(), a.city.as_str()),
            (Some("ul. Źródlana"), "Łódź"),
            "{enc}"
        );
        assert_eq!((ok[0].1, ok[0].2), (3, 2));
        let EventData::TaxpayerUpserted(t3) = &ok[1].0 else {
            panic!()
        };
        assert_eq!(t3.name, "Spółdzielnia \"Śnieżka\"", "{enc}");
        assert_eq!(t3.nip.as_ref().unwrap().as_str(), "5260001246");
        assert_eq!(t3.kind, gsko_model::payload::TaxpayerKind::Legal);

        assert_eq!(bad.len(), 1);
        assert_eq!(
            (
                bad[0].line,
                bad[0].record_type.as_str(),
                bad[0].record_id.as_deref(),
                bad[0].field.as_deref()
            ),
            (3, "taxpayer", Some("T2"), Some("PESEL"))
        );
        assert_eq!(
            bad[0].reason,
            r#"column "PESEL": PESEL checksum does not match"#
        );
        assert!(
            bad[0].raw.contains("Błędny"),
            "{enc}: raw is decoded: {}",
            bad[0].raw
        );
    }
}

#[test]
fn accounts_by_column_position_with_coded_levies() {
    let mapping = r#"
encoding = "cp1250"
has_header = false
[values.levy]
PN = "property"
OD = "waste_fee"
[layout]
record = "accounts"
id = 0
levy = 1
holders = 2
virtual_account = 3
"#;
    let csv = "A1;PN;T1|T3;61109010140000071219812874\nA2;XX;T1;\nA3;OD;;\nA4;OD; T4 ;\n";
    let (ok, bad) = read(mapping, encode_as("cp1250", csv));
    assert_eq!(ok.len(), 2);
    let EventData::TaxAccountUpserted(a1) = &ok[0].0 else {
        panic!()
    };
    assert_eq!(a1.levy, LevyKind::Property);
    assert_eq!(a1.holders.len(), 2);
    assert_eq!(a1.holders[1].role, gsko_model::payload::HolderRole::CoOwner);
    assert_eq!(ok[0].1, 1234, "no version column: the fallback version");
    let EventData::TaxAccountUpserted(a4) = &ok[1].0 else {
        panic!()
    };
    assert_eq!(a4.holders[0].taxpayer_id, "T4");
    assert_eq!(bad.len(), 2);
    assert_eq!((bad[0].line, bad[0].record_id.as_deref()), (2, Some("A2")));
    assert_eq!(bad[0].reason, r##"column "#2": unknown levy code "XX""##);
    assert_eq!((bad[1].line, bad[1].field.as_deref()), (3, Some("#3")));
}

#[test]
fn liabilities_with_installments_as_columns_in_mazovia() {
    let mapping = r#"
encoding = "mazovia"
date_format = "%d.%m.%Y"
decimal_separator = ","
[layout]
record = "liabilities"
id = "NR_DEC"
account = "KONTO"
levy_constant = "property"
year = "ROK"
total = "KWOTA"
decision_number = "ZNAK"
decision_issued_on = "DATA_DEC"
installments = [
  { due_date = "TERMIN1", amount = "RATA1" },
  { due_date = "TERMIN2", amount = "RATA2" },
  { due_date = "TERMIN3", amount = "RATA3" },
  { due_date = "TERMIN4", amount = "RATA4" },
]
"#;
    let csv = "NR_DEC;KONTO;ROK;KWOTA;ZNAK;DATA_DEC;TERMIN1;RATA1;TERMIN2;RATA2;TERMIN3;RATA3;TERMIN4;RATA4\n\
               L1;A1;2026;1003,00;FN.3120.1.2026;10.02.2026;15.03.2026;250,75;15.05.2026;250,75;15.09.2026;250,75;15.11.2026;250,75\n\
               L2;A1;2026;80,00;;;15.03.2026;80,00;;;;;;\n\
               L3;A1;2026;100,00;;;15.03.2026;50,00;15.05.2026;40,00;;;;\n\
               L4;A1;2026;100.00;;;15.03.2026;100,00;;;;;;\n";
    let (ok, bad) = read(mapping, encode_as("mazovia", csv));
    assert_eq!(ok.len(), 2, "{bad:?}");
    let EventData::LiabilityUpserted(l1) = &ok[0].0 else {
        panic!()
    };
    assert_eq!(
        (
            l1.total.grosze(),
            l1.installments.len(),
            l1.installments[3].seq
        ),
        (100_300, 4, 4)
    );
    assert_eq!(l1.installments[1].due_date.to_string(), "2026-05-15");
    assert_eq!(
        l1.decision.as_ref().unwrap().issued_on.to_string(),
        "2026-02-10"
    );
    let EventData::LiabilityUpserted(l2) = &ok[1].0 else {
        panic!()
    };
    assert_eq!(l2.installments.len(), 1);
    assert_eq!(bad.len(), 2);
    assert_eq!(
        (
            bad[0].line,
            bad[0].record_id.as_deref(),
            bad[0].field.as_deref()
        ),
        (4, Some("L3"), Some("KWOTA"))
    );
    assert_eq!(
        bad[0].reason,
        r#"column "KWOTA": installments sum to 90.00 but the liability total is 100.00"#
    );
    assert_eq!((bad[1].line, bad[1].field.as_deref()), (5, Some("KWOTA")));
    assert!(
        bad[1].reason.contains("decimal separator"),
        "{}",
        bad[1].reason
    );
}

#[test]
fn postings_with_polish_descriptions_in_cp852() {
    let mapping = r#"
encoding = "cp852"
date_format = "%d.%m.%Y"
[values.kind]
WP = "payment"
PR = "charge"
[layout]
record = "postings"
id = "ID"
version = "WER"
account = "KONTO"
kind = "RODZAJ"
value_date = "DATA"
amount = "KWOTA"
liability = "DECYZJA"
installment = "RATA"
description = "OPIS"
"#;
    let csv = format!(
        "ID;WER;KONTO;RODZAJ;DATA;KWOTA;DECYZJA;RATA;OPIS\n\
         P1;7;A1;WP;14.03.2026;250,75;L1;1;wpłata gotówką {POLISH}\n\
         P2;1;A1;WP;14.03.2026;-5,00;L1;1;\n\
         P3;1;A1;PR;20.02.2026;1003,00;L1;;\n"
    );
    let (ok, bad) = read(mapping, encode_as("cp852", &csv));
    assert_eq!(ok.len(), 2);
    let EventData::PostingRecorded(p1) = &ok[0].0 else {
        panic!()
    };
    assert_eq!(
        (p1.kind, p1.amount.grosze(), p1.installment_seq, ok[0].1),
        (PostingKind::Payment, 25_075, Some(1), 7)
    );
    assert_eq!(
        p1.description.as_deref(),
        Some(format!("wpłata gotówką {POLISH}").as_str())
    );
    let EventData::PostingRecorded(p3) = &ok[1].0 else {
        panic!()
    };
    assert_eq!((p3.kind, p3.installment_seq), (PostingKind::Charge, None));
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (
            bad[0].line,
            bad[0].record_id.as_deref(),
            bad[0].field.as_deref()
        ),
        (3, Some("P2"), Some("KWOTA"))
    );
    assert_eq!(
        bad[0].reason,
        r#"column "KWOTA": amount "-5.00" is negative"#
    );
}

#[test]
fn a_mapping_that_does_not_fit_the_file_refuses_the_file() {
    let mapping: CsvMapping = toml::from_str(
        r#"
[layout]
record = "balances"
account = "KONTO"
as_of = "DATA"
principal = "NALEZNOSC"
interest = "ODSETKI"
costs = "KOSZTY"
overpayment = "NADPLATA"
"#,
    )
    .unwrap();
    let meta = FileMeta {
        name: "b.csv".into(),
        sha256: "00".repeat(32),
    };
    let err = CsvSource::new(
        std::io::Cursor::new(b"KONTO;DATA\nA1;2026-03-01\n".to_vec()),
        meta,
        mapping,
        tenant(),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("\"NALEZNOSC\" is not in the header line"),
        "{err}"
    );
    assert!(err.is_permanent());
}

#[test]
fn line_numbers_count_crlf_blank_lines_and_quoted_newlines() {
    let mapping = r#"
[layout]
record = "postings"
id = "ID"
account = "KONTO"
kind = "RODZAJ"
value_date = "DATA"
amount = "KWOTA"
description = "OPIS"
"#;
    let csv = "ID;KONTO;RODZAJ;DATA;KWOTA;OPIS\r\n\r\nP1;A1;payment;2026-03-14;1,00;\"dwie\r\nlinie\"\r\nP2;A1;payment;2026-03-14;-1,00;\r\n\r\n\r\nP3;A1;payment;2026-03-14;x;";
    let (ok, bad) = read(mapping, csv.as_bytes().to_vec());
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].2, 3);
    let lines: Vec<u64> = bad.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![5, 8]);
}
