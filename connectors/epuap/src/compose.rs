//! Writing the CRD form "Pismo ogólne do podmiotu publicznego" (spec §2.1–§2.2) for a letter
//! a resident files through GSKO: the document PZ has the resident sign and that then goes to
//! the municipality's box (or straight to EZD).
//!
//! The output is what [`crate::document::parse`] reads back with no problem other than the
//! missing signature: the namespaces and prefixes of §2.1, the element tree of §2.2 in the
//! order the CRD stylesheet renders it, attachments base64-encoded as `str:Zalacznik`. Every
//! text and attribute is escaped; characters XML 1.0 cannot carry at all (control characters
//! other than tab and line breaks) become U+FFFD, so the document is always well-formed. No
//! DOCTYPE, ever (readers refuse it).

use base64::Engine as _;

use crate::document::PISMO_OGOLNE_NS;

const META: &str = "http://crd.gov.pl/xml/schematy/meta/2009/11/16/";
const STR: &str = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/";
const ADR: &str = "http://crd.gov.pl/xml/schematy/adres/2009/11/09/";
const OSO: &str = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/";
const INST: &str = "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/";
/// The name the form gives itself in `str:NazwaDokumentu`.
pub const FORM_NAME: &str = "Pismo ogólne do podmiotu publicznego";

/// A postal address (`adr:Adres`); every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostalAddress {
    pub street: Option<String>,
    pub building: Option<String>,
    pub flat: Option<String>,
    pub postal_code: Option<String>,
    pub town: Option<String>,
}

/// The resident who writes (`oso:Osoba` in `str:Nadawcy`, and the name under the letter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sender {
    pub first_name: String,
    pub surname: String,
    pub pesel: Option<String>,
    pub address: Option<PostalAddress>,
}

/// One attachment, embedded in the document (`kodowanie="base64"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeAttachment {
    pub name: String,
    pub mime_type: String,
    pub content: Vec<u8>,
    pub description: Option<String>,
}

/// What the letter says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PismoOgolne {
    /// The office written to (`inst:NazwaInstytucji`), e.g. "Urząd Gminy Nowogrodziec".
    pub addressee: String,
    pub sender: Sender,
    /// `wnio:MiejscowoscDokumentu`.
    pub place: String,
    /// The date the letter is written (`meta:Czas`, `YYYY-MM-DD`).
    pub date: chrono::NaiveDate,
    pub title: String,
    /// `RodzajWnioskuRozszerzony/@rodzaj`, e.g. "wniosek", "skarga", "inne pismo".
    pub kind: String,
    /// The letter's text, one `wnio:Informacja` per paragraph.
    pub paragraphs: Vec<String>,
    pub attachments: Vec<ComposeAttachment>,
}

/// Splits a text into the paragraphs a letter keeps: CR LF and lone CR become LF (XML would
/// turn them so anyway), blank lines separate paragraphs, each paragraph is trimmed and empty
/// ones are dropped. `paragraphs(t).join("\n\n")` is what [`crate::document::parse`] reads back
/// as the body.
pub fn paragraphs(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(current.join("\n").trim().to_owned());
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current.join("\n").trim().to_owned());
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The document, UTF-8, with the CRD stylesheet processing instruction.
pub fn pismo_ogolne(p: &PismoOgolne) -> Vec<u8> {
    let mut x = String::with_capacity(
        4096 + p
            .attachments
            .iter()
            .map(|a| a.content.len() * 4 / 3 + 256)
            .sum::<usize>(),
    );
    let date = p.date.format("%Y-%m-%d").to_string();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<?xml-stylesheet type=\"text/xsl\" href=\"{PISMO_OGOLNE_NS}styl.xsl\"?>"
    ));
    x.push('\n');
    x.push_str(&format!("<wnio:Dokument xmlns:wnio=\"{PISMO_OGOLNE_NS}\" xmlns:meta=\"{META}\" xmlns:str=\"{STR}\" xmlns:adr=\"{ADR}\" xmlns:oso=\"{OSO}\" xmlns:inst=\"{INST}\">"));
    x.push_str(&format!("<wnio:OpisDokumentu><meta:Data typDaty=\"stworzony\"><meta:Czas>{date}</meta:Czas></meta:Data></wnio:OpisDokumentu>"));
    x.push_str("<wnio:DaneDokumentu>");
    x.push_str(&format!(
        "<str:Naglowek><str:NazwaDokumentu>{}</str:NazwaDokumentu></str:Naglowek>",
        text(FORM_NAME)
    ));
    x.push_str(&format!(
        "<meta:Data typDaty=\"stworzony\"><meta:Czas>{date}</meta:Czas></meta:Data>"
    ));
    x.push_str(&format!("<str:Adresaci><meta:Podmiot><inst:Instytucja><inst:NazwaInstytucji>{}</inst:NazwaInstytucji></inst:Instytucja></meta:Podmiot></str:Adresaci>",
        text(&p.addressee)));
    x.push_str("<str:Nadawcy><meta:Podmiot><oso:Osoba>");
    element(&mut x, "oso:Imie", &p.sender.first_name);
    element(&mut x, "oso:Nazwisko", &p.sender.surname);
    if let Some(a) = &p.sender.address {
        address(&mut x, a);
    }
    if let Some(pesel) = &p.sender.pesel {
        x.push_str("<oso:IdOsoby>");
        element(&mut x, "oso:PESEL", pesel);
        x.push_str("</oso:IdOsoby>");
    }
    x.push_str("</oso:Osoba></meta:Podmiot></str:Nadawcy>");
    x.push_str("</wnio:DaneDokumentu>");

    x.push_str("<wnio:TrescDokumentu format=\"text/xml\" kodowanie=\"XML\">");
    element(&mut x, "wnio:MiejscowoscDokumentu", &p.place);
    element(&mut x, "wnio:Tytul", &p.title);
    x.push_str(&format!(
        "<wnio:RodzajWnioskuRozszerzony rodzaj=\"{}\" jakiInny=\"\"/>",
        attribute(&p.kind)
    ));
    x.push_str("<wnio:Informacje>");
    for para in &p.paragraphs {
        element(&mut x, "wnio:Informacja", para);
    }
    x.push_str("</wnio:Informacje>");
    x.push_str("<wnio:Podpis>");
    element(&mut x, "oso:Imie", &p.sender.first_name);
    element(&mut x, "oso:Nazwisko", &p.sender.surname);
    x.push_str("</wnio:Podpis>");
    if !p.attachments.is_empty() {
        x.push_str("<str:Zalaczniki>");
        for a in &p.attachments {
            x.push_str(&format!("<str:Zalacznik format=\"{}\" kodowanie=\"base64\" nazwaPliku=\"{}\"><str:DaneZalacznika>",
                attribute(&a.mime_type),
                attribute(&a.name)));
            base64::engine::general_purpose::STANDARD.encode_string(&a.content, &mut x);
            x.push_str("</str:DaneZalacznika>");
            if let Some(d) = a.description.as_deref().filter(|d| !d.trim().is_empty()) {
                element(&mut x, "str:OpisZalacznika", d);
            }
            x.push_str("</str:Zalacznik>");
        }
        x.push_str("</str:Zalaczniki>");
    }
    x.push_str("</wnio:TrescDokumentu>");
    x.push_str("</wnio:Dokument>");
    x.into_bytes()
}

fn address(x: &mut String, a: &PostalAddress) {
    x.push_str("<adr:Adres>");
    for (name, value) in [
        ("adr:KodPocztowy", &a.postal_code),
        ("adr:Miejscowosc", &a.town),
        ("adr:Ulica", &a.street),
        ("adr:Budynek", &a.building),
        ("adr:Lokal", &a.flat),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            element(x, name, v);
        }
    }
    x.push_str("</adr:Adres>");
}

fn element(x: &mut String, name: &str, value: &str) {
    x.push_str(&format!("<{name}>{}</{name}>", text(value)));
}

/// A character XML 1.0 can carry (escaped or not).
fn xml_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
        c => c,
    }
}

/// Escapes element content. `\r` is written as a reference so that it survives the parser's
/// line-end normalization.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(xml_char) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value (double-quoted); whitespace characters as references, since a
/// parser normalizes literal ones to spaces.
fn attribute(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(xml_char) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}
