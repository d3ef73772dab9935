//! Letters and decisions in the view: the statements (the same text on both backends, as in
//! [`crate::payment_sql`]) and the read-side shapes.

use crate::StoreError;
use gsko_model::{CaseRegistered, DecisionDelivered, Letter};
use serde::Serialize;

/// Where a resident's letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LetterState {
    /// GSKO has it (pulled from ePUAP or filed through GSKO).
    Received,
    /// The tenant's EZD registered it and attached it to a case (see `case`).
    Registered,
    /// A decision answering it was delivered (or its delivery ended otherwise: see `answer`).
    Answered,
}

/// A letter as its signer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LetterView {
    pub state: LetterState,
    pub letter: Letter,
    /// The case EZD attached it to (znak sprawy), once registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseRegistered>,
    /// The decision that answers it, when one went out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<DecisionDelivered>,
}

pub(crate) const LETTER_INSERT: &str =
    "INSERT INTO letters (tenant, letter_id, signer_pesel, received_at, signature_status, flagged, payload)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant, letter_id) DO NOTHING";

pub(crate) const DECISION_INSERT: &str =
    "INSERT INTO decision_deliveries (tenant, decision_id, recipient_pesel, in_reply_to, outcome, at, payload)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant, decision_id) DO NOTHING";

/// `$1` tenant, `$2` PESEL.
pub(crate) const RESIDENT_LETTERS: &str = "SELECT CAST(payload AS TEXT) FROM letters
     WHERE tenant = $1 AND signer_pesel = $2 ORDER BY received_at DESC, letter_id";

/// Decisions answering the letters of `RESIDENT_LETTERS`.
pub(crate) const RESIDENT_ANSWERS: &str =
    "SELECT CAST(d.payload AS TEXT) FROM decision_deliveries d
     WHERE d.tenant = $1 AND d.in_reply_to IN
         (SELECT l.letter_id FROM letters l WHERE l.tenant = $1 AND l.signer_pesel = $2)";

/// `$1` tenant, `$2` letter, `$3` znak sprawy, `$4` EZD's id of the case (may be NULL), `$5`
/// registered at, `$6` payload.
pub(crate) const CASE_INSERT: &str =
    "INSERT INTO letter_cases (tenant, letter_id, case_ref, ezd_case_id, registered_at, payload)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (tenant, letter_id) DO NOTHING";

/// The cases of the letters of `RESIDENT_LETTERS`.
pub(crate) const RESIDENT_CASES: &str = "SELECT CAST(c.payload AS TEXT) FROM letter_cases c
     WHERE c.tenant = $1 AND c.letter_id IN
         (SELECT l.letter_id FROM letters l WHERE l.tenant = $1 AND l.signer_pesel = $2)";

pub(crate) const RESIDENT_DECISIONS: &str = "SELECT CAST(payload AS TEXT) FROM decision_deliveries
     WHERE tenant = $1 AND recipient_pesel = $2 ORDER BY at DESC, decision_id";

/// `$1` tenant, `$2` flagged only (as 0/1 or boolean), `$3` limit.
pub(crate) const ADMIN_LETTERS: &str = "SELECT CAST(payload AS TEXT) FROM letters
     WHERE tenant = $1 AND (flagged OR NOT $2) ORDER BY received_at DESC, letter_id LIMIT $3";

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table,
        key: String::new(),
        reason: e.to_string(),
    })
}

/// Joins letters with their cases and the decisions answering them.
pub(crate) fn letter_views(
    letters: Vec<String>,
    cases: Vec<String>,
    answers: Vec<String>,
) -> Result<Vec<LetterView>, StoreError> {
    let answers: Vec<DecisionDelivered> = answers
        .iter()
        .map(|a| decode("decision_deliveries", a))
        .collect::<Result<_, _>>()?;
    let cases: Vec<CaseRegistered> = cases
        .iter()
        .map(|c| decode("letter_cases", c))
        .collect::<Result<_, _>>()?;
    letters
        .iter()
        .map(|l| {
            let letter: Letter = decode("letters", l)?;
            let answer = answers
                .iter()
                .find(|a| a.in_reply_to.as_deref() == Some(letter.letter_id.as_str()))
                .cloned();
            let case = cases
                .iter()
                .find(|c| c.letter_id == letter.letter_id)
                .cloned();
            Ok(LetterView {
                state: match (&answer, &case) {
                    (Some(_), _) => LetterState::Answered,
                    (None, Some(_)) => LetterState::Registered,
                    (None, None) => LetterState::Received,
                },
                letter,
                case,
                answer,
            })
        })
        .collect()
}
