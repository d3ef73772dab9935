//! Przelewy24 (P24) connector, REST API v1 (`/work/shared/specs/payments.md` §1).
//!
//! What it does and why it is shaped this way:
//! - [`P24Client`] calls P24: [`P24Client::test_access`], [`P24Client::register`],
//!   [`P24Client::verify`], [`P24Client::transaction_by_session_id`], [`P24Client::refund`] and
//!   [`P24Client::batch_details`]. Every call has a timeout; only calls that are safe to repeat
//!   (GET, and the PUT `transaction/verify`) are retried with backoff. `register` and `refund` are
//!   POSTs that P24 does not document as idempotent, so they are retried only when the request
//!   provably never left this process (connection refused), see [`P24Client::register`].
//! - [`P24Client::parse_and_verify_notification`] checks a status notification: the `sign`
//!   (recomputed over P24's fixed field order, compared in constant time), then merchant, POS,
//!   session, currency and amount against what the municipality stored before registering.
//!   Each failure is its own [`NotificationError`] variant so the caller can park the body with a
//!   precise reason.
//! - [`sign`] holds the SHA-384 `sign` computations, public so tests can cross-check them
//!   against other implementations (the spec's vectors, Python's `hashlib`).
//! - Errors ([`P24Error`]) say whether retrying can help ([`P24Error::is_transient`]).
//! - The API key and CRC key are [`Secret`]s: they never appear in `Debug` output or logs, and
//!   neither does personal data (payer e-mail, name, address) nor amounts.
//!
//! The flow for one payment (store before register: the notification is checked against it):
//!
//! ```no_run
//! # async fn flow(client: gsko_przelewy24::P24Client, raw_notification: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! use gsko_przelewy24::{NotificationError, RegisterOrder, StoredOrder};
//! let stored = StoredOrder {
//!     session_id: "PN/2026/000123".into(),
//!     amount: 12_345,
//!     currency: "PLN".into(),
//!     verified_order_id: None,
//! };
//! // 1. persist `stored`, then register and redirect the payer
//! let mut order = RegisterOrder::new(&stored.session_id, stored.amount, "Podatek od nieruchomości",
//!     "payer@example.pl", "https://gmina.example/powrot");
//! order.url_status = Some("https://gmina.example/p24/status".into());
//! let registered = client.register(&order).await?;
//! # let _ = registered.redirect_url;
//! // 2. in the urlStatus handler: check, then verify (P24 pays out only verified payments)
//! match client.parse_and_verify_notification(&raw_notification, &stored) {
//!     Ok(notification) => client.verify(&notification.verify_request()).await?,
//!     Err(NotificationError::Replayed { .. }) => { /* already booked: answer 200, do nothing */ }
//!     Err(rejected) => { /* park the body with `rejected` for an administrator */ }
//! }
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod notification;
pub mod report;
pub mod sign;

pub use client::{
    P24Client, RefundItem, RefundItemResult, RefundRequest, RegisterOrder, Registered,
    TransactionInfo, TransactionStatus, VerifyRequest,
};
pub use config::{P24Config, RetryPolicy, Secret};
pub use error::{Operation, P24Error};
pub use notification::{
    NotificationError, RefundNotification, StoredOrder, UnverifiedNotification,
    VerifiedNotification,
};
pub use report::{BatchReport, BatchTransaction, ReportError};
