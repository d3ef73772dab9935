//! End to end, production mode (RabbitMQ + Postgres), every external system simulated: letters
//! pulled from the municipality's ePUAP box are registered in its EZD (EZD RP, simulated), get
//! a znak sprawy, move through statuses (a simulated clerk works on them) to a decision, and
//! the decision is delivered to the resident through ePUAP with a UPD; every step shows in the
//! resident's view. The daemon is killed with SIGKILL twice on the way (after the first
//! registration, after the first delivery): nothing is lost and nothing happens twice in EZD
//! or ePUAP.
//!
//! `cargo test -p gsko --test e2e_cases`

mod common;

use common::*;
use gsko_sim::epuap::{
    self as sim, BoxAddress, EpuapSim, EpuapSimConfig, LetterSignature, LetterSpec,
};
use gsko_sim::ezd::{EzdSim, EzdSimConfig};
use gsko_sim::xades::{coi_certificate, SimCertificate};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T: (&str, &str, &str) = ("0201011", "Bolesławiec", "umboleslawiec");
const RESIDENTS: [(&str, &str, &str, usize); 2] = [
    ("Jan", "Kowalski", "78031501236", 3),
    ("Anna", "Nowak", "81072204569", 2),
];

fn wait_until(what: &str, timeout: Duration, env: &Env, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what}: timed out\n{}",
            env.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET until `ready`; on timeout the answer and the daemon's log say why.
fn view_when(
    d: &Daemon,
    env: &Env,
    path: &str,
    pesel: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, v) = d.get(path, Some(PORTAL_KEY), Some(pesel));
        if s == 200 && ready(&v) {
            return v;
        }
        if Instant::now() > deadline {
            let logs = env.logs();
            let tail: String = logs
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .take(60)
                .collect::<Vec<_>>()
                .join("\n");
            panic!("{path}: not ready: {s} {v}\nwarnings:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn letters_become_cases_that_end_in_delivered_decisions_through_two_kills() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = Env::new();
    env.write_config(&[(T.0, T.1)], &[("portal", PORTAL_KEY, &["*"], true)]);
    let certs = env.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let office = SimCertificate::generate("umboleslawiec system").expect("openssl");
    std::fs::write(certs.join("office.crt"), &office.cert_pem).unwrap();
    std::fs::write(certs.join("office.key"), &office.key_pem).unwrap();
    std::fs::write(certs.join("coi.pem"), &coi_certificate().cert_pem).unwrap();

    // The residents' signed letters; each resident's reply box exists in ePUAP.
    let date = gsko_sim::SimDate::new(2026, 11, 20).unwrap();
    let mut letters = Vec::new();
    let mut config = EpuapSimConfig::new()
        .with_box(T.2, "skrytka")
        .with_certificate(T.2, office.cert_der.clone());
    // Each resident opens the decision (signs the UPD) a moment after it arrives.
    config.auto_collect_after = Some(Duration::from_millis(300));
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    for (r, (first, surname, pesel, count)) in RESIDENTS.into_iter().enumerate() {
        for n in 0..count {
            let spec = LetterSpec {
                signature: LetterSignature::PodpisZaufany,
                attachments: 1,
                sender: Some((first.into(), surname.into(), pesel.into())),
                ..LetterSpec::new("Urząd Miasta Bolesławiec", T.1, "59-700", date)
            };
            let l = sim::generate_letter((r * 100 + n) as u64 + 7, &spec);
            config = config.with_box(&l.epuap_login, "domyslna");
            letters.push(l);
        }
        expected.insert(pesel, count);
    }
    let epuap = rt.block_on(EpuapSim::start(config)).unwrap();
    let office_box = BoxAddress::new(T.2, "skrytka");
    for l in &letters {
        epuap.deposit(&office_box, l.letter.clone()).unwrap();
    }

    // The office's EZD, with a clerk who moves each case one step every 2 s: in progress,
    // assigned, suspended, resumed, a signed decision to the resident, closed.
    let ezd = rt.block_on(EzdSim::start(EzdSimConfig::demo())).unwrap();
    let c = ezd.config().clone();
    let file = env.path().join("tenants").join(format!("{}.toml", T.0));
    let mut t = std::fs::read_to_string(&file).unwrap();
    t.push_str(&format!(
        "\n[epuap]\npull_url = \"{pull}\"\npodmiot = \"{podmiot}\"\nboxes = [\"skrytka\"]\n\
         certificate = {{ file = \"{dir}/office.crt\" }}\nprivate_key = {{ file = \"{dir}/office.key\" }}\n\
         pz_certificates = {{ file = \"{dir}/coi.pem\" }}\nschedule = \"*/1 * * * * *\"\n\
         doreczyciel_url = \"{doreczyciel}\"\n\
         \n[ezd]\napi_url = \"{base}\"\ntoken_url = \"{base}/connect/token\"\nweb_host = \"{web_host}\"\n\
         podmiot_id = \"{pid}\"\napi_key_id = \"{aki}\"\napi_key = {{ value = \"{key}\" }}\n\
         stanowisko_id = \"{sid}\"\npoll_secs = 1\n\
         [ezd.default_route]\nclass_id = \"wykaz-3120\"\njrwa_symbol = \"3120\"\narchival_category = \"B5\"\n",
        pull = epuap.pull_url(),
        podmiot = T.2,
        dir = certs.display(),
        doreczyciel = epuap.doreczyciel_url(),
        base = ezd.base_url(),
        web_host = c.web_host,
        pid = c.podmiot_id,
        aki = c.api_key_id,
        key = c.api_key,
        sid = c.stanowisko_id,
    ));
    std::fs::write(&file, t).unwrap();

    let mut d = env.spawn();
    // Kill 1: as soon as EZD has the first case, before the rest are registered.
    wait_until("first registration", Duration::from_secs(60), &env, || {
        ezd.case_count() >= 1
    });
    d.kill9();
    d = env.spawn();
    wait_until("all registered", Duration::from_secs(60), &env, || {
        ezd.case_count() >= letters.len()
    });
    ezd.autopilot(Duration::from_secs(2));
    // Kill 2: while the cases move (some suspended in EZD), before the decisions. (A kill in
    // the middle of a `dorecz` leaves that one decision parked for an admin, never resent:
    // ePUAP cannot be asked whether it went out; the delivery tests cover that.)
    wait_until("a case suspended", Duration::from_secs(60), &env, || {
        ezd.cases().iter().any(|c| c.status_code == 3)
    });
    d.kill9();
    d = env.spawn();

    for (pesel, count) in &expected {
        // Every letter answered: registered, its case closed, its decision delivered.
        let v = view_when(
            &d,
            &env,
            &format!("/v1/tenants/{}/resident/letters", T.0),
            pesel,
            |v| {
                v["letters"].as_array().is_some_and(|l| {
                    l.len() == *count && l.iter().all(|x| x["state"] == "answered")
                })
            },
        );
        for l in v["letters"].as_array().unwrap() {
            assert!(
                l["case"]["case_ref"]
                    .as_str()
                    .is_some_and(|z| z.starts_with("FN.3120.")),
                "{l}"
            );
            assert_eq!(l["answer"]["outcome"], "delivered", "{l}");
            assert_eq!(l["answer"]["evidence"]["kind"], "upd", "{l}");
        }
        let v = view_when(
            &d,
            &env,
            &format!("/v1/tenants/{}/resident/cases", T.0),
            pesel,
            |v| {
                v["cases"]
                    .as_array()
                    .is_some_and(|c| c.len() == *count && c.iter().all(|x| x["status"] == "closed"))
            },
        );
        for case in v["cases"].as_array().unwrap() {
            let timeline: Vec<&str> = case["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["status"].as_str().unwrap())
                .collect();
            assert_eq!(timeline.first(), Some(&"registered"), "{case}");
            assert_eq!(timeline.last(), Some(&"closed"), "{case}");
            // One entry per change: numbered without gaps or repeats.
            let seqs: Vec<u64> = case["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .filter(|s| *s > 0)
                .collect();
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{case}");
            assert_eq!(case["letters"].as_array().unwrap().len(), 1, "{case}");
            assert_eq!(case["decisions"].as_array().unwrap().len(), 1, "{case}");
            // The case by its znak, as a resident would look it up.
            let znak = case["case_ref"].as_str().unwrap();
            let one = d.get_ok(
                &format!("/v1/tenants/{}/resident/cases/{znak}", T.0),
                Some(PORTAL_KEY),
                Some(pesel),
                Duration::from_secs(5),
            );
            assert_eq!(one["case_ref"], znak);
        }
    }
    // Nothing twice: one incoming item and one case per letter in EZD, one shipment per
    // decision in ePUAP.
    for l in &letters {
        let name = format!("epuap-{}.xml", l.letter.document_id);
        assert_eq!(ezd.count_documents_named(&name), 1, "{name}");
    }
    assert_eq!(ezd.rpw_count(), letters.len());
    assert_eq!(ezd.case_count(), letters.len());
    assert_eq!(
        epuap.shipments().len(),
        letters.len(),
        "one dorecz per decision"
    );
    d.stop();
}
