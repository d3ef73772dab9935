//! The `sign` field (spec §1.5): `lowercase_hex(SHA-384(JSON))`, where the JSON is a
//! fixed-order, compact object of the message's fields plus `"crc"` last, written as PHP's
//! `json_encode(..., JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES)` would.
//!
//! Each message has its own struct whose field declaration order *is* the signed order:
//! serde_json writes struct fields in declaration order, compactly, with `/` and non-ASCII
//! unescaped, which is what P24 expects. The one difference from PHP, U+2028/U+2029 (which PHP
//! escapes even with those flags), is patched before hashing.

use serde::Serialize;
use sha2::{Digest, Sha384};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterSign<'a> {
    session_id: &'a str,
    merchant_id: i64,
    amount: i64,
    currency: &'a str,
    crc: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifySign<'a> {
    session_id: &'a str,
    order_id: i64,
    amount: i64,
    currency: &'a str,
    crc: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationSign<'a> {
    merchant_id: i64,
    pos_id: i64,
    session_id: &'a str,
    amount: i64,
    origin_amount: i64,
    currency: &'a str,
    order_id: i64,
    method_id: i64,
    statement: &'a str,
    crc: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundNotificationSign<'a> {
    order_id: i64,
    session_id: &'a str,
    refunds_uuid: &'a str,
    merchant_id: i64,
    amount: i64,
    currency: &'a str,
    status: i64,
    crc: &'a str,
}

/// The fields of a transaction notification that its `sign` covers, in signed order.
#[derive(Debug, Clone, Copy)]
pub struct NotificationSignFields<'a> {
    pub merchant_id: i64,
    pub pos_id: i64,
    pub session_id: &'a str,
    pub amount: i64,
    pub origin_amount: i64,
    pub currency: &'a str,
    pub order_id: i64,
    pub method_id: i64,
    pub statement: &'a str,
}

/// The JSON text that is hashed, written the way P24's PHP reference does.
fn sign_json<T: Serialize>(value: &T) -> String {
    // Serializing a struct of strings and integers cannot fail; an empty string would only
    // give a sign that P24 rejects, never a panic.
    let json = serde_json::to_string(value).unwrap_or_default();
    if json.contains(['\u{2028}', '\u{2029}']) {
        json.replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    } else {
        json
    }
}

fn sha384_hex(input: &str) -> String {
    hex::encode(Sha384::digest(input.as_bytes()))
}

/// `sign` of `transaction/register`:
/// `{"sessionId","merchantId","amount","currency","crc"}`.
pub fn register_sign(
    session_id: &str,
    merchant_id: i64,
    amount: i64,
    currency: &str,
    crc: &str,
) -> String {
    sha384_hex(&sign_json(&RegisterSign {
        session_id,
        merchant_id,
        amount,
        currency,
        crc,
    }))
}

/// `sign` of `transaction/verify`: `{"sessionId","orderId","amount","currency","crc"}`.
pub fn verify_sign(
    session_id: &str,
    order_id: i64,
    amount: i64,
    currency: &str,
    crc: &str,
) -> String {
    sha384_hex(&sign_json(&VerifySign {
        session_id,
        order_id,
        amount,
        currency,
        crc,
    }))
}

/// `sign` of the transaction status notification (P24 → `urlStatus`).
pub fn notification_sign(fields: &NotificationSignFields<'_>, crc: &str) -> String {
    sha384_hex(&sign_json(&NotificationSign {
        merchant_id: fields.merchant_id,
        pos_id: fields.pos_id,
        session_id: fields.session_id,
        amount: fields.amount,
        origin_amount: fields.origin_amount,
        currency: fields.currency,
        order_id: fields.order_id,
        method_id: fields.method_id,
        statement: fields.statement,
        crc,
    }))
}

/// `sign` of the refund notification (P24 → the refund's `urlStatus`).
#[allow(clippy::too_many_arguments)]
pub fn refund_notification_sign(
    order_id: i64,
    session_id: &str,
    refunds_uuid: &str,
    merchant_id: i64,
    amount: i64,
    currency: &str,
    status: i64,
    crc: &str,
) -> String {
    sha384_hex(&sign_json(&RefundNotificationSign {
        order_id,
        session_id,
        refunds_uuid,
        merchant_id,
        amount,
        currency,
        status,
        crc,
    }))
}

/// Compares two signs without an early exit, so response timing does not reveal how many
/// leading characters of a forged sign were right. Case-insensitive for hex.
pub fn signs_equal(expected: &str, received: &str) -> bool {
    let a = expected.as_bytes();
    let b = received.as_bytes();
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x.to_ascii_lowercase() ^ y.to_ascii_lowercase();
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_ordered_and_unescaped() {
        let json = sign_json(&RegisterSign {
            session_id: "PN/2026/żółw",
            merchant_id: 1,
            amount: 2,
            currency: "PLN",
            crc: "c",
        });
        assert_eq!(
            json,
            r#"{"sessionId":"PN/2026/żółw","merchantId":1,"amount":2,"currency":"PLN","crc":"c"}"#
        );
    }

    #[test]
    fn line_separators_escaped_like_php() {
        let json = sign_json(&RegisterSign {
            session_id: "a\u{2028}b",
            merchant_id: 1,
            amount: 2,
            currency: "PLN",
            crc: "c",
        });
        assert!(json.contains(r"a\u2028b"));
    }

    #[test]
    fn constant_time_compare() {
        assert!(signs_equal("abc", "ABC"));
        assert!(!signs_equal("abc", "abd"));
        assert!(!signs_equal("abc", "abcd"));
    }
}
