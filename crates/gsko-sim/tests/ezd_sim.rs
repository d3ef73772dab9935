//! The EZD RP Integrator v2 simulator driven over HTTP with a plain reqwest client: token,
//! auth headers, the registration flow (task → RPW → metadata → case), searches, case
//! lifecycle, outgoing mail, webhooks and injected faults. No connector code involved.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{Datelike, Utc};
use gsko_sim::ezd::{EzdSim, EzdSimConfig, Fault};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn b64_sha256(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
}

/// The token form the way the Python client builds it; `tweak` may change any field.
fn token_form(cfg: &EzdSimConfig, tweak: impl Fn(&mut Vec<(String, String)>)) -> String {
    let rt = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let mut fields = vec![
        ("grant_type".to_string(), "api_credentials".to_string()),
        (
            "client_id".to_string(),
            format!("api_{}", b64_sha256(&cfg.web_host)),
        ),
        ("scope".to_string(), "api.ezdrp.gov.pl".to_string()),
        ("pid".to_string(), cfg.podmiot_id.clone()),
        ("aki".to_string(), cfg.api_key_id.clone()),
        ("rt".to_string(), rt.clone()),
        (
            "akh".to_string(),
            b64_sha256(&format!("{rt}{}", cfg.api_key)),
        ),
    ];
    tweak(&mut fields);
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn post_token(sim: &EzdSim, form: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/connect/token", sim.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    sid: String,
}

impl Api {
    async fn connect(sim: &EzdSim) -> Api {
        let resp = post_token(sim, token_form(sim.config(), |_| {})).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        Api {
            http: reqwest::Client::new(),
            base: sim.api_url(),
            token: body["access_token"].as_str().unwrap().to_string(),
            sid: sim.config().stanowisko_id.clone(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("SID", &self.sid)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        status_json(r).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self.req(method, path).json(&body).send().await.unwrap();
        status_json(r).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    async fn upload(&self, path: &str, file_name: &str, bytes: &[u8]) -> (u16, Value) {
        let boundary = "----gskoBoundary7MA4YWxk";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/pdf\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = self
            .req(reqwest::Method::POST, path)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        status_json(r).await
    }
}

async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

fn invalid_names(v: &Value) -> Vec<String> {
    v["invalid-params"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn add_sender(api: &Api, pesel: &str) -> (String, String) {
    let (s, v) = api
        .post(
            "/adresaci",
            json!({
                "typAdresata": 3,
                "imie": "Anna",
                "nazwisko": "Nowak",
                "listaAdresow": [{"idKraj": "PL", "typAdresu": 2, "kodPocztowy": "00-001",
                                   "miejscowoscNazwa": "Warszawa", "ulicaNazwa": "Prosta", "numerDomu": "1"}],
                "listaAdresowEmail": [],
                "listaAdresowEPUAP": [],
                "listaAdresowEDoreczenia": [{"adres": "AE:PL-12345-67890-ABCDE-12", "czyDomyslny": true}],
                "listaPodadresaci": [],
                "metadaneAdresata": [{"nazwa": "PESEL", "klucz": "EZDRP.Adresat.Pesel", "wartosc": pesel}],
                "czyZbiorczy": false,
                "typKomunikacjiEpuap": 2,
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["idAdresat"].as_str().unwrap().to_string();
    let (s, a) = api.get(&format!("/adresaci/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        a["listaAdresowEDoreczenia"][0]["adres"],
        "AE:PL-12345-67890-ABCDE-12"
    );
    assert!(!a.to_string().contains(pesel), "PESEL must not be returned");
    let wersja = a["listaAdresow"][0]["idAdresWersja"]
        .as_str()
        .unwrap()
        .to_string();
    (id, wersja)
}

struct Registered {
    id_obieg: String,
    id_dp: String,
    numer: String,
    rok: String,
}

/// Task with one file → RPW number → metadata with one sender → one attachment.
async fn register(api: &Api, file_name: &str, znak_na_pismie: &str, wersja: &str) -> Registered {
    let (s, v) = api.upload("/obiegi", file_name, b"%PDF-1.4 wniosek").await;
    assert_eq!(s, 201, "{v}");
    let id_obieg = v["listaIdObieg"][0].as_str().unwrap().to_string();
    let (s, docs) = api
        .get(&format!("/obiegi/{id_obieg}/dokumenty?page=0&pageSize=10"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(docs["lista"][0]["nazwa"], file_name);
    assert!(docs["lista"][0]["numerRpw"].is_null());
    let id_dp = docs["lista"][0]["idDokumentPrzestrzeni"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, rpw) = api
        .post(&format!("/dokumenty/{id_dp}/rpw"), json!({}))
        .await;
    assert_eq!(s, 201, "{rpw}");
    let numer_rpw = rpw["numerRpw"].as_str().unwrap().to_string();
    let parts: Vec<&str> = numer_rpw.split('/').collect();
    assert_eq!(parts[0], "RPW");
    let (numer, rok) = (parts[1].to_string(), parts[2].to_string());
    let (s, v) = api
        .send(
            reqwest::Method::PUT,
            &format!("/rpw/{numer}/{rok}/metadane"),
            json!({
                "metadaneSystemowe": {
                    "dataWplywu": Utc::now().format("%Y-%m-%d").to_string(),
                    "znakNaPismie": znak_na_pismie,
                    "uwagi": "z GSKO",
                    "sposobDostarczenia": "EZDRP.Metadane.SposobDostarczenia10",
                    "rodzajDokumentu": "EZDRP.Metadane.Rodzaj.Dokumentu.18",
                    "typDokumentu": "EZDRP.Metadane.RPW.Typ.8",
                    "dostep": "EZDRP.Metadane.RPW.Dostep1",
                    "czyAnonimowy": false,
                },
                "metadaneNiesystemowe": [],
                "adresaci": [{"idAdresWersja": wersja, "rodzaj": "EZDRP.RPW.RodzajNadawcy1"}],
            }),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = api
        .upload(
            &format!("/rpw/{numer}/{rok}/zalaczniki"),
            &format!("zal-{file_name}"),
            b"zalacznik",
        )
        .await;
    assert_eq!(s, 201);
    Registered {
        id_obieg,
        id_dp,
        numer,
        rok,
    }
}

async fn open_case(api: &Api, id_obieg: &str, tytul: &str) -> (u16, Value) {
    api.post(
        &format!("/obiegi/{id_obieg}/sprawy"),
        json!({
            "idWykaz": "wykaz-3120",
            "idPodteczka": null,
            "tytul": tytul,
            "kategoriaArchiwalna": "B5",
            "numer": 0,
            "rokZalozenia": Utc::now().year(),
        }),
    )
    .await
}

#[tokio::test]
async fn token_is_issued_for_correct_credentials_and_refused_for_each_wrong_field() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let cfg = sim.config().clone();
    let ok = post_token(&sim, token_form(&cfg, |_| {})).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() >= 32);

    let set = |k: &'static str, v: String| {
        move |f: &mut Vec<(String, String)>| {
            for (key, val) in f.iter_mut() {
                if key == k {
                    *val = v.clone();
                }
            }
        }
    };
    let stale = (Utc::now() - chrono::Duration::minutes(10))
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string();
    let cases: Vec<(&str, String)> = vec![
        (
            "client_id",
            format!("api_{}", b64_sha256("inny.host.gov.pl")),
        ),
        ("scope", "api.other".to_string()),
        ("pid", "obcy-podmiot".to_string()),
        ("aki", "obcy-klucz".to_string()),
        ("akh", b64_sha256("zly")),
        ("rt", stale),
    ];
    for (field, value) in cases {
        let resp = post_token(&sim, token_form(&cfg, set(field, value))).await;
        assert_eq!(resp.status(), 400, "wrong {field} must be refused");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"], "invalid_grant", "{field}");
    }
    let resp = post_token(
        &sim,
        token_form(&cfg, set("grant_type", "client_credentials".into())),
    )
    .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn api_answers_401_without_token_and_403_with_a_wrong_sid() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let url = format!("{}/struktura/uzytkownik", sim.api_url());
    let http = reqwest::Client::new();
    let r = http.get(&url).header("SID", &api.sid).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .bearer_auth("nieznany-token")
        .header("SID", &api.sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .bearer_auth(&api.token)
        .header("SID", "inne-stanowisko")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let (s, user) = api.get("/struktura/uzytkownik").await;
    assert_eq!(s, 200);
    assert_eq!(user["listaStanowisk"][0]["idStanowisko"], api.sid.as_str());
    assert_eq!(
        user["listaStanowisk"][0]["idPodmiotWlascicielBiznesowy"],
        "podmiot-demo"
    );

    // A revoked key: everything 401 until restored.
    sim.revoke_credentials(true);
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 401);
    let r = post_token(&sim, token_form(sim.config(), |_| {})).await;
    assert_eq!(r.status(), 401);
    sim.revoke_credentials(false);
    let api = Api::connect(&sim).await;
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 200);
}

#[tokio::test]
async fn registration_flow_numbers_cases_per_class_and_year() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let year = Utc::now().year();
    let (id_adresat, wersja) = add_sender(&api, "02270803624").await;

    let (s, found) = api
        .post(
            "/adresaci/_search",
            json!({"pesel": "02270803624", "page": 0, "pageSize": 10}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(found["lista"].as_array().unwrap().len(), 1);
    assert_eq!(found["lista"][0]["idAdresat"], id_adresat.as_str());
    let (_, none) = api
        .post("/adresaci/_search", json!({"pesel": "44051401359"}))
        .await;
    assert_eq!(none["lista"].as_array().unwrap().len(), 0);

    let first = register(&api, "deklaracja-1.pdf", "DO-1/2026", &wersja).await;
    assert_eq!(first.numer, "1");
    assert_eq!(first.rok, year.to_string());
    let (s, meta) = api
        .get(&format!("/rpw/{}/{}/metadane", first.numer, first.rok))
        .await;
    assert_eq!(s, 200);
    assert_eq!(meta["status"], 2);
    assert_eq!(
        meta["metadane"]["metadaneSystemowe"]["znakNaPismie"],
        "DO-1/2026"
    );
    assert_eq!(meta["zalaczniki"][0]["nazwa"], "zal-deklaracja-1.pdf");
    assert_eq!(meta["nadawcy"][0]["idAdresat"], id_adresat.as_str());

    // A second RPW for the same document is a conflict.
    let (s, v) = api
        .post(&format!("/dokumenty/{}/rpw", first.id_dp), json!({}))
        .await;
    assert_eq!(s, 409, "{v}");

    // Title validation and an unknown JRWA class.
    let (s, v) = open_case(&api, &first.id_obieg, "Deklaracja").await;
    assert_eq!(s, 400);
    assert_eq!(invalid_names(&v), vec!["tytul"]);
    let (s, _) = api
        .post(
            &format!("/obiegi/{}/sprawy", first.id_obieg),
            json!({"idWykaz": "wykaz-9999", "tytul": "Deklaracja na podatek", "kategoriaArchiwalna": "B5", "numer": 0, "rokZalozenia": year}),
        )
        .await;
    assert_eq!(s, 404);

    let (s, case1) = open_case(
        &api,
        &first.id_obieg,
        "Deklaracja na podatek od nieruchomości",
    )
    .await;
    assert_eq!(s, 201, "{case1}");
    assert_eq!(case1["znak"], format!("FN.3120.1.{year}"));
    let (s, _) = open_case(&api, &first.id_obieg, "Deklaracja na podatek ponownie").await;
    assert_eq!(s, 409, "a task already in a case");
    let (_, meta) = api
        .get(&format!("/rpw/{}/{}/metadane", first.numer, first.rok))
        .await;
    assert_eq!(meta["status"], 3);

    let second = register(&api, "deklaracja-2.pdf", "DO-2/2026", &wersja).await;
    let (s, case2) = open_case(&api, &second.id_obieg, "Druga deklaracja podatkowa").await;
    assert_eq!(s, 201);
    assert_eq!(case2["znak"], format!("FN.3120.2.{year}"));
    assert_eq!(sim.case_count(), 2);
    assert_eq!(sim.rpw_count(), 2);

    // The task list shows the case sign.
    let (_, obiegi) = api.get("/obiegi?page=0&pageSize=10").await;
    let row = obiegi["lista"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["idObieg"] == first.id_obieg.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["numerSprawy"], format!("FN.3120.1.{year}"));
    assert_eq!(row["tytulDokumentu"], "deklaracja-1.pdf");

    // RPW search by the sender's sign, with the case attached.
    let (s, hits) = api
        .post(
            "/rpw/_search",
            json!({"searchValue": "DO-2/", "rok": year, "page": 0, "pageSize": 25}),
        )
        .await;
    assert_eq!(s, 200);
    let lista = hits["lista"].as_array().unwrap();
    assert_eq!(lista.len(), 1);
    assert_eq!(lista[0]["numerRPW"], format!("RPW/2/{year}"));
    assert_eq!(lista[0]["sprawa"]["znak"], format!("FN.3120.2.{year}"));
    assert_eq!(lista[0]["znakSprawy"], format!("FN.3120.2.{year}"));

    // Document search by title.
    let (s, docs) = api
        .post(
            "/dokumenty/_search",
            json!({"tytul": "deklaracja-1", "pageInfo": {"pageNumber": 0, "pageSize": 10}}),
        )
        .await;
    assert_eq!(s, 200);
    let mut lista = docs["lista"].as_array().unwrap().clone();
    lista.sort_by_key(|d| d["nazwa"].as_str().unwrap().to_string());
    let names: Vec<&str> = lista.iter().map(|d| d["nazwa"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["deklaracja-1.pdf", "zal-deklaracja-1.pdf"]);
    assert_eq!(
        lista[0]["listaDokumentPrzestrzeni"][0]["idDokumentPrzestrzeni"],
        first.id_dp.as_str()
    );
    assert_eq!(
        lista[0]["sprawy"][0]["znakSprawy"],
        format!("FN.3120.1.{year}")
    );
    assert_eq!(sim.count_documents_named("deklaracja-1.pdf"), 1);
}

#[tokio::test]
async fn metadata_with_an_unknown_sender_is_rejected_naming_the_field() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (_, v) = api.upload("/obiegi", "a.pdf", b"x").await;
    let id_obieg = v["listaIdObieg"][0].as_str().unwrap();
    let (_, docs) = api.get(&format!("/obiegi/{id_obieg}/dokumenty")).await;
    let id_dp = docs["lista"][0]["idDokumentPrzestrzeni"].as_str().unwrap();
    let (_, rpw) = api
        .post(&format!("/dokumenty/{id_dp}/rpw"), json!({}))
        .await;
    let numer = rpw["numerRpw"].as_str().unwrap().replacen("RPW/", "", 1);
    let (s, v) = api
        .send(
            reqwest::Method::PUT,
            &format!("/rpw/{numer}/metadane"),
            json!({
                "metadaneSystemowe": {"dataWplywu": "2026-01-01", "sposobDostarczenia": "a",
                    "rodzajDokumentu": "b", "typDokumentu": "c", "dostep": "d", "czyAnonimowy": false},
                "metadaneNiesystemowe": [],
                "adresaci": [{"idAdresWersja": "nie-ma-takiego", "rodzaj": "r"}],
            }),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(invalid_names(&v), vec!["adresaci[0].idAdresWersja"]);
    let (s, v) = api
        .send(
            reqwest::Method::PUT,
            &format!("/rpw/{numer}/metadane"),
            json!({"metadaneNiesystemowe": [], "adresaci": []}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(invalid_names(&v).contains(&"metadaneSystemowe".to_string()));
    let (_, meta) = api.get(&format!("/rpw/{numer}/metadane")).await;
    assert_eq!(
        meta["status"], 1,
        "rejected metadata leaves the letter unregistered"
    );
}

#[tokio::test]
async fn a_task_can_join_an_existing_case_once() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (_, wersja) = add_sender(&api, "02270803624").await;
    let first = register(&api, "wniosek.pdf", "W/1", &wersja).await;
    let (_, case) = open_case(&api, &first.id_obieg, "Wniosek o ulgę podatkową").await;
    let id_sprawa = case["idSprawa"].as_str().unwrap();
    let second = register(&api, "uzupelnienie.pdf", "W/2", &wersja).await;

    let (s, _) = api
        .post(
            &format!("/obiegi/{}/sprawy/nie-ma-sprawy", second.id_obieg),
            json!({}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = api
        .post(
            &format!("/obiegi/{}/sprawy/{id_sprawa}", second.id_obieg),
            json!({}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = api
        .post(
            &format!("/obiegi/{}/sprawy/{id_sprawa}", second.id_obieg),
            json!({}),
        )
        .await;
    assert_eq!(s, 409);

    let (_, docs) = api
        .get(&format!("/sprawy/{id_sprawa}/dokumenty?page=0&pageSize=25"))
        .await;
    let names: Vec<&str> = docs["lista"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dokumentPrzestrzeni"]["nazwa"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"wniosek.pdf") && names.contains(&"uzupelnienie.pdf"),
        "{names:?}"
    );
    let (_, meta) = api
        .get(&format!("/rpw/{}/{}/metadane", second.numer, second.rok))
        .await;
    assert_eq!(meta["status"], 3);
    let cases = sim.cases();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].rpw_numbers.len(), 2);
}

#[tokio::test]
async fn case_status_changes_are_visible_and_closing_date_is_searchable() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (_, wersja) = add_sender(&api, "02270803624").await;
    let reg = register(&api, "w.pdf", "X/1", &wersja).await;
    let (_, case) = open_case(&api, &reg.id_obieg, "Wniosek o zwrot nadpłaty").await;
    let id = case["idSprawa"].as_str().unwrap().to_string();

    let (s, v) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/sprawy/{id}/zawieszenie"),
            json!({"uwagi": "x".repeat(74)}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(invalid_names(&v), vec!["uwagi"]);
    let (s, v) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/sprawy/{id}/zawieszenie"),
            json!({"uwagi": "czekamy na dokumenty"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["statusSprawy"], 3);
    let (_, got) = api.get(&format!("/sprawy/{id}")).await;
    assert_eq!(got["status"], "Zawieszona");
    assert_eq!(got["statusEnum"], 3);
    assert_eq!(got["nadawcy"][0]["nazwa"], "Anna Nowak");
    let (s, _) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/sprawy/{id}/wznowienie"),
            json!({"uwagi": "są dokumenty"}),
        )
        .await;
    assert_eq!(s, 204);

    sim.set_case_status(&id, 4).unwrap();
    let (_, got) = api.get(&format!("/sprawy/{id}")).await;
    assert_eq!(got["status"], "Zakończona");
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let yesterday = (Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let (s, hits) = api
        .post("/sprawy/_search", json!({"status": 4, "dataZakonczeniaOd": today, "dataZakonczeniaDo": today, "pageInfo": {"pageNumber": 0, "pageSize": 25}}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(hits["lista"].as_array().unwrap().len(), 1);
    assert_eq!(hits["lista"][0]["znak"], case["znak"]);
    let (_, hits) = api
        .post(
            "/sprawy/_search",
            json!({"status": 0, "dataZakonczeniaDo": yesterday}),
        )
        .await;
    assert_eq!(hits["lista"].as_array().unwrap().len(), 0);
    let (s, v) = api
        .post("/sprawy/_search", json!({"znakSprawy": "FN"}))
        .await;
    assert_eq!(s, 400, "status is required");
    assert_eq!(invalid_names(&v), vec!["status"]);
    assert!(sim.cases()[0].closed_at.is_some());
}

/// A receiver that refuses the first `fail` deliveries with 500.
async fn receiver(fail: usize) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<Value>>>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (h, b) = (hits.clone(), bodies.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let (h, b) = (h.clone(), b.clone());
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                b.lock().unwrap().push(body.0);
                if n < fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, hits, bodies)
}

#[tokio::test]
async fn webhook_is_delivered_and_retried_after_a_500() {
    let cfg = EzdSimConfig {
        webhook_retry_delays: vec![Duration::from_millis(50), Duration::from_millis(50)],
        ..EzdSimConfig::demo()
    };
    let sim = EzdSim::start(cfg).await.unwrap();
    let api = Api::connect(&sim).await;
    let (url, hits, bodies) = receiver(1).await;
    let konf = json!({"Url": url, "MaksymalnaLiczbaZadan": 2, "Timeout": 5}).to_string();
    let (s, v) = api
        .post(
            "/subskrypcje",
            json!({"zdarzenia": [{"kluczZdarzenia": "ezdrp.v2.pismo.dodanie.dodano"}, {"kluczZdarzenia": "ezdrp.v2.rpw.sprawa.utworzono"}],
                   "kanalDostawy": 0, "konfiguracja": konf, "email": "it@gmina.pl"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["apiSekret"].as_str().is_some());
    let (_, subs) = api.get("/subskrypcje").await;
    assert_eq!(subs["lista"].as_array().unwrap().len(), 2);
    let (s, _) = api
        .post("/subskrypcje", json!({"zdarzenia": [{"kluczZdarzenia": "ezdrp.v2.sprawa.zmieniono"}], "kanalDostawy": 0, "konfiguracja": "{}", "email": "a@b.pl"}))
        .await;
    assert_eq!(s, 400);

    let (_, v) = api.upload("/obiegi", "pismo.pdf", b"x").await;
    let id_obieg = v["listaIdObieg"][0].as_str().unwrap();
    let (_, docs) = api.get(&format!("/obiegi/{id_obieg}/dokumenty")).await;
    let id_dp = docs["lista"][0]["idDokumentPrzestrzeni"].as_str().unwrap();
    let (_, rpw) = api
        .post(&format!("/dokumenty/{id_dp}/rpw"), json!({}))
        .await;

    for _ in 0..100 {
        if hits.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one refusal, one retry");
    assert_eq!(sim.webhook_attempts(), 2);
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got[1]["kluczZdarzenia"], "ezdrp.v2.pismo.dodanie.dodano");
    assert_eq!(got[1]["idPodmiot"], "podmiot-demo");
    assert_eq!(got[1]["dane"]["numerRpw"], rpw["numerRpw"]);
    assert_eq!(got[1]["dane"]["idObieg"], id_obieg);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.webhook_attempts(), 2, "no retry after a 200");
}

#[tokio::test]
async fn webhook_is_given_up_after_the_configured_retries() {
    let cfg = EzdSimConfig {
        webhook_retry_delays: vec![Duration::from_millis(20), Duration::from_millis(20)],
        ..EzdSimConfig::demo()
    };
    let sim = EzdSim::start(cfg).await.unwrap();
    let api = Api::connect(&sim).await;
    let (url, hits, _) = receiver(100).await;
    let konf = json!({"Url": url, "MaksymalnaLiczbaZadan": 1, "Timeout": 5}).to_string();
    api.post("/subskrypcje", json!({"zdarzenia": [{"kluczZdarzenia": "ezdrp.v2.zadanie.zakonczono"}], "kanalDostawy": 0, "konfiguracja": konf, "email": "it@gmina.pl"}))
        .await;
    let (_, wersja) = add_sender(&api, "02270803624").await;
    let reg = register(&api, "w.pdf", "Z/1", &wersja).await;
    let (_, case) = open_case(&api, &reg.id_obieg, "Sprawa do zamknięcia teraz").await;
    sim.set_case_status(case["idSprawa"].as_str().unwrap(), 4)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 3, "first try + two retries");
    assert_eq!(sim.webhook_attempts(), 3);
}

#[tokio::test]
async fn injected_429_carries_retry_after_and_rate_limit_answers_429() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    sim.inject(
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        "/struktura",
        Some("GET"),
        1,
    );
    let r = api
        .req(reqwest::Method::GET, "/struktura/uzytkownik")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 200, "only once");

    sim.inject(Fault::Status(500), "/sprawy/_search", None, 1);
    let (s, v) = api.post("/sprawy/_search", json!({"status": 0})).await;
    assert_eq!(s, 500);
    assert_eq!(v["status"], 500);
    sim.inject(Fault::Unauthorized, "/struktura", None, 1);
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 401);
    sim.inject(Fault::Forbidden, "/struktura", None, 1);
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 403);

    let cfg = EzdSimConfig {
        rate_limit_per_second: Some(3),
        ..EzdSimConfig::demo()
    };
    let limited = EzdSim::start(cfg).await.unwrap();
    let api = Api::connect(&limited).await; // request 1
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 200);
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 200);
    let r = api
        .req(reqwest::Method::GET, "/struktura/uzytkownik")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(limited.requests_served(), 4);
}

#[tokio::test]
async fn delayed_answer_still_applies_the_effect() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let mut api = Api::connect(&sim).await;
    api.http = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    sim.inject(
        Fault::Delay(Duration::from_millis(600)),
        "/obiegi",
        Some("POST"),
        1,
    );
    let boundary = "b0";
    let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"wolny.pdf\"\r\n\r\nabc\r\n--{boundary}--\r\n");
    let r = api
        .req(reqwest::Method::POST, "/obiegi")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await;
    assert!(r.is_err(), "the client gave up before the answer");
    assert_eq!(
        sim.count_documents_named("wolny.pdf"),
        1,
        "but the task exists"
    );
}

#[tokio::test]
async fn malformed_znak_fault_changes_the_next_case_sign() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (_, wersja) = add_sender(&api, "02270803624").await;
    sim.inject(Fault::MalformedZnak, "", None, 1);
    let reg = register(&api, "m.pdf", "M/1", &wersja).await;
    let (_, case) = open_case(&api, &reg.id_obieg, "Sprawa ze złym znakiem").await;
    let year = Utc::now().year();
    assert_eq!(case["znak"], format!("FN/3120/1/{year}"));
    let reg = register(&api, "n.pdf", "M/2", &wersja).await;
    let (_, case) = open_case(&api, &reg.id_obieg, "Sprawa z dobrym znakiem").await;
    assert_eq!(case["znak"], format!("FN.3120.2.{year}"));
}

#[tokio::test]
async fn outgoing_letter_is_listed_in_kw_and_downloadable_without_bearer() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (id_adresat, wersja) = add_sender(&api, "02270803624").await;
    let reg = register(&api, "w.pdf", "K/1", &wersja).await;
    let (_, case) = open_case(&api, &reg.id_obieg, "Wniosek o wydanie decyzji").await;
    let id = case["idSprawa"].as_str().unwrap();
    let pdf = b"%PDF-1.4 decyzja".to_vec();
    let id_kor = sim
        .add_outgoing(id, &id_adresat, "Decyzja.pdf", &pdf, true)
        .unwrap();
    assert!(sim
        .add_outgoing("nie-ma", &id_adresat, "x.pdf", b"x", false)
        .is_err());

    let (s, kw) = api.get(&format!("/sprawy/{id}/kw")).await;
    assert_eq!(s, 200);
    let item = &kw["lista"][0]["korespondencja"][0];
    assert_eq!(item["idKorespondencja"], id_kor.as_str());
    assert_eq!(item["adresat"]["idAdresat"], id_adresat.as_str());
    assert_eq!(item["adresat"]["nazwa"], "Anna Nowak");
    assert_eq!(item["status"], "Przyjęta");
    assert!(item["dataDoreczenia"].is_null());
    let id_dok = item["listaDokumentow"][0]["idDokument"].as_str().unwrap();

    let (_, docs) = api
        .get(&format!("/sprawy/{id}/dokumenty?page=0&pageSize=25"))
        .await;
    let doc = docs["lista"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["dokumentPrzestrzeni"])
        .find(|d| d["idDokument"] == id_dok)
        .expect("the KW document is among the case documents")
        .clone();
    assert_eq!(doc["czyPodpisany"], true);
    assert_eq!(doc["czyKorespondencjaWychodzaca"], true);
    let id_dp = doc["idDokumentPrzestrzeni"].as_str().unwrap();
    let (_, meta) = api.get(&format!("/dokumenty/{id_dp}")).await;
    assert_eq!(meta["nazwa"], "Decyzja.pdf");
    assert_eq!(meta["rozszerzenie"], "pdf");
    let (s, link) = api.get(&format!("/dokumenty/{id_dp}/link")).await;
    assert_eq!(s, 200);
    let bytes = reqwest::get(link["link"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), pdf.as_slice());
}

#[tokio::test]
async fn page_size_above_25_is_rejected() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (s, v) = api
        .post("/rpw/_search", json!({"page": 0, "pageSize": 26}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(invalid_names(&v), vec!["pageSize"]);
    let (s, v) = api
        .post(
            "/sprawy/_search",
            json!({"status": 0, "pageInfo": {"pageNumber": 0, "pageSize": 26}}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(invalid_names(&v), vec!["pageInfo.pageSize"]);
    assert_eq!(
        api.post("/rpw/_search", json!({"pageSize": 25})).await.0,
        200
    );
}

#[tokio::test]
async fn autopilot_walks_a_case_to_closed_with_a_signed_decision() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (_, wersja) = add_sender(&api, "02270803624").await;
    let reg = register(&api, "w.pdf", "A/1", &wersja).await;
    let (_, case) = open_case(&api, &reg.id_obieg, "Wniosek do autopilota gminy").await;
    let znak = case["znak"].as_str().unwrap().to_string();
    sim.autopilot(Duration::from_millis(20));
    for _ in 0..100 {
        if sim.cases()[0].status_code == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = &sim.cases()[0];
    assert_eq!(c.status_code, 4);
    assert_eq!(c.outgoing_count, 1);
    assert_eq!(sim.count_documents_named(&format!("Decyzja {znak}.xml")), 1);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let cfg = EzdSimConfig {
        token_ttl: Duration::from_millis(300),
        ..EzdSimConfig::demo()
    };
    let sim = EzdSim::start(cfg).await.unwrap();
    let api = Api::connect(&sim).await;
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(api.get("/struktura/uzytkownik").await.0, 401);
}

#[tokio::test]
async fn percent_encoded_file_names_are_decoded_and_a_missing_file_is_a_400() {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let api = Api::connect(&sim).await;
    let (s, v) = api
        .upload("/obiegi", "Wniosek%20O%C5%9A%2B1.pdf", b"x")
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(sim.count_documents_named("Wniosek OŚ+1.pdf"), 1);
    let r = api
        .req(reqwest::Method::POST, "/obiegi")
        .header("content-type", "multipart/form-data; boundary=zz")
        .body("--zz\r\nContent-Disposition: form-data; name=\"inne\"\r\n\r\nabc\r\n--zz--\r\n")
        .send()
        .await
        .unwrap();
    let (s, v) = status_json(r).await;
    assert_eq!(s, 400);
    assert_eq!(invalid_names(&v), vec!["file"]);
}
