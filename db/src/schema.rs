//! The tables, once for both backends (see [`crate::sql_types`]).

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Accounts.
    users (id) {
        id -> Uuid,
        handle -> Text,
        email -> Text,
        display_name -> Text,
        bio -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        password_hash -> Text,
        role -> Text,
        token_version -> BigInt,
        created_at -> UtcTime,
        updated_at -> UtcTime,
    }
}
