//! Keeping a conversation inside the model's context window: an estimate of the prompt's
//! tokens, and the cut that makes it fit (oldest whole turns first, or a stored summary in
//! their place).
//!
//! # Design
//! No tokenizer of the Hermes-4 (Llama 3) family ships as a crate without its vocabulary
//! file, so the estimate is a conservative characters-per-token ratio: 3 by default (English
//! runs near 4 on Llama 3), and per thread the ratio its last turn measured (the characters
//! we sent against the `prompt_tokens` the model reported), made 10 % more cautious. Cuts
//! happen at turn boundaries (a turn starts at a user message), so a tool call never loses
//! its result and the newest message is always sent.

use sha2::{Digest, Sha256};

use crate::{
    domain::{Role, Tools},
    store::{Calibration, ContextSummary},
    upstream::wire::{PromptContent, PromptMessage, PromptPart},
};

/// Characters per token assumed before a thread has measured its own.
const DEFAULT_CHARS_PER_TOKEN: f64 = 3.0;
/// A measured ratio is used this much more cautiously.
const CALIBRATION_MARGIN: f64 = 1.1;
/// A measurement from fewer prompt tokens than this is noise.
const MIN_CALIBRATION_TOKENS: u64 = 50;
/// Tokens each message costs beyond its text (role and framing).
const MESSAGE_OVERHEAD: u32 = 4;
/// Tokens the prompt costs beyond its messages (the reply's priming).
const PROMPT_OVERHEAD: u32 = 3;
/// Tokens counted for an image.
const IMAGE_TOKENS: u32 = 1024;
/// Room kept for the reply when the request sets no `max_tokens`.
pub const DEFAULT_REPLY_RESERVE: u32 = 2048;

/// Turns characters into estimated tokens.
#[derive(Debug, Clone, Copy)]
pub struct Estimator {
    chars_per_token: f64,
}

impl Estimator {
    /// The thread's measured ratio, when it has a meaningful one; else the default.
    pub fn new(calibration: Option<Calibration>) -> Self {
        let chars_per_token = calibration
            .filter(|c| c.tokens >= MIN_CALIBRATION_TOKENS && c.chars > 0)
            .map_or(DEFAULT_CHARS_PER_TOKEN, |c| {
                (c.chars as f64 / c.tokens as f64 / CALIBRATION_MARGIN).clamp(1.0, 8.0)
            });
        Self { chars_per_token }
    }

    fn tokens(&self, chars: usize) -> u32 {
        let tokens = (chars as f64 / self.chars_per_token).ceil();
        if tokens >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            tokens as u32
        }
    }

    /// One message's estimated tokens.
    pub fn message(&self, message: &PromptMessage) -> u32 {
        let (chars, images) = message_size(message);
        self.tokens(chars)
            .saturating_add(IMAGE_TOKENS.saturating_mul(images))
            .saturating_add(MESSAGE_OVERHEAD)
    }

    /// The tools' estimated tokens (their JSON, as the model is shown it).
    pub fn tools(&self, tools: &Tools) -> u32 {
        if tools.is_empty() {
            return 0;
        }
        let json = serde_json::to_string(&tools.functions).unwrap_or_default();
        self.tokens(json.chars().count())
    }

    /// A whole prompt's estimated tokens (what [`fit`] adds up).
    #[cfg(test)]
    pub fn prompt(&self, prompt: &[PromptMessage], tools: &Tools) -> u32 {
        prompt.iter().fold(
            PROMPT_OVERHEAD.saturating_add(self.tools(tools)),
            |sum, m| sum.saturating_add(self.message(m)),
        )
    }
}

/// A message's characters (text, tool calls) and images.
fn message_size(message: &PromptMessage) -> (usize, u32) {
    let (mut chars, images) = match &message.content {
        PromptContent::Text(text) => (text.chars().count(), 0),
        PromptContent::None => (0, 0),
        PromptContent::Parts(parts) => parts.iter().fold((0, 0), |(c, i), part| match part {
            PromptPart::Text { text } => (c + text.chars().count(), i),
            PromptPart::ImageUrl { .. } => (c, i + 1),
        }),
    };
    for call in &message.tool_calls {
        chars += call.id.len() + call.function.name.len() + call.function.arguments.chars().count();
    }
    if let Some(id) = &message.tool_call_id {
        chars += id.len();
    }
    (chars, images)
}

/// The characters a prompt holds, the measure a calibration compares with the tokens the
/// model reports.
pub fn prompt_chars(prompt: &[PromptMessage]) -> u64 {
    prompt.iter().map(|m| message_size(m).0 as u64).sum()
}

/// Whether a request may be cut to fit (`truncation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Cut the oldest turns (or use the summary) until it fits.
    #[default]
    Auto,
    /// Refuse a conversation that does not fit.
    Disabled,
}

/// A prompt made to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub prompt: Vec<PromptMessage>,
    /// Conversation messages not sent as they are (cut, or replaced by the summary).
    pub dropped: usize,
    /// Whether the stored summary stands in for the oldest of them.
    pub summarized: bool,
    /// The whole conversation's estimate, before any cut.
    pub full_tokens: u32,
}

/// The window, less the reply's room.
pub fn budget(window: u32, max_tokens: Option<u32>, cap: u32) -> u32 {
    let reserve = max_tokens.unwrap_or_else(|| DEFAULT_REPLY_RESERVE.min(cap));
    window.saturating_sub(reserve)
}

/// Fits `prompt` into `budget` tokens.
///
/// # Errors
/// A sentence for the client's `context_length_exceeded` when it does not fit and may not be
/// cut (`truncation: "disabled"`), or when the system messages and the newest turn alone do
/// not fit.
pub fn fit(
    prompt: Vec<PromptMessage>,
    tools: &Tools,
    budget: u32,
    estimator: Estimator,
    summary: Option<&ContextSummary>,
    truncation: Truncation,
) -> Result<Fitted, String> {
    let costs: Vec<u32> = prompt.iter().map(|m| estimator.message(m)).collect();
    let fixed = PROMPT_OVERHEAD.saturating_add(estimator.tools(tools));
    let full_tokens = costs.iter().fold(fixed, |sum, c| sum.saturating_add(*c));
    if full_tokens <= budget {
        return Ok(Fitted {
            prompt,
            dropped: 0,
            summarized: false,
            full_tokens,
        });
    }
    if truncation == Truncation::Disabled {
        return Err(format!(
            "it needs about {full_tokens} tokens and {budget} are available (the rest is kept for the reply); `truncation` is `disabled`"
        ));
    }
    // The conversation (everything but system messages), and where its turns start.
    let conversation: Vec<usize> = (0..prompt.len())
        .filter(|&i| prompt[i].role != Role::System)
        .collect();
    let starts: Vec<usize> = (0..conversation.len())
        .filter(|&k| k == 0 || prompt[conversation[k]].role == Role::User)
        .collect();
    let newest = starts.last().copied().unwrap_or(0);
    let system_cost = (0..prompt.len())
        .filter(|&i| prompt[i].role == Role::System)
        .fold(fixed, |sum, i| sum.saturating_add(costs[i]));
    let newest_cost = conversation[newest..]
        .iter()
        .fold(system_cost, |sum, &i| sum.saturating_add(costs[i]));
    if newest_cost > budget {
        return Err(format!(
            "its newest message needs about {newest_cost} tokens with the system prompt, and {budget} are available (the rest is kept for the reply)"
        ));
    }

    // The summary stands in for the messages it covers when they are the ones sent.
    let summary = summary
        .filter(|s| s.count <= newest && prefix_hash(&prompt, &conversation[..s.count]) == s.hash);
    let summary_message = summary.map(|s| {
        PromptMessage::new(
            Role::System,
            format!(
                "Summary of the earlier part of this conversation:\n{}",
                s.text
            ),
        )
    });
    let summary_cost = summary_message.as_ref().map_or(0, |m| estimator.message(m));
    let first_allowed = summary.map_or(0, |s| s.count);
    // Keep whole turns from the newest back while they fit.
    let mut used = newest_cost.saturating_add(summary_cost);
    let mut keep_from = newest;
    for &start in starts.iter().rev().skip(1) {
        if start < first_allowed {
            break;
        }
        let cost = conversation[start..keep_from]
            .iter()
            .fold(0u32, |sum, &i| sum.saturating_add(costs[i]));
        if used.saturating_add(cost) > budget {
            break;
        }
        used = used.saturating_add(cost);
        keep_from = start;
    }
    // Messages between the summary and the first whole turn kept (a turn the summary cut
    // in two) fit or go as a unit too.
    if summary.is_some() && first_allowed < keep_from && !starts.contains(&first_allowed) {
        let cost = conversation[first_allowed..keep_from]
            .iter()
            .fold(0u32, |sum, &i| sum.saturating_add(costs[i]));
        let next_start = starts
            .iter()
            .copied()
            .find(|&s| s > first_allowed)
            .unwrap_or(newest);
        if next_start == keep_from && used.saturating_add(cost) <= budget {
            keep_from = first_allowed;
        }
    }
    let summarized = summary_message.is_some();
    let kept_conversation: Vec<usize> = conversation[keep_from..].to_vec();
    let dropped = keep_from;
    let mut out = Vec::with_capacity(prompt.len() - dropped + 1);
    let mut summary_message = summary_message;
    for (i, message) in prompt.into_iter().enumerate() {
        let is_system = message.role == Role::System;
        if !is_system && !kept_conversation.contains(&i) {
            continue;
        }
        if !is_system && let Some(summary) = summary_message.take() {
            out.push(summary);
        }
        out.push(message);
    }
    Ok(Fitted {
        prompt: out,
        dropped,
        summarized,
        full_tokens,
    })
}

/// A fingerprint of the conversation messages at `indexes` of `prompt`: a summary applies
/// only to the messages it was written from.
pub fn prefix_hash(prompt: &[PromptMessage], indexes: &[usize]) -> String {
    let mut hash = Sha256::new();
    for &i in indexes {
        let message = &prompt[i];
        hash.update(format!("{:?}", message.role).as_bytes());
        hash.update([0]);
        hash.update(message.content.text().as_bytes());
        hash.update([0]);
        for call in &message.tool_calls {
            hash.update(call.id.as_bytes());
            hash.update([0]);
        }
        hash.update([1]);
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: Role, text: &str) -> PromptMessage {
        PromptMessage::new(role, text.to_owned())
    }

    /// A conversation of `turns` user/assistant pairs of 30 characters each (14 tokens per
    /// message at 3 characters per token, with the overhead), after a system message.
    fn conversation(turns: usize) -> Vec<PromptMessage> {
        let mut prompt = vec![m(Role::System, "Be brief.")];
        for t in 0..turns {
            prompt.push(m(Role::User, &format!("{t:0>30}")));
            prompt.push(m(Role::Assistant, &format!("{t:a>30}")));
        }
        prompt.push(m(Role::User, &"n".repeat(30)));
        prompt
    }

    const EST: Estimator = Estimator {
        chars_per_token: DEFAULT_CHARS_PER_TOKEN,
    };

    #[test]
    fn a_prompt_that_fits_is_left_alone() {
        let prompt = conversation(3);
        let tokens = EST.prompt(&prompt, &Tools::default());
        // 3 + system (3 + 4) + 7 messages of 14.
        assert_eq!(tokens, 3 + 7 + 7 * 14);
        let fitted = fit(
            prompt.clone(),
            &Tools::default(),
            tokens,
            EST,
            None,
            Truncation::Auto,
        )
        .unwrap();
        assert_eq!(fitted.prompt, prompt);
        assert_eq!(fitted.dropped, 0);
    }

    #[test]
    fn the_oldest_whole_turns_go_first_and_the_system_prompt_and_newest_message_stay() {
        let prompt = conversation(5);
        // Room for the system message, the newest message and exactly two turns.
        let budget = 3 + 7 + 14 + 2 * 28;
        let fitted = fit(
            prompt.clone(),
            &Tools::default(),
            budget,
            EST,
            None,
            Truncation::Auto,
        )
        .unwrap();
        assert_eq!(fitted.dropped, 6);
        assert_eq!(fitted.prompt.len(), 6);
        assert_eq!(fitted.prompt[0], prompt[0]);
        assert_eq!(
            fitted.prompt[1], prompt[7],
            "the fourth turn's user message"
        );
        assert_eq!(fitted.prompt.last(), prompt.last());
        // One token less: one turn fewer.
        let fitted = fit(
            prompt,
            &Tools::default(),
            budget - 1,
            EST,
            None,
            Truncation::Auto,
        )
        .unwrap();
        assert_eq!(fitted.dropped, 8);
    }

    #[test]
    fn a_tool_call_keeps_its_result() {
        let mut prompt = conversation(1);
        let mut call = m(Role::Assistant, "");
        call.content = PromptContent::None;
        call.tool_calls = vec![crate::upstream::wire::PromptToolCall::from(
            &crate::domain::ToolCall {
                id: "c1".into(),
                name: "w".into(),
                arguments: "{}".into(),
            },
        )];
        let mut result = m(Role::Tool, "x".repeat(300).as_str());
        result.tool_call_id = Some("c1".into());
        prompt.push(call);
        prompt.push(result);
        prompt.push(m(Role::Assistant, "done"));
        prompt.push(m(Role::User, "next"));
        // Room for everything from the call on, but not for the user message that began its
        // turn: the turn, call and result, goes as one.
        let budget = EST.prompt(&prompt[4..], &Tools::default()) + EST.message(&prompt[0]);
        let fitted = fit(
            prompt.clone(),
            &Tools::default(),
            budget,
            EST,
            None,
            Truncation::Auto,
        )
        .unwrap();
        assert_eq!(fitted.prompt, [prompt[0].clone(), prompt[7].clone()]);
        assert_eq!(fitted.dropped, 6);
    }

    #[test]
    fn refusals_say_what_does_not_fit() {
        let prompt = conversation(2);
        let err = fit(
            prompt.clone(),
            &Tools::default(),
            40,
            EST,
            None,
            Truncation::Disabled,
        )
        .unwrap_err();
        assert!(err.contains("disabled"), "{err}");
        let err = fit(prompt, &Tools::default(), 20, EST, None, Truncation::Auto).unwrap_err();
        assert!(err.contains("newest message"), "{err}");
    }

    #[test]
    fn a_summary_stands_in_for_the_messages_it_covers() {
        let prompt = conversation(5);
        let conversation_indexes: Vec<usize> = (1..prompt.len()).collect();
        let summary = ContextSummary {
            text: "They counted.".into(),
            count: 6,
            hash: prefix_hash(&prompt, &conversation_indexes[..6]),
        };
        // The system message, the newest, the summary (63 characters: 25 tokens), two turns.
        let budget = 3 + 7 + 14 + 25 + 2 * 28;
        let fitted = fit(
            prompt.clone(),
            &Tools::default(),
            budget,
            EST,
            Some(&summary),
            Truncation::Auto,
        )
        .unwrap();
        assert!(fitted.summarized);
        assert_eq!(fitted.prompt[0], prompt[0]);
        assert_eq!(fitted.prompt[1].role, Role::System);
        assert!(fitted.prompt[1].content.text().ends_with("They counted."));
        assert_eq!(fitted.prompt[2], prompt[7]);
        assert_eq!(fitted.dropped, 6);

        // A summary of other messages is not used.
        let stale = ContextSummary {
            hash: "0".repeat(32),
            ..summary
        };
        let fitted = fit(
            prompt,
            &Tools::default(),
            budget,
            EST,
            Some(&stale),
            Truncation::Auto,
        )
        .unwrap();
        assert!(!fitted.summarized);
    }

    #[test]
    fn a_measured_ratio_replaces_the_default_with_a_margin() {
        let measured = Estimator::new(Some(Calibration {
            chars: 4400,
            tokens: 1000,
        }));
        assert!((measured.chars_per_token - 4.0).abs() < 1e-9);
        let noise = Estimator::new(Some(Calibration {
            chars: 40,
            tokens: 10,
        }));
        assert!((noise.chars_per_token - DEFAULT_CHARS_PER_TOKEN).abs() < 1e-9);
        assert_eq!(budget(1000, Some(100), 8192), 900);
        assert_eq!(budget(1000, None, 500), 500);
    }
}
