//! What we send clients besides forwarded upstream chunks: replays of stored replies and error
//! events, in the wire formats clients parse.

pub mod ai_sdk;
pub mod openai;
