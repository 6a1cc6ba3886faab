//! `/v1/conversations…` and `/v1/me/chat-settings`: direct and group conversations, messages
//! with gapless sequences and idempotent sends, read positions, and who may reach whom.

use agora_client::types::{
    ConversationCreate, ConversationKind, ConversationMembersAdd, ConversationRole,
    DirectMessagesFrom, MessageCreate, ReadPosition,
};
use uuid::Uuid;

use crate::e2e_both_backends;
use crate::support::{error_body, status};

fn direct(other: Uuid) -> ConversationCreate {
    ConversationCreate {
        kind: ConversationKind::Direct,
        member_ids: vec![other],
        title: None,
    }
}

fn group(title: &str, members: &[Uuid]) -> ConversationCreate {
    ConversationCreate {
        kind: ConversationKind::Group,
        member_ids: members.to_vec(),
        title: Some(title.parse().expect("title")),
    }
}

fn text(body: &str, client_id: &str) -> MessageCreate {
    MessageCreate {
        text: body.parse().expect("text"),
        client_message_id: client_id.parse().expect("client_message_id"),
    }
}

async fn open(
    client: &agora_client::Client,
    body: ConversationCreate,
) -> agora_client::types::Conversation {
    client
        .create_conversation()
        .body(body)
        .send()
        .await
        .expect("create_conversation")
        .into_inner()
}

async fn send(
    client: &agora_client::Client,
    conversation: Uuid,
    body: &str,
    client_id: &str,
) -> agora_client::types::Message {
    client
        .send_message()
        .conversation_id(conversation)
        .body(text(body, client_id))
        .send()
        .await
        .expect("send_message")
        .into_inner()
}

async fn everyone_may_message(client: &agora_client::Client) {
    client
        .update_chat_settings()
        .body(agora_client::types::ChatSettings {
            direct_messages_from: DirectMessagesFrom::Everyone,
        })
        .send()
        .await
        .expect("update_chat_settings");
}

e2e_both_backends!(
    a_direct_conversation_is_one_per_pair_and_carries_numbered_idempotent_messages,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        app.befriend(&ann, &bob).await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);

        let dm = open(&a, direct(bob.user.id)).await;
        assert_eq!(dm.kind, ConversationKind::Direct);
        assert_eq!(dm.title, None);
        assert_eq!(dm.members.len(), 2);
        assert_eq!(dm.last_sequence, 0);
        assert!(dm.last_message.is_none());
        // Either side asking again answers the same conversation.
        assert_eq!(open(&a, direct(bob.user.id)).await.id, dm.id);
        assert_eq!(open(&b, direct(ann.user.id)).await.id, dm.id);

        let first = send(&a, dm.id, "hello", "c-1").await;
        assert_eq!(first.sequence.get(), 1);
        assert_eq!(first.sender.id, ann.user.id);
        assert_eq!(first.text.as_deref(), Some("hello"));
        // A retried send answers the stored message.
        let retried = send(&a, dm.id, "hello", "c-1").await;
        assert_eq!(retried.id, first.id);
        assert_eq!(retried.sequence, first.sequence);
        // The same id for another text is refused, and stores nothing.
        let (code, body) = error_body(
            a.send_message()
                .conversation_id(dm.id)
                .body(text("something else", "c-1"))
                .send()
                .await,
        );
        assert_eq!(
            (code, body.error_code.as_str()),
            (409, "idempotency_key_reused")
        );
        // The id is per sender: bob may use it too.
        let reply = send(&b, dm.id, "hi ann", "c-1").await;
        assert_eq!(reply.sequence.get(), 2);

        let seen_by_ann = a
            .get_conversation()
            .conversation_id(dm.id)
            .send()
            .await
            .expect("get")
            .into_inner();
        assert_eq!(seen_by_ann.last_sequence, 2);
        assert_eq!(seen_by_ann.unread_count, 1, "bob's reply");
        assert_eq!(
            seen_by_ann.read_sequence, 1,
            "her own send moved her read position"
        );
        assert_eq!(
            seen_by_ann.last_message.as_ref().map(|m| m.id),
            Some(reply.id)
        );

        let read = a
            .mark_conversation_read()
            .conversation_id(dm.id)
            .body(ReadPosition { sequence: 2 })
            .send()
            .await
            .expect("read")
            .into_inner();
        assert_eq!((read.read_sequence, read.unread_count), (2, 0));
        // Never back.
        let back = a
            .mark_conversation_read()
            .conversation_id(dm.id)
            .body(ReadPosition { sequence: 1 })
            .send()
            .await
            .expect("read back")
            .into_inner();
        assert_eq!(back.read_sequence, 2);
        let (code, body) = error_body(
            a.mark_conversation_read()
                .conversation_id(dm.id)
                .body(ReadPosition { sequence: 3 })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (400, "invalid_request"));
        assert_eq!(body.details[0].pointer, "/sequence");
    }
);

e2e_both_backends!(
    history_pages_run_both_ways_without_gaps_or_repeats,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        app.befriend(&ann, &bob).await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let dm = open(&a, direct(bob.user.id)).await;
        for i in 1..=25 {
            send(&a, dm.id, &format!("m{i}"), &format!("id-{i}")).await;
        }

        // Scrolling back: newest first, pages of 10.
        let mut seen = Vec::new();
        let mut page = a
            .list_messages()
            .conversation_id(dm.id)
            .limit(std::num::NonZeroU32::new(10).expect("10"))
            .send()
            .await
            .expect("page")
            .into_inner();
        loop {
            seen.extend(page.items.iter().map(|m| m.sequence.get()));
            let Some(token) = page.next_page.clone() else {
                break;
            };
            page = a
                .list_messages()
                .conversation_id(dm.id)
                .limit(std::num::NonZeroU32::new(10).expect("10"))
                .page_token(token)
                .send()
                .await
                .expect("next")
                .into_inner();
        }
        assert_eq!(seen, (1..=25).rev().collect::<Vec<u64>>());

        // Catching up after 20: oldest first.
        let after = a
            .list_messages()
            .conversation_id(dm.id)
            .after(20)
            .send()
            .await
            .expect("after")
            .into_inner();
        let seqs: Vec<u64> = after.items.iter().map(|m| m.sequence.get()).collect();
        assert_eq!(seqs, vec![21, 22, 23, 24, 25]);
        assert!(after.next_page.is_none());
        let before = a
            .list_messages()
            .conversation_id(dm.id)
            .before(std::num::NonZeroU64::new(4).expect("4"))
            .send()
            .await
            .expect("before")
            .into_inner();
        let seqs: Vec<u64> = before.items.iter().map(|m| m.sequence.get()).collect();
        assert_eq!(seqs, vec![3, 2, 1]);

        let (code, body) = error_body(
            a.list_messages()
                .conversation_id(dm.id)
                .after(1)
                .before(std::num::NonZeroU64::new(4).expect("4"))
                .send()
                .await,
        );
        assert_eq!((code, body.details[0].pointer.as_str()), (400, "/after"));
        let (code, body) = error_body(
            a.list_messages()
                .conversation_id(dm.id)
                .page_token("b1.not-a-number")
                .send()
                .await,
        );
        assert_eq!(
            (code, body.details[0].pointer.as_str()),
            (400, "/page_token")
        );
    }
);

e2e_both_backends!(
    concurrent_sends_get_every_sequence_exactly_once,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        app.befriend(&ann, &bob).await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        let dm = open(&a, direct(bob.user.id)).await;

        let mut tasks = Vec::new();
        for i in 0..30 {
            let client = if i % 2 == 0 { a.clone() } else { b.clone() };
            let id = dm.id;
            tasks.push(tokio::spawn(async move {
                send(&client, id, &format!("m{i}"), &format!("k{i}")).await
            }));
        }
        // The same send retried at once, five times: one message.
        for _ in 0..5 {
            let client = a.clone();
            let id = dm.id;
            tasks.push(tokio::spawn(async move {
                send(&client, id, "once", "the-same-id").await
            }));
        }
        let mut seqs = Vec::new();
        let mut once = Vec::new();
        for t in tasks {
            let m = t.await.expect("task");
            if m.client_message_id.as_str() == "the-same-id" {
                once.push(m.id);
            } else {
                seqs.push(m.sequence.get());
            }
        }
        once.dedup();
        assert_eq!(once.len(), 1, "a retried send stores one message");
        let all = a
            .list_messages()
            .conversation_id(dm.id)
            .after(0)
            .limit(std::num::NonZeroU32::new(100).expect("100"))
            .send()
            .await
            .expect("list")
            .into_inner();
        let stored: Vec<u64> = all.items.iter().map(|m| m.sequence.get()).collect();
        assert_eq!(
            stored,
            (1..=31).collect::<Vec<u64>>(),
            "gapless, no duplicates"
        );
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 30);
    }
);

e2e_both_backends!(
    who_may_reach_whom_follows_friendship_settings_and_blocks,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let cat = app.register("cat").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        let c = app.client_with_token(&cat.tokens.access_token);

        // Friends only by default.
        let settings = b
            .get_chat_settings()
            .send()
            .await
            .expect("settings")
            .into_inner();
        assert_eq!(settings.direct_messages_from, DirectMessagesFrom::Friends);
        let (code, body) = error_body(
            a.create_conversation()
                .body(direct(bob.user.id))
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (403, "forbidden"));
        everyone_may_message(&b).await;
        let dm = open(&a, direct(bob.user.id)).await;
        send(&a, dm.id, "hi", "1").await;

        // Bad requests.
        for (bad, pointer) in [
            (direct(ann.user.id), "/member_ids"),
            (
                ConversationCreate {
                    kind: ConversationKind::Direct,
                    member_ids: vec![bob.user.id, cat.user.id],
                    title: None,
                },
                "/member_ids",
            ),
            (
                ConversationCreate {
                    title: Some("x".parse().expect("title")),
                    ..direct(bob.user.id)
                },
                "/title",
            ),
            (
                ConversationCreate {
                    title: None,
                    ..group("g", &[bob.user.id])
                },
                "/title",
            ),
        ] {
            let (code, body) = error_body(a.create_conversation().body(bad).send().await);
            assert_eq!((code, body.details[0].pointer.as_str()), (400, pointer));
        }
        assert_eq!(
            status(
                &a.create_conversation()
                    .body(direct(Uuid::now_v7()))
                    .send()
                    .await
            ),
            404
        );

        // Bob blocks ann: to her he is not found, and the conversation refuses her messages.
        b.block_user()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("block");
        let (code, body) = error_body(
            a.create_conversation()
                .body(direct(bob.user.id))
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (404, "not_found"));
        let (code, body) = error_body(
            a.send_message()
                .conversation_id(dm.id)
                .body(text("still there?", "2"))
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (403, "forbidden"));
        // Bob, who blocks her, is told so.
        let (code, body) = error_body(
            b.send_message()
                .conversation_id(dm.id)
                .body(text("bye", "3"))
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (409, "user_blocked"));
        let (code, body) = error_body(
            b.create_conversation()
                .body(group("g", &[ann.user.id]))
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (409, "user_blocked"));
        let history = a
            .list_messages()
            .conversation_id(dm.id)
            .send()
            .await
            .expect("history")
            .into_inner();
        assert_eq!(
            history.items.len(),
            1,
            "nothing was stored by the refused sends"
        );

        // A non-member learns nothing.
        for result in [
            status(&c.get_conversation().conversation_id(dm.id).send().await),
            status(&c.list_messages().conversation_id(dm.id).send().await),
            status(
                &c.send_message()
                    .conversation_id(dm.id)
                    .body(text("let me in", "x"))
                    .send()
                    .await,
            ),
            status(
                &c.mark_conversation_read()
                    .conversation_id(dm.id)
                    .body(ReadPosition { sequence: 0 })
                    .send()
                    .await,
            ),
        ] {
            assert_eq!(result, 404);
        }
        let (code, body) = error_body(a.leave_conversation().conversation_id(dm.id).send().await);
        assert_eq!((code, body.error_code.as_str()), (409, "not_a_group"));
    }
);

e2e_both_backends!(
    a_group_is_run_by_its_admins_and_members_see_what_came_after_they_joined,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let cat = app.register("cat").await;
        let dan = app.register("dan").await;
        for other in [&bob, &cat, &dan] {
            app.befriend(&ann, other).await;
        }
        app.befriend(&bob, &dan).await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        let c = app.client_with_token(&cat.tokens.access_token);
        let d = app.client_with_token(&dan.tokens.access_token);

        let g = open(&a, group("Trip", &[bob.user.id, cat.user.id])).await;
        assert_eq!(g.kind, ConversationKind::Group);
        assert_eq!(g.title.as_deref(), Some("Trip"));
        let roles: Vec<(Uuid, ConversationRole)> =
            g.members.iter().map(|m| (m.user.id, m.role)).collect();
        assert!(roles.contains(&(ann.user.id, ConversationRole::Admin)));
        assert!(roles.contains(&(bob.user.id, ConversationRole::Member)));
        let sent_at = send(&a, g.id, "before dan", "1").await.created_at;

        // Members do not add; admins do.
        let add_dan = ConversationMembersAdd {
            member_ids: vec![dan.user.id],
        };
        let (code, body) = error_body(
            b.add_conversation_members()
                .conversation_id(g.id)
                .body(add_dan.clone())
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (403, "forbidden"));
        let untouched = b
            .get_conversation()
            .conversation_id(g.id)
            .send()
            .await
            .expect("get")
            .into_inner();
        assert_eq!(
            (untouched.members.len(), untouched.last_activity_at),
            (3, sent_at),
            "a refused add writes nothing, not even the activity"
        );
        let with_dan = a
            .add_conversation_members()
            .conversation_id(g.id)
            .body(add_dan.clone())
            .send()
            .await
            .expect("add")
            .into_inner();
        assert_eq!(with_dan.members.len(), 4);
        // Adding again changes nothing.
        let again = a
            .add_conversation_members()
            .conversation_id(g.id)
            .body(add_dan)
            .send()
            .await
            .expect("add again")
            .into_inner();
        assert_eq!(again.members.len(), 4);

        // Dan sees what came after he joined.
        let seen = d
            .get_conversation()
            .conversation_id(g.id)
            .send()
            .await
            .expect("dan get")
            .into_inner();
        assert_eq!((seen.unread_count, seen.last_message.is_none()), (0, true));
        send(&b, g.id, "welcome dan", "2").await;
        let history = d
            .list_messages()
            .conversation_id(g.id)
            .send()
            .await
            .expect("dan history")
            .into_inner();
        let texts: Vec<_> = history.items.iter().map(|m| m.text.clone()).collect();
        assert_eq!(texts, vec![Some("welcome dan".to_owned())]);

        // Deleting: only the sender; the message keeps its place.
        let (code, _) = error_body(
            a.delete_message()
                .conversation_id(g.id)
                .message_id(history.items[0].id)
                .send()
                .await,
        );
        assert_eq!(code, 403);
        for _ in 0..2 {
            b.delete_message()
                .conversation_id(g.id)
                .message_id(history.items[0].id)
                .send()
                .await
                .expect("delete");
        }
        let after_delete = b
            .list_messages()
            .conversation_id(g.id)
            .send()
            .await
            .expect("history")
            .into_inner();
        assert_eq!(after_delete.items[0].sequence.get(), 2);
        assert_eq!(after_delete.items[0].text, None);
        assert!(after_delete.items[0].deleted_at.is_some());
        assert_eq!(
            status(
                &b.delete_message()
                    .conversation_id(g.id)
                    .message_id(Uuid::now_v7())
                    .send()
                    .await
            ),
            404
        );

        // Removing: admins only, not oneself.
        assert_eq!(
            status(
                &b.remove_conversation_member()
                    .conversation_id(g.id)
                    .user_id(cat.user.id)
                    .send()
                    .await
            ),
            403
        );
        let (code, body) = error_body(
            a.remove_conversation_member()
                .conversation_id(g.id)
                .user_id(ann.user.id)
                .send()
                .await,
        );
        assert_eq!((code, body.details[0].pointer.as_str()), (400, "/user_id"));
        a.remove_conversation_member()
            .conversation_id(g.id)
            .user_id(cat.user.id)
            .send()
            .await
            .expect("remove cat");
        assert_eq!(
            status(&c.get_conversation().conversation_id(g.id).send().await),
            404
        );
        assert_eq!(
            status(
                &a.remove_conversation_member()
                    .conversation_id(g.id)
                    .user_id(cat.user.id)
                    .send()
                    .await
            ),
            404
        );

        // The last admin leaves: the longest-standing member takes over.
        a.leave_conversation()
            .conversation_id(g.id)
            .send()
            .await
            .expect("leave");
        let now = b
            .get_conversation()
            .conversation_id(g.id)
            .send()
            .await
            .expect("bob get")
            .into_inner();
        let roles: Vec<(Uuid, ConversationRole)> =
            now.members.iter().map(|m| (m.user.id, m.role)).collect();
        assert_eq!(
            roles,
            vec![
                (bob.user.id, ConversationRole::Admin),
                (dan.user.id, ConversationRole::Member)
            ]
        );
        assert_eq!(
            status(&a.get_conversation().conversation_id(g.id).send().await),
            404
        );
    }
);

e2e_both_backends!(
    a_group_holds_at_most_a_hundred_members,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        // 100 more users who take messages from anyone, made directly in the database.
        let db = app.database().await;
        let mut others = Vec::new();
        for i in 0..100 {
            let user = db
                .create_user(&agora_db::users::NewUser {
                    handle: format!("member{i}"),
                    email: format!("member{i}@example.com"),
                    display_name: format!("Member {i}"),
                    password_hash: "not-a-login".into(),
                })
                .await
                .expect("user");
            db.set_chat_settings(user.id, agora_db::chat::DirectMessagesFrom::Everyone)
                .await
                .expect("settings");
            others.push(user.id);
        }
        let g = open(&a, group("Big", &others[..99])).await;
        assert_eq!(g.members.len(), 100);
        let (code, body) = error_body(
            a.add_conversation_members()
                .conversation_id(g.id)
                .body(ConversationMembersAdd {
                    member_ids: vec![others[99]],
                })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (409, "conversation_full"));
        let still = a
            .get_conversation()
            .conversation_id(g.id)
            .send()
            .await
            .expect("get")
            .into_inner();
        assert_eq!(still.members.len(), 100, "nothing was added");
    }
);

e2e_both_backends!(
    the_inbox_lists_conversations_by_last_activity,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let mut ids = Vec::new();
        for name in ["bob", "cat", "dan", "eve"] {
            let other = app.register(name).await;
            app.befriend(&ann, &other).await;
            ids.push(open(&a, direct(other.user.id)).await.id);
        }
        // The oldest becomes the most recently active.
        send(&a, ids[0], "bump", "b").await;
        let mut order = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = a
                .list_conversations()
                .limit(std::num::NonZeroU32::new(3).expect("3"));
            if let Some(t) = token.take() {
                call = call.page_token(t);
            }
            let page = call.send().await.expect("inbox").into_inner();
            order.extend(page.items.iter().map(|c| c.id));
            match page.next_page {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(order, vec![ids[0], ids[3], ids[2], ids[1]]);
        let (code, body) = error_body(a.list_conversations().page_token("i1.x").send().await);
        assert_eq!(
            (code, body.details[0].pointer.as_str()),
            (400, "/page_token")
        );
    }
);

e2e_both_backends!(
    chat_can_be_switched_off_alone,
    &[("AGORA_FEATURES__CHAT", "false")],
    |app| async move {
        let ann = app.register("ann").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let (code, body) = error_body(a.list_conversations().send().await);
        assert_eq!((code, body.error_code.as_str()), (503, "feature_disabled"));
        // The rest of the app keeps working.
        a.get_me().send().await.expect("me");
    }
);
