//! End-to-end tests of the provisioning service: `devicegate serve` runs
//! as a process on a free port against SQLite and against Postgres, and a
//! real HTTP client drives it (IDENTITIES.md §4–§7).

mod admin;
mod agents;
mod bad_input;
mod bootstrap;
mod harness;
mod metrics;
mod openapi;
mod shutdown;
mod tls;
mod tokens;
