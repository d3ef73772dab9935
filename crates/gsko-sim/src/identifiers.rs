//! Generation of Polish identifiers with correct check digits.
//!
//! This is deliberately a second, independent implementation of the checksum rules
//! (spec §4): the connector validates what the simulator produces with `gsko-model`'s
//! validators, so a mistake on either side shows up as a failing test instead of two copies of
//! the same bug agreeing with each other. Where a rule has two equivalent formulations, this
//! module uses the one the model does not (PESEL: weights 9,7,3,1,… and `Σ mod 10`).

use crate::date::SimDate;

fn digits_of(s: &str) -> Vec<u32> {
    s.bytes().map(|b| u32::from(b - b'0')).collect()
}

/// PESEL check digit of the first ten digits (equivalent form: weights 9,7,3,1,9,7,3,1,9,7,
/// the check digit is the weighted sum mod 10).
pub fn pesel_check_digit(first10: &str) -> u32 {
    const W: [u32; 10] = [9, 7, 3, 1, 9, 7, 3, 1, 9, 7];
    digits_of(first10)
        .iter()
        .zip(W)
        .map(|(d, w)| d * w)
        .sum::<u32>()
        % 10
}

/// A PESEL for a birth date, a serial (0–999) and a sex. The month carries the century
/// (1800s +80, 1900s +0, 2000s +20, 2100s +40, 2200s +60); the tenth digit is odd for men and
/// even for women, `sex_variant` (0–4) picks which odd/even digit.
pub fn pesel(birth: SimDate, serial: u32, male: bool, sex_variant: u32) -> String {
    let (y, m, d) = birth.parts();
    let offset = match y {
        1800..=1899 => 80,
        1900..=1999 => 0,
        2000..=2099 => 20,
        2100..=2199 => 40,
        2200..=2299 => 60,
        _ => panic!("PESEL cannot encode year {y}"),
    };
    let sex = (sex_variant % 5) * 2 + u32::from(male);
    let first10 = format!(
        "{:02}{:02}{:02}{:03}{}",
        y.rem_euclid(100),
        m + offset,
        d,
        serial % 1000,
        sex
    );
    let q = pesel_check_digit(&first10);
    format!("{first10}{q}")
}

/// NIP check digit of the first nine digits, or `None` when the weighted sum is 10 mod 11
/// (such a prefix can never be a valid NIP).
pub fn nip_check_digit(first9: &str) -> Option<u32> {
    const W: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];
    let r = digits_of(first9)
        .iter()
        .zip(W)
        .map(|(d, w)| d * w)
        .sum::<u32>()
        % 11;
    (r != 10).then_some(r)
}

/// REGON check digit: 8 leading digits for a 9-digit REGON, 13 for a 14-digit one (10 → 0).
pub fn regon_check_digit(body: &str) -> u32 {
    const W9: [u32; 8] = [8, 9, 2, 3, 4, 5, 6, 7];
    const W14: [u32; 13] = [2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8];
    let w: &[u32] = if body.len() == 8 { &W9 } else { &W14 };
    assert!(
        body.len() == 8 || body.len() == 13,
        "REGON body must have 8 or 13 digits"
    );
    digits_of(body)
        .iter()
        .zip(w)
        .map(|(d, w)| d * w)
        .sum::<u32>()
        % 11
        % 10
}

/// Check digit of an 8-digit bank sort code (numer rozliczeniowy): weights 3,9,7,1,3,9,7.
pub fn sort_code_check_digit(first7: &str) -> u32 {
    const W: [u32; 7] = [3, 9, 7, 1, 3, 9, 7];
    (10 - digits_of(first7)
        .iter()
        .zip(W)
        .map(|(d, w)| d * w)
        .sum::<u32>()
        % 10)
        % 10
}

/// A full 26-digit NRB for a 24-digit BBAN (sort code + account number): the two leading
/// check digits are `98 − (BBAN ‖ "2521" ‖ "00") mod 97`, the ISO 13616 rule with "PL" = 25 21.
pub fn nrb(bban: &str) -> String {
    assert_eq!(bban.len(), 24, "a Polish BBAN has 24 digits");
    let rem = bban
        .bytes()
        .chain(*b"252100")
        .fold(0u64, |acc, b| (acc * 10 + u64::from(b - b'0')) % 97);
    format!("{:02}{bban}", 98 - rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // From the RADIX example export and the model's unit tests.
        assert_eq!(pesel_check_digit("4405140135"), 9);
        assert_eq!(
            pesel(SimDate::new(2002, 7, 8).unwrap(), 36, false, 1),
            "02270803624"
        );
        assert_eq!(nip_check_digit("526000124"), Some(6));
        assert_eq!(regon_check_digit("12345678"), 5);
        assert_eq!(
            nrb("109010140000071219812874"),
            "61109010140000071219812874"
        );
    }
}
