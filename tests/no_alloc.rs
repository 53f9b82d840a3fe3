//! Decoding a telemetry line allocates nothing: measured with a counting allocator.
#![allow(unsafe_code)] // a GlobalAlloc wrapper cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use punctum::protocol::{Decoded, FrameDecoder, PenMessage, PenState, Telemetry};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_telemetry_allocates_nothing() {
    let mut wire = Vec::new();
    let mut scratch = String::new();
    for n in 0..1000u32 {
        let t = Telemetry {
            n,
            t_ms: n,
            state: PenState::Running,
            rpm: 6000,
            depth_um: 1000,
            current_ma: 260,
            temp_dc: 301,
        };
        PenMessage::Telemetry(t)
            .encode_into(&mut scratch, &mut wire)
            .expect("framable");
    }
    let mut frame_decoder = FrameDecoder::new();
    let mut decoded = 0u32;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    // Whole lines in one read, and lines split across reads (the partial buffer).
    for chunk in wire.chunks(97) {
        frame_decoder.feed(chunk, |d| {
            if let Decoded::Frame(body) = d
                && let Ok(PenMessage::Telemetry(t)) = PenMessage::parse(body)
            {
                assert_eq!(t.n, decoded);
                decoded += 1;
            }
        });
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(decoded, 1000);
    assert_eq!(after - before, 0, "decoding 1000 telemetry lines allocated");
}
