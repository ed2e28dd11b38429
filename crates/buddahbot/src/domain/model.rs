//! What a chat request may ask of the model: which model, how random, how long.

use std::fmt;

/// A model name from the configured allow-list (`ALLOWED_MODELS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName(String);

/// Why a model name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not one of the allowed models ({allowed})")]
pub struct ModelError {
    pub allowed: String,
}

impl ModelName {
    /// Accepts `raw` when it is exactly one of `allowed`.
    ///
    /// # Errors
    /// [`ModelError`] listing the allowed names otherwise.
    pub fn parse(raw: &str, allowed: &[String]) -> Result<Self, ModelError> {
        allowed
            .iter()
            .find(|m| m.as_str() == raw)
            .map(|m| Self(m.clone()))
            .ok_or_else(|| ModelError {
                allowed: allowed.join(", "),
            })
    }

    /// A name the configuration itself supplies (default or fallback model).
    pub fn configured(name: &str) -> Self {
        Self(name.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sampling temperature, 0 to 2 as in the OpenAI API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temperature(f64);

impl Temperature {
    /// # Errors
    /// A reason when `raw` is not a finite number from 0 to 2.
    pub fn parse(raw: f64) -> Result<Self, &'static str> {
        if raw.is_finite() && (0.0..=2.0).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err("must be a number from 0 to 2")
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// Cap on the reply's length in tokens, 1 to `MAX_TOKENS_CAP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxTokens(u32);

impl MaxTokens {
    /// # Errors
    /// A reason when `raw` is 0 or above `cap`.
    pub fn parse(raw: u64, cap: u32) -> Result<Self, String> {
        match u32::try_from(raw) {
            Ok(n) if n >= 1 && n <= cap => Ok(Self(n)),
            _ => Err(format!("must be a whole number from 1 to {cap}")),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_models_parse() {
        let allowed = vec!["Hermes-4-405B".to_owned(), "Hermes-4-70B".to_owned()];
        assert_eq!(
            ModelName::parse("Hermes-4-70B", &allowed).unwrap().as_str(),
            "Hermes-4-70B"
        );
        for raw in ["hermes-4-70b", "gpt-4o", "", "Hermes-4-70B "] {
            let err = ModelName::parse(raw, &allowed).unwrap_err();
            assert!(err.to_string().contains("Hermes-4-405B"), "case {raw:?}");
        }
    }

    #[test]
    fn temperature_and_max_tokens_have_bounds() {
        for ok in [0.0, 0.7, 2.0] {
            assert!(Temperature::parse(ok).is_ok(), "{ok}");
        }
        for bad in [-0.1, 2.01, f64::NAN, f64::INFINITY] {
            assert!(Temperature::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(MaxTokens::parse(1, 8).unwrap().get(), 1);
        assert_eq!(MaxTokens::parse(8, 8).unwrap().get(), 8);
        assert!(MaxTokens::parse(0, 8).is_err());
        assert!(MaxTokens::parse(9, 8).is_err());
        assert!(MaxTokens::parse(u64::MAX, 8).is_err());
    }
}
