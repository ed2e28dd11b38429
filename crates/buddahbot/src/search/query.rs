//! A search query: its words and phrases, and whether a text matches it (and where).

use super::text::{Token, tokens};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// Most words in a query (phrases count each of their words).
pub const MAX_QUERY_TERMS: usize = 16;

/// What a user searched for. Every unit must occur in a text for it to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    units: Vec<Vec<String>>,
    /// The last word matches as a prefix (the user is still typing it).
    prefix: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("q must contain at least one word")]
    Empty,
    #[error("q is longer than {MAX_QUERY_CHARS} characters or {MAX_QUERY_TERMS} words")]
    TooLong,
}

impl Query {
    /// Reads `q`: words separated by spaces; `"quoted words"` are a phrase (an unclosed
    /// quote runs to the end); a chunk without spaces that holds several words (`e-mail`,
    /// `東京`) is a phrase too. The last word is a prefix unless the query ends with a space
    /// or a closing quote.
    ///
    /// # Errors
    /// [`QueryError`] when `q` has no word or too many.
    pub fn parse(q: &str) -> Result<Self, QueryError> {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut units = Vec::new();
        for (i, segment) in q.split('"').enumerate() {
            let quoted = !i.is_multiple_of(2);
            if quoted {
                units.push(terms_of(segment));
            } else {
                units.extend(segment.split_whitespace().map(terms_of));
            }
        }
        units.retain(|unit| !unit.is_empty());
        let count: usize = units.iter().map(Vec::len).sum();
        if count == 0 {
            return Err(QueryError::Empty);
        }
        if count > MAX_QUERY_TERMS {
            return Err(QueryError::TooLong);
        }
        let quotes = q.matches('"').count();
        let closed_phrase = q.ends_with('"') && quotes.is_multiple_of(2);
        let prefix = !q.ends_with(char::is_whitespace) && !closed_phrase;
        Ok(Self { units, prefix })
    }

    /// The word that matches as a prefix, if any.
    pub fn prefix_term(&self) -> Option<&str> {
        if !self.prefix {
            return None;
        }
        self.units.last()?.last().map(String::as_str)
    }

    /// The words that must occur whole, each once (the prefix word left out).
    pub fn exact_terms(&self) -> Vec<&str> {
        let last_unit = self.units.len() - 1;
        let mut out: Vec<&str> = Vec::new();
        for (u, unit) in self.units.iter().enumerate() {
            for (t, term) in unit.iter().enumerate() {
                let is_prefix = self.prefix && u == last_unit && t == unit.len() - 1;
                if !is_prefix && !out.contains(&term.as_str()) {
                    out.push(term);
                }
            }
        }
        out
    }

    /// Where `text` matches: the byte ranges of every occurrence of every unit, in order and
    /// merged; `None` unless every unit occurs.
    pub fn matches(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        let words = tokens(text);
        let last_unit = self.units.len() - 1;
        let mut spans = Vec::new();
        for (u, unit) in self.units.iter().enumerate() {
            let prefix = self.prefix && u == last_unit;
            let before = spans.len();
            for start in 0..words.len() {
                if let Some(end) = occurrence(&words[start..], unit, prefix) {
                    spans.push((words[start].start, end));
                }
            }
            if spans.len() == before {
                return None;
            }
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Some(merged)
    }
}

fn terms_of(chunk: &str) -> Vec<String> {
    tokens(chunk).into_iter().map(|t| t.term).collect()
}

/// Whether `unit` occurs at the start of `words`; the end of the occurrence (bytes) if so.
fn occurrence(words: &[Token], unit: &[String], prefix: bool) -> Option<usize> {
    if words.len() < unit.len() {
        return None;
    }
    let last = unit.len() - 1;
    for (k, term) in unit.iter().enumerate() {
        let word = &words[k].term;
        let hit = if prefix && k == last {
            word.starts_with(term.as_str())
        } else {
            word == term
        };
        if !hit {
            return None;
        }
    }
    Some(words[last].end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found<'t>(q: &str, text: &'t str) -> Option<Vec<&'t str>> {
        let query = Query::parse(q).unwrap();
        query
            .matches(text)
            .map(|spans| spans.iter().map(|&(s, e)| &text[s..e]).collect())
    }

    #[test]
    fn every_word_must_occur_and_the_last_is_a_prefix() {
        assert_eq!(
            found("redis clu", "Redis Cluster and redis"),
            Some(vec!["Redis", "Cluster", "redis"])
        );
        assert_eq!(found("redis clu ", "Redis Cluster"), None);
        assert_eq!(
            found("redis cluster ", "Redis Cluster"),
            Some(vec!["Redis", "Cluster"])
        );
        assert_eq!(found("redis postgres", "Redis Cluster"), None);
    }

    #[test]
    fn accents_and_case_do_not_matter() {
        assert_eq!(found("MULLER ", "Herr Müller kam"), Some(vec!["Müller"]));
        assert_eq!(found("grüsse", "Viele Grüße"), Some(vec!["Grüße"]));
        assert_eq!(found("cafe", "un CAFÉ noir"), Some(vec!["CAFÉ"]));
    }

    #[test]
    fn quoted_words_and_joined_words_are_phrases() {
        assert_eq!(
            found("\"new york\"", "New York, not York new"),
            Some(vec!["New York"])
        );
        assert_eq!(found("\"york new\"", "New York"), None);
        assert_eq!(found("\"new yo", "a new   yoga"), Some(vec!["new   yoga"]));
        assert_eq!(found("e-mail", "send an E-Mail"), Some(vec!["E-Mail"]));
        assert_eq!(found("東京", "東京タワーと京都"), Some(vec!["東京"]));
        assert_eq!(found("京東", "東京タワー"), None);
    }

    #[test]
    fn emoji_are_words() {
        assert_eq!(found("🎉", "party 🎉 now"), Some(vec!["🎉"]));
    }

    #[test]
    fn which_words_the_index_is_asked_for() {
        let q = Query::parse("\"new york\" pizza piz").unwrap();
        assert_eq!(q.exact_terms(), ["new", "york", "pizza"]);
        assert_eq!(q.prefix_term(), Some("piz"));
        let q = Query::parse("pizza pizza ").unwrap();
        assert_eq!(q.exact_terms(), ["pizza"]);
        assert_eq!(q.prefix_term(), None);
    }

    #[test]
    fn empty_and_oversized_queries_are_refused() {
        assert_eq!(Query::parse("  ?! "), Err(QueryError::Empty));
        assert_eq!(Query::parse("\"\""), Err(QueryError::Empty));
        assert_eq!(Query::parse(&"a ".repeat(17)), Err(QueryError::TooLong));
        assert_eq!(Query::parse(&"a".repeat(300)), Err(QueryError::TooLong));
    }
}
