//! Mock tool calls: which calls a reply makes, their ids and their arguments.
//!
//! A request asks for calls with the `tool_calls` knob (names only); the arguments come from the
//! request's own `tools`, so a client's tool schema round-trips without the test spelling out
//! JSON. How the calls travel is [`crate::stream`]'s and [`crate::server`]'s business.

use std::{
    hash::{BuildHasher as _, Hasher as _, RandomState},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use crate::{
    reply,
    wire::{self, Property, PropertyKind},
};

/// Chunks a streamed call takes: one with its id and name, then its arguments in three pieces.
pub(crate) const CHUNKS_PER_CALL: usize = 4;

/// One call of a reply, as both reply forms send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToolCall {
    /// `call_` and 8 lowercase hex digits.
    pub id: String,
    pub name: String,
    /// A JSON object, as a string (OpenAI sends arguments as text).
    pub arguments: String,
}

impl ToolCall {
    /// The completion tokens the call counts for: [`reply::prompt_tokens`] of the characters of
    /// its name and arguments, the same estimate the mock uses for a prompt.
    pub(crate) fn tokens(&self) -> usize {
        reply::prompt_tokens(self.name.chars().count() + self.arguments.chars().count())
    }

    /// The arguments in three pieces of about equal length in characters (split at character
    /// boundaries; a piece may be empty when the arguments are shorter than three characters).
    pub(crate) fn argument_pieces(&self) -> [&str; 3] {
        thirds(&self.arguments)
    }
}

/// A `tool_calls` name the request's `tools` do not offer (the request gets a 400).
///
/// # Design
/// A test that asks for a call but forgets to send the tool, or misspells it, should fail at
/// once, not receive arguments made up from nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the mock knob `tool_calls` names function `{name}`, which the request's `tools` do not \
     offer (they offer: {offered})"
)]
pub(crate) struct UnknownTool {
    pub name: String,
    /// The offered function names, quoted and comma-separated, or `none`.
    pub offered: String,
}

/// One call per name, in order, with arguments built from the request's `tools`.
///
/// # Errors
/// - [`UnknownTool`] for the first name that no function of the request's `tools` has.
pub(crate) fn calls(
    names: &[String],
    request: &wire::ChatRequest<'_>,
) -> Result<Vec<ToolCall>, UnknownTool> {
    names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let function = request.function(name).ok_or_else(|| UnknownTool {
                name: name.clone(),
                offered: offered(request),
            })?;
            Ok(ToolCall {
                id: next_call_id(),
                name: name.clone(),
                arguments: arguments(function.properties(), index),
            })
        })
        .collect()
}

fn offered(request: &wire::ChatRequest<'_>) -> String {
    let names: Vec<String> = request
        .functions()
        .map(|function| format!("`{}`", function.name))
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The arguments of call `index` (0-based, within its reply): a compact JSON object with one
/// member per property, in the order the request listed them.
///
/// A `string` property gets `"<property>-<index>"`, an `integer` or `number` one `index + 1`, a
/// `boolean` one `true`, anything else (`object`, `array`, a list of types, no `type`) `null`.
///
/// # Example
/// Properties `city: string, days: integer, metric: boolean, extra: object` make call 1's
/// arguments `{"city":"city-1","days":2,"metric":true,"extra":null}`.
pub(crate) fn arguments(properties: &[Property], index: usize) -> String {
    let mut json = String::from("{");
    for (position, property) in properties.iter().enumerate() {
        if position > 0 {
            json.push(',');
        }
        wire::push_json_string(&mut json, &property.name);
        json.push(':');
        match property.kind {
            PropertyKind::String => {
                wire::push_json_string(&mut json, &format!("{}-{index}", property.name));
            }
            PropertyKind::Number => json.push_str(&index.saturating_add(1).to_string()),
            PropertyKind::Boolean => json.push_str("true"),
            PropertyKind::Other => json.push_str("null"),
        }
    }
    json.push('}');
    json
}

/// `text` cut into three pieces at character boundaries; piece `k` ends at character
/// `(k + 1) × n / 3` (rounded down) of the `n` characters.
fn thirds(text: &str) -> [&str; 3] {
    let chars = text.chars().count();
    let byte_at = |k: usize| {
        text.char_indices()
            .nth(k * chars / 3)
            .map_or(text.len(), |(byte, _)| byte)
    };
    let (first, rest) = text.split_at_checked(byte_at(1)).unwrap_or((text, ""));
    let (second, third) = rest
        .split_at_checked(byte_at(2).saturating_sub(first.len()))
        .unwrap_or((rest, ""));
    [first, second, third]
}

/// A fresh `call_<8 lowercase hex>` id, unique within the process for 2³² calls.
///
/// # Design
/// A process-wide counter, XORed with a random per-process seed and multiplied by an odd
/// constant: both steps are bijections of `u32`, so ids never repeat until the counter wraps,
/// yet they look random and differ between runs, like a real upstream's, so a client cannot
/// come to rely on their values.
fn next_call_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static SEED: OnceLock<u32> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let random = RandomState::new().build_hasher().finish();
        let folded = (random ^ (random >> 32)) & u64::from(u32::MAX);
        u32::try_from(folded).unwrap_or_default()
    });
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("call_{:08x}", (count ^ seed).wrapping_mul(0x9E37_79B1))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn property(name: &str, kind: PropertyKind) -> Property {
        Property {
            name: name.to_owned(),
            kind,
        }
    }

    #[test]
    fn arguments_follow_the_property_types_and_the_call_index() {
        let properties = [
            property("city", PropertyKind::String),
            property("days", PropertyKind::Number),
            property("metric", PropertyKind::Boolean),
            property("extra", PropertyKind::Other),
        ];

        let first = arguments(&properties, 0);
        let second = arguments(&properties, 1);

        assert_eq!(
            first,
            r#"{"city":"city-0","days":1,"metric":true,"extra":null}"#
        );
        assert_eq!(
            second,
            r#"{"city":"city-1","days":2,"metric":true,"extra":null}"#
        );
        assert_eq!(arguments(&[], 3), "{}");
    }

    #[test]
    fn argument_names_that_need_escaping_stay_valid_json() {
        let properties = [property("say \"hi\"", PropertyKind::String)];

        let json: serde_json::Value = serde_json::from_str(&arguments(&properties, 0)).unwrap();

        assert_eq!(json, serde_json::json!({"say \"hi\"": "say \"hi\"-0"}));
    }

    #[test]
    fn arguments_come_from_the_named_tool_of_the_request_in_its_order() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[
            {"type":"function","function":{"name":"weather","parameters":{"type":"object",
                "properties":{"unit":{"type":"string"},"city":{"type":"string"},"days":{"type":"integer"}}}}},
            {"type":"function","function":{"name":"now","parameters":{"type":"object","properties":{}}}}]}"#;
        let request: wire::ChatRequest<'_> = serde_json::from_slice(body).unwrap();
        let names = ["now", "weather", "weather"].map(str::to_owned);

        let calls = calls(&names, &request).unwrap();

        let made: Vec<(&str, &str)> = calls
            .iter()
            .map(|call| (call.name.as_str(), call.arguments.as_str()))
            .collect();
        assert_eq!(
            made,
            [
                ("now", "{}"),
                ("weather", r#"{"unit":"unit-1","city":"city-1","days":2}"#),
                ("weather", r#"{"unit":"unit-2","city":"city-2","days":3}"#),
            ]
        );
    }

    #[test]
    fn a_name_the_request_does_not_offer_is_an_error_listing_what_it_offers() {
        let with_tools = br#"{"model":"m","messages":[],"tools":[
            {"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}]}"#;
        let without = br#"{"model":"m","messages":[]}"#;
        let names = ["a".to_owned(), "c".to_owned()];

        let with_tools: wire::ChatRequest<'_> = serde_json::from_slice(with_tools).unwrap();
        let without: wire::ChatRequest<'_> = serde_json::from_slice(without).unwrap();

        assert_eq!(
            calls(&names, &with_tools).unwrap_err(),
            UnknownTool {
                name: "c".into(),
                offered: "`a`, `b`".into()
            }
        );
        let error = calls(&names, &without).unwrap_err();
        assert_eq!(error.name, "a");
        assert!(error.to_string().contains("they offer: none"), "{error}");
    }

    #[test]
    fn ids_are_call_and_eight_lowercase_hex_digits_and_unique() {
        let ids: Vec<String> = (0..10_000).map(|_| next_call_id()).collect();

        for id in &ids {
            let hex = id.strip_prefix("call_").unwrap();
            assert_eq!(hex.len(), 8, "{id}");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }

    #[test]
    fn thirds_split_at_character_boundaries_and_rejoin() {
        let cases: [(&str, [&str; 3]); 5] = [
            ("", ["", "", ""]),
            ("{}", ["", "{", "}"]),
            ("abcdef", ["ab", "cd", "ef"]),
            ("abcdefg", ["ab", "cd", "efg"]),
            ("é✓x€ü", ["é", "✓x", "€ü"]),
        ];
        for (text, expected) in cases {
            assert_eq!(thirds(text), expected, "case {text:?}");
            assert_eq!(thirds(text).concat(), text);
        }
    }
}
