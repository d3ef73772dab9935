//! HTTP calls to P24.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::config::P24Config;
use crate::error::{Operation, P24Error};
use crate::notification::{
    verify_refund_notification, NotificationError, RefundNotification, StoredOrder,
    UnverifiedNotification, VerifiedNotification,
};
use crate::report::{parse_batch_details, BatchReport};
use crate::sign::{register_sign, verify_sign};

/// Longest error text from P24 kept in an error (P24's texts are short; this bounds a
/// misbehaving proxy's HTML page).
const MAX_ERROR_TEXT: usize = 200;

/// A payment order to register (spec §1.4). Build it with [`RegisterOrder::new`] and adjust
/// the optional fields.
#[derive(Clone)]
pub struct RegisterOrder {
    /// Unique per payment attempt in GSKO; the key that ties the notification to the order.
    pub session_id: String,
    /// Grosze.
    pub amount: i64,
    /// ISO 4217, `PLN` by default.
    pub currency: String,
    pub description: String,
    /// Payer e-mail (personal data: never printed).
    pub email: String,
    /// Payer name (personal data: never printed).
    pub client: Option<String>,
    pub country: String,
    pub language: String,
    pub url_return: String,
    pub url_status: Option<String>,
    /// Minutes the payer has to pay; 0 = no limit.
    pub time_limit: Option<u8>,
    /// Payment-channel bitmask (spec §1.4).
    pub channel: Option<u32>,
    pub transfer_label: Option<String>,
    pub wait_for_result: Option<bool>,
}

impl RegisterOrder {
    /// An order in PLN for a Polish-language payer.
    pub fn new(
        session_id: impl Into<String>,
        amount: i64,
        description: impl Into<String>,
        email: impl Into<String>,
        url_return: impl Into<String>,
    ) -> Self {
        Self {
            session_id: session_id.into(),
            amount,
            currency: "PLN".into(),
            description: description.into(),
            email: email.into(),
            client: None,
            country: "PL".into(),
            language: "pl".into(),
            url_return: url_return.into(),
            url_status: None,
            time_limit: None,
            channel: None,
            transfer_label: None,
            wait_for_result: None,
        }
    }

    /// Rejects locally what P24 would reject with a bare "Invalid input data", naming the field.
    fn validate(&self) -> Result<(), P24Error> {
        fn max(field: &str, value: &str, limit: usize) -> Result<(), P24Error> {
            if value.chars().count() > limit {
                Err(P24Error::InvalidRequest(format!(
                    "{field} longer than {limit} characters"
                )))
            } else {
                Ok(())
            }
        }
        if self.session_id.is_empty() {
            return Err(P24Error::InvalidRequest("sessionId is empty".into()));
        }
        max("sessionId", &self.session_id, 100)?;
        if self.amount <= 0 {
            return Err(P24Error::InvalidRequest("amount must be positive".into()));
        }
        if self.currency.len() != 3 {
            return Err(P24Error::InvalidRequest(
                "currency must have 3 letters".into(),
            ));
        }
        max("description", &self.description, 1024)?;
        max("email", &self.email, 50)?;
        if let Some(client) = &self.client {
            max("client", client, 40)?;
        }
        max("urlReturn", &self.url_return, 250)?;
        if let Some(url) = &self.url_status {
            max("urlStatus", url, 250)?;
        }
        if let Some(label) = &self.transfer_label {
            max("transferLabel", label, 20)?;
        }
        if let Some(limit) = self.time_limit {
            if limit > 99 {
                return Err(P24Error::InvalidRequest("timeLimit above 99".into()));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RegisterOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterOrder")
            .field("session_id", &self.session_id)
            .field("currency", &self.currency)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody<'a> {
    merchant_id: i64,
    pos_id: i64,
    session_id: &'a str,
    amount: i64,
    currency: &'a str,
    description: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    country: &'a str,
    language: &'a str,
    url_return: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url_status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_limit: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_for_result: Option<bool>,
    encoding: &'a str,
    sign: String,
}

/// A registered transaction: send the payer to `redirect_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub token: String,
    pub redirect_url: String,
}

/// The `transaction/verify` call (spec §1.7). Usually from
/// [`VerifiedNotification::verify_request`].
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    pub session_id: String,
    pub order_id: i64,
    pub amount: i64,
    pub currency: String,
}

impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("session_id", &self.session_id)
            .field("order_id", &self.order_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody<'a> {
    merchant_id: i64,
    pos_id: i64,
    session_id: &'a str,
    amount: i64,
    currency: &'a str,
    order_id: i64,
    sign: String,
}

/// Transaction status from `by/sessionId` (spec §1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// 0: registered, not paid.
    NoPayment,
    /// 1: paid but not verified; P24 keeps it as the payer's advance payment.
    AdvancePayment,
    /// 2: paid and verified.
    PaymentMade,
    /// 3: returned (refunded).
    Returned,
    /// A code the spec does not list.
    Other(i64),
}

impl From<i64> for TransactionStatus {
    fn from(code: i64) -> Self {
        match code {
            0 => Self::NoPayment,
            1 => Self::AdvancePayment,
            2 => Self::PaymentMade,
            3 => Self::Returned,
            other => Self::Other(other),
        }
    }
}

impl TransactionStatus {
    fn code(self) -> i64 {
        match self {
            Self::NoPayment => 0,
            Self::AdvancePayment => 1,
            Self::PaymentMade => 2,
            Self::Returned => 3,
            Self::Other(c) => c,
        }
    }
}

/// A transaction as `by/sessionId` reports it. The payer's e-mail, name and address that P24
/// also returns are deliberately not read.
#[derive(Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    pub order_id: i64,
    pub session_id: String,
    pub status: TransactionStatus,
    pub amount: i64,
    pub currency: String,
    pub statement: Option<String>,
    pub date: Option<String>,
    /// When the payer paid: the legal payment date for taxes (spec §5).
    pub date_of_transaction: Option<String>,
    /// The payout batch, to match the bank statement (spec §1.8).
    pub batch_id: Option<i64>,
    pub fee: Option<String>,
}

impl fmt::Debug for TransactionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionInfo")
            .field("order_id", &self.order_id)
            .field("session_id", &self.session_id)
            .field("status", &self.status)
            .field("batch_id", &self.batch_id)
            .finish_non_exhaustive()
    }
}

/// Integers that some P24 endpoints send as strings: accept both.
pub(crate) fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("integer expected")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("integer expected")),
        Some(_) => Err(serde::de::Error::custom("integer expected")),
    }
}

/// Strings that may come as numbers (`fee`).
pub(crate) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransactionWire {
    #[serde(deserialize_with = "lenient_i64", default)]
    order_id: Option<i64>,
    session_id: String,
    #[serde(deserialize_with = "lenient_i64", default)]
    status: Option<i64>,
    #[serde(deserialize_with = "lenient_i64", default)]
    amount: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(deserialize_with = "lenient_string", default)]
    statement: Option<String>,
    #[serde(deserialize_with = "lenient_string", default)]
    date: Option<String>,
    #[serde(deserialize_with = "lenient_string", default)]
    date_of_transaction: Option<String>,
    #[serde(deserialize_with = "lenient_i64", default)]
    batch_id: Option<i64>,
    #[serde(deserialize_with = "lenient_string", default)]
    fee: Option<String>,
}

/// One item of a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundItem {
    pub order_id: i64,
    pub session_id: String,
    /// Grosze.
    pub amount: i64,
    /// At most 35 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `transaction/refund` (spec §1.8). `request_id` makes a repeat recognisable: P24 answers
/// "Request already exists" ([`P24Error::RefundRequestAlreadyExists`]) to a second request
/// with the same id, so a caller that lost an answer can safely send the same request again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// At most 45 characters.
    pub request_id: String,
    /// At most 35 characters.
    pub refunds_uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_status: Option<String>,
    pub refunds: Vec<RefundItem>,
}

/// P24's answer for one refund item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundItemResult {
    #[serde(deserialize_with = "lenient_i64", default)]
    pub order_id: Option<i64>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(deserialize_with = "lenient_i64", default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub status: bool,
    #[serde(default)]
    pub message: String,
}

/// How a call may be repeated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RetryMode {
    /// Safe to repeat (GET, PUT verify): retry every transient failure.
    Safe,
    /// Not known to be idempotent (POST register/refund): retry only when the request never
    /// reached P24 (connection refused / DNS / TLS handshake failure).
    OnlyUnsent,
}

/// The P24 API client for one shop. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct P24Client {
    config: P24Config,
    http: reqwest::Client,
    api_base: String,
}

impl fmt::Debug for P24Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P24Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl P24Client {
    /// Builds the client; fails only if the TLS backend cannot initialise.
    pub fn new(config: P24Config) -> Result<Self, P24Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| P24Error::Client(e.to_string()))?;
        let api_base = format!("{}/api/v1", config.base_url.trim_end_matches('/'));
        Ok(Self {
            config,
            http,
            api_base,
        })
    }

    /// The configuration (secrets stay wrapped).
    pub fn config(&self) -> &P24Config {
        &self.config
    }

    /// `GET /testAccess`: checks the posId/API key pair.
    pub async fn test_access(&self) -> Result<(), P24Error> {
        let op = Operation::TestAccess;
        let body = self
            .call(op, Method::GET, "/testAccess", None, RetryMode::Safe)
            .await?;
        match body.get("data") {
            Some(Value::Bool(true)) => Ok(()),
            _ => Err(P24Error::Decode {
                operation: op,
                message: "data is not true".into(),
            }),
        }
    }

    /// `POST /transaction/register`.
    ///
    /// P24 does not document register as idempotent (the sessionId must merely be "unique in
    /// merchant system"), so a blind retry could create a second order for one session. This
    /// client therefore:
    /// 1. first asks `by/sessionId` whether P24 already holds the session; if so it returns
    ///    [`P24Error::SessionAlreadyRegistered`] instead of registering again (so a caller
    ///    retrying after a lost answer gets a clear answer, not a duplicate order);
    /// 2. sends the POST, repeating it only if the connection was never made;
    /// 3. on a timeout, 5xx or broken connection returns the transient error without retrying:
    ///    the caller may call `register` again later, and step 1 catches the case where the
    ///    first request did go through.
    ///
    /// Residual race: if P24 processes the first request only after the second call's check,
    /// two orders can exist; the second payer redirect is then refused by nothing. The
    /// notification check ([`StoredOrder::verified_order_id`], [`NotificationError::OrderConflict`])
    /// catches a double payment.
    pub async fn register(&self, order: &RegisterOrder) -> Result<Registered, P24Error> {
        order.validate()?;
        if let Some(existing) = self.transaction_by_session_id(&order.session_id).await? {
            return Err(P24Error::SessionAlreadyRegistered {
                order_id: existing.order_id,
                status: existing.status.code(),
            });
        }
        let op = Operation::Register;
        let body = RegisterBody {
            merchant_id: self.config.merchant_id,
            pos_id: self.config.pos_id,
            session_id: &order.session_id,
            amount: order.amount,
            currency: &order.currency,
            description: &order.description,
            email: &order.email,
            client: order.client.as_deref(),
            country: &order.country,
            language: &order.language,
            url_return: &order.url_return,
            url_status: order.url_status.as_deref(),
            time_limit: order.time_limit,
            channel: order.channel,
            transfer_label: order.transfer_label.as_deref(),
            wait_for_result: order.wait_for_result,
            encoding: "UTF-8",
            sign: register_sign(
                &order.session_id,
                self.config.merchant_id,
                order.amount,
                &order.currency,
                self.config.crc.expose(),
            ),
        };
        let json = to_value(op, &body)?;
        let answer = self
            .call(
                op,
                Method::POST,
                "/transaction/register",
                Some(json),
                RetryMode::OnlyUnsent,
            )
            .await?;
        let token = answer
            .pointer("/data/token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| P24Error::Decode {
                operation: op,
                message: "data.token missing".into(),
            })?
            .to_string();
        let redirect_url = format!(
            "{}/trnRequest/{}",
            self.config.base_url.trim_end_matches('/'),
            token
        );
        tracing::info!(operation = %op, session_id = %order.session_id, "P24 transaction registered");
        Ok(Registered {
            token,
            redirect_url,
        })
    }

    /// `PUT /transaction/verify`: confirms a notified payment; without it P24 does not pay the
    /// money out (it stays the payer's advance payment, spec §1.7).
    ///
    /// Retried on transient failures: verify is a PUT (idempotent by HTTP semantics) that
    /// confirms one fixed (sessionId, orderId, amount) tuple, and P24's own design repeats
    /// notifications until verified, so a merchant verifying twice is the expected case. The
    /// spec does not state idempotency in words; this is an inference, noted in the report.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<(), P24Error> {
        let op = Operation::Verify;
        let body = VerifyBody {
            merchant_id: self.config.merchant_id,
            pos_id: self.config.pos_id,
            session_id: &request.session_id,
            amount: request.amount,
            currency: &request.currency,
            order_id: request.order_id,
            sign: verify_sign(
                &request.session_id,
                request.order_id,
                request.amount,
                &request.currency,
                self.config.crc.expose(),
            ),
        };
        let json = to_value(op, &body)?;
        let answer = self
            .call(
                op,
                Method::PUT,
                "/transaction/verify",
                Some(json),
                RetryMode::Safe,
            )
            .await?;
        match answer.pointer("/data/status").and_then(Value::as_str) {
            Some("success") => {
                tracing::info!(operation = %op, order_id = request.order_id, "P24 transaction verified");
                Ok(())
            }
            Some(other) => Err(P24Error::NotVerified(truncate(other))),
            None => Err(P24Error::NotVerified(String::new())),
        }
    }

    /// `GET /transaction/by/sessionId/{sessionId}`; `None` when P24 does not know the session.
    pub async fn transaction_by_session_id(
        &self,
        session_id: &str,
    ) -> Result<Option<TransactionInfo>, P24Error> {
        let op = Operation::TransactionBySessionId;
        let path = format!("/transaction/by/sessionId/{}", encode_segment(session_id));
        let answer = match self
            .call(op, Method::GET, &path, None, RetryMode::Safe)
            .await
        {
            Ok(answer) => answer,
            Err(P24Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let data = answer
            .get("data")
            .cloned()
            .ok_or_else(|| P24Error::Decode {
                operation: op,
                message: "data missing".into(),
            })?;
        let wire: TransactionWire = serde_json::from_value(data).map_err(|e| P24Error::Decode {
            operation: op,
            message: e.to_string(),
        })?;
        let missing = |field: &str| P24Error::Decode {
            operation: op,
            message: format!("{field} missing"),
        };
        Ok(Some(TransactionInfo {
            order_id: wire.order_id.ok_or_else(|| missing("orderId"))?,
            session_id: wire.session_id,
            status: TransactionStatus::from(wire.status.ok_or_else(|| missing("status"))?),
            amount: wire.amount.ok_or_else(|| missing("amount"))?,
            currency: wire.currency.unwrap_or_else(|| "PLN".into()),
            statement: wire.statement,
            date: wire.date,
            date_of_transaction: wire.date_of_transaction,
            batch_id: wire.batch_id,
            fee: wire.fee,
        }))
    }

    /// `POST /transaction/refund`. Not retried once sent (a POST); a caller that got a
    /// transient error repeats the *same* request (same `request_id`), and
    /// [`P24Error::RefundRequestAlreadyExists`] then tells it the first one went through.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Vec<RefundItemResult>, P24Error> {
        let op = Operation::Refund;
        if request.request_id.is_empty() || request.request_id.chars().count() > 45 {
            return Err(P24Error::InvalidRequest(
                "requestId must have 1 to 45 characters".into(),
            ));
        }
        if request.refunds_uuid.is_empty() || request.refunds_uuid.chars().count() > 35 {
            return Err(P24Error::InvalidRequest(
                "refundsUuid must have 1 to 35 characters".into(),
            ));
        }
        if request.refunds.is_empty() {
            return Err(P24Error::InvalidRequest("no refund items".into()));
        }
        for item in &request.refunds {
            if item.amount <= 0 {
                return Err(P24Error::InvalidRequest(
                    "refund amount must be positive".into(),
                ));
            }
            if item
                .description
                .as_ref()
                .is_some_and(|d| d.chars().count() > 35)
            {
                return Err(P24Error::InvalidRequest(
                    "refund description longer than 35 characters".into(),
                ));
            }
        }
        let json = to_value(op, request)?;
        let answer = self
            .call(
                op,
                Method::POST,
                "/transaction/refund",
                Some(json),
                RetryMode::OnlyUnsent,
            )
            .await?;
        let data = answer.get("data").cloned().unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| P24Error::Decode {
            operation: op,
            message: e.to_string(),
        })
    }

    /// `GET /report/batch/details?batch={batchId}`: the transactions of one payout, to split a
    /// bank-statement credit into taxpayers. See [`crate::report`] for what the spec leaves open.
    pub async fn batch_details(&self, batch_id: i64) -> Result<BatchReport, P24Error> {
        let op = Operation::BatchDetails;
        let path = format!("/report/batch/details?batch={batch_id}");
        let answer = self
            .call(op, Method::GET, &path, None, RetryMode::Safe)
            .await?;
        let raw = serde_json::to_vec(&answer).map_err(|e| P24Error::Decode {
            operation: op,
            message: e.to_string(),
        })?;
        parse_batch_details(&raw).map_err(|e| P24Error::Decode {
            operation: op,
            message: e.to_string(),
        })
    }

    /// Checks a status notification against the stored order: sign first (nothing in an
    /// unsigned body is trusted), then merchantId, posId, sessionId, replay, currency, amount.
    pub fn parse_and_verify_notification(
        &self,
        raw_body: &[u8],
        expected: &StoredOrder,
    ) -> Result<VerifiedNotification, NotificationError> {
        UnverifiedNotification::parse(raw_body)?.verify(
            self.config.merchant_id,
            self.config.pos_id,
            self.config.crc.expose(),
            expected,
        )
    }

    /// Like [`Self::parse_and_verify_notification`], for a handler that must first find the
    /// stored order by the notification's sessionId; `lookup` returning `None` gives
    /// [`NotificationError::UnknownSession`] (after the sign check, so unsigned junk is
    /// reported as [`NotificationError::BadSign`]).
    pub fn verify_notification_with<F>(
        &self,
        raw_body: &[u8],
        lookup: F,
    ) -> Result<VerifiedNotification, NotificationError>
    where
        F: FnOnce(&str) -> Option<StoredOrder>,
    {
        let parsed = UnverifiedNotification::parse(raw_body)?;
        let expected = lookup(parsed.session_id());
        match expected {
            Some(order) => parsed.verify(
                self.config.merchant_id,
                self.config.pos_id,
                self.config.crc.expose(),
                &order,
            ),
            None => {
                // Check authenticity with a placeholder order that cannot match: BadSign wins
                // over UnknownSession, so a forged body is reported as forged.
                let placeholder = StoredOrder {
                    session_id: String::new(),
                    amount: 0,
                    currency: String::new(),
                    verified_order_id: None,
                };
                match parsed.verify(
                    self.config.merchant_id,
                    self.config.pos_id,
                    self.config.crc.expose(),
                    &placeholder,
                ) {
                    Err(NotificationError::BadSign) => Err(NotificationError::BadSign),
                    Err(NotificationError::WrongMerchant) => Err(NotificationError::WrongMerchant),
                    Err(NotificationError::WrongPos) => Err(NotificationError::WrongPos),
                    _ => Err(NotificationError::UnknownSession),
                }
            }
        }
    }

    /// Checks a refund notification (sign and merchantId); see [`RefundNotification`].
    pub fn parse_and_verify_refund_notification(
        &self,
        raw_body: &[u8],
    ) -> Result<RefundNotification, NotificationError> {
        verify_refund_notification(raw_body, self.config.merchant_id, self.config.crc.expose())
    }

    /// One logical call with the retry policy; returns the parsed JSON body of a 2xx answer.
    async fn call(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<Value>,
        mode: RetryMode,
    ) -> Result<Value, P24Error> {
        let policy = self.config.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let result = self
                .call_once(op, method.clone(), path, body.as_ref())
                .await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let retryable = match mode {
                RetryMode::Safe => err.is_transient(),
                RetryMode::OnlyUnsent => matches!(err, P24Error::Connect(_)),
            };
            if !retryable || attempt >= max_attempts {
                // A 404 answers a question ("does P24 hold this session?"), it is no failure.
                if matches!(err, P24Error::NotFound(_)) {
                    tracing::debug!(operation = %op, "P24 answered not found");
                } else {
                    tracing::warn!(operation = %op, attempt, transient = err.is_transient(), error = %err, "P24 call failed");
                }
                return Err(err);
            }
            let delay = policy.delay_after(attempt);
            tracing::info!(operation = %op, attempt, delay_ms = delay.as_millis() as u64, error = %err, "P24 call failed, retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn call_once(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, P24Error> {
        let url = format!("{}{}", self.api_base, path);
        let mut request = self
            .http
            .request(method, url)
            .basic_auth(self.config.pos_id, Some(self.config.api_key.expose()));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| classify(op, &e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| classify(op, &e))?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return json.ok_or_else(|| P24Error::Decode {
                operation: op,
                message: "body is not JSON".into(),
            });
        }
        Err(status_error(op, status, json.as_ref()))
    }
}

fn to_value<T: Serialize>(op: Operation, body: &T) -> Result<Value, P24Error> {
    serde_json::to_value(body).map_err(|e| P24Error::Decode {
        operation: op,
        message: e.to_string(),
    })
}

fn classify(op: Operation, e: &reqwest::Error) -> P24Error {
    if e.is_connect() {
        P24Error::Connect(op)
    } else if e.is_timeout() {
        P24Error::Timeout(op)
    } else {
        P24Error::Transport(op)
    }
}

fn status_error(op: Operation, status: StatusCode, json: Option<&Value>) -> P24Error {
    let message = json
        .and_then(|j| j.get("error"))
        .map(|e| match e {
            Value::String(s) => truncate(s),
            other => truncate(&other.to_string()),
        })
        .unwrap_or_default();
    match status.as_u16() {
        401 => P24Error::Unauthorized(op),
        404 => P24Error::NotFound(op),
        400 if op == Operation::Refund && message.contains("Request already exists") => {
            P24Error::RefundRequestAlreadyExists
        }
        400 => P24Error::InvalidInput {
            operation: op,
            message,
        },
        409 if op == Operation::Refund => {
            let items = json
                .and_then(|j| j.get("error"))
                .cloned()
                .and_then(|e| serde_json::from_value::<Vec<RefundItemResult>>(e).ok())
                .unwrap_or_default();
            P24Error::RefundRejected { items }
        }
        429 | 500..=599 => P24Error::Server {
            operation: op,
            status: status.as_u16(),
        },
        other => P24Error::UnexpectedStatus {
            operation: op,
            status: other,
        },
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_ERROR_TEXT).collect()
}

/// Percent-encodes one path segment (session ids such as `PN/2026/000123` contain `/`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_slash() {
        assert_eq!(encode_segment("PN/2026 ż"), "PN%2F2026%20%C5%BC");
    }

    #[test]
    fn status_classification() {
        let op = Operation::Register;
        assert!(status_error(op, StatusCode::INTERNAL_SERVER_ERROR, None).is_transient());
        assert!(status_error(op, StatusCode::TOO_MANY_REQUESTS, None).is_transient());
        assert!(!status_error(op, StatusCode::UNAUTHORIZED, None).is_transient());
        assert!(!status_error(op, StatusCode::BAD_REQUEST, None).is_transient());
    }

    #[test]
    fn order_debug_hides_personal_data() {
        let mut order = RegisterOrder::new("S1", 12345, "Podatek", "jan@example.pl", "https://x");
        order.client = Some("Jan Kowalski".into());
        let debug = format!("{order:?}");
        assert!(!debug.contains("jan@"));
        assert!(!debug.contains("Kowalski"));
        assert!(!debug.contains("12345"));
    }
}
