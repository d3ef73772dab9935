//! Writes one simulated RADIX export to stdout or a directory and prints how long it took.
//!
//! `cargo run --release -p gsko-sim --example radix_export -- <tenant> <taxpayers> <seed> [dir]`

use gsko_sim::{generate_to_dir, write_export, RadixExportSpec};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tenant = args.first().map_or("0201043", String::as_str);
    let taxpayers = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let spec = RadixExportSpec::new(tenant, taxpayers, seed, 2026);
    let started = Instant::now();
    match args.get(3) {
        Some(dir) => {
            let path = generate_to_dir(&spec, std::path::Path::new(dir))?;
            eprintln!("{} in {:?}", path.display(), started.elapsed());
        }
        None => {
            let s = write_export(&spec, std::io::stdout().lock())?;
            eprintln!("{s:?} in {:?}", started.elapsed());
        }
    }
    Ok(())
}
