//! Checking a transaction status notification (spec §1.6).
//!
//! P24 POSTs a JSON `TransactionResult` to `urlStatus` after a successful payment and repeats
//! it until the merchant calls `transaction/verify`. Anyone can POST to that URL, so nothing in
//! the body is trusted before its `sign` is recomputed with the CRC key; then the body must
//! match what the municipality stored for the session *before* registering (the docs require
//! this: a genuine P24 message can still report an amount the payer changed).

use std::fmt;

use serde::Deserialize;

use crate::client::VerifyRequest;
use crate::sign::{
    notification_sign, refund_notification_sign, signs_equal, NotificationSignFields,
};

/// What the municipality stored for a session before registering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    pub session_id: String,
    /// Grosze.
    pub amount: i64,
    pub currency: String,
    /// The P24 `orderId` already verified for this session, if any. A notification for a
    /// session that is already verified is a replay ([`NotificationError::Replayed`]).
    pub verified_order_id: Option<i64>,
}

/// Why a notification was refused. Each reason is distinct so the caller can park the body
/// with it; none carries amounts or other personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Not a JSON `TransactionResult` (missing field, wrong type...).
    #[error("malformed notification: {0}")]
    Malformed(String),
    /// `sign` does not match the body and our CRC key: forged, corrupted, or another shop's key.
    #[error("notification sign does not match")]
    BadSign,
    /// Signed correctly but for another merchantId.
    #[error("notification is for another merchantId")]
    WrongMerchant,
    /// Signed correctly but for another posId.
    #[error("notification is for another posId")]
    WrongPos,
    /// The sessionId is not one this municipality registered (or not the expected one).
    #[error("notification for an unknown sessionId")]
    UnknownSession,
    /// The paid `amount` (or `originAmount`) differs from the stored order.
    #[error("notification {field} differs from the stored order")]
    AmountMismatch { field: &'static str },
    /// The currency differs from the stored order.
    #[error("notification currency differs from the stored order")]
    CurrencyMismatch,
    /// The session is already verified with this orderId: a repeat (P24 retry that crossed our
    /// verify, or a captured message replayed). Acknowledge it, but book nothing again.
    #[error("notification replays already verified orderId {order_id}")]
    Replayed { order_id: i64 },
    /// The session is already verified with a *different* orderId: a second payment for one
    /// session, which needs an administrator (possibly a refund).
    #[error("notification orderId differs from the one already verified for this session")]
    OrderConflict {
        verified_order_id: i64,
        order_id: i64,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    merchant_id: i64,
    pos_id: i64,
    session_id: String,
    amount: i64,
    origin_amount: i64,
    currency: String,
    order_id: i64,
    method_id: i64,
    statement: String,
    sign: String,
}

/// A parsed notification whose `sign` has NOT been checked yet. Use it only to find the stored
/// order by [`UnverifiedNotification::session_id`].
pub struct UnverifiedNotification {
    wire: Wire,
}

impl UnverifiedNotification {
    /// Parses the raw body.
    pub fn parse(raw_body: &[u8]) -> Result<Self, NotificationError> {
        serde_json::from_slice::<Wire>(raw_body)
            .map(|wire| Self { wire })
            // serde's message names the field and the expected type, not the value.
            .map_err(|e| NotificationError::Malformed(e.to_string()))
    }

    /// The claimed sessionId (unauthenticated until verified).
    pub fn session_id(&self) -> &str {
        &self.wire.session_id
    }

    /// Checks sign, merchant, POS, session, currency and amounts against `expected`.
    pub fn verify(
        self,
        merchant_id: i64,
        pos_id: i64,
        crc: &str,
        expected: &StoredOrder,
    ) -> Result<VerifiedNotification, NotificationError> {
        let w = self.wire;
        let computed = notification_sign(
            &NotificationSignFields {
                merchant_id: w.merchant_id,
                pos_id: w.pos_id,
                session_id: &w.session_id,
                amount: w.amount,
                origin_amount: w.origin_amount,
                currency: &w.currency,
                order_id: w.order_id,
                method_id: w.method_id,
                statement: &w.statement,
            },
            crc,
        );
        if !signs_equal(&computed, &w.sign) {
            return Err(NotificationError::BadSign);
        }
        if w.merchant_id != merchant_id {
            return Err(NotificationError::WrongMerchant);
        }
        if w.pos_id != pos_id {
            return Err(NotificationError::WrongPos);
        }
        if w.session_id != expected.session_id {
            return Err(NotificationError::UnknownSession);
        }
        if let Some(verified) = expected.verified_order_id {
            return Err(if verified == w.order_id {
                NotificationError::Replayed {
                    order_id: w.order_id,
                }
            } else {
                NotificationError::OrderConflict {
                    verified_order_id: verified,
                    order_id: w.order_id,
                }
            });
        }
        if w.currency != expected.currency {
            return Err(NotificationError::CurrencyMismatch);
        }
        if w.origin_amount != expected.amount {
            return Err(NotificationError::AmountMismatch {
                field: "originAmount",
            });
        }
        if w.amount != expected.amount {
            return Err(NotificationError::AmountMismatch { field: "amount" });
        }
        Ok(VerifiedNotification {
            merchant_id: w.merchant_id,
            pos_id: w.pos_id,
            session_id: w.session_id,
            amount: w.amount,
            origin_amount: w.origin_amount,
            currency: w.currency,
            order_id: w.order_id,
            method_id: w.method_id,
            statement: w.statement,
        })
    }
}

impl fmt::Debug for UnverifiedNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedNotification")
            .field("session_id", &self.wire.session_id)
            .field("order_id", &self.wire.order_id)
            .finish_non_exhaustive()
    }
}

/// A notification that is authentic and matches the stored order. The next step is
/// [`crate::P24Client::verify`] with [`VerifiedNotification::verify_request`]; until then P24
/// keeps the money as the payer's advance payment.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedNotification {
    pub merchant_id: i64,
    pub pos_id: i64,
    pub session_id: String,
    pub amount: i64,
    pub origin_amount: i64,
    pub currency: String,
    pub order_id: i64,
    pub method_id: i64,
    /// Payment title P24 gives the transfer ("p24-XXX-YYY-ZZZ").
    pub statement: String,
}

impl VerifiedNotification {
    /// The `transaction/verify` call this notification calls for.
    pub fn verify_request(&self) -> VerifyRequest {
        VerifyRequest {
            session_id: self.session_id.clone(),
            order_id: self.order_id,
            amount: self.amount,
            currency: self.currency.clone(),
        }
    }
}

impl fmt::Debug for VerifiedNotification {
    // Amounts are tax amounts: personal data under the project rules, kept out of Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedNotification")
            .field("session_id", &self.session_id)
            .field("order_id", &self.order_id)
            .field("method_id", &self.method_id)
            .finish_non_exhaustive()
    }
}

/// A refund notification whose sign and merchant were checked (spec §1.8: P24 POSTs it to
/// the refund request's `urlStatus` when the refund is completed or rejected). The caller
/// matches `request_id`/`refunds_uuid` to the refund it asked for.
#[derive(Clone, PartialEq, Eq)]
pub struct RefundNotification {
    pub order_id: i64,
    pub session_id: String,
    pub request_id: String,
    pub refunds_uuid: String,
    pub merchant_id: i64,
    /// Grosze.
    pub amount: i64,
    pub currency: String,
    /// Unix time.
    pub timestamp: i64,
    /// `status` 0: the refund was completed; 1: it was rejected.
    pub completed: bool,
}

impl fmt::Debug for RefundNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefundNotification")
            .field("order_id", &self.order_id)
            .field("request_id", &self.request_id)
            .field("completed", &self.completed)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundWire {
    order_id: i64,
    session_id: String,
    merchant_id: i64,
    request_id: String,
    refunds_uuid: String,
    amount: i64,
    currency: String,
    timestamp: i64,
    status: i64,
    sign: String,
}

/// Parses a refund notification and checks its sign (covering orderId, sessionId,
/// refundsUuid, merchantId, amount, currency, status) and merchantId.
pub(crate) fn verify_refund_notification(
    raw_body: &[u8],
    merchant_id: i64,
    crc: &str,
) -> Result<RefundNotification, NotificationError> {
    let w: RefundWire = serde_json::from_slice(raw_body)
        .map_err(|e| NotificationError::Malformed(e.to_string()))?;
    let computed = refund_notification_sign(
        w.order_id,
        &w.session_id,
        &w.refunds_uuid,
        w.merchant_id,
        w.amount,
        &w.currency,
        w.status,
        crc,
    );
    if !signs_equal(&computed, &w.sign) {
        return Err(NotificationError::BadSign);
    }
    if w.merchant_id != merchant_id {
        return Err(NotificationError::WrongMerchant);
    }
    let completed = match w.status {
        0 => true,
        1 => false,
        _ => {
            return Err(NotificationError::Malformed(
                "refund status is neither 0 nor 1".into(),
            ))
        }
    };
    Ok(RefundNotification {
        order_id: w.order_id,
        session_id: w.session_id,
        request_id: w.request_id,
        refunds_uuid: w.refunds_uuid,
        merchant_id: w.merchant_id,
        amount: w.amount,
        currency: w.currency,
        timestamp: w.timestamp,
        completed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRC: &str = "bar";

    fn body(merchant_id: i64, pos_id: i64, session: &str, amount: i64, currency: &str) -> Vec<u8> {
        let fields = NotificationSignFields {
            merchant_id,
            pos_id,
            session_id: session,
            amount,
            origin_amount: amount,
            currency,
            order_id: 42,
            method_id: 25,
            statement: "p24-A-B-C",
        };
        let sign = notification_sign(&fields, CRC);
        format!(
            r#"{{"merchantId":{merchant_id},"posId":{pos_id},"sessionId":"{session}","amount":{amount},"originAmount":{amount},"currency":"{currency}","orderId":42,"methodId":25,"statement":"p24-A-B-C","sign":"{sign}"}}"#
        )
        .into_bytes()
    }

    fn check(raw: &[u8], order: &StoredOrder) -> Result<VerifiedNotification, NotificationError> {
        UnverifiedNotification::parse(raw)?.verify(1, 2, CRC, order)
    }

    fn stored() -> StoredOrder {
        StoredOrder {
            session_id: "S".into(),
            amount: 100,
            currency: "PLN".into(),
            verified_order_id: None,
        }
    }

    #[test]
    fn each_mismatch_has_its_variant() {
        let order = stored();
        assert!(check(&body(1, 2, "S", 100, "PLN"), &order).is_ok());
        assert_eq!(
            check(&body(9, 2, "S", 100, "PLN"), &order),
            Err(NotificationError::WrongMerchant)
        );
        assert_eq!(
            check(&body(1, 9, "S", 100, "PLN"), &order),
            Err(NotificationError::WrongPos)
        );
        assert_eq!(
            check(&body(1, 2, "T", 100, "PLN"), &order),
            Err(NotificationError::UnknownSession)
        );
        assert_eq!(
            check(&body(1, 2, "S", 100, "EUR"), &order),
            Err(NotificationError::CurrencyMismatch)
        );
        assert_eq!(
            check(&body(1, 2, "S", 101, "PLN"), &order),
            Err(NotificationError::AmountMismatch {
                field: "originAmount"
            })
        );
        let verified = StoredOrder {
            verified_order_id: Some(42),
            ..stored()
        };
        assert_eq!(
            check(&body(1, 2, "S", 100, "PLN"), &verified),
            Err(NotificationError::Replayed { order_id: 42 })
        );
        let other = StoredOrder {
            verified_order_id: Some(41),
            ..stored()
        };
        assert!(matches!(
            check(&body(1, 2, "S", 100, "PLN"), &other),
            Err(NotificationError::OrderConflict { .. })
        ));
        assert!(matches!(
            check(b"{\"merchantId\":\"1\"}", &order),
            Err(NotificationError::Malformed(_))
        ));
        // A body edited after signing.
        let tampered = String::from_utf8(body(1, 2, "S", 100, "PLN"))
            .unwrap()
            .replace("\"amount\":100", "\"amount\":1");
        assert_eq!(
            check(tampered.as_bytes(), &order),
            Err(NotificationError::BadSign)
        );
    }
}
