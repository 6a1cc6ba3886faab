//! `email.*` settings. Without `email.smtp_url` email is off (logged once at start).

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Email delivery of notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The SMTP server: `smtp://host:2525` (plain), `smtp://user@host:587?tls=required`
    /// (STARTTLS), `smtps://host` (implicit TLS). It may carry credentials, so it is a secret
    /// (`AGORA_EMAIL__SMTP_URL_FILE`). Unset: email is off.
    pub smtp_url: Option<Secret>,
    /// The SMTP password, when the URL names a user but no password
    /// (`AGORA_EMAIL__SMTP_PASSWORD_FILE`).
    pub smtp_password: Option<Secret>,
    /// The sender, `Name <address>`.
    pub from: String,
    /// Emails one user gets per UTC day at most; later ones that day are skipped (the in-app
    /// notification stays).
    pub daily_cap: u32,
    /// One SMTP transaction's time limit, in seconds.
    pub timeout_secs: u64,
    /// The public base URL of this API (`https://api.example.com`), for the one-click
    /// unsubscribe link. Default `http://<http.bind>`; required in production.
    pub public_base_url: Option<String>,
    /// The key that signs unsubscribe links (`AGORA_EMAIL__UNSUBSCRIBE_KEY_FILE`). Default:
    /// derived from the first `auth.keys` entry, so rotating that key out invalidates old links.
    pub unsubscribe_key: Option<Secret>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_url: None,
            smtp_password: None,
            from: "Agora <no-reply@agora.invalid>".into(),
            daily_cap: 10,
            timeout_secs: 10,
            public_base_url: None,
            unsubscribe_key: None,
        }
    }
}

impl EmailConfig {
    /// Every problem of the section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(url) = &self.smtp_url {
            let url = url.expose();
            let scheme_ok = url.starts_with("smtp://") || url.starts_with("smtps://");
            if !scheme_ok {
                p.push("email.smtp_url: must start with smtp:// or smtps://".into());
            } else if let Err(e) =
                lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            {
                // Only parsed here: building the transport needs the runtime.
                p.push(format!("email.smtp_url: {e}"));
            } else if self.smtp_password.is_some() && super::url_user(url).is_none() {
                p.push(
                    "email.smtp_password: needs a user in email.smtp_url (smtp://user@host)".into(),
                );
            }
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            p.push(format!(
                "email.from: {:?} is not `Name <address>` or an address",
                self.from
            ));
        }
        if self.daily_cap == 0 {
            p.push(
                "email.daily_cap: must be at least 1 (unset email.smtp_url to turn email off)"
                    .into(),
            );
        }
        if self.timeout_secs == 0 {
            p.push("email.timeout_secs: must be at least 1".into());
        }
        if let Some(base) = &self.public_base_url
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            p.push("email.public_base_url: must start with https:// or http://".into());
        }
        p
    }
}
