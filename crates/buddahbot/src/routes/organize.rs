//! A thread's organisation fields as `POST /api/threads` and `PATCH /api/threads/:id` take
//! them (`archived`, `pinned`, `tags`, `metadata`, `externalId`), and the listing filters
//! of `GET /api/threads`. Every refusal names its field.

use serde_json::{Map, Value};

use crate::{
    error::ApiError,
    http::QueryParams,
    store::{ArchivedFilter, Organize, ThreadFilter},
};

/// Most tags a thread may have, and their length in characters.
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 50;
/// Longest external id, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;

fn invalid(field: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidBody(format!("`{field}` {reason}"))
}

/// The organisation fields of a body (the rest is someone else's).
///
/// # Errors
/// [`ApiError::InvalidBody`] naming the first wrong field.
pub fn parse(body: &Map<String, Value>) -> Result<Organize, ApiError> {
    let flag = |name: &str| -> Result<Option<bool>, ApiError> {
        match body.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(name, "must be true or false")),
        }
    };
    let tags = match body.get("tags") {
        None => None,
        Some(Value::Array(list)) => Some(tags(list)?),
        Some(_) => return Err(invalid("tags", "must be a list of strings")),
    };
    let metadata = match body.get("metadata") {
        None => None,
        Some(Value::Null) => Some(Map::new()),
        Some(raw) => match crate::responses::request::check_metadata(Some(raw))? {
            Value::Object(map) => Some(map),
            _ => Some(Map::new()),
        },
    };
    let external_id = match body.get("externalId") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(id)) => {
            let id = id.trim();
            if id.is_empty() || id.chars().count() > MAX_EXTERNAL_ID_CHARS {
                return Err(invalid(
                    "externalId",
                    format_args!("must be 1 to {MAX_EXTERNAL_ID_CHARS} characters"),
                ));
            }
            if id.chars().any(char::is_control) || id == "-" {
                return Err(invalid(
                    "externalId",
                    "contains a character that is not allowed",
                ));
            }
            Some(Some(id.to_owned()))
        }
        Some(_) => return Err(invalid("externalId", "must be a string or null")),
    };
    Ok(Organize {
        archived: flag("archived")?,
        pinned: flag("pinned")?,
        tags,
        metadata,
        external_id,
    })
}

/// Up to [`MAX_TAGS`] tags of 1–[`MAX_TAG_CHARS`] characters, trimmed, unique whatever
/// their case.
fn tags(list: &[Value]) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_TAGS {
        return Err(invalid(
            "tags",
            format_args!("may hold at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let field = format!("tags[{i}]");
        let tag = raw
            .as_str()
            .map(str::trim)
            .ok_or_else(|| invalid(&field, "must be a string"))?;
        if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
            return Err(invalid(
                &field,
                format_args!("must be 1 to {MAX_TAG_CHARS} characters"),
            ));
        }
        if tag.chars().any(|c| c.is_control() || c == '{' || c == '}') {
            return Err(invalid(&field, "contains a character that is not allowed"));
        }
        if out.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
            return Err(invalid(
                &field,
                format_args!("repeats `{tag}` (tags ignore case)"),
            ));
        }
        out.push(tag.to_owned());
    }
    Ok(out)
}

/// `archived=false|true|all` (archived threads left out, alone, or with the rest).
///
/// # Errors
/// [`ApiError::InvalidParam`] for any other value.
pub fn archived(query: &QueryParams) -> Result<ArchivedFilter, ApiError> {
    match query.get("archived") {
        None | Some("false") => Ok(ArchivedFilter::Exclude),
        Some("true") => Ok(ArchivedFilter::Only),
        Some("all") => Ok(ArchivedFilter::Include),
        Some(_) => Err(ApiError::InvalidParam {
            name: "archived",
            reason: "must be `false`, `true` or `all`".to_owned(),
        }),
    }
}

/// `archived=false|true|all`, `pinned=true`, `tag=…`, `externalId=…`.
///
/// # Errors
/// [`ApiError::InvalidParam`] naming the first wrong parameter.
pub fn filter(query: &QueryParams) -> Result<ThreadFilter, ApiError> {
    let archived = archived(query)?;
    let pinned = match query.get("pinned") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::InvalidParam {
                name: "pinned",
                reason: "must be `true` or `false`".to_owned(),
            });
        }
    };
    let tag = match query.get("tag") {
        None => None,
        Some(tag) if !tag.trim().is_empty() && tag.chars().count() <= MAX_TAG_CHARS => {
            Some(tag.trim().to_owned())
        }
        Some(_) => {
            return Err(ApiError::InvalidParam {
                name: "tag",
                reason: format!("must be 1 to {MAX_TAG_CHARS} characters"),
            });
        }
    };
    let external_id = query.get("externalId").map(str::to_owned);
    Ok(ThreadFilter {
        archived,
        pinned,
        tag,
        external_id,
    })
}
