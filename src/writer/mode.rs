//! The write modes: how an event gets from the caller into the file.
//!
//! - [`Mode::Direct`]: one `write(2)` per event, under the state lock.
//! - [`Mode::Buffered`]: events are copied into `State::buf` under the state lock; a full
//!   buffer is swapped for a spare and written after the lock is released.
//! - [`Mode::Staged`]: buffered, with a stage per thread in front of the shared buffer, so
//!   the common event touches nothing another thread writes.
//!
//! One `match` on the mode per event chooses the path; each variant holds only what its
//! mode needs.

use std::{
    cell::RefCell,
    fs::File,
    io::{self, Write},
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Arc,
    },
};

use parking_lot::{Mutex, MutexGuard};

use super::{Inner, Padded, State};
use crate::policy::WriteMode;

/// Bytes a stage holds before its thread moves them to the shared buffer.
const STAGE_CAP: usize = 16 * 1024;

/// How events reach the file, with the state only that mode needs.
// Large: its locks are padded to cache lines of their own. There is one per log, inside
// its `Arc`; a `Box` would add a pointer to chase on every event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Mode {
    /// One write per event.
    Direct,
    /// A shared buffer.
    Buffered(Buffer),
    /// A stage per thread in front of the shared buffer.
    Staged(Staged),
}

/// What the buffered modes add: the shared buffer itself is `State::buf`, under the state
/// lock; this is its capacity and the spare it is swapped with when full.
#[derive(Debug)]
pub(super) struct Buffer {
    /// `State::buf`'s capacity, reserved once: neither buffer ever reallocates.
    pub(super) cap: usize,
    /// The spare buffer and the right to write a full one.
    pub(super) io: Padded<Mutex<Spare>>,
}

/// What staged mode adds to the buffered one.
#[derive(Debug)]
pub(super) struct Staged {
    buffer: Buffer,
    /// Every thread's stage for this file.
    stages: Mutex<Vec<SharedStage>>,
    /// A stage is moved to the shared buffer once it holds this much (so, with the event
    /// that fills it, it never holds more than twice this, nor more than the shared
    /// buffer's capacity: neither ever reallocates).
    stage_cap: usize,
    /// This writer's id in the threads' stage tables (never reused, unlike an address).
    id: u64,
    /// What the lock-free fast path needs to know whether the log may be due, copied
    /// from `State` whenever it changes there.
    hints: Padded<Hints>,
}

/// One thread's staged events for one file.
#[derive(Debug, Default)]
struct Stage {
    buf: Vec<u8>,
    events: u64,
}

/// A stage, shared by its thread (which fills it) and its writer (which drains it).
type SharedStage = Arc<Padded<Mutex<Stage>>>;

/// Read-mostly copies of `State` fields for the staged fast path.
#[derive(Debug, Default)]
pub(super) struct Hints {
    /// `State::buf`'s length as of the last time it changed under the lock (the bytes in
    /// the file are the shared count).
    pub(super) buffered: AtomicU64,
    /// `State::due_at`.
    pub(super) due_at: AtomicI64,
    /// `State::started + min_age`: before it, the log cannot rotate.
    pub(super) gate_at: AtomicI64,
    /// `State::retry_at`.
    pub(super) retry_at: AtomicI64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's stages, by writer id.
    static STAGES: RefCell<Vec<(u64, SharedStage)>> = const { RefCell::new(Vec::new()) };
}

/// The spare buffer, and what failed in flushes written outside the state lock.
#[derive(Debug, Default)]
pub(super) struct Spare {
    buf: Vec<u8>,
    /// Bytes counted in `State::disk` whose write failed (and was cut back).
    shrink: u64,
    pub(super) write_errors: u64,
    pub(super) lost_events: u64,
    pub(super) lost_bytes: u64,
    pub(super) last_error: Option<String>,
}

/// A full buffer on its way to the file; holds the io lock until written.
struct Flush<'a> {
    io: MutexGuard<'a, Spare>,
    file: Option<Arc<File>>,
    events: u64,
}

impl Flush<'_> {
    fn finish(mut self, inner: &Inner) -> io::Result<()> {
        let result = match &self.file {
            Some(file) => inner.shared.append(file, &self.io.buf),
            None => Err(io::Error::other("the log file could not be reopened")),
        };
        if let Err(e) = &result {
            let path = &inner.path;
            let len = self.io.buf.len() as u64;
            self.io.shrink += len;
            self.io.write_errors += 1;
            self.io.lost_events += self.events;
            self.io.lost_bytes += len;
            self.io.last_error = Some(format!("writing {}: {e}", path.display()));
        }
        self.io.buf.clear();
        result
    }
}

// === impl Mode ===

impl Mode {
    pub(super) fn new(mode: WriteMode, buf_cap: usize) -> Self {
        let buffer = || Buffer {
            cap: buf_cap,
            io: Padded(Mutex::new(Spare { buf: Vec::with_capacity(buf_cap), ..Spare::default() })),
        };
        match mode {
            WriteMode::Direct => Mode::Direct,
            WriteMode::Buffered => Mode::Buffered(buffer()),
            WriteMode::Staged => Mode::Staged(Staged {
                buffer: buffer(),
                stages: Mutex::new(Vec::new()),
                stage_cap: STAGE_CAP.min(buf_cap / 2).max(1),
                id: NEXT_ID.fetch_add(1, Relaxed),
                hints: Padded(Hints::default()),
            }),
        }
    }

    /// The shared buffer's parts, in the buffered and staged modes.
    #[inline]
    pub(super) fn buffer(&self) -> Option<&Buffer> {
        match self {
            Mode::Direct => None,
            Mode::Buffered(buffer) | Mode::Staged(Staged { buffer, .. }) => Some(buffer),
        }
    }

    /// At drop: moves every thread's staged events to the end of `buf`.
    pub(super) fn take_stages(&mut self, buf: &mut Vec<u8>) {
        if let Mode::Staged(staged) = self {
            for stage in staged.stages.get_mut().iter() {
                let mut s = stage.lock();
                buf.extend_from_slice(&s.buf);
                s.buf.clear();
            }
        }
    }
}

// === impl Inner ===

impl Inner {
    #[inline]
    pub(super) fn write_event(
        &self,
        now: Option<i64>,
        data: &[u8],
        urgent: bool,
    ) -> io::Result<()> {
        match &self.mode {
            Mode::Direct | Mode::Buffered(_) => self.write_locked(now, data, urgent),
            Mode::Staged(staged) => self.write_staged(staged, now, data, urgent),
        }
    }

    /// Staged mode: the event goes to this thread's stage, touching nothing another
    /// thread writes, unless the log may be due (then everything staged goes to the
    /// shared buffer first and the exact check runs under the lock), the event is urgent,
    /// or the stage is full.
    #[inline]
    fn write_staged(
        &self,
        staged: &Staged,
        now: Option<i64>,
        data: &[u8],
        urgent: bool,
    ) -> io::Result<()> {
        if let Some(now) = self.may_rotate(&staged.hints, now, data.len()) {
            let _ = self.drain_all_outside_lock();
            return self.write_locked(Some(now), data, urgent);
        }
        if data.len() > staged.stage_cap {
            let _ = self.drain_all_outside_lock();
            return self.write_locked(now, data, urgent);
        }
        // `try_with`: a thread being torn down (an event logged from another thread-local's
        // destructor) has no stage table any more; its events take the locked path.
        let full = STAGES.try_with(|cell| {
            let mut table = cell.borrow_mut();
            let stage = match table.iter().find(|(id, _)| *id == staged.id) {
                Some((_, stage)) => stage,
                None => {
                    // Padded: two threads' stages on one cache line would bounce it between cores
                    // on every event, which is what stages exist to avoid.
                    let stage = Arc::new(Padded(Mutex::new(Stage {
                        buf: Vec::with_capacity(2 * staged.stage_cap),
                        events: 0,
                    })));
                    staged.stages.lock().push(Arc::clone(&stage));
                    table.retain(|(_, s)| Arc::strong_count(s) > 1); // writers gone
                    table.push((staged.id, stage));
                    &table.last().expect("just pushed").1
                }
            };
            let mut s = stage.lock();
            s.buf.extend_from_slice(data);
            s.events += 1;
            (s.buf.len() >= staged.stage_cap).then(|| Arc::clone(stage))
        });
        let full = match full {
            Ok(full) => full,
            Err(_) => {
                // What this thread staged before must still come first.
                let _ = self.drain_all_outside_lock();
                return self.write_locked(now, data, urgent);
            }
        };
        if urgent {
            return self.flush_outside_lock();
        }
        if let Some(stage) = full {
            let mut st = self.state.lock();
            let pending = self.absorb(&staged.buffer, &mut st, &stage);
            self.update_hints(&st);
            drop(st);
            if let Some(flush) = pending {
                let _ = flush.finish(self);
            }
        }
        Ok(())
    }

    /// Moves one stage's events into the shared buffer, making room first if needed: a
    /// full shared buffer is handed back as a [`Flush`] for the caller to finish.
    fn absorb<'a>(
        &self,
        buffer: &'a Buffer,
        st: &mut State,
        stage: &Mutex<Stage>,
    ) -> Option<Flush<'a>> {
        let mut s = stage.lock();
        if s.buf.is_empty() {
            return None;
        }
        let pending = if st.buf.len() + s.buf.len() > buffer.cap {
            self.start_flush(buffer, st)
        } else {
            None
        };
        st.buf.extend_from_slice(&s.buf);
        st.buf_events += s.events;
        s.buf.clear();
        s.events = 0;
        pending
    }

    /// Moves every thread's staged events into the shared buffer, writing it out as often
    /// as needed (under the lock: flushes, ERROR events and rotations only). Stages of
    /// threads that have ended are dropped once empty.
    pub(super) fn drain_all(&self, st: &mut State) -> io::Result<()> {
        let Mode::Staged(staged) = &self.mode else {
            return Ok(());
        };
        let mut result = Ok(());
        let mut stages = staged.stages.lock();
        for stage in stages.iter() {
            if let Some(flush) = self.absorb(&staged.buffer, st, stage) {
                if let Err(e) = flush.finish(self) {
                    result = Err(e);
                }
            }
        }
        stages.retain(|s| Arc::strong_count(s) > 1 || !s.lock().buf.is_empty());
        drop(stages);
        self.update_hints(st);
        result
    }

    fn drain_all_outside_lock(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        self.drain_all(&mut st)
    }

    /// Copies what the staged fast path reads out of `State`.
    pub(super) fn update_hints(&self, st: &State) {
        let Mode::Staged(staged) = &self.mode else {
            return;
        };
        let hints = &staged.hints;
        hints.buffered.store(st.buf.len() as u64, Relaxed);
        hints.due_at.store(st.due_at, Relaxed);
        hints.gate_at.store(st.started.saturating_add(self.min_age), Relaxed);
        hints.retry_at.store(st.retry_at, Relaxed);
    }

    /// The check, the rotation and the write, all under the state lock (direct and
    /// buffered modes, and staged mode's slow path).
    fn write_locked(&self, now: Option<i64>, data: &[u8], urgent: bool) -> io::Result<()> {
        // The buffer is looked up here, not passed in: the arguments already fill the six
        // argument registers, and a seventh would go through the stack on every event.
        let mut st = self.state.lock();
        self.rotate_if_due(&mut st, now, data.len());
        let Some(buffer) = self.mode.buffer() else {
            return self.write_file(&mut st, data, 1);
        };
        // Buffered: copy under the lock; a full buffer is swapped for the empty spare and
        // written by this thread *after* the state lock is released, so other threads keep
        // copying while the write runs (the io lock keeps flushes in order).
        let mut pending = None;
        if st.buf.len() + data.len() > buffer.cap {
            pending = self.start_flush(buffer, &mut st);
        }
        if data.len() > buffer.cap {
            // Larger than the whole buffer: straight to the file, after what was pending.
            if let Some(flush) = pending {
                let _ = flush.finish(self);
            }
            return self.write_file(&mut st, data, 1);
        }
        st.buf.extend_from_slice(data);
        st.buf_events += 1;
        drop(st);
        if let Some(flush) = pending {
            // Its failure is counted; it concerns earlier events, not this one.
            let _ = flush.finish(self);
        }
        if urgent {
            return self.flush_outside_lock();
        }
        Ok(())
    }

    /// Writes `data` (holding `events` events) to the file, under the state lock. On
    /// failure the file is cut back to its previous length so no torn line stays, and
    /// the loss is counted.
    fn write_file(&self, st: &mut State, data: &[u8], events: u64) -> io::Result<()> {
        if st.file.is_none() {
            self.reopen(st);
        }
        let result = match &st.file {
            Some(file) => self.shared.append(file, data),
            None => Err(io::Error::other("the log file could not be reopened")),
        };
        match result {
            Ok(()) => {
                st.disk += data.len() as u64;
                st.stats.events_written += events;
                st.stats.bytes_written += data.len() as u64;
                Ok(())
            }
            Err(e) => {
                st.stats.write_errors += 1;
                st.stats.lost_events += events;
                st.stats.last_error = Some(format!("writing {}: {e}", self.path.display()));
                Err(e)
            }
        }
    }

    /// Hands the buffered events to a [`Flush`]: takes the io lock (waiting for a flush
    /// still in flight), swaps the full buffer for the empty spare, and accounts for it.
    fn start_flush<'a>(&self, buffer: &'a Buffer, st: &mut State) -> Option<Flush<'a>> {
        // Into the file the other writers write now, if one of them rotated.
        self.follow_if_rotated(st);
        let mut io = buffer.io.lock();
        if st.buf.is_empty() {
            return None;
        }
        st.disk = st.disk.saturating_sub(std::mem::take(&mut io.shrink));
        std::mem::swap(&mut st.buf, &mut io.buf);
        let events = std::mem::take(&mut st.buf_events);
        st.disk += io.buf.len() as u64;
        st.stats.events_written += events;
        st.stats.bytes_written += io.buf.len() as u64;
        if st.file.is_none() {
            self.reopen(st);
        }
        Some(Flush { io, file: st.file.clone(), events })
    }

    /// Waits for a flush in flight (takes the io lock, in the buffered modes) and takes
    /// back what failed flushes counted in `State::disk`, so that it is the bytes really
    /// in the file for as long as the guard is kept.
    pub(super) fn quiesce(&self, st: &mut State) -> Option<MutexGuard<'_, Spare>> {
        let mut io = self.mode.buffer()?.io.lock();
        st.disk = st.disk.saturating_sub(std::mem::take(&mut io.shrink));
        Some(io)
    }

    /// Writes out the buffer with the state lock released during the write (a no-op in
    /// direct mode).
    pub(super) fn flush_outside_lock(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        let drained = self.drain_all(&mut st);
        let flush = self.mode.buffer().and_then(|buffer| self.start_flush(buffer, &mut st));
        self.update_hints(&st);
        drop(st);
        flush.map_or(Ok(()), |f| f.finish(self)).and(drained)
    }

    /// Writes out the buffer while the caller keeps the state lock (rotation, sync).
    pub(super) fn flush_buf(&self, st: &mut State) -> io::Result<()> {
        match self.mode.buffer().and_then(|buffer| self.start_flush(buffer, st)) {
            Some(flush) => flush.finish(self),
            None => Ok(()),
        }
    }
}

/// Writes all of `data`: one `write(2)` on a file opened for appending, which the OS
/// places at the end as one piece (POSIX `O_APPEND`; Windows `FILE_APPEND_DATA`), so no
/// other writer's bytes, in this process or another, land inside it. Only a full disk
/// (or a file size limit) makes it write part: the rest is tried again, and if that fails,
/// the torn line is ended with a newline (best effort) so the next event starts a line of
/// its own. The file is never cut back: other processes may have written after it.
pub(super) fn write_whole(file: &File, data: &[u8]) -> io::Result<()> {
    let mut f = file;
    let mut done = 0;
    while done < data.len() {
        match f.write(&data[done..]) {
            Ok(0) => return torn(f, done, io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return torn(f, done, e),
        }
    }
    Ok(())
}

fn torn(mut f: &File, done: usize, e: io::Error) -> io::Result<()> {
    if done > 0 {
        let _ = f.write(b"\n");
    }
    Err(e)
}
