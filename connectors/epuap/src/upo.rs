//! Official receipts: UPP (Urzędowe Poświadczenie Przedłożenia, issued when a document is
//! handed in) and UPD (Urzędowe Poświadczenie Doręczenia/Odbioru, issued when the addressee
//! receives a `dorecz` shipment), spec §2.4, namespace
//! `http://crd.gov.pl/xml/schematy/UPO/2008/05/09/`.
//!
//! ```text
//! pos:Dokument
//!   pos:UPP | pos:UPD
//!     pos:IdentyfikatorPoswiadczenia
//!     pos:Adresat/{pos:Nazwa, pos:IdentyfikatorPodmiotu @TypIdentyfikatora}
//!     pos:Nadawca (UPP) | pos:PodmiotWystawiajacyPoswiadczenie (UPD)
//!     pos:DataDoreczenia (UPP) | pos:DataOdbioru (UPD)
//!     pos:DataWytworzeniaPoswiadczenia (UPP) | pos:DataUtworzeniaPoswiadczenia (UPD)
//!     pos:IdentyfikatorDokumentu, pos:IdentyfikatorSprawy (UPD)
//!     pos:InformacjaUzupelniajaca* @TypInformacjiUzupelniajacej
//!   ds:Signature
//! ```
//!
//! No XSD and no real instance were found (§5), so reading is tolerant where the sources
//! disagree or are silent: the attributes are accepted qualified (`pos:`, as OMB's model
//! declares them) and unqualified; the creation-date element is accepted under either name;
//! a `pos:UPP`/`pos:UPD` root without the `pos:Dokument` wrapper is accepted. Dates are kept
//! as written. The `ds:Signature` is only noted here ([`Poswiadczenie::signed`]); verifying it
//! is the caller's business. Documents with a DOCTYPE are refused (roxmltree with DTDs off).

/// The UPO namespace.
pub const UPO_NS: &str = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Which receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Urzędowe Poświadczenie Przedłożenia (`pos:UPP`).
    Upp,
    /// Urzędowe Poświadczenie Doręczenia / Odbioru (`pos:UPD`).
    Upd,
}

/// A party named in a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// `Nazwa`.
    pub name: Option<String>,
    /// `IdentyfikatorPodmiotu`.
    pub id: Option<String>,
    /// `IdentyfikatorPodmiotu/@TypIdentyfikatora`.
    pub id_type: Option<String>,
}

/// One UPP or UPD, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poswiadczenie {
    pub kind: Kind,
    /// `IdentyfikatorPoswiadczenia`.
    pub id: String,
    /// `IdentyfikatorDokumentu` (for a UPD: the id the sender gave in `dorecz`).
    pub document_id: Option<String>,
    /// `IdentyfikatorSprawy` (UPD).
    pub case_id: Option<String>,
    /// `Adresat`.
    pub addressee: Option<Party>,
    /// `Nadawca` (UPP) or `PodmiotWystawiajacyPoswiadczenie` (UPD).
    pub sender_or_issuer: Option<Party>,
    /// `DataDoreczenia` (UPP) or `DataOdbioru` (UPD), as written.
    pub delivered_at: Option<String>,
    /// `DataWytworzeniaPoswiadczenia` / `DataUtworzeniaPoswiadczenia`, as written.
    pub created_at: Option<String>,
    /// `InformacjaUzupelniajaca`: (`TypInformacjiUzupelniajacej`, text), in order.
    pub extra: Vec<(String, String)>,
    /// The document carries a `ds:Signature` (not verified here).
    pub signed: bool,
}

/// Why a document could not be read as a UPP/UPD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpoError {
    /// The document has a DOCTYPE declaration (refused: entity expansion, external entities).
    #[error("the UPO document has a DOCTYPE declaration, which is refused")]
    Doctype,
    /// Not well-formed XML (or not UTF-8).
    #[error("the UPO document is not well-formed XML: {0}")]
    Malformed(String),
    /// Well-formed, but not a UPP or UPD in the UPO namespace.
    #[error("not a UPP/UPD: {0}")]
    NotUpo(String),
    /// A required element is missing.
    #[error("the {kind:?} has no {element}")]
    Missing { kind: Kind, element: &'static str },
}

type Node<'a, 'i> = roxmltree::Node<'a, 'i>;

fn pos_child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.has_tag_name((UPO_NS, name)))
}

fn pos_text(n: Node<'_, '_>, name: &str) -> Option<String> {
    pos_child(n, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// An attribute named `local`, unqualified or in the UPO namespace.
fn pos_attr(n: Node<'_, '_>, local: &str) -> Option<String> {
    n.attributes()
        .find(|a| a.name() == local && matches!(a.namespace(), None | Some(UPO_NS)))
        .map(|a| a.value().trim().to_owned())
}

fn party(n: Node<'_, '_>, name: &str) -> Option<Party> {
    let p = pos_child(n, name)?;
    let id_node = pos_child(p, "IdentyfikatorPodmiotu");
    Some(Party {
        name: pos_text(p, "Nazwa"),
        id: id_node
            .and_then(|i| i.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
        id_type: id_node.and_then(|i| pos_attr(i, "TypIdentyfikatora")),
    })
}

/// Reads a UPP or UPD.
pub fn read(xml: &[u8]) -> Result<Poswiadczenie, UpoError> {
    let text =
        std::str::from_utf8(xml).map_err(|e| UpoError::Malformed(format!("not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => UpoError::Doctype,
        e => UpoError::Malformed(e.to_string()),
    })?;
    let root = doc.root_element();
    let (kind, body) = if root.has_tag_name((UPO_NS, "Dokument")) {
        if let Some(b) = pos_child(root, "UPP") {
            (Kind::Upp, b)
        } else if let Some(b) = pos_child(root, "UPD") {
            (Kind::Upd, b)
        } else {
            return Err(UpoError::NotUpo(
                "pos:Dokument holds neither pos:UPP nor pos:UPD".into(),
            ));
        }
    } else if root.has_tag_name((UPO_NS, "UPP")) {
        (Kind::Upp, root)
    } else if root.has_tag_name((UPO_NS, "UPD")) {
        (Kind::Upd, root)
    } else {
        return Err(UpoError::NotUpo(format!(
            "the root element is {{{}}}{}",
            root.tag_name().namespace().unwrap_or(""),
            root.tag_name().name()
        )));
    };
    let id = pos_text(body, "IdentyfikatorPoswiadczenia").ok_or(UpoError::Missing {
        kind,
        element: "IdentyfikatorPoswiadczenia",
    })?;
    let (sender, delivered) = match kind {
        Kind::Upp => ("Nadawca", "DataDoreczenia"),
        Kind::Upd => ("PodmiotWystawiajacyPoswiadczenie", "DataOdbioru"),
    };
    let extra = body
        .children()
        .filter(|c| c.is_element() && c.has_tag_name((UPO_NS, "InformacjaUzupelniajaca")))
        .map(|c| {
            (
                pos_attr(c, "TypInformacjiUzupelniajacej").unwrap_or_default(),
                c.text().map(|t| t.trim().to_owned()).unwrap_or_default(),
            )
        })
        .collect();
    Ok(Poswiadczenie {
        kind,
        id,
        document_id: pos_text(body, "IdentyfikatorDokumentu"),
        case_id: pos_text(body, "IdentyfikatorSprawy"),
        addressee: party(body, "Adresat"),
        sender_or_issuer: party(body, sender),
        delivered_at: pos_text(body, delivered),
        created_at: pos_text(body, "DataWytworzeniaPoswiadczenia")
            .or_else(|| pos_text(body, "DataUtworzeniaPoswiadczenia")),
        extra,
        signed: doc
            .descendants()
            .any(|n| n.is_element() && n.has_tag_name((DSIG_NS, "Signature"))),
    })
}

/// Whether the document's root element is in the UPO namespace, told from its start tag
/// alone (no full parse): how a UPP/UPD is recognised among the documents pulled from a box.
/// A document with a DOCTYPE is never a UPO here.
pub fn is_upo(xml: &[u8]) -> bool {
    let Some(tag) = root_start_tag(xml) else {
        return false;
    };
    let Ok(tag) = std::str::from_utf8(tag) else {
        return false;
    };
    let mut parts = tag.splitn(2, |c: char| c.is_ascii_whitespace() || c == '/');
    let name = parts.next().unwrap_or("");
    let attrs = parts.next().unwrap_or("");
    let prefix = name.split_once(':').map(|(p, _)| p);
    let wanted = match prefix {
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".to_owned(),
    };
    attributes(attrs).any(|(k, v)| k == wanted && v == UPO_NS)
}

/// The bytes between `<` and `>` of the root element's start tag, skipping the XML
/// declaration, comments, processing instructions and whitespace; `None` on a DOCTYPE or
/// anything else.
fn root_start_tag(xml: &[u8]) -> Option<&[u8]> {
    let mut rest = xml.strip_prefix(b"\xef\xbb\xbf").unwrap_or(xml);
    loop {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        rest = &rest[start..];
        if rest.starts_with(b"<?") {
            rest = &rest[find(rest, b"?>")? + 2..];
        } else if rest.starts_with(b"<!--") {
            rest = &rest[find(rest, b"-->")? + 3..];
        } else if rest.starts_with(b"<!") || !rest.starts_with(b"<") {
            return None;
        } else {
            let end = tag_end(rest)?;
            return Some(&rest[1..end]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Index of the `>` closing the tag that starts at 0, skipping quoted attribute values.
fn tag_end(s: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in s.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return Some(i),
            None => {}
        }
    }
    None
}

/// `name="value"` pairs of a start tag's attribute text (values not unescaped: namespace
/// URIs compared here have nothing to escape).
fn attributes(s: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let q = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let close = after[1..].find(q)?;
        let value = &after[1..1 + close];
        rest = &after[close + 2..];
        Some((name, value))
    })
}
