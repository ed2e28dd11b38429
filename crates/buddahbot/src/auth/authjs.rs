//! Auth.js session tokens: the encrypted JWE a Next.js frontend using Auth.js (v5) or
//! NextAuth (v4) puts in its session cookie, and reading that cookie out of `Cookie` headers.
//!
//! This module owns key derivation (HKDF from the shared secret, salted with the cookie name),
//! JWE decryption (`dir` with `A256CBC-HS512` or `A256GCM`), and the claim checks that turn a
//! token into a [`UserId`]. The scheme is described in `tests/vectors/authjs/README.md`.
//!
//! It does not read request parts or decide whether a cookie or a bearer header wins: callers
//! pass strings in and get an [`AuthError`] (always a 401) or a user out. The frontend issues
//! the real tokens; [`AuthJs::encode`] makes the same kind for tests and local development.

use std::{borrow::Cow, collections::BTreeMap, fmt};

use aes::Aes256;
use aes_gcm::{Aes256Gcm, KeyInit, aead::AeadInPlace};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, de::DeserializeOwned, de::IgnoredAny};
use sha2::{Digest, Sha256, Sha512};

use super::{AuthError, Valid, jwt::LEEWAY_SECS};
use crate::domain::UserId;

/// Auth.js v5 session cookie on plain `http://` deployments.
pub const SESSION_COOKIE: &str = "authjs.session-token";
/// Auth.js v5 session cookie when secure cookies are on (the default for `https://`).
pub const SECURE_SESSION_COOKIE: &str = "__Secure-authjs.session-token";
/// NextAuth v4 session cookie on plain `http://` deployments.
pub const V4_SESSION_COOKIE: &str = "next-auth.session-token";
/// NextAuth v4 session cookie when secure cookies are on.
pub const V4_SECURE_SESSION_COOKIE: &str = "__Secure-next-auth.session-token";

/// Session cookie names in order of preference: secure over plain because a browser that has
/// both got the plain one from an older, non-TLS setup; v5 over v4 because v5 is the newer
/// frontend in a migration.
const SESSION_COOKIES: [&str; 4] = [
    SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
    V4_SECURE_SESSION_COOKIE,
    V4_SESSION_COOKIE,
];

/// Length of the A256CBC-HS512 content key: a 32-byte HMAC key followed by a 32-byte AES key.
const CBC_HS512_KEY_BYTES: usize = 64;
/// Length of an A256GCM content key.
const GCM_KEY_BYTES: usize = 32;

/// Decrypts Auth.js (v5) and NextAuth (v4) session tokens with the configured secrets.
///
/// # Design
/// Every key a token may need is derived once, in [`AuthJs::new`]: for each secret, both v5
/// cookie names × both content encryptions, plus the v4 key. HKDF and the thumbprint hash would
/// otherwise run on every request. A token's `kid` picks its key by comparing strings, so a
/// token for an unknown secret or the other cookie name is refused before any cryptography.
/// Only the algorithms Auth.js issues are accepted (`dir` with `A256CBC-HS512` or `A256GCM`);
/// the header cannot choose anything else. The HMAC tag is checked in constant time before
/// AES-CBC runs, so padding errors are only ever seen on authenticated ciphertext.
#[derive(Clone)]
pub struct AuthJs {
    /// In the order [`AuthJs::bearer`] tries them: secure v5, plain v5, v4; newest secret
    /// first within each.
    keys: Vec<DerivedKey>,
}

/// The HKDF salt a key was derived for, i.e. the cookie name the token was issued in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Salt {
    SecureV5,
    V5,
    /// NextAuth v4 never salts, whatever its cookie is called.
    V4,
}

/// The salts a bearer Auth.js token is tried under when its `kid` does not tell, in order.
const BEARER_SALTS: [Salt; 3] = [Salt::SecureV5, Salt::V5, Salt::V4];

impl Salt {
    fn from_cookie_name(name: &str) -> Option<Self> {
        match name {
            SECURE_SESSION_COOKIE => Some(Self::SecureV5),
            SESSION_COOKIE => Some(Self::V5),
            "" | V4_SESSION_COOKIE | V4_SECURE_SESSION_COOKIE => Some(Self::V4),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::SecureV5 => SECURE_SESSION_COOKIE,
            Self::V5 => SESSION_COOKIE,
            Self::V4 => "",
        }
    }

    /// The HKDF `info` input.
    fn info(self) -> String {
        match self {
            Self::SecureV5 | Self::V5 => {
                format!("Auth.js Generated Encryption Key ({})", self.as_str())
            }
            Self::V4 => "NextAuth.js Generated Encryption Key".to_owned(),
        }
    }
}

/// A JWE content encryption algorithm we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    A256CbcHs512,
    A256Gcm,
}

impl Enc {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "A256CBC-HS512" => Some(Self::A256CbcHs512),
            "A256GCM" => Some(Self::A256Gcm),
            _ => None,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Self::A256CbcHs512 => 16,
            Self::A256Gcm => 12,
        }
    }

    fn tag_len(self) -> usize {
        match self {
            Self::A256CbcHs512 => 32,
            Self::A256Gcm => 16,
        }
    }
}

#[derive(Clone)]
struct DerivedKey {
    salt: Salt,
    content: ContentKey,
    /// RFC 7638 thumbprint, the `kid` Auth.js writes; `None` for v4, whose tokens carry none.
    kid: Option<String>,
    /// Derived from the first (newest) secret: Auth.js uses only that one for a token without
    /// `kid`.
    newest: bool,
}

impl DerivedKey {
    fn derive(secret: &[u8], salt: Salt, enc: Enc, newest: bool) -> Option<Self> {
        let info = salt.info();
        let (content, kid) = match enc {
            Enc::A256CbcHs512 => {
                let okm = derive_key::<CBC_HS512_KEY_BYTES>(secret, salt.as_str(), &info)?;
                let kid = thumbprint::<Sha512>(&okm);
                let (mac, aes) = okm.split_at(32);
                let content = ContentKey::A256CbcHs512 {
                    mac: mac.try_into().ok()?,
                    aes: aes.try_into().ok()?,
                };
                (content, kid)
            }
            Enc::A256Gcm => {
                let okm = derive_key::<GCM_KEY_BYTES>(secret, salt.as_str(), &info)?;
                (ContentKey::A256Gcm(okm), thumbprint::<Sha256>(&okm))
            }
        };
        Some(Self {
            salt,
            content,
            kid: (salt != Salt::V4).then_some(kid),
            newest,
        })
    }

    /// Whether this key may open `jwe`, judging by the header alone.
    fn fits(&self, jwe: &Jwe<'_>) -> bool {
        if self.content.enc() != jwe.enc {
            return false;
        }
        match &jwe.kid {
            Some(kid) => self.kid.as_deref() == Some(kid.as_str()),
            // v4 tokens never name their key, so every configured secret is a candidate; the
            // GCM tag tells the right one apart.
            None => self.newest || self.salt == Salt::V4,
        }
    }
}

#[derive(Clone)]
enum ContentKey {
    /// RFC 7518 §5.2.2.1 order: the first half of the derived key is the MAC key.
    A256CbcHs512 {
        mac: [u8; 32],
        aes: [u8; 32],
    },
    A256Gcm([u8; 32]),
}

impl ContentKey {
    fn enc(&self) -> Enc {
        match self {
            Self::A256CbcHs512 { .. } => Enc::A256CbcHs512,
            Self::A256Gcm(_) => Enc::A256Gcm,
        }
    }

    /// The plaintext, or `None` when the tag does not verify under this key (so the caller may
    /// try the next one).
    ///
    /// Lengths of the IV and tag are checked by [`Jwe::parse`]; a wrong one here is refused,
    /// never trusted.
    fn open(&self, jwe: &Jwe<'_>) -> Result<Option<Vec<u8>>, AuthError> {
        match self {
            Self::A256CbcHs512 { mac, aes } => {
                // HMAC takes keys of any length: this error cannot happen.
                let mut hmac = <Hmac<Sha512> as Mac>::new_from_slice(mac)
                    .map_err(|_| AuthError::BadSignature)?;
                hmac.update(jwe.aad);
                hmac.update(&jwe.iv);
                hmac.update(&jwe.ciphertext);
                hmac.update(&aad_bits(jwe.aad)?.to_be_bytes());
                // `verify_truncated_left` accepts any tag up to 64 bytes, so the exact 32 is
                // enforced by `Jwe::parse`: a shorter tag would be easier to guess.
                if hmac.verify_truncated_left(&jwe.tag).is_err() {
                    return Ok(None);
                }
                let iv: [u8; 16] = jwe
                    .iv
                    .as_slice()
                    .try_into()
                    .map_err(|_| AuthError::Malformed)?;
                let mut buf = jwe.ciphertext.clone();
                // The tag verified, so a padding error means the issuer holds our key but
                // wrote garbage; there is no padding oracle to feed.
                let len = cbc::Decryptor::<Aes256>::new(aes.into(), &iv.into())
                    .decrypt_padded_mut::<Pkcs7>(&mut buf)
                    .map_err(|_| AuthError::Malformed)?
                    .len();
                buf.truncate(len);
                Ok(Some(buf))
            }
            Self::A256Gcm(key) => {
                let iv: [u8; 12] = jwe
                    .iv
                    .as_slice()
                    .try_into()
                    .map_err(|_| AuthError::Malformed)?;
                let tag: [u8; 16] = jwe
                    .tag
                    .as_slice()
                    .try_into()
                    .map_err(|_| AuthError::Malformed)?;
                let mut buf = jwe.ciphertext.clone();
                let opened = Aes256Gcm::new(key.into()).decrypt_in_place_detached(
                    &iv.into(),
                    jwe.aad,
                    &mut buf,
                    &tag.into(),
                );
                Ok(opened.is_ok().then_some(buf))
            }
        }
    }
}

/// The `AL` block of A256CBC-HS512: the AAD length in bits.
fn aad_bits(aad: &[u8]) -> Result<u64, AuthError> {
    u64::try_from(aad.len())
        .ok()
        .and_then(|len| len.checked_mul(8))
        .ok_or(AuthError::Malformed)
}

/// HKDF-SHA-256 of `secret`, salted with the cookie name.
///
/// `None` only if `N` exceeded 255 × 32 bytes, which no caller asks for; a key that cannot be
/// derived is left out, so it can never accept a token.
fn derive_key<const N: usize>(secret: &[u8], salt: &str, info: &str) -> Option<[u8; N]> {
    let mut okm = [0; N];
    Hkdf::<Sha256>::new(Some(salt.as_bytes()), secret)
        .expand(info.as_bytes(), &mut okm)
        .ok()?;
    Some(okm)
}

/// RFC 7638 thumbprint of `key` as an `oct` JWK: the members `k` and `kty`, in that (sorted)
/// order, with no whitespace.
fn thumbprint<D: Digest>(key: &[u8]) -> String {
    let jwk = format!(r#"{{"k":"{}","kty":"oct"}}"#, URL_SAFE_NO_PAD.encode(key));
    URL_SAFE_NO_PAD.encode(D::digest(jwk.as_bytes()))
}

/// A compact JWE whose header has passed the algorithm checks.
struct Jwe<'a> {
    /// The header part exactly as received: JWE authenticates these bytes, not the JSON.
    aad: &'a [u8],
    enc: Enc,
    kid: Option<String>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

#[derive(Deserialize)]
struct ProtectedHeader {
    alg: Option<String>,
    enc: Option<String>,
    kid: Option<String>,
    #[serde(default)]
    zip: Present,
    #[serde(default)]
    crit: Present,
}

/// Whether a header member is there at all, whatever its value: `"zip": null` must be refused
/// like any other `zip`, which `Option` would not notice.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Self(true))
    }
}

impl<'a> Jwe<'a> {
    fn parse(token: &'a str) -> Result<Self, AuthError> {
        // `splitn` bounds the work on a token made of dots.
        let mut parts = token.splitn(6, '.');
        let (Some(header), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(AuthError::Malformed);
        };
        let parsed: ProtectedHeader = json_object(&base64url(header)?)?;
        if parsed.alg.as_deref() != Some("dir") {
            return Err(AuthError::BadAlgorithm);
        }
        let enc = parsed
            .enc
            .as_deref()
            .and_then(Enc::parse)
            .ok_or(AuthError::BadAlgorithm)?;
        // We inflate nothing (a decompression bomb costs more than a 401) and understand no
        // extension, so a header that requires either is refused.
        if parsed.zip.0 || parsed.crit.0 {
            return Err(AuthError::BadAlgorithm);
        }
        // With `dir` there is no wrapped key; anything here was not made by Auth.js.
        if !encrypted_key.is_empty() {
            return Err(AuthError::Malformed);
        }
        let iv = base64url(iv)?;
        let tag = base64url(tag)?;
        if iv.len() != enc.iv_len() || tag.len() != enc.tag_len() {
            return Err(AuthError::Malformed);
        }
        Ok(Self {
            aad: header.as_bytes(),
            enc,
            kid: parsed.kid,
            iv,
            ciphertext: base64url(ciphertext)?,
            tag,
        })
    }
}

/// Strict unpadded base64url, as JOSE requires.
fn base64url(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)
}

/// Parses a JSON object. The check on the first byte is needed because serde's derived structs
/// also accept an array (fields by position), and JOSE headers and claims are objects only.
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(AuthError::Malformed);
    }
    serde_json::from_slice(bytes).map_err(|_| AuthError::Malformed)
}

/// The claims we act on; the rest (`name`, `email`, `picture`, app claims) are ignored.
#[derive(Deserialize)]
struct Claims {
    /// `f64` because a NumericDate may be fractional or beyond `i64`; either way it compares
    /// with the clock without overflow.
    exp: Option<f64>,
    nbf: Option<f64>,
    sub: Option<String>,
}

/// Checks the decrypted claims at `now` (Unix seconds) and returns the subject and how long
/// the token stays valid.
fn check_claims(plaintext: &[u8], now: i64) -> Result<Valid, AuthError> {
    let claims: Claims = json_object(plaintext)?;
    // Whole seconds well inside f64's exact range until the year 285 million.
    let now = now as f64;
    let leeway = LEEWAY_SECS as f64;
    let exp = claims.exp.ok_or(AuthError::MissingClaim)?;
    // Same rule and tolerance as Auth.js's own `decode`; `iat` is not compared with the clock
    // because frontend clocks drift.
    if exp <= now - leeway {
        return Err(AuthError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(AuthError::NotYetValid);
    }
    let sub = claims.sub.ok_or(AuthError::MissingClaim)?;
    let user = UserId::parse(&sub).map_err(AuthError::BadSubject)?;
    Ok(Valid::new(user, claims.nbf, Some(exp)))
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl AuthJs {
    /// Derives every key a session token may need. `secrets` newest first, as in
    /// [`AuthConfig`](crate::config::AuthConfig): Auth.js issues with the first and accepts
    /// all of them.
    pub fn new(secrets: &[SecretString]) -> Self {
        let mut keys = Vec::with_capacity(secrets.len().saturating_mul(5));
        let schemes = [
            (Salt::SecureV5, Enc::A256CbcHs512),
            (Salt::SecureV5, Enc::A256Gcm),
            (Salt::V5, Enc::A256CbcHs512),
            (Salt::V5, Enc::A256Gcm),
            (Salt::V4, Enc::A256Gcm),
        ];
        for (salt, enc) in schemes {
            for (i, secret) in secrets.iter().enumerate() {
                let secret = secret.expose_secret().as_bytes();
                keys.extend(DerivedKey::derive(secret, salt, enc, i == 0));
            }
        }
        Self { keys }
    }

    /// Decrypts a session token that arrived in the cookie named `salt` and returns its
    /// subject.
    ///
    /// `salt` is [`SESSION_COOKIE`] or [`SECURE_SESSION_COOKIE`] for Auth.js v5, and
    /// [`V4_SESSION_COOKIE`], [`V4_SECURE_SESSION_COOKIE`] or `""` for NextAuth v4; the
    /// `cookie_name` from [`session_token`] fits. A v5 token decrypts only under the cookie name it
    /// was issued for.
    ///
    /// # Errors
    /// - [`AuthError::Malformed`] when it is not a compact JWE (5 base64url parts, JSON object
    ///   header, empty key part, right IV and tag sizes), or it decrypts to something that is
    ///   not a JSON object with well-typed claims;
    /// - [`AuthError::BadAlgorithm`] unless `alg` is `dir` and `enc` is `A256CBC-HS512` or
    ///   `A256GCM`, or when the header has `zip` or `crit`;
    /// - [`AuthError::BadSignature`] when no key for `salt` fits the `kid` (or, without one,
    ///   the newest secret's key), when the tag does not verify, or for an unknown `salt`;
    /// - [`AuthError::Expired`] when `exp` is 15 s or more in the past;
    /// - [`AuthError::NotYetValid`] when `nbf` is more than 15 s in the future;
    /// - [`AuthError::MissingClaim`] without `exp` or `sub`;
    /// - [`AuthError::BadSubject`] when `sub` is not a valid [`UserId`].
    pub fn decode(&self, token: &str, salt: &str) -> Result<UserId, AuthError> {
        self.decode_valid(token, salt).map(|valid| valid.user)
    }

    /// [`AuthJs::decode`], with how long the token stays valid.
    pub(super) fn decode_valid(&self, token: &str, salt: &str) -> Result<Valid, AuthError> {
        self.decode_valid_at(token, salt, unix_now())
    }

    /// Decrypts an Auth.js token sent as `Authorization: Bearer`, as Auth.js's `getToken`
    /// allows. The cookie name is unknown, so the `kid` picks the salt; a token without one is
    /// tried under the secure v5 name, the plain v5 name, then as v4. `%XX` escapes are
    /// decoded first, as `getToken` does.
    ///
    /// # Errors
    /// As [`AuthJs::decode`], trying every salt.
    pub fn bearer(&self, token: &str) -> Result<UserId, AuthError> {
        self.bearer_valid(token).map(|valid| valid.user)
    }

    /// [`AuthJs::bearer`], with how long the token stays valid.
    pub(super) fn bearer_valid(&self, token: &str) -> Result<Valid, AuthError> {
        self.bearer_valid_at(token, unix_now())
    }

    /// Issues a session token for the cookie `cookie_name` (a v5 name), exactly as Auth.js's
    /// `encode` does (`dir` + `A256CBC-HS512`, the newest secret, its `kid`, a random IV), for
    /// tests and local development. `claims` are written as given: include `sub` and `exp`.
    ///
    /// # Errors
    /// [`AuthError::BadSignature`] for a name that is not a v5 session cookie or when no
    /// secret is configured; [`AuthError::Malformed`] if the system's random source fails.
    pub fn encode(
        &self,
        claims: &serde_json::Value,
        cookie_name: &str,
    ) -> Result<String, AuthError> {
        let salt = Salt::from_cookie_name(cookie_name)
            .filter(|s| *s != Salt::V4)
            .ok_or(AuthError::BadSignature)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.salt == salt && k.newest && k.content.enc() == Enc::A256CbcHs512)
            .ok_or(AuthError::BadSignature)?;
        let (ContentKey::A256CbcHs512 { mac, aes }, Some(kid)) = (&key.content, &key.kid) else {
            return Err(AuthError::BadSignature);
        };
        let header = serde_json::json!({ "alg": "dir", "enc": "A256CBC-HS512", "kid": kid });
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let mut iv = [0_u8; 16];
        getrandom::fill(&mut iv).map_err(|_| AuthError::Malformed)?;
        let mut buf = claims.to_string().into_bytes();
        let len = buf.len();
        // PKCS#7 adds 1 to 16 bytes.
        buf.resize(len + 16, 0);
        let ciphertext = cbc::Encryptor::<Aes256>::new(aes.into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buf, len)
            .map_err(|_| AuthError::Malformed)?;
        let mut hmac =
            <Hmac<Sha512> as Mac>::new_from_slice(mac).map_err(|_| AuthError::BadSignature)?;
        hmac.update(header.as_bytes());
        hmac.update(&iv);
        hmac.update(ciphertext);
        hmac.update(&aad_bits(header.as_bytes())?.to_be_bytes());
        let tag = hmac.finalize().into_bytes();
        Ok(format!(
            "{header}..{}.{}.{}",
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ciphertext),
            URL_SAFE_NO_PAD.encode(&tag[..32]),
        ))
    }

    fn decode_valid_at(&self, token: &str, salt: &str, now: i64) -> Result<Valid, AuthError> {
        self.open(token, Salt::from_cookie_name(salt).as_slice(), now)
    }

    fn bearer_valid_at(&self, token: &str, now: i64) -> Result<Valid, AuthError> {
        let token = percent_decode(token)?;
        self.open(&token, &BEARER_SALTS, now)
    }

    /// [`AuthJs::decode`] at `now` (Unix seconds), for tests of the clock's rules.
    #[cfg(test)]
    fn decode_at(&self, token: &str, salt: &str, now: i64) -> Result<UserId, AuthError> {
        self.decode_valid_at(token, salt, now)
            .map(|valid| valid.user)
    }

    /// [`AuthJs::bearer`] at `now` (Unix seconds), for tests of the clock's rules.
    #[cfg(test)]
    fn bearer_at(&self, token: &str, now: i64) -> Result<UserId, AuthError> {
        self.bearer_valid_at(token, now).map(|valid| valid.user)
    }

    fn open(&self, token: &str, salts: &[Salt], now: i64) -> Result<Valid, AuthError> {
        let jwe = Jwe::parse(token)?;
        let candidates = self
            .keys
            .iter()
            .filter(|key| salts.contains(&key.salt) && key.fits(&jwe));
        for key in candidates {
            if let Some(plaintext) = key.content.open(&jwe)? {
                return check_claims(&plaintext, now);
            }
        }
        Err(AuthError::BadSignature)
    }
}

impl fmt::Debug for AuthJs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthJs")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// A session token read from `Cookie` headers.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookie {
    /// The token: chunks joined, `%XX` escapes decoded.
    pub token: String,
    /// The cookie's base name (no chunk suffix): the salt to pass to [`AuthJs::decode`].
    pub cookie_name: &'static str,
}

impl fmt::Debug for SessionCookie {
    // The token is a credential: logs get its size, never its value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCookie")
            .field("cookie_name", &self.cookie_name)
            .field("token_len", &self.token.len())
            .finish()
    }
}

/// Finds the session cookie in the values of every `Cookie` header of a request.
///
/// Pairs are `;`-separated `name=value`; spaces around them, pairs without `=`, other cookies
/// (`authjs.csrf-token`, `authjs.callback-url`, …) and a session cookie with an empty value
/// are ignored. When a name appears twice the first wins, as in the `cookie` parser Auth.js
/// uses. Values are unquoted and percent-decoded. The preference is
/// [`SECURE_SESSION_COOKIE`], [`SESSION_COOKIE`], then the v4 names. A name's unsuffixed
/// cookie beats its chunks `<name>.0`, `<name>.1`, …, which are joined in numeric order
/// whatever order they came in.
///
/// Returns `None` when there is no session cookie, so the caller can look for a bearer token
/// as `getToken` does.
///
/// # Errors
/// [`AuthError::Malformed`] (inside `Some`) when the chosen cookie's chunks do not run
/// contiguously from `.0`, when a chunk number does not fit a `usize`, or when a value decodes
/// to invalid UTF-8.
pub fn session_token<'a>(
    cookie_header_values: impl IntoIterator<Item = &'a str>,
) -> Option<Result<SessionCookie, AuthError>> {
    let mut found: [Found<'a>; SESSION_COOKIES.len()] = Default::default();
    for pair in cookie_header_values
        .into_iter()
        .flat_map(|header| header.split(';'))
    {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        for (base, slot) in SESSION_COOKIES.iter().zip(found.iter_mut()) {
            slot.add(base, name, value);
        }
    }
    SESSION_COOKIES
        .into_iter()
        .zip(found)
        .find_map(|(name, slot)| {
            slot.into_token().map(|token| {
                token.map(|token| SessionCookie {
                    token,
                    cookie_name: name,
                })
            })
        })
}

/// What the headers hold for one session cookie name.
#[derive(Default)]
struct Found<'a> {
    whole: Option<&'a str>,
    chunks: BTreeMap<usize, &'a str>,
    /// A chunk whose number overflows: it cannot be placed, so the token has a hole.
    unplaceable_chunk: bool,
}

impl<'a> Found<'a> {
    fn add(&mut self, base: &str, name: &str, value: &'a str) {
        let Some(rest) = name.strip_prefix(base) else {
            return;
        };
        if rest.is_empty() {
            self.whole.get_or_insert(value);
            return;
        }
        let Some(index) = rest.strip_prefix('.') else {
            return;
        };
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        match index.parse() {
            Ok(index) => {
                self.chunks.entry(index).or_insert(value);
            }
            Err(_) => self.unplaceable_chunk = true,
        }
    }

    fn into_token(self) -> Option<Result<String, AuthError>> {
        if let Some(whole) = self.whole.map(unquote).filter(|v| !v.is_empty()) {
            return Some(percent_decode(whole).map(Cow::into_owned));
        }
        if self.chunks.is_empty() && !self.unplaceable_chunk {
            return None;
        }
        let contiguous = self.chunks.keys().enumerate().all(|(i, &index)| i == index);
        if self.unplaceable_chunk || !contiguous {
            return Some(Err(AuthError::Malformed));
        }
        let mut token = String::new();
        for chunk in self.chunks.into_values() {
            match percent_decode(unquote(chunk)) {
                Ok(chunk) => token.push_str(&chunk),
                Err(e) => return Some(Err(e)),
            }
        }
        (!token.is_empty()).then_some(Ok(token))
    }
}

/// RFC 6265 allows a cookie value in double quotes; the quotes are not part of it.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Decodes `%XX` escapes. A `%` not followed by two hex digits is kept as is, as the `cookie`
/// parser Auth.js uses keeps undecodable values.
///
/// # Errors
/// [`AuthError::Malformed`] when the decoded bytes are not UTF-8.
fn percent_decode(raw: &str) -> Result<Cow<'_, str>, AuthError> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%'
            && let [hi, lo, after @ ..] = tail
            && let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo))
        {
            out.push(hi << 4 | lo);
            rest = after;
            continue;
        }
        out.push(byte);
        rest = tail;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| AuthError::Malformed)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::AeadInPlace;
    use cbc::cipher::{BlockEncryptMut, block_padding::NoPadding};
    use serde::Deserialize;

    use super::*;
    use crate::domain::IdError;

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/authjs/vectors.json"
    );
    /// The secret every vector is made with (and the newest configured one in crafted tests).
    const SECRET: &str = "dev-secret-please-change-0123456789abcdef";
    const OLD_SECRET: &str = "old-secret-rotated-out-0123456789abcdefghij";
    /// A fixed clock for crafted tokens.
    const NOW: i64 = 1_800_000_000;
    const CBC_IV: [u8; 16] = [7; 16];
    const GCM_IV: [u8; 12] = [9; 12];

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        kind: String,
        secret: String,
        salt: Option<String>,
        expect: String,
        token: String,
        expected_claims: Option<VectorClaims>,
        claims_inside_for_reference: Option<VectorClaims>,
    }

    #[derive(Deserialize)]
    struct VectorClaims {
        sub: String,
        iat: i64,
    }

    fn vectors() -> Vec<Vector> {
        let text = std::fs::read_to_string(VECTORS).expect("vectors.json is readable");
        serde_json::from_str(text.as_str()).expect("vectors.json parses")
    }

    /// The vectors' generation time: the clock their accept/reject labels hold at.
    fn generation_time(vectors: &[Vector]) -> i64 {
        vectors
            .iter()
            .filter_map(|v| {
                v.expected_claims
                    .as_ref()
                    .or(v.claims_inside_for_reference.as_ref())
            })
            .map(|c| c.iat)
            .max()
            .expect("vectors carry an iat")
    }

    fn jwe_vectors(vectors: &[Vector]) -> impl Iterator<Item = &Vector> {
        vectors
            .iter()
            .filter(|v| v.kind == "authjs-jwe" || v.kind == "nextauth-v4-jwe")
    }

    fn auth_for(secrets: &[&str]) -> AuthJs {
        let secrets: Vec<SecretString> = secrets.iter().map(|s| SecretString::from(*s)).collect();
        AuthJs::new(&secrets)
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn v5_key(secret: &str, salt: &str) -> [u8; 64] {
        derive_key::<64>(
            secret.as_bytes(),
            salt,
            &format!("Auth.js Generated Encryption Key ({salt})"),
        )
        .expect("64 bytes derive")
    }

    fn v5_header(secret: &str, salt: &str) -> String {
        let kid = thumbprint::<Sha512>(&v5_key(secret, salt));
        format!(r#"{{"alg":"dir","enc":"A256CBC-HS512","kid":"{kid}"}}"#)
    }

    fn cbc_tag(key: &[u8; 64], header_b64: &str, iv: &[u8], ciphertext: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(&key[..32]).expect("any key length");
        mac.update(header_b64.as_bytes());
        mac.update(iv);
        mac.update(ciphertext);
        mac.update(&(header_b64.len() as u64 * 8).to_be_bytes());
        mac.finalize().into_bytes()[..32].to_vec()
    }

    fn cbc_encrypt(key: &[u8; 64], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        buf.resize(plaintext.len() + 16, 0);
        let aes: [u8; 32] = key[32..].try_into().expect("32 bytes");
        cbc::Encryptor::<Aes256>::new(&aes.into(), &CBC_IV.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plaintext.len())
            .expect("buffer has room for padding")
            .to_vec()
    }

    /// A token made the way Auth.js's `encode` makes one, with a fixed IV and any header.
    fn seal_cbc(secret: &str, salt: &str, header: &str, claims: &str) -> String {
        let key = v5_key(secret, salt);
        seal_cbc_raw(&key, header, &cbc_encrypt(&key, claims.as_bytes()))
    }

    /// Authenticates `ciphertext` as is, so padding and length errors get past the tag.
    fn seal_cbc_raw(key: &[u8; 64], header: &str, ciphertext: &[u8]) -> String {
        let header = b64(header.as_bytes());
        let tag = cbc_tag(key, &header, &CBC_IV, ciphertext);
        format!(
            "{header}..{}.{}.{}",
            b64(&CBC_IV),
            b64(ciphertext),
            b64(&tag)
        )
    }

    fn seal_gcm(key: &[u8; 32], header: &str, claims: &str) -> String {
        let header = b64(header.as_bytes());
        let mut buf = claims.as_bytes().to_vec();
        let tag = Aes256Gcm::new(key.into())
            .encrypt_in_place_detached(&GCM_IV.into(), header.as_bytes(), &mut buf)
            .expect("small messages encrypt");
        format!("{header}..{}.{}.{}", b64(&GCM_IV), b64(&buf), b64(&tag))
    }

    fn claims(sub: &str, exp: i64) -> String {
        serde_json::json!({ "sub": sub, "exp": exp, "iat": NOW, "name": null }).to_string()
    }

    /// Replaces part `index` of a compact token.
    fn with_part(token: &str, index: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = part;
        parts.join(".")
    }

    /// Flips the low bit of the first byte of part `index`.
    fn flip(token: &str, index: usize) -> String {
        let part = token.split('.').nth(index).expect("part exists");
        let mut bytes = URL_SAFE_NO_PAD.decode(part).expect("part is base64url");
        bytes[0] ^= 1;
        with_part(token, index, &b64(&bytes))
    }

    fn user(raw: &str) -> UserId {
        UserId::parse(raw).expect("valid user id")
    }

    #[test]
    fn derived_keys_and_kids_match_the_vector_readme() {
        let cases = [
            (
                SESSION_COOKIE,
                "cd41967a8abd7847d379268563a96e2c76a24b5ca2bb8d8d4f9f195e6cd13aea22668cd6fdc76855e4dec58f3171d6e243dff5630e2427ad186f9666106edafa",
                Some(
                    "VLQlT-27xU3fa1vJbucfM3fYJz1ACpkCyNNkr7BjbmJlHiqxHO-NdVKgL2kOZl5jxw70mnr7-BDaF-aq1BSbsw",
                ),
            ),
            (
                SECURE_SESSION_COOKIE,
                "0bc38c5fc8adf7aa98d65dd411035c2fe50d5cc8c99e165e537d3c09dc938151bcf489fedb02eff009f153e0b8da18ac47c7bc92f4cc0cd7a944c7d51fa7dba1",
                Some(
                    "_0xuFDvEWwKuR6YT_pdossnvm7nslhVVSxV2GNnKSwASSrCeLjCkkYioZsw1zf4ggiGqmU7sNLN-R54gMMu2Tg",
                ),
            ),
            (
                "",
                "df5462cf91ee4ef784308c0ffdcf614943a29bc96b4171607b28ce396833905d",
                None,
            ),
        ];
        let auth = auth_for(&[SECRET]);

        for (salt, key_hex, kid) in cases {
            let salt_id = Salt::from_cookie_name(salt).expect("known salt");
            let enc = if salt_id == Salt::V4 {
                Enc::A256Gcm
            } else {
                Enc::A256CbcHs512
            };
            let key = auth
                .keys
                .iter()
                .find(|k| k.salt == salt_id && k.content.enc() == enc)
                .expect("key derived");
            let bytes = match &key.content {
                ContentKey::A256CbcHs512 { mac, aes } => [mac.as_slice(), aes].concat(),
                ContentKey::A256Gcm(key) => key.to_vec(),
            };
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();

            assert_eq!(hex, key_hex, "derived key for salt {salt:?}");
            assert_eq!(key.kid.as_deref(), kid, "kid for salt {salt:?}");
        }
    }

    #[test]
    fn every_library_vector_decodes_as_labelled_with_its_own_salt() {
        let vectors = vectors();
        let now = generation_time(&vectors);
        let mut checked = 0;

        for v in jwe_vectors(&vectors) {
            let auth = auth_for(&[v.secret.as_str()]);
            let salt = v.salt.as_deref().expect("JWE vectors have a salt");

            let result = auth.decode_at(&v.token, salt, now);

            match (v.expect.as_str(), &v.expected_claims) {
                ("accept", Some(expected)) => {
                    assert_eq!(result, Ok(user(&expected.sub)), "vector {}", v.name);
                }
                ("reject", _) => assert!(result.is_err(), "vector {} must be rejected", v.name),
                _ => panic!("vector {} has an unexpected label", v.name),
            }
            checked += 1;
        }
        assert_eq!(checked, 9, "every authjs-jwe and nextauth-v4-jwe vector");
    }

    #[test]
    fn every_library_vector_decodes_as_labelled_as_a_bearer_token() {
        let vectors = vectors();
        let now = generation_time(&vectors);

        for v in jwe_vectors(&vectors) {
            let auth = auth_for(&[v.secret.as_str()]);
            // The wrong-salt token is refused only because it arrived in the other cookie; as
            // a bearer token the cookie name is unknown, and it is a valid token for
            // `__Secure-authjs.session-token`, so accepting it is right.
            let expect = if v.name == "authjs-reject-wrong-salt" {
                "accept"
            } else {
                &v.expect
            };

            let result = auth.bearer_at(&v.token, now);

            if expect == "accept" {
                let sub = v
                    .expected_claims
                    .as_ref()
                    .map_or("user_01HZX3K8J9QW4E5R6T7Y8U9I0P", |c| c.sub.as_str());
                assert_eq!(result, Ok(user(sub)), "vector {}", v.name);
            } else {
                assert!(result.is_err(), "vector {} must be rejected", v.name);
            }
        }
    }

    #[test]
    fn library_tokens_are_accepted_against_the_real_clock() {
        let vectors = vectors();

        for v in jwe_vectors(&vectors).filter(|v| v.expect == "accept") {
            let auth = auth_for(&[v.secret.as_str()]);
            let sub = &v
                .expected_claims
                .as_ref()
                .expect("accepts carry claims")
                .sub;
            let salt = v.salt.as_deref().expect("JWE vectors have a salt");

            assert_eq!(
                auth.decode(&v.token, salt),
                Ok(user(sub)),
                "decode {}",
                v.name
            );
            assert_eq!(auth.bearer(&v.token), Ok(user(sub)), "bearer {}", v.name);
        }
    }

    #[test]
    fn v4_and_v5_tokens_do_not_decode_under_each_others_salts() {
        let vectors = vectors();
        let now = generation_time(&vectors);
        let auth = auth_for(&[SECRET]);
        let token = |name: &str| {
            vectors
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.token.clone())
                .expect("vector exists")
        };
        let cases = [
            ("nextauth-v4-accept", SESSION_COOKIE),
            ("nextauth-v4-accept", SECURE_SESSION_COOKIE),
            ("authjs-accept-plain-cookie", ""),
            ("authjs-accept-plain-cookie", V4_SESSION_COOKIE),
            ("authjs-accept-secure-cookie", V4_SECURE_SESSION_COOKIE),
            ("authjs-accept-plain-cookie", SECURE_SESSION_COOKIE),
            ("authjs-accept-plain-cookie", "some-other-cookie"),
        ];

        for (name, salt) in cases {
            assert_eq!(
                auth.decode_at(&token(name), salt, now),
                Err(AuthError::BadSignature),
                "{name} under salt {salt:?}"
            );
        }
    }

    #[test]
    fn tampered_and_forbidden_tokens_are_rejected() {
        let valid = seal_cbc(
            SECRET,
            SESSION_COOKIE,
            &v5_header(SECRET, SESSION_COOKIE),
            &claims("ada", NOW + 60),
        );
        let kid = thumbprint::<Sha512>(&v5_key(SECRET, SESSION_COOKIE));
        let forged =
            |header: &str| seal_cbc(SECRET, SESSION_COOKIE, header, &claims("ada", NOW + 60));
        let key = v5_key(SECRET, SESSION_COOKIE);
        let header = v5_header(SECRET, SESSION_COOKIE);
        let cases = [
            ("IV bit flipped", flip(&valid, 2), AuthError::BadSignature),
            (
                "ciphertext bit flipped",
                flip(&valid, 3),
                AuthError::BadSignature,
            ),
            ("tag bit flipped", flip(&valid, 4), AuthError::BadSignature),
            (
                "tag cut to 16 bytes",
                with_part(&valid, 4, &valid.split('.').nth(4).expect("tag")[..22]),
                AuthError::Malformed,
            ),
            (
                "header with the same JSON but other bytes",
                with_part(&valid, 0, &b64(format!("{header} ").as_bytes())),
                AuthError::BadSignature,
            ),
            (
                "header swapped for alg none",
                with_part(&valid, 0, &b64(br#"{"alg":"none","enc":"A256CBC-HS512"}"#)),
                AuthError::BadAlgorithm,
            ),
            (
                "alg missing",
                forged(&format!(r#"{{"enc":"A256CBC-HS512","kid":"{kid}"}}"#)),
                AuthError::BadAlgorithm,
            ),
            (
                "alg A256KW",
                forged(&format!(
                    r#"{{"alg":"A256KW","enc":"A256CBC-HS512","kid":"{kid}"}}"#
                )),
                AuthError::BadAlgorithm,
            ),
            (
                "enc A128CBC-HS256",
                forged(&format!(
                    r#"{{"alg":"dir","enc":"A128CBC-HS256","kid":"{kid}"}}"#
                )),
                AuthError::BadAlgorithm,
            ),
            (
                "zip DEF",
                forged(&format!(
                    r#"{{"alg":"dir","enc":"A256CBC-HS512","zip":"DEF","kid":"{kid}"}}"#
                )),
                AuthError::BadAlgorithm,
            ),
            (
                "zip null",
                forged(&format!(
                    r#"{{"alg":"dir","enc":"A256CBC-HS512","zip":null,"kid":"{kid}"}}"#
                )),
                AuthError::BadAlgorithm,
            ),
            (
                "crit",
                forged(&format!(
                    r#"{{"alg":"dir","enc":"A256CBC-HS512","crit":["exp"],"exp":1,"kid":"{kid}"}}"#
                )),
                AuthError::BadAlgorithm,
            ),
            (
                "alg given twice",
                forged(&format!(
                    r#"{{"alg":"none","alg":"dir","enc":"A256CBC-HS512","kid":"{kid}"}}"#
                )),
                AuthError::Malformed,
            ),
            (
                "header is an array",
                forged(&format!(r#"["dir","A256CBC-HS512","{kid}"]"#)),
                AuthError::Malformed,
            ),
            (
                "kid of another secret",
                forged(&v5_header(OLD_SECRET, SESSION_COOKIE)),
                AuthError::BadSignature,
            ),
            (
                "kid of the other cookie name",
                forged(&v5_header(SECRET, SECURE_SESSION_COOKIE)),
                AuthError::BadSignature,
            ),
            (
                "non-empty encrypted key",
                with_part(&valid, 1, &b64(&[0; 32])),
                AuthError::Malformed,
            ),
            (
                "authenticated ciphertext with broken padding",
                seal_cbc_raw(&key, &header, &{
                    let mut block = [0u8; 16];
                    let aes: [u8; 32] = key[32..].try_into().expect("32 bytes");
                    cbc::Encryptor::<Aes256>::new(&aes.into(), &CBC_IV.into())
                        .encrypt_padded_mut::<NoPadding>(&mut block, 16)
                        .expect("one block")
                        .to_vec()
                }),
                AuthError::Malformed,
            ),
            (
                "authenticated empty ciphertext",
                seal_cbc_raw(&key, &header, &[]),
                AuthError::Malformed,
            ),
            (
                "authenticated ciphertext off the block size",
                seal_cbc_raw(&key, &header, &[1; 17]),
                AuthError::Malformed,
            ),
            (
                "expired and tampered: the tag is checked first",
                flip(
                    &seal_cbc(SECRET, SESSION_COOKIE, &header, &claims("ada", NOW - 3600)),
                    3,
                ),
                AuthError::BadSignature,
            ),
        ];
        let auth = auth_for(&[SECRET]);
        assert_eq!(auth.decode_at(&valid, SESSION_COOKIE, NOW), Ok(user("ada")));

        for (case, token, expected) in cases {
            assert_eq!(
                auth.decode_at(&token, SESSION_COOKIE, NOW),
                Err(expected.clone()),
                "decode: {case}"
            );
            assert_eq!(auth.bearer_at(&token, NOW), Err(expected), "bearer: {case}");
        }
    }

    #[test]
    fn malformed_token_shapes_are_rejected_without_panicking() {
        let valid = seal_cbc(
            SECRET,
            SESSION_COOKIE,
            &v5_header(SECRET, SESSION_COOKIE),
            &claims("ada", NOW + 60),
        );
        let parts: Vec<&str> = valid.split('.').collect();
        let cases = [
            ("empty token", String::new()),
            ("garbage", "not a token at all".to_owned()),
            ("garbage base64 header", "!!!!..AAAA.AAAA.AAAA".to_owned()),
            ("four parts", parts[..4].join(".")),
            ("six parts", format!("{valid}.")),
            ("only dots", ".".repeat(10_000)),
            (
                "padded base64 IV",
                with_part(&valid, 2, &format!("{}==", parts[2])),
            ),
            ("standard base64 alphabet", valid.replace('-', "+")),
            ("IV of 12 bytes", with_part(&valid, 2, &b64(&[0; 12]))),
            ("empty IV", with_part(&valid, 2, "")),
            ("empty tag", with_part(&valid, 4, "")),
            ("tag of 64 bytes", with_part(&valid, 4, &b64(&[0; 64]))),
            ("header not JSON", with_part(&valid, 0, &b64(b"alg=dir"))),
            (
                "header not UTF-8",
                with_part(&valid, 0, &b64(&[0xff, 0xfe, b'{'])),
            ),
            ("header JSON null", with_part(&valid, 0, &b64(b"null"))),
        ];
        let auth = auth_for(&[SECRET]);

        for (case, token) in cases {
            assert_eq!(
                auth.decode_at(&token, SESSION_COOKIE, NOW),
                Err(AuthError::Malformed),
                "{case}"
            );
        }
    }

    #[test]
    fn a_kept_window_never_outlasts_the_claims_check() {
        let at = |offset: f64| NOW as f64 + offset;
        let mut held = 0;
        for exp in [at(0.0), at(0.5), at(0.999), at(30.25), at(-14.5)] {
            for nbf in [
                None,
                Some(at(-3.5)),
                Some(at(0.0)),
                Some(at(0.5)),
                Some(at(14.5)),
            ] {
                let plain = serde_json::json!({ "sub": "ada", "exp": exp, "nbf": nbf }).to_string();
                let Ok(valid) = check_claims(plain.as_bytes(), NOW) else {
                    continue;
                };
                for now in NOW - 40..NOW + 60 {
                    if valid.holds_at(now) {
                        held += 1;
                        assert!(
                            check_claims(plain.as_bytes(), now).is_ok(),
                            "exp {exp}, nbf {nbf:?}: kept at {now}, refused by the check"
                        );
                    }
                }
            }
        }
        // Not empty: most of these windows hold for a while.
        assert!(held > 100, "{held}");
    }

    #[test]
    fn claims_are_checked_after_decryption() {
        let seal = |claims: &str| {
            seal_cbc(
                SECRET,
                SESSION_COOKIE,
                &v5_header(SECRET, SESSION_COOKIE),
                claims,
            )
        };
        let cases = [
            ("valid", claims("ada", NOW + 60), Ok(user("ada"))),
            (
                "expired 10 s ago (leeway)",
                claims("ada", NOW - 10),
                Ok(user("ada")),
            ),
            (
                "expired 14 s ago (leeway)",
                claims("ada", NOW - 14),
                Ok(user("ada")),
            ),
            (
                "expired exactly 15 s ago",
                claims("ada", NOW - 15),
                Err(AuthError::Expired),
            ),
            (
                "expired 20 s ago",
                claims("ada", NOW - 20),
                Err(AuthError::Expired),
            ),
            (
                "fractional exp",
                format!(r#"{{"sub":"ada","exp":{NOW}.5}}"#),
                Ok(user("ada")),
            ),
            (
                "exp beyond i64",
                r#"{"sub":"ada","exp":1e300}"#.to_owned(),
                Ok(user("ada")),
            ),
            (
                "exp beyond u64 as an integer",
                r#"{"sub":"ada","exp":123456789012345678901234567890}"#.to_owned(),
                Ok(user("ada")),
            ),
            (
                "iat in the future is not checked",
                format!(
                    r#"{{"sub":"ada","exp":{},"iat":{}}}"#,
                    NOW + 60,
                    NOW + 86_400
                ),
                Ok(user("ada")),
            ),
            (
                "nbf 10 s ahead (leeway)",
                format!(r#"{{"sub":"ada","exp":{},"nbf":{}}}"#, NOW + 60, NOW + 10),
                Ok(user("ada")),
            ),
            (
                "nbf 20 s ahead",
                format!(r#"{{"sub":"ada","exp":{},"nbf":{}}}"#, NOW + 60, NOW + 20),
                Err(AuthError::NotYetValid),
            ),
            (
                "exp missing",
                r#"{"sub":"ada"}"#.to_owned(),
                Err(AuthError::MissingClaim),
            ),
            (
                "exp null",
                r#"{"sub":"ada","exp":null}"#.to_owned(),
                Err(AuthError::MissingClaim),
            ),
            (
                "exp a string",
                format!(r#"{{"sub":"ada","exp":"{}"}}"#, NOW + 60),
                Err(AuthError::Malformed),
            ),
            (
                "sub missing",
                format!(r#"{{"exp":{}}}"#, NOW + 60),
                Err(AuthError::MissingClaim),
            ),
            (
                "sub a number",
                format!(r#"{{"sub":42,"exp":{}}}"#, NOW + 60),
                Err(AuthError::Malformed),
            ),
            (
                "sub with a brace",
                claims("ada}", NOW + 60),
                Err(AuthError::BadSubject(IdError::BadCharacter)),
            ),
            (
                "sub with a newline",
                claims("ada\nadmin", NOW + 60),
                Err(AuthError::BadSubject(IdError::BadCharacter)),
            ),
            (
                "sub empty",
                claims("", NOW + 60),
                Err(AuthError::BadSubject(IdError::Empty)),
            ),
            (
                "sub given twice",
                format!(r#"{{"sub":"ada","sub":"bob","exp":{}}}"#, NOW + 60),
                Err(AuthError::Malformed),
            ),
            (
                "claims as an array",
                format!(r#"[{},null,"ada"]"#, NOW + 60),
                Err(AuthError::Malformed),
            ),
            (
                "claims not JSON",
                "sub=ada".to_owned(),
                Err(AuthError::Malformed),
            ),
            ("claims empty", String::new(), Err(AuthError::Malformed)),
        ];
        let auth = auth_for(&[SECRET]);

        for (case, claims, expected) in cases {
            assert_eq!(
                auth.decode_at(&seal(&claims), SESSION_COOKIE, NOW),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn claims_that_are_not_utf8_are_rejected() {
        let token = seal_cbc(
            SECRET,
            SESSION_COOKIE,
            &v5_header(SECRET, SESSION_COOKIE),
            "{\"sub\":\"ada\",\"exp\":1}",
        );
        let key = v5_key(SECRET, SESSION_COOKIE);
        let bad = seal_cbc_raw(
            &key,
            &v5_header(SECRET, SESSION_COOKIE),
            &cbc_encrypt(&key, b"{\"sub\":\"\xff\",\"exp\":9999999999}"),
        );
        let auth = auth_for(&[SECRET]);

        assert_eq!(
            auth.decode_at(&token, SESSION_COOKIE, NOW),
            Err(AuthError::Expired)
        );
        assert_eq!(
            auth.decode_at(&bad, SESSION_COOKIE, NOW),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn a_token_from_an_older_secret_is_accepted_and_its_kid_selects_the_key() {
        let auth = auth_for(&[SECRET, OLD_SECRET]);
        let body = claims("ada", NOW + 60);
        let no_kid = r#"{"alg":"dir","enc":"A256CBC-HS512"}"#;
        let by_old = seal_cbc(
            OLD_SECRET,
            SESSION_COOKIE,
            &v5_header(OLD_SECRET, SESSION_COOKIE),
            &body,
        );
        let by_old_no_kid = seal_cbc(OLD_SECRET, SESSION_COOKIE, no_kid, &body);
        let by_new_no_kid = seal_cbc(SECRET, SESSION_COOKIE, no_kid, &body);
        let by_retired = seal_cbc(
            "retired-secret-no-longer-configured-0123456789",
            SESSION_COOKIE,
            &v5_header(
                "retired-secret-no-longer-configured-0123456789",
                SESSION_COOKIE,
            ),
            &body,
        );

        assert_eq!(
            auth.decode_at(&by_old, SESSION_COOKIE, NOW),
            Ok(user("ada"))
        );
        assert_eq!(auth.bearer_at(&by_old, NOW), Ok(user("ada")));
        assert_eq!(
            auth.decode_at(&by_new_no_kid, SESSION_COOKIE, NOW),
            Ok(user("ada"))
        );
        // Without a kid Auth.js uses the newest secret only.
        assert_eq!(
            auth.decode_at(&by_old_no_kid, SESSION_COOKIE, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            auth.decode_at(&by_retired, SESSION_COOKIE, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn no_configured_secret_accepts_nothing() {
        let auth = auth_for(&[]);
        let token = seal_cbc(
            SECRET,
            SESSION_COOKIE,
            &v5_header(SECRET, SESSION_COOKIE),
            &claims("ada", NOW + 60),
        );

        assert_eq!(
            auth.decode_at(&token, SESSION_COOKIE, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(auth.bearer_at(&token, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn bearer_tries_both_v5_cookie_names_for_a_token_without_kid() {
        let auth = auth_for(&[SECRET]);
        let no_kid = r#"{"alg":"dir","enc":"A256CBC-HS512"}"#;
        let body = claims("ada", NOW + 60);

        for salt in [SECURE_SESSION_COOKIE, SESSION_COOKIE] {
            let token = seal_cbc(SECRET, salt, no_kid, &body);
            assert_eq!(auth.bearer_at(&token, NOW), Ok(user("ada")), "salt {salt}");
            assert_eq!(
                auth.decode_at(&token, salt, NOW),
                Ok(user("ada")),
                "salt {salt}"
            );
        }
    }

    #[test]
    fn bearer_percent_decodes_the_token_as_get_token_does() {
        let auth = auth_for(&[SECRET]);
        let token = seal_cbc(
            SECRET,
            SESSION_COOKIE,
            &v5_header(SECRET, SESSION_COOKIE),
            &claims("ada", NOW + 60),
        );
        let encoded = token.replace('.', "%2E").replace('-', "%2d");

        assert_eq!(auth.bearer_at(&encoded, NOW), Ok(user("ada")));
        assert_eq!(auth.bearer_at("%ff%fe", NOW), Err(AuthError::Malformed));
    }

    #[test]
    fn a256gcm_v5_tokens_are_accepted_under_their_sha256_kid() {
        let auth = auth_for(&[SECRET, OLD_SECRET]);
        let body = claims("ada", NOW + 60);
        let seal = |secret: &str, salt: &str, with_kid: bool| {
            let info = format!("Auth.js Generated Encryption Key ({salt})");
            let key = derive_key::<32>(secret.as_bytes(), salt, &info).expect("32 bytes derive");
            let header = if with_kid {
                let kid = thumbprint::<Sha256>(&key);
                format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid}"}}"#)
            } else {
                r#"{"alg":"dir","enc":"A256GCM"}"#.to_owned()
            };
            seal_gcm(&key, &header, &body)
        };
        let old_secure = seal(OLD_SECRET, SECURE_SESSION_COOKIE, true);
        let new_plain_no_kid = seal(SECRET, SESSION_COOKIE, false);

        assert_eq!(
            auth.decode_at(&old_secure, SECURE_SESSION_COOKIE, NOW),
            Ok(user("ada"))
        );
        assert_eq!(auth.bearer_at(&old_secure, NOW), Ok(user("ada")));
        assert_eq!(
            auth.decode_at(&old_secure, SESSION_COOKIE, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            auth.decode_at(&new_plain_no_kid, SESSION_COOKIE, NOW),
            Ok(user("ada"))
        );
        assert_eq!(auth.bearer_at(&new_plain_no_kid, NOW), Ok(user("ada")));
        assert_eq!(
            auth.decode_at(&flip(&old_secure, 3), SECURE_SESSION_COOKIE, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn v4_tokens_from_any_configured_secret_are_accepted_under_every_v4_name() {
        let auth = auth_for(&[SECRET, OLD_SECRET]);
        let header = r#"{"alg":"dir","enc":"A256GCM"}"#;
        let v4_key = |secret: &str| {
            derive_key::<32>(
                secret.as_bytes(),
                "",
                "NextAuth.js Generated Encryption Key",
            )
            .expect("32 bytes derive")
        };
        let by_old = seal_gcm(&v4_key(OLD_SECRET), header, &claims("ada", NOW + 60));
        let with_kid = seal_gcm(
            &v4_key(SECRET),
            r#"{"alg":"dir","enc":"A256GCM","kid":"x"}"#,
            &claims("ada", NOW + 60),
        );
        let cbc = seal_cbc(
            SECRET,
            "",
            r#"{"alg":"dir","enc":"A256CBC-HS512"}"#,
            &claims("ada", NOW + 60),
        );

        for salt in ["", V4_SESSION_COOKIE, V4_SECURE_SESSION_COOKIE] {
            assert_eq!(
                auth.decode_at(&by_old, salt, NOW),
                Ok(user("ada")),
                "salt {salt:?}"
            );
            assert_eq!(
                auth.decode_at(&with_kid, salt, NOW),
                Err(AuthError::BadSignature),
                "v4 tokens never carry a kid, salt {salt:?}"
            );
            assert_eq!(
                auth.decode_at(&cbc, salt, NOW),
                Err(AuthError::BadSignature),
                "v4 is GCM only, salt {salt:?}"
            );
        }
        assert_eq!(auth.bearer_at(&by_old, NOW), Ok(user("ada")));
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let auth = auth_for(&[SECRET]);
        let printed = format!("{auth:?}");
        let key_hex: String = v5_key(SECRET, SESSION_COOKIE)[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let cookie = SessionCookie {
            token: "secret-token-value".to_owned(),
            cookie_name: SESSION_COOKIE,
        };

        assert_eq!(printed, "AuthJs { keys: 5, .. }");
        assert!(!printed.contains(&key_hex));
        assert!(!format!("{cookie:?}").contains("secret-token-value"));
    }

    /// What [`session_token`] returns.
    type Lookup = Option<Result<SessionCookie, AuthError>>;

    fn found(token: &str, name: &'static str) -> Lookup {
        Some(Ok(SessionCookie {
            token: token.to_owned(),
            cookie_name: name,
        }))
    }

    #[test]
    fn session_token_reads_the_session_cookie_from_cookie_headers() {
        let cases: [(&str, &[&str], Lookup); 17] = [
            ("no headers", &[], None),
            (
                "only unrelated cookies",
                &[
                    "authjs.csrf-token=abc; authjs.callback-url=http%3A%2F%2Fx; __Host-authjs.csrf-token=def",
                ],
                None,
            ),
            (
                "plain cookie among unrelated ones",
                &["authjs.csrf-token=abc; authjs.session-token=TOKEN; authjs.callback-url=x"],
                found("TOKEN", SESSION_COOKIE),
            ),
            (
                "spaces and malformed pairs",
                &[" ; junk ;=x;  authjs.session-token = TOKEN ;;"],
                found("TOKEN", SESSION_COOKIE),
            ),
            (
                "several Cookie headers",
                &["theme=dark", "authjs.session-token=TOKEN"],
                found("TOKEN", SESSION_COOKIE),
            ),
            (
                "secure preferred over plain",
                &["authjs.session-token=PLAIN; __Secure-authjs.session-token=SECURE"],
                found("SECURE", SECURE_SESSION_COOKIE),
            ),
            (
                "secure chunks preferred over a plain cookie",
                &[
                    "authjs.session-token=PLAIN; __Secure-authjs.session-token.0=SE; __Secure-authjs.session-token.1=CURE",
                ],
                found("SECURE", SECURE_SESSION_COOKIE),
            ),
            (
                "v5 preferred over v4",
                &["next-auth.session-token=V4; authjs.session-token=V5"],
                found("V5", SESSION_COOKIE),
            ),
            (
                "v4 cookie",
                &["__Secure-next-auth.session-token=V4"],
                found("V4", V4_SECURE_SESSION_COOKIE),
            ),
            (
                "chunks out of order in two headers",
                &[
                    "authjs.session-token.2=C; x=y",
                    "authjs.session-token.0=A; authjs.session-token.1=B",
                ],
                found("ABC", SESSION_COOKIE),
            ),
            (
                "plain cookie wins over chunks",
                &["authjs.session-token.0=A; authjs.session-token=WHOLE; authjs.session-token.1=B"],
                found("WHOLE", SESSION_COOKIE),
            ),
            (
                "missing chunk",
                &["authjs.session-token.0=A; authjs.session-token.2=C"],
                Some(Err(AuthError::Malformed)),
            ),
            (
                "chunks not starting at 0",
                &["authjs.session-token.1=B"],
                Some(Err(AuthError::Malformed)),
            ),
            (
                "chunk number overflows",
                &["authjs.session-token.0=A; authjs.session-token.99999999999999999999999=B"],
                Some(Err(AuthError::Malformed)),
            ),
            (
                "first of two same-named cookies wins",
                &["authjs.session-token=FIRST", "authjs.session-token=SECOND"],
                found("FIRST", SESSION_COOKIE),
            ),
            (
                "empty session cookie is absent",
                &["authjs.session-token=; next-auth.session-token=V4"],
                found("V4", V4_SESSION_COOKIE),
            ),
            (
                "quoted and percent-encoded value",
                &["authjs.session-token=\"a%2Eb%2dc%zz\""],
                found("a.b-c%zz", SESSION_COOKIE),
            ),
        ];

        for (case, headers, expected) in cases {
            assert_eq!(session_token(headers.iter().copied()), expected, "{case}");
        }
    }

    #[test]
    fn chunk_order_is_numeric_not_lexical() {
        let header: String = (0..12)
            .rev()
            .map(|i| format!("authjs.session-token.{i}={}; ", char::from(b'a' + i as u8)))
            .collect();

        assert_eq!(
            session_token([header.as_str()]),
            found("abcdefghijkl", SESSION_COOKIE)
        );
    }

    #[test]
    fn a_library_token_split_into_shuffled_chunk_cookies_decodes() {
        let vectors = vectors();
        let v = vectors
            .iter()
            .find(|v| v.name == "authjs-accept-secure-cookie")
            .expect("vector exists");
        let chunks: Vec<String> = v
            .token
            .as_bytes()
            .chunks(100)
            .enumerate()
            .map(|(i, chunk)| {
                let chunk = std::str::from_utf8(chunk).expect("ASCII token");
                format!("__Secure-authjs.session-token.{i}={chunk}")
            })
            .collect();
        assert!(chunks.len() > 2, "the token spans several chunks");
        let mut shuffled: Vec<&str> = chunks.iter().map(String::as_str).rev().collect();
        shuffled.swap(0, 1);
        let header = format!("authjs.csrf-token=x; {}; theme=dark", shuffled.join("; "));
        let auth = auth_for(&[SECRET]);

        let cookie = session_token([header.as_str()])
            .expect("a session cookie is present")
            .expect("chunks are contiguous");

        assert_eq!(cookie.cookie_name, SECURE_SESSION_COOKIE);
        assert_eq!(cookie.token, v.token);
        assert_eq!(
            auth.decode_at(&cookie.token, cookie.cookie_name, generation_time(&vectors)),
            Ok(user("42"))
        );
    }
}
