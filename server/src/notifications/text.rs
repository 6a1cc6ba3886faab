//! The one-line English summary of a notification (`Notification.text`, the push body and the
//! email subject): who did it and what, with coalesced actors as "A and 49 others".

use agora_db::notifications::NotificationKind;

/// `names` are the most recent actors' display names, newest first; `count` is how many
/// different people did it.
pub fn summary(kind: NotificationKind, names: &[String], count: i64) -> String {
    let who = actors(names, count);
    match kind {
        NotificationKind::FriendRequest => format!("{who} sent you a friend request"),
        NotificationKind::FriendAccepted => format!("{who} accepted your friend request"),
        NotificationKind::PostLiked => format!("{who} liked your post"),
        NotificationKind::PostCommented => format!("{who} commented on your post"),
        NotificationKind::MessageReceived => format!("{who} sent you a message"),
        NotificationKind::AdminNotice => "A notice from the Agora team".to_owned(),
        NotificationKind::NewLogin => "New sign-in to your account from a new device".to_owned(),
        NotificationKind::PasswordChanged => "Your password was changed".to_owned(),
    }
}

fn actors(names: &[String], count: i64) -> String {
    let Some(first) = names.first() else {
        return "Someone".to_owned();
    };
    let others = count.saturating_sub(1).max(0);
    match others {
        0 => first.clone(),
        1 => match names.get(1) {
            Some(second) => format!("{first} and {second}"),
            None => format!("{first} and 1 other"),
        },
        n => format!("{first} and {n} others"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn coalesced_actors_read_as_one_phrase() {
        let kind = NotificationKind::PostLiked;
        assert_eq!(summary(kind, &names(&["Ana"]), 1), "Ana liked your post");
        assert_eq!(
            summary(kind, &names(&["Ana", "Bo"]), 2),
            "Ana and Bo liked your post"
        );
        assert_eq!(
            summary(kind, &names(&["Ana", "Bo", "Cy"]), 50),
            "Ana and 49 others liked your post"
        );
        assert_eq!(
            summary(kind, &names(&["Ana"]), 2),
            "Ana and 1 other liked your post"
        );
        assert_eq!(summary(kind, &[], 0), "Someone liked your post");
    }

    #[test]
    fn system_events_name_no_actor() {
        assert_eq!(
            summary(NotificationKind::PasswordChanged, &[], 0),
            "Your password was changed"
        );
    }
}
