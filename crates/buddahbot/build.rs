//! Lays out the hot functions together in release builds (see `link/order.rs`).

#[path = "link/order.rs"]
mod order;

fn main() {
    order::emit(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot.order"));
}
