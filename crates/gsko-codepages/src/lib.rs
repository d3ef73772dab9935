//! Text decoders for the code pages Polish domain systems and banks write: UTF-8, Windows-1250 and
//! ISO-8859-2 (through `encoding_rs`), and the DOS pages IBM 852 and Mazovia, which
//! `encoding_rs` (a WHATWG implementation) does not carry, through our own 128-entry tables.
//!
//! Every supported page is ASCII-compatible, so a CSV parser can split records and fields on the
//! raw bytes and only the field contents need decoding; that keeps the decoder a pure
//! `bytes -> String` function and makes a new code page a one-table addition.

use serde::{Deserialize, Serialize};

/// Decodes the bytes of one field or record into UTF-8.
pub trait Decoder {
    fn decode(&self, bytes: &[u8]) -> Result<String, DecodeError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid {encoding} byte sequence at byte {offset}")]
    Invalid {
        encoding: &'static str,
        offset: usize,
    },
}

/// The encodings a CSV mapping may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum TextEncoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// Windows Latin 2
    #[serde(rename = "cp1250", alias = "windows-1250")]
    Cp1250,
    /// ISO Latin 2
    #[serde(rename = "iso-8859-2", alias = "latin2")]
    Iso8859_2,
    /// IBM Latin 2 (DOS)
    #[serde(rename = "cp852", alias = "ibm852")]
    Cp852,
    /// Mazovia (DOS; CP437 with 18 positions holding Polish letters), the page most RADIX
    /// X-Base installations use.
    #[serde(rename = "mazovia", alias = "cp667", alias = "cp790")]
    Mazovia,
}

impl TextEncoding {
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Cp1250 => "cp1250",
            TextEncoding::Iso8859_2 => "iso-8859-2",
            TextEncoding::Cp852 => "cp852",
            TextEncoding::Mazovia => "mazovia",
        }
    }

    /// The high half (0x80..=0xFF) of a single-byte table page.
    fn table(self) -> Option<&'static [char; 128]> {
        match self {
            TextEncoding::Cp852 => Some(&CP852),
            TextEncoding::Mazovia => Some(&MAZOVIA),
            _ => None,
        }
    }

    /// Encodes text into this page (used to write test files and by exporter simulators).
    /// `None` when a character has no byte in the page.
    pub fn encode(self, s: &str) -> Option<Vec<u8>> {
        match self {
            TextEncoding::Utf8 => Some(s.as_bytes().to_vec()),
            TextEncoding::Cp1250 | TextEncoding::Iso8859_2 => {
                let enc = if self == TextEncoding::Cp1250 {
                    encoding_rs::WINDOWS_1250
                } else {
                    encoding_rs::ISO_8859_2
                };
                let (bytes, _, unmappable) = enc.encode(s);
                (!unmappable).then(|| bytes.into_owned())
            }
            TextEncoding::Cp852 | TextEncoding::Mazovia => {
                let table = self.table()?;
                s.chars()
                    .map(|c| {
                        if c.is_ascii() {
                            Some(c as u8)
                        } else {
                            table.iter().position(|&t| t == c).map(|i| 0x80 + i as u8)
                        }
                    })
                    .collect()
            }
        }
    }
}

impl Decoder for TextEncoding {
    fn decode(&self, bytes: &[u8]) -> Result<String, DecodeError> {
        match self {
            TextEncoding::Utf8 => {
                std::str::from_utf8(bytes)
                    .map(str::to_owned)
                    .map_err(|e| DecodeError::Invalid {
                        encoding: "utf-8",
                        offset: e.valid_up_to(),
                    })
            }
            TextEncoding::Cp1250 | TextEncoding::Iso8859_2 => {
                let enc = if *self == TextEncoding::Cp1250 {
                    encoding_rs::WINDOWS_1250
                } else {
                    encoding_rs::ISO_8859_2
                };
                enc.decode_without_bom_handling_and_without_replacement(bytes)
                    .map(|c| c.into_owned())
                    .ok_or(DecodeError::Invalid {
                        encoding: self.name(),
                        offset: 0,
                    })
            }
            TextEncoding::Cp852 | TextEncoding::Mazovia => {
                let table = self.table().expect("table pages have a table");
                Ok(bytes
                    .iter()
                    .map(|&b| {
                        if b < 0x80 {
                            b as char
                        } else {
                            table[usize::from(b - 0x80)]
                        }
                    })
                    .collect())
            }
        }
    }
}

/// Where Mazovia puts the Polish letters (the published table; every other position is CP437).
/// `ó` (0xA2) is where CP437 already has it, so Mazovia differs from CP437 in 17 positions.
pub const MAZOVIA_POLISH: [(u8, char); 18] = [
    (0x86, 'ą'),
    (0x8D, 'ć'),
    (0x8F, 'Ą'),
    (0x90, 'Ę'),
    (0x91, 'ę'),
    (0x92, 'ł'),
    (0x95, 'Ć'),
    (0x98, 'Ś'),
    (0x9C, 'Ł'),
    (0x9E, 'ś'),
    (0xA0, 'Ź'),
    (0xA1, 'Ż'),
    (0xA2, 'ó'),
    (0xA3, 'Ó'),
    (0xA4, 'ń'),
    (0xA5, 'Ń'),
    (0xA6, 'ź'),
    (0xA7, 'ż'),
];

const MAZOVIA: [char; 128] = {
    let mut t = CP437;
    let mut i = 0;
    while i < MAZOVIA_POLISH.len() {
        t[(MAZOVIA_POLISH[i].0 - 0x80) as usize] = MAZOVIA_POLISH[i].1;
        i += 1;
    }
    t
};

/// The high half of a page as Unicode, for tests that compare it with other implementations.
pub fn high_half(enc: TextEncoding) -> Option<[char; 128]> {
    match enc {
        TextEncoding::Cp852 => Some(CP852),
        TextEncoding::Mazovia => Some(MAZOVIA),
        _ => None,
    }
}

/// CP437's high half: the base Mazovia was derived from.
pub fn cp437_high_half() -> [char; 128] {
    CP437
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

/// IBM 437, bytes 0x80..=0xFF.
const CP437: [char; 128] = [
    '\u{00c7}', '\u{00fc}', '\u{00e9}', '\u{00e2}', '\u{00e4}', '\u{00e0}', '\u{00e5}', '\u{00e7}',
    '\u{00ea}', '\u{00eb}', '\u{00e8}', '\u{00ef}', '\u{00ee}', '\u{00ec}', '\u{00c4}', '\u{00c5}',
    '\u{00c9}', '\u{00e6}', '\u{00c6}', '\u{00f4}', '\u{00f6}', '\u{00f2}', '\u{00fb}', '\u{00f9}',
    '\u{00ff}', '\u{00d6}', '\u{00dc}', '\u{00a2}', '\u{00a3}', '\u{00a5}', '\u{20a7}', '\u{0192}',
    '\u{00e1}', '\u{00ed}', '\u{00f3}', '\u{00fa}', '\u{00f1}', '\u{00d1}', '\u{00aa}', '\u{00ba}',
    '\u{00bf}', '\u{2310}', '\u{00ac}', '\u{00bd}', '\u{00bc}', '\u{00a1}', '\u{00ab}', '\u{00bb}',
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{2561}', '\u{2562}', '\u{2556}',
    '\u{2555}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255d}', '\u{255c}', '\u{255b}', '\u{2510}',
    '\u{2514}', '\u{2534}', '\u{252c}', '\u{251c}', '\u{2500}', '\u{253c}', '\u{255e}', '\u{255f}',
    '\u{255a}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256c}', '\u{2567}',
    '\u{2568}', '\u{2564}', '\u{2565}', '\u{2559}', '\u{2558}', '\u{2552}', '\u{2553}', '\u{256b}',
    '\u{256a}', '\u{2518}', '\u{250c}', '\u{2588}', '\u{2584}', '\u{258c}', '\u{2590}', '\u{2580}',
    '\u{03b1}', '\u{00df}', '\u{0393}', '\u{03c0}', '\u{03a3}', '\u{03c3}', '\u{00b5}', '\u{03c4}',
    '\u{03a6}', '\u{0398}', '\u{03a9}', '\u{03b4}', '\u{221e}', '\u{03c6}', '\u{03b5}', '\u{2229}',
    '\u{2261}', '\u{00b1}', '\u{2265}', '\u{2264}', '\u{2320}', '\u{2321}', '\u{00f7}', '\u{2248}',
    '\u{00b0}', '\u{2219}', '\u{00b7}', '\u{221a}', '\u{207f}', '\u{00b2}', '\u{25a0}', '\u{00a0}',
];
