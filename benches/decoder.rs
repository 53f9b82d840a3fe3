//! Decoder throughput on telemetry lines: `cargo bench --bench decoder`.
//!
//! Reports MB/s (bytes group) and frames/s (elements group) for framing plus
//! parsing, the work the link's reader thread does on every line.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use punctum::protocol::{Decoded, FrameDecoder, PenMessage, PenState, Telemetry};
use std::hint::black_box;

const LINES: u32 = 20_000;

fn telemetry_wire() -> Vec<u8> {
    let mut wire = Vec::new();
    let mut scratch = String::new();
    for n in 0..LINES {
        let t = Telemetry {
            n,
            t_ms: 1_000_000 + n,
            state: PenState::Running,
            rpm: 6000 + i32::try_from(n % 7).unwrap_or(0),
            depth_um: 1000,
            current_ma: 260,
            temp_dc: 301,
        };
        PenMessage::Telemetry(t)
            .encode_into(&mut scratch, &mut wire)
            .expect("framable");
    }
    wire
}

fn decode(wire: &[u8], read_size: usize) -> u64 {
    let mut decoder = FrameDecoder::new();
    let mut sum = 0u64;
    for chunk in wire.chunks(read_size) {
        decoder.feed(chunk, |d| {
            if let Decoded::Frame(body) = d
                && let Ok(PenMessage::Telemetry(t)) = PenMessage::parse(body)
            {
                sum += u64::from(t.n);
            }
        });
    }
    sum
}

fn bench(c: &mut Criterion) {
    let wire = telemetry_wire();
    let mut bytes = c.benchmark_group("decode_telemetry_bytes");
    bytes.throughput(Throughput::Bytes(wire.len() as u64));
    bytes.bench_function("64KiB_reads", |b| {
        b.iter(|| decode(black_box(&wire), 64 * 1024));
    });
    bytes.bench_function("100B_reads", |b| b.iter(|| decode(black_box(&wire), 100)));
    bytes.finish();
    let mut frames = c.benchmark_group("decode_telemetry_frames");
    frames.throughput(Throughput::Elements(u64::from(LINES)));
    frames.bench_function("64KiB_reads", |b| {
        b.iter(|| decode(black_box(&wire), 64 * 1024));
    });
    frames.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
