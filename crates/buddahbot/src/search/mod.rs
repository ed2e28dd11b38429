//! Search, the part that knows no Redis: how a text splits into words and folds them
//! ([`text`]), what a query asks for and where a text matches it ([`query`]), and the snippet a
//! result shows ([`snippet`]). The index and the walk over it are the store's
//! (`store/search.rs`).

pub mod query;
pub mod snippet;
pub mod text;

pub use query::{Query, QueryError};
pub use snippet::{Snippet, snippet};
pub use text::{Token, distinct_terms, tokens};
