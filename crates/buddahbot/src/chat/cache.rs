//! The response cache on the turn's side: which requests may be answered from it, under
//! which key, and the reply a cached answer becomes.
//!
//! # Design
//! Only `temperature: 0` asks for the same answer twice. The key is a hash of the model
//! input exactly as it would be sent (model, the prompt after the system prompt and any cut,
//! tools, their choice, `max_tokens`), so two requests share an answer only when the model
//! would see the same thing. With `RESPONSE_CACHE_SCOPE=user` the key also sits under the
//! user's hash tag; with `global` it holds nothing of who asked.

use sha2::{Digest, Sha256};

use super::{TurnRequest, model::upstream_request};
use crate::{
    config::{CacheScope, ChatConfig},
    domain::{ChatMessage, MessageId, ModelName, Role, UserId, now},
    store::{CachedReply, keys},
    upstream::wire::PromptMessage,
};

/// The cache key of a request that may be answered from the cache; `None` when the cache is
/// off or the request is not deterministic.
pub(super) fn key(
    config: &ChatConfig,
    user: &UserId,
    request: &TurnRequest,
    prompt: &[PromptMessage],
) -> Option<String> {
    config.response_cache_ttl?;
    if request.temperature.map(|t| t.get()) != Some(0.0) {
        return None;
    }
    let input =
        serde_json::to_vec(&upstream_request(&request.model, prompt, request, false)).ok()?;
    let digest = Sha256::digest(&input);
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(match config.response_cache_scope {
        CacheScope::User => keys::user_response_cache(user, &hash),
        CacheScope::Global => keys::global_response_cache(&hash),
    })
}

/// What of a complete reply is cached.
pub(super) fn entry(reply: &ChatMessage) -> CachedReply {
    CachedReply {
        content: reply.content.clone(),
        reasoning: reply.reasoning.clone(),
        tool_calls: reply.tool_calls.clone(),
        finish_reason: reply
            .finish_reason
            .clone()
            .unwrap_or_else(|| "stop".to_owned()),
        usage: reply.usage,
        model: reply.model.clone().unwrap_or_default(),
    }
}

/// The reply a cached answer becomes: a normal reply marked `cached`, answered at once.
pub(super) fn reply(cached: CachedReply, id: MessageId, model: &ModelName) -> ChatMessage {
    let mut message = ChatMessage::new(Role::Assistant, cached.content);
    message.id = id;
    message.created_at = now();
    message.model = Some(if cached.model.is_empty() {
        model.as_str().to_owned()
    } else {
        cached.model
    });
    message.finish_reason = Some(cached.finish_reason);
    message.usage = cached.usage;
    message.tool_calls = cached.tool_calls;
    message.reasoning = cached.reasoning;
    if message.reasoning.is_some() {
        // Stored as a live reply with reasoning is: with its parts.
        message.parts = Some(message.parts_or_text());
    }
    message.ttft_ms = Some(0);
    message.duration_ms = Some(0);
    message.cached = true;
    message
}
