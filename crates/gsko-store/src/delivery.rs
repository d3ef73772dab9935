//! The delivery service's own records: one row per `decision.deliver` command, keyed by
//! (tenant, decision id), beside the projected view in the same database.
//!
//! Why a record before any call: commands arrive at least once and the service may crash at any
//! point. The row is claimed first (an idempotent insert), moved to `sending` before the channel
//! is called and to `sent` with the channel's shipment id after; a copy of the command, or a
//! restart, reads the row and continues where the first run stopped instead of sending again.
//! A send whose outcome is unknown ends in `uncertain`, parked for an admin, never resent.
//! The final state and its `decision.delivered` event are written in one transaction (the
//! event into the transactional outbox that a relay publishes), so a delivery that ended is
//! always announced, exactly once in effect (the event id is stable).

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gsko_model::{DecisionDelivery, DeliveryChannel, DeliveryOutcome, Event, Teryt};
use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Claimed; nothing sent (or a send certainly did not reach the channel).
    Pending,
    /// A send was started and its answer not recorded yet. Found after a crash it means "may
    /// have been sent".
    Sending,
    /// The channel accepted it; waiting for the UPD or the e-Doręczenia outcome.
    Sent,
    /// The send may or may not have reached the channel: parked for an admin, never resent.
    Uncertain,
    Delivered,
    DeemedDelivered,
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Uncertain,
        DeliveryState::Delivered,
        DeliveryState::DeemedDelivered,
        DeliveryState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Uncertain => "uncertain",
            DeliveryState::Delivered => "delivered",
            DeliveryState::DeemedDelivered => "deemed_delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Delivered, deemed delivered and failed deliveries never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered | DeliveryState::DeemedDelivered | DeliveryState::Failed
        )
    }

    /// The final state of an outcome.
    pub fn of_outcome(outcome: DeliveryOutcome) -> DeliveryState {
        match outcome {
            DeliveryOutcome::Delivered => DeliveryState::Delivered,
            DeliveryOutcome::DeemedDelivered => DeliveryState::DeemedDelivered,
            DeliveryOutcome::Failed => DeliveryState::Failed,
        }
    }
}

/// The stored name of a channel (as the model serializes it).
pub fn channel_str(c: DeliveryChannel) -> &'static str {
    match c {
        DeliveryChannel::Epuap => "epuap",
        DeliveryChannel::EDoreczenia => "e_doreczenia",
    }
}

pub fn parse_channel(s: &str) -> Option<DeliveryChannel> {
    [DeliveryChannel::Epuap, DeliveryChannel::EDoreczenia]
        .into_iter()
        .find(|c| channel_str(*c) == s)
}

/// One delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub tenant: Teryt,
    pub decision_id: String,
    /// The command as first claimed.
    pub command: DecisionDelivery,
    pub channel: DeliveryChannel,
    pub state: DeliveryState,
    /// ePUAP `identyfikatorZlecenia` or the e-Doręczenia message id, once known.
    pub shipment_id: Option<String>,
    /// How many sends were started.
    pub attempts: i32,
    /// Why it is where it is (the last failed or uncertain call, the reason of a failure).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What [`DeliveryStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Stored now, `pending`.
    New(DeliveryRecord),
    /// The decision was claimed before (in this tenant): the stored record as it stands.
    Existing(DeliveryRecord),
}

impl Claimed {
    pub fn record(&self) -> &DeliveryRecord {
        match self {
            Claimed::New(r) | Claimed::Existing(r) => r,
        }
    }

    pub fn into_record(self) -> DeliveryRecord {
        match self {
            Claimed::New(r) | Claimed::Existing(r) => r,
        }
    }
}

/// Every state change is guarded by the state it leaves: a call that finds the delivery
/// elsewhere (or unknown) writes nothing and returns `false`, so two copies of a command (or a
/// command and a receipt) racing each other cannot undo one another.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Stores the command as a `pending` delivery through `channel`, unless this decision was
    /// claimed before in the tenant (then nothing is written and the stored record returned).
    async fn claim(
        &self,
        tenant: &Teryt,
        command: &DecisionDelivery,
        channel: DeliveryChannel,
    ) -> Result<Claimed, StoreError>;

    /// `pending` → `sending`, counting the attempt. Call it before the channel is called.
    async fn mark_sending(&self, tenant: &Teryt, decision_id: &str) -> Result<bool, StoreError>;

    /// `sending` → `pending` with `detail`: the send certainly did not reach the channel (it
    /// was unavailable), so sending later is safe.
    async fn release(
        &self,
        tenant: &Teryt,
        decision_id: &str,
        detail: &str,
    ) -> Result<bool, StoreError>;

    /// `sending` or `uncertain` → `sent` with the channel's shipment id (when it gave one).
    async fn mark_sent(
        &self,
        tenant: &Teryt,
        decision_id: &str,
        shipment_id: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// `sending` → `uncertain` with `detail`: parked for an admin, never resent.
    async fn mark_uncertain(
        &self,
        tenant: &Teryt,
        decision_id: &str,
        detail: &str,
    ) -> Result<bool, StoreError>;

    /// Ends a delivery that is not final yet, in one transaction: the state the outcome of
    /// `outcome_event` (a `decision.delivered` of this tenant and decision) names, its shipment
    /// id (when the event has one) and failure reason, and the event queued in the outbox.
    /// `false`, writing nothing, when the delivery is unknown or already final. An event of
    /// another type, tenant or decision is refused with an error.
    async fn finish(
        &self,
        tenant: &Teryt,
        decision_id: &str,
        outcome_event: &Event,
    ) -> Result<bool, StoreError>;

    async fn by_decision(
        &self,
        tenant: &Teryt,
        decision_id: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError>;

    /// Deliveries through `channel` that were sent and have not ended (of all tenants), least
    /// recently changed first, at most `limit`: what a poller asks the channel about.
    async fn in_flight(
        &self,
        channel: DeliveryChannel,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// The tenant's `uncertain` deliveries, oldest first, for an admin.
    async fn parked(&self, tenant: &Teryt) -> Result<Vec<DeliveryRecord>, StoreError>;
}
