//! `gsko`: the integration daemon (`run`, `demo`) and its admin commands (`check-config`,
//! `inspect`, `sim`, `bench`). Thin: the work lives in the library crates; this file wires them.

mod audit;
mod bench;
mod bench_ezd;
mod bench_letters;
mod bench_login;
mod bench_payments;
mod bench_query;
mod cases;
mod daemon;
mod delivery;
mod demo;
mod epuap;
mod login;
mod payments;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// sysexits.h EX_CONFIG: "something was found in an unconfigured or misconfigured state".
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "gsko",
    version,
    about = "GSKO — integration daemon for Polish municipalities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon with a production configuration (RabbitMQ + PostgreSQL).
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run everything in one process: SQLite, in-process bus, simulated RADIX exports for five
    /// municipalities, and the query API on localhost.
    Demo {
        /// Working directory (config, exports, database); wiped at start unless --keep.
        #[arg(long, default_value = "var/demo")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Generated taxpayers per municipality.
        #[arg(long, default_value_t = 2000)]
        taxpayers: usize,
        /// Keep the working directory from a previous run.
        #[arg(long)]
        keep: bool,
        /// Import, print the demo queries, and exit instead of serving (used by tests).
        #[arg(long)]
        exit_after_import: bool,
    },
    /// List the messages parked for an admin (after the retry ladder, or refused outright), as
    /// JSON lines: reason, original queue, routing key, message id, tenant, attempts, time.
    Parked {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The audit log of reads and actions on residents' data.
    Audit {
        #[command(subcommand)]
        what: AuditWhat,
    },
    /// Residents' login sessions.
    Sessions {
        #[command(subcommand)]
        what: SessionsWhat,
    },
    /// Validate a configuration offline; exit code 78 names file, key and reason on an error.
    CheckConfig { file: PathBuf },
    /// Print what an external file would become, touching nothing.
    Inspect {
        #[command(subcommand)]
        what: InspectWhat,
    },
    /// Simulators of the external systems.
    Sim {
        #[command(subcommand)]
        what: SimWhat,
    },
    /// Measure an end-to-end import (file → bus → projector → store) and print a table;
    /// `gsko bench payments` measures the payment side.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        what: Option<BenchWhat>,
        /// Taxpayers in the generated export.
        #[arg(long, default_value_t = 100_000)]
        taxpayers: usize,
        #[command(flatten)]
        backends: BenchBackends,
    },
}

#[derive(Subcommand)]
enum AuditWhat {
    /// Check the hash chain: exit code 1 and one line per problem (a modified, missing or
    /// deleted entry) when it is broken.
    Verify {
        #[arg(long)]
        config: PathBuf,
    },
    /// Move the entries older than `--before` (RFC 3339 or a date) to a JSON-lines file and
    /// delete them from the database, `--batch` at a time; what stays still verifies.
    Archive {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        before: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        batch: u32,
    },
}

#[derive(Subcommand)]
enum SessionsWhat {
    /// End every live session of a resident at once (audited); prints how many.
    Revoke {
        #[arg(long)]
        config: PathBuf,
        /// The resident's PESEL.
        #[arg(long)]
        resident: String,
    },
}

/// Where the benchmarks run.
#[derive(Args)]
struct BenchBackends {
    /// `production` (RabbitMQ + PostgreSQL), `embedded` (in-process bus + SQLite) or `both`.
    #[arg(long, default_value = "both")]
    mode: String,
    /// A server on which the benchmark may create (and drop) its own database.
    #[arg(
        long,
        env = "GSKO_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// A virtual host the benchmark may declare its queues in (`make bench` makes a fresh one).
    #[arg(
        long,
        env = "GSKO_BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Measure the payment side and print a table: Przelewy24 notifications end to end (HTTP in
    /// → verify → settle → outbox relay → bus → RADIX booking file) and an MT940 statement
    /// import.
    Payments {
        /// Orders paid; each notification counts once its booking file is written.
        #[arg(long, default_value_t = 2000)]
        payments: usize,
        /// At most this many payments paid and not yet booked at any time; beyond a few dozen,
        /// more lengthens the queue (and the latency), not the throughput.
        #[arg(long, default_value_t = 50)]
        in_flight: usize,
        /// Lines of the generated MT940 statement (at least).
        #[arg(long, default_value_t = 50_000)]
        statement_lines: usize,
        /// Taxpayers whose virtual accounts the store knows; the statement's credits go to
        /// them at random.
        #[arg(long, default_value_t = 30_000)]
        statement_taxpayers: u32,
        #[command(flatten)]
        backends: BenchBackends,
    },
    /// Measure the ePUAP receiver and print a table: signed letters pulled from the simulator's
    /// box (WS-Pull → store → XAdES verify → publish and confirm → potwierdzOdebranie) per
    /// second, and the XAdES check alone. Production mode needs RabbitMQ only.
    Letters {
        /// Letters waiting in the box, each signed with podpis zaufany.
        #[arg(long, default_value_t = 1000)]
        letters: usize,
        /// Attachments per letter.
        #[arg(long, default_value_t = 2)]
        attachments: usize,
        #[command(flatten)]
        backends: BenchBackends,
    },
    /// Measure the EZD case service against the simulated EZD RP and print a table: letters
    /// registered per second (letter.register → EZD → case.registered → recorded), and the lag
    /// from a case's status change in EZD to the resident view, polled and with a webhook hint.
    Ezd {
        /// Letters published as `letter.register` commands, signed by a few hundred residents.
        #[arg(long, default_value_t = 500)]
        letters: usize,
        /// Cases whose status is changed in EZD, in each of the two lag measurements.
        #[arg(long, default_value_t = 100)]
        cases: usize,
        /// The follower's poll interval, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
        #[command(flatten)]
        backends: BenchBackends,
    },
    /// Measure resident logins per second: whole logins over HTTP through the simulated
    /// login.gov.pl (store in PostgreSQL), then GSKO's share alone (one ArtifactResponse
    /// validated repeatedly); prints a table.
    Login {
        /// Whole logins made.
        #[arg(long, default_value_t = 200)]
        logins: usize,
        /// Logins in flight at a time.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Validations of one captured ArtifactResponse.
        #[arg(long, default_value_t = 2000)]
        validations: usize,
        /// The PostgreSQL server (a database gsko_bench_login is created on it).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        database_url: String,
    },
    /// Measure resident queries per second and their p50/p99 latency on loopback: N residents
    /// seeded into PostgreSQL through the store (reused by the next run), the query service
    /// served in-process as the daemon serves it (audit log on, no rate limit), a closed-loop
    /// load of keep-alive connections, a random resident per request; prints a table.
    Query {
        /// Residents in the view, across five tenants.
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        /// Concurrent keep-alive connections, each with one request in flight.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds measured per endpoint, after a 2 s warm-up.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Concurrent `apply` calls while seeding.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// The benchmark's own database (created when missing; seeded, kept for the next run).
        #[arg(
            long,
            env = "GSKO_BENCH_QUERY_DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/gsko_bench_query"
        )]
        database_url: String,
        /// Do not run `wrk` even when it is installed.
        #[arg(long)]
        no_wrk: bool,
    },
}

#[derive(Subcommand)]
enum InspectWhat {
    /// Print the normalized events of a RADIX export as JSON lines (one event per line);
    /// rejected records go to standard error with file, line, record and reason.
    Radix { file: PathBuf },
    /// Print the payments found in an MT940 bank statement as JSON lines (statements, credits
    /// with how each was identified, debits, and errors with file, line and field).
    Statement {
        file: PathBuf,
        /// Character set of the file: utf-8, cp1250, iso-8859-2 or cp852.
        #[arg(long, default_value = "utf-8")]
        charset: String,
    },
    /// Print what a CRD document from ePUAP says (form, sender, addressee, title, body,
    /// attachments with their SHA-256, signatures, and every problem found) as JSON.
    Epuap { file: PathBuf },
}

#[derive(Subcommand)]
enum SimWhat {
    /// Generate a deterministic RADIX export with realistic Polish data.
    Radix {
        #[arg(long)]
        taxpayers: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// TERYT code of the municipality (default: the first of the demo catalogue).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 2026)]
        year: i32,
        /// `full` or `incremental`.
        #[arg(long, default_value = "full")]
        kind: String,
    },
}

/// `quiet`: no info line per payment or letter (the benchmarks' thousands of them);
/// `GSKO_LOG` overrides.
fn init_tracing(quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GSKO_LOG").unwrap_or_else(|_| {
        let mut f = "info,sqlx=warn,lapin=warn,lapin::returned_messages=off".to_owned();
        if quiet {
            f.push_str(",gsko_payments=warn,gsko_przelewy24=warn,gsko_radix::booking=warn");
            f.push_str(",gsko_epuap=warn,gsko_sim=warn,gsko_cases=warn,gsko_ezd=warn");
        }
        EnvFilter::new(f)
    });
    let json = std::env::var("GSKO_LOG_FORMAT").is_ok_and(|v| v == "json");
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(
        cli.command,
        Command::Bench {
            what: Some(
                BenchWhat::Payments { .. }
                    | BenchWhat::Letters { .. }
                    | BenchWhat::Ezd { .. }
                    | BenchWhat::Login { .. }
            ),
            ..
        }
    ));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gsko: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gsko: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run { config } => {
            let cfg = match gsko_config::Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("gsko: configuration error: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            daemon::run(cfg, daemon::Options::default()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            dir,
            listen,
            taxpayers,
            keep,
            exit_after_import,
        } => {
            demo::run(demo::DemoOptions {
                dir,
                listen,
                taxpayers,
                keep,
                exit_after_import,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Parked { config, limit } => {
            let cfg = match gsko_config::Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("gsko: configuration error: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let parked = daemon::list_parked(&cfg, limit).await?;
            for m in &parked {
                println!(
                    "{}",
                    serde_json::json!({
                        "reason": m.reason,
                        "original_queue": m.original_queue,
                        "routing_key": m.routing_key,
                        "message_id": m.message_id,
                        "tenant": m.tenant,
                        "attempt": m.attempt,
                        "parked_at": m.parked_at,
                    })
                );
            }
            eprintln!("{} parked message(s)", parked.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sessions {
            what: SessionsWhat::Revoke { config, resident },
        } => {
            let cfg = match gsko_config::Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("gsko: configuration error: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let pesel: gsko_model::Pesel = match resident.parse() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("gsko: --resident: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let db = audit::open_database(&cfg).await?;
            let n = audit::revoke_sessions(&db, &pesel).await?;
            println!("{n} session(s) revoked");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { what } => {
            let config = match &what {
                AuditWhat::Verify { config } | AuditWhat::Archive { config, .. } => config,
            };
            let cfg = match gsko_config::Config::load(config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("gsko: configuration error: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let store = audit::open_store(&cfg).await?;
            match what {
                AuditWhat::Verify { .. } => Ok(if audit::verify(store.as_ref()).await? {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }),
                AuditWhat::Archive {
                    before, out, batch, ..
                } => {
                    let before = chrono::DateTime::parse_from_rfc3339(&before)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .or_else(|_| {
                            chrono::NaiveDate::parse_from_str(&before, "%Y-%m-%d")
                                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                        })
                        .with_context(|| {
                            format!("--before {before:?}: not a date or RFC 3339 time")
                        })?;
                    let moved = audit::archive(store.as_ref(), before, &out, batch).await?;
                    println!("{moved} audit entries moved to {}", out.display());
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::CheckConfig { file } => match gsko_config::Config::load(&file)
            .and_then(|c| daemon::check_connectors(&c).map(|_| c))
        {
            Ok(c) => {
                println!(
                    "{}: ok ({} tenants, {} portal keys)",
                    file.display(),
                    c.tenants.len(),
                    c.portal_keys.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(EXIT_CONFIG))
            }
        },
        Command::Inspect {
            what: InspectWhat::Radix { file },
        } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let summary = gsko_radix::inspect_xml_file(&file, &mut out)
                .with_context(|| format!("inspecting {}", file.display()))?;
            drop(out);
            eprintln!("{}: {} records accepted, {} rejected (pl.gsko.import.record-rejected.v1 lines say where and why)", file.display(), summary.accepted, summary.rejected);
            Ok(if summary.rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Inspect {
            what: InspectWhat::Epuap { file },
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let doc = gsko_epuap::document::parse(
                &bytes,
                gsko_epuap::document::DEFAULT_MAX_ATTACHMENT_BYTES,
            )
            .with_context(|| format!("{}", file.display()))?;
            // Without the tenant's COI certificates any podpis zaufany certificate is taken
            // (and the report says so).
            let signature = gsko_epuap::xades::verify_document(&bytes, &Default::default());
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "document": doc, "signature": signature })
                )?
            );
            for p in &doc.problems {
                eprintln!("{}: {}: {}", file.display(), p.at, p.what);
            }
            for p in &signature.problems {
                eprintln!("{}: signature: {p}", file.display());
            }
            let signature_ok = matches!(
                signature.status(),
                gsko_model::SignatureStatus::Valid | gsko_model::SignatureStatus::Absent
            );
            Ok(if doc.problems.is_empty() && signature_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Inspect {
            what: InspectWhat::Statement { file, charset },
        } => {
            let charset = gsko_bank::Charset::from_name(&charset).with_context(|| {
                format!("--charset {charset:?}: expected utf-8, cp1250, iso-8859-2 or cp852")
            })?;
            let opts = gsko_bank::ParseOptions::default().with_charset(charset);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let summary = gsko_bank::inspect_statement_with(
                &file,
                &opts,
                &Default::default(),
                &Default::default(),
                &mut out,
            )
            .with_context(|| format!("inspecting {}", file.display()))?;
            drop(out);
            eprintln!(
                "{}: {} statements, {} payments, {} debits, {} errors",
                file.display(),
                summary.statements,
                summary.payments,
                summary.debits,
                summary.errors
            );
            Ok(if summary.errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Sim {
            what:
                SimWhat::Radix {
                    taxpayers,
                    seed,
                    out,
                    tenant,
                    year,
                    kind,
                },
        } => {
            let path = demo::generate(
                &out,
                tenant.as_deref(),
                taxpayers,
                seed,
                year,
                &kind,
                Vec::new(),
            )?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what: None,
            taxpayers,
            backends,
        } => {
            bench::run(bench::BenchOptions {
                taxpayers,
                mode: backends.mode,
                database_url: backends.database_url,
                amqp_url: backends.amqp_url,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                Some(BenchWhat::Payments {
                    payments,
                    in_flight,
                    statement_lines,
                    statement_taxpayers,
                    backends,
                }),
            ..
        } => {
            bench_payments::run(bench_payments::PaymentBenchOptions {
                payments,
                in_flight,
                statement_lines,
                statement_taxpayers,
                mode: backends.mode,
                database_url: backends.database_url,
                amqp_url: backends.amqp_url,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                Some(BenchWhat::Letters {
                    letters,
                    attachments,
                    backends,
                }),
            ..
        } => {
            bench_letters::run(bench_letters::LetterBenchOptions {
                letters,
                attachments,
                mode: backends.mode,
                amqp_url: backends.amqp_url,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                Some(BenchWhat::Ezd {
                    letters,
                    cases,
                    poll_ms,
                    backends,
                }),
            ..
        } => {
            bench_ezd::run(bench_ezd::EzdBenchOptions {
                letters,
                cases,
                poll_ms,
                mode: backends.mode,
                database_url: backends.database_url,
                amqp_url: backends.amqp_url,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                Some(BenchWhat::Login {
                    logins,
                    concurrency,
                    validations,
                    database_url,
                }),
            ..
        } => {
            bench_login::run(bench_login::LoginBenchOptions {
                logins,
                concurrency,
                validations,
                database_url,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                Some(BenchWhat::Query {
                    residents,
                    connections,
                    duration,
                    writers,
                    database_url,
                    no_wrk,
                }),
            ..
        } => {
            bench_query::run(bench_query::QueryBenchOptions {
                residents,
                connections,
                duration: std::time::Duration::from_secs(duration),
                warmup: std::time::Duration::from_secs(2),
                database_url,
                writers,
                wrk: !no_wrk,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
