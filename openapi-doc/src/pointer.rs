//! JSON pointers (RFC 6901): `~` is written `~0` and `/` is written `~1` inside a token.
//! Clean tokens (the vast majority) are never copied: compat-check's comparison of two 6 MB
//! documents was dominated by pointer allocation before this.

use std::borrow::Cow;
use std::fmt::Display;

use serde_json::Value;

/// One token, escaped.
pub fn escape(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// One token, unescaped (`~1` before `~0`, so `~01` is `~1`).
pub fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// `base` with `token` appended.
pub fn join(base: &str, token: &str) -> String {
    let token = escape(token);
    let mut out = String::with_capacity(base.len() + 1 + token.len());
    out.push_str(base);
    out.push('/');
    out.push_str(&token);
    out
}

/// A pointer from path segments (object keys or array indices), e.g. a serde error path.
pub fn from_segments<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: Display,
{
    segments
        .into_iter()
        .fold(String::new(), |mut acc, segment| {
            acc.push('/');
            acc.push_str(&escape(&segment.to_string()));
            acc
        })
}

/// The unescaped tokens of `pointer` (none for `""`).
pub fn tokens(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> {
    pointer
        .strip_prefix('/')
        .into_iter()
        .flat_map(|rest| rest.split('/'))
        .map(unescape)
}

/// The last token, unescaped; `None` for `""`.
pub fn last_token(pointer: &str) -> Option<Cow<'_, str>> {
    pointer.rsplit_once('/').map(|(_, last)| unescape(last))
}

/// The value `pointer` names in `root`. `""` is the root; a pointer that does not start with `/`
/// names nothing; array indices are decimal without a sign or leading zeros (as in
/// `serde_json::Value::pointer`, but without allocating for clean tokens).
pub fn get<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(root);
    }
    let rest = pointer.strip_prefix('/')?;
    let mut cur = root;
    for token in rest.split('/') {
        cur = match cur {
            Value::Object(map) => map.get(unescape(token).as_ref())?,
            Value::Array(items) => {
                if token.starts_with('+') || (token.len() > 1 && token.starts_with('0')) {
                    return None;
                }
                items.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_round_trips_and_borrows_clean_tokens() {
        for token in ["plain", "a/b", "~", "~1", "a~/b", ""] {
            assert_eq!(unescape(&escape(token)), token);
        }
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a/b~"), "a~1b~0");
        assert_eq!(unescape("~01"), "~1");
    }

    #[test]
    fn joining_splitting_and_segments() {
        assert_eq!(join("/paths", "/v1/users"), "/paths/~1v1~1users");
        assert_eq!(from_segments(["a/b", "0"]), "/a~1b/0");
        assert_eq!(
            tokens("/paths/~1v1~1users/get").collect::<Vec<_>>(),
            ["paths", "/v1/users", "get"]
        );
        assert_eq!(tokens("").count(), 0);
        assert_eq!(last_token("/a/b~1c").as_deref(), Some("b/c"));
        assert_eq!(last_token(""), None);
    }

    #[test]
    fn lookup_follows_rfc_6901() {
        let doc = json!({"a/b": {"~": [10, 20]}, "": 1});
        assert_eq!(get(&doc, ""), Some(&doc));
        assert_eq!(get(&doc, "/a~1b/~0/1"), Some(&json!(20)));
        assert_eq!(get(&doc, "/"), Some(&json!(1)));
        assert_eq!(get(&doc, "/a~1b/~0/01"), None, "no leading zeros");
        assert_eq!(get(&doc, "/a~1b/~0/+1"), None, "no sign");
        assert_eq!(get(&doc, "a"), None, "must start with /");
        for p in ["", "/a~1b", "/a~1b/~0/0", "/missing"] {
            assert_eq!(get(&doc, p), doc.pointer(p), "{p}");
        }
    }
}
