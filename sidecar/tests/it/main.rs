//! The sidecar's integration tests, one crate (one link instead of one per file, as large
//! Rust projects do): real files, the real binary, SIGKILL, a real S3 server. Each module
//! is one area; `common` holds the shared helpers.

mod common;

mod backup;
mod cli;
mod crash;
mod demo;
mod hostile;
mod json_schema;
mod logs;
mod maintain;
mod maintain_month;
mod memory;
mod messages;
mod messages_service;
mod notify;
mod paths;
mod platform;
mod prune_property;
mod remote;
mod schedule;
mod season;
mod service_backups;
mod snapshot;
mod tools;
mod validate;
mod zip64;
