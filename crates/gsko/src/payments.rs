//! Wiring of the payment side of the daemon: the payment service (orders and gateway
//! notifications), the outbox relay, the RADIX booking consumer and the bank statement pickup.

use anyhow::{Context, Result};
use gsko_bus::Bus;
use gsko_config::Config;
use gsko_model::Teryt;
use gsko_payments::PaymentService;
use gsko_query::Registry;
use gsko_store::PaymentStore;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::watch;

pub struct PaymentTasks {
    /// `None` when no tenant configures online payments.
    pub service: Option<Arc<PaymentService>>,
    pub handles: Vec<tokio::task::JoinHandle<()>>,
    /// Wakes the one relay of the database's outbox (others queue messages there too).
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

/// The base URL gateways reach this daemon at.
pub fn public_url(cfg: &Config) -> String {
    cfg.main
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.main.http.listen))
}

pub async fn spawn(
    cfg: &Config,
    store: &Arc<dyn PaymentStore>,
    bus: &Arc<dyn Bus>,
    metrics: &Registry,
    shutdown: &watch::Receiver<bool>,
) -> Result<PaymentTasks> {
    let mut handles = Vec::new();
    let any_payments = cfg.tenants.values().any(|(_, t)| t.payments.is_some());
    let service = if any_payments {
        Some(Arc::new(
            PaymentService::from_config(store.clone(), cfg, public_url(cfg))
                .map_err(anyhow::Error::msg)?,
        ))
    } else {
        None
    };
    let wake = service
        .as_ref()
        .map(|s| s.outbox_wake())
        .unwrap_or_else(|| Arc::new(tokio::sync::Notify::new()));

    // The outbox relay runs whatever is configured: bank statements queue messages too.
    {
        let (store, bus, wake, rx) = (store.clone(), bus.clone(), wake.clone(), shutdown.clone());
        handles.push(tokio::spawn(async move {
            let n = gsko_payments::relay::run(store, bus, wake, rx).await;
            tracing::info!(published = n, "outbox relay stopped");
        }));
    }

    // RADIX booking: one consumer for every tenant with a RADIX directory.
    let mut writers = BTreeMap::new();
    for (teryt, (file, t)) in &cfg.tenants {
        let Some(r) = &t.radix else { continue };
        let writer = booking_writer(cfg, teryt, &t.name, r)
            .with_context(|| format!("{}: radix.booking", file.display()))?;
        writers.insert(teryt.clone(), writer);
    }
    if !writers.is_empty() {
        let sub = bus
            .subscribe(gsko_bus::topology::BOOKING_QUEUE, 50)
            .await
            .context("subscribing to the booking queue")?;
        let rx = shutdown.clone();
        handles.push(tokio::spawn(async move {
            match gsko_radix::booking::run_booking(sub, writers, rx).await {
                Ok(stats) => tracing::info!(
                    written = stats.written,
                    already_there = stats.already_there,
                    parked = stats.parked,
                    "booking consumer stopped"
                ),
                Err(e) => tracing::error!(error = %e, "booking consumer stopped on a bus error"),
            }
        }));
    }

    // Bank statements: once at start, then on the tenant's schedule.
    for (teryt, (file, t)) in &cfg.tenants {
        let Some(b) = t.bank.clone() else { continue };
        let options = gsko_payments::statement::StatementOptions::from_config(&b)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{}: bank", file.display()))?;
        let schedule = cron::Schedule::from_str(&b.schedule)
            .map_err(|e| anyhow::anyhow!("tenant {teryt}: bank.schedule: {e}"))?;
        let dir = cfg.resolve_path(&b.directory);
        std::fs::create_dir_all(dir.join("inbox"))
            .with_context(|| format!("tenant {teryt}: creating {}", dir.display()))?;
        let files = metrics.counter(
            "gsko_bank_statements_imported_total",
            "Bank statement files imported",
            &[("tenant", teryt.as_str())],
        );
        let (store, teryt, mut stop, wake) =
            (store.clone(), teryt.clone(), shutdown.clone(), wake.clone());
        let service = service.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let reports =
                    gsko_payments::statement::run_inbox(&dir, &teryt, store.as_ref(), &options)
                        .await;
                for r in reports {
                    match r {
                        Ok(report) => {
                            files.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::info!(tenant = %teryt, file = %report.file, settled = report.settled, unmatched = report.unmatched, rejected = report.rejected.len(), "bank statement imported");
                            // Gateway payouts against the gateways' batch reports; whatever
                            // does not match is queued for an admin inside.
                            if let Some(service) = service.as_deref().filter(|_| !report.payouts.is_empty()) {
                                let results = gsko_payments::payout::reconcile_payouts(
                                    service,
                                    &teryt,
                                    &report.payouts,
                                )
                                .await;
                                let count = |label: &str| {
                                    results.iter().filter(|r| r.outcome.label() == label).count()
                                };
                                let queued = results.iter().filter(|r| r.unmatched_queued).count();
                                tracing::info!(tenant = %teryt, file = %report.file, payouts = results.len(), matched = count("matched"), mismatch = count("mismatch"), unresolved = count("unresolved"), queued, "gateway payouts reconciled");
                            }
                        }
                        Err(e) => {
                            tracing::error!(tenant = %teryt, error = %e, "bank statement not imported")
                        }
                    }
                }
                wake.notify_one();
                if !crate::daemon::next_tick(&schedule, &mut stop).await {
                    break;
                }
            }
        }));
    }
    Ok(PaymentTasks {
        service,
        handles,
        outbox_wake: wake,
    })
}

/// The tenant's booking writer: `[radix.booking]` or the defaults (XML contract files in
/// `<radix.directory>/booking`).
pub fn booking_writer(
    cfg: &Config,
    teryt: &Teryt,
    tenant_name: &str,
    r: &gsko_config::RadixConfig,
) -> Result<gsko_radix::booking::BookingWriter> {
    use gsko_radix::booking::{BookingFormat, BookingWriter, ElixirOptions};
    let b = r
        .booking
        .clone()
        .unwrap_or_else(|| gsko_config::BookingConfig {
            format: "xml".into(),
            ..Default::default()
        });
    let dir = match &b.directory {
        Some(d) => cfg.resolve_path(d),
        None => cfg.resolve_path(&r.directory).join("booking"),
    };
    let nrb = |key: &str, v: &str| {
        gsko_model::Nrb::from_str(v).map_err(|e| anyhow::anyhow!("radix.booking.{key}: {e}"))
    };
    let format = match b.format.as_str() {
        "xml" => BookingFormat::Xml,
        "elixir0" | "elixir-0" => BookingFormat::Elixir0,
        other => anyhow::bail!("radix.booking.format: {other:?} is not xml or elixir0"),
    };
    let elixir = if format == BookingFormat::Elixir0 {
        let collection = b.collection_account.as_deref().ok_or_else(|| {
            anyhow::anyhow!("radix.booking.collection_account: needed for elixir0")
        })?;
        let mut o = ElixirOptions::new(
            nrb("collection_account", collection)?,
            b.beneficiary_name
                .clone()
                .unwrap_or_else(|| tenant_name.to_owned()),
        );
        for (gateway, account) in &b.gateway_accounts {
            let channel = match gateway.as_str() {
                "przelewy24" => gsko_model::PaymentChannel::Przelewy24,
                "payu" => gsko_model::PaymentChannel::Payu,
                other => anyhow::bail!(
                    "radix.booking.gateway_accounts: {other:?} is not przelewy24 or payu"
                ),
            };
            o = o.with_gateway(channel, nrb("gateway_accounts", account)?);
        }
        if let Some(a) = &b.bank_transfer_account {
            o.bank_transfer_ordering = Some(nrb("bank_transfer_account", a)?);
        }
        if let Some(c) = &b.charset {
            let enc: gsko_codepages::TextEncoding =
                serde_json::from_value(serde_json::Value::String(c.clone())).map_err(|_| {
                    anyhow::anyhow!("radix.booking.charset: unknown code page {c:?}")
                })?;
            o = o.with_charset(enc);
        }
        Some(o)
    } else {
        None
    };
    BookingWriter::new(dir, teryt.clone(), format, elixir).map_err(|e| anyhow::anyhow!("{e}"))
}
