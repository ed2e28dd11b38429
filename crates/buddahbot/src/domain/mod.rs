//! Values that are valid by construction: ids, titles, messages and threads.

mod ids;
mod message;

pub use ids::{IdError, MAX_ID_BYTES, MAX_USER_ID_BYTES, MessageId, ThreadId, UserId};
pub use message::{
    ChatMessage, DEFAULT_TITLE, MAX_TITLE_CHARS, Role, Thread, Title, TitleError, Usage, now,
};
