//! The EZD RP adapter against a small stub of the Integrator API and its token endpoint: the
//! token request, headers, error classification, document links and a full and a resumed
//! registration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use gsko_ezd::ezdrp::{EzdRpClient, EzdRpConfig};
use gsko_ezd::{
    CaseTarget, DeliveredVia, EzdError, EzdPort, FileContent, IncomingLetter, Lookup, NewCase,
    OutgoingDocument, OutgoingItem, Registration, SenderContact,
};
use gsko_model::{CaseStatus, Secret};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const API: &str = "/ezdrp/integrator/v2";
const KEY: &str = "klucz-testowy";
const SID: &str = "stanowisko-7";
const LETTER: &str = "epuap-20261003-0042";
const FILE: &str = "epuap-20261003-0042.xml";

/// A canned answer for the next `times` requests to `method path`.
struct Scripted {
    method: Method,
    path: String,
    times: u32,
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    sid: Option<String>,
    bearer: Option<String>,
    json: Option<Value>,
    file: Option<(String, Vec<u8>)>,
}

#[derive(Default)]
struct Ezd {
    token_forms: Vec<HashMap<String, String>>,
    tokens_issued: u32,
    seen: Vec<Seen>,
    script: Vec<Scripted>,
    /// The letter's document once uploaded: (task, idDokumentPrzestrzeni, name).
    task: Option<(String, String, String)>,
    rpw: Option<String>,
    metadata: Option<Value>,
    attachments: Vec<String>,
    contacts: Vec<String>,
    case: Option<(String, String, String)>,
}

type Shared = Arc<Mutex<Ezd>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Ezd> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn page(list: Vec<Value>) -> Value {
    json!({"lista": list, "pageInfo": {"indexStart": 0, "indexEnd": 0, "pageNumber": 0, "pageSize": 25, "pagesCount": 1, "isNextPageExists": false}})
}

async fn handle(State(stub): State<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers: HeaderMap = req.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let is_multipart = header("content-type").is_some_and(|c| c.starts_with("multipart/"));
    let (json_body, file, form) = if is_multipart {
        let mut file = None;
        if let Ok(mut parts) = Multipart::from_request(req, &()).await {
            while let Ok(Some(field)) = parts.next_field().await {
                if field.name() == Some("file") {
                    let name = field.file_name().unwrap_or("").to_owned();
                    let bytes = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                    file = Some((name, bytes));
                }
            }
        }
        (None, file, None)
    } else {
        let bytes = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
        let form: Option<HashMap<String, String>> = if path == "/connect/token" {
            Some(
                url::form_urlencoded::parse(&bytes)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )
        } else {
            None
        };
        (serde_json::from_slice::<Value>(&bytes).ok(), None, form)
    };

    // A scripted answer wins.
    let scripted = {
        let mut s = lock(&stub);
        if path != "/connect/token" {
            s.seen.push(Seen {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                sid: header("sid"),
                bearer: header("authorization"),
                json: json_body.clone(),
                file: file.clone(),
            });
        }
        let hit = s
            .script
            .iter_mut()
            .find(|r| r.method == method && r.path == path && r.times > 0);
        hit.map(|r| {
            r.times -= 1;
            (r.status, r.headers.clone(), r.body.clone(), r.delay)
        })
    };
    if let Some((status, extra, body, delay)) = scripted {
        if path == "/connect/token" {
            if let Some(form) = form {
                lock(&stub).token_forms.push(form);
            }
        }
        tokio::time::sleep(delay).await;
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response();
        for (k, v) in extra {
            if let Ok(v) = v.parse() {
                response.headers_mut().insert(k, v);
            }
        }
        response.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        return response;
    }

    let mut s = lock(&stub);
    if path == "/connect/token" {
        s.tokens_issued += 1;
        if let Some(form) = form {
            s.token_forms.push(form);
        }
        return json_response(
            200,
            json!({"access_token": format!("token-{}", s.tokens_issued), "expires_in": 3600, "token_type": "Bearer"}),
        );
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        return (StatusCode::OK, format!("PDF of {rest}")).into_response();
    }
    let Some(api) = path.strip_prefix(API) else {
        return json_response(404, json!({"title": "no such path"}));
    };
    let segments: Vec<&str> = api.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["dokumenty", "_search"]) => {
            let wanted = json_body
                .as_ref()
                .and_then(|b| b.get("tytul"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            // A document whose name only starts like the letter's: the adapter must skip it.
            let mut list = vec![
                json!({"idDokument": "X0", "nazwa": format!("{wanted}.bak"), "listaDokumentPrzestrzeni": [{"idDokumentPrzestrzeni": "XDP", "idPrzestrzenRobocza": "P"}], "sprawy": [{"idSprawa": "SX", "znakSprawy": "X.1.2026", "tytul": "x"}]}),
            ];
            if let Some((_, dp, name)) = &s.task {
                if *name == wanted {
                    let sprawy: Vec<Value> = s
                        .case
                        .iter()
                        .map(|(id, znak, tytul)| json!({"idSprawa": id, "znakSprawy": znak, "tytul": tytul}))
                        .collect();
                    list.push(json!({"idDokument": "D1", "nazwa": name, "listaDokumentPrzestrzeni": [{"idDokumentPrzestrzeni": dp, "idPrzestrzenRobocza": "P"}], "sprawy": sprawy}));
                }
            }
            json_response(200, page(list))
        }
        ("POST", ["obiegi"]) => {
            let Some((name, _)) = &file else {
                return json_response(400, json!({"title": "no file"}));
            };
            s.task = Some(("T1".into(), "DP1".into(), name.clone()));
            json_response(201, json!({"listaIdObieg": ["T1"]}))
        }
        ("GET", ["obiegi"]) => {
            let mut list = vec![
                json!({"idObieg": "T0", "idZadanie": "Z0", "dataOtrzymania": "2026-10-01", "status": 1, "statusOpis": "Niepodjęte", "typZadania": 1, "tytulDokumentu": "inne.xml"}),
            ];
            if let Some((task, _, name)) = &s.task {
                list.push(json!({"idObieg": task, "idZadanie": "Z1", "dataOtrzymania": "2026-10-03", "status": 1, "statusOpis": "Niepodjęte", "typZadania": 1, "tytulDokumentu": name}));
            }
            json_response(200, page(list))
        }
        ("GET", ["obiegi", task, "dokumenty"]) => match &s.task {
            Some((t, dp, name)) if t == task => json_response(
                200,
                page(vec![
                    json!({"idDokumentPrzestrzeni": dp, "idDokument": "D1", "nazwa": name, "numerRpw": s.rpw}),
                ]),
            ),
            _ => json_response(404, json!({"title": "Not Found"})),
        },
        ("POST", ["dokumenty", dp, "rpw"]) => {
            if s.rpw.is_some() || s.task.as_ref().map(|t| t.1.as_str()) != Some(*dp) {
                return json_response(400, json!({"title": "already in RPW"}));
            }
            s.rpw = Some("RPW/17/2026".into());
            json_response(201, json!({"idPismo": "PI1", "numerRpw": "RPW/17/2026"}))
        }
        ("GET", ["dokumenty", dp]) => json_response(
            200,
            json!({"idDokumentPrzestrzeni": dp, "idDokument": "D1", "nazwa": dp, "numerRpw": s.rpw, "rozszerzenie": "pdf", "isFileSignatureValid": true}),
        ),
        ("GET", ["dokumenty", dp, "link"]) => {
            let host = header("host").unwrap_or_default();
            let port = host.rsplit(':').next().unwrap_or("80");
            let link = match *dp {
                "FOREIGN" => "http://files.evil.example:8443/x".to_owned(),
                // Same server under another name: another origin, allowed only when configured.
                "REPO" => format!("http://localhost:{port}/files/REPO"),
                other => format!("/files/{other}"),
            };
            json_response(200, json!({ "link": link }))
        }
        ("GET", ["rpw", "17", "2026", "metadane"]) => {
            let mut meta = s.metadata.clone().unwrap_or_else(|| {
                json!({"numerRPW": "RPW/17/2026", "nadawcy": [], "metadane": {"metadaneSystemowe": {"dataWplywu": "2026-10-03", "znakNaPismie": null}}})
            });
            meta["zalaczniki"] = json!(s.attachments.iter().map(|n| json!({"idDokumentPrzestrzeni": format!("Z-{n}"), "nazwa": n, "zalaczniki": []})).collect::<Vec<_>>());
            json_response(200, meta)
        }
        ("POST", ["adresaci", "_search"]) => json_response(200, page(vec![])),
        ("POST", ["adresaci"]) => {
            let id = format!("A{}", s.contacts.len() + 1);
            s.contacts.push(id.clone());
            json_response(201, json!({ "idAdresat": id }))
        }
        ("GET", ["adresaci", id]) => json_response(
            200,
            json!({"idAdresat": id, "listaAdresow": [], "listaAdresowEmail": [{"idAdres": "E1", "email": "x@example.org", "czyDomyslny": true, "idAdresWersja": format!("{id}-v1")}], "listaAdresowEPUAP": []}),
        ),
        ("PUT", ["rpw", "17", "2026", "metadane"]) => {
            let body = json_body.unwrap_or(Value::Null);
            let senders: Vec<Value> = body["adresaci"]
                .as_array()
                .map(|a| a.iter().map(|x| json!({"idAdresat": x["idAdresWersja"].as_str().unwrap_or("").trim_end_matches("-v1"), "typAdresata": 3})).collect())
                .unwrap_or_default();
            s.metadata = Some(
                json!({"numerRPW": "RPW/17/2026", "nadawcy": senders, "metadane": {"metadaneSystemowe": body["metadaneSystemowe"].clone()}}),
            );
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["rpw", "17", "2026", "zalaczniki"]) => {
            if let Some((name, _)) = &file {
                s.attachments.push(name.clone());
            }
            json_response(201, json!({}))
        }
        ("POST", ["obiegi", "T1", "sprawy"]) => {
            s.case = Some((
                "S1".into(),
                "FN.3120.1.2026".into(),
                "Podatek od nieruchomości".into(),
            ));
            json_response(
                201,
                json!({"idSprawa": "S1", "znak": "FN.3120.1.2026", "tytul": "Podatek od nieruchomości", "dataRejestracji": "2026-10-03T12:00:00Z", "kategoriaArchiwalna": "B5"}),
            )
        }
        ("POST", ["obiegi", "T1", "sprawy", case]) => {
            s.case = Some((
                case.to_string(),
                "FN.3120.5.2026".into(),
                "Sprawa istniejąca".into(),
            ));
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", ["sprawy", id]) => {
            let (znak, title) = match *id {
                "S5" => ("FN.3120.5.2026", "Sprawa istniejąca"),
                _ => ("FN.3120.1.2026", "Podatek od nieruchomości"),
            };
            json_response(
                200,
                json!({"idSprawa": id, "tytul": title, "znak": znak, "status": "Zawieszona", "statusEnum": 3, "dataRejestracji": "2026-09-01T08:00:00Z", "terminZalatwienia": "2026-11-30T00:00:00", "czyUsuniety": false}),
            )
        }
        ("GET", ["sprawy", "S5", "kw"]) => json_response(
            200,
            json!({"lista": [{"idGrupaKorespondencji": "G1", "dataUtworzenia": "2026-10-10T10:00:00Z", "korespondencja": [
                {"idKorespondencja": "K2", "numerRKW": "RKW/2/2026", "adresat": {"idAdresat": "A9", "nazwa": "x"}, "status": "Przyjęta", "dataUtworzenia": "2026-10-12T10:00:00Z", "dataAnulowania": null,
                 "listaDokumentow": [{"idDokument": "D20", "dataUtworzenia": "2026-10-12T09:00:00Z", "rozszerzenie": "pdf", "nazwa": "Decyzja FN.3120.5.2026", "pelnaNazwa": "Decyzja FN.3120.5.2026.pdf", "idStanowiskoAutor": "st"}]},
                {"idKorespondencja": "K1", "numerRKW": "RKW/1/2026", "adresat": "untyped text", "status": "Anulowana", "dataUtworzenia": "2026-10-11T10:00:00Z", "dataAnulowania": "2026-10-11T12:00:00Z",
                 "listaDokumentow": [{"idDokument": "D21", "dataUtworzenia": "2026-10-11T09:00:00Z", "rozszerzenie": "docx", "nazwa": "Pismo", "pelnaNazwa": "Pismo.docx", "idStanowiskoAutor": "st"}]}
            ]}]}),
        ),
        ("GET", ["sprawy", "S5", "dokumenty"]) => json_response(
            200,
            page(vec![
                json!({"dokumentPrzestrzeni": {"idDokumentPrzestrzeni": "DP20", "idDokument": "D20", "zalaczniki": []}}),
                json!({"folder": {"id": "F1", "nazwa": "Pisma", "foldery": [{"id": "F2", "nazwa": "Wychodzące", "foldery": [], "zalaczniki": [{"idDokumentPrzestrzeni": "DP21", "idDokument": "D21", "zalaczniki": []}]}], "zalaczniki": []}}),
            ]),
        ),
        ("POST", ["sprawy", "_search"]) => {
            let asked = json_body
                .as_ref()
                .and_then(|b| b["pageInfo"]["pageNumber"].as_u64())
                .unwrap_or(0);
            let item = |id: &str, code: i64, text: &str| json!({"idSprawa": id, "tytul": "t", "znak": format!("FN.3120.{id}.2026"), "status": text, "statusEnum": code, "dataRejestracji": "2026-01-05T10:00:00Z", "terminZalatwienia": "2026-02-05T00:00:00", "czyUsuniety": false});
            let (list, more) = if asked == 0 {
                (vec![item("C1", 4, "Zakończona")], true)
            } else {
                (vec![item("C2", 15, "")], false)
            };
            json_response(
                200,
                json!({"lista": list, "pageInfo": {"indexStart": 0, "indexEnd": 0, "pageNumber": asked, "pageSize": 25, "isNextPageExists": more}}),
            )
        }
        ("GET", ["struktura", "uzytkownik"]) => json_response(
            200,
            json!({"idStanowisko": SID, "listaStanowisk": [{"idStanowisko": SID}]}),
        ),
        _ => json_response(
            404,
            json!({"title": "Not Found", "detail": format!("{method} {api}")}),
        ),
    }
}

struct Stub {
    addr: SocketAddr,
    state: Shared,
}

impl Stub {
    async fn start() -> Stub {
        let state: Shared = Arc::default();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stub");
        let addr = listener.local_addr().expect("stub address");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("stub EZD stopped: {e}");
            }
        });
        Stub { addr, state }
    }

    fn config(&self) -> EzdRpConfig {
        EzdRpConfig::new(
            format!("http://{}", self.addr),
            format!("http://{}/connect/token", self.addr),
            "web.x.gov.pl",
            "podmiot-1",
            "klucz-1",
            Secret::new(KEY),
            SID,
        )
    }

    fn client(&self) -> EzdRpClient {
        EzdRpClient::new(self.config()).expect("valid configuration")
    }

    fn script(&self, method: Method, path: &str, times: u32, status: u16, body: &str) {
        self.script_full(method, path, times, status, vec![], body, Duration::ZERO);
    }

    #[allow(clippy::too_many_arguments)]
    fn script_full(
        &self,
        method: Method,
        path: &str,
        times: u32,
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: &str,
        delay: Duration,
    ) {
        lock(&self.state).script.push(Scripted {
            method,
            path: path.to_owned(),
            times,
            status,
            headers,
            body: body.to_owned(),
            delay,
        });
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// The mutating API calls, as `METHOD path`.
    fn writes(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.method != Method::GET && !s.path.ends_with("/_search"))
            .map(|s| format!("{} {}", s.method, s.path.trim_start_matches(API)))
            .collect()
    }
}

fn letter() -> IncomingLetter {
    IncomingLetter {
        letter_id: LETTER.into(),
        title: "Deklaracja na podatek od nieruchomości".into(),
        // 22:30 UTC on 3 October is 00:30 on 4 October in Poland.
        received_at: DateTime::parse_from_rfc3339("2026-10-03T22:30:00Z")
            .map(|d| d.with_timezone(&Utc))
            .expect("date"),
        delivered_via: DeliveredVia::Epuap,
        sender: SenderContact {
            given_name: Some("Anna".into()),
            surname: Some("Nowak".into()),
            pesel: Some("44051401359".into()),
            email: Some("anna@example.org".into()),
            epuap_address: Some("/anowak/skrytka".into()),
            ..Default::default()
        },
        document: FileContent {
            name: "deklaracja.xml".into(),
            mime_type: "application/xml".into(),
            bytes: b"<Dokument/>".to_vec(),
        },
        attachments: vec![
            FileContent {
                name: "zalacznik1.pdf".into(),
                mime_type: "application/pdf".into(),
                bytes: b"%PDF-1".to_vec(),
            },
            FileContent {
                name: "zalacznik2.pdf".into(),
                mime_type: "application/pdf".into(),
                bytes: b"%PDF-2".to_vec(),
            },
        ],
    }
}

fn new_case() -> CaseTarget {
    CaseTarget::New(NewCase {
        class_id: "W-3120".into(),
        archival_category: "B5".into(),
        title: "Podatek od nieruchomości 2026".into(),
        year: 2026,
    })
}

#[tokio::test]
async fn token_request_carries_the_api_key_proof_and_calls_carry_bearer_and_sid() {
    let stub = Stub::start().await;
    let client = stub.client();
    let case = client.case("S5").await.expect("case read");
    assert_eq!(case.status, CaseStatus::Suspended);
    assert_eq!(case.source_status, "3 Zawieszona");
    assert_eq!(case.case_ref.as_deref(), Some("FN.3120.5.2026"));
    assert_eq!(case.due_on, NaiveDate::from_ymd_opt(2026, 11, 30));

    let forms = lock(&stub.state).token_forms.clone();
    assert_eq!(forms.len(), 1);
    let form = &forms[0];
    assert_eq!(form["grant_type"], "api_credentials");
    // python3 -c 'import hashlib,base64; print("api_"+base64.b64encode(hashlib.sha256(b"web.x.gov.pl").digest()).decode())'
    assert_eq!(
        form["client_id"],
        "api_c/UanVvWhwXi/J4hbZzVOVXr/v2xXggbvv8RYOb5yGU="
    );
    assert_eq!(form["scope"], "api.ezdrp.gov.pl");
    assert_eq!(form["pid"], "podmiot-1");
    assert_eq!(form["aki"], "klucz-1");
    let rt = &form["rt"];
    assert_eq!(
        rt.len(),
        "2026-10-03T12:34:56.123456+00:00".len(),
        "rt = {rt}"
    );
    assert!(rt.ends_with("+00:00"), "rt = {rt}");
    assert!(
        DateTime::parse_from_str(rt, "%Y-%m-%dT%H:%M:%S%.6f%:z").is_ok(),
        "rt = {rt}"
    );
    // The test's own akh computation, checked against a vector from Python:
    // python3 -c 'import hashlib,base64; print(base64.b64encode(hashlib.sha256(b"2026-10-03T12:34:56.123456+00:00"+b"klucz-testowy").digest()).decode())'
    let akh = |rt: &str| STANDARD.encode(Sha256::digest(format!("{rt}{KEY}").as_bytes()));
    assert_eq!(
        akh("2026-10-03T12:34:56.123456+00:00"),
        "M+sNRoN27AbDnERlB33I5p9Wyv0vtawXHntd+KVRG18="
    );
    assert_eq!(form["akh"], akh(rt));
    assert!(
        !form.values().any(|v| v.contains(KEY)),
        "the key itself is never sent"
    );

    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("{API}/sprawy/S5"));
    assert_eq!(seen[0].sid.as_deref(), Some(SID));
    assert_eq!(seen[0].bearer.as_deref(), Some("Bearer token-1"));

    // The token is cached: a second call asks for none.
    client.case("S5").await.expect("second read");
    assert_eq!(lock(&stub.state).tokens_issued, 1);
}

#[tokio::test]
async fn a_401_is_repeated_once_with_a_new_token() {
    let stub = Stub::start().await;
    stub.script(Method::GET, &format!("{API}/sprawy/S5"), 1, 401, "");
    let client = stub.client();
    let case = client
        .case("S5")
        .await
        .expect("the second attempt succeeds");
    assert_eq!(case.ezd_case_id, "S5");
    let bearers: Vec<_> = stub.seen().into_iter().map(|s| s.bearer).collect();
    assert_eq!(
        bearers,
        vec![
            Some("Bearer token-1".to_owned()),
            Some("Bearer token-2".to_owned())
        ]
    );

    // Two 401s in a row: the credentials are wrong.
    stub.script(Method::GET, &format!("{API}/sprawy/S5"), 2, 401, "");
    let err = client.case("S5").await.expect_err("401 twice");
    assert!(matches!(err, EzdError::Config(_)), "{err:?}");
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn a_403_and_a_refused_token_are_configuration_errors() {
    let stub = Stub::start().await;
    stub.script(Method::GET, &format!("{API}/sprawy/S5"), 1, 403, "");
    let err = stub.client().case("S5").await.expect_err("403");
    assert!(matches!(err, EzdError::Config(_)), "{err:?}");
    assert_eq!(stub.seen().len(), 1, "a 403 is not repeated");

    let stub = Stub::start().await;
    stub.script(
        Method::POST,
        "/connect/token",
        1,
        400,
        r#"{"error":"invalid_client"}"#,
    );
    let err = stub.client().case("S5").await.expect_err("token refused");
    match &err {
        EzdError::Config(text) => assert!(text.contains("invalid_client"), "{text}"),
        other => panic!("expected Config, got {other:?}"),
    }
    assert!(stub.seen().is_empty(), "no API call without a token");
}

#[tokio::test]
async fn a_429_gives_the_wait_ezd_asks_for() {
    let stub = Stub::start().await;
    stub.script_full(
        Method::GET,
        &format!("{API}/sprawy/S5"),
        1,
        429,
        vec![("retry-after", "7".into())],
        "",
        Duration::ZERO,
    );
    let err = stub.client().case("S5").await.expect_err("429");
    assert_eq!(
        err,
        EzdError::RateLimited {
            retry_after: Duration::from_secs(7)
        }
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_500_on_a_read_is_transient() {
    let stub = Stub::start().await;
    stub.script(
        Method::GET,
        &format!("{API}/sprawy/S5"),
        1,
        500,
        r#"{"type":"t","status":500,"instance":"/x","title":"Internal Server Error","detail":"db down"}"#,
    );
    let err = stub.client().case("S5").await.expect_err("500");
    match &err {
        EzdError::Transient(text) => assert!(text.contains("db down"), "{text}"),
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn a_500_on_the_upload_is_uncertain_and_not_repeated() {
    let stub = Stub::start().await;
    stub.script(Method::POST, &format!("{API}/obiegi"), 1, 500, "");
    let err = stub
        .client()
        .register(&letter(), &new_case())
        .await
        .expect_err("500 on POST /obiegi");
    match &err {
        EzdError::Uncertain { operation, .. } => assert_eq!(operation, "POST /obiegi"),
        other => panic!("expected Uncertain, got {other:?}"),
    }
    assert_eq!(stub.writes(), vec!["POST /obiegi"]);
}

#[tokio::test]
async fn a_timeout_on_the_upload_is_uncertain() {
    let stub = Stub::start().await;
    stub.script_full(
        Method::POST,
        &format!("{API}/obiegi"),
        1,
        201,
        vec![],
        r#"{"listaIdObieg":["T1"]}"#,
        Duration::from_secs(3),
    );
    let mut cfg = stub.config();
    cfg.timeout = Duration::from_millis(500);
    let client = EzdRpClient::new(cfg).expect("config");
    let err = client
        .register(&letter(), &new_case())
        .await
        .expect_err("timeout");
    match &err {
        EzdError::Uncertain { operation, detail } => {
            assert_eq!(operation, "POST /obiegi");
            assert!(detail.contains("no answer within"), "{detail}");
        }
        other => panic!("expected Uncertain, got {other:?}"),
    }
    assert_eq!(stub.writes(), vec!["POST /obiegi"]);
}

#[tokio::test]
async fn a_409_is_refused_with_ezd_s_reason() {
    let stub = Stub::start().await;
    stub.script(
        Method::POST,
        &format!("{API}/obiegi"),
        1,
        409,
        r#"{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.10","status":409,"instance":"/ezdrp/integrator/v2/obiegi","title":"Konflikt","invalid-params":[{"name":"file","reason":"plik o tej nazwie już istnieje"}]}"#,
    );
    let err = stub
        .client()
        .register(&letter(), &new_case())
        .await
        .expect_err("409");
    match &err {
        EzdError::Refused { operation, detail } => {
            assert_eq!(operation, "POST /obiegi");
            assert!(detail.contains("HTTP 409"), "{detail}");
            assert!(detail.contains("Konflikt"), "{detail}");
            assert!(
                detail.contains("file: plik o tej nazwie już istnieje"),
                "{detail}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn document_links_must_stay_on_allowed_origins_and_are_fetched_without_the_token() {
    let stub = Stub::start().await;
    let doc = |id: &str| OutgoingDocument {
        id: id.into(),
        name: "Decyzja.pdf".into(),
        mime_type: "application/pdf".into(),
        signature_valid: Some(true),
    };
    let client = stub.client();
    let err = client
        .fetch(&doc("FOREIGN"))
        .await
        .expect_err("foreign link");
    match &err {
        EzdError::Refused { operation, detail } => {
            assert_eq!(operation, "GET /dokumenty/FOREIGN/link");
            assert!(detail.contains("files.evil.example"), "{detail}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }

    let bytes = client.fetch(&doc("D7")).await.expect("own link");
    assert_eq!(bytes, b"PDF of D7");
    let download = stub
        .seen()
        .into_iter()
        .find(|s| s.path == "/files/D7")
        .expect("download seen");
    assert_eq!(download.bearer, None, "no token to the file link");
    assert_eq!(download.sid, None);

    // A file repository's origin is allowed only when configured.
    let err = client
        .fetch(&doc("REPO"))
        .await
        .expect_err("unlisted origin");
    assert!(matches!(err, EzdError::Refused { .. }), "{err:?}");
    let mut cfg = stub.config();
    cfg.allowed_file_origins = vec![format!("http://localhost:{}", stub.addr.port())];
    let bytes = EzdRpClient::new(cfg)
        .expect("config")
        .fetch(&doc("REPO"))
        .await
        .expect("listed origin");
    assert_eq!(bytes, b"PDF of REPO");

    // A file larger than the limit is refused.
    let mut cfg = stub.config();
    cfg.max_download_bytes = 4;
    let err = EzdRpClient::new(cfg)
        .expect("config")
        .fetch(&doc("D7"))
        .await
        .expect_err("too large");
    assert!(matches!(err, EzdError::Refused { .. }), "{err:?}");

    // A redirect is not followed.
    stub.script_full(
        Method::GET,
        "/files/D8",
        1,
        302,
        vec![("location", "http://files.evil.example/x".into())],
        "",
        Duration::ZERO,
    );
    let err = client.fetch(&doc("D8")).await.expect_err("redirect");
    assert!(matches!(err, EzdError::Refused { .. }), "{err:?}");
}

#[tokio::test]
async fn register_runs_every_step_once_and_a_second_call_changes_nothing() {
    let stub = Stub::start().await;
    let client = stub.client();
    assert_eq!(
        client.find_incoming(LETTER).await.expect("lookup"),
        Lookup::Absent
    );

    let registration = client
        .register(&letter(), &new_case())
        .await
        .expect("registered");
    assert_eq!(registration.rpw.as_deref(), Some("RPW/17/2026"));
    assert_eq!(registration.ezd_case_id, "S1");
    assert_eq!(registration.case_ref, "FN.3120.1.2026");
    assert_eq!(
        registration.case_title.as_deref(),
        Some("Podatek od nieruchomości")
    );
    assert_eq!(registration.sender_contact_id.as_deref(), Some("A1"));
    assert_eq!(
        registration.registered_at.to_rfc3339(),
        "2026-10-03T12:00:00+00:00"
    );

    assert_eq!(
        stub.writes(),
        vec![
            "POST /obiegi",
            "POST /dokumenty/DP1/rpw",
            "POST /adresaci",
            "PUT /rpw/17/2026/metadane",
            "POST /rpw/17/2026/zalaczniki",
            "POST /rpw/17/2026/zalaczniki",
            "POST /obiegi/T1/sprawy",
        ]
    );
    let seen = stub.seen();
    let upload = seen
        .iter()
        .find(|s| s.path == format!("{API}/obiegi") && s.method == Method::POST)
        .and_then(|s| s.file.clone())
        .expect("upload");
    assert_eq!(upload, (FILE.to_owned(), b"<Dokument/>".to_vec()));
    let search = seen
        .iter()
        .find(|s| s.path.ends_with("/adresaci/_search"))
        .and_then(|s| s.json.clone())
        .expect("contact search");
    assert_eq!(search["pesel"], "44051401359");
    let created = seen
        .iter()
        .find(|s| s.path == format!("{API}/adresaci"))
        .and_then(|s| s.json.clone())
        .expect("contact created");
    assert_eq!(created["typAdresata"], 3);
    assert_eq!(created["nazwisko"], "Nowak");
    assert_eq!(created["listaAdresowEPUAP"][0]["identyfikator"], "anowak");
    let put = seen
        .iter()
        .find(|s| s.method == Method::PUT)
        .and_then(|s| s.json.clone())
        .expect("metadata");
    let system = &put["metadaneSystemowe"];
    assert_eq!(system["dataWplywu"], "2026-10-04");
    assert_eq!(system["znakNaPismie"], LETTER);
    assert_eq!(system["uwagi"], format!("GSKO {LETTER}"));
    assert_eq!(system["czyAnonimowy"], false);
    assert_eq!(
        system["sposobDostarczenia"],
        "EZDRP.Metadane.SposobDostarczenia10"
    );
    assert_eq!(
        system["rodzajDokumentu"],
        "EZDRP.Metadane.Rodzaj.Dokumentu.18"
    );
    assert_eq!(system["typDokumentu"], "EZDRP.Metadane.RPW.Typ.8");
    assert_eq!(system["dostep"], "EZDRP.Metadane.RPW.Dostep1");
    assert_eq!(put["metadaneNiesystemowe"], json!([]));
    assert_eq!(
        put["adresaci"],
        json!([{"idAdresWersja": "A1-v1", "rodzaj": "EZDRP.RPW.RodzajNadawcy1"}])
    );
    let case_body = seen
        .iter()
        .find(|s| s.path == format!("{API}/obiegi/T1/sprawy"))
        .and_then(|s| s.json.clone())
        .expect("case");
    assert_eq!(
        case_body,
        json!({"idWykaz": "W-3120", "idPodteczka": null, "tytul": "Podatek od nieruchomości 2026", "kategoriaArchiwalna": "B5", "numer": 0, "rokZalozenia": 2026})
    );
    assert_eq!(
        lock(&stub.state).attachments,
        vec!["zalacznik1.pdf", "zalacznik2.pdf"]
    );

    // Registered now: a lookup says so and a repeated register writes nothing.
    let before = stub.writes().len();
    match client.find_incoming(LETTER).await.expect("lookup") {
        Lookup::Registered(found) => assert_eq!(
            found,
            Registration {
                registered_at: found.registered_at,
                ..registration.clone()
            }
        ),
        other => panic!("expected Registered, got {other:?}"),
    }
    let again = client
        .register(&letter(), &new_case())
        .await
        .expect("registered again");
    assert_eq!(again.ezd_case_id, "S1");
    assert_eq!(again.rpw.as_deref(), Some("RPW/17/2026"));
    assert_eq!(again.sender_contact_id.as_deref(), Some("A1"));
    assert_eq!(
        stub.writes().len(),
        before,
        "nothing written the second time"
    );
}

#[tokio::test]
async fn a_resumed_registration_only_attaches_the_case() {
    let stub = Stub::start().await;
    {
        let mut s = lock(&stub.state);
        s.task = Some(("T1".into(), "DP1".into(), FILE.into()));
        s.rpw = Some("RPW/17/2026".into());
        s.metadata = Some(
            json!({"numerRPW": "RPW/17/2026", "nadawcy": [{"idAdresat": "A9", "typAdresata": 3}], "metadane": {"metadaneSystemowe": {"dataWplywu": "2026-10-04", "znakNaPismie": LETTER}}}),
        );
        s.attachments = vec!["zalacznik1.pdf".into(), "zalacznik2.pdf".into()];
    }
    let client = stub.client();
    match client.find_incoming(LETTER).await.expect("lookup") {
        Lookup::Partial { detail } => {
            assert!(detail.contains("RPW/17/2026"), "{detail}");
            assert!(detail.contains("no case"), "{detail}");
        }
        other => panic!("expected Partial, got {other:?}"),
    }
    assert!(stub.writes().is_empty(), "find_incoming only reads");

    let registration = client
        .register(
            &letter(),
            &CaseTarget::Existing {
                ezd_case_id: "S5".into(),
            },
        )
        .await
        .expect("resumed");
    assert_eq!(stub.writes(), vec!["POST /obiegi/T1/sprawy/S5"]);
    let task_list = stub
        .seen()
        .into_iter()
        .find(|s| s.path == format!("{API}/obiegi") && s.method == Method::GET)
        .expect("the task was looked up");
    assert_eq!(task_list.query, "page=0&pageSize=25");
    assert_eq!(registration.ezd_case_id, "S5");
    assert_eq!(registration.case_ref, "FN.3120.5.2026");
    assert_eq!(
        registration.case_title.as_deref(),
        Some("Sprawa istniejąca")
    );
    assert_eq!(registration.rpw.as_deref(), Some("RPW/17/2026"));
    assert_eq!(registration.sender_contact_id.as_deref(), Some("A9"));
}

#[tokio::test]
async fn check_uses_a_fresh_token() {
    let stub = Stub::start().await;
    let client = stub.client();
    client.check().await.expect("check");
    client.check().await.expect("check again");
    assert_eq!(lock(&stub.state).tokens_issued, 2);
    assert!(stub
        .seen()
        .iter()
        .all(|s| s.path == format!("{API}/struktura/uzytkownik")));

    let mut cfg = stub.config();
    cfg.stanowisko_id = "someone-else".into();
    let err = EzdRpClient::new(cfg)
        .expect("config")
        .check()
        .await
        .expect_err("wrong SID");
    assert!(matches!(err, EzdError::Config(_)), "{err:?}");
}

#[tokio::test]
async fn outgoing_items_name_their_addressee_and_documents_oldest_first() {
    let stub = Stub::start().await;
    let items = stub.client().outgoing("S5").await.expect("outgoing");
    assert_eq!(
        items,
        vec![
            OutgoingItem {
                id: "K1".into(),
                addressee_contact_id: None,
                status: "Anulowana".into(),
                cancelled: true,
                created_at: DateTime::parse_from_rfc3339("2026-10-11T10:00:00Z")
                    .ok()
                    .map(|d| d.with_timezone(&Utc)),
                documents: vec![OutgoingDocument {
                    id: "DP21".into(),
                    name: "Pismo.docx".into(),
                    mime_type:
                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                            .into(),
                    signature_valid: Some(true),
                }],
            },
            OutgoingItem {
                id: "K2".into(),
                addressee_contact_id: Some("A9".into()),
                status: "Przyjęta".into(),
                cancelled: false,
                created_at: DateTime::parse_from_rfc3339("2026-10-12T10:00:00Z")
                    .ok()
                    .map(|d| d.with_timezone(&Utc)),
                documents: vec![OutgoingDocument {
                    id: "DP20".into(),
                    name: "Decyzja FN.3120.5.2026.pdf".into(),
                    mime_type: "application/pdf".into(),
                    signature_valid: Some(true),
                }],
            },
        ]
    );
}

#[tokio::test]
async fn closed_cases_are_read_from_every_page_and_unknown_codes_are_kept_open() {
    let stub = Stub::start().await;
    let from = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .expect("date");
    let to = DateTime::parse_from_rfc3339("2026-01-31T23:59:59Z")
        .map(|d| d.with_timezone(&Utc))
        .expect("date");
    let cases = stub
        .client()
        .cases_closed_between(from, to)
        .await
        .expect("search");
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].ezd_case_id, "C1");
    assert_eq!(cases[0].status, CaseStatus::Closed);
    assert_eq!(cases[0].source_status, "4 Zakończona");
    assert_eq!(cases[1].status, CaseStatus::InProgress);
    assert_eq!(cases[1].source_status, "15 (unknown to GSKO)");
    let bodies: Vec<Value> = stub.seen().into_iter().filter_map(|s| s.json).collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["status"], 4);
    assert_eq!(bodies[0]["dataZakonczeniaOd"], "2026-01-01T00:00:00Z");
    assert_eq!(bodies[0]["dataZakonczeniaDo"], "2026-01-31T23:59:59Z");
    assert_eq!(
        bodies[0]["pageInfo"],
        json!({"pageNumber": 0, "pageSize": 25})
    );
    assert_eq!(
        bodies[1]["pageInfo"],
        json!({"pageNumber": 1, "pageSize": 25})
    );
}

#[tokio::test]
async fn an_uncertain_contact_creation_is_searched_once_more_then_reported() {
    let stub = Stub::start().await;
    stub.script(Method::POST, &format!("{API}/adresaci"), 1, 502, "");
    let err = stub
        .client()
        .register(&letter(), &new_case())
        .await
        .expect_err("contact creation uncertain");
    match &err {
        EzdError::Uncertain { operation, .. } => assert_eq!(operation, "POST /adresaci"),
        other => panic!("expected Uncertain, got {other:?}"),
    }
    let searches = stub
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/adresaci/_search"))
        .count();
    assert_eq!(searches, 2);
    assert_eq!(
        stub.writes(),
        vec!["POST /obiegi", "POST /dokumenty/DP1/rpw", "POST /adresaci"]
    );
}
