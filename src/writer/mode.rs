//! The write modes: how an event gets from the caller into the file.
//!
//! - [`Mode::Direct`]: one `write(2)` per event, under the state lock.
//! - [`Mode::Buffered`]: events are copied into [`State::buf`] under the state lock; a full
//!   buffer is swapped for a spare and written after the lock is released.
//! - [`Mode::Staged`]: buffered, with a stage per thread in front of the shared buffer, so
//!   the common event touches nothing another thread writes, and takes no lock: a stage
//!   is a ring its thread fills and publishes with one store (see [`Stage`]).
//!
//! One `match` on the mode per event chooses the path; each variant holds only what its
//! mode needs. This file owns the buffer and its spare ([`State::buf`], [`Spare`]) and the
//! list of stages; it also defines [`State`], what the state lock guards, whose other
//! parts it changes only through their own methods: the open file (`open.rs`), the
//! rotation's times (`trigger.rs`), the counters. Everything that needs no flush in flight
//! (following another writer's rotation among them) goes through here, since only here is
//! a flush in flight known.

use std::{
    cell::RefCell,
    fs::File,
    io,
    path::Path,
    sync::{
        atomic::{
            AtomicBool, AtomicU64,
            Ordering::{AcqRel, Acquire, Relaxed},
        },
        Arc,
    },
};

use super::{
    open::ActiveFile,
    shared::{Shared, Torn},
    stage::Stage,
    stats::Stats,
    sync::{Mutex, MutexGuard, Padded},
    trigger::{Rotation, Trigger},
    worker::Signal,
};
use crate::policy::WriteMode;

/// The most a stage asks to be drained at: its ring (four times this, 8 MiB) then holds
/// fewer than 2^24 events of a byte or more, which its position words count (`POS_BITS`);
/// and a thread's stage stays that size however large the buffer.
const MAX_STAGE_CAP: usize = 2 << 20;

/// What the state lock guards: what changes as events are written.
#[derive(Debug)]
pub(super) struct State {
    /// The open file and its identity (`open.rs`).
    pub(super) file: ActiveFile,
    /// When the file started and is due, the last copy (`trigger.rs`).
    pub(super) rotation: Rotation,
    /// Bytes waiting in memory (buffered and staged modes; always empty in direct mode);
    /// capacity reserved once.
    pub(super) buf: Vec<u8>,
    pub(super) buf_events: u64,
    pub(super) stats: Stats,
}

/// What the modes write through, besides the state: the log's path (for messages), the
/// mapping (the append), the trigger (its hints, a followed rotation's times) and the
/// background thread (write-behind).
#[derive(Clone, Copy)]
pub(super) struct Sink<'a> {
    pub(super) path: &'a Path,
    pub(super) shared: &'a Shared,
    pub(super) trigger: &'a Trigger,
    pub(super) signal: &'a Signal,
}

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

/// What the buffered modes add: the shared buffer itself is [`State::buf`], under the
/// state lock; this is its capacity and the spare it is swapped with when full.
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
}

/// A stage, shared by its thread (which fills it) and its writer (which drains it).
type SharedStage = Arc<Stage>;

/// Where the staged fast path left an event.
pub(super) enum Staging {
    /// In the thread's stage, which now holds this many bytes.
    Staged(u64),
    /// Nowhere yet: the log may be due at this time.
    Due(i64),
    /// Nowhere yet: the stage is full (or the thread has no stage table any more).
    Full,
}

/// Where [`Buffer::copy`] left an event.
pub(super) enum Copied<'a> {
    /// In the shared buffer; a full buffer swapped out before it, if any, to be written
    /// once the state lock is released.
    Held(Option<Flush<'a>>),
    /// Larger than the whole buffer: written straight to the file.
    Written(io::Result<()>),
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
    /// Bytes counted in the open file's size whose write failed (never in the file).
    shrink: u64,
    pub(super) write_errors: u64,
    pub(super) lost_events: u64,
    pub(super) lost_bytes: u64,
    pub(super) last_error: Option<String>,
}

/// The events of failed flushes, with the io lock held (`None`: direct mode, none).
pub(super) fn lost(io: Option<&Spare>) -> u64 {
    io.map_or(0, |io| io.lost_events)
}

/// A full buffer on its way to the file; holds the io lock until written.
pub(super) struct Flush<'a> {
    io: MutexGuard<'a, Spare>,
    file: Option<Arc<File>>,
    events: u64,
}

impl Flush<'_> {
    pub(super) fn finish(mut self, sink: &Sink<'_>) -> io::Result<()> {
        write_spare(sink, &mut self.io, self.file.as_deref(), self.events)
    }

    /// Leaves the write to the background thread (the event's thread goes on at once);
    /// the next holder of the io lock writes it if that thread has not yet.
    pub(super) fn hand_off(mut self, signal: &Signal) {
        self.io.behind = Some((self.file.take(), self.events));
        drop(self);
        signal.write_behind();
    }
}

/// Writes the spare buffer (`events` events) to `file`, counting a failure, and empties it.
/// `start_flush` counted it all as written: a failure takes back what did not reach the
/// file (the events not whole in it; their bytes, from the open file's size too, when the
/// io lock is next taken under the state lock). The file itself is never cut back.
fn write_spare(
    sink: &Sink<'_>,
    io: &mut Spare,
    file: Option<&File>,
    events: u64,
) -> io::Result<()> {
    let result = match file {
        Some(file) => sink.shared.append(file, &io.buf),
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
            io.last_error = Some(format!("writing {}: {}", sink.path.display(), torn.error));
            Err(torn.error)
        }
    };
    io.buf.clear();
    result
}

/// Writes a buffer handed to the background thread, if it is still waiting (io lock held).
fn write_behind(sink: &Sink<'_>, io: &mut Spare) {
    if let Some((file, events)) = io.behind.take() {
        let _ = write_spare(sink, io, file.as_deref(), events);
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

    pub(super) fn is_staged(&self) -> bool {
        matches!(self, Mode::Staged(_))
    }

    /// At drop: moves every thread's staged events to the end of `buf`.
    pub(super) fn take_stages(&mut self, buf: &mut Vec<u8>) {
        if let Mode::Staged(staged) = self {
            for stage in staged.stages.get_mut().iter() {
                stage.drain_to(buf, stage.head());
            }
        }
    }

    /// Waits for a flush in flight (takes the io lock, in the buffered modes) and takes
    /// back what failed flushes counted in the open file's size, so that it is the bytes
    /// really in the file for as long as the guard is kept.
    pub(super) fn quiesce(&self, sink: &Sink<'_>, st: &mut State) -> Option<MutexGuard<'_, Spare>> {
        Some(self.buffer()?.quiesce(sink, st))
    }

    /// Follows another writer's rotation, if there was one since this one looked.
    #[inline]
    pub(super) fn follow_if_rotated(&self, sink: &Sink<'_>, st: &mut State) {
        let generation = sink.shared.generation();
        if generation != st.file.generation() {
            self.follow(sink, st, generation);
        }
    }

    /// Moves to the active file another writer started (see [`ActiveFile::follow`]), with
    /// no flush in flight into the old file. Cold: a generation change.
    #[cold]
    pub(super) fn follow(&self, sink: &Sink<'_>, st: &mut State, generation: u64) {
        let io = self.quiesce(sink, st); // no flush in flight into the old file
        let lost = lost(io.as_deref());
        let (path, shared, trigger) = (sink.path, sink.shared, sink.trigger);
        st.file.follow(path, shared, trigger, &mut st.rotation, &mut st.stats, generation, lost);
        drop(io);
        trigger.publish(&st.rotation, st.buf.len());
    }

    /// Moves every thread's staged events into the shared buffer, writing it out as often
    /// as needed (under the lock: flushes, ERROR events and rotations only). Stages of
    /// threads that have ended are dropped once empty.
    pub(super) fn drain_all(&self, sink: &Sink<'_>, st: &mut State) -> io::Result<()> {
        let Mode::Staged(staged) = self else {
            return Ok(());
        };
        let mut result = Ok(());
        let mut stages = staged.stages.lock();
        for stage in stages.iter() {
            if let Some(flush) = staged.absorb(self, sink, st, stage) {
                if let Err(e) = flush.finish(sink) {
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
        sink.trigger.publish(&st.rotation, st.buf.len());
        result
    }

    /// Writes out the buffer while the caller keeps the state lock (rotation, sync).
    pub(super) fn flush_buf(&self, sink: &Sink<'_>, st: &mut State) -> io::Result<()> {
        match self.buffer().and_then(|buffer| buffer.start_flush(self, sink, st)) {
            Some(flush) => flush.finish(sink),
            None => Ok(()),
        }
    }

    /// The background thread's part of write-behind: writes a handed-off buffer unless a
    /// writer already did. Returns whether, in staged mode, a stage asked for the stages
    /// to be drained (the caller drains them, under the state lock).
    pub(super) fn write_handed_off(&self, sink: &Sink<'_>) -> bool {
        if let Some(buffer) = self.buffer() {
            write_behind(sink, &mut buffer.io.lock());
        }
        match self {
            Mode::Staged(staged) => staged.asked.swap(false, AcqRel),
            _ => false,
        }
    }
}

// === impl Buffer ===

impl Buffer {
    /// Copies one event into the shared buffer if it fits (the common case, which needs
    /// nothing but the state); `false` if not, and then [`Buffer::copy`] makes room.
    #[inline]
    pub(super) fn try_copy(&self, st: &mut State, data: &[u8]) -> bool {
        if st.buf.len() + data.len() > self.cap {
            return false;
        }
        st.buf.extend_from_slice(data);
        st.buf_events += 1;
        true
    }

    /// Copies one event into the shared buffer, under the state lock. A full buffer is
    /// swapped for the empty spare first and handed back, to be written by the caller
    /// *after* the state lock is released, so other threads keep copying while the write
    /// runs (the io lock keeps flushes in order).
    pub(super) fn copy<'a>(
        &'a self,
        mode: &Mode,
        sink: &Sink<'_>,
        st: &mut State,
        data: &[u8],
    ) -> Copied<'a> {
        let mut pending = None;
        if st.buf.len() + data.len() > self.cap {
            pending = self.start_flush(mode, sink, st);
        }
        if data.len() > self.cap {
            // Larger than the whole buffer: straight to the file, after what was pending.
            match pending {
                Some(flush) => {
                    let _ = flush.finish(sink);
                }
                None => drop(self.quiesce(sink, st)),
            }
            let written = st.file.write(sink.path, sink.shared, &mut st.stats, [data, &[]], 1);
            return Copied::Written(written);
        }
        st.buf.extend_from_slice(data);
        st.buf_events += 1;
        Copied::Held(pending)
    }

    /// Hands the buffered events to a [`Flush`]: takes the io lock (waiting for a flush
    /// still in flight), swaps the full buffer for the empty spare, and accounts for it.
    pub(super) fn start_flush(
        &self,
        mode: &Mode,
        sink: &Sink<'_>,
        st: &mut State,
    ) -> Option<Flush<'_>> {
        // Into the file the other writers write now, if one of them rotated.
        mode.follow_if_rotated(sink, st);
        let mut io = self.io.lock();
        write_behind(sink, &mut io);
        if st.buf.is_empty() {
            // Empty records, if any, are written as soon as they are flushed: nothing to do.
            st.stats.events_written += std::mem::take(&mut st.buf_events);
            return None;
        }
        st.file.take_back(std::mem::take(&mut io.shrink));
        std::mem::swap(&mut st.buf, &mut io.buf);
        let events = std::mem::take(&mut st.buf_events);
        st.file.add_disk(io.buf.len() as u64);
        st.stats.events_written += events;
        st.stats.bytes_written += io.buf.len() as u64;
        let file = st.file.for_flush(sink.path, &st.stats);
        Some(Flush { io, file, events })
    }

    /// [`Mode::quiesce`] of the buffered modes.
    fn quiesce(&self, sink: &Sink<'_>, st: &mut State) -> MutexGuard<'_, Spare> {
        let mut io = self.io.lock();
        write_behind(sink, &mut io);
        st.file.take_back(std::mem::take(&mut io.shrink));
        io
    }
}

// === impl Staged ===

impl Staged {
    /// The largest event that is staged (a larger one takes the locked path).
    #[inline]
    pub(super) fn stage_cap(&self) -> usize {
        self.stage_cap
    }

    /// The lock-free fast path: the event goes to this thread's stage, touching nothing
    /// another thread writes, unless the log may be due (counting what this thread
    /// staged: [`Trigger::may_rotate`]) or the stage is full.
    #[inline]
    pub(super) fn stage(
        &self,
        trigger: &Trigger,
        shared: &Shared,
        now: Option<i64>,
        data: &[u8],
    ) -> Staging {
        // `try_with`: a thread being torn down (an event logged from another thread-local's
        // destructor) has no stage table any more; its events take the locked path.
        STAGES
            .try_with(|cell| {
                let mut table = cell.borrow_mut();
                let stage = match table.iter().find(|(id, _)| *id == self.id) {
                    Some((_, stage)) => stage,
                    None => {
                        // Room for a drain's worth and three more while it comes (the
                        // background thread may be in a maintenance step; measured: with
                        // one more, the thread drained its own stage often enough to cost
                        // 5 % of a rotating run).
                        let stage = Arc::new(Stage::new(4 * self.stage_cap));
                        self.stages.lock().push(Arc::clone(&stage));
                        table.retain(|(_, s)| Arc::strong_count(s) > 1); // writers gone
                        table.push((self.id, stage));
                        &table.last().expect("just pushed").1
                    }
                };
                let len = data.len() + stage.staged() as usize;
                if let Some(now) = trigger.may_rotate(shared, now, len) {
                    return Staging::Due(now);
                }
                stage.push(data).map_or(Staging::Full, Staging::Staged)
            })
            .unwrap_or(Staging::Full)
    }

    /// A stage now holding `len` bytes asks the background thread to drain the stages
    /// once it reaches `stage_cap`, unless a drain was asked for already.
    #[inline]
    pub(super) fn ask_drain(&self, len: u64, signal: &Signal) {
        if len >= self.stage_cap as u64
            && !self.asked.load(Relaxed)
            && !self.asked.swap(true, AcqRel)
        {
            signal.write_behind();
        }
    }

    /// Moves one stage's events toward the file. Less than half a buffer is copied into
    /// the shared buffer, making room first if needed (a full shared buffer is handed back
    /// as a [`Flush`] for the caller to finish); more is written straight from the ring
    /// (no copy), after what the shared buffer holds.
    fn absorb<'a>(
        &'a self,
        mode: &Mode,
        sink: &Sink<'_>,
        st: &mut State,
        stage: &Stage,
    ) -> Option<Flush<'a>> {
        let buffer = &self.buffer;
        // Up to what is published now: the stage's thread may keep staging meanwhile,
        // and what it adds waits for the next drain, so the room made here is enough.
        let head = stage.head();
        let len = stage.len_to(head);
        if len == 0 {
            return None;
        }
        if len < buffer.cap / 2 {
            let pending = if st.buf.len() + len > buffer.cap {
                buffer.start_flush(mode, sink, st)
            } else {
                None
            };
            st.buf_events += stage.drain_to(&mut st.buf, head);
            return pending;
        }
        match buffer.start_flush(mode, sink, st) {
            Some(flush) => {
                let _ = flush.finish(sink);
            }
            None => drop(buffer.quiesce(sink, st)),
        }
        // Written inside `drain_with`: the room goes back to the thread only after. A
        // failure is counted (`ActiveFile::write`); it concerns events already accepted.
        stage.drain_with(head, |first, second, events| {
            let _ = st.file.write(sink.path, sink.shared, &mut st.stats, [first, second], events);
        });
        None
    }
}
