//! The load-test scenarios of Agora and the figures `agora-load` prints (see its `--help`).
//! A library too, so the smoke test runs the same scenarios against an in-process server.

pub mod histogram;
pub mod realtime;
pub mod scenarios;
pub mod summary;

use goose::config::GooseConfiguration;
use goose::prelude::*;

/// Runs the scenarios `config` selects and answers goose's metrics.
pub async fn attack(mut config: GooseConfiguration) -> Result<GooseMetrics, GooseError> {
    // A baseline run and the main run follow each other; goose's telnet controller would still
    // hold its port from the first (its WebSocket controller is off unless asked for).
    config.no_telnet = true;
    let mut attack = GooseAttack::initialize_with_config(config)?;
    for scenario in scenarios::all()? {
        attack = attack.register_scenario(scenario);
    }
    attack.execute().await
}
