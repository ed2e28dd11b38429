//! Tool calls as they stream in: the model sends each call in pieces (the first with its id
//! and name, the rest adding to its arguments), keyed by an index. One accumulator puts them
//! back together for the reply that is stored, another for each wire format's events.

use crate::domain::ToolCall;

use super::wire::ToolCallDelta;

/// What one piece did to the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPiece<'p> {
    /// A new call began (its id and name are known from now on).
    Started { position: usize },
    /// Arguments were added to the call at `position`.
    Arguments { position: usize, text: &'p str },
}

/// The calls of one reply, in the order the model started them.
#[derive(Debug, Clone, Default)]
pub struct ToolCalls {
    calls: Vec<ToolCall>,
    /// The model's index of each call, by position.
    indexes: Vec<usize>,
    /// Makes an id for a call the model gave none (unique to the reply).
    fallback_prefix: String,
}

impl ToolCalls {
    /// An empty set; `reply_id` makes the ids of calls the model sends without one.
    pub fn new(reply_id: &str) -> Self {
        Self {
            calls: Vec::new(),
            indexes: Vec::new(),
            fallback_prefix: format!("call_{reply_id}_"),
        }
    }

    /// Takes one piece: calls `on` with what it did (a start, then its arguments, when the
    /// first piece carries both).
    pub fn add<'p>(
        &mut self,
        delta: &'p ToolCallDelta<'_>,
        mut on: impl FnMut(&Self, CallPiece<'p>),
    ) {
        let position = match self.indexes.iter().position(|&i| i == delta.index) {
            Some(position) => position,
            None => {
                let position = self.calls.len();
                let id = delta.id.as_deref().filter(|id| !id.is_empty()).map_or_else(
                    || format!("{}{position}", self.fallback_prefix),
                    str::to_owned,
                );
                let name = delta
                    .function
                    .as_ref()
                    .and_then(|f| f.name.as_deref())
                    .unwrap_or_default()
                    .to_owned();
                self.calls.push(ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                });
                self.indexes.push(delta.index);
                on(self, CallPiece::Started { position });
                position
            }
        };
        if let Some(text) = delta
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .filter(|t| !t.is_empty())
        {
            if let Some(call) = self.calls.get_mut(position) {
                call.arguments.push_str(text);
            }
            on(self, CallPiece::Arguments { position, text });
        }
    }

    pub fn get(&self, position: usize) -> Option<&ToolCall> {
        self.calls.get(position)
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub fn as_slice(&self) -> &[ToolCall] {
        &self.calls
    }

    pub fn into_vec(self) -> Vec<ToolCall> {
        self.calls
    }

    /// Takes a whole call (from a reply that was not streamed).
    pub fn push(&mut self, call: ToolCall) {
        self.indexes.push(self.calls.len());
        self.calls.push(call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::wire::ChunkView;

    fn feed(calls: &mut ToolCalls, raw: &str, seen: &mut Vec<String>) {
        let chunk: ChunkView<'_> = serde_json::from_str(raw).unwrap();
        for choice in &chunk.choices {
            for delta in choice.delta.tool_calls.iter().flatten() {
                calls.add(delta, |calls, piece| {
                    seen.push(match piece {
                        CallPiece::Started { position } => {
                            format!("start {}", calls.get(position).unwrap().name)
                        }
                        CallPiece::Arguments { position, text } => format!("{position}:{text}"),
                    });
                });
            }
        }
    }

    #[test]
    fn pieces_of_two_calls_come_together_by_index() {
        let mut calls = ToolCalls::new("r1");
        let mut seen = Vec::new();
        for raw in [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"name":"time","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]}}]}"#,
        ] {
            feed(&mut calls, raw, &mut seen);
        }
        assert_eq!(
            seen,
            [
                "start weather",
                "0:{\"city\":",
                "start time",
                "1:{}",
                "0:\"Oslo\"}"
            ]
        );
        let calls = calls.into_vec();
        assert_eq!(calls[0].id, "call_a");
        assert_eq!(calls[0].arguments, r#"{"city":"Oslo"}"#);
        assert_eq!(
            calls[1].id, "call_r1_1",
            "an id is made for a call sent without one"
        );
        assert_eq!(calls[1].name, "time");
    }
}
