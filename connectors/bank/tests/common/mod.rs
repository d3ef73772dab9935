//! Shared test helpers: generate statements with the simulator and build the connector's
//! directory from the simulator's taxpayers (the only thing the two sides share is data).
#![allow(dead_code)]

use gsko_bank::{AccountRef, Charset, ParseOptions, VirtualAccountDirectory, VirtualRange};
use gsko_model::{Nrb, Teryt};
use gsko_sim::bank::{self, BankProfile, BankSimSpec, BankSimSummary, SimCharset};

pub const TENANT: &str = "1211052";

pub fn generate(spec: &BankSimSpec) -> (Vec<u8>, BankSimSummary) {
    let mut out = Vec::new();
    let summary = bank::write_statements(spec, &mut out).expect("write to memory");
    (out, summary)
}

pub fn charset(c: SimCharset) -> Charset {
    match c {
        SimCharset::Utf8 => Charset::Utf8,
        SimCharset::Cp1250 => Charset::Cp1250,
        SimCharset::Iso8859_2 => Charset::Iso8859_2,
        SimCharset::Cp852 => Charset::Cp852,
    }
}

pub fn options(spec: &BankSimSpec) -> ParseOptions {
    ParseOptions::default().with_charset(charset(spec.charset))
}

pub fn directory(spec: &BankSimSpec, summary: &BankSimSummary) -> VirtualAccountDirectory {
    let tenant = Teryt::parse(TENANT).expect("valid TERYT");
    let mut dir = VirtualAccountDirectory::new();
    dir.add_range(VirtualRange {
        bban_prefix: summary.virtual_prefix.clone(),
    });
    for t in bank::taxpayers(spec) {
        let account = AccountRef {
            tenant: tenant.clone(),
            account_key: t.account_key.clone(),
        };
        let nrb = Nrb::parse(&t.virtual_nrb).expect("simulator writes valid NRBs");
        dir.insert(&nrb, account.clone());
        dir.insert_title_token(&t.account_key, account.clone());
        dir.insert_title_token(&t.decision, account);
    }
    dir
}

pub fn profiles() -> Vec<(BankProfile, SimCharset, bool)> {
    vec![
        (BankProfile::PkoBp, SimCharset::Utf8, false),
        (BankProfile::PkoBp, SimCharset::Cp1250, true),
        (BankProfile::Pekao, SimCharset::Cp852, true),
        (BankProfile::Pekao, SimCharset::Iso8859_2, false),
        (BankProfile::MbankCollect, SimCharset::Cp1250, true),
        (BankProfile::MbankCollect, SimCharset::Utf8, false),
    ]
}
