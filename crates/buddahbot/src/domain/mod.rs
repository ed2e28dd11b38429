//! Values that are valid by construction: ids, titles, messages and threads.

mod ids;
mod message;
mod model;
mod tools;

pub use ids::{IdError, MAX_ID_BYTES, MAX_USER_ID_BYTES, MessageId, ThreadId, UserId};
pub use message::{
    Branch, BranchPlace, ChatMessage, DEFAULT_TITLE, Feedback, ForkedFrom, MAX_FEEDBACK_COMMENT,
    MAX_TITLE_CHARS, MessagePart, Placement, Rating, ReplyFormat, ReplyStatus, Role, ShareLink,
    TITLE_FROM_MESSAGE_CHARS, Thread, ThreadStatus, Title, TitleError, ToolCall, Usage, iso_millis,
    now,
};
pub use model::{MaxTokens, ModelError, ModelName, ReasoningError, Temperature, parse_reasoning};
pub use tools::{FunctionTool, MAX_TOOLS, ToolChoice, ToolError, Tools};
