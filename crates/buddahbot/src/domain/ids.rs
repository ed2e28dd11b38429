//! Identifiers that may become part of a Redis key or a URL.
//!
//! Each type has a private field and one fallible way in (`parse`), so a value of the type is
//! valid by construction. Nothing here allocates on the error path.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted user id, in bytes. Real ids (`github:583231`, `auth0|65f0…`, UUIDs, email
/// addresses) are far shorter; the bound keeps keys small.
pub const MAX_USER_ID_BYTES: usize = 256;

/// Longest accepted thread or message id, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// Why a string was refused as an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("id contains a character that is not allowed")]
    BadCharacter,
}

/// The verified user a request acts for: the `sub` of a token.
///
/// # Design
/// This is the only type `store::keys` accepts for the user part of a key, so a key can never
/// be built from raw request data. It rejects `{` and `}` because the id is the Redis Cluster
/// hash tag (`{<userId>}`): a brace inside it would move the tag and let one user's key name
/// collide with another's. Control characters are refused because they have no business in an
/// identifier and make logs lie.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(Box<str>);

impl UserId {
    /// Checks a token's `sub`.
    ///
    /// # Errors
    /// - [`IdError::Empty`] for an empty string;
    /// - [`IdError::TooLong`] above [`MAX_USER_ID_BYTES`] bytes;
    /// - [`IdError::BadCharacter`] for `{`, `}` or any control character.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.len() > MAX_USER_ID_BYTES {
            return Err(IdError::TooLong {
                max: MAX_USER_ID_BYTES,
            });
        }
        if raw.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
            return Err(IdError::BadCharacter);
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", &*self.0)
    }
}

impl Serialize for UserId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Parses `[A-Za-z0-9_-]{1,64}`: the shape shared by thread and message ids.
fn parse_token_id(raw: &str) -> Result<Box<str>, IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong { max: MAX_ID_BYTES });
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(IdError::BadCharacter);
    }
    Ok(raw.into())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Box<str>);

        impl $name {
            /// A fresh UUID v4, the form every id the server makes takes.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4().to_string().into())
            }

            /// Accepts an id from a client: `[A-Za-z0-9_-]{1,64}` (UUIDs and the AI SDK's
            /// 16-character chat ids both fit).
            ///
            /// # Errors
            /// [`IdError::Empty`], [`IdError::TooLong`] above 64 bytes, or
            /// [`IdError::BadCharacter`] for anything outside the alphabet.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                parse_token_id(raw).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(raw: String) -> Result<Self, IdError> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.into()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), &*self.0)
            }
        }
    };
}

token_id!(
    /// A conversation's id: a UUID v4 when the server makes it, any `[A-Za-z0-9_-]{1,64}` from
    /// a client.
    ThreadId
);

token_id!(
    /// A message's id, same alphabet as [`ThreadId`]. Clients may supply it so a retried request
    /// can be recognised.
    MessageId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_of_real_providers_are_accepted() {
        for raw in [
            "github:583231",
            "auth0|65f0c0ffee1234567890abcd",
            "user_01HZX3K8J9QW4E5R6T7Y8U9I0P",
            "42",
            "ada@example.com",
            "名前",
            &"x".repeat(MAX_USER_ID_BYTES),
        ] {
            let id = UserId::parse(raw).unwrap_or_else(|e| panic!("{raw:?} refused: {e}"));
            assert_eq!(id.as_str(), raw);
        }
    }

    #[test]
    fn user_ids_that_could_break_a_key_are_refused() {
        let cases = [
            ("", IdError::Empty),
            ("a{b", IdError::BadCharacter),
            ("a}b", IdError::BadCharacter),
            ("}", IdError::BadCharacter),
            ("line\nbreak", IdError::BadCharacter),
            ("nul\0", IdError::BadCharacter),
            ("del\u{7f}", IdError::BadCharacter),
            ("c1\u{85}", IdError::BadCharacter),
            (
                &"x".repeat(MAX_USER_ID_BYTES + 1),
                IdError::TooLong {
                    max: MAX_USER_ID_BYTES,
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(UserId::parse(raw), Err(want), "case {raw:?}");
        }
    }

    #[test]
    fn thread_ids_accept_uuids_and_ai_sdk_ids() {
        for raw in [
            "0b4c7a8e-6f1e-4d35-9c57-0f6f0c1c9a11",
            "Xy7kP2mQ9rT4vW1z",
            "a",
            "under_score-dash",
            &"z".repeat(MAX_ID_BYTES),
        ] {
            assert_eq!(
                ThreadId::parse(raw).map(|t| t.to_string()).as_deref(),
                Ok(raw)
            );
        }
    }

    #[test]
    fn thread_ids_outside_the_alphabet_are_refused() {
        let cases = [
            ("", IdError::Empty),
            ("has space", IdError::BadCharacter),
            ("slash/", IdError::BadCharacter),
            ("colon:", IdError::BadCharacter),
            ("brace{", IdError::BadCharacter),
            ("dot.", IdError::BadCharacter),
            ("ümlaut", IdError::BadCharacter),
            (
                &"z".repeat(MAX_ID_BYTES + 1),
                IdError::TooLong { max: MAX_ID_BYTES },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(ThreadId::parse(raw), Err(want), "case {raw:?}");
        }
    }

    #[test]
    fn new_ids_are_uuid_v4() {
        let id = ThreadId::new();
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_ne!(ThreadId::new(), id);
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: MessageId = serde_json::from_str("\"m-1\"").unwrap();
        assert_eq!(ok.as_str(), "m-1");
        assert!(serde_json::from_str::<MessageId>("\"m 1\"").is_err());
    }
}
