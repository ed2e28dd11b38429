//! The deterministic reply text and the token arithmetic around it.
//!
//! This module owns what the mock *says*; it does not know how the words travel (see
//! [`crate::stream`] and [`crate::wire`]).

/// The words a reply cycles through, each one token with its trailing space.
///
/// # Design
/// Every word is plain ASCII letters, so it can be written into a JSON string without escaping;
/// the stream writer relies on that to copy tokens straight into chunk bytes (a unit test pins it).
const WORDS: [&str; 16] = [
    "breathe ", "in ", "and ", "notice ", "the ", "quiet ", "mind ", "as ", "it ", "settles ",
    "like ", "still ", "water ", "under ", "open ", "sky ",
];

/// The words a `think` reply reasons with, cycled like [`WORDS`] (same JSON-safe rule).
const REASONING_WORDS: [&str; 8] = [
    "hmm ", "the ", "user ", "wants ", "calm ", "so ", "keep ", "it ",
];

/// The first `words` words of a `think` reply's reasoning, in order.
///
/// # Example
/// ```
/// assert_eq!(mock_upstream::reasoning_text(3), "hmm the user ");
/// ```
pub fn reasoning_text(words: usize) -> String {
    REASONING_WORDS
        .iter()
        .copied()
        .cycle()
        .take(words)
        .collect()
}

/// The words of [`reasoning_text`], one per chunk.
pub(crate) fn reasoning_tokens(words: usize) -> impl Iterator<Item = &'static str> {
    REASONING_WORDS.iter().copied().cycle().take(words)
}

/// The text of token `index` of any reply (replies are prefixes of one endless word cycle).
pub(crate) fn token(index: usize) -> &'static str {
    WORDS.get(index % WORDS.len()).copied().unwrap_or(" ")
}

/// The first `tokens` tokens of the reply, in order.
///
/// Concatenated, they equal [`reply_text`]`(tokens)`.
///
/// # Example
/// ```
/// let tokens: Vec<&str> = mock_upstream::reply_tokens(3).collect();
/// assert_eq!(tokens, ["breathe ", "in ", "and "]);
/// ```
pub fn reply_tokens(tokens: usize) -> impl Iterator<Item = &'static str> {
    WORDS.iter().copied().cycle().take(tokens)
}

/// The full reply text of `tokens` tokens: what a client should reassemble from the stream.
///
/// # Example
/// ```
/// assert_eq!(mock_upstream::reply_text(2), "breathe in ");
/// ```
pub fn reply_text(tokens: usize) -> String {
    reply_tokens(tokens).collect()
}

/// The mock's estimate of a prompt's token count: a quarter of its characters (rounded down),
/// at least one.
///
/// Real tokenizers average about four characters per English token; the estimate only needs to
/// be deterministic so tests can predict `usage.prompt_tokens` and size a prompt against
/// `context_tokens`. The mock calls it with the number of characters (Unicode scalar values,
/// not bytes) of every message's string `content` and `text` parts, whatever the role,
/// directives included, plus those of assistant tool calls' `arguments`; see the crate docs'
/// *Context length* section.
///
/// # Example
/// ```
/// assert_eq!(mock_upstream::prompt_tokens(0), 1);
/// assert_eq!(mock_upstream::prompt_tokens(41), 10);
/// ```
pub fn prompt_tokens(prompt_chars: usize) -> usize {
    (prompt_chars / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_json_safe_so_chunks_can_embed_it_unescaped() {
        for word in WORDS {
            let quoted = serde_json::to_string(word).unwrap();
            assert_eq!(
                quoted,
                format!("\"{word}\""),
                "word {word:?} needs escaping"
            );
            assert!(word.ends_with(' '), "word {word:?} must end with a space");
        }
    }

    #[test]
    fn reply_text_cycles_through_the_word_list() {
        let long = reply_text(WORDS.len() + 2);
        assert!(long.ends_with("sky breathe in "));
        assert_eq!(token(WORDS.len()), "breathe ");
        assert_eq!(reply_text(0), "");
    }
}
