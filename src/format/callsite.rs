//! The per-callsite cache: the text every event of one callsite shares, made once per
//! thread.

use tracing_core::{Level, Metadata};

use super::{escape::escape_into, kind::Format};

/// The text every event of one callsite shares, made once per thread: what goes between
/// the timestamp and the message, and each field's `, "name": `. Looked up by the address
/// of the callsite's metadata (`'static` and immutable: one address, one text), in a small
/// direct-mapped table; a miss rebuilds the slot in place, reusing its buffers.
#[derive(Debug, Default)]
pub(super) struct Callsites {
    slots: [CallsiteText; CALLSITE_SLOTS],
}

const CALLSITE_SLOTS: usize = 16;

#[derive(Debug, Default)]
pub(super) struct CallsiteText {
    /// The metadata's address; 0 for an empty slot.
    meta: usize,
    format: Format,
    /// ` - <target> - <LEVEL> - ` (MHM), or from the end of the timestamp to the opening
    /// quote of the message (JSON).
    pub(super) header: Vec<u8>,
    /// Each field, by index.
    pub(super) keys: Vec<Key>,
    /// `, "name": ` of each named field (escaped), back to back.
    pub(super) names: Vec<u8>,
}

/// One field of a callsite.
#[derive(Clone, Copy, Debug)]
pub(super) struct Key {
    /// The field's name: a visited field uses this entry only if it has this very name
    /// (same address), so a stale or foreign entry can never be used.
    pub(super) name: &'static str,
    pub(super) kind: KeyKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// `message`: the line's message.
    Message,
    /// The `log.*` fields `tracing-log` adds: not written.
    Skip,
    /// A field written as `, "name": value`; its key text is `names[start..end]`.
    Named { start: u32, end: u32 },
    /// A named field without cached text (not found in the table): escaped as it is written.
    Uncached,
}

impl KeyKind {
    pub(super) fn of(name: &str) -> Self {
        if name == "message" {
            KeyKind::Message
        } else if name.starts_with("log.") {
            KeyKind::Skip
        } else {
            KeyKind::Uncached
        }
    }
}

impl Callsites {
    #[inline]
    pub(super) fn get(
        &mut self,
        meta: &'static Metadata<'static>,
        format: Format,
    ) -> &CallsiteText {
        let addr = meta as *const Metadata<'static> as usize;
        let slot = (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        let text = &mut self.slots[slot as usize % CALLSITE_SLOTS];
        if text.meta != addr || text.format != format {
            text.fill(meta, format);
        }
        text
    }
}

impl CallsiteText {
    #[cold]
    fn fill(&mut self, meta: &'static Metadata<'static>, format: Format) {
        self.meta = meta as *const Metadata<'static> as usize;
        self.format = format;
        let header = &mut self.header;
        header.clear();
        match format {
            Format::Json => {
                header.extend_from_slice(b"\", \"level\": \"");
                header.extend_from_slice(level_name(meta.level(), format).as_bytes());
                header.extend_from_slice(b"\", \"target\": \"");
                escape_into(header, meta.target());
                header.extend_from_slice(b"\", \"message\": \"");
            }
            _ => {
                header.extend_from_slice(b" - ");
                header.extend_from_slice(meta.target().as_bytes());
                header.extend_from_slice(b" - ");
                header.extend_from_slice(level_name(meta.level(), format).as_bytes());
                header.extend_from_slice(b" - ");
            }
        }
        self.keys.clear();
        self.names.clear();
        for field in meta.fields() {
            let name = field.name();
            let kind = match KeyKind::of(name) {
                KeyKind::Uncached => {
                    let start = self.names.len();
                    push_key(&mut self.names, name);
                    match (u32::try_from(start), u32::try_from(self.names.len())) {
                        (Ok(start), Ok(end)) => KeyKind::Named { start, end },
                        _ => KeyKind::Uncached,
                    }
                }
                kind => kind,
            };
            self.keys.push(Key { name, kind });
        }
    }
}

/// `, "name": `, escaped.
pub(super) fn push_key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b", \"");
    escape_into(out, name);
    out.extend_from_slice(b"\": ");
}

fn level_name(level: &Level, format: Format) -> &'static str {
    match (*level, format) {
        (Level::ERROR, _) => "ERROR",
        (Level::WARN, Format::Mhm) => "WARNING",
        (Level::WARN, _) => "WARN",
        (Level::INFO, _) => "INFO",
        (Level::DEBUG, _) => "DEBUG",
        _ => "TRACE",
    }
}
