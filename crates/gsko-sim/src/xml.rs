//! The few XML-writing primitives the simulator needs. Written here, not taken from an XML
//! library, because the simulator must share no protocol code with the connector it tests.

use std::io::{self, Write};

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

/// Decimal złoty with exactly two decimals ("250.75"), from grosze, without floats.
pub(crate) fn amount(w: &mut impl Write, grosze: i64) -> io::Result<()> {
    debug_assert!(grosze >= 0, "the export carries no negative amounts");
    write!(w, "{}.{:02}", grosze / 100, grosze % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut v = Vec::new();
        escape(&mut v, s).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            esc("Nowak & Syn \"Łódź\" <x> 'y'"),
            "Nowak &amp; Syn &quot;Łódź&quot; &lt;x&gt; &apos;y&apos;"
        );
        assert_eq!(
            esc("a\tb\nc\u{1}d\u{ffff}"),
            "a&#9;b&#10;c\u{fffd}d\u{fffd}"
        );
        assert_eq!(esc("Zażółć gęślą jaźń"), "Zażółć gęślą jaźń");
    }
}
