//! `gsko bench payments`: the payment side measured, not asserted, in production mode (RabbitMQ
//! + PostgreSQL) and embedded mode (in-process journaled bus + SQLite).
//!
//! 1. Gateway notifications, "HTTP in → booked": a Przelewy24 simulator POSTs the signed
//!    notification of each paid order to GSKO's endpoint on a loopback port; GSKO checks the
//!    sign, calls the simulator's `transaction/verify`, settles the order with its outbox rows,
//!    the relay publishes them, and the RADIX booking consumer writes the payment's ledger file.
//!    The clock runs from the first payment to the last file; at most `in_flight` payments are
//!    paid but not yet booked at any time (the pacing a gateway's burst meets). The projector
//!    runs beside it, as in the daemon, and takes the `payment.settled` events.
//! 2. A bank statement: a generated MT940 file of at least `statement_lines` lines imported
//!    with `import_statement` into a store that knows every taxpayer's virtual account.
//!
//! Everything runs in this process, the simulator included, so the peak RSS of the first
//! measurement is the daemon's plus the simulator's.

use crate::bench::{fresh_database_named, peak_rss_kb, reset_peak_rss, tempfile_dir};
use anyhow::{bail, Context, Result};
use futures::StreamExt;
use gsko_bus::{Bus, BusError, Delivery, Subscription, Topology};
use gsko_model::{
    AccountHolder, Amount, Event, EventData, HolderRole, LevyKind, Nrb, Pesel, TaxAccount,
    Taxpayer, TaxpayerKind, Teryt,
};
use gsko_payments::{
    BasketLine, BasketRequest, GatewayKind, Merchant, PaymentService, TenantPayments,
};
use gsko_radix::booking::{BookingFormat, BookingWriter};
use gsko_sim::bank::{BankProfile, BankSimSpec, SimCharset};
use gsko_sim::przelewy24::{P24Sim, SimConfig};
use gsko_store::{PaymentStore, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{watch, Notify};

pub struct PaymentBenchOptions {
    pub payments: usize,
    pub in_flight: usize,
    pub statement_lines: usize,
    pub statement_taxpayers: u32,
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
    p50: Option<Duration>,
    p99: Option<Duration>,
    peak_rss_kb: u64,
}

const MERCHANT_ID: i64 = 51_001;
const API_KEY: &str = "bench-api-key";
const CRC: &str = "bench-crc-key";
/// No progress for this long means something is stuck (a gateway retry is minutes away).
const STALL: Duration = Duration::from_secs(60);

pub async fn run(o: PaymentBenchOptions) -> Result<()> {
    let modes: Vec<&'static str> = match o.mode.as_str() {
        "both" => vec!["production", "embedded"],
        "production" => vec!["production"],
        "embedded" => vec!["embedded"],
        other => bail!("--mode must be production, embedded or both, not {other:?}"),
    };
    if o.payments == 0 || o.in_flight == 0 {
        bail!("--payments and --in-flight must be at least 1");
    }
    let work = tempfile_dir()?;
    let tenant = Teryt::parse(gsko_sim::MUNICIPALITIES[0].teryt)?;
    let t = Instant::now();
    let statement = generate_statement(
        &work.join("statement.sta"),
        o.statement_lines,
        o.statement_taxpayers,
    )?;
    eprintln!(
        "bench: statement of {} lines ({} entries, {} credits to virtual accounts) generated in {:.1} s",
        statement.lines,
        statement.entries,
        statement.virtual_credits,
        t.elapsed().as_secs_f64()
    );

    let mut rows = Vec::new();
    for mode in modes {
        let dir = work.join(mode);
        std::fs::create_dir_all(&dir)?;
        let (store, payments, bus): (Arc<dyn Store>, Arc<dyn PaymentStore>, Arc<dyn Bus>) =
            match mode {
                "production" => {
                    let db = fresh_database_named(&o.database_url, "gsko_bench_payments").await?;
                    let pg = Arc::new(
                        gsko_store::PgStore::connect(&db, 8)
                            .await
                            .context("connecting to PostgreSQL")?,
                    );
                    let bus = gsko_bus::AmqpBus::connect(&o.amqp_url, Topology::default())
                        .await
                        .context("connecting to RabbitMQ")?;
                    (pg.clone(), pg, Arc::new(bus))
                }
                _ => {
                    let lite =
                        Arc::new(gsko_store::SqliteStore::open(&dir.join("bench.sqlite")).await?);
                    let bus = gsko_bus::MemoryBus::open(
                        Some(&dir.join("journal.sqlite")),
                        Topology::default(),
                    )
                    .await?;
                    (lite.clone(), lite, Arc::new(bus))
                }
            };
        let row = notifications(
            mode,
            &store,
            &payments,
            &bus,
            &dir,
            &tenant,
            o.payments,
            o.in_flight,
        )
        .await
        .with_context(|| format!("{mode} mode: gateway notifications"))?;
        rows.push(row);
        let row = import_statement(mode, &store, &payments, &statement, &tenant)
            .await
            .with_context(|| format!("{mode} mode: bank statement"))?;
        rows.push(row);
    }
    drop(std::fs::remove_dir_all(&work));

    println!();
    println!(
        "GSKO payments: {} Przelewy24 notifications (HTTP in → verify → settle + outbox → relay → bus → RADIX booking file; at most {} in flight), and one MT940 statement of {} lines imported",
        o.payments, o.in_flight, statement.lines
    );
    println!("| mode | measurement | count | wall time | rate | p50 | p99 | peak RSS |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let ms = |d: Option<Duration>| {
        d.map_or_else(
            || "–".to_owned(),
            |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0),
        )
    };
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} s | {} | {} | {} | {:.0} MB |",
            match r.mode {
                "production" => "production (RabbitMQ + PostgreSQL)",
                _ => "embedded (in-process bus + SQLite)",
            },
            r.what,
            r.count,
            r.wall.as_secs_f64(),
            r.rate,
            ms(r.p50),
            ms(r.p99),
            r.peak_rss_kb as f64 / 1024.0
        );
    }
    println!("p50/p99: per payment, from the simulator's pay() to the booking file's mtime. The notification rows' peak RSS includes the in-process gateway simulator. Per-payment info log lines are off unless GSKO_LOG turns them on.");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Gateway notifications

/// Counts what the booking consumer settles, and wakes the pacer on every acknowledgement.
#[derive(Default)]
struct Progress {
    acked: AtomicU64,
    parked: AtomicU64,
    retried: AtomicU64,
    wake: Notify,
}

/// The booking queue's subscription, counting acknowledgements (a booking is acknowledged only
/// once its file is durable).
struct Counting {
    inner: Box<dyn Subscription>,
    progress: Arc<Progress>,
}

#[async_trait::async_trait]
impl Subscription for Counting {
    async fn next_batch(
        &mut self,
        max: usize,
        idle_wait: Duration,
        linger: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        self.inner.next_batch(max, idle_wait, linger).await
    }

    async fn ack(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let n = deliveries.len() as u64;
        self.inner.ack(deliveries).await?;
        self.progress.acked.fetch_add(n, Ordering::Relaxed);
        self.progress.wake.notify_one();
        Ok(())
    }

    async fn retry(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError> {
        self.progress.retried.fetch_add(1, Ordering::Relaxed);
        self.inner.retry(delivery, reason).await
    }

    async fn park(&mut self, delivery: Delivery, reason: &str) -> Result<(), BusError> {
        self.progress.parked.fetch_add(1, Ordering::Relaxed);
        self.progress.wake.notify_one();
        self.inner.park(delivery, reason).await
    }
}

#[allow(clippy::too_many_arguments)]
async fn notifications(
    mode: &'static str,
    store: &Arc<dyn Store>,
    payments: &Arc<dyn PaymentStore>,
    bus: &Arc<dyn Bus>,
    dir: &Path,
    tenant: &Teryt,
    n: usize,
    in_flight: usize,
) -> Result<Row> {
    let p24 = P24Sim::start(SimConfig::new(MERCHANT_ID, MERCHANT_ID, API_KEY, CRC))
        .await
        .context("starting the Przelewy24 simulator")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public_url = format!("http://{}", listener.local_addr()?);
    let mut p24_config =
        gsko_przelewy24::P24Config::new(p24.base_url.clone(), MERCHANT_ID, API_KEY, CRC);
    p24_config.timeout = Duration::from_secs(30);
    let merchant = Merchant {
        name: "taxes".into(),
        levies: vec![LevyKind::Property],
        przelewy24: Some(gsko_przelewy24::P24Client::new(p24_config)?),
        payu: None,
    };
    let tenants = BTreeMap::from([(
        tenant.clone(),
        TenantPayments {
            name: gsko_sim::MUNICIPALITIES[0].name.to_owned(),
            return_url: "https://portal.example.pl/wynik".into(),
            allowed_return_urls: Vec::new(),
            merchants: BTreeMap::from([("taxes".to_owned(), merchant)]),
        },
    )]);
    let service = Arc::new(PaymentService::new(payments.clone(), tenants, public_url));

    // The daemon's payment side: notification routes, outbox relay, projector, booking.
    let (tx, rx) = watch::channel(false);
    let mut handles = Vec::new();
    {
        let app = gsko_payments::notify::routes(service.clone());
        let mut stop = rx.clone();
        handles.push(tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                drop(stop.wait_for(|v| *v).await);
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "bench: notification server stopped");
            }
        }));
    }
    {
        let (store, bus, wake, rx) = (
            payments.clone(),
            bus.clone(),
            service.outbox_wake(),
            rx.clone(),
        );
        handles.push(tokio::spawn(async move {
            gsko_payments::relay::run(store, bus, wake, rx).await;
        }));
    }
    let metrics = gsko_query::Registry::new();
    let pc = gsko_config::ProjectorConfig {
        batch_size: 500,
        linger_ms: 20,
        workers: if mode == "production" { 2 } else { 1 },
    };
    let (projectors, _) = crate::daemon::spawn_projectors(
        bus,
        store,
        &pc,
        1000,
        gsko_bus::topology::PROJECTOR_QUEUE,
        &metrics,
        &rx,
    )
    .await?;
    handles.extend(projectors);
    let booking_dir = dir.join("booking");
    let writer = BookingWriter::new(&booking_dir, tenant.clone(), BookingFormat::Xml, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let progress = Arc::new(Progress::default());
    {
        let sub = bus
            .subscribe(gsko_bus::topology::BOOKING_QUEUE, 50)
            .await
            .context("subscribing to the booking queue")?;
        let sub = Box::new(Counting {
            inner: sub,
            progress: progress.clone(),
        });
        let writers = BTreeMap::from([(tenant.clone(), writer)]);
        let rx = rx.clone();
        handles.push(tokio::spawn(async move {
            if let Err(e) = gsko_radix::booking::run_booking(sub, writers, rx).await {
                tracing::error!(error = %e, "bench: booking consumer stopped on a bus error");
            }
        }));
    }

    // Orders, registered with the simulator (not timed).
    eprintln!("bench: {mode}: registering {n} Przelewy24 orders …");
    let t = Instant::now();
    let orders: Vec<Result<(String, String)>> = futures::stream::iter(0..n)
        .map(|i| {
            let service = service.clone();
            let tenant = tenant.clone();
            async move {
                let basket = service
                    .initiate(order_request(&tenant, i)?)
                    .await
                    .with_context(|| format!("order {i}"))?;
                let order = basket.orders.first().context("a basket without orders")?;
                let redirect = order
                    .redirect_url
                    .as_deref()
                    .with_context(|| format!("order {i} not registered: {:?}", order.detail))?;
                let token = redirect.rsplit('/').next().unwrap_or_default().to_owned();
                Ok((order.order_id.clone(), token))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let orders = orders.into_iter().collect::<Result<Vec<_>>>()?;
    eprintln!(
        "bench: {mode}: {n} orders registered in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Whatever an earlier, interrupted run left in the booking queue goes first.
    let mut last = progress.acked.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = progress.acked.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let base = last;
    let parked_before = progress.parked.load(Ordering::Relaxed);
    let booked = || progress.acked.load(Ordering::Relaxed).saturating_sub(base) as usize;
    let check = |last_progress: Instant| -> Result<()> {
        let parked = progress.parked.load(Ordering::Relaxed) - parked_before;
        if parked > 0 {
            bail!("{parked} booking command(s) parked (see the log)");
        }
        if last_progress.elapsed() > STALL {
            bail!(
                "no booking for {} s: {} of {n} booked, {} retried",
                STALL.as_secs(),
                booked(),
                progress.retried.load(Ordering::Relaxed)
            );
        }
        Ok(())
    };

    reset_peak_rss();
    let start = Instant::now();
    let mut paid_at = Vec::with_capacity(n);
    let mut last_progress = Instant::now();
    let mut seen = 0;
    for (session, token) in &orders {
        while paid_at.len().saturating_sub(booked()) >= in_flight {
            drop(tokio::time::timeout(Duration::from_millis(100), progress.wake.notified()).await);
            if booked() != seen {
                seen = booked();
                last_progress = Instant::now();
            }
            check(last_progress)?;
        }
        paid_at.push((session.as_str(), SystemTime::now()));
        p24.pay(token)
            .map_err(|e| anyhow::anyhow!("simulator: paying order {session}: {e}"))?;
    }
    while booked() < n {
        drop(tokio::time::timeout(Duration::from_millis(100), progress.wake.notified()).await);
        if booked() != seen {
            seen = booked();
            last_progress = Instant::now();
        }
        check(last_progress)?;
    }
    let wall = start.elapsed();
    let peak = peak_rss_kb();

    // Per-payment latency: pay() → the booking file's modification time.
    let mut latencies = Vec::with_capacity(n);
    for (session, at) in &paid_at {
        let file = booking_dir.join(format!(
            "{}.xml",
            gsko_payments::gateway_payment_id(GatewayKind::Przelewy24, session)
        ));
        let mtime = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .with_context(|| format!("the booking file {}", file.display()))?;
        latencies.push(mtime.duration_since(*at).unwrap_or_default());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];

    tx.send(true).ok();
    for h in handles {
        drop(h.await);
    }
    drop(p24);
    eprintln!(
        "bench: {mode}: {n} notifications booked in {:.1} s",
        wall.as_secs_f64()
    );
    Ok(Row {
        mode,
        what: "gateway notifications, HTTP in → booked".into(),
        count: format!("{n} payments"),
        wall,
        rate: format!("{:.0} notifications/s", n as f64 / wall.as_secs_f64()),
        p50: Some(pct(0.50)),
        p99: Some(pct(0.99)),
        peak_rss_kb: peak,
    })
}

fn order_request(tenant: &Teryt, i: usize) -> Result<BasketRequest> {
    Ok(BasketRequest {
        tenant: tenant.clone(),
        client: "bench".into(),
        idempotency_key: format!("bench-{i:08}"),
        pesel: Pesel::from_str("78031501236")?,
        requested: vec![(format!("L-{i:07}-2026"), Some(1))],
        lines: vec![BasketLine {
            account_id: format!("K{i:07}"),
            levy: LevyKind::Property,
            liability_id: format!("L-{i:07}-2026"),
            installment_seq: Some(1),
            amount: Amount::from_grosze(10_000 + (i as i64 % 90_000))?,
            label: "property 2026 / 1".into(),
        }],
        gateway: Some(GatewayKind::Przelewy24),
        return_url: None,
        email: Some("bench@example.pl".into()),
        customer_ip: Some("192.0.2.1".into()),
    })
}

// ---------------------------------------------------------------------------------------------
// Bank statement

struct Statement {
    path: PathBuf,
    spec: BankSimSpec,
    lines: u64,
    entries: u64,
    virtual_credits: u64,
}

/// Counts lines as they are written.
struct LineCounter<W> {
    inner: W,
    lines: u64,
}

impl<W: std::io::Write> std::io::Write for LineCounter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One PKO BP statement with at least `min_lines` lines: mostly credits to taxpayers' virtual
/// accounts, some credits identified only by their title, gateway payouts and debits.
fn generate_statement(path: &Path, min_lines: usize, taxpayers: u32) -> Result<Statement> {
    let spec_for = |entries: u32| {
        let payouts = (entries / 100).max(2);
        let titles = entries / 25;
        let debits = entries / 15;
        BankSimSpec {
            taxpayers: taxpayers.max(1),
            statements: 1,
            virtual_credits: entries - payouts - titles - debits,
            title_credits: titles,
            gateway_payouts: payouts,
            debits,
            keep_truth: false,
            ..BankSimSpec::new(2026, BankProfile::PkoBp)
        }
    };
    let write = |spec: &BankSimSpec| -> Result<(u64, u64)> {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = LineCounter {
            inner: std::io::BufWriter::new(f),
            lines: 0,
        };
        let summary = gsko_sim::bank::write_statements(spec, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok((out.lines, summary.entries_written))
    };
    // Lines per entry, from a small sample; then grow until the file is long enough.
    let (sample_lines, sample_entries) = write(&spec_for(1000))?;
    let per_entry = sample_lines as f64 / sample_entries.max(1) as f64;
    let mut entries = ((min_lines as f64 / per_entry) as u32).max(100);
    loop {
        let spec = spec_for(entries);
        let (lines, written) = write(&spec)?;
        if lines as usize >= min_lines {
            let virtual_credits = u64::from(spec.virtual_credits);
            return Ok(Statement {
                path: path.to_owned(),
                spec,
                lines,
                entries: written,
                virtual_credits,
            });
        }
        entries += ((min_lines - lines as usize) as f64 / per_entry).ceil() as u32 + 10;
    }
}

/// The store learns every simulated taxpayer and their property tax account with its virtual
/// account (as the projector would from a RADIX export).
async fn know_virtual_accounts(
    store: &Arc<dyn Store>,
    spec: &BankSimSpec,
    tenant: &Teryt,
) -> Result<()> {
    let mut events = Vec::with_capacity(2000);
    for tp in gsko_sim::bank::taxpayers(spec) {
        let taxpayer_id = format!("T{}", &tp.account_key[1..]);
        events.push(Event::new(
            "/gsko/bench",
            tenant.clone(),
            1,
            EventData::TaxpayerUpserted(Taxpayer {
                taxpayer_id: taxpayer_id.clone(),
                kind: TaxpayerKind::Natural,
                pesel: None,
                nip: None,
                regon: None,
                name: format!("Podatnik {}", tp.account_key),
                address: None,
                contacts: Vec::new(),
            }),
        ));
        events.push(Event::new(
            "/gsko/bench",
            tenant.clone(),
            1,
            EventData::TaxAccountUpserted(TaxAccount {
                account_id: tp.account_key.clone(),
                levy: LevyKind::Property,
                holders: vec![AccountHolder {
                    taxpayer_id,
                    role: HolderRole::Owner,
                }],
                virtual_account: Some(Nrb::parse(&tp.virtual_nrb)?),
            }),
        ));
        if events.len() >= 2000 {
            store.apply(&events).await?;
            events.clear();
        }
    }
    if !events.is_empty() {
        store.apply(&events).await?;
    }
    Ok(())
}

async fn import_statement(
    mode: &'static str,
    store: &Arc<dyn Store>,
    payments: &Arc<dyn PaymentStore>,
    statement: &Statement,
    tenant: &Teryt,
) -> Result<Row> {
    let t = Instant::now();
    know_virtual_accounts(store, &statement.spec, tenant).await?;
    eprintln!(
        "bench: {mode}: {} taxpayers with virtual accounts in the store in {:.1} s",
        statement.spec.taxpayers,
        t.elapsed().as_secs_f64()
    );
    let options =
        gsko_payments::statement::StatementOptions::from_config(&gsko_config::BankConfig {
            directory: PathBuf::from("bank"),
            layout: "separated".into(),
            charset: match statement.spec.charset {
                SimCharset::Utf8 => "utf-8",
                SimCharset::Cp1250 => "cp1250",
                SimCharset::Iso8859_2 => "iso-8859-2",
                SimCharset::Cp852 => "cp852",
            }
            .into(),
            schedule: "0 */15 * * * *".into(),
        })
        .map_err(anyhow::Error::msg)?;
    reset_peak_rss();
    let start = Instant::now();
    let report = gsko_payments::statement::import_statement(
        &statement.path,
        tenant,
        payments.as_ref(),
        &options,
    )
    .await?;
    let wall = start.elapsed();
    let peak = peak_rss_kb();
    eprintln!(
        "bench: {mode}: statement imported in {:.1} s: {} credits, {} settled, {} unmatched, {} payouts, {} debits, {} rejected",
        wall.as_secs_f64(),
        report.credits,
        report.settled,
        report.unmatched,
        report.payouts.len(),
        report.debits,
        report.rejected.len()
    );
    if report.settled != statement.virtual_credits {
        eprintln!(
            "bench: {mode}: warning: {} credits to virtual accounts written, {} settled",
            statement.virtual_credits, report.settled
        );
    }
    Ok(Row {
        mode,
        what: "MT940 statement import".into(),
        count: format!(
            "{} lines, {} entries, {} settled",
            statement.lines, statement.entries, report.settled
        ),
        wall,
        rate: format!(
            "{:.0} lines/s ({:.0} entries/s)",
            statement.lines as f64 / wall.as_secs_f64(),
            statement.entries as f64 / wall.as_secs_f64()
        ),
        p50: None,
        p99: None,
        peak_rss_kb: peak,
    })
}
