//! Wiring of decision delivery: one service for every tenant with WS-Doręczyciel or an
//! e-Doręczenia mailbox configured. It consumes `decision.deliver` commands, takes the UPDs
//! the ePUAP receivers pull, polls e-Doręczenia, and queues `decision.delivered` in the shared
//! outbox (relayed by the payment side's relay).

use anyhow::{Context, Result};
use gsko_bus::Bus;
use gsko_config::{Config, DeliveryPreferred};
use gsko_delivery::{DeliveryService, Preferred, TenantDelivery};
use gsko_epuap::client::RetryPolicy;
use gsko_epuap::receiver::FileStore;
use gsko_epuap::send::DoreczycielClient;
use gsko_epuap::wssec::SigningIdentity;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The tenant's content store (documents, decisions, evidences), as the ePUAP receiver uses it.
pub fn tenant_files(cfg: &Config, teryt: &gsko_model::Teryt) -> FileStore {
    let configured = cfg
        .tenants
        .get(teryt)
        .and_then(|(_, t)| t.epuap.as_ref())
        .and_then(|e| e.documents.clone());
    FileStore::new(match configured {
        Some(d) => cfg.resolve_path(&d),
        None => cfg.resolve_path(&std::path::PathBuf::from("documents").join(teryt.as_str())),
    })
}

/// The service, when any tenant can deliver decisions.
pub fn service(
    cfg: &Config,
    store: Arc<dyn gsko_store::DeliveryStore>,
    outbox: Arc<dyn gsko_store::PaymentStore>,
    wake: Arc<Notify>,
) -> Result<Option<Arc<DeliveryService>>> {
    let mut tenants = BTreeMap::new();
    let mut files = BTreeMap::new();
    let mut poll = Duration::from_secs(60);
    for (teryt, (file, t)) in &cfg.tenants {
        let at = |key: &str| format!("{}: {key}", file.display());
        let epuap = match &t.epuap {
            Some(e) if e.doreczyciel_url.is_some() => {
                let cert = e
                    .certificate
                    .resolve()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| at("epuap.certificate"))?;
                let key = e
                    .private_key
                    .resolve()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| at("epuap.private_key"))?;
                let identity = Arc::new(
                    SigningIdentity::from_pem(cert.expose(), key.expose())
                        .with_context(|| at("epuap.certificate"))?,
                );
                let url = e.doreczyciel_url.clone().unwrap_or_default();
                let client = DoreczycielClient::new(
                    url,
                    identity,
                    e.podmiot.clone(),
                    RetryPolicy::default(),
                )
                .with_context(|| at("epuap.doreczyciel_url"))?;
                let reply = format!(
                    "/{}/{}",
                    e.podmiot,
                    e.boxes.first().cloned().unwrap_or_default()
                );
                Some((client, reply))
            }
            _ => None,
        };
        let edoreczenia = match &t.edoreczenia {
            Some(e) => {
                let cert = e
                    .certificate
                    .resolve()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| at("edoreczenia.certificate"))?;
                let key = e
                    .private_key
                    .resolve()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| at("edoreczenia.private_key"))?;
                let ade =
                    gsko_model::AdeAddress::parse(&e.ade).with_context(|| at("edoreczenia.ade"))?;
                let config = gsko_edoreczenia::Config::new(
                    e.token_url.clone(),
                    e.api_url.clone(),
                    ade,
                    e.system_name.clone(),
                    cert.expose().to_owned(),
                    key.expose().to_owned(),
                );
                poll = poll.min(Duration::from_secs(e.poll_secs.max(1)));
                Some(gsko_edoreczenia::UaClient::new(config).with_context(|| at("edoreczenia"))?)
            }
            None => None,
        };
        if epuap.is_none() && edoreczenia.is_none() {
            continue;
        }
        let preferred = match t.delivery.as_ref().map(|d| d.preferred).unwrap_or_default() {
            DeliveryPreferred::Auto => Preferred::Auto,
            DeliveryPreferred::Epuap => Preferred::Epuap,
            DeliveryPreferred::EDoreczenia => Preferred::EDoreczenia,
        };
        files.insert(teryt.clone(), tenant_files(cfg, teryt));
        tenants.insert(
            teryt.clone(),
            TenantDelivery {
                epuap,
                edoreczenia,
                preferred,
            },
        );
    }
    if tenants.is_empty() {
        return Ok(None);
    }
    // Decisions of tenants without their own store fall back to the shared documents root.
    let fallback = FileStore::new(cfg.resolve_path(&std::path::PathBuf::from("documents")));
    Ok(Some(Arc::new(
        DeliveryService::from_parts(store, outbox, wake, fallback, tenants)
            .with_tenant_files(files)
            .with_poll_interval(poll),
    )))
}

/// Runs the service until shutdown, resubscribing after a bus error.
pub fn spawn(
    service: Arc<DeliveryService>,
    bus: &Arc<dyn Bus>,
    shutdown: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (bus, stop) = (bus.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            match service.clone().run(bus.clone(), stop.clone()).await {
                Ok(stats) => {
                    tracing::info!(
                        handled = stats.handled,
                        retried = stats.retried,
                        parked = stats.parked,
                        "decision delivery stopped"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "decision delivery lost its bus subscription; resubscribing");
                    if *stop.borrow() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}
