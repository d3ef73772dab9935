//! The verbatim samples of spec §4.3 (Pekao via railslove/epics, mBank via WoLpH/mt940), read
//! by this connector and, where Python's `mt-940` is installed, by it as well.

use gsko_bank::{
    parse_statements, parse_statements_with, Charset, Identification, Mark, Mt940Error,
    ParseOptions, VirtualAccountDirectory, VirtualRange,
};

/// The Pekao sample, completed with the closing balance it implies (the spec quotes only the
/// first entry), and with the `Ę` as the CP852 byte 0xA8 the bank wrote.
fn pekao_sample() -> Vec<u8> {
    let mut v = Vec::new();
    for line in [
        &b":20:ST081002/1"[..],
        b":25:/PL12124012551111000015237873",
        b":28C:00152",
        b":60F:C081130PLN000000002535,03",
        b":61:0810021002DN000000001273,23N641NONREF",
        b":86:641^00PRZELEW MI\xa8DZYBANKOWY BETA/^34000",
        b"^3019401076^38PL54194010765205871800000000",
        b"^20wynagrodzenie z tytulu umow^21y o prac e",
        b"^32BANKA MONIKA",
        b"^62PODCHORAZYCH 16/1580-298 GD^63ANSK",
        b":62F:C081130PLN000000001261,80",
        b"-",
    ] {
        v.extend_from_slice(line);
        v.extend_from_slice(b"\r\n");
    }
    v
}

const MBANK: &str = ":20:ST170119CYC/1
:25:PL29114010810000267002001002
:28C:1/1
:60F:C170119PLN0,40
:61:1701190119CN0,01NTRFNONREF//MB170119012058
911-TRANSAKCJA IPH
:86:911 TRANSAKCJA COLLECT; ID IPH: XX000000000001; Z RACH.: 
56114010810000267002001001; OD: JAN NOWAK  
UL. NIJAKA 1 M 2 31-234 KRAKOW; TYT.: PRZELEW SRODKOW   ; 
TNR: 179171073864111.010001
:62F:C170119PLN0,41
:64:C170119PLN0,41
-
";

#[test]
fn pekao_sample_in_cp852() {
    let bytes = pekao_sample();
    let opts = ParseOptions::default().with_charset(Charset::Cp852);
    let items: Vec<_> = parse_statements_with(&bytes[..], "pekao.sta", opts).collect();
    assert_eq!(items.len(), 1, "{items:?}");
    let s = items[0].as_ref().unwrap();
    assert!(s.trailer.balance_verified);
    assert_eq!(
        s.header.account.as_ref().unwrap().as_str(),
        "12124012551111000015237873"
    );
    let tx = &s.transactions[0];
    assert_eq!(tx.mark, Mark::Debit);
    assert_eq!(tx.amount.grosze(), 127_323);
    let d = tx.details.as_ref().unwrap();
    assert_eq!(d.layout, "pekao");
    assert_eq!(d.operation.as_deref(), Some("PRZELEW MIĘDZYBANKOWY BETA/"));
    assert_eq!(
        d.counterparty_address.as_deref(),
        Some("PODCHORAZYCH 16/1580-298 GDANSK")
    );

    // Read as UTF-8 (the default), the CP852 byte is reported, with its line and field.
    let items: Vec<_> = parse_statements(&bytes[..], "pekao.sta").collect();
    let Err(e @ Mt940Error::Encoding { at, .. }) = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!((at.line, at.statement.as_str()), (6, "ST081002/1"));
    assert_eq!(e.field(), Some(":86:"));
}

#[test]
fn mbank_collect_sample_identifies_the_payer_id() {
    let items: Vec<_> = parse_statements(MBANK.as_bytes(), "mbank.sta").collect();
    let s = items[0].as_ref().unwrap();
    assert!(s.trailer.balance_verified);
    let tx = &s.transactions[0];
    let mut dir = VirtualAccountDirectory::new();
    // The statement account's sort code and client code, payer ids in the last 12 digits.
    dir.add_range(VirtualRange {
        bban_prefix: "114010810000".into(),
    });
    let nrb = gsko_bank::identify::nrb_from_bban("114010810000000000000001").unwrap();
    let account = gsko_bank::AccountRef {
        tenant: gsko_model::Teryt::parse("1261011").unwrap(),
        account_key: "K1".into(),
    };
    dir.insert(&gsko_model::Nrb::parse(&nrb).unwrap(), account.clone());
    match gsko_bank::identify(tx, &dir) {
        Identification::ByVirtualAccount { nrb: n, account: a } => {
            assert_eq!(n.as_str(), nrb);
            assert_eq!(a, account);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn python_mt940_reads_the_spec_samples_alike() {
    let script = r#"
import sys, mt940
data = open(sys.argv[1], 'rb').read().decode(sys.argv[2])
ts = mt940.models.Transactions()
ts.parse(data)
for tx in ts:
    d = tx.data
    print(d['amount'].amount, d['date'], d.get('entry_date'), d['status'], d.get('customer_reference'), d.get('bank_reference'))
"#;
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes, enc, expected) in [
        (
            "pekao.sta",
            pekao_sample(),
            "cp852",
            "-1273.23 2008-10-02 2008-10-02 D NONREF None",
        ),
        (
            "mbank.sta",
            MBANK.as_bytes().to_vec(),
            "utf-8",
            "0.01 2017-01-19 2017-01-19 C NONREF MB170119012058",
        ),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let out = match std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .arg(enc)
            .output()
        {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                println!(
                    "SKIPPED: python3 mt-940 unavailable: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                return;
            }
            Err(e) => {
                println!("SKIPPED: python3 not runnable: {e}");
                return;
            }
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected,
            "{name}"
        );
        // The same facts from this connector.
        let opts = ParseOptions::default().with_charset(if enc == "cp852" {
            Charset::Cp852
        } else {
            Charset::Utf8
        });
        let s = parse_statements_with(&bytes[..], name, opts)
            .next()
            .unwrap()
            .unwrap();
        let t = &s.transactions[0];
        let sign = if t.mark.is_inflow() { "" } else { "-" };
        let ours = format!(
            "{sign}{} {} {} {} {} {}",
            t.amount,
            t.value_date,
            t.entry_date.unwrap(),
            serde_json::to_value(t.mark).unwrap().as_str().unwrap(),
            t.customer_reference,
            t.bank_reference.as_deref().unwrap_or("None")
        );
        assert_eq!(ours, expected, "{name}");
    }
}
