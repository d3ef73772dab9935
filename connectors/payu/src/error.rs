//! Errors of the PayU connector.
//!
//! Messages never carry secrets, tokens or amounts (amounts are personal data in GSKO: they
//! are kept in fields for the caller, not in `Display`).

use crate::model::OrderStatus;
use crate::signature::SignatureAlgorithm;

/// A failed call to PayU.
#[derive(Debug, thiserror::Error)]
pub enum PayuError {
    /// The configuration cannot work (bad base URL, HTTP client setup).
    #[error("invalid PayU configuration: {0}")]
    Config(String),
    /// The request was refused locally before anything was sent.
    #[error("invalid request to PayU: {0}")]
    InvalidInput(String),
    /// No complete answer within the configured timeout. The request may have been processed.
    #[error("PayU did not answer within the timeout")]
    Timeout,
    /// The connection failed (DNS, refused, reset, TLS).
    #[error("cannot reach PayU: {0}")]
    Connect(String),
    /// PayU answered 5xx.
    #[error("PayU server error (HTTP {http_status})")]
    Server {
        /// HTTP status.
        http_status: u16,
        /// `status.statusCode` when the body had one.
        status_code: Option<String>,
    },
    /// PayU answered 429.
    #[error("PayU rate limit reached")]
    RateLimited,
    /// The OAuth endpoint refused the client credentials.
    #[error("PayU refused the OAuth client credentials (HTTP {http_status}, {error})")]
    Auth {
        /// HTTP status.
        http_status: u16,
        /// OAuth `error` field.
        error: String,
    },
    /// An API call was refused with 401 even with a freshly issued token.
    #[error("PayU refused a freshly issued access token")]
    Unauthorized,
    /// `ERROR_ORDER_NOT_UNIQUE`: an order with this `extOrderId` already exists on the POS.
    ///
    /// PayU refuses a second order for an `extOrderId` instead of returning the first one, so
    /// no duplicate is ever created. With `after_retry` the existing order is almost surely
    /// the one our own earlier, unanswered attempt created; its `redirectUri` is lost and the
    /// caller needs a new `extOrderId` (the old order expires after `validityTime`).
    #[error("PayU already has an order with this extOrderId (after retry: {after_retry})")]
    OrderNotUnique {
        /// True when an earlier attempt of the same call had an unknown outcome.
        after_retry: bool,
    },
    /// The order (or resource) does not exist (`DATA_NOT_FOUND` / 404).
    #[error("PayU does not know this order")]
    NotFound,
    /// PayU refused the request (4xx or an error `statusCode`).
    #[error("PayU refused the request (HTTP {http_status}, {status_code})")]
    Rejected {
        /// HTTP status.
        http_status: u16,
        /// `status.statusCode`, e.g. `ERROR_VALUE_INVALID`.
        status_code: String,
        /// `status.statusDesc`, when present.
        status_desc: Option<String>,
    },
    /// The answer does not follow the protocol (unexpected status, unparsable JSON, HTML
    /// because a redirect was followed, missing fields).
    #[error("unexpected answer from PayU: {0}")]
    Protocol(String),
}

impl PayuError {
    /// True when the same call may succeed later without any change: timeouts, connection
    /// failures, 5xx and 429. The bus retry ladder should retry these and park the rest.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Connect(_) | Self::Server { .. } | Self::RateLimited
        )
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_builder() {
            Self::Config(e.without_url().to_string())
        } else if e.is_decode() || e.is_body() {
            Self::Protocol(e.without_url().to_string())
        } else {
            // `without_url`: the URL holds only ids, but keeping errors URL-free keeps them
            // short and uniform in logs.
            Self::Connect(e.without_url().to_string())
        }
    }
}

/// Why a notification was refused. Each kind has its own variant so the caller can count,
/// park and answer them differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The `OpenPayu-Signature` header is missing parts or cannot be split.
    #[error("malformed OpenPayu-Signature header: {0}")]
    MalformedHeader(String),
    /// `algorithm=` names no hash PayU uses.
    #[error("unknown signature algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// A known algorithm weaker than the configured minimum: refused so that an attacker who
    /// can forge the weaker hash cannot talk the verifier down to it.
    #[error("signature algorithm {received} is weaker than the required {minimum}")]
    DowngradedAlgorithm {
        /// Algorithm named in the header.
        received: SignatureAlgorithm,
        /// Configured minimum.
        minimum: SignatureAlgorithm,
    },
    /// `content=` other than `DOCUMENT`: the signature would cover something else.
    #[error("unsupported signature content {0:?}")]
    UnsupportedContent(String),
    /// The digest does not match the raw body and the second key.
    #[error("notification signature does not match")]
    BadSignature,
    /// Correctly signed, but not a notification this connector understands.
    #[error("malformed notification body: {0}")]
    MalformedBody(String),
    /// The notification is about an order other than the one GSKO stored under this
    /// `extOrderId` (or no stored order was found).
    #[error("notification for an unknown order (PayU orderId {order_id})")]
    UnknownOrder {
        /// PayU `orderId` from the notification.
        order_id: String,
    },
    /// The `extOrderId` matches but PayU's `orderId` differs from the one stored at creation.
    #[error("notification orderId {received} differs from the stored {expected}")]
    OrderIdMismatch {
        /// Stored PayU order id.
        expected: String,
        /// Order id in the notification.
        received: String,
    },
    /// `totalAmount` (or a refund amount) does not fit the stored order.
    #[error("notification amount differs from the stored order")]
    AmountMismatch {
        /// Stored amount in grosze.
        expected: u64,
        /// Amount in the notification, in grosze.
        received: u64,
    },
    /// `currencyCode` differs from the stored order.
    #[error("notification currency {received} differs from the stored {expected}")]
    CurrencyMismatch {
        /// Stored currency.
        expected: String,
        /// Currency in the notification.
        received: String,
    },
    /// The status is not a step forward from the stored one: a duplicate, a late delivery
    /// overtaken by a newer status, or a replay. PayU wants HTTP 200 for these too (otherwise
    /// it keeps resending), so see [`NotificationError::acknowledge`].
    #[error("notification status {received:?} is not newer than the stored {stored:?}")]
    Replayed {
        /// Last status already applied.
        stored: OrderStatus,
        /// Status in the notification.
        received: OrderStatus,
    },
}

impl NotificationError {
    /// Whether to answer PayU with 200 anyway. True only for [`NotificationError::Replayed`]:
    /// the fact is already known and PayU's renotification ladder should stop. Everything else
    /// is answered with an error status and parked for an admin.
    pub fn acknowledge(&self) -> bool {
        matches!(self, Self::Replayed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        assert!(PayuError::Timeout.is_transient());
        assert!(PayuError::RateLimited.is_transient());
        assert!(PayuError::Server {
            http_status: 503,
            status_code: None
        }
        .is_transient());
        assert!(!PayuError::NotFound.is_transient());
        assert!(!PayuError::OrderNotUnique { after_retry: true }.is_transient());
        assert!(!PayuError::Unauthorized.is_transient());
    }

    #[test]
    fn amounts_stay_out_of_messages() {
        let e = NotificationError::AmountMismatch {
            expected: 12345,
            received: 54321,
        };
        assert!(!e.to_string().contains("12345") && !e.to_string().contains("54321"));
    }
}
