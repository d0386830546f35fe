//! The write modes: how an event gets from the caller into the file.
//!
//! - [`Mode::Direct`]: one `write(2)` per event, under the state lock.
//! - [`Mode::Buffered`]: events are copied into `State::buf` under the state lock; a full
//!   buffer is swapped for a spare and written after the lock is released.
//! - [`Mode::Staged`]: buffered, with a stage per thread in front of the shared buffer, so
//!   the common event touches nothing another thread writes, and takes no lock: a stage
//!   is a ring its thread fills and publishes with one store (see [`Stage`]).
//!
//! One `match` on the mode per event chooses the path; each variant holds only what its
//! mode needs.

use std::{
    cell::RefCell,
    fs::File,
    io::{self, Write},
    sync::{
        atomic::{
            AtomicBool, AtomicI64, AtomicU64,
            Ordering::{AcqRel, Acquire, Relaxed},
        },
        Arc,
    },
};

use super::stage::Stage;
use super::{
    sync::{Mutex, MutexGuard},
    Inner, Padded, State,
};
use crate::policy::WriteMode;

/// The most a stage asks to be drained at: its ring (four times this, 8 MiB) then holds
/// fewer than 2^24 events of a byte or more, which its position words count (`POS_BITS`);
/// and a thread's stage stays that size however large the buffer.
const MAX_STAGE_CAP: usize = 2 << 20;

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
    /// A stage holding this much asks the background thread to drain the stages (about a
    /// buffer's worth: one wake-up per write, as write-behind has). Its ring holds four times
    /// this, so its thread stages on while the drain comes; it drains its stage itself
    /// only when the ring is full (no background thread, or one busy with maintenance).
    stage_cap: usize,
    /// A drain was asked for and has not started: the threads that cross `stage_cap`
    /// meanwhile do not wake the background thread again.
    asked: Padded<AtomicBool>,
    /// This writer's id in the threads' stage tables (never reused, unlike an address).
    id: u64,
    /// What the lock-free fast path needs to know whether the log may be due, copied
    /// from `State` whenever it changes there.
    hints: Padded<Hints>,
}

/// A stage, shared by its thread (which fills it) and its writer (which drains it).
type SharedStage = Arc<Stage>;

/// Where the staged fast path left an event.
enum Staging {
    /// In the thread's stage, which now holds this many bytes.
    Staged(u64),
    /// Nowhere yet: the log may be due at this time.
    Due(i64),
    /// Nowhere yet: the stage is full.
    Full,
}

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
    /// `buf` is a full buffer handed to the background thread to write (write-behind):
    /// the file it goes to and the events it holds. Whoever takes the io lock next writes
    /// it first (the background thread, or a writer that needs the spare or the file
    /// quiet), so it is written once, before anything later.
    behind: Option<(Option<Arc<File>>, u64)>,
    /// Bytes counted in `State::disk` whose write failed (never in the file).
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
        write_spare(inner, &mut self.io, self.file.as_deref(), self.events)
    }

    /// Leaves the write to the background thread (the event's thread goes on at once);
    /// the next holder of the io lock writes it if that thread has not yet.
    fn hand_off(mut self, inner: &Inner) {
        self.io.behind = Some((self.file.take(), self.events));
        drop(self);
        inner.signal.write_behind();
    }
}

/// Writes the spare buffer (`events` events) to `file`, counting a failure, and empties it.
/// `start_flush` counted it all as written: a failure takes back what did not reach the
/// file (the events not whole in it; their bytes, from `State::disk` too).
fn write_spare(inner: &Inner, io: &mut Spare, file: Option<&File>, events: u64) -> io::Result<()> {
    let result = match file {
        Some(file) => inner.shared.append(file, &io.buf),
        None => Err(Torn::nothing(io::Error::other("the log file could not be reopened"))),
    };
    let result = match result {
        Ok(()) => Ok(()),
        Err(torn) => {
            let len = io.buf.len() as u64;
            let (whole, whole_bytes) = torn.whole(&io.buf, &[], events);
            io.shrink += len.saturating_sub(torn.on_disk());
            io.write_errors += 1;
            io.lost_events += events - whole;
            io.lost_bytes += len - whole_bytes;
            io.last_error = Some(format!("writing {}: {}", inner.path.display(), torn.error));
            Err(torn.error)
        }
    };
    io.buf.clear();
    result
}

/// Writes a buffer handed to the background thread, if it is still waiting (io lock held).
fn write_behind(inner: &Inner, io: &mut Spare) {
    if let Some((file, events)) = io.behind.take() {
        let _ = write_spare(inner, io, file.as_deref(), events);
    }
}

// === impl Mode ===

impl Mode {
    pub(super) fn new(mode: WriteMode, buf_cap: usize) -> Self {
        // The builder takes any value; the environment's is bounded where it is read.
        let buf_cap = buf_cap.clamp(1, crate::policy::MAX_BUFFER_BYTES);
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
                // A buffer less a margin for the event that crosses it: the drain it
                // asks for is one write of about a buffer, straight from the ring (of
                // 2 MiB at most, see `MAX_STAGE_CAP`).
                stage_cap: (buf_cap - buf_cap / 64).clamp(1, MAX_STAGE_CAP),
                asked: Padded(AtomicBool::new(false)),
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
                stage.drain_to(buf, stage.head());
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
    /// thread writes, unless the log may be due (counting what this thread staged; then
    /// everything staged goes to the file first and the exact check runs under the lock),
    /// the event is urgent, or the stage is full. A stage that reaches `stage_cap` asks the
    /// background thread to drain it, once.
    #[inline]
    fn write_staged(
        &self,
        staged: &Staged,
        now: Option<i64>,
        data: &[u8],
        urgent: bool,
    ) -> io::Result<()> {
        if data.len() > staged.stage_cap {
            let _ = self.drain_all_outside_lock();
            return self.write_locked(now, data, urgent);
        }
        if data.is_empty() {
            // Nothing to place in order; a stage counts its events when it drains bytes,
            // and would hold it unseen.
            return self.write_locked(now, data, urgent);
        }
        // `try_with`: a thread being torn down (an event logged from another thread-local's
        // destructor) has no stage table any more; its events take the locked path.
        let staging = STAGES.try_with(|cell| {
            let mut table = cell.borrow_mut();
            let stage = match table.iter().find(|(id, _)| *id == staged.id) {
                Some((_, stage)) => stage,
                None => {
                    // Room for a drain's worth and three more while it comes (the
                    // background thread may be in a maintenance step; measured: with
                    // one more, the thread drained its own stage often enough to cost
                    // 5 % of a rotating run).
                    let stage = Arc::new(Stage::new(4 * staged.stage_cap));
                    staged.stages.lock().push(Arc::clone(&stage));
                    table.retain(|(_, s)| Arc::strong_count(s) > 1); // writers gone
                    table.push((staged.id, stage));
                    &table.last().expect("just pushed").1
                }
            };
            let len = data.len() + stage.staged() as usize;
            if let Some(now) = self.may_rotate(&staged.hints, now, len) {
                return Staging::Due(now);
            }
            stage.push(data).map_or(Staging::Full, Staging::Staged)
        });
        let len = match staging {
            Ok(Staging::Staged(len)) => len,
            Ok(Staging::Due(now)) => {
                let _ = self.drain_all_outside_lock();
                return self.write_locked(Some(now), data, urgent);
            }
            Ok(Staging::Full) | Err(_) => {
                // What this thread staged before must still come first.
                let _ = self.drain_all_outside_lock();
                return self.write_locked(now, data, urgent);
            }
        };
        if urgent {
            return self.flush_outside_lock();
        }
        if len >= staged.stage_cap as u64
            && !staged.asked.load(Relaxed)
            && !staged.asked.swap(true, AcqRel)
        {
            self.signal.write_behind();
        }
        Ok(())
    }

    /// Moves one stage's events toward the file. Less than half a buffer is copied into
    /// the shared buffer, making room first if needed (a full shared buffer is handed back
    /// as a [`Flush`] for the caller to finish); more is written straight from the ring
    /// (no copy), after what the shared buffer holds.
    fn absorb<'a>(&self, buffer: &'a Buffer, st: &mut State, stage: &Stage) -> Option<Flush<'a>> {
        // Up to what is published now: the stage's thread may keep staging meanwhile,
        // and what it adds waits for the next drain, so the room made here is enough.
        let head = stage.head();
        let len = stage.len_to(head);
        if len == 0 {
            return None;
        }
        if len < buffer.cap / 2 {
            let pending =
                if st.buf.len() + len > buffer.cap { self.start_flush(buffer, st) } else { None };
            st.buf_events += stage.drain_to(&mut st.buf, head);
            return pending;
        }
        match self.start_flush(buffer, st) {
            Some(flush) => {
                let _ = flush.finish(self);
            }
            None => drop(self.quiesce(st)),
        }
        // Written inside `drain_with`: the room goes back to the thread only after. A
        // failure is counted (`write_file`); it concerns events already accepted.
        stage.drain_with(head, |first, second, events| {
            let _ = self.write_file(st, first, second, events);
        });
        None
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
        stages.retain(|s| {
            if Arc::strong_count(s) > 1 {
                return true;
            }
            // Its thread has ended: its last push came before its handle's release (the
            // `Arc`'s decrement), which this fence makes visible before the length is read
            // (the count's load is relaxed; on x86 the fence costs nothing).
            std::sync::atomic::fence(Acquire);
            s.len() > 0
        });
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
        hints.gate_at.store(super::rotate::gate_from(st).saturating_add(self.min_age), Relaxed);
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
            return self.write_file(&mut st, data, &[], 1);
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
            match pending {
                Some(flush) => {
                    let _ = flush.finish(self);
                }
                None => drop(self.quiesce(&mut st)),
            }
            return self.write_file(&mut st, data, &[], 1);
        }
        st.buf.extend_from_slice(data);
        st.buf_events += 1;
        drop(st);
        if let Some(flush) = pending {
            // Written behind; its failure is counted, and concerns earlier events.
            flush.hand_off(self);
        }
        if urgent {
            return self.flush_outside_lock();
        }
        Ok(())
    }

    /// Writes `data` (holding `events` events) to the file, under the state lock. On
    /// failure the events whole in the file count as written, the rest as lost (a line
    /// cut short is ended with a newline; the file is never cut back).
    /// `more` follows `data` in the same write (a stage's bytes that wrap past its ring's
    /// end), usually empty.
    fn write_file(&self, st: &mut State, data: &[u8], more: &[u8], events: u64) -> io::Result<()> {
        if st.file.is_none() {
            self.reopen(st);
        }
        let result = match &st.file {
            Some(file) => self.shared.append_parts(file, data, more),
            None => Err(Torn::nothing(io::Error::other("the log file could not be reopened"))),
        };
        let len = (data.len() + more.len()) as u64;
        match result {
            Ok(()) => {
                st.disk += len;
                st.stats.events_written += events;
                st.stats.bytes_written += len;
                Ok(())
            }
            Err(torn) => {
                let (whole, whole_bytes) = torn.whole(data, more, events);
                st.disk += torn.on_disk();
                st.stats.events_written += whole;
                st.stats.bytes_written += whole_bytes;
                st.stats.write_errors += 1;
                st.stats.lost_events += events - whole;
                let e = torn.error;
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
        write_behind(self, &mut io);
        if st.buf.is_empty() {
            // Empty records, if any, are written as soon as they are flushed: nothing to do.
            st.stats.events_written += std::mem::take(&mut st.buf_events);
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
        write_behind(self, &mut io);
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

    /// The background thread's part of write-behind: writes a handed-off buffer unless a
    /// writer already did.
    /// In staged mode it also drains the stages when one asked for it.
    pub(super) fn write_handed_off(&self) {
        if let Some(buffer) = self.mode.buffer() {
            write_behind(self, &mut buffer.io.lock());
        }
        if let Mode::Staged(staged) = &self.mode {
            if staged.asked.swap(false, AcqRel) {
                let _ = self.drain_all_outside_lock();
            }
        }
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
/// `more` (usually empty) follows `data` in the same `writev(2)`; without it, a plain
/// `write(2)` (`writev` costs the kernel more per call: 1.10 × instead of 1.02 ×
/// `tracing-appender` in direct mode, measured).
pub(super) fn write_whole(file: &File, data: &[u8], more: &[u8]) -> Result<(), Box<Torn>> {
    let mut f = file;
    if more.is_empty() {
        let mut done = 0;
        while done < data.len() {
            match f.write(&data[done..]) {
                Ok(0) => {
                    return Err(Torn::after(f, [data, more], done, io::ErrorKind::WriteZero.into()))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Torn::after(f, [data, more], done, e)),
            }
        }
        return Ok(());
    }
    let mut parts = [io::IoSlice::new(data), io::IoSlice::new(more)];
    let mut left = &mut parts[..];
    io::IoSlice::advance_slices(&mut left, 0); // skips an empty `data`
    let mut done = 0;
    while !left.is_empty() {
        match f.write_vectored(left) {
            Ok(0) => {
                return Err(Torn::after(f, [data, more], done, io::ErrorKind::WriteZero.into()))
            }
            Ok(n) => {
                done += n;
                io::IoSlice::advance_slices(&mut left, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Torn::after(f, [data, more], done, e)),
        }
    }
    Ok(())
}

/// A write that failed, perhaps part way: what reached the file, for the counts. Boxed in
/// results, so a write's `Result` stays one register wide on the hot path (a 24-byte
/// error is returned through memory: +1 % instructions per event in direct mode).
#[derive(Debug)]
pub(super) struct Torn {
    /// Bytes of the data that are in the file (a prefix of it).
    pub(super) written: usize,
    /// Whether a newline was added after them to end a torn line.
    pub(super) ended: bool,
    /// Why the write stopped.
    pub(super) error: io::Error,
}

impl Torn {
    /// A write that never started.
    pub(super) fn nothing(error: io::Error) -> Box<Self> {
        Box::new(Self { written: 0, ended: false, error })
    }

    /// Ends the torn line (best effort) after `written` bytes of `parts`, so the next
    /// event starts a line of its own; nothing when they end a line.
    fn after(mut f: &File, parts: [&[u8]; 2], written: usize, error: io::Error) -> Box<Self> {
        let last = written.checked_sub(1).and_then(|i| {
            let [data, more] = parts;
            if i < data.len() {
                data.get(i)
            } else {
                more.get(i - data.len())
            }
        });
        let ended = last.is_some_and(|&b| b != b'\n') && f.write(b"\n").is_ok_and(|n| n == 1);
        Box::new(Self { written, ended, error })
    }

    /// Bytes this write added to the file.
    pub(super) fn on_disk(&self) -> u64 {
        self.written as u64 + u64::from(self.ended)
    }

    /// Of the `events` events in `data` then `more`, how many are whole in the file
    /// (each ends with a newline; the one cut short is not), and their bytes.
    pub(super) fn whole(&self, data: &[u8], more: &[u8], events: u64) -> (u64, u64) {
        let (first, second) = if self.written <= data.len() {
            (&data[..self.written], &more[..0])
        } else {
            (data, &more[..(self.written - data.len()).min(more.len())])
        };
        let mut lines = 0u64;
        let mut bytes = 0usize;
        let mut offset = 0usize;
        for part in [first, second] {
            if let Some(last) = part.iter().rposition(|&b| b == b'\n') {
                lines += bytecount(&part[..=last]);
                bytes = offset + last + 1;
            }
            offset += part.len();
        }
        // Records without a newline are events too: never more than were written.
        (lines.min(events.saturating_sub(1)), bytes as u64)
    }
}

fn bytecount(part: &[u8]) -> u64 {
    part.iter().filter(|&&b| b == b'\n').count() as u64
}

impl From<Box<Torn>> for io::Error {
    fn from(t: Box<Torn>) -> Self {
        t.error
    }
}
