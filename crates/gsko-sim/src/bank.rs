//! Simulator: a bank's MT940 statements for a municipality's tax account with per-taxpayer
//! virtual accounts (spec §4.2, §4.3).
//!
//! A second, independent implementation of the format: it writes MT940 by hand and computes
//! sort-code and NRB check digits itself ([`crate::identifiers`]), sharing nothing with the
//! connector, so a test between the two fails when either misreads the format. It writes three
//! banks' conventions:
//! - [`BankProfile::PkoBp`]: `:86:` with `~NN` subfields, LF or CRLF;
//! - [`BankProfile::Pekao`]: `:86:` with `^NN` subfields and zero-padded `:61:` amounts with a
//!   funds code, as in the spec's Pekao sample;
//! - [`BankProfile::MbankCollect`]: mBank's `;`-separated `ID IPH:`/`Z RACH.:`/`OD:`/`TYT.:`/
//!   `TNR:` free text, wrapped at 65 characters.
//!
//! Where non-mBank banks put the virtual account is unverified (spec §6); this simulator puts it
//! in subfield `27` (PKO, `PL`-prefixed) and `26` (Pekao). The connector does not depend on the
//! exact subfield, only on the number being a known virtual account outside the counterparty
//! fields.
//!
//! Everything is seeded (ChaCha8) and streamed: entries are drawn one at a time, so a
//! 100,000-entry statement costs no memory here, and the ground truth ([`SimEntry`]) is kept
//! only on request. Faults for tests ([`Fault`]) break one entry or one statement.

use crate::date::SimDate;
use crate::identifiers;
use crate::names;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::{self, Write};

/// Which bank's conventions to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BankProfile {
    PkoBp,
    Pekao,
    MbankCollect,
}

impl BankProfile {
    /// The first seven digits of the settlement number; the eighth is computed.
    fn sort_code_prefix(self) -> &'static str {
        match self {
            BankProfile::PkoBp => "1020296",
            BankProfile::Pekao => "1240125",
            BankProfile::MbankCollect => "1140108",
        }
    }
    /// The full 8-digit settlement number (numer rozliczeniowy) with its check digit.
    pub fn sort_code(self) -> String {
        let p = self.sort_code_prefix();
        format!("{p}{}", identifiers::sort_code_check_digit(p))
    }
}

/// Charsets the simulator can write. Only ASCII and the 18 Polish letters are mapped
/// (anything else becomes `?`), which is all the generator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimCharset {
    Utf8,
    Cp1250,
    Iso8859_2,
    Cp852,
}

const POLISH: [char; 18] = [
    'Ą', 'Ć', 'Ę', 'Ł', 'Ń', 'Ó', 'Ś', 'Ź', 'Ż', 'ą', 'ć', 'ę', 'ł', 'ń', 'ó', 'ś', 'ź', 'ż',
];
const CP1250_POLISH: [u8; 18] = [
    0xA5, 0xC6, 0xCA, 0xA3, 0xD1, 0xD3, 0x8C, 0x8F, 0xAF, 0xB9, 0xE6, 0xEA, 0xB3, 0xF1, 0xF3, 0x9C,
    0x9F, 0xBF,
];
const ISO8859_2_POLISH: [u8; 18] = [
    0xA1, 0xC6, 0xCA, 0xA3, 0xD1, 0xD3, 0xA6, 0xAC, 0xAF, 0xB1, 0xE6, 0xEA, 0xB3, 0xF1, 0xF3, 0xB6,
    0xBC, 0xBF,
];
const CP852_POLISH: [u8; 18] = [
    0xA4, 0x8F, 0xA8, 0x9D, 0xE3, 0xE0, 0x97, 0x8D, 0xBD, 0xA5, 0x86, 0xA9, 0x88, 0xE4, 0xA2, 0x98,
    0xAB, 0xBE,
];

impl SimCharset {
    /// The name the Python `mt940` library (and Python's codecs) use for it.
    pub fn python_name(self) -> &'static str {
        match self {
            SimCharset::Utf8 => "utf-8",
            SimCharset::Cp1250 => "cp1250",
            SimCharset::Iso8859_2 => "iso-8859-2",
            SimCharset::Cp852 => "cp852",
        }
    }

    pub fn encode(self, s: &str) -> Vec<u8> {
        if self == SimCharset::Utf8 {
            return s.as_bytes().to_vec();
        }
        let table = match self {
            SimCharset::Cp1250 => &CP1250_POLISH,
            SimCharset::Iso8859_2 => &ISO8859_2_POLISH,
            _ => &CP852_POLISH,
        };
        s.chars()
            .map(|c| {
                if c.is_ascii() {
                    c as u8
                } else {
                    POLISH
                        .iter()
                        .position(|&p| p == c)
                        .map_or(b'?', |i| table[i])
                }
            })
            .collect()
    }
}

/// A fault to inject. Statement and entry indexes are 0-based, entries in written order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The entry's `:61:` amount is written with a decimal point instead of a comma.
    BrokenAmount { statement: u32, entry: u32 },
    /// The statement's `:62F:` is one złoty more than the entries add up to.
    BadClosingBalance { statement: u32 },
    /// The entry's `:86:` is unstructured free text, in no bank's layout.
    UnknownLayout86 { statement: u32, entry: u32 },
    /// The entry's `:86:` is written in Windows-1250 whatever the file's charset (a file
    /// assembled from two systems); read as UTF-8 its Polish letters are invalid.
    WrongEncoding { statement: u32, entry: u32 },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct BankSimSpec {
    pub seed: u64,
    pub profile: BankProfile,
    /// The municipality's client code at the bank (4 digits); payer ids fill the remaining 12.
    pub client_code: String,
    pub taxpayers: u32,
    pub statements: u32,
    pub first_day: SimDate,
    /// Credits to taxpayers' virtual accounts, per statement.
    pub virtual_credits: u32,
    /// Credits to the main account identified only by a title, per statement.
    pub title_credits: u32,
    /// Gateway payouts (alternating Przelewy24 and PayU), per statement.
    pub gateway_payouts: u32,
    pub debits: u32,
    pub charset: SimCharset,
    pub crlf: bool,
    /// Opening balance of the first statement in grosze (negative for a debit balance).
    pub opening_balance: i64,
    pub faults: Vec<Fault>,
    /// Keep the ground truth of every entry in [`BankSimSummary::entries`].
    pub keep_truth: bool,
    /// Gateway payouts with a given reference and amount (e.g. a batch a gateway simulator
    /// paid out), written after the drawn entries of their statement. They draw nothing from
    /// the random stream, so the rest of the file is the same with or without them.
    pub fixed_payouts: Vec<SimPayout>,
}

/// A gateway whose payouts the simulator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimGateway {
    Przelewy24,
    Payu,
}

impl SimGateway {
    pub fn as_str(self) -> &'static str {
        match self {
            SimGateway::Przelewy24 => "przelewy24",
            SimGateway::Payu => "payu",
        }
    }
}

/// One payout to write as given (see [`BankSimSpec::fixed_payouts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPayout {
    /// 0-based statement index.
    pub statement: u32,
    pub gateway: SimGateway,
    /// Przelewy24: the batch id (the title reads `Przelewy24 wypłata batch <reference>`);
    /// PayU: the payout reference (`PayU wypłata nr <reference>`).
    pub reference: String,
    pub amount_grosze: i64,
}

impl BankSimSpec {
    /// A small, realistic default: 3 daily statements of 40 entries each for 200 taxpayers.
    pub fn new(seed: u64, profile: BankProfile) -> Self {
        BankSimSpec {
            seed,
            profile,
            client_code: "1234".into(),
            taxpayers: 200,
            statements: 3,
            first_day: SimDate::ymd(2026, 3, 13),
            virtual_credits: 30,
            title_credits: 4,
            gateway_payouts: 2,
            debits: 4,
            charset: SimCharset::Utf8,
            crlf: false,
            opening_balance: 100_000_000, // grosze: 1,000,000.00 zł
            faults: Vec::new(),
            keep_truth: true,
            fixed_payouts: Vec::new(),
        }
    }
}

/// A simulated taxpayer with a virtual account and the numbers a title may quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTaxpayer {
    pub account_key: String,
    /// 26 digits.
    pub virtual_nrb: String,
    /// The 12-digit payer id inside the virtual account.
    pub payer_id: String,
    pub decision: String,
}

/// How an entry should be identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEntryKind {
    VirtualAccount {
        nrb: String,
        account_key: String,
    },
    Title {
        token: String,
        account_key: String,
    },
    GatewayPayout {
        gateway: &'static str,
        reference: String,
        payments: u32,
    },
    Debit,
}

/// Ground truth of one written entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEntry {
    pub statement: String,
    pub index: u32,
    /// `YYYY-MM-DD`.
    pub value_date: String,
    pub credit: bool,
    pub amount_grosze: i64,
    pub customer_reference: String,
    pub bank_reference: Option<String>,
    pub title: String,
    pub kind: SimEntryKind,
    /// A fault was injected into this entry.
    pub faulty: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct BankSimSummary {
    /// The statement account, 26 digits.
    pub account: String,
    pub sort_code: String,
    /// Sort code + client code: the 12-digit BBAN prefix of every virtual account.
    pub virtual_prefix: String,
    pub statement_references: Vec<String>,
    pub entries_written: u64,
    pub entries: Vec<SimEntry>,
}

/// The taxpayers of a spec, with their virtual accounts: `K` + 7 digits as account key,
/// payer id = the taxpayer number padded to 12 digits.
pub fn taxpayers(spec: &BankSimSpec) -> Vec<SimTaxpayer> {
    (1..=spec.taxpayers).map(|i| taxpayer(spec, i)).collect()
}

fn taxpayer(spec: &BankSimSpec, i: u32) -> SimTaxpayer {
    let payer_id = format!("{:012}", 100_000 + u64::from(i) * 7);
    let bban = format!(
        "{}{}{}",
        spec.profile.sort_code(),
        spec.client_code,
        payer_id
    );
    SimTaxpayer {
        account_key: format!("K{i:07}"),
        virtual_nrb: identifiers::nrb(&bban),
        payer_id,
        decision: format!("FN.3120.{i}.2026"),
    }
}

/// The statement account: the client code followed by zeros (payer id 0).
fn main_account(spec: &BankSimSpec) -> String {
    identifiers::nrb(&format!(
        "{}{}000000000000",
        spec.profile.sort_code(),
        spec.client_code
    ))
}

/// A gateway payout's entry: the operator's name and address and a title carrying the payout
/// reference. Neither gateway documents its title (spec §6); these follow the forms the bank
/// connector's default rules expect.
fn payout_entry(
    profile: BankProfile,
    gateway: SimGateway,
    reference: &str,
    amount: i64,
    counterparty: String,
) -> Entry {
    let (name, title) = match gateway {
        SimGateway::Przelewy24 => (
            "PAYPRO SPÓŁKA AKCYJNA",
            format!("Przelewy24 wypłata batch {reference}"),
        ),
        SimGateway::Payu => ("PAYU S.A.", format!("PayU wypłata nr {reference}")),
    };
    Entry {
        credit: true,
        amount,
        op_code: if profile == BankProfile::MbankCollect {
            "510"
        } else {
            "152"
        },
        operation: "PRZELEW ZEWNĘTRZNY PRZYCHODZĄCY",
        title,
        name: name.to_owned(),
        address: "UL. KANCLERSKA 15 60-327 POZNAŃ".to_owned(),
        counterparty,
        virtual_nrb: None,
        payer_id: None,
    }
}

/// A fixed account of the gateway operator (for [`BankSimSpec::fixed_payouts`], which draw
/// nothing at random).
fn gateway_account(gateway: SimGateway) -> String {
    let p = "1090101";
    let sort = format!("{p}{}", identifiers::sort_code_check_digit(p));
    let acc = match gateway {
        SimGateway::Przelewy24 => "0000071219812874",
        SimGateway::Payu => "0000071219812875",
    };
    identifiers::nrb(&format!("{sort}{acc}"))
}

/// A payer's or supplier's own account at some other bank.
fn foreign_account(rng: &mut ChaCha8Rng) -> String {
    const BANKS: [&str; 5] = ["1050101", "1090101", "1160220", "1750001", "1940107"];
    let p = BANKS[rng.gen_range(0..BANKS.len())];
    let sort = format!("{p}{}", identifiers::sort_code_check_digit(p));
    let acc: String = (0..16)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    identifiers::nrb(&format!("{sort}{acc}"))
}

fn person(rng: &mut ChaCha8Rng) -> (String, String) {
    let female = rng.gen_bool(0.5);
    let first = if female {
        names::FEMALE_FIRST[rng.gen_range(0..names::FEMALE_FIRST.len())]
    } else {
        names::MALE_FIRST[rng.gen_range(0..names::MALE_FIRST.len())]
    };
    let sur = names::SURNAMES[rng.gen_range(0..names::SURNAMES.len())];
    let sur = if female {
        names::feminine_surname(sur)
    } else {
        sur.to_owned()
    };
    let street = names::STREETS[rng.gen_range(0..names::STREETS.len())];
    let addr = format!(
        "UL. {} {} 3{}-{:03} ŁĄCK",
        street.to_uppercase(),
        rng.gen_range(1..120),
        rng.gen_range(0..10),
        rng.gen_range(0..1000)
    );
    (format!("{} {}", first, sur).to_uppercase(), addr)
}

/// `YYMMDD`
fn yymmdd(d: SimDate) -> String {
    let (y, m, dd) = d.parts();
    format!("{:02}{m:02}{dd:02}", y.rem_euclid(100))
}

fn mmdd(d: SimDate) -> String {
    let (_, m, dd) = d.parts();
    format!("{m:02}{dd:02}")
}

/// SWIFT amount: comma decimal, no thousands separator.
fn swift_amount(grosze: i64) -> String {
    format!("{},{:02}", grosze / 100, grosze % 100)
}

fn balance(tag: &str, grosze: i64, day: SimDate) -> String {
    let mark = if grosze < 0 { 'D' } else { 'C' };
    format!(
        ":{tag}:{mark}{}PLN{}",
        yymmdd(day),
        swift_amount(grosze.abs())
    )
}

fn chunks(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

/// One entry's content before it is laid out in a bank's convention.
struct Entry {
    credit: bool,
    amount: i64,
    op_code: &'static str,
    operation: &'static str,
    title: String,
    name: String,
    address: String,
    counterparty: String,
    virtual_nrb: Option<String>,
    payer_id: Option<String>,
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
    eol: &'static str,
    charset: SimCharset,
}

impl<W: Write> Writer<'_, W> {
    fn line(&mut self, s: &str) -> io::Result<()> {
        self.out.write_all(&self.charset.encode(s))?;
        self.out.write_all(self.eol.as_bytes())
    }
    fn line_in(&mut self, s: &str, cs: SimCharset) -> io::Result<()> {
        self.out.write_all(&cs.encode(s))?;
        self.out.write_all(self.eol.as_bytes())
    }
}

/// The `:86:` lines of an entry in the profile's convention.
fn details_86(profile: BankProfile, e: &Entry, tnr: &str) -> Vec<String> {
    match profile {
        BankProfile::PkoBp | BankProfile::Pekao => {
            let sep = if profile == BankProfile::PkoBp {
                '~'
            } else {
                '^'
            };
            let mut subs: Vec<(String, String)> = vec![("00".into(), e.operation.to_owned())];
            for (i, c) in chunks(&e.title, 27).into_iter().take(6).enumerate() {
                subs.push((format!("{}", 20 + i), c));
            }
            subs.push(("30".into(), e.counterparty[2..10].to_owned()));
            subs.push(("31".into(), e.counterparty[10..].to_owned()));
            let name = chunks(&e.name, 27);
            for (i, c) in name.into_iter().take(2).enumerate() {
                subs.push((format!("{}", 32 + i), c));
            }
            subs.push(("34".into(), e.op_code.to_owned()));
            subs.push(("38".into(), format!("PL{}", e.counterparty)));
            for (i, c) in chunks(&e.address, 27).into_iter().take(2).enumerate() {
                subs.push((format!("{}", 62 + i), c));
            }
            if let Some(v) = &e.virtual_nrb {
                if profile == BankProfile::PkoBp {
                    subs.push(("27".into(), format!("PL{v}")));
                } else {
                    subs.push(("26".into(), v.clone()));
                }
            }
            let mut lines = Vec::new();
            let mut first = e.op_code.to_owned();
            for (i, (code, text)) in subs.into_iter().enumerate() {
                let item = format!("{sep}{code}{text}");
                if i == 0 {
                    first.push_str(&item);
                    lines.push(first.clone());
                } else {
                    lines.push(item);
                }
            }
            lines
        }
        BankProfile::MbankCollect => {
            let text = match &e.payer_id {
                Some(pid) => format!(
                    "{} TRANSAKCJA COLLECT; ID IPH: XX{pid}; Z RACH.: {}; OD: {}  {}; TYT.: {}; TNR: {tnr}",
                    e.op_code, e.counterparty, e.name, e.address, e.title
                ),
                None if e.credit => format!(
                    "{} {}; Z RACH.: {}; OD: {}  {}; TYT.: {}; TNR: {tnr}",
                    e.op_code, e.operation, e.counterparty, e.name, e.address, e.title
                ),
                None => format!(
                    "{} {}; NA RACH.: {}; DO: {}  {}; TYT.: {}; TNR: {tnr}",
                    e.op_code, e.operation, e.counterparty, e.name, e.address, e.title
                ),
            };
            // Wrap at 65 characters; never start a continuation line with ':' or '-', which a
            // reader could take for a tag or a statement end.
            let chars: Vec<char> = text.chars().collect();
            let mut lines = Vec::new();
            let mut start = 0;
            while start < chars.len() {
                let mut end = (start + 61).min(chars.len());
                while end < chars.len() && matches!(chars[end], ':' | '-' | '{') {
                    end -= 1;
                }
                lines.push(chars[start..end].iter().collect());
                start = end;
            }
            lines
        }
    }
}

/// Writes the statements of a spec and returns what was written.
pub fn write_statements(spec: &BankSimSpec, out: &mut impl Write) -> io::Result<BankSimSummary> {
    let profile = spec.profile;
    let account = main_account(spec);
    let mut summary = BankSimSummary {
        account: account.clone(),
        sort_code: profile.sort_code(),
        virtual_prefix: format!("{}{}", profile.sort_code(), spec.client_code),
        statement_references: Vec::new(),
        entries_written: 0,
        entries: Vec::new(),
    };
    let mut w = Writer {
        out,
        eol: if spec.crlf { "\r\n" } else { "\n" },
        charset: spec.charset,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0xBA4C_57A7);
    let mut bal = spec.opening_balance;
    let mut batch = 41_000_000u64 + rng.gen_range(0..1_000_000u64);
    for s in 0..spec.statements {
        let day = spec.first_day.add_days(s as i32);
        let (y, m, d) = day.parts();
        let reference = match profile {
            BankProfile::PkoBp => format!("WB{y:04}{m:02}{d:02}/{}", s + 1),
            BankProfile::Pekao => format!("{:05}", 150 + s),
            BankProfile::MbankCollect => format!("ST{}CYC/1", yymmdd(day)),
        };
        summary.statement_references.push(reference.clone());
        w.line(&format!(":20:{reference}"))?;
        match profile {
            BankProfile::Pekao => w.line(&format!(":25:/PL{account}"))?,
            _ => w.line(&format!(":25:PL{account}"))?,
        }
        match profile {
            BankProfile::MbankCollect => w.line(&format!(":28C:{}/1", s + 1))?,
            _ => w.line(&format!(":28C:{:05}", s + 1))?,
        }
        w.line(&balance("60F", bal, day))?;

        let mut left = [
            spec.virtual_credits,
            spec.title_credits,
            spec.gateway_payouts,
            spec.debits,
        ];
        let total: u32 = left.iter().sum();
        let fixed: Vec<&SimPayout> = spec
            .fixed_payouts
            .iter()
            .filter(|p| p.statement == s)
            .collect();
        for idx in 0..total + fixed.len() as u32 {
            let fixed_payout = idx.checked_sub(total).and_then(|i| fixed.get(i as usize));
            let (entry, truth_kind) = if let Some(p) = fixed_payout {
                let e = payout_entry(
                    profile,
                    p.gateway,
                    &p.reference,
                    p.amount_grosze,
                    gateway_account(p.gateway),
                );
                let k = SimEntryKind::GatewayPayout {
                    gateway: p.gateway.as_str(),
                    reference: p.reference.clone(),
                    payments: 0,
                };
                (e, k)
            } else {
                // Draw the kind of the next entry in proportion to what is left (streaming shuffle).
                let remaining: u32 = left.iter().sum();
                let mut pick = rng.gen_range(0..remaining);
                let mut kind = 0;
                while pick >= left[kind] {
                    pick -= left[kind];
                    kind += 1;
                }
                left[kind] -= 1;
                let (name, address) = person(&mut rng);
                let counterparty = foreign_account(&mut rng);
                match kind {
                    0 => {
                        let t = taxpayer(spec, rng.gen_range(1..=spec.taxpayers.max(1)));
                        const TITLES: [&str; 4] = [
                            "Podatek od nieruchomości 2026 rata 1",
                            "Opłata za gospodarowanie odpadami 03/2026",
                            "Łączne zobowiązanie pieniężne rata I",
                            "Podatek rolny 2026",
                        ];
                        let e = Entry {
                            credit: true,
                            amount: rng.gen_range(100..500_000),
                            op_code: if profile == BankProfile::MbankCollect {
                                "911"
                            } else {
                                "152"
                            },
                            operation: "PRZELEW ZEWNĘTRZNY PRZYCHODZĄCY",
                            title: TITLES[rng.gen_range(0..TITLES.len())].to_owned(),
                            name,
                            address,
                            counterparty,
                            virtual_nrb: (profile != BankProfile::MbankCollect)
                                .then(|| t.virtual_nrb.clone()),
                            payer_id: (profile == BankProfile::MbankCollect)
                                .then(|| t.payer_id.clone()),
                        };
                        let k = SimEntryKind::VirtualAccount {
                            nrb: t.virtual_nrb,
                            account_key: t.account_key,
                        };
                        (e, k)
                    }
                    1 => {
                        let t = taxpayer(spec, rng.gen_range(1..=spec.taxpayers.max(1)));
                        let (title, token) = if rng.gen_bool(0.5) {
                            (
                                format!(
                                    "Podatek od nieruchomości konto podatnika {} rata 2",
                                    t.account_key
                                ),
                                t.account_key.clone(),
                            )
                        } else {
                            (
                                format!("Decyzja nr {} podatek rolny", t.decision),
                                t.decision.clone(),
                            )
                        };
                        let e = Entry {
                            credit: true,
                            amount: rng.gen_range(100..500_000),
                            op_code: if profile == BankProfile::MbankCollect {
                                "510"
                            } else {
                                "152"
                            },
                            operation: "PRZELEW ZEWNĘTRZNY PRZYCHODZĄCY",
                            title,
                            name,
                            address,
                            counterparty,
                            virtual_nrb: None,
                            payer_id: None,
                        };
                        (
                            e,
                            SimEntryKind::Title {
                                token,
                                account_key: t.account_key,
                            },
                        )
                    }
                    2 => {
                        batch += u64::from(rng.gen_range(1..50u32));
                        let payments = rng.gen_range(5..60u32);
                        let amount: i64 = (0..payments)
                            .map(|_| rng.gen_range(1_000..300_000i64))
                            .sum();
                        let gateway = if idx % 2 == 0 {
                            SimGateway::Przelewy24
                        } else {
                            SimGateway::Payu
                        };
                        let reference = match gateway {
                            SimGateway::Przelewy24 => batch.to_string(),
                            SimGateway::Payu => format!("PU{batch:X}"),
                        };
                        let e = payout_entry(profile, gateway, &reference, amount, counterparty);
                        (
                            e,
                            SimEntryKind::GatewayPayout {
                                gateway: gateway.as_str(),
                                reference,
                                payments,
                            },
                        )
                    }
                    _ => {
                        let e = Entry {
                            credit: false,
                            amount: rng.gen_range(5_000..2_000_000),
                            op_code: if profile == BankProfile::MbankCollect {
                                "310"
                            } else {
                                "641"
                            },
                            operation: "PRZELEW WYCHODZĄCY",
                            title: format!(
                                "Faktura FV/{}/2026 wywóz odpadów",
                                rng.gen_range(1..999)
                            ),
                            name: "PRZEDSIĘBIORSTWO KOMUNALNE SP. Z O.O.".to_owned(),
                            address: "UL. SZKOLNA 1 34-400 NOWY TARG".to_owned(),
                            counterparty,
                            virtual_nrb: None,
                            payer_id: None,
                        };
                        (e, SimEntryKind::Debit)
                    }
                }
            };
            let seq = summary.entries_written + 1;
            let bank_reference = match profile {
                BankProfile::PkoBp => Some(format!("{:016}", 6_460_500_500_000_000u64 + seq)),
                BankProfile::Pekao => None,
                BankProfile::MbankCollect => Some(format!("MB{}{seq:06}", yymmdd(day))),
            };
            let customer_reference = "NONREF".to_owned();
            let fault = |f: &dyn Fn(&Fault) -> bool| spec.faults.iter().any(f);
            let broken_amount = fault(
                &|f| matches!(f, Fault::BrokenAmount { statement, entry } if *statement == s && *entry == idx),
            );
            let unknown_86 = fault(
                &|f| matches!(f, Fault::UnknownLayout86 { statement, entry } if *statement == s && *entry == idx),
            );
            let wrong_enc = fault(
                &|f| matches!(f, Fault::WrongEncoding { statement, entry } if *statement == s && *entry == idx),
            );
            let mark = if entry.credit { "C" } else { "D" };
            let amount = if broken_amount {
                format!("{}.{:02}", entry.amount / 100, entry.amount % 100)
            } else {
                swift_amount(entry.amount)
            };
            let line61 = match profile {
                BankProfile::PkoBp => format!(
                    ":61:{}{}{mark}{amount}N{}{customer_reference}//{}",
                    yymmdd(day),
                    mmdd(day),
                    entry.op_code,
                    bank_reference.as_deref().unwrap_or_default()
                ),
                BankProfile::Pekao => format!(
                    ":61:{}{}{mark}N{amount:0>15}N{}{customer_reference}",
                    yymmdd(day),
                    mmdd(day),
                    entry.op_code
                ),
                BankProfile::MbankCollect => format!(
                    ":61:{}{}{mark}N{amount}NTRF{customer_reference}//{}",
                    yymmdd(day),
                    mmdd(day),
                    bank_reference.as_deref().unwrap_or_default()
                ),
            };
            w.line(&line61)?;
            match profile {
                BankProfile::PkoBp => w.line(&format!("{} 0", entry.op_code))?,
                BankProfile::MbankCollect => w.line(&format!(
                    "{}-{}",
                    entry.op_code,
                    if entry.payer_id.is_some() {
                        "TRANSAKCJA IPH"
                    } else {
                        "PRZELEW"
                    }
                ))?,
                BankProfile::Pekao => {}
            }
            let tnr = format!("{}{seq:09}.{:06}", 179_171, seq % 1_000_000);
            let lines = if unknown_86 {
                vec![format!("PRZELEW OD {} TYTUŁEM {}", entry.name, entry.title)]
            } else {
                details_86(profile, &entry, &tnr)
            };
            for (i, l) in lines.iter().enumerate() {
                let l = if i == 0 {
                    format!(":86:{l}")
                } else {
                    l.clone()
                };
                if wrong_enc {
                    w.line_in(&l, SimCharset::Cp1250)?;
                } else {
                    w.line(&l)?;
                }
            }
            if entry.credit {
                bal += entry.amount;
            } else {
                bal -= entry.amount;
            }
            summary.entries_written += 1;
            if spec.keep_truth {
                summary.entries.push(SimEntry {
                    statement: reference.clone(),
                    index: idx,
                    value_date: day.to_string(),
                    credit: entry.credit,
                    amount_grosze: entry.amount,
                    customer_reference,
                    bank_reference,
                    title: entry.title,
                    kind: truth_kind,
                    faulty: broken_amount || unknown_86 || wrong_enc,
                });
            }
        }
        let bad_closing = spec
            .faults
            .iter()
            .any(|f| matches!(f, Fault::BadClosingBalance { statement } if *statement == s));
        let stated = if bad_closing { bal + 100 } else { bal };
        w.line(&balance("62F", stated, day))?;
        w.line(&balance("64", stated, day))?;
        w.line("-")?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_balanced_headers() {
        let spec = BankSimSpec::new(7, BankProfile::PkoBp);
        let mut a = Vec::new();
        let mut b = Vec::new();
        let sa = write_statements(&spec, &mut a).unwrap();
        write_statements(&spec, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(sa.entries_written, 3 * 40);
        assert_eq!(BankProfile::PkoBp.sort_code(), "10202964");
        assert_eq!(BankProfile::Pekao.sort_code(), "12401255");
        assert_eq!(BankProfile::MbankCollect.sort_code(), "11401081");
        for profile in [
            BankProfile::PkoBp,
            BankProfile::Pekao,
            BankProfile::MbankCollect,
        ] {
            let mut out = Vec::new();
            write_statements(&BankSimSpec::new(8, profile), &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.lines().all(|l| l.chars().count() <= 65),
                "{profile:?}: line longer than MT940's 65 characters"
            );
        }
    }

    #[test]
    fn virtual_accounts_carry_valid_check_digits() {
        let spec = BankSimSpec::new(1, BankProfile::PkoBp);
        let t = taxpayers(&spec);
        assert_eq!(t.len(), 200);
        // Spec §7: sort code 10202964, client 1234, payer 000000012345.
        assert_eq!(
            identifiers::nrb("102029641234000000012345"),
            "66102029641234000000012345"
        );
        assert!(t
            .iter()
            .all(|t| t.virtual_nrb[2..].starts_with("102029641234")));
    }

    #[test]
    fn charsets_encode_polish_letters() {
        assert_eq!(SimCharset::Cp852.encode("Ę"), vec![0xA8]);
        assert_eq!(SimCharset::Cp1250.encode("ŚŹ"), vec![0x8C, 0x8F]);
        assert_eq!(SimCharset::Iso8859_2.encode("ąś"), vec![0xB1, 0xB6]);
    }
}
