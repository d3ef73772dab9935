//! A resident logs in the way a person would: a real (headless) Chromium, driven over WebDriver,
//! follows the link on GSKO's start page to the simulated login.gov.pl of `gsko demo`, picks a
//! resident there, comes back with a session cookie and reads his own data with it alone; then
//! logs out, and another resident logs in in the same browser.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/ensure-services.sh installs them).

mod common;

use anyhow::{anyhow, bail, ensure, Context, Result};
use common::{free_port, get, gsko};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The demo's portal key (`DEMO_KEY` in crates/gsko/src/demo.rs), used only to see from outside
/// the browser when the demo's letters and cases are there.
const DEMO_KEY: &str = "demo-portal-key";
/// The demo residents (crates/gsko/src/demo.rs): Jan owns property in the first two
/// municipalities, Anna in the third.
const JAN: &str = "78031501236";
const ANNA: &str = "81072204569";
/// How long one page may take to appear after a click or a navigation.
const PAGE_WAIT: Duration = Duration::from_secs(30);

/// A child process killed (with its whole process group) when the test ends, however it ends;
/// on a failure the tail of its log is printed to help tell why.
struct Guarded {
    name: &'static str,
    child: Child,
    log: std::path::PathBuf,
}

impl Guarded {
    /// Starts `cmd` in a process group of its own, so that the browsers chromedriver starts go
    /// with it, writing its output to `log`.
    fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Guarded {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(log).expect("creating a log file");
        let err = out.try_clone().expect("cloning the log file handle");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} could not be started: {e}"));
        Guarded {
            name,
            child,
            log: log.to_owned(),
        }
    }

    /// Panics if the process already exited: waiting for it cannot succeed then.
    fn ensure_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early ({status})", self.name);
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // The group id is the child's pid (process_group(0)); SIGKILL reaches every member.
        Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status()
            .ok();
        drop(self.child.kill());
        drop(self.child.wait());
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of the {} log ---", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Polls `ready` every 200 ms until it yields a value or `within` passes.
fn poll<T>(what: &str, within: Duration, mut ready: impl FnMut() -> Result<Option<T>>) -> T {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    loop {
        match ready() {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} within {within:?} (last error: {last})");
}

/// GET with the demo portal key on behalf of Jan; the JSON answer when it is 200.
fn demo_get(base: &str, path: &str) -> Result<Option<Value>> {
    let (status, body) = get(&format!("{base}{path}"), Some(DEMO_KEY), Some(JAN))?;
    if status != 200 {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&body)?))
}

fn non_empty(v: &Value, field: &str) -> bool {
    v[field].as_array().is_some_and(|a| !a.is_empty())
}

/// Starts `gsko demo` and waits until Jan's letters have been registered as cases in the first
/// municipality's EZD (the simulated clerk works in steps of ~20 s).
fn start_demo(dir: &Path, port: u16) -> Guarded {
    let mut cmd = gsko();
    cmd.args(["demo", "--taxpayers", "20", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--dir")
        .arg(dir.join("demo"))
        .env("GSKO_LOG", "info,sqlx=warn");
    let mut demo = Guarded::spawn("gsko demo", cmd, &dir.join("demo.log"));
    let base = format!("http://127.0.0.1:{port}");
    poll(
        "gsko demo did not answer /healthz",
        Duration::from_secs(120),
        || {
            demo.ensure_running();
            Ok((get(&format!("{base}/healthz"), None, None)?.0 == 200).then_some(()))
        },
    );
    let m0 = gsko_sim::MUNICIPALITIES[0].teryt;
    poll(
        "the demo did not show Jan's letters and cases in the first municipality",
        Duration::from_secs(120),
        || {
            demo.ensure_running();
            let letters = demo_get(&base, &format!("/v1/tenants/{m0}/resident/letters"))?;
            let cases = demo_get(&base, &format!("/v1/tenants/{m0}/resident/cases"))?;
            Ok((letters.is_some_and(|l| non_empty(&l, "letters"))
                && cases.is_some_and(|c| non_empty(&c, "cases")))
            .then_some(()))
        },
    );
    demo
}

/// Starts chromedriver on a free port and waits until it takes sessions.
fn start_chromedriver(dir: &Path) -> (Guarded, String) {
    let port = free_port();
    let mut cmd = Command::new(CHROMEDRIVER);
    cmd.arg(format!("--port={port}"));
    let mut driver = Guarded::spawn("chromedriver", cmd, &dir.join("chromedriver.log"));
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver keeps HTTP connections open, so an accepted connection is the sign here.
    poll("chromedriver did not listen", PAGE_WAIT, || {
        driver.ensure_running();
        Ok(std::net::TcpStream::connect(("127.0.0.1", port))
            .is_ok()
            .then_some(()))
    });
    (driver, url)
}

/// A headless Chromium session with a fresh profile. The flags keep Chromium off the network
/// (which is closed here) and away from a display and a sandbox a container does not give.
async fn open_browser(webdriver: &str, profile: &Path) -> Result<Client> {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .context("starting a Chromium session through chromedriver")
}

/// A JSON page as the browser got it: its HTTP status and the parsed body.
struct JsonPage {
    status: u64,
    body: Value,
}

/// Reads the JSON document the browser shows. Chromium renders JSON as text in a `<pre>` (with
/// a pretty-print control beside it), so the `<pre>`'s text is the body; the status comes from
/// the Navigation Timing entry. Retried until the document has loaded and parses.
async fn read_json(client: &Client) -> Result<JsonPage> {
    const SCRIPT: &str = "const pre = document.querySelector('pre');\
        const nav = performance.getEntriesByType('navigation')[0];\
        return { ready: document.readyState === 'complete',\
                 text: pre ? pre.textContent : (document.body ? document.body.innerText : ''),\
                 status: nav ? nav.responseStatus : 0 };";
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let got = client.execute(SCRIPT, vec![]).await?;
        let text = got["text"].as_str().unwrap_or_default();
        if got["ready"] == true {
            if let Ok(body) = serde_json::from_str(text) {
                return Ok(JsonPage {
                    status: got["status"].as_u64().unwrap_or(0),
                    body,
                });
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the page at {} is not JSON: {text:?}",
                client.current_url().await?
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Navigates to `path` on GSKO and reads the JSON it answers.
async fn open_json(client: &Client, base: &str, path: &str) -> Result<JsonPage> {
    client.goto(&format!("{base}{path}")).await?;
    read_json(client)
        .await
        .with_context(|| format!("reading {path}"))
}

/// Waits until the browser is at `path` on GSKO (after redirects and auto-submitted forms).
async fn wait_for_gsko_path(client: &Client, port: u16, path: &str) -> Result<()> {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let url = client.current_url().await?;
        if url.port() == Some(port) && url.path() == path {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the browser did not reach {path} on GSKO: it is at {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// From GSKO's start page through the simulated login.gov.pl back to `/v1/session`, choosing
/// the resident with `pesel`; returns the session JSON.
async fn log_in(client: &Client, base: &str, port: u16, pesel: &str) -> Result<Value> {
    client.goto(&format!("{base}/")).await?;
    client
        .find(Locator::Css("#login"))
        .await
        .context("the start page has no login link")?
        .click()
        .await?;
    // GSKO's page posts the signed AuthnRequest by itself; the simulator lists the residents.
    let choose = client
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Css(&format!("#login-{pesel}")))
        .await
        .context("the simulated login.gov.pl did not offer the resident")?;
    let at = client.current_url().await?;
    ensure!(
        at.port() != Some(port),
        "the resident was offered by GSKO itself, not by login.gov.pl: {at}"
    );
    choose.click().await?;
    // The simulator posts the artifact back to GSKO's ACS, which redirects to `return_to`.
    wait_for_gsko_path(client, port, "/v1/session").await?;
    let session = read_json(client).await?;
    ensure!(
        session.status == 200,
        "/v1/session after login answered {}: {}",
        session.status,
        session.body
    );
    Ok(session.body)
}

fn tenants_of(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().or_else(|| t["tenant"].as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The whole walk in the browser; an `Err` says which step went wrong.
async fn walk(client: &Client, port: u16) -> Result<()> {
    let base = format!("http://127.0.0.1:{port}");
    let m0 = gsko_sim::MUNICIPALITIES[0].teryt;
    let m1 = gsko_sim::MUNICIPALITIES[1].teryt;
    let m2 = gsko_sim::MUNICIPALITIES[2].teryt;

    // Before logging in the browser has no session.
    let before = open_json(client, &base, "/v1/session").await?;
    ensure!(
        before.status == 401,
        "/v1/session before login: {} {}",
        before.status,
        before.body
    );

    let session = log_in(client, &base, port, JAN).await?;
    ensure!(
        session["given_name"] == "Jan" && session["family_name"] == "Kowalski",
        "the session names someone else: {session}"
    );
    ensure!(
        session["loa"]
            .as_str()
            .is_some_and(|l| l.starts_with("http://eidas.europa.eu/LoA/")),
        "the session has no eIDAS level of assurance: {session}"
    );
    let tenants = tenants_of(&session, "tenants");
    ensure!(
        tenants.iter().any(|t| t == m0) && tenants.iter().any(|t| t == m1),
        "Jan's session lacks his municipalities {m0} and {m1}: {session}"
    );

    // The session lives in an HttpOnly cookie: the browser sends it, page scripts cannot read it.
    let cookie = client
        .get_named_cookie("gsko_session")
        .await
        .context("the browser holds no gsko_session cookie")?;
    ensure!(
        cookie.http_only() == Some(true),
        "the session cookie is readable by scripts"
    );
    let script_cookies = client.execute("return document.cookie", vec![]).await?;
    ensure!(
        !script_cookies
            .as_str()
            .unwrap_or_default()
            .contains("gsko_session"),
        "document.cookie shows the session: {script_cookies}"
    );

    // Jan's own data, with nothing but the cookie.
    let resident = format!("/v1/tenants/{m0}/resident");
    for (path, list) in [
        (format!("{resident}/liabilities"), "liabilities"),
        (format!("{resident}/letters"), "letters"),
        (format!("{resident}/cases"), "cases"),
    ] {
        let page = open_json(client, &base, &path).await?;
        ensure!(
            page.status == 200 && page.body["tenant"] == m0 && non_empty(&page.body, list),
            "{path}: expected Jan's {list}, got {} {}",
            page.status,
            page.body
        );
    }
    let cases = open_json(client, &base, &format!("{resident}/cases")).await?;
    ensure!(
        cases.body["cases"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["case_ref"].is_string())),
        "every case has a znak sprawy: {}",
        cases.body
    );
    let payments = open_json(client, &base, &format!("{resident}/payments")).await?;
    ensure!(
        payments.status == 200
            && payments.body["tenant"] == m0
            && payments.body["payments"].is_array(),
        "{resident}/payments: {} {}",
        payments.status,
        payments.body
    );
    let summary = open_json(client, &base, "/v1/resident/summary").await?;
    let summarised = tenants_of(&summary.body, "tenants");
    ensure!(
        summary.status == 200
            && summarised.iter().any(|t| t == m0)
            && summarised.iter().any(|t| t == m1),
        "/v1/resident/summary lacks {m0} or {m1}: {} {}",
        summary.status,
        summary.body
    );
    ensure!(
        summary.body["tenants"]
            .as_array()
            .is_some_and(|t| t.iter().all(|s| non_empty(s, "accounts"))),
        "the summary shows no accounts: {}",
        summary.body
    );

    // Jan has nothing in the third municipality.
    let elsewhere = open_json(client, &base, &format!("/v1/tenants/{m2}/resident/summary")).await?;
    ensure!(
        elsewhere.status == 404 && elsewhere.body["error"] == "not_found",
        "Jan's summary in {m2}: expected 404 not_found, got {} {}",
        elsewhere.status,
        elsewhere.body
    );

    // Logging out on the start page ends the session.
    client.goto(&format!("{base}/")).await?;
    client
        .find(Locator::Css("#logout"))
        .await
        .context("the start page has no logout button")?
        .click()
        .await?;
    wait_for_gsko_path(client, port, "/logout").await?;
    let logged_out = read_json(client).await?;
    ensure!(
        logged_out.status == 200 && logged_out.body["logged_out"] == true,
        "POST /logout: {} {}",
        logged_out.status,
        logged_out.body
    );
    let after = open_json(client, &base, "/v1/session").await?;
    ensure!(
        after.status == 401
            && ["invalid_session", "missing_api_key"]
                .contains(&after.body["error"].as_str().unwrap_or_default()),
        "/v1/session after logout: {} {}",
        after.status,
        after.body
    );
    let data_after = open_json(client, &base, &format!("{resident}/liabilities")).await?;
    ensure!(
        data_after.status == 401,
        "Jan's liabilities are still shown after logout: {} {}",
        data_after.status,
        data_after.body
    );

    // A new login in the same browser works, and it is Anna's, not Jan's.
    let anna = log_in(client, &base, port, ANNA).await?;
    let anna_tenants = tenants_of(&anna, "tenants");
    ensure!(
        anna["given_name"] == "Anna" && anna["family_name"] == "Nowak",
        "the second login names someone else: {anna}"
    );
    ensure!(
        anna_tenants.iter().any(|t| t == m2),
        "Anna's session lacks {m2}: {anna}"
    );
    let anna_summary =
        open_json(client, &base, &format!("/v1/tenants/{m2}/resident/summary")).await?;
    ensure!(
        anna_summary.status == 200 && non_empty(&anna_summary.body, "accounts"),
        "Anna's summary in {m2}: {} {}",
        anna_summary.status,
        anna_summary.body
    );
    let not_jans = open_json(client, &base, &format!("/v1/tenants/{m1}/resident/summary")).await?;
    ensure!(
        not_jans.status == 404,
        "Anna is shown a summary where only Jan owns property ({m1}): {} {}",
        not_jans.status,
        not_jans.body
    );
    Ok(())
}

#[test]
fn a_resident_logs_in_through_login_gov_pl_in_chromium_and_reads_his_data() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: this test drives a real Chromium; run scripts/ensure-services.sh \
             (as root on Debian it installs the chromium and chromium-driver packages)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _demo = start_demo(dir.path(), port);
    let (_driver, webdriver) = start_chromedriver(dir.path());
    let profile = dir.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let client = open_browser(&webdriver, &profile).await?;
        let walked = walk(&client, port).await;
        // Close the browser whatever happened; the walk's error is the one worth reporting.
        let closed = client.close().await.map_err(|e| anyhow!(e));
        walked.and(closed.context("closing the browser session"))
    });
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
}
