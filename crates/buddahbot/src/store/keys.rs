//! The only place Redis keys are built.
//!
//! Every key of a user shares the hash tag `{<userId>}`, so all of them live in one Cluster
//! slot and one MULTI/EXEC or script may touch them together. Keys are built only from a
//! verified [`UserId`] and a validated [`ThreadId`]: neither can contain a brace, so the tag is
//! exactly the user id and no user's key can spell another user's.

use crate::domain::{ThreadId, UserId};

const PREFIX: &str = "user:";

/// `user:{<userId>}` followed by `parts`, built in one allocation of the exact size (a chat
/// turn builds a dozen keys; `format!` costs several times as much).
fn user_key(user: &UserId, parts: &[&str]) -> String {
    let user = user.as_str();
    let len = PREFIX.len() + user.len() + 2 + parts.iter().map(|part| part.len()).sum::<usize>();
    let mut key = String::with_capacity(len);
    key.push_str(PREFIX);
    key.push('{');
    key.push_str(user);
    key.push('}');
    for part in parts {
        key.push_str(part);
    }
    key
}

/// `user:{<userId>}:threads`, the ZSET of the user's thread ids scored by `updatedAt` (ms).
pub fn thread_index(user: &UserId) -> String {
    user_key(user, &[":threads"])
}

/// `user:{<userId>}:thread:<threadId>:meta`, the HASH of a thread's metadata.
pub fn thread_meta(user: &UserId, thread: &ThreadId) -> String {
    user_key(user, &[":thread:", thread.as_str(), ":meta"])
}

/// `user:{<userId>}:thread:<threadId>:messages`, the LIST of a thread's messages as JSON,
/// oldest first.
pub fn thread_messages(user: &UserId, thread: &ThreadId) -> String {
    user_key(user, &[":thread:", thread.as_str(), ":messages"])
}

/// `user:{<userId>}:thread:<threadId>:turns`, the HASH of the thread's chat turns: user
/// message id -> state of its reply, so a retried request is recognised.
pub fn thread_turns(user: &UserId, thread: &ThreadId) -> String {
    user_key(user, &[":thread:", thread.as_str(), ":turns"])
}

/// `user:{<userId>}:thread:<threadId>:stream`, the STREAM of the thread's latest generation:
/// every event sent to the client, in order, so another request (on any instance) can replay
/// and follow it. Emptied when the next generation starts; expires a day after it ends.
pub fn thread_stream(user: &UserId, thread: &ThreadId) -> String {
    user_key(user, &[":thread:", thread.as_str(), ":stream"])
}

/// `user:{<userId>}:thread:<threadId>:tree`, the HASH of a branched thread's message tree
/// (where each message is in the list, its parent, its children; `scripts/tree.lua`).
/// Absent while every message follows the one before it.
pub fn thread_tree(user: &UserId, thread: &ThreadId) -> String {
    user_key(user, &[":thread:", thread.as_str(), ":tree"])
}

/// `user:{<userId>}:thread:<threadId>:path`, the LIST of the list indexes of a branched
/// thread's active branch, first message first (`scripts/tree.lua`).
pub fn thread_path(user: &UserId, thread: &ThreadId) -> String {
    user_key(user, &[":thread:", thread.as_str(), ":path"])
}

/// Every key of one thread.
pub fn thread_keys(user: &UserId, thread: &ThreadId) -> [String; 6] {
    [
        thread_meta(user, thread),
        thread_messages(user, thread),
        thread_turns(user, thread),
        thread_stream(user, thread),
        thread_tree(user, thread),
        thread_path(user, thread),
    ]
}

/// `user:{<userId>}:cache:<hash>`, one cached answer to a model input (`RESPONSE_CACHE_SCOPE=
/// user`): a STRING that expires after `RESPONSE_CACHE_TTL_SECS`.
pub fn user_response_cache(user: &UserId, hash: &str) -> String {
    user_key(user, &[":cache:", hash])
}

/// `cache:{<hash>}`, one cached answer shared by identical inputs of any users
/// (`RESPONSE_CACHE_SCOPE=global`). It holds nothing of who asked.
pub fn global_response_cache(hash: &str) -> String {
    format!("cache:{{{hash}}}")
}

/// `shared:{<token>}`, a shared thread's snapshot (a deliberate copy, outside the owner's
/// hash tag: its public reader knows only the token). Built only from a token of the right
/// form.
pub fn shared(token: &str) -> String {
    format!("shared:{{{token}}}")
}

/// `user:{<userId>}:feedback`, the ZSET of the user's feedback, `<threadId>/<messageId>`
/// scored by when it was given (ms), newest last.
pub fn feedback_index(user: &UserId) -> String {
    user_key(user, &[":feedback"])
}

/// `user:{<userId>}:feedback:data`, the HASH of the user's feedback entries as JSON, by
/// `<threadId>/<messageId>` (what the index lists).
pub fn feedback_data(user: &UserId) -> String {
    user_key(user, &[":feedback:data"])
}

/// `user:{<userId>}:ratelimit:<name>[+<name>…]`, the state of the rate limits one request
/// counts against together (their GCRA arrival times, in the order of the names, separated by
/// spaces). Expires by itself once the longest limit's period has passed.
pub fn rate_limits<'a>(user: &UserId, names: impl IntoIterator<Item = &'a str>) -> String {
    let mut key = user_key(user, &[":ratelimit:"]);
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            key.push('+');
        }
        key.push_str(name);
    }
    key
}

/// `user:{<userId>}:tokens:<yyyy-mm-dd>`, completion and prompt tokens used that UTC day.
pub fn daily_tokens(user: &UserId, day: &str) -> String {
    user_key(user, &[":tokens:", day])
}

/// `user:{<userId>}:search`, the HASH at the root of the user's search index
/// ([`search`](super::search)): its generation (`gen`, the ms it was started), when it ends
/// (`expireAt`), the next thread number (`next`), per indexed thread `t:<threadId>` →
/// `<number> <messages indexed> <thread createdAt>`, and `n:<number>` → thread id.
pub fn search_root(user: &UserId) -> String {
    user_key(user, &[":search"])
}

/// `user:{<userId>}:search:changed`, the SET of thread ids written since the index last read
/// them (added by every script that stores messages or titles: `index.lua`, `set_title.lua`).
pub fn search_changed(user: &UserId) -> String {
    user_key(user, &[":search:changed"])
}

/// `user:{<userId>}:search:<gen>:dict`, the ZSET (all scores 0) of every word the index
/// generation holds, for prefix lookups.
pub fn search_dict(user: &UserId, generation: &str) -> String {
    user_key(user, &[":search:", generation, ":dict"])
}

/// `user:{<userId>}:search:<gen>:w:<word>`, the ZSET of the documents holding `word`
/// (`<thread number>:<list index>`, or `<thread number>:t` for the title) scored by their
/// time (ms × 1000 plus a tie-breaker below 1000).
pub fn search_word(user: &UserId, generation: &str, word: &str) -> String {
    user_key(user, &[":search:", generation, ":w:", word])
}

/// Glob matching every key of `user` (for tests and operators; the service never scans).
pub fn user_pattern(user: &UserId) -> String {
    user_key(user, &[":*"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_exactly_as_designed() {
        let user = UserId::parse("github:583231").unwrap();
        let thread = ThreadId::parse("Xy7kP2mQ9rT4vW1z").unwrap();
        assert_eq!(thread_index(&user), "user:{github:583231}:threads");
        assert_eq!(
            thread_meta(&user, &thread),
            "user:{github:583231}:thread:Xy7kP2mQ9rT4vW1z:meta"
        );
        assert_eq!(
            thread_messages(&user, &thread),
            "user:{github:583231}:thread:Xy7kP2mQ9rT4vW1z:messages"
        );
        assert_eq!(
            thread_turns(&user, &thread),
            "user:{github:583231}:thread:Xy7kP2mQ9rT4vW1z:turns"
        );
        assert_eq!(
            thread_stream(&user, &thread),
            "user:{github:583231}:thread:Xy7kP2mQ9rT4vW1z:stream"
        );
        assert_eq!(user_pattern(&user), "user:{github:583231}:*");
        assert_eq!(
            rate_limits(&user, ["chat-minute"]),
            "user:{github:583231}:ratelimit:chat-minute"
        );
        assert_eq!(
            rate_limits(&user, ["chat-minute", "chat-day"]),
            "user:{github:583231}:ratelimit:chat-minute+chat-day"
        );
        assert_eq!(
            daily_tokens(&user, "2026-11-22"),
            "user:{github:583231}:tokens:2026-11-22"
        );
    }

    #[test]
    fn the_hash_tag_is_the_whole_user_id() {
        let user = UserId::parse("auth0|65f0:a").unwrap();
        let thread = ThreadId::new();
        for key in [
            thread_index(&user),
            thread_meta(&user, &thread),
            thread_messages(&user, &thread),
            thread_turns(&user, &thread),
            thread_stream(&user, &thread),
            thread_tree(&user, &thread),
            thread_path(&user, &thread),
        ] {
            let open = key.find('{').unwrap();
            let close = key.find('}').unwrap();
            assert_eq!(&key[open + 1..close], "auth0|65f0:a", "{key}");
        }
    }
}
