//! Errors of calls to P24, classified by whether trying again can help.

use std::fmt;

use crate::client::RefundItemResult;

/// Which call failed; carried in errors and log fields instead of URLs (which can hold a
/// session id) or bodies (which can hold personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    TestAccess,
    Register,
    Verify,
    TransactionBySessionId,
    Refund,
    BatchDetails,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::TestAccess => "testAccess",
            Operation::Register => "transaction/register",
            Operation::Verify => "transaction/verify",
            Operation::TransactionBySessionId => "transaction/by/sessionId",
            Operation::Refund => "transaction/refund",
            Operation::BatchDetails => "report/batch/details",
        })
    }
}

/// A failed call to P24.
#[derive(Debug, thiserror::Error)]
pub enum P24Error {
    /// The order or request was rejected locally before sending (field too long, amount not
    /// positive...). The message names the field, never its value.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No response within the configured timeout. For `register`/`refund` the outcome is
    /// unknown: the request may have been processed.
    #[error("{0}: timed out")]
    Timeout(Operation),
    /// The TCP/TLS connection could not be made: the request never reached P24.
    #[error("{0}: cannot connect")]
    Connect(Operation),
    /// The connection broke after the request was sent; the outcome is unknown.
    #[error("{0}: transport error")]
    Transport(Operation),
    /// P24 answered 5xx or 429: its side is failing or throttling.
    #[error("{operation}: P24 server error (HTTP {status})")]
    Server { operation: Operation, status: u16 },
    /// HTTP 401: wrong posId/API key. Retrying cannot help until the config is fixed.
    #[error("{0}: authentication rejected (check posId and API key)")]
    Unauthorized(Operation),
    /// HTTP 400: P24 rejected the input (wrong sign, missing field...).
    #[error("{operation}: rejected as invalid input: {message}")]
    InvalidInput {
        operation: Operation,
        message: String,
    },
    /// HTTP 404.
    #[error("{0}: not found")]
    NotFound(Operation),
    /// Any other unexpected HTTP status.
    #[error("{operation}: unexpected HTTP {status}")]
    UnexpectedStatus { operation: Operation, status: u16 },
    /// A 2xx answer whose body is not what the API documents.
    #[error("{operation}: unexpected response body: {message}")]
    Decode {
        operation: Operation,
        message: String,
    },
    /// `register` found that P24 already holds a transaction for this session id (typically
    /// an earlier attempt whose answer was lost). Registering again would create a second order
    /// for the same session; the caller must start a new payment attempt with a new session id.
    #[error("transaction/register: session already registered at P24 (orderId {order_id}, status {status})")]
    SessionAlreadyRegistered { order_id: i64, status: i64 },
    /// `verify` answered 200 without `status: success`.
    #[error("transaction/verify: not confirmed (status {0:?})")]
    NotVerified(String),
    /// HTTP 409 on refund: P24 refused some items (per-item messages).
    #[error("transaction/refund: refused ({} item(s))", items.len())]
    RefundRejected { items: Vec<RefundItemResult> },
    /// HTTP 400 "Request already exists" on refund: this `requestId` was already accepted,
    /// i.e. an earlier attempt whose answer was lost went through.
    #[error("transaction/refund: requestId already used")]
    RefundRequestAlreadyExists,
    /// The HTTP client could not be built (TLS backend).
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

impl P24Error {
    /// Whether the same call may succeed later without changing anything: timeouts,
    /// connection failures, 5xx/429. Note that for `register` a transient error does not mean
    /// "nothing happened"; see [`crate::P24Client::register`].
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            P24Error::Timeout(_)
                | P24Error::Connect(_)
                | P24Error::Transport(_)
                | P24Error::Server { .. }
        )
    }
}
