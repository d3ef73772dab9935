//! WS-Pull messages (spec §1.4–§1.6): the three requests the receiver sends and the answers it
//! reads. Only global elements are namespace-qualified (`obiektypk.xsd` has no
//! `elementFormDefault`), so request children carry `xmlns=""`, and answers are read by local
//! name under the qualified root.

use base64::Engine;
use gsko_model::xml::escape;
use serde::Serialize;
use sha1::{Digest, Sha1};

/// Namespace of every ESP message element.
pub const OBIEKTY_NS: &str = "http://wsdl.epuap.gov.pl/obiekty/";
const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// `status/kod` of a successful call.
pub const STATUS_OK: i32 = 1;
/// `status/kod` of `pobierzNastepny` on an empty box.
pub const STATUS_EMPTY: i32 = 0;

/// One box (skrytka) of an office: `/<podmiot>/<nazwaSkrytki>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoxAddress {
    pub podmiot: String,
    pub name: String,
}

impl BoxAddress {
    pub fn new(podmiot: impl Into<String>, name: impl Into<String>) -> Self {
        BoxAddress {
            podmiot: podmiot.into(),
            name: name.into(),
        }
    }

    /// `adresSkrytki`.
    pub fn address(&self) -> String {
        format!("/{}/{}", self.podmiot, self.name)
    }
}

/// The operations of WS-Pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOperation {
    Pending,
    Next,
    Confirm,
}

impl PullOperation {
    pub fn soap_action(self) -> &'static str {
        match self {
            PullOperation::Pending => "http://ws.epuap.gov.pl/pull/oczekujaceDokumenty",
            PullOperation::Next => "http://ws.epuap.gov.pl/pull/pobierzNastepny",
            PullOperation::Confirm => "http://ws.epuap.gov.pl/pull/potwierdzOdebranie",
        }
    }
}

/// The SOAP Body content of a request (to be wrapped in an envelope and signed).
pub fn request_body(op: PullOperation, b: &BoxAddress, digest: Option<&str>) -> String {
    let element = match op {
        PullOperation::Pending => "ZapytaniePullOczekujace",
        PullOperation::Next => "ZapytaniePullPobierz",
        PullOperation::Confirm => "ZapytaniePullPotwierdz",
    };
    let mut body = format!(
        "<{element} xmlns=\"{OBIEKTY_NS}\"><podmiot xmlns=\"\">{}</podmiot><nazwaSkrytki xmlns=\"\">{}</nazwaSkrytki><adresSkrytki xmlns=\"\">{}</adresSkrytki>",
        escape(&b.podmiot),
        escape(&b.name),
        escape(&b.address())
    );
    if let Some(d) = digest {
        body.push_str(&format!("<skrot xmlns=\"\">{}</skrot>", escape(d)));
    }
    body.push_str(&format!("</{element}>"));
    body
}

/// `skrot` for `potwierdzOdebranie`: Base64(SHA-1(decoded `dokument/zawartosc`)).
pub fn confirmation_digest(content: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(content))
}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    /// ePUAP answered a SOAP Fault (`Wyjatek` with its code when present).
    #[error("SOAP fault {faultcode}: {faultstring} (Wyjatek {kod:?}: {komunikat:?})")]
    Fault {
        faultcode: String,
        faultstring: String,
        kod: Option<i32>,
        komunikat: Option<String>,
    },
    /// A status other than OK (or empty for `pobierzNastepny`).
    #[error("status {kod}: {komunikat}")]
    Status { kod: i32, komunikat: String },
    /// Not the answer the operation has.
    #[error("unexpected answer: {0}")]
    Malformed(String),
}

/// A document taken from the head of a box (not yet confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledDocument {
    pub file_name: String,
    pub mime_type: Option<String>,
    pub content: Vec<u8>,
    /// `dataNadania` as sent (ISO-8601 with offset).
    pub sent_at: Option<String>,
    pub box_address: Option<String>,
    pub reply_address: Option<String>,
    pub test: bool,
    pub sender_login: Option<String>,
    pub sender_system: Option<String>,
    pub subject_id: Option<String>,
    pub subject_kind: Option<String>,
    pub subject_first_name: Option<String>,
    pub subject_surname: Option<String>,
    pub subject_pesel: Option<String>,
    pub subject_nip: Option<String>,
    pub subject_consent: Option<bool>,
    /// `IdentyfikatorDokumentu` from `daneDodatkowe` (the last one, as the Sejm client reads it).
    pub epuap_document_id: Option<String>,
}

impl PulledDocument {
    pub fn digest(&self) -> String {
        confirmation_digest(&self.content)
    }
}

fn parse_xml(xml: &str) -> Result<roxmltree::Document<'_>, PullError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 5_000_000,
    };
    roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| PullError::Malformed(e.to_string()))
}

/// The Body's single element (or the fault it carries).
fn body_element<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> Result<roxmltree::Node<'a, 'i>, PullError> {
    let env = doc.root_element();
    if !env.has_tag_name((SOAP_NS, "Envelope")) {
        return Err(PullError::Malformed("not a SOAP 1.1 envelope".into()));
    }
    let body = env
        .children()
        .find(|c| c.is_element() && c.has_tag_name((SOAP_NS, "Body")))
        .ok_or_else(|| PullError::Malformed("no soapenv:Body".into()))?;
    let first = body
        .children()
        .find(|c| c.is_element())
        .ok_or_else(|| PullError::Malformed("empty soapenv:Body".into()))?;
    if first.has_tag_name((SOAP_NS, "Fault")) {
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

fn expect<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Result<(), PullError> {
    if n.has_tag_name((OBIEKTY_NS, name)) {
        Ok(())
    } else {
        Err(PullError::Malformed(format!(
            "expected {name}, got {}",
            n.tag_name().name()
        )))
    }
}

fn local<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn local_text(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    local(n, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn status(n: roxmltree::Node<'_, '_>) -> Result<(i32, String), PullError> {
    let s = local(n, "status").ok_or_else(|| PullError::Malformed("no status".into()))?;
    let kod = local_text(s, "kod")
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| PullError::Malformed("status without a numeric kod".into()))?;
    Ok((kod, local_text(s, "komunikat").unwrap_or_default()))
}

/// `oczekujaceDokumenty`: how many documents wait in the box.
pub fn parse_pending(xml: &str) -> Result<u32, PullError> {
    let doc = parse_xml(xml)?;
    let n = body_element(&doc)?;
    expect(n, "OdpowiedzPullOczekujace")?;
    let (kod, komunikat) = status(n)?;
    if kod != STATUS_OK {
        return Err(PullError::Status { kod, komunikat });
    }
    local_text(n, "oczekujace")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| PullError::Malformed("no numeric oczekujace".into()))
}

/// `pobierzNastepny`: the head of the box, or `None` when it is empty.
pub fn parse_next(xml: &str) -> Result<Option<PulledDocument>, PullError> {
    let doc = parse_xml(xml)?;
    let n = body_element(&doc)?;
    expect(n, "OdpowiedzPullPobierz")?;
    let (kod, komunikat) = status(n)?;
    if kod == STATUS_EMPTY {
        return Ok(None);
    }
    if kod != STATUS_OK {
        return Err(PullError::Status { kod, komunikat });
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let dokument =
        local(n, "dokument").ok_or_else(|| PullError::Malformed("no dokument".into()))?;
    let content_text: String = local(dokument, "zawartosc")
        .and_then(|z| z.text())
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let content = b64
        .decode(content_text.as_bytes())
        .map_err(|e| PullError::Malformed(format!("dokument/zawartosc is not base64: {e}")))?;
    let subject = local(n, "danePodmiotu");
    let sender = local(n, "daneNadawcy");
    let extra_id = local_text(n, "daneDodatkowe")
        .and_then(|t| b64.decode(t.split_whitespace().collect::<String>()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|x| {
            let d = parse_xml(&x).ok()?;
            d.descendants()
                .filter(|e| e.is_element() && e.tag_name().name() == "IdentyfikatorDokumentu")
                .filter_map(|e| e.text().map(|t| t.trim().to_owned()))
                .next_back()
        });
    let sub = |name: &str| subject.and_then(|s| local_text(s, name));
    Ok(Some(PulledDocument {
        file_name: local_text(dokument, "nazwaPliku").unwrap_or_else(|| "dokument.xml".into()),
        mime_type: local_text(dokument, "typPliku"),
        content,
        sent_at: local_text(n, "dataNadania"),
        box_address: local_text(n, "adresSkrytki"),
        reply_address: local_text(n, "adresOdpowiedzi"),
        test: local_text(n, "czyTestowe").is_some_and(|t| t == "true" || t == "1"),
        sender_login: sender.and_then(|s| local_text(s, "uzytkownik")),
        sender_system: sender.and_then(|s| local_text(s, "system")),
        subject_id: sub("identyfikator"),
        subject_kind: sub("typOsoby"),
        subject_first_name: sub("imieSkrot"),
        subject_surname: sub("nazwiskoNazwa"),
        subject_pesel: sub("pesel"),
        subject_nip: sub("nip"),
        subject_consent: sub("zgoda").map(|z| z == "true" || z == "1"),
        epuap_document_id: extra_id,
    }))
}

/// `potwierdzOdebranie`: Ok when the box removed the document.
pub fn parse_confirm(xml: &str) -> Result<(), PullError> {
    let doc = parse_xml(xml)?;
    let n = body_element(&doc)?;
    expect(n, "OdpowiedzPullPotwierdz")?;
    let (kod, komunikat) = status(n)?;
    if kod != STATUS_OK {
        return Err(PullError::Status { kod, komunikat });
    }
    Ok(())
}
