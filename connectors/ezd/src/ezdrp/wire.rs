//! The Integrator API's JSON, read leniently: every field the adapter does not need is
//! ignored, and every field it reads is optional here so that a missing one is reported by the
//! code that needs it (as a protocol error naming the call), not as a parse failure.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Page size of every listing and search (the API's maximum for searches).
pub(super) const PAGE_SIZE: u32 = 25;
/// Bound on the pages one listing reads, so that a server that always says "more" cannot keep
/// the adapter busy forever.
pub(super) const MAX_PAGES: u32 = 400;

/// `null` or a missing array as an empty one.
fn nullable_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<Value>,
    token_type: Option<String>,
}

impl TokenAnswer {
    /// The token and its lifetime; a lifetime EZD does not state is taken as 5 minutes.
    pub fn into_token(self) -> Result<(String, Duration), String> {
        let token = self
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or("no access_token")?;
        if let Some(kind) = &self.token_type {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(format!("token_type {kind:?} is not Bearer"));
            }
        }
        let secs = match &self.expires_in {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(300);
        Ok((token, Duration::from_secs(secs)))
    }
}

/// `IntegratorTablePageResultDto`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageInfo {
    page_number: Option<i64>,
    pages_count: Option<i64>,
    is_next_page_exists: Option<bool>,
}

/// `{ lista, pageInfo }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Page<T> {
    #[serde(
        default = "Vec::new",
        deserialize_with = "nullable_vec",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    pub lista: Vec<T>,
    #[serde(default)]
    page_info: Option<PageInfo>,
}

impl<T> Page<T> {
    /// Whether another page follows page `asked` (0-based): `isNextPageExists` when EZD says
    /// it, else `pagesCount`, else whether this page was full.
    pub fn has_next(&self, asked: u32) -> bool {
        let info = self.page_info.as_ref();
        if let Some(next) = info.and_then(|i| i.is_next_page_exists) {
            return next && !self.lista.is_empty();
        }
        if let Some(count) = info.and_then(|i| i.pages_count) {
            let current = info.and_then(|i| i.page_number).unwrap_or(i64::from(asked));
            return current + 1 < count && !self.lista.is_empty();
        }
        self.lista.len() >= PAGE_SIZE as usize
    }
}

/// `{ lista }` without paging.
#[derive(Debug, Deserialize)]
pub(super) struct List<T> {
    #[serde(
        default = "Vec::new",
        deserialize_with = "nullable_vec",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    pub lista: Vec<T>,
}

/// An item of `POST /dokumenty/_search`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FoundDocument {
    pub nazwa: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub lista_dokument_przestrzeni: Vec<SpaceRef>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub sprawy: Vec<DocumentCase>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpaceRef {
    pub id_dokument_przestrzeni: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DocumentCase {
    pub id_sprawa: Option<String>,
    pub znak_sprawy: Option<String>,
    pub tytul: Option<String>,
}

/// An item of `GET /obiegi`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Task {
    pub id_obieg: Option<String>,
    pub tytul_dokumentu: Option<String>,
}

/// `POST /obiegi` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaskCreated {
    #[serde(default, deserialize_with = "nullable_vec")]
    pub lista_id_obieg: Vec<String>,
}

/// An item of `GET /obiegi/{idObieg}/dokumenty`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaskDocument {
    pub id_dokument_przestrzeni: Option<String>,
    pub nazwa: Option<String>,
    pub numer_rpw: Option<String>,
}

/// `POST /dokumenty/{id}/rpw` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpwCreated {
    pub numer_rpw: Option<String>,
}

/// `GET /rpw/{numer}/{rok}/metadane`, the parts the adapter reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpwMetadata {
    #[serde(default, deserialize_with = "nullable_vec")]
    pub nadawcy: Vec<RpwSender>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub zalaczniki: Vec<RpwAttachment>,
    pub metadane: Option<RpwMetadataValues>,
}

impl RpwMetadata {
    pub fn reference(&self) -> Option<&str> {
        self.metadane
            .as_ref()
            .and_then(|m| m.metadane_systemowe.as_ref())
            .and_then(|s| s.znak_na_pismie.as_deref())
    }

    /// Names of the item's attachments, nested ones included.
    pub fn attachment_names(&self) -> Vec<String> {
        fn walk(list: &[RpwAttachment], out: &mut Vec<String>) {
            for a in list {
                if let Some(name) = &a.nazwa {
                    out.push(name.clone());
                }
                walk(&a.zalaczniki, out);
            }
        }
        let mut names = Vec::new();
        walk(&self.zalaczniki, &mut names);
        names
    }

    pub fn sender_contact_id(&self) -> Option<String> {
        self.nadawcy.iter().find_map(|n| n.id_adresat.clone())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpwSender {
    pub id_adresat: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpwAttachment {
    pub nazwa: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub zalaczniki: Vec<RpwAttachment>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpwMetadataValues {
    pub metadane_systemowe: Option<RpwSystemMetadata>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RpwSystemMetadata {
    pub znak_na_pismie: Option<String>,
}

/// `GET /dokumenty/{idDokumentPrzestrzeni}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Document {
    pub nazwa: Option<String>,
    pub numer_rpw: Option<String>,
    pub rozszerzenie: Option<String>,
    pub is_file_signature_valid: Option<bool>,
}

/// A case: `GET /sprawy/{id}`, an item of `POST /sprawy/_search`, or the answer of
/// `POST /obiegi/{idObieg}/sprawy`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Case {
    pub id_sprawa: Option<String>,
    pub tytul: Option<String>,
    pub znak: Option<String>,
    pub status: Option<String>,
    pub status_enum: Option<i64>,
    pub data_rejestracji: Option<String>,
    pub termin_zalatwienia: Option<String>,
    pub czy_usuniety: Option<bool>,
}

/// An item of `POST /adresaci/_search` or the answer of `POST /adresaci`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContactRef {
    pub id_adresat: Option<String>,
}

/// `GET /adresaci/{idAdresat}`: the address versions an RPW sender can point at.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(super) struct Contact(Value);

impl Contact {
    /// A postal address version first; then, for a contact without one, the version of its
    /// e-mail address or `idAdresWersjaDoWyswietlenia` (as the contract says for
    /// `V2AdresatDto.idAdresWersja`), then any other list's version: the contract does not say
    /// which version an ePUAP-only contact has.
    pub fn address_version(&self) -> Option<String> {
        let in_list = |key: &str| {
            self.0
                .get(key)
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter().find_map(|a| {
                        a.get("idAdresWersja")
                            .and_then(Value::as_str)
                            .filter(|v| !v.is_empty())
                    })
                })
                .map(str::to_owned)
        };
        let field = |key: &str| {
            self.0
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        in_list("listaAdresow")
            .or_else(|| in_list("listaAdresowEmail"))
            .or_else(|| field("idAdresWersjaDoWyswietlenia"))
            .or_else(|| in_list("listaAdresowEPUAP"))
            .or_else(|| in_list("listaAdresowEDoreczenia"))
            .or_else(|| field("idAdresWersja"))
    }
}

/// A group of `GET /sprawy/{id}/kw`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KwGroup {
    pub data_utworzenia: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub korespondencja: Vec<KwItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KwItem {
    pub id_korespondencja: Option<String>,
    /// Untyped in the contract (`{}`).
    pub adresat: Option<Value>,
    pub status: Option<String>,
    pub data_utworzenia: Option<String>,
    pub data_anulowania: Option<Value>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub lista_dokumentow: Vec<KwDocument>,
}

impl KwItem {
    /// `adresat.idAdresat` when `adresat` is an object naming one.
    pub fn addressee_contact_id(&self) -> Option<String> {
        self.adresat
            .as_ref()
            .and_then(|a| a.get("idAdresat"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub fn cancelled(&self) -> bool {
        match &self.data_anulowania {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KwDocument {
    pub id_dokument: Option<String>,
    pub nazwa: Option<String>,
    pub rozszerzenie: Option<String>,
}

/// An item of `GET /sprawy/{id}/dokumenty`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CaseDocumentEntry {
    pub folder: Option<Folder>,
    pub dokument_przestrzeni: Option<SpaceDocument>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Folder {
    #[serde(default, deserialize_with = "nullable_vec")]
    pub foldery: Vec<Folder>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub zalaczniki: Vec<SpaceDocument>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpaceDocument {
    pub id_dokument_przestrzeni: Option<String>,
    pub id_dokument: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub zalaczniki: Vec<SpaceDocument>,
}

impl CaseDocumentEntry {
    /// Every (idDokument, idDokumentPrzestrzeni) pair in the entry, attachments and folders
    /// included.
    pub fn pairs(&self, out: &mut Vec<(String, String)>) {
        fn doc(d: &SpaceDocument, out: &mut Vec<(String, String)>) {
            if let (Some(id), Some(space)) = (&d.id_dokument, &d.id_dokument_przestrzeni) {
                out.push((id.clone(), space.clone()));
            }
            for a in &d.zalaczniki {
                doc(a, out);
            }
        }
        fn folder(f: &Folder, out: &mut Vec<(String, String)>) {
            for d in &f.zalaczniki {
                doc(d, out);
            }
            for sub in &f.foldery {
                folder(sub, out);
            }
        }
        if let Some(d) = &self.dokument_przestrzeni {
            doc(d, out);
        }
        if let Some(f) = &self.folder {
            folder(f, out);
        }
    }
}

/// `GET /dokumenty/{id}/link`.
#[derive(Debug, Deserialize)]
pub(super) struct Link {
    pub link: Option<String>,
}

/// EZD's reason for a refusal, from any of the three problem+json shapes (`title`, `detail`,
/// `message`, `invalid-params`), or a short excerpt of a body that is not one.
pub(super) fn problem_text(body: &[u8]) -> String {
    const EXCERPT: usize = 200;
    if body.iter().all(u8::is_ascii_whitespace) {
        return "no details".into();
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return excerpt(text.trim(), EXCERPT);
    };
    let mut parts: Vec<String> = Vec::new();
    for key in ["title", "detail", "message"] {
        if let Some(text) = value.get(key).and_then(Value::as_str) {
            let text = text.trim();
            if !text.is_empty() && !parts.iter().any(|p| p == text) {
                parts.push(text.to_owned());
            }
        }
    }
    if let Some(params) = value.get("invalid-params").and_then(Value::as_array) {
        for p in params {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("?");
            let reason = p.get("reason").and_then(Value::as_str).unwrap_or("invalid");
            parts.push(format!("{name}: {reason}"));
        }
    }
    if let Some(id) = value.get("errorId").and_then(Value::as_str) {
        parts.push(format!("errorId {id}"));
    }
    if parts.is_empty() {
        return excerpt(&value.to_string(), EXCERPT);
    }
    excerpt(&parts.join("; "), 1000)
}

fn excerpt(text: &str, max_chars: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max_chars {
        clean
    } else {
        let cut: String = clean.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

/// An EZD date-time: RFC 3339, or without an offset (taken as UTC), or a bare date.
pub(super) fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| n.and_utc())
        })
}

/// The calendar date of an EZD date-time as written (its first ten characters), so that a
/// deadline is not shifted by a time zone.
pub(super) fn parse_date(text: &str) -> Option<NaiveDate> {
    text.trim()
        .get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// The date in Poland (CET/CEST, EU summer time rules) of an instant: the date an office
/// would stamp on a letter received then.
pub(super) fn polish_date(at: DateTime<Utc>) -> NaiveDate {
    fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
        // March and October both have 31 days.
        let last = NaiveDate::from_ymd_opt(year, month, 31)?;
        let back = last.weekday().num_days_from_sunday();
        last.checked_sub_days(chrono::Days::new(u64::from(back)))
    }
    let year = at.year();
    let summer = match (last_sunday(year, 3), last_sunday(year, 10)) {
        (Some(start), Some(end)) => {
            let start = start.and_hms_opt(1, 0, 0).map(|t| t.and_utc());
            let end = end.and_hms_opt(1, 0, 0).map(|t| t.and_utc());
            matches!((start, end), (Some(s), Some(e)) if at >= s && at < e)
        }
        _ => false,
    };
    let offset = TimeDelta::hours(if summer { 2 } else { 1 });
    (at + offset).date_naive()
}

/// Splits `RPW/{numer}/{rok}` into the two path parameters.
pub(super) fn split_rpw(number: &str) -> Option<(String, String)> {
    let mut parts = number.trim().split('/');
    let (prefix, numer, rok) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if parts.next().is_some() || !prefix.eq_ignore_ascii_case("RPW") || !valid(numer) || !valid(rok)
    {
        return None;
    }
    Some((numer.to_owned(), rok.to_owned()))
}

/// MIME type of an EZD file extension (`pdf` or `.pdf`).
pub(super) fn mime_of(extension: &str) -> &'static str {
    match extension
        .trim()
        .trim_start_matches('.')
        .to_ascii_lowercase()
        .as_str()
    {
        "pdf" => "application/pdf",
        "xml" => "application/xml",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "odt" => "application/vnd.oasis.opendocument.text",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// A file's full name from EZD's name and extension (the name may or may not carry it).
pub(super) fn file_name(name: &str, extension: &str) -> String {
    let ext = extension.trim().trim_start_matches('.');
    if ext.is_empty()
        || name
            .to_ascii_lowercase()
            .ends_with(&format!(".{}", ext.to_ascii_lowercase()))
    {
        name.to_owned()
    } else {
        format!("{name}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_datetime(s).unwrap_or_default()
    }

    #[test]
    fn polish_date_follows_winter_and_summer_time() {
        // 23:30 UTC in winter is 00:30 the next day in Poland.
        assert_eq!(
            polish_date(at("2026-12-31T23:30:00Z")),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default()
        );
        // 22:30 UTC in summer is 00:30 the next day (CEST).
        assert_eq!(
            polish_date(at("2026-07-01T22:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 7, 2).unwrap_or_default()
        );
        // 22:30 UTC in winter is still 23:30 the same day.
        assert_eq!(
            polish_date(at("2026-01-10T22:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 1, 10).unwrap_or_default()
        );
        // Summer time starts 2026-03-29 01:00 UTC.
        assert_eq!(
            polish_date(at("2026-03-29T22:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 3, 30).unwrap_or_default()
        );
        assert_eq!(
            polish_date(at("2026-03-28T22:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 3, 28).unwrap_or_default()
        );
    }

    #[test]
    fn rpw_numbers_split_or_are_refused() {
        assert_eq!(
            split_rpw("RPW/17/2026"),
            Some(("17".to_owned(), "2026".to_owned()))
        );
        assert_eq!(split_rpw("RPW/17"), None);
        assert_eq!(split_rpw("RPW/17/2026/1"), None);
        assert_eq!(split_rpw("KW/17/2026"), None);
        assert_eq!(split_rpw("RPW//2026"), None);
    }

    #[test]
    fn problem_text_reads_every_shape() {
        let bad = br#"{"type":"t","status":400,"instance":"/x","title":"Validation failed","invalid-params":[{"name":"tytul","reason":"too short"}]}"#;
        assert_eq!(problem_text(bad), "Validation failed; tytul: too short");
        let nf = br#"{"type":"t","status":404,"instance":"/x","title":"Not Found","detail":"no such case","message":null}"#;
        assert_eq!(problem_text(nf), "Not Found; no such case");
        assert_eq!(problem_text(b""), "no details");
        assert_eq!(problem_text(b"plain\ntext"), "plain text");
    }

    #[test]
    fn page_end_is_read_from_either_field() {
        let p: Page<Value> = serde_json::from_str(
            r#"{"lista":[1],"pageInfo":{"isNextPageExists":false,"pagesCount":9,"pageNumber":0}}"#,
        )
        .unwrap_or_else(|_| Page {
            lista: vec![],
            page_info: None,
        });
        assert!(!p.has_next(0));
        let p: Page<Value> =
            serde_json::from_str(r#"{"lista":[1],"pageInfo":{"pagesCount":2,"pageNumber":0}}"#)
                .unwrap_or_else(|_| Page {
                    lista: vec![],
                    page_info: None,
                });
        assert!(p.has_next(0));
        let p: Page<Value> = serde_json::from_str(r#"{"lista":null}"#).unwrap_or_else(|_| Page {
            lista: vec![Value::Null],
            page_info: None,
        });
        assert!(p.lista.is_empty());
        assert!(!p.has_next(0));
    }

    #[test]
    fn names_and_mime_types() {
        assert_eq!(file_name("Decyzja", "pdf"), "Decyzja.pdf");
        assert_eq!(file_name("Decyzja.PDF", ".pdf"), "Decyzja.PDF");
        assert_eq!(mime_of(".PDF"), "application/pdf");
        assert_eq!(mime_of("exe"), "application/octet-stream");
    }
}
