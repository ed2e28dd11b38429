//! Titles written by the model: after a thread's first turn (under its provisional title,
//! made from the first message) and on demand. The first runs alongside the reply, off the
//! client's path; a title the user gave in the meantime wins.

use tokio::sync::oneshot;

use crate::{
    app::App,
    domain::{ModelName, Role, ThreadId, Title, UserId},
    store::ModelTitle,
    upstream::{
        UpstreamError,
        wire::{ChatCompletionRequest, PromptMessage},
    },
};

/// The longest title the model may write, in characters (cut on a word boundary).
pub const MAX_CHARS: usize = 60;
/// The first message's characters the model reads to name the thread.
const MESSAGE_CHARS: usize = 2_000;
/// Tokens the model may spend on a title.
const MAX_TOKENS: u32 = 24;

const INSTRUCTIONS: &str = "Name the conversation that begins with the user's message below. \
Answer with a title of at most six words, in the message's language, without quotes, \
punctuation at the end, or anything else.";

/// Asks the model for a title for a thread whose first message is `text`: the title (`None`
/// when it answered nothing usable) and the tokens it spent (for the user's budget).
///
/// # Errors
/// [`UpstreamError`] when the model fails.
pub async fn ask(app: &App, text: &str) -> Result<(Option<Title>, u64), UpstreamError> {
    let config = app.config();
    let model = ModelName::configured(
        config
            .chat
            .title_model
            .as_deref()
            .unwrap_or(&config.upstream.default_model),
    );
    let excerpt: String = text.chars().take(MESSAGE_CHARS).collect();
    let messages = [
        PromptMessage::new(Role::System, INSTRUCTIONS.to_owned()),
        PromptMessage::new(Role::User, excerpt),
    ];
    let request = ChatCompletionRequest {
        model: model.as_str(),
        messages: &messages,
        temperature: Some(0.3),
        max_tokens: Some(MAX_TOKENS),
        stream: false,
        stream_options: None,
        tools: Vec::new(),
        tool_choice: None,
        top_p: None,
        response_format: None,
        parallel_tool_calls: None,
    };
    let (_, completion) = app
        .upstream()
        .complete_within(&request, config.chat.max_duration)
        .await?;
    let tokens = completion.usage.map_or(0, |usage| {
        u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens)
    });
    let title = completion
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .and_then(|raw| clean(&raw));
    Ok((title, tokens))
}

/// A model's answer as a title: its first line, without quotes or trailing punctuation,
/// whitespace collapsed, cut on a word boundary to [`MAX_CHARS`].
pub fn clean(raw: &str) -> Option<Title> {
    // A model that thinks anyway: its thoughts are no title.
    let raw = crate::upstream::markup::without_reasoning(raw);
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line.trim_start_matches(|c: char| "\"'“”‘’«»`*#".contains(c) || c.is_whitespace());
    let line =
        line.trim_end_matches(|c: char| "\"'“”‘’«»`*.!?:;,".contains(c) || c.is_whitespace());
    let mut title = String::new();
    // Characters in `title` so far.
    let mut chars = 0;
    for word in line.split_whitespace() {
        let word = word.chars().filter(|c| !matches!(c, '"' | '“' | '”'));
        let length = word.clone().count();
        if length == 0 {
            continue;
        }
        let needed = chars + usize::from(!title.is_empty()) + length;
        if needed > MAX_CHARS {
            if title.is_empty() {
                title.extend(word.take(MAX_CHARS));
            }
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.extend(word);
        chars = needed;
    }
    Title::parse(&title).ok()
}

/// Writes the model's title over the provisional one of a thread's first turn, unless the
/// user named the thread meanwhile. The turn takes it first if it is ready before the reply
/// is stored (`handover`): it then goes with the reply (and the stream, if still open) in
/// the turn's last round trip. Once the turn has stopped waiting for it, it is written here,
/// a round trip of its own. A failure leaves the provisional title.
pub(super) async fn write_first(
    app: App,
    user: UserId,
    thread: ThreadId,
    text: String,
    handover: oneshot::Sender<ModelTitle>,
) {
    let (title, tokens) = match ask(&app, &text).await {
        Ok(answer) => answer,
        Err(err) => {
            tracing::warn!(thread = %thread, error = %err, "the model could not title the thread");
            return;
        }
    };
    let Err(ModelTitle { title, tokens }) = handover.send(ModelTitle { title, tokens }) else {
        return;
    };
    // One round trip: the title (when there is one) and its tokens.
    if let Err(err) = app
        .store()
        .set_model_title(&user, &thread, title.as_ref(), false, tokens)
        .await
    {
        tracing::warn!(thread = %thread, error = %err, "the title could not be kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_clean_short_titles() {
        let cases = [
            ("\"Trip to Rome\"", Some("Trip to Rome")),
            ("Title: plans.\nmore", Some("Title: plans")),
            ("  **Budget for 2027!**  ", Some("Budget for 2027")),
            ("\n\n", None),
        ];
        for (raw, want) in cases {
            assert_eq!(clean(raw).as_ref().map(Title::as_str), want, "case {raw:?}");
        }
        let long = "word ".repeat(40);
        let title = clean(&long).unwrap();
        assert!(title.as_str().chars().count() <= MAX_CHARS);
        assert!(title.as_str().ends_with("word"));
    }
}
