//! Which case a letter goes to: the tenant's routing rules, by form and title, with the option
//! to join the resident's open case in the same JRWA class.

use gsko_model::Letter;

/// One routing rule. A rule matches when every condition it has holds; the first matching
/// rule wins, then the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The CRD form's namespace (`Letter::form.namespace`), when the rule is for one form.
    pub form_namespace: Option<String>,
    /// A text the letter's title must contain (case-insensitive).
    pub title_contains: Option<String>,
    /// EZD's id of the JRWA class new cases are opened in (EZD RP `idWykaz`).
    pub class_id: String,
    /// The class's JRWA symbol, e.g. `3120`: open cases of the resident are matched by it.
    pub jrwa_symbol: String,
    /// Archival category of the class (`A`, `B5`, …).
    pub archival_category: String,
    /// Join the resident's open case in this class instead of opening a new one.
    pub join_open_case: bool,
    /// Title of a new case; `{title}` is replaced by the letter's title. EZD RP wants at least
    /// two words of three or more characters.
    pub case_title: String,
}

pub const DEFAULT_CASE_TITLE: &str = "Pismo: {title}";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub rules: Vec<Route>,
    pub default: Option<Route>,
}

impl Routing {
    pub fn choose(&self, letter: &Letter) -> Option<&Route> {
        self.rules
            .iter()
            .find(|r| r.matches(letter))
            .or(self.default.as_ref())
    }
}

impl Route {
    fn matches(&self, letter: &Letter) -> bool {
        let form_ok = match &self.form_namespace {
            None => true,
            Some(ns) => letter.form.as_ref().is_some_and(|f| &f.namespace == ns),
        };
        let title_ok = match &self.title_contains {
            None => true,
            Some(t) => letter.title.to_lowercase().contains(&t.to_lowercase()),
        };
        form_ok && title_ok
    }

    /// The new case's title, within EZD RP's 500 characters.
    pub fn title_for(&self, letter: &Letter) -> String {
        let title = letter.title.trim();
        let title = if title.is_empty() {
            "bez tytułu"
        } else {
            title
        };
        let t = self.case_title.replace("{title}", title);
        t.chars().take(500).collect()
    }
}
