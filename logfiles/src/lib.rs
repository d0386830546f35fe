//! A log's rotated copies, as mhm-log's writer makes them and mhm-sidecar keeps them: what
//! a copy is called ([`naming`]), which day it belongs to ([`time`]), and which copies
//! move, are compressed or go ([`retention`], with the crash-safe file operations that
//! carry that out). One crate for both, so the writer and the sidecar can never disagree.
//! Applications use `mhm_log`, which exports none of this.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod naming;
pub mod retention;
pub mod time;
