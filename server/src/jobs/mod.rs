//! The server's background jobs: every kind it runs, their handlers, and the workers that
//! `agora serve` (with `jobs.in_process`) or `agora worker` start. Domains enqueue through their
//! repositories, in the transaction of the write that causes the job.

pub mod admin;
pub mod cli;

use agora_jobs::{Queue, Registry, RunningWorkers, Workers};

use crate::config::Config;

/// Every kind this release runs, with its handler.
pub fn registry(db: &agora_db::Db, config: &Config) -> Registry {
    agora_jobs::maintenance::register(Registry::new(), db.clone(), &config.jobs)
}

/// Starts workers for `queues` (all when empty).
pub fn start_workers(db: &agora_db::Db, config: &Config, queues: &[Queue]) -> RunningWorkers {
    let mut workers = Workers::new(db.clone(), registry(db, config), config.jobs.clone());
    if !queues.is_empty() {
        workers = workers.queues(queues);
    }
    workers.start()
}
