//! Email templates, text and HTML per notification kind (`server/templates/email/`), rendered
//! with minijinja; the HTML templates auto-escape every value.

use minijinja::Environment;
use serde::Serialize;

use agora_db::notifications::NotificationKind;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/email/", $name)))),*]
    };
}

const SOURCES: &[(&str, &str)] = templates!(
    "base.txt",
    "base.html",
    "friend_request.txt",
    "friend_request.html",
    "friend_accepted.txt",
    "friend_accepted.html",
    "post_liked.txt",
    "post_liked.html",
    "post_commented.txt",
    "post_commented.html",
    "message_received.txt",
    "message_received.html",
    "admin_notice.txt",
    "admin_notice.html",
    "new_login.txt",
    "new_login.html",
    "password_changed.txt",
    "password_changed.html",
);

/// What a template sees.
#[derive(Debug, Serialize)]
pub struct EmailContext<'a> {
    /// The recipient's display name.
    pub user_name: &'a str,
    /// The notification's one-line summary.
    pub text: &'a str,
    /// Kind-specific facts (`ip`, `user_agent`, `message`).
    pub details: &'a std::collections::HashMap<String, String>,
    /// When it happened, RFC 3339 UTC.
    pub when: String,
    /// The one-click unsubscribe URL.
    pub unsubscribe_url: &'a str,
    /// The kind in words, for the unsubscribe line.
    pub kind_label: &'a str,
}

/// The parsed templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

/// Why a message could not be rendered (a template bug: tests render every kind).
#[derive(Debug, thiserror::Error)]
#[error("email template {name}: {source}")]
pub struct TemplateError {
    name: String,
    source: minijinja::Error,
}

impl Templates {
    /// Parses every template.
    pub fn load() -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        for (name, source) in SOURCES {
            env.add_template(name, source)
                .map_err(|source| TemplateError {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        Ok(Templates { env })
    }

    /// The text and HTML bodies of `kind`.
    pub fn render(
        &self,
        kind: NotificationKind,
        ctx: &EmailContext<'_>,
    ) -> Result<(String, String), TemplateError> {
        let one = |ext: &str| {
            let name = format!("{}.{ext}", kind.as_str());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(ctx))
                .map_err(|source| TemplateError { name, source })
        };
        Ok((one("txt")?, one("html")?))
    }
}

/// A kind in words.
pub fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::FriendRequest => "friend requests",
        NotificationKind::FriendAccepted => "accepted friend requests",
        NotificationKind::PostLiked => "likes",
        NotificationKind::PostCommented => "comments",
        NotificationKind::MessageReceived => "messages",
        NotificationKind::AdminNotice => "notices from the Agora team",
        NotificationKind::NewLogin => "new sign-in alerts",
        NotificationKind::PasswordChanged => "password change alerts",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_renders_text_and_escaped_html() {
        let templates = Templates::load().expect("templates parse");
        let details = [("user_agent".to_owned(), "<script>x</script>".to_owned())]
            .into_iter()
            .collect();
        for kind in NotificationKind::ALL {
            let ctx = EmailContext {
                user_name: "Ana & Co",
                text: "Something happened",
                details: &details,
                when: "2026-12-03T08:00:00Z".into(),
                unsubscribe_url: "https://api.example.com/v1/email/unsubscribe?token=t",
                kind_label: kind_label(*kind),
            };
            let (text, html) = templates.render(*kind, &ctx).expect("renders");
            assert!(text.contains("Hi Ana & Co,"), "{kind}: {text}");
            assert!(text.contains("unsubscribe?token=t"), "{kind}");
            assert!(html.contains("Ana &amp; Co"), "{kind}: HTML escapes values");
            assert!(!html.contains("<script>"), "{kind}: {html}");
        }
    }
}
