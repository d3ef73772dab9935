//! Wiring of the ePUAP receiver: one WS-Pull loop per tenant and box, at start and then on
//! the tenant's schedule.

use anyhow::{Context, Result};
use gsko_bus::Bus;
use gsko_config::Config;
use gsko_epuap::client::{PullClient, RetryPolicy};
use gsko_epuap::pull::BoxAddress;
use gsko_epuap::receiver::{FileStore, Receiver};
use gsko_epuap::wssec::SigningIdentity;
use gsko_epuap::xades::XadesTrust;
use gsko_query::Registry;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::watch;

/// The receivers of every tenant with an `[epuap]` section (checked by `check-config` too).
pub fn receivers(
    cfg: &Config,
    receipts: Option<Arc<dyn gsko_epuap::receiver::ReceiptSink>>,
) -> Result<Vec<(Receiver, cron::Schedule)>> {
    let mut out = Vec::new();
    for (teryt, (file, t)) in &cfg.tenants {
        let Some(e) = &t.epuap else { continue };
        let at = |key: &str| format!("{}: epuap.{key}", file.display());
        let cert = e
            .certificate
            .resolve()
            .map_err(anyhow::Error::msg)
            .with_context(|| at("certificate"))?;
        let key = e
            .private_key
            .resolve()
            .map_err(anyhow::Error::msg)
            .with_context(|| at("private_key"))?;
        let identity = Arc::new(
            SigningIdentity::from_pem(cert.expose(), key.expose())
                .with_context(|| at("certificate"))?,
        );
        let signatures = match &e.pz_certificates {
            Some(pz) => {
                let pem = pz
                    .resolve()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| at("pz_certificates"))?;
                XadesTrust::with_pz_certificates_pem(pem.expose())
                    .with_context(|| at("pz_certificates"))?
            }
            None => XadesTrust::default(),
        };
        let schedule = cron::Schedule::from_str(&e.schedule)
            .map_err(|err| anyhow::anyhow!("{}: {err}", at("schedule")))?;
        let documents = match &e.documents {
            Some(d) => cfg.resolve_path(d),
            None => cfg.resolve_path(&std::path::PathBuf::from("documents").join(teryt.as_str())),
        };
        for name in &e.boxes {
            let client = PullClient::new(
                e.pull_url.clone(),
                identity.clone(),
                BoxAddress::new(e.podmiot.clone(), name.clone()),
                RetryPolicy::default(),
            )
            .with_context(|| at("pull_url"))?;
            out.push((
                Receiver {
                    tenant: teryt.clone(),
                    client,
                    files: FileStore::new(&documents),
                    max_attachment_bytes: e.max_attachment_bytes,
                    signatures: signatures.clone(),
                    receipts: receipts.clone(),
                },
                schedule.clone(),
            ));
        }
    }
    Ok(out)
}

pub fn spawn(
    cfg: &Config,
    bus: &Arc<dyn Bus>,
    metrics: &Registry,
    shutdown: &watch::Receiver<bool>,
    receipts: Option<Arc<dyn gsko_epuap::receiver::ReceiptSink>>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut handles = Vec::new();
    for (receiver, schedule) in receivers(cfg, receipts)? {
        let received = metrics.counter(
            "gsko_epuap_letters_received_total",
            "Letters pulled from ePUAP, published and confirmed",
            &[("tenant", receiver.tenant.as_str())],
        );
        let failed = metrics.counter(
            "gsko_epuap_pull_failures_total",
            "WS-Pull runs that stopped on an error (retried on the next run)",
            &[("tenant", receiver.tenant.as_str())],
        );
        let (bus, mut stop) = (bus.clone(), shutdown.clone());
        handles.push(tokio::spawn(async move {
            loop {
                match receiver.run_once(bus.as_ref()).await {
                    Ok(r) => {
                        received.fetch_add(r.received, std::sync::atomic::Ordering::Relaxed);
                        if r.received + r.unconfirmed > 0 {
                            tracing::info!(tenant = %receiver.tenant, r#box = %receiver.client.target().address(), received = r.received, unconfirmed = r.unconfirmed, "ePUAP box pulled");
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::error!(tenant = %receiver.tenant, r#box = %receiver.client.target().address(), error = %e, "ePUAP pull failed; the box keeps what was not confirmed");
                    }
                }
                if !crate::daemon::next_tick(&schedule, &mut stop).await {
                    break;
                }
            }
        }));
    }
    Ok(handles)
}
