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
use std::path::PathBuf;
use std::str::FromStr;
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
    for (file, t) in cfg.tenants.values() {
        if let Some(r) = &t.radix {
            gsko_radix::check_config(r).map_err(|reason| ConfigError::Invalid { file: file.clone(), key: "radix.csv".into(), reason })?;
        }
    }
    Ok(())
}

pub struct Backends {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
}

pub async fn open_backends(cfg: &Config) -> Result<Backends> {
    let store: Arc<dyn Store> = match &cfg.main.database {
        DatabaseConfig::Postgres { url, max_connections } => {
            let url = url.resolve().map_err(anyhow::Error::msg).context("database.url")?;
            Arc::new(gsko_store::PgStore::connect(url.expose(), *max_connections).await.context("connecting to PostgreSQL")?)
        }
        DatabaseConfig::Sqlite { path } => {
            let path = cfg.resolve_path(path);
            Arc::new(gsko_store::SqliteStore::open(&path).await.with_context(|| format!("opening SQLite database {}", path.display()))?)
        }
    };
    let bus: Arc<dyn Bus> = match &cfg.main.bus {
        BusConfig::Amqp { url, retry_delays_secs, .. } => {
            let url = url.resolve().map_err(anyhow::Error::msg).context("bus.url")?;
            let topology = Topology { retry_ladder: secs(retry_delays_secs), ..Topology::default() };
            Arc::new(gsko_bus::AmqpBus::connect(url.expose(), topology).await.context("connecting to RabbitMQ")?)
        }
        BusConfig::Memory { journal, retry_delays_secs, .. } => {
            let topology = Topology { retry_ladder: secs(retry_delays_secs), ..Topology::default() };
            let journal = journal.as_ref().map(|p| cfg.resolve_path(p));
            Arc::new(gsko_bus::MemoryBus::open(journal.as_deref(), topology).await.context("opening the in-process bus journal")?)
        }
    };
    Ok(Backends { store, bus })
}

fn secs(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs(*s)).collect()
}

fn prefetch(cfg: &Config) -> u16 {
    match &cfg.main.bus {
        BusConfig::Amqp { prefetch, .. } | BusConfig::Memory { prefetch, .. } => *prefetch,
    }
}

/// Starts `workers` projector workers on the projector queue.
pub async fn spawn_projectors(
    bus: &Arc<dyn Bus>,
    store: &Arc<dyn Store>,
    cfg: &gsko_config::ProjectorConfig,
    prefetch: u16,
    queue: &str,
    metrics: &Registry,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, gsko_projector::ProjectorStats)> {
    let pc = ProjectorConfig { batch_size: cfg.batch_size, linger: Duration::from_millis(cfg.linger_ms), ..ProjectorConfig::default() };
    let stats = gsko_projector::ProjectorStats::default();
    let mut handles = Vec::new();
    for _ in 0..cfg.workers {
        let sub = bus.subscribe(queue, prefetch).await.with_context(|| format!("subscribing to {queue}"))?;
        let p = Projector::new(store.clone(), pc.clone()).with_stats(stats.clone());
        let rx = shutdown.clone();
        handles.push(tokio::spawn(async move { p.run(sub, rx).await }));
    }
    for (name, help, f) in [
        ("gsko_projector_events_applied_total", "Events that changed the view", gsko_projector::ProjectorStats::applied as fn(&gsko_projector::ProjectorStats) -> u64),
        ("gsko_projector_events_ignored_total", "Events that were duplicates or older versions", gsko_projector::ProjectorStats::ignored),
        ("gsko_projector_events_parked_total", "Events parked for an admin", gsko_projector::ProjectorStats::parked),
    ] {
        let s = stats.clone();
        metrics.sampled(name, help, "counter", &[], move || f(&s));
    }
    Ok((handles, stats))
}

/// One tenant's RADIX sync: fetch from the URL if configured, then import every file waiting
/// in the inbox, oldest name first.
pub async fn sync_radix(tenant: &Teryt, r: &gsko_config::RadixConfig, inbox: &std::path::Path, bus: &dyn Bus, counters: &SyncCounters) -> Result<()> {
    if let Some(url) = &r.url {
        gsko_radix::fetch_url(url, inbox).await.with_context(|| format!("tenant {tenant}: fetching the export URL"))?;
    }
    let files = gsko_radix::pending_files(inbox).with_context(|| format!("tenant {tenant}: reading inbox {}", inbox.display()))?;
    let adapter = gsko_radix::Adapter::from_config(r).map_err(anyhow::Error::msg)?;
    for file in files {
        match gsko_radix::import_file(&file, tenant, &adapter, bus).await {
            Ok(report) => {
                counters.files_ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                counters.records_rejected.fetch_add(report.records_rejected, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(%tenant, file = %report.file, accepted = report.records_accepted, rejected = report.records_rejected, skipped = report.skipped_duplicate, "radix import finished");
            }
            Err(e) => {
                counters.files_failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(%tenant, file = %file.display(), error = %e, "radix import failed");
            }
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct SyncCounters {
    pub files_ok: Arc<std::sync::atomic::AtomicU64>,
    pub files_failed: Arc<std::sync::atomic::AtomicU64>,
    pub records_rejected: Arc<std::sync::atomic::AtomicU64>,
}

impl SyncCounters {
    fn new(m: &Registry, tenant: &str) -> Self {
        SyncCounters {
            files_ok: m.counter("gsko_radix_files_imported_total", "RADIX export files imported", &[("tenant", tenant)]),
            files_failed: m.counter("gsko_radix_files_failed_total", "RADIX export files that failed as a whole", &[("tenant", tenant)]),
            records_rejected: m.counter("gsko_radix_records_rejected_total", "RADIX records rejected and kept for an admin", &[("tenant", tenant)]),
        }
    }
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
    let _ = tx.send(true);
}

pub async fn run(cfg: Config, mut opts: Options) -> Result<()> {
    let metrics = Registry::new();
    let Backends { store, bus } = open_backends(&cfg).await?;
    let (tx, rx) = watch::channel(false);

    let (projectors, stats) = spawn_projectors(&bus, &store, &cfg.main.projector, prefetch(&cfg), gsko_bus::topology::PROJECTOR_QUEUE, &metrics, &rx).await?;

    // Per-tenant sync tasks: once at start, then on the tenant's cron schedule.
    let mut first_syncs = Vec::new();
    let mut sync_tasks = Vec::new();
    for (teryt, (_, t)) in &cfg.tenants {
        let Some(r) = t.radix.clone() else { continue };
        let inbox: PathBuf = cfg.resolve_path(&r.inbox);
        std::fs::create_dir_all(&inbox).with_context(|| format!("tenant {teryt}: creating inbox {}", inbox.display()))?;
        let schedule = cron::Schedule::from_str(&r.schedule).map_err(|e| anyhow::anyhow!("tenant {teryt}: radix.schedule: {e}"))?;
        let counters = SyncCounters::new(&metrics, teryt.as_str());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        first_syncs.push(done_rx);
        let bus = bus.clone();
        let teryt = teryt.clone();
        let mut stop = rx.clone();
        sync_tasks.push(tokio::spawn(async move {
            if let Err(e) = sync_radix(&teryt, &r, &inbox, bus.as_ref(), &counters).await {
                tracing::error!(tenant = %teryt, error = %format!("{e:#}"), "radix sync failed");
            }
            let _ = done_tx.send(());
            loop {
                let Some(next) = schedule.upcoming(chrono::Utc).next() else { break };
                let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
                if let Err(e) = sync_radix(&teryt, &r, &inbox, bus.as_ref(), &counters).await {
                    tracing::error!(tenant = %teryt, error = %format!("{e:#}"), "radix sync failed");
                }
            }
        }));
    }

    let tenants: BTreeMap<Teryt, String> = cfg.tenants.iter().map(|(k, (_, t))| (k.clone(), t.name.clone())).collect();
    let state = AppState::new(store.clone(), cfg.portal_keys.clone(), tenants, metrics.clone());
    let app = gsko_query::router(state, cfg.main.http.body_limit);
    let listener = tokio::net::TcpListener::bind(&cfg.main.http.listen).await.with_context(|| format!("binding http.listen {}", cfg.main.http.listen))?;
    tracing::info!(listen = %cfg.main.http.listen, tenants = cfg.tenants.len(), "gsko running");

    // Wait for every tenant's first sync, then for the projector to drain what it published.
    let on_first = opts.on_first_sync.take();
    let exit_after = opts.exit_after_first_sync;
    let drain_store = store.clone();
    let drain_stats = stats.clone();
    let tx_first = tx.clone();
    tokio::spawn(async move {
        for d in first_syncs {
            let _ = d.await;
        }
        wait_until_drained(&drain_stats).await;
        let _ = drain_store.ping().await;
        if let Some(f) = on_first {
            f();
        }
        if exit_after {
            let _ = tx_first.send(true);
        }
    });

    let mut http_stop = rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|v| *v).await;
    });
    tokio::spawn(wait_for_shutdown(tx));
    server.await.context("http server")?;
    for h in sync_tasks {
        let _ = h.await;
    }
    for h in projectors {
        let _ = h.await;
    }
    Ok(())
}

/// Waits until the projector has been idle (no new events handled) for a moment.
async fn wait_until_drained(stats: &gsko_projector::ProjectorStats) {
    let mut last = u64::MAX;
    let mut idle = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = stats.applied() + stats.ignored() + stats.parked();
        if now == last && now > 0 {
            idle += 1;
            if idle >= 5 {
                return;
            }
        } else {
            idle = 0;
        }
        last = now;
    }
}
