//! Profil Zaufany signing, tpSigning5 (`https://pz.gov.pl/ep-services/tpSigning5`, spec
//! §1.2): the office hands a document to PZ, sends the resident to the URL PZ answers, and
//! after the resident signed (PZ redirects to the success URL) fetches the signed document.
//!
//! Messages (from OMB's TpSigning5 client, which works against PZ since 2025-03): requests
//! are `addDocumentToSigning{doc, successURL, failureURL, additionalInfo}` and
//! `getSignedDocument{id}` qualified in `http://signing.ws.comarch.gov` with unqualified
//! children, WS-Security signed like the ESP calls; answers are read by the local names
//! `addDocumentToSigningReturn` (the URL) and `getSignedDocumentReturn` (the signed document,
//! base64) wherever they are in the Body.
//!
//! **Which id `getSignedDocument` takes.** OMB's demo stores the URL answered by
//! `addDocumentToSigning` and passes that whole URL as `id` (no parameter is cut out of it,
//! and PZ does not add one to the success redirect). [`document_id_from_url`] therefore
//! returns the URL itself, checked to be an absolute `https`/`http` URL.
//!
//! Both operations are safe to repeat: a repeated `addDocumentToSigning` only leaves an
//! unused document waiting at PZ, and `getSignedDocument` reads.

use crate::client::{
    answer_element, decode_base64, escape, parse_xml, ClientError, Operation, Repeat, RetryPolicy,
    SoapCaller,
};
use crate::pull::PullError;
use crate::wssec::SigningIdentity;
use base64::Engine as _;
use std::sync::Arc;

/// The tpSigning5 message namespace (OMB `Namespaces.COMARCH_SIGN`).
pub const COMARCH_SIGN_NS: &str = "http://signing.ws.comarch.gov";

/// The id to ask `getSignedDocument` for, from the URL `addDocumentToSigning` answered: the
/// URL itself (see the module documentation), or `None` when it is not an absolute
/// `https`/`http` URL.
pub fn document_id_from_url(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    Some(url.to_owned())
}

/// The Body of `addDocumentToSigning`.
pub fn add_document_body(
    doc: &[u8],
    success_url: &str,
    failure_url: &str,
    additional_info: &str,
) -> String {
    format!(
        "<addDocumentToSigning xmlns=\"{COMARCH_SIGN_NS}\"><doc xmlns=\"\">{}</doc><successURL xmlns=\"\">{}</successURL><failureURL xmlns=\"\">{}</failureURL><additionalInfo xmlns=\"\">{}</additionalInfo></addDocumentToSigning>",
        base64::engine::general_purpose::STANDARD.encode(doc),
        escape(success_url),
        escape(failure_url),
        escape(additional_info)
    )
}

/// The Body of `getSignedDocument`.
pub fn signed_document_body(id: &str) -> String {
    format!(
        "<getSignedDocument xmlns=\"{COMARCH_SIGN_NS}\"><id xmlns=\"\">{}</id></getSignedDocument>",
        escape(id)
    )
}

fn find_return<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.descendants()
        .find(|d| d.is_element() && d.tag_name().name() == name)
}

/// Reads the answer of `addDocumentToSigning`: the URL to send the resident to.
pub fn parse_add_document(xml: &str) -> Result<String, PullError> {
    let doc = parse_xml(xml)?;
    let n = answer_element(&doc)?;
    let url = find_return(n, "addDocumentToSigningReturn")
        .and_then(|r| r.text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            PullError::Malformed("the answer has no addDocumentToSigningReturn URL".into())
        })?;
    Ok(url)
}

/// Reads the answer of `getSignedDocument`: the signed document, or `None` when the answer
/// is regular but carries no document (`getSignedDocumentReturn` absent, empty or nil) —
/// how the service says the resident has not signed yet.
pub fn parse_signed_document(xml: &str) -> Result<Option<Vec<u8>>, PullError> {
    let doc = parse_xml(xml)?;
    let n = answer_element(&doc)?;
    if n.tag_name().name() != "getSignedDocumentResponse"
        && n.tag_name().name() != "getSignedDocumentReturn"
    {
        return Err(PullError::Malformed(format!(
            "expected getSignedDocumentResponse, got {}",
            n.tag_name().name()
        )));
    }
    let Some(ret) = (if n.tag_name().name() == "getSignedDocumentReturn" {
        Some(n)
    } else {
        find_return(n, "getSignedDocumentReturn")
    }) else {
        return Ok(None);
    };
    let text = ret.text().unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(None);
    }
    decode_base64(text, "getSignedDocumentReturn").map(Some)
}

/// The PZ signing service tpSigning5, called with the office's certificate.
#[derive(Clone)]
pub struct TpSigningClient {
    caller: SoapCaller,
}

impl std::fmt::Debug for TpSigningClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpSigningClient")
            .field("url", &self.caller.url())
            .finish_non_exhaustive()
    }
}

impl TpSigningClient {
    pub fn new(
        url: impl Into<String>,
        identity: Arc<SigningIdentity>,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        Ok(TpSigningClient {
            caller: SoapCaller::new(url.into(), identity, retry)?,
        })
    }

    /// Hands `doc` to PZ for signing; returns the URL to send the resident to. PZ redirects
    /// the resident back to `success_url` or `failure_url`; `additional_info` is shown to
    /// the resident.
    pub async fn add_document(
        &self,
        doc: &[u8],
        success_url: &str,
        failure_url: &str,
        additional_info: &str,
    ) -> Result<String, ClientError> {
        self.caller
            .call(
                Operation::AddDocumentToSigning,
                Repeat::Repeatable,
                &add_document_body(doc, success_url, failure_url, additional_info),
                &[],
                parse_add_document,
            )
            .await
    }

    /// The signed document for `id` (see [`document_id_from_url`]), or `None` while the
    /// service answers without one (not signed yet). A fault (unknown id, cancelled) is
    /// [`ClientError::Refused`].
    pub async fn signed_document(&self, id: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.caller
            .call(
                Operation::GetSignedDocument,
                Repeat::Repeatable,
                &signed_document_body(id),
                &[],
                parse_signed_document,
            )
            .await
    }
}
