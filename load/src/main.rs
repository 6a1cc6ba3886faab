//! `agora-load`: load tests of a running Agora server with goose, the Rust counterpart of
//! Locust. Every goose option works (`--host`, `--users`, `--increase-rate`, `--run-time`,
//! `--throttle-requests`, `--report-file report.html`, …); this tool adds the scenarios, the
//! seeded accounts they sign in as, and `--compare-with`, which runs a baseline scenario first on
//! the same server with the same settings and prints each operation's throughput as a ratio of
//! the baseline's. An HTML report (`--report-file x.html`) gets a latency histogram per
//! operation after goose's own charts.
//!
//! ```sh
//! agora seed                                   # 10,000 accounts, password seed-password
//! agora-load --host http://127.0.0.1:8080 --scenarios feed --compare-with healthz \
//!   --users 16 --increase-rate 16 --run-time 30s --report-file feed.html
//! ```

use clap::Parser;
use goose::config::{GooseConfiguration, Scenarios};

/// Load-test a running Agora server.
#[derive(Debug, Parser)]
#[command(name = "agora-load")]
struct Cli {
    /// Run this scenario first (with the same settings) and report the others' throughput as
    /// ratios of its: `healthz` makes "fraction of the server's plain request rate".
    #[arg(long)]
    compare_with: Option<String>,
    /// Handles of the seeded accounts start with this (`agora seed --prefix`).
    #[arg(long, default_value = "seed")]
    account_prefix: String,
    /// How many accounts were seeded (`agora seed --users`).
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// The seeded accounts' password (`agora seed --password`).
    #[arg(long, default_value = "seed-password")]
    account_password: String,
    #[command(flatten)]
    goose: GooseConfiguration,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    agora_load::scenarios::use_accounts(agora_load::scenarios::Accounts {
        prefix: cli.account_prefix.clone(),
        count: cli.accounts,
        password: cli.account_password.clone(),
    });
    let baseline = match &cli.compare_with {
        Some(name) => {
            let mut config = cli.goose.clone();
            config.scenarios = Some(Scenarios {
                active: vec![name.clone()],
            });
            // The baseline's own report would overwrite the main one.
            config.report_file = Vec::new();
            match agora_load::attack(config).await {
                Ok(metrics) => Some(agora_load::summary::Summary::of(&metrics)),
                Err(e) => {
                    eprintln!("baseline {name}: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    match agora_load::attack(cli.goose.clone()).await {
        Ok(metrics) => {
            let summary = agora_load::summary::Summary::of(&metrics);
            let html: Vec<&String> = cli
                .goose
                .report_file
                .iter()
                .filter(|r| r.ends_with(".html"))
                .collect();
            let histograms = if html.is_empty() {
                String::new()
            } else {
                agora_load::histogram::section(&agora_load::summary::latency_buckets(&metrics))
            };
            for report in html {
                if let Err(e) = agora_load::histogram::append_to_report(
                    std::path::Path::new(report),
                    &histograms,
                ) {
                    eprintln!("{report}: cannot add the latency histograms: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
            print!("{}", summary.render(baseline.as_ref()));
            if summary.failures() > 0 {
                eprintln!("{} requests failed", summary.failures());
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
