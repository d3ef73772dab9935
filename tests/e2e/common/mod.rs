//! Harness of the end-to-end tests: real `gsko` processes against real RabbitMQ and PostgreSQL.
//! Each test gets its own PostgreSQL database and its own RabbitMQ virtual host, so tests never
//! see each other's queues or rows, and both are removed afterwards.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PORTAL_KEY: &str = "test-portal-key";
pub const ADMIN_KEY: &str = "test-admin-key";

pub fn gsko() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gsko"))
}

pub fn pg_server() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_subsec_micros()
    )
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &pg_server(), "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One isolated production environment: a database, a vhost, a config directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db_name: String,
    pub db_url: String,
    pub vhost: String,
    pub amqp_url: String,
    pub port: u16,
}

impl Env {
    pub fn new() -> Env {
        let db_name = unique("gsko_e2e");
        psql(&format!("CREATE DATABASE {db_name}"));
        let vhost = unique("gsko-e2e");
        rabbitmqctl(&["add_vhost", &vhost]);
        rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
        let base = pg_server();
        let db_url = format!("{}/{db_name}", base.rsplit_once('/').unwrap().0);
        Env {
            dir: tempfile::tempdir().unwrap(),
            db_name,
            db_url,
            amqp_url: format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
            vhost,
            port: free_port(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The tenant's RADIX directory (inbox/, processed/, failed/ below it).
    pub fn radix_dir(&self, teryt: &str) -> PathBuf {
        self.path().join("radix").join(teryt)
    }

    pub fn inbox(&self, teryt: &str) -> PathBuf {
        self.radix_dir(teryt).join("inbox")
    }

    /// Writes `gsko.toml` and one tenant file per (teryt, name); portal key scopes given as
    /// (name, key, tenants, admin).
    pub fn write_config(
        &self,
        tenants: &[(&str, &str)],
        portals: &[(&str, &str, &[&str], bool)],
    ) -> PathBuf {
        let t = self.path().join("tenants");
        std::fs::create_dir_all(&t).unwrap();
        for (teryt, name) in tenants {
            std::fs::create_dir_all(self.inbox(teryt)).unwrap();
            std::fs::write(
                t.join(format!("{teryt}.toml")),
                format!("teryt = \"{teryt}\"\nname = \"{name}\"\n[radix]\ndirectory = \"radix/{teryt}\"\nschedule = \"*/1 * * * * *\"\n"),
            )
            .unwrap();
        }
        let mut main = format!(
            "version = 1\n[database]\nkind = \"postgres\"\nurl = {{ env = \"GSKO_TEST_DB\" }}\nmax_connections = 4\n[bus]\nkind = \"amqp\"\nurl = {{ env = \"GSKO_TEST_AMQP\" }}\nprefetch = 1000\nretry_delays_secs = [1, 2]\n[http]\nlisten = \"127.0.0.1:{}\"\n[projector]\nbatch_size = 500\nworkers = 2\n",
            self.port
        );
        for (name, key, scope, admin) in portals {
            let scope: Vec<String> = scope.iter().map(|s| format!("\"{s}\"")).collect();
            main.push_str(&format!("[[portals]]\nname = \"{name}\"\napi_key = {{ value = \"{key}\" }}\ntenants = [{}]\nadmin = {admin}\n", scope.join(", ")));
        }
        let p = self.path().join("gsko.toml");
        std::fs::write(&p, main).unwrap();
        p
    }

    pub fn spawn(&self) -> Daemon {
        let log = std::fs::File::create(self.path().join(format!(
            "daemon-{}.log",
            chrono::Utc::now().timestamp_micros()
        )))
        .unwrap();
        let child = gsko()
            .args(["run", "--config"])
            .arg(self.path().join("gsko.toml"))
            .env("GSKO_TEST_DB", &self.db_url)
            .env("GSKO_TEST_AMQP", &self.amqp_url)
            .env(
                "GSKO_LOG",
                "info,sqlx=warn,lapin=warn,lapin::returned_messages=off",
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("gsko starts");
        let d = Daemon {
            child: Some(child),
            base: format!("http://127.0.0.1:{}", self.port),
        };
        d.wait_ready();
        d
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(self.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("daemon-") {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        Command::new("psql")
            .args([
                "-X",
                "-q",
                &pg_server(),
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name),
            ])
            .output()
            .ok();
        Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.vhost])
            .output()
            .ok();
    }
}

pub struct Daemon {
    pub child: Option<Child>,
    pub base: String,
}

impl Daemon {
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = get(&format!("{}/readyz", self.base), None, None) {
                if r.0 == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("gsko did not become ready at {}", self.base);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok(); // SIGKILL
            drop(c.wait());
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status()
                .ok();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(c.kill());
            drop(c.wait());
        }
    }

    pub fn get(
        &self,
        path: &str,
        key: Option<&str>,
        pesel: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let (status, body) =
            get(&format!("{}{path}", self.base), key, pesel).expect("request succeeds");
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    /// A JSON request with the portal key and resident; the answer parsed as JSON.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        pesel: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = request(
            method,
            &format!("{}{path}", self.base),
            key,
            pesel,
            headers,
            body.as_deref().map(str::as_bytes),
        )
        .expect("request succeeds");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// GET until it answers 200 (an import is "completed" once the broker confirmed all its
    /// events; with competing projector workers the last of them may still be being applied).
    pub fn get_ok(
        &self,
        path: &str,
        key: Option<&str>,
        pesel: Option<&str>,
        timeout: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (s, v) = self.get(path, key, pesel);
            if s == 200 {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: still {s} after {timeout:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// GET until the answer is 200 and satisfies `ready` (see [`Daemon::get_ok`]).
    pub fn get_when(
        &self,
        path: &str,
        key: Option<&str>,
        pesel: Option<&str>,
        timeout: Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (s, v) = self.get(path, key, pesel);
            if s == 200 && ready(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: not ready after {timeout:?}: {s} {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the admin imports endpoint until `n` imports are completed for `teryt`.
    pub fn wait_imports(&self, teryt: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let (s, v) = self.get(
                &format!("/v1/tenants/{teryt}/admin/imports"),
                Some(ADMIN_KEY),
                None,
            );
            if s == 200 && v["imports"].as_array().map_or(0, |a| a.len()) >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tenant {teryt}: {n} imports not completed in time (last answer {s}: {v})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal HTTP/1.1 GET over a TCP socket: the tests need nothing more, and this keeps the
/// harness free of the service's own HTTP stack.
pub fn get(url: &str, key: Option<&str>, pesel: Option<&str>) -> std::io::Result<(u16, String)> {
    request("GET", url, key, pesel, &[], None)
}

/// A minimal HTTP/1.1 request with optional portal key, resident, extra headers and body.
pub fn request(
    method: &str,
    url: &str,
    key: Option<&str>,
    pesel: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".to_owned()));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    if let Some(p) = pesel {
        req.push_str(&format!("X-Resident-Pesel: {p}\r\n"));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// Generates a RADIX export with the simulator into `dir`.
pub fn export(
    dir: &Path,
    teryt: &str,
    taxpayers: usize,
    seed: u64,
    extra: Vec<gsko_sim::DemoResident>,
) -> PathBuf {
    let mut spec = gsko_sim::RadixExportSpec::new(teryt, taxpayers, seed, 2026);
    spec.extra_residents = extra;
    // Generate beside the inbox and move in whole, as a real exporter should.
    let staging = dir.parent().unwrap().parent().unwrap().join(".staging");
    std::fs::create_dir_all(&staging).unwrap();
    let p = gsko_sim::generate_to_dir(&spec, &staging).unwrap();
    let dest = dir.join(p.file_name().unwrap());
    std::fs::rename(&p, &dest).unwrap();
    dest
}
