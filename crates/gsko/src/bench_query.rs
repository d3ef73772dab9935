//! `gsko bench query`: resident queries per second and their p50/p99 latency on loopback with
//! N residents in the view, measured, not asserted.
//!
//! 1. Seed: a PostgreSQL database (`gsko_bench_query` unless `--database-url` names another) is
//!    filled with N residents across five tenants through the store's own `Store::apply`, as
//!    the projector writes them: a taxpayer with a PESEL, a property tax account (every tenth
//!    shared with a co-owner), two liabilities with four installments each, five postings and a
//!    balance. A marker table records how many residents are in; a later run with the same N
//!    reuses the database, one with a larger N seeds only the missing residents (`apply`
//!    ignores what it already has), one with a smaller N starts over.
//! 2. Serve: the query service as the daemon builds it — the audit log on (production audits
//!    every read, so each answer waits for its audit entry), the rate limit off — on
//!    127.0.0.1:0, in this process.
//! 3. Load: a closed loop of `--connections` keep-alive connections, each sending its next
//!    request when the previous answer has been read, for a random resident of the N each time;
//!    a warm-up is not counted. One row per endpoint.
//!
//! The generator runs in the same process and on the same two cores as the service and the
//! database, so the numbers are those of a whole box, not of the service alone.

use crate::bench::{fresh_database_named, peak_rss_kb, reset_peak_rss, tempfile_dir};
use anyhow::{bail, Context, Result};
use gsko_config::PortalKey;
use gsko_model::{
    AccountHolder, Address, Amount, Balance, ContactChannel, ContactKind, Decision, Event,
    EventData, HolderRole, Installment, LedgerPosting, LevyKind, Liability, Nrb, Pesel,
    PostingKind, TaxAccount, Taxpayer, TaxpayerKind, Teryt,
};
use gsko_store::{PgStore, Store};
use rand::{Rng, SeedableRng};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct QueryBenchOptions {
    pub residents: usize,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// The benchmark's own database; created when missing.
    pub database_url: String,
    /// Concurrent `apply` callers while seeding.
    pub writers: usize,
    /// Run `wrk` too when it is installed.
    pub wrk: bool,
}

/// Residents are spread round-robin over the first five tenants of the simulator's catalogue.
const TENANTS: usize = 5;
/// Residents per `apply` call (ten events each).
const RESIDENTS_PER_BATCH: usize = 200;
const EVENT_SOURCE: &str = "/gsko/bench-query";
/// Distinct residents in `wrk`'s script (it cannot compute PESELs itself).
const WRK_SAMPLE: usize = 2000;
/// Error answers printed per row; the rest are only counted.
const ERRORS_SHOWN: usize = 5;

/// One line of the table.
struct Row {
    caller: &'static str,
    endpoint: &'static str,
    requests: u64,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

#[derive(Clone, Copy)]
enum Endpoint {
    TenantSummary,
    TenantLiabilities,
    AllSummaries,
}

impl Endpoint {
    const ALL: [Endpoint; 3] = [
        Endpoint::TenantSummary,
        Endpoint::TenantLiabilities,
        Endpoint::AllSummaries,
    ];

    fn label(self) -> &'static str {
        match self {
            Endpoint::TenantSummary => "/v1/tenants/{teryt}/resident/summary",
            Endpoint::TenantLiabilities => "/v1/tenants/{teryt}/resident/liabilities",
            Endpoint::AllSummaries => "/v1/resident/summary",
        }
    }

    fn path(self, tenant: &Teryt) -> String {
        match self {
            Endpoint::TenantSummary => format!("/v1/tenants/{tenant}/resident/summary"),
            Endpoint::TenantLiabilities => format!("/v1/tenants/{tenant}/resident/liabilities"),
            Endpoint::AllSummaries => "/v1/resident/summary".to_owned(),
        }
    }
}

/// The N residents as the load generator names them: resident `n` lives in tenant `n % 5` and
/// has the PESEL [`resident_pesel`]`(n)`.
pub(crate) struct Residents {
    tenants: Vec<Teryt>,
    count: usize,
    /// The portal backend's API key (random per run; the service knows only its hash).
    portal_key: String,
    /// Resident mode: the session tokens of the sampled residents (see [`Residents::pick`]),
    /// each resident asking for their own data; `None`: the portal asks, naming the resident.
    /// Sorted by resident index.
    sessions: Option<Vec<(usize, String)>>,
}

impl Residents {
    /// Distance between two sampled residents (`wrk`'s, and the ones with a session).
    fn sample_step(&self) -> usize {
        self.count / WRK_SAMPLE.min(self.count)
    }

    /// The next resident to ask about: any of the N for a portal; one of the sampled residents
    /// with a session in resident mode.
    fn pick(&self, rng: &mut impl Rng) -> usize {
        match &self.sessions {
            None => rng.gen_range(0..self.count),
            Some(s) => s[rng.gen_range(0..s.len())].0,
        }
    }

    fn caller(&self) -> &'static str {
        match &self.sessions {
            None => "portal key + X-Resident-Pesel",
            Some(_) => "resident session",
        }
    }
    fn tenant(&self, resident_index: usize) -> &Teryt {
        &self.tenants[resident_index % self.tenants.len()]
    }

    /// Who asks and for whom: the portal's key and the resident's PESEL. Every request, `wrk`'s
    /// included, takes its credentials from here alone, so that another way of authenticating
    /// (a resident's signed session) replaces this function and nothing else.
    pub(crate) fn auth_headers(&self, resident_index: usize) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(2);
        if let Some(sessions) = &self.sessions {
            let token = sessions
                .binary_search_by_key(&resident_index, |(n, _)| *n)
                .map(|i| &sessions[i].1)
                .expect("resident mode asks only about residents with a session");
            h.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is ASCII"),
            );
            return h;
        }
        let bearer = format!("Bearer {}", self.portal_key);
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&bearer).expect("the generated key is ASCII"),
        );
        h.insert(
            gsko_query::RESIDENT_HEADER,
            HeaderValue::from_str(&resident_pesel(resident_index))
                .expect("a PESEL is ASCII digits"),
        );
        h
    }
}

/// The PESEL of resident `n`, unique for every `n` below 180 million: the birth date is
/// 1 Jan 1950 plus `n / 10000` days, and the serial and sex digits spell `n % 10000`.
fn resident_pesel(n: usize) -> String {
    let born = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("a valid date")
        + chrono::Days::new((n / 10_000) as u64);
    use chrono::Datelike;
    let born = gsko_sim::SimDate::new(born.year(), born.month(), born.day())
        .expect("chrono made a valid date");
    let low = (n % 10_000) as u32;
    gsko_sim::identifiers::pesel(born, low % 1000, (low / 1000) % 2 == 1, low / 2000)
}

pub async fn run(o: QueryBenchOptions) -> Result<()> {
    if o.residents < TENANTS {
        bail!("--residents must be at least {TENANTS}");
    }
    if o.connections == 0 || o.writers == 0 {
        bail!("--connections and --writers must be at least 1");
    }
    if o.duration.is_zero() {
        bail!("--duration must be at least 1 s");
    }
    let tenants: Vec<Teryt> = gsko_sim::MUNICIPALITIES[..TENANTS]
        .iter()
        .map(|m| Teryt::parse(m.teryt))
        .collect::<Result<_, _>>()?;

    open_database(&o.database_url).await?;
    let store = prepare(&o.database_url, &tenants, o.residents, o.writers).await?;

    let portal = Residents {
        tenants,
        count: o.residents,
        portal_key: format!("bench-{:032x}", rand::thread_rng().gen::<u128>()),
        sessions: None,
    };
    let session_keys =
        gsko_login::SessionKeys::new(vec![rand::thread_rng().gen::<[u8; 32]>().to_vec()])
            .map_err(anyhow::Error::msg)?;
    let sessions = resident_sessions(&store, &portal, &session_keys).await?;
    let (addr, stop) = serve(&store, &portal, session_keys).await?;
    let base = format!("http://{addr}");
    let resident_mode = Arc::new(Residents {
        tenants: portal.tenants.clone(),
        count: portal.count,
        portal_key: portal.portal_key.clone(),
        sessions: Some(sessions),
    });
    let portal = Arc::new(portal);

    reset_peak_rss();
    let load_before = load_average();
    let mut rows = Vec::new();
    for residents in [&portal, &resident_mode] {
        for endpoint in Endpoint::ALL {
            eprintln!(
                "bench: {} as {} — {} connections, {:.0} s warm-up, {:.0} s measured …",
                endpoint.label(),
                residents.caller(),
                o.connections,
                o.warmup.as_secs_f64(),
                o.duration.as_secs_f64()
            );
            let row = load(
                &base,
                residents,
                endpoint,
                o.connections,
                o.warmup,
                o.duration,
            )
            .await?;
            rows.push(row);
        }
    }
    let rss_now = rss_kb();
    let peak = peak_rss_kb();
    let load_after = load_average();

    let wrk = if o.wrk && wrk_installed() {
        eprintln!(
            "bench: wrk is installed; running it for {} s …",
            o.duration.as_secs()
        );
        Some(run_wrk(&base, &resident_mode, o.connections, o.duration).await?)
    } else {
        None
    };
    stop.send(true).ok();

    println!();
    println!(
        "GSKO resident queries: {} residents in the view ({TENANTS} tenants, PostgreSQL); the query service on loopback with the audit log on and no rate limit; a closed loop over keep-alive connections, a random resident per request, {:.0} s measured after {:.0} s of warm-up",
        o.residents,
        o.duration.as_secs_f64(),
        o.warmup.as_secs_f64()
    );
    println!(
        "| caller | endpoint | residents in view | connections | requests | req/s | p50 | p99 | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            r.caller,
            r.endpoint,
            o.residents,
            o.connections,
            r.requests,
            r.requests as f64 / r.wall.as_secs_f64(),
            ms(r.p50),
            ms(r.p99),
            r.errors
        );
    }
    println!(
        "process RSS: {:.0} MB at the end, {:.0} MB at most while loaded (the service with its database pool and audit writer, and the load generator; PostgreSQL runs apart). The generator shares the machine's cores with the service and PostgreSQL.",
        rss_now as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    // Other work on the machine takes cores from the service: say how busy it was.
    println!(
        "load average (1 min) on this {}-core machine: {load_before} before the load, {load_after} after it",
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
    if let Some(out) = wrk {
        println!();
        println!(
            "wrk -t2 -c{} -d{}s --latency: GET {} for {} residents of the N, each with their own session, no warm-up:",
            o.connections,
            o.duration.as_secs(),
            Endpoint::TenantSummary.label(),
            WRK_SAMPLE.min(o.residents)
        );
        println!("```");
        print!("{out}");
        println!("```");
    }
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    if errors > 0 {
        bail!("{errors} requests were answered with an error (see above)");
    }
    Ok(())
}

/// Makes sure the benchmark's database exists, creating it when missing.
async fn open_database(url: &str) -> Result<()> {
    use sqlx::Connection;
    let name = database_name(url)?;
    let mut admin = sqlx::PgConnection::connect(&server_url_with(url, "postgres"))
        .await
        .context("connecting to PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        eprintln!("bench: creating database {name}");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}

/// The database named in a URL's path; only `[a-z0-9_]`, since it goes into DDL unquoted.
fn database_name(url: &str) -> Result<String> {
    let path = url
        .rsplit_once('/')
        .map(|(_, p)| p.split('?').next().unwrap_or_default())
        .unwrap_or_default();
    if path.is_empty()
        || !path
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("--database-url must end in a database name of [a-z0-9_] (got {path:?})");
    }
    Ok(path.to_owned())
}

/// `url` with its database replaced by `name` (query parameters dropped).
fn server_url_with(url: &str, name: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    format!("{base}/{name}")
}

async fn connect(url: &str, writers: usize) -> Result<Arc<PgStore>> {
    // The writers while seeding; then the service's reads and the audit writer.
    let connections = (writers as u32 + 2).max(16);
    Ok(Arc::new(
        PgStore::connect(url, connections)
            .await
            .context("connecting to PostgreSQL")?,
    ))
}

const MARKER_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_query_seed (residents BIGINT NOT NULL, seeded_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/// Brings the database to exactly `residents` residents (see the module's comment) and returns
/// the store on it.
async fn prepare(
    url: &str,
    tenants: &[Teryt],
    residents: usize,
    writers: usize,
) -> Result<Arc<PgStore>> {
    let mut store = connect(url, writers).await?;
    sqlx::query(MARKER_TABLE).execute(store.pool()).await?;
    let marked: Option<i64> = sqlx::query_scalar("SELECT max(residents) FROM bench_query_seed")
        .fetch_one(store.pool())
        .await?;
    let marked = marked.unwrap_or(0) as usize;
    let in_view = taxpayers_in_view(&store).await?;
    eprintln!("bench: the database holds {in_view} residents, {marked} of them marked as seeded");
    if marked == residents && in_view == residents {
        eprintln!("bench: reusing them");
        analyze(&store).await?;
        return Ok(store);
    }
    let mut from = marked.min(in_view);
    if in_view > residents {
        // The view must hold exactly N residents: more would flatter nothing but still differ.
        eprintln!("bench: more than --residents; starting over with an empty database");
        store.close().await;
        let name = database_name(url)?;
        fresh_database_named(&server_url_with(url, "postgres"), &name).await?;
        store = connect(url, writers).await?;
        sqlx::query(MARKER_TABLE).execute(store.pool()).await?;
        from = 0;
    }
    seed(&store, tenants, from, residents, writers).await?;
    let in_view = taxpayers_in_view(&store).await?;
    if in_view != residents {
        bail!("seeded {residents} residents, but the view holds {in_view}");
    }
    let mut tx = store.pool().begin().await?;
    sqlx::query("DELETE FROM bench_query_seed")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO bench_query_seed (residents) VALUES ($1)")
        .bind(residents as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    analyze(&store).await?;
    Ok(store)
}

/// Refreshes the planner's statistics. Without them, right after a bulk load (and with
/// autovacuum off, as on the test machines), PostgreSQL plans the resident queries for empty
/// tables and takes seconds per answer; a deployment gets them from autovacuum.
async fn analyze(store: &PgStore) -> Result<()> {
    let started = Instant::now();
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    eprintln!(
        "bench: planner statistics refreshed (ANALYZE) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn taxpayers_in_view(store: &PgStore) -> Result<usize> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM taxpayers")
        .fetch_one(store.pool())
        .await?;
    Ok(n as usize)
}

/// Applies residents `from..to` with `writers` concurrent `apply` calls of
/// [`RESIDENTS_PER_BATCH`] residents each; prints progress every tenth and the rate.
async fn seed(
    store: &Arc<PgStore>,
    tenants: &[Teryt],
    from: usize,
    to: usize,
    writers: usize,
) -> Result<()> {
    let total = to - from;
    eprintln!(
        "bench: seeding residents {from}..{to} ({} events) through Store::apply, {writers} writers, {} events per batch …",
        total * EVENTS_PER_RESIDENT,
        RESIDENTS_PER_BATCH * EVENTS_PER_RESIDENT
    );
    let next = Arc::new(AtomicUsize::new(from));
    let done = Arc::new(AtomicUsize::new(0));
    let tenants = Arc::new(tenants.to_vec());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (store, next, done, tenants) =
            (store.clone(), next.clone(), done.clone(), tenants.clone());
        tasks.spawn(async move {
            let tenth = (total / 10).max(1);
            loop {
                let start = next.fetch_add(RESIDENTS_PER_BATCH, Ordering::Relaxed);
                if start >= to {
                    return Ok::<_, anyhow::Error>(());
                }
                let end = (start + RESIDENTS_PER_BATCH).min(to);
                let events: Vec<Event> = (start..end)
                    .flat_map(|n| resident_events(&tenants, n))
                    .collect();
                store
                    .apply(&events)
                    .await
                    .with_context(|| format!("applying residents {start}..{end}"))?;
                let before = done.fetch_add(end - start, Ordering::Relaxed);
                let after = before + end - start;
                if before / tenth != after / tenth {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "bench: seeded {:>3}% ({after} residents) in {secs:.0} s: {:.0} residents/s, {:.0} events/s",
                        after * 100 / total,
                        after as f64 / secs,
                        (after * EVENTS_PER_RESIDENT) as f64 / secs
                    );
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("a seeding task panicked")??;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bench: seeded {total} residents in {secs:.1} s: {:.0} residents/s, {:.0} events/s",
        total as f64 / secs,
        (total * EVENTS_PER_RESIDENT) as f64 / secs
    );
    Ok(())
}

/// Taxpayer, account, two liabilities, five postings, balance.
const EVENTS_PER_RESIDENT: usize = 10;

/// The events of resident `n`, as the projector would apply them after a RADIX import; every
/// tenth resident's account is shared with a co-owner (resident `n - 5`, same tenant).
fn resident_events(tenants: &[Teryt], n: usize) -> Vec<Event> {
    let tenant = &tenants[n % tenants.len()];
    let ev = |data| Event::new(EVENT_SOURCE, tenant.clone(), 1, data);
    let taxpayer_id = format!("T-{n}");
    let account_id = format!("K-{n}");
    let mut holders = vec![AccountHolder {
        taxpayer_id: taxpayer_id.clone(),
        role: HolderRole::Owner,
    }];
    if n % 10 == 9 {
        holders.push(AccountHolder {
            taxpayer_id: format!("T-{}", n - tenants.len()),
            role: HolderRole::CoOwner,
        });
    }
    let pesel = Pesel::from_str(&resident_pesel(n)).expect("the generated PESEL is valid");
    let mut out = Vec::with_capacity(EVENTS_PER_RESIDENT);
    out.push(ev(EventData::TaxpayerUpserted(Taxpayer {
        taxpayer_id: taxpayer_id.clone(),
        kind: TaxpayerKind::Natural,
        pesel: Some(pesel),
        nip: None,
        regon: None,
        name: format!("Mieszkaniec {n}"),
        address: Some(Address {
            street: Some("ul. Lipowa".to_owned()),
            building: Some(format!("{}", 1 + n % 120)),
            unit: None,
            postal_code: "59-700".to_owned(),
            city: "Bolesławiec".to_owned(),
            simc: None,
            country: "PL".to_owned(),
        }),
        contacts: vec![ContactChannel {
            kind: ContactKind::Email,
            value: format!("{taxpayer_id}@example.org"),
        }],
    })));
    out.push(ev(EventData::TaxAccountUpserted(TaxAccount {
        account_id: account_id.clone(),
        levy: LevyKind::Property,
        holders,
        virtual_account: Some(virtual_account(n as u64)),
    })));
    for year in [2025, 2026] {
        let total = 38_000 + (n as i64 % 5_000) + i64::from(year - 2025) * 2_000;
        out.push(ev(EventData::LiabilityUpserted(liability(
            &account_id,
            n,
            year,
            total,
        ))));
    }
    for (i, month) in [3u32, 5, 9, 11, 12].into_iter().enumerate() {
        out.push(ev(EventData::PostingRecorded(LedgerPosting {
            posting_id: format!("P-{n}-{i}"),
            account_id: account_id.clone(),
            kind: PostingKind::Payment,
            value_date: chrono::NaiveDate::from_ymd_opt(2026, month, 15).expect("a valid date"),
            amount: grosze(10_000 + i as i64),
            liability_id: None,
            installment_seq: Some(1),
            description: Some("wpłata".to_owned()),
        })));
    }
    out.push(ev(EventData::BalanceReported(Balance {
        account_id,
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 6, 30).expect("a valid date"),
        principal: grosze(12_345),
        interest: grosze(123),
        costs: grosze(0),
        overpayment: grosze(0),
    })));
    out
}

fn liability(account_id: &str, n: usize, year: i32, total: i64) -> Liability {
    let quarter = total / 4;
    let date = |m, d| chrono::NaiveDate::from_ymd_opt(year, m, d).expect("a valid date");
    Liability {
        liability_id: format!("L-{n}-{year}"),
        account_id: account_id.to_owned(),
        levy: LevyKind::Property,
        year,
        decision: Some(Decision {
            number: format!("FN.3120.{year}.{n}"),
            issued_on: date(2, 1),
            delivered_on: None,
        }),
        total: grosze(total),
        installments: [(3, 15), (5, 15), (9, 15), (11, 15)]
            .into_iter()
            .enumerate()
            .map(|(i, (m, d))| Installment {
                seq: (i + 1) as u8,
                due_date: date(m, d),
                // The first installment takes the remainder, as the tax rules say.
                amount: grosze(if i == 0 { total - 3 * quarter } else { quarter }),
            })
            .collect(),
    }
}

fn grosze(g: i64) -> Amount {
    Amount::from_grosze(g).expect("a non-negative amount")
}

/// A valid NRB with the bank's sort code 10901014 and the account number `n`.
fn virtual_account(n: u64) -> Nrb {
    let bban = format!("10901014{n:016}");
    let digits = format!("{bban}252100");
    let rem = digits
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    Nrb::parse(&format!("{:02}{bban}", 98 - rem)).expect("the generated NRB is valid")
}

/// Starts the query service as the daemon builds it, on 127.0.0.1:0; sending `true` stops it.
async fn serve(
    store: &Arc<PgStore>,
    residents: &Residents,
    session_keys: gsko_login::SessionKeys,
) -> Result<(SocketAddr, tokio::sync::watch::Sender<bool>)> {
    let tenants: BTreeMap<Teryt, String> = gsko_sim::MUNICIPALITIES[..TENANTS]
        .iter()
        .map(|m| Ok((Teryt::parse(m.teryt)?, m.name.to_owned())))
        .collect::<Result<_>>()?;
    let key = PortalKey {
        name: "bench-portal".to_owned(),
        key_sha256: gsko_config::sha256(residents.portal_key.as_bytes()),
        tenants: None,
        admin: false,
    };
    let state = gsko_query::AppState::new(
        store.clone(),
        vec![key],
        tenants,
        gsko_query::Registry::new(),
    )
    // Production audits every read, and an answer waits for its entry: part of the latency.
    .with_audit(store.clone())
    // Off: the generator is one client, which a per-client limit would throttle.
    .with_rate_limit(0.0, 0)
    // Residents' sessions, checked against the store on every request as in production.
    .with_login(login_service(store, session_keys)?, true);
    let app = gsko_query::router(state, gsko_config::HttpConfig::default().body_limit);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    // The peer's address goes into the audit log, as in the daemon.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            drop(stopped.wait_for(|v| *v).await);
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the query service stopped");
        }
    });
    Ok((addr, stop))
}

/// Resident login as the daemon wires it; login.gov.pl itself is never asked (the sessions
/// are made by [`resident_sessions`]), so its addresses lead nowhere.
fn login_service(
    store: &Arc<PgStore>,
    keys: gsko_login::SessionKeys,
) -> Result<Arc<gsko_login::LoginService>> {
    let dir = tempfile_dir()?.join("login-keys");
    std::fs::create_dir_all(&dir)?;
    let creds = gsko_sim::login::make_sp_credentials(&dir).context("SP keys (openssl)")?;
    let sp = gsko_login::ServiceProvider::new(
        gsko_login::SpSettings::new(
            "gsko-bench",
            "http://127.0.0.1:9/login/acs",
            gsko_login::IdpEndpoints::under("symulator.login.gov.pl", "http://127.0.0.1:9"),
        ),
        gsko_login::Signer::from_pem(&creds.signing_cert_pem, &creds.signing_key_pem)?,
        gsko_login::DecryptionKey::from_pem(&creds.encryption_key_pem)?,
        gsko_login::certificates_from_pem(&creds.signing_cert_pem)?,
    )?;
    drop(std::fs::remove_dir_all(&dir));
    Ok(Arc::new(gsko_login::LoginService {
        sp,
        keys,
        store: store.clone(),
        policy: gsko_login::SessionPolicy {
            ttl: chrono::Duration::hours(2),
            max: chrono::Duration::hours(8),
            login_timeout: chrono::Duration::minutes(10),
            return_origins: vec![],
        },
    }))
}

/// A live session for each sampled resident, as a login would have created it (rows in
/// `sessions`, tokens signed with `keys`).
async fn resident_sessions(
    store: &Arc<PgStore>,
    residents: &Residents,
    keys: &gsko_login::SessionKeys,
) -> Result<Vec<(usize, String)>> {
    use gsko_store::LoginStore;
    let now = chrono::Utc::now();
    let run = rand::thread_rng().gen::<u64>();
    let mut tokens = Vec::new();
    for i in 0..WRK_SAMPLE.min(residents.count) {
        let n = i * residents.sample_step();
        let sid = format!("bench-{run:016x}-{n}");
        let session = gsko_store::SessionRecord {
            sid: sid.clone(),
            pesel: resident_pesel(n),
            given_name: "Bench".into(),
            family_name: "Resident".into(),
            loa: gsko_login::Loa::Substantial.uri().into(),
            name_id: resident_pesel(n),
            session_index: None,
            created_at: now,
            expires_at: now + chrono::Duration::hours(2),
            max_until: now + chrono::Duration::hours(8),
            revoked_at: None,
        };
        store
            .session_create(&session)
            .await
            .context("creating a resident session")?;
        tokens.push((n, keys.sign(&sid, session.expires_at)));
    }
    Ok(tokens)
}

/// What one connection measured.
#[derive(Default)]
struct ConnectionResult {
    latencies_us: Vec<u32>,
    errors: u64,
    shown: Vec<String>,
    /// When its last counted request ended.
    last_end: Option<Instant>,
}

/// Runs the closed loop for one endpoint: `connections` tasks, each with its own keep-alive
/// connection, one request at a time.
async fn load(
    base: &str,
    residents: &Arc<Residents>,
    endpoint: Endpoint,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Row> {
    let started = Instant::now();
    let measure_from = started + warmup;
    let end = measure_from + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        // One client per task: exactly `connections` connections, each reused.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()?;
        let (base, residents) = (base.to_owned(), residents.clone());
        tasks.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed ^ c as u64);
            let mut out = ConnectionResult::default();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    return out;
                }
                let n = residents.pick(&mut rng);
                let url = format!("{base}{}", endpoint.path(residents.tenant(n)));
                let outcome = match client
                    .get(&url)
                    .headers(residents.auth_headers(n))
                    .send()
                    .await
                {
                    // The whole body is read: a portal waits for it too.
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(_) if status.is_success() => Ok(()),
                            Ok(body) => Err(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            )),
                            Err(e) => Err(format!("{status}, reading the body: {e}")),
                        }
                    }
                    Err(e) => Err(format!("request failed: {e}")),
                };
                let took = sent.elapsed();
                if sent < measure_from {
                    continue;
                }
                out.latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                out.last_end = Some(Instant::now());
                if let Err(e) = outcome {
                    out.errors += 1;
                    if out.shown.len() < ERRORS_SHOWN {
                        out.shown.push(e);
                    }
                }
            }
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut shown = Vec::new();
    let mut last_end = measure_from;
    while let Some(r) = tasks.join_next().await {
        let r = r.context("a load task panicked")?;
        latencies.extend(r.latencies_us);
        errors += r.errors;
        shown.extend(r.shown);
        last_end = last_end.max(r.last_end.unwrap_or(measure_from));
    }
    for e in shown.iter().take(ERRORS_SHOWN) {
        eprintln!("bench: {}: error answer: {e}", endpoint.label());
    }
    if latencies.is_empty() {
        bail!("{}: no request completed", endpoint.label());
    }
    latencies.sort_unstable();
    let wall = last_end.duration_since(measure_from).max(duration);
    Ok(Row {
        caller: residents.caller(),
        endpoint: endpoint.label(),
        requests: latencies.len() as u64,
        wall,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        errors,
    })
}

/// The `q` quantile (nearest rank) of sorted microseconds.
fn percentile(sorted_us: &[u32], q: f64) -> Duration {
    let rank = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len());
    Duration::from_micros(u64::from(sorted_us[rank - 1]))
}

/// Resident set size of this process now (VmRSS), in kB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The 1-minute load average, as `/proc/loadavg` says it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn wrk_installed() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "command -v wrk"])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `wrk` against the service with a script that picks one of [`WRK_SAMPLE`] residents
/// per request; returns its report.
async fn run_wrk(
    base: &str,
    residents: &Residents,
    connections: usize,
    duration: Duration,
) -> Result<String> {
    let dir = tempfile_dir()?.join("wrk");
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("residents.lua");
    std::fs::write(&script, wrk_script(residents))?;
    let out = tokio::process::Command::new("wrk")
        .args(["-t2", &format!("-c{connections}")])
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(base)
        .output()
        .await
        .context("running wrk")?;
    drop(std::fs::remove_dir_all(&dir));
    if !out.status.success() {
        bail!(
            "wrk failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Lua script for `wrk`: a table of (path, headers) for a fixed sample of residents, spread
/// evenly over the N, and a `request` function that picks one at random.
fn wrk_script(residents: &Residents) -> String {
    let sample = WRK_SAMPLE.min(residents.count);
    let step = residents.count / sample;
    let mut lua = String::from("local requests = {\n");
    for i in 0..sample {
        let n = i * step;
        let headers: Vec<String> = residents
            .auth_headers(n)
            .iter()
            .filter_map(|(name, value)| {
                Some(format!(
                    "[{}] = {}",
                    lua_string(name.as_str()),
                    lua_string(value.to_str().ok()?)
                ))
            })
            .collect();
        lua.push_str(&format!(
            "  {{ {}, {{ {} }} }},\n",
            lua_string(&Endpoint::TenantSummary.path(residents.tenant(n))),
            headers.join(", ")
        ));
    }
    lua.push_str(
        "}\n\nrequest = function()\n  local r = requests[math.random(#requests)]\n  return wrk.format(\"GET\", r[1], r[2])\nend\n",
    );
    lua
}

fn lua_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_pesels_are_valid_and_distinct() {
        // Every one of the default million: a repeat would merge two residents in the view.
        let mut seen = std::collections::HashSet::with_capacity(1_000_000);
        for n in 0..1_000_000 {
            let p = resident_pesel(n);
            if n % 97 == 0 || n > 999_000 {
                assert!(
                    Pesel::from_str(&p).is_ok(),
                    "resident {n}: {p} is not valid"
                );
            }
            assert!(seen.insert(p), "resident {n} repeats a PESEL");
        }
    }

    #[test]
    fn a_resident_has_ten_events_in_its_tenant_and_every_tenth_a_co_owner() {
        let tenants: Vec<Teryt> = gsko_sim::MUNICIPALITIES[..TENANTS]
            .iter()
            .map(|m| Teryt::parse(m.teryt).unwrap())
            .collect();
        let events = resident_events(&tenants, 19);
        assert_eq!(events.len(), EVENTS_PER_RESIDENT);
        assert!(events.iter().all(|e| e.tenant == tenants[4]));
        let holders = events.iter().find_map(|e| match &e.data {
            EventData::TaxAccountUpserted(a) => Some(a.holders.clone()),
            _ => None,
        });
        assert_eq!(holders.map(|h| h.len()), Some(2));
        let alone = resident_events(&tenants, 18);
        assert!(alone.iter().any(|e| matches!(&e.data,
            EventData::TaxAccountUpserted(a) if a.holders.len() == 1)));
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), Duration::from_micros(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&[7], 0.99), Duration::from_micros(7));
    }

    #[test]
    fn the_database_name_comes_from_the_url_and_stays_plain() {
        assert_eq!(
            database_name("postgres://postgres@127.0.0.1:5432/gsko_bench_query?sslmode=disable")
                .unwrap(),
            "gsko_bench_query"
        );
        assert!(database_name("postgres://h/x;DROP").is_err());
        assert_eq!(
            server_url_with("postgres://u@h:1/db", "postgres"),
            "postgres://u@h:1/postgres"
        );
    }

    #[test]
    fn the_wrk_script_sets_both_credentials_for_every_request() {
        let residents = Residents {
            tenants: vec![Teryt::parse("0201011").unwrap()],
            count: 3,
            portal_key: "k\"ey".to_owned(),
            sessions: None,
        };
        let lua = wrk_script(&residents);
        assert_eq!(lua.matches("\"authorization\"").count(), 3);
        assert_eq!(lua.matches("\"x-resident-pesel\"").count(), 3);
        assert!(lua.contains("\"Bearer k\\\"ey\""));
        assert!(lua.contains(&resident_pesel(2)));
    }

    #[test]
    fn resident_mode_asks_only_about_residents_with_a_session_and_sends_no_pesel() {
        let sessions: Vec<(usize, String)> =
            (0..10).map(|i| (i * 5, format!("gs1.t{i}"))).collect();
        let residents = Residents {
            tenants: vec![Teryt::parse("0201011").unwrap()],
            count: 50,
            portal_key: "k".to_owned(),
            sessions: Some(sessions.clone()),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let n = residents.pick(&mut rng);
            let token = &sessions.iter().find(|(m, _)| *m == n).expect("a session").1;
            let h = residents.auth_headers(n);
            assert_eq!(h[AUTHORIZATION], format!("Bearer {token}").as_str());
            assert!(!h.contains_key(gsko_query::RESIDENT_HEADER));
        }
    }
}
