//! Cross-check against an independent MT940 implementation: the Python `mt-940` package
//! (WoLpH/mt940, PyPI `mt-940`) must read the same entries — amounts, dates, references — from
//! the same files as this connector. Skipped, with the reason printed, when Python or the
//! package is missing.

mod common;

use common::*;
use gsko_bank::parse_statements_with;
use gsko_sim::bank::BankSimSpec;
use std::process::Command;

/// Prints one JSON object per entry: statement reference, signed amount, dates, references.
const SCRIPT: &str = r#"
import sys, json, mt940
path, enc = sys.argv[1], sys.argv[2]
with open(path, 'rb') as f:
    data = f.read().decode(enc)
ts = mt940.models.Transactions()
ts.parse(data)
out = []
for tx in ts:
    d = tx.data
    out.append({
        'amount': str(d['amount'].amount),
        'date': str(d['date']),
        'entry_date': str(d.get('entry_date')) if d.get('entry_date') else None,
        'status': d['status'],
        'customer_reference': d.get('customer_reference'),
        'bank_reference': d.get('bank_reference'),
    })
print(json.dumps(out))
"#;

fn python_available() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import mt940"])
        .output()
    {
        Err(e) => Err(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "the Python mt-940 package is missing (pip install mt-940): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => Ok(()),
    }
}

fn zloty(grosze: i64) -> String {
    let sign = if grosze < 0 { "-" } else { "" };
    let g = grosze.abs();
    format!("{sign}{}.{:02}", g / 100, g % 100)
}

#[test]
fn python_mt940_reads_the_same_entries() {
    if let Err(reason) = python_available() {
        println!("SKIPPED python_mt940_reads_the_same_entries: {reason}");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (seed, (profile, cs, crlf)) in profiles().into_iter().enumerate() {
        let spec = BankSimSpec {
            charset: cs,
            crlf,
            ..BankSimSpec::new(100 + seed as u64, profile)
        };
        let (bytes, _) = generate(&spec);
        let path = dir.path().join(format!("{seed}.sta"));
        std::fs::write(&path, &bytes).expect("write statement");

        let ours: Vec<serde_json::Value> =
            parse_statements_with(&bytes[..], "x.sta", options(&spec))
                .map(|s| s.expect("clean file"))
                .flat_map(|s| s.transactions)
                .map(|t| {
                    let signed = if t.mark.is_inflow() {
                        t.amount.grosze()
                    } else {
                        -t.amount.grosze()
                    };
                    serde_json::json!({
                        "amount": zloty(signed),
                        "date": t.value_date.to_string(),
                        "entry_date": t.entry_date.map(|d| d.to_string()),
                        "status": serde_json::to_value(t.mark).unwrap(),
                        "customer_reference": t.customer_reference,
                        "bank_reference": t.bank_reference,
                    })
                })
                .collect();

        let out = Command::new("python3")
            .args(["-c", SCRIPT])
            .arg(&path)
            .arg(cs.python_name())
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "{profile:?}: python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("python printed JSON");
        assert_eq!(ours.len(), theirs.len(), "{profile:?}/{cs:?}: entry count");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{profile:?}/{cs:?}: entry {i}");
        }
        println!(
            "{profile:?}/{cs:?}: python mt-940 agrees on {} entries",
            ours.len()
        );
    }
}
