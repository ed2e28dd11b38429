//! HS256 bearer tokens: algorithm pinned, `exp` required, 15 s leeway.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{AuthError, Valid};
use crate::domain::UserId;

/// Clock tolerance on `exp`, the same Auth.js applies to its own tokens.
pub const LEEWAY_SECS: u64 = 15;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Read again here (the library checked them) for how long the token stays valid.
    exp: Option<f64>,
    nbf: Option<f64>,
}

#[derive(Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// Verifies (and, for the dev server and tests, signs) HS256 tokens.
///
/// # Design
/// The algorithm comes from configuration, never from the token header, so `alg: none` and
/// algorithm-confusion tokens fail before any signature work. Several secrets may be
/// configured for rotation; a token is accepted when any of them verifies it.
pub struct Hs256 {
    keys: Vec<DecodingKey>,
    signing: EncodingKey,
    validation: Validation,
}

impl Hs256 {
    /// `secrets` newest first; the first one signs.
    pub fn new(secrets: &[SecretString]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Frontends add `aud`/`iss` as they please; we identify users by `sub` alone.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let signing = secrets
            .first()
            .map(|s| EncodingKey::from_secret(s.expose_secret().as_bytes()))
            .unwrap_or_else(|| EncodingKey::from_secret(&[]));
        Self {
            keys: secrets
                .iter()
                .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes()))
                .collect(),
            signing,
            validation,
        }
    }

    /// Checks a compact JWS and returns its subject.
    ///
    /// # Errors
    /// - [`AuthError::Malformed`] when it is not a JWS or its claims are not JSON;
    /// - [`AuthError::BadAlgorithm`] for any header `alg` other than HS256 (including `none`);
    /// - [`AuthError::BadSignature`] when no configured secret verifies it;
    /// - [`AuthError::Expired`] when `exp` is more than 15 s in the past;
    /// - [`AuthError::MissingClaim`] without `exp` or `sub`;
    /// - [`AuthError::BadSubject`] when `sub` is not a valid [`UserId`].
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        self.check(token).map(|valid| valid.user)
    }

    /// [`Hs256::verify`], with how long the token stays valid.
    pub(super) fn check(&self, token: &str) -> Result<Valid, AuthError> {
        let mut last = AuthError::BadSignature;
        for key in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    let Claims { sub, exp, nbf } = data.claims;
                    let user = UserId::parse(&sub).map_err(AuthError::BadSubject)?;
                    return Ok(Valid::new(user, nbf, exp));
                }
                Err(e) => match e.kind() {
                    ErrorKind::InvalidSignature => last = AuthError::BadSignature,
                    ErrorKind::ExpiredSignature => return Err(AuthError::Expired),
                    ErrorKind::ImmatureSignature => return Err(AuthError::NotYetValid),
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        return Err(AuthError::BadAlgorithm);
                    }
                    ErrorKind::MissingRequiredClaim(_) => return Err(AuthError::MissingClaim),
                    _ => return Err(AuthError::Malformed),
                },
            }
        }
        Err(last)
    }

    /// Signs a token for `user` valid for `ttl_secs`: for the dev server's `token` command
    /// and for tests.
    ///
    /// # Errors
    /// Only if signing itself fails, which HS256 with an in-memory key does not.
    pub fn mint(
        &self,
        user: &UserId,
        ttl_secs: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jiff::Timestamp::now().as_second().max(0).unsigned_abs();
        let claims = MintClaims {
            sub: user.as_str(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing)
    }
}
