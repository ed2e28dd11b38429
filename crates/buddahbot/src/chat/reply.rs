//! The reply as it streams in: its text, finish reason and usage, kept while the chunks are
//! forwarded (the tee's copy), and the stored message it becomes.

use std::time::Duration;

use crate::{
    domain::{
        ChatMessage, MessageId, MessagePart, ModelName, ReplyFormat, ReplyStatus, Role, Usage, now,
    },
    upstream::wire::{ChunkView, WireUsage},
};

/// What a reply has said so far.
pub(super) struct ReplyBuilder {
    model: ModelName,
    pub text: String,
    pub finish_reason: Option<String>,
    pub usage: Option<WireUsage>,
    ttft: Duration,
    /// AI SDK replies are stored with their text as a part too.
    format: ReplyFormat,
}

impl ReplyBuilder {
    pub fn new(model: ModelName, ttft: Duration, format: ReplyFormat) -> Self {
        Self {
            format,
            model,
            text: String::new(),
            finish_reason: None,
            usage: None,
            ttft,
        }
    }

    /// Keeps what one chunk adds: text, the finish reason, the usage.
    pub fn add(&mut self, chunk: &ChunkView<'_>) {
        for choice in &chunk.choices {
            if let Some(content) = &choice.delta.content {
                self.text.push_str(content);
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.as_ref().to_owned());
            }
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
    }

    /// The reply as stored. A reply that ended early gets our own finish reason: `error`
    /// when it broke off, `stop` when it was stopped; one that ended normally keeps the
    /// model's (`stop` when it gave none).
    pub fn finish(
        self,
        id: MessageId,
        status: Option<ReplyStatus>,
        duration: Duration,
    ) -> ChatMessage {
        let finish_reason = match status {
            Some(ReplyStatus::Error) => "error".to_owned(),
            Some(ReplyStatus::Stopped) => "stop".to_owned(),
            None => self.finish_reason.unwrap_or_else(|| "stop".to_owned()),
        };
        ChatMessage {
            id,
            role: Role::Assistant,
            created_at: now(),
            // The model we asked for, as the client knows it (the API may echo a longer id).
            model: Some(self.model.as_str().to_owned()),
            finish_reason: Some(finish_reason),
            usage: self.usage.map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
            ttft_ms: Some(millis(self.ttft)),
            duration_ms: Some(millis(duration)),
            parts: (self.format == ReplyFormat::Ui).then(|| {
                vec![MessagePart::Text {
                    text: self.text.clone(),
                }]
            }),
            content: self.text,
            status,
            superseded_by: None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(format: ReplyFormat) -> ReplyBuilder {
        ReplyBuilder::new(
            ModelName::configured("Hermes-4-70B"),
            Duration::from_millis(12),
            format,
        )
    }

    fn add(reply: &mut ReplyBuilder, raw: &str) {
        reply.add(&serde_json::from_str(raw).unwrap());
    }

    #[test]
    fn text_finish_reason_and_usage_are_kept_from_the_chunks() {
        let mut reply = builder(ReplyFormat::OpenAi);
        add(
            &mut reply,
            r#"{"model":"nous/hermes","choices":[{"delta":{"role":"assistant"}}]}"#,
        );
        add(&mut reply, r#"{"choices":[{"delta":{"content":"Fo"}}]}"#);
        add(
            &mut reply,
            r#"{"choices":[{"delta":{"content":"ur \"4\"."},"finish_reason":"length"}]}"#,
        );
        add(
            &mut reply,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#,
        );
        let message = reply.finish(MessageId::new(), None, Duration::from_millis(30));
        assert_eq!(message.content, "Four \"4\".");
        assert_eq!(message.finish_reason.as_deref(), Some("length"));
        assert_eq!(
            message.model.as_deref(),
            Some("Hermes-4-70B"),
            "the model as asked for"
        );
        assert_eq!(message.usage.map(|u| u.completion_tokens), Some(3));
        assert_eq!((message.ttft_ms, message.duration_ms), (Some(12), Some(30)));
        assert!(message.parts.is_none());
    }

    #[test]
    fn an_early_end_overrides_the_finish_reason_and_ui_replies_get_a_text_part() {
        for (status, want) in [
            (Some(ReplyStatus::Error), "error"),
            (Some(ReplyStatus::Stopped), "stop"),
            (None, "stop"),
        ] {
            let mut reply = builder(ReplyFormat::Ui);
            add(&mut reply, r#"{"choices":[{"delta":{"content":"Hi"}}]}"#);
            let message = reply.finish(MessageId::new(), status, Duration::ZERO);
            assert_eq!(message.finish_reason.as_deref(), Some(want));
            assert_eq!(message.status, status);
            assert_eq!(
                message.parts,
                Some(vec![MessagePart::Text { text: "Hi".into() }])
            );
        }
    }
}
