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
    }
}

fn serve(config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
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
        match server.run_until_signal().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shutdown failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
