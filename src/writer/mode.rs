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
    cell::{RefCell, UnsafeCell},
    fs::File,
    io::{self, Write},
    sync::{
        atomic::{
            AtomicBool, AtomicI64, AtomicU64,
            Ordering::{AcqRel, Acquire, Relaxed, Release},
        },
        Arc,
    },
};

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

/// One thread's staged events for one file: a ring of bytes that its thread fills and
/// the writer drains, with no lock and no atomic read-modify-write on the event's path.
///
/// Single producer, single consumer. The producer is the thread the stage belongs to: it
/// is reached for writing only through that thread's stage table (`STAGES`). Consumers
/// (drains) run only under the writer's state lock, so one at a time. Positions are
/// counters that only grow, packed with an event count into one word each: `head`
/// (written by the producer only) and `tail` (by the consumer only). The producer writes
/// bytes only in `[head, tail + capacity)` and publishes them by storing `head` (release);
/// the consumer reads only `[tail, head)` after loading `head` (acquire) and gives the
/// room back by storing `tail` (release) after its reads, which the producer loads
/// (acquire) before reusing it. So no byte is ever written and read at once.
struct Stage {
    ring: Box<[UnsafeCell<u8>]>,
    /// `ring.len() - 1` (a power of two, minus one).
    mask: u64,
    /// Producer side: events and bytes staged so far.
    head: Padded<AtomicU64>,
    /// Consumer side: events and bytes drained so far.
    tail: Padded<AtomicU64>,
}

// SAFETY: the ring's bytes are only touched as the protocol above allows: the producer
// (one thread: the owner of the stage table the stage is in) writes free bytes, consumers
// (serialized by the state lock) read published ones; `head`/`tail` order the two.
unsafe impl Sync for Stage {}

/// Low bits of a position word: bytes; high bits: events. Both wrap; differences are
/// taken modulo their width, and a stage never holds 2^40 bytes or 2^24 events (its ring
/// is at most 8 MiB: `MAX_STAGE_CAP`).
const POS_BITS: u32 = 40;
const POS_MASK: u64 = (1 << POS_BITS) - 1;

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("capacity", &self.ring.len())
            .field("len", &self.len())
            .finish()
    }
}

impl Stage {
    /// A stage holding at least `capacity` bytes.
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_power_of_two();
        Self {
            ring: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            mask: capacity as u64 - 1,
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
        }
    }

    /// Bytes staged and not drained yet (a snapshot).
    fn len(&self) -> u64 {
        let (head, tail) = (self.head.load(Acquire), self.tail.load(Acquire));
        head.wrapping_sub(tail) & POS_MASK
    }

    /// Producer only (the stage's own thread): appends one event. Returns the bytes
    /// staged after it, or `None` (nothing written) when there is no room.
    #[inline]
    fn push(&self, data: &[u8]) -> Option<u64> {
        let head = self.head.load(Relaxed);
        let tail = self.tail.load(Acquire);
        let used = head.wrapping_sub(tail) & POS_MASK;
        let len = data.len() as u64;
        if used + len > self.mask + 1 {
            return None;
        }
        let at = (head & self.mask) as usize;
        let first = data.len().min(self.ring.len() - at);
        let base = UnsafeCell::raw_get(self.ring.as_ptr());
        // SAFETY: `[head, head + len)` is free (at most `capacity - used` bytes past the
        // head), and only this thread writes there; the two pieces are inside the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(at), first);
            if first < data.len() {
                std::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, data.len() - first);
            }
        }
        let events = (head >> POS_BITS).wrapping_add(1) << POS_BITS;
        self.head.store(events | (head.wrapping_add(len) & POS_MASK), Release);
        Some(used + len)
    }

    /// What has been published so far: drain up to here with [`Stage::drain_to`]. Always
    /// on an event's end.
    #[inline]
    fn head(&self) -> u64 {
        self.head.load(Acquire)
    }

    /// Producer only: bytes staged and not drained yet.
    #[inline]
    fn staged(&self) -> u64 {
        self.head.load(Relaxed).wrapping_sub(self.tail.load(Acquire)) & POS_MASK
    }

    /// Bytes between the last drain and `head`.
    fn len_to(&self, head: u64) -> usize {
        (head.wrapping_sub(self.tail.load(Relaxed)) & POS_MASK) as usize
    }

    /// Consumer only (under the state lock): appends everything staged up to `head` (a
    /// [`Stage::head`]) to `out` and returns the number of events it held. Events staged
    /// after that stay for the next drain.
    fn drain_to(&self, out: &mut Vec<u8>, head: u64) -> u64 {
        self.drain_with(head, |first, second, _| {
            out.extend_from_slice(first);
            out.extend_from_slice(second);
        })
    }

    /// Consumer only (under the state lock): hands everything staged up to `head` to
    /// `take` as two slices (the second is empty unless the bytes wrap past the ring's
    /// end) with the number of events they hold, gives the room back once `take`
    /// returns, and returns that number.
    fn drain_with(&self, head: u64, take: impl FnOnce(&[u8], &[u8], u64)) -> u64 {
        let tail = self.tail.load(Relaxed);
        let len = (head.wrapping_sub(tail) & POS_MASK) as usize;
        if len == 0 {
            return 0;
        }
        let events =
            ((head >> POS_BITS).wrapping_sub(tail >> POS_BITS)) & ((1 << (64 - POS_BITS)) - 1);
        let at = (tail & self.mask) as usize;
        let first = len.min(self.ring.len() - at);
        let base = UnsafeCell::raw_get(self.ring.as_ptr()).cast_const();
        // SAFETY: `[tail, head)` was published by the producer (acquire in `head`) and is
        // not written again before `tail` moves past it (release below, after `take`).
        unsafe {
            take(
                std::slice::from_raw_parts(base.add(at), first),
                std::slice::from_raw_parts(base, len - first),
                events,
            );
        }
        self.tail.store(head, Release);
        events
    }
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

#[cfg(test)]
mod tests {
    use super::Stage;
    use std::sync::{atomic::AtomicBool, Arc, Mutex};

    fn record(i: u64) -> Vec<u8> {
        // Lengths 1 to 37: records straddle the ring's end at every offset.
        let len = 1 + (i % 37) as usize;
        (0..len).map(|k| (i as usize + k) as u8).collect()
    }

    #[test]
    fn a_stage_gives_back_what_was_staged_in_order_across_its_end() {
        let stage = Stage::new(64);
        let (mut want, mut got, mut events) = (Vec::new(), Vec::new(), 0);
        for i in 0..10_000u64 {
            let data = record(i);
            if stage.push(&data).is_none() {
                events += stage.drain_to(&mut got, stage.head());
                assert_eq!(stage.len(), 0);
                stage.push(&data).expect("room after a drain");
            }
            want.extend_from_slice(&data);
            if i % 7 == 0 {
                events += stage.drain_to(&mut got, stage.head());
            }
        }
        events += stage.drain_to(&mut got, stage.head());
        assert_eq!(got, want);
        assert_eq!(events, 10_000);
    }

    #[test]
    fn a_stage_that_wraps_is_written_whole_in_one_piece() {
        let stage = Stage::new(64);
        let mut out = Vec::new();
        stage.push(&[0; 40]).unwrap();
        stage.drain_to(&mut out, stage.head());
        // 40 bytes from offset 40 of 64: 24 before the ring's end, 16 after.
        let data: Vec<u8> = (0..40).collect();
        stage.push(&data).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut lens = (0, 0);
        let events = stage.drain_with(stage.head(), |first, second, _| {
            lens = (first.len(), second.len());
            super::write_whole(&file, first, second).unwrap();
        });
        assert_eq!((lens, events), ((24, 16), 1));
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(stage.len(), 0, "the room is given back");
        // An empty first part (nothing before the ring's end) is skipped.
        super::write_whole(&file, &[], b"!").unwrap();
        assert_eq!(std::fs::read(&path).unwrap().last(), Some(&b'!'));
    }

    // Guards the write straight from the ring (`absorb`): the bytes being written are the
    // ring itself, so its thread must not get their room back until the write is done.
    #[test]
    fn a_stage_being_written_gives_its_room_back_only_after() {
        let stage = Stage::new(16);
        assert_eq!(stage.push(&[1; 16]), Some(16));
        let events = stage.drain_with(stage.head(), |first, second, _| {
            assert_eq!(stage.push(&[2]), None, "room given back during the write");
            assert_eq!(stage.len(), 16);
            assert_eq!([first, second].concat(), [1; 16]);
        });
        assert_eq!(events, 1);
        assert_eq!(stage.push(&[2; 16]), Some(16), "and all of it after");
    }

    #[test]
    fn a_full_stage_refuses_and_writes_nothing() {
        let stage = Stage::new(16);
        assert_eq!(stage.push(&[1; 10]), Some(10));
        assert_eq!(stage.push(&[2; 7]), None);
        assert_eq!(stage.push(&[3; 6]), Some(16));
        let mut out = Vec::new();
        assert_eq!(stage.drain_to(&mut out, stage.head()), 2);
        assert_eq!(out, [[1; 10].as_slice(), &[3; 6]].concat());
    }

    #[test]
    fn a_drain_takes_whole_records_while_the_owner_keeps_staging() {
        // The owner stages numbered records as fast as it can; another thread drains
        // (one drain at a time, as under the state lock). Every record comes out once,
        // whole, in order.
        let stage = Arc::new(Stage::new(256));
        let out = Arc::new(Mutex::new((Vec::new(), 0u64)));
        let done = Arc::new(AtomicBool::new(false));
        let drainer = {
            let (stage, out, done) = (Arc::clone(&stage), Arc::clone(&out), Arc::clone(&done));
            std::thread::spawn(move || loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let mut out = out.lock().unwrap();
                let (bytes, events) = &mut *out;
                *events += stage.drain_to(bytes, stage.head());
                if finished {
                    break;
                }
            })
        };
        const N: u64 = 200_000;
        for i in 0..N {
            let data = record(i);
            while stage.push(&data).is_none() {
                std::hint::spin_loop();
            }
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        drainer.join().unwrap();
        let (bytes, events) = &*out.lock().unwrap();
        assert_eq!(*events, N);
        let want: Vec<u8> = (0..N).flat_map(record).collect();
        assert!(bytes == &want, "the drained bytes differ from the staged ones");
    }
}
