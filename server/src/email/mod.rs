//! Email delivery of notifications: `lettre` over SMTP, per-kind text + HTML templates, a
//! per-user daily cap, RFC 8058 one-click unsubscribe, and bounce handling (a permanent 5xx
//! answer suppresses the address).
//!
//! The `deliver_notification` job enqueues a [`SendEmail`] job with a *created* notification
//! whose kind the user has emailed; the job claims the delivery in the database first, so a
//! retried job never sends a second copy after a success.

pub mod config;
pub mod send;
pub mod templates;
pub mod unsubscribe;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use config::EmailConfig;
pub use send::{SendEmail, SendEmailHandler};
use templates::Templates;
use unsubscribe::UnsubscribeKey;

/// The SMTP transport of `config` (connections are made when sending).
pub(crate) fn transport(
    config: &EmailConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let url = config
        .smtp_url
        .as_ref()
        .ok_or_else(|| "not set".to_owned())?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
        .map_err(|e| e.to_string())?
        .timeout(Some(Duration::from_secs(config.timeout_secs)));
    if let Some(password) = &config.smtp_password {
        let user = url_user(url.expose())
            .ok_or_else(|| "email.smtp_password needs a user in email.smtp_url".to_owned())?;
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user,
            password.expose().to_owned(),
        ));
    }
    Ok(builder.build())
}

/// The user named in an SMTP URL (`smtp://user[:password]@host`).
pub(crate) fn url_user(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let (userinfo, _) = rest.split_once('@')?;
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    (!user.is_empty()).then(|| user.to_owned())
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused it for good (5xx): the address is bounced.
    #[error("refused permanently: {0}")]
    Permanent(String),
    /// Worth retrying (4xx, connection, timeout).
    #[error("failed: {0}")]
    Transient(String),
    /// The message could not be built (a bad stored address, a template bug).
    #[error("cannot compose: {0}")]
    Compose(String),
}

/// One rendered email.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The recipient.
    pub to: Mailbox,
    /// The subject line.
    pub subject: String,
    /// The text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// The one-click unsubscribe URL (RFC 8058 headers).
    pub unsubscribe_url: String,
}

/// Sends email; built once when `email.smtp_url` is set.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    pub(crate) daily_cap: u32,
    pub(crate) base_url: String,
    pub(crate) unsubscribe: UnsubscribeKey,
    pub(crate) templates: Templates,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .field("daily_cap", &self.daily_cap)
            .finish_non_exhaustive()
    }
}

/// Why the mailer could not be built (the configuration check lets none of these through).
#[derive(Debug, thiserror::Error)]
#[error("email: {0}")]
pub struct MailerError(String);

impl Mailer {
    /// The mailer for `config`, or `None` when email is off. `unsubscribe` signs the links;
    /// `bind` is the fallback public address.
    pub fn from_config(
        config: &EmailConfig,
        unsubscribe: UnsubscribeKey,
        bind: std::net::SocketAddr,
    ) -> Result<Option<Arc<Mailer>>, MailerError> {
        if config.smtp_url.is_none() {
            return Ok(None);
        }
        let transport = transport(config).map_err(MailerError)?;
        let from = config
            .from
            .parse()
            .map_err(|e| MailerError(format!("email.from: {e}")))?;
        let base_url = config
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{bind}"));
        Ok(Some(Arc::new(Mailer {
            transport,
            from,
            daily_cap: config.daily_cap,
            base_url: base_url.trim_end_matches('/').to_owned(),
            unsubscribe,
            templates: Templates::load().map_err(|e| MailerError(e.to_string()))?,
        })))
    }

    /// The one-click unsubscribe URL of `kind` for `user`.
    pub fn unsubscribe_url(
        &self,
        user: uuid::Uuid,
        kind: agora_db::notifications::NotificationKind,
    ) -> String {
        format!(
            "{}/v1/email/unsubscribe?token={}",
            self.base_url,
            self.unsubscribe.token(user, kind)
        )
    }

    /// The key that checks unsubscribe tokens.
    pub fn unsubscribe_key(&self) -> &UnsubscribeKey {
        &self.unsubscribe
    }

    /// Sends `mail` with a text and an HTML part and the RFC 8058 headers.
    pub async fn send(&self, mail: &Outgoing) -> Result<(), SendError> {
        let unsubscribe = header::HeaderValue::new(
            header::HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{}>", mail.unsubscribe_url),
        );
        let one_click = header::HeaderValue::new(
            header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(mail.to.clone())
            .subject(&mail.subject)
            .raw_header(unsubscribe)
            .raw_header(one_click)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| SendError::Compose(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

/// The fallback key material for unsubscribe links: the secret of the signing key
/// (`auth.keys[0]`), or the development key.
fn signing_secret(auth: &crate::config::AuthConfig) -> Vec<u8> {
    let first = auth
        .keys
        .first()
        .map(|k| k.expose().to_owned())
        .unwrap_or_else(|| crate::identity::tokens::DEVELOPMENT_KEY.to_owned());
    match crate::identity::tokens::parse_key(&first) {
        Ok((_, secret)) => secret.as_bytes().to_vec(),
        Err(_) => first.into_bytes(),
    }
}

/// The key that checks unsubscribe tokens for `config` (whether or not email is on now: links
/// in emails sent earlier keep working).
pub fn unsubscribe_key(config: &crate::config::Config) -> UnsubscribeKey {
    match &config.email.unsubscribe_key {
        Some(key) => UnsubscribeKey::new(key.expose().as_bytes()),
        None => UnsubscribeKey::derived_from(&signing_secret(&config.auth)),
    }
}

/// Builds the mailer of `config` and says once whether email is on.
pub fn mailer(config: &crate::config::Config) -> Result<Option<Arc<Mailer>>, MailerError> {
    let mailer = Mailer::from_config(&config.email, unsubscribe_key(config), config.http.bind)?;
    match &mailer {
        Some(m) => tracing::info!(email.from = %m.from, "email is on"),
        None => tracing::info!("email.smtp_url is not set: email is off"),
    }
    Ok(mailer)
}
