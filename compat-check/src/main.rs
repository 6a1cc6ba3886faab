//! The `compat-check` command line: compare two OpenAPI 3.0 documents, exit 0/1/2; and keep
//! the release history (`release`, `history`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use compat_check::release::History;
use compat_check::{Document, Format, Level, Options, compare_documents, load_waivers};

/// Detects breaking changes between two OpenAPI 3.0 documents, and keeps the history of released
/// versions (`compat-check release`, `compat-check history`).
///
/// Exit status: 0 = no breaking change at the chosen level, 1 = breaking changes found,
/// 2 = could not compare (unreadable file, invalid YAML/JSON, not OpenAPI 3.0, dangling $ref).
#[derive(Debug, Parser)]
#[command(
    name = "compat-check",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The released document: a YAML/JSON path or git:REF:PATH.
    #[arg(required = true)]
    old: Option<String>,
    /// The proposed document: a YAML/JSON path or git:REF:PATH.
    #[arg(required = true)]
    new: Option<String>,
    /// wire = HTTP/JSON compatibility only; client = wire plus generated-client source compatibility.
    #[arg(long, value_enum, default_value_t = CliLevel::Client)]
    level: CliLevel,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CliFormat::Text)]
    format: CliFormat,
    /// Waivers file: a YAML list of {rule, location, reason, expires?}.
    #[arg(long, value_name = "FILE")]
    allow: Option<PathBuf>,
    /// Date used for x-sunset and waiver expiry (YYYY-MM-DD); defaults to today (UTC).
    #[arg(long, value_name = "DATE", hide = true)]
    today: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Releases the contract: checks it against the newest released version (info.version must
    /// grow by at least a minor for additions, a major for breaking changes), then writes
    /// DIR/<version>.yaml and its checksum in DIR/SHA256SUMS. Exit 1 when refused.
    Release {
        /// The release directory.
        #[arg(long, default_value = "openapi/released")]
        dir: PathBuf,
        /// Check and report only; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The contract to release.
        #[arg(default_value = "openapi.yaml")]
        contract: PathBuf,
    },
    /// Verifies the release history: no released file changed (SHA256SUMS), each is named after
    /// its info.version, and each is compatible with its predecessor unless its major number
    /// grew. Exit 1 on any problem.
    History {
        /// The release directory.
        #[arg(long, default_value = "openapi/released")]
        dir: PathBuf,
        /// Print only the path of the newest release (the build gate's baseline).
        #[arg(long)]
        newest: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliLevel {
    Wire,
    Client,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliFormat {
    Text,
    Json,
    Markdown,
    Github,
    Junit,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors also mean "could not compare"; --help and --version are successes.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let outcome = match &cli.command {
        Some(Command::Release {
            dir,
            dry_run,
            contract,
        }) => release(dir, contract, *dry_run),
        Some(Command::History { dir, newest }) => history(dir, *newest),
        None => run(&cli),
    };
    match outcome {
        Ok(true) => ExitCode::from(1),
        Ok(false) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("compat-check: {message}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether breaking changes were found; errors are messages for exit code 2.
fn run(cli: &Cli) -> Result<bool, String> {
    let waivers = match &cli.allow {
        Some(p) => load_waivers(p).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let (Some(old), Some(new)) = (&cli.old, &cli.new) else {
        return Err("two documents are required: compat-check OLD NEW".into());
    };
    let (old, new) = Document::load_pair(old, new).map_err(|e| e.to_string())?;
    let opts = Options {
        level: match cli.level {
            CliLevel::Wire => Level::Wire,
            CliLevel::Client => Level::Client,
        },
        waivers,
        today: cli.today.clone(),
    };
    let report = compare_documents(&old, &new, &opts);
    let format = match cli.format {
        CliFormat::Text => Format::Text,
        CliFormat::Json => Format::Json,
        CliFormat::Markdown => Format::Markdown,
        CliFormat::Github => Format::Github,
        CliFormat::Junit => Format::Junit,
    };
    print!("{}", report.render(format));
    Ok(report.has_breaking())
}

/// `compat-check release`: `Ok(true)` when refused (exit 1), like a breaking comparison.
fn release(dir: &Path, contract: &Path, dry_run: bool) -> Result<bool, String> {
    use compat_check::release::ReleaseError;
    let history = History::load(dir).map_err(|e| e.to_string())?;
    let outcome = if dry_run {
        history.plan(contract).map(|plan| {
            let previous = plan
                .previous
                .map_or("nothing (first release)".to_owned(), |p| p.to_string());
            println!(
                "would release {} as {}.yaml (after {previous}; the changes need a {:?} bump)",
                contract.display(),
                plan.version,
                plan.needed
            );
            if let Some(report) = plan.report {
                print!("{}", report.render(Format::Text));
            }
        })
    } else {
        history.release(contract).map(|r| {
            println!(
                "released {} as {} (checksum in {}/{})",
                contract.display(),
                r.path.display(),
                dir.display(),
                compat_check::release::MANIFEST
            );
        })
    };
    match outcome {
        Ok(()) => Ok(false),
        Err(ReleaseError::Refused(why)) => {
            eprintln!("compat-check release: refused: {why}");
            Ok(true)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `compat-check history`: `Ok(true)` when the history has problems (exit 1).
fn history(dir: &Path, newest: bool) -> Result<bool, String> {
    let history = History::load(dir).map_err(|e| e.to_string())?;
    if newest {
        let release = history
            .newest()
            .ok_or_else(|| format!("{}: no released contract", dir.display()))?;
        println!("{}", release.path.display());
        return Ok(false);
    }
    let problems = history.verify().map_err(|e| e.to_string())?;
    for r in &history.releases {
        println!("{}  {}", r.version, r.path.display());
    }
    if problems.is_empty() {
        println!("history sound: {} release(s)", history.releases.len());
        return Ok(false);
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    Ok(true)
}
