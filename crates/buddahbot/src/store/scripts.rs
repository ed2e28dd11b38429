//! Lua sources, loaded once per process. `redis::Script` sends `EVALSHA` and falls back to
//! `EVAL` when the server has not seen the script yet (a restart, a new Cluster node).

use std::sync::LazyLock;

use redis::Script;

/// Names the new thread for search too (library: index.lua).
pub static CREATE_THREAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/index.lua"),
        include_str!("scripts/create_thread.lua")
    ))
});

/// Keeps the thread's listings and its tree too (libraries: index.lua, tree.lua).
pub static TOUCH_THREAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/index.lua"),
        include_str!("scripts/tree.lua"),
        include_str!("scripts/touch_thread.lua")
    ))
});

/// Sets a thread's organisation (archived, pinned, tags, metadata, external id) and its
/// listings (library: index.lua).
pub static ORGANIZE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/index.lua"),
        include_str!("scripts/organize.lua")
    ))
});

pub static PRUNE_INDEX: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/prune_index.lua")));

/// Rate-limits too (library: limits.lua), so a chat turn costs one round trip before the
/// model is called; places its messages in the thread's tree (tree.lua).
pub static BEGIN_TURN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/append.lua"),
        include_str!("scripts/limits.lua"),
        include_str!("scripts/index.lua"),
        include_str!("scripts/tree.lua"),
        include_str!("scripts/begin_turn.lua")
    ))
});

/// Ends the generation's stream too (library: stream.lua); places the reply in the
/// thread's tree (tree.lua).
pub static FINISH_TURN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/append.lua"),
        include_str!("scripts/stream.lua"),
        include_str!("scripts/index.lua"),
        include_str!("scripts/tree.lua"),
        include_str!("scripts/finish_turn.lua")
    ))
});

/// Ends the generation's stream too (library: stream.lua); a failed regenerate shows the
/// branch it left again (tree.lua).
pub static FAIL_TURN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/stream.lua"),
        include_str!("scripts/tree.lua"),
        include_str!("scripts/fail_turn.lua")
    ))
});

pub static LOG_EVENTS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/log_events.lua")));

/// Reads the stream's meta for a resumer and asks a running generation to log (publishes).
pub static ATTACH_STREAM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/attach_stream.lua")));

/// Deletes a thread, stopping its generation (publishes).
/// Takes the thread out of its listings too (library: index.lua).
pub static DELETE_THREAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/index.lua"),
        include_str!("scripts/delete_thread.lua")
    ))
});

/// Takes back a begun turn whose request answered 503 (libraries: tree.lua, for the turn a
/// regenerate means and the branch it left; index.lua, to delete a thread it made).
pub static UNDO_BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/index.lua"),
        include_str!("scripts/tree.lua"),
        include_str!("scripts/undo_begin.lua")
    ))
});

/// Takes back a created thread whose request answered 503 (library: index.lua).
pub static UNDO_CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/index.lua"),
        include_str!("scripts/undo_create.lua")
    ))
});

pub static REQUEST_STOP: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/request_stop.lua")));

pub static RATE_LIMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limits.lua"),
        include_str!("scripts/rate_limit.lua")
    ))
});

pub static RENEW_TURN: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/renew_turn.lua")));

/// `claim_summary.lua`: one writer at a time asks the model for a thread's summary.
pub static CLAIM_SUMMARY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/claim_summary.lua")));

/// `save_summary.lua`: keeps a thread's new context summary.
pub static SAVE_SUMMARY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/save_summary.lua")));

/// `delete_messages.lua`: messages deleted in place.
pub static DELETE_MESSAGES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/delete_messages.lua")));

/// `set_field.lua`: one meta field of an existing thread.
pub static SET_FIELD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/set_field.lua")));

/// `set_title.lua`: a model-written title.
pub static SET_TITLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/set_title.lua")));

/// `set_message.lua`: one message replaced in place, with its feedback indexed.
pub static SET_MESSAGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/set_message.lua")));

/// `read_branch.lua`: a thread and a page of one of its branches (library: tree.lua).
pub static READ_BRANCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/tree.lua"),
        include_str!("scripts/read_branch.lua")
    ))
});

/// `set_leaf.lua`: switches a thread's active branch (library: tree.lua).
pub static SET_LEAF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/tree.lua"),
        include_str!("scripts/set_leaf.lua")
    ))
});

/// `import_thread.lua`: an imported thread, whole (libraries: index.lua, tree.lua).
pub static IMPORT_THREAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/index.lua"),
        include_str!("scripts/tree.lua"),
        include_str!("scripts/import_thread.lua")
    ))
});

/// `search_prepare.lua`: opens (or starts) the user's search index generation.
pub static SEARCH_PREPARE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/search_prepare.lua")));

/// `search_write.lua`: one thread's new words into the search index.
pub static SEARCH_WRITE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/search_write.lua")));

/// `search_page.lua`: one bounded stretch of a search.
pub static SEARCH_PAGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/search_page.lua")));
