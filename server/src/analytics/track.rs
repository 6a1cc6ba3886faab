//! `track_events`: checks a client batch whole, then buffers it.

use agora_api::rt::{Location, Principal, RequestCtx, ServiceError, Violation};
use agora_api::types;
use agora_db::analytics::NewEvent;

use super::Analytics;

/// Largest `properties` of one event, as JSON.
pub const MAX_PROPERTIES_BYTES: usize = 4096;

/// `track_events`: every event is checked before any is buffered, so a refused batch keeps
/// nothing.
pub fn track_events(
    analytics: &Analytics,
    ctx: &RequestCtx<Principal>,
    body: types::TrackEventsRequest,
) -> Result<types::TrackEventsAccepted, ServiceError> {
    let now = chrono::Utc::now();
    let mut events = Vec::with_capacity(body.events.len());
    let mut too_big = Vec::new();
    for (i, event) in body.events.into_iter().enumerate() {
        let properties = serde_json::Value::Object(event.properties).to_string();
        if properties.len() > MAX_PROPERTIES_BYTES {
            too_big.push(Violation {
                location: Location::Body,
                pointer: format!("/events/{i}/properties"),
                rule: "maxBytes",
                message: format!(
                    "is {} bytes as JSON; at most {MAX_PROPERTIES_BYTES}",
                    properties.len()
                ),
            });
            continue;
        }
        events.push(NewEvent {
            id: uuid::Uuid::now_v7(),
            received_at: now,
            occurred_at: event.occurred_at.unwrap_or(now),
            name: event.name.to_string(),
            source: "client".into(),
            user_id: Some(ctx.principal.user_id),
            properties,
        });
    }
    if !too_big.is_empty() {
        return Err(ServiceError::invalid(too_big));
    }
    let total = events.len();
    let accepted = events
        .into_iter()
        .map(|e| analytics.track(e))
        .filter(|taken| *taken)
        .count();
    Ok(types::TrackEventsAccepted {
        accepted: i32::try_from(accepted).unwrap_or(i32::MAX),
        dropped: i32::try_from(total - accepted).unwrap_or(i32::MAX),
    })
}
