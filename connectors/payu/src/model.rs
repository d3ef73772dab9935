//! Public request/response types and the JSON shapes PayU exchanges (spec §2.3–§2.6).
//!
//! Amounts are `u64` grosze in the public API and strings of minor units on the wire
//! ("totalAmount": "12345"), as PayU specifies.

use serde::{Deserialize, Deserializer, Serialize};

use crate::signature::SignatureAlgorithm;

/// Status of a PayU order (spec §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Created, the payer has not paid yet.
    New,
    /// Payment started and being processed.
    Pending,
    /// Paid, waiting for the merchant's capture (POS with auto-receive off).
    WaitingForConfirmation,
    /// Paid and received: final.
    Completed,
    /// Rejected, expired or cancelled: final.
    Canceled,
}

impl OrderStatus {
    /// Position in the lifecycle; equal ranks are alternatives, a higher rank is newer.
    fn rank(self) -> u8 {
        match self {
            Self::New => 0,
            Self::Pending => 1,
            Self::WaitingForConfirmation => 2,
            Self::Completed | Self::Canceled => 3,
        }
    }

    /// True for COMPLETED and CANCELED, after which PayU's docs say to ignore notifications.
    pub fn is_final(self) -> bool {
        self.rank() == 3
    }

    /// Whether a notification with status `next` is news after `self`.
    pub fn can_advance_to(self, next: OrderStatus) -> bool {
        !self.is_final() && next.rank() > self.rank()
    }
}

/// Status of a refund (spec §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Accepted, not yet paid out.
    Pending,
    /// Refused or cancelled.
    Canceled,
    /// Paid out to the payer.
    Finalized,
}

/// Optional payer data passed to PayU's payment page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Buyer {
    /// E-mail for PayU's confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// First name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Page language, e.g. `pl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// One order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Line name shown to the payer.
    pub name: String,
    /// Unit price in grosze.
    pub unit_price: u64,
    /// Quantity (PayU requires at least 1).
    pub quantity: u32,
}

/// An order to create. `ext_order_id` is GSKO's key: PayU keeps it unique per POS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Merchant's order id (≤1024 chars), unique per POS.
    pub ext_order_id: String,
    /// Total in grosze.
    pub total_amount: u64,
    /// ISO 4217, e.g. `PLN`.
    pub currency: String,
    /// Description (≤4000 chars).
    pub description: String,
    /// Payer's IP as seen by the portal (required by PayU).
    pub customer_ip: String,
    /// Where PayU POSTs notifications.
    pub notify_url: Option<String>,
    /// Where the payer returns after paying.
    pub continue_url: Option<String>,
    /// Payer data.
    pub buyer: Option<Buyer>,
    /// Order lines; at least one.
    pub products: Vec<Product>,
}

/// The result of order creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedOrder {
    /// PayU's order id.
    pub order_id: String,
    /// Where to send the payer.
    pub redirect_uri: String,
}

/// An order as PayU reports it (`GET /api/v2_1/orders/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInfo {
    /// PayU order id.
    pub order_id: String,
    /// Merchant's id.
    pub ext_order_id: Option<String>,
    /// Current status.
    pub status: OrderStatus,
    /// Total in grosze.
    pub total_amount: u64,
    /// Currency.
    pub currency: String,
}

/// A refund request. `ext_refund_id` is required here (optional in PayU) because it is what
/// makes a repeated request recognizably identical, so retries cannot refund twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Merchant's refund id.
    pub ext_refund_id: String,
    /// Grosze to refund; `None` refunds the whole order.
    pub amount: Option<u64>,
    /// Description (shown to the payer).
    pub description: String,
}

/// A refund as PayU reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInfo {
    /// PayU refund id.
    pub refund_id: String,
    /// Merchant's refund id.
    pub ext_refund_id: Option<String>,
    /// Amount in grosze.
    pub amount: u64,
    /// Currency.
    pub currency: String,
    /// Status.
    pub status: RefundStatus,
}

/// What GSKO stored about an order, to check a notification against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    /// The `extOrderId` sent at creation.
    pub ext_order_id: String,
    /// PayU's `orderId`, if the creation answer arrived.
    pub order_id: Option<String>,
    /// Total in grosze.
    pub total_amount: u64,
    /// Currency.
    pub currency: String,
    /// Last status already applied, if any (for duplicate/replay detection).
    pub last_status: Option<OrderStatus>,
}

/// A notification that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedNotification {
    /// An order status change.
    Order(OrderNotification),
    /// A refund status change.
    Refund(RefundNotification),
}

/// An order status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderNotification {
    /// PayU order id.
    pub order_id: String,
    /// Merchant's id.
    pub ext_order_id: String,
    /// New status.
    pub status: OrderStatus,
    /// Total in grosze (equal to the stored one).
    pub total_amount: u64,
    /// Currency.
    pub currency: String,
    /// `localReceiptDateTime` as sent (COMPLETED only): the authorization time, which is the
    /// legal payment date for taxes (spec §5).
    pub local_receipt_date_time: Option<String>,
    /// `properties[PAYMENT_ID]`: the id in PayU's settlement reports.
    pub payment_id: Option<String>,
    /// `payMethod.type`.
    pub pay_method: Option<String>,
    /// Algorithm that signed it.
    pub algorithm: SignatureAlgorithm,
}

impl OrderNotification {
    /// `localReceiptDateTime` parsed, if present and RFC 3339.
    pub fn receipt_time(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        self.local_receipt_date_time
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    }
}

/// A refund status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotification {
    /// PayU order id.
    pub order_id: String,
    /// Merchant's order id.
    pub ext_order_id: Option<String>,
    /// PayU refund id.
    pub refund_id: String,
    /// Merchant's refund id.
    pub ext_refund_id: Option<String>,
    /// Refunded grosze.
    pub amount: u64,
    /// Currency.
    pub currency: String,
    /// Status.
    pub status: RefundStatus,
    /// Algorithm that signed it.
    pub algorithm: SignatureAlgorithm,
}

// ---- wire shapes --------------------------------------------------------------------------

/// Amounts arrive as strings of minor units; numbers are accepted too, because a lenient
/// reader loses nothing and PayU's own examples are not uniform across endpoints.
pub(crate) fn de_amount<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(u64),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| serde::de::Error::custom("amount out of range")),
        Raw::S(_) => Err(serde::de::Error::custom("amount is not a string of digits")),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireOrderRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_url: Option<&'a str>,
    pub customer_ip: &'a str,
    pub merchant_pos_id: &'a str,
    pub description: &'a str,
    pub currency_code: &'a str,
    pub total_amount: String,
    pub ext_order_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer: Option<&'a Buyer>,
    pub products: Vec<WireProduct<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireProduct<'a> {
    pub name: &'a str,
    pub unit_price: String,
    pub quantity: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireStatus {
    #[serde(default)]
    pub status_code: String,
    pub status_desc: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireCreateResponse {
    #[serde(default)]
    pub status: WireStatus,
    pub redirect_uri: Option<String>,
    pub order_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireOrder {
    pub order_id: String,
    pub ext_order_id: Option<String>,
    #[serde(deserialize_with = "de_amount")]
    pub total_amount: u64,
    pub currency_code: String,
    pub status: OrderStatus,
    pub pay_method: Option<WirePayMethod>,
}

#[derive(Deserialize)]
pub(crate) struct WirePayMethod {
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireOrdersResponse {
    #[serde(default)]
    pub orders: Vec<WireOrder>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRefundRequestBody<'a> {
    pub refund: WireRefundRequest<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRefundRequest<'a> {
    pub description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    pub ext_refund_id: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRefund {
    pub refund_id: String,
    pub ext_refund_id: Option<String>,
    #[serde(deserialize_with = "de_amount")]
    pub amount: u64,
    pub currency_code: String,
    pub status: RefundStatus,
}

#[derive(Deserialize)]
pub(crate) struct WireRefundResponse {
    pub refund: Option<WireRefund>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireNotification {
    pub order: Option<WireOrder>,
    pub local_receipt_date_time: Option<String>,
    #[serde(default)]
    pub properties: Vec<WireProperty>,
    // Refund notifications: top-level ids plus `refund`.
    pub order_id: Option<String>,
    pub ext_order_id: Option<String>,
    pub refund: Option<WireRefund>,
}

#[derive(Deserialize)]
pub(crate) struct WireProperty {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireToken {
    pub access_token: String,
    pub expires_in: u64,
}

#[derive(Deserialize)]
pub(crate) struct WireOAuthError {
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_advances_only_forward() {
        use OrderStatus::*;
        assert!(New.can_advance_to(Pending));
        assert!(Pending.can_advance_to(Completed));
        assert!(Pending.can_advance_to(Canceled));
        assert!(!Pending.can_advance_to(Pending));
        assert!(!Completed.can_advance_to(Canceled));
        assert!(!Completed.can_advance_to(Pending));
    }
}
