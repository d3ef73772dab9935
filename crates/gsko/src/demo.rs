//! `gsko demo`: the embedded mode end to end. Generates RADIX exports for five real
//! municipalities (with demo residents placed in them), writes an embedded configuration
//! (SQLite, journaled in-process bus), and runs the very same daemon code as `gsko run`.

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

fn tenant_toml(teryt: &str, name: &str) -> String {
    format!(
        "teryt = \"{teryt}\"\nname = \"{name}\"\n\n[radix]\n# exports arrive in radix/{teryt}/inbox/\ndirectory = \"radix/{teryt}\"\n# every minute; production installations usually sync every few minutes or nightly\nschedule = \"0 * * * * *\"\n"
    )
}

fn main_toml(listen: &str) -> String {
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
"#
    )
}

/// Writes the configuration and the exports; returns the main config path.
pub fn prepare(dir: &Path, listen: &str, taxpayers: usize, keep: bool) -> Result<PathBuf> {
    if dir.exists() && !keep {
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("tenants"))?;
    let year = 2026;
    for (i, m) in MUNICIPALITIES.iter().take(5).enumerate() {
        std::fs::write(
            dir.join("tenants").join(format!("{}.toml", m.teryt)),
            tenant_toml(m.teryt, m.name),
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
    std::fs::write(&main, main_toml(listen))?;
    Ok(main)
}

pub fn instructions(listen: &str) -> String {
    let m0 = MUNICIPALITIES[0].teryt;
    let m2 = MUNICIPALITIES[2].teryt;
    format!(
        r#"
GSKO demo is ready: five municipalities imported into the embedded view.
Query API: http://{listen}  (OpenAPI: http://{listen}/openapi.yaml, metrics: /metrics)

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
Operations (admin key): what the imports rejected, and the imports themselves:
  curl -s -H 'Authorization: Bearer {admin}' http://{listen}/v1/tenants/{m0}/admin/imports

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
    )
}

pub async fn run(o: DemoOptions) -> Result<()> {
    let main = prepare(&o.dir, &o.listen, o.taxpayers, o.keep)?;
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
    crate::daemon::run(cfg, opts).await
}
