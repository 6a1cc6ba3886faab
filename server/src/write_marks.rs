//! Read-your-writes across instances: "user X wrote" marks in the kv counter store (Redis when
//! configured; per instance when Redis is down or absent).

use std::sync::Arc;
use std::time::Duration;

use agora_db::{MarkFuture, WriteMarks};
use uuid::Uuid;

/// [`WriteMarks`] on the kv counter primitive.
pub struct CounterWriteMarks(pub Arc<dyn agora_kv::Counter>);

fn key(user: Uuid) -> String {
    format!("ryw:{user}")
}

impl WriteMarks for CounterWriteMarks {
    fn mark(&self, user: Uuid, window: Duration) -> MarkFuture<'_, ()> {
        Box::pin(async move {
            self.0.incr_with_expiry(&key(user), 1, window).await;
        })
    }

    fn is_marked(&self, user: Uuid) -> MarkFuture<'_, bool> {
        Box::pin(async move { self.0.get(&key(user)).await > 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn marks_expire_after_the_window() {
        let kv = agora_kv::Kv::in_process(&agora_kv::RedisConfig::default());
        let marks = CounterWriteMarks(kv.counter().clone());
        let user = Uuid::now_v7();
        assert!(!marks.is_marked(user).await);
        marks.mark(user, Duration::from_millis(50)).await;
        assert!(marks.is_marked(user).await);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(!marks.is_marked(user).await, "the mark lasts one window");
    }
}
