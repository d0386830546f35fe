//! The byte writers of the line formats: decimal digits stored straight into the line,
//! and short copies made with two overlapping fixed-size moves. The only `unsafe` code of
//! the formats, each block with the bound that makes it sound.

/// "00" to "99".
static DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// Appends `value` in decimal. The digits are stored straight into `out`, from the last:
/// formatted into a buffer of their own (as `itoa` does) and then copied, they were read back wider
/// than they were stored, which the processor cannot forward (a quarter of the time of
/// an event's two integer fields).
#[inline]
pub(super) fn push_u64(out: &mut Vec<u8>, value: u64) {
    // SAFETY: `n` is `value`'s number of digits, at most 20 for a u64.
    unsafe { push_digits(out, value, value.checked_ilog10().map_or(1, |log| log as usize + 1)) }
}

/// Appends `value` as exactly `n` digits, zeros in front.
///
/// # Safety
///
/// `n` is at least `value`'s number of digits, and at most 20: the digits are stored by
/// index from `n` down, and fewer than `value` needs would index below the vector's end.
#[inline]
pub(super) unsafe fn push_digits(out: &mut Vec<u8>, mut value: u64, n: usize) {
    debug_assert!(n <= 20 && n >= value.checked_ilog10().map_or(1, |log| log as usize + 1));
    out.reserve(20);
    let len = out.len();
    // SAFETY: `n <= 20` bytes are written at `[len, len + n)`, inside the reserved room,
    // each once (the index `i` only goes down from `n` to 0: `value` has at most `n`
    // digits), before `set_len`.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        let mut i = n;
        while value >= 100 {
            let pair = (value % 100) as usize * 2;
            value /= 100;
            i -= 2;
            dst.add(i).copy_from_nonoverlapping(DIGIT_PAIRS.as_ptr().add(pair), 2);
        }
        if value >= 10 {
            i -= 2;
            dst.add(i).copy_from_nonoverlapping(DIGIT_PAIRS.as_ptr().add(value as usize * 2), 2);
        } else {
            i -= 1;
            *dst.add(i) = b'0' + value as u8;
        }
        while i > 0 {
            i -= 1;
            *dst.add(i) = b'0';
        }
        out.set_len(len + n);
    }
}

/// Appends `s` to `out`. Most pieces of a line are short (a field's `, "name": `, a
/// number, a word): up to 32 bytes are copied with two overlapping fixed-size moves,
/// inline, instead of a call to `memcpy` (about a tenth of an event's time went to those
/// calls, by `perf`).
#[inline(always)]
pub(super) fn put(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n > 32 {
        out.extend_from_slice(s);
        return;
    }
    out.reserve(32);
    let len = out.len();
    let (src, dst) = (s.as_ptr(), out.as_mut_ptr());
    // SAFETY: `out` has room for 32 more bytes (reserved), and every read is inside `s`:
    // each pair of moves covers `[0, n)` from both ends, with overlap, for its range of `n`.
    unsafe {
        let dst = dst.add(len);
        if n >= 16 {
            let (a, b) = (
                src.cast::<u128>().read_unaligned(),
                src.add(n - 16).cast::<u128>().read_unaligned(),
            );
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
        } else if n >= 8 {
            let (a, b) =
                (src.cast::<u64>().read_unaligned(), src.add(n - 8).cast::<u64>().read_unaligned());
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        } else if n >= 4 {
            let (a, b) =
                (src.cast::<u32>().read_unaligned(), src.add(n - 4).cast::<u32>().read_unaligned());
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        } else if n > 0 {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        out.set_len(len + n);
    }
}
