//! The technician PIN's cost: `cargo bench --bench technician_pin`.
//!
//! One verify is one Argon2id hash with the crate's defaults (19 MiB, 2 passes,
//! 1 lane); setting a PIN is the same hash plus the file's atomic write. The debug
//! figure (dependencies at opt-level 2, as in the tests) comes from
//! `cargo bench --profile dev --bench technician_pin`.

use criterion::{Criterion, criterion_group, criterion_main};
use punctum::store::{DataDir, TechnicianPin};
use std::hint::black_box;
use std::time::Duration;

/// A PIN that passes the rules.
const PIN: &str = "739146";

fn pin(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
    let pin = TechnicianPin::set(&dir, PIN, "bench").expect("set");

    let mut group = c.benchmark_group("technician_pin");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("verify_right_pin", |b| {
        b.iter(|| assert!(pin.verify(black_box(PIN))));
    });
    // Outside the closure: criterion calls it again for each phase.
    let mut round = 0_u32;
    group.bench_function("set_new_pin", |b| {
        b.iter(|| {
            // A fresh folder each time: set refuses to overwrite.
            round += 1;
            let dir = DataDir::open(tmp.path().join(format!("set-{round}"))).expect("data dir");
            black_box(TechnicianPin::set(&dir, PIN, "bench").expect("set"))
        });
    });
    group.finish();
}

criterion_group!(benches, pin);
criterion_main!(benches);
