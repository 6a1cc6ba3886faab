//! `agora seed`: a generated data set of realistic size for query-plan tests, benchmarks and the
//! load tool. Every seeded user signs in with the same password, so a load run can log them in.

use agora_db::seed::{SeedPlan, SeedReport};

use crate::config::Config;
use crate::identity::passwords::Passwords;

/// `agora seed` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Users to create (handles `<prefix>0`, `<prefix>1`, …).
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    /// Posts to create, over the last 30 days.
    #[arg(long, default_value_t = 200_000)]
    pub posts: u32,
    /// The biggest friend list (user 0's; users 1–4 get a fifth of it).
    #[arg(long, default_value_t = 5_000)]
    pub max_friends: u32,
    /// Random friendships per user (about twice as many friends each).
    #[arg(long, default_value_t = 5)]
    pub friends_per_user: u32,
    /// Random follows per user (half of them among the first 1% of users).
    #[arg(long, default_value_t = 10)]
    pub follows_per_user: u32,
    /// Fan out the posts of the last this many days into feeds.
    #[arg(long, default_value_t = 3)]
    pub fanout_days: u32,
    /// Group chats of five with ten messages each (user 0 is in the first 300).
    #[arg(long, default_value_t = 2_000)]
    pub conversations: u32,
    /// Messages in user 0's direct conversation with user 1.
    #[arg(long, default_value_t = 100_000)]
    pub long_conversation: u32,
    /// Handles start with this (a second seed into the same database needs another).
    #[arg(long, default_value = "seed")]
    pub prefix: String,
    /// Every seeded user's password.
    #[arg(long, default_value = "seed-password")]
    pub password: String,
    /// The generator's seed (the same seed gives the same shape).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The password could not be hashed.
    #[error("cannot hash the seed password: {0}")]
    Password(String),
    /// The database refused.
    #[error("cannot write the data set: {0}")]
    Database(#[from] agora_db::DbError),
}

/// Generates the data set of `args` into `db`.
pub async fn seed(
    db: &agora_db::Db,
    config: &Config,
    args: &SeedArgs,
) -> Result<SeedReport, SeedError> {
    let passwords = Passwords::new(&config.auth)
        .await
        .map_err(|e| SeedError::Password(e.to_string()))?;
    let password_hash = passwords
        .hash(&args.password)
        .await
        .map_err(|e| SeedError::Password(e.to_string()))?;
    let plan = SeedPlan {
        prefix: args.prefix.clone(),
        users: args.users,
        posts: args.posts,
        max_friends: args.max_friends,
        friends_per_user: args.friends_per_user,
        follows_per_user: args.follows_per_user,
        fanout_days: args.fanout_days,
        fanout_max_audience: u32::try_from(config.feed.fanout_max_audience).unwrap_or(u32::MAX),
        conversations: args.conversations,
        long_conversation: args.long_conversation,
        password_hash,
        seed: args.seed,
    };
    Ok(db.seed(&plan).await?)
}
