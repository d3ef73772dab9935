//! File pickup against a minimal recording `Bus` (the real in-process bus lives in gsko-bus):
//! batches, correlation, the completion event last, the file moved only after confirmation,
//! duplicates skipped, bus failures leaving the file in the inbox, refused files parked.

use async_trait::async_trait;
use gsko_bus::{Bus, BusError, Outgoing, Subscription};
use gsko_model::{Event, EventData, MessageType, Teryt};
use gsko_radix::pickup::{fetch_url_with_timeout, import_inbox};
use gsko_radix::{
    fetch_url, import_file, FetchError, ImportError, ImportOptions, ImportOutcome, TenantDirs,
};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Records every confirmed batch; fails every publish after `fail_after` successful ones.
#[derive(Default)]
struct RecordingBus {
    batches: Mutex<Vec<Vec<Outgoing>>>,
    fail_after: Option<usize>,
}

#[async_trait]
impl Bus for RecordingBus {
    async fn publish(&self, batch: &[Outgoing]) -> Result<(), BusError> {
        let mut b = self.batches.lock().unwrap();
        if self.fail_after.is_some_and(|n| b.len() >= n) {
            return Err(BusError::Connection("broker went away".into()));
        }
        b.push(batch.to_vec());
        Ok(())
    }
    async fn subscribe(
        &self,
        _queue: &str,
        _prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        Err(BusError::Closed)
    }
}

impl RecordingBus {
    fn events(&self) -> Vec<Event> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|o| Event::from_json(&o.body).unwrap())
            .collect()
    }
}

fn tenant() -> Teryt {
    Teryt::parse("1465011").unwrap()
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/radix/example-full-v1.xml")
}

fn drop_into_inbox(dirs: &TenantDirs, name: &str, content: &[u8]) -> PathBuf {
    dirs.ensure().unwrap();
    let p = dirs.inbox().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[tokio::test]
async fn imports_in_batches_and_moves_the_file_only_after_everything_is_confirmed() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = TenantDirs::new(tmp.path());
    let path = drop_into_inbox(&dirs, "export-1.xml", &std::fs::read(example()).unwrap());
    let bus = RecordingBus::default();
    let opts = ImportOptions {
        batch_size: 3,
        ..ImportOptions::default()
    };
    let report = import_file(&path, &tenant(), &bus, &dirs, &opts)
        .await
        .unwrap();

    assert_eq!(report.outcome, ImportOutcome::Imported);
    assert_eq!((report.accepted, report.rejected), (8, 0));
    let sizes: Vec<usize> = bus.batches.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        vec![3, 3, 2, 1],
        "8 records in batches of 3, then the completion alone"
    );
    let events = bus.events();
    let last = events.last().unwrap();
    let EventData::ImportCompleted(done) = &last.data else {
        panic!("{last:?}")
    };
    assert_eq!(
        (
            done.records_accepted,
            done.records_rejected,
            done.export_kind.as_str()
        ),
        (8, 0, "full")
    );
    assert!(events
        .iter()
        .all(|e| e.correlation_id.as_deref() == Some(report.sha256.as_str())));
    assert!(events.iter().all(|e| e.tenant == tenant()));
    assert!(!path.exists());
    assert_eq!(
        report.moved_to.as_deref(),
        Some(dirs.processed().join("export-1.xml").as_path())
    );
    assert!(dirs.ledger().join(&report.sha256).exists());

    // the same bytes again, under another name: recognised, nothing published, the duplicate
    // removed (processed/ keeps the one copy)
    let again = drop_into_inbox(
        &dirs,
        "export-1-copy.xml",
        &std::fs::read(example()).unwrap(),
    );
    let bus2 = RecordingBus::default();
    let r2 = import_file(&again, &tenant(), &bus2, &dirs, &opts)
        .await
        .unwrap();
    assert_eq!(r2.outcome, ImportOutcome::AlreadyImported);
    assert!(bus2.batches.lock().unwrap().is_empty());
    assert!(!again.exists());
    assert_eq!(std::fs::read_dir(dirs.processed()).unwrap().count(), 1);
}

#[tokio::test]
async fn a_bus_failure_leaves_the_file_in_the_inbox_and_a_rerun_republishes() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = TenantDirs::new(tmp.path());
    let path = drop_into_inbox(&dirs, "export-2.xml", &std::fs::read(example()).unwrap());
    let opts = ImportOptions {
        batch_size: 2,
        ..ImportOptions::default()
    };
    let failing = RecordingBus {
        fail_after: Some(1),
        ..RecordingBus::default()
    };
    let err = import_file(&path, &tenant(), &failing, &dirs, &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Bus { .. }), "{err}");
    assert!(path.exists(), "the file stays in the inbox");
    assert_eq!(std::fs::read_dir(dirs.ledger()).unwrap().count(), 0);

    let bus = RecordingBus::default();
    let reports = import_inbox(&tenant(), &bus, &dirs, &opts).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, ImportOutcome::Imported);
    assert_eq!(bus.events().len(), 9);
}

#[tokio::test]
async fn rejected_records_are_published_and_written_for_the_admin() {
    let xml = std::fs::read_to_string(example())
        .unwrap()
        .replacen("44051401359", "44051401358", 1)
        .replacen(
            r#"amount="250.75" liability="L-2026-000001" installment="1""#,
            r#"amount="-5.00" liability="L-2026-000001" installment="1""#,
            1,
        );
    let tmp = tempfile::tempdir().unwrap();
    let dirs = TenantDirs::new(tmp.path());
    let path = drop_into_inbox(&dirs, "export-3.xml", xml.as_bytes());
    let bus = RecordingBus::default();
    let report = import_file(&path, &tenant(), &bus, &dirs, &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((report.accepted, report.rejected), (6, 2));
    let rejected: Vec<_> = bus
        .events()
        .into_iter()
        .filter(|e| e.message_type() == MessageType::RecordRejected)
        .collect();
    assert_eq!(rejected.len(), 2);
    let errors = std::fs::read_to_string(report.errors_file.as_ref().unwrap()).unwrap();
    let lines: Vec<gsko_model::RejectedRecord> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (
            lines[0].line,
            lines[0].field.as_deref(),
            lines[0].file.as_str()
        ),
        (15, Some("pesel"), "export-3.xml")
    );
    assert_eq!(
        (lines[1].line, lines[1].record_id.as_deref()),
        (58, Some("P-000002"))
    );
    assert_eq!(report.outcome, ImportOutcome::Imported);
    assert!(dirs.processed().join("export-3.xml").exists());
}

#[tokio::test]
async fn files_with_a_bad_header_or_broken_xml_go_to_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = TenantDirs::new(tmp.path());
    let other_tenant = std::fs::read_to_string(example())
        .unwrap()
        .replace(r#"tenant="1465011""#, r#"tenant="0201043""#);
    let path = drop_into_inbox(&dirs, "wrong-tenant.xml", other_tenant.as_bytes());
    let bus = RecordingBus::default();
    let r = import_file(&path, &tenant(), &bus, &dirs, &ImportOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(&r.outcome, ImportOutcome::Refused { reason } if reason.contains("0201043")),
        "{r:?}"
    );
    assert!(bus.batches.lock().unwrap().is_empty());
    assert!(dirs.failed().join("wrong-tenant.xml").exists());
    assert!(
        std::fs::read_to_string(dirs.failed().join("wrong-tenant.xml.error.txt"))
            .unwrap()
            .contains("tenant")
    );

    let broken =
        std::fs::read_to_string(example())
            .unwrap()
            .replacen("</accounts>", "</acounts>", 1);
    let path = drop_into_inbox(&dirs, "broken.xml", broken.as_bytes());
    let r = import_file(&path, &tenant(), &bus, &dirs, &ImportOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(r.outcome, ImportOutcome::Truncated { .. }),
        "{r:?}"
    );
    assert_eq!((r.accepted, r.rejected), (4, 1));
    assert!(dirs.failed().join("broken.xml").exists());
    assert!(dirs.failed().join("broken.xml.errors.jsonl").exists());
    let last = bus.events().pop().unwrap();
    assert_eq!(last.message_type(), MessageType::ImportCompleted);

    let path = drop_into_inbox(&dirs, "plain.csv", b"a;b\n1;2\n");
    let r = import_file(&path, &tenant(), &bus, &dirs, &ImportOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(&r.outcome, ImportOutcome::Refused { reason } if reason.contains("no CSV mapping")),
        "{r:?}"
    );
}

/// Serves one canned HTTP response on loopback.
async fn serve_once(status_line: &'static str, body: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _request = sock.read(&mut buf).await.unwrap();
        let head = format!(
            "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(body).await.unwrap();
        sock.shutdown().await.unwrap();
    });
    format!("http://{addr}")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn fetch_url_downloads_into_the_inbox_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let base = serve_once("200 OK", b"<radix-export/>").await;
    let path = fetch_url(
        &format!("{base}/exports/POGRUN-2026-03-01.xml?token=secret"),
        tmp.path(),
    )
    .await
    .unwrap();
    assert_eq!(path, tmp.path().join("POGRUN-2026-03-01.xml"));
    assert_eq!(std::fs::read(&path).unwrap(), b"<radix-export/>");
    assert_eq!(
        listing(tmp.path()),
        vec!["POGRUN-2026-03-01.xml"],
        "no temporary file left behind"
    );

    let base = serve_once("404 Not Found", b"nope").await;
    let err = fetch_url(&format!("{base}/missing.xml?token=secret"), tmp.path())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 404, .. }),
        "{err}"
    );
    assert!(
        !err.to_string().contains("secret"),
        "no tokens in errors: {err}"
    );
    assert_eq!(listing(tmp.path()), vec!["POGRUN-2026-03-01.xml"]);

    // nothing listens: a clear error within the timeout
    let err = fetch_url_with_timeout(
        "http://127.0.0.1:9/x.xml",
        tmp.path(),
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FetchError::Http { .. }), "{err}");
    assert!(matches!(
        fetch_url("ftp://example.org/x.xml", tmp.path())
            .await
            .unwrap_err(),
        FetchError::Url(_)
    ));
}

/// A DOS-era installation exports one table per file; the tenant maps each by file-name prefix.
#[tokio::test]
async fn csv_tables_are_read_with_the_mapping_of_their_file_name_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = TenantDirs::new(tmp.path());
    let mappings: std::collections::BTreeMap<String, gsko_radix::csv::CsvMapping> = toml::from_str(
        r#"
[podatnicy]
encoding = "mazovia"
[podatnicy.layout]
record = "taxpayers"
id = "NR"
pesel = "PESEL"
name = "NAZWISKO"
given_names = "IMIONA"

[konta]
encoding = "mazovia"
[konta.layout]
record = "accounts"
id = "KONTO"
levy_constant = "property"
holders = "PODATNICY"
"#,
    )
    .unwrap();
    let opts = ImportOptions {
        csv: mappings,
        ..Default::default()
    };
    // "Łukasz Żółć" in Mazovia: Ł=0x9C, Ż=0xA1, ó=0xA2, ł=0x92, ć=0x8D.
    let mut taxpayers = b"NR;PESEL;NAZWISKO;IMIONA\nT1;44051401359;".to_vec();
    taxpayers.extend_from_slice(&[
        0xA1, 0xA2, 0x92, 0x8D, b';', 0x9C, b'u', b'k', b'a', b's', b'z', b'\n',
    ]);
    let p1 = drop_into_inbox(&dirs, "PODATNICY_2026.csv", &taxpayers);
    let p2 = drop_into_inbox(&dirs, "konta.csv", b"KONTO;PODATNICY\nK1;T1\n");
    let p3 = drop_into_inbox(&dirs, "wplaty.csv", b"X\n1\n");
    let bus = RecordingBus::default();
    for p in [&p1, &p2] {
        let r = import_file(p, &tenant(), &bus, &dirs, &opts).await.unwrap();
        assert_eq!(
            (&r.outcome, r.accepted, r.rejected),
            (&ImportOutcome::Imported, 1, 0),
            "{r:?}"
        );
    }
    let names: Vec<String> = bus
        .events()
        .into_iter()
        .filter_map(|e| match e.data {
            EventData::TaxpayerUpserted(t) => Some(t.name),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["Łukasz Żółć"]);
    let r = import_file(&p3, &tenant(), &bus, &dirs, &opts)
        .await
        .unwrap();
    assert!(
        matches!(&r.outcome, ImportOutcome::Refused { reason } if reason.contains("konta, podatnicy")),
        "{r:?}"
    );
}
