//! The `:86:` entry details in Polish banks' conventions (spec §4.3).
//!
//! SWIFT leaves `:86:` free text; Polish banks fill it with structure of their own, and no bank
//! publishes a specification (spec §6). Each convention is therefore one small [`Layout86`]
//! implementation, and a bank the connector does not know yet is one more implementation, not a
//! change to the parser:
//! - [`SeparatedLayout`]: `NNN<sep>00…<sep>20…`, a three-digit transaction code followed by
//!   subfields `<sep><2-digit code><text>` — `~` in PKO BP–style files, `^` at Pekao, `<` at ING;
//! - [`MbankCollectLayout`]: mBank's `;`-separated `KEY: value` form for mass-payment
//!   identification (`ID IPH`, `Z RACH.`, `OD:`, `TYT.:`, `TNR:`).
//!
//! Where a bank puts the *virtual* account a payer paid into is unverified outside mBank
//! (spec §6), so separated layouts may name a subfield for it, and identification
//! ([`mod@crate::identify`]) also looks for a known virtual account in any non-counterparty subfield.

use serde::Serialize;

/// The structured content of one `:86:` field, as far as the layout knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    /// Name of the layout that read the field.
    pub layout: String,
    /// Three-digit bank transaction code (`152`, `641`, `911`, …).
    pub code: Option<String>,
    /// Operation description (subfield `00`).
    pub operation: Option<String>,
    /// Payment title (subfields `20`–`25` concatenated, or mBank `TYT.:`).
    pub title: String,
    /// Counterparty name (subfields `32`–`33`, or the first part of mBank `OD:`).
    pub counterparty_name: Option<String>,
    /// Counterparty address or extra information (subfields `60`–`63`).
    pub counterparty_address: Option<String>,
    /// Counterparty account: 26 digits when the layout gives or allows computing a full NRB,
    /// otherwise the digits as given.
    pub counterparty_account: Option<String>,
    /// The municipality's virtual account the payment came in on, 26 digits, if the layout says.
    pub virtual_account: Option<String>,
    /// The payer identifier within the virtual-account range (mBank `ID IPH`), digits only.
    pub payer_id: Option<String>,
    /// The bank's unique transaction id (mBank `TNR`), stable across MT942 and MT940.
    pub bank_transaction_id: Option<String>,
    /// Every subfield as read, in order (code, text); for the admin and for new rules.
    pub subfields: Vec<(String, String)>,
}

/// One bank's `:86:` convention.
pub trait Layout86: Send + Sync {
    /// Short name used in errors and in [`Details::layout`].
    fn name(&self) -> &str;
    /// Whether the text is in this layout. Cheap; the parser asks every configured layout.
    fn recognizes(&self, text: &str) -> bool;
    /// Reads the text. An `Err` names what is wrong with it.
    fn parse(&self, text: &str) -> Result<Details, String>;
}

/// `NNN<sep>CCtext<sep>CCtext…` with a bank-specific separator.
#[derive(Debug, Clone)]
pub struct SeparatedLayout {
    pub name: String,
    pub separator: char,
    /// Subfield whose text carries the virtual account (26 digits, optionally `PL`-prefixed),
    /// where the bank's agreement says so.
    pub virtual_account_field: Option<String>,
}

impl SeparatedLayout {
    /// PKO BP style, `~` separator.
    pub fn pko_bp() -> Self {
        SeparatedLayout {
            name: "pko-bp".into(),
            separator: '~',
            virtual_account_field: None,
        }
    }
    /// Pekao style, `^` separator (the railslove/epics sample).
    pub fn pekao() -> Self {
        SeparatedLayout {
            name: "pekao".into(),
            separator: '^',
            virtual_account_field: None,
        }
    }
    /// ING style, `<` separator (one test fixture only; spec confidence L).
    pub fn ing() -> Self {
        SeparatedLayout {
            name: "ing".into(),
            separator: '<',
            virtual_account_field: None,
        }
    }
}

/// The subfield codes that describe the counterparty's own account, which identification must
/// never mistake for the municipality's virtual account.
pub const COUNTERPARTY_ACCOUNT_FIELDS: [&str; 4] = ["29", "30", "31", "38"];

impl Layout86 for SeparatedLayout {
    fn name(&self) -> &str {
        &self.name
    }

    fn recognizes(&self, text: &str) -> bool {
        // Either "NNN<sep>CC" or directly "<sep>CC".
        let t = text.trim_start();
        let rest = match t.get(..3) {
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => &t[3..],
            _ => t,
        };
        let mut chars = rest.chars();
        chars.next() == Some(self.separator)
            && chars.next().is_some_and(|c| c.is_ascii_digit())
            && chars.next().is_some_and(|c| c.is_ascii_digit())
    }

    fn parse(&self, text: &str) -> Result<Details, String> {
        let t = text.trim_start();
        let (code, rest) = match t.get(..3) {
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => (Some(p.to_owned()), &t[3..]),
            _ => (None, t),
        };
        let rest = rest
            .strip_prefix(self.separator)
            .ok_or_else(|| format!("expected '{}' after the transaction code", self.separator))?;
        let mut d = Details {
            layout: self.name.clone(),
            code,
            ..Details::default()
        };
        for part in rest.split(self.separator) {
            let sub = part
                .get(..2)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()));
            let Some(sub) = sub else {
                return Err(format!(
                    "subfield {part:?} does not start with a two-digit code"
                ));
            };
            d.subfields.push((sub.to_owned(), part[2..].to_owned()));
        }
        let joined = |codes: &[&str], sep: &str| -> Option<String> {
            let v: Vec<&str> = d
                .subfields
                .iter()
                .filter(|(c, _)| codes.contains(&c.as_str()))
                .map(|(_, t)| t.as_str())
                .collect();
            (!v.is_empty()).then(|| v.join(sep))
        };
        let get = |code: &str| joined(&[code], "");
        d.operation = get("00").map(|s| s.trim().to_owned());
        d.title = joined(&["20", "21", "22", "23", "24", "25"], "")
            .unwrap_or_default()
            .trim()
            .to_owned();
        d.counterparty_name = joined(&["32", "33"], "").map(|s| s.trim().to_owned());
        d.counterparty_address = joined(&["60", "61", "62", "63"], "").map(|s| s.trim().to_owned());
        let digits = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
        d.counterparty_account = if let Some(iban) = get("38").or_else(|| get("29")) {
            Some(digits(&iban))
        } else {
            match (get("30"), get("31")) {
                (Some(sort), Some(acc)) => {
                    let bban = format!("{}{}", digits(&sort), digits(&acc));
                    Some(crate::identify::nrb_from_bban(&bban).unwrap_or(bban))
                }
                (None, Some(acc)) => Some(digits(&acc)),
                _ => None,
            }
        };
        if let Some(field) = &self.virtual_account_field {
            if let Some(v) = get(field) {
                let v = digits(&v);
                if v.len() == 26 {
                    d.virtual_account = Some(v);
                }
            }
        }
        Ok(d)
    }
}

/// mBank's free-text `:86:` for mass-payment identification ("Collect"), spec §4.3: a
/// three-digit code, a description and `;`-separated `KEY: value` items.
#[derive(Debug, Clone, Default)]
pub struct MbankCollectLayout;

/// Keys of mBank's free-text items: payer id, payer's account (`Z RACH.`, credits), payee's
/// account (`NA RACH.`, debits), payer (`OD`) or payee (`DO`) name and address, title, and the
/// bank's transaction number.
const MBANK_KEYS: [&str; 7] = [
    "ID IPH:",
    "Z RACH.:",
    "NA RACH.:",
    "OD:",
    "DO:",
    "TYT.:",
    "TNR:",
];

impl Layout86 for MbankCollectLayout {
    fn name(&self) -> &str {
        "mbank-collect"
    }

    fn recognizes(&self, text: &str) -> bool {
        text.contains(';') && MBANK_KEYS.iter().any(|k| text.contains(k))
    }

    fn parse(&self, text: &str) -> Result<Details, String> {
        let mut parts = text.split(';');
        let head = parts.next().unwrap_or_default().trim();
        let (code, operation) = match head.get(..3) {
            Some(c) if c.bytes().all(|b| b.is_ascii_digit()) => {
                (Some(c.to_owned()), head[3..].trim().to_owned())
            }
            _ => (None, head.to_owned()),
        };
        let mut d = Details {
            layout: self.name().to_owned(),
            code,
            operation: Some(operation),
            ..Details::default()
        };
        for part in parts {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let Some(key) = MBANK_KEYS.iter().find(|k| p.starts_with(*k)) else {
                return Err(format!("unknown item {p:?}"));
            };
            let value = p[key.len()..].trim().to_owned();
            d.subfields
                .push((key.trim_end_matches(':').to_owned(), value.clone()));
            match *key {
                "ID IPH:" => {
                    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
                    d.payer_id = (!digits.is_empty()).then_some(digits);
                }
                "Z RACH.:" | "NA RACH.:" => {
                    d.counterparty_account =
                        Some(value.chars().filter(char::is_ascii_digit).collect())
                }
                "OD:" | "DO:" => {
                    // Name and address are separated by two spaces (spec §4.3 sample).
                    match value.split_once("  ") {
                        Some((name, addr)) => {
                            d.counterparty_name = Some(name.trim().to_owned());
                            d.counterparty_address = Some(addr.trim().to_owned());
                        }
                        None => d.counterparty_name = Some(value),
                    }
                }
                "TYT.:" => d.title = value,
                "TNR:" => d.bank_transaction_id = Some(value),
                _ => {}
            }
        }
        Ok(d)
    }
}

/// The layouts the connector knows, in the order they are tried.
pub fn known_layouts() -> Vec<Box<dyn Layout86>> {
    vec![
        Box::new(SeparatedLayout::pko_bp()),
        Box::new(SeparatedLayout::pekao()),
        Box::new(SeparatedLayout::ing()),
        Box::new(MbankCollectLayout),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pekao_sample_from_the_spec() {
        let text = "641^00PRZELEW MIĘDZYBANKOWY BETA/^34000^3019401076^38PL54194010765205871800000000^20wynagrodzenie z tytulu umow^21y o prac e^32BANKA MONIKA^62PODCHORAZYCH 16/1580-298 GD^63ANSK";
        let l = SeparatedLayout::pekao();
        assert!(l.recognizes(text));
        assert!(!SeparatedLayout::pko_bp().recognizes(text));
        let d = l.parse(text).unwrap();
        assert_eq!(d.code.as_deref(), Some("641"));
        assert_eq!(d.title, "wynagrodzenie z tytulu umowy o prac e");
        assert_eq!(
            d.counterparty_account.as_deref(),
            Some("54194010765205871800000000")
        );
        assert_eq!(d.counterparty_name.as_deref(), Some("BANKA MONIKA"));
    }

    #[test]
    fn mbank_sample_from_the_spec() {
        let text = "911 TRANSAKCJA COLLECT; ID IPH: XX000000000001; Z RACH.: 56114010810000267002001001; OD: JAN NOWAK  UL. NIJAKA 1 M 2 31-234 KRAKOW; TYT.: PRZELEW SRODKOW   ; TNR: 179171073864111.010001";
        let l = MbankCollectLayout;
        assert!(l.recognizes(text));
        let d = l.parse(text).unwrap();
        assert_eq!(d.payer_id.as_deref(), Some("000000000001"));
        assert_eq!(d.title, "PRZELEW SRODKOW");
        assert_eq!(
            d.bank_transaction_id.as_deref(),
            Some("179171073864111.010001")
        );
    }
}
