//! Sign-in and the audit trail: `cargo bench --bench people`.
//!
//! - `sign_in`: one `Accounts::sign_in` with the right PIN, as the station does it:
//!   the accounts file read and checked under its lock, one Argon2id verify (19 MiB,
//!   2 passes, 1 lane), the audit line appended and synced. The issue's bound is
//!   100 ms.
//! - `audit_verify_1m`: `audit::verify` on a 1,000,000-line log (about 250 MB):
//!   every line parsed, hashed and checked against the next, and the head.

use std::io::Write as _;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use punctum::store::DataDir;
use punctum::store::accounts::{Accounts, NewAccount, Role};
use punctum::store::audit::{self, AuditKind, AuditLine, GENESIS, sha256_hex};

const PIN: &str = "739146";

fn sign_in(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
    let accounts = Accounts::of(&dir);
    accounts
        .create_first_admin(
            &NewAccount {
                id: "bench".into(),
                name: "Bench".into(),
                roles: Role::ALL.into_iter().collect(),
                secret: PIN.into(),
            },
            jiff::Timestamp::now(),
        )
        .expect("first admin");
    let mut group = c.benchmark_group("people");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("sign_in", |b| {
        b.iter(|| {
            accounts
                .sign_in("bench", PIN, jiff::Timestamp::now())
                .expect("right PIN")
        });
    });
    group.finish();
}

/// Writes a chained log of `lines` lines (and its head) straight to disk: appending
/// a million lines one synced append at a time would take the bench an hour.
fn write_log(dir: &DataDir, lines: u64) {
    let file = std::fs::File::create(dir.path(audit::AUDIT_FILE)).expect("log");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut prev = GENESIS.to_owned();
    let t0 = jiff::Timestamp::from_second(1_764_000_000).expect("time");
    for seq in 1..=lines {
        let mut detail = serde_json::Map::new();
        detail.insert("lot".into(), format!("L-{}", seq % 997).into());
        detail.insert("uses".into(), (seq % 13).into());
        let line = AuditLine {
            seq,
            at: t0 + jiff::SignedDuration::from_secs(i64::try_from(seq).expect("small")),
            station: "station-1".into(),
            os_user: "clinic".into(),
            account: Some(format!("P-{}", seq % 12)),
            kind: if seq % 3 == 0 {
                AuditKind::LotQuery
            } else {
                AuditKind::SignIn
            },
            detail,
            prev: prev.clone(),
        };
        let bytes = serde_json::to_vec(&line).expect("json");
        prev = sha256_hex(&bytes);
        out.write_all(&bytes).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
    std::fs::write(
        dir.path(audit::AUDIT_HEAD_FILE),
        format!(r#"{{"seq":{lines},"sha256":"{prev}"}}"#),
    )
    .expect("head");
}

fn audit_verify(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
    write_log(&dir, 1_000_000);
    let size = std::fs::metadata(dir.path(audit::AUDIT_FILE))
        .expect("log")
        .len();
    eprintln!("audit log: 1,000,000 lines, {} MB", size / 1_000_000);
    let mut group = c.benchmark_group("people");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("audit_verify_1m", |b| {
        b.iter(|| {
            let report = audit::verify(&dir).expect("verify");
            assert!(report.intact() && report.lines == 1_000_000);
        });
    });
    group.finish();
}

criterion_group!(benches, sign_in, audit_verify);
criterion_main!(benches);
