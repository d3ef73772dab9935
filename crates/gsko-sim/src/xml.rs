//! The few XML primitives the simulators share: escaping for the XML they write by hand, and a
//! namespace-resolved element tree over quick-xml for the requests they read. Written here,
//! not taken from GSKO's own XML code, because a simulator must share no protocol code with the
//! connector it tests.

use std::io::{self, Write};

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Writes `s` as XML character data or an attribute value (both quote kinds escaped, so the
/// same function serves text and `"…"` attributes). Tab/CR/LF become character references so
/// that attribute-value normalisation cannot change them. Characters XML 1.0 forbids (other C0
/// controls, U+FFFE/U+FFFF) are replaced by U+FFFD: such a file would not be well-formed at all.
pub(crate) fn escape(w: &mut impl Write, s: &str) -> io::Result<()> {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0..=0x1f | 0xef))
    {
        return w.write_all(bytes);
    }
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: Option<&str> = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' => Some("&quot;"),
            '\'' => Some("&apos;"),
            '\t' => Some("&#9;"),
            '\n' => Some("&#10;"),
            '\r' => Some("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => Some("\u{fffd}"),
            _ => None,
        };
        if let Some(rep) = rep {
            w.write_all(&bytes[start..i])?;
            w.write_all(rep.as_bytes())?;
            start = i + c.len_utf8();
        }
    }
    w.write_all(&bytes[start..])
}

/// [`escape`] appended to a byte buffer, which cannot fail.
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    escape(out, s).ok();
}

/// [`escape`] as a new string, for `format!`-built documents and pages.
pub(crate) fn escaped(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    escape_into(&mut out, s);
    String::from_utf8(out).expect("escaping UTF-8 gives UTF-8")
}

/// Decimal złoty with exactly two decimals ("250.75"), from grosze, without floats.
pub(crate) fn amount(w: &mut impl Write, grosze: i64) -> io::Result<()> {
    debug_assert!(grosze >= 0, "the export carries no negative amounts");
    write!(w, "{}.{:02}", grosze / 100, grosze % 100)
}

/// An element of a namespace-resolved tree: enough to read SOAP requests, SAML messages and
/// CRD documents.
#[derive(Debug)]
pub(crate) struct El {
    pub ns: Option<String>,
    pub local: String,
    /// (namespace, local name, value); namespace declarations are left out.
    pub attrs: Vec<(Option<String>, String, String)>,
    pub children: Vec<El>,
    /// The element's own character data (text and CDATA), concatenated.
    pub text: String,
}

impl El {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }

    pub fn child(&self, ns: &str, local: &str) -> Option<&El> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// The attribute `local` in namespace `ns` (`None`: an unqualified attribute).
    pub fn attr(&self, ns: Option<&str>, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, l, _)| n.as_deref() == ns && l == local)
            .map(|(_, _, v)| v.as_str())
    }

    /// This element and every element below it named `ns:local`, in document order.
    pub fn descendants<'a>(&'a self, ns: &str, local: &str, out: &mut Vec<&'a El>) {
        if self.is(ns, local) {
            out.push(self);
        }
        for c in &self.children {
            c.descendants(ns, local, out);
        }
    }

    /// How many elements carry an attribute named `ID`/`Id`/`id` (any namespace) equal to
    /// `id`: everything an ID-resolving verifier could take for the referenced element.
    pub fn count_ids(&self, id: &str) -> usize {
        let own = usize::from(
            self.attrs
                .iter()
                .any(|(_, l, v)| l.eq_ignore_ascii_case("id") && v == id),
        );
        own + self.children.iter().map(|c| c.count_ids(id)).sum::<usize>()
    }
}

fn namespace(r: ResolveResult) -> Result<Option<String>, String> {
    match r {
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.0).into_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => Err(format!(
            "undeclared namespace prefix {}",
            String::from_utf8_lossy(&p)
        )),
    }
}

/// Reads a whole document into a tree. Refused: a DOCTYPE (no DTDs, so no entity expansion),
/// an undeclared prefix, unbalanced tags, and anything but one root element.
pub(crate) fn parse_document(xml: &[u8]) -> Result<El, String> {
    let mut reader = NsReader::from_reader(xml);
    let mut open: Vec<El> = Vec::new();
    let mut root = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err("content after the root element".into());
                }
                let mut el = El {
                    ns: namespace(ns)?,
                    local: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    attrs: Vec::new(),
                    children: Vec::new(),
                    text: String::new(),
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| e.to_string())?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, alocal) = reader.resolve_attribute(a.key);
                    let value = a.unescape_value().map_err(|e| e.to_string())?;
                    el.attrs.push((
                        namespace(ans)?,
                        String::from_utf8_lossy(alocal.as_ref()).into_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    match open.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    open.push(el);
                }
            }
            Event::End(_) => {
                let el = open.pop().ok_or("unbalanced end tag")?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = open.last_mut() {
                    top.text.push_str(&t.unescape().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = open.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err("unclosed element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escaped("Nowak & Syn \"Łódź\" <x> 'y'"),
            "Nowak &amp; Syn &quot;Łódź&quot; &lt;x&gt; &apos;y&apos;"
        );
        assert_eq!(
            escaped("a\tb\nc\u{1}d\u{ffff}"),
            "a&#9;b&#10;c\u{fffd}d\u{fffd}"
        );
        assert_eq!(escaped("Zażółć gęślą jaźń"), "Zażółć gęślą jaźń");
    }

    #[test]
    fn escaped_matches_escape_and_appends() {
        let mut v = b"<a>".to_vec();
        escape_into(&mut v, "x<y");
        assert_eq!(v, b"<a>x&lt;y");
        assert_eq!(escaped(""), "");
    }

    #[test]
    fn tree_resolves_namespaces_attributes_and_text() {
        let doc = parse_document(
            br#"<e:Envelope xmlns:e="urn:e"><e:Body a:Id="x" xmlns:a="urn:a" ID="i1"><Z xmlns="urn:z"><p xmlns="">v&amp;w<![CDATA[<c>]]></p><q ID="i1"/></Z></e:Body></e:Envelope>"#,
        )
        .unwrap();
        assert!(doc.is("urn:e", "Envelope"));
        let body = doc.child("urn:e", "Body").unwrap();
        assert_eq!(body.attr(Some("urn:a"), "Id"), Some("x"));
        assert_eq!(body.attr(None, "Id"), None);
        assert_eq!(body.attr(None, "ID"), Some("i1"));
        assert_eq!(
            body.attrs.len(),
            2,
            "namespace declarations are not attributes"
        );
        let z = &body.children[0];
        assert_eq!(z.ns.as_deref(), Some("urn:z"));
        assert_eq!(z.children[0].ns, None);
        assert_eq!(z.children[0].text, "v&w<c>");
        assert_eq!(doc.count_ids("i1"), 2);
        let mut found = Vec::new();
        doc.descendants("urn:z", "Z", &mut found);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn tree_refuses_what_is_not_one_well_formed_element() {
        for bad in [
            "<!DOCTYPE a><a/>",
            "<a><b></a>",
            "<a><b>",
            "<a/><b/>",
            "<q:a/>",
            "",
        ] {
            assert!(
                parse_document(bad.as_bytes()).is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
