//! One Agora instance as a child process, for the end-to-end tests that kill an instance the way
//! a crash does (`kill -9`): an in-process server cannot be killed that way, and the `agora`
//! binary belongs to another package, so cargo would not build it for these tests.
//!
//! It serves exactly as `agora serve` does (`agora_server::start`, then `run_to_exit`),
//! configured by the `AGORA_*` variables only, and prints its bound address as its first line on
//! stdout (bind to port 0 and read it).

use std::io::Write as _;
use std::process::ExitCode;

use agora_server::config::{Config, Sources};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load(&Sources {
        file: None,
        env: None,
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match agora_server::start(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", server.local_addr())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    server.run_to_exit().await
}
