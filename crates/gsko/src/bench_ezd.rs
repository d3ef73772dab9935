//! `gsko bench ezd`: the EZD case service measured, not asserted, in production mode
//! (RabbitMQ + PostgreSQL) and embedded mode (in-process journaled bus + SQLite), against the
//! in-process EZD RP simulator.
//!
//! 1. Registrations per second. N letters (a stored document and one attachment each, signed
//!    by a few hundred generated residents) are published as the ePUAP receiver publishes
//!    them (`letter.received` + `letter.register`, confirmed), all at once. The case service's
//!    consumer registers each in the simulated EZD RP (task → RPW → metadata → a new case, or
//!    the resident's open case) and records it; the clock runs from the first publish to the
//!    last registration recorded. The follower is not running yet.
//! 2. Status change → view. For M cases the simulator's status is changed
//!    (`set_case_status`), one change every fraction of the poll interval, and the projected
//!    view (`Store::resident_case`, as the query service reads it) is read until it shows the
//!    new status: the follower's poll round, `case.status-changed` on the bus, the projector.
//!    Then the same with the simulator subscribed to GSKO's webhook route, whose hint starts a
//!    round at once.
//!
//! Everything runs in this process, simulator included, so the peak RSS is the daemon's side
//! plus the simulator's.

use crate::bench::{peak_rss_kb, percentiles, reset_peak_rss, tempfile_dir, Percentiles};
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gsko_bus::{Bus, Outgoing, Topology};
use gsko_cases::{CaseService, PollSettings, Route, Routing, TenantCases};
use gsko_epuap::receiver::FileStore;
use gsko_ezd::ezdrp::{EzdRpClient, EzdRpConfig};
use gsko_model::{
    CaseRef, CaseStatus, DeliveryPreference, Letter, LetterChannel, LetterSender, LetterSignature,
    Pesel, SenderKind, SignatureForm, SignatureStatus, StoredFile, Teryt,
};
use gsko_sim::ezd::{EzdSim, EzdSimConfig};
use gsko_store::{
    CaseWorkStore, RegistrationRecord, RegistrationState, Store, StoreError, WatchedCase,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Notify};

pub struct EzdBenchOptions {
    pub letters: usize,
    pub cases: usize,
    pub poll_ms: u64,
    pub mode: String,
    pub database_url: String,
    pub amqp_url: String,
}

/// One line of the table.
struct Row {
    mode: &'static str,
    what: String,
    count: String,
    wall: Duration,
    rate: String,
    stats: Option<Percentiles>,
    peak_rss_kb: Option<u64>,
}

/// The generated residents who sign the letters (fewer when there are fewer letters).
const RESIDENTS: usize = 300;
/// The EZD event the simulator sends on a status change (EZD RP has no case-status event).
const HINT_EVENT: &str = "ezdrp.v2.zadanie.zakonczono";
/// The status codes the two lag rows set: 3 Zawieszona (suspended), 5 Wznowiona (resumed).
const POLLED_CODE: (i32, CaseStatus) = (3, CaseStatus::Suspended);
const HINTED_CODE: (i32, CaseStatus) = (5, CaseStatus::Resumed);
/// No registration recorded for this long while some are missing: something is stuck.
const STALL: Duration = Duration::from_secs(60);

pub async fn run(o: EzdBenchOptions) -> Result<()> {
    let modes: Vec<&'static str> = match o.mode.as_str() {
        "both" => vec!["production", "embedded"],
        "production" => vec!["production"],
        "embedded" => vec!["embedded"],
        other => bail!("--mode must be production, embedded or both, not {other:?}"),
    };
    if o.letters == 0 {
        bail!("--letters must be at least 1");
    }
    if o.cases == 0 {
        bail!("--cases must be at least 1");
    }
    if o.poll_ms == 0 {
        bail!("--poll-ms must be at least 1");
    }
    let work = tempfile_dir()?.join("ezd");
    std::fs::create_dir_all(&work)?;
    let tenant = Teryt::parse(gsko_sim::MUNICIPALITIES[0].teryt)?;
    let residents = residents(RESIDENTS.min(o.letters))?;

    let mut rows = Vec::new();
    let mut cases_opened = Vec::new();
    for mode in modes {
        let dir = work.join(mode);
        std::fs::create_dir_all(&dir)?;
        let (store, work_store, bus): (Arc<dyn Store>, Arc<dyn CaseWorkStore>, Arc<dyn Bus>) =
            match mode {
                "production" => {
                    let db = crate::bench::fresh_database_named(&o.database_url, "gsko_bench_ezd")
                        .await?;
                    let store = Arc::new(
                        gsko_store::PgStore::connect(&db, 8)
                            .await
                            .context("connecting to PostgreSQL")?,
                    );
                    let bus = gsko_bus::AmqpBus::connect(&o.amqp_url, Topology::default())
                        .await
                        .context("connecting to RabbitMQ")?;
                    (store.clone(), store, Arc::new(bus))
                }
                _ => {
                    let store =
                        Arc::new(gsko_store::SqliteStore::open(&dir.join("bench.sqlite")).await?);
                    let bus = gsko_bus::MemoryBus::open(
                        Some(&dir.join("journal.sqlite")),
                        Topology::default(),
                    )
                    .await?;
                    (store.clone(), store, Arc::new(bus))
                }
            };
        let (measured, opened) = one(mode, &o, store, work_store, bus, &dir, &tenant, &residents)
            .await
            .with_context(|| format!("{mode} mode: EZD"))?;
        rows.extend(measured);
        cases_opened.push((mode, opened));
    }
    drop(std::fs::remove_dir_all(&work));

    let poll = Duration::from_millis(o.poll_ms);
    println!();
    println!(
        "GSKO EZD: {} letters from {} residents (a stored document and one attachment each) registered in the simulated EZD RP (letter.register → task, RPW, metadata, new case or the resident's open case in JRWA 3120 → case.registered → recorded); then case statuses changed in EZD, each measured until the resident view shows it, the follower polling every {} ms",
        o.letters,
        residents.len(),
        o.poll_ms
    );
    println!("| mode | measurement | count | wall time | rate | p50 | p99 | max | peak RSS |");
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
                "production" => "production (RabbitMQ + PostgreSQL)",
                _ => "embedded (in-process bus + SQLite)",
            },
            r.what,
            r.count,
            r.wall.as_secs_f64(),
            r.rate,
            ms(r.stats.map(|s| s.p50)),
            ms(r.stats.map(|s| s.p99)),
            ms(r.stats.map(|s| s.max)),
            r.peak_rss_kb.map_or_else(
                || "–".to_owned(),
                |kb| format!("{:.0} MB", kb as f64 / 1024.0)
            )
        );
    }
    let opened = cases_opened
        .iter()
        .map(|(m, n)| format!("{m}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "Registration: all letters are published at once, so p50/p99/max \"publish → recorded\" include the wait in the queue (the consumer registers one letter at a time); \"one registration\" is the gap between two consecutive registrations recorded. A resident's later letters join their open case (cases opened: {opened}). The simulator runs in this process (its HTTP handling and memory count); no follower runs during registration. Peak RSS: the process's peak from the first publish to the last registration recorded."
    );
    println!(
        "Status lag: from `set_case_status` in the simulator to the first read of the view (`Store::resident_case`) that shows the new status: the follower's round (GET case, GET outgoing items), case.status-changed on the bus, the projector (batch {}, linger {} ms). The view is read every {} ms ({} ms in the webhook row), which bounds the resolution. A round reads at most {} watched cases, least recently read first, so with more open cases a change can wait several rounds; a round also searches the cases closed since the previous one. Webhook row: the simulator is subscribed to {HINT_EVENT} at GSKO's `POST /hooks/ezd/{{teryt}}`, whose hint starts a round at once and reads the named case first, or, when a round is running, the next one as soon as it ends (hints coalesce): the lag is then bounded by the duration of a round, not by the poll interval; polling goes on beside it. EZD RP's webhook events do not include case-status changes: the simulator fires {HINT_EVENT} on `set_case_status`, so this row shows what a hint can do, not what EZD RP sends today.",
        gsko_config::ProjectorConfig::default().batch_size,
        gsko_config::ProjectorConfig::default().linger_ms,
        tick(poll, false).as_millis(),
        tick(poll, true).as_millis(),
        PollSettings::default().batch,
    );
    Ok(())
}

/// "N rounds, one every ~X ms" for the count column.
fn rounds_note((n, period): (usize, Option<Duration>)) -> String {
    match period {
        Some(p) => format!("{n} follower rounds, one every ~{} ms", p.as_millis()),
        None => format!("{n} follower rounds"),
    }
}

/// How often the view is read while changes are pending.
fn tick(poll: Duration, hinted: bool) -> Duration {
    if hinted {
        Duration::from_millis(1)
    } else {
        (poll / 200).clamp(Duration::from_millis(1), Duration::from_millis(20))
    }
}

/// The mean gap between two status changes: a fraction of the poll interval, so that changes
/// land at every phase of the poll cycle and a few are pending at once.
fn spacing(poll: Duration, hinted: bool) -> Duration {
    if hinted {
        Duration::from_millis(100)
    } else {
        (poll / 4).max(Duration::from_millis(5))
    }
}

/// `base` times a factor in [0.5, 1.5) that differs from change to change (golden-ratio
/// sequence): no change lands in lockstep with the poll interval.
fn jittered(base: Duration, i: usize) -> Duration {
    let frac = (i as f64 * 0.618_033_988_749_895).fract();
    base.mul_f64(0.5 + frac)
}

/// One generated resident.
struct Resident {
    pesel: Pesel,
    name: String,
}

/// `n` residents with valid, distinct PESELs (serial = index).
fn residents(n: usize) -> Result<Vec<Resident>> {
    (0..n)
        .map(|k| {
            let birth = gsko_sim::SimDate::new(
                1950 + (k % 50) as i32,
                1 + (k % 12) as u32,
                1 + (k % 28) as u32,
            )
            .context("a valid birth date")?;
            let pesel =
                gsko_sim::identifiers::pesel(birth, k as u32, k % 2 == 0, (k / 2) as u32 % 5)
                    .parse::<Pesel>()
                    .map_err(|e| anyhow::anyhow!("a generated PESEL does not validate: {e}"))?;
            Ok(Resident {
                pesel,
                name: format!("Mieszkaniec Testowy{k}"),
            })
        })
        .collect()
}

/// Letter `n` of the benchmark, signed by `who`; its document and attachment are put in
/// `files` first.
fn letter(
    files: &FileStore,
    n: usize,
    who: &Resident,
    received_at: DateTime<Utc>,
) -> Result<Letter> {
    let doc = format!(
        "<Dokument><Tytul>Wniosek o zwrot nadpłaty {n}</Tytul><Tresc>Proszę o zwrot nadpłaty podatku od nieruchomości.</Tresc></Dokument>"
    )
    .into_bytes();
    // A scanned page's worth of bytes, unique per letter.
    let mut att = gsko_sim::ezd::SMALL_PDF.to_vec();
    att.extend_from_slice(format!("% skan {n}\n").as_bytes());
    att.resize(att.len() + 16 * 1024, b' ');
    let put = |b: &[u8]| {
        files
            .put(b)
            .context("storing a letter's file in the benchmark's content store")
    };
    let (doc_sha, att_sha) = (put(&doc)?, put(&att)?);
    Ok(Letter {
        letter_id: format!("epuap-bench-{n}"),
        channel: LetterChannel::Epuap,
        received_at,
        epuap_box: Some("/umboleslawiec/skrytka".into()),
        sender: LetterSender {
            kind: SenderKind::Person,
            name: who.name.clone(),
            pesel: Some(who.pesel.clone()),
            nip: None,
            regon: None,
            epuap_login: None,
            reply_address: Some(format!("/mieszkaniec{n}/skrytka")),
            address: None,
            contacts: vec![],
        },
        addressee: None,
        title: format!("Wniosek o zwrot nadpłaty {n}"),
        body_text: Some("Proszę o zwrot nadpłaty.".into()),
        form: None,
        document: StoredFile {
            name: "wniosek.xml".into(),
            mime_type: "application/xml".into(),
            size_bytes: doc.len() as u64,
            sha256: doc_sha,
            description: None,
        },
        attachments: vec![StoredFile {
            name: format!("skan-{n}.pdf"),
            mime_type: "application/pdf".into(),
            size_bytes: att.len() as u64,
            sha256: att_sha,
            description: None,
        }],
        signature: LetterSignature {
            status: SignatureStatus::Valid,
            form: Some(SignatureForm::PodpisZaufany),
            signer_pesel: Some(who.pesel.clone()),
            signer_name: Some(who.name.clone()),
            signed_at: None,
            problems: vec![],
        },
        test: false,
        upp_id: None,
        problems: vec![],
    })
}

/// The case service's records, noting when each registration was recorded.
struct TimedWork {
    inner: Arc<dyn CaseWorkStore>,
    recorded: Mutex<HashMap<String, Instant>>,
    progress: Notify,
    /// When the follower asked for the cases to poll: once per round.
    rounds: Mutex<Vec<Instant>>,
}

impl TimedWork {
    fn recorded(&self) -> HashMap<String, Instant> {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    fn count(&self) -> usize {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
    /// Rounds the follower started between `from` and `to`, and their mean period.
    fn rounds(&self, from: Instant, to: Instant) -> (usize, Option<Duration>) {
        let r = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
        let within: Vec<Instant> = r
            .iter()
            .copied()
            .filter(|t| *t >= from && *t <= to)
            .collect();
        let period = match within.as_slice() {
            [first, .., last] => Some((*last - *first) / (within.len() as u32 - 1)),
            _ => None,
        };
        (within.len(), period)
    }
}

#[async_trait]
impl CaseWorkStore for TimedWork {
    async fn registration(
        &self,
        tenant: &Teryt,
        letter_id: &str,
    ) -> Result<Option<RegistrationRecord>, StoreError> {
        self.inner.registration(tenant, letter_id).await
    }
    async fn record_registration(
        &self,
        rec: &RegistrationRecord,
        watch: &WatchedCase,
    ) -> Result<(), StoreError> {
        self.inner.record_registration(rec, watch).await?;
        if rec.state == RegistrationState::Registered {
            self.recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(rec.letter_id.clone())
                .or_insert_with(Instant::now);
            self.progress.notify_one();
        }
        Ok(())
    }
    async fn park_registration(
        &self,
        tenant: &Teryt,
        letter_id: &str,
        problem: &str,
        ezd_case_id: Option<&str>,
        case_ref: Option<&str>,
        rpw: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner
            .park_registration(tenant, letter_id, problem, ezd_case_id, case_ref, rpw)
            .await
    }
    async fn parked_registrations(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<RegistrationRecord>, StoreError> {
        self.inner.parked_registrations(tenant, limit).await
    }
    async fn open_case_of(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
        jrwa_symbol: &str,
    ) -> Result<Option<WatchedCase>, StoreError> {
        self.inner.open_case_of(tenant, pesel, jrwa_symbol).await
    }
    async fn watched_case(
        &self,
        tenant: &Teryt,
        ezd_case_id: &str,
    ) -> Result<Option<WatchedCase>, StoreError> {
        self.inner.watched_case(tenant, ezd_case_id).await
    }
    async fn cases_to_poll(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<WatchedCase>, StoreError> {
        self.rounds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
        self.inner.cases_to_poll(tenant, limit).await
    }
    async fn record_status(
        &self,
        tenant: &Teryt,
        ezd_case_id: &str,
        case_ref: &CaseRef,
        status: CaseStatus,
        seq: u32,
        open: bool,
    ) -> Result<bool, StoreError> {
        self.inner
            .record_status(tenant, ezd_case_id, case_ref, status, seq, open)
            .await
    }
    async fn mark_polled(
        &self,
        tenant: &Teryt,
        ezd_case_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.mark_polled(tenant, ezd_case_id, at).await
    }
    async fn decision_sha(
        &self,
        tenant: &Teryt,
        decision_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.inner.decision_sha(tenant, decision_id).await
    }
    async fn record_decision(
        &self,
        tenant: &Teryt,
        decision_id: &str,
        ezd_case_id: &str,
        sha256: &str,
    ) -> Result<(), StoreError> {
        self.inner
            .record_decision(tenant, decision_id, ezd_case_id, sha256)
            .await
    }
}

/// The tenant's EZD as the daemon configures it, pointed at the simulator.
fn tenant_cases(sim: &EzdSim, files: FileStore) -> Result<TenantCases> {
    let c = sim.config();
    let cfg = EzdRpConfig::new(
        sim.base_url(),
        format!("{}/connect/token", sim.base_url()),
        c.web_host.clone(),
        c.podmiot_id.clone(),
        c.api_key_id.clone(),
        gsko_model::Secret::new(c.api_key.clone()),
        c.stanowisko_id.clone(),
    );
    Ok(TenantCases {
        port: Arc::new(
            EzdRpClient::new(cfg).map_err(|e| anyhow::anyhow!("the EZD RP client: {e}"))?,
        ),
        routing: Routing {
            rules: vec![],
            default: Some(Route {
                form_namespace: None,
                title_contains: None,
                class_id: "wykaz-3120".into(),
                jrwa_symbol: "3120".into(),
                archival_category: "B5".into(),
                join_open_case: true,
                case_title: gsko_cases::DEFAULT_CASE_TITLE.into(),
            }),
        },
        decision_prefixes: vec!["Decyzja".into()],
        delivery: DeliveryPreference::Auto,
        files,
    })
}

/// A case whose status the lag rows change, and how its resident's view finds it.
struct Picked {
    ezd_case_id: String,
    pesel: Pesel,
    case_ref: CaseRef,
}

#[allow(clippy::too_many_arguments)]
async fn one(
    mode: &'static str,
    o: &EzdBenchOptions,
    store: Arc<dyn Store>,
    work_store: Arc<dyn CaseWorkStore>,
    bus: Arc<dyn Bus>,
    dir: &Path,
    tenant: &Teryt,
    residents: &[Resident],
) -> Result<(Vec<Row>, usize)> {
    let n = o.letters;
    let poll = Duration::from_millis(o.poll_ms);
    let sim = EzdSim::start(EzdSimConfig::demo())
        .await
        .context("starting the EZD RP simulator")?;
    // Whatever an earlier, interrupted run left in the queues goes first.
    for queue in [
        gsko_bus::topology::PROJECTOR_QUEUE,
        gsko_bus::topology::REGISTER_QUEUE,
    ] {
        let left = drain(&bus, queue).await?;
        if left > 0 {
            eprintln!("bench: {mode}: {left} message(s) left in {queue} by an earlier run drained");
        }
    }

    // Untimed: the letters' files stored and their messages built.
    let files = FileStore::new(dir.join("documents"));
    let now = Utc::now();
    let mut batches = Vec::with_capacity(n);
    for i in 0..n {
        let l = letter(&files, i, &residents[i % residents.len()], now)?;
        batches.push((
            l.letter_id.clone(),
            [
                Outgoing::event(&gsko_epuap::receiver::letter_event(tenant, &l)),
                Outgoing::event(&gsko_epuap::receiver::register_command(tenant, &l)),
            ],
        ));
    }

    let timed = Arc::new(TimedWork {
        inner: work_store.clone(),
        recorded: Mutex::new(HashMap::with_capacity(n)),
        progress: Notify::new(),
        rounds: Mutex::new(Vec::new()),
    });
    let mut tenants = HashMap::new();
    tenants.insert(tenant.clone(), tenant_cases(&sim, files)?);
    let service = Arc::new(CaseService::new(
        timed.clone() as Arc<dyn CaseWorkStore>,
        tenants,
        PollSettings {
            interval: poll,
            ..PollSettings::default()
        },
    ));

    let (stop, stop_rx) = watch::channel(false);
    let metrics = gsko_query::Registry::new();
    let pc = gsko_config::ProjectorConfig {
        workers: if mode == "production" { 2 } else { 1 },
        ..gsko_config::ProjectorConfig::default()
    };
    let (mut handles, projected) = crate::daemon::spawn_projectors(
        &bus,
        &store,
        &pc,
        1000,
        gsko_bus::topology::PROJECTOR_QUEUE,
        &metrics,
        &stop_rx,
    )
    .await?;
    {
        let (service, bus, rx) = (service.clone(), bus.clone(), stop_rx.clone());
        handles.push(tokio::spawn(async move {
            match service.consume(bus.as_ref(), rx).await {
                Ok(s) if s.retried + s.parked > 0 => eprintln!(
                    "bench: registration consumer: {} handled, {} retried, {} parked",
                    s.handled, s.retried, s.parked
                ),
                Ok(_) => {}
                Err(e) => eprintln!("bench: registration consumer stopped: {e}"),
            }
        }));
    }

    // 1. Registrations.
    eprintln!("bench: {mode}: publishing {n} letters for registration …");
    reset_peak_rss();
    let start = Instant::now();
    let mut published = HashMap::with_capacity(n);
    for (id, batch) in &batches {
        let t = Instant::now();
        bus.publish(batch)
            .await
            .with_context(|| format!("publishing letter {id}"))?;
        published.insert(id.clone(), t);
    }
    let (mut last_count, mut last_progress) = (0, Instant::now());
    while timed.count() < n {
        drop(tokio::time::timeout(Duration::from_millis(200), timed.progress.notified()).await);
        let c = timed.count();
        if c > last_count {
            (last_count, last_progress) = (c, Instant::now());
        } else if last_progress.elapsed() > STALL {
            let parked = work_store.parked_registrations(tenant, 5).await?;
            bail!(
                "registration stalled: {c} of {n} letters recorded, none for {} s; parked: {:?}",
                STALL.as_secs(),
                parked.iter().map(|p| p.problem.clone()).collect::<Vec<_>>()
            );
        }
    }
    let recorded = timed.recorded();
    let end = recorded.values().max().copied().unwrap_or(start);
    let wall = end - start;
    let peak = peak_rss_kb();
    let mut latencies = Vec::with_capacity(n);
    for (id, at) in &recorded {
        let p = published
            .get(id)
            .with_context(|| format!("a registration was recorded for {id}, never published"))?;
        latencies.push(at.saturating_duration_since(*p));
    }
    let mut times: Vec<Instant> = recorded.values().copied().collect();
    times.sort();
    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Checked from the records themselves, after the clock.
    let mut registered = 0;
    for (id, _) in &batches {
        if work_store
            .registration(tenant, id)
            .await?
            .is_some_and(|r| r.state == RegistrationState::Registered)
        {
            registered += 1;
        }
    }
    let opened = sim.case_count();
    if registered != n || sim.rpw_count() != n {
        bail!(
            "{n} letters published, {registered} recorded as registered, {} RPW numbers given in EZD",
            sim.rpw_count()
        );
    }
    eprintln!(
        "bench: {mode}: {n} letters registered in {:.1} s into {opened} cases",
        wall.as_secs_f64()
    );
    let mut rows = vec![
        Row {
            mode,
            what: "registration: publish → EZD RP → case.registered → recorded".into(),
            count: format!("{n} letters"),
            wall,
            rate: format!("{:.1} letters/s", n as f64 / wall.as_secs_f64()),
            stats: percentiles(&mut latencies),
            peak_rss_kb: Some(peak),
        },
        Row {
            mode,
            what: "of which: one registration (previous recorded → this one)".into(),
            count: format!("{} gaps", gaps.len()),
            wall,
            rate: "–".into(),
            stats: percentiles(&mut gaps),
            peak_rss_kb: None,
        },
    ];

    // 2. Status change → view.
    let cases = sim.cases();
    if o.cases > cases.len() {
        // Few letters open few cases: measure those rather than fail.
        eprintln!(
            "bench: {mode}: --cases {} but the {n} letters opened {} cases; measuring {}",
            o.cases,
            cases.len(),
            cases.len()
        );
    }
    let mut picked = Vec::with_capacity(o.cases);
    for c in cases.iter().take(o.cases) {
        let w = work_store
            .watched_case(tenant, &c.id_sprawa)
            .await?
            .with_context(|| format!("EZD case {} is not watched", c.id_sprawa))?;
        picked.push(Picked {
            ezd_case_id: c.id_sprawa.clone(),
            pesel: w
                .resident_pesel
                .with_context(|| format!("watched case {} has no resident", c.id_sprawa))?,
            case_ref: w.case_ref,
        });
    }
    let follower = tokio::spawn(service.clone().follow(bus.clone(), stop_rx.clone()));
    // Untimed: every picked case read once by the follower and projected (EZD's first status,
    // 1 W toku, replaces GSKO's `registered`).
    eprintln!(
        "bench: {mode}: waiting for the follower's first reading of {} cases …",
        picked.len()
    );
    let settle_until = Instant::now() + Duration::from_secs(120) + poll * 10;
    for p in &picked {
        loop {
            let status = store
                .resident_case(tenant, &p.pesel, &p.case_ref)
                .await?
                .map(|v| v.status);
            match status {
                Some(s) if s != CaseStatus::Registered => {
                    if s == POLLED_CODE.1 || s == HINTED_CODE.1 {
                        bail!(
                            "case {} starts as {s:?}, which the benchmark sets",
                            p.ezd_case_id
                        );
                    }
                    break;
                }
                _ if Instant::now() > settle_until => bail!(
                    "case {} never showed EZD's first status in the view (projected events: {})",
                    p.ezd_case_id,
                    projected.handled()
                ),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    eprintln!(
        "bench: {mode}: status changes, polling every {} ms …",
        o.poll_ms
    );
    let phase = Instant::now();
    let (wall, mut lags) = lag(&sim, &store, tenant, &picked, POLLED_CODE, poll, false).await?;
    rows.push(Row {
        mode,
        what: format!("status change → view, polling every {} ms", o.poll_ms),
        count: format!(
            "{} cases of {opened} watched, a change every ~{} ms; {}",
            picked.len(),
            spacing(poll, false).as_millis(),
            rounds_note(timed.rounds(phase, Instant::now()))
        ),
        wall,
        rate: "–".into(),
        stats: percentiles(&mut lags),
        peak_rss_kb: None,
    });

    // The simulator's webhook at GSKO's hook route (served here as on the query listener).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the webhook listener")?;
    let hook_url = format!(
        "http://{}/hooks/ezd/{tenant}",
        listener
            .local_addr()
            .context("the webhook listener's address")?
    );
    let hooks = tokio::spawn(async move {
        let app = gsko_cases::hooks::routes(service);
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bench: webhook server stopped: {e}");
        }
    });
    subscribe(&sim, &hook_url).await?;
    let attempts = sim.webhook_attempts();
    eprintln!("bench: {mode}: status changes with the webhook hint …");
    let phase = Instant::now();
    let (wall, mut lags) = lag(&sim, &store, tenant, &picked, HINTED_CODE, poll, true).await?;
    let rounds = timed.rounds(phase, Instant::now());
    let hints = sim.webhook_attempts() - attempts;
    if hints < picked.len() {
        bail!(
            "{} status changes, but the simulator attempted only {hints} webhook deliveries",
            picked.len()
        );
    }
    rows.push(Row {
        mode,
        what: format!(
            "status change → view, webhook hint (polling every {} ms beside)",
            o.poll_ms
        ),
        count: format!(
            "{} cases of {opened} watched, a change every ~{} ms; {}",
            picked.len(),
            spacing(poll, true).as_millis(),
            rounds_note(rounds)
        ),
        wall,
        rate: "–".into(),
        stats: percentiles(&mut lags),
        peak_rss_kb: None,
    });

    stop.send(true).ok();
    hooks.abort();
    handles.push(follower);
    for h in handles {
        drop(tokio::time::timeout(Duration::from_secs(10), h).await);
    }
    drop(sim);
    Ok((rows, opened))
}

/// Changes the status of every picked case to `code`, spaced, and measures until the view
/// shows each. Returns the phase's wall time and one lag per case.
async fn lag(
    sim: &EzdSim,
    store: &Arc<dyn Store>,
    tenant: &Teryt,
    picked: &[Picked],
    (code, status): (i32, CaseStatus),
    poll: Duration,
    hinted: bool,
) -> Result<(Duration, Vec<Duration>)> {
    let (tick, base) = (tick(poll, hinted), spacing(poll, hinted));
    let give_up = Duration::from_secs(60) + poll * 20;
    let mut lags = Vec::with_capacity(picked.len());
    let mut pending: Vec<(usize, Instant)> = Vec::new();
    let start = Instant::now();
    let (mut next, mut next_at) = (0, start);
    while next < picked.len() || !pending.is_empty() {
        while next < picked.len() && Instant::now() >= next_at {
            let changed = Instant::now();
            sim.set_case_status(&picked[next].ezd_case_id, code)
                .with_context(|| format!("setting case {} to {code}", picked[next].ezd_case_id))?;
            pending.push((next, changed));
            next += 1;
            next_at += jittered(base, next);
        }
        let mut still = Vec::with_capacity(pending.len());
        for (i, changed) in pending {
            let p = &picked[i];
            let view = store.resident_case(tenant, &p.pesel, &p.case_ref).await?;
            let seen = Instant::now();
            if view.is_some_and(|v| v.status == status) {
                lags.push(seen - changed);
            } else if seen - changed > give_up {
                bail!(
                    "case {} changed to {status:?} in EZD {} s ago; the view does not show it",
                    p.ezd_case_id,
                    (seen - changed).as_secs()
                );
            } else {
                still.push((i, changed));
            }
        }
        pending = still;
        tokio::time::sleep(tick).await;
    }
    Ok((start.elapsed(), lags))
}

/// Subscribes the simulator's `HINT_EVENT` to `url` through its Integrator API, as an admin
/// would once (the connector itself does not subscribe): a token, then `POST /subskrypcje`.
async fn subscribe(sim: &EzdSim, url: &str) -> Result<()> {
    let c = sim.config();
    let rt = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let b64 = |s: &str| gsko_sim::epuap_send::sha256_base64(s.as_bytes());
    let form = [
        ("grant_type", "api_credentials".to_owned()),
        ("client_id", format!("api_{}", b64(&c.web_host))),
        ("scope", "api.ezdrp.gov.pl".to_owned()),
        ("pid", c.podmiot_id.clone()),
        ("aki", c.api_key_id.clone()),
        ("rt", rt.clone()),
        ("akh", b64(&format!("{rt}{}", c.api_key))),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", form_encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let token_url = format!("{}/connect/token", sim.base_url());
    let (status, body) = http_post(
        &token_url,
        "application/x-www-form-urlencoded",
        &[],
        form.as_bytes(),
    )
    .await?;
    if status != 200 {
        bail!("the simulator's token endpoint answered {status}: {body}");
    }
    let token = json_of(&body)?
        .get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .context("the simulator's token answer has no access_token")?;
    let subscription = serde_json::json!({
        "zdarzenia": [{"kluczZdarzenia": HINT_EVENT}],
        "kanalDostawy": 0,
        "konfiguracja": serde_json::json!({"Url": url, "Timeout": 5}).to_string(),
        "email": "it@gmina.example.pl",
    });
    let (status, body) = http_post(
        &format!("{}/subskrypcje", sim.api_url()),
        "application/json",
        &[
            ("Authorization", format!("Bearer {token}")),
            ("SID", c.stanowisko_id.clone()),
        ],
        subscription.to_string().as_bytes(),
    )
    .await?;
    if status != 201 {
        bail!("the simulator refused the webhook subscription ({status}): {body}");
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` value encoding.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The JSON object in an HTTP body (tolerates a chunked body: the object is the part between
/// the first `{` and the last `}`).
fn json_of(body: &str) -> Result<serde_json::Value> {
    let (Some(a), Some(b)) = (body.find('{'), body.rfind('}')) else {
        bail!("no JSON object in the simulator's answer: {body}");
    };
    serde_json::from_str(&body[a..=b]).context("the simulator's JSON answer")
}

/// One plain HTTP/1.1 POST to a loopback `http://` URL (the two set-up calls to the simulator;
/// the gsko binary carries no HTTP client of its own). Returns the status and the body.
async fn http_post(
    url: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not an http:// URL"))?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_owned()),
    };
    let mut s = tokio::net::TcpStream::connect(host)
        .await
        .with_context(|| format!("connecting to {host}"))?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    s.write_all(body).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .with_context(|| format!("no answer from {url} in 10 s"))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in the answer from {url}"))?;
    Ok((status, body.to_owned()))
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
