//! One thread's stage (staged mode): a single-producer, single-consumer ring of bytes that
//! its thread fills and the writer drains, with no lock and no atomic read-modify-write on
//! the event's path. The only `unsafe` code of the write modes' buffers.

use std::{
    cell::UnsafeCell,
    sync::atomic::{
        AtomicU64,
        Ordering::{Acquire, Relaxed, Release},
    },
};

use super::sync::Padded;

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
pub(super) struct Stage {
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
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_power_of_two();
        Self {
            ring: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            mask: capacity as u64 - 1,
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
        }
    }

    /// Bytes staged and not drained yet (a snapshot).
    pub(super) fn len(&self) -> u64 {
        let (head, tail) = (self.head.load(Acquire), self.tail.load(Acquire));
        head.wrapping_sub(tail) & POS_MASK
    }

    /// Producer only (the stage's own thread): appends one event. Returns the bytes
    /// staged after it, or `None` (nothing written) when there is no room.
    #[inline]
    pub(super) fn push(&self, data: &[u8]) -> Option<u64> {
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
    pub(super) fn head(&self) -> u64 {
        self.head.load(Acquire)
    }

    /// Producer only: bytes staged and not drained yet.
    #[inline]
    pub(super) fn staged(&self) -> u64 {
        self.head.load(Relaxed).wrapping_sub(self.tail.load(Acquire)) & POS_MASK
    }

    /// Bytes between the last drain and `head`.
    pub(super) fn len_to(&self, head: u64) -> usize {
        (head.wrapping_sub(self.tail.load(Relaxed)) & POS_MASK) as usize
    }

    /// Consumer only (under the state lock): appends everything staged up to `head` (a
    /// [`Stage::head`]) to `out` and returns the number of events it held. Events staged
    /// after that stay for the next drain.
    pub(super) fn drain_to(&self, out: &mut Vec<u8>, head: u64) -> u64 {
        self.drain_with(head, |first, second, _| {
            out.extend_from_slice(first);
            out.extend_from_slice(second);
        })
    }

    /// Consumer only (under the state lock): hands everything staged up to `head` to
    /// `take` as two slices (the second is empty unless the bytes wrap past the ring's
    /// end) with the number of events they hold, gives the room back once `take`
    /// returns, and returns that number.
    pub(super) fn drain_with(&self, head: u64, take: impl FnOnce(&[u8], &[u8], u64)) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::Stage;
    use crate::writer::shared::write_whole;
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
            write_whole(&file, first, second).unwrap();
        });
        assert_eq!((lens, events), ((24, 16), 1));
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(stage.len(), 0, "the room is given back");
        // An empty first part (nothing before the ring's end) is skipped.
        write_whole(&file, &[], b"!").unwrap();
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
