//! What is stored inside the keys [`keys`](super::keys) names: the thread meta's fields, the
//! turn states and the lease rule, named once for the Rust side. The Lua scripts use the same
//! literal names (Lua cannot import these); each script's header points here.
//!
//! # The thread meta (`…:thread:<id>:meta`, a hash)
//! | field | written by | meaning |
//! |---|---|---|
//! | `id`, `userId`, `title`, `createdAt`, `updatedAt`, `messageCount`, `model` | create, begin/finish a turn, rename | the [`Thread`](crate::domain::Thread) (`messageCount` = the message list's length) |
//! | `activeMessageId`, `activeUntil` | begin (taken), renew (extended), finish/fail/undo (freed) | the one generation allowed at a time and its lease end (ms) |
//! | `lastStatus` | finish, fail, undo | `idle`, `error` or `stopped`: how the latest generation ended |
//! | `streamId`, `streamStart`, `streamFormat` | begin (streamed turns only) | the latest streamed generation: its reply id, the ms part of its event ids, its wire format |
//! | `streamOwner` | begin | the control channel of the process generating it ([`control`](super::control)) |
//! | `streamEndedAt` | finish, fail | when its last event was logged (ms) |
//! | `stopRequested` | stop | the reply id asked to stop |
//! | `streamWanted` | resume | the reply id whose events a resumer waits for in the log |
//! | `promptChars`, `promptTokens` | finish | the last prompt's characters and the tokens the model counted in it: how the next prompt is estimated |
//! | `contextSummary`, `contextSummaryCount`, `contextSummaryHash`, `contextSummaryThrough` | save summary | a model-written summary of the thread's first `contextSummaryCount` conversation messages (their fingerprint; the id of the last, when known), sent in their place when the conversation does not fit |
//! | `titleAuto` | create (no title given), set title or finish with the model's title (cleared), rename (cleared) | `1` while the title is provisional: the model may replace it after the first turn |
//! | `archived`, `pinned` (`1`), `tags` (JSON list), `metadata` (JSON object), `externalId` | organize | the thread's organisation; it decides the listings the thread is in (`index.lua`) |
//! | `shareToken`, `shareExpiresAt` | share (set), unshare (cleared) | the thread's share link: its token (the snapshot is `shared:{<token>}`) and expiry (ISO, '' for none) |
//! | `forkedFrom` | fork | `{threadId, messageId}` of the thread it was forked from, JSON |
//! | `conversationMetadata` | create / update a conversation | its metadata, a JSON object |
//! | `deletedCount` | delete a response or item | messages deleted in place (not counted in `messageCount`) |
//! | `summarizingUntil` | claim summary (set), save summary (cleared) | a summary is being written until then (ms) |
//! | `activeLeafId` | begin/finish a turn, append, switch branch | the last message of the branch the thread shows |
//! | `tree` | the first message that does not follow the one before it | `1` once the thread has a tree of branches (`…:tree`, [`tree.lua`](../scripts/tree.lua)) |
//! | `replyParent`, `leafBeforeTurn` | begin (tree only), finish/fail (cleared) | the list index the reply being generated goes under; the branch's end before a regenerate, shown again if it fails |
//!
//! # Turn states (`…:thread:<id>:turns`, a hash keyed by user message id)
//! `g:<reply id>:<lease end ms>` generating; `d:<list index>:<reply id>` done, the reply at that
//! index of the message list (the newest, after a regenerate); `f` failed before any reply
//! was stored, or its begin taken back after its request answered 503 (`undo_begin.lua`; a
//! retry may generate).
//!
//! # The tree (`…:thread:<id>:tree`, a hash; only once the thread branched)
//! `i<id>` → list index; `m<index>` → `<id> <parent index>[ <id of the message it edits>]`;
//! `c<index>` → children ids, oldest first (`c-1`: the first messages). See `tree.lua`.
//!
//! # The lease rule
//! A generation holds its thread while `activeUntil` is later than now ([`lease_live`]); a
//! crashed generator therefore frees the thread, and ends its resumers, within one lease.

pub const ID: &str = "id";
pub const ACTIVE_MESSAGE_ID: &str = "activeMessageId";
pub const ACTIVE_UNTIL: &str = "activeUntil";
pub const LAST_STATUS: &str = "lastStatus";
pub const STREAM_ID: &str = "streamId";
pub const STREAM_START: &str = "streamStart";
pub const STREAM_FORMAT: &str = "streamFormat";
pub const STREAM_ENDED_AT: &str = "streamEndedAt";
pub const CONTEXT_SUMMARY: &str = "contextSummary";
pub const CONVERSATION_METADATA: &str = "conversationMetadata";
pub const SHARE_TOKEN: &str = "shareToken";
pub const ARCHIVED: &str = "archived";
pub const PINNED: &str = "pinned";
pub const TAGS: &str = "tags";
pub const METADATA: &str = "metadata";
pub const EXTERNAL_ID: &str = "externalId";
pub const SHARE_EXPIRES_AT: &str = "shareExpiresAt";
pub const FORKED_FROM: &str = "forkedFrom";
pub const DELETED_COUNT: &str = "deletedCount";
pub const CONTEXT_SUMMARY_THROUGH: &str = "contextSummaryThrough";
pub const ACTIVE_LEAF_ID: &str = "activeLeafId";

/// The lease rule: a generation whose lease ends at `until_ms` still holds its thread at
/// `now_ms`.
pub fn lease_live(until_ms: Option<i64>, now_ms: i64) -> bool {
    until_ms.is_some_and(|until| until > now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_until_its_end() {
        assert!(lease_live(Some(10), 9));
        assert!(!lease_live(Some(10), 10));
        assert!(!lease_live(None, 0));
    }
}
