//! The binary's global allocator: the system's, except that over-aligned blocks are cut
//! out of plain ones instead of asked for with `posix_memalign`.
//!
//! Why: every zip entry gets its own deflate compressor, and zlib-rs allocates its state
//! (about 380 KB) 64-byte aligned. glibc serves each aligned request by splitting a larger
//! free block and freeing the pieces around it; small long-lived allocations (the zip's
//! directory, the manifest's entries) then settle in those pieces, so the next compressor
//! never fits where the last one was and the heap grows by about one compressor per file
//! (`snapshot create` of 20,000 small files took 6.2 GB). A plain block of the same size
//! each time is reused whole.

use std::alloc::{GlobalAlloc, Layout, System};

/// See the module docs.
pub struct Allocator;

/// Alignment every plain allocation has anyway (glibc, macOS, Windows on 64-bit).
const PLAIN: usize = 16;
const WORD: usize = std::mem::size_of::<usize>();

impl Allocator {
    /// The plain block behind an over-aligned `layout`: room to align, plus one word
    /// before the aligned address to find the block again.
    fn outer(layout: Layout) -> Option<Layout> {
        let size = layout.size().checked_add(layout.align())?.checked_add(WORD)?;
        Layout::from_size_align(size, PLAIN).ok()
    }
}

// SAFETY: every block handed out is `layout.size()` bytes at an address aligned to
// `layout.align()`, inside a block of the system allocator that stays allocated until
// `dealloc` gives back exactly that block (its address is kept in the word before).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN {
            return unsafe { System.alloc(layout) };
        }
        let Some(outer) = Self::outer(layout) else { return std::ptr::null_mut() };
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let addr = (base as usize + WORD).next_multiple_of(layout.align());
        let aligned = unsafe { base.add(addr - base as usize) };
        unsafe { aligned.cast::<usize>().sub(1).write_unaligned(base as usize) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= PLAIN {
            return unsafe { System.dealloc(ptr, layout) };
        }
        let base = unsafe { ptr.cast::<usize>().sub(1).read_unaligned() } as *mut u8;
        let outer = Self::outer(layout).expect("the layout was allocated");
        unsafe { System.dealloc(base, outer) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN {
            return unsafe { System.alloc_zeroed(layout) };
        }
        let ptr = unsafe { self.alloc(layout) };
        if !ptr.is_null() {
            unsafe { ptr.write_bytes(0, layout.size()) };
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let out = unsafe { self.alloc(new) };
        if !out.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, out, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_round_trip() {
        for align in [1, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 64, 380_032] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = Allocator.alloc_zeroed(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0);
                    assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                    p.write_bytes(0xAB, size);
                    let q = Allocator.realloc(p, layout, size * 2);
                    assert_eq!(q as usize % align, 0);
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xAB));
                    Allocator.dealloc(q, Layout::from_size_align(size * 2, align).unwrap());
                }
            }
        }
    }
}
