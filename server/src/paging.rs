//! Keyset pagination and stored-value checks shared by every list operation.

use agora_api::rt::ServiceError;

/// Page sizes of list operations (the contract caps `limit` at 100).
const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;

/// The answer to a `page_token` this API did not issue (tokens are not signed: they are parsed
/// and checked instead).
pub(crate) fn forged_page_token() -> ServiceError {
    ServiceError::invalid(vec![agora_api::rt::Violation {
        location: agora_api::rt::Location::Query,
        pointer: "/page_token".into(),
        rule: "page_token",
        message: "is not a page token this API issued".into(),
    }])
}

/// The page size a caller asked for, within bounds.
pub(crate) fn page_size(asked: Option<std::num::NonZeroU32>) -> u32 {
    asked.map_or(DEFAULT_PAGE_SIZE, |l| l.get().min(MAX_PAGE_SIZE))
}

/// Cuts rows fetched as one more than `size` (which tells whether a next page exists) to the
/// page, and names the next page by its last row.
pub(crate) fn split_page<T>(
    mut rows: Vec<T>,
    size: u32,
    token: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    let next = if more { rows.last().map(token) } else { None };
    (rows, next)
}

/// A token of the form `<prefix><uuid>` (keyset on a UUIDv7 id), or the forged-token answer.
pub(crate) fn parse_id_token(token: &str, prefix: &str) -> Result<uuid::Uuid, ServiceError> {
    token
        .strip_prefix(prefix)
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(forged_page_token)
}

/// A value the database returned that the contract's schema refuses (a bug: writes validate).
pub(crate) fn stored<T: TryFrom<String>>(value: String, what: &str) -> Result<T, ServiceError> {
    T::try_from(value)
        .map_err(|_| ServiceError::internal(format!("stored {what} violates the contract")))
}
