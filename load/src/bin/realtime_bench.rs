//! `agora-realtime-bench`: benchmarks of the real-time gateway against running servers (see
//! `agora_load::realtime` for why these are not goose scenarios). `scripts/bench-realtime.sh`
//! starts two instances and runs every benchmark with the issue's figures.
//!
//! ```sh
//! agora-realtime-bench --host http://127.0.0.1:18181 connections --count 10000 --users 20 --server-pid 1234
//! agora-realtime-bench --host http://127.0.0.1:18181 --host http://127.0.0.1:18182 delivery --rate 1000
//! agora-realtime-bench --host http://127.0.0.1:18181 --host http://127.0.0.1:18182 fanout --members 100
//! ```
//!
//! Each run registers fresh accounts (`--password`); the servers need generous rate limits
//! (`rate_limits.auth_per_ip`, `chat_per_user`) and `realtime.max_connections_per_user` of at
//! least `count / users`.

use std::process::ExitCode;
use std::time::Duration;

use agora_load::realtime::{self, Accounts};
use clap::{Parser, Subcommand};

/// Benchmark the real-time gateway of running Agora servers.
#[derive(Debug, Parser)]
#[command(name = "agora-realtime-bench")]
struct Cli {
    /// A server's base URL; give two for the cross-instance benchmarks (the first sends).
    #[arg(long = "host", required = true)]
    hosts: Vec<String>,
    /// The password of the accounts each run registers.
    #[arg(long, default_value = "bench-password")]
    password: String,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Opens many idle authenticated sockets (round-robin over the hosts) and holds them; with
    /// --server-pid, prints the server's resident memory growth per socket.
    Connections {
        /// Sockets to open.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Accounts they belong to (the server's per-user limit must allow count / users).
        #[arg(long, default_value_t = 20)]
        users: usize,
        /// Seconds to hold them open.
        #[arg(long, default_value_t = 10)]
        hold_secs: u64,
        /// The server process to read VmRSS of (one host).
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Direct messages sent over sockets on the first host to recipients on the last:
    /// send → delivered percentiles.
    Delivery {
        /// Sender/recipient pairs.
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Messages per second, all pairs together.
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// One group; its members' sockets alternate between the hosts; the percentiles of every
    /// delivery of every message.
    Fanout {
        /// Members, the sender included (the contract allows 100).
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Messages the sender sends.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        /// Messages per second.
        #[arg(long, default_value_t = 10)]
        rate: u32,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let accounts = Accounts::fresh(&cli.password);
    let result = match cli.bench {
        Bench::Connections {
            count,
            users,
            hold_secs,
            server_pid,
        } => realtime::hold(
            &accounts,
            &cli.hosts,
            count,
            users,
            Duration::from_secs(hold_secs),
            server_pid,
        )
        .await
        .map(|held| held.render()),
        Bench::Delivery {
            pairs,
            rate,
            seconds,
        } => {
            let (first, last) = (&cli.hosts[0], &cli.hosts[cli.hosts.len() - 1]);
            realtime::delivery(&accounts, first, last, pairs, rate, seconds)
                .await
                .map(|l| l.render("delivery (send → delivered, across instances)"))
        }
        Bench::Fanout {
            members,
            messages,
            rate,
        } => realtime::fanout(&accounts, &cli.hosts, members, messages, rate)
            .await
            .map(|l| l.render(&format!("fan-out to {} members", members - 1))),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agora-realtime-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
