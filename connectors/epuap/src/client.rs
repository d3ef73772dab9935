//! Signed SOAP calls to the ePUAP services (WS-Pull, WS-Skrytka, WS-Doręczyciel) and to the
//! Profil Zaufany signing service, with a timeout on every call and bounded retries with
//! jittered backoff — but only where repeating cannot do harm.
//!
//! Two kinds of calls, told apart by [`Repeat`]:
//!
//! * **Repeatable** (`pobierzNastepny`, `oczekujaceDokumenty`, `potwierdzOdebranie`, the
//!   signing service): retried after anything that may pass (timeouts, broken connections,
//!   HTTP 5xx, server faults). `pobierzNastepny` and `oczekujaceDokumenty` only read;
//!   `potwierdzOdebranie` removes the head only when the digest matches, so repeating it
//!   after a lost answer at worst answers "nothing to confirm" — which the receiver treats as
//!   done when the box no longer holds that document.
//! * **Once** (`nadaj`, `dorecz`): they hand a document to someone. Repeated only when the
//!   request certainly was not processed: the connection could not be made, ePUAP answered a
//!   SOAP `Server` fault, or HTTP 503. After a timeout, a broken connection or any other
//!   answer that does not say what happened, the call ends with [`ClientError::Uncertain`]
//!   so the caller can park the shipment for a person to check, instead of sending twice.

use crate::pull::{
    parse_confirm, parse_next, parse_pending, request_body, BoxAddress, PullError, PullOperation,
    PulledDocument,
};
use crate::wssec::{envelope, sign_envelope, SigningIdentity, WsSecError};
pub(crate) use gsko_model::xml::escape;
use std::fmt;
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

/// The operation a call was for (named in errors and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A WS-Pull operation.
    Pull(PullOperation),
    /// WS-Skrytka `nadaj`.
    Nadaj,
    /// WS-Doręczyciel `dorecz`.
    Dorecz,
    /// tpSigning5 `addDocumentToSigning`.
    AddDocumentToSigning,
    /// tpSigning5 `getSignedDocument`.
    GetSignedDocument,
}

impl Operation {
    /// The SOAPAction header sent with the call.
    pub fn soap_action(self) -> &'static str {
        match self {
            Operation::Pull(op) => op.soap_action(),
            Operation::Nadaj => "http://ws.epuap.gov.pl/skrytka/nadaj",
            Operation::Dorecz => "http://ws.epuap.gov.pl/doreczyciel/dorecz",
            // As OMB's TpSigning5 client sends them.
            Operation::AddDocumentToSigning => "addDocumentToSigning",
            Operation::GetSignedDocument => "getSignedDocument",
        }
    }
}

impl From<PullOperation> for Operation {
    fn from(op: PullOperation) -> Self {
        Operation::Pull(op)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Pull(PullOperation::Pending) => "oczekujaceDokumenty",
            Operation::Pull(PullOperation::Next) => "pobierzNastepny",
            Operation::Pull(PullOperation::Confirm) => "potwierdzOdebranie",
            Operation::Nadaj => "nadaj",
            Operation::Dorecz => "dorecz",
            Operation::AddDocumentToSigning => "addDocumentToSigning",
            Operation::GetSignedDocument => "getSignedDocument",
        })
    }
}

/// A failed call, after the retries.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service refused the request as it is (a client fault: unknown box, unsigned
    /// document, authentication; or a status other than OK): repeating it cannot help until
    /// the request or the configuration changes.
    #[error("ePUAP refused {operation}: {source}")]
    Refused {
        operation: Operation,
        #[source]
        source: PullError,
    },
    /// Still failing after the retries (timeouts, HTTP errors, server faults), and nothing
    /// was changed at the service that the caller has to care about.
    #[error("ePUAP unavailable for {operation} after {attempts} attempts: {last}")]
    Unavailable {
        operation: Operation,
        attempts: u32,
        last: String,
    },
    /// A call that must not be repeated (`nadaj`, `dorecz`) may or may not have been
    /// processed: the request was sent, but the answer was lost (timeout, broken connection)
    /// or does not say what happened. Sending again could deliver twice; the caller parks the
    /// shipment until someone checks it at ePUAP.
    #[error("ePUAP may or may not have processed {operation}: {detail}")]
    Uncertain {
        operation: Operation,
        detail: String,
    },
    #[error("cannot sign the request: {0}")]
    Signing(#[from] WsSecError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

impl ClientError {
    /// True when trying again later (next run) may succeed and is harmless.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Unavailable { .. })
    }

    /// True when the outcome at ePUAP is unknown and the call must not simply be repeated.
    pub fn is_uncertain(&self) -> bool {
        matches!(self, ClientError::Uncertain { .. })
    }
}

/// Whether a call may be repeated after an answer that does not say what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Repeating is harmless (reads, confirmations by digest, signing requests).
    Repeatable,
    /// Repeating may deliver twice: repeat only what certainly was not processed.
    Once,
}

/// What one HTTP exchange told about the call.
enum Attempt<T> {
    Done(T),
    /// Certainly not processed (no connection, SOAP Server fault, HTTP 503).
    NotProcessed(String),
    /// May have been processed (timeout or broken connection after sending, other errors).
    Unknown(String),
    Refused(PullError),
}

/// The machinery every service client shares: one endpoint, one signing identity, one
/// retry policy.
#[derive(Clone)]
pub(crate) struct SoapCaller {
    http: reqwest::Client,
    url: String,
    identity: Arc<SigningIdentity>,
    retry: RetryPolicy,
}

impl SoapCaller {
    pub(crate) fn new(
        url: String,
        identity: Arc<SigningIdentity>,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout)
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(SoapCaller {
            http,
            url,
            identity,
            retry,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Signs `body` (with `headers` as further SOAP headers) and sends it, repeating as
    /// `repeat` allows; the answer text goes to `parse`.
    pub(crate) async fn call<T>(
        &self,
        op: Operation,
        repeat: Repeat,
        body: &str,
        headers: &[&str],
        parse: impl Fn(&str) -> Result<T, PullError>,
    ) -> Result<T, ClientError> {
        let signed = sign_envelope(&envelope(body, headers), &self.identity)?;
        let attempts = self.retry.attempts.max(1);
        let mut backoff = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.attempt(op, &signed, &parse).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Refused(source) => {
                    return Err(ClientError::Refused {
                        operation: op,
                        source,
                    })
                }
                Attempt::Unknown(detail) if repeat == Repeat::Once => {
                    tracing::warn!(operation = %op, attempt, reason = %detail,
                        "ePUAP call ended without a usable answer; not repeated");
                    return Err(ClientError::Uncertain {
                        operation: op,
                        detail,
                    });
                }
                Attempt::NotProcessed(why) | Attempt::Unknown(why) => {
                    tracing::warn!(operation = %op, attempt, reason = %why, "ePUAP call failed");
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
        op: Operation,
        signed: &str,
        parse: &impl Fn(&str) -> Result<T, PullError>,
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
            // Checked before the timeout: a connect timeout is both, and nothing was sent.
            Err(e) if e.is_connect() => {
                return Attempt::NotProcessed(format!("cannot connect: {e}"))
            }
            Err(e) if e.is_timeout() => return Attempt::Unknown("timed out".into()),
            Err(e) => return Attempt::Unknown(format!("transport: {e}")),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return Attempt::Unknown(format!("reading the answer: {e}")),
        };
        match parse(&text) {
            Ok(v) if status.is_success() => Attempt::Done(v),
            Ok(_) => Attempt::Unknown(format!("HTTP {status} with a regular answer")),
            // A client fault or a refusing status is about the request (box, certificate,
            // digest, document): final.
            Err(e) if is_refusal(&e) => Attempt::Refused(e),
            // A server fault is answered before anything is done (ePUAP's own error path).
            Err(e @ PullError::Fault { .. }) => {
                Attempt::NotProcessed(format!("HTTP {status}: {e}"))
            }
            Err(e) if status == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                Attempt::NotProcessed(format!("HTTP {status}: {e}"))
            }
            // An answer that is not SOAP at all (a proxy's error page, a bare 500): it may
            // come after the request was processed.
            Err(e) => Attempt::Unknown(format!("HTTP {status}: {e}")),
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

/// One box of one office, reached with the office's system certificate.
#[derive(Clone)]
pub struct PullClient {
    caller: SoapCaller,
    target: BoxAddress,
}

impl std::fmt::Debug for PullClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullClient")
            .field("url", &self.caller.url())
            .field("box", &self.target.address())
            .finish_non_exhaustive()
    }
}

impl PullClient {
    pub fn new(
        url: impl Into<String>,
        identity: Arc<SigningIdentity>,
        target: BoxAddress,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        Ok(PullClient {
            caller: SoapCaller::new(url.into(), identity, retry)?,
            target,
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
        self.caller
            .call(
                op.into(),
                Repeat::Repeatable,
                &request_body(op, &self.target, digest),
                &[],
                parse,
            )
            .await
    }
}

// ------------------------------------------------------------------------------------------
// Reading answers (shared by the sending and signing clients)

/// Parses an answer; DTDs are refused (SOAP forbids them).
pub(crate) fn parse_xml(xml: &str) -> Result<roxmltree::Document<'_>, PullError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 5_000_000,
    };
    roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| PullError::Malformed(format!("the answer is not well-formed XML: {e}")))
}

/// The single element of the answer's `soapenv:Body`, or the SOAP Fault it carries
/// (`faultcode`, `faultstring`, and `detail/Wyjatek/{kod, komunikat}` when present).
pub(crate) fn answer_element<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> Result<roxmltree::Node<'a, 'i>, PullError> {
    let env = doc.root_element();
    if !env.has_tag_name((crate::wssec::SOAP11_NS, "Envelope")) {
        return Err(PullError::Malformed(
            "the answer is not a SOAP 1.1 envelope".into(),
        ));
    }
    let body = env
        .children()
        .find(|c| c.is_element() && c.has_tag_name((crate::wssec::SOAP11_NS, "Body")))
        .ok_or_else(|| PullError::Malformed("the answer has no soapenv:Body".into()))?;
    let first = body
        .children()
        .find(|c| c.is_element())
        .ok_or_else(|| PullError::Malformed("the answer's soapenv:Body is empty".into()))?;
    if first.has_tag_name((crate::wssec::SOAP11_NS, "Fault")) {
        let text = |name: &str| {
            first
                .descendants()
                .find(|n| n.is_element() && n.tag_name().name() == name)
                .and_then(|n| n.text())
                .map(|t| t.trim().to_owned())
        };
        return Err(PullError::Fault {
            faultcode: text("faultcode").unwrap_or_default(),
            faultstring: text("faultstring").unwrap_or_default(),
            kod: text("kod").and_then(|k| k.parse().ok()),
            komunikat: text("komunikat"),
        });
    }
    Ok(first)
}

/// The first child element with this local name (children of ESP answers are unqualified).
pub(crate) fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of a child element, `None` when absent or empty.
pub(crate) fn child_text(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(n, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Decodes base64 text that may be wrapped over lines.
pub(crate) fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, PullError> {
    use base64::Engine as _;
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| PullError::Malformed(format!("{what} is not base64: {e}")))
}
