//! Scripted replies: the deltas of a reply that reasons (`think`), writes its tool calls into
//! the text (`tool_inline`) or is cut at chosen bytes (`split_at`), decided before the first
//! byte like every [`Plan`](crate::stream::Plan).
//!
//! An inline reply's content is `<think>\n` + the reasoning words + `\n</think>\n\n` + the
//! answer words + one `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>\n` per call,
//! a chunk per tag, word and call block (or cut at `split_at`'s byte offsets instead). With
//! `think_close=0` it is `<think>\n` and the reasoning words alone, and it ends with
//! `"length"`. With `think_as=reasoning_content` (or `reasoning`) the reasoning words come as
//! deltas of that field, a word per chunk, before the content.

use crate::{overrides::ThinkAs, overrides::ThinkKnobs, reply, tools::ToolCall};

/// The field a scripted delta sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Content,
    ReasoningContent,
    Reasoning,
}

impl Field {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Content => "content",
            Self::ReasoningContent => "reasoning_content",
            Self::Reasoning => "reasoning",
        }
    }
}

/// One scripted chunk: a field and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    pub field: Field,
    pub text: String,
}

/// A scripted reply: its deltas, and whether it stopped mid-thought.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Script {
    pub deltas: Vec<Delta>,
    pub reasoning_words: usize,
    /// The inline reasoning was never closed: the reply ran out (`"length"`).
    pub unclosed: bool,
}

impl Script {
    /// The text of every delta of `field`, joined (a non-streamed reply's fields).
    pub(crate) fn text(&self, field: Field) -> Option<String> {
        let mut deltas = self.deltas.iter().filter(|d| d.field == field).peekable();
        deltas.peek()?;
        Some(deltas.map(|d| d.text.as_str()).collect())
    }
}

/// The script of a reply of `answer` words and (with `tool_inline`) `calls` written as text.
pub(crate) fn script(think: &ThinkKnobs, answer: &[&str], calls: &[ToolCall]) -> Script {
    let mut content: Vec<String> = Vec::new();
    let mut deltas = Vec::new();
    let reasoning = reply::reasoning_tokens(think.words);
    let unclosed = think.words > 0 && think.place == ThinkAs::Inline && !think.close;
    match think.place {
        _ if think.words == 0 => {}
        ThinkAs::Inline => {
            content.push("<think>\n".to_owned());
            content.extend(reasoning.map(str::to_owned));
            if think.close {
                content.push("\n</think>\n\n".to_owned());
            }
        }
        ThinkAs::ReasoningContent | ThinkAs::Reasoning => {
            let field = if think.place == ThinkAs::Reasoning {
                Field::Reasoning
            } else {
                Field::ReasoningContent
            };
            deltas.extend(reasoning.map(|word| Delta {
                field,
                text: word.to_owned(),
            }));
        }
    }
    if !unclosed {
        content.extend(answer.iter().map(|word| (*word).to_owned()));
        if think.tool_inline {
            content.extend(calls.iter().map(|call| {
                let mut block = String::from("<tool_call>\n{\"name\": ");
                crate::wire::push_json_string(&mut block, &call.name);
                block.push_str(", \"arguments\": ");
                block.push_str(&call.arguments);
                block.push_str("}\n</tool_call>\n");
                block
            }));
        }
    }
    if let Some(offsets) = &think.split_at {
        content = cut(&content.concat(), offsets);
    }
    deltas.extend(content.into_iter().map(|text| Delta {
        field: Field::Content,
        text,
    }));
    Script {
        deltas,
        reasoning_words: think.words,
        unclosed,
    }
}

/// `text` cut at `offsets` (in any order; out of range or inside a character, the next
/// boundary), into non-empty pieces.
fn cut(text: &str, offsets: &[usize]) -> Vec<String> {
    let mut at: Vec<usize> = offsets
        .iter()
        .map(|&o| {
            (o.min(text.len())..=text.len())
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(text.len())
        })
        .collect();
    at.push(0);
    at.push(text.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2)
        .map(|w| text[w[0]..w[1]].to_owned())
        .filter(|piece| !piece.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &Script) -> Vec<(&'static str, &str)> {
        script
            .deltas
            .iter()
            .map(|d| (d.field.name(), d.text.as_str()))
            .collect()
    }

    #[test]
    fn inline_reasoning_is_a_chunk_per_tag_and_word_or_cut_where_asked() {
        let think = ThinkKnobs {
            words: 2,
            close: true,
            ..ThinkKnobs::default()
        };
        let script = script(&think, &["Yes "], &[]);
        assert_eq!(
            texts(&script),
            [
                ("content", "<think>\n"),
                ("content", "hmm "),
                ("content", "the "),
                ("content", "\n</think>\n\n"),
                ("content", "Yes "),
            ]
        );
        let cut = super::script(
            &ThinkKnobs {
                split_at: Some(vec![3, 200, 3, 9]),
                ..think
            },
            &["Yes "],
            &[],
        );
        assert_eq!(
            cut.text(Field::Content).unwrap(),
            "<think>\nhmm the \n</think>\n\nYes "
        );
        assert_eq!(
            texts(&cut),
            [
                ("content", "<th"),
                ("content", "ink>\nh"),
                ("content", "mm the \n</think>\n\nYes ")
            ]
        );
    }

    #[test]
    fn field_reasoning_comes_first_and_an_unclosed_think_has_no_answer() {
        let field = script(
            &ThinkKnobs {
                words: 1,
                place: ThinkAs::Reasoning,
                close: true,
                ..ThinkKnobs::default()
            },
            &["Yes "],
            &[],
        );
        assert_eq!(texts(&field), [("reasoning", "hmm "), ("content", "Yes ")]);
        let unclosed = script(
            &ThinkKnobs {
                words: 1,
                close: false,
                ..ThinkKnobs::default()
            },
            &["Yes "],
            &[],
        );
        assert!(unclosed.unclosed);
        assert_eq!(unclosed.text(Field::Content).unwrap(), "<think>\nhmm ");
    }

    #[test]
    fn inline_calls_are_tool_call_blocks() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"city-0"}"#.into(),
        };
        let inline = script(
            &ThinkKnobs {
                tool_inline: true,
                close: true,
                ..ThinkKnobs::default()
            },
            &[],
            &[call],
        );
        assert_eq!(
            texts(&inline),
            [(
                "content",
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"city-0\"}}\n</tool_call>\n"
            )]
        );
    }
}
