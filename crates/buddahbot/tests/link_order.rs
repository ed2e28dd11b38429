//! The hot functions' list the release link lays out first (`link/hot.order`, written by
//! `scripts/link-order`, read by `link/order.rs`): one linker symbol per line, each once, and
//! covering what both kinds of server run (start, a chat turn, the store), so a list emptied,
//! hand-edited or made from only one binary fails here rather than as memory in production.

use std::{collections::HashSet, path::Path};

#[test]
fn the_hot_list_names_each_function_once_and_covers_both_servers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot.order");
    let list = std::fs::read_to_string(&path).expect("link/hot.order is in the checkout");
    let names: Vec<&str> = list.lines().collect();
    assert!(names.len() > 1000, "only {} functions listed", names.len());
    let mut seen = HashSet::new();
    for name in &names {
        assert!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "not a symbol name: {name:?}"
        );
        assert!(seen.insert(*name), "{name} is listed twice");
    }
    let covers = |part: &str| names.iter().any(|name| name.contains(part));
    for (part, what) in [
        ("_ZN3dev4main", "the dev server's start"),
        ("_ZN4chat4main", "the chat function's start"),
        ("9buddahbot4chat4turn", "a chat turn"),
        ("9buddahbot5store5turns", "the turn's store calls"),
        ("9buddahbot4auth", "authentication"),
    ] {
        assert!(covers(part), "no function of {what} ({part}) is listed");
    }
}
