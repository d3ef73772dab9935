//! GSKO configuration: a main TOML file (`gsko.toml`) and one file per tenant in a directory
//! (`tenants/1465011.toml`). Unknown keys are errors; every error names the file, the key and
//! the reason, so an admin can fix it without reading code. Secrets never sit in these files
//! in clear: they come from the environment, from a file, or as a SHA-256 hash (API keys).

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use gsko_model::Teryt;

/// The format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {reason}")]
    Io { file: PathBuf, reason: String },
    #[error("{file}: {reason}")]
    Syntax { file: PathBuf, reason: String },
    #[error("{file}: key `{key}`: {reason}")]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
}

impl ConfigError {
    fn invalid(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            file: file.to_owned(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// A secret value: named by where it comes from, never written in the config in clear.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// Name of an environment variable holding the value.
    Env(String),
    /// Path of a file holding the value (trailing newline trimmed).
    File(PathBuf),
    /// The value in clear: only accepted for the demo and tests.
    Value(String),
}

/// A resolved secret (`gsko_model::Secret`): its `Debug` never shows the value.
pub use gsko_model::Secret;

impl SecretSource {
    pub fn resolve(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Env(name) => std::env::var(name)
                .map(Secret::new)
                .map_err(|_| format!("environment variable {name} is not set")),
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| format!("cannot read secret file {}: {e}", p.display())),
            SecretSource::Value(v) => Ok(Secret::new(v.clone())),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainConfig {
    /// Config format version; must be 1.
    pub version: u32,
    /// Directory with one `<TERYT>.toml` per tenant, relative to the main file.
    #[serde(default = "default_tenants_dir")]
    pub tenants_dir: PathBuf,
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub projector: ProjectorConfig,
    /// Portal backends allowed to call the query service.
    #[serde(default)]
    pub portals: Vec<PortalConfig>,
    /// Resident login with Profil Zaufany through login.gov.pl (one SAML service provider for
    /// the deployment: the PESEL identifies the resident in every tenant); absent: only
    /// portal keys.
    #[serde(default)]
    pub login: Option<LoginConfig>,
}

/// The SAML service provider registered with Węzeł Krajowy, and resident sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// The SP's entity id as registered (its Issuer; the assertion's audience).
    pub entity_id: String,
    /// `ProviderName`, agreed at registration.
    pub provider_name: String,
    /// eIDAS SPType: `public` for a municipality, `private` otherwise.
    #[serde(default = "default_sp_type")]
    pub sp_type: String,
    /// The assertion consumer service as registered; defaults to `http.public_url` + `/login/acs`.
    #[serde(default)]
    pub acs_url: Option<String>,
    /// Węzeł Krajowy's entity id (the Issuer of its messages).
    pub idp_entity_id: String,
    pub sso_url: String,
    pub artifact_resolution_url: String,
    pub logout_url: String,
    /// PEM file with Węzeł Krajowy's signing certificate(s): only these are trusted.
    pub idp_certificates: PathBuf,
    /// The SP's signing certificate (PEM) and its EC P-256 key (PKCS#8 PEM).
    pub signing_certificate: PathBuf,
    pub signing_key: SecretSource,
    /// The SP's EC P-256 encryption key (PKCS#8 PEM); its certificate is registered with WK.
    pub encryption_key: SecretSource,
    /// The least level of assurance accepted: `low`, `substantial` or `high`.
    #[serde(default = "default_loa")]
    pub loa: String,
    /// Session signing keys, newest first (the first signs, all verify): each at least 32
    /// bytes. Rotate by putting a new key first and removing the old one an hour later.
    pub session_keys: Vec<SecretSource>,
    /// A session's lifetime without renewal, in minutes.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u32,
    /// The longest a login lasts, renewals included, in hours.
    #[serde(default = "default_session_max_hours")]
    pub session_max_hours: u32,
    /// Portal origins a login may return to with a one-time code (`https://portal.example`).
    #[serde(default)]
    pub return_origins: Vec<String>,
    /// Mark the session cookie `Secure` (turn off only for plain-HTTP development).
    #[serde(default = "default_true")]
    pub secure_cookie: bool,
    /// Clock difference tolerated in the assertion's validity window, in seconds.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_seconds: u32,
}

fn default_sp_type() -> String {
    "public".into()
}
fn default_loa() -> String {
    "substantial".into()
}
const fn default_session_minutes() -> u32 {
    15
}
const fn default_session_max_hours() -> u32 {
    8
}
const fn default_true() -> bool {
    true
}
const fn default_clock_skew() -> u32 {
    60
}

fn default_tenants_dir() -> PathBuf {
    PathBuf::from("tenants")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum DatabaseConfig {
    /// Production: PostgreSQL.
    Postgres {
        url: SecretSource,
        #[serde(default = "default_max_connections")]
        max_connections: u32,
    },
    /// Embedded: a SQLite file.
    Sqlite { path: PathBuf },
}

const fn default_max_connections() -> u32 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum BusConfig {
    /// Production: RabbitMQ over AMQP 0-9-1.
    Amqp {
        url: SecretSource,
        #[serde(default = "default_prefetch")]
        prefetch: u16,
        /// Retry ladder delays in seconds; after the last a message is parked.
        #[serde(default = "default_retry_delays")]
        retry_delays_secs: Vec<u64>,
    },
    /// Embedded: the in-process bus, journaled to a SQLite file so that a crash loses nothing.
    Memory {
        journal: Option<PathBuf>,
        #[serde(default = "default_prefetch")]
        prefetch: u16,
        #[serde(default = "default_retry_delays")]
        retry_delays_secs: Vec<u64>,
    },
}

const fn default_prefetch() -> u16 {
    1000
}

fn default_retry_delays() -> Vec<u64> {
    vec![1, 10, 60, 600]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// The address payment gateways reach this service at (`https://gsko.example.gov.pl`),
    /// used to build their notification URLs. Defaults to `http://<listen>`, which only a
    /// gateway simulator on the same machine can reach.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Send `Strict-Transport-Security`: set it when GSKO or the proxy in front of it serves
    /// HTTPS (GSKO itself speaks plain HTTP).
    #[serde(default)]
    pub hsts: bool,
    /// Requests per second each client (portal key, else address) may make on `/v1/`;
    /// 0 disables the limit.
    #[serde(default = "default_rate_limit_per_second")]
    pub rate_limit_per_second: f64,
    /// Requests a client may make at once above its rate (the token bucket's size).
    #[serde(default = "default_rate_burst")]
    pub rate_burst: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            body_limit: default_body_limit(),
            public_url: None,
            hsts: false,
            rate_limit_per_second: default_rate_limit_per_second(),
            rate_burst: default_rate_burst(),
        }
    }
}

const fn default_rate_limit_per_second() -> f64 {
    50.0
}

const fn default_rate_burst() -> u32 {
    100
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}

const fn default_body_limit() -> usize {
    64 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectorConfig {
    /// Events applied per database transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long to wait for a batch to fill once it has begun, in milliseconds.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Projector workers (competing consumers) in this process.
    #[serde(default = "default_workers")]
    pub workers: usize,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            batch_size: default_batch_size(),
            linger_ms: default_linger_ms(),
            workers: default_workers(),
        }
    }
}

const fn default_batch_size() -> usize {
    500
}
const fn default_linger_ms() -> u64 {
    20
}
const fn default_workers() -> usize {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// Portal vendor's name (appears in logs and metrics).
    pub name: String,
    /// SHA-256 (hex) of the API key; or `api_key` from env/file.
    #[serde(default)]
    pub api_key_sha256: Option<String>,
    #[serde(default)]
    pub api_key: Option<SecretSource>,
    /// TERYT codes this portal may read; `["*"]` for all tenants of the deployment.
    pub tenants: Vec<String>,
    /// May call the operations endpoints (rejected records, imports).
    #[serde(default)]
    pub admin: bool,
}

/// One municipality.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub teryt: String,
    pub name: String,
    #[serde(default)]
    pub radix: Option<RadixConfig>,
    /// Online payments: the tenant's merchant accounts at the gateways.
    #[serde(default)]
    pub payments: Option<PaymentsConfig>,
    /// Bank statements (MT940) of the tenant's collection account.
    #[serde(default)]
    pub bank: Option<BankConfig>,
    /// The municipality's ePUAP boxes, pulled with WS-Pull.
    #[serde(default)]
    pub epuap: Option<EpuapConfig>,
    /// The municipality's e-Doręczenia mailbox, for delivering decisions.
    #[serde(default)]
    pub edoreczenia: Option<EdoreczeniaConfig>,
    #[serde(default)]
    pub delivery: Option<DeliveryConfig>,
    /// The municipality's EZD: letters are registered there and their cases followed.
    #[serde(default)]
    pub ezd: Option<EzdConfig>,
    /// Browser origins (`https://ebok.gmina.pl`) whose pages may call this tenant's API
    /// directly (CORS); empty: only server-side portals.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// The tenant's EZD (document management). `product = "ezdrp"` (EZD RP, Integrator API v2)
/// is the one adapter so far.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EzdConfig {
    #[serde(default = "default_ezd_product")]
    pub product: String,
    /// Server root; the API is under `{api_url}/ezdrp/integrator/v2`.
    pub api_url: String,
    /// The SSO token endpoint, `https://<sso>/connect/token`.
    pub token_url: String,
    /// Host of the EZD web application (the API client id derives from it), e.g. `ezd.gmina.pl`.
    pub web_host: String,
    /// The office's id in EZD (podmiot, `pid`).
    pub podmiot_id: String,
    /// The API key's id (`aki`) and the key itself.
    pub api_key_id: String,
    pub api_key: SecretSource,
    /// The technical user's position (stanowisko) id, sent as header `SID`.
    pub stanowisko_id: String,
    /// Other origins (`https://files.ezd.gmina.pl`) EZD's download links may point to.
    #[serde(default)]
    pub allowed_file_origins: Vec<String>,
    /// Seconds between rounds over the open cases (a webhook starts one at once).
    #[serde(default = "default_ezd_poll_secs")]
    pub poll_secs: u64,
    /// How far each closed-cases search reaches back before the previous one ended.
    #[serde(default = "default_ezd_overlap_secs")]
    pub overlap_secs: u64,
    /// Outgoing documents whose file name starts with one of these are decisions to deliver.
    #[serde(default = "default_decision_prefixes")]
    pub decision_prefixes: Vec<String>,
    /// Where letters go: the first rule that matches, else `default_route`.
    #[serde(default)]
    pub routes: Vec<EzdRoute>,
    pub default_route: EzdRoute,
}

/// A routing rule: which JRWA class a letter's case is in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EzdRoute {
    /// Only letters of this CRD form (namespace of the document's root element).
    #[serde(default)]
    pub form: Option<String>,
    /// Only letters whose title contains this (case-insensitive).
    #[serde(default)]
    pub title_contains: Option<String>,
    /// EZD's id of the JRWA class (EZD RP `idWykaz`).
    pub class_id: String,
    /// The class's JRWA symbol, e.g. `3120`.
    pub jrwa_symbol: String,
    /// Archival category, e.g. `B5`.
    pub archival_category: String,
    /// Join the resident's open case in this class rather than open a new one.
    #[serde(default)]
    pub join_open_case: bool,
    /// New case title; `{title}` is the letter's title.
    #[serde(default = "default_case_title")]
    pub case_title: String,
}

fn default_ezd_product() -> String {
    "ezdrp".to_owned()
}
const fn default_ezd_poll_secs() -> u64 {
    60
}
const fn default_ezd_overlap_secs() -> u64 {
    3600
}
fn default_decision_prefixes() -> Vec<String> {
    vec!["Decyzja".to_owned(), "Postanowienie".to_owned()]
}
fn default_case_title() -> String {
    "Pismo: {title}".to_owned()
}

/// ePUAP (ESP) access of one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpuapConfig {
    /// WS-Pull endpoint: `https://ws.epuap.gov.pl/pk_external_ws/services/pull` (production) or
    /// `https://ws-int.epuap.gov.pl/pk_external_ws/services/pull` (integration).
    pub pull_url: String,
    /// The office's ePUAP identifier (`podmiot`), e.g. `umboleslawiec`.
    pub podmiot: String,
    /// Names of the boxes (skrytki) in PULL mode, e.g. `["skrytka"]`.
    pub boxes: Vec<String>,
    /// The system certificate registered in ePUAP (PEM).
    pub certificate: SecretSource,
    /// Its RSA private key (PEM).
    pub private_key: SecretSource,
    /// Where documents and attachments are kept by content hash; default
    /// `documents/<TERYT>` next to the main configuration file.
    #[serde(default)]
    pub documents: Option<PathBuf>,
    /// Cron expression (seconds first) of the pull.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Largest attachment accepted, in bytes (larger ones are kept out and flagged).
    #[serde(default = "default_max_attachment")]
    pub max_attachment_bytes: usize,
    /// COI's podpis-zaufany signing certificates (a PEM bundle). A letter's podpis zaufany
    /// counts as valid only when made with one of them; without this setting any certificate
    /// is accepted and each letter says so.
    #[serde(default)]
    pub pz_certificates: Option<SecretSource>,
    /// WS-Skrytka endpoint (`…/pk_external_ws/services/skrytka`): letters residents file
    /// through GSKO are submitted there (`nadaj`, with a UPP) when `filing = "epuap"`.
    #[serde(default)]
    pub skrytka_url: Option<String>,
    /// The PZ signing service tpSigning5 (`https://pz.gov.pl/ep-services/tpSigning5`):
    /// without it residents cannot file letters through GSKO in this tenant.
    #[serde(default)]
    pub tp_signing_url: Option<String>,
    /// Where a letter filed through GSKO goes once signed: into the office's ePUAP box (and
    /// back through the pull like any letter, with a UPP) or straight to the EZD connector.
    #[serde(default)]
    pub filing: FilingMode,
    /// The box filed letters are submitted to (a name from `boxes`); default: the first box.
    #[serde(default)]
    pub filing_box: Option<String>,
    /// URL prefixes a portal may ask the resident to be sent back to after signing a letter.
    #[serde(default)]
    pub allowed_return_urls: Vec<String>,
    /// WS-Doręczyciel endpoint (`…/pk_external_ws/services/doreczyciel`): decisions are
    /// delivered with `dorecz` (UPD) to residents' ePUAP boxes; the UPD comes back to the
    /// first of `boxes`.
    #[serde(default)]
    pub doreczyciel_url: Option<String>,
}

/// The office's e-Doręczenia mailbox (UA API, spec §4), for delivering decisions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdoreczeniaConfig {
    /// Token endpoint, e.g.
    /// `https://int-ow.edoreczenia.gov.pl/auth/realms/EDOR/protocol/openid-connect/token`.
    pub token_url: String,
    /// UA API base, e.g. `https://uaapi-int-ow.poczta-polska.pl/api/v1`.
    pub api_url: String,
    /// The office's address for electronic delivery (ADE), `AE:PL-…`.
    pub ade: String,
    /// The system's name as registered for the ADE (`<ADE>.SYSTEM.<name>`).
    pub system_name: String,
    /// The system certificate registered for the ADE (PEM) and its RSA key (PEM).
    pub certificate: SecretSource,
    pub private_key: SecretSource,
    /// Seconds between status checks of sent decisions.
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u64,
}

const fn default_poll_secs() -> u64 {
    60
}

/// How decisions are delivered in a tenant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// `auto` (default: e-Doręczenia when the recipient has an ADE address, else ePUAP),
    /// `epuap` (ePUAP first) or `e_doreczenia`.
    #[serde(default)]
    pub preferred: DeliveryPreferred,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryPreferred {
    #[default]
    Auto,
    Epuap,
    EDoreczenia,
}

/// Where a letter filed through GSKO is submitted once the resident signed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilingMode {
    /// `nadaj` to the office's own ePUAP box (UPP kept); the letter is then pulled like any.
    #[default]
    Epuap,
    /// Handed to the EZD connector directly (`letter.received` + `letter.register`).
    Ezd,
}

impl EpuapConfig {
    /// The box filed letters go to, as `/<podmiot>/<box>`.
    pub fn filing_box_address(&self) -> Option<String> {
        let name = self.filing_box.as_ref().or(self.boxes.first())?;
        Some(format!("/{}/{}", self.podmiot, name))
    }
}

const fn default_max_attachment() -> usize {
    50 * 1024 * 1024
}

/// Online payments of one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Where the gateway sends the resident back after paying, unless the request names one
    /// of `allowed_return_urls`.
    pub return_url: String,
    /// URL prefixes a portal may ask the resident to be sent back to.
    #[serde(default)]
    pub allowed_return_urls: Vec<String>,
    /// Merchant accounts by name (e.g. `taxes`, `waste`): municipalities often collect each
    /// levy on its own bank account, so one basket may become several orders.
    pub merchants: BTreeMap<String, MerchantConfig>,
}

/// One merchant account: the levies it collects and the gateways it is registered with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantConfig {
    /// Levy kinds as in the RADIX export (`property`, `waste_fee`, …).
    pub levies: Vec<String>,
    #[serde(default)]
    pub przelewy24: Option<P24MerchantConfig>,
    #[serde(default)]
    pub payu: Option<PayuMerchantConfig>,
}

impl MerchantConfig {
    /// The levies as the model's kinds, in the order configured; the error names the first
    /// unknown one.
    pub fn levy_kinds(&self) -> Result<Vec<gsko_model::LevyKind>, String> {
        self.levies
            .iter()
            .map(|l| {
                serde_json::from_value(serde_json::Value::String(l.clone()))
                    .map_err(|_| format!("unknown levy {l:?}"))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P24MerchantConfig {
    /// `https://secure.przelewy24.pl` or `https://sandbox.przelewy24.pl`.
    pub url: String,
    pub merchant_id: i64,
    /// Defaults to `merchant_id`.
    #[serde(default)]
    pub pos_id: Option<i64>,
    /// "Klucz do raportów" (API key).
    pub api_key: SecretSource,
    /// CRC key for `sign`.
    pub crc: SecretSource,
    #[serde(default = "default_gateway_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayuMerchantConfig {
    /// `https://secure.payu.com` or `https://secure.snd.payu.com`.
    pub url: String,
    pub pos_id: String,
    /// Defaults to `pos_id`.
    #[serde(default)]
    pub client_id: Option<String>,
    pub client_secret: SecretSource,
    /// The POS "second key" that signs notifications.
    pub second_key: SecretSource,
    #[serde(default = "default_gateway_timeout")]
    pub timeout_secs: u64,
}

const fn default_gateway_timeout() -> u64 {
    15
}

/// MT940 statements of the tenant's bank account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankConfig {
    /// The bank drops statements into its `inbox/`; GSKO moves each to `processed/` or
    /// `failed/`.
    pub directory: PathBuf,
    /// `:86:` layout: `separated` (PKO BP, Pekao, ING: `~`-separated subfields) or `mbank`.
    #[serde(default = "default_layout")]
    pub layout: String,
    /// Code page of the files: `cp852`, `cp1250`, `iso-8859-2` or `utf-8`.
    #[serde(default = "default_bank_charset")]
    pub charset: String,
    /// Cron expression (seconds first) of the statement pickup.
    #[serde(default = "default_schedule")]
    pub schedule: String,
}

fn default_layout() -> String {
    "separated".to_owned()
}

fn default_bank_charset() -> String {
    "cp852".to_owned()
}

/// How settled payments reach the ledger.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingConfig {
    /// Where the ledger picks up GSKO's payment files; default `<radix.directory>/booking`.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// `xml` (the GSKO payment contract, schemas/radix/radix-payments-v1.xsd) or `elixir0`.
    #[serde(default = "default_booking_format")]
    pub format: String,
    /// Elixir-0 only: the municipality's collection account (beneficiary when a payment has
    /// no virtual account).
    #[serde(default)]
    pub collection_account: Option<String>,
    /// Elixir-0 only: the beneficiary's name and address as the ledger expects it; default
    /// the tenant's name.
    #[serde(default)]
    pub beneficiary_name: Option<String>,
    /// Elixir-0 only: the ordering account written for gateway payments, per gateway
    /// (`przelewy24 = "…"`, `payu = "…"`: the gateway's payout account).
    #[serde(default)]
    pub gateway_accounts: BTreeMap<String, String>,
    /// Elixir-0 only: the ordering account written for bank transfers (the command does not
    /// carry the payer's account); default the collection account.
    #[serde(default)]
    pub bank_transfer_account: Option<String>,
    /// Elixir-0 only: code page (`utf-8`, `cp1250`, `cp852`).
    #[serde(default)]
    pub charset: Option<String>,
}

fn default_booking_format() -> String {
    "xml".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadixConfig {
    /// The tenant's RADIX directory: the domain system drops exports into its `inbox/`; GSKO
    /// moves each to `processed/` (or `failed/`, with the reasons) once its events are confirmed.
    pub directory: PathBuf,
    /// Optional HTTP(S) URL to fetch an export from on each run.
    #[serde(default)]
    pub url: Option<String>,
    /// Cron expression (seconds first, `sec min hour day month weekday`) of the sync.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Column mappings for `*.csv` exports by file-name prefix, e.g. `[radix.csv.podatnicy]`
    /// for `podatnicy*.csv` (see the RADIX connector's `CsvMapping`); `*.xml` files are read as
    /// the GSKO export contract.
    #[serde(default)]
    pub csv: Option<toml::Table>,
    /// Booking of settled payments into the ledger (`[radix.booking]`).
    #[serde(default)]
    pub booking: Option<BookingConfig>,
}

fn default_schedule() -> String {
    "0 */5 * * * *".to_owned()
}

/// A portal key ready for lookup: the hash of the key, the tenants it may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalKey {
    pub name: String,
    pub key_sha256: [u8; 32],
    /// `None` = every tenant of the deployment.
    pub tenants: Option<Vec<Teryt>>,
    pub admin: bool,
}

/// The whole configuration, loaded and validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub main: MainConfig,
    pub tenants: BTreeMap<Teryt, (PathBuf, TenantConfig)>,
    pub portal_keys: Vec<PortalKey>,
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.to_owned(),
        reason: e.to_string(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        // toml's message already names the key and the line; keep it on one line.
        let reason = e
            .to_string()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" | ");
        ConfigError::Syntax {
            file: path.to_owned(),
            reason,
        }
    })
}

impl Config {
    /// Loads the main file and every tenant file, resolving secrets that the daemon needs.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let main: MainConfig = parse(path, &read(path)?)?;
        if main.version != CONFIG_VERSION {
            return Err(ConfigError::invalid(
                path,
                "version",
                format!(
                    "unsupported config version {}, this build reads {CONFIG_VERSION}",
                    main.version
                ),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let dir = base.join(&main.tenants_dir);
        let mut tenants = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            ConfigError::invalid(
                path,
                "tenants_dir",
                format!("cannot read directory {}: {e}", dir.display()),
            )
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            let t: TenantConfig = parse(&file, &read(&file)?)?;
            let teryt = Teryt::from_str(&t.teryt)
                .map_err(|e| ConfigError::invalid(&file, "teryt", e.to_string()))?;
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem != teryt.as_str() {
                return Err(ConfigError::invalid(
                    &file,
                    "teryt",
                    format!("tenant file must be named after its TERYT code ({teryt}.toml)"),
                ));
            }
            if let Some(r) = &t.radix {
                validate_radix(&file, base, r)?;
            }
            if let Some(p) = &t.payments {
                validate_payments(&file, p)?;
            }
            if let Some(b) = &t.bank {
                validate_bank(&file, b)?;
            }
            if let Some(e) = &t.epuap {
                validate_url(&file, "epuap.pull_url", &e.pull_url)?;
                if e.boxes.is_empty() || e.podmiot.is_empty() {
                    return Err(ConfigError::invalid(
                        &file,
                        "epuap.boxes",
                        "name the podmiot and at least one box",
                    ));
                }
                for (key, secret) in [
                    ("epuap.certificate", &e.certificate),
                    ("epuap.private_key", &e.private_key),
                ] {
                    secret
                        .resolve()
                        .map_err(|r| ConfigError::invalid(&file, key, r))?;
                }
                for (key, url) in [
                    ("epuap.skrytka_url", &e.skrytka_url),
                    ("epuap.tp_signing_url", &e.tp_signing_url),
                    ("epuap.doreczyciel_url", &e.doreczyciel_url),
                ] {
                    if let Some(url) = url {
                        validate_url(&file, key, url)?;
                    }
                }
                for u in &e.allowed_return_urls {
                    validate_url(&file, "epuap.allowed_return_urls", u)?;
                }
                if let Some(b) = &e.filing_box {
                    if !e.boxes.contains(b) {
                        return Err(ConfigError::invalid(
                            &file,
                            "epuap.filing_box",
                            format!("{b:?} is not one of the tenant's boxes"),
                        ));
                    }
                }
                if e.filing == FilingMode::Epuap
                    && e.tp_signing_url.is_some()
                    && e.skrytka_url.is_none()
                {
                    return Err(ConfigError::invalid(
                        &file,
                        "epuap.skrytka_url",
                        "filing = \"epuap\" submits signed letters through WS-Skrytka: name its URL (or set filing = \"ezd\")",
                    ));
                }
                if let Some(pz) = &e.pz_certificates {
                    let pem = pz
                        .resolve()
                        .map_err(|r| ConfigError::invalid(&file, "epuap.pz_certificates", r))?;
                    if !pem.expose().contains("-----BEGIN CERTIFICATE-----") {
                        return Err(ConfigError::invalid(
                            &file,
                            "epuap.pz_certificates",
                            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        ));
                    }
                }
            }
            if let Some(e) = &t.edoreczenia {
                validate_url(&file, "edoreczenia.token_url", &e.token_url)?;
                validate_url(&file, "edoreczenia.api_url", &e.api_url)?;
                gsko_model::AdeAddress::parse(&e.ade)
                    .map_err(|r| ConfigError::invalid(&file, "edoreczenia.ade", r.to_string()))?;
                if e.system_name.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        &file,
                        "edoreczenia.system_name",
                        "name the system registered for the ADE",
                    ));
                }
                for (key, secret) in [
                    ("edoreczenia.certificate", &e.certificate),
                    ("edoreczenia.private_key", &e.private_key),
                ] {
                    secret
                        .resolve()
                        .map_err(|r| ConfigError::invalid(&file, key, r))?;
                }
            }
            if let Some(e) = &t.ezd {
                validate_ezd(&file, e)?;
            }
            for o in &t.cors_origins {
                validate_origin(&file, o)?;
            }
            tenants.insert(teryt, (file, t));
        }
        if tenants.is_empty() {
            return Err(ConfigError::invalid(
                path,
                "tenants_dir",
                format!("no tenant files (*.toml) in {}", dir.display()),
            ));
        }
        let portal_keys = portal_keys(path, &main, &tenants)?;
        validate_main(path, &main)?;
        Ok(Config {
            path: path.to_owned(),
            main,
            tenants,
            portal_keys,
        })
    }

    pub fn tenant_name(&self, t: &Teryt) -> Option<&str> {
        self.tenants.get(t).map(|(_, c)| c.name.as_str())
    }

    /// Resolves a path from a config file relative to the main file's directory.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn validate_origin(file: &Path, origin: &str) -> Result<(), ConfigError> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            file,
            "cors_origins",
            format!(
                "{origin:?} is not an origin (scheme://host[:port], no path or trailing slash)"
            ),
        ))
    }
}

fn validate_ezd(file: &Path, e: &EzdConfig) -> Result<(), ConfigError> {
    if e.product != "ezdrp" {
        return Err(ConfigError::invalid(
            file,
            "ezd.product",
            format!("unknown EZD product {:?} (known: \"ezdrp\")", e.product),
        ));
    }
    validate_url(file, "ezd.api_url", &e.api_url)?;
    validate_url(file, "ezd.token_url", &e.token_url)?;
    for o in &e.allowed_file_origins {
        validate_url(file, "ezd.allowed_file_origins", o)?;
    }
    for (key, v) in [
        ("ezd.web_host", &e.web_host),
        ("ezd.podmiot_id", &e.podmiot_id),
        ("ezd.api_key_id", &e.api_key_id),
        ("ezd.stanowisko_id", &e.stanowisko_id),
    ] {
        if v.trim().is_empty() {
            return Err(ConfigError::invalid(file, key, "must not be empty"));
        }
    }
    e.api_key
        .resolve()
        .map_err(|r| ConfigError::invalid(file, "ezd.api_key", r))?;
    if e.poll_secs == 0 {
        return Err(ConfigError::invalid(
            file,
            "ezd.poll_secs",
            "must be at least 1",
        ));
    }
    let routes = e
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("ezd.routes[{i}]"), r))
        .chain(std::iter::once((
            "ezd.default_route".to_owned(),
            &e.default_route,
        )));
    for (key, r) in routes {
        if r.class_id.trim().is_empty() || r.archival_category.trim().is_empty() {
            return Err(ConfigError::invalid(
                file,
                format!("{key}.class_id"),
                "class_id and archival_category must not be empty",
            ));
        }
        if r.jrwa_symbol.is_empty()
            || r.jrwa_symbol.len() > 4
            || !r.jrwa_symbol.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ConfigError::invalid(
                file,
                format!("{key}.jrwa_symbol"),
                "a JRWA symbol is 1 to 4 digits",
            ));
        }
        if !r.case_title.contains("{title}") && r.case_title.split_whitespace().count() < 2 {
            return Err(ConfigError::invalid(
                file,
                format!("{key}.case_title"),
                "EZD wants a case title of at least two words",
            ));
        }
    }
    Ok(())
}

fn validate_url(file: &Path, key: &str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::invalid(
            file,
            key,
            format!("{url:?} is not an http(s) URL"),
        ));
    }
    Ok(())
}

fn validate_payments(file: &Path, p: &PaymentsConfig) -> Result<(), ConfigError> {
    validate_url(file, "payments.return_url", &p.return_url)?;
    for u in &p.allowed_return_urls {
        validate_url(file, "payments.allowed_return_urls", u)?;
    }
    if p.merchants.is_empty() {
        return Err(ConfigError::invalid(
            file,
            "payments.merchants",
            "at least one merchant account is needed",
        ));
    }
    let mut levy_owner: std::collections::HashMap<gsko_model::LevyKind, &str> =
        std::collections::HashMap::new();
    for (name, m) in &p.merchants {
        let key = format!("payments.merchants.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::invalid(
                file,
                &key,
                "merchant names may hold only letters, digits, '_' and '-' (they appear in URLs)",
            ));
        }
        if m.przelewy24.is_none() && m.payu.is_none() {
            return Err(ConfigError::invalid(
                file,
                &key,
                "needs a [przelewy24] or [payu] section",
            ));
        }
        if m.levies.is_empty() {
            return Err(ConfigError::invalid(
                file,
                format!("{key}.levies"),
                "names no levy",
            ));
        }
        let kinds = m
            .levy_kinds()
            .map_err(|reason| ConfigError::invalid(file, format!("{key}.levies"), reason))?;
        for (levy, kind) in m.levies.iter().zip(kinds) {
            if let Some(other) = levy_owner.insert(kind, name) {
                return Err(ConfigError::invalid(
                    file,
                    format!("{key}.levies"),
                    format!("levy {levy:?} is already collected by merchant {other:?}"),
                ));
            }
        }
        if let Some(c) = &m.przelewy24 {
            validate_url(file, &format!("{key}.przelewy24.url"), &c.url)?;
            for (k, secret) in [("api_key", &c.api_key), ("crc", &c.crc)] {
                secret
                    .resolve()
                    .map_err(|r| ConfigError::invalid(file, format!("{key}.przelewy24.{k}"), r))?;
            }
        }
        if let Some(c) = &m.payu {
            validate_url(file, &format!("{key}.payu.url"), &c.url)?;
            for (k, secret) in [
                ("client_secret", &c.client_secret),
                ("second_key", &c.second_key),
            ] {
                secret
                    .resolve()
                    .map_err(|r| ConfigError::invalid(file, format!("{key}.payu.{k}"), r))?;
            }
        }
    }
    Ok(())
}

fn validate_bank(file: &Path, b: &BankConfig) -> Result<(), ConfigError> {
    if !["separated", "mbank"].contains(&b.layout.as_str()) {
        return Err(ConfigError::invalid(
            file,
            "bank.layout",
            format!("{:?} is not one of separated, mbank", b.layout),
        ));
    }
    let known: Result<gsko_codepages::TextEncoding, _> =
        serde_json::from_value(serde_json::Value::String(b.charset.clone()));
    if known.is_err() {
        return Err(ConfigError::invalid(
            file,
            "bank.charset",
            format!("unknown code page {:?}", b.charset),
        ));
    }
    Ok(())
}

fn validate_http(path: &Path, h: &HttpConfig) -> Result<(), ConfigError> {
    if !h.rate_limit_per_second.is_finite() || h.rate_limit_per_second < 0.0 {
        return Err(ConfigError::invalid(
            path,
            "http.rate_limit_per_second",
            format!(
                "{} is not a number of requests per second (0 or more; 0 disables the limit)",
                h.rate_limit_per_second
            ),
        ));
    }
    if h.rate_limit_per_second > 0.0 && h.rate_burst == 0 {
        return Err(ConfigError::invalid(
            path,
            "http.rate_burst",
            "must be at least 1 when http.rate_limit_per_second is set",
        ));
    }
    Ok(())
}

fn validate_main(path: &Path, main: &MainConfig) -> Result<(), ConfigError> {
    if main.projector.batch_size == 0 || main.projector.batch_size > 10_000 {
        return Err(ConfigError::invalid(
            path,
            "projector.batch_size",
            "must be between 1 and 10000",
        ));
    }
    if main.projector.workers == 0 {
        return Err(ConfigError::invalid(
            path,
            "projector.workers",
            "must be at least 1",
        ));
    }
    if main.http.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(ConfigError::invalid(
            path,
            "http.listen",
            format!("{:?} is not an address:port", main.http.listen),
        ));
    }
    validate_http(path, &main.http)?;
    if let Some(l) = &main.login {
        validate_login(path, l)?;
    }
    let (url, key) = match &main.database {
        DatabaseConfig::Postgres { url, .. } => (Some(url), "database.url"),
        DatabaseConfig::Sqlite { .. } => (None, ""),
    };
    if let Some(u) = url {
        u.resolve()
            .map_err(|r| ConfigError::invalid(path, key, r))?;
    }
    match &main.bus {
        BusConfig::Amqp {
            url,
            retry_delays_secs,
            prefetch,
        } => {
            url.resolve()
                .map_err(|r| ConfigError::invalid(path, "bus.url", r))?;
            check_bus(path, retry_delays_secs, *prefetch)?;
        }
        BusConfig::Memory {
            retry_delays_secs,
            prefetch,
            ..
        } => check_bus(path, retry_delays_secs, *prefetch)?,
    }
    Ok(())
}

fn validate_login(path: &Path, l: &LoginConfig) -> Result<(), ConfigError> {
    for (key, url) in [
        ("login.sso_url", &l.sso_url),
        ("login.artifact_resolution_url", &l.artifact_resolution_url),
        ("login.logout_url", &l.logout_url),
    ] {
        validate_url(path, key, url)?;
    }
    if let Some(acs) = &l.acs_url {
        validate_url(path, "login.acs_url", acs)?;
    }
    if !matches!(l.loa.as_str(), "low" | "substantial" | "high") {
        return Err(ConfigError::invalid(
            path,
            "login.loa",
            format!("{:?} is not one of low, substantial, high", l.loa),
        ));
    }
    if l.session_keys.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "login.session_keys",
            "needs at least one key",
        ));
    }
    for (i, k) in l.session_keys.iter().enumerate() {
        let key = format!("login.session_keys[{i}]");
        let v = k
            .resolve()
            .map_err(|r| ConfigError::invalid(path, &key, r))?;
        if v.expose().len() < 32 {
            return Err(ConfigError::invalid(
                path,
                key,
                "a session key needs at least 32 bytes (e.g. `openssl rand -hex 32`)",
            ));
        }
    }
    if l.session_minutes == 0 || l.session_max_hours == 0 {
        return Err(ConfigError::invalid(
            path,
            "login.session_minutes",
            "session_minutes and session_max_hours must be at least 1",
        ));
    }
    for o in &l.return_origins {
        validate_origin(path, o).map_err(|_| {
            ConfigError::invalid(
                path,
                "login.return_origins",
                format!("{o:?} is not an origin (scheme://host[:port])"),
            )
        })?;
    }
    for (key, secret) in [
        ("login.signing_key", &l.signing_key),
        ("login.encryption_key", &l.encryption_key),
    ] {
        secret
            .resolve()
            .map_err(|r| ConfigError::invalid(path, key, r))?;
    }
    Ok(())
}

fn check_bus(path: &Path, delays: &[u64], prefetch: u16) -> Result<(), ConfigError> {
    if delays.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "bus.retry_delays_secs",
            "needs at least one delay",
        ));
    }
    if prefetch == 0 {
        return Err(ConfigError::invalid(
            path,
            "bus.prefetch",
            "must be at least 1",
        ));
    }
    Ok(())
}

fn validate_radix(file: &Path, _base: &Path, r: &RadixConfig) -> Result<(), ConfigError> {
    cron::Schedule::from_str(&r.schedule).map_err(|e| {
        ConfigError::invalid(
            file,
            "radix.schedule",
            format!(
                "{:?} is not a cron expression (sec min hour day month weekday): {e}",
                r.schedule
            ),
        )
    })?;
    if let Some(u) = &r.url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(ConfigError::invalid(
                file,
                "radix.url",
                format!("{u:?} is not an http(s) URL"),
            ));
        }
    }
    Ok(())
}

fn portal_keys(
    path: &Path,
    main: &MainConfig,
    tenants: &BTreeMap<Teryt, (PathBuf, TenantConfig)>,
) -> Result<Vec<PortalKey>, ConfigError> {
    let mut keys = Vec::new();
    for (i, p) in main.portals.iter().enumerate() {
        let key = |k: &str| format!("portals[{i}].{k}");
        let hash = match (&p.api_key_sha256, &p.api_key) {
            (Some(h), None) => {
                let bytes = hex::decode(h.trim())
                    .map_err(|_| ConfigError::invalid(path, key("api_key_sha256"), "is not hex"))?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    ConfigError::invalid(
                        path,
                        key("api_key_sha256"),
                        "must be 64 hex digits (SHA-256)",
                    )
                })?
            }
            (None, Some(src)) => sha256(
                src.resolve()
                    .map_err(|r| ConfigError::invalid(path, key("api_key"), r))?
                    .expose()
                    .as_bytes(),
            ),
            _ => {
                return Err(ConfigError::invalid(
                    path,
                    key("api_key"),
                    "give exactly one of api_key_sha256 or api_key",
                ))
            }
        };
        let scope = if p.tenants.iter().any(|t| t == "*") {
            None
        } else {
            let mut v = Vec::new();
            for t in &p.tenants {
                let teryt = Teryt::from_str(t).map_err(|e| {
                    ConfigError::invalid(path, key("tenants"), format!("{t:?}: {e}"))
                })?;
                if !tenants.contains_key(&teryt) {
                    return Err(ConfigError::invalid(
                        path,
                        key("tenants"),
                        format!("tenant {teryt} has no file in tenants_dir"),
                    ));
                }
                v.push(teryt);
            }
            Some(v)
        };
        if keys.iter().any(|k: &PortalKey| k.key_sha256 == hash) {
            return Err(ConfigError::invalid(
                path,
                key("api_key"),
                "the same key is configured twice",
            ));
        }
        keys.push(PortalKey {
            name: p.name.clone(),
            key_sha256: hash,
            tenants: scope,
            admin: p.admin,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    const MAIN: &str = r#"
version = 1
[database]
kind = "sqlite"
path = "gsko.sqlite"
[bus]
kind = "memory"
[[portals]]
name = "portal-a"
api_key = { value = "k1" }
tenants = ["1465011"]
"#;

    #[test]
    fn loads_a_valid_configuration() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "gsko.toml", MAIN);
        write(
            d.path(),
            "tenants/1465011.toml",
            "teryt = \"1465011\"\nname = \"Warszawa\"\n[radix]\ndirectory = \"in\"\n",
        );
        let c = Config::load(&d.path().join("gsko.toml")).unwrap();
        assert_eq!(c.tenants.len(), 1);
        assert_eq!(c.portal_keys[0].key_sha256, sha256(b"k1"));
    }

    #[test]
    fn login_is_validated_key_by_key() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "tenants/1465011.toml",
            "teryt = \"1465011\"\nname = \"W\"\n",
        );
        let login = |extra: &str, keys: &str| {
            format!(
                r#"{MAIN}[login]
entity_id = "gsko.test"
provider_name = "GSKO"
idp_entity_id = "login.gov.pl"
sso_url = "https://login.gov.pl/login/SingleSignOnService"
artifact_resolution_url = "https://login.gov.pl/login-services/idpArtifactResolutionService"
logout_url = "https://login.gov.pl/login-services/singleLogoutService"
idp_certificates = "wk.pem"
signing_certificate = "sig.pem"
signing_key = {{ value = "k" }}
encryption_key = {{ value = "k" }}
session_keys = [{keys}]
{extra}
"#
            )
        };
        let good_key = r#"{ value = "0123456789abcdef0123456789abcdef" }"#;
        let load = |text: String| {
            write(d.path(), "gsko.toml", &text);
            Config::load(&d.path().join("gsko.toml")).map(|c| c.main.login.unwrap())
        };
        let l = load(login("", good_key)).unwrap();
        assert_eq!(
            (l.loa.as_str(), l.session_minutes, l.secure_cookie),
            ("substantial", 15, true)
        );
        let cases = [
            (login("", r#"{ value = "short" }"#), "login.session_keys[0]"),
            (login("", ""), "login.session_keys"),
            (login("loa = \"medium\"", good_key), "login.loa"),
            (
                login("return_origins = [\"https://portal.example/x\"]", good_key),
                "login.return_origins",
            ),
            (login("acs_url = \"ftp://x\"", good_key), "login.acs_url"),
            (
                login("session_minutes = 0", good_key),
                "login.session_minutes",
            ),
        ];
        for (text, key) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(&format!("key `{key}`")), "{key}: {e}");
        }
    }

    #[test]
    fn cors_origins_must_be_origins() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "gsko.toml", MAIN);
        let tenant = |origins: &str| {
            format!("teryt = \"1465011\"\nname = \"W\"\ncors_origins = [{origins}]\n")
        };
        write(
            d.path(),
            "tenants/1465011.toml",
            &tenant("\"https://ebok.warszawa.example\", \"http://localhost:3000\""),
        );
        let c = Config::load(&d.path().join("gsko.toml")).unwrap();
        assert_eq!(c.tenants.values().next().unwrap().1.cors_origins.len(), 2);
        for bad in ["\"https://ebok.example/\"", "\"ebok.example\"", "\"*\""] {
            write(d.path(), "tenants/1465011.toml", &tenant(bad));
            let e = Config::load(&d.path().join("gsko.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("key `cors_origins`"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "gsko.toml", MAIN);
        write(d.path(), "tenants/1465011.toml", "teryt = \"1465011\"\nname = \"Warszawa\"\n[radix]\ndirectory = \"in\"\nshedule = \"x\"\n");
        let e = Config::load(&d.path().join("gsko.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1465011.toml"), "{e}");
        assert!(e.contains("shedule"), "{e}");
        assert!(e.contains("line 5"), "{e}");
    }

    #[test]
    fn bad_cron_and_bad_teryt_are_named() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "gsko.toml", MAIN);
        write(d.path(), "tenants/1465011.toml", "teryt = \"1465011\"\nname = \"W\"\n[radix]\ndirectory = \"in\"\nschedule = \"every day\"\n");
        let e = Config::load(&d.path().join("gsko.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `radix.schedule`"), "{e}");
        write(
            d.path(),
            "tenants/1465011.toml",
            "teryt = \"1465017\"\nname = \"W\"\n",
        );
        let e = Config::load(&d.path().join("gsko.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `teryt`") && e.contains("kind digit"), "{e}");
    }

    #[test]
    fn epuap_filing_settings_default_and_are_checked() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "gsko.toml", MAIN);
        let epuap = |extra: &str| {
            format!(
                "teryt = \"1465011\"\nname = \"W\"\n[epuap]\npull_url = \"https://ws.example/pull\"\npodmiot = \"um\"\nboxes = [\"skrytka\", \"druga\"]\ncertificate = {{ value = \"c\" }}\nprivate_key = {{ value = \"k\" }}\n{extra}"
            )
        };
        write(d.path(), "tenants/1465011.toml", &epuap(""));
        let c = Config::load(&d.path().join("gsko.toml")).unwrap();
        let e = c.tenants.values().next().unwrap().1.epuap.clone().unwrap();
        assert_eq!(e.filing, FilingMode::Epuap);
        assert_eq!(e.tp_signing_url, None);
        assert_eq!(e.filing_box_address().as_deref(), Some("/um/skrytka"));
        write(
            d.path(),
            "tenants/1465011.toml",
            &epuap("tp_signing_url = \"https://pz.example/tp\"\nfiling = \"ezd\"\nfiling_box = \"druga\"\n"),
        );
        let c = Config::load(&d.path().join("gsko.toml")).unwrap();
        let e = c.tenants.values().next().unwrap().1.epuap.clone().unwrap();
        assert_eq!(e.filing, FilingMode::Ezd);
        assert_eq!(e.filing_box_address().as_deref(), Some("/um/druga"));
        for (extra, key) in [
            ("filing_box = \"trzecia\"\n", "epuap.filing_box"),
            ("tp_signing_url = \"pz.example\"\n", "epuap.tp_signing_url"),
            (
                "tp_signing_url = \"https://pz.example/tp\"\n",
                "epuap.skrytka_url",
            ),
            (
                "allowed_return_urls = [\"portal\"]\n",
                "epuap.allowed_return_urls",
            ),
        ] {
            write(d.path(), "tenants/1465011.toml", &epuap(extra));
            let err = Config::load(&d.path().join("gsko.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }

    #[test]
    fn portal_scoped_to_unknown_tenant_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "gsko.toml",
            &MAIN.replace("[\"1465011\"]", "[\"0201043\"]"),
        );
        write(
            d.path(),
            "tenants/1465011.toml",
            "teryt = \"1465011\"\nname = \"W\"\n",
        );
        let e = Config::load(&d.path().join("gsko.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("portals[0].tenants") && e.contains("0201043"),
            "{e}"
        );
    }

    #[test]
    fn rate_limit_settings_default_and_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let tenant = "teryt = \"1465011\"\nname = \"W\"\n";
        write(d.path(), "tenants/1465011.toml", tenant);
        write(d.path(), "gsko.toml", MAIN);
        let c = Config::load(&d.path().join("gsko.toml")).unwrap();
        assert_eq!(c.main.http.rate_limit_per_second, 50.0);
        assert_eq!(c.main.http.rate_burst, 100);
        assert!(!c.main.http.hsts);
        let load = |http: &str| {
            write(d.path(), "gsko.toml", &format!("{MAIN}[http]\n{http}\n"));
            Config::load(&d.path().join("gsko.toml")).map(|c| c.main.http)
        };
        let e = load("rate_limit_per_second = -1.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `http.rate_limit_per_second`"), "{e}");
        let e = load("rate_limit_per_second = nan").unwrap_err().to_string();
        assert!(e.contains("key `http.rate_limit_per_second`"), "{e}");
        let e = load("rate_burst = 0").unwrap_err().to_string();
        assert!(e.contains("key `http.rate_burst`"), "{e}");
        // Off: the burst does not matter.
        let h = load("rate_limit_per_second = 0.0\nrate_burst = 0\nhsts = true").unwrap();
        assert!(h.hsts);
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
