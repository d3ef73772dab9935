//! Properties of the simulated RADIX exports, checked from the outside: the file is parsed with
//! a real XML parser (quick-xml) and every identifier is validated with `gsko-model`'s
//! validators, an implementation independent of the simulator's own check-digit code.

use gsko_model::{Nip, Nrb, Pesel, Regon, Teryt};
use gsko_sim::{
    generate_to_dir, write_export, DemoResident, ExportKind, RadixExportSpec, SimDate,
    MUNICIPALITIES,
};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One element of the parsed file.
#[derive(Debug, Default, Clone)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).map_or_else(
            || panic!("<{}> lacks attribute {k}: {self:?}", self.name),
            String::as_str,
        )
    }
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    fn section(&self, name: &str) -> &[Node] {
        &self
            .child(name)
            .unwrap_or_else(|| panic!("no <{name}> section"))
            .children
    }
}

fn element(e: &BytesStart) -> Node {
    let mut n = Node {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        ..Node::default()
    };
    for a in e.attributes() {
        let a = a.expect("well-formed attribute");
        let k = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
        let v = a
            .unescape_value()
            .expect("attribute value unescapes")
            .into_owned();
        assert!(n.attrs.insert(k, v).is_none(), "duplicate attribute");
    }
    n
}

/// Parses a whole export; panics on anything that is not well-formed.
fn parse(xml: &[u8]) -> Node {
    let mut r = Reader::from_reader(xml);
    r.config_mut().trim_text(true);
    r.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf).expect("well-formed XML") {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => {
                let n = element(&e);
                stack.last_mut().unwrap().children.push(n);
            }
            Event::End(_) => {
                let n = stack.pop().unwrap();
                stack.last_mut().expect("balanced tags").children.push(n);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.unescape().expect("text unescapes")),
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) => {}
            other => panic!("unexpected XML event {other:?}"),
        }
        buf.clear();
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "exactly one root element");
    doc.children.pop().unwrap()
}

fn grosze(s: &str) -> i64 {
    let (zl, gr) = s
        .split_once('.')
        .unwrap_or_else(|| panic!("amount {s:?} lacks decimals"));
    assert_eq!(gr.len(), 2, "amount {s:?} must have two decimals");
    zl.parse::<i64>().unwrap() * 100 + gr.parse::<i64>().unwrap()
}

fn render(spec: &RadixExportSpec) -> Vec<u8> {
    let mut v = Vec::new();
    let s = write_export(spec, &mut v).expect("export writes");
    assert_eq!(s.bytes, v.len() as u64, "summary counts the bytes written");
    v
}

/// The demo's two special cases: Jan Kowalski owns property in this gmina (and, in the demo,
/// in another one: same PESEL, other tenant); Anna and Piotr Nowak co-own a house.
fn demo_residents() -> Vec<DemoResident> {
    vec![
        DemoResident::owner("44051401359", "Jan Kowalski", "kowalski-dom"),
        DemoResident {
            installments_paid: 0,
            ..DemoResident::owner("02270803624", "Anna Nowak", "nowak-dom")
        },
        DemoResident::co_owner("85032112352", "Piotr Nowak & <Syn>", "nowak-dom"),
    ]
}

fn spec(seed: u64, n: usize) -> RadixExportSpec {
    RadixExportSpec {
        extra_residents: demo_residents(),
        ..RadixExportSpec::new("0201043", n, seed, 2026)
    }
}

#[test]
fn same_seed_is_byte_identical_and_other_seeds_differ() {
    let a = render(&spec(42, 300));
    assert_eq!(a, render(&spec(42, 300)));
    assert_ne!(a, render(&spec(43, 300)));
    // Another tenant with the same seed gets other people, not the same ones renamed.
    let other = RadixExportSpec::new("0201032", 300, 42, 2026);
    let pesels = |x: &[u8]| -> HashSet<String> {
        parse(x)
            .section("taxpayers")
            .iter()
            .filter_map(|t| t.child("pesel"))
            .map(|p| p.text.clone())
            .collect()
    };
    assert!(pesels(&a).intersection(&pesels(&render(&other))).count() < 3);
}

#[test]
fn identifiers_validate_with_the_model_and_ids_are_unique() {
    let xml = render(&spec(7, 2_000));
    let doc = parse(&xml);
    assert_eq!(doc.name, "radix-export");
    assert_eq!(doc.attr("xmlns"), "urn:gsko:radix-export:1");
    Teryt::parse(doc.attr("tenant")).unwrap();

    let taxpayers = doc.section("taxpayers");
    let mut ids = HashSet::new();
    let mut pesels = HashSet::new();
    let mut nips = HashSet::new();
    let (mut natural, mut legal) = (0, 0);
    for t in taxpayers {
        assert!(
            ids.insert(t.attr("id").to_owned()),
            "duplicate taxpayer id {}",
            t.attr("id")
        );
        match t.attr("kind") {
            "natural" => {
                natural += 1;
                let p = Pesel::parse(&t.child("pesel").expect("a person has a PESEL").text)
                    .expect("valid PESEL");
                let born = p.birth_date().unwrap();
                let year = chrono_year(&born.to_string());
                if !t.attr("id").starts_with("TD") {
                    assert!((1930..=2005).contains(&year), "born {born}");
                }
                assert!(pesels.insert(p.as_str().to_owned()), "duplicate PESEL");
            }
            "legal" | "org_unit" => {
                legal += 1;
                let nip = Nip::parse(&t.child("nip").expect("NIP").text).expect("valid NIP");
                assert!(nips.insert(nip.as_str().to_owned()), "duplicate NIP");
                Regon::parse(&t.child("regon").expect("REGON").text).expect("valid REGON");
            }
            k => panic!("unknown taxpayer kind {k}"),
        }
        assert!(!t.child("name").unwrap().text.is_empty());
        let addr = t.child("address").expect("address");
        let pc = &addr.child("postal-code").unwrap().text;
        assert!(
            pc.len() == 6 && pc.as_bytes()[2] == b'-',
            "postal code {pc}"
        );
    }
    let share = f64::from(natural) / f64::from(natural + legal);
    assert!(
        (0.62..0.80).contains(&share),
        "natural persons are {share:.2} of taxpayers"
    );

    let mut accounts = HashSet::new();
    let mut nrbs = HashSet::new();
    let mut co_owned = 0;
    for a in doc.section("accounts") {
        assert!(
            accounts.insert(a.attr("id").to_owned()),
            "duplicate account id"
        );
        let nrb = Nrb::parse(&a.child("virtual-account").unwrap().text).expect("valid NRB");
        assert!(
            nrbs.insert(nrb.as_str().to_owned()),
            "duplicate virtual account"
        );
        let holders: Vec<&Node> = a.children.iter().filter(|c| c.name == "holder").collect();
        assert!(!holders.is_empty());
        for h in &holders {
            assert!(
                ids.contains(h.attr("taxpayer")),
                "holder refers to a missing taxpayer"
            );
        }
        if holders.len() == 2 {
            co_owned += 1;
            let roles: Vec<&str> = holders.iter().map(|h| h.attr("role")).collect();
            assert_eq!(roles, ["owner", "co_owner"]);
        }
    }
    assert!(co_owned > 20, "co-owned accounts: {co_owned}");

    let mut liabilities = HashSet::new();
    for l in doc.section("liabilities") {
        assert!(
            liabilities.insert(l.attr("id").to_owned()),
            "duplicate liability id"
        );
        assert!(accounts.contains(l.attr("account")));
    }
    let mut postings = HashSet::new();
    for p in doc.section("postings") {
        assert!(
            postings.insert(p.attr("id").to_owned()),
            "duplicate posting id"
        );
        assert!(accounts.contains(p.attr("account")));
        if let Some(l) = p.attrs.get("liability") {
            assert!(
                liabilities.contains(l),
                "posting refers to a missing liability"
            );
        }
    }
}

fn chrono_year(iso: &str) -> i32 {
    iso[..4].parse().unwrap()
}

#[test]
fn installments_follow_the_tax_rules_and_sum_to_totals() {
    let doc = parse(&render(&spec(11, 3_000)));
    let kinds: HashMap<String, String> = doc
        .section("taxpayers")
        .iter()
        .map(|t| (t.attr("id").to_owned(), t.attr("kind").to_owned()))
        .collect();
    let holder_kind: HashMap<String, String> = doc
        .section("accounts")
        .iter()
        .map(|a| {
            (
                a.attr("id").to_owned(),
                kinds[a.child("holder").unwrap().attr("taxpayer")].clone(),
            )
        })
        .collect();
    let mut seen_levies = HashSet::new();
    let mut single_small = 0;
    for l in doc.section("liabilities") {
        let total = grosze(l.attr("total"));
        let inst: Vec<&Node> = l
            .children
            .iter()
            .filter(|c| c.name == "installment")
            .collect();
        let sum: i64 = inst.iter().map(|i| grosze(i.attr("amount"))).sum();
        assert_eq!(
            sum,
            total,
            "installments of {} sum to {sum}, total {total}",
            l.attr("id")
        );
        let seqs: Vec<&str> = inst.iter().map(|i| i.attr("seq")).collect();
        let expected: Vec<String> = (1..=inst.len()).map(|i| i.to_string()).collect();
        assert_eq!(seqs, expected);
        let dates: Vec<&str> = inst.iter().map(|i| &i.attr("due-date")[5..]).collect();
        let levy = l.attr("levy");
        seen_levies.insert(levy.to_owned());
        let natural = holder_kind[l.attr("account")] == "natural";
        match levy {
            "property" | "agricultural" | "forest" | "joint" if natural => {
                // Tax amounts are in full złoty (art. 63 OP); a decision stands behind them.
                assert_eq!(total % 100, 0, "{} total {total}", l.attr("id"));
                assert!(l.child("decision").is_some());
                if total <= 10_000 {
                    single_small += 1;
                    assert_eq!(dates, ["03-15"], "≤ 100 zł is paid once by 15 March");
                } else {
                    assert_eq!(dates, ["03-15", "05-15", "09-15", "11-15"]);
                }
            }
            "property" => {
                assert_eq!(total % 100, 0);
                assert_eq!(dates.len(), 12, "legal persons pay property tax monthly");
                assert_eq!(dates[0], "01-31");
            }
            "vehicle" => {
                assert_eq!(total % 100, 0);
                assert_eq!(dates, ["02-15", "09-15"]);
            }
            "waste_fee" => {
                assert!(dates.len() == 12 || dates == ["03-15", "05-15", "09-15", "11-15"])
            }
            "dog_fee" => assert_eq!(dates, ["03-31"]),
            other => panic!("unexpected levy {other}"),
        }
    }
    for levy in [
        "property",
        "agricultural",
        "forest",
        "joint",
        "vehicle",
        "waste_fee",
        "dog_fee",
    ] {
        assert!(seen_levies.contains(levy), "no {levy} liability generated");
    }
    assert!(
        single_small > 0,
        "no small (single-installment) property tax generated"
    );
    // The waste fee is not rounded: some totals must have grosze.
    assert!(doc
        .section("liabilities")
        .iter()
        .any(|l| l.attr("levy") == "waste_fee" && grosze(l.attr("total")) % 100 != 0));
}

#[test]
fn balances_agree_with_postings_and_payments_vary() {
    let s = spec(5, 2_000);
    let doc = parse(&render(&s));
    let as_of = doc.attr("generated-at")[..10].to_owned();
    let mut sums: HashMap<&str, (i64, i64, i64)> = HashMap::new();
    let due: HashMap<(String, String), String> = doc
        .section("liabilities")
        .iter()
        .flat_map(|l| {
            l.children
                .iter()
                .filter(|c| c.name == "installment")
                .map(|i| {
                    (
                        (l.attr("id").to_owned(), i.attr("seq").to_owned()),
                        i.attr("due-date").to_owned(),
                    )
                })
        })
        .collect();
    let (mut on_time, mut late) = (0, 0);
    for p in doc.section("postings") {
        assert!(
            p.attr("value-date") <= as_of.as_str(),
            "posting after the export date"
        );
        let e = sums.entry(p.attr("account")).or_default();
        let amount = grosze(p.attr("amount"));
        match p.attr("kind") {
            "charge" => e.0 += amount,
            "payment" => {
                e.1 += amount;
                if let (Some(l), Some(i)) = (p.attrs.get("liability"), p.attrs.get("installment")) {
                    if p.attr("value-date") <= due[&(l.clone(), i.clone())].as_str() {
                        on_time += 1;
                    } else {
                        late += 1;
                    }
                }
            }
            "reminder_cost" => e.2 += amount,
            k => panic!("unexpected posting kind {k}"),
        }
    }
    assert!(on_time > 100 && late > 20, "on time {on_time}, late {late}");
    let (mut arrears, mut overpaid) = (0, 0);
    for b in doc.section("balances") {
        let (charged, paid, costs) = sums.get(b.attr("account")).copied().unwrap_or_default();
        assert_eq!(b.attr("as-of"), as_of);
        assert_eq!(
            grosze(b.attr("principal")),
            (charged - paid).max(0),
            "principal of {}",
            b.attr("account")
        );
        assert_eq!(grosze(b.attr("overpayment")), (paid - charged).max(0));
        assert_eq!(grosze(b.attr("costs")), costs);
        assert_eq!(b.attr("interest"), "0.00");
        arrears += i32::from(costs > 0);
        overpaid += i32::from(paid > charged);
    }
    assert!(
        arrears > 10 && overpaid > 0,
        "reminders {arrears}, overpaid {overpaid}"
    );
    assert_eq!(
        doc.section("balances").len(),
        doc.section("accounts").len(),
        "one balance per account"
    );
}

#[test]
fn demo_residents_are_injected_as_owner_and_co_owner() {
    let doc = parse(&render(&spec(3, 50)));
    let demo: Vec<&Node> = doc
        .section("taxpayers")
        .iter()
        .filter(|t| t.attr("id").starts_with("TD"))
        .collect();
    assert_eq!(demo.len(), 3);
    assert_eq!(
        demo[2].child("name").unwrap().text,
        "Piotr Nowak & <Syn>",
        "names are escaped and round-trip"
    );
    let nowak = doc
        .section("accounts")
        .iter()
        .find(|a| a.attr("id") == "A-PROP-D0002")
        .expect("the couple's account");
    let holders: Vec<(&str, &str)> = nowak
        .children
        .iter()
        .filter(|c| c.name == "holder")
        .map(|h| (h.attr("taxpayer"), h.attr("role")))
        .collect();
    assert_eq!(holders, [("TD0002", "owner"), ("TD0003", "co_owner")]);
    let bal = doc
        .section("balances")
        .iter()
        .find(|b| b.attr("account") == "A-PROP-D0002")
        .unwrap();
    assert_eq!(bal.attr("principal"), "1003.00", "nothing paid yet");
    let kow = doc
        .section("balances")
        .iter()
        .find(|b| b.attr("account") == "A-PROP-D0001")
        .unwrap();
    assert_eq!(kow.attr("principal"), "752.25", "first installment paid");

    let bad = RadixExportSpec {
        extra_residents: vec![DemoResident::owner("44051401358", "Zła Suma", "x")],
        ..RadixExportSpec::new("0201043", 1, 1, 2026)
    };
    let err = write_export(&bad, std::io::sink()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn incremental_export_supersedes_the_full_one() {
    let full = RadixExportSpec {
        version_base: 1_000,
        ..spec(9, 1_500)
    };
    let incr = RadixExportSpec {
        kind: ExportKind::Incremental,
        version_base: 2_000,
        as_of: SimDate::new(2026, 11, 30),
        ..spec(9, 1_500)
    };
    let f = parse(&render(&full));
    let i = parse(&render(&incr));
    assert_eq!(i.attr("kind"), "incremental");
    let versions = |d: &Node, sec: &str, key: &str| -> HashMap<String, i64> {
        d.section(sec)
            .iter()
            .map(|r| (r.attr(key).to_owned(), r.attr("version").parse().unwrap()))
            .collect()
    };
    for (sec, key) in [
        ("taxpayers", "id"),
        ("accounts", "id"),
        ("liabilities", "id"),
        ("postings", "id"),
        ("balances", "account"),
    ] {
        let fv = versions(&f, sec, key);
        let iv = versions(&i, sec, key);
        for (id, v) in &iv {
            if let Some(old) = fv.get(id) {
                assert!(
                    v > old,
                    "{sec} {id}: incremental version {v} does not supersede {old}"
                );
            }
        }
        assert!(
            iv.len() < fv.len().max(1) || sec == "postings",
            "{sec}: incremental is not a subset"
        );
    }
    let postings = i.section("postings");
    assert!(
        postings.len() > 50,
        "the November window has payments (15 Nov installments)"
    );
    for p in postings {
        let d = p.attr("value-date");
        assert!(
            ("2026-10-31"..="2026-11-30").contains(&d),
            "posting {d} outside the window"
        );
    }
    // Taxpayers whose contact changed in November appear, with the new contact.
    assert!(!i.section("taxpayers").is_empty());
}

#[test]
fn generate_to_dir_names_the_file_and_leaves_no_temporary() {
    let dir = std::env::temp_dir().join(format!("gsko-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = generate_to_dir(&spec(1, 20), &dir).unwrap();
    assert_eq!(path, dir.join("radix-0201043-full-1.xml"));
    assert_eq!(std::fs::read(&path).unwrap(), render(&spec(1, 20)));
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "leftover files: {names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn catalogue_has_five_real_municipalities() {
    assert_eq!(MUNICIPALITIES.len(), 5);
    for m in MUNICIPALITIES {
        Teryt::parse(m.teryt).unwrap();
        assert!(!m.localities.is_empty());
        let doc = parse(&render(&RadixExportSpec::new(m.teryt, 30, 1, 2026)));
        let cities: HashSet<&str> = m.localities.iter().map(|l| l.name).collect();
        for t in doc.section("taxpayers") {
            assert!(cities.contains(
                t.child("address")
                    .unwrap()
                    .child("city")
                    .unwrap()
                    .text
                    .as_str()
            ));
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Validates against the colleague's XSD with xmllint when both exist; otherwise says why not.
#[test]
fn validates_against_the_xsd_when_available() {
    let xsd = workspace_root().join("schemas/radix/radix-export-v1.xsd");
    if !xsd.exists() {
        eprintln!("SKIPPED: {} does not exist yet", xsd.display());
        return;
    }
    if std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: xmllint is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("gsko-sim-xsd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for s in [
        spec(2, 500),
        RadixExportSpec {
            kind: ExportKind::Incremental,
            version_base: 2000,
            as_of: SimDate::new(2026, 11, 30),
            ..spec(2, 500)
        },
    ] {
        let path = generate_to_dir(&s, &dir).unwrap();
        let out = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not validate against {}:\n{}",
            path.display(),
            xsd.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Prints generation speed and size for 100 000 taxpayers (no timing assertion: CI machines
/// vary). Ignored in debug builds, where it takes ~25 s; run
/// `cargo test --release -p gsko-sim --test radix_export -- --nocapture generation_speed`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow without optimisations; run with --release"
)]
fn generation_speed_for_100k_taxpayers() {
    let s = RadixExportSpec::new("0201011", 100_000, 1, 2026);
    let started = Instant::now();
    let summary = write_export(&s, std::io::sink()).unwrap();
    let took = started.elapsed();
    println!(
        "100000 taxpayers: {:.1} MB, {} accounts, {} liabilities, {} postings in {:.2?} ({:.0} taxpayers/s, {:.1} MB/s)",
        summary.bytes as f64 / 1e6,
        summary.accounts,
        summary.liabilities,
        summary.postings,
        took,
        100_000.0 / took.as_secs_f64(),
        summary.bytes as f64 / 1e6 / took.as_secs_f64()
    );
    assert_eq!(summary.taxpayers, 100_000);
}

/// Names agree with the PESEL's sex digit (Polish female given names end in -a; -ski/-cki
/// surnames take -ska/-cka for women), spouses share a surname, and the century offsets of the
/// PESEL month are exercised (births 2000–2005 have month + 20).
#[test]
fn names_agree_with_sex_and_spouses_share_a_surname() {
    let doc = parse(&render(&RadixExportSpec::new("0201043", 3_000, 21, 2026)));
    let mut people: HashMap<String, (bool, String, String)> = HashMap::new();
    let (mut men, mut women, mut born_2000s) = (0, 0, 0);
    for t in doc
        .section("taxpayers")
        .iter()
        .filter(|t| t.attr("kind") == "natural")
    {
        let pesel = Pesel::parse(&t.child("pesel").unwrap().text).unwrap();
        let digits = pesel.as_str().as_bytes();
        let male = (digits[9] - b'0') % 2 == 1;
        born_2000s += i32::from(digits[2] >= b'2');
        let name = &t.child("name").unwrap().text;
        let (first, surname) = name.split_once(' ').unwrap();
        assert_eq!(
            first.ends_with('a'),
            !male,
            "{first} does not match the PESEL's sex"
        );
        if surname.ends_with("ski") || surname.ends_with("cki") || surname.ends_with("dzki") {
            assert!(male, "{name}: masculine surname on a woman");
        }
        if surname.ends_with("ska") || surname.ends_with("cka") || surname.ends_with("dzka") {
            assert!(!male, "{name}: feminine surname on a man");
        }
        if male {
            men += 1;
        } else {
            women += 1;
        }
        people.insert(
            t.attr("id").to_owned(),
            (male, surname.to_owned(), name.clone()),
        );
    }
    assert!(
        men > 500 && women > 500 && born_2000s > 0,
        "men {men}, women {women}, born 2000+ {born_2000s}"
    );
    let stem = |s: &str| s.trim_end_matches(['i', 'a', 'y']).to_owned();
    let mut couples = 0;
    for a in doc.section("accounts") {
        let holders: Vec<&str> = a
            .children
            .iter()
            .filter(|c| c.name == "holder")
            .map(|h| h.attr("taxpayer"))
            .collect();
        if let [x, y] = holders[..] {
            let (p, q) = (&people[x], &people[y]);
            assert_ne!(p.0, q.0, "spouses {} and {} are of the same sex", p.2, q.2);
            assert_eq!(
                stem(&p.1),
                stem(&q.1),
                "spouses {} and {} have different surnames",
                p.2,
                q.2
            );
            couples += 1;
        }
    }
    assert!(couples > 50, "only {couples} co-owned accounts");
}
