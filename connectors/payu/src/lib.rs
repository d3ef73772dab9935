//! PayU connector (REST API v2.1, PayU GPO Europe).
//!
//! Talks to one PayU POS: gets OAuth tokens (client credentials), creates orders, reads their
//! status, refunds, and verifies the notifications PayU POSTs to `notifyUrl`. The protocol
//! facts used here are in `shared/specs/payments.md` §2; the simulator in `gsko-sim` is an
//! independent implementation the tests run against.
//!
//! Handling a notification: take the raw body bytes and the `OpenPayu-Signature` header,
//! call [`PayuClient::verify_notification_with`] with a lookup of the stored order by
//! `extOrderId`, apply a verified status and remember it as
//! [`StoredOrder::last_status`], answer 200. On an error, answer 200 only when
//! [`NotificationError::acknowledge`] says so (duplicates and replays, which PayU must stop
//! resending), otherwise answer 400 and park the body for an admin; PayU will resend.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use gsko_payu::{Order, PayuClient, PayuConfig, Product};
//! let client = PayuClient::new(PayuConfig::new(
//!     "https://secure.snd.payu.com", "300746", "300746",
//!     "2ee86a66e5d97e3fadc400c9f19b065d", "b6ca15b0d1020e8094d9b5f8d163db54",
//! ))?;
//! let created = client.create_order(&Order {
//!     ext_order_id: "TAX-2026-000123".into(),
//!     total_amount: 12345,
//!     currency: "PLN".into(),
//!     description: "Podatek od nieruchomości, rata I".into(),
//!     customer_ip: "127.0.0.1".into(),
//!     notify_url: Some("https://gsko.example/payu/notify".into()),
//!     continue_url: None,
//!     buyer: None,
//!     products: vec![Product { name: "Rata I".into(), unit_price: 12345, quantity: 1 }],
//! }).await?;
//! println!("send the payer to {}", created.redirect_uri);
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod model;
mod notification;
mod signature;

pub use client::PayuClient;
pub use config::{PayuConfig, RetryPolicy, Secret};
pub use error::{NotificationError, PayuError};
pub use model::{
    Buyer, CreatedOrder, Order, OrderInfo, OrderNotification, OrderStatus, Product, RefundInfo,
    RefundNotification, RefundRequest, RefundStatus, StoredOrder, VerifiedNotification,
};
pub use notification::NotificationKey;
pub use signature::{compute_signature, SignatureAlgorithm, SignatureHeader};
