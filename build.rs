//! Lays out the hot functions of the Vercel functions together in release builds, as the
//! `dev` server's are (see `crates/buddahbot/link/order.rs`).

#[path = "crates/buddahbot/link/order.rs"]
mod order;

fn main() {
    order::emit(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/buddahbot/link/hot.order"),
    );
}
