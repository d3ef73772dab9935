//! EZD RP adapter: [`EzdPort`] over NASK's "Integrator API v2" (REST/JSON under
//! `{api_url}/ezdrp/integrator/v2`, API-key tokens from the EZD RP SSO, every call on behalf of
//! one technical user's position sent as the `SID` header).
//!
//! Registering a letter takes several calls (task with the document, RPW number, RPW metadata
//! and sender, attachments, case); the `register` module says how a registration that broke
//! off is found and continued without repeating a step that took effect.

mod http;
mod register;
mod wire;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use gsko_model::{CaseStatus, Secret};
use reqwest::{Method, Url};
use serde_json::{json, Value};

use crate::port::{
    ezdrp_case_status, CaseSnapshot, CaseTarget, EzdError, EzdPort, IncomingLetter, Lookup,
    OutgoingDocument, OutgoingItem, Registration,
};
use http::{Body, Effect, Transport};
use wire::{
    file_name, mime_of, parse_date, parse_datetime, Case, CaseDocumentEntry, Document, KwGroup,
    Link, List, Page, MAX_PAGES, PAGE_SIZE,
};

/// Default time limit of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default size limit of one downloaded document (64 MiB).
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// Dictionary values the adapter writes into an RPW's metadata. Their ids differ between EZD
/// instances (`GET /slowniki/grupy/EZDRP.Grupa.Metadane.Listy.Wartosci` lists them), hence
/// configuration; the defaults are those of a stock EZD RP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EzdRpDictionaries {
    /// `sposobDostarczenia` of a letter that came through ePUAP.
    pub delivery_epuap: String,
    /// `sposobDostarczenia` of a letter sent from GSKO's portal.
    pub delivery_portal: String,
    /// `rodzajDokumentu`.
    pub document_kind: String,
    /// `typDokumentu`.
    pub document_type: String,
    /// `dostep`.
    pub access: String,
    /// `rodzaj` of the RPW sender (dictionary `EZDRP.RPW.RodzajNadawcy`).
    pub sender_role: String,
}

impl Default for EzdRpDictionaries {
    fn default() -> Self {
        Self {
            delivery_epuap: "EZDRP.Metadane.SposobDostarczenia10".into(),
            delivery_portal: "EZDRP.Metadane.SposobDostarczenia10".into(),
            document_kind: "EZDRP.Metadane.Rodzaj.Dokumentu.18".into(),
            document_type: "EZDRP.Metadane.RPW.Typ.8".into(),
            access: "EZDRP.Metadane.RPW.Dostep1".into(),
            sender_role: "EZDRP.RPW.RodzajNadawcy1".into(),
        }
    }
}

/// One tenant's EZD RP connection.
#[derive(Debug, Clone)]
pub struct EzdRpConfig {
    /// Server root; the API is under `{api_url}/ezdrp/integrator/v2`.
    pub api_url: String,
    /// `{sso}/connect/token`.
    pub token_url: String,
    /// Host of the EZD web application (`web.x.gov.pl`, optionally `:port`), from which the
    /// API client id is derived.
    pub web_host: String,
    /// Id of the institution (`pid`).
    pub podmiot_id: String,
    /// Id of the API key (`aki`).
    pub api_key_id: String,
    pub api_key: Secret,
    /// The technical user's position, sent as the `SID` header.
    pub stanowisko_id: String,
    /// Time limit of one call.
    pub timeout: Duration,
    /// Origins (`scheme://host:port`) besides `api_url`'s own that document links may point to
    /// (a separate file repository).
    pub allowed_file_origins: Vec<String>,
    /// Largest document `fetch` downloads.
    pub max_download_bytes: u64,
    pub dictionaries: EzdRpDictionaries,
}

impl EzdRpConfig {
    /// A configuration with the default timeout, download limit and dictionaries and no extra
    /// file origins.
    pub fn new(
        api_url: impl Into<String>,
        token_url: impl Into<String>,
        web_host: impl Into<String>,
        podmiot_id: impl Into<String>,
        api_key_id: impl Into<String>,
        api_key: Secret,
        stanowisko_id: impl Into<String>,
    ) -> Self {
        Self {
            api_url: api_url.into(),
            token_url: token_url.into(),
            web_host: web_host.into(),
            podmiot_id: podmiot_id.into(),
            api_key_id: api_key_id.into(),
            api_key,
            stanowisko_id: stanowisko_id.into(),
            timeout: DEFAULT_TIMEOUT,
            allowed_file_origins: Vec::new(),
            max_download_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            dictionaries: EzdRpDictionaries::default(),
        }
    }
}

/// The EZD RP adapter.
pub struct EzdRpClient {
    http: Transport,
    api_root: Url,
    allowed_origins: Vec<url::Origin>,
    max_download_bytes: u64,
    dictionaries: EzdRpDictionaries,
}

impl std::fmt::Debug for EzdRpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EzdRpClient")
            .field("api_root", &self.api_root.as_str())
            .finish_non_exhaustive()
    }
}

impl EzdRpClient {
    /// Checks the configuration (URLs, non-empty ids) and builds the HTTP client; makes no
    /// call (see [`EzdPort::check`]).
    pub fn new(cfg: EzdRpConfig) -> Result<Self, EzdError> {
        let api_root = http::parse_http_url("api_url", &cfg.api_url)?;
        let mut allowed_origins = vec![api_root.origin()];
        for origin in &cfg.allowed_file_origins {
            allowed_origins.push(http::parse_http_url("allowed_file_origins", origin)?.origin());
        }
        if cfg.max_download_bytes == 0 {
            return Err(EzdError::Config(
                "EZD RP setting max_download_bytes is zero".into(),
            ));
        }
        let dictionaries = cfg.dictionaries.clone();
        for (key, value) in [
            ("delivery_epuap", &dictionaries.delivery_epuap),
            ("delivery_portal", &dictionaries.delivery_portal),
            ("document_kind", &dictionaries.document_kind),
            ("document_type", &dictionaries.document_type),
            ("access", &dictionaries.access),
            ("sender_role", &dictionaries.sender_role),
        ] {
            if value.trim().is_empty() {
                return Err(EzdError::Config(format!(
                    "EZD RP dictionary setting {key} is empty"
                )));
            }
        }
        Ok(Self {
            http: Transport::new(&cfg, api_root.clone())?,
            api_root,
            allowed_origins,
            max_download_bytes: cfg.max_download_bytes,
            dictionaries,
        })
    }

    /// Reads every page of a GET listing (`page`, `pageSize` query parameters).
    async fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        segments: &[&str],
    ) -> Result<Vec<T>, EzdError> {
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let query = [
                ("page", page.to_string()),
                ("pageSize", PAGE_SIZE.to_string()),
            ];
            let answer: Page<T> = self.http.get(operation, segments, &query).await?;
            let more = answer.has_next(page);
            all.extend(answer.lista);
            if !more {
                return Ok(all);
            }
        }
        Err(EzdError::Protocol {
            operation: operation.to_owned(),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// Reads every page of a `_search` whose body takes `pageInfo {pageNumber, pageSize}`.
    async fn search_all<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        segments: &[&str],
        query: &Value,
    ) -> Result<Vec<T>, EzdError> {
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let mut body = query.clone();
            body["pageInfo"] = json!({ "pageNumber": page, "pageSize": PAGE_SIZE });
            let answer: Page<T> = self
                .http
                .call(
                    Method::POST,
                    operation,
                    segments,
                    &[],
                    Body::Json(&body),
                    Effect::Read,
                )
                .await?
                .json(operation)?;
            let more = answer.has_next(page);
            all.extend(answer.lista);
            if !more {
                return Ok(all);
            }
        }
        Err(EzdError::Protocol {
            operation: operation.to_owned(),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    async fn get_case(&self, id: &str) -> Result<Case, EzdError> {
        self.http
            .get(&format!("GET /sprawy/{id}"), &["sprawy", id], &[])
            .await
    }

    async fn get_document(&self, id: &str) -> Result<Document, EzdError> {
        self.http
            .get(&format!("GET /dokumenty/{id}"), &["dokumenty", id], &[])
            .await
    }

    /// idDokument → idDokumentPrzestrzeni of every document of a case.
    async fn case_document_index(
        &self,
        case_id: &str,
    ) -> Result<HashMap<String, String>, EzdError> {
        let entries: Vec<CaseDocumentEntry> = self
            .get_all(
                &format!("GET /sprawy/{case_id}/dokumenty"),
                &["sprawy", case_id, "dokumenty"],
            )
            .await?;
        let mut pairs = Vec::new();
        for entry in &entries {
            entry.pairs(&mut pairs);
        }
        Ok(pairs.into_iter().collect())
    }

    fn link_allowed(&self, url: &Url) -> bool {
        let origin = url.origin();
        self.allowed_origins.contains(&origin)
    }
}

/// A case as GSKO sees it. `fallback_id` is the id asked for, used when EZD omits it.
fn snapshot(case: Case, fallback_id: &str, operation: &str) -> Result<CaseSnapshot, EzdError> {
    let code = case.status_enum.ok_or_else(|| EzdError::Protocol {
        operation: operation.to_owned(),
        detail: "case without statusEnum".into(),
    })?;
    let text = case.status.as_deref().map(str::trim).unwrap_or("");
    let (status, source_status) = match ezdrp_case_status(code) {
        Some(status) => (status, format!("{code} {text}").trim_end().to_owned()),
        // A code GSKO does not know (15 has no name even in the contract): the case is still
        // somewhere in its life, and the text tells an admin what EZD said.
        None => (
            CaseStatus::InProgress,
            if text.is_empty() {
                format!("{code} (unknown to GSKO)")
            } else {
                format!("{code} {text} (unknown to GSKO)")
            },
        ),
    };
    Ok(CaseSnapshot {
        ezd_case_id: case
            .id_sprawa
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| fallback_id.to_owned()),
        case_ref: case.znak.filter(|z| !z.trim().is_empty()),
        title: case.tytul.filter(|t| !t.trim().is_empty()),
        status,
        source_status,
        registered_at: case.data_rejestracji.as_deref().and_then(parse_datetime),
        due_on: case.termin_zalatwienia.as_deref().and_then(parse_date),
        deleted: case.czy_usuniety.unwrap_or(false),
    })
}

fn date_time_param(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[async_trait]
impl EzdPort for EzdRpClient {
    fn kind(&self) -> &'static str {
        "ezdrp"
    }

    /// A fresh token and `GET /struktura/uzytkownik`; the configured SID must be one of the
    /// technical user's positions.
    async fn check(&self) -> Result<(), EzdError> {
        const OP: &str = "GET /struktura/uzytkownik";
        self.http.forget_token().await;
        self.http.token().await?;
        let user: Value = self.http.get(OP, &["struktura", "uzytkownik"], &[]).await?;
        if !user.is_object() {
            return Err(EzdError::Protocol {
                operation: OP.into(),
                detail: "the answer is not an object".into(),
            });
        }
        let sid = self.http.stanowisko_id();
        let mut positions: Vec<&str> = user
            .get("listaStanowisk")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|p| p.get("idStanowisko").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(current) = user.get("idStanowisko").and_then(Value::as_str) {
            positions.push(current);
        }
        if !positions.is_empty() && !positions.contains(&sid) {
            return Err(EzdError::Config(format!(
                "{OP}: the configured SID {sid} is not a position of the technical user"
            )));
        }
        Ok(())
    }

    async fn find_incoming(&self, letter_id: &str) -> Result<Lookup, EzdError> {
        register::find_incoming(self, letter_id).await
    }

    async fn register(
        &self,
        letter: &IncomingLetter,
        target: &CaseTarget,
    ) -> Result<Registration, EzdError> {
        register::register(self, letter, target).await
    }

    async fn case(&self, ezd_case_id: &str) -> Result<CaseSnapshot, EzdError> {
        let case = self.get_case(ezd_case_id).await?;
        snapshot(case, ezd_case_id, &format!("GET /sprawy/{ezd_case_id}"))
    }

    async fn cases_closed_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CaseSnapshot>, EzdError> {
        const OP: &str = "POST /sprawy/_search";
        let query = json!({
            "status": 4,
            "dataZakonczeniaOd": date_time_param(from),
            "dataZakonczeniaDo": date_time_param(to),
        });
        let found: Vec<Case> = self.search_all(OP, &["sprawy", "_search"], &query).await?;
        let mut cases = Vec::with_capacity(found.len());
        for case in found {
            let Some(id) = case.id_sprawa.clone().filter(|id| !id.is_empty()) else {
                return Err(EzdError::Protocol {
                    operation: OP.into(),
                    detail: "a case without idSprawa".into(),
                });
            };
            cases.push(snapshot(case, &id, OP)?);
        }
        Ok(cases)
    }

    async fn outgoing(&self, ezd_case_id: &str) -> Result<Vec<OutgoingItem>, EzdError> {
        let op = format!("GET /sprawy/{ezd_case_id}/kw");
        let groups: List<KwGroup> = self
            .http
            .get(&op, &["sprawy", ezd_case_id, "kw"], &[])
            .await?;
        let mut index: Option<HashMap<String, String>> = None;
        let mut documents: HashMap<String, Document> = HashMap::new();
        let mut items = Vec::new();
        for group in groups.lista {
            for kw in group.korespondencja {
                let id = kw
                    .id_korespondencja
                    .clone()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| EzdError::Protocol {
                        operation: op.clone(),
                        detail: "an item without idKorespondencja".into(),
                    })?;
                let mut docs = Vec::with_capacity(kw.lista_dokumentow.len());
                for listed in &kw.lista_dokumentow {
                    let Some(doc_id) = listed.id_dokument.as_deref() else {
                        return Err(EzdError::Protocol {
                            operation: op.clone(),
                            detail: format!("a document of item {id} without idDokument"),
                        });
                    };
                    if index.is_none() {
                        index = Some(self.case_document_index(ezd_case_id).await?);
                    }
                    let Some(space_id) = index.as_ref().and_then(|i| i.get(doc_id)).cloned() else {
                        return Err(EzdError::Protocol {
                            operation: format!("GET /sprawy/{ezd_case_id}/dokumenty"),
                            detail: format!(
                                "document {doc_id} of outgoing item {id} is not among the case's documents"
                            ),
                        });
                    };
                    if !documents.contains_key(&space_id) {
                        let doc = self.get_document(&space_id).await?;
                        documents.insert(space_id.clone(), doc);
                    }
                    let doc = documents.get(&space_id);
                    let extension = listed
                        .rozszerzenie
                        .as_deref()
                        .filter(|e| !e.trim().is_empty())
                        .or_else(|| doc.and_then(|d| d.rozszerzenie.as_deref()))
                        .unwrap_or("");
                    let name = listed
                        .nazwa
                        .as_deref()
                        .filter(|n| !n.trim().is_empty())
                        .or_else(|| doc.and_then(|d| d.nazwa.as_deref()))
                        .unwrap_or(doc_id);
                    docs.push(OutgoingDocument {
                        id: space_id.clone(),
                        name: file_name(name, extension),
                        mime_type: mime_of(extension).to_owned(),
                        signature_valid: doc.and_then(|d| d.is_file_signature_valid),
                    });
                }
                items.push(OutgoingItem {
                    addressee_contact_id: kw.addressee_contact_id(),
                    status: kw.status.clone().unwrap_or_default(),
                    cancelled: kw.cancelled(),
                    created_at: kw
                        .data_utworzenia
                        .as_deref()
                        .or(group.data_utworzenia.as_deref())
                        .and_then(parse_datetime),
                    id,
                    documents: docs,
                });
            }
        }
        // Oldest first; items EZD has not dated yet (not registered in the office) last.
        items.sort_by_key(|i| (i.created_at.is_none(), i.created_at));
        Ok(items)
    }

    async fn fetch(&self, document: &OutgoingDocument) -> Result<Vec<u8>, EzdError> {
        let id = document.id.as_str();
        let op = format!("GET /dokumenty/{id}/link");
        let link: Link = self.http.get(&op, &["dokumenty", id, "link"], &[]).await?;
        let Some(raw) = link.link.filter(|l| !l.trim().is_empty()) else {
            return Err(EzdError::Protocol {
                operation: op,
                detail: "no link in the answer".into(),
            });
        };
        // A relative link is relative to the API server.
        let url = self
            .api_root
            .join(raw.trim())
            .map_err(|e| EzdError::Protocol {
                operation: op.clone(),
                detail: format!("the link is not a URL: {e}"),
            })?;
        if !matches!(url.scheme(), "http" | "https") || !self.link_allowed(&url) {
            return Err(EzdError::Refused {
                operation: op,
                detail: format!(
                    "the link points to {}, which is neither the EZD API nor an allowed file origin",
                    url.origin().ascii_serialization()
                ),
            });
        }
        let bytes = self
            .http
            .download(
                &format!("download of document {id}"),
                url,
                self.max_download_bytes,
            )
            .await?;
        tracing::debug!(
            document = id,
            bytes = bytes.len(),
            "EZD RP document fetched"
        );
        Ok(bytes)
    }
}
