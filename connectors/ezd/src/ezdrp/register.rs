//! Registering an incoming letter in EZD RP, resumably.
//!
//! EZD RP has no single "register incoming item" call. The steps, each visible afterwards:
//! 1. `POST /obiegi` with the letter as `<letter id>.xml`: a task holding the document;
//! 2. `POST /dokumenty/{id}/rpw`: the RPW number;
//! 3. `PUT /rpw/{n}/{r}/metadane`: date, delivery, sender, and the letter id as `znakNaPismie`;
//! 4. `POST /rpw/{n}/{r}/zalaczniki` for each attachment not yet there;
//! 5. `POST /obiegi/{id}/sprawy[/{idSprawa}]`: the case.
//!
//! Before anything, the document is looked up by its file name, so a registration that broke
//! off continues at the first step that did not take effect; no creating step is repeated.

use std::collections::HashSet;

use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};

use super::http::{is_conflict, Body, Effect};
use super::wire::{
    parse_datetime, polish_date, split_rpw, Case, Contact, ContactRef, FoundDocument, Page,
    RpwCreated, RpwMetadata, Task, TaskCreated, TaskDocument, MAX_PAGES, PAGE_SIZE,
};
use super::EzdRpClient;
use crate::port::{
    CaseTarget, DeliveredVia, EzdError, FileContent, IncomingLetter, Lookup, Registration,
    SenderContact,
};

/// The main document's file name in EZD, which is how a letter is found again.
pub(super) fn letter_file_name(letter_id: &str) -> String {
    let safe: String = letter_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.xml")
}

/// How far a letter got, as far as the document search tells.
enum State {
    Absent,
    Registered(Registration),
    /// The document is in EZD and in no case.
    InTask,
}

/// Step 1's lookup: the document named `file`, and its case when it has one.
async fn locate(c: &EzdRpClient, file: &str) -> Result<State, EzdError> {
    const OP: &str = "POST /dokumenty/_search";
    let found: Vec<FoundDocument> = c
        .search_all(OP, &["dokumenty", "_search"], &json!({ "tytul": file }))
        .await?;
    let matching: Vec<FoundDocument> = found
        .into_iter()
        .filter(|d| d.nazwa.as_deref() == Some(file))
        .collect();
    if matching.is_empty() {
        return Ok(State::Absent);
    }
    if let Some(doc) = matching
        .iter()
        .find(|d| d.sprawy.iter().any(|s| s.id_sprawa.is_some()))
    {
        return Ok(State::Registered(registration_of(c, doc).await?));
    }
    Ok(State::InTask)
}

/// The Registration of a document that is already in a case.
async fn registration_of(c: &EzdRpClient, doc: &FoundDocument) -> Result<Registration, EzdError> {
    let Some((case_id, listed)) = doc
        .sprawy
        .iter()
        .find_map(|s| s.id_sprawa.clone().map(|id| (id, s)))
    else {
        return Err(EzdError::Protocol {
            operation: "POST /dokumenty/_search".into(),
            detail: "a case without idSprawa".into(),
        });
    };
    let space_id = doc
        .lista_dokument_przestrzeni
        .iter()
        .find_map(|s| s.id_dokument_przestrzeni.clone());
    let rpw = match &space_id {
        Some(id) => c
            .get_document(id)
            .await?
            .numer_rpw
            .filter(|n| !n.trim().is_empty()),
        None => None,
    };
    let case = c.get_case(&case_id).await?;
    let sender_contact_id = match &rpw {
        Some(number) => {
            let (numer, rok) = rpw_parts(number, "GET /dokumenty")?;
            read_metadata(c, &numer, &rok).await?.sender_contact_id()
        }
        None => None,
    };
    let case_ref = case
        .znak
        .clone()
        .or_else(|| listed.znak_sprawy.clone())
        .filter(|z| !z.trim().is_empty())
        .ok_or_else(|| EzdError::Protocol {
            operation: format!("GET /sprawy/{case_id}"),
            detail: "the case has no znak".into(),
        })?;
    Ok(Registration {
        rpw,
        ezd_case_id: case_id,
        case_ref,
        case_title: case
            .tytul
            .clone()
            .or_else(|| listed.tytul.clone())
            .filter(|t| !t.trim().is_empty()),
        registered_at: case
            .data_rejestracji
            .as_deref()
            .and_then(parse_datetime)
            .unwrap_or_else(Utc::now),
        sender_contact_id,
    })
}

/// The task (obieg) whose main document is `file`, from the technical user's task list.
async fn find_task(c: &EzdRpClient, file: &str) -> Result<Option<String>, EzdError> {
    for page in 0..MAX_PAGES {
        let query = [
            ("page", page.to_string()),
            ("pageSize", PAGE_SIZE.to_string()),
        ];
        let tasks: Page<Task> = c.http.get("GET /obiegi", &["obiegi"], &query).await?;
        if let Some(id) = tasks
            .lista
            .iter()
            .filter(|t| t.tytul_dokumentu.as_deref() == Some(file))
            .find_map(|t| t.id_obieg.clone())
        {
            return Ok(Some(id));
        }
        if !tasks.has_next(page) {
            break;
        }
    }
    Ok(None)
}

/// The document `file` of a task: its idDokumentPrzestrzeni and RPW number, if any.
async fn task_document(
    c: &EzdRpClient,
    task: &str,
    file: &str,
) -> Result<Option<(String, Option<String>)>, EzdError> {
    let op = format!("GET /obiegi/{task}/dokumenty");
    let docs: Vec<TaskDocument> = c.get_all(&op, &["obiegi", task, "dokumenty"]).await?;
    let Some(doc) = docs.into_iter().find(|d| d.nazwa.as_deref() == Some(file)) else {
        return Ok(None);
    };
    let space_id = doc
        .id_dokument_przestrzeni
        .filter(|id| !id.is_empty())
        .ok_or_else(|| EzdError::Protocol {
            operation: op,
            detail: "the document has no idDokumentPrzestrzeni".into(),
        })?;
    Ok(Some((
        space_id,
        doc.numer_rpw.filter(|n| !n.trim().is_empty()),
    )))
}

fn rpw_parts(number: &str, operation: &str) -> Result<(String, String), EzdError> {
    split_rpw(number).ok_or_else(|| EzdError::Protocol {
        operation: operation.to_owned(),
        detail: format!("RPW number {number:?} is not RPW/<numer>/<rok>"),
    })
}

async fn read_metadata(c: &EzdRpClient, numer: &str, rok: &str) -> Result<RpwMetadata, EzdError> {
    c.http
        .get(
            &format!("GET /rpw/{numer}/{rok}/metadane"),
            &["rpw", numer, rok, "metadane"],
            &[],
        )
        .await
}

pub(super) async fn find_incoming(c: &EzdRpClient, letter_id: &str) -> Result<Lookup, EzdError> {
    let file = letter_file_name(letter_id);
    match locate(c, &file).await? {
        State::Absent => return Ok(Lookup::Absent),
        State::Registered(registration) => return Ok(Lookup::Registered(registration)),
        State::InTask => {}
    }
    let Some(task) = find_task(c, &file).await? else {
        return Ok(Lookup::Partial {
            detail: format!(
                "document {file} is in EZD but its task was not found among the technical user's tasks"
            ),
        });
    };
    let Some((_, rpw)) = task_document(c, &task, &file).await? else {
        return Ok(Lookup::Partial {
            detail: format!("document {file} is in EZD but task {task} does not list it"),
        });
    };
    let Some(number) = rpw else {
        return Ok(Lookup::Partial {
            detail: format!("document {file} is in EZD (task {task}) without an RPW number"),
        });
    };
    let (numer, rok) = rpw_parts(&number, &format!("GET /obiegi/{task}/dokumenty"))?;
    let metadata = read_metadata(c, &numer, &rok).await?;
    let detail = if metadata.reference() == Some(letter_id) {
        format!("{number} (task {task}) has its metadata but is in no case")
    } else {
        format!("{number} (task {task}) has no GSKO metadata yet")
    };
    Ok(Lookup::Partial { detail })
}

pub(super) async fn register(
    c: &EzdRpClient,
    letter: &IncomingLetter,
    target: &CaseTarget,
) -> Result<Registration, EzdError> {
    let letter_id = letter.letter_id.as_str();
    if letter_id.trim().is_empty() {
        return Err(EzdError::Refused {
            operation: "register".into(),
            detail: "the letter has no id".into(),
        });
    }
    let file = letter_file_name(letter_id);

    // 1. Where did an earlier attempt get?
    let task = match locate(c, &file).await? {
        State::Registered(registration) => {
            tracing::info!(letter_id, ezd_case_id = %registration.ezd_case_id, "letter already registered in EZD RP");
            return Ok(registration);
        }
        State::Absent => create_task(c, letter, &file).await?,
        State::InTask => find_task(c, &file).await?.ok_or_else(|| EzdError::Refused {
            operation: "GET /obiegi".into(),
            detail: format!(
                "document {file} is in EZD but its task was not found among the technical user's tasks; an admin must put it in a case or remove it"
            ),
        })?,
    };

    // 2. The document in the task and its RPW number.
    let (space_id, rpw) =
        task_document(c, &task, &file)
            .await?
            .ok_or_else(|| EzdError::Protocol {
                operation: format!("GET /obiegi/{task}/dokumenty"),
                detail: format!("task {task} does not list document {file}"),
            })?;
    let rpw = match rpw {
        Some(number) => number,
        None => create_rpw(c, letter_id, &space_id).await?,
    };
    let (numer, rok) = rpw_parts(&rpw, &format!("POST /dokumenty/{space_id}/rpw"))?;

    // 3. Metadata and sender, unless an earlier attempt wrote them.
    let mut metadata = read_metadata(c, &numer, &rok).await?;
    let sender_contact_id = if metadata.reference() == Some(letter_id) {
        metadata.sender_contact_id()
    } else {
        let sender = resolve_sender(c, &letter.sender).await?;
        put_metadata(c, letter, &numer, &rok, sender.as_ref()).await?;
        tracing::info!(letter_id, rpw = %rpw, anonymous = sender.is_none(), "EZD RP metadata written");
        if !letter.attachments.is_empty() {
            metadata = read_metadata(c, &numer, &rok).await?;
        }
        sender.map(|(id, _)| id)
    };

    // 4. Attachments not yet in the RPW.
    let present: HashSet<String> = metadata.attachment_names().into_iter().collect();
    for attachment in &letter.attachments {
        if present.contains(&attachment.name) {
            continue;
        }
        let op = format!("POST /rpw/{numer}/{rok}/zalaczniki");
        c.http
            .call(
                Method::POST,
                &op,
                &["rpw", &numer, &rok, "zalaczniki"],
                &[],
                Body::File(attachment),
                Effect::Write,
            )
            .await?;
    }

    // 5. The case.
    let case = match attach_to_case(c, &task, target).await {
        Ok(case) => case,
        Err(e) if is_conflict(&e) => {
            // 409: the task is already in a case (an earlier attempt's answer got lost).
            return match locate(c, &file).await? {
                State::Registered(registration) => Ok(registration),
                _ => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let registration = Registration {
        rpw: Some(rpw),
        ezd_case_id: case.0,
        case_ref: case.1,
        case_title: case.2,
        registered_at: case.3.unwrap_or_else(Utc::now),
        sender_contact_id,
    };
    tracing::info!(
        letter_id,
        ezd_case_id = %registration.ezd_case_id,
        rpw = registration.rpw.as_deref().unwrap_or(""),
        "letter registered in EZD RP"
    );
    Ok(registration)
}

async fn create_task(
    c: &EzdRpClient,
    letter: &IncomingLetter,
    file: &str,
) -> Result<String, EzdError> {
    const OP: &str = "POST /obiegi";
    let document = FileContent {
        name: file.to_owned(),
        mime_type: letter.document.mime_type.clone(),
        bytes: letter.document.bytes.clone(),
    };
    let created: TaskCreated = c
        .http
        .call(
            Method::POST,
            OP,
            &["obiegi"],
            &[],
            Body::File(&document),
            Effect::Write,
        )
        .await?
        .json(OP)?;
    let task = created
        .lista_id_obieg
        .into_iter()
        .find(|id| !id.is_empty())
        .ok_or_else(|| EzdError::Protocol {
            operation: OP.into(),
            detail: "no task id in listaIdObieg".into(),
        })?;
    tracing::info!(letter_id = %letter.letter_id, task = %task, "EZD RP task created");
    Ok(task)
}

async fn create_rpw(c: &EzdRpClient, letter_id: &str, space_id: &str) -> Result<String, EzdError> {
    let op = format!("POST /dokumenty/{space_id}/rpw");
    let created: RpwCreated = c
        .http
        .call(
            Method::POST,
            &op,
            &["dokumenty", space_id, "rpw"],
            &[],
            Body::Json(&json!({})),
            Effect::Write,
        )
        .await?
        .json(&op)?;
    let number = created
        .numer_rpw
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| EzdError::Protocol {
            operation: op,
            detail: "no numerRpw".into(),
        })?;
    tracing::info!(letter_id, rpw = %number, "EZD RP number given");
    Ok(number)
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The contact-base search that identifies the sender: by PESEL, else by NIP, else by name
/// (with the e-mail address when there is one, to tell namesakes apart). `None` when the
/// sender cannot be identified at all.
fn sender_query(sender: &SenderContact) -> Option<Value> {
    if let Some(pesel) = non_empty(&sender.pesel) {
        return Some(json!({ "pesel": pesel, "typAdresata": 3 }));
    }
    if let Some(nip) = non_empty(&sender.nip) {
        return Some(json!({ "nip": nip }));
    }
    let mut query = if let Some(name) = non_empty(&sender.organisation) {
        json!({ "nazwaPodmiotu": name, "typAdresata": 1 })
    } else if let Some(surname) = non_empty(&sender.surname) {
        let mut q = json!({ "nazwisko": surname, "typAdresata": 3 });
        if let Some(given) = non_empty(&sender.given_name) {
            q["imie"] = json!(given);
        }
        q
    } else {
        return None;
    };
    if let Some(email) = non_empty(&sender.email) {
        query["email"] = json!(email);
    }
    Some(query)
}

async fn search_contact(c: &EzdRpClient, query: &Value) -> Result<Option<String>, EzdError> {
    const OP: &str = "POST /adresaci/_search";
    let mut body = query.clone();
    body["page"] = json!(0);
    body["pageSize"] = json!(PAGE_SIZE);
    let found: Page<ContactRef> = c
        .http
        .call(
            Method::POST,
            OP,
            &["adresaci", "_search"],
            &[],
            Body::Json(&body),
            Effect::Read,
        )
        .await?
        .json(OP)?;
    Ok(found
        .lista
        .into_iter()
        .find_map(|c| c.id_adresat.filter(|id| !id.is_empty())))
}

/// `V2PostDodajAdresataQuery` for the sender: a person (type 3) or an organisation (type 1),
/// with the addresses GSKO knows (ePUAP box, e-mail). `None` without a name, which EZD requires.
fn new_contact(sender: &SenderContact) -> Option<Value> {
    let mut body = if let Some(name) = non_empty(&sender.organisation) {
        json!({ "typAdresata": 1, "nazwaPodmiotu": name })
    } else if let Some(surname) = non_empty(&sender.surname) {
        let mut b = json!({ "typAdresata": 3, "nazwisko": surname });
        if let Some(given) = non_empty(&sender.given_name) {
            b["imie"] = json!(given);
        }
        b
    } else {
        return None;
    };
    let emails: Vec<Value> = non_empty(&sender.email)
        .map(|e| vec![json!({ "email": e, "czyDomyslny": true })])
        .unwrap_or_default();
    // An ePUAP address is `/<identyfikator>/<skrytka>`.
    let epuap: Vec<Value> = non_empty(&sender.epuap_address)
        .and_then(|a| a.trim_start_matches('/').split_once('/'))
        .filter(|(id, box_)| !id.is_empty() && !box_.is_empty())
        .map(|(id, box_)| {
            vec![json!({ "identyfikator": id, "skrytka": box_.trim_end_matches('/'), "czyDomyslny": true })]
        })
        .unwrap_or_default();
    body["listaAdresow"] = json!([]);
    body["listaAdresowEmail"] = json!(emails);
    body["listaAdresowEPUAP"] = json!(epuap);
    body["listaAdresowEDoreczenia"] = json!([]);
    body["listaPodadresaci"] = json!([]);
    body["metadaneAdresata"] = json!([]);
    body["czyZbiorczy"] = json!(false);
    // UPD: the only ePUAP mode open to persons.
    body["typKomunikacjiEpuap"] = json!(2);
    Some(body)
}

/// The sender's contact (idAdresat, idAdresWersja), found or created; `None` for a sender GSKO
/// cannot identify, registered as anonymous.
async fn resolve_sender(
    c: &EzdRpClient,
    sender: &SenderContact,
) -> Result<Option<(String, String)>, EzdError> {
    let Some(query) = sender_query(sender) else {
        return Ok(None);
    };
    let id = match search_contact(c, &query).await? {
        Some(id) => id,
        None => {
            let Some(body) = new_contact(sender) else {
                tracing::warn!("sender not in the EZD contact base and has no name: registering the letter as anonymous");
                return Ok(None);
            };
            const OP: &str = "POST /adresaci";
            let created = c
                .http
                .call(
                    Method::POST,
                    OP,
                    &["adresaci"],
                    &[],
                    Body::Json(&body),
                    Effect::Write,
                )
                .await;
            match created {
                Ok(answer) => answer
                    .json::<ContactRef>(OP)?
                    .id_adresat
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| EzdError::Protocol {
                        operation: OP.into(),
                        detail: "no idAdresat".into(),
                    })?,
                // The contact may exist now: one more search decides.
                Err(uncertain @ EzdError::Uncertain { .. }) => {
                    match search_contact(c, &query).await? {
                        Some(id) => id,
                        None => return Err(uncertain),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    let op = format!("GET /adresaci/{id}");
    let contact: Contact = c.http.get(&op, &["adresaci", &id], &[]).await?;
    let version = contact
        .address_version()
        .ok_or_else(|| EzdError::Protocol {
            operation: op,
            detail: "the contact has no address version to name as the RPW sender".into(),
        })?;
    Ok(Some((id, version)))
}

async fn put_metadata(
    c: &EzdRpClient,
    letter: &IncomingLetter,
    numer: &str,
    rok: &str,
    sender: Option<&(String, String)>,
) -> Result<(), EzdError> {
    let d = &c.dictionaries;
    let delivery = match letter.delivered_via {
        DeliveredVia::Epuap => &d.delivery_epuap,
        DeliveredVia::Portal => &d.delivery_portal,
    };
    let senders: Vec<Value> = sender
        .map(|(_, version)| vec![json!({ "idAdresWersja": version, "rodzaj": d.sender_role })])
        .unwrap_or_default();
    let body = json!({
        "metadaneSystemowe": {
            "dataWplywu": polish_date(letter.received_at).format("%Y-%m-%d").to_string(),
            "uwagi": format!("GSKO {}", letter.letter_id),
            "znakNaPismie": letter.letter_id,
            "sposobDostarczenia": delivery,
            "rodzajDokumentu": d.document_kind,
            "typDokumentu": d.document_type,
            "dostep": d.access,
            "czyAnonimowy": sender.is_none(),
        },
        "metadaneNiesystemowe": [],
        "adresaci": senders,
    });
    c.http
        .call(
            Method::PUT,
            &format!("PUT /rpw/{numer}/{rok}/metadane"),
            &["rpw", numer, rok, "metadane"],
            &[],
            Body::Json(&body),
            Effect::Write,
        )
        .await?;
    Ok(())
}

/// (idSprawa, znak, title, registered at) of the case the task went into.
type CaseOutcome = (
    String,
    String,
    Option<String>,
    Option<chrono::DateTime<Utc>>,
);

async fn attach_to_case(
    c: &EzdRpClient,
    task: &str,
    target: &CaseTarget,
) -> Result<CaseOutcome, EzdError> {
    let (case, op): (Case, String) = match target {
        CaseTarget::New(new) => {
            let op = format!("POST /obiegi/{task}/sprawy");
            let body = json!({
                "idWykaz": new.class_id,
                "idPodteczka": null,
                "tytul": new.title,
                "kategoriaArchiwalna": new.archival_category,
                // 0: EZD takes the next free number in the class.
                "numer": 0,
                "rokZalozenia": new.year,
            });
            let case = c
                .http
                .call(
                    Method::POST,
                    &op,
                    &["obiegi", task, "sprawy"],
                    &[],
                    Body::Json(&body),
                    Effect::Write,
                )
                .await?
                .json(&op)?;
            (case, op)
        }
        CaseTarget::Existing { ezd_case_id } => {
            let op = format!("POST /obiegi/{task}/sprawy/{ezd_case_id}");
            c.http
                .call(
                    Method::POST,
                    &op,
                    &["obiegi", task, "sprawy", ezd_case_id],
                    &[],
                    Body::Json(&json!({})),
                    Effect::Write,
                )
                .await?;
            let mut case = c.get_case(ezd_case_id).await?;
            case.id_sprawa = case.id_sprawa.or_else(|| Some(ezd_case_id.clone()));
            (case, format!("GET /sprawy/{ezd_case_id}"))
        }
    };
    let id = case
        .id_sprawa
        .filter(|id| !id.is_empty())
        .ok_or_else(|| EzdError::Protocol {
            operation: op.clone(),
            detail: "no idSprawa".into(),
        })?;
    let znak = case
        .znak
        .filter(|z| !z.trim().is_empty())
        .ok_or_else(|| EzdError::Protocol {
            operation: op,
            detail: format!("case {id} has no znak"),
        })?;
    Ok((
        id,
        znak,
        case.tytul.filter(|t| !t.trim().is_empty()),
        case.data_rejestracji.as_deref().and_then(parse_datetime),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(letter_file_name("epuap-123_a.b"), "epuap-123_a.b.xml");
        assert_eq!(
            letter_file_name("sha256-ab/cd ef:1"),
            "sha256-ab_cd_ef_1.xml"
        );
    }

    #[test]
    fn sender_is_searched_by_the_strongest_identity() {
        let mut s = SenderContact {
            given_name: Some("Jan".into()),
            surname: Some("Kowalski".into()),
            pesel: Some("44051401359".into()),
            nip: Some("5260250274".into()),
            email: Some("jan@example.org".into()),
            ..Default::default()
        };
        assert_eq!(
            sender_query(&s),
            Some(json!({"pesel": "44051401359", "typAdresata": 3}))
        );
        s.pesel = None;
        assert_eq!(sender_query(&s), Some(json!({"nip": "5260250274"})));
        s.nip = None;
        assert_eq!(
            sender_query(&s),
            Some(
                json!({"nazwisko": "Kowalski", "imie": "Jan", "typAdresata": 3, "email": "jan@example.org"})
            )
        );
        assert_eq!(sender_query(&SenderContact::default()), None);
    }

    #[test]
    fn new_contact_carries_the_epuap_box() {
        let s = SenderContact {
            surname: Some("Nowak".into()),
            epuap_address: Some("/anowak/skrytka".into()),
            ..Default::default()
        };
        let body = new_contact(&s).unwrap_or_default();
        assert_eq!(body["typAdresata"], 3);
        assert_eq!(body["listaAdresowEPUAP"][0]["identyfikator"], "anowak");
        assert_eq!(body["listaAdresowEPUAP"][0]["skrytka"], "skrytka");
        assert_eq!(new_contact(&SenderContact::default()), None);
    }
}
