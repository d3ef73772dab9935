//! Following cases: statuses into the timeline, decisions out to the delivery service.

use crate::register::{source, status_event};
use crate::{CaseError, CaseService, TenantCases};
use chrono::{DateTime, Utc};
use gsko_bus::{Bus, Outgoing};
use gsko_ezd::{CaseSnapshot, EzdError, OutgoingDocument};
use gsko_model::{
    CaseRef, CaseStatusChanged, DecisionDelivery, Event, EventData, StoredFile, Teryt,
};
use gsko_store::WatchedCase;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::watch;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    pub cases_read: u64,
    pub status_changes: u64,
    pub decisions_raised: u64,
}

impl CaseService {
    /// Follows every tenant's cases until shutdown: a round per tenant every interval, or at
    /// once when a webhook hints at a change.
    pub async fn follow(self: Arc<Self>, bus: Arc<dyn Bus>, shutdown: watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        for tenant in self.tenants.keys() {
            let tenant = tenant.clone();
            let (me, bus, mut stop) = (self.clone(), bus.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                // Where the previous closed-cases window ended.
                let mut window_end: Option<DateTime<Utc>> = None;
                loop {
                    match me.round(bus.as_ref(), &tenant, &mut window_end, &mut stop).await {
                        Ok(r) if r.status_changes + r.decisions_raised > 0 => {
                            tracing::info!(%tenant, read = r.cases_read, changes = r.status_changes, decisions = r.decisions_raised, "EZD round");
                        }
                        Ok(_) => {}
                        Err(CaseError::Shutdown) => return,
                        Err(e) => tracing::warn!(%tenant, error = %e, "EZD round failed; next round"),
                    }
                    let hints = &me.hints[&tenant];
                    tokio::select! {
                        _ = tokio::time::sleep(me.poll.interval) => {}
                        _ = hints.wake.notified() => {}
                        r = stop.changed() => if r.is_err() || *stop.borrow() { return },
                    }
                }
            }));
        }
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "EZD follower task failed");
            }
        }
    }

    /// One round for a tenant: hinted cases first, then cases closed in the window, then the
    /// least recently read open cases.
    pub async fn round(
        &self,
        bus: &dyn Bus,
        tenant: &Teryt,
        window_end: &mut Option<DateTime<Utc>>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<RoundReport, CaseError> {
        let cfg = self.tenant(tenant)?;
        let mut report = RoundReport::default();
        let hinted: Vec<String> = {
            let mut set = self.hints[tenant]
                .cases
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            set.drain().collect()
        };
        let mut seen: HashSet<String> = HashSet::new();
        for id in hinted {
            // A hint about a case GSKO does not follow (or an unknown one) changes nothing.
            if let Some(w) = self.store.watched_case(tenant, &id).await? {
                if w.open {
                    self.read_case(bus, tenant, cfg, w, None, &mut report, shutdown)
                        .await?;
                    seen.insert(id);
                }
            }
        }
        let now = Utc::now();
        let overlap = chrono::Duration::from_std(self.poll.overlap)
            .unwrap_or_else(|_| chrono::Duration::hours(1));
        let from = window_end.map_or(now - overlap, |end| end - overlap);
        match self
            .call(tenant, shutdown, || {
                cfg.port.cases_closed_between(from, now)
            })
            .await
        {
            Ok(closed) => {
                for snap in closed {
                    if seen.contains(&snap.ezd_case_id) {
                        continue;
                    }
                    if let Some(w) = self.store.watched_case(tenant, &snap.ezd_case_id).await? {
                        if w.open {
                            seen.insert(snap.ezd_case_id.clone());
                            self.read_case(bus, tenant, cfg, w, Some(snap), &mut report, shutdown)
                                .await?;
                        }
                    }
                }
                *window_end = Some(now);
            }
            Err(CaseError::Shutdown) => return Err(CaseError::Shutdown),
            Err(e) => tracing::warn!(%tenant, error = %e, "searching closed cases failed"),
        }
        for w in self.store.cases_to_poll(tenant, self.poll.batch).await? {
            if seen.contains(&w.ezd_case_id) {
                continue;
            }
            self.read_case(bus, tenant, cfg, w, None, &mut report, shutdown)
                .await?;
        }
        Ok(report)
    }

    /// Calls EZD, waiting out a 429 and a pause; other errors are returned.
    async fn call<T, F, Fut>(
        &self,
        tenant: &Teryt,
        shutdown: &mut watch::Receiver<bool>,
        f: F,
    ) -> Result<T, CaseError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, EzdError>>,
    {
        let mut waited = std::time::Duration::ZERO;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e @ EzdError::Config(_)) => {
                    self.pause_until_accepted(tenant, &e, shutdown).await?
                }
                Err(EzdError::RateLimited { retry_after }) => {
                    waited += retry_after;
                    if waited > self.poll.max_wait {
                        return Err(CaseError::Retry("EZD keeps asking to slow down".into()));
                    }
                    if !crate::sleep_or_stop(retry_after, shutdown).await {
                        return Err(CaseError::Shutdown);
                    }
                }
                Err(e) => return Err(CaseError::Retry(e.to_string())),
            }
        }
    }

    /// Reads one case (unless a fresh snapshot is given), records a changed status and raises
    /// its new decisions. A failure of one case is logged and the round goes on.
    #[allow(clippy::too_many_arguments)]
    async fn read_case(
        &self,
        bus: &dyn Bus,
        tenant: &Teryt,
        cfg: &TenantCases,
        w: WatchedCase,
        snapshot: Option<CaseSnapshot>,
        report: &mut RoundReport,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), CaseError> {
        let id = w.ezd_case_id.clone();
        let snap = match snapshot {
            Some(s) => s,
            None => match self.call(tenant, shutdown, || cfg.port.case(&id)).await {
                Ok(s) => s,
                Err(CaseError::Shutdown) => return Err(CaseError::Shutdown),
                Err(e) => {
                    tracing::warn!(%tenant, case = %id, error = %e, "reading a case failed");
                    return Ok(());
                }
            },
        };
        report.cases_read += 1;
        // Decisions before the status: a case closes with its decision, and the decision must
        // not be missed because the case stopped being read.
        match self.call(tenant, shutdown, || cfg.port.outgoing(&id)).await {
            Ok(items) => {
                for item in items {
                    if item.cancelled
                        || w.sender_contact_id.is_none()
                        || item.addressee_contact_id != w.sender_contact_id
                    {
                        continue;
                    }
                    for doc in item.documents {
                        if is_decision(&doc.name, &cfg.decision_prefixes)
                            && self
                                .raise_decision(bus, tenant, cfg, &w, &doc, shutdown)
                                .await?
                        {
                            report.decisions_raised += 1;
                        }
                    }
                }
            }
            Err(CaseError::Shutdown) => return Err(CaseError::Shutdown),
            Err(e) => {
                tracing::warn!(%tenant, case = %id, error = %e, "reading a case's outgoing items failed");
                return Ok(());
            }
        }
        let case_ref = match snap.case_ref.as_deref().map(CaseRef::parse) {
            Some(Ok(c)) => c,
            None => w.case_ref.clone(),
            Some(Err(e)) => {
                tracing::warn!(%tenant, case = %id, error = %e, "EZD shows a malformed znak sprawy; keeping the last good one");
                w.case_ref.clone()
            }
        };
        if snap.status != w.status || case_ref != w.case_ref {
            let seq = w.seq + 1;
            let change = CaseStatusChanged {
                case_ref: case_ref.clone(),
                ezd_case_id: id.clone(),
                status: snap.status,
                at: Utc::now(),
                seq,
                title: snap.title.clone(),
                source_status: Some(snap.source_status.clone()),
                due_on: snap.due_on,
            };
            bus.publish(&[Outgoing::event(&status_event(
                tenant,
                &change,
                Some(&w.letter_id),
            ))])
            .await?;
            if self
                .store
                .record_status(
                    tenant,
                    &id,
                    &case_ref,
                    snap.status,
                    seq,
                    snap.status.is_open() && !snap.deleted,
                )
                .await?
            {
                report.status_changes += 1;
            }
        }
        self.store.mark_polled(tenant, &id, Utc::now()).await?;
        Ok(())
    }

    /// Fetches a decision, stores it and raises `decision.deliver` once. `Ok(true)` when raised
    /// now.
    async fn raise_decision(
        &self,
        bus: &dyn Bus,
        tenant: &Teryt,
        cfg: &TenantCases,
        w: &WatchedCase,
        doc: &OutgoingDocument,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, CaseError> {
        let decision_id = format!("ezd-{}", doc.id);
        let known = self.store.decision_sha(tenant, &decision_id).await?;
        if known.is_some() {
            return Ok(false);
        }
        if doc.signature_valid == Some(false) {
            tracing::warn!(%tenant, case = %w.ezd_case_id, document = %doc.id, "EZD says the decision's signature is not valid; not delivered until it is");
            return Ok(false);
        }
        let bytes = self.call(tenant, shutdown, || cfg.port.fetch(doc)).await?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let stored = cfg
            .files
            .put(&bytes)
            .map_err(|e| CaseError::Retry(format!("storing the decision: {e}")))?;
        // The content store names files by their hash: reading back what was written proves
        // the stored copy is the one fetched.
        if stored != sha {
            return Err(CaseError::Retry(format!(
                "stored decision {stored} does not match the fetched content {sha}"
            )));
        }
        let command = DecisionDelivery {
            decision_id: decision_id.clone(),
            case_ref: w.case_ref.clone(),
            title: format!("{} w sprawie {}", title_of(&doc.name), w.case_ref),
            recipient: w.recipient.clone(),
            document: StoredFile {
                name: doc.name.clone(),
                mime_type: doc.mime_type.clone(),
                size_bytes: bytes.len() as u64,
                sha256: sha.clone(),
                description: None,
            },
            channel: cfg.delivery,
            deliver_by: None,
            in_reply_to: Some(w.letter_id.clone()),
        };
        let event = Event::new(
            source(tenant),
            tenant.clone(),
            1,
            EventData::DecisionDeliver(command),
        )
        .with_stable_id(&decision_id)
        .with_correlation(w.letter_id.clone());
        bus.publish(&[Outgoing::event(&event)]).await?;
        self.store
            .record_decision(tenant, &decision_id, &w.ezd_case_id, &sha)
            .await?;
        tracing::info!(%tenant, case = %w.case_ref, decision = %decision_id, "decision raised for delivery");
        Ok(true)
    }
}

/// Whether an outgoing document's file name marks it as a decision.
pub fn is_decision(name: &str, prefixes: &[String]) -> bool {
    let lower = name.trim().to_lowercase();
    prefixes
        .iter()
        .any(|p| !p.is_empty() && lower.starts_with(&p.to_lowercase()))
}

/// "Decyzja" from "Decyzja FN.3120.7.2026.pdf": the kind of the document for the subject line.
fn title_of(name: &str) -> String {
    name.split([' ', '_', '.'])
        .next()
        .filter(|w| !w.is_empty())
        .unwrap_or("Pismo")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_told_by_name() {
        let p = vec!["Decyzja".to_owned(), "Postanowienie".to_owned()];
        assert!(is_decision("Decyzja FN.3120.7.2026.pdf", &p));
        assert!(is_decision("decyzja_zwrot.pdf", &p));
        assert!(!is_decision("Wezwanie do uzupełnienia.pdf", &p));
        assert_eq!(title_of("Decyzja FN.3120.7.2026.pdf"), "Decyzja");
    }
}
