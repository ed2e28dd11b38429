//! What clients are sent, in the wire formats they parse: the event sequence of every format
//! ([`encoder`]), and the OpenAI and AI SDK shapes it is made of.

pub mod ai_sdk;
pub mod encoder;
pub mod openai;
pub mod responses;
