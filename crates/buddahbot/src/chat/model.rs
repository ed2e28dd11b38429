//! The model call: the prompt as the model gets it, the request, and the fallback model.

use std::{borrow::Cow, future::Future};

use crate::{
    app::App,
    domain::{ModelName, Role},
    upstream::{
        UpstreamError,
        markup::without_reasoning,
        wire::{ChatCompletionRequest, PromptContent, PromptMessage, StreamOptions, WireTool},
    },
};

/// The system prompt that switches Hermes-4 to reasoning: what its chat template puts first
/// when asked to think (`thinking=True`), the same as Nous' DeepHermes models use. The model
/// then writes its thoughts between `<think>` and `</think>` before the answer.
pub const THINKING_PROMPT: &str = "You are a deep thinking AI, you may use extremely long chains of thought to deeply consider the problem and deliberate with yourself via systematic reasoning processes to help come to a correct solution prior to answering. You should enclose your thoughts and internal monologue inside <think> </think> tags, and then provide your solution or response to the problem.";

/// The prompt as the model gets it, reasoning-wise: earlier replies without any reasoning
/// they carry (a client may send back text with `<think>` blocks: the model never reads its
/// old thoughts again), and, when the turn reasons, [`THINKING_PROMPT`] in front of the
/// system message (or as one of its own).
pub(super) fn with_reasoning(
    mut prompt: Vec<PromptMessage>,
    reasoning: bool,
) -> Vec<PromptMessage> {
    for message in &mut prompt {
        if message.role == Role::Assistant
            && let PromptContent::Text(text) = &mut message.content
            && let Cow::Owned(answer) = without_reasoning(text)
        {
            *text = answer;
        }
    }
    if reasoning {
        match prompt.first_mut() {
            Some(PromptMessage {
                role: Role::System,
                content: PromptContent::Text(system),
                ..
            }) => *system = format!("{THINKING_PROMPT}\n\n{system}"),
            _ => prompt.insert(
                0,
                PromptMessage::new(Role::System, THINKING_PROMPT.to_owned()),
            ),
        }
    }
    prompt
}

use super::TurnRequest;

/// The prompt with `SYSTEM_PROMPT` in front, unless the client sent a system message.
pub(super) fn with_system_prompt(
    mut prompt: Vec<PromptMessage>,
    system: Option<&str>,
) -> Vec<PromptMessage> {
    if let Some(system) = system
        && !prompt.iter().any(|m| m.role == Role::System)
    {
        prompt.insert(0, PromptMessage::new(Role::System, system.to_owned()));
    }
    prompt
}

pub(super) fn upstream_request<'a>(
    model: &'a ModelName,
    prompt: &'a [PromptMessage],
    request: &'a TurnRequest,
    stream: bool,
) -> ChatCompletionRequest<'a> {
    ChatCompletionRequest {
        model: model.as_str(),
        messages: prompt,
        temperature: request.temperature.map(|t| t.get()),
        max_tokens: request.max_tokens.map(|m| m.get()),
        stream,
        // Always ask for usage: it is stored with the reply whatever the client wants.
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        tools: request
            .tools
            .functions
            .iter()
            .map(WireTool::function)
            .collect(),
        tool_choice: request.tools.choice.as_ref(),
        top_p: request.top_p,
        response_format: request.response_format.as_ref(),
        // Only meaningful with tools; some APIs refuse it without.
        parallel_tool_calls: request
            .tools
            .parallel_calls
            .filter(|_| !request.tools.is_empty()),
    }
}

/// Calls `attempt` with the requested model and, when that fails in a way another model
/// could help with and `FALLBACK_MODEL` is set, once more with the fallback.
pub(super) async fn with_fallback<T, F, Fut>(
    app: &App,
    requested: &ModelName,
    attempt: F,
) -> Result<(T, ModelName), UpstreamError>
where
    F: Fn(ModelName) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    match attempt(requested.clone()).await {
        Ok(value) => Ok((value, requested.clone())),
        Err(err) => {
            let fallback = app.config().upstream.fallback_model.as_deref();
            match fallback {
                Some(name) if err.is_transient() && name != requested.as_str() => {
                    tracing::warn!(model = %requested, fallback = name, error = %err, "trying the fallback model");
                    let fallback = ModelName::configured(name);
                    attempt(fallback.clone()).await.map(|v| (v, fallback))
                }
                _ => Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, text: &str) -> PromptMessage {
        PromptMessage::new(role, text.to_owned())
    }

    #[test]
    fn reasoning_puts_the_thinking_prompt_first_and_old_thoughts_are_never_resent() {
        let history = vec![
            message(Role::User, "2+2?"),
            message(Role::Assistant, "<think>Easy.</think>\n\nFour."),
            message(Role::User, "And 3+3?"),
        ];
        let off = with_reasoning(history.clone(), false);
        assert_eq!(off.len(), 3);
        assert_eq!(off[1], message(Role::Assistant, "Four."));
        let on = with_reasoning(history, true);
        assert_eq!(on[0], message(Role::System, THINKING_PROMPT));
        assert_eq!(on[2], message(Role::Assistant, "Four."));
        let with_system = with_reasoning(vec![message(Role::System, "Be brief.")], true);
        assert_eq!(
            with_system,
            [message(
                Role::System,
                &format!("{THINKING_PROMPT}\n\nBe brief.")
            )]
        );
    }

    #[test]
    fn the_system_prompt_goes_first_unless_the_client_sent_one() {
        let prompt = with_system_prompt(vec![message(Role::User, "hi")], Some("Be brief."));
        assert_eq!(prompt[0], message(Role::System, "Be brief."));
        assert_eq!(prompt.len(), 2);

        let own = vec![message(Role::System, "Mine."), message(Role::User, "hi")];
        assert_eq!(with_system_prompt(own.clone(), Some("Be brief.")), own);
        assert_eq!(
            with_system_prompt(vec![message(Role::User, "hi")], None).len(),
            1
        );
    }
}
