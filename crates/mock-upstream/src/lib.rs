//! OpenAI-compatible mock upstream (placeholder; being built).
