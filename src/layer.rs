//! The routing layer: several files, `errors.log`, the MHM line format.
//!
//! Each event is formatted once, outside any lock, into a buffer the thread reuses; the
//! file's lock covers only the copy into the file (or its buffer). Its file is chosen by
//! the longest route whose prefix matches the event's target on a `::` boundary
//! (`mhm::discord` takes `mhm::discord` and `mhm::discord::voice`, not `mhm::discordx`);
//! other targets go to the default file. Every WARN and ERROR event is also copied to the
//! errors file, when one is set.
//!
//! The layer writes every event it is given: filter with `tracing_subscriber`'s filters
//! (`layer.with_filter(LevelFilter::INFO)`). Span fields are not written: MHM's format
//! has no place for them.

use std::{
    cell::RefCell,
    path::{Path, PathBuf},
};

use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::{
    clock::{Clock, Zone},
    error::InitError,
    format::LineBuf,
    writer::RollingFile,
    Settings,
};

pub use crate::format::Format;

thread_local! {
    static BUF: RefCell<LineBuf> = RefCell::new(LineBuf::default());
}

/// A `tracing` layer writing to several rotating files. Built by [`LogFiles::builder`].
#[derive(Debug)]
pub struct LogFiles {
    /// Routes, longest prefix first.
    routes: Vec<(String, RollingFile)>,
    default: RollingFile,
    errors: Option<RollingFile>,
    format: Format,
    zone: Zone,
    clock: Clock,
}

/// Keeps the files of a [`LogFiles`] layer; dropping it flushes every one of them.
#[derive(Debug)]
#[must_use = "dropping the guard flushes the logs; keep it alive for as long as you log"]
pub struct LogFilesGuard {
    files: Vec<RollingFile>,
}

/// Builds a [`LogFiles`] layer.
///
/// | option | default |
/// |---|---|
/// | [`settings`](Self::settings) | [`Settings::default()`] |
/// | [`clock`](Self::clock) | the system clock |
/// | [`route`](Self::route) | none |
/// | [`default_file`](Self::default_file) | `app.log` |
/// | [`errors_file`](Self::errors_file) | none |
/// | [`format`](Self::format) | [`Format::Mhm`] |
#[derive(Debug)]
#[must_use]
pub struct LogFilesBuilder {
    dir: PathBuf,
    settings: Settings,
    clock: Clock,
    routes: Vec<(String, String)>,
    default_file: String,
    errors_file: Option<String>,
    format: Format,
}

impl LogFiles {
    /// A builder for a layer writing into the folder `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> LogFilesBuilder {
        LogFilesBuilder {
            dir: dir.as_ref().to_path_buf(),
            settings: Settings::default(),
            clock: Clock::system(),
            routes: Vec::new(),
            default_file: "app.log".to_string(),
            errors_file: None,
            format: Format::Mhm,
        }
    }

    #[inline]
    fn file_for(&self, target: &str) -> &RollingFile {
        for (prefix, file) in &self.routes {
            if let Some(rest) = target.strip_prefix(prefix.as_str()) {
                if rest.is_empty() || rest.starts_with("::") {
                    return file;
                }
            }
        }
        &self.default
    }

    fn emit(&self, buf: &mut LineBuf, event: &Event<'_>) {
        let now = self.clock.now_nanos();
        let level = *event.metadata().level();
        buf.format(self.format, self.zone, now, event);
        let file = self.file_for(event.metadata().target());
        let urgent = level == Level::ERROR;
        let _ = file.write_event(Some(now), &buf.line, urgent);
        if let Some(errors) = &self.errors {
            if level <= Level::WARN && !std::ptr::eq(errors, file) {
                let _ = errors.write_event(Some(now), &buf.line, urgent);
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for LogFiles {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let done = BUF.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => self.emit(&mut buf, event),
            // An event logged while formatting another (from a Debug impl): own buffer.
            Err(_) => self.emit(&mut LineBuf::default(), event),
        });
        if done.is_err() {
            // The thread is being torn down and its buffer is gone: a buffer of its own.
            self.emit(&mut LineBuf::default(), event);
        }
    }
}

impl LogFilesBuilder {
    /// Settings for every file.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The clock for timestamps and rotation (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Sends events whose target is `prefix` or starts with `prefix::` to `file` (a file
    /// name in the folder).
    pub fn route(mut self, prefix: impl Into<String>, file: impl Into<String>) -> Self {
        self.routes.push((prefix.into(), file.into()));
        self
    }

    /// The file for events no route takes. Default `app.log`.
    pub fn default_file(mut self, file: impl Into<String>) -> Self {
        self.default_file = file.into();
        self
    }

    /// Every WARN and ERROR event is also copied to `file`.
    pub fn errors_file(mut self, file: impl Into<String>) -> Self {
        self.errors_file = Some(file.into());
        self
    }

    /// The line format.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Opens every file (see [`RollingFile`]'s builder for what can fail) and returns the
    /// layer and the guard that flushes them.
    pub fn build(self) -> Result<(LogFiles, LogFilesGuard), InitError> {
        let mut opened: Vec<(String, RollingFile)> = Vec::new();
        let mut open = |name: &str| -> Result<RollingFile, InitError> {
            if name.is_empty() || Path::new(name).file_name().map(|n| n != name).unwrap_or(true) {
                return Err(InitError::msg(
                    "a log file must be a plain file name inside the log folder",
                    self.dir.join(name),
                ));
            }
            if let Some((_, f)) = opened.iter().find(|(n, _)| n == name) {
                return Ok(f.clone());
            }
            let f = RollingFile::builder()
                .settings(self.settings.clone())
                .clock(self.clock.clone())
                .build(self.dir.join(name))?;
            opened.push((name.to_string(), f.clone()));
            Ok(f)
        };
        let default = open(&self.default_file)?;
        let errors = self.errors_file.as_deref().map(&mut open).transpose()?;
        let mut routes = Vec::with_capacity(self.routes.len());
        for (prefix, file) in &self.routes {
            if prefix.is_empty() {
                return Err(InitError::bare(format!(
                    "route to {file}: the target prefix is empty"
                )));
            }
            routes.push((prefix.clone(), open(file)?));
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        let files = opened.into_iter().map(|(_, f)| f).collect();
        let layer = LogFiles {
            routes,
            default,
            errors,
            format: self.format,
            zone: self.settings.zone(),
            clock: self.clock,
        };
        Ok((layer, LogFilesGuard { files }))
    }
}

impl LogFilesGuard {
    /// The files, in the order they were opened (default, errors, routes).
    pub fn files(&self) -> &[RollingFile] {
        &self.files
    }

    /// Flushes every file now.
    pub fn flush(&self) {
        for f in &self.files {
            let _ = f.flush();
        }
    }
}

/// Writes out every buffered event and finishes the maintenance already due, for every
/// file, within `SHUTDOWN_BUDGET` (5 s) in all; the layer may live on.
impl Drop for LogFilesGuard {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + crate::writer::SHUTDOWN_BUDGET;
        self.flush();
        for f in &self.files {
            f.finish_maintenance(deadline);
        }
    }
}
