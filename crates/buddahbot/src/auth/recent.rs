//! Credentials verified lately, so that a token sent again within its life is not verified
//! again: an HS256 check costs ~35k instructions (base64, JSON, HMAC, the claims' checks) and
//! an Auth.js cookie's decryption more, while a look-up here costs a SHA-256 of the token.
//!
//! # Design
//! A fixed table of [`SLOTS`] entries, each behind its own lock, indexed by the digest of the
//! credential (its kind, the cookie name it was issued for and the token): memory is bounded
//! (~100 KB when full) and a new entry simply replaces the one in its slot. Only tokens that
//! verified are kept, with the seconds in which their verifier would accept them again
//! ([`Valid`]); a refused token is verified every time it is sent, as before. Nothing outlives
//! the process, whose secrets do not change. The table holds digests, never tokens.

use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::Valid;
use crate::domain::UserId;

/// Entries in the table.
pub const SLOTS: usize = 1024;

/// What a credential is, as far as its verification goes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `Authorization: Bearer`, an HS256 JWS or an Auth.js JWE.
    Bearer = 1,
    /// The Auth.js session cookie.
    Cookie = 2,
}

/// A credential's digest: SHA-256 of its kind, the cookie name it was issued for and the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    pub fn of(kind: Kind, cookie_name: &str, token: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update([kind as u8]);
        hash.update(cookie_name.as_bytes());
        // Cookie names hold no NUL: the name ends here.
        hash.update([0]);
        hash.update(token.as_bytes());
        Self(hash.finalize().into())
    }

    fn slot(&self) -> usize {
        usize::from(u16::from_le_bytes([self.0[0], self.0[1]])) % SLOTS
    }
}

struct Entry {
    key: Key,
    valid: Valid,
}

/// The table.
pub struct Recent {
    slots: Box<[Mutex<Option<Entry>>]>,
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl Recent {
    /// The user a credential verified as, when it did lately and its verifier would accept it
    /// at `now` (Unix seconds).
    pub fn get(&self, key: &Key, now: i64) -> Option<UserId> {
        let slot = self.slots[key.slot()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|entry| entry.key == *key && entry.valid.holds_at(now))
            .map(|entry| entry.valid.user.clone())
    }

    /// Keeps a credential that verified, in place of whatever was in its slot.
    pub fn put(&self, key: Key, valid: Valid) {
        *self.slots[key.slot()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Entry { key, valid });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(user: &str, from: i64, until: i64) -> Valid {
        Valid {
            user: UserId::parse(user).unwrap(),
            from,
            until,
        }
    }

    #[test]
    fn a_kept_credential_is_recalled_only_inside_its_window() {
        let recent = Recent::default();
        let key = Key::of(Kind::Bearer, "", "token-a");
        assert_eq!(recent.get(&key, 100), None);
        recent.put(key, valid("ada", 90, 110));
        for (now, expected) in [
            (89, None),
            (90, Some("ada")),
            (110, Some("ada")),
            (111, None),
        ] {
            assert_eq!(
                recent.get(&key, now).as_ref().map(UserId::as_str),
                expected,
                "at {now}"
            );
        }
    }

    #[test]
    fn kind_cookie_name_and_token_all_tell_credentials_apart() {
        let recent = Recent::default();
        let key = Key::of(Kind::Cookie, "authjs.session-token", "token-a");
        recent.put(key, valid("ada", 0, 100));
        for other in [
            Key::of(Kind::Bearer, "authjs.session-token", "token-a"),
            Key::of(Kind::Cookie, "__Secure-authjs.session-token", "token-a"),
            Key::of(Kind::Cookie, "authjs.session-token", "token-b"),
            Key::of(Kind::Cookie, "authjs.session-token", "token-a "),
            // The name's end is marked: a name's last byte cannot pass as the token's first.
            Key::of(Kind::Cookie, "authjs.session-toke", "ntoken-a"),
        ] {
            assert_ne!(other, key);
            assert_eq!(recent.get(&other, 50), None);
        }
        assert_eq!(recent.get(&key, 50).unwrap().as_str(), "ada");
    }

    #[test]
    fn a_new_credential_replaces_the_one_in_its_slot() {
        let recent = Recent::default();
        let first = Key::of(Kind::Bearer, "", "token-0");
        let second = (1..)
            .map(|n| Key::of(Kind::Bearer, "", &format!("token-{n}")))
            .find(|key| key.slot() == first.slot())
            .unwrap();
        recent.put(first, valid("ada", 0, 100));
        recent.put(second, valid("bob", 0, 100));
        assert_eq!(recent.get(&first, 50), None);
        assert_eq!(recent.get(&second, 50).unwrap().as_str(), "bob");
    }
}
