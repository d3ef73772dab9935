//! Elixir-0 round trip: identified credits from a simulated statement are written as Elixir-0
//! records and read back by a reader that exists only here (the connector only writes the
//! format), field by field as spec §4.4 lays it out.

mod common;

use chrono::NaiveDate;
use common::*;
use gsko_bank::elixir::{FromCredit, CREDIT_TRANSFER, STANDARD_CLASSIFICATION};
use gsko_bank::{
    identify, parse_statements_with, Charset, ElixirError, ElixirPayment, ElixirWriter,
};
use gsko_model::{Amount, Nrb};
use gsko_sim::bank::{BankProfile, BankSimSpec, SimCharset};

/// Splits one record into its 16 fields; quoted fields have no escapes in Elixir-0.
fn split_record(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

fn read_records(bytes: &[u8], charset: Charset) -> Vec<ElixirPayment> {
    let text = charset.decode(bytes).expect("decodable");
    assert!(text.ends_with("\r\n"), "records end with CRLF");
    text.split_terminator("\r\n")
        .map(|line| {
            let f = split_record(line);
            assert_eq!(f.len(), 16, "{line}");
            assert_eq!(f[4], "0");
            assert_eq!(f[9], "0");
            assert_eq!(
                (f[12].as_str(), f[13].as_str(), f[15].as_str()),
                ("", "", "")
            );
            let ordering = Nrb::parse(&f[5]).expect("ordering NRB");
            let beneficiary = Nrb::parse(&f[6]).expect("beneficiary NRB");
            assert_eq!(f[3], ordering.as_str()[2..10], "ordering sort code");
            assert_eq!(f[10], beneficiary.as_str()[2..10], "beneficiary sort code");
            for text in [&f[7], &f[8], &f[11]] {
                let lines: Vec<&str> = text.split('|').collect();
                assert!(lines.len() <= 4 && lines.iter().all(|l| l.chars().count() <= 35));
            }
            ElixirPayment {
                code: f[0].parse().expect("code"),
                date: NaiveDate::parse_from_str(&f[1], "%Y%m%d").expect("date"),
                amount: Amount::from_grosze(f[2].parse().expect("grosze")).expect("amount"),
                ordering_account: ordering,
                beneficiary_account: beneficiary,
                ordering_party: f[7].replace('|', " "),
                beneficiary_party: f[8].replace('|', " "),
                title: f[11].replace('|', " "),
                classification: f[14].clone(),
            }
        })
        .collect()
}

#[test]
fn identified_credits_round_trip_through_elixir0() {
    for (profile, charset) in [
        (BankProfile::PkoBp, Charset::Cp852),
        (BankProfile::MbankCollect, Charset::Cp1250),
        (BankProfile::Pekao, Charset::Utf8),
    ] {
        let spec = BankSimSpec {
            charset: SimCharset::Iso8859_2,
            ..BankSimSpec::new(31, profile)
        };
        let (bytes, truth) = generate(&spec);
        let dir = directory(&spec, &truth);
        let account = Nrb::parse(&truth.account).unwrap();
        let mut payments = Vec::new();
        for s in parse_statements_with(&bytes[..], "e.sta", options(&spec)) {
            for tx in s.expect("clean").transactions {
                let id = identify(&tx, &dir);
                if let Some(p) = ElixirPayment::from_credit(&tx, &account, &id, "GMINA ŁĄCK") {
                    payments.push(p);
                }
            }
        }
        let credits = truth.entries.iter().filter(|e| e.credit).count();
        assert_eq!(
            payments.len(),
            credits,
            "{profile:?}: one record per credit"
        );
        let mut w = ElixirWriter::new(Vec::new(), charset);
        for p in &payments {
            w.write(p).expect("writable");
        }
        assert_eq!(w.records(), payments.len());
        let out = w.into_inner();
        let back = read_records(&out, charset);
        assert_eq!(back, payments, "{profile:?}");
        assert!(back
            .iter()
            .all(|p| p.code == CREDIT_TRANSFER && p.classification == STANDARD_CLASSIFICATION));
        // Virtual-account credits name the taxpayer's virtual account as beneficiary.
        assert!(back.iter().any(|p| p.beneficiary_account != account));
    }
}

#[test]
fn unwritable_records_are_refused_whole() {
    let nrb = Nrb::parse("61109010140000071219812874").unwrap();
    let p = ElixirPayment {
        code: CREDIT_TRANSFER,
        date: NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
        amount: Amount::from_grosze(12345).unwrap(),
        ordering_account: nrb.clone(),
        beneficiary_account: nrb,
        ordering_party: "Jan \"Kowalski\"".into(),
        beneficiary_party: "Gmina".into(),
        title: "Podatek".into(),
        classification: STANDARD_CLASSIFICATION.into(),
    };
    let mut w = ElixirWriter::new(Vec::new(), Charset::Cp852);
    let e = w.write(&p).unwrap_err();
    assert!(
        matches!(
            e,
            ElixirError::Field {
                record: 1,
                field: "ordering party",
                ..
            }
        ),
        "{e}"
    );
    let p2 = ElixirPayment {
        ordering_party: "Jan Kowalski".into(),
        title: "Podatek €".into(),
        ..p
    };
    assert!(w.write(&p2).is_err(), "€ has no CP852 code");
    assert_eq!(w.records(), 0);
    assert!(w.into_inner().is_empty(), "nothing half-written");
}
