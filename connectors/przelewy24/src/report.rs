//! Payout ("batch") reports, to split one bank-statement credit into the payments it pays out.
//!
//! What the spec (§1.8) documents and what it does not: the endpoint
//! `GET /api/v1/report/batch/details?batch={batchId}`, that it "lists all transactions and
//! refunds in one payout", that transaction objects carry `settledAmount`, `status`,
//! `dateOfVerification` and `fee`, and that batch objects carry `batchId, dateIn, dateOut,
//! commision, charge, refund`. It does NOT document the envelope, the field types, or the units
//! of `fee`/`commision`. P24's published OpenAPI (as mirrored) says only that the answer has
//! `data` holding `overall`, `transactions[]` and `refunds[]`, with `token`/`pageInformation`
//! for paging, without item schemas.
//!
//! This parser therefore reads exactly that shape, accepts `data` as an object or as a
//! one-element array, accepts integers written as numbers or numeric strings, and keeps
//! `fee`/`commision` as P24's text. Matching uses only `sessionId`, `orderId` and the amounts,
//! which the spec names. Treat it as provisional until checked against a real report.

use serde::Deserialize;
use serde_json::Value;

use crate::client::{lenient_i64, lenient_string};

/// A report body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("report is not JSON: {0}")]
    NotJson(String),
    #[error("report has no data")]
    NoData,
    #[error("report item unreadable: {0}")]
    BadItem(String),
}

/// The payout itself (`overall`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOverall {
    #[serde(deserialize_with = "lenient_i64", default)]
    pub batch_id: Option<i64>,
    #[serde(deserialize_with = "lenient_string", default)]
    pub date_in: Option<String>,
    #[serde(deserialize_with = "lenient_string", default)]
    pub date_out: Option<String>,
    /// P24's spelling.
    #[serde(deserialize_with = "lenient_string", default)]
    pub commision: Option<String>,
    #[serde(deserialize_with = "lenient_string", default)]
    pub charge: Option<String>,
    #[serde(deserialize_with = "lenient_string", default)]
    pub refund: Option<String>,
}

/// A transaction (or refund) paid out in the batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTransaction {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(deserialize_with = "lenient_i64", default)]
    pub order_id: Option<i64>,
    /// Grosze paid by the payer.
    #[serde(deserialize_with = "lenient_i64", default)]
    pub amount: Option<i64>,
    /// Grosze after commission.
    #[serde(deserialize_with = "lenient_i64", default)]
    pub settled_amount: Option<i64>,
    /// 0 not paid, 1 paid, 2 paid and verified, 3 returned.
    #[serde(deserialize_with = "lenient_i64", default)]
    pub status: Option<i64>,
    #[serde(deserialize_with = "lenient_string", default)]
    pub date_of_verification: Option<String>,
    #[serde(deserialize_with = "lenient_string", default)]
    pub fee: Option<String>,
}

/// One payout's details.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchReport {
    pub overall: BatchOverall,
    pub transactions: Vec<BatchTransaction>,
    pub refunds: Vec<BatchTransaction>,
}

impl BatchReport {
    /// Net grosze of the payout as far as the items tell: settled (or paid) amounts of the
    /// transactions minus the refunds. `None` if an item lacks both amounts.
    pub fn net_settled(&self) -> Option<i64> {
        let sum = |items: &[BatchTransaction]| {
            items
                .iter()
                .map(|t| t.settled_amount.or(t.amount))
                .sum::<Option<i64>>()
        };
        Some(sum(&self.transactions)? - sum(&self.refunds)?)
    }
}

#[derive(Deserialize)]
struct DataWire {
    #[serde(default)]
    overall: Option<BatchOverall>,
    #[serde(default)]
    transactions: Vec<BatchTransaction>,
    #[serde(default)]
    refunds: Vec<BatchTransaction>,
}

/// Parses the body of `report/batch/details`.
pub fn parse_batch_details(raw: &[u8]) -> Result<BatchReport, ReportError> {
    let root: Value =
        serde_json::from_slice(raw).map_err(|e| ReportError::NotJson(e.to_string()))?;
    let data = match root.get("data") {
        Some(Value::Array(items)) => items.first().cloned().ok_or(ReportError::NoData)?,
        Some(v @ Value::Object(_)) => v.clone(),
        _ => return Err(ReportError::NoData),
    };
    let wire: DataWire =
        serde_json::from_value(data).map_err(|e| ReportError::BadItem(e.to_string()))?;
    Ok(BatchReport {
        overall: wire.overall.unwrap_or_default(),
        transactions: wire.transactions,
        refunds: wire.refunds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_shapes() {
        let raw = br#"{"data":[{"overall":{"batchId":"77","commision":"1.20"},
            "transactions":[{"sessionId":"A","orderId":1,"amount":"1000","settledAmount":980}],
            "refunds":[{"sessionId":"B","orderId":2,"amount":100}]}],"responseCode":0}"#;
        let r = parse_batch_details(raw).unwrap();
        assert_eq!(r.overall.batch_id, Some(77));
        assert_eq!(r.transactions[0].amount, Some(1000));
        assert_eq!(r.net_settled(), Some(880));
        assert_eq!(parse_batch_details(b"{}"), Err(ReportError::NoData));
    }
}
