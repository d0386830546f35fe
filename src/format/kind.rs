//! Which line format a layer writes.

/// The line format of a [`LogFiles`](crate::LogFiles) layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `2026-11-26 21:00:00,123 - mhm::discord - INFO - connected | {"user": 42}`: MHM's
    /// (Python logging's) format; `| {...}` only when the event has fields besides the
    /// message. Levels are spelled as Python spells them (`WARNING`).
    #[default]
    Mhm,
    /// One JSON object a line: `{"timestamp": "2026-11-26T21:00:00.123+01:00", "level":
    /// "INFO", "target": "mhm::discord", "message": "connected", "fields": {"user": 42}}`.
    Json,
}
