//! `gsko demo`: the embedded mode end to end. Generates RADIX exports for five real
//! municipalities (with demo residents placed in them), writes an embedded configuration
//! (SQLite, journaled in-process bus), and runs the very same daemon code as `gsko run`. The
//! external systems are simulators on loopback: the payment gateways, ePUAP (letters in,
//! decisions out) and each letter-receiving municipality's EZD RP with a clerk on autopilot.

use anyhow::{bail, Context, Result};
use gsko_sim::{DemoResident, ExportKind, RadixExportSpec, MUNICIPALITIES};
use std::path::{Path, PathBuf};

pub struct DemoOptions {
    pub dir: PathBuf,
    pub listen: String,
    pub taxpayers: usize,
    pub keep: bool,
    pub exit_after_import: bool,
}

/// The demo portal key (printed, and configured in clear: demo only).
pub const DEMO_KEY: &str = "demo-portal-key";
/// An admin key for the operations endpoints.
pub const DEMO_ADMIN_KEY: &str = "demo-admin-key";

/// Jan Kowalski owns a house in the first municipality and a plot in the second.
pub const JAN: (&str, &str) = ("78031501236", "Jan Kowalski");
/// Anna and Piotr Nowak co-own a house in the third municipality.
pub const ANNA: (&str, &str) = ("81072204569", "Anna Nowak");
pub const PIOTR: (&str, &str) = ("83110907816", "Piotr Nowak");

pub fn generate(
    out: &Path,
    tenant: Option<&str>,
    taxpayers: usize,
    seed: u64,
    year: i32,
    kind: &str,
    extra: Vec<DemoResident>,
) -> Result<PathBuf> {
    let tenant = match tenant {
        Some(t) => gsko_model::Teryt::parse(t)
            .with_context(|| format!("--tenant {t}"))?
            .to_string(),
        None => MUNICIPALITIES[0].teryt.to_owned(),
    };
    let mut spec = RadixExportSpec::new(tenant, taxpayers, seed, year);
    spec.kind = match kind {
        "full" => ExportKind::Full,
        "incremental" => ExportKind::Incremental,
        other => bail!("--kind must be full or incremental, not {other:?}"),
    };
    spec.extra_residents = extra;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    gsko_sim::generate_to_dir(&spec, out)
        .with_context(|| format!("writing the export into {}", out.display()))
}

/// The simulated gateways every demo tenant's merchant accounts point at.
pub struct DemoGateways {
    pub p24_url: String,
    pub payu_url: String,
}

/// Credentials of the simulated shops (demo only, in clear).
const P24_MERCHANT: i64 = 77_001;
const P24_API_KEY: &str = "demo-p24-api-key";
const P24_CRC: &str = "demo-p24-crc";
const PAYU_POS: &str = "77002";
const PAYU_SECRET: &str = "demo-payu-client-secret";
const PAYU_SECOND_KEY: &str = "demo-payu-second-key";

fn tenant_toml(
    teryt: &str,
    name: &str,
    gateways: Option<&DemoGateways>,
    epuap: Option<&DemoEpuap>,
    ezd: Option<&DemoEzd>,
) -> String {
    let mut t = format!(
        "teryt = \"{teryt}\"\nname = \"{name}\"\n\n[radix]\n# exports arrive in radix/{teryt}/inbox/\ndirectory = \"radix/{teryt}\"\n# every minute; production installations usually sync every few minutes or nightly\nschedule = \"0 * * * * *\"\n"
    );
    if let Some(g) = gateways {
        t.push_str(
            "\n# Online payments: taxes and the waste fee go to two merchant accounts (as in many\n\
             # municipalities); both accounts take Przelewy24 and PayU, here their simulators.\n\
             [payments]\nreturn_url = \"http://127.0.0.1/portal/payment-result\"\n",
        );
        let merchants = [
            (
                "taxes",
                r#""property", "agricultural", "forest", "joint", "vehicle""#,
            ),
            ("fees", r#""waste_fee", "dog_fee", "lease_rent", "other""#),
        ];
        for (name, levies) in merchants {
            t.push_str(&format!(
                r#"
[payments.merchants.{name}]
levies = [{levies}]
[payments.merchants.{name}.przelewy24]
url = "{p24}"
merchant_id = {P24_MERCHANT}
api_key = {{ value = "{P24_API_KEY}" }}
crc = {{ value = "{P24_CRC}" }}
[payments.merchants.{name}.payu]
url = "{payu}"
pos_id = "{PAYU_POS}"
client_secret = {{ value = "{PAYU_SECRET}" }}
second_key = {{ value = "{PAYU_SECOND_KEY}" }}
"#,
                p24 = g.p24_url,
                payu = g.payu_url,
            ));
        }
    }
    if let Some(e) = epuap.filter(|e| e.tenants.iter().any(|x| x == teryt)) {
        t.push_str(&format!(
            r#"
# Letters from residents arrive in the office's ePUAP box (here the simulator's), pulled
# every 10 s with the office's system certificate; the podpis zaufany of each letter is
# checked against COI's certificates.
[epuap]
pull_url = "{url}"
podmiot = "{podmiot}"
boxes = ["skrytka"]
certificate = {{ file = "{certs}/{teryt}.crt" }}
private_key = {{ file = "{certs}/{teryt}.key" }}
pz_certificates = {{ file = "{certs}/coi.pem" }}
schedule = "*/10 * * * * *"
# Decisions go back to the residents' ePUAP boxes with WS-Doręczyciel; the simulated residents
# collect them after {collect} s and the UPD comes back through the pull.
doreczyciel_url = "{doreczyciel}"
"#,
            url = e.pull_url,
            doreczyciel = e.doreczyciel_url,
            collect = EPUAP_COLLECT_AFTER.as_secs(),
            podmiot = demo_podmiot(teryt),
            certs = e.certs.display(),
        ));
    }
    if let Some((base, c)) = ezd.and_then(|e| e.office(teryt)) {
        t.push_str(&format!(
            r#"
# The office's EZD RP (here a simulator with a clerk who moves each case on every {step} s):
# each letter pulled from ePUAP is registered in it (RPW) and put into a case in JRWA class
# 3120; GSKO follows the case (every {poll} s) and shows its znak sprawy and statuses to the
# resident, and raises the signed decision for delivery.
[ezd]
api_url = "{base}"
token_url = "{base}/connect/token"
web_host = "{web_host}"
podmiot_id = "{podmiot_id}"
api_key_id = "{api_key_id}"
api_key = {{ value = "{api_key}" }}
stanowisko_id = "{stanowisko_id}"
poll_secs = {poll}

[ezd.default_route]
class_id = "wykaz-3120"
jrwa_symbol = "3120"
archival_category = "B5"
join_open_case = true
"#,
            step = ezd.map_or(0, |e| e.step.as_secs()),
            poll = EZD_POLL_SECS,
            web_host = c.web_host,
            podmiot_id = c.podmiot_id,
            api_key_id = c.api_key_id,
            api_key = c.api_key,
            stanowisko_id = c.stanowisko_id,
        ));
    }
    t
}

/// The office's ePUAP id in the demo.
fn demo_podmiot(teryt: &str) -> String {
    format!("um{teryt}")
}

/// How long a simulated resident takes to collect a decision delivered to their ePUAP box.
const EPUAP_COLLECT_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

/// The simulated ePUAP the demo's first three municipalities pull their letters from.
pub struct DemoEpuap {
    pub pull_url: String,
    pub doreczyciel_url: String,
    pub tenants: Vec<String>,
    /// Absolute: secret files are read relative to the working directory.
    pub certs: PathBuf,
    _sim: gsko_sim::epuap::EpuapSimHandle,
}

/// Starts the ePUAP simulator with letters from the demo residents (and a few others, one of
/// them changed after signing) in the first three municipalities' boxes, and writes the
/// offices' certificates into `dir/certs`. `None` (with a warning) when `xmlsec1` is missing.
pub async fn start_epuap(dir: &Path) -> Result<Option<DemoEpuap>> {
    use gsko_sim::epuap::{
        generate_letter, BoxAddress, EpuapSim, EpuapSimConfig, LetterSignature, LetterSpec,
    };
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs)?;
    let certs = certs
        .canonicalize()
        .with_context(|| format!("{}", certs.display()))?;
    let tenants: Vec<String> = MUNICIPALITIES
        .iter()
        .take(3)
        .map(|m| m.teryt.to_owned())
        .collect();
    let mut config = EpuapSimConfig::new();
    config.auto_collect_after = Some(EPUAP_COLLECT_AFTER);
    for t in &tenants {
        let c =
            gsko_sim::xades::SimCertificate::generate(&format!("{} system GSKO", demo_podmiot(t)))
                .context("making an office certificate with openssl")?;
        std::fs::write(certs.join(format!("{t}.crt")), &c.cert_pem)?;
        std::fs::write(certs.join(format!("{t}.key")), &c.key_pem)?;
        config = config
            .with_box(&demo_podmiot(t), "skrytka")
            .with_certificate(&demo_podmiot(t), c.cert_der.clone());
    }
    let sim = match EpuapSim::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gsko demo: no letters in this demo ({e})");
            return Ok(None);
        }
    };
    std::fs::write(
        certs.join("coi.pem"),
        &gsko_sim::xades::coi_certificate().cert_pem,
    )?;
    let date = gsko_sim::SimDate::new(2026, 11, 20).expect("a date");
    let person = |p: (&str, &str)| {
        let (first, last) = p.1.split_once(' ').unwrap_or((p.1, ""));
        Some((first.to_owned(), last.to_owned(), p.0.to_owned()))
    };
    let letters = [
        (0, person(JAN), LetterSignature::PodpisZaufany),
        (0, person(JAN), LetterSignature::EpSignature),
        (0, None, LetterSignature::Tampered),
        (0, None, LetterSignature::PodpisZaufany),
        (1, person(JAN), LetterSignature::PodpisZaufany),
        (2, person(ANNA), LetterSignature::EpSignature),
        (2, None, LetterSignature::SignedBySomeoneElse),
    ];
    for (n, (i, sender, signature)) in letters.into_iter().enumerate() {
        let m = &MUNICIPALITIES[i];
        let spec = LetterSpec {
            signature,
            sender,
            attachments: 1 + n % 2,
            ..LetterSpec::new(&format!("Urząd {}", m.name), m.name, "59-700", date)
        };
        let l = generate_letter(500 + n as u64, &spec);
        // The sender's own box, where a decision answering the letter is delivered.
        if let Some(b) = l
            .letter
            .adres_odpowiedzi
            .as_deref()
            .and_then(BoxAddress::parse)
        {
            sim.add_box(&b);
        }
        sim.deposit(&BoxAddress::new(demo_podmiot(m.teryt), "skrytka"), l.letter)
            .map_err(|e| anyhow::anyhow!("depositing a demo letter: {e}"))?;
    }
    Ok(Some(DemoEpuap {
        pull_url: sim.pull_url(),
        doreczyciel_url: sim.doreczyciel_url(),
        tenants,
        certs,
        _sim: sim,
    }))
}

/// The demo clerk's pace: a watching user sees a case move within a minute and end with a
/// decision within a few.
const EZD_STEP: std::time::Duration = std::time::Duration::from_secs(20);
/// How often GSKO asks the demo EZD about open cases.
const EZD_POLL_SECS: u64 = 5;

/// The simulated EZD RP of the municipalities that pull letters: one simulator per office, as
/// each municipality runs its own EZD (case signs count per office).
pub struct DemoEzd {
    /// Time between two steps of the simulated clerk.
    pub step: std::time::Duration,
    offices: Vec<(String, gsko_sim::ezd::EzdSim)>,
}

impl DemoEzd {
    /// The office's simulator base URL and configuration, when `teryt` has one.
    fn office(&self, teryt: &str) -> Option<(&str, &gsko_sim::ezd::EzdSimConfig)> {
        self.offices
            .iter()
            .find(|(t, _)| t == teryt)
            .map(|(_, s)| (s.base_url(), s.config()))
    }
}

/// Starts one EZD RP simulator per tenant with its clerk (autopilot) moving every open case
/// one step each `step`: W toku → Przydzielone → Zawieszona → Wznowiona → a signed decision
/// to the letter's sender → Zakończona.
pub async fn start_ezd(tenants: &[String], step: std::time::Duration) -> Result<DemoEzd> {
    use gsko_sim::ezd::{EzdSim, EzdSimConfig};
    let mut offices = Vec::new();
    for t in tenants {
        let sim = EzdSim::start(EzdSimConfig::demo())
            .await
            .with_context(|| format!("starting the EZD simulator of tenant {t}"))?;
        sim.autopilot(step);
        offices.push((t.clone(), sim));
    }
    Ok(DemoEzd { step, offices })
}

/// Starts the gateway simulators on loopback for the demo; the handles keep them running.
pub async fn start_gateways() -> Result<(
    DemoGateways,
    gsko_sim::przelewy24::P24SimHandle,
    gsko_sim::payu::PayuSimHandle,
)> {
    let mut p24 =
        gsko_sim::przelewy24::SimConfig::new(P24_MERCHANT, P24_MERCHANT, P24_API_KEY, P24_CRC);
    // Unanswered notifications are retried after seconds rather than minutes.
    p24.time_scale = 0.01;
    let p24 = gsko_sim::przelewy24::P24Sim::start(p24)
        .await
        .context("starting the Przelewy24 simulator")?;
    let mut payu = gsko_sim::payu::SimConfig::new(PAYU_POS, PAYU_POS, PAYU_SECRET, PAYU_SECOND_KEY);
    payu.minute = std::time::Duration::from_secs(1);
    let payu = gsko_sim::payu::PayuSim::start(payu)
        .await
        .context("starting the PayU simulator")?;
    Ok((
        DemoGateways {
            p24_url: p24.base_url.clone(),
            payu_url: payu.base_url.clone(),
        },
        p24,
        payu,
    ))
}

/// The simulated login.gov.pl of the demo, with the SP's keys it was set up with.
pub struct DemoLogin {
    pub sim: gsko_sim::login::LoginSim,
    pub creds: gsko_sim::login::SpCredentials,
    pub idp_certificate: PathBuf,
}

/// The demo's SP entity id (registered with the simulated login.gov.pl).
const DEMO_SP_ENTITY: &str = "gsko-demo.gmina.example";

/// Starts a simulated login.gov.pl where Jan, Anna and Piotr can log in, and makes the SP's
/// keys for it (openssl) under `dir/login`.
pub async fn start_login(dir: &Path, listen: &str) -> Result<DemoLogin> {
    use gsko_sim::login::{make_sp_credentials, LoginSim, LoginSimConfig, SimIdentity};
    let keys = dir.join("login");
    std::fs::create_dir_all(&keys)?;
    let creds = make_sp_credentials(&keys).context("making the demo SP's keys with openssl")?;
    let resident = |(pesel, name): (&str, &str), born: &str| {
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        SimIdentity::new(pesel, given, family, born)
    };
    let sim = LoginSim::start(
        LoginSimConfig::new(
            DEMO_SP_ENTITY,
            &format!("http://{listen}/login/acs"),
            &creds.signing_cert_pem,
            &creds.encryption_cert_pem,
        )
        .with_resident(resident(JAN, "1978-03-15"))
        .with_resident(resident(ANNA, "1981-07-22"))
        .with_resident(resident(PIOTR, "1983-11-09")),
    )
    .context("starting the simulated login.gov.pl")?;
    let idp_certificate = keys.join("idp-certificate.pem");
    std::fs::write(&idp_certificate, sim.idp_certificate_pem())?;
    Ok(DemoLogin {
        sim,
        creds,
        idp_certificate,
    })
}

fn login_toml(login: Option<&DemoLogin>) -> String {
    let Some(l) = login else {
        return String::new();
    };
    format!(
        r#"
# Resident login through the simulated login.gov.pl. The cookie is not marked Secure because
# the demo serves plain HTTP; a deployment keeps the default (true) behind HTTPS.
[login]
entity_id = "{entity}"
provider_name = "GSKO demo"
idp_entity_id = "{idp}"
sso_url = "{sso}"
artifact_resolution_url = "{ars}"
logout_url = "{slo}"
idp_certificates = "{idp_cert}"
signing_certificate = "{sig_cert}"
signing_key = {{ file = "{sig_key}" }}
encryption_key = {{ file = "{enc_key}" }}
session_keys = [{{ value = "demo-session-key-0123456789abcdef0123456789abcdef" }}]
secure_cookie = false
"#,
        entity = DEMO_SP_ENTITY,
        idp = l.sim.entity_id(),
        sso = l.sim.sso_url(),
        ars = l.sim.artifact_resolution_url(),
        slo = l.sim.logout_url(),
        idp_cert = l.idp_certificate.display(),
        sig_cert = l.creds.signing_cert_path.display(),
        sig_key = l.creds.signing_key_path.display(),
        enc_key = l.creds.encryption_key_path.display(),
    )
}

fn main_toml(listen: &str, login: Option<&DemoLogin>) -> String {
    let login = login_toml(login);
    format!(
        r#"# Embedded demo configuration, written by `gsko demo`.
version = 1
tenants_dir = "tenants"

[database]
kind = "sqlite"
path = "gsko.sqlite"

[bus]
kind = "memory"
journal = "bus-journal.sqlite"
retry_delays_secs = [1, 5, 30]

[http]
listen = "{listen}"

[projector]
batch_size = 500
workers = 1

[[portals]]
name = "demo-portal"
api_key = {{ value = "{DEMO_KEY}" }}
tenants = ["*"]

[[portals]]
name = "demo-admin"
api_key = {{ value = "{DEMO_ADMIN_KEY}" }}
tenants = ["*"]
admin = true
{login}"#
    )
}

/// The simulated external systems the demo configuration points at.
#[derive(Default)]
pub struct DemoSystems<'a> {
    pub gateways: Option<&'a DemoGateways>,
    pub epuap: Option<&'a DemoEpuap>,
    pub ezd: Option<&'a DemoEzd>,
    pub login: Option<&'a DemoLogin>,
}

/// Writes the configuration and the exports; returns the main config path.
pub fn prepare(
    dir: &Path,
    listen: &str,
    taxpayers: usize,
    keep: bool,
    systems: DemoSystems<'_>,
) -> Result<PathBuf> {
    let DemoSystems {
        gateways,
        epuap,
        ezd,
        login,
    } = systems;
    if dir.exists() && !keep {
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("tenants"))?;
    let year = 2026;
    for (i, m) in MUNICIPALITIES.iter().take(5).enumerate() {
        std::fs::write(
            dir.join("tenants").join(format!("{}.toml", m.teryt)),
            tenant_toml(m.teryt, m.name, gateways, epuap, ezd),
        )?;
        let radix_dir = dir.join("radix").join(m.teryt);
        let inbox = radix_dir.join("inbox");
        let mut extra = Vec::new();
        match i {
            0 => extra.push(DemoResident::owner(JAN.0, JAN.1, "jan-house")),
            1 => extra.push(DemoResident::owner(JAN.0, JAN.1, "jan-plot")),
            2 => {
                extra.push(DemoResident::owner(ANNA.0, ANNA.1, "nowak-house"));
                extra.push(DemoResident::co_owner(PIOTR.0, PIOTR.1, "nowak-house"));
            }
            _ => {}
        }
        if keep && radix_dir.join("processed").exists() {
            continue;
        }
        generate(
            &inbox,
            Some(m.teryt),
            taxpayers,
            1000 + i as u64,
            year,
            "full",
            extra,
        )?;
    }
    let main = dir.join("gsko.toml");
    std::fs::write(&main, main_toml(listen, login))?;
    Ok(main)
}

pub fn instructions(listen: &str) -> String {
    let m0 = MUNICIPALITIES[0].teryt;
    let m2 = MUNICIPALITIES[2].teryt;
    format!(
        r#"
GSKO demo is ready: five municipalities imported into the embedded view.
Query API: http://{listen}  (OpenAPI: http://{listen}/openapi.yaml, metrics: /metrics)

Log in as a resident in a browser: http://{listen}/ → "Zaloguj się przez login.gov.pl"; the
simulated login.gov.pl lists Jan Kowalski, Anna Nowak and Piotr Nowak. Then the same API
answers with your session cookie: http://{listen}/v1/session, http://{listen}/v1/resident/summary,
http://{listen}/v1/tenants/{m0}/resident/liabilities (as Jan). "Wyloguj" on / logs out.

Jan Kowalski owns property in {a} and {b} — his summary across both:
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/resident/summary
His liabilities and ledger in {a}:
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/tenants/{m0}/resident/liabilities
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/tenants/{m0}/resident/ledger
What is due from him on the last day of the year, interest on arrears apart, and how paying 300 zł would be applied (an estimate):
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' 'http://{listen}/v1/tenants/{m0}/resident/due?date=2026-12-31&pay=30000'
Anna Nowak co-owns a house in {c} with her husband Piotr; both see the shared account:
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {anna}' http://{listen}/v1/tenants/{m2}/resident/summary
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {piotr}' http://{listen}/v1/tenants/{m2}/resident/balance
Jan pays his last installment online: GSKO creates the order with the (simulated) gateway and answers with a redirect_url. Open it in a browser to "pay":
  curl -s -X POST -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' -H 'Idempotency-Key: demo-payment-0001' -H 'Content-Type: application/json' -d '{{"items":[{{"liability_id":"L-2026-PROP-D0001","installment":4}}],"gateway":"przelewy24","email":"jan@example.pl"}}' http://{listen}/v1/tenants/{m0}/resident/payment-orders
Then his payments (received; booked once the ledger's next export shows them — the demo ledger books every 30 s) and the payment file handed to the ledger in var/demo/radix/{m0}/booking/:
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/tenants/{m0}/resident/payments
Letters Jan sent to {a} through ePUAP (pulled every 10 s), each with its podpis zaufany checked — and the admin's list of letters that need a look (one was changed after signing):
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/tenants/{m0}/resident/letters
  curl -s -H 'Authorization: Bearer {admin}' 'http://{listen}/v1/tenants/{m0}/admin/letters?flagged=true'
Each letter is then registered in the municipality's (simulated) EZD and gets a znak sprawy; a clerk moves the case every {step} s (in progress → assigned → suspended → resumed), signs a decision that GSKO delivers to the resident's ePUAP box (collected {collect} s later, its UPD kept) and closes the case. Jan's and Anna's cases, with their timelines and decisions:
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/tenants/{m0}/resident/cases
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {anna}' http://{listen}/v1/tenants/{m2}/resident/cases
One case by its znak (as the list shows it), and Jan's delivered decisions:
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/tenants/{m0}/resident/cases/FN.3120.1.2026
  curl -s -H 'Authorization: Bearer {key}' -H 'X-Resident-Pesel: {jan}' http://{listen}/v1/tenants/{m0}/resident/decisions
Operations (admin key): what the imports rejected, the imports themselves, and every gateway notification:
  curl -s -H 'Authorization: Bearer {admin}' http://{listen}/v1/tenants/{m0}/admin/imports
  curl -s -H 'Authorization: Bearer {admin}' http://{listen}/v1/tenants/{m0}/admin/gateway-notifications

Drop another export into var/demo/radix/<TERYT>/inbox/ (e.g. `gsko sim radix --taxpayers 10 --seed 7 --tenant {m0} --kind incremental --out var/demo/radix/{m0}/inbox`) and it is picked up within a minute.
Ctrl-C stops the demo.
"#,
        a = MUNICIPALITIES[0].name,
        b = MUNICIPALITIES[1].name,
        c = MUNICIPALITIES[2].name,
        key = DEMO_KEY,
        admin = DEMO_ADMIN_KEY,
        jan = JAN.0,
        anna = ANNA.0,
        piotr = PIOTR.0,
        step = EZD_STEP.as_secs(),
        collect = EPUAP_COLLECT_AFTER.as_secs(),
    )
}

pub async fn run(o: DemoOptions) -> Result<()> {
    let (gateways, _p24, _payu) = start_gateways().await?;
    if o.dir.exists() && !o.keep {
        std::fs::remove_dir_all(&o.dir).with_context(|| format!("wiping {}", o.dir.display()))?;
    }
    std::fs::create_dir_all(&o.dir)?;
    let epuap = start_epuap(&o.dir).await?;
    // Only tenants that receive letters have anything to register in EZD.
    let ezd = match &epuap {
        Some(e) => Some(start_ezd(&e.tenants, EZD_STEP).await?),
        None => None,
    };
    // The simulated login.gov.pl signs with xmlsec1 and its keys are made with openssl; without
    // them the demo runs without resident login.
    let login = match start_login(&o.dir, &o.listen).await {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("gsko demo: no resident login in this demo ({e:#})");
            None
        }
    };
    let main = prepare(
        &o.dir,
        &o.listen,
        o.taxpayers,
        true,
        DemoSystems {
            gateways: Some(&gateways),
            epuap: epuap.as_ref(),
            ezd: ezd.as_ref(),
            login: login.as_ref(),
        },
    )?;
    let ledger = tokio::spawn(demo_ledger(o.dir.clone()));
    let cfg =
        gsko_config::Config::load(&main).map_err(|e| anyhow::anyhow!("demo configuration: {e}"))?;
    eprintln!(
        "gsko demo: importing {} generated taxpayers in each of 5 municipalities …",
        o.taxpayers
    );
    let listen = o.listen.clone();
    let opts = crate::daemon::Options {
        on_first_sync: Some(Box::new(move || println!("{}", instructions(&listen)))),
        exit_after_first_sync: o.exit_after_import,
    };
    let result = crate::daemon::run(cfg, opts).await;
    ledger.abort();
    result
}

/// The demo's stand-in for the municipality's ledger: every 30 s it books the payment files
/// GSKO handed over (with the ledger simulator) and drops its next export into the inbox, as
/// RADIX would after its nightly booking run.
async fn demo_ledger(dir: PathBuf) {
    let mut round = 0u32;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        round += 1;
        for m in MUNICIPALITIES.iter().take(5) {
            let root = dir.join("radix").join(m.teryt);
            if let Err(e) = ledger_round(&root, round) {
                tracing::warn!(tenant = m.teryt, error = %format!("{e:#}"), "demo ledger round failed");
            }
        }
    }
}

fn ledger_round(root: &Path, round: u32) -> Result<()> {
    let booking = root.join("booking");
    let waiting = std::fs::read_dir(&booking)
        .map(|rd| rd.flatten().any(|e| e.path().is_file()))
        .unwrap_or(false);
    if !waiting {
        return Ok(());
    }
    // The exports GSKO imported, oldest first, are the ledger's last state.
    let mut exports: Vec<PathBuf> = std::fs::read_dir(root.join("processed"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    exports.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    if exports.is_empty() {
        return Ok(());
    }
    let staging = root.join(format!(".ledger-{round}.xml"));
    let refs: Vec<&Path> = exports.iter().map(PathBuf::as_path).collect();
    let report = gsko_sim::ledger::LedgerSim::book_after(&refs, &booking, &staging)?;
    if report.export.is_none() {
        return Ok(());
    }
    std::fs::rename(
        &staging,
        root.join("inbox")
            .join(format!("ledger-booking-{round:04}.xml")),
    )?;
    Ok(())
}
