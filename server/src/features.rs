//! Feature flags behind `x-agora-feature`, read from configuration (`features.<key> = false`
//! switches an operation off). A key the contract does not declare is refused by the
//! configuration check, so a typo cannot leave a kill switch silently unset. The flag service
//! (per-user rollouts) replaces this source behind the same [`FeatureFlags`] trait.

use std::collections::BTreeMap;

use agora_api::rt::{FeatureFlags, FeatureState, PolicyFuture, Principal};

/// Flags from configuration: a missing key is on.
#[derive(Debug, Clone)]
pub struct ConfiguredFlags {
    flags: BTreeMap<String, bool>,
    retry_after_secs: u64,
}

impl ConfiguredFlags {
    /// The flags of `features`, answering `retry_after_secs` while one is off.
    pub fn new(flags: BTreeMap<String, bool>, retry_after_secs: u64) -> Self {
        Self {
            flags,
            retry_after_secs,
        }
    }

    fn state_of(&self, feature: &str) -> FeatureState {
        match self.flags.get(feature) {
            Some(false) => FeatureState::Off {
                retry_after_secs: self.retry_after_secs,
            },
            _ => FeatureState::On,
        }
    }
}

impl FeatureFlags for ConfiguredFlags {
    fn state<'a>(
        &'a self,
        feature: &'static str,
        _caller: Option<&'a Principal>,
    ) -> PolicyFuture<'a, FeatureState> {
        let state = self.state_of(feature);
        Box::pin(async move { Ok(state) })
    }
}

/// Every problem of the `features` section, each `features.<flag>: <what is wrong>`: a flag
/// must be one the contract declares.
pub fn problems(flags: &BTreeMap<String, bool>) -> Vec<String> {
    flags
        .keys()
        .filter(|k| !agora_api::FEATURES.contains(&k.as_str()))
        .map(|k| {
            format!(
                "features.{k}: unknown feature flag; the contract declares: {}",
                agora_api::FEATURES.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_on_unless_configured_off() {
        let flags = ConfiguredFlags::new(BTreeMap::from([("registration".into(), false)]), 30);
        assert_eq!(
            flags.state_of("registration"),
            FeatureState::Off {
                retry_after_secs: 30
            }
        );
        assert_eq!(flags.state_of("anything_else"), FeatureState::On);
    }

    #[test]
    fn only_declared_flags_may_be_configured() {
        assert!(problems(&BTreeMap::from([("registration".into(), true)])).is_empty());
        let e = problems(&BTreeMap::from([("registraton".into(), false)])).join("\n");
        assert!(
            e.contains("features.registraton") && e.contains("registration"),
            "{e}"
        );
    }
}
