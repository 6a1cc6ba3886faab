//! `agora`: serve the API, check the configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use agora_server::config::{Config, Sources};
use clap::{Parser, Subcommand};

/// Agora: a contract-first backend for a social app.
///
/// Configuration comes from defaults, then an optional TOML file (`agora.toml` in the working
/// directory, or --config), then `AGORA_*` environment variables (nested keys joined by `__`, e.g.
/// `AGORA_HTTP__BIND=0.0.0.0:8080`; `AGORA_<KEY>_FILE=/path` reads a value from a file).
#[derive(Debug, Parser)]
#[command(name = "agora", version)]
struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, env = "AGORA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Database migrations (forward-only; there is no `down`).
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
    /// Account administration from the command line (each change is written to the audit log).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run background-job workers only, no HTTP (the cluster shape: set `jobs.in_process = false`
    /// on the API instances and scale these separately). Stops on SIGINT/SIGTERM after the drain
    /// window (`jobs.drain_secs`), handing unfinished jobs back.
    Worker {
        /// Only these queues (comma-separated): fanout, notify, email, push, analytics,
        /// maintenance. Default: all.
        #[arg(long, value_delimiter = ',', value_parser = parse_queue)]
        queues: Vec<agora_jobs::Queue>,
    },
    /// Inspect and repair the background-job queue (retries and discards are audited).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Email delivery repairs.
    Email {
        #[command(subcommand)]
        command: EmailCommand,
    },
    /// Generate a data set of realistic size (users, hub friend lists, follows, posts, likes,
    /// comments, notifications, fanned-out feeds) for query plans, benchmarks and load tests.
    /// Every seeded user's password is --password.
    Seed(agora_server::seeding::SeedArgs),
}

#[derive(Debug, Subcommand)]
enum EmailCommand {
    /// Email <ADDRESS> again after it bounced (a permanent SMTP refusal suppresses an address).
    Unsuppress {
        /// The address, as stored (lowercase).
        address: String,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Jobs per queue and state, and how long the oldest due job has waited.
    Stats,
    /// Jobs, newest first.
    List {
        /// Only this state: ready, running, succeeded, dead.
        #[arg(long, value_parser = parse_state)]
        state: Option<agora_db::jobs::JobState>,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Every field of one job, with its payload.
    Show {
        /// The job's id.
        id: uuid::Uuid,
    },
    /// Make a dead job due now with a fresh set of attempts.
    Retry {
        /// The job's id.
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<uuid::Uuid>,
        /// Retry every dead job instead.
        #[arg(long)]
        all_dead: bool,
        /// With --all-dead: only this queue's.
        #[arg(long, requires = "all_dead")]
        queue: Option<String>,
    },
    /// Delete a dead or waiting job (a poison job you will not fix).
    Discard {
        /// The job's id.
        id: uuid::Uuid,
    },
}

fn parse_queue(s: &str) -> Result<agora_jobs::Queue, String> {
    agora_jobs::Queue::parse(s).ok_or_else(|| {
        let known: Vec<&str> = agora_jobs::Queue::ALL.iter().map(|q| q.as_str()).collect();
        format!("no queue {s:?} (known: {})", known.join(", "))
    })
}

fn parse_state(s: &str) -> Result<agora_db::jobs::JobState, String> {
    agora_db::jobs::JobState::parse(s)
        .ok_or_else(|| format!("no state {s:?} (known: ready, running, succeeded, dead)"))
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Give the account <HANDLE> the `admin` role (takes effect on its next admin request).
    Grant {
        /// The account's handle, in any letter case.
        handle: String,
    },
    /// Take the `admin` role away from the account <HANDLE>.
    Demote {
        /// The account's handle, in any letter case.
        handle: String,
    },
    /// Send the account <HANDLE> an admin notice (in the app, and by email and push per its
    /// settings for `admin_notice`).
    Notify {
        /// The account's handle, in any letter case.
        handle: String,
        /// The notice, up to 2000 characters.
        #[arg(long)]
        message: String,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// List every migration, applied or pending, with its checksum.
    Status,
    /// Apply pending migrations, each in its own transaction.
    Up,
    /// Exit non-zero when an applied migration was edited or migrations are pending.
    Verify,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets redacted.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sources = Sources {
        file: cli.config.clone(),
        env: None,
    };
    let config = match Config::load(&sources) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            print!("{}", config.to_redacted_toml());
            eprintln!("configuration OK");
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config),
        Command::Migrate { command } => migrate(config, command),
        Command::Admin { command } => admin(config, command),
        Command::Worker { queues } => worker(config, queues),
        Command::Jobs { command } => jobs(config, command),
        Command::Email { command } => email(config, command),
        Command::Seed(args) => seed(config, args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

async fn open_database(config: &Config) -> Result<agora_db::Db, ExitCode> {
    agora_db::Db::connect(&config.database).await.map_err(|e| {
        eprintln!("cannot open the database: {e}");
        ExitCode::FAILURE
    })
}

/// The database, for commands that write through it: writing through a schema this binary
/// does not match could corrupt data, so a mismatch refuses.
async fn open_matching_database(config: &Config) -> Result<agora_db::Db, ExitCode> {
    let db = open_database(config).await?;
    match agora_db::migrate::status(&db).await {
        Ok(status) if status.pending().is_empty() && status.refusals().is_empty() => Ok(db),
        Ok(_) => {
            eprintln!("the database schema does not match this binary: run `agora migrate verify`");
            Err(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("cannot read the migration state: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn worker(config: Config, queues: Vec<agora_jobs::Queue>) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        agora_server::telemetry::init_logging(&config.log);
        let _metrics = agora_server::telemetry::metrics_handle(&config.metrics);
        let db = match open_matching_database(&config).await {
            Ok(db) => db,
            Err(code) => return code,
        };
        // Handlers publish and invalidate: Redis in the cluster shape, in process otherwise.
        let kv = match agora_kv::Kv::connect(&config.redis).await {
            Ok(kv) => kv,
            Err(e) => {
                eprintln!("invalid Redis settings: {e}");
                return ExitCode::FAILURE;
            }
        };
        db.share_write_marks(std::sync::Arc::new(
            agora_server::write_marks::CounterWriteMarks(kv.counter().clone()),
        ));
        let mailer = match agora_server::email::mailer(&config) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let pusher = match agora_server::push::Pusher::from_config(&config.push) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let deps = agora_server::jobs::JobDeps {
            db,
            kv,
            config: config.clone(),
            mailer,
            pusher,
        };
        let running = agora_server::jobs::start_workers(&deps, &queues);
        agora_server::http_server::wait_for_signal().await;
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Runs `command` on the database of `config` (refusing a schema this binary does not match).
fn with_database<F, Fut>(config: &Config, command: F) -> ExitCode
where
    F: FnOnce(agora_db::Db) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        match open_matching_database(config).await {
            Ok(db) => command(db).await,
            Err(code) => code,
        }
    })
}

fn seed(mut config: Config, args: agora_server::seeding::SeedArgs) -> ExitCode {
    // Bulk statements (the fan-out of a whole data set, ANALYZE) run for minutes, not the API's
    // seconds.
    config.database.statement_timeout_ms = config.database.statement_timeout_ms.max(1_800_000);
    with_database(&config, async |db| {
        let started = std::time::Instant::now();
        match agora_server::seeding::seed(&db, &config, &args).await {
            Ok(report) => {
                println!(
                    "seeded in {:.1}s: {} users, {} friendship rows, {} follows, {} posts, {} likes, \
                     {} comments, {} notifications, {} feed entries, {} large authors; \
                     handles {}0..{}{}, password {:?}",
                    started.elapsed().as_secs_f64(),
                    report.users,
                    report.friendships,
                    report.follows,
                    report.posts,
                    report.likes,
                    report.comments,
                    report.notifications,
                    report.feed_entries,
                    report.large_authors,
                    args.prefix,
                    args.prefix,
                    args.users.saturating_sub(1),
                    args.password,
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn email(config: Config, command: EmailCommand) -> ExitCode {
    with_database(&config, async |db| {
        let EmailCommand::Unsuppress { address } = command;
        match db.unsuppress_email(&address.trim().to_lowercase()).await {
            Ok(true) => {
                println!("{address} will be emailed again");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                eprintln!("{address} is not suppressed");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn jobs(config: Config, command: JobsCommand) -> ExitCode {
    use agora_server::jobs::cli;
    with_database(&config, async |db| {
        let result = match command {
            JobsCommand::Stats => db
                .job_stats()
                .await
                .map(|s| print!("{}", cli::render_stats(&s, chrono::Utc::now())))
                .map_err(cli::JobsCliError::from),
            JobsCommand::List {
                state,
                queue,
                kind,
                limit,
            } => {
                let filter = agora_db::jobs::JobFilter { state, queue, kind };
                cli::list(&db, &filter, limit)
                    .await
                    .map(|jobs| print!("{}", cli::render_list(&jobs)))
            }
            JobsCommand::Show { id } => cli::show(&db, id)
                .await
                .map(|job| print!("{}", cli::render_job(&job))),
            JobsCommand::Retry {
                id: Some(id),
                all_dead: false,
                ..
            } => cli::retry(&db, id)
                .await
                .map(|job| println!("job {} ({}) is due again", job.id, job.kind)),
            JobsCommand::Retry { queue, .. } => {
                cli::retry_all_dead(&db, queue)
                    .await
                    .map(|(retried, skipped)| {
                        println!("retried {} dead job(s)", retried.len());
                        for id in skipped {
                            println!("skipped {id}: a waiting job of the same kind and key exists");
                        }
                    })
            }
            JobsCommand::Discard { id } => cli::discard(&db, id)
                .await
                .map(|()| println!("job {id} discarded")),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn migrate(config: Config, command: MigrateCommand) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let db = match open_database(&config).await {
            Ok(db) => db,
            Err(code) => return code,
        };
        let status = match agora_db::migrate::status(&db).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot read the migration state: {e}");
                return ExitCode::FAILURE;
            }
        };
        match command {
            MigrateCommand::Status => {
                print!("{}", status.render());
                ExitCode::SUCCESS
            }
            MigrateCommand::Up => match agora_db::migrate::up(&db).await {
                Ok(applied) if applied.is_empty() => {
                    println!("nothing to apply");
                    ExitCode::SUCCESS
                }
                Ok(applied) => {
                    let list: Vec<String> = applied.iter().map(|v| format!("{v:04}")).collect();
                    println!("applied {}", list.join(", "));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            },
            MigrateCommand::Verify => {
                for e in status.unknown() {
                    eprintln!(
                        "warning: the database has {:04}_{}, which this binary does not know",
                        e.version, e.name
                    );
                }
                let mut problems = status.refusals();
                problems.extend(
                    status
                        .pending()
                        .iter()
                        .map(|e| format!("{:04}_{} is pending", e.version, e.name)),
                );
                if problems.is_empty() {
                    println!(
                        "ok: {} migration(s) applied, checksums match",
                        status.entries.len()
                    );
                    ExitCode::SUCCESS
                } else {
                    for p in problems {
                        eprintln!("{p}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
    })
}

fn admin(config: Config, command: AdminCommand) -> ExitCode {
    let (handle, grant) = match command {
        AdminCommand::Grant { handle } => (handle, true),
        AdminCommand::Demote { handle } => (handle, false),
        AdminCommand::Notify { handle, message } => return notify(config, handle, message),
    };
    with_database(
        &config,
        async |db| match agora_server::identity::admin::set_role_from_cli(&db, &handle, grant).await
        {
            Ok(user) => {
                println!(
                    "{} ({}) now has the role {}",
                    user.handle, user.id, user.role
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    )
}

fn notify(config: Config, handle: String, message: String) -> ExitCode {
    with_database(
        &config,
        async |db| match agora_server::notifications::notice::notify_from_cli(
            &db, &handle, &message,
        )
        .await
        {
            Ok(user) => {
                println!("notice queued for {handle} ({user})");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    )
}

fn serve(config: Config) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let server = match agora_server::start(&config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "start-up failed");
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        server.run_to_exit().await
    })
}
