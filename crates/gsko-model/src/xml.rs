//! Text for the XML GSKO writes by hand (SOAP requests, SAML messages).

/// Escapes text for an XML element or a double- or single-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_quotes_are_escaped_and_the_rest_kept() {
        assert_eq!(
            super::escape(r#"<a href="x">Łódź & 'ś'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Łódź &amp; &apos;ś&apos;&lt;/a&gt;"
        );
    }
}
