//! A namespace-resolved element tree read with quick-xml: enough to check the SP's SAML
//! requests. No DTDs (a DOCTYPE is refused), text concatenated per element.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

#[derive(Debug)]
pub(crate) struct El {
    pub ns: Option<String>,
    pub local: String,
    /// (namespace, local name, value); namespace declarations are left out.
    pub attrs: Vec<(Option<String>, String, String)>,
    pub children: Vec<El>,
    pub text: String,
}

impl El {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }

    pub fn child(&self, ns: &str, local: &str) -> Option<&El> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// An unqualified attribute.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, l, _)| n.is_none() && l == local)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn descendants<'a>(&'a self, ns: &str, local: &str, out: &mut Vec<&'a El>) {
        if self.is(ns, local) {
            out.push(self);
        }
        for c in &self.children {
            c.descendants(ns, local, out);
        }
    }

    /// How many elements carry an `ID`/`Id`/`id` attribute equal to `id`: anything an
    /// ID-resolving verifier could take for the signed element.
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

pub(crate) fn parse(xml: &[u8]) -> Result<El, String> {
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
    fn resolves_namespaces_and_refuses_doctype() {
        let el = parse(br#"<p:A xmlns:p="urn:x" ID="i1"><p:B ID="i1">t</p:B><C/></p:A>"#).unwrap();
        assert!(el.is("urn:x", "A"));
        assert_eq!(el.child("urn:x", "B").unwrap().text, "t");
        assert_eq!(el.count_ids("i1"), 2);
        assert!(parse(b"<!DOCTYPE a><a/>").is_err());
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<q:a/>").is_err());
    }
}
