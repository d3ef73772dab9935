//! A 100,000-entry statement (a main tax account around a due date) is read with flat memory:
//! the record reader keeps only running totals. Prints the time; asserts no timing.

mod common;

use common::*;
use gsko_bank::{identify, Identification, Mt940Reader, Record};
use gsko_sim::bank::{self, BankProfile, BankSimSpec};
use std::io::{BufReader, BufWriter};
use std::time::Instant;

/// Resident set size in KiB (Linux); `None` elsewhere, which skips the memory assertion.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn hundred_thousand_entries_with_flat_memory() {
    let spec = BankSimSpec {
        statements: 1,
        taxpayers: 20_000,
        virtual_credits: 97_000,
        title_credits: 1_500,
        gateway_payouts: 500,
        debits: 1_000,
        keep_truth: false,
        ..BankSimSpec::new(99, BankProfile::PkoBp)
    };
    let dir_tmp = tempfile::tempdir().expect("temp dir");
    let path = dir_tmp.path().join("large.sta");
    let t0 = Instant::now();
    let summary = {
        let f = std::fs::File::create(&path).expect("create");
        let mut w = BufWriter::new(f);
        bank::write_statements(&spec, &mut w).expect("write")
    };
    let size = std::fs::metadata(&path).expect("metadata").len();
    println!(
        "generated {} entries, {} MiB, in {:.2?}",
        summary.entries_written,
        size / (1 << 20),
        t0.elapsed()
    );
    assert_eq!(summary.entries_written, 100_000);
    let dir = directory(&spec, &summary);

    let t1 = Instant::now();
    let f = std::fs::File::open(&path).expect("open");
    let reader = Mt940Reader::new(BufReader::new(f), "large.sta", options(&spec));
    let (mut entries, mut by_virtual, mut trailer) = (0u64, 0u64, None);
    let (mut rss_start, mut rss_max) = (None, 0u64);
    for item in reader {
        match item.expect("clean file") {
            Record::Transaction(tx) => {
                entries += 1;
                if matches!(identify(&tx, &dir), Identification::ByVirtualAccount { .. }) {
                    by_virtual += 1;
                }
                if entries % 5_000 == 0 {
                    if let Some(r) = rss_kib() {
                        rss_start.get_or_insert(r);
                        rss_max = rss_max.max(r);
                    }
                }
            }
            Record::Trailer(t) => trailer = Some(t),
            Record::Header(_) => {}
        }
    }
    let elapsed = t1.elapsed();
    println!(
        "parsed and identified {entries} entries in {elapsed:.2?} ({:.0} entries/s)",
        entries as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(entries, 100_000);
    assert_eq!(by_virtual, 97_000);
    let trailer = trailer.expect("trailer");
    assert!(trailer.balance_verified);
    assert_eq!(trailer.entries, 100_000);
    if let Some(start) = rss_start {
        let growth = rss_max.saturating_sub(start);
        println!("resident memory: {start} KiB after 5,000 entries, at most {rss_max} KiB (+{growth} KiB); file {size} bytes");
        // Keeping the entries would grow by far more than the file's size; flat means a few MiB
        // of allocator noise at most.
        assert!(
            growth < 8 * 1024,
            "memory grew by {growth} KiB while streaming"
        );
    } else {
        println!("no /proc/self/status: memory not measured");
    }
}
