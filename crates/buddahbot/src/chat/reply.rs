//! The reply as it streams in: its reasoning, text, tool calls, finish reason and usage, kept
//! while the chunks are forwarded (the tee's copy), and the stored message it becomes.

use std::time::Duration;

use crate::{
    domain::{ChatMessage, MessageId, MessagePart, ModelName, ReplyFormat, ReplyStatus, Role},
    upstream::{
        markup::{Piece, Splitter},
        tool_calls::ToolCalls,
        wire::{ChunkView, WireUsage},
    },
};

/// What a reply has said so far.
pub(super) struct ReplyBuilder {
    model: ModelName,
    pub text: String,
    /// The reasoning, apart from the text; blocks of it that text came between are joined
    /// by a blank line.
    pub reasoning: String,
    /// Text or a call came after the last reasoning.
    reasoning_ended: bool,
    pub finish_reason: Option<String>,
    pub usage: Option<WireUsage>,
    /// The tool calls the model made, put together from their pieces.
    pub tool_calls: ToolCalls,
    ttft: Duration,
    /// AI SDK replies are stored with their text as a part too.
    format: ReplyFormat,
}

impl ReplyBuilder {
    pub fn new(model: ModelName, ttft: Duration, format: ReplyFormat, id: &MessageId) -> Self {
        Self {
            format,
            model,
            text: String::new(),
            reasoning: String::new(),
            reasoning_ended: false,
            finish_reason: None,
            usage: None,
            tool_calls: ToolCalls::new(id.as_str()),
            ttft,
        }
    }

    /// Whether the model has said anything yet: reasoning, text, or a tool call.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.reasoning.is_empty() && self.tool_calls.is_empty()
    }

    /// Keeps one piece of what the model says.
    pub fn piece(&mut self, piece: &Piece<'_>) {
        match piece {
            Piece::Reasoning(text) => {
                if self.reasoning_ended && !self.reasoning.is_empty() {
                    self.reasoning.push_str("\n\n");
                }
                self.reasoning_ended = false;
                self.reasoning.push_str(text);
            }
            Piece::Text(text) => {
                self.reasoning_ended = true;
                self.text.push_str(text);
            }
            Piece::Call(delta) => {
                self.reasoning_ended = true;
                self.tool_calls.add(delta, |_, _| {});
            }
        }
    }

    /// Keeps what one chunk says of the reply as a whole: the finish reason (as `splitter`
    /// gives it to the client), the usage.
    pub fn end_chunk(&mut self, chunk: &ChunkView<'_>, splitter: &Splitter) {
        for choice in &chunk.choices {
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(splitter.finish_reason(reason).to_owned());
            }
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
    }

    /// Keeps a whole chunk (a test's shorthand for its pieces and its end).
    #[cfg(test)]
    pub fn add(&mut self, chunk: &ChunkView<'_>) {
        let mut splitter = Splitter::new("r1", true);
        splitter.split(chunk, |piece| self.piece(&piece));
        self.end_chunk(chunk, &splitter);
    }

    /// The reply as stored. A reply that ended early gets our own finish reason: `error`
    /// when it broke off, `stop` when it was stopped; one that ended normally keeps the
    /// model's (`stop` when it gave none, `tool_calls` when it gave none but called tools).
    /// Tool calls are kept only from a reply that ended normally: a call cut short has no
    /// whole arguments to run with.
    pub fn finish(
        self,
        id: MessageId,
        status: Option<ReplyStatus>,
        duration: Duration,
    ) -> ChatMessage {
        let finish_reason = match status {
            Some(ReplyStatus::Error) => "error".to_owned(),
            Some(ReplyStatus::Stopped) => "stop".to_owned(),
            None => self.finish_reason.unwrap_or_else(|| {
                if self.tool_calls.is_empty() {
                    "stop"
                } else {
                    "tool_calls"
                }
                .to_owned()
            }),
        };
        let tool_calls =
            (status.is_none() && !self.tool_calls.is_empty()).then(|| self.tool_calls.into_vec());
        // AI SDK replies keep their parts; any reply with reasoning too, so every reader
        // finds the reasoning part.
        let reasoning = (!self.reasoning.is_empty()).then_some(self.reasoning);
        let text_part = tool_calls.is_none() || !self.text.is_empty();
        let parts = (self.format == ReplyFormat::Ui || reasoning.is_some()).then(|| {
            let reasoning = reasoning
                .iter()
                .map(|text| MessagePart::Reasoning { text: text.clone() });
            let text = text_part.then(|| MessagePart::Text {
                text: self.text.clone(),
            });
            reasoning.chain(text).collect()
        });
        let mut message = ChatMessage::new(Role::Assistant, self.text);
        message.reasoning = reasoning;
        message.id = id;
        // The model we asked for, as the client knows it (the API may echo a longer id).
        message.model = Some(self.model.as_str().to_owned());
        message.finish_reason = Some(finish_reason);
        message.usage = self.usage.map(WireUsage::into_usage);
        message.ttft_ms = Some(millis(self.ttft));
        message.duration_ms = Some(millis(duration));
        message.parts = parts;
        message.status = status;
        message.tool_calls = tool_calls;
        message
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use crate::domain::ToolCall;

    use super::*;

    fn builder(format: ReplyFormat) -> ReplyBuilder {
        ReplyBuilder::new(
            ModelName::configured("Hermes-4-70B"),
            Duration::from_millis(12),
            format,
            &MessageId::parse("r1").unwrap(),
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

    #[test]
    fn reasoning_is_kept_apart_from_the_text_with_its_part_and_token_count() {
        let mut reply = builder(ReplyFormat::OpenAi);
        reply.piece(&Piece::Reasoning("Two and "));
        reply.piece(&Piece::Reasoning("two."));
        reply.piece(&Piece::Text("Four."));
        add(
            &mut reply,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":30,"completion_tokens_details":{"reasoning_tokens":25}}}"#,
        );
        let message = reply.finish(MessageId::new(), None, Duration::ZERO);
        assert_eq!(message.content, "Four.");
        assert_eq!(message.reasoning.as_deref(), Some("Two and two."));
        assert_eq!(
            message.parts,
            Some(vec![
                MessagePart::Reasoning {
                    text: "Two and two.".into()
                },
                MessagePart::Text {
                    text: "Four.".into()
                },
            ])
        );
        assert_eq!(message.usage.and_then(|u| u.reasoning_tokens), Some(25));
        assert!(message.finish_reason.as_deref() == Some("stop"));
    }

    #[test]
    fn tool_calls_are_kept_whole_and_only_from_a_complete_reply() {
        let chunks = [
            r#"{"choices":[{"delta":{"content":"Let me look."}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"ci"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Oslo\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ];
        let mut reply = builder(ReplyFormat::Ui);
        for raw in chunks {
            add(&mut reply, raw);
        }
        let message = reply.finish(MessageId::new(), None, Duration::ZERO);
        assert_eq!(message.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            message.tool_calls,
            Some(vec![ToolCall {
                id: "call_1".into(),
                name: "weather".into(),
                arguments: r#"{"city":"Oslo"}"#.into(),
            }])
        );
        assert_eq!(message.content, "Let me look.");

        let mut stopped = builder(ReplyFormat::OpenAi);
        add(&mut stopped, chunks[1]);
        assert!(!stopped.is_empty());
        let message = stopped.finish(MessageId::new(), Some(ReplyStatus::Stopped), Duration::ZERO);
        assert_eq!(message.tool_calls, None, "a call cut short is not kept");
    }
}
