//! What a chat request may ask of the model: which model, how random, how long, whether it
//! reasons first.

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

/// Efforts a request may name (OpenAI's, OpenRouter's); `none` turns reasoning off. Hermes-4
/// has no levels: any other effort turns it on.
const EFFORTS: [&str; 6] = ["none", "minimal", "low", "medium", "high", "xhigh"];

/// Why a request's reasoning setting was refused: the field and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct ReasoningError {
    pub field: &'static str,
    pub reason: &'static str,
}

/// Whether a request asks the model to reason: `Some(on)` when it says, `None` when it
/// leaves it to `DEFAULT_REASONING`.
///
/// `reasoning` (OpenRouter's shape, which the AI SDK and OpenAI-SDK apps send in the body) is
/// `true` / `false`, or `{enabled?, effort?, max_tokens?, exclude?}`: `enabled` says, else
/// an effort other than `none` or a positive `max_tokens` turns it on, and an object that says
/// neither turns it on too. `reasoning_effort` (OpenAI's) is one of [`EFFORTS`]; `reasoning`
/// wins when both are given. `null` is as absent.
///
/// # Errors
/// [`ReasoningError`] for a value of the wrong type or an unknown effort.
pub fn parse_reasoning(
    reasoning: Option<&serde_json::Value>,
    effort: Option<&serde_json::Value>,
) -> Result<Option<bool>, ReasoningError> {
    use serde_json::Value;
    let effort_on = |value: &Value, field: &'static str| match value.as_str() {
        Some(effort) if EFFORTS.contains(&effort) => Ok(effort != "none"),
        _ => Err(ReasoningError {
            field,
            reason: "must be one of none, minimal, low, medium, high, xhigh",
        }),
    };
    match reasoning {
        None | Some(Value::Null) => {}
        Some(Value::Bool(on)) => return Ok(Some(*on)),
        Some(Value::Object(fields)) => {
            if let Some(enabled) = fields.get("enabled").filter(|v| !v.is_null()) {
                return match enabled.as_bool() {
                    Some(on) => Ok(Some(on)),
                    None => Err(ReasoningError {
                        field: "reasoning.enabled",
                        reason: "must be true or false",
                    }),
                };
            }
            if let Some(effort) = fields.get("effort").filter(|v| !v.is_null()) {
                return effort_on(effort, "reasoning.effort").map(Some);
            }
            if let Some(max) = fields.get("max_tokens").filter(|v| !v.is_null()) {
                return match max.as_u64() {
                    Some(max) => Ok(Some(max > 0)),
                    None => Err(ReasoningError {
                        field: "reasoning.max_tokens",
                        reason: "must be a whole number",
                    }),
                };
            }
            return Ok(Some(true));
        }
        Some(_) => {
            return Err(ReasoningError {
                field: "reasoning",
                reason: "must be true, false or an object such as `{\"enabled\": true}`",
            });
        }
    }
    match effort {
        None | Some(Value::Null) => Ok(None),
        Some(effort) => effort_on(effort, "reasoning_effort").map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_is_asked_for_in_either_shape_and_refused_with_its_field() {
        use serde_json::json;
        let asked = |r: serde_json::Value, e: serde_json::Value| {
            parse_reasoning(
                Some(&r).filter(|v| !v.is_null()),
                Some(&e).filter(|v| !v.is_null()),
            )
        };
        let null = serde_json::Value::Null;
        let cases = [
            (null.clone(), null.clone(), Ok(None)),
            (json!({ "enabled": true }), null.clone(), Ok(Some(true))),
            (
                json!({ "enabled": false, "effort": "high" }),
                null.clone(),
                Ok(Some(false)),
            ),
            (json!({ "effort": "none" }), null.clone(), Ok(Some(false))),
            (json!({ "effort": "low" }), null.clone(), Ok(Some(true))),
            (json!({ "max_tokens": 0 }), null.clone(), Ok(Some(false))),
            (json!({}), null.clone(), Ok(Some(true))),
            (json!(true), null.clone(), Ok(Some(true))),
            (null.clone(), json!("medium"), Ok(Some(true))),
            (null.clone(), json!("none"), Ok(Some(false))),
            (json!({ "enabled": false }), json!("high"), Ok(Some(false))),
        ];
        for (reasoning, effort, want) in cases {
            assert_eq!(
                asked(reasoning.clone(), effort.clone()),
                want,
                "{reasoning} {effort}"
            );
        }
        for (reasoning, effort, field) in [
            (json!("yes"), null.clone(), "reasoning"),
            (
                json!({ "enabled": "yes" }),
                null.clone(),
                "reasoning.enabled",
            ),
            (json!({ "effort": "max" }), null.clone(), "reasoning.effort"),
            (
                json!({ "max_tokens": -1 }),
                null.clone(),
                "reasoning.max_tokens",
            ),
            (null.clone(), json!("extreme"), "reasoning_effort"),
            (null.clone(), json!(1), "reasoning_effort"),
        ] {
            assert_eq!(asked(reasoning, effort).unwrap_err().field, field);
        }
    }

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
