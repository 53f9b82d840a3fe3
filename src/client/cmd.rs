//! `punctum client <pseudonym>`, `punctum lots <lot>` and `punctum amend`: the
//! client's file, the lot search and follow-up events for scripts and the terminal.
//! Text by default, `--json` for machines. Reads the data folder; `amend` appends one
//! line to `amendments.jsonl` and changes no record.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{ClientFile, lot_query};
use crate::record::Library;
use crate::store::amendments::{self, Amendment};

/// Options of `punctum client`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The client's pseudonym, exactly as recorded.
    #[arg(value_name = "PSEUDONYM")]
    pub client: String,
    /// The data folder. [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the file as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `punctum lots`.
#[derive(Debug, clap::Args)]
pub struct LotsArgs {
    /// The lot number (exact; case is ignored: scanners and keyboards differ).
    #[arg(value_name = "LOT")]
    pub lot: String,
    /// The data folder. [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the uses as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `punctum amend`.
#[derive(Debug, clap::Args)]
pub struct AmendArgs {
    /// The session the event follows (its id, as `punctum client` lists it).
    #[arg(long, value_name = "ID")]
    pub session: String,
    /// When the event was seen, YYYY-MM-DD. [default: today]
    #[arg(long, value_name = "DATE")]
    pub date: Option<jiff::civil::Date>,
    /// What: `redness_persistent`, `hyperpigmentation`, `infection`,
    /// `allergic_reaction`, `scarring`, `follow_up`, `other`.
    #[arg(long)]
    pub kind: String,
    /// mild, moderate or severe.
    #[arg(long)]
    pub severity: String,
    /// What was seen and done.
    #[arg(long)]
    pub note: String,
    /// Who adds it. [default: `$USER`]
    #[arg(long, value_name = "ID")]
    pub by: Option<String>,
    /// The data folder. [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

fn print(text: &str) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")
}

/// The data folder to read: `dir`, else the default; an error when it does not exist
/// (reading never creates one).
fn existing_data_dir(dir: Option<&std::path::Path>) -> anyhow::Result<crate::store::DataDir> {
    let root = dir
        .map(std::path::Path::to_path_buf)
        .or_else(crate::store::DataDir::default_root)
        .context("no data folder: give --data-dir")?;
    anyhow::ensure!(root.is_dir(), "no data folder at {}", root.display());
    crate::station::setup::open_data_dir(Some(&root))
}

/// Runs `punctum client`.
pub fn run_client(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    let data = existing_data_dir(args.data_dir.as_deref())?;
    audit_cli(
        &data,
        crate::store::audit::AuditEvent::new(crate::store::audit::AuditKind::ClientFile, None)
            .with("client", args.client.clone())
            .with("via", "punctum client"),
    );
    let file = ClientFile::open(&data, &args.client, jiff::Zoned::now().date());
    if args.json {
        let mut json = serde_json::to_string_pretty(&file).context("cannot encode the file")?;
        json.push('\n');
        print(&json)?;
    } else {
        print(&file.to_text())?;
    }
    if file.sessions.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "punctum: no session of client {} in {}",
            crate::text::shown(&args.client),
            data.root().display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends a command-line tool's event to the audit log (no account: the OS user is
/// recorded); a failure is said on stderr, the command goes on.
fn audit_cli(data: &crate::store::DataDir, event: crate::store::audit::AuditEvent) {
    if let Err(e) = crate::store::audit::AuditLog::of(data).append(event) {
        let _ = writeln!(
            std::io::stderr(),
            "punctum: warning: not in the audit log: {}",
            crate::text::shown(&e.to_string())
        );
    }
}

/// Runs `punctum lots`: exit 0 with the uses, 1 when none.
pub fn run_lots(args: &LotsArgs) -> anyhow::Result<ExitCode> {
    let data = existing_data_dir(args.data_dir.as_deref())?;
    let library = Library::scan(&data.path(super::SESSIONS_DIR));
    for w in &library.warnings {
        let _ = writeln!(
            std::io::stderr(),
            "punctum: warning: {}",
            crate::text::shown(w)
        );
    }
    let hits = lot_query(&library, &args.lot);
    audit_cli(
        &data,
        crate::store::audit::AuditEvent::new(crate::store::audit::AuditKind::LotQuery, None)
            .with("lot", args.lot.trim().to_owned())
            .with("uses", hits.len())
            .with("via", "punctum lots"),
    );
    if args.json {
        let mut json = serde_json::to_string_pretty(&hits).context("cannot encode the uses")?;
        json.push('\n');
        print(&json)?;
    } else {
        let mut text = format!(
            "Lot {}: {} use{} in {} records\n",
            crate::text::shown(args.lot.trim()),
            hits.len(),
            if hits.len() == 1 { "" } else { "s" },
            library.entries.len()
        );
        for h in &hits {
            let _ = writeln!(
                text,
                "- {} {} lot {} client {} session {} by {}: {} {}",
                h.date.map_or_else(|| "?".to_owned(), |d| d.to_string()),
                h.kind,
                crate::text::shown(&h.lot),
                crate::text::shown(&h.client),
                crate::text::shown(&h.session_id),
                crate::text::shown(&h.practitioner),
                crate::text::shown(&h.product),
                crate::text::shown(&h.path),
            );
        }
        print(&text)?;
    }
    Ok(if hits.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `punctum amend`.
pub fn run_amend(args: &AmendArgs) -> anyhow::Result<ExitCode> {
    let data = existing_data_dir(args.data_dir.as_deref())?;
    let by = crate::station::setup::operator(args.by.as_deref());
    anyhow::ensure!(!by.trim().is_empty(), "--by is empty: say who adds it");
    let amendment = add_amendment(
        &data,
        &args.session,
        args.date,
        &args.kind,
        &args.severity,
        &args.note,
        &by,
    )
    .map_err(anyhow::Error::msg)?;
    print(&format!(
        "amended session {}: {} {} on {}\n",
        crate::text::shown(&amendment.session_id),
        amendment.kind,
        amendment.severity,
        amendment.date
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Checks and appends an amendment to session `session_id` (found among the data
/// folder's records): the console's `amend` and `punctum amend`.
///
/// # Errors
/// No such session, a field refused, or the file cannot be written: what and why.
pub fn add_amendment(
    data: &crate::store::DataDir,
    session_id: &str,
    seen_on: Option<jiff::civil::Date>,
    kind: &str,
    severity: &str,
    note: &str,
    by: &str,
) -> Result<Amendment, String> {
    let library = Library::scan(&data.path(super::SESSIONS_DIR));
    let entry = library
        .entries
        .iter()
        .find(|e| e.session_id == session_id)
        .ok_or_else(|| format!("no session {session_id} in {}", data.root().display()))?;
    let today = jiff::Zoned::now().date();
    let session_date = entry.opened_date().unwrap_or(today);
    let amendment = Amendment {
        client: entry.client.clone(),
        session_id: session_id.to_owned(),
        date: seen_on.unwrap_or(today),
        kind: kind.to_owned(),
        severity: severity.to_owned(),
        note: note.to_owned(),
        by: by.to_owned(),
        recorded_at: jiff::Timestamp::now(),
    };
    amendment.check(session_date, today)?;
    amendments::append(data, &amendment).map_err(|e| e.to_string())?;
    Ok(amendment)
}
