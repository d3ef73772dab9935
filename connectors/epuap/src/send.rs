//! Sending documents from the office: WS-Skrytka `nadaj` ("tryb UPP", spec §1.4, §1.6, §1.8)
//! and WS-Doręczyciel `dorecz` ("tryb UPD").
//!
//! Message form (§1.3, §1.8): the parameters travel as SOAP headers, each a *global* element
//! qualified in `http://wsdl.epuap.gov.pl/obiekty/` (`ob:IdentyfikatorPodmiotu`,
//! `ob:AdresSkrytki`, `ob:AdresOdpowiedzi`, `ob:CzyProbne` as `0`/`1`, `ob:DaneDodatkowe`
//! base64, and for `dorecz` `ob:TerminDoreczenia`, `ob:IdentyfikatorDokumentu`,
//! `ob:IdentyfikatorSprawy`); the Body is `ob:Dokument` with unqualified children
//! `nazwaPliku`, `typPliku`, `zawartosc`. Header order and the empty `DaneDodatkowe` follow
//! the client that works against production (OMB).
//!
//! Both calls hand a document over, so they are never repeated blindly: see
//! [`crate::client`] for when they are retried and when they end
//! [`ClientError::Uncertain`].

use crate::client::{
    answer_element, child, child_text, decode_base64, escape, parse_xml, ClientError, Operation,
    Repeat, RetryPolicy, SoapCaller,
};
use crate::pull::{PullError, OBIEKTY_NS, STATUS_OK};
use crate::wssec::SigningIdentity;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;

/// One document for `nadaj`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nadaj {
    /// The addressee's box, `/<podmiot>/<skrytka>`.
    pub target_box: String,
    /// The office's box where answers (and an asynchronous UPP) go.
    pub reply_box: String,
    pub file_name: String,
    pub mime_type: String,
    pub content: Vec<u8>,
    /// `CzyProbne`: ePUAP only checks the document and the address; nothing is delivered.
    pub dry_run: bool,
    /// `DaneDodatkowe` (XML), sent base64; empty when `None`.
    pub extra: Option<Vec<u8>>,
}

/// What `nadaj` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NadajReceipt {
    /// `identyfikatorDokumentu` at ePUAP (empty when the answer has none, e.g. a dry run).
    pub document_id: String,
    /// `identyfikatorUpp`, when the box issues a UPP.
    pub upp_id: Option<String>,
    /// The UPP document (`zalacznik/zawartosc`, decoded), when returned synchronously.
    pub upp: Option<Vec<u8>>,
    /// `statusOdbiorcy` (`kod`, `komunikat`), when the answer carries one.
    pub recipient_status: Option<(i32, String)>,
}

/// One document for `dorecz` (delivery against an official receipt, UPD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dorecz {
    /// The addressee's box, `/<podmiot>/<skrytka>`.
    pub recipient_box: String,
    /// The office's box where the UPD comes back.
    pub reply_box: String,
    pub file_name: String,
    pub mime_type: String,
    /// The document, signed (ePUAP refuses unsigned documents for `dorecz`).
    pub content: Vec<u8>,
    /// `TerminDoreczenia`, sent as ISO 8601 in UTC; omitted when `None`.
    pub deliver_by: Option<DateTime<Utc>>,
    /// `IdentyfikatorDokumentu`: our decision id; ePUAP puts it into the UPD.
    pub document_id: String,
    /// `IdentyfikatorSprawy`: our case id; ePUAP puts it into the UPD.
    pub case_id: String,
    /// `CzyProbne`: only checked, nothing delivered.
    pub dry_run: bool,
}

/// What `dorecz` answered (both fields are nillable in the schema; a dry run has neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoreczReceipt {
    /// `identyfikatorDokumentu` at ePUAP.
    pub document_id: Option<String>,
    /// `identyfikatorZlecenia`: the delivery order, to match the UPD and events later.
    pub order_id: Option<String>,
}

fn header(name: &str, value: &str) -> String {
    format!(
        "<ob:{name} xmlns:ob=\"{OBIEKTY_NS}\">{}</ob:{name}>",
        escape(value)
    )
}

fn extra_header(extra: Option<&[u8]>) -> String {
    match extra {
        Some(bytes) => header(
            "DaneDodatkowe",
            &base64::engine::general_purpose::STANDARD.encode(bytes),
        ),
        None => format!("<ob:DaneDodatkowe xmlns:ob=\"{OBIEKTY_NS}\"/>"),
    }
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// `ob:Dokument` with unqualified children.
pub fn document_body(file_name: &str, mime_type: &str, content: &[u8]) -> String {
    format!(
        "<Dokument xmlns=\"{OBIEKTY_NS}\"><nazwaPliku xmlns=\"\">{}</nazwaPliku><typPliku xmlns=\"\">{}</typPliku><zawartosc xmlns=\"\">{}</zawartosc></Dokument>",
        escape(file_name),
        escape(mime_type),
        base64::engine::general_purpose::STANDARD.encode(content)
    )
}

/// The SOAP headers of `nadaj` sent by `podmiot`, in the order OMB sends them.
pub fn nadaj_headers(podmiot: &str, n: &Nadaj) -> Vec<String> {
    vec![
        extra_header(n.extra.as_deref()),
        header("CzyProbne", flag(n.dry_run)),
        header("AdresOdpowiedzi", &n.reply_box),
        header("AdresSkrytki", &n.target_box),
        header("IdentyfikatorPodmiotu", podmiot),
    ]
}

/// The SOAP headers of `dorecz` sent by `podmiot`, in the order OMB sends them.
pub fn dorecz_headers(podmiot: &str, d: &Dorecz) -> Vec<String> {
    let mut h = vec![
        extra_header(None),
        header("IdentyfikatorSprawy", &d.case_id),
        header("IdentyfikatorDokumentu", &d.document_id),
        header("CzyProbne", flag(d.dry_run)),
    ];
    if let Some(t) = d.deliver_by {
        h.push(header(
            "TerminDoreczenia",
            &t.to_rfc3339_opts(SecondsFormat::Secs, true),
        ));
    }
    h.push(header("AdresOdpowiedzi", &d.reply_box));
    h.push(header("AdresSkrytki", &d.recipient_box));
    h.push(header("IdentyfikatorPodmiotu", podmiot));
    h
}

fn expect_root(n: roxmltree::Node<'_, '_>, name: &str) -> Result<(), PullError> {
    if n.has_tag_name((OBIEKTY_NS, name)) {
        Ok(())
    } else {
        Err(PullError::Malformed(format!(
            "expected ob:{name}, got {}",
            n.tag_name().name()
        )))
    }
}

fn status_of(n: roxmltree::Node<'_, '_>, name: &str) -> Result<Option<(i32, String)>, PullError> {
    let Some(s) = child(n, name) else {
        return Ok(None);
    };
    let kod = child_text(s, "kod")
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| PullError::Malformed(format!("{name} without a numeric kod")))?;
    Ok(Some((kod, child_text(s, "komunikat").unwrap_or_default())))
}

fn require_ok(n: roxmltree::Node<'_, '_>) -> Result<(), PullError> {
    match status_of(n, "status")? {
        Some((STATUS_OK, _)) => Ok(()),
        Some((kod, komunikat)) => Err(PullError::Status { kod, komunikat }),
        None => Err(PullError::Malformed("the answer has no status".into())),
    }
}

/// Reads the answer of `nadaj` (`ob:OdpowiedzSkrytki`).
pub fn parse_nadaj(xml: &str) -> Result<NadajReceipt, PullError> {
    let doc = parse_xml(xml)?;
    let n = answer_element(&doc)?;
    expect_root(n, "OdpowiedzSkrytki")?;
    require_ok(n)?;
    let upp = match child(n, "zalacznik").and_then(|z| child(z, "zawartosc")) {
        Some(z) => Some(decode_base64(
            z.text().unwrap_or_default(),
            "zalacznik/zawartosc",
        )?)
        .filter(|b| !b.is_empty()),
        None => None,
    };
    Ok(NadajReceipt {
        document_id: child_text(n, "identyfikatorDokumentu").unwrap_or_default(),
        upp_id: child_text(n, "identyfikatorUpp"),
        upp,
        recipient_status: status_of(n, "statusOdbiorcy")?,
    })
}

/// Reads the answer of `dorecz` (`ob:OdpowiedzDoreczyciela`).
pub fn parse_dorecz(xml: &str) -> Result<DoreczReceipt, PullError> {
    let doc = parse_xml(xml)?;
    let n = answer_element(&doc)?;
    expect_root(n, "OdpowiedzDoreczyciela")?;
    require_ok(n)?;
    Ok(DoreczReceipt {
        document_id: child_text(n, "identyfikatorDokumentu"),
        order_id: child_text(n, "identyfikatorZlecenia"),
    })
}

/// WS-Skrytka of one office (`podmiot`), reached with its system certificate.
#[derive(Clone)]
pub struct SkrytkaClient {
    caller: SoapCaller,
    podmiot: String,
}

impl std::fmt::Debug for SkrytkaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkrytkaClient")
            .field("url", &self.caller.url())
            .field("podmiot", &self.podmiot)
            .finish_non_exhaustive()
    }
}

impl SkrytkaClient {
    pub fn new(
        url: impl Into<String>,
        identity: Arc<SigningIdentity>,
        podmiot: impl Into<String>,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        Ok(SkrytkaClient {
            caller: SoapCaller::new(url.into(), identity, retry)?,
            podmiot: podmiot.into(),
        })
    }

    /// Sends one document to a box. Retried only when ePUAP certainly did not take it;
    /// [`ClientError::Uncertain`] when it may have.
    pub async fn nadaj(&self, n: &Nadaj) -> Result<NadajReceipt, ClientError> {
        let headers = nadaj_headers(&self.podmiot, n);
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        self.caller
            .call(
                Operation::Nadaj,
                Repeat::Once,
                &document_body(&n.file_name, &n.mime_type, &n.content),
                &headers,
                parse_nadaj,
            )
            .await
    }
}

/// WS-Doręczyciel of one office (`podmiot`), reached with its system certificate.
#[derive(Clone)]
pub struct DoreczycielClient {
    caller: SoapCaller,
    podmiot: String,
}

impl std::fmt::Debug for DoreczycielClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoreczycielClient")
            .field("url", &self.caller.url())
            .field("podmiot", &self.podmiot)
            .finish_non_exhaustive()
    }
}

impl DoreczycielClient {
    pub fn new(
        url: impl Into<String>,
        identity: Arc<SigningIdentity>,
        podmiot: impl Into<String>,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        Ok(DoreczycielClient {
            caller: SoapCaller::new(url.into(), identity, retry)?,
            podmiot: podmiot.into(),
        })
    }

    /// Orders delivery of a signed document against a UPD. Retried only when ePUAP
    /// certainly did not take it; [`ClientError::Uncertain`] when it may have.
    pub async fn dorecz(&self, d: &Dorecz) -> Result<DoreczReceipt, ClientError> {
        let headers = dorecz_headers(&self.podmiot, d);
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        self.caller
            .call(
                Operation::Dorecz,
                Repeat::Once,
                &document_body(&d.file_name, &d.mime_type, &d.content),
                &headers,
                parse_dorecz,
            )
            .await
    }
}
