//! `gsko bench letters`: letters pulled from an ePUAP box and published per second, measured,
//! not asserted, in production mode (RabbitMQ) and embedded mode (in-process journaled bus).
//!
//! N letters signed with a (simulated) podpis zaufany, each with its attachments, wait in a box
//! of the in-process ePUAP simulator. One [`Receiver`] takes them as the daemon does: signed
//! WS-Pull `pobierzNastepny` → the document and its attachments stored durably → the XAdES
//! signature verified → `letter.received` and `letter.register` published, waiting for the
//! broker's confirm → `potwierdzOdebranie`. The clock runs from the first call to the last
//! confirm. No projector or EZD connector runs: the messages wait in their queues and are
//! drained (and counted) after the clock stops.
//!
//! Signing the letters (`xmlsec1` once per letter) happens before, untimed. The simulator
//! runs in this process and checks the WS-Security signature of every request with `xmlsec1`
//! (two per letter), so its cost is part of the wall time and its memory part of the peak
//! RSS; the "XAdES verify only" and "store only" rows show what the connector's own signature
//! check and its synced writes cost, apart.

use crate::bench::{peak_rss_kb, reset_peak_rss, tempfile_dir};
use anyhow::{bail, Context, Result};
use gsko_bus::{Bus, BusError, Outgoing, Subscription, Topology};
use gsko_epuap::client::{PullClient, RetryPolicy};
use gsko_epuap::pull::BoxAddress;
use gsko_epuap::receiver::{FileStore, Receiver};
use gsko_epuap::wssec::SigningIdentity;
use gsko_epuap::xades::XadesTrust;
use gsko_model::{SignatureStatus, Teryt};
use gsko_sim::epuap::{EpuapSim, EpuapSimConfig, LetterSignature, LetterSpec, SimLetter};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct LetterBenchOptions {
    pub letters: usize,
    pub attachments: usize,
    pub mode: String,
    pub amqp_url: String,
}

/// One line of the table.
struct Row {
    mode: &'static str,
    what: String,
    count: String,
    wall: Duration,
    rate: String,
    p50: Option<Duration>,
    p99: Option<Duration>,
    stored: Option<u64>,
    peak_rss_kb: Option<u64>,
}

/// The office's ePUAP podmiot and box (the simulator's only box).
const PODMIOT: &str = "umboleslawiec";
const BOX: &str = "skrytka";
/// `run_once` calls in a row that take nothing while letters still wait: something is stuck.
const MAX_IDLE_RUNS: u32 = 3;

pub async fn run(o: LetterBenchOptions) -> Result<()> {
    let modes: Vec<&'static str> = match o.mode.as_str() {
        "both" => vec!["production", "embedded"],
        "production" => vec!["production"],
        "embedded" => vec!["embedded"],
        other => bail!("--mode must be production, embedded or both, not {other:?}"),
    };
    if o.letters == 0 {
        bail!("--letters must be at least 1");
    }
    let work = tempfile_dir()?.join("letters");
    std::fs::create_dir_all(&work)?;
    let tenant = Teryt::parse(gsko_sim::MUNICIPALITIES[0].teryt)?;
    let identity = Arc::new(office_identity(&work)?);
    let trust = XadesTrust::with_pz_certificates_pem(&gsko_sim::xades::coi_certificate().cert_pem)
        .context("the simulated COI certificate")?;

    let t = Instant::now();
    let (n, attachments) = (o.letters, o.attachments);
    let letters = tokio::task::spawn_blocking(move || generate(n, attachments))
        .await
        .context("the letter generator panicked")??;
    let generated = t.elapsed();
    let letter_bytes: usize = letters.iter().map(|l| l.content.len()).sum();
    eprintln!(
        "bench: {n} signed letters ({:.1} MB of documents, {attachments} attachments each) generated in {:.1} s",
        letter_bytes as f64 / 1e6,
        generated.as_secs_f64()
    );

    let mut rows = Vec::new();
    for mode in modes {
        let dir = work.join(mode);
        std::fs::create_dir_all(&dir)?;
        let bus: Arc<dyn Bus> = match mode {
            "production" => Arc::new(
                gsko_bus::AmqpBus::connect(&o.amqp_url, Topology::default())
                    .await
                    .context("connecting to RabbitMQ")?,
            ),
            _ => Arc::new(
                gsko_bus::MemoryBus::open(Some(&dir.join("journal.sqlite")), Topology::default())
                    .await?,
            ),
        };
        let measured = receive(mode, &bus, &letters, &identity, &trust, &dir, &tenant)
            .await
            .with_context(|| format!("{mode} mode: ePUAP letters"))?;
        rows.extend(measured);
    }
    let letters = Arc::new(letters);
    let row = {
        let (letters, trust) = (letters.clone(), trust.clone());
        tokio::task::spawn_blocking(move || verify_only(&letters, &trust))
            .await
            .context("verifying the signatures panicked")??
    };
    rows.push(row);
    let row = {
        let (letters, dir) = (letters.clone(), work.join("store-only"));
        tokio::task::spawn_blocking(move || store_only(&letters, &dir))
            .await
            .context("storing the letters panicked")??
    };
    rows.push(row);
    drop(std::fs::remove_dir_all(&work));

    println!();
    println!(
        "GSKO ePUAP letters: {n} letters signed with podpis zaufany, {attachments} attachments each, {:.0} kB per document on average (WS-Pull pobierzNastepny → store → XAdES verify → letter.received + letter.register published and confirmed → potwierdzOdebranie); signing them took {:.1} s before the clock",
        letter_bytes as f64 / n as f64 / 1e3,
        generated.as_secs_f64()
    );
    println!("| mode | measurement | count | wall time | rate | p50 | p99 | stored | peak RSS |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let ms = |d: Option<Duration>| {
        d.map_or_else(
            || "–".to_owned(),
            |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
        )
    };
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} s | {} | {} | {} | {} | {} |",
            match r.mode {
                "production" => "production (RabbitMQ)",
                "embedded" => "embedded (in-process journaled bus)",
                _ => "in-process",
            },
            r.what,
            r.count,
            r.wall.as_secs_f64(),
            r.rate,
            ms(r.p50),
            ms(r.p99),
            r.stored
                .map_or_else(|| "–".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6)),
            r.peak_rss_kb.map_or_else(
                || "–".to_owned(),
                |kb| format!("{:.0} MB", kb as f64 / 1024.0)
            )
        );
    }
    println!("p50/p99 of the receive rows: one letter's cycle (from the previous letter's publish confirmed to its own: potwierdzOdebranie, pobierzNastepny, store, verify, publish); of the publish rows: one publish of the two messages until the broker confirmed it. The receive rows' peak RSS includes the in-process simulator and the letters waiting in it; the simulator checks every WS-Pull request's signature with xmlsec1 (two per letter), which is most of the cycle: what the verify-only, store-only and publish rows do not account for is the two signed SOAP round trips. Stored: the content-addressed files written (documents and attachments). The receiver's info line per letter is written unless GSKO_LOG says otherwise (GSKO_LOG=warn).");
    Ok(())
}

/// A self-signed system certificate for the office, made with `openssl` as an admin would
/// (the simulator accepts any registered certificate).
fn office_identity(dir: &Path) -> Result<SigningIdentity> {
    let (cert, key) = (dir.join("office.crt"), dir.join("office.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={PODMIOT} system")])
        .output()
        .context("running openssl to make the office's system certificate")?;
    if !out.status.success() {
        bail!(
            "openssl could not make the office's system certificate: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    SigningIdentity::from_pem(&read(&cert)?, &read(&key)?)
        .context("the office's system certificate made by openssl")
}

/// `n` deterministic letters signed with podpis zaufany, generated on every core (signing runs
/// `xmlsec1` once per letter).
fn generate(n: usize, attachments: usize) -> Result<Vec<SimLetter>> {
    // Made once, before the threads race for it.
    gsko_sim::xades::coi_certificate();
    let date = gsko_sim::SimDate::new(2026, 11, 20).context("a valid letter date")?;
    let spec = LetterSpec {
        signature: LetterSignature::PodpisZaufany,
        attachments,
        ..LetterSpec::new("Urząd Miasta Bolesławiec", "Bolesławiec", "59-700", date)
    };
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let mut letters: Vec<(usize, SimLetter)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let spec = &spec;
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, gsko_sim::epuap::generate_letter(i as u64, spec).letter))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join())
            .collect::<std::thread::Result<Vec<_>>>()
    })
    .map_err(|_| anyhow::anyhow!("generating the letters failed (is xmlsec1 installed?)"))?
    .into_iter()
    .flatten()
    .collect();
    letters.sort_by_key(|(i, _)| *i);
    Ok(letters.into_iter().map(|(_, l)| l).collect())
}

/// The connector's XAdES check alone, letter after letter on one thread.
fn verify_only(letters: &[SimLetter], trust: &XadesTrust) -> Result<Row> {
    let mut each = Vec::with_capacity(letters.len());
    let mut not_valid = 0usize;
    let start = Instant::now();
    for l in letters {
        let t = Instant::now();
        let report = gsko_epuap::xades::verify_document(&l.content, trust);
        each.push(t.elapsed());
        if report.status() != SignatureStatus::Valid {
            not_valid += 1;
        }
    }
    let wall = start.elapsed();
    if not_valid > 0 {
        bail!(
            "{not_valid} of {} generated letters do not verify as a valid podpis zaufany",
            letters.len()
        );
    }
    let (p50, p99) = percentiles(&mut each);
    Ok(Row {
        mode: "in-process",
        what: "XAdES verify only (`verify_document`, one thread)".into(),
        count: format!("{} letters", letters.len()),
        wall,
        rate: format!("{:.0} letters/s", letters.len() as f64 / wall.as_secs_f64()),
        p50,
        p99,
        stored: None,
        peak_rss_kb: None,
    })
}

/// What the receiver writes for each letter, alone: the document read for its attachments,
/// then the document and every attachment stored (each file synced, as in the receiver).
fn store_only(letters: &[SimLetter], dir: &Path) -> Result<Row> {
    let files = FileStore::new(dir);
    let mut each = Vec::with_capacity(letters.len());
    let start = Instant::now();
    for l in letters {
        let t = Instant::now();
        files
            .put(&l.content)
            .with_context(|| format!("storing a document under {}", dir.display()))?;
        let parsed = gsko_epuap::document::parse(
            &l.content,
            gsko_epuap::document::DEFAULT_MAX_ATTACHMENT_BYTES,
        )
        .context("reading a generated letter")?;
        for content in parsed.attachments.iter().filter_map(|a| a.content.as_ref()) {
            files
                .put(content)
                .with_context(|| format!("storing an attachment under {}", dir.display()))?;
        }
        each.push(t.elapsed());
    }
    let wall = start.elapsed();
    let stored = dir_size(dir)?;
    let (p50, p99) = percentiles(&mut each);
    Ok(Row {
        mode: "in-process",
        what: "store only (parse + document and attachments written and synced, one thread)".into(),
        count: format!("{} letters", letters.len()),
        wall,
        rate: format!("{:.0} letters/s", letters.len() as f64 / wall.as_secs_f64()),
        p50,
        p99,
        stored: Some(stored),
        peak_rss_kb: None,
    })
}

/// The bus the receiver publishes to, noting when each publish returned (the broker confirmed
/// it) and how long it took.
struct Timed {
    inner: Arc<dyn Bus>,
    publishes: Mutex<Vec<(Instant, Duration)>>,
}

#[async_trait::async_trait]
impl Bus for Timed {
    async fn publish(&self, batch: &[Outgoing]) -> Result<(), BusError> {
        let t = Instant::now();
        self.inner.publish(batch).await?;
        let done = Instant::now();
        self.publishes
            .lock()
            .expect("no panic while holding the lock")
            .push((done, done - t));
        Ok(())
    }

    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.inner.subscribe(queue, prefetch).await
    }
}

async fn receive(
    mode: &'static str,
    bus: &Arc<dyn Bus>,
    letters: &[SimLetter],
    identity: &Arc<SigningIdentity>,
    trust: &XadesTrust,
    dir: &Path,
    tenant: &Teryt,
) -> Result<Vec<Row>> {
    let n = letters.len();
    let sim = EpuapSim::start(
        EpuapSimConfig::new()
            .with_box(PODMIOT, BOX)
            .with_certificate(PODMIOT, identity.certificate_der().to_vec()),
    )
    .await
    .context("starting the ePUAP simulator")?;
    let sim_box = gsko_sim::epuap::BoxAddress::new(PODMIOT, BOX);
    for l in letters {
        sim.deposit(&sim_box, l.clone())?;
    }
    // Whatever an earlier, interrupted run left in the queues goes first.
    for queue in [
        gsko_bus::topology::PROJECTOR_QUEUE,
        gsko_bus::topology::REGISTER_QUEUE,
    ] {
        let left = drain(bus, queue).await?;
        if left > 0 {
            eprintln!("bench: {mode}: {left} message(s) left in {queue} by an earlier run drained");
        }
    }

    let files = dir.join("documents");
    let receiver = Receiver {
        tenant: tenant.clone(),
        client: PullClient::new(
            sim.pull_url(),
            identity.clone(),
            BoxAddress::new(PODMIOT, BOX),
            RetryPolicy::default(),
        )?,
        files: FileStore::new(&files),
        max_attachment_bytes: gsko_epuap::document::DEFAULT_MAX_ATTACHMENT_BYTES,
        signatures: trust.clone(),
        receipts: None,
    };
    let timed = Timed {
        inner: bus.clone(),
        publishes: Mutex::new(Vec::with_capacity(n)),
    };

    eprintln!("bench: {mode}: pulling {n} letters …");
    reset_peak_rss();
    let start = Instant::now();
    let (mut received, mut idle) = (0u64, 0u32);
    while !sim.pending(&sim_box).is_empty() {
        let report = receiver.run_once(&timed).await?;
        received += report.received;
        if report.received == 0 {
            idle += 1;
            if idle >= MAX_IDLE_RUNS {
                bail!(
                    "{MAX_IDLE_RUNS} WS-Pull runs took nothing: {received} of {n} letters received, {} waiting",
                    sim.pending(&sim_box).len()
                );
            }
        } else {
            idle = 0;
        }
    }
    let wall = start.elapsed();
    let peak = peak_rss_kb();
    let confirmed = sim.confirmed(&sim_box).len();
    if confirmed != n || received != n as u64 {
        bail!("{n} letters deposited, {received} received, {confirmed} confirmed at the simulator");
    }
    let stored = dir_size(&files)?;
    let publishes = timed
        .publishes
        .into_inner()
        .expect("no panic while holding the lock");
    let events = drain(bus, gsko_bus::topology::PROJECTOR_QUEUE).await?;
    let commands = drain(bus, gsko_bus::topology::REGISTER_QUEUE).await?;
    if (events, commands) != (n, n) {
        bail!("{n} letters received, but {events} letter.received events and {commands} letter.register commands found in the queues");
    }
    drop(sim);

    let mut cycles = Vec::with_capacity(n);
    let mut previous = start;
    for (done, _) in &publishes {
        cycles.push(*done - previous);
        previous = *done;
    }
    let (p50, p99) = percentiles(&mut cycles);
    let mut confirms: Vec<Duration> = publishes.iter().map(|(_, took)| *took).collect();
    let publishing: Duration = confirms.iter().sum();
    let (c50, c99) = percentiles(&mut confirms);
    eprintln!(
        "bench: {mode}: {n} letters in {:.1} s ({:.1} s of it waiting for the broker's confirms), {:.1} MB stored",
        wall.as_secs_f64(),
        publishing.as_secs_f64(),
        stored as f64 / 1e6
    );
    Ok(vec![
        Row {
            mode,
            what: "receive: WS-Pull → stored → verified → published → confirmed".into(),
            count: format!("{n} letters"),
            wall,
            rate: format!("{:.1} letters/s", n as f64 / wall.as_secs_f64()),
            p50,
            p99,
            stored: Some(stored),
            peak_rss_kb: Some(peak),
        },
        Row {
            mode,
            what: "of which: publish until the broker's confirm".into(),
            count: format!("{} batches of 2 messages", publishes.len()),
            wall: publishing,
            rate: format!(
                "{:.0} batches/s",
                publishes.len() as f64 / publishing.as_secs_f64()
            ),
            p50: c50,
            p99: c99,
            stored: None,
            peak_rss_kb: None,
        },
    ])
}

/// Takes and acknowledges everything waiting in `queue`; returns how many.
async fn drain(bus: &Arc<dyn Bus>, queue: &str) -> Result<usize> {
    let mut sub = bus
        .subscribe(queue, 500)
        .await
        .with_context(|| format!("subscribing to {queue}"))?;
    let mut n = 0;
    loop {
        let batch = sub
            .next_batch(500, Duration::from_millis(500), Duration::from_millis(20))
            .await
            .with_context(|| format!("draining {queue}"))?;
        if batch.is_empty() {
            return Ok(n);
        }
        n += batch.len();
        sub.ack(batch)
            .await
            .with_context(|| format!("acknowledging in {queue}"))?;
    }
}

/// Bytes in the files under `dir`.
fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// p50 and p99 (sorts `v`); `None` for an empty list.
fn percentiles(v: &mut [Duration]) -> (Option<Duration>, Option<Duration>) {
    if v.is_empty() {
        return (None, None);
    }
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (Some(at(0.50)), Some(at(0.99)))
}
