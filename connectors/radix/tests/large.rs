//! A 50 MB export, generated here by repeating records, parses with flat memory. The time is
//! printed, never asserted (CI machines differ).

use gsko_radix::{RecordSource, SourceItem};
use std::io::{BufWriter, Write};
use std::time::Instant;

const TARGET_BYTES: u64 = 50 * 1024 * 1024;

/// Peak resident memory of this process in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn write_section(
    w: &mut impl Write,
    name: &str,
    n: u64,
    record: impl Fn(u64) -> String,
) -> std::io::Result<()> {
    writeln!(w, "  <{name}>")?;
    for i in 0..n {
        w.write_all(record(i).as_bytes())?;
    }
    writeln!(w, "  </{name}>")
}

#[test]
fn a_50_mb_export_parses_with_flat_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("large.xml");
    // one "unit" of records per taxpayer: taxpayer, account, liability, two postings, balance
    let taxpayer = |i: u64| {
        format!("    <taxpayer id=\"T{i:08}\" version=\"{i}\" kind=\"natural\">\n      <pesel>44051401359</pesel>\n      <name>Jan Kowalski-Żółkiewski {i}</name>\n      <address>\n        <street>ul. Marszałkowska</street>\n        <building>{i}</building>\n        <postal-code>00-590</postal-code>\n        <city>Warszawa</city>\n      </address>\n      <contact kind=\"email\">jan{i}@example.pl</contact>\n    </taxpayer>\n")
    };
    let account = |i: u64| {
        format!("    <account id=\"A{i:08}\" version=\"1\" levy=\"property\">\n      <holder taxpayer=\"T{i:08}\" role=\"owner\"/>\n      <virtual-account>61109010140000071219812874</virtual-account>\n    </account>\n")
    };
    let liability = |i: u64| {
        format!("    <liability id=\"L{i:08}\" version=\"2\" account=\"A{i:08}\" levy=\"property\" year=\"2026\" total=\"1003.00\">\n      <decision number=\"FN.3120.{i}.2026\" issued-on=\"2026-02-10\" delivered-on=\"2026-02-20\"/>\n      <installment seq=\"1\" due-date=\"2026-03-15\" amount=\"250.75\"/>\n      <installment seq=\"2\" due-date=\"2026-05-15\" amount=\"250.75\"/>\n      <installment seq=\"3\" due-date=\"2026-09-15\" amount=\"250.75\"/>\n      <installment seq=\"4\" due-date=\"2026-11-15\" amount=\"250.75\"/>\n    </liability>\n")
    };
    let posting = |i: u64| {
        format!("    <posting id=\"P{i:08}a\" version=\"1\" account=\"A{i:08}\" kind=\"charge\" value-date=\"2026-02-20\" amount=\"1003.00\" liability=\"L{i:08}\"/>\n    <posting id=\"P{i:08}b\" version=\"1\" account=\"A{i:08}\" kind=\"payment\" value-date=\"2026-03-14\" amount=\"250.75\" liability=\"L{i:08}\" installment=\"1\">\n      <description>wpłata przelew</description>\n    </posting>\n")
    };
    let balance = |i: u64| {
        format!("    <balance account=\"A{i:08}\" version=\"9\" as-of=\"2026-03-01\" principal=\"752.25\" interest=\"0.00\" costs=\"0.00\" overpayment=\"0.00\"/>\n")
    };
    let unit_bytes: u64 = [
        taxpayer(0),
        account(0),
        liability(0),
        posting(0),
        balance(0),
    ]
    .iter()
    .map(|s| s.len() as u64)
    .sum();
    let n = TARGET_BYTES / unit_bytes + 1;
    {
        let mut w = BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<radix-export xmlns=\"urn:gsko:radix-export:1\" format-version=\"1\" tenant=\"1465011\" kind=\"full\">").unwrap();
        write_section(&mut w, "taxpayers", n, taxpayer).unwrap();
        write_section(&mut w, "accounts", n, account).unwrap();
        write_section(&mut w, "liabilities", n, liability).unwrap();
        write_section(&mut w, "postings", n, posting).unwrap();
        write_section(&mut w, "balances", n, balance).unwrap();
        writeln!(w, "</radix-export>").unwrap();
        w.flush().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size >= TARGET_BYTES);

    let before = peak_rss_kib();
    let start = Instant::now();
    let mut src = gsko_radix::open_xml(&path, None).unwrap();
    let (mut accepted, mut rejected) = (0u64, 0u64);
    while let Some(item) = src.next_item().unwrap() {
        match item {
            SourceItem::Record(_) => accepted += 1,
            SourceItem::Rejected(r) => {
                rejected += 1;
                eprintln!("{}: {}", r.line, r.reason);
            }
        }
    }
    let elapsed = start.elapsed();
    let after = peak_rss_kib();
    println!(
        "parsed {size} bytes, {accepted} records in {elapsed:?} ({:.1} MB/s)",
        size as f64 / 1e6 / elapsed.as_secs_f64()
    );
    assert_eq!(rejected, 0);
    assert_eq!(accepted, n * 6);
    if let (Some(b), Some(a)) = (before, after) {
        println!("peak RSS before {b} KiB, after {a} KiB");
        // Reading the file whole would add at least its 50 MB; streaming adds a few buffers.
        assert!(
            a.saturating_sub(b) < 16 * 1024,
            "peak memory grew by {} KiB while parsing",
            a - b
        );
    }
}
