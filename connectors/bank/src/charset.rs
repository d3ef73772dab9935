//! Character sets of Polish bank files.
//!
//! Polish banks write MT940 and Elixir-0 files in CP852 (DOS Latin 2), Windows-1250,
//! ISO-8859-2 or UTF-8, and nothing in the file says which (spec §4.3). The charset is
//! therefore configured per bank; a wrong setting shows up either as a decoding error (UTF-8)
//! or as wrong Polish letters, never as lost bytes. All these charsets are ASCII-compatible,
//! so the parser splits lines and tags on raw bytes and decodes one line at a time.
//!
//! `encoding_rs` (a WHATWG implementation) has Windows-1250 and ISO-8859-2 but not CP852, whose
//! table comes from `gsko-codepages` (shared with the RADIX connector's CSV adapter).

use gsko_codepages::TextEncoding;
use serde::{Deserialize, Serialize};

/// The charset a bank writes its files in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Charset {
    /// Strict UTF-8: an invalid byte sequence is an error, so a file in a DOS or Windows
    /// code page read with the default setting is reported, not silently garbled.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "windows-1250")]
    Cp1250,
    #[serde(rename = "iso-8859-2")]
    Iso8859_2,
    #[serde(rename = "cp852")]
    Cp852,
}

/// A line that is not valid in the configured charset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset} is not valid {charset}")]
pub struct DecodeError {
    pub charset: &'static str,
    pub offset: usize,
}

impl Charset {
    pub fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Cp1250 => "windows-1250",
            Charset::Iso8859_2 => "ISO-8859-2",
            Charset::Cp852 => "CP852",
        }
    }

    /// Parses a configuration name ("cp852", "windows-1250", "iso-8859-2", "utf-8").
    pub fn from_name(s: &str) -> Option<Charset> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Some(Charset::Utf8),
            "windows-1250" | "cp1250" | "win1250" => Some(Charset::Cp1250),
            "iso-8859-2" | "latin2" | "iso8859-2" => Some(Charset::Iso8859_2),
            "cp852" | "ibm852" | "dos-852" => Some(Charset::Cp852),
            _ => None,
        }
    }

    /// Decodes one line. Single-byte pages cannot fail except for the C1 holes, which
    /// `encoding_rs` maps to replacement-free code points, so only UTF-8 reports errors.
    pub fn decode(self, bytes: &[u8]) -> Result<String, DecodeError> {
        match self {
            Charset::Utf8 => match std::str::from_utf8(bytes) {
                Ok(s) => Ok(s.to_owned()),
                Err(e) => Err(DecodeError {
                    charset: self.name(),
                    offset: e.valid_up_to(),
                }),
            },
            Charset::Cp1250 => Ok(encoding_rs::WINDOWS_1250
                .decode_without_bom_handling(bytes)
                .0
                .into_owned()),
            Charset::Iso8859_2 => Ok(encoding_rs::ISO_8859_2
                .decode_without_bom_handling(bytes)
                .0
                .into_owned()),
            // A table page: every byte decodes, so this cannot fail.
            Charset::Cp852 => Ok(
                gsko_codepages::Decoder::decode(&TextEncoding::Cp852, bytes).unwrap_or_default()
            ),
        }
    }

    /// Encodes text for a file in this charset; `None` if a character has no code in it
    /// (the caller reports which record could not be written instead of writing `?`).
    pub fn encode(self, s: &str) -> Option<Vec<u8>> {
        match self {
            Charset::Utf8 => Some(s.as_bytes().to_vec()),
            Charset::Cp1250 | Charset::Iso8859_2 => {
                let enc = if self == Charset::Cp1250 {
                    encoding_rs::WINDOWS_1250
                } else {
                    encoding_rs::ISO_8859_2
                };
                let (bytes, _, had_errors) = enc.encode(s);
                (!had_errors).then(|| bytes.into_owned())
            }
            Charset::Cp852 => TextEncoding::Cp852.encode(s),
        }
    }
}

/// The Elixir-0 writer (`gsko-elixir`) takes `gsko-codepages`' encodings.
impl From<Charset> for TextEncoding {
    fn from(c: Charset) -> TextEncoding {
        match c {
            Charset::Utf8 => TextEncoding::Utf8,
            Charset::Cp1250 => TextEncoding::Cp1250,
            Charset::Iso8859_2 => TextEncoding::Iso8859_2,
            Charset::Cp852 => TextEncoding::Cp852,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polish_letters_round_trip_in_every_charset() {
        let s = "ZAŻÓŁĆ GĘŚLĄ JAŹŃ zażółć gęślą jaźń";
        for cs in [
            Charset::Utf8,
            Charset::Cp1250,
            Charset::Iso8859_2,
            Charset::Cp852,
        ] {
            let bytes = cs.encode(s).expect("encodable");
            assert_eq!(cs.decode(&bytes).expect("decodable"), s, "{}", cs.name());
        }
        // Ę is 0xA8 in CP852: the spec's "MI¨DZYBANKOWY" is CP852 read as Windows-1250.
        assert_eq!(Charset::Cp852.decode(b"MI\xa8DZY").unwrap(), "MIĘDZY");
        assert!(Charset::Utf8.decode(b"MI\xa8DZY").is_err());
    }
}
