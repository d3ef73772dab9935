//! The `sign` computation against the spec's §7 vectors (verbatim) and against an independent
//! implementation: Python's `json` + `hashlib`.

use std::process::Command;

use gsko_przelewy24::sign::{
    notification_sign, refund_notification_sign, register_sign, verify_sign, NotificationSignFields,
};
use gsko_przelewy24::{P24Client, P24Config, StoredOrder};

#[test]
fn spec_section_7_vectors() {
    assert_eq!(
        register_sign("sessionId", 999999, 1000, "PLN", "crc"),
        "a34cf822f00b51d8d75e2d21334d6ffb5f2fac8408574f4cd7d4897f07ed61312244f9875e18ce63a4fbe2668d7ffc30"
    );
    assert_eq!(
        verify_sign("sessionId", 999999, 1000, "PLN", "crc"),
        "3edcfa853ade37780fdcd00541b2c266117a7d35fab662ddc26498495c09b048e736f28424b616d2f1fbd882f6a47f0c"
    );
    assert_eq!(
        notification_sign(
            &NotificationSignFields {
                merchant_id: 12345,
                pos_id: 123,
                session_id: "0beec7",
                amount: 1500,
                origin_amount: 1500,
                currency: "PLN",
                order_id: 123456789,
                method_id: 32,
                statement: "p24-XXX-YYY-ZZZ",
            },
            "bar"
        ),
        "703e946290d92230297c35d3bc8f554d4a458a4c97c9917665929c5ef5e682f7a868ac36e5dff20184c6a5302ef66c77"
    );
    assert_eq!(
        register_sign("PN/2026/000123", 12345, 12345, "PLN", "bar"),
        "fcceb1c9f4760d3866a6a9d95bfe28ea4cb6de5e38f716e29ee54cd53c517ad75f5f5c28484d125140ec489875524556"
    );
    assert_eq!(
        verify_sign("PN/2026/000123", 987654321, 12345, "PLN", "bar"),
        "a7bba2e1faa0f52b772b570a929143c07bfd1cbdc6a144ddaef74e8e26debfb76c51b5d39226824584310f4315295b49"
    );
    assert_eq!(
        refund_notification_sign(987654321, "PN/2026/000123", "R-1", 12345, 500, "PLN", 0, "bar"),
        "2945570a366f04102acdef28f98f614b3a60caecd18c3e914547df061543dca385f0f9bd01f8b2f2e2fd885c8cefaa7a"
    );
}

/// The mnastalski notification example (spec §1.6) passes the full notification check.
#[test]
fn spec_notification_example_verifies() {
    let body = br#"{"merchantId":12345,"posId":123,"sessionId":"0beec7","amount":1500,"originAmount":1500,
 "currency":"PLN","orderId":123456789,"methodId":32,"statement":"p24-XXX-YYY-ZZZ",
 "sign":"703e946290d92230297c35d3bc8f554d4a458a4c97c9917665929c5ef5e682f7a868ac36e5dff20184c6a5302ef66c77"}"#;
    let mut config = P24Config::new("https://sandbox.przelewy24.pl", 12345, "key", "bar");
    config.pos_id = 123;
    let client = P24Client::new(config).unwrap();
    let order = StoredOrder {
        session_id: "0beec7".into(),
        amount: 1500,
        currency: "PLN".into(),
        verified_order_id: None,
    };
    let n = client.parse_and_verify_notification(body, &order).unwrap();
    assert_eq!(n.order_id, 123456789);
    assert_eq!(n.statement, "p24-XXX-YYY-ZZZ");
}

/// A refund notification carrying the spec's §7 refund vector passes the check.
#[test]
fn spec_refund_notification_vector_verifies() {
    let body = br#"{"orderId":987654321,"sessionId":"PN/2026/000123","merchantId":12345,"requestId":"Q-1","refundsUuid":"R-1","amount":500,"currency":"PLN","timestamp":1767225600,"status":0,"sign":"2945570a366f04102acdef28f98f614b3a60caecd18c3e914547df061543dca385f0f9bd01f8b2f2e2fd885c8cefaa7a"}"#;
    let client = P24Client::new(P24Config::new(
        "https://sandbox.przelewy24.pl",
        12345,
        "key",
        "bar",
    ))
    .unwrap();
    let n = client.parse_and_verify_refund_notification(body).unwrap();
    assert!(n.completed);
    assert_eq!((n.order_id, n.amount), (987654321, 500));
    let tampered = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("\"amount\":500", "\"amount\":5000");
    assert_eq!(
        client.parse_and_verify_refund_notification(tampered.as_bytes()),
        Err(gsko_przelewy24::NotificationError::BadSign)
    );
}

/// sha384 of the JSON of each case (a list of `[key, value]` pairs, in order) as Python writes
/// it with P24's settings; one Python process for all cases.
fn python_signs(cases: &[serde_json::Value]) -> Vec<String> {
    let script = r#"
import sys, json, hashlib
for pairs in json.loads(sys.argv[1]):
    text = json.dumps(dict(pairs), separators=(',', ':'), ensure_ascii=False)
    print(hashlib.sha384(text.encode('utf-8')).hexdigest())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(serde_json::Value::Array(cases.to_vec()).to_string())
        .output()
        .expect("python3 is installed (the cross-check needs it)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn python_hashlib_cross_check() {
    use serde_json::json;
    // ASCII, slashes, Polish letters, quotes and backslashes, a control character.
    let sessions = [
        "sessionId",
        "PN/2026/000123",
        "Łódź-żółć/ĘŚĄ",
        r#"a"b\c"#,
        "tab\there",
    ];
    let crcs = ["crc", "bar", "kłucz/CRC"];
    let amount = 12_345_i64;
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for session in sessions {
        for crc in crcs {
            cases.push(json!([
                ["sessionId", session],
                ["merchantId", 12345],
                ["amount", amount],
                ["currency", "PLN"],
                ["crc", crc]
            ]));
            ours.push(register_sign(session, 12345, amount, "PLN", crc));
            cases.push(json!([
                ["sessionId", session],
                ["orderId", 310000001_i64],
                ["amount", amount],
                ["currency", "PLN"],
                ["crc", crc]
            ]));
            ours.push(verify_sign(session, 310000001, amount, "PLN", crc));
            cases.push(json!([
                ["merchantId", 12345],
                ["posId", 678],
                ["sessionId", session],
                ["amount", amount],
                ["originAmount", amount],
                ["currency", "PLN"],
                ["orderId", 310000001_i64],
                ["methodId", 25],
                ["statement", "p24-ABC-DEF-GHI"],
                ["crc", crc]
            ]));
            let fields = NotificationSignFields {
                merchant_id: 12345,
                pos_id: 678,
                session_id: session,
                amount,
                origin_amount: amount,
                currency: "PLN",
                order_id: 310000001,
                method_id: 25,
                statement: "p24-ABC-DEF-GHI",
            };
            ours.push(notification_sign(&fields, crc));
            cases.push(json!([
                ["orderId", 310000001_i64],
                ["sessionId", session],
                ["refundsUuid", "R-1"],
                ["merchantId", 12345],
                ["amount", 500],
                ["currency", "PLN"],
                ["status", 0],
                ["crc", crc]
            ]));
            ours.push(refund_notification_sign(
                310000001, session, "R-1", 12345, 500, "PLN", 0, crc,
            ));
        }
    }
    // And the spec's official example through Python too.
    cases.push(json!([
        ["sessionId", "sessionId"],
        ["merchantId", 999999],
        ["amount", 1000],
        ["currency", "PLN"],
        ["crc", "crc"]
    ]));
    ours.push(
        "a34cf822f00b51d8d75e2d21334d6ffb5f2fac8408574f4cd7d4897f07ed61312244f9875e18ce63a4fbe2668d7ffc30"
            .to_string(),
    );
    let python = python_signs(&cases);
    assert_eq!(python.len(), cases.len());
    for ((case, ours), python) in cases.iter().zip(&ours).zip(&python) {
        assert_eq!(ours, python, "case {case}");
    }
}

#[test]
fn secrets_and_personal_data_stay_out_of_debug() {
    let config = P24Config::new(
        "https://sandbox.przelewy24.pl",
        1,
        "api-key-value",
        "crc-value",
    );
    let client = P24Client::new(config).unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains("api-key-value"));
    assert!(!debug.contains("crc-value"));
}
