//! CRD documents as residents send them through ePUAP (spec §2): the form "Pismo ogólne do
//! podmiotu publicznego" in detail, any other form generically.
//!
//! Reading never throws a letter away. What cannot be understood is recorded as a
//! [`Problem`] on the parsed letter, which is still returned; only input that is not XML at
//! all, or XML with a DOCTYPE (refused: entity expansion and external entities are an attack
//! surface, and no CRD form uses a DTD), is an error — and even then the caller keeps the raw
//! bytes. Nothing here logs: letters are personal data.
//!
//! The signature itself (XAdES, podpis zaufany) is verified elsewhere; this module only counts
//! the `ds:Signature` elements and reads the identity a podpis zaufany claims, so the caller
//! can compare it with the verified signer.

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Namespace of the form "Pismo ogólne do podmiotu publicznego".
pub const PISMO_OGOLNE_NS: &str = "http://crd.gov.pl/wzor/2013/12/12/1410/";
const META: &str = "http://crd.gov.pl/xml/schematy/meta/2009/11/16/";
const STR: &str = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/";
const ADR: &str = "http://crd.gov.pl/xml/schematy/adres/2009/11/09/";
const OSO: &str = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/";
const INST: &str = "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const PPZP: &str = "http://crd.gov.pl/xml/schematy/ppzp/";
const PPZP_OSOBA: &str = "http://crd.gov.pl/xml/schematy/osoba/2009/03/06/";
const EPSIG: &str = "http://crd.gov.pl/xml/schematy/podpis_zaufany/";

/// How large one attachment may be before it is refused (kept as a problem, not decoded).
pub const DEFAULT_MAX_ATTACHMENT_BYTES: usize = 50 * 1024 * 1024;

/// Input that is not a readable XML document at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("line {line}, column {column}: not well-formed XML: {reason}")]
    Malformed {
        line: u32,
        column: u32,
        reason: String,
    },
    #[error("the document declares a DOCTYPE; CRD documents have none and DTDs are refused")]
    Doctype,
}

/// Something in a document that could not be read as the form says; the letter is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: an element path such as `TrescDokumentu/Zalaczniki/Zalacznik[2]`.
    pub at: String,
    pub what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Person,
    Institution,
}

/// A sender or addressee as the document names it (claims, not verified identity).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Party {
    pub kind: Option<PartyKind>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pesel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Address lines as written (street, building/flat, postcode and town).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// An attachment with its content decoded (`kodowanie="base64"`) or its FileRepo link
/// (`kodowanie="URI"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub name: String,
    pub mime_type: Option<String>,
    pub description: Option<String>,
    /// SHA-256 (hex) of the decoded content; `None` when it could not be decoded or is a link.
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    /// For `kodowanie="URI"`: where ePUAP's file repository holds it.
    pub uri: Option<String>,
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
}

/// The identity a podpis zaufany claims in `xades:ClaimedRole` (old `PodpisZP` or new
/// `EPSignature` form). The signing certificate of a PZ signature is COI's, so this is the
/// only place the person's identity is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedProfileClaim {
    pub form: &'static str,
    pub first_name: Option<String>,
    pub surname: Option<String>,
    pub pesel: Option<String>,
    pub epuap_login: Option<String>,
}

/// What a CRD document says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParsedDocument {
    /// Namespace of the root element: identifies the form (wzór).
    pub form_namespace: String,
    /// `str:NazwaDokumentu`, e.g. "Pismo ogólne do podmiotu publicznego".
    pub form_name: Option<String>,
    pub created: Option<String>,
    pub place: Option<String>,
    pub title: Option<String>,
    /// `RodzajWnioskuRozszerzony/@rodzaj` (and `@jakiInny` when "inne").
    pub kind: Option<String>,
    /// The letter's text: `Informacje/Informacja` paragraphs joined by blank lines (for other
    /// forms, all text of the content element).
    pub body: String,
    pub senders: Vec<Party>,
    pub addressees: Vec<Party>,
    /// The name in `wnio:Podpis` (who signs the letter, as typed).
    pub signed_as: Option<String>,
    pub attachments: Vec<Attachment>,
    /// `ds:Signature` elements directly under the root.
    pub signatures: usize,
    pub trusted_profile_claims: Vec<TrustedProfileClaim>,
    pub problems: Vec<Problem>,
}

/// Reads a CRD document. `max_attachment_bytes` bounds each decoded attachment.
pub fn parse(xml: &[u8], max_attachment_bytes: usize) -> Result<ParsedDocument, DocumentError> {
    let text = match std::str::from_utf8(xml) {
        Ok(t) => t,
        Err(e) => {
            return Err(DocumentError::Malformed {
                line: 1,
                column: 1,
                reason: format!("not UTF-8 at byte {}", e.valid_up_to()),
            })
        }
    };
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 5_000_000,
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => DocumentError::Doctype,
        other => {
            let pos = other.pos();
            DocumentError::Malformed {
                line: pos.row,
                column: pos.col,
                reason: other.to_string(),
            }
        }
    })?;
    let root = doc.root_element();
    let mut out = ParsedDocument {
        form_namespace: root.tag_name().namespace().unwrap_or_default().to_owned(),
        ..ParsedDocument::default()
    };
    out.signatures = children(root, DS, "Signature").count();
    for sig in children(root, DS, "Signature") {
        out.trusted_profile_claims.extend(claims(sig));
    }
    out.form_name = descendant(root, STR, "NazwaDokumentu").and_then(text_of);
    out.created = descendant(root, META, "Czas").and_then(text_of);
    if let Some(h) = descendant(root, STR, "Adresaci") {
        out.addressees = parties(h);
    }
    if let Some(h) = descendant(root, STR, "Nadawcy") {
        out.senders = parties(h);
    }
    let ns = out.form_namespace.clone();
    let content = child(root, &ns, "TrescDokumentu");
    match content {
        Some(c) if ns == PISMO_OGOLNE_NS => read_pismo_ogolne(c, &mut out),
        Some(c) => {
            out.body = all_text(c);
            out.problems.push(Problem {
                at: "Dokument".into(),
                what: format!(
                    "form {ns:?} is read generically (title and body are not told apart)"
                ),
            });
        }
        None => out.problems.push(Problem {
            at: "Dokument".into(),
            what: "no TrescDokumentu: the document has no content element".into(),
        }),
    }
    if let Some(z) = descendant(root, STR, "Zalaczniki") {
        for (i, a) in children(z, STR, "Zalacznik").enumerate() {
            out.attachments.push(attachment(
                a,
                i + 1,
                max_attachment_bytes,
                &mut out.problems,
            ));
        }
    }
    if out.senders.is_empty() {
        out.problems.push(Problem {
            at: "DaneDokumentu/Nadawcy".into(),
            what: "the document names no sender".into(),
        });
    }
    if out.signatures == 0 {
        out.problems.push(Problem {
            at: "Dokument".into(),
            what: "the document is not signed (no ds:Signature)".into(),
        });
    }
    Ok(out)
}

fn read_pismo_ogolne(c: roxmltree::Node<'_, '_>, out: &mut ParsedDocument) {
    let ns = PISMO_OGOLNE_NS;
    out.place = child(c, ns, "MiejscowoscDokumentu").and_then(text_of);
    out.title = child(c, ns, "Tytul").and_then(text_of);
    if out.title.is_none() {
        out.problems.push(Problem {
            at: "TrescDokumentu/Tytul".into(),
            what: "the letter has no title".into(),
        });
    }
    out.kind = child(c, ns, "RodzajWnioskuRozszerzony").and_then(|r| {
        let rodzaj = r.attribute("rodzaj")?.trim().to_owned();
        // The CRD stylesheet reads `jakiInny`; one widespread client writes `jakisInny`.
        let other = r
            .attribute("jakiInny")
            .or_else(|| r.attribute("jakisInny"))
            .map(str::trim)
            .filter(|s| !s.is_empty());
        Some(match other {
            Some(o) => format!("{rodzaj}: {o}"),
            None => rodzaj,
        })
    });
    let paragraphs: Vec<String> = child(c, ns, "Informacje")
        .map(|i| children(i, ns, "Informacja").filter_map(text_of).collect())
        .unwrap_or_default();
    out.body = paragraphs.join("\n\n");
    out.signed_as = child(c, ns, "Podpis").map(|p| {
        [
            descendant(p, OSO, "Imie"),
            descendant(p, OSO, "ImieDrugie"),
            descendant(p, OSO, "Nazwisko"),
        ]
        .into_iter()
        .flatten()
        .filter_map(text_of)
        .collect::<Vec<_>>()
        .join(" ")
    });
}

fn attachment(
    a: roxmltree::Node<'_, '_>,
    index: usize,
    max_bytes: usize,
    problems: &mut Vec<Problem>,
) -> Attachment {
    let at = format!("Zalaczniki/Zalacznik[{index}]");
    let name = a
        .attribute("nazwaPliku")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            problems.push(Problem {
                at: at.clone(),
                what: "no nazwaPliku; named by position".into(),
            });
            format!("zalacznik-{index}")
        });
    let mut out = Attachment {
        name,
        mime_type: a.attribute("format").map(str::to_owned),
        description: child(a, STR, "OpisZalacznika").and_then(text_of),
        sha256: None,
        size_bytes: None,
        uri: None,
        content: None,
    };
    let data: String = child(a, STR, "DaneZalacznika")
        .map(all_text)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    match a.attribute("kodowanie").unwrap_or("base64") {
        "URI" => out.uri = Some(data),
        "base64" => {
            // Decoded size is at most 3/4 of the text: refuse before decoding a huge one.
            if data.len() / 4 * 3 > max_bytes {
                problems.push(Problem {
                    at,
                    what: format!(
                        "attachment {:?} is larger than the limit of {max_bytes} bytes; not decoded",
                        out.name
                    ),
                });
                return out;
            }
            match base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) {
                Ok(bytes) => {
                    out.sha256 = Some(hex::encode(Sha256::digest(&bytes)));
                    out.size_bytes = Some(bytes.len() as u64);
                    out.content = Some(bytes);
                }
                Err(e) => problems.push(Problem {
                    at,
                    what: format!("attachment {:?}: content is not base64 ({e})", out.name),
                }),
            }
        }
        other => problems.push(Problem {
            at,
            what: format!("attachment {:?}: unknown kodowanie {other:?}", out.name),
        }),
    }
    out
}

fn parties(holder: roxmltree::Node<'_, '_>) -> Vec<Party> {
    children(holder, META, "Podmiot")
        .map(|p| {
            if let Some(o) = child(p, OSO, "Osoba") {
                let name = [
                    child(o, OSO, "Imie"),
                    child(o, OSO, "ImieDrugie"),
                    child(o, OSO, "Nazwisko"),
                ]
                .into_iter()
                .flatten()
                .filter_map(text_of)
                .collect::<Vec<_>>()
                .join(" ");
                let id = child(o, OSO, "IdOsoby");
                Party {
                    kind: Some(PartyKind::Person),
                    name,
                    pesel: id.and_then(|i| child(i, OSO, "PESEL")).and_then(text_of),
                    nip: id.and_then(|i| child(i, OSO, "NIP")).and_then(text_of),
                    regon: None,
                    email: descendant(o, ADR, "Email").and_then(text_of),
                    address: child(o, ADR, "Adres").map(address),
                }
            } else if let Some(i) = child(p, INST, "Instytucja") {
                let id = child(i, INST, "IdInstytucji");
                Party {
                    kind: Some(PartyKind::Institution),
                    name: child(i, INST, "NazwaInstytucji")
                        .and_then(text_of)
                        .unwrap_or_default(),
                    pesel: None,
                    nip: id.and_then(|x| child(x, INST, "NIP")).and_then(text_of),
                    regon: id.and_then(|x| child(x, INST, "REGON")).and_then(text_of),
                    email: descendant(i, ADR, "Email").and_then(text_of),
                    address: child(i, ADR, "Adres").map(address),
                }
            } else {
                Party {
                    name: all_text(p),
                    ..Party::default()
                }
            }
        })
        .collect()
}

fn address(a: roxmltree::Node<'_, '_>) -> String {
    let f = |n: &str| child(a, ADR, n).and_then(text_of);
    let street = [f("Ulica"), f("Budynek")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let street = match f("Lokal") {
        Some(l) if !street.is_empty() => format!("{street}/{l}"),
        _ => street,
    };
    let town = [f("KodPocztowy"), f("Miejscowosc").or_else(|| f("Poczta"))]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    [street, town]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Podpis zaufany identities in a signature's `xades:ClaimedRole` elements.
fn claims(sig: roxmltree::Node<'_, '_>) -> Vec<TrustedProfileClaim> {
    let mut out = Vec::new();
    for n in sig.descendants().filter(|n| n.is_element()) {
        let (ns, name) = (n.tag_name().namespace(), n.tag_name().name());
        if ns == Some(PPZP) && name == "PodpisZP" {
            let person = descendant(n, PPZP, "DaneZPOsobyFizycznej");
            let get = |ns: &str, el: &str| person.and_then(|p| child(p, ns, el)).and_then(text_of);
            out.push(TrustedProfileClaim {
                form: "PodpisZP",
                first_name: get(PPZP_OSOBA, "Imie"),
                surname: get(PPZP_OSOBA, "Nazwisko"),
                pesel: get(PPZP_OSOBA, "PESEL"),
                epuap_login: get(PPZP, "IdKontaUzytkownikaEpuap"),
            });
        } else if ns == Some(EPSIG) && name == "EPSignature" {
            let person = child(n, EPSIG, "NaturalPerson");
            let get = |el: &str| person.and_then(|p| child(p, EPSIG, el)).and_then(text_of);
            out.push(TrustedProfileClaim {
                form: "EPSignature",
                first_name: get("FirstName"),
                surname: get("CurrentFamilyName"),
                pesel: get("PersonalIdentifier"),
                epuap_login: None,
            });
        }
    }
    out
}

fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.has_tag_name((ns, name)))
}

fn children<'a, 'i: 'a>(
    n: roxmltree::Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    n.children()
        .filter(move |c| c.is_element() && c.has_tag_name((ns, name)))
}

fn descendant<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.descendants()
        .find(|c| c.is_element() && c.has_tag_name((ns, name)))
}

/// The element's text, trimmed; `None` when empty.
fn text_of(n: roxmltree::Node<'_, '_>) -> Option<String> {
    let t = all_text(n);
    (!t.is_empty()).then_some(t)
}

fn all_text(n: roxmltree::Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect::<String>()
        .trim()
        .to_owned()
}
