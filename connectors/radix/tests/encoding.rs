//! The code page tables, checked against independent implementations: Python's built-in `cp852`
//! and `cp437` codecs (Mazovia is CP437 with Polish letters at the published positions).

use gsko_radix::encoding::{cp437_high_half, high_half, Decoder, TextEncoding, MAZOVIA_POLISH};
use std::process::Command;

/// The 128 high bytes decoded by Python's codec, or None when python3 is missing.
fn python_high_half(codec: &str) -> Option<Vec<char>> {
    let script = format!("import sys; sys.stdout.buffer.write(bytes(range(128, 256)).decode({codec:?}).encode('utf-8'))");
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().chars().collect())
}

#[test]
fn cp852_table_matches_python() {
    let Some(py) = python_high_half("cp852") else {
        eprintln!("SKIPPED: python3 not found — CP852 table not cross-checked");
        return;
    };
    assert_eq!(py.len(), 128);
    let ours = high_half(TextEncoding::Cp852).unwrap();
    for (i, (a, b)) in ours.iter().zip(&py).enumerate() {
        assert_eq!(
            a,
            b,
            "CP852 byte 0x{:02X}: ours {a:?} ({:04X}), python {b:?}",
            0x80 + i,
            *a as u32
        );
    }
}

#[test]
fn mazovia_is_cp437_with_the_published_polish_letters() {
    let ours = high_half(TextEncoding::Mazovia).unwrap();
    // the published positions of the 18 Polish letters
    for (byte, ch) in MAZOVIA_POLISH {
        assert_eq!(ours[usize::from(byte - 0x80)], ch, "Mazovia 0x{byte:02X}");
    }
    let expected = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ";
    let mut letters: Vec<char> = MAZOVIA_POLISH.iter().map(|(_, c)| *c).collect();
    letters.sort();
    let mut want: Vec<char> = expected.chars().collect();
    want.sort();
    assert_eq!(letters, want);
    // everywhere else Mazovia is CP437 (checked against Python's codec when present)
    let cp437: Vec<char> = python_high_half("cp437").unwrap_or_else(|| {
        eprintln!("python3 not found — comparing with the built-in CP437 table only");
        cp437_high_half().to_vec()
    });
    assert_eq!(
        cp437,
        cp437_high_half().to_vec(),
        "our CP437 base differs from Python's"
    );
    let differing: Vec<usize> = (0..128).filter(|&i| ours[i] != cp437[i]).collect();
    assert_eq!(
        differing.len(),
        17,
        "ó (0xA2) is shared with CP437; the other 17 letters replace CP437 glyphs"
    );
    for i in differing {
        assert!(
            MAZOVIA_POLISH
                .iter()
                .any(|(b, _)| usize::from(b - 0x80) == i),
            "0x{:02X} differs from CP437 but is no Polish letter",
            0x80 + i
        );
    }
}

#[test]
fn polish_letters_round_trip_in_every_encoding() {
    let text = "Zażółć gęślą jaźń ĄĆĘŁŃÓŚŹŻ";
    for enc in [
        TextEncoding::Utf8,
        TextEncoding::Cp1250,
        TextEncoding::Iso8859_2,
        TextEncoding::Cp852,
        TextEncoding::Mazovia,
    ] {
        let bytes = enc
            .encode(text)
            .unwrap_or_else(|| panic!("{} cannot encode", enc.name()));
        assert_eq!(enc.decode(&bytes).unwrap(), text, "{}", enc.name());
    }
    // fixed bytes, independent of our encoder
    assert_eq!(
        TextEncoding::Mazovia
            .decode(&[0x86, 0x8D, 0x91, 0x92, 0xA4, 0xA2, 0x9E, 0xA6, 0xA7])
            .unwrap(),
        "ąćęłńóśźż"
    );
    assert_eq!(
        TextEncoding::Cp852
            .decode(&[0xA5, 0x86, 0xA9, 0x88, 0xE4, 0xA2, 0x98, 0xAB, 0xBE])
            .unwrap(),
        "ąćęłńóśźż"
    );
    assert!(TextEncoding::Utf8.decode(&[0xC3]).is_err());
}
