//! A resident's cases: the cases in the tenant's EZD that the letters they signed went to, each
//! with its current status, its timeline, its letters and the decisions delivered in it.
//!
//! A letter's registration (`letter_cases`) links it to a case by EZD's id of the case when the
//! registration named one (the znak sprawy may change later, when the case is re-registered),
//! else by the znak. The statements are the same text on both backends; both fetch plain JSON
//! payloads and [`case_views`] decodes, groups and orders them, so the backends answer alike.

use crate::error::decode;
use crate::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use gsko_model::{
    CaseRef, CaseRegistered, CaseStatus, CaseStatusChanged, DecisionDelivered, Letter,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One case as the resident whose letters went to it sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseView {
    /// The znak sprawy the case has now (the latest status change's, else the registration's).
    pub case_ref: CaseRef,
    /// EZD's own id of the case, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ezd_case_id: Option<String>,
    /// The latest status, or `registered` while EZD has reported no change yet.
    pub status: CaseStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When the first of the resident's letters was registered in the case.
    pub registered_at: DateTime<Utc>,
    /// The day by which the case is to be settled, when EZD has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_on: Option<NaiveDate>,
    /// Oldest first; starts with the registration (seq 0) unless EZD reported it as change 1.
    pub timeline: Vec<TimelineEntry>,
    /// The resident's letters in the case, oldest first.
    pub letters: Vec<CaseLetter>,
    /// Decisions delivered to the resident in the case (under any znak it had), newest first.
    pub decisions: Vec<DecisionDelivered>,
}

/// One change of a case's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// The change's number in the case (from 1); 0 for the registration GSKO saw.
    pub seq: u32,
    pub status: CaseStatus,
    pub at: DateTime<Utc>,
}

/// A letter of the resident's in a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseLetter {
    pub letter_id: String,
    pub title: String,
    pub received_at: DateTime<Utc>,
}

/// The letters a resident signed; binds `$1` tenant and `$2` PESEL.
const RESIDENT_LETTER_IDS: &str =
    "SELECT l.letter_id FROM letters l WHERE l.tenant = $1 AND l.signer_pesel = $2";

/// Which `cases` rows (alias `k`) belong to the resident: by EZD's id where their letter's
/// registration named it, else by the znak.
fn resident_case_filter() -> String {
    format!(
        "k.tenant = $1 AND (
             k.ezd_case_id IN (SELECT c.ezd_case_id FROM letter_cases c
                 WHERE c.tenant = $1 AND c.ezd_case_id IS NOT NULL
                   AND c.letter_id IN ({RESIDENT_LETTER_IDS}))
             OR k.case_ref IN (SELECT c.case_ref FROM letter_cases c
                 WHERE c.tenant = $1 AND c.ezd_case_id IS NULL
                   AND c.letter_id IN ({RESIDENT_LETTER_IDS})))"
    )
}

/// The latest status of each of the resident's cases (payloads); `$1` tenant, `$2` PESEL.
pub(crate) fn resident_case_rows_sql() -> String {
    format!(
        "SELECT CAST(k.payload AS TEXT) FROM cases k WHERE {}",
        resident_case_filter()
    )
}

/// The timeline entries of those cases (payloads); `$1` tenant, `$2` PESEL.
pub(crate) fn resident_timeline_sql() -> String {
    format!(
        "SELECT CAST(t.payload AS TEXT) FROM case_timeline t
         WHERE t.tenant = $1 AND t.ezd_case_id IN (SELECT k.ezd_case_id FROM cases k WHERE {})",
        resident_case_filter()
    )
}

/// The rows one resident's cases are assembled from, as fetched (JSON payload text).
#[derive(Default)]
pub(crate) struct CaseRows {
    /// `crate::letters::RESIDENT_LETTERS`.
    pub letters: Vec<String>,
    /// `crate::letters::RESIDENT_CASES`: the registrations of those letters.
    pub registrations: Vec<String>,
    /// [`resident_case_rows_sql`].
    pub cases: Vec<String>,
    /// [`resident_timeline_sql`].
    pub timeline: Vec<String>,
    /// `crate::letters::RESIDENT_DECISIONS`.
    pub decisions: Vec<String>,
}

/// How registrations are grouped into cases.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum CaseKey {
    Ezd(String),
    /// A registration that named no EZD id, of a case EZD has reported nothing about yet.
    Ref(CaseRef),
}

/// A case and every znak it is known by (to find it by an old one, and its decisions).
struct Assembled {
    view: CaseView,
    refs: Vec<CaseRef>,
}

/// The resident's cases, newest registration first.
pub(crate) fn case_views(rows: CaseRows) -> Result<Vec<CaseView>, StoreError> {
    Ok(assemble(rows)?.into_iter().map(|a| a.view).collect())
}

/// The resident's case with this znak: the one that has it now, else one that had it.
pub(crate) fn case_view(
    rows: CaseRows,
    case_ref: &CaseRef,
) -> Result<Option<CaseView>, StoreError> {
    let cases = assemble(rows)?;
    let now = cases.iter().position(|a| &a.view.case_ref == case_ref);
    let index = now.or_else(|| cases.iter().position(|a| a.refs.contains(case_ref)));
    Ok(index.and_then(|i| cases.into_iter().nth(i)).map(|a| a.view))
}

fn assemble(rows: CaseRows) -> Result<Vec<Assembled>, StoreError> {
    let letters: HashMap<String, Letter> = rows
        .letters
        .iter()
        .map(|l| decode::<Letter>("letters", "", l).map(|l| (l.letter_id.clone(), l)))
        .collect::<Result<_, _>>()?;
    let registrations: Vec<CaseRegistered> = rows
        .registrations
        .iter()
        .map(|r| decode("letter_cases", "", r))
        .collect::<Result<_, _>>()?;
    let mut latest: Vec<CaseStatusChanged> = rows
        .cases
        .iter()
        .map(|c| decode("cases", "", c))
        .collect::<Result<_, _>>()?;
    // Deterministic whichever order the backend returned them in.
    latest.sort_by(|a, b| a.ezd_case_id.cmp(&b.ezd_case_id));
    let mut timelines: HashMap<&str, Vec<CaseStatusChanged>> = HashMap::new();
    let timeline: Vec<CaseStatusChanged> = rows
        .timeline
        .iter()
        .map(|t| decode("case_timeline", "", t))
        .collect::<Result<_, _>>()?;
    for t in &timeline {
        timelines.entry(&t.ezd_case_id).or_default().push(t.clone());
    }
    let decisions: Vec<DecisionDelivered> = rows
        .decisions
        .iter()
        .map(|d| decode("decision_deliveries", "", d))
        .collect::<Result<_, _>>()?;

    let mut groups: BTreeMap<CaseKey, Vec<&CaseRegistered>> = BTreeMap::new();
    for r in &registrations {
        let key = match &r.ezd_case_id {
            Some(id) => CaseKey::Ezd(id.clone()),
            // Without EZD's id: the case EZD reports under this znak, or the one another
            // registration under this znak named.
            None => latest
                .iter()
                .find(|c| c.case_ref == r.case_ref)
                .map(|c| c.ezd_case_id.clone())
                .or_else(|| {
                    registrations
                        .iter()
                        .filter(|o| o.case_ref == r.case_ref)
                        .find_map(|o| o.ezd_case_id.clone())
                })
                .map_or_else(|| CaseKey::Ref(r.case_ref.clone()), CaseKey::Ezd),
        };
        groups.entry(key).or_default().push(r);
    }

    let mut out = Vec::with_capacity(groups.len());
    for (key, mut regs) in groups {
        regs.sort_by(|a, b| (a.registered_at, &a.letter_id).cmp(&(b.registered_at, &b.letter_id)));
        let (Some(first), Some(last)) = (regs.first(), regs.last()) else {
            continue;
        };
        let ezd_case_id = match &key {
            CaseKey::Ezd(id) => Some(id.clone()),
            CaseKey::Ref(_) => None,
        };
        let current = ezd_case_id
            .as_deref()
            .and_then(|id| latest.iter().find(|c| c.ezd_case_id == id));
        let mut changes = ezd_case_id
            .as_deref()
            .and_then(|id| timelines.remove(id))
            .unwrap_or_default();
        changes.sort_by_key(|c| c.seq);

        let case_ref = current.map_or_else(|| last.case_ref.clone(), |c| c.case_ref.clone());
        let mut refs = vec![case_ref.clone()];
        for r in regs
            .iter()
            .map(|r| &r.case_ref)
            .chain(changes.iter().map(|c| &c.case_ref))
        {
            if !refs.contains(r) {
                refs.push(r.clone());
            }
        }
        // The title the case has now, else the last one EZD or a registration gave.
        let title = current
            .and_then(|c| c.title.clone())
            .or_else(|| changes.iter().rev().find_map(|c| c.title.clone()))
            .or_else(|| regs.iter().rev().find_map(|r| r.title.clone()));
        let registered_at = first.registered_at;

        let mut entries: Vec<TimelineEntry> = Vec::with_capacity(changes.len() + 1);
        let reported_registration = changes
            .iter()
            .any(|c| c.seq == 1 && c.status == CaseStatus::Registered);
        if !reported_registration {
            entries.push(TimelineEntry {
                seq: 0,
                status: CaseStatus::Registered,
                at: registered_at,
            });
        }
        entries.extend(changes.iter().map(|c| TimelineEntry {
            seq: c.seq,
            status: c.status,
            at: c.at,
        }));

        let mut case_letters: Vec<CaseLetter> = regs
            .iter()
            .filter_map(|r| letters.get(&r.letter_id))
            .map(|l| CaseLetter {
                letter_id: l.letter_id.clone(),
                title: l.title.clone(),
                received_at: l.received_at,
            })
            .collect();
        case_letters
            .sort_by(|a, b| (a.received_at, &a.letter_id).cmp(&(b.received_at, &b.letter_id)));
        case_letters.dedup_by(|a, b| a.letter_id == b.letter_id);

        let mut case_decisions: Vec<DecisionDelivered> = decisions
            .iter()
            .filter(|d| d.case_ref.as_ref().is_some_and(|r| refs.contains(r)))
            .cloned()
            .collect();
        case_decisions.sort_by(|a, b| {
            b.at.cmp(&a.at)
                .then_with(|| a.decision_id.cmp(&b.decision_id))
        });

        out.push(Assembled {
            view: CaseView {
                case_ref,
                ezd_case_id,
                status: current.map_or(CaseStatus::Registered, |c| c.status),
                title,
                registered_at,
                due_on: current.and_then(|c| c.due_on),
                timeline: entries,
                letters: case_letters,
                decisions: case_decisions,
            },
            refs,
        });
    }
    out.sort_by(|a, b| {
        b.view
            .registered_at
            .cmp(&a.view.registered_at)
            .then_with(|| a.view.case_ref.as_str().cmp(b.view.case_ref.as_str()))
    });
    Ok(out)
}
