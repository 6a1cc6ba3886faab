//! Per-kind channel settings: the defaults, the stored overrides, and the contract's shapes.

use agora_api::types;
use agora_db::notifications::{ChannelChoice, NotificationKind};

/// The channels of `kind` for a user who never changed them: every kind in the app and pushed;
/// emailed only for what a person would want to hear about while away (friendships, operator
/// notices, security events), not for likes, comments or messages.
pub fn default_choice(kind: NotificationKind) -> ChannelChoice {
    let email = matches!(
        kind,
        NotificationKind::FriendRequest
            | NotificationKind::FriendAccepted
            | NotificationKind::AdminNotice
            | NotificationKind::NewLogin
            | NotificationKind::PasswordChanged
    );
    ChannelChoice {
        kind,
        in_app: true,
        email,
        push: true,
    }
}

/// The effective choices of every kind, in [`NotificationKind::ALL`] order.
pub fn effective(stored: &[ChannelChoice]) -> Vec<ChannelChoice> {
    NotificationKind::ALL
        .iter()
        .map(|kind| {
            stored
                .iter()
                .find(|c| c.kind == *kind)
                .copied()
                .unwrap_or_else(|| default_choice(*kind))
        })
        .collect()
}

/// The effective choice of one kind.
pub fn effective_for(stored: &[ChannelChoice], kind: NotificationKind) -> ChannelChoice {
    stored
        .iter()
        .find(|c| c.kind == kind)
        .copied()
        .unwrap_or_else(|| default_choice(kind))
}

fn view(c: &ChannelChoice) -> types::ChannelSettings {
    types::ChannelSettings {
        in_app: c.in_app,
        email: c.email,
        push: c.push,
    }
}

/// The contract's `NotificationSettings` for the effective choices.
pub fn to_view(stored: &[ChannelChoice]) -> types::NotificationSettings {
    let of = |kind| view(&effective_for(stored, kind));
    types::NotificationSettings {
        friend_request: of(NotificationKind::FriendRequest),
        friend_accepted: of(NotificationKind::FriendAccepted),
        post_liked: of(NotificationKind::PostLiked),
        post_commented: of(NotificationKind::PostCommented),
        message_received: of(NotificationKind::MessageReceived),
        admin_notice: of(NotificationKind::AdminNotice),
        new_login: of(NotificationKind::NewLogin),
        password_changed: of(NotificationKind::PasswordChanged),
    }
}

/// The complete choices of each kind `update` names, applied over the effective ones.
pub fn apply(
    stored: &[ChannelChoice],
    update: &types::NotificationSettingsUpdate,
) -> Vec<ChannelChoice> {
    let changes = [
        (NotificationKind::FriendRequest, &update.friend_request),
        (NotificationKind::FriendAccepted, &update.friend_accepted),
        (NotificationKind::PostLiked, &update.post_liked),
        (NotificationKind::PostCommented, &update.post_commented),
        (NotificationKind::MessageReceived, &update.message_received),
        (NotificationKind::AdminNotice, &update.admin_notice),
        (NotificationKind::NewLogin, &update.new_login),
        (NotificationKind::PasswordChanged, &update.password_changed),
    ];
    changes
        .into_iter()
        .filter_map(|(kind, change)| {
            let change = change.as_ref()?;
            let mut choice = effective_for(stored, kind);
            if let Some(v) = change.in_app {
                choice.in_app = v;
            }
            if let Some(v) = change.email {
                choice.email = v;
            }
            if let Some(v) = change.push {
                choice.push = v;
            }
            Some(choice)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn likes_and_comments_are_not_emailed_by_default() {
        for kind in [
            NotificationKind::PostLiked,
            NotificationKind::PostCommented,
            NotificationKind::MessageReceived,
        ] {
            assert!(!default_choice(kind).email, "{kind}");
        }
        assert!(default_choice(NotificationKind::FriendRequest).email);
        assert!(default_choice(NotificationKind::FriendAccepted).email);
        assert_eq!(effective(&[]).len(), NotificationKind::ALL.len());
    }

    #[test]
    fn an_update_changes_only_the_channels_it_names() {
        let stored = [ChannelChoice {
            kind: NotificationKind::PostLiked,
            in_app: true,
            email: true,
            push: false,
        }];
        let update = types::NotificationSettingsUpdate {
            post_liked: Some(types::ChannelSettingsUpdate {
                in_app: None,
                email: Some(false),
                push: None,
            }),
            ..Default::default()
        };
        let applied = apply(&stored, &update);
        assert_eq!(
            applied,
            vec![ChannelChoice {
                kind: NotificationKind::PostLiked,
                in_app: true,
                email: false,
                push: false,
            }]
        );
    }
}
