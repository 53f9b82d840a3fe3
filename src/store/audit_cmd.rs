//! `punctum audit verify` and `punctum audit show`: the audit trail on the command
//! line. `verify` exits 0 when the chain is intact, 3 when a line was changed,
//! removed or reordered (each named), 1 when the log cannot be read. `show` filters
//! by account, kind and date and prints one line per event (or the lines as JSON).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::audit::{self, AuditFilter, AuditKind};

/// Options of `punctum audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AuditAction,
    /// The data folder. [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

/// `punctum audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditAction {
    /// Check the hash chain: names every changed, removed or reordered line.
    Verify,
    /// Print the log, filtered.
    Show {
        /// Only this account's events.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Only these kinds (repeat, or comma-separated): `sign_in`, `sign_in_failed`,
        /// `locked_out`, `lock`, `unlock`, `hand_over`, `account_created`,
        /// `zone_limit_changed`, `settings_changed`, `calibration`, `record_signed`,
        /// `export`, `lot_query`, ...
        #[arg(long, value_name = "KIND", value_delimiter = ',')]
        kind: Vec<String>,
        /// From this day on (YYYY-MM-DD, local time).
        #[arg(long, value_name = "DATE")]
        from: Option<jiff::civil::Date>,
        /// Up to and including this day (YYYY-MM-DD, local time).
        #[arg(long, value_name = "DATE")]
        to: Option<jiff::civil::Date>,
        /// The lines as they are in the log (JSON), one per line.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `punctum audit`.
pub fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let root = args
        .data_dir
        .clone()
        .or_else(super::DataDir::default_root)
        .context("no data folder: give --data-dir")?;
    anyhow::ensure!(root.is_dir(), "no data folder at {}", root.display());
    let data = super::DataDir::open(&root)?;
    match &args.action {
        AuditAction::Verify => verify(&data),
        AuditAction::Show {
            account,
            kind,
            from,
            to,
            json,
        } => show(&data, account.clone(), kind, *from, *to, *json),
    }
}

/// `punctum audit verify`.
fn verify(data: &super::DataDir) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let report = audit::verify(data)?;
    for problem in &report.problems {
        writeln!(out, "TAMPERED: {problem}")?;
    }
    if report.problem_count > report.problems.len() as u64 {
        writeln!(
            out,
            "... and {} more",
            report.problem_count - report.problems.len() as u64
        )?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    if report.intact() {
        writeln!(out, "ok: {} lines, the chain is intact", report.lines)?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "FAILED: {} lines read, {} problem(s)",
            report.lines, report.problem_count
        )?;
        Ok(ExitCode::from(3))
    }
}

/// `punctum audit show`.
fn show(
    data: &super::DataDir,
    account: Option<String>,
    kind: &[String],
    from: Option<jiff::civil::Date>,
    to: Option<jiff::civil::Date>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let kinds = kind
        .iter()
        .map(|k| {
            AuditKind::parse(k.trim()).with_context(|| {
                format!(
                    "no audit kind {k:?}; kinds: {}",
                    AuditKind::ALL.map(AuditKind::as_str).join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tz = jiff::tz::TimeZone::system();
    let start = |d: jiff::civil::Date| {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .context("a date out of range")
    };
    let filter = AuditFilter {
        account,
        kinds,
        from: from.map(start).transpose()?,
        until: to
            .map(|d| d.tomorrow().context("a date out of range").and_then(start))
            .transpose()?,
    };
    let mut shown = 0_u64;
    let mut failed = None;
    audit::show(
        data,
        &filter,
        |_, line| {
            let text = if json {
                serde_json::to_string(line).unwrap_or_default()
            } else {
                audit::describe(line)
            };
            if failed.is_none()
                && let Err(e) = writeln!(out, "{text}")
            {
                failed = Some(e);
            }
            shown += 1;
        },
        |number| {
            let _ = writeln!(
                std::io::stderr(),
                "punctum: warning: audit line {number} is not an audit line (run punctum audit verify)"
            );
        },
    )?;
    match failed {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => {
            let _ = writeln!(std::io::stderr(), "punctum: {shown} event(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}
