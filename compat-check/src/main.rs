//! The `compat-check` command line: compare two OpenAPI 3.0 documents, exit 0/1/2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use compat_check::{Document, Format, Level, Options, compare_documents, load_waivers};

/// Detects breaking changes between two OpenAPI 3.0 documents.
///
/// Exit status: 0 = no breaking change at the chosen level, 1 = breaking changes found,
/// 2 = could not compare (unreadable file, invalid YAML/JSON, not OpenAPI 3.0, dangling $ref).
#[derive(Debug, Parser)]
#[command(name = "compat-check", version)]
struct Cli {
    /// The released document: a YAML/JSON path or git:REF:PATH.
    old: String,
    /// The proposed document: a YAML/JSON path or git:REF:PATH.
    new: String,
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
    match run(&cli) {
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
    let (old, new) = Document::load_pair(&cli.old, &cli.new).map_err(|e| e.to_string())?;
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
