//! A secret setting that never prints.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret setting (a key, a password). It never prints: `Debug` and `Serialize` (what
/// `agora config check` shows) write a placeholder. Set it with `AGORA_<KEY>_FILE` in production.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The placeholder shown instead of the value.
    pub const REDACTED: &'static str = "<redacted>";

    /// The secret value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::REDACTED)
    }
}
