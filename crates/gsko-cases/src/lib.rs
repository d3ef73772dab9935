//! The case service: GSKO's side of the municipality's EZD.
//!
//! - **Registration.** Consumes `letter.register` commands (queue `gsko.ezd.register`): the
//!   letter and its attachments are registered in the tenant's EZD as an incoming item (RPW)
//!   and put in a case chosen by the tenant's routing rules (a new case in a JRWA class, or the
//!   resident's open case in that class). Then `case.registered` is published with the znak
//!   sprawy, and the case is watched.
//! - **Progress.** Every watched open case is read on a schedule (EZD's webhooks only hint that
//!   something changed; the status read from EZD is the truth), plus one search per round for
//!   cases closed in a window overlapping the previous one. A status that differs from the last
//!   one recorded becomes `case.status-changed` with the next number of the case's timeline.
//! - **Decisions.** A watched case's outgoing document addressed to the resident who wrote, and
//!   named as a decision, is fetched, stored by its SHA-256 and raised as `decision.deliver`.
//!
//! Crash safety: every effect is published (and confirmed) *before* it is recorded, and every
//! message has an id derived from what it says (letter id; case id and timeline number;
//! decision id), so redoing a step after a crash sends the same messages again, which their
//! consumers recognise. EZD itself is never asked twice to do what it may have done: the port
//! resumes a registration from what EZD shows, and a call whose outcome is unknown is looked up
//! and, when EZD shows no trace, parked for an admin instead of repeated.

pub mod follow;
pub mod hooks;
pub mod register;
pub mod routing;

use gsko_epuap::receiver::FileStore;
use gsko_ezd::{EzdError, EzdPort};
use gsko_model::{DeliveryPreference, Teryt};
use gsko_store::CaseWorkStore;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

pub use routing::{Route, Routing, DEFAULT_CASE_TITLE};

/// One tenant's EZD and rules.
pub struct TenantCases {
    pub port: Arc<dyn EzdPort>,
    pub routing: Routing,
    /// Outgoing documents whose file name starts with one of these (case-insensitive) are
    /// decisions to deliver, e.g. `Decyzja`, `Postanowienie`.
    pub decision_prefixes: Vec<String>,
    /// The channel asked for in `decision.deliver`.
    pub delivery: DeliveryPreference,
    /// Where the letters' documents are and decisions go (the tenant's content store).
    pub files: FileStore,
}

#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Pause between rounds (a webhook hint starts a round at once).
    pub interval: Duration,
    /// Watched cases read per round, least recently read first.
    pub batch: u32,
    /// How far each closed-cases window reaches back before the previous one ended.
    pub overlap: Duration,
    /// How often a paused connector checks whether EZD accepts its credentials again.
    pub pause_probe: Duration,
    /// The longest a 429's Retry-After is waited in place before the message is retried later.
    pub max_wait: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            interval: Duration::from_secs(60),
            batch: 200,
            overlap: Duration::from_secs(3600),
            pause_probe: Duration::from_secs(60),
            max_wait: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Try again later (through the retry ladder).
    #[error("{0}")]
    Retry(String),
    /// Nothing later will help without an admin: the message is parked with this reason.
    #[error("{0}")]
    Park(String),
    #[error("shutting down")]
    Shutdown,
}

impl From<gsko_store::StoreError> for CaseError {
    fn from(e: gsko_store::StoreError) -> Self {
        // A database that cannot be reached or a conflict: the message comes back later.
        CaseError::Retry(format!("store: {e}"))
    }
}

impl From<gsko_bus::BusError> for CaseError {
    fn from(e: gsko_bus::BusError) -> Self {
        CaseError::Retry(format!("bus: {e}"))
    }
}

/// A tenant's connector pauses on a configuration error (401/403) until EZD accepts the
/// credentials again; the error is reported once, not on every message.
#[derive(Default)]
struct Pause {
    paused: AtomicBool,
}

/// Webhook hints not yet acted on: cases to read at once.
#[derive(Default)]
struct Hints {
    cases: Mutex<HashSet<String>>,
    wake: Notify,
}

pub struct CaseService {
    tenants: HashMap<Teryt, TenantCases>,
    store: Arc<dyn CaseWorkStore>,
    poll: PollSettings,
    pauses: HashMap<Teryt, Pause>,
    hints: HashMap<Teryt, Hints>,
}

impl CaseService {
    pub fn new(
        store: Arc<dyn CaseWorkStore>,
        tenants: HashMap<Teryt, TenantCases>,
        poll: PollSettings,
    ) -> Self {
        let pauses = tenants
            .keys()
            .map(|t| (t.clone(), Pause::default()))
            .collect();
        let hints = tenants
            .keys()
            .map(|t| (t.clone(), Hints::default()))
            .collect();
        CaseService {
            tenants,
            store,
            poll,
            pauses,
            hints,
        }
    }

    pub fn tenants(&self) -> impl Iterator<Item = &Teryt> {
        self.tenants.keys()
    }

    pub fn store(&self) -> &Arc<dyn CaseWorkStore> {
        &self.store
    }

    fn tenant(&self, t: &Teryt) -> Result<&TenantCases, CaseError> {
        self.tenants.get(t).ok_or_else(|| {
            CaseError::Park(format!(
                "tenant {t} has no EZD configured ([ezd] in its file)"
            ))
        })
    }

    /// Whether the tenant's connector is paused on a configuration error.
    pub fn is_paused(&self, t: &Teryt) -> bool {
        self.pauses
            .get(t)
            .is_some_and(|p| p.paused.load(Ordering::SeqCst))
    }

    /// Pauses the tenant after a configuration error and waits until EZD accepts the
    /// credentials again (or shutdown). Reported once per pause.
    async fn pause_until_accepted(
        &self,
        tenant: &Teryt,
        error: &EzdError,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), CaseError> {
        let (Some(pause), Ok(cfg)) = (self.pauses.get(tenant), self.tenant(tenant)) else {
            return Err(CaseError::Park(error.to_string()));
        };
        if !pause.paused.swap(true, Ordering::SeqCst) {
            tracing::error!(%tenant, error = %error, "EZD refused GSKO; registrations and case polling of this tenant are paused until it accepts the credentials");
        }
        loop {
            if *shutdown.borrow() {
                return Err(CaseError::Shutdown);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll.pause_probe) => {}
                r = shutdown.changed() => if r.is_err() { return Err(CaseError::Shutdown) },
            }
            match cfg.port.check().await {
                Ok(()) => {
                    if pause.paused.swap(false, Ordering::SeqCst) {
                        tracing::info!(%tenant, "EZD accepts GSKO again; resuming");
                    }
                    return Ok(());
                }
                Err(EzdError::Config(_)) => continue,
                Err(e) => {
                    tracing::debug!(%tenant, error = %e, "EZD check failed; still paused");
                }
            }
        }
    }

    /// A webhook said something changed in this tenant's EZD (about this case, when it named
    /// one we watch): read it at once.
    pub fn hint(&self, tenant: &Teryt, ezd_case_id: Option<String>) -> bool {
        let Some(h) = self.hints.get(tenant) else {
            return false;
        };
        if let Some(id) = ezd_case_id {
            h.cases.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        }
        h.wake.notify_one();
        true
    }
}

/// Waits `d`, or returns early on shutdown (`false`).
async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        r = shutdown.changed() => r.is_ok() && !*shutdown.borrow(),
    }
}
