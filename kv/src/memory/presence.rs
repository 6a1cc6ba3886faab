//! In-process presence sets with per-member expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Sweep, lock, now};
use crate::BoxFuture;
use crate::presence::Presence;

#[derive(Debug, Default)]
struct Inner {
    sets: HashMap<String, HashMap<String, Instant>>,
    sweep: Sweep,
}

/// Presence sets for one process.
#[derive(Debug, Default)]
pub struct MemoryPresence {
    inner: Mutex<Inner>,
}

impl MemoryPresence {
    /// No sets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no set is held (expired sets are dropped when read or swept).
    pub fn is_empty(&self) -> bool {
        lock(&self.inner).sets.is_empty()
    }

    pub(crate) fn add_at(&self, set: &str, member: &str, ttl: Duration, now: Instant) {
        let mut inner = lock(&self.inner);
        let len = inner.sets.len();
        if inner.sweep.due(len) {
            inner.sets.retain(|_, members| {
                members.retain(|_, expires| *expires > now);
                !members.is_empty()
            });
        }
        inner
            .sets
            .entry(set.to_owned())
            .or_default()
            .insert(member.to_owned(), now + ttl);
    }

    pub(crate) fn admit_at(
        &self,
        set: &str,
        member: &str,
        ttl: Duration,
        max: usize,
        now: Instant,
    ) -> Option<usize> {
        let mut inner = lock(&self.inner);
        let members = inner.sets.entry(set.to_owned()).or_default();
        members.retain(|_, expires| *expires > now);
        if !members.contains_key(member) && members.len() >= max {
            if members.is_empty() {
                inner.sets.remove(set);
            }
            return None;
        }
        members.insert(member.to_owned(), now + ttl);
        Some(members.len())
    }

    pub(crate) fn remove_now(&self, set: &str, member: &str) {
        let mut inner = lock(&self.inner);
        if let Some(members) = inner.sets.get_mut(set) {
            members.remove(member);
            if members.is_empty() {
                inner.sets.remove(set);
            }
        }
    }

    /// When `member` of `set` expires, if it is an unexpired member.
    pub(crate) fn expiry_at(&self, set: &str, member: &str, now: Instant) -> Option<Instant> {
        lock(&self.inner)
            .sets
            .get(set)
            .and_then(|members| members.get(member))
            .copied()
            .filter(|expires| *expires > now)
    }

    pub(crate) fn members_at(&self, set: &str, now: Instant) -> Vec<String> {
        let mut inner = lock(&self.inner);
        let Some(members) = inner.sets.get_mut(set) else {
            return Vec::new();
        };
        members.retain(|_, expires| *expires > now);
        let mut names: Vec<String> = members.keys().cloned().collect();
        if names.is_empty() {
            inner.sets.remove(set);
        }
        names.sort();
        names
    }
}

impl Presence for MemoryPresence {
    fn add<'a>(&'a self, set: &'a str, member: &'a str, ttl: Duration) -> BoxFuture<'a, ()> {
        self.add_at(set, member, ttl, now());
        Box::pin(std::future::ready(()))
    }

    fn admit<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        ttl: Duration,
        max: usize,
    ) -> BoxFuture<'a, Option<usize>> {
        Box::pin(std::future::ready(self.admit_at(
            set,
            member,
            ttl,
            max,
            now(),
        )))
    }

    fn remove<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, ()> {
        self.remove_now(set, member);
        Box::pin(std::future::ready(()))
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, Vec<String>> {
        Box::pin(std::future::ready(self.members_at(set, now())))
    }
}
