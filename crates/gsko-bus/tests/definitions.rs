//! `deploy/rabbitmq/definitions.json` must describe exactly what `AmqpBus` declares for the
//! default topology: imported into a scratch vhost, a connect must succeed (any argument that
//! differs makes the broker refuse the declaration with PRECONDITION_FAILED) and must not add a
//! queue the file lacks. Needs a local broker and `rabbitmqctl`.

use gsko_bus::{AmqpBus, AmqpOptions, Topology};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

fn ctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn retarget(v: &mut serde_json::Value, vhost: &str) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if (k == "vhost" || k == "name") && x == "/" {
                    *x = serde_json::Value::String(vhost.to_owned());
                } else {
                    retarget(x, vhost);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| retarget(x, vhost)),
        _ => {}
    }
}

struct DeleteVhost(String);
impl Drop for DeleteVhost {
    fn drop(&mut self) {
        let _deleted = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.0])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_match_declared_topology() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/rabbitmq/definitions.json"
    );
    let text = std::fs::read_to_string(path).expect("definitions.json");
    let mut defs: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let vhost = format!("gsko-bus-defs-{:08x}", rand::random::<u32>());
    retarget(&mut defs, &vhost);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("defs.json");
    std::fs::write(&file, serde_json::to_vec(&defs).expect("json")).expect("write");
    let _cleanup = DeleteVhost(vhost.clone());
    ctl(&["import_definitions", file.to_str().expect("utf-8 path")]);
    ctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);

    let listed = |ctl_out: String| -> BTreeSet<String> {
        ctl_out
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let before = listed(ctl(&[
        "list_queues",
        "-p",
        &vhost,
        "--no-table-headers",
        "--silent",
        "name",
    ]));
    let in_file: BTreeSet<String> = defs["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(before, in_file);

    let opts = AmqpOptions {
        connect_timeout: Duration::from_secs(5),
        ..AmqpOptions::default()
    };
    let url = format!("amqp://guest:guest@127.0.0.1:5672/{vhost}");
    let bus = AmqpBus::connect_with(&url, Topology::default(), opts).await;
    assert!(
        bus.is_ok(),
        "the code's declarations disagree with definitions.json: {:?}",
        bus.err()
    );
    drop(bus);
    let after = listed(ctl(&[
        "list_queues",
        "-p",
        &vhost,
        "--no-table-headers",
        "--silent",
        "name",
    ]));
    assert_eq!(
        after, in_file,
        "the code declares queues definitions.json lacks"
    );

    // The safety-net policy reaches the work queues and spares the retry and parking queues.
    let policies = ctl(&[
        "list_queues",
        "-p",
        &vhost,
        "--no-table-headers",
        "--silent",
        "name",
        "policy",
    ]);
    for line in policies.lines() {
        let mut cols = line.split_whitespace();
        let (Some(name), policy) = (cols.next(), cols.next()) else {
            continue;
        };
        let work_queue = Topology::default().queues.iter().any(|q| q.name == name);
        let expected = work_queue.then_some("gsko-poison-safety-net");
        assert_eq!(policy, expected, "policy of {name}");
    }
}
