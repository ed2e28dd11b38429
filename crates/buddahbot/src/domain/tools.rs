//! The function tools a request offers the model, and how it may use them: checked once at
//! the edge, then forwarded as the OpenAI chat-completions API takes them.

use serde::Serialize;
use serde_json::{Map, Value};

/// Most tools one request may offer (OpenAI's own limit).
pub const MAX_TOOLS: usize = 128;

/// Longest tool name, in bytes (OpenAI's limit; names are ASCII).
const MAX_NAME_LEN: usize = 64;

/// Why `tools`, `tool_choice` or `parallel_tool_calls` was refused: the field path (relative
/// to the body) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct ToolError {
    pub field: String,
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> ToolError {
    ToolError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One function tool, valid: a name the model can call, an optional description, and a
/// parameters object that is a JSON Schema of `type: "object"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionTool {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// How the model may use the tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    /// Must call this one.
    Function(String),
}

impl Serialize for ToolChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::None => s.serialize_str("none"),
            Self::Auto => s.serialize_str("auto"),
            Self::Required => s.serialize_str("required"),
            Self::Function(name) => serde_json::json!({
                "type": "function",
                "function": { "name": name },
            })
            .serialize(s),
        }
    }
}

/// The tools of one request, with their choice and the parallel-call switch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tools {
    pub functions: Vec<FunctionTool>,
    pub choice: Option<ToolChoice>,
    pub parallel_calls: Option<bool>,
}

impl Tools {
    /// Checks the OpenAI fields `tools`, `tool_choice` and `parallel_tool_calls` as sent.
    ///
    /// # Errors
    /// [`ToolError`] naming the first wrong field: not a list, more than [`MAX_TOOLS`], a tool
    /// that is not `type: "function"`, a missing, malformed or repeated name, a description
    /// that is not a string, `parameters` that are not a valid JSON Schema for an object, a
    /// `tool_choice` that is unknown or names a tool not offered, or that asks for a tool
    /// when none are offered.
    pub fn parse(
        tools: Option<&Value>,
        choice: Option<&Value>,
        parallel: Option<&Value>,
    ) -> Result<Self, ToolError> {
        let functions = match tools {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => {
                if list.len() > MAX_TOOLS {
                    return Err(refuse(
                        "tools",
                        format!("may hold at most {MAX_TOOLS} tools"),
                    ));
                }
                let mut functions: Vec<FunctionTool> = Vec::with_capacity(list.len());
                for (i, tool) in list.iter().enumerate() {
                    let function = parse_tool(tool, i)?;
                    if functions.iter().any(|f| f.name == function.name) {
                        return Err(refuse(
                            format!("tools[{i}].function.name"),
                            format!("repeats the tool name `{}`", function.name),
                        ));
                    }
                    functions.push(function);
                }
                functions
            }
            Some(_) => return Err(refuse("tools", "must be a list of function tools")),
        };
        let choice = match choice {
            None | Some(Value::Null) => None,
            Some(raw) => Some(parse_choice(raw, &functions)?),
        };
        let parallel_calls = match parallel {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(refuse("parallel_tool_calls", "must be true or false")),
        };
        Ok(Self {
            functions,
            choice,
            parallel_calls,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// Whether a tool of this name is offered.
    pub fn offers(&self, name: &str) -> bool {
        self.functions.iter().any(|f| f.name == name)
    }
}

fn parse_tool(tool: &Value, i: usize) -> Result<FunctionTool, ToolError> {
    let at = |rest: &str| format!("tools[{i}]{rest}");
    let object = tool
        .as_object()
        .ok_or_else(|| refuse(at(""), "must be an object"))?;
    match object.get("type").and_then(Value::as_str) {
        Some("function") => {}
        _ => return Err(refuse(at(".type"), "must be `function`")),
    }
    let function = object
        .get("function")
        .and_then(Value::as_object)
        .ok_or_else(|| refuse(at(".function"), "must be an object"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse(at(".function.name"), "is required"))?;
    check_name(name).map_err(|reason| refuse(at(".function.name"), reason))?;
    let description = match function.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return Err(refuse(at(".function.description"), "must be a string")),
    };
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => None,
        Some(schema) => {
            Some(check_schema(schema).map_err(|r| refuse(at(".function.parameters"), r))?)
        }
    };
    let strict = match function.get("strict") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(refuse(at(".function.strict"), "must be true or false")),
    };
    Ok(FunctionTool {
        name: name.to_owned(),
        description,
        parameters,
        strict,
    })
}

/// A tool name as OpenAI accepts it: 1–64 of `a-z A-Z 0-9 _ -`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("must be 1 to {MAX_NAME_LEN} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("may only hold letters, digits, `_` and `-`".to_owned());
    }
    Ok(())
}

/// A tool's parameters: a valid JSON Schema (checked against its meta-schema) describing an
/// object.
fn check_schema(schema: &Value) -> Result<Value, String> {
    let object: &Map<String, Value> = schema.as_object().ok_or("must be a JSON Schema object")?;
    match object.get("type") {
        None => {}
        Some(Value::String(t)) if t == "object" => {}
        Some(other) => {
            return Err(format!(
                "must describe an object (`type: \"object\"`), not {other}"
            ));
        }
    }
    jsonschema::meta::validate(schema).map_err(|e| format!("is not a valid JSON Schema: {e}"))?;
    Ok(schema.clone())
}

fn parse_choice(raw: &Value, functions: &[FunctionTool]) -> Result<ToolChoice, ToolError> {
    let choice = match raw {
        Value::String(s) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            _ => {
                return Err(refuse(
                    "tool_choice",
                    "must be `none`, `auto`, `required` or {\"type\": \"function\", \"function\": {\"name\": …}}",
                ));
            }
        },
        Value::Object(object) => {
            if object.get("type").and_then(Value::as_str) != Some("function") {
                return Err(refuse("tool_choice.type", "must be `function`"));
            }
            let name = object
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| refuse("tool_choice.function.name", "is required"))?;
            if !functions.iter().any(|f| f.name == name) {
                return Err(refuse(
                    "tool_choice.function.name",
                    format!("names `{name}`, which is not in `tools`"),
                ));
            }
            ToolChoice::Function(name.to_owned())
        }
        _ => {
            return Err(refuse(
                "tool_choice",
                "must be a string or a function choice object",
            ));
        }
    };
    if functions.is_empty() && choice != ToolChoice::None {
        return Err(refuse(
            "tool_choice",
            "needs `tools`: there is no tool to choose",
        ));
    }
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn weather() -> Value {
        json!({ "type": "function", "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] },
            "strict": true,
        } })
    }

    #[test]
    fn valid_tools_parse_and_serialize_as_sent() {
        let tools = Tools::parse(
            Some(&json!([weather()])),
            Some(&json!({ "type": "function", "function": { "name": "get_weather" } })),
            Some(&json!(false)),
        )
        .unwrap();
        assert_eq!(tools.functions.len(), 1);
        assert!(tools.offers("get_weather"));
        assert_eq!(tools.parallel_calls, Some(false));
        assert_eq!(
            serde_json::to_value(&tools.functions[0]).unwrap(),
            weather()["function"]
        );
        assert_eq!(
            serde_json::to_value(tools.choice.as_ref().unwrap()).unwrap(),
            json!({ "type": "function", "function": { "name": "get_weather" } })
        );
        for (raw, want) in [("none", "none"), ("auto", "auto"), ("required", "required")] {
            let t = Tools::parse(Some(&json!([weather()])), Some(&json!(raw)), None).unwrap();
            assert_eq!(serde_json::to_value(t.choice.unwrap()).unwrap(), want);
        }
        assert!(Tools::parse(None, None, None).unwrap().is_empty());
    }

    #[test]
    fn every_refusal_names_its_field() {
        let many: Vec<Value> = (0..=MAX_TOOLS)
            .map(|i| json!({ "type": "function", "function": { "name": format!("t{i}") } }))
            .collect();
        let with = |f: Value| json!([{ "type": "function", "function": f }]);
        // (tools, tool_choice, parallel_tool_calls, the field the refusal names)
        type Case = (Option<Value>, Option<Value>, Option<Value>, &'static str);
        let cases: Vec<Case> = vec![
            (Some(json!({})), None, None, "`tools`"),
            (Some(Value::Array(many)), None, None, "`tools`"),
            (Some(json!([1])), None, None, "`tools[0]`"),
            (
                Some(json!([{ "type": "web_search" }])),
                None,
                None,
                "`tools[0].type`",
            ),
            (
                Some(json!([{ "type": "function" }])),
                None,
                None,
                "`tools[0].function`",
            ),
            (
                Some(with(json!({}))),
                None,
                None,
                "`tools[0].function.name`",
            ),
            (
                Some(with(json!({ "name": "has space" }))),
                None,
                None,
                "`tools[0].function.name`",
            ),
            (
                Some(with(json!({ "name": "x".repeat(65) }))),
                None,
                None,
                "`tools[0].function.name`",
            ),
            (
                Some(with(json!({ "name": "a", "description": 3 }))),
                None,
                None,
                "`tools[0].function.description`",
            ),
            (
                Some(with(json!({ "name": "a", "parameters": "object" }))),
                None,
                None,
                "`tools[0].function.parameters`",
            ),
            (
                Some(with(
                    json!({ "name": "a", "parameters": { "type": "string" } }),
                )),
                None,
                None,
                "`tools[0].function.parameters`",
            ),
            (
                Some(with(
                    json!({ "name": "a", "parameters": { "type": "object", "properties": { "x": { "type": "strnig" } } } }),
                )),
                None,
                None,
                "`tools[0].function.parameters`",
            ),
            (
                Some(with(
                    json!({ "name": "a", "parameters": { "type": "object", "required": "x" } }),
                )),
                None,
                None,
                "`tools[0].function.parameters`",
            ),
            (
                Some(with(json!({ "name": "a", "strict": "yes" }))),
                None,
                None,
                "`tools[0].function.strict`",
            ),
            (
                Some(json!([weather(), weather()])),
                None,
                None,
                "`tools[1].function.name`",
            ),
            (
                Some(json!([weather()])),
                Some(json!("sometimes")),
                None,
                "`tool_choice`",
            ),
            (
                Some(json!([weather()])),
                Some(json!({ "type": "tool" })),
                None,
                "`tool_choice.type`",
            ),
            (
                Some(json!([weather()])),
                Some(json!({ "type": "function", "function": {} })),
                None,
                "`tool_choice.function.name`",
            ),
            (
                Some(json!([weather()])),
                Some(json!({ "type": "function", "function": { "name": "nope" } })),
                None,
                "`tool_choice.function.name`",
            ),
            (None, Some(json!("required")), None, "`tool_choice`"),
            (
                Some(json!([weather()])),
                None,
                Some(json!("yes")),
                "`parallel_tool_calls`",
            ),
        ];
        for (tools, choice, parallel, field) in cases {
            let err =
                Tools::parse(tools.as_ref(), choice.as_ref(), parallel.as_ref()).expect_err(field);
            assert!(
                err.to_string().starts_with(field),
                "{err} does not name {field}"
            );
        }
    }
}
