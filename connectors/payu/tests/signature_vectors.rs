//! `OpenPayu-Signature` against the spec's §7 vectors (verbatim) and Python's hashlib.

use std::process::Command;

use gsko_payu::{
    compute_signature, NotificationError, OrderStatus, PayuClient, PayuConfig, SignatureAlgorithm,
    SignatureHeader, StoredOrder, VerifiedNotification,
};

const SDK_KEY: &str = "13a980d4f851f3d9a1cfc792fb1f5e50";
const SANDBOX_KEY: &str = "b6ca15b0d1020e8094d9b5f8d163db54";
const MD5_BODY: &str = r#"{"order":{"orderId":"LDLW5N7MF4140324GUEST000P01","extOrderId":"TAX-2026-000123","totalAmount":"12345","currencyCode":"PLN","status":"COMPLETED"}}"#;
const MD5_HEADER: &str =
    "sender=checkout;signature=9f1fff5adbc15b5d6c680fe9e797697c;algorithm=MD5;content=DOCUMENT";

fn client(key: &str) -> PayuClient {
    PayuClient::new(PayuConfig::new("http://127.0.0.1:9", "1", "1", "s", key)).expect("client")
}

#[test]
fn spec_vector_official_sdk_sha256() {
    assert_eq!(
        compute_signature(SignatureAlgorithm::Sha256, b"TEST_OK", SDK_KEY),
        "846b2de129d2200443bd72abe691ce174fcec064f89dc529d6a5d98a046cbb4d"
    );
    // The SDK test header verifies; the body is not a notification, so the error that
    // follows is about the body, proving the signature check passed.
    let header = "sender=145227;algorithm=SHA-256;signature=846b2de129d2200443bd72abe691ce174fcec064f89dc529d6a5d98a046cbb4d";
    let stored = StoredOrder {
        ext_order_id: "x".into(),
        order_id: None,
        total_amount: 1,
        currency: "PLN".into(),
        last_status: None,
    };
    let err = client(SDK_KEY)
        .verify_notification(b"TEST_OK", header, &stored)
        .expect_err("not JSON");
    assert!(
        matches!(err, NotificationError::MalformedBody(_)),
        "{err:?}"
    );
    let err = client(SANDBOX_KEY)
        .verify_notification(b"TEST_OK", header, &stored)
        .expect_err("other key");
    assert_eq!(err, NotificationError::BadSignature);
}

#[test]
fn spec_vector_md5_sandbox() {
    assert_eq!(
        compute_signature(SignatureAlgorithm::Md5, MD5_BODY.as_bytes(), SANDBOX_KEY),
        "9f1fff5adbc15b5d6c680fe9e797697c"
    );
    let h = SignatureHeader::parse(MD5_HEADER).expect("header");
    assert_eq!(h.sender.as_deref(), Some("checkout"));
    assert_eq!(h.algorithm, "MD5");
    assert_eq!(h.content.as_deref(), Some("DOCUMENT"));

    let stored = StoredOrder {
        ext_order_id: "TAX-2026-000123".into(),
        order_id: Some("LDLW5N7MF4140324GUEST000P01".into()),
        total_amount: 12345,
        currency: "PLN".into(),
        last_status: Some(OrderStatus::Pending),
    };
    let ok = client(SANDBOX_KEY)
        .verify_notification(MD5_BODY.as_bytes(), MD5_HEADER, &stored)
        .expect("spec vector verifies");
    match ok {
        VerifiedNotification::Order(n) => {
            assert_eq!(n.status, OrderStatus::Completed);
            assert_eq!(n.total_amount, 12345);
        }
        other => panic!("{other:?}"),
    }
    // Upper-case hex is the same digest.
    let upper = MD5_HEADER.replace(
        "9f1fff5adbc15b5d6c680fe9e797697c",
        "9F1FFF5ADBC15B5D6C680FE9E797697C",
    );
    assert!(client(SANDBOX_KEY)
        .verify_notification(MD5_BODY.as_bytes(), &upper, &stored)
        .is_ok());
    // One byte of whitespace changes the raw body, so the signature no longer holds:
    // the connector hashes what arrived, never a re-serialization.
    let spaced = MD5_BODY.replace("\"order\":", "\"order\": ");
    assert_eq!(
        client(SANDBOX_KEY).verify_notification(spaced.as_bytes(), MD5_HEADER, &stored),
        Err(NotificationError::BadSignature)
    );
    // Appending to a signed body (the length-extension shape) is refused.
    let mut extended = MD5_BODY.as_bytes().to_vec();
    extended.extend_from_slice(b"\x80\x00{}");
    let sig = compute_signature(SignatureAlgorithm::Md5, &extended, SANDBOX_KEY);
    let header = format!("signature={sig};algorithm=MD5");
    assert!(matches!(
        client(SANDBOX_KEY).verify_notification(&extended, &header, &stored),
        Err(NotificationError::MalformedBody(_))
    ));
}

#[test]
fn header_edge_cases() {
    let c = client(SANDBOX_KEY);
    let stored = StoredOrder {
        ext_order_id: "TAX-2026-000123".into(),
        order_id: None,
        total_amount: 12345,
        currency: "PLN".into(),
        last_status: None,
    };
    let body = MD5_BODY.as_bytes();
    assert!(matches!(
        c.verify_notification(body, "", &stored),
        Err(NotificationError::MalformedHeader(_))
    ));
    assert!(matches!(
        c.verify_notification(body, "algorithm=MD5", &stored),
        Err(NotificationError::MalformedHeader(_))
    ));
    assert!(matches!(
        c.verify_notification(
            body,
            "signature=9f1fff5adbc15b5d6c680fe9e797697c;algorithm=MD5;content=PARTIAL",
            &stored
        ),
        Err(NotificationError::UnsupportedContent(_))
    ));
    assert_eq!(
        c.verify_notification(body, "signature=zz;algorithm=MD5", &stored),
        Err(NotificationError::BadSignature)
    );
}

/// Python's hashlib is a third, independent implementation (ARCHITECTURE.md).
#[test]
fn matches_python_hashlib() {
    let bodies: Vec<Vec<u8>> = vec![
        b"TEST_OK".to_vec(),
        MD5_BODY.as_bytes().to_vec(),
        "{\"order\":{\"description\":\"Podatek od nieruchomości – żółć\",\"url\":\"a/b\"}}"
            .as_bytes()
            .to_vec(),
        Vec::new(),
        (0u8..=255).collect(),
    ];
    let algorithms = [
        (SignatureAlgorithm::Md5, "md5"),
        (SignatureAlgorithm::Sha1, "sha1"),
        (SignatureAlgorithm::Sha256, "sha256"),
        (SignatureAlgorithm::Sha384, "sha384"),
        (SignatureAlgorithm::Sha512, "sha512"),
    ];
    // One Python process for all cases: `alg:hex(body):hex(key)` per argument.
    let script = "import hashlib,sys\n\
                  for case in sys.argv[1:]:\n    \
                  alg, body, key = case.split(':')\n    \
                  print(hashlib.new(alg, bytes.fromhex(body) + bytes.fromhex(key)).hexdigest())";
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for body in &bodies {
        for (alg, py_name) in algorithms {
            for key in [SANDBOX_KEY, SDK_KEY, "klucz-ąę"] {
                cases.push(format!(
                    "{py_name}:{}:{}",
                    hex::encode(body),
                    hex::encode(key)
                ));
                expected.push(compute_signature(alg, body, key));
            }
        }
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&cases)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let python: Vec<&str> = stdout.lines().collect();
    assert_eq!(python.len(), expected.len());
    for ((case, ours), theirs) in cases.iter().zip(&expected).zip(python) {
        assert_eq!(ours, theirs, "{}", &case[..case.len().min(40)]);
    }
}
