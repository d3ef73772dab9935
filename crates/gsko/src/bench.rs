//! `gsko bench`: one end-to-end import measured, not asserted. A generated export goes
//! file → bus → projector → store, in production mode (RabbitMQ + PostgreSQL) and in embedded
//! mode (in-process journaled bus + SQLite). Prints events per second, wall time and the peak
//! resident memory of this process — which is the daemon: connector, bus client and projector.

use anyhow::{bail, Context, Result};
use gsko_bus::{Bus, Topology};
use gsko_store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct BenchOptions {
    pub taxpayers: usize,
    pub mode: String,
    pub database_url: String,
    pub amqp_url: String,
}

struct Row {
    mode: &'static str,
    events: u64,
    wall: Duration,
    peak_rss_kb: u64,
}

/// Peak resident set size of this process (VmHWM), in kB.
pub(crate) fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resets VmHWM so each mode's peak is its own (Linux: writing 5 to clear_refs).
pub(crate) fn reset_peak_rss() {
    drop(std::fs::write("/proc/self/clear_refs", "5"));
}

pub async fn run(o: BenchOptions) -> Result<()> {
    let modes: Vec<&str> = match o.mode.as_str() {
        "both" => vec!["production", "embedded"],
        "production" => vec!["production"],
        "embedded" => vec!["embedded"],
        other => bail!("--mode must be production, embedded or both, not {other:?}"),
    };
    let work = tempfile_dir()?;
    let tenant = gsko_sim::MUNICIPALITIES[0].teryt;
    eprintln!("bench: generating an export of {} taxpayers …", o.taxpayers);
    let t = Instant::now();
    let export = crate::demo::generate(
        &work.join("gen"),
        Some(tenant),
        o.taxpayers,
        42,
        2026,
        "full",
        Vec::new(),
    )?;
    let size = std::fs::metadata(&export)?.len();
    eprintln!(
        "bench: {} MB generated in {:.1} s",
        size / 1_000_000,
        t.elapsed().as_secs_f64()
    );

    let mut rows = Vec::new();
    for mode in modes {
        let dir = work.join(mode);
        std::fs::create_dir_all(&dir)?;
        let (store, bus): (Arc<dyn Store>, Arc<dyn Bus>) = match mode {
            "production" => {
                let db = fresh_database(&o.database_url).await?;
                let store = gsko_store::PgStore::connect(&db, 8)
                    .await
                    .context("connecting to PostgreSQL")?;
                let bus = gsko_bus::AmqpBus::connect(&o.amqp_url, Topology::default())
                    .await
                    .context("connecting to RabbitMQ")?;
                (Arc::new(store), Arc::new(bus))
            }
            _ => {
                let store = gsko_store::SqliteStore::open(&dir.join("bench.sqlite")).await?;
                let bus = gsko_bus::MemoryBus::open(
                    Some(&dir.join("journal.sqlite")),
                    Topology::default(),
                )
                .await?;
                (Arc::new(store), Arc::new(bus))
            }
        };
        let row = one(mode, store, bus, &export, &dir, tenant)
            .await
            .with_context(|| format!("{mode} mode"))?;
        rows.push(row);
    }
    drop(std::fs::remove_dir_all(&work));

    println!();
    println!(
        "GSKO end-to-end import: {} taxpayers, export {:.1} MB (file → bus → projector → store)",
        o.taxpayers,
        size as f64 / 1e6
    );
    println!("| mode | events | wall time | events/s | peak RSS |");
    println!("|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} s | {:.0} | {:.0} MB |",
            match r.mode {
                "production" => "production (RabbitMQ + PostgreSQL)",
                _ => "embedded (in-process bus + SQLite)",
            },
            r.events,
            r.wall.as_secs_f64(),
            r.events as f64 / r.wall.as_secs_f64(),
            r.peak_rss_kb as f64 / 1024.0
        );
    }
    Ok(())
}

async fn one(
    mode: &'static str,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    export: &Path,
    dir: &Path,
    tenant: &str,
) -> Result<Row> {
    let metrics = gsko_query::Registry::new();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let workers = if mode == "production" { 2 } else { 1 };
    let pc = gsko_config::ProjectorConfig {
        batch_size: 500,
        linger_ms: 20,
        workers,
    };
    // Drain what an earlier, interrupted run may have left in the queue before measuring.
    let (handles, stats) = crate::daemon::spawn_projectors(
        &bus,
        &store,
        &pc,
        1000,
        gsko_bus::topology::PROJECTOR_QUEUE,
        &metrics,
        &rx,
    )
    .await?;
    let dirs = gsko_radix::TenantDirs::new(dir.join("radix"));
    dirs.ensure()?;
    let file = dirs
        .inbox()
        .join(export.file_name().context("export name")?);
    std::fs::copy(export, &file)?;
    let teryt = gsko_model::Teryt::parse(tenant)?;
    let before = stats.handled();
    reset_peak_rss();
    let start = Instant::now();
    let report = gsko_radix::import_file(
        &file,
        &teryt,
        bus.as_ref(),
        &dirs,
        &gsko_radix::ImportOptions::default(),
    )
    .await?;
    let published = crate::daemon::events_published(&report);
    let target = before + published;
    while stats.handled() < target {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = start.elapsed();
    let peak = peak_rss_kb();
    tx.send(true).ok();
    for h in handles {
        drop(h.await);
    }
    let counts = store.counts(&teryt).await?;
    eprintln!(
        "bench: {mode}: {published} events in {:.1} s; view holds {:?}",
        wall.as_secs_f64(),
        counts
    );
    Ok(Row {
        mode,
        events: published,
        wall,
        peak_rss_kb: peak,
    })
}

pub(crate) fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("gsko-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Creates a fresh database on the server of `url` and returns its URL; an earlier benchmark
/// database of the same name is dropped first.
async fn fresh_database(url: &str) -> Result<String> {
    fresh_database_named(url, "gsko_bench").await
}

/// [`fresh_database`] with another name (`[a-z_]` only).
pub(crate) async fn fresh_database_named(url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

#[derive(Clone, Copy)]
pub(crate) struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// p50, p99 and max (sorts `v`); `None` for an empty list.
pub(crate) fn percentiles(v: &mut [Duration]) -> Option<Percentiles> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some(Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        max: v[v.len() - 1],
    })
}
