//! The part of a matching text a result shows, with its matches marked in the units a
//! JavaScript string counts (UTF-16).

use serde::Serialize;

/// Longest snippet, in characters (an ellipsis on either side not counted).
pub const SNIPPET_CHARS: usize = 200;
/// Characters shown before the first match when the text is cut.
const LEAD_CHARS: usize = 60;
const ELLIPSIS: char = '…';

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    pub snippet: String,
    /// `[start, end)` of each match in `snippet`, UTF-16 code units.
    pub highlights: Vec<[usize; 2]>,
}

/// The snippet of `text` around its first match (`spans`: byte ranges, in order), on one
/// line, cut at spaces where it can be, with `…` where it was cut.
pub fn snippet(text: &str, spans: &[(usize, usize)]) -> Snippet {
    let first = spans.first().map_or(0, |s| s.0);
    let (start, end) = window(text, first);
    let mut out = String::with_capacity(end - start + 8);
    let mut offset = 0;
    if start > 0 {
        out.push(ELLIPSIS);
        offset = ELLIPSIS.len_utf16();
    }
    let shown = &text[start..end];
    out.extend(
        shown
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c }),
    );
    if end < text.len() {
        out.push(ELLIPSIS);
    }
    let highlights = spans
        .iter()
        .filter(|&&(s, e)| s < end && e > start)
        .map(|&(s, e)| {
            let s = s.max(start);
            let e = e.min(end);
            let from = offset + utf16_len(&text[start..s]);
            [from, from + utf16_len(&text[s..e])]
        })
        .collect();
    Snippet {
        snippet: out,
        highlights,
    }
}

/// The byte range shown: up to [`SNIPPET_CHARS`] characters starting about [`LEAD_CHARS`]
/// before `first`, moved to word starts and ends when there is a space nearby.
fn window(text: &str, first: usize) -> (usize, usize) {
    if text.chars().count() <= SNIPPET_CHARS {
        return (0, text.len());
    }
    let before: Vec<(usize, char)> = text[..first]
        .char_indices()
        .rev()
        .take(LEAD_CHARS)
        .collect();
    let mut start = before.last().map_or(first, |&(i, _)| i);
    if start > 0 {
        // Start after the first space of the lead, so no word is cut in half.
        if let Some(&(i, c)) = before.iter().rev().find(|(_, c)| c.is_whitespace()) {
            start = i + c.len_utf8();
        }
    }
    let mut end = text[start..]
        .char_indices()
        .nth(SNIPPET_CHARS)
        .map_or(text.len(), |(i, _)| start + i);
    if end < text.len() {
        // End before the last space, unless that would drop most of the window.
        if let Some(space) = text[start..end]
            .rfind(char::is_whitespace)
            .filter(|&space| space > (end - start) / 2)
        {
            end = start + space;
        }
    }
    (start, end)
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The highlighted parts, read back the way JavaScript would (UTF-16 slices).
    fn marked(s: &Snippet) -> Vec<String> {
        let units: Vec<u16> = s.snippet.encode_utf16().collect();
        s.highlights
            .iter()
            .map(|&[a, b]| String::from_utf16(&units[a..b]).unwrap())
            .collect()
    }

    #[test]
    fn a_short_text_is_shown_whole_on_one_line() {
        let text = "🎉 Party\nfür Müller 🎉";
        let start = text.find("Müller").unwrap();
        let s = snippet(text, &[(start, start + "Müller".len())]);
        assert_eq!(s.snippet, "🎉 Party für Müller 🎉");
        // 🎉 is two UTF-16 units, ü one.
        assert_eq!(s.highlights, [[13, 19]]);
        assert_eq!(marked(&s), ["Müller"]);
    }

    #[test]
    fn a_long_text_is_cut_around_the_first_match() {
        let text = format!(
            "{} needle in the 世界 {}",
            "word ".repeat(100),
            "tail ".repeat(100)
        );
        let a = text.find("needle").unwrap();
        let b = text.find("世界").unwrap();
        let s = snippet(&text, &[(a, a + 6), (b, b + "世界".len())]);
        assert!(s.snippet.starts_with("…word "), "{}", s.snippet);
        assert!(s.snippet.ends_with(" tail…") || s.snippet.ends_with("tail…"));
        assert!(s.snippet.chars().count() <= SNIPPET_CHARS + 2);
        assert_eq!(marked(&s), ["needle", "世界"]);
    }

    #[test]
    fn matches_outside_the_window_are_not_marked() {
        let text = format!("needle {} needle", "x ".repeat(300));
        let last = text.rfind("needle").unwrap();
        let s = snippet(&text, &[(0, 6), (last, last + 6)]);
        assert_eq!(marked(&s), ["needle"]);
        assert!(!s.snippet.starts_with('…'));
    }
}
