//! Opaque pagination cursors.
//!
//! Clients get base64url strings and hand them back unchanged; the contents are ours to
//! change. A thread cursor is the position of the last thread of a page in the index order
//! (`updatedAt` descending, then id descending), so pages never repeat or skip a thread that
//! stays put. A message cursor is the list index of the oldest message of a page: messages
//! are only ever appended, so indices are stable.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::domain::ThreadId;

/// A cursor string that we did not make (or that was altered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this API issued")]
pub struct CursorError;

/// Where the next page of the thread index starts (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCursor {
    pub updated_at_ms: i64,
    pub id: ThreadId,
}

impl ThreadCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("t1:{}:{}", self.updated_at_ms, self.id))
    }

    /// # Errors
    /// [`CursorError`] when `raw` is not the output of [`ThreadCursor::encode`].
    pub fn parse(raw: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError)?;
        let rest = text.strip_prefix("t1:").ok_or(CursorError)?;
        let (ms, id) = rest.split_once(':').ok_or(CursorError)?;
        Ok(Self {
            updated_at_ms: ms.parse().map_err(|_| CursorError)?,
            id: ThreadId::parse(id).map_err(|_| CursorError)?,
        })
    }
}

/// Where the next page of a search starts (exclusive): the last document looked at, in the
/// index's order (time descending, then document descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCursor {
    /// The document's score (its time in ms × 1000 plus a tie-breaker).
    pub score: i64,
    /// `<thread number>:<list index>` or `<thread number>:t`.
    pub doc: String,
}

impl SearchCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("s1:{}:{}", self.score, self.doc))
    }

    /// # Errors
    /// [`CursorError`] when `raw` is not the output of [`SearchCursor::encode`].
    pub fn parse(raw: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError)?;
        let rest = text.strip_prefix("s1:").ok_or(CursorError)?;
        let (ms, doc) = rest.split_once(':').ok_or(CursorError)?;
        let (num, at) = doc.split_once(':').ok_or(CursorError)?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(num) || !(at == "t" || digits(at)) {
            return Err(CursorError);
        }
        Ok(Self {
            score: ms.parse().map_err(|_| CursorError)?,
            doc: doc.to_owned(),
        })
    }
}

/// Messages before this list index belong to older pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCursor(pub u64);

impl MessageCursor {
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("m1:{}", self.0))
    }

    /// # Errors
    /// [`CursorError`] when `raw` is not the output of [`MessageCursor::encode`].
    pub fn parse(raw: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError)?;
        let index = text.strip_prefix("m1:").ok_or(CursorError)?;
        index.parse().map(Self).map_err(|_| CursorError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = ThreadCursor {
            updated_at_ms: 1_795_318_629_123,
            id: ThreadId::parse("abc-DEF_1").unwrap(),
        };
        assert_eq!(ThreadCursor::parse(&c.encode()), Ok(c));
        assert_eq!(
            MessageCursor::parse(&MessageCursor(42).encode()),
            Ok(MessageCursor(42))
        );
        for doc in ["12:3", "7:t"] {
            let c = SearchCursor {
                score: 1_795_318_629_123_037,
                doc: doc.to_owned(),
            };
            assert_eq!(SearchCursor::parse(&c.encode()), Ok(c));
        }
    }

    #[test]
    fn search_cursors_name_a_document_or_nothing() {
        for text in [
            "s1:1:12", "s1:x:1:2", "s1:1:a:2", "s1:1:1:x", "s1:1:1:", "t1:1:1:2",
        ] {
            let raw = URL_SAFE_NO_PAD.encode(text);
            assert_eq!(SearchCursor::parse(&raw), Err(CursorError), "case {text:?}");
        }
    }

    #[test]
    fn foreign_cursors_are_refused() {
        let forged_thread = URL_SAFE_NO_PAD.encode("t1:12:bad id");
        let wrong_kind = MessageCursor(3).encode();
        for raw in [
            "",
            "!!!",
            "dDE6",
            forged_thread.as_str(),
            wrong_kind.as_str(),
        ] {
            assert_eq!(ThreadCursor::parse(raw), Err(CursorError), "case {raw:?}");
        }
        let negative = URL_SAFE_NO_PAD.encode("m1:-1");
        for raw in ["", "bTE6", negative.as_str()] {
            assert_eq!(MessageCursor::parse(raw), Err(CursorError), "case {raw:?}");
        }
    }
}
