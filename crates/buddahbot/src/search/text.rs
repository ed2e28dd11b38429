//! Words, as search sees them: Unicode word boundaries (UAX #29, so a CJK ideograph or kana
//! is a word of its own), folded to lower case without accents.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};
use unicode_segmentation::UnicodeSegmentation;

/// A word's characters beyond this many are not indexed (nor compared): a key stays short
/// whatever a message holds.
pub const MAX_TERM_CHARS: usize = 64;

/// One word of a text: its folded form and where it stands (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub term: String,
    pub start: usize,
    pub end: usize,
}

/// The words of `text`, in order. A word is a UAX #29 word segment holding a letter or a
/// digit, or an emoji (with its modifiers and joiners); punctuation and spaces are not words.
pub fn tokens(text: &str) -> Vec<Token> {
    text.split_word_bound_indices()
        .filter(|(_, segment)| segment.chars().any(|c| c.is_alphanumeric() || is_emoji(c)))
        .map(|(start, segment)| Token {
            term: fold(segment),
            start,
            end: start + segment.len(),
        })
        .filter(|token| !token.term.is_empty())
        .collect()
}

/// The distinct folded words of `text`, each once, in order of first appearance.
pub fn distinct_terms(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    tokens(text)
        .into_iter()
        .filter_map(|token| seen.insert(token.term.clone()).then_some(token.term))
        .collect()
}

/// `word` in lower case, without the accents of Latin, Greek and Cyrillic letters (`Müller`
/// → `muller`, `ß` → `ss`), with compatibility forms unified (full-width letters, ligatures)
/// and cut to [`MAX_TERM_CHARS`]. Marks that change other scripts' letters (the Japanese
/// voicing marks, say) are kept.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut strip_marks = false;
    for c in word.nfkd() {
        if is_combining_mark(c) {
            if !strip_marks && !is_variation_selector(c) {
                out.push(c);
            }
            continue;
        }
        strip_marks = is_accented_script(c);
        for lower in c.to_lowercase() {
            if lower == 'ß' {
                out.push_str("ss");
            } else {
                out.push(lower);
            }
        }
    }
    out.nfc().take(MAX_TERM_CHARS).collect()
}

/// Latin, Greek and Cyrillic, whose accents search ignores.
fn is_accented_script(c: char) -> bool {
    matches!(c, '\0'..='\u{024F}' | '\u{0370}'..='\u{052F}' | '\u{1E00}'..='\u{1FFF}')
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}')
}

/// Pictographs (emoji), which UAX #29 keeps as one segment with their modifiers.
fn is_emoji(c: char) -> bool {
    matches!(c, '\u{1F000}'..='\u{1FAFF}' | '\u{2600}'..='\u{27BF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|t| t.term).collect()
    }

    #[test]
    fn words_are_folded_to_lower_case_without_accents() {
        assert_eq!(terms("Müller ÉCOLE naïve"), ["muller", "ecole", "naive"]);
        assert_eq!(terms("Straße STRASSE"), ["strasse", "strasse"]);
        assert_eq!(terms("ＡＢＣ ﬁle"), ["abc", "file"]);
        // A decomposed accent folds like a composed one.
        assert_eq!(terms("Cafe\u{301} café"), ["cafe", "cafe"]);
        assert_eq!(terms("Ελληνικά"), ["ελληνικα"]);
    }

    #[test]
    fn cjk_characters_are_words_of_their_own_and_keep_their_marks() {
        assert_eq!(
            terms("東京タワーに行きました"),
            ["東", "京", "タワー", "に", "行", "き", "ま", "し", "た"]
        );
        // が is not か: the voicing mark changes the letter.
        assert_eq!(terms("が"), ["が"]);
        assert_eq!(terms("ｶﾞ"), ["ガ"]);
    }

    #[test]
    fn punctuation_is_not_a_word_and_emoji_are() {
        assert_eq!(terms("Hello, world! -- ok?"), ["hello", "world", "ok"]);
        assert_eq!(terms("party 🎉 time 👍🏽"), ["party", "🎉", "time", "👍🏽"]);
        assert_eq!(terms("❤️ love"), ["❤", "love"]);
        assert_eq!(terms("v2.5 don't e-mail"), ["v2.5", "don't", "e", "mail"]);
    }

    #[test]
    fn tokens_know_where_they_stand() {
        let text = "Grüße, 世界!";
        let tokens = tokens(text);
        let spans: Vec<&str> = tokens.iter().map(|t| &text[t.start..t.end]).collect();
        assert_eq!(spans, ["Grüße", "世", "界"]);
    }

    #[test]
    fn long_words_are_cut_and_terms_are_distinct() {
        let long = "a".repeat(100);
        assert_eq!(fold(&long).chars().count(), MAX_TERM_CHARS);
        assert_eq!(
            distinct_terms("the cat and THE dog"),
            ["the", "cat", "and", "dog"]
        );
    }
}
