//! The scenarios, each a sequence of the contract's operations a real client makes:
//! `healthz` (the baseline every ratio divides by), `login`, `profile` (`get_me`, `get_user`),
//! `feed` (home feed pages, now and then a post or a like), `feedread` (home feed pages only:
//! the warm-cache read path), `post` and `chat` (the inbox, a conversation's latest messages,
//! now and then a message sent over REST; the socket side is `agora-realtime-bench`).
//!
//! Every simulated user signs in once, at its start, as one of the accounts `agora seed` made
//! (`<prefix><n>`, chosen by the user's index), and sends the access token with each request.
//! Request bodies are the generated client's types, so a contract change that breaks a
//! scenario breaks its build.

use std::sync::OnceLock;

use agora_client::types::{
    ConversationResultsPage, LoginRequest, MessageCreate, PostCreate, PostResultsPage, Session,
};
use goose::goose::GooseResponse;
use goose::prelude::*;

/// Which seeded accounts the simulated users sign in as.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// Handles are `<prefix><n>`.
    pub prefix: String,
    /// How many were seeded.
    pub count: usize,
    /// Their password.
    pub password: String,
}

static ACCOUNTS: OnceLock<Accounts> = OnceLock::new();

/// Sets the accounts once, before the attack starts (goose transactions are plain functions).
pub fn use_accounts(accounts: Accounts) {
    let _ = ACCOUNTS.set(accounts);
}

fn failed(why: impl std::fmt::Display) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(why.to_string()))
}

fn accounts() -> Result<&'static Accounts, Box<TransactionError>> {
    ACCOUNTS
        .get()
        .ok_or_else(|| failed("no accounts configured"))
}

/// What a signed-in simulated user keeps.
#[derive(Debug, Clone)]
struct SignedIn {
    token: String,
    /// The last feed page's token and a post seen on it.
    next_page: Option<String>,
    seen_post: Option<uuid::Uuid>,
    /// The most recently active conversation of the inbox, and how many messages were sent.
    conversation: Option<uuid::Uuid>,
    sent: u64,
}

/// The seeded account simulated user `index` signs in as: spread over the ordinary accounts.
/// `agora seed` makes its first accounts the hubs (thousands of friends) and the first 1% the
/// well-known ones; a load where every user were a hub would measure fan-out to thousands per
/// post, not a typical user.
pub fn account_of(index: usize, count: usize) -> usize {
    let skip = if count > 200 { count / 100 } else { 0 };
    let ordinary = count.saturating_sub(skip).max(1);
    skip + (index.wrapping_mul(7919)) % ordinary
}

/// The credentials of simulated user `index` (`weighted_users_index`).
fn login_body(index: usize) -> Result<LoginRequest, Box<TransactionError>> {
    let a = accounts()?;
    let n = account_of(index, a.count);
    LoginRequest::builder()
        .login(format!("{}{n}", a.prefix))
        .password(a.password.clone())
        .try_into()
        .map_err(failed)
}

async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let body = login_body(user.weighted_users_index)?;
    let goose = user.post_json("/v1/sessions", &body).await?;
    let response = goose.response.map_err(failed)?;
    if !response.status().is_success() {
        return Err(failed(format!(
            "sign-in as {} answered {} (seed the accounts with `agora seed`)",
            body.login.as_str(),
            response.status()
        )));
    }
    let session: Session = response.json().await.map_err(failed)?;
    user.set_session_data(SignedIn {
        token: session.tokens.access_token,
        next_page: None,
        seen_post: None,
        conversation: None,
        sent: 0,
    });
    Ok(())
}

fn token(user: &GooseUser) -> String {
    user.get_session_data::<SignedIn>()
        .map(|s| s.token.clone())
        .unwrap_or_default()
}

/// An authenticated request named after its operation.
async fn call(
    user: &mut GooseUser,
    operation: &'static str,
    method: GooseMethod,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<GooseResponse, Box<TransactionError>> {
    let mut builder = user
        .get_request_builder(&method, path)?
        .bearer_auth(token(user));
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(operation)
        .set_request_builder(builder)
        .build();
    user.request(request).await
}

async fn healthz(user: &mut GooseUser) -> TransactionResult {
    let request = GooseRequest::builder()
        .path("/healthz")
        .name("get_healthz")
        .build();
    user.request(request).await?;
    Ok(())
}

async fn login(user: &mut GooseUser) -> TransactionResult {
    let body = login_body(user.weighted_users_index)?;
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path("/v1/sessions")
        .name("login")
        .set_request_builder(
            user.get_request_builder(&GooseMethod::Post, "/v1/sessions")?
                .json(&body),
        )
        .build();
    user.request(request).await?;
    Ok(())
}

async fn get_me(user: &mut GooseUser) -> TransactionResult {
    call(user, "get_me", GooseMethod::Get, "/v1/me", None).await?;
    Ok(())
}

async fn get_user(user: &mut GooseUser) -> TransactionResult {
    let a = accounts()?;
    // Another seeded account's profile, by handle (then by id would need its id).
    let n = account_of(user.weighted_users_index.wrapping_add(1), a.count);
    let path = format!("/v1/handles/{}{n}", a.prefix);
    call(user, "get_user_by_handle", GooseMethod::Get, &path, None).await?;
    Ok(())
}

async fn feed_first_page(user: &mut GooseUser) -> TransactionResult {
    let response = call(
        user,
        "get_home_feed",
        GooseMethod::Get,
        "/v1/feed?limit=20",
        None,
    )
    .await?;
    remember_page(user, response).await
}

async fn feed_next_page(user: &mut GooseUser) -> TransactionResult {
    let next = user
        .get_session_data::<SignedIn>()
        .and_then(|s| s.next_page.clone());
    let Some(next) = next else {
        return feed_first_page(user).await;
    };
    let path = format!("/v1/feed?limit=20&page_token={next}");
    let response = call(
        user,
        "get_home_feed (next page)",
        GooseMethod::Get,
        &path,
        None,
    )
    .await?;
    remember_page(user, response).await
}

async fn remember_page(user: &mut GooseUser, response: GooseResponse) -> TransactionResult {
    let Ok(response) = response.response else {
        return Ok(());
    };
    let Ok(page) = response.json::<PostResultsPage>().await else {
        return Ok(());
    };
    if let Some(state) = user.get_session_data_mut::<SignedIn>() {
        state.next_page = page.next_page;
        state.seen_post = page.items.first().map(|p| p.id);
    }
    Ok(())
}

async fn create_post(user: &mut GooseUser) -> TransactionResult {
    let post: PostCreate = PostCreate::builder()
        .body("a post from the load test")
        .try_into()
        .map_err(failed)?;
    let body = serde_json::to_value(post).map_err(failed)?;
    call(
        user,
        "create_post",
        GooseMethod::Post,
        "/v1/posts",
        Some(body),
    )
    .await?;
    Ok(())
}

async fn like_post(user: &mut GooseUser) -> TransactionResult {
    let post = user
        .get_session_data::<SignedIn>()
        .and_then(|s| s.seen_post);
    if let Some(post) = post {
        let path = format!("/v1/posts/{post}/like");
        call(user, "like_post", GooseMethod::Put, &path, None).await?;
    }
    Ok(())
}

async fn chat_inbox(user: &mut GooseUser) -> TransactionResult {
    let response = call(
        user,
        "list_conversations",
        GooseMethod::Get,
        "/v1/conversations?limit=20",
        None,
    )
    .await?;
    let Ok(response) = response.response else {
        return Ok(());
    };
    let Ok(page) = response.json::<ConversationResultsPage>().await else {
        return Ok(());
    };
    if let Some(state) = user.get_session_data_mut::<SignedIn>() {
        state.conversation = page.items.first().map(|c| c.id);
    }
    Ok(())
}

fn conversation(user: &GooseUser) -> Option<uuid::Uuid> {
    user.get_session_data::<SignedIn>()
        .and_then(|s| s.conversation)
}

async fn chat_history(user: &mut GooseUser) -> TransactionResult {
    let Some(id) = conversation(user) else {
        return chat_inbox(user).await;
    };
    let path = format!("/v1/conversations/{id}/messages?limit=50");
    call(user, "list_messages", GooseMethod::Get, &path, None).await?;
    Ok(())
}

async fn chat_send(user: &mut GooseUser) -> TransactionResult {
    let Some(id) = conversation(user) else {
        return chat_inbox(user).await;
    };
    let n = match user.get_session_data_mut::<SignedIn>() {
        Some(state) => {
            state.sent += 1;
            state.sent
        }
        None => 0,
    };
    let body = MessageCreate {
        text: "a message from the load test".parse().map_err(failed)?,
        // Unique per simulated user and message: a retry of the same id would be free.
        client_message_id: format!(
            "load-{}-{n}-{}",
            user.weighted_users_index,
            uuid::Uuid::now_v7().simple()
        )
        .chars()
        .take(64)
        .collect::<String>()
        .parse()
        .map_err(failed)?,
    };
    let body = serde_json::to_value(body).map_err(failed)?;
    let path = format!("/v1/conversations/{id}/messages");
    call(user, "send_message", GooseMethod::Post, &path, Some(body)).await?;
    Ok(())
}

/// Every scenario, by goose's machine name (`--scenarios <name>`).
pub fn all() -> Result<Vec<Scenario>, GooseError> {
    Ok(vec![
        scenario!("healthz").register_transaction(transaction!(healthz)),
        scenario!("login").register_transaction(transaction!(login)),
        scenario!("profile")
            .register_transaction(transaction!(sign_in).set_on_start())
            .register_transaction(transaction!(get_me))
            .register_transaction(transaction!(get_user)),
        scenario!("feed")
            .register_transaction(transaction!(sign_in).set_on_start())
            .register_transaction(transaction!(feed_first_page).set_weight(6)?)
            .register_transaction(transaction!(feed_next_page).set_weight(3)?)
            .register_transaction(transaction!(create_post).set_weight(1)?)
            .register_transaction(transaction!(like_post).set_weight(1)?),
        scenario!("feedread")
            .register_transaction(transaction!(sign_in).set_on_start())
            .register_transaction(transaction!(feed_first_page).set_weight(2)?)
            .register_transaction(transaction!(feed_next_page).set_weight(1)?),
        scenario!("post")
            .register_transaction(transaction!(sign_in).set_on_start())
            .register_transaction(transaction!(create_post)),
        scenario!("chat")
            .register_transaction(transaction!(sign_in).set_on_start())
            .register_transaction(transaction!(chat_inbox).set_weight(2)?)
            .register_transaction(transaction!(chat_history).set_weight(3)?)
            .register_transaction(transaction!(chat_send).set_weight(1)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::account_of;

    #[test]
    fn simulated_users_are_ordinary_accounts() {
        for i in 0..1000 {
            let n = account_of(i, 10_000);
            assert!((100..10_000).contains(&n), "{i} → {n}");
        }
        assert!(account_of(3, 20) < 20);
        assert_eq!(account_of(0, 1), 0);
    }
}
