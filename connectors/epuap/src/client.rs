//! The WS-Pull client: signed SOAP calls to one box, with a timeout on every call and bounded
//! retries with backoff for what may succeed later (timeouts, broken connections, HTTP 5xx,
//! server faults). `pobierzNastepny` and `oczekujaceDokumenty` only read, so repeating them is
//! harmless; `potwierdzOdebranie` removes the head only when the digest matches, so repeating
//! it after a lost answer at worst answers "nothing to confirm" — which the receiver treats
//! as done when the box no longer holds that document.

use crate::pull::{
    parse_confirm, parse_next, parse_pending, request_body, BoxAddress, PullError, PullOperation,
    PulledDocument,
};
use crate::wssec::{envelope, sign_envelope, SigningIdentity, WsSecError};
use std::sync::Arc;
use std::time::Duration;

/// How often and how patiently a call is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts including the first.
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Deadline of one HTTP exchange.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A failed call, after the retries.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// ePUAP refused the request as it is (a client fault: unknown box, authentication):
    /// repeating it cannot help until the configuration changes.
    #[error("ePUAP refused {operation:?}: {source}")]
    Refused {
        operation: PullOperation,
        #[source]
        source: PullError,
    },
    /// Still failing after the retries (timeouts, HTTP errors, server faults).
    #[error("ePUAP unavailable for {operation:?} after {attempts} attempts: {last}")]
    Unavailable {
        operation: PullOperation,
        attempts: u32,
        last: String,
    },
    #[error("cannot sign the request: {0}")]
    Signing(#[from] WsSecError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

impl ClientError {
    /// True when trying again later (next run) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Unavailable { .. })
    }
}

/// One box of one office, reached with the office's system certificate.
#[derive(Clone)]
pub struct PullClient {
    http: reqwest::Client,
    url: String,
    identity: Arc<SigningIdentity>,
    target: BoxAddress,
    retry: RetryPolicy,
}

impl std::fmt::Debug for PullClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullClient")
            .field("url", &self.url)
            .field("box", &self.target.address())
            .finish_non_exhaustive()
    }
}

enum Attempt<T> {
    Done(T),
    Again(String),
    Refused(PullError),
}

impl PullClient {
    pub fn new(
        url: impl Into<String>,
        identity: Arc<SigningIdentity>,
        target: BoxAddress,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout)
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(PullClient {
            http,
            url: url.into(),
            identity,
            target,
            retry,
        })
    }

    pub fn target(&self) -> &BoxAddress {
        &self.target
    }

    /// How many documents wait in the box.
    pub async fn pending(&self) -> Result<u32, ClientError> {
        self.call(PullOperation::Pending, None, parse_pending).await
    }

    /// The head of the box (not removed), or `None` when the box is empty.
    pub async fn next(&self) -> Result<Option<PulledDocument>, ClientError> {
        self.call(PullOperation::Next, None, parse_next).await
    }

    /// Removes the head, which must be the document with this digest.
    pub async fn confirm(&self, digest: &str) -> Result<(), ClientError> {
        self.call(PullOperation::Confirm, Some(digest), parse_confirm)
            .await
    }

    async fn call<T>(
        &self,
        op: PullOperation,
        digest: Option<&str>,
        parse: fn(&str) -> Result<T, PullError>,
    ) -> Result<T, ClientError> {
        let signed = sign_envelope(
            &envelope(&request_body(op, &self.target, digest), &[]),
            &self.identity,
        )?;
        let attempts = self.retry.attempts.max(1);
        let mut backoff = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.attempt(op, &signed, parse).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Refused(source) => {
                    return Err(ClientError::Refused {
                        operation: op,
                        source,
                    })
                }
                Attempt::Again(why) => {
                    tracing::warn!(operation = ?op, attempt, reason = %why, "ePUAP call failed");
                    last = why;
                }
            }
            if attempt < attempts {
                // Jitter keeps many boxes from retrying in step.
                let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 / 4 + 1);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff = (backoff * 2).min(self.retry.max_backoff);
            }
        }
        Err(ClientError::Unavailable {
            operation: op,
            attempts,
            last,
        })
    }

    async fn attempt<T>(
        &self,
        op: PullOperation,
        signed: &str,
        parse: fn(&str) -> Result<T, PullError>,
    ) -> Attempt<T> {
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", op.soap_action())
            .body(signed.to_owned())
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::Again("timed out".into()),
            Err(e) => return Attempt::Again(format!("transport: {e}")),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return Attempt::Again(format!("reading the answer: {e}")),
        };
        match parse(&text) {
            Ok(v) if status.is_success() => Attempt::Done(v),
            Ok(_) => Attempt::Again(format!("HTTP {status} with a regular answer")),
            // A client fault or a refusing status is about the request (box, certificate,
            // digest): final. A server fault, or an answer that is not SOAP at all (a proxy's
            // error page), may pass.
            Err(e) if is_refusal(&e) => Attempt::Refused(e),
            Err(e) => Attempt::Again(format!("HTTP {status}: {e}")),
        }
    }
}

fn is_refusal(e: &PullError) -> bool {
    match e {
        PullError::Fault { faultcode, .. } => faultcode.ends_with("Client"),
        PullError::Status { .. } => true,
        PullError::Malformed(_) => false,
    }
}
