//! The thread's context summary, written by the model in the background after a turn that
//! came near the context window (`CONTEXT_SUMMARY=1`), so that a later turn that no longer
//! fits sends it in place of the oldest messages. No turn ever waits for it.

use std::sync::Arc;

use super::context::{Estimator, prefix_hash};
use crate::{
    app::App,
    domain::{ModelName, Role},
    store::{ContextSummary, TurnIds},
    upstream::wire::{ChatCompletionRequest, PromptMessage},
};

/// A turn whose conversation reaches this share of the budget refreshes the summary.
const REFRESH_AT: (u32, u32) = (3, 4);
/// The summary covers the oldest messages, leaving about this share of the budget to the
/// newest ones.
const KEEP_RECENT: (u32, u32) = (1, 2);
/// Longest summary asked for, in tokens.
const SUMMARY_MAX_TOKENS: u32 = 512;

const INSTRUCTIONS: &str = "You write the running summary of a conversation between a user and an assistant, \
for the assistant to read instead of the messages it covers. Keep every fact, name, number, decision, open \
question and commitment; leave out pleasantries. Write at most 300 words of plain prose, in the conversation's \
language, without a preamble.";

/// What the background task needs: the conversation as the model got it (before any cut).
pub(super) struct Refresh {
    pub app: App,
    pub ids: Arc<TurnIds>,
    pub model: ModelName,
    pub prompt: Vec<PromptMessage>,
    pub summary: Option<ContextSummary>,
    pub estimator: Estimator,
}

/// Whether a conversation estimated at `tokens` against `budget` should refresh its summary.
pub(super) fn due(tokens: u32, budget: u32) -> bool {
    u64::from(tokens) * u64::from(REFRESH_AT.1) >= u64::from(budget) * u64::from(REFRESH_AT.0)
}

impl Refresh {
    /// Writes a new summary when there is more to cover than the stored one does. Best
    /// effort: a failure is logged and the next turn near the limit tries again.
    pub async fn run(self, budget: u32) {
        let conversation: Vec<usize> = (0..self.prompt.len())
            .filter(|&i| self.prompt[i].role != Role::System)
            .collect();
        let Some(count) = self.cover(&conversation, budget) else {
            return;
        };
        let store = self.app.store();
        let (user, thread) = (&self.ids.user, &self.ids.thread);
        match store.claim_summary(user, thread, count).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(thread = %thread, error = %err, "could not claim the summary");
                return;
            }
        }
        let text = match self.ask(&conversation[..count]).await {
            Some(text) => text,
            None => {
                // Free the claim for the next turn: a summary of nothing is never kept.
                let _ = store.save_summary(user, thread, "", 0, "", None).await;
                return;
            }
        };
        let hash = prefix_hash(&self.prompt, &conversation[..count]);
        let through = store
            .nth_message_id(user, thread, count)
            .await
            .ok()
            .flatten();
        if let Err(err) = store
            .save_summary(user, thread, &text, count, &hash, through.as_ref())
            .await
        {
            tracing::warn!(thread = %thread, error = %err, "could not keep the summary");
        }
    }

    /// How many of the oldest conversation messages the new summary covers: up to a turn
    /// boundary, leaving the newest about half the budget; `None` when that adds nothing to
    /// the stored summary.
    fn cover(&self, conversation: &[usize], budget: u32) -> Option<usize> {
        let keep = budget / KEEP_RECENT.1 * KEEP_RECENT.0;
        let mut recent = 0u32;
        let mut cut = conversation.len();
        for (k, &i) in conversation.iter().enumerate().rev() {
            recent = recent.saturating_add(self.estimator.message(&self.prompt[i]));
            if recent > keep {
                break;
            }
            cut = k;
        }
        // Move the cut forward to the next turn boundary (a user message), so a tool call
        // and its result stay together on one side.
        let cut =
            (cut..conversation.len()).find(|&k| self.prompt[conversation[k]].role == Role::User)?;
        let stored = self.summary.as_ref().map_or(0, |s| s.count);
        (cut > stored && cut > 0).then_some(cut)
    }

    /// Asks the model for the summary of the messages at `indexes` (the stored summary
    /// standing in for those it covers).
    async fn ask(&self, indexes: &[usize]) -> Option<String> {
        let mut transcript = String::new();
        let mut from = 0;
        if let Some(summary) = &self.summary
            && summary.count <= indexes.len()
            && prefix_hash(&self.prompt, &indexes[..summary.count]) == summary.hash
        {
            transcript.push_str("Summary so far:\n");
            transcript.push_str(&summary.text);
            transcript.push_str("\n\nThe conversation continued:\n");
            from = summary.count;
        }
        for &i in &indexes[from..] {
            let message = &self.prompt[i];
            let who = match message.role {
                Role::User => "User",
                Role::Assistant => "Assistant",
                Role::Tool => "Tool result",
                Role::System => "System",
            };
            transcript.push_str(who);
            transcript.push_str(": ");
            transcript.push_str(&message.content.text());
            for call in &message.tool_calls {
                transcript.push_str(&format!(
                    "\n(called {}({}))",
                    call.function.name, call.function.arguments
                ));
            }
            transcript.push_str("\n\n");
        }
        let messages = [
            PromptMessage::new(Role::System, INSTRUCTIONS.to_owned()),
            PromptMessage::new(Role::User, transcript),
        ];
        let request = ChatCompletionRequest {
            model: self.model.as_str(),
            messages: &messages,
            temperature: Some(0.2),
            max_tokens: Some(SUMMARY_MAX_TOKENS),
            stream: false,
            stream_options: None,
            tools: Vec::new(),
            tool_choice: None,
            top_p: None,
            response_format: None,
            parallel_tool_calls: None,
        };
        let limit = self.app.config().chat.max_duration;
        match self.app.upstream().complete_within(&request, limit).await {
            Ok((_, completion)) => completion
                .choices
                .into_iter()
                .next()
                .and_then(|c| c.message.content)
                .map(|text| {
                    crate::upstream::markup::without_reasoning(&text)
                        .trim()
                        .to_owned()
                })
                .filter(|text| !text.is_empty()),
            Err(err) => {
                tracing::warn!(thread = %self.ids.thread, error = %err, "the model could not summarise");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_near_the_limit_is_due() {
        assert!(due(75, 100));
        assert!(!due(74, 100));
    }
}
