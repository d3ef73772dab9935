//! The payment service's own records, beside the projected view: baskets and gateway orders
//! (stored before any gateway is called), the append-only audit of gateway notifications,
//! settlements (one per payment id, ever), and the transactional outbox of messages that a
//! relay publishes to the bus.
//!
//! Why an outbox: a settled payment must become a `payment.settled` event and a `payment.book`
//! command exactly when the order is marked paid. Writing the messages in the same transaction
//! as the status, and publishing them afterwards (at least once, with stable ids), means a crash
//! between the two loses nothing and books nothing twice.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gsko_model::{Amount, Event, Nrb, PaymentItem, Teryt};
use serde::{Deserialize, Serialize};

/// Where an order stands. `Created` is written before the gateway is called; the rest follow
/// the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stored; the gateway has not (knowingly) accepted it yet.
    Created,
    /// The gateway accepted it and gave a redirect URL; the resident has not paid yet.
    Registered,
    /// The gateway confirmed the payment and GSKO verified it; settled through the outbox.
    Paid,
    /// Cancelled or rejected by the gateway, or expired.
    Canceled,
    /// The gateway reported a payment that does not match the order (amount, currency); kept
    /// for an admin.
    Disputed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Registered => "registered",
            OrderStatus::Paid => "paid",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Disputed => "disputed",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Created,
            OrderStatus::Registered,
            OrderStatus::Paid,
            OrderStatus::Canceled,
            OrderStatus::Disputed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Paid, cancelled and disputed orders never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::Canceled | OrderStatus::Disputed
        )
    }
}

/// One order to one gateway merchant account, as the service wants it stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// Unique per tenant; sent to the gateway as P24 `sessionId` / PayU `extOrderId`.
    pub session_id: String,
    /// The tenant's merchant account name from its configuration (e.g. `taxes`, `waste`).
    pub merchant: String,
    /// `przelewy24` or `payu`.
    pub gateway: String,
    pub amount: Amount,
    pub description: String,
    pub items: Vec<PaymentItem>,
}

/// A basket as the service wants it stored: the resident's request split into orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBasket {
    pub tenant: Teryt,
    pub basket_id: String,
    /// Who asked (the portal's name from configuration); idempotency keys are per client.
    pub client: String,
    pub idempotency_key: String,
    /// SHA-256 (hex) of the canonical request; the same key with another request is refused.
    pub request_hash: String,
    /// Keyed hash of the resident's PESEL (never the PESEL itself), so that a basket can be
    /// shown only to the resident who made it.
    pub resident_ref: String,
    pub orders: Vec<NewOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRecord {
    pub tenant: Teryt,
    pub session_id: String,
    pub basket_id: String,
    pub merchant: String,
    pub gateway: String,
    pub amount: Amount,
    pub description: String,
    pub items: Vec<PaymentItem>,
    pub status: OrderStatus,
    /// The gateway's id of the transaction (P24 token or orderId, PayU orderId), once known.
    pub gateway_ref: Option<String>,
    pub redirect_url: Option<String>,
    /// Why the order is where it is (a gateway error, a mismatch), for the resident and admin.
    pub status_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BasketRecord {
    pub tenant: Teryt,
    pub basket_id: String,
    pub client: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub resident_ref: String,
    pub created_at: DateTime<Utc>,
    /// In the order they were created.
    pub orders: Vec<OrderRecord>,
}

/// What [`PaymentStore::create_basket`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasketOutcome {
    /// Stored now, with its orders in status `created`.
    Created(BasketRecord),
    /// The same client already sent this key with the same request: the stored basket, with
    /// its orders as they stand now.
    Existing(BasketRecord),
    /// The same client already sent this key with a different request.
    KeyReused { basket_id: String },
}

/// What became of a gateway notification; the audit keeps every one, good or bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationOutcome {
    /// Genuine, verified, and it settled (or advanced) the order.
    Accepted,
    /// Genuine, but the order had already reached a final state: acknowledged, nothing done.
    Replayed,
    /// Refused: wrong signature, unknown order, amount mismatch, malformed.
    Rejected,
    /// Genuine but could not be handled now (gateway verify call failed); the gateway retries.
    Deferred,
}

impl NotificationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationOutcome::Accepted => "accepted",
            NotificationOutcome::Replayed => "replayed",
            NotificationOutcome::Rejected => "rejected",
            NotificationOutcome::Deferred => "deferred",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationOutcome> {
        [
            NotificationOutcome::Accepted,
            NotificationOutcome::Replayed,
            NotificationOutcome::Rejected,
            NotificationOutcome::Deferred,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One row of the append-only notification audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationAudit {
    pub tenant: Teryt,
    pub gateway: String,
    pub merchant: String,
    pub received_at: DateTime<Utc>,
    /// The order's session id as the notification claims it (it may be unknown or forged).
    pub session_id: Option<String>,
    pub outcome: NotificationOutcome,
    /// Machine-readable reason, e.g. `bad_signature`, `unknown_session`, `amount_mismatch`.
    pub reason: String,
    /// SHA-256 (hex) of the raw body, so a replay can be recognised without storing the body.
    pub body_sha256: String,
    /// The peer address as the HTTP server saw it.
    pub remote_addr: Option<String>,
}

/// A message waiting in (or published from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Increasing; the relay publishes in this order.
    pub seq: i64,
    pub event: Event,
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Stores a basket and its orders in one transaction, unless the client already used the
    /// idempotency key in this tenant (then nothing is written).
    async fn create_basket(&self, basket: &NewBasket) -> Result<BasketOutcome, StoreError>;

    async fn basket(
        &self,
        tenant: &Teryt,
        basket_id: &str,
    ) -> Result<Option<BasketRecord>, StoreError>;

    /// The basket a client stored under an idempotency key, with its orders as they stand.
    async fn basket_by_key(
        &self,
        tenant: &Teryt,
        client: &str,
        idempotency_key: &str,
    ) -> Result<Option<BasketRecord>, StoreError>;

    async fn order(
        &self,
        tenant: &Teryt,
        session_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError>;

    /// Moves a non-final order to a non-final status (`registered` with the gateway's reference
    /// and redirect URL, or back to `created` with the detail of a failed gateway call).
    /// Returns false (and writes nothing) when the order is unknown or already final.
    /// `gateway_ref`, `redirect_url` and `detail` are stored as given (`None` clears them): each
    /// call states where the order stands now. A final `status` is refused with an error (use
    /// `close_order` or `settle`).
    async fn update_order(
        &self,
        tenant: &Teryt,
        session_id: &str,
        status: OrderStatus,
        gateway_ref: Option<&str>,
        redirect_url: Option<&str>,
        detail: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Ends a non-final order (`canceled` or `disputed`) and queues `outbox` (e.g. a
    /// `payment.unmatched` event) in the same transaction. Returns false, writing nothing, when
    /// the order is unknown or already final. `status` must be `canceled` or `disputed` (else an
    /// error).
    async fn close_order(
        &self,
        tenant: &Teryt,
        session_id: &str,
        status: OrderStatus,
        detail: &str,
        outbox: &[Event],
    ) -> Result<bool, StoreError>;

    /// Records that payment `payment_id` settled, in one transaction: claims the id (a second
    /// claim of the same id in the tenant returns false and writes nothing), marks the order
    /// `paid` when `session_id` is given, and queues `outbox`. An order that is unknown or
    /// already final (cancelled, then paid after all) keeps its status: the money is in, so the
    /// claim and the messages go through all the same.
    async fn settle(
        &self,
        tenant: &Teryt,
        payment_id: &str,
        session_id: Option<&str>,
        outbox: &[Event],
    ) -> Result<bool, StoreError>;

    /// Queues messages without any other change (e.g. an unmatched statement line).
    async fn enqueue(&self, outbox: &[Event]) -> Result<(), StoreError>;

    /// The oldest unpublished messages (of all tenants), at most `limit`. A stored message that
    /// no longer decodes is reported as `StoreError::Corrupt` naming its `seq`.
    async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Marks messages published (after the bus confirmed them). Unknown or already published
    /// sequence numbers are skipped.
    async fn outbox_published(&self, seqs: &[i64]) -> Result<(), StoreError>;

    /// Appends one row to the notification audit.
    async fn audit_notification(&self, row: &NotificationAudit) -> Result<(), StoreError>;

    /// The newest audit rows first.
    async fn notifications(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<NotificationAudit>, StoreError>;

    /// The tax account that has this virtual account in the tenant (from the projected view).
    async fn account_by_virtual_account(
        &self,
        tenant: &Teryt,
        nrb: &Nrb,
    ) -> Result<Option<String>, StoreError>;
}
