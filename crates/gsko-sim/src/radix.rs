//! Simulated RADIX exports (format version 1, `urn:gsko:radix-export:1`, defined by
//! `schemas/radix/example-full-v1.xml`).
//!
//! The generator is deterministic: the same [`RadixExportSpec`] always yields byte-identical
//! output. It streams: taxpayers are generated in fixed-size blocks, each from its own ChaCha
//! stream (key = seed and tenant, stream = block number), so any block can be regenerated
//! independently. The file groups records by kind (all taxpayers, then all accounts, ...), so
//! the writer makes one pass over the blocks per section and regenerates each block every
//! pass: memory stays flat no matter how many taxpayers are asked for, at the price of
//! generating each block five times (cheap compared with formatting the XML).
//!
//! Everything a record contains is drawn independently of the export's date and kind; the
//! export then shows what had happened by its `as_of` date. A full export at 1 October and an
//! incremental one at 1 November with the same seed therefore agree with each other: the
//! incremental carries exactly the records that changed in the 31 days before its date.
//!
//! Record ids do not depend on the seed (`T0000001`, `A-PROP-0000001`, `L-2026-PROP-0000001`,
//! `P-2026-PROP-0000001-03`; demo residents `TD0001`, `A-PROP-D0001`), so they are unique within
//! a tenant and stable; the seed decides who and what they are. Versions are `version_base`
//! plus an offset below 100.
//!
//! What the simulated ledger contains: a charge (przypis) when a decision is delivered or a
//! declaration filed, payments (on time, late, missing, the whole year at once, or twice, which
//! leaves an overpayment) and a 16 zł reminder cost 30 days after the first installment left
//! unpaid. Balances are derived from exactly those postings; interest is reported as 0.00
//! because the simulated ledger books none (GSKO computes interest estimates itself, §1.6).
//!
//! Size: about 3.4 MB per 1 000 taxpayers (quarterly waste fee) to 4.3 MB (monthly), mostly
//! postings and installments.

use crate::date::SimDate;
use crate::identifiers;
use crate::municipalities::{municipality_or_generic, Municipality, WasteSchedule};
use crate::names;
use crate::xml::{amount, escape};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Taxpayers per generation block. Couples never straddle a block, so a block is the unit of
/// independent regeneration.
const BLOCK: u64 = 16;

/// An incremental export carries the records that changed in this many days before its date.
pub const INCREMENTAL_WINDOW_DAYS: i32 = 31;

/// Koszty upomnienia since 13.10.2021 (Dz.U. 2021 poz. 67), in grosze.
const REMINDER_COST: i64 = 1600;

/// Fixed sort code prefix of the simulated municipal bank (bank 1020, branch 212; the eighth
/// digit is computed).
const BANK_AND_BRANCH: &str = "1020212";

/// Full or incremental export (the `kind` attribute of `<radix-export>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    /// A complete snapshot of the tenant.
    Full,
    /// Only records changed in the [`INCREMENTAL_WINDOW_DAYS`] before the export date.
    Incremental,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Full => "full",
            ExportKind::Incremental => "incremental",
        }
    }
}

/// A holder's role on a tax account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HolderRole {
    Owner,
    /// współwłaściciel, jointly liable
    CoOwner,
}

impl HolderRole {
    pub fn as_str(self) -> &'static str {
        match self {
            HolderRole::Owner => "owner",
            HolderRole::CoOwner => "co_owner",
        }
    }
}

/// A postal address as the export carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAddress {
    /// `None` in villages where houses are numbered within the village.
    pub street: Option<String>,
    pub building: String,
    pub unit: Option<String>,
    pub postal_code: String,
    pub city: String,
}

/// A caller-chosen resident put into an export as holder of a property account, so that the
/// demo can log in as a known person (one resident owning property in two municipalities: the
/// same PESEL in two specs; a couple: two residents with the same `account_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoResident {
    /// Must be a valid PESEL (checked with the simulator's own checksum; invalid → error).
    pub pesel: String,
    /// Given name(s) and surname, as printed.
    pub name: String,
    /// `None`: an address in the tenant is generated for them.
    pub address: Option<SimAddress>,
    pub email: Option<String>,
    pub role: HolderRole,
    /// Residents with the same key hold one property account together.
    pub account_key: String,
    /// Annual property tax of the shared account in full złoty (taken from the account's owner,
    /// or from its first resident when nobody is owner).
    pub annual_property_tax_zl: u32,
    /// How many installments (from the first) were paid on time; the rest are unpaid.
    pub installments_paid: u8,
}

impl DemoResident {
    /// Owner of a property account taxed 1 003 zł a year with the first installment paid.
    pub fn owner(
        pesel: impl Into<String>,
        name: impl Into<String>,
        account_key: impl Into<String>,
    ) -> Self {
        DemoResident {
            pesel: pesel.into(),
            name: name.into(),
            address: None,
            email: None,
            role: HolderRole::Owner,
            account_key: account_key.into(),
            annual_property_tax_zl: 1003,
            installments_paid: 1,
        }
    }

    /// Co-owner of the account identified by `account_key`.
    pub fn co_owner(
        pesel: impl Into<String>,
        name: impl Into<String>,
        account_key: impl Into<String>,
    ) -> Self {
        DemoResident {
            role: HolderRole::CoOwner,
            ..DemoResident::owner(pesel, name, account_key)
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadixExportSpec {
    /// TERC code of the municipality (7 digits).
    pub tenant: String,
    /// Number of generated taxpayers (demo residents come on top).
    pub taxpayers: usize,
    pub seed: u64,
    /// Tax year of the liabilities.
    pub year: i32,
    pub kind: ExportKind,
    /// Record versions are `version_base` plus a small offset (< 100). An export meant to
    /// supersede an earlier one must use a `version_base` at least 100 higher.
    pub version_base: i64,
    /// The export's date; postings after it have not happened yet. Default: 1 October of `year`
    /// (three property-tax installments due, one not yet).
    pub as_of: Option<SimDate>,
    pub extra_residents: Vec<DemoResident>,
}

impl RadixExportSpec {
    /// A full export with version base 1000, dated 1 October of `year`, without demo residents.
    pub fn new(tenant: impl Into<String>, taxpayers: usize, seed: u64, year: i32) -> Self {
        RadixExportSpec {
            tenant: tenant.into(),
            taxpayers,
            seed,
            year,
            kind: ExportKind::Full,
            version_base: 1000,
            as_of: None,
            extra_residents: Vec::new(),
        }
    }

    pub fn as_of_date(&self) -> SimDate {
        self.as_of.unwrap_or_else(|| SimDate::ymd(self.year, 10, 1))
    }

    /// The `export-id` attribute: unique per tenant, kind, seed and version base.
    pub fn export_id(&self) -> String {
        format!(
            "GSKO-SIM-{}-{}-{}-{}",
            self.tenant,
            self.kind.as_str(),
            self.seed,
            self.version_base
        )
    }

    /// The file name [`generate_to_dir`] writes.
    pub fn file_name(&self) -> String {
        format!(
            "radix-{}-{}-{}.xml",
            self.tenant,
            self.kind.as_str(),
            self.seed
        )
    }
}

/// Counts of what an export contains, for tests and for the demo's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeneratedSummary {
    pub taxpayers: u64,
    pub accounts: u64,
    pub liabilities: u64,
    pub installments: u64,
    pub postings: u64,
    pub balances: u64,
    /// Sum of all liabilities' totals, in grosze.
    pub liabilities_total_grosze: i64,
    /// Size of the file.
    pub bytes: u64,
}

// ----------------------------------------------------------------------------------------
// The in-memory model of one block (never more than a block is alive at a time).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaxpayerKind {
    Natural,
    Legal,
    OrgUnit,
}

impl TaxpayerKind {
    fn as_str(self) -> &'static str {
        match self {
            TaxpayerKind::Natural => "natural",
            TaxpayerKind::Legal => "legal",
            TaxpayerKind::OrgUnit => "org_unit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Levy {
    Property,
    Agricultural,
    Forest,
    Joint,
    Vehicle,
    WasteFee,
    DogFee,
}

impl Levy {
    fn as_str(self) -> &'static str {
        match self {
            Levy::Property => "property",
            Levy::Agricultural => "agricultural",
            Levy::Forest => "forest",
            Levy::Joint => "joint",
            Levy::Vehicle => "vehicle",
            Levy::WasteFee => "waste_fee",
            Levy::DogFee => "dog_fee",
        }
    }

    /// Short code used in record ids.
    fn code(self) -> &'static str {
        match self {
            Levy::Property => "PROP",
            Levy::Agricultural => "ROL",
            Levy::Forest => "LES",
            Levy::Joint => "LZP",
            Levy::Vehicle => "SRT",
            Levy::WasteFee => "ODP",
            Levy::DogFee => "PSY",
        }
    }

    /// Digit identifying the levy inside a virtual account number.
    fn digit(self) -> u32 {
        match self {
            Levy::Property => 1,
            Levy::Agricultural => 2,
            Levy::Forest => 3,
            Levy::Joint => 4,
            Levy::Vehicle => 5,
            Levy::WasteFee => 6,
            Levy::DogFee => 7,
        }
    }
}

struct Contact {
    kind: &'static str,
    value: String,
    /// The day the contact was given to the office; `None` = known before the year began.
    added_on: Option<SimDate>,
}

struct Taxpayer {
    id: String,
    version: i64,
    kind: TaxpayerKind,
    pesel: Option<String>,
    nip: Option<String>,
    regon: Option<String>,
    name: String,
    address: SimAddress,
    contacts: Vec<Contact>,
}

impl Taxpayer {
    /// The record changed on this day (a contact was added), if it changed during the year.
    fn changed_on(&self) -> Option<SimDate> {
        self.contacts.iter().filter_map(|c| c.added_on).max()
    }
}

struct Decision {
    number: String,
    issued_on: SimDate,
    delivered_on: SimDate,
}

struct Installment {
    seq: u8,
    due: SimDate,
    amount: i64,
}

struct Liability {
    id: String,
    version: i64,
    levy: Levy,
    year: i32,
    total: i64,
    decision: Option<Decision>,
    installments: Vec<Installment>,
    /// The liability exists from this day (decision delivered or declaration filed).
    created_on: SimDate,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PostingKind {
    Charge,
    Payment,
    ReminderCost,
}

impl PostingKind {
    fn as_str(self) -> &'static str {
        match self {
            PostingKind::Charge => "charge",
            PostingKind::Payment => "payment",
            PostingKind::ReminderCost => "reminder_cost",
        }
    }
}

struct Posting {
    id: String,
    version: i64,
    kind: PostingKind,
    date: SimDate,
    amount: i64,
    liability: Option<String>,
    installment: Option<u8>,
    description: Option<&'static str>,
}

struct Account {
    id: String,
    version: i64,
    levy: Levy,
    holders: Vec<(String, HolderRole)>,
    nrb: String,
    liabilities: Vec<Liability>,
    postings: Vec<Posting>,
}

/// What the ledger says about an account on a day, derived from its postings up to that day.
struct BalanceAt {
    version: i64,
    principal: i64,
    costs: i64,
    overpayment: i64,
}

impl Account {
    fn balance_at(&self, as_of: SimDate, version_base: i64) -> BalanceAt {
        let (mut charged, mut paid, mut costs, mut n) = (0i64, 0i64, 0i64, 0i64);
        for p in self.postings.iter().filter(|p| p.date <= as_of) {
            n += 1;
            match p.kind {
                PostingKind::Charge => charged += p.amount,
                PostingKind::Payment => paid += p.amount,
                PostingKind::ReminderCost => costs += p.amount,
            }
        }
        BalanceAt {
            // A balance changes with every posting, so its version counts them.
            version: version_base + 1 + n.min(90),
            principal: (charged - paid).max(0),
            costs,
            overpayment: (paid - charged).max(0),
        }
    }
}

#[derive(Default)]
struct Block {
    taxpayers: Vec<Taxpayer>,
    accounts: Vec<Account>,
}

// ----------------------------------------------------------------------------------------
// Generation

/// Everything the block generator needs that is fixed for the whole export.
struct Ctx {
    key: [u8; 32],
    tenant: String,
    muni: Municipality,
    year: i32,
    version_base: i64,
    /// Bijection parameters making PESEL/NIP/REGON unique per taxpayer number.
    id_offset: u64,
    nrb_prefix: String,
    office_base: usize,
    total: u64,
}

impl Ctx {
    fn new(spec: &RadixExportSpec) -> Ctx {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&spec.seed.to_le_bytes());
        for (k, b) in key[8..].iter_mut().zip(spec.tenant.bytes()) {
            *k = b;
        }
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(u64::MAX);
        let sort = format!(
            "{BANK_AND_BRANCH}{}",
            identifiers::sort_code_check_digit(BANK_AND_BRANCH)
        );
        Ctx {
            key,
            tenant: spec.tenant.clone(),
            muni: municipality_or_generic(&spec.tenant),
            year: spec.year,
            version_base: spec.version_base,
            id_offset: rng.gen(),
            nrb_prefix: format!("{sort}{}", &spec.tenant[..6]),
            office_base: rng.gen_range(0..TAX_OFFICES.len()),
            total: spec.taxpayers as u64,
        }
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.key);
        rng.set_stream(stream);
        rng
    }

    fn blocks(&self) -> u64 {
        self.total.div_ceil(BLOCK)
    }

    fn d(&self, m: u32, d: u32) -> SimDate {
        SimDate::ymd(self.year, m, d)
    }

    /// The 24-digit BBAN → NRB of the virtual account of one account: tenant, levy and the
    /// taxpayer number inside the account part, so a payment identifies its account.
    fn virtual_account(&self, levy: Levy, number: u64) -> String {
        identifiers::nrb(&format!(
            "{}{}{:09}",
            self.nrb_prefix,
            levy.digit(),
            number % 1_000_000_000
        ))
    }
}

/// Urzędy skarbowe prefixes of NIPs (Bolesławiec, Lubań, Zgorzelec, Jelenia Góra, Legnica, ...).
const TAX_OFFICES: &[&str] = &[
    "612", "613", "615", "611", "691", "694", "692", "882", "886", "898", "899", "914",
];

/// An affine bijection of `0..m` (mul must be coprime with m), so that distinct taxpayer
/// numbers get distinct identifier bodies without remembering the ones already issued.
fn scramble(x: u64, m: u64, mul: u64, add: u64) -> u64 {
    ((u128::from(x % m) * u128::from(mul) + u128::from(add)) % u128::from(m)) as u64
}

/// Round to full złoty, art. 63 §1 OP: below 50 gr down, from 50 gr up.
fn round_zloty(grosze: i64) -> i64 {
    (grosze + 50) / 100 * 100
}

/// Splits `total` into `n` installments that sum exactly to it; the first carries the
/// remainder grosze, as decisions usually print it.
fn split(total: i64, n: i64) -> Vec<i64> {
    let base = total / n;
    let mut v = vec![base; n as usize];
    v[0] += total - base * n;
    v
}

fn pick<'a, R: Rng>(rng: &mut R, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

fn gen_address<R: Rng>(rng: &mut R, muni: &Municipality) -> SimAddress {
    let loc = muni.localities[rng.gen_range(0..muni.localities.len())];
    let (street, building, unit) = if loc.has_streets {
        let mut building = rng.gen_range(1..=120).to_string();
        if rng.gen_bool(0.1) {
            building.push(['A', 'B', 'C'][rng.gen_range(0..3)]);
        }
        let unit = rng.gen_bool(0.4).then(|| rng.gen_range(1..=60).to_string());
        (Some(pick(rng, names::STREETS).to_owned()), building, unit)
    } else {
        (None, rng.gen_range(1..=250).to_string(), None)
    };
    SimAddress {
        street,
        building,
        unit,
        postal_code: loc.postal_code.to_owned(),
        city: loc.name.to_owned(),
    }
}

/// Contacts of a person; some were added during the year (which makes the taxpayer record
/// change and appear in an incremental export).
fn gen_person_contacts<R: Rng>(rng: &mut R, ctx: &Ctx, first: &str, surname: &str) -> Vec<Contact> {
    let mut v = Vec::new();
    if rng.gen_bool(0.4) {
        let added_on = rng
            .gen_bool(0.25)
            .then(|| ctx.d(1, 1).add_days(rng.gen_range(0..365)));
        let value = format!(
            "{}.{}{}@example.pl",
            names::ascii_fold(first),
            names::ascii_fold(surname),
            rng.gen_range(1..100)
        );
        v.push(Contact {
            kind: "email",
            value,
            added_on,
        });
    }
    if rng.gen_bool(0.5) {
        let value = format!(
            "+48{}{:08}",
            ['5', '6', '7', '8'][rng.gen_range(0..4)],
            rng.gen_range(0..100_000_000u32)
        );
        v.push(Contact {
            kind: "phone",
            value,
            added_on: None,
        });
    }
    v
}

struct Person {
    male: bool,
    first: &'static str,
    surname_male: &'static str,
    birth_year: i32,
}

impl Person {
    fn surname(&self) -> String {
        if self.male {
            self.surname_male.to_owned()
        } else {
            names::feminine_surname(self.surname_male)
        }
    }
}

fn gen_person<R: Rng>(
    rng: &mut R,
    male: bool,
    surname_male: &'static str,
    birth_year: i32,
) -> Person {
    let first = if male {
        pick(rng, names::MALE_FIRST)
    } else {
        pick(rng, names::FEMALE_FIRST)
    };
    Person {
        male,
        first,
        surname_male,
        birth_year,
    }
}

/// A natural person's taxpayer record. The PESEL's birth day and serial come from a bijection
/// of the taxpayer number (unique within an export of up to 1.8 million people); the birth
/// year comes from the generator so that spouses are of similar age.
fn natural_taxpayer<R: Rng>(
    rng: &mut R,
    ctx: &Ctx,
    number: u64,
    p: &Person,
    address: SimAddress,
) -> Taxpayer {
    const M: u64 = 365 * 5000;
    let s = scramble(number, M, 999_983, ctx.id_offset);
    let birth = SimDate::ymd(p.birth_year, 1, 1).add_days((s / 5000) as i32);
    let pesel = identifiers::pesel(birth, (s % 5000 / 5) as u32, p.male, (s % 5) as u32);
    let surname = p.surname();
    Taxpayer {
        id: format!("T{number:07}"),
        version: ctx.version_base + rng.gen_range(1..=5),
        kind: TaxpayerKind::Natural,
        pesel: Some(pesel),
        nip: None,
        regon: None,
        name: format!("{} {}", p.first, surname),
        contacts: gen_person_contacts(rng, ctx, p.first, &surname),
        address,
    }
}

fn nip_for(ctx: &Ctx, number: u64, rng: &mut impl Rng) -> String {
    // 3-digit tax office + 5 digits unique per number (within 100 000, then the office moves
    // on) + one free digit chosen so that the check digit exists.
    let office = TAX_OFFICES[(ctx.office_base + (number / 100_000) as usize) % TAX_OFFICES.len()];
    let body = scramble(number, 100_000, 7_919, ctx.id_offset);
    let start = rng.gen_range(0..10u64);
    (0..10)
        .find_map(|k| {
            let first9 = format!("{office}{body:05}{}", (start + k) % 10);
            identifiers::nip_check_digit(&first9).map(|c| format!("{first9}{c}"))
        })
        .expect("one of ten last digits always gives a valid NIP")
}

fn regon_for(ctx: &Ctx, number: u64, rng: &mut impl Rng) -> String {
    // Prefix 02 (dolnośląskie's historical REGON prefix), unique body per number.
    let body8 = format!(
        "{:02}{:06}",
        2 + 2 * (number / 1_000_000 % 40),
        scramble(number, 1_000_000, 999_979, ctx.id_offset)
    );
    let r9 = format!("{body8}{}", identifiers::regon_check_digit(&body8));
    if rng.gen_bool(0.15) {
        let body13 = format!("{r9}{:04}", rng.gen_range(1..100));
        format!("{body13}{}", identifiers::regon_check_digit(&body13))
    } else {
        r9
    }
}

fn legal_taxpayer<R: Rng>(rng: &mut R, ctx: &Ctx, number: u64) -> Taxpayer {
    let address = gen_address(rng, &ctx.muni);
    let word = pick(rng, names::COMPANY_WORDS);
    let surname = pick(rng, names::SURNAMES);
    let (kind, name) = match rng.gen_range(0..10) {
        0 => (
            TaxpayerKind::OrgUnit,
            format!(
                "Wspólnota Mieszkaniowa {} {}",
                address.street.as_deref().unwrap_or(&address.city),
                address.building
            ),
        ),
        1 => (
            TaxpayerKind::Legal,
            format!("Parafia Rzymskokatolicka pw. {}", pick(rng, names::SAINTS)),
        ),
        2 => (TaxpayerKind::Legal, format!("{surname} & Wspólnicy sp.k.")),
        3 => (
            TaxpayerKind::Legal,
            format!("Spółdzielnia Mieszkaniowa „{word}”"),
        ),
        4 => (TaxpayerKind::OrgUnit, format!("{surname} i Synowie s.c.")),
        5 | 6 => (
            TaxpayerKind::Legal,
            format!("Przedsiębiorstwo Handlowo-Usługowe „{word}” sp. z o.o."),
        ),
        _ => (TaxpayerKind::Legal, format!("{word} sp. z o.o.")),
    };
    let mut contacts = Vec::new();
    if rng.gen_bool(0.5) {
        let ade = format!(
            "AE:PL-{:05}-{:05}-{}-{:02}",
            rng.gen_range(0..100_000),
            rng.gen_range(0..100_000),
            (0..5)
                .map(|_| b"ABCDEFGHJKLMNPRSTUWXYZ"[rng.gen_range(0..22)] as char)
                .collect::<String>(),
            rng.gen_range(10..100)
        );
        contacts.push(Contact {
            kind: "ade",
            value: ade,
            added_on: None,
        });
    }
    if rng.gen_bool(0.6) {
        let value = format!("biuro@{}.example.pl", names::ascii_fold(word));
        let added_on = rng
            .gen_bool(0.2)
            .then(|| ctx.d(1, 1).add_days(rng.gen_range(0..365)));
        contacts.push(Contact {
            kind: "email",
            value,
            added_on,
        });
    }
    Taxpayer {
        id: format!("T{number:07}"),
        version: ctx.version_base + rng.gen_range(1..=5),
        kind,
        pesel: None,
        nip: Some(nip_for(ctx, number, rng)),
        regon: Some(regon_for(ctx, number, rng)),
        name,
        address,
        contacts,
    }
}

/// How a taxpayer pays an account's installments.
#[derive(Clone, Copy)]
enum PayHabit {
    OnTime,
    Late,
    /// pays some installments, forgets others
    Sloppy,
    /// pays the whole year at once by the first due date
    WholeYear,
    /// pays the first installment twice (overpayment)
    Twice,
}

fn pay_habit<R: Rng>(rng: &mut R) -> PayHabit {
    match rng.gen_range(0..100) {
        0..=54 => PayHabit::OnTime,
        55..=72 => PayHabit::Late,
        73..=87 => PayHabit::Sloppy,
        88..=96 => PayHabit::WholeYear,
        _ => PayHabit::Twice,
    }
}

const PAYMENT_DESCRIPTIONS: &[&str] = &[
    "wpłata przelew",
    "wpłata przelew",
    "wpłata kasa",
    "ePłatności",
    "wpłata Przelewy24",
];

/// Builds a liability with its charge, payments and reminder costs on `acct`.
#[allow(clippy::too_many_arguments)]
fn add_liability<R: Rng>(
    rng: &mut R,
    ctx: &Ctx,
    acct: &mut Account,
    total: i64,
    schedule: &[SimDate],
    decision: Option<Decision>,
    created_on: SimDate,
    habit: PayHabit,
) {
    let amounts = split(total, schedule.len() as i64);
    let installments: Vec<Installment> = schedule
        .iter()
        .zip(amounts)
        .enumerate()
        .map(|(i, (&due, amount))| Installment {
            seq: i as u8 + 1,
            due,
            amount,
        })
        .collect();
    let lid = format!("L-{}-{}", ctx.year, acct.id.trim_start_matches("A-"));
    let v = ctx.version_base;
    let mut postings = Vec::new();
    let mut push = |kind, date, amount, inst: Option<u8>, description| {
        postings.push((kind, date, amount, inst, description))
    };
    push(PostingKind::Charge, created_on, total, None, None);
    let mut reminded = false;
    match habit {
        PayHabit::WholeYear => {
            let date = installments[0]
                .due
                .add_days(-rng.gen_range(0..6))
                .max(created_on);
            push(
                PostingKind::Payment,
                date,
                total,
                None,
                Some(pick(rng, PAYMENT_DESCRIPTIONS)),
            );
        }
        _ => {
            for (i, inst) in installments.iter().enumerate() {
                let paid_on = match habit {
                    PayHabit::Late => Some(inst.due.add_days(rng.gen_range(1..=60))),
                    PayHabit::Sloppy if rng.gen_bool(0.5) => None,
                    _ => Some(inst.due.add_days(-rng.gen_range(0..=10)).max(created_on)),
                };
                if let Some(date) = paid_on {
                    let desc = pick(rng, PAYMENT_DESCRIPTIONS);
                    push(
                        PostingKind::Payment,
                        date,
                        inst.amount,
                        Some(inst.seq),
                        Some(desc),
                    );
                    if i == 0 && matches!(habit, PayHabit::Twice) {
                        push(
                            PostingKind::Payment,
                            date.add_days(rng.gen_range(1..=3)),
                            inst.amount,
                            Some(inst.seq),
                            Some(desc),
                        );
                    }
                }
                // One reminder per liability, 30 days after the first installment that was not
                // paid within them.
                let reminder_on = inst.due.add_days(30);
                if !reminded && paid_on.is_none_or(|d| d > reminder_on) {
                    reminded = true;
                    push(
                        PostingKind::ReminderCost,
                        reminder_on,
                        REMINDER_COST,
                        Some(inst.seq),
                        Some("koszty upomnienia"),
                    );
                }
            }
        }
    }
    postings.sort_by_key(|p| p.1);
    let base = acct.postings.len();
    for (k, (kind, date, amount, installment, description)) in postings.into_iter().enumerate() {
        acct.postings.push(Posting {
            id: format!("P-{}-{:02}", lid.trim_start_matches("L-"), base + k + 1),
            version: v + 1,
            kind,
            date,
            amount,
            liability: Some(lid.clone()),
            installment,
            description,
        });
    }
    acct.liabilities.push(Liability {
        id: lid,
        version: v + rng.gen_range(1..=2),
        levy: acct.levy,
        year: ctx.year,
        total,
        decision,
        installments,
        created_on,
    });
}

/// Installment dates of a decision-based levy on a natural person (art. 6 ust. 7 and 11a
/// upol): 15 Mar/May/Sep/Nov, or one payment by 15 March when the year's tax is ≤ 100 zł.
fn four_dates(ctx: &Ctx, total: i64) -> Vec<SimDate> {
    if total <= 10_000 {
        vec![ctx.d(3, 15)]
    } else {
        vec![ctx.d(3, 15), ctx.d(5, 15), ctx.d(9, 15), ctx.d(11, 15)]
    }
}

/// Monthly dates of a legal person's property tax (declaration): 31 January, then the 15th.
fn monthly_dates(ctx: &Ctx, first: SimDate) -> Vec<SimDate> {
    std::iter::once(first)
        .chain((2..=12).map(|m| ctx.d(m, 15)))
        .collect()
}

fn decision<R: Rng>(rng: &mut R, ctx: &Ctx, jrwa: &str, number: u64) -> Decision {
    let issued_on = ctx.d(1, 20).add_days(rng.gen_range(0..30));
    Decision {
        number: format!("FN.{jrwa}.{number}.{}", ctx.year),
        issued_on,
        delivered_on: issued_on.add_days(rng.gen_range(3..=20)),
    }
}

fn new_account(
    ctx: &Ctx,
    levy: Levy,
    number: u64,
    holders: Vec<(String, HolderRole)>,
    version: i64,
) -> Account {
    Account {
        id: format!("A-{}-{number:07}", levy.code()),
        version,
        levy,
        holders,
        nrb: ctx.virtual_account(levy, number),
        liabilities: Vec::new(),
        postings: Vec::new(),
    }
}

/// Property tax rates (grosze per m²) near the statutory maxima of the year (spec §3.1).
struct Rates {
    residential: i64,
    business: i64,
    business_land: i64,
    other_land: i64,
    /// agricultural tax per hectare (2.5 q of rye)
    agri_ha: i64,
    /// forest tax per hectare (0.22 m³ of wood)
    forest_ha: i64,
}

fn rates(year: i32) -> Rates {
    if year >= 2026 {
        Rates {
            residential: 125,
            business: 3553,
            business_land: 145,
            other_land: 70,
            agri_ha: 14_763,
            forest_ha: 4_630,
        }
    } else {
        Rates {
            residential: 119,
            business: 3400,
            business_land: 138,
            other_land: 67,
            agri_ha: 15_603,
            forest_ha: 4_578,
        }
    }
}

/// Accounts of a household of natural persons (`holders[0]` is the owner).
fn household_accounts<R: Rng>(
    rng: &mut R,
    ctx: &Ctx,
    number: u64,
    holders: &[String],
    flat: bool,
    rural: bool,
    out: &mut Vec<Account>,
) {
    let r = rates(ctx.year);
    let v = ctx.version_base;
    let all: Vec<(String, HolderRole)> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| {
            (
                h.clone(),
                if i == 0 {
                    HolderRole::Owner
                } else {
                    HolderRole::CoOwner
                },
            )
        })
        .collect();
    let owner = vec![all[0].clone()];
    // Property tax, or a joint payment order when the household also farms (łączne zobowiązanie).
    let farms = rural && rng.gen_bool(0.25);
    let property = if flat {
        rng.gen_range(28..=95) * r.residential + rng.gen_range(8..=60) * r.other_land
    } else {
        rng.gen_range(60..=240) * r.residential + rng.gen_range(250..=2500) * r.other_land
    };
    if rng.gen_bool(0.92) || farms {
        let levy = if farms { Levy::Joint } else { Levy::Property };
        let mut acct = new_account(ctx, levy, number, all.clone(), v + rng.gen_range(1..=3));
        let mut total = property;
        if farms {
            total += rng.gen_range(100..=2500) * r.agri_ha / 100;
            if rng.gen_bool(0.4) {
                total += rng.gen_range(50..=800) * r.forest_ha / 100;
            }
        }
        let total = round_zloty(total);
        let dec = decision(rng, ctx, if farms { "3121" } else { "3120" }, number);
        let created = dec.delivered_on;
        let habit = pay_habit(rng);
        add_liability(
            rng,
            ctx,
            &mut acct,
            total,
            &four_dates(ctx, total),
            Some(dec),
            created,
            habit,
        );
        out.push(acct);
    }
    // Land or forest elsewhere in the gmina, on its own account.
    for (levy, p, ha_rate, jrwa) in [
        (Levy::Agricultural, 0.04, r.agri_ha, "3123"),
        (Levy::Forest, 0.03, r.forest_ha, "3122"),
    ] {
        if rng.gen_bool(p) {
            let mut acct = new_account(ctx, levy, number, all.clone(), v + rng.gen_range(1..=3));
            let total = round_zloty(rng.gen_range(30..=1500) * ha_rate / 100);
            let dec = decision(rng, ctx, jrwa, number);
            let created = dec.delivered_on;
            let habit = pay_habit(rng);
            add_liability(
                rng,
                ctx,
                &mut acct,
                total,
                &four_dates(ctx, total),
                Some(dec),
                created,
                habit,
            );
            out.push(acct);
        }
    }
    // Waste fee: residents × rate, possibly with the home-composting reduction; not rounded.
    if rng.gen_bool(0.9) {
        let residents = rng.gen_range(1..=6i64);
        let mut monthly = residents * ctx.muni.waste_rate_grosze;
        if !flat && rng.gen_bool(0.3) {
            monthly -= residents * 250;
        }
        let mut acct = new_account(
            ctx,
            Levy::WasteFee,
            number,
            owner.clone(),
            v + rng.gen_range(1..=3),
        );
        let (dates, total) = match ctx.muni.waste_schedule {
            WasteSchedule::Monthly => (
                (1..=12).map(|m| ctx.d(m, 15)).collect::<Vec<_>>(),
                monthly * 12,
            ),
            WasteSchedule::Quarterly => (
                vec![ctx.d(3, 15), ctx.d(5, 15), ctx.d(9, 15), ctx.d(11, 15)],
                monthly * 12,
            ),
        };
        let created = ctx.d(1, 2);
        let habit = pay_habit(rng);
        add_liability(rng, ctx, &mut acct, total, &dates, None, created, habit);
        out.push(acct);
    }
    if rng.gen_bool(0.08) {
        let mut acct = new_account(ctx, Levy::DogFee, number, owner.clone(), v + 1);
        let total = rng.gen_range(1..=2) * 5000;
        let created = ctx.d(1, 2);
        let habit = pay_habit(rng);
        add_liability(
            rng,
            ctx,
            &mut acct,
            total,
            &[ctx.d(3, 31)],
            None,
            created,
            habit,
        );
        out.push(acct);
    }
    if rng.gen_bool(0.04) {
        vehicle_account(rng, ctx, number, owner, out);
    }
}

/// Vehicle tax (art. 11 upol): declaration DT-1 by 15 February, halves due 15 Feb and 15 Sep.
fn vehicle_account<R: Rng>(
    rng: &mut R,
    ctx: &Ctx,
    number: u64,
    owner: Vec<(String, HolderRole)>,
    out: &mut Vec<Account>,
) {
    let mut acct = new_account(ctx, Levy::Vehicle, number, owner, ctx.version_base + 1);
    let per_vehicle = [125_909, 252_048, 297_621, 376_273][rng.gen_range(0..4)];
    let total = round_zloty(rng.gen_range(1..=4) * per_vehicle * rng.gen_range(85..=100) / 100);
    let created = ctx.d(2, 1).add_days(rng.gen_range(0..14));
    let habit = pay_habit(rng);
    add_liability(
        rng,
        ctx,
        &mut acct,
        total,
        &[ctx.d(2, 15), ctx.d(9, 15)],
        None,
        created,
        habit,
    );
    out.push(acct);
}

fn legal_accounts<R: Rng>(rng: &mut R, ctx: &Ctx, number: u64, id: &str, out: &mut Vec<Account>) {
    let r = rates(ctx.year);
    let owner = vec![(id.to_owned(), HolderRole::Owner)];
    let mut acct = new_account(
        ctx,
        Levy::Property,
        number,
        owner.clone(),
        ctx.version_base + rng.gen_range(1..=3),
    );
    let total = round_zloty(
        rng.gen_range(40..=3000) * r.business * rng.gen_range(80..=100) / 100
            + rng.gen_range(200..=20_000) * r.business_land,
    );
    let created = ctx.d(1, 10).add_days(rng.gen_range(0..21));
    let habit = pay_habit(rng);
    add_liability(
        rng,
        ctx,
        &mut acct,
        total,
        &monthly_dates(ctx, ctx.d(1, 31)),
        None,
        created,
        habit,
    );
    out.push(acct);
    if rng.gen_bool(0.25) {
        vehicle_account(rng, ctx, number, owner, out);
    }
}

fn gen_block(ctx: &Ctx, b: u64) -> Block {
    let mut rng = ctx.rng(b);
    let first = b * BLOCK + 1;
    let last = ((b + 1) * BLOCK).min(ctx.total);
    let mut block = Block::default();
    let mut n = first;
    while n <= last {
        let roll = rng.gen_range(0..100);
        if roll < 33 {
            let tp = legal_taxpayer(&mut rng, ctx, n);
            legal_accounts(&mut rng, ctx, n, &tp.id, &mut block.accounts);
            block.taxpayers.push(tp);
            n += 1;
        } else if roll < 46 && n < last {
            // A married couple: same surname in its gendered forms, similar ages, one address;
            // both hold the property account (owner and co-owner).
            let surname = pick(&mut rng, names::SURNAMES);
            let y1 = rng.gen_range(1935..=2000);
            let y2 = (y1 + rng.gen_range(-4..=5)).clamp(1930, 2005);
            let husband_first = rng.gen_bool(0.7);
            let a = gen_person(&mut rng, husband_first, surname, y1);
            let c = gen_person(&mut rng, !husband_first, surname, y2);
            let address = gen_address(&mut rng, &ctx.muni);
            let flat = address.unit.is_some();
            let rural = address.street.is_none();
            let t1 = natural_taxpayer(&mut rng, ctx, n, &a, address.clone());
            let t2 = natural_taxpayer(&mut rng, ctx, n + 1, &c, address);
            household_accounts(
                &mut rng,
                ctx,
                n,
                &[t1.id.clone(), t2.id.clone()],
                flat,
                rural,
                &mut block.accounts,
            );
            block.taxpayers.push(t1);
            block.taxpayers.push(t2);
            n += 2;
        } else {
            let male = rng.gen_bool(0.5);
            let surname = pick(&mut rng, names::SURNAMES);
            let birth_year = rng.gen_range(1930..=2005);
            let p = gen_person(&mut rng, male, surname, birth_year);
            let address = gen_address(&mut rng, &ctx.muni);
            let flat = address.unit.is_some();
            let rural = address.street.is_none();
            let t = natural_taxpayer(&mut rng, ctx, n, &p, address);
            household_accounts(
                &mut rng,
                ctx,
                n,
                std::slice::from_ref(&t.id),
                flat,
                rural,
                &mut block.accounts,
            );
            block.taxpayers.push(t);
            n += 1;
        }
    }
    block
}

/// The demo residents' block: taxpayers `TD0001…` (one per distinct PESEL) and property
/// accounts `A-PROP-D0001…` (one per distinct account key).
fn demo_block(ctx: &Ctx, residents: &[DemoResident]) -> io::Result<Block> {
    let mut rng = ctx.rng(u64::MAX - 1);
    let mut block = Block::default();
    let mut pesels: Vec<&str> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for r in residents {
        if !valid_pesel(&r.pesel) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("demo resident {:?} has an invalid PESEL", r.name),
            ));
        }
        if !pesels.contains(&r.pesel.as_str()) {
            pesels.push(&r.pesel);
            let mut contacts = Vec::new();
            if let Some(e) = &r.email {
                contacts.push(Contact {
                    kind: "email",
                    value: e.clone(),
                    added_on: None,
                });
            }
            block.taxpayers.push(Taxpayer {
                id: format!("TD{:04}", pesels.len()),
                version: ctx.version_base + 1,
                kind: TaxpayerKind::Natural,
                pesel: Some(r.pesel.clone()),
                nip: None,
                regon: None,
                name: r.name.clone(),
                address: r
                    .address
                    .clone()
                    .unwrap_or_else(|| gen_address(&mut rng, &ctx.muni)),
                contacts,
            });
        }
        if !keys.contains(&r.account_key.as_str()) {
            keys.push(&r.account_key);
        }
    }
    for (k, key) in keys.iter().enumerate() {
        let members: Vec<&DemoResident> =
            residents.iter().filter(|r| r.account_key == *key).collect();
        let mut holders: Vec<(String, HolderRole)> = Vec::new();
        for m in &members {
            let tid = format!(
                "TD{:04}",
                pesels
                    .iter()
                    .position(|p| *p == m.pesel)
                    .map_or(0, |i| i + 1)
            );
            if !holders.iter().any(|(t, _)| *t == tid) {
                holders.push((tid, m.role));
            }
        }
        let lead = members
            .iter()
            .find(|m| m.role == HolderRole::Owner)
            .unwrap_or(&members[0]);
        let number = 900_000_000 + k as u64 + 1;
        let mut acct = new_account(ctx, Levy::Property, number, holders, ctx.version_base + 1);
        acct.id = format!("A-PROP-D{:04}", k + 1);
        let total = i64::from(lead.annual_property_tax_zl) * 100;
        let dec = Decision {
            number: format!("FN.3120.D{}.{}", k + 1, ctx.year),
            issued_on: ctx.d(1, 26),
            delivered_on: ctx.d(2, 5),
        };
        let dates = four_dates(ctx, total);
        let lid = format!("L-{}-PROP-D{:04}", ctx.year, k + 1);
        let mut postings = vec![(PostingKind::Charge, dec.delivered_on, total, None)];
        let amounts = split(total, dates.len() as i64);
        for (i, (due, a)) in dates
            .iter()
            .zip(&amounts)
            .enumerate()
            .take(usize::from(lead.installments_paid))
        {
            postings.push((
                PostingKind::Payment,
                due.add_days(-3),
                *a,
                Some(i as u8 + 1),
            ));
        }
        for (i, (kind, date, amount, inst)) in postings.into_iter().enumerate() {
            acct.postings.push(Posting {
                id: format!("P-{}-PROP-D{:04}-{:02}", ctx.year, k + 1, i + 1),
                version: ctx.version_base + 1,
                kind,
                date,
                amount,
                liability: Some(lid.clone()),
                installment: inst,
                description: (kind == PostingKind::Payment).then_some("wpłata przelew"),
            });
        }
        acct.liabilities.push(Liability {
            id: lid,
            version: ctx.version_base + 1,
            levy: Levy::Property,
            year: ctx.year,
            total,
            created_on: dec.delivered_on,
            decision: Some(dec),
            installments: dates
                .iter()
                .zip(amounts)
                .enumerate()
                .map(|(i, (&due, amount))| Installment {
                    seq: i as u8 + 1,
                    due,
                    amount,
                })
                .collect(),
        });
        block.accounts.push(acct);
    }
    Ok(block)
}

/// PESEL check with the simulator's own rule (used to refuse a mistyped demo resident).
fn valid_pesel(s: &str) -> bool {
    s.len() == 11
        && s.bytes().all(|b| b.is_ascii_digit())
        && identifiers::pesel_check_digit(&s[..10]) == u32::from(s.as_bytes()[10] - b'0')
}

// ----------------------------------------------------------------------------------------
// Writing

/// Counts bytes on their way to the sink, for the summary.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Which records of a block go into the file.
struct Filter {
    as_of: SimDate,
    /// `Some(start)` for an incremental export: only records changed on or after `start`.
    since: Option<SimDate>,
}

impl Filter {
    fn happened(&self, d: SimDate) -> bool {
        d <= self.as_of
    }
    fn changed(&self, d: SimDate) -> bool {
        d <= self.as_of && self.since.is_none_or(|s| d >= s)
    }
    fn full(&self) -> bool {
        self.since.is_none()
    }
}

fn write_taxpayer(w: &mut impl Write, t: &Taxpayer, f: &Filter) -> io::Result<bool> {
    if !f.full() && !t.changed_on().is_some_and(|d| f.changed(d)) {
        return Ok(false);
    }
    writeln!(
        w,
        "    <taxpayer id=\"{}\" version=\"{}\" kind=\"{}\">",
        t.id,
        t.version,
        t.kind.as_str()
    )?;
    for (tag, v) in [("pesel", &t.pesel), ("nip", &t.nip), ("regon", &t.regon)] {
        if let Some(v) = v {
            writeln!(w, "      <{tag}>{v}</{tag}>")?;
        }
    }
    w.write_all(b"      <name>")?;
    escape(w, &t.name)?;
    w.write_all(b"</name>\n      <address>\n")?;
    let a = &t.address;
    let parts: [(&str, Option<&str>); 5] = [
        ("street", a.street.as_deref()),
        ("building", Some(&a.building)),
        ("unit", a.unit.as_deref()),
        ("postal-code", Some(&a.postal_code)),
        ("city", Some(&a.city)),
    ];
    for (tag, v) in parts {
        if let Some(v) = v {
            write!(w, "        <{tag}>")?;
            escape(w, v)?;
            writeln!(w, "</{tag}>")?;
        }
    }
    w.write_all(b"      </address>\n")?;
    for c in t
        .contacts
        .iter()
        .filter(|c| c.added_on.is_none_or(|d| f.happened(d)))
    {
        write!(w, "      <contact kind=\"{}\">", c.kind)?;
        escape(w, &c.value)?;
        w.write_all(b"</contact>\n")?;
    }
    w.write_all(b"    </taxpayer>\n")?;
    Ok(true)
}

/// Accounts appear in an incremental export when a liability of theirs arose in the window.
fn account_changed(a: &Account, f: &Filter) -> bool {
    f.full() || a.liabilities.iter().any(|l| f.changed(l.created_on))
}

fn write_account(w: &mut impl Write, a: &Account, f: &Filter) -> io::Result<bool> {
    if !account_changed(a, f) {
        return Ok(false);
    }
    writeln!(
        w,
        "    <account id=\"{}\" version=\"{}\" levy=\"{}\">",
        a.id,
        a.version,
        a.levy.as_str()
    )?;
    for (t, role) in &a.holders {
        writeln!(
            w,
            "      <holder taxpayer=\"{t}\" role=\"{}\"/>",
            role.as_str()
        )?;
    }
    writeln!(
        w,
        "      <virtual-account>{}</virtual-account>\n    </account>",
        a.nrb
    )?;
    Ok(true)
}

fn write_liabilities(
    w: &mut impl Write,
    a: &Account,
    f: &Filter,
    s: &mut GeneratedSummary,
) -> io::Result<()> {
    for l in a.liabilities.iter().filter(|l| f.changed(l.created_on)) {
        write!(
            w,
            "    <liability id=\"{}\" version=\"{}\" account=\"{}\" levy=\"{}\" year=\"{}\" total=\"",
            l.id,
            l.version,
            a.id,
            l.levy.as_str(),
            l.year
        )?;
        amount(w, l.total)?;
        w.write_all(b"\">\n")?;
        if let Some(d) = &l.decision {
            w.write_all(b"      <decision number=\"")?;
            escape(w, &d.number)?;
            writeln!(
                w,
                "\" issued-on=\"{}\" delivered-on=\"{}\"/>",
                d.issued_on, d.delivered_on
            )?;
        }
        for i in &l.installments {
            write!(
                w,
                "      <installment seq=\"{}\" due-date=\"{}\" amount=\"",
                i.seq, i.due
            )?;
            amount(w, i.amount)?;
            w.write_all(b"\"/>\n")?;
        }
        w.write_all(b"    </liability>\n")?;
        s.liabilities += 1;
        s.installments += l.installments.len() as u64;
        s.liabilities_total_grosze += l.total;
    }
    Ok(())
}

fn write_postings(
    w: &mut impl Write,
    a: &Account,
    f: &Filter,
    s: &mut GeneratedSummary,
) -> io::Result<()> {
    for p in a.postings.iter().filter(|p| f.changed(p.date)) {
        write!(
            w,
            "    <posting id=\"{}\" version=\"{}\" account=\"{}\" kind=\"{}\" value-date=\"{}\" amount=\"",
            p.id,
            p.version,
            a.id,
            p.kind.as_str(),
            p.date
        )?;
        amount(w, p.amount)?;
        w.write_all(b"\"")?;
        if let Some(l) = &p.liability {
            write!(w, " liability=\"{l}\"")?;
        }
        if let Some(i) = p.installment {
            write!(w, " installment=\"{i}\"")?;
        }
        match p.description {
            Some(d) => {
                w.write_all(b">\n      <description>")?;
                escape(w, d)?;
                w.write_all(b"</description>\n    </posting>\n")?;
            }
            None => w.write_all(b"/>\n")?,
        }
        s.postings += 1;
    }
    Ok(())
}

fn write_balance(
    w: &mut impl Write,
    a: &Account,
    f: &Filter,
    version_base: i64,
) -> io::Result<bool> {
    if !f.full() && !a.postings.iter().any(|p| f.changed(p.date)) {
        return Ok(false);
    }
    let b = a.balance_at(f.as_of, version_base);
    write!(
        w,
        "    <balance account=\"{}\" version=\"{}\" as-of=\"{}\" principal=\"",
        a.id, b.version, f.as_of
    )?;
    amount(w, b.principal)?;
    w.write_all(b"\" interest=\"0.00\" costs=\"")?;
    amount(w, b.costs)?;
    w.write_all(b"\" overpayment=\"")?;
    amount(w, b.overpayment)?;
    w.write_all(b"\"/>\n")?;
    Ok(true)
}

#[derive(Clone, Copy)]
enum Section {
    Taxpayers,
    Accounts,
    Liabilities,
    Postings,
    Balances,
}

fn write_block(
    w: &mut impl Write,
    block: &Block,
    section: Section,
    f: &Filter,
    vb: i64,
    s: &mut GeneratedSummary,
) -> io::Result<()> {
    match section {
        Section::Taxpayers => {
            for t in &block.taxpayers {
                s.taxpayers += u64::from(write_taxpayer(w, t, f)?);
            }
        }
        Section::Accounts => {
            for a in &block.accounts {
                s.accounts += u64::from(write_account(w, a, f)?);
            }
        }
        Section::Liabilities => {
            for a in &block.accounts {
                write_liabilities(w, a, f, s)?;
            }
        }
        Section::Postings => {
            for a in &block.accounts {
                write_postings(w, a, f, s)?;
            }
        }
        Section::Balances => {
            for a in &block.accounts {
                s.balances += u64::from(write_balance(w, a, f, vb)?);
            }
        }
    }
    Ok(())
}

fn check_spec(spec: &RadixExportSpec) -> io::Result<()> {
    let bad = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
    if spec.tenant.len() != 7 || !spec.tenant.bytes().all(|b| b.is_ascii_digit()) {
        return bad(format!(
            "tenant {:?} is not a 7-digit TERC code",
            spec.tenant
        ));
    }
    if !(1931..=2099).contains(&spec.year) {
        return bad(format!(
            "tax year {} is out of the simulated range 1931–2099",
            spec.year
        ));
    }
    if spec.taxpayers as u64 >= 1_000_000_000 {
        return bad("at most 999 999 999 taxpayers fit the id scheme".to_owned());
    }
    Ok(())
}

/// Writes one export to `out`, streaming; returns what it wrote. Errors: `InvalidInput` for a
/// spec that cannot be simulated (tenant not 7 digits, a demo resident's PESEL invalid), and
/// whatever `out` returns.
pub fn write_export(spec: &RadixExportSpec, out: impl Write) -> io::Result<GeneratedSummary> {
    check_spec(spec)?;
    let ctx = Ctx::new(spec);
    let demo = demo_block(&ctx, &spec.extra_residents)?;
    let as_of = spec.as_of_date();
    let f = Filter {
        as_of,
        since: (spec.kind == ExportKind::Incremental)
            .then(|| as_of.add_days(1 - INCREMENTAL_WINDOW_DAYS)),
    };
    let mut w = Counting {
        inner: BufWriter::with_capacity(1 << 16, out),
        bytes: 0,
    };
    let mut s = GeneratedSummary::default();
    w.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    writeln!(
        w,
        "<!-- Simulated RADIX export generated by gsko-sim (seed {}, {} taxpayers): fictitious people and amounts. -->",
        spec.seed, spec.taxpayers
    )?;
    writeln!(
        w,
        "<radix-export xmlns=\"urn:gsko:radix-export:1\" format-version=\"1\" tenant=\"{}\" kind=\"{}\" generated-at=\"{}T02:00:00Z\" export-id=\"{}\">",
        ctx.tenant,
        spec.kind.as_str(),
        as_of,
        spec.export_id()
    )?;
    let sections = [
        ("taxpayers", Section::Taxpayers),
        ("accounts", Section::Accounts),
        ("liabilities", Section::Liabilities),
        ("postings", Section::Postings),
        ("balances", Section::Balances),
    ];
    for (tag, section) in sections {
        writeln!(w, "  <{tag}>")?;
        for b in 0..ctx.blocks() {
            write_block(
                &mut w,
                &gen_block(&ctx, b),
                section,
                &f,
                spec.version_base,
                &mut s,
            )?;
        }
        write_block(&mut w, &demo, section, &f, spec.version_base, &mut s)?;
        writeln!(w, "  </{tag}>")?;
    }
    w.write_all(b"</radix-export>\n")?;
    w.flush()?;
    s.bytes = w.bytes;
    Ok(s)
}

/// Writes the export to `<dir>/radix-<tenant>-<kind>-<seed>.xml` and returns that path. The
/// file is written under a temporary name and renamed when complete, so a connector polling
/// the directory never sees half a file.
pub fn generate_to_dir(spec: &RadixExportSpec, dir: &Path) -> io::Result<PathBuf> {
    check_spec(spec)?;
    let name = spec.file_name();
    let final_path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.{}.part", std::process::id()));
    let result = (|| {
        let file = fs::File::create(&tmp)?;
        write_export(spec, &file)?;
        file.sync_all()?;
        fs::rename(&tmp, &final_path)
    })();
    if result.is_err() {
        // Best effort: a leftover temp file is harmless but untidy; the original error matters.
        fs::remove_file(&tmp).ok();
    }
    result.map(|()| final_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sums_exactly() {
        for total in [100, 100_300, 100_301, 9_999_999] {
            for n in [1, 2, 4, 12] {
                let v = split(total, n);
                assert_eq!(v.iter().sum::<i64>(), total);
                assert_eq!(v.len() as i64, n);
            }
        }
        assert_eq!(split(100_300, 4), vec![25_075; 4]);
    }

    #[test]
    fn rounds_half_up_to_full_zloty() {
        assert_eq!(round_zloty(2591), 2600);
        assert_eq!(round_zloty(2549), 2500);
        assert_eq!(round_zloty(2550), 2600);
    }

    #[test]
    fn scramble_is_a_bijection() {
        let m = 365 * 5000;
        let mut seen = vec![false; m as usize];
        for x in 0..m {
            let y = scramble(x, m, 999_983, 12_345) as usize;
            assert!(!seen[y]);
            seen[y] = true;
        }
    }
}
