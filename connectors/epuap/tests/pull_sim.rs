//! The connector's pieces against the ePUAP simulator (an independent implementation that
//! verifies signatures with xmlsec1): a signed WS-Pull cycle reads generated letters in order,
//! parses them, and confirms each with its digest; an unsigned request is refused.
//!
//! `cargo test -p gsko-epuap --test pull_sim`

use gsko_bus::{Bus, Exchange, MemoryBus, QueueSpec, Topology};
use gsko_epuap::client::{PullClient, RetryPolicy};
use gsko_epuap::document::{parse, DEFAULT_MAX_ATTACHMENT_BYTES};
use gsko_epuap::pull::{
    parse_confirm, parse_next, parse_pending, request_body, BoxAddress, PullError, PullOperation,
};
use gsko_epuap::receiver::{FileStore, Receiver};
use gsko_epuap::wssec::{envelope, sign_envelope, SigningIdentity};
use gsko_model::{Event, EventData, SignatureStatus};
use gsko_sim::epuap::{self as sim, EpuapSim, EpuapSimConfig, LetterSpec};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

struct Office {
    _dir: tempfile::TempDir,
    identity: SigningIdentity,
}

fn office_certificate() -> Office {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=UM Boleslawiec system"])
        .output()
        .expect("openssl makes the test certificate (scripts/ensure-services.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity = SigningIdentity::from_pem(
        &std::fs::read_to_string(cert).unwrap(),
        &std::fs::read_to_string(key).unwrap(),
    )
    .unwrap();
    Office {
        _dir: dir,
        identity,
    }
}

async fn call(
    url: &str,
    op: PullOperation,
    body: String,
    identity: Option<&SigningIdentity>,
) -> String {
    let env = envelope(&body, &[]);
    let env = match identity {
        Some(id) => sign_envelope(&env, id).unwrap(),
        None => env,
    };
    reqwest::Client::new()
        .post(url)
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", op.soap_action())
        .body(env)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The simulator with the office's box and certificate registered, and a letter template.
async fn box_with_office(office: &Office) -> (sim::EpuapSimHandle, sim::BoxAddress, LetterSpec) {
    let handle = EpuapSim::start(
        EpuapSimConfig::new()
            .with_box("umboleslawiec", "skrytka")
            .with_certificate("umboleslawiec", office.identity.certificate_der().to_vec()),
    )
    .await
    .unwrap();
    let date = gsko_sim::SimDate::new(2026, 11, 20).unwrap();
    let spec = LetterSpec::new("Urząd Miasta Bolesławiec", "Bolesławiec", "59-700", date);
    (
        handle,
        sim::BoxAddress::new("umboleslawiec", "skrytka"),
        spec,
    )
}

#[tokio::test]
async fn a_signed_pull_cycle_reads_every_letter_once_in_order() {
    let office = office_certificate();
    let (handle, sim_box, spec) = box_with_office(&office).await;
    let letters: Vec<_> = (0..3)
        .map(|seed| sim::generate_letter(seed, &spec))
        .collect();
    for l in &letters {
        handle.deposit(&sim_box, l.letter.clone()).unwrap();
    }
    let url = handle.pull_url();
    let b = BoxAddress::new("umboleslawiec", "skrytka");

    // Unsigned: refused, nothing taken.
    let answer = call(
        &url,
        PullOperation::Pending,
        request_body(PullOperation::Pending, &b, None),
        None,
    )
    .await;
    assert!(
        matches!(parse_pending(&answer), Err(PullError::Fault { .. })),
        "{answer}"
    );

    let answer = call(
        &url,
        PullOperation::Pending,
        request_body(PullOperation::Pending, &b, None),
        Some(&office.identity),
    )
    .await;
    assert_eq!(parse_pending(&answer), Ok(3));
    for expected in &letters {
        let answer = call(
            &url,
            PullOperation::Next,
            request_body(PullOperation::Next, &b, None),
            Some(&office.identity),
        )
        .await;
        let doc = parse_next(&answer).unwrap().expect("a letter waits");
        let parsed = parse(&doc.content, DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
        assert_eq!(parsed.title.as_deref(), Some(expected.title.as_str()));
        assert_eq!(
            parsed.senders[0].pesel.as_deref(),
            Some(expected.pesel.as_str())
        );
        assert_eq!(parsed.attachments.len(), expected.attachments.len());
        for (a, e) in parsed.attachments.iter().zip(&expected.attachments) {
            assert_eq!(
                a.content.as_deref(),
                Some(e.content.as_slice()),
                "{}",
                e.file_name
            );
        }
        // A wrong digest confirms nothing; the right one removes the letter.
        let wrong = call(
            &url,
            PullOperation::Confirm,
            request_body(
                PullOperation::Confirm,
                &b,
                Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ),
            Some(&office.identity),
        )
        .await;
        assert!(parse_confirm(&wrong).is_err(), "{wrong}");
        let ok = call(
            &url,
            PullOperation::Confirm,
            request_body(PullOperation::Confirm, &b, Some(&doc.digest())),
            Some(&office.identity),
        )
        .await;
        assert_eq!(parse_confirm(&ok), Ok(()), "{ok}");
    }
    let answer = call(
        &url,
        PullOperation::Next,
        request_body(PullOperation::Next, &b, None),
        Some(&office.identity),
    )
    .await;
    assert_eq!(parse_next(&answer), Ok(None));
    assert_eq!(handle.confirmed(&sim_box).len(), 3);
    assert!(handle
        .rejections()
        .iter()
        .any(|r| r.kind.is_authentication()));
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
    }
}

async fn letters_bus() -> MemoryBus {
    let topology = Topology {
        queues: vec![
            QueueSpec {
                name: "letters".into(),
                exchange: Exchange::Events,
                bindings: vec!["pl.gsko.letter.#".into()],
            },
            QueueSpec {
                name: "registrations".into(),
                exchange: Exchange::Commands,
                bindings: vec!["pl.gsko.letter.register.#".into()],
            },
        ],
        ..Topology::default()
    };
    MemoryBus::open(None, topology).await.unwrap()
}

async fn published(bus: &MemoryBus) -> Vec<Event> {
    taken(bus, "letters").await
}

async fn taken(bus: &MemoryBus, queue: &str) -> Vec<Event> {
    let mut sub = bus.subscribe(queue, 100).await.unwrap();
    let batch = sub
        .next_batch(100, Duration::from_millis(300), Duration::from_millis(50))
        .await
        .unwrap();
    let events = batch
        .iter()
        .map(|d| Event::from_json(&d.body).unwrap())
        .collect();
    sub.ack(batch).await.unwrap();
    events
}

#[tokio::test]
async fn the_receiver_stores_publishes_then_confirms_and_survives_faults() {
    let office = office_certificate();
    let (handle, sim_box, spec) = box_with_office(&office).await;
    let letters: Vec<_> = (10..14)
        .map(|seed| sim::generate_letter(seed, &spec))
        .collect();
    for l in &letters {
        handle.deposit(&sim_box, l.letter.clone()).unwrap();
    }
    let files = tempfile::tempdir().unwrap();
    let receiver = Receiver {
        tenant: "0201011".parse().unwrap(),
        client: PullClient::new(
            handle.pull_url(),
            Arc::new(office.identity),
            BoxAddress::new("umboleslawiec", "skrytka"),
            quick_retry(),
        )
        .unwrap(),
        files: FileStore::new(files.path()),
        max_attachment_bytes: 10 << 20,
        signatures: Default::default(),
        receipts: None,
    };
    let bus = letters_bus().await;

    // ePUAP fails once on the way (HTTP 500, then a SOAP server fault): retried, nothing lost.
    handle.fail_next(sim::PullOperation::Pobierz, sim::PullFault::Http500);
    handle.fail_next(sim::PullOperation::Potwierdz, sim::PullFault::soap_fault());
    let report = receiver.run_once(&bus).await.unwrap();
    assert_eq!((report.received, report.unconfirmed), (4, 0));
    assert_eq!(handle.confirmed(&sim_box).len(), 4);
    assert!(handle.pending(&sim_box).is_empty());
    let events = published(&bus).await;
    assert_eq!(events.len(), 4);
    // Each letter goes to the EZD connector too, as a command with the same letter.
    let commands = taken(&bus, "registrations").await;
    assert_eq!(commands.len(), 4);
    for (c, e) in commands.iter().zip(&events) {
        let (EventData::LetterRegister(c), EventData::LetterReceived(e)) = (&c.data, &e.data)
        else {
            panic!("{c:?}")
        };
        assert_eq!(c, e);
    }
    for (e, l) in events.iter().zip(&letters) {
        let EventData::LetterReceived(letter) = &e.data else {
            panic!("{e:?}")
        };
        assert_eq!(letter.title, l.title);
        assert_eq!(
            letter.sender.pesel.as_ref().map(|p| p.as_str()),
            Some(l.pesel.as_str())
        );
        assert_eq!(letter.signature.status, SignatureStatus::Absent);
        assert_eq!(letter.attachments.len(), l.attachments.len());
        // Stored before it was published: the document and every attachment by hash.
        assert_eq!(
            receiver.files.get(&letter.document.sha256).unwrap(),
            l.letter.content
        );
        for (a, g) in letter.attachments.iter().zip(&l.attachments) {
            assert_eq!(receiver.files.get(&a.sha256).unwrap(), g.content);
        }
    }

    // A confirm whose answer is lost: the letter is removed at ePUAP, the receiver does not
    // know; the next run finds the box empty and publishes nothing more.
    let extra = sim::generate_letter(99, &spec);
    handle.deposit(&sim_box, extra.letter.clone()).unwrap();
    handle.fail_next(
        sim::PullOperation::Potwierdz,
        sim::PullFault::Http500AfterProcessing,
    );
    let report = receiver.run_once(&bus).await.unwrap();
    assert_eq!(report.received + report.unconfirmed, 1);
    assert!(handle.pending(&sim_box).is_empty());
    let again = receiver.run_once(&bus).await.unwrap();
    assert_eq!(again, Default::default());
    assert_eq!(published(&bus).await.len(), 1);

    // A damaged download: the confirm is refused, nothing is removed, the next run takes the
    // intact copy, under its own event id.
    let last = sim::generate_letter(100, &spec);
    handle.deposit(&sim_box, last.letter.clone()).unwrap();
    handle.fail_next(sim::PullOperation::Pobierz, sim::PullFault::CorruptContent);
    let report = receiver.run_once(&bus).await.unwrap();
    assert_eq!((report.received, report.unconfirmed), (0, 1));
    assert_eq!(handle.pending(&sim_box).len(), 1);
    let report = receiver.run_once(&bus).await.unwrap();
    assert_eq!((report.received, report.unconfirmed), (1, 0));
    let events = published(&bus).await;
    assert_eq!(events.len(), 2);
    assert_ne!(events[0].id, events[1].id);
}
