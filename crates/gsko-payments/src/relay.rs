//! The outbox relay: publishes what settlement queued, in order, and marks it published once
//! the bus confirmed it. A crash between the two publishes the same messages again with the
//! same ids (at least once); every consumer is idempotent by payment id.

use gsko_bus::{Bus, Outgoing};
use gsko_store::PaymentStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Messages published per round trip.
const BATCH: u32 = 500;
/// How often the outbox is looked at when nobody wakes the relay (another daemon instance may
/// have queued something).
const POLL: Duration = Duration::from_millis(500);

/// Runs until `shutdown` turns true. Returns how many messages it published.
pub async fn run(
    store: Arc<dyn PaymentStore>,
    bus: Arc<dyn Bus>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) -> u64 {
    let mut published = 0u64;
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return published;
        }
        match relay_once(store.as_ref(), bus.as_ref()).await {
            Ok(0) => {
                backoff = Duration::from_millis(100);
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Ok(n) => {
                published += n;
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay failed; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Publishes one batch; returns how many messages went out.
pub async fn relay_once(store: &dyn PaymentStore, bus: &dyn Bus) -> Result<u64, String> {
    let pending = store
        .outbox_pending(BATCH)
        .await
        .map_err(|e| e.to_string())?;
    if pending.is_empty() {
        return Ok(0);
    }
    let batch: Vec<Outgoing> = pending.iter().map(|m| Outgoing::event(&m.event)).collect();
    bus.publish(&batch).await.map_err(|e| e.to_string())?;
    let seqs: Vec<i64> = pending.iter().map(|m| m.seq).collect();
    store
        .outbox_published(&seqs)
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(published = seqs.len(), "outbox relayed");
    Ok(seqs.len() as u64)
}
