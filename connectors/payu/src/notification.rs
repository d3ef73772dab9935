//! Verification of PayU notifications (spec §2.4–§2.5).
//!
//! Order of checks matters: the signature is checked on the raw bytes before the body is
//! trusted for anything, then the body is parsed strictly, then compared with what GSKO
//! stored. Strict parsing (serde_json refuses trailing bytes) also defeats the one trick the
//! `HASH(body || key)` construction allows: a length-extension attack can only append bytes
//! to a signed body, and a JSON document with bytes appended no longer parses.

use crate::config::PayuConfig;
use crate::error::NotificationError;
use crate::model::{
    OrderNotification, RefundNotification, StoredOrder, VerifiedNotification, WireNotification,
};
use crate::signature::verify_signature;

/// Ids a verified notification refers to, for looking up the stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationKey {
    /// PayU `orderId`.
    pub order_id: String,
    /// Merchant `extOrderId`, when the notification carries it.
    pub ext_order_id: Option<String>,
}

pub(crate) fn verify(
    cfg: &PayuConfig,
    raw_body: &[u8],
    signature_header: &str,
    lookup: impl FnOnce(&NotificationKey) -> Option<StoredOrder>,
) -> Result<VerifiedNotification, NotificationError> {
    let algorithm = verify_signature(
        signature_header,
        raw_body,
        cfg.second_key.expose(),
        cfg.minimum_signature_algorithm,
    )?;
    let wire: WireNotification = serde_json::from_slice(raw_body)
        .map_err(|e| NotificationError::MalformedBody(e.to_string()))?;

    if let Some(order) = wire.order {
        let key = NotificationKey {
            order_id: order.order_id.clone(),
            ext_order_id: order.ext_order_id.clone(),
        };
        let stored = lookup(&key).ok_or_else(|| NotificationError::UnknownOrder {
            order_id: key.order_id.clone(),
        })?;
        let ext_order_id = check_ids(&stored, &key)?;
        check_currency(&stored, &order.currency_code)?;
        if order.total_amount != stored.total_amount {
            return Err(NotificationError::AmountMismatch {
                expected: stored.total_amount,
                received: order.total_amount,
            });
        }
        if let Some(last) = stored.last_status {
            if !last.can_advance_to(order.status) {
                return Err(NotificationError::Replayed {
                    stored: last,
                    received: order.status,
                });
            }
        }
        let payment_id = wire
            .properties
            .into_iter()
            .find(|p| p.name == "PAYMENT_ID")
            .and_then(|p| p.value);
        return Ok(VerifiedNotification::Order(OrderNotification {
            order_id: order.order_id,
            ext_order_id,
            status: order.status,
            total_amount: order.total_amount,
            currency: order.currency_code,
            local_receipt_date_time: wire.local_receipt_date_time,
            payment_id,
            pay_method: order.pay_method.and_then(|m| m.kind),
            algorithm,
        }));
    }

    if let Some(refund) = wire.refund {
        let order_id = wire.order_id.ok_or_else(|| {
            NotificationError::MalformedBody("refund notification without orderId".into())
        })?;
        let key = NotificationKey {
            order_id,
            ext_order_id: wire.ext_order_id,
        };
        let stored = lookup(&key).ok_or_else(|| NotificationError::UnknownOrder {
            order_id: key.order_id.clone(),
        })?;
        check_ids(&stored, &key)?;
        check_currency(&stored, &refund.currency_code)?;
        if refund.amount == 0 || refund.amount > stored.total_amount {
            return Err(NotificationError::AmountMismatch {
                expected: stored.total_amount,
                received: refund.amount,
            });
        }
        return Ok(VerifiedNotification::Refund(RefundNotification {
            order_id: key.order_id,
            ext_order_id: key.ext_order_id,
            refund_id: refund.refund_id,
            ext_refund_id: refund.ext_refund_id,
            amount: refund.amount,
            currency: refund.currency_code,
            status: refund.status,
            algorithm,
        }));
    }

    Err(NotificationError::MalformedBody(
        "neither an order nor a refund notification".into(),
    ))
}

/// Returns the stored `extOrderId` once the notification's ids agree with the stored order.
fn check_ids(stored: &StoredOrder, key: &NotificationKey) -> Result<String, NotificationError> {
    if let Some(ext) = &key.ext_order_id {
        if *ext != stored.ext_order_id {
            return Err(NotificationError::UnknownOrder {
                order_id: key.order_id.clone(),
            });
        }
    }
    match &stored.order_id {
        Some(expected) if *expected != key.order_id => Err(NotificationError::OrderIdMismatch {
            expected: expected.clone(),
            received: key.order_id.clone(),
        }),
        // Without an extOrderId in the body, only a matching PayU order id ties the
        // notification to the stored order.
        None if key.ext_order_id.is_none() => Err(NotificationError::UnknownOrder {
            order_id: key.order_id.clone(),
        }),
        _ => Ok(stored.ext_order_id.clone()),
    }
}

fn check_currency(stored: &StoredOrder, received: &str) -> Result<(), NotificationError> {
    if received != stored.currency {
        return Err(NotificationError::CurrencyMismatch {
            expected: stored.currency.clone(),
            received: received.to_owned(),
        });
    }
    Ok(())
}
