//! `punctum report FILE [--json] [--csv OUT]`: a session record's summary on the
//! terminal, as JSON, and its telemetry as CSV.
//!
//! The record's warnings (lines skipped or kept, with their numbers) go to stderr;
//! the report goes to stdout. The practitioner's signature is checked against the
//! file's bytes (`record::sign`): signed, unsigned, or broken. A record that loads,
//! even with warnings or interrupted, exits 0; one whose signature is broken exits 3
//! (the report is still printed); one that cannot be loaded at all exits 1 with the
//! reason. A CSV or JSON export is written to the data folder's audit log.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::load::load;
use super::report::{Report, write_csv};

/// Options of `punctum report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The session record (a `.jsonl` file from the data folder's `sessions/`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the telemetry as CSV to OUT (one row per sample).
    #[arg(long, value_name = "OUT")]
    pub csv: Option<PathBuf>,
}

/// The signature as the record says, checked against the audit log of its data
/// folder: a signature the log recorded must be the record's (a removed signature
/// line, or a record changed and re-hashed, is broken).
fn against_audit(
    record: &std::path::Path,
    status: super::sign::SignatureStatus,
) -> super::sign::SignatureStatus {
    use super::sign::SignatureStatus;
    let Some(root) = record
        .parent()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == super::writer::SESSIONS_DIR)
        })
        .and_then(std::path::Path::parent)
    else {
        return status;
    };
    let Ok(data) = crate::store::DataDir::open(root) else {
        return status;
    };
    // The session's id from the header (the first line).
    let Some(session_id) = crate::files::open_regular(record).ok().and_then(|file| {
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(std::io::Read::take(file, 1 << 20)),
            &mut first,
        )
        .ok()?;
        serde_json::from_str::<serde_json::Value>(&first)
            .ok()?
            .get("session_id")?
            .as_str()
            .map(str::to_owned)
    }) else {
        return status;
    };
    let filter = crate::store::audit::AuditFilter {
        kinds: vec![crate::store::audit::AuditKind::RecordSigned],
        ..crate::store::audit::AuditFilter::default()
    };
    let mut logged: Option<(String, String)> = None;
    let _ = crate::store::audit::show(
        &data,
        &filter,
        |_, line| {
            if line.detail.get("session").and_then(|v| v.as_str()) == Some(session_id.as_str()) {
                let sha = line
                    .detail
                    .get("sha256")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned();
                logged = Some((sha, line.account.clone().unwrap_or_default()));
            }
        },
        |_| {},
    );
    let Some((sha, account)) = logged else {
        return status;
    };
    match status {
        SignatureStatus::Unsigned => SignatureStatus::Broken {
            why: format!(
                "the audit log records that {account} signed it (SHA-256 {sha}), but the \
                 record has no signature line: it was removed"
            ),
            signature: crate::record::format::SignatureLine {
                utc_ms: 0,
                account,
                name: String::new(),
                meaning: String::new(),
                sha256: sha,
                bytes: 0,
            },
        },
        SignatureStatus::Valid(signature) if signature.sha256 != sha => SignatureStatus::Broken {
            why: format!(
                "its SHA-256 is not the one the audit log recorded at signing ({sha}): the \
                 record was changed and re-hashed"
            ),
            signature,
        },
        other => other,
    }
}

/// Runs `punctum report`.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    // The signature first: a record changed so much that it no longer loads still
    // says it was signed and changed since.
    // A file that cannot be read at all is the loader's to explain (below).
    let status = super::sign::check(&args.file).unwrap_or(super::sign::SignatureStatus::Unsigned);
    let status = against_audit(&args.file, status);
    let broken = matches!(status, super::sign::SignatureStatus::Broken { .. });
    let rec = match load(&args.file) {
        Ok(rec) => rec,
        Err(e) if broken => {
            let _ = writeln!(
                std::io::stderr(),
                "punctum: error: {}\npunctum: error: {}",
                crate::text::shown(&e.to_string()),
                status.describe()
            );
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.into()),
    };
    {
        let mut err = std::io::stderr().lock();
        for w in &rec.warnings {
            let _ = writeln!(
                err,
                "punctum: warning: {}: line {}: {}",
                crate::text::shown(&args.file.display().to_string()),
                w.line_no,
                crate::text::shown(&w.message)
            );
        }
    }
    if let Some(out) = &args.csv {
        let rows = write_csv(&rec, out)?;
        let _ = writeln!(
            std::io::stderr(),
            "punctum: wrote {rows} telemetry samples to {}",
            crate::text::shown(&out.display().to_string())
        );
    }
    let mut report = Report::from_recording(&rec);
    drop(rec);
    report.signature = Some(status.describe());
    report.signature_valid = Some(matches!(status, super::sign::SignatureStatus::Valid(_)));
    if args.json || args.csv.is_some() {
        let what = match (&args.csv, args.json) {
            (Some(out), true) => format!("report as JSON, telemetry as CSV to {}", out.display()),
            (Some(out), false) => format!("telemetry as CSV to {}", out.display()),
            (None, _) => "report as JSON".to_owned(),
        };
        if let Err(e) = crate::store::audit::beside_record(
            &args.file,
            crate::store::audit::AuditEvent::new(crate::store::audit::AuditKind::Export, None)
                .with("session", report.session_id.clone())
                .with("what", what),
        ) {
            let _ = writeln!(
                std::io::stderr(),
                "punctum: warning: the export is not in the audit log: {}",
                crate::text::shown(&e)
            );
        }
    }
    // The session's amendments live in its data folder's client file: the record's
    // folder is `<data>/sessions/`.
    match crate::store::amendments::beside_record(&args.file, &report.session_id) {
        Ok(found) => report = report.with_amendments(found),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "punctum: warning: the amendments cannot be read: {}",
                crate::text::shown(&e)
            );
        }
    }
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        json.push('\n');
        json
    } else {
        report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A reader that stopped early (`| head`) is no error of ours.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the report to stdout")
        }
        _ if broken => {
            let _ = writeln!(
                std::io::stderr(),
                "punctum: error: the record's signature is broken: it changed after signing"
            );
            Ok(ExitCode::from(3))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
