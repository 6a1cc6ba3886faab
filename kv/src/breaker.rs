//! Circuit breaker in front of Redis: closed → (N consecutive failures) → open → (cool-down) → one probe → closed/open.
//!
//! Design notes:
//! - The state machine is pure apart from a mutex: callers pass `now`, so tests drive time explicitly and the loom
//!   model (`cfg(agora_loom)`) explores thread interleavings without a clock. The lock is never held across an await.
//! - Every transition bumps a generation. A permit remembers the generation it was admitted in, and outcomes of
//!   stale permits are ignored: a slow call admitted before the breaker opened must not close it, and a slow
//!   failure from before a successful probe must not reopen it.
//! - Half-open admits exactly one probe; everyone else keeps failing fast until the probe reports.
//!   A probe dropped without an outcome (its future was cancelled) returns the breaker to open with an already
//!   elapsed cool-down, so the next call probes again instead of the breaker staying half-open forever.
//!
//! Loom model (see `loom_tests`):
//! `RUSTFLAGS="--cfg agora_loom" CARGO_TARGET_DIR=target/loom cargo test -p agora-kv --release --lib breaker`.
//! The cfg is not the conventional `loom`: RUSTFLAGS reach every crate, and `event-listener` (under redis) switches
//! to loom types under `cfg(loom)` without depending on loom, so the tree would not build. The separate target
//! directory keeps the RUSTFLAGS build from invalidating the shared one.

use std::time::{Duration, Instant};

#[cfg(agora_loom)]
use loom::sync::Mutex;
#[cfg(not(agora_loom))]
use std::sync::Mutex;

/// Threshold and cool-down of a [`Breaker`].
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (at least 1).
    pub threshold: u32,
    /// Time the breaker stays open before admitting one probe.
    pub cooldown: Duration,
}

/// What the breaker currently lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerPhase {
    /// Calls go to Redis; `failures` consecutive calls have failed so far.
    Closed {
        /// Consecutive failures since the last success (below the threshold).
        failures: u32,
    },
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One probe call is in flight; everyone else fails fast.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    generation: u64,
}

/// The breaker shared by every Redis call of one instance.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Permission to make one Redis call; report its outcome with [`Breaker::record`].
#[derive(Debug)]
#[must_use = "report the outcome with Breaker::record"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    generation: u64,
    probe: bool,
    admitted_at: Instant,
    reported: bool,
}

impl Permit<'_> {
    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// The outcome of a permitted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Redis answered.
    Success,
    /// Redis was unavailable (error or timeout).
    Failure,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config: BreakerConfig {
                threshold: config.threshold.max(1),
                cooldown: config.cooldown,
            },
            inner: Mutex::new(Inner {
                phase: Phase::Closed { failures: 0 },
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Inner> + '_ {
        // A panic while holding this lock cannot leave the small state inconsistent (each update is one
        // assignment), so a poisoned lock is still usable.
        #[cfg(not(agora_loom))]
        {
            self.inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
        #[cfg(agora_loom)]
        {
            self.inner.lock().expect("loom mutex is never poisoned")
        }
    }

    /// Asks to make a call at `now`: a permit, or `None` to fail fast (open, or a probe is already in flight).
    pub fn admit(&self, now: Instant) -> Option<Permit<'_>> {
        let mut inner = self.lock();
        let probe = match inner.phase {
            Phase::Closed { .. } => false,
            Phase::HalfOpen => return None,
            Phase::Open { until } if now < until => return None,
            Phase::Open { .. } => {
                inner.phase = Phase::HalfOpen;
                inner.generation += 1;
                true
            }
        };
        Some(Permit {
            breaker: self,
            generation: inner.generation,
            probe,
            admitted_at: now,
            reported: false,
        })
    }

    /// Reports the outcome of a permitted call; returns the new phase when it changed.
    pub fn record(
        &self,
        mut permit: Permit<'_>,
        outcome: Outcome,
        now: Instant,
    ) -> Option<BreakerPhase> {
        permit.reported = true;
        let mut inner = self.lock();
        if permit.generation != inner.generation {
            // Admitted before the last transition: its outcome says nothing about the current state.
            return None;
        }
        let before = phase_of(inner.phase);
        inner.phase = match (inner.phase, outcome) {
            (Phase::Closed { .. }, Outcome::Success) => Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, Outcome::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.threshold {
                    inner.generation += 1;
                    Phase::Open {
                        until: now + self.config.cooldown,
                    }
                } else {
                    Phase::Closed { failures }
                }
            }
            (Phase::HalfOpen, Outcome::Success) => {
                inner.generation += 1;
                Phase::Closed { failures: 0 }
            }
            (Phase::HalfOpen, Outcome::Failure) => {
                inner.generation += 1;
                Phase::Open {
                    until: now + self.config.cooldown,
                }
            }
            // Same generation implies the permit saw this phase; an open breaker issues no permits.
            (phase @ Phase::Open { .. }, _) => phase,
        };
        let after = phase_of(inner.phase);
        (after != before).then_some(after)
    }

    /// The current phase (a cool-down that has elapsed still reads `Open` until a call probes).
    pub fn phase(&self) -> BreakerPhase {
        phase_of(self.lock().phase)
    }

    fn abandon_probe(&self, generation: u64, admitted_at: Instant) {
        let mut inner = self.lock();
        if inner.generation == generation && matches!(inner.phase, Phase::HalfOpen) {
            inner.generation += 1;
            inner.phase = Phase::Open { until: admitted_at };
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker
                .abandon_probe(self.generation, self.admitted_at);
        }
    }
}

fn phase_of(phase: Phase) -> BreakerPhase {
    match phase {
        Phase::Closed { failures } => BreakerPhase::Closed { failures },
        Phase::Open { .. } => BreakerPhase::Open,
        Phase::HalfOpen => BreakerPhase::HalfOpen,
    }
}

#[cfg(all(test, not(agora_loom)))]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(5);

    fn breaker(threshold: u32) -> Breaker {
        Breaker::new(BreakerConfig {
            threshold,
            cooldown: COOLDOWN,
        })
    }

    fn fail(b: &Breaker, now: Instant) -> Option<BreakerPhase> {
        let permit = b.admit(now).expect("admitted");
        b.record(permit, Outcome::Failure, now)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = breaker(3);
        let t0 = Instant::now();
        assert_eq!(fail(&b, t0), Some(BreakerPhase::Closed { failures: 1 }));
        // A success in between resets the count: failures must be consecutive.
        let p = b.admit(t0).expect("closed");
        assert_eq!(
            b.record(p, Outcome::Success, t0),
            Some(BreakerPhase::Closed { failures: 0 })
        );
        fail(&b, t0);
        fail(&b, t0);
        assert_eq!(fail(&b, t0), Some(BreakerPhase::Open));
        assert!(b.admit(t0).is_none(), "open fails fast");
        assert!(b.admit(t0 + COOLDOWN / 2).is_none());
    }

    #[test]
    fn half_open_admits_one_probe_and_success_closes() {
        let b = breaker(1);
        let t0 = Instant::now();
        fail(&b, t0);
        let t1 = t0 + COOLDOWN;
        let probe = b.admit(t1).expect("cool-down over: probe");
        assert!(probe.is_probe());
        assert_eq!(b.phase(), BreakerPhase::HalfOpen);
        assert!(b.admit(t1).is_none(), "only one probe");
        assert_eq!(
            b.record(probe, Outcome::Success, t1),
            Some(BreakerPhase::Closed { failures: 0 })
        );
        assert!(!b.admit(t1).expect("closed").is_probe());
    }

    #[test]
    fn failed_probe_reopens_for_a_full_cooldown() {
        let b = breaker(1);
        let t0 = Instant::now();
        fail(&b, t0);
        let t1 = t0 + COOLDOWN;
        let probe = b.admit(t1).expect("probe");
        assert_eq!(
            b.record(probe, Outcome::Failure, t1),
            Some(BreakerPhase::Open)
        );
        assert!(b.admit(t1 + COOLDOWN / 2).is_none());
        assert!(b.admit(t1 + COOLDOWN).expect("next probe").is_probe());
    }

    #[test]
    fn stale_outcomes_are_ignored() {
        let b = breaker(1);
        let t0 = Instant::now();
        let slow = b.admit(t0).expect("closed");
        fail(&b, t0);
        // The slow call admitted while closed succeeds late: the breaker stays open.
        assert_eq!(b.record(slow, Outcome::Success, t0), None);
        assert_eq!(b.phase(), BreakerPhase::Open);
    }

    #[test]
    fn cancelled_probe_lets_the_next_call_probe() {
        let b = breaker(1);
        let t0 = Instant::now();
        fail(&b, t0);
        let t1 = t0 + COOLDOWN;
        drop(b.admit(t1).expect("probe"));
        assert_eq!(b.phase(), BreakerPhase::Open);
        assert!(b.admit(t1).expect("re-probe").is_probe());
    }
}

/// Loom model of the state machine. Run:
/// `RUSTFLAGS="--cfg agora_loom" CARGO_TARGET_DIR=target/loom cargo test -p agora-kv --release --lib breaker`
#[cfg(all(test, agora_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    const COOLDOWN: Duration = Duration::from_secs(5);

    /// Never two probes in flight, and a successful probe with no later failure leaves the breaker closed.
    #[test]
    fn at_most_one_probe_in_flight() {
        loom::model(|| {
            let t0 = Instant::now();
            let b = Arc::new(Breaker::new(BreakerConfig {
                threshold: 1,
                cooldown: COOLDOWN,
            }));
            // Open it, with the cool-down already over for every thread below.
            let p = b.admit(t0).expect("closed");
            b.record(p, Outcome::Failure, t0);
            let after = t0 + COOLDOWN;
            let probes = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let b = b.clone();
                    let probes = probes.clone();
                    thread::spawn(move || {
                        if let Some(permit) = b.admit(after) {
                            // A call admitted after the other thread's probe closed the breaker is a normal one.
                            let probe = permit.is_probe();
                            if probe {
                                let in_flight = probes.fetch_add(1, Ordering::SeqCst) + 1;
                                assert_eq!(in_flight, 1, "two probes in flight");
                            }
                            let outcome = if i == 0 {
                                Outcome::Success
                            } else {
                                Outcome::Failure
                            };
                            b.record(permit, outcome, after);
                            if probe {
                                probes.fetch_sub(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("thread");
            }
            // Whatever interleaving: the breaker is in a phase some probe outcome explains.
            match b.phase() {
                BreakerPhase::Closed { failures } => assert_eq!(failures, 0),
                BreakerPhase::Open => {}
                BreakerPhase::HalfOpen => {
                    panic!("a reported probe never leaves the breaker half-open")
                }
            }
        });
    }

    /// Concurrent failures in the closed phase open the breaker exactly once (one generation bump).
    #[test]
    fn concurrent_failures_open_once() {
        loom::model(|| {
            let t0 = Instant::now();
            let b = Arc::new(Breaker::new(BreakerConfig {
                threshold: 2,
                cooldown: COOLDOWN,
            }));
            let opened = Arc::new(AtomicUsize::new(0));
            // Two racing failures reach the threshold together (three threads explode the state space).
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let b = b.clone();
                    let opened = opened.clone();
                    thread::spawn(move || {
                        if let Some(permit) = b.admit(t0)
                            && b.record(permit, Outcome::Failure, t0) == Some(BreakerPhase::Open)
                        {
                            opened.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("thread");
            }
            assert_eq!(b.phase(), BreakerPhase::Open);
            assert_eq!(opened.load(Ordering::SeqCst), 1);
        });
    }

    /// A cancelled probe racing a new caller never strands the breaker half-open.
    #[test]
    fn cancelled_probe_never_strands_half_open() {
        loom::model(|| {
            let t0 = Instant::now();
            let b = Arc::new(Breaker::new(BreakerConfig {
                threshold: 1,
                cooldown: COOLDOWN,
            }));
            let p = b.admit(t0).expect("closed");
            b.record(p, Outcome::Failure, t0);
            let after = t0 + COOLDOWN;
            let b2 = b.clone();
            let canceller = thread::spawn(move || {
                drop(b2.admit(after));
            });
            let b3 = b.clone();
            let prober = thread::spawn(move || {
                if let Some(permit) = b3.admit(after) {
                    b3.record(permit, Outcome::Success, after);
                }
            });
            canceller.join().expect("thread");
            prober.join().expect("thread");
            assert_ne!(b.phase(), BreakerPhase::HalfOpen);
        });
    }
}
