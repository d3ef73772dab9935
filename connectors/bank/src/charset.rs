//! Character sets of Polish bank files.
//!
//! Polish banks write MT940 and Elixir-0 files in CP852 (DOS Latin 2), Windows-1250,
//! ISO-8859-2 or UTF-8, and nothing in the file says which (spec §4.3). The charset is
//! therefore configured per bank; a wrong setting shows up either as a decoding error (UTF-8)
//! or as wrong Polish letters, never as lost bytes. All these charsets are ASCII-compatible,
//! so the parser splits lines and tags on raw bytes and decodes one line at a time.
//!
//! `encoding_rs` (a WHATWG implementation) has Windows-1250 and ISO-8859-2 but not CP852,
//! which is why CP852 is an own 128-entry table here.

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
            Charset::Cp852 => Ok(bytes
                .iter()
                .map(|&b| {
                    if b < 0x80 {
                        char::from(b)
                    } else {
                        CP852[usize::from(b - 0x80)]
                    }
                })
                .collect()),
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
            Charset::Cp852 => s
                .chars()
                .map(|c| {
                    if c.is_ascii() {
                        u8::try_from(u32::from(c)).ok()
                    } else {
                        CP852
                            .iter()
                            .position(|&t| t == c)
                            .and_then(|i| u8::try_from(i + 0x80).ok())
                    }
                })
                .collect(),
        }
    }
}

/// IBM 852 (DOS Latin 2), bytes 0x80..=0xFF.
const CP852: [char; 128] = [
    '\u{00c7}', '\u{00fc}', '\u{00e9}', '\u{00e2}', '\u{00e4}', '\u{016f}', '\u{0107}', '\u{00e7}',
    '\u{0142}', '\u{00eb}', '\u{0150}', '\u{0151}', '\u{00ee}', '\u{0179}', '\u{00c4}', '\u{0106}',
    '\u{00c9}', '\u{0139}', '\u{013a}', '\u{00f4}', '\u{00f6}', '\u{013d}', '\u{013e}', '\u{015a}',
    '\u{015b}', '\u{00d6}', '\u{00dc}', '\u{0164}', '\u{0165}', '\u{0141}', '\u{00d7}', '\u{010d}',
    '\u{00e1}', '\u{00ed}', '\u{00f3}', '\u{00fa}', '\u{0104}', '\u{0105}', '\u{017d}', '\u{017e}',
    '\u{0118}', '\u{0119}', '\u{00ac}', '\u{017a}', '\u{010c}', '\u{015f}', '\u{00ab}', '\u{00bb}',
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{00c1}', '\u{00c2}', '\u{011a}',
    '\u{015e}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255d}', '\u{017b}', '\u{017c}', '\u{2510}',
    '\u{2514}', '\u{2534}', '\u{252c}', '\u{251c}', '\u{2500}', '\u{253c}', '\u{0102}', '\u{0103}',
    '\u{255a}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256c}', '\u{00a4}',
    '\u{0111}', '\u{0110}', '\u{010e}', '\u{00cb}', '\u{010f}', '\u{0147}', '\u{00cd}', '\u{00ce}',
    '\u{011b}', '\u{2518}', '\u{250c}', '\u{2588}', '\u{2584}', '\u{0162}', '\u{016e}', '\u{2580}',
    '\u{00d3}', '\u{00df}', '\u{00d4}', '\u{0143}', '\u{0144}', '\u{0148}', '\u{0160}', '\u{0161}',
    '\u{0154}', '\u{00da}', '\u{0155}', '\u{0170}', '\u{00fd}', '\u{00dd}', '\u{0163}', '\u{00b4}',
    '\u{00ad}', '\u{02dd}', '\u{02db}', '\u{02c7}', '\u{02d8}', '\u{00a7}', '\u{00f7}', '\u{00b8}',
    '\u{00b0}', '\u{00a8}', '\u{02d9}', '\u{0171}', '\u{0158}', '\u{0159}', '\u{25a0}', '\u{00a0}',
];

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
