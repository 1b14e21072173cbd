//! Criterion benchmarks and the registry-memory measurement live in `benches/`; this crate has no library code.
