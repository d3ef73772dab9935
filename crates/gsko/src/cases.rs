//! Wiring of the EZD connector: one case service for every tenant with `[ezd]`. It consumes
//! `letter.register`, follows the registered cases and raises `decision.deliver`; EZD's
//! webhooks reach it at `POST /hooks/ezd/{teryt}` on the query service's listener.

use anyhow::{Context, Result};
use gsko_bus::Bus;
use gsko_cases::{CaseService, PollSettings, Route, Routing, TenantCases};
use gsko_config::{Config, DeliveryPreferred, EzdRoute};
use gsko_ezd::ezdrp::{EzdRpClient, EzdRpConfig};
use gsko_model::DeliveryPreference;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn route(r: &EzdRoute) -> Route {
    Route {
        form_namespace: r.form.clone(),
        title_contains: r.title_contains.clone(),
        class_id: r.class_id.clone(),
        jrwa_symbol: r.jrwa_symbol.clone(),
        archival_category: r.archival_category.clone(),
        join_open_case: r.join_open_case,
        case_title: r.case_title.clone(),
    }
}

/// The service, when any tenant has an EZD.
pub fn service(
    cfg: &Config,
    store: Arc<dyn gsko_store::CaseWorkStore>,
) -> Result<Option<Arc<CaseService>>> {
    let mut tenants = HashMap::new();
    let mut poll = PollSettings::default();
    for (teryt, (file, t)) in &cfg.tenants {
        let Some(e) = &t.ezd else { continue };
        let at = |key: &str| format!("{}: {key}", file.display());
        let key = e
            .api_key
            .resolve()
            .map_err(anyhow::Error::msg)
            .with_context(|| at("ezd.api_key"))?;
        let mut client_cfg = EzdRpConfig::new(
            e.api_url.clone(),
            e.token_url.clone(),
            e.web_host.clone(),
            e.podmiot_id.clone(),
            e.api_key_id.clone(),
            key,
            e.stanowisko_id.clone(),
        );
        client_cfg.allowed_file_origins = e.allowed_file_origins.clone();
        let port = EzdRpClient::new(client_cfg)
            .map_err(|err| anyhow::anyhow!("{err}"))
            .with_context(|| at("ezd"))?;
        // One schedule for the service: the shortest any tenant asks for.
        poll.interval = poll.interval.min(Duration::from_secs(e.poll_secs));
        poll.overlap = poll.overlap.max(Duration::from_secs(e.overlap_secs));
        let delivery = match t.delivery.as_ref().map(|d| d.preferred).unwrap_or_default() {
            DeliveryPreferred::Auto => DeliveryPreference::Auto,
            DeliveryPreferred::Epuap => DeliveryPreference::Epuap,
            DeliveryPreferred::EDoreczenia => DeliveryPreference::EDoreczenia,
        };
        tenants.insert(
            teryt.clone(),
            TenantCases {
                port: Arc::new(port),
                routing: Routing {
                    rules: e.routes.iter().map(route).collect(),
                    default: Some(route(&e.default_route)),
                },
                decision_prefixes: e.decision_prefixes.clone(),
                delivery,
                files: crate::delivery::tenant_files(cfg, teryt),
            },
        );
    }
    if tenants.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(CaseService::new(store, tenants, poll))))
}

/// Runs the consumer (resubscribing after a bus error) and the followers until shutdown.
pub fn spawn(
    service: Arc<CaseService>,
    bus: &Arc<dyn Bus>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let consumer = {
        let (service, bus, stop) = (service.clone(), bus.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                match service.consume(bus.as_ref(), stop.clone()).await {
                    Ok(stats) => {
                        tracing::info!(
                            handled = stats.handled,
                            retried = stats.retried,
                            parked = stats.parked,
                            "EZD registration stopped"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "EZD registration lost its bus subscription; resubscribing");
                        if *stop.borrow() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    };
    let follower = tokio::spawn(service.follow(bus.clone(), shutdown.clone()));
    vec![consumer, follower]
}
