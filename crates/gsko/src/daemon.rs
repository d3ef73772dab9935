//! Wiring of the daemon: store, bus, projector workers, per-tenant RADIX sync on cron, and the
//! query service. The same code runs production (RabbitMQ + Postgres) and the embedded demo
//! (in-process bus + SQLite): only the backends differ.

use anyhow::{Context, Result};
use gsko_bus::{Bus, Topology};
use gsko_config::{BusConfig, Config, ConfigError, DatabaseConfig};
use gsko_model::Teryt;
use gsko_projector::{Projector, ProjectorConfig};
use gsko_query::{AppState, Registry};
use gsko_store::Store;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Default)]
pub struct Options {
    /// Called once every tenant's first sync has finished (the demo prints its queries then).
    pub on_first_sync: Option<Box<dyn FnOnce() + Send>>,
    /// Stop after the first sync and a drained projector instead of serving.
    pub exit_after_first_sync: bool,
}

/// Checks what the connectors read from the configuration beyond its syntax (column mappings).
pub fn check_connectors(cfg: &Config) -> Result<(), ConfigError> {
    for (teryt, (file, t)) in &cfg.tenants {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            file: file.clone(),
            key: key.into(),
            reason,
        };
        if let Some(r) = &t.radix {
            import_options(r).map_err(|reason| invalid("radix.csv", reason))?;
            crate::payments::booking_writer(cfg, teryt, &t.name, r)
                .map_err(|e| invalid("radix.booking", format!("{e:#}")))?;
        }
        if let Some(b) = &t.bank {
            gsko_payments::statement::StatementOptions::from_config(b)
                .map_err(|reason| invalid("bank", reason))?;
        }
        if t.payments.is_some() {
            gsko_payments::tenant_payments(t).map_err(|reason| invalid("payments", reason))?;
        }
    }
    crate::epuap::receivers(cfg, None).map_err(|e| ConfigError::Invalid {
        file: cfg.path.clone(),
        key: "epuap".into(),
        reason: format!("{e:#}"),
    })?;
    Ok(())
}

/// The RADIX connector's options for one tenant (the CSV column mapping, when configured).
pub fn import_options(r: &gsko_config::RadixConfig) -> Result<gsko_radix::ImportOptions, String> {
    let csv = match &r.csv {
        Some(table) => table
            .clone()
            .try_into::<std::collections::BTreeMap<String, gsko_radix::csv::CsvMapping>>()
            .map_err(|e| e.to_string().trim().replace('\n', " "))?,
        None => Default::default(),
    };
    Ok(gsko_radix::ImportOptions {
        csv,
        ..Default::default()
    })
}

pub struct Backends {
    pub store: Arc<dyn Store>,
    /// The same database, seen by the payment service (orders, audit, outbox).
    pub payments: Arc<dyn gsko_store::PaymentStore>,
    /// The same database, seen by the decision delivery service.
    pub deliveries: Arc<dyn gsko_store::DeliveryStore>,
    /// The same database, seen by the filing service.
    pub filings: Arc<dyn gsko_store::FilingStore>,
    /// The same database, seen by the case service (EZD registrations and watched cases).
    pub cases: Arc<dyn gsko_store::CaseWorkStore>,
    /// The same database's audit log (who read whose data).
    pub audit: Arc<dyn gsko_store::AuditStore>,
    /// The same database, seen by resident login (pending logins, sessions).
    pub logins: Arc<dyn gsko_store::LoginStore>,
    pub bus: Arc<dyn Bus>,
}

pub async fn open_backends(cfg: &Config) -> Result<Backends> {
    #[allow(clippy::type_complexity)]
    let (store, payments, deliveries, filings, cases, audit, logins): (
        Arc<dyn Store>,
        Arc<dyn gsko_store::PaymentStore>,
        Arc<dyn gsko_store::DeliveryStore>,
        Arc<dyn gsko_store::FilingStore>,
        Arc<dyn gsko_store::CaseWorkStore>,
        Arc<dyn gsko_store::AuditStore>,
        Arc<dyn gsko_store::LoginStore>,
    ) = match &cfg.main.database {
        DatabaseConfig::Postgres {
            url,
            max_connections,
        } => {
            let url = url
                .resolve()
                .map_err(anyhow::Error::msg)
                .context("database.url")?;
            let pg = Arc::new(
                gsko_store::PgStore::connect(url.expose(), *max_connections)
                    .await
                    .context("connecting to PostgreSQL")?,
            );
            (
                pg.clone(),
                pg.clone(),
                pg.clone(),
                pg.clone(),
                pg.clone(),
                pg.clone(),
                pg,
            )
        }
        DatabaseConfig::Sqlite { path } => {
            let path = cfg.resolve_path(path);
            let lite = Arc::new(
                gsko_store::SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("opening SQLite database {}", path.display()))?,
            );
            (
                lite.clone(),
                lite.clone(),
                lite.clone(),
                lite.clone(),
                lite.clone(),
                lite.clone(),
                lite,
            )
        }
    };
    let bus: Arc<dyn Bus> = match &cfg.main.bus {
        BusConfig::Amqp {
            url,
            retry_delays_secs,
            ..
        } => {
            let url = url
                .resolve()
                .map_err(anyhow::Error::msg)
                .context("bus.url")?;
            let topology = Topology {
                retry_ladder: secs(retry_delays_secs),
                ..Topology::default()
            };
            Arc::new(
                gsko_bus::AmqpBus::connect(url.expose(), topology)
                    .await
                    .context("connecting to RabbitMQ")?,
            )
        }
        BusConfig::Memory {
            journal,
            retry_delays_secs,
            ..
        } => {
            let topology = Topology {
                retry_ladder: secs(retry_delays_secs),
                ..Topology::default()
            };
            let journal = journal.as_ref().map(|p| cfg.resolve_path(p));
            Arc::new(
                gsko_bus::MemoryBus::open(journal.as_deref(), topology)
                    .await
                    .context("opening the in-process bus journal")?,
            )
        }
    };
    Ok(Backends {
        store,
        payments,
        deliveries,
        filings,
        cases,
        audit,
        logins,
        bus,
    })
}

/// Lists parked messages through the configured bus, without taking them off the queue.
pub async fn list_parked(cfg: &Config, limit: usize) -> Result<Vec<gsko_bus::ParkedMessage>> {
    use gsko_bus::ParkingLot;
    match &cfg.main.bus {
        BusConfig::Amqp {
            url,
            retry_delays_secs,
            ..
        } => {
            let url = url
                .resolve()
                .map_err(anyhow::Error::msg)
                .context("bus.url")?;
            let topology = Topology {
                retry_ladder: secs(retry_delays_secs),
                ..Topology::default()
            };
            let bus = gsko_bus::AmqpBus::connect(url.expose(), topology)
                .await
                .context("connecting to RabbitMQ")?;
            Ok(bus.parked(limit).await?)
        }
        BusConfig::Memory {
            journal,
            retry_delays_secs,
            ..
        } => {
            let topology = Topology {
                retry_ladder: secs(retry_delays_secs),
                ..Topology::default()
            };
            let journal = journal.as_ref().map(|p| cfg.resolve_path(p));
            let bus = gsko_bus::MemoryBus::open(journal.as_deref(), topology)
                .await
                .context("opening the in-process bus journal")?;
            Ok(bus.parked(limit).await?)
        }
    }
}

fn secs(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs(*s)).collect()
}

fn prefetch(cfg: &Config) -> u16 {
    match &cfg.main.bus {
        BusConfig::Amqp { prefetch, .. } | BusConfig::Memory { prefetch, .. } => *prefetch,
    }
}

/// Counters of all projector workers of this process, summed.
#[derive(Clone, Default)]
pub struct ProjectorTotals(Vec<gsko_projector::ProjectorStats>);

impl ProjectorTotals {
    pub fn applied(&self) -> u64 {
        self.0.iter().map(|s| s.applied()).sum()
    }
    pub fn ignored(&self) -> u64 {
        self.0.iter().map(|s| s.ignored()).sum()
    }
    pub fn parked(&self) -> u64 {
        self.0.iter().map(|s| s.parked()).sum()
    }
    /// Every event a worker has finished with, whatever became of it.
    pub fn handled(&self) -> u64 {
        self.applied() + self.ignored() + self.parked()
    }
}

/// Starts `workers` projector workers (competing consumers) on the projector queue.
pub async fn spawn_projectors(
    bus: &Arc<dyn Bus>,
    store: &Arc<dyn Store>,
    cfg: &gsko_config::ProjectorConfig,
    prefetch: u16,
    queue: &str,
    metrics: &Registry,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, ProjectorTotals)> {
    let pc = ProjectorConfig {
        batch_size: cfg.batch_size,
        linger: Duration::from_millis(cfg.linger_ms),
        ..ProjectorConfig::default()
    };
    let mut totals = ProjectorTotals::default();
    let mut handles = Vec::new();
    for _ in 0..cfg.workers {
        let sub = bus
            .subscribe(queue, prefetch)
            .await
            .with_context(|| format!("subscribing to {queue}"))?;
        let p = Projector::new(store.clone(), pc.clone());
        totals.0.push(p.stats());
        let rx = shutdown.clone();
        let queue = queue.to_owned();
        handles.push(tokio::spawn(async move {
            if let Err(e) = p.run(sub, rx).await {
                tracing::error!(%queue, error = %e, "projector worker stopped");
            }
        }));
    }
    for (name, help, f) in [
        (
            "gsko_projector_events_applied_total",
            "Events that changed the view",
            ProjectorTotals::applied as fn(&ProjectorTotals) -> u64,
        ),
        (
            "gsko_projector_events_ignored_total",
            "Events that were duplicates or older versions",
            ProjectorTotals::ignored,
        ),
        (
            "gsko_projector_events_parked_total",
            "Events parked for an admin",
            ProjectorTotals::parked,
        ),
    ] {
        let s = totals.clone();
        metrics.sampled(name, help, "counter", &[], move || f(&s));
    }
    Ok((handles, totals))
}

/// One tenant's RADIX sync: fetch from the URL if configured, then import every file waiting
/// in the inbox, oldest name first. Returns how many events were published.
pub async fn sync_radix(
    tenant: &Teryt,
    r: &gsko_config::RadixConfig,
    dirs: &gsko_radix::TenantDirs,
    bus: &dyn Bus,
    counters: &SyncCounters,
) -> Result<u64> {
    let opts = import_options(r)
        .map_err(anyhow::Error::msg)
        .context("radix.csv")?;
    dirs.ensure()
        .with_context(|| format!("tenant {tenant}: creating {}", dirs.root.display()))?;
    if let Some(url) = &r.url {
        // A failed download is logged and the files already waiting are still imported.
        if let Err(e) = gsko_radix::fetch_url(url, &dirs.inbox()).await {
            counters.fetch_failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%tenant, error = %e, "radix export download failed");
        }
    }
    let files = dirs.pending().with_context(|| {
        format!(
            "tenant {tenant}: reading the inbox {}",
            dirs.inbox().display()
        )
    })?;
    let mut published = 0;
    for file in files {
        let report = gsko_radix::import_file(&file, tenant, bus, dirs, &opts)
            .await
            .with_context(|| format!("tenant {tenant}: importing"))?;
        published += events_published(&report);
        counters
            .records_rejected
            .fetch_add(report.rejected, Ordering::Relaxed);
        match &report.outcome {
            gsko_radix::ImportOutcome::Imported => {
                counters.files_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%tenant, file = %report.file, accepted = report.accepted, rejected = report.rejected, "radix export imported");
            }
            gsko_radix::ImportOutcome::AlreadyImported => {
                tracing::info!(%tenant, file = %report.file, "radix export already imported (same checksum); skipped");
            }
            gsko_radix::ImportOutcome::Truncated { reason }
            | gsko_radix::ImportOutcome::Refused { reason } => {
                counters.files_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%tenant, file = %report.file, accepted = report.accepted, rejected = report.rejected, %reason, "radix export moved to failed/");
            }
        }
    }
    Ok(published)
}

/// Events an import put on the bus: one per accepted and per rejected record, and the
/// closing `import.completed` when anything was read.
pub fn events_published(r: &gsko_radix::ImportReport) -> u64 {
    match r.outcome {
        gsko_radix::ImportOutcome::AlreadyImported => 0,
        gsko_radix::ImportOutcome::Refused { .. } if r.accepted + r.rejected == 0 => 0,
        _ => r.accepted + r.rejected + 1,
    }
}

#[derive(Clone)]
pub struct SyncCounters {
    pub files_ok: Arc<AtomicU64>,
    pub files_failed: Arc<AtomicU64>,
    pub fetch_failed: Arc<AtomicU64>,
    pub records_rejected: Arc<AtomicU64>,
}

impl SyncCounters {
    fn new(m: &Registry, tenant: &str) -> Self {
        SyncCounters {
            files_ok: m.counter(
                "gsko_radix_files_imported_total",
                "RADIX export files imported",
                &[("tenant", tenant)],
            ),
            files_failed: m.counter(
                "gsko_radix_files_failed_total",
                "RADIX export files moved to failed/ (refused or broken)",
                &[("tenant", tenant)],
            ),
            fetch_failed: m.counter(
                "gsko_radix_fetch_failed_total",
                "Failed downloads of a RADIX export URL",
                &[("tenant", tenant)],
            ),
            records_rejected: m.counter(
                "gsko_radix_records_rejected_total",
                "RADIX records rejected and kept for an admin",
                &[("tenant", tenant)],
            ),
        }
    }
}

/// Waits for the schedule's next time; false when the daemon is stopping (or the schedule has
/// no next time) and the periodic job should end.
pub async fn next_tick(schedule: &cron::Schedule, stop: &mut watch::Receiver<bool>) -> bool {
    let Some(next) = schedule.upcoming(chrono::Utc).next() else {
        return false;
    };
    let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => return false,
    }
    !*stop.borrow()
}

async fn wait_for_shutdown(tx: watch::Sender<bool>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
    tx.send(true).ok();
}

pub async fn run(cfg: Config, mut opts: Options) -> Result<()> {
    let metrics = Registry::new();
    let Backends {
        store,
        payments: payment_store,
        deliveries,
        filings,
        cases,
        audit,
        logins,
        bus,
    } = open_backends(&cfg).await?;
    let (tx, rx) = watch::channel(false);

    let (projectors, stats) = spawn_projectors(
        &bus,
        &store,
        &cfg.main.projector,
        prefetch(&cfg),
        gsko_bus::topology::PROJECTOR_QUEUE,
        &metrics,
        &rx,
    )
    .await?;

    // Per-tenant sync tasks: once at start, then on the tenant's cron schedule.
    let mut first_syncs = Vec::new();
    let mut sync_tasks = Vec::new();
    for (teryt, (_, t)) in &cfg.tenants {
        let Some(r) = t.radix.clone() else { continue };
        let dirs = gsko_radix::TenantDirs::new(cfg.resolve_path(&r.directory));
        dirs.ensure()
            .with_context(|| format!("tenant {teryt}: creating {}", dirs.root.display()))?;
        let schedule = cron::Schedule::from_str(&r.schedule)
            .map_err(|e| anyhow::anyhow!("tenant {teryt}: radix.schedule: {e}"))?;
        let counters = SyncCounters::new(&metrics, teryt.as_str());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<u64>();
        first_syncs.push(done_rx);
        let bus = bus.clone();
        let teryt = teryt.clone();
        let mut stop = rx.clone();
        sync_tasks.push(tokio::spawn(async move {
            match sync_radix(&teryt, &r, &dirs, bus.as_ref(), &counters).await {
                Ok(n) => {
                    done_tx.send(n).ok();
                }
                Err(e) => tracing::error!(tenant = %teryt, error = %format!("{e:#}"), "radix sync failed"),
            }
            while next_tick(&schedule, &mut stop).await {
                if let Err(e) = sync_radix(&teryt, &r, &dirs, bus.as_ref(), &counters).await {
                    tracing::error!(tenant = %teryt, error = %format!("{e:#}"), "radix sync failed");
                }
            }
        }));
    }

    let tenants: BTreeMap<Teryt, String> = cfg
        .tenants
        .iter()
        .map(|(k, (_, t))| (k.clone(), t.name.clone()))
        .collect();
    let mut state = AppState::new(
        store.clone(),
        cfg.portal_keys.clone(),
        tenants,
        metrics.clone(),
    )
    .with_audit(audit)
    .with_rate_limit(
        cfg.main.http.rate_limit_per_second,
        cfg.main.http.rate_burst,
    )
    .with_hsts(cfg.main.http.hsts)
    .with_cors(
        cfg.tenants
            .iter()
            .map(|(t, (_, c))| (t.clone(), c.cors_origins.clone()))
            .collect(),
    );
    if cfg.main.login.is_some() {
        crate::login::spawn_pruning(logins.clone(), rx.clone());
    }
    if let Some(login) = crate::login::service(&cfg, logins).context("starting resident login")? {
        let secure = cfg.main.login.as_ref().is_none_or(|l| l.secure_cookie);
        state = state.with_login(login, secure);
    }
    let mut payment_tasks = crate::payments::spawn(&cfg, &payment_store, &bus, &metrics, &rx)
        .await
        .context("starting the payment service")?;
    let delivery = crate::delivery::service(
        &cfg,
        deliveries,
        payment_store.clone(),
        payment_tasks.outbox_wake.clone(),
    )
    .context("starting decision delivery")?;
    let receipts = delivery
        .clone()
        .map(|d| d as Arc<dyn gsko_epuap::receiver::ReceiptSink>);
    let mut epuap_tasks = crate::epuap::spawn(&cfg, &bus, &metrics, &rx, receipts)
        .context("starting the ePUAP receivers")?;
    if let Some(d) = delivery {
        epuap_tasks.push(crate::delivery::spawn(d, &bus, &rx));
    }
    // The EZD connector: tenants with [ezd] register letters and follow their cases.
    let cases_store = cases.clone();
    let case_service = crate::cases::service(&cfg, cases).context("starting the EZD connector")?;
    if let Some(c) = &case_service {
        epuap_tasks.extend(crate::cases::spawn(c.clone(), &bus, &rx));
    }
    // Filing through GSKO: tenants whose [epuap] names the PZ signing service.
    let filing =
        gsko_filing::FilingService::from_config(filings, &cfg, crate::payments::public_url(&cfg))
            .map_err(anyhow::Error::msg)
            .context("starting filing through GSKO")?
            .with_outbox_wake(payment_tasks.outbox_wake.clone());
    if filing.tenants().next().is_some() {
        state.filing = Some(Arc::new(filing));
    }
    let mut app_extra = axum::Router::new();
    if let Some(service) = payment_tasks.service.take() {
        app_extra = gsko_payments::notify::routes(service.clone());
        state = state.with_payments(service);
    }
    state = state.with_cases(
        case_service
            .as_ref()
            .map_or(cases_store, |c| c.store().clone()),
    );
    if let Some(c) = case_service {
        app_extra = app_extra.merge(gsko_cases::hooks::routes(c));
    }
    let app = gsko_query::router(state, cfg.main.http.body_limit).merge(app_extra);
    let listener = tokio::net::TcpListener::bind(&cfg.main.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", cfg.main.http.listen))?;
    tracing::info!(listen = %cfg.main.http.listen, tenants = cfg.tenants.len(), "gsko running");

    // Wait for every tenant's first sync, then for the projector to drain what it published.
    let on_first = opts.on_first_sync.take();
    let exit_after = opts.exit_after_first_sync;
    let drain_store = store.clone();
    let drain_stats = stats.clone();
    let tx_first = tx.clone();
    tokio::spawn(async move {
        let mut published = 0;
        for d in first_syncs {
            published += d.await.unwrap_or(0);
        }
        wait_until_drained(&drain_stats, published).await;
        drop(drain_store.ping().await);
        if let Some(f) = on_first {
            f();
        }
        if exit_after {
            tx_first.send(true).ok();
        }
    });

    let mut http_stop = rx.clone();
    // The peer's address goes into the audit log (unless a proxy names the client).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        drop(http_stop.wait_for(|v| *v).await);
    });
    tokio::spawn(wait_for_shutdown(tx));
    server.await.context("http server")?;
    for h in sync_tasks {
        drop(h.await);
    }
    for h in payment_tasks.handles.into_iter().chain(epuap_tasks) {
        drop(h.await);
    }
    for h in projectors {
        drop(h.await);
    }
    Ok(())
}

/// Waits until the projector has handled at least `published` events (more may come from an
/// earlier run's queue) and then stays idle for a moment.
async fn wait_until_drained(stats: &ProjectorTotals, published: u64) {
    let handled = || stats.handled();
    while handled() < published {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut last = handled();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = handled();
        if now == last {
            return;
        }
        last = now;
    }
}
