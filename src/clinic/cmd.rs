//! `punctum clinic init | migrate | status`: the clinic store on the command line.
//!
//! Exit codes: 0 done (for `status`: the store is reachable and at this station's
//! schema); 1 an error (a wrong address, a refused migration); 3 for `status` when
//! the store cannot be reached or is at another schema (the outbox is still shown).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::streams::{DepthCounter, LocalCursors};
use super::{ClinicTarget, StationIdentity, schema, upload};

/// Options of `punctum clinic`.
#[derive(Debug, clap::Args)]
pub struct ClinicArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ClinicAction,
    /// The clinic store: a `postgres://` URL, or a connection file (mode 0600).
    /// [default: `<data dir>/clinic.conn`]
    #[arg(long, value_name = "URL|FILE", global = true)]
    pub clinic: Option<String>,
    /// The data folder (for `status`: this station's outbox).
    /// [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

/// `punctum clinic` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ClinicAction {
    /// Create the schema in an empty database.
    Init,
    /// Upgrade the schema to this station's version (in one transaction).
    Migrate,
    /// The store's state and this station's outbox, for people or (`--json`) scripts.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `punctum clinic`.
pub fn run(args: &ClinicArgs) -> anyhow::Result<ExitCode> {
    let root = args
        .data_dir
        .clone()
        .or_else(crate::store::DataDir::default_root)
        .context("no data folder: give --data-dir")?;
    let target = ClinicTarget::resolve(args.clinic.as_deref(), &root)?.with_context(|| {
        format!(
            "no clinic store: give --clinic postgres://... or write {}",
            root.join(super::target::CONNECTION_FILE).display()
        )
    })?;
    match &args.action {
        ClinicAction::Init => {
            let mut db = target.connect("punctum clinic init")?;
            let version = schema::version(&mut db)?;
            anyhow::ensure!(
                version == 0,
                "{target} already has the clinic schema (version {version}): \
                 use `punctum clinic migrate` to upgrade it"
            );
            let done = schema::migrate(&mut db, schema::SCHEMA_VERSION)?;
            println!("ok: {target} initialised at schema version {}", done.to);
            Ok(ExitCode::SUCCESS)
        }
        ClinicAction::Migrate => {
            let mut db = target.connect("punctum clinic migrate")?;
            let done = schema::migrate(&mut db, schema::SCHEMA_VERSION)?;
            if done.from == done.to {
                println!("ok: {target} is at schema version {} already", done.to);
            } else {
                println!(
                    "ok: {target} migrated from schema version {} to {}",
                    done.from, done.to
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ClinicAction::Status { json } => status(&target, &root, *json),
    }
}

/// What `status` prints.
#[derive(Debug, serde::Serialize)]
struct Status {
    store: String,
    station_id: Option<String>,
    state: &'static str,
    reason: Option<String>,
    schema: Option<i32>,
    station_schema: i32,
    outbox_lines: u64,
    outbox_bytes: u64,
    last_upload: Option<jiff::Timestamp>,
    /// Streams that cannot be uploaded: name and why (restore the file).
    blocked: Vec<Blocked>,
}

/// A stream that cannot be uploaded.
#[derive(Debug, serde::Serialize)]
struct Blocked {
    stream: String,
    why: String,
}

fn status(target: &ClinicTarget, root: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    // A folder that uploaded and lost its identity: said, as the station says it.
    if !root.join(super::identity::IDENTITY_FILE).exists()
        && !LocalCursors::load(root).station_id.is_empty()
    {
        let e = StationIdentity::of(root).expect_err("refused without the identity file");
        eprintln!("punctum: error: {e}");
        return Ok(ExitCode::from(3));
    }
    // The identity is only read: `status` on a folder that never joined makes none.
    let station_id = root
        .join(super::identity::IDENTITY_FILE)
        .exists()
        .then(|| StationIdentity::of(root).map(|i| i.station_id))
        .transpose()?;
    let mut local = LocalCursors::load(root);
    let mut st = Status {
        store: target.to_string(),
        station_id: station_id.clone(),
        state: "unreachable",
        reason: None,
        schema: None,
        station_schema: schema::SCHEMA_VERSION,
        outbox_lines: 0,
        outbox_bytes: 0,
        last_upload: local.last_upload,
        blocked: Vec::new(),
    };
    match target.connect("punctum clinic status") {
        Err(e) => st.reason = Some(e.to_string()),
        Ok(mut db) => {
            let version = schema::version(&mut db)?;
            st.schema = Some(version);
            if let Err(e) = schema::check_current(&mut db) {
                st.state = "incompatible";
                st.reason = Some(e.to_string());
            } else {
                st.state = "connected";
                if let Some(id) = &station_id {
                    // The store's cursors are the truth.
                    local.cursors = upload::cursors(&mut db, id)?;
                    let last: Option<jiff::Timestamp> = db
                        .query_one(
                            "SELECT max(updated_at) FROM upload_cursors WHERE station_id = $1",
                            &[id],
                        )
                        .map_err(super::db_error)?
                        .get(0);
                    st.last_upload = last.or(st.last_upload);
                }
            }
        }
    }
    let depth = DepthCounter::default().depth(root, &local);
    st.outbox_lines = depth.lines;
    st.outbox_bytes = depth.bytes;
    if station_id.is_some() {
        st.blocked = super::streams::blocked(root, &local)
            .into_iter()
            .map(|(stream, why)| Blocked { stream, why })
            .collect();
    }
    if json {
        println!("{}", serde_json::to_string(&st)?);
    } else {
        println!("store: {}", st.store);
        println!(
            "station: {}",
            st.station_id
                .as_deref()
                .unwrap_or("(this data folder has not joined yet)")
        );
        match &st.reason {
            Some(why) => println!("state: {} ({why})", st.state),
            None => println!("state: {}", st.state),
        }
        println!(
            "schema: {} (this station: {})",
            st.schema.map_or("unknown".into(), |v| v.to_string()),
            st.station_schema
        );
        println!(
            "outbox: {} lines ({} bytes) not in the store yet",
            st.outbox_lines, st.outbox_bytes
        );
        println!(
            "last upload: {}",
            st.last_upload.map_or("never".into(), |t| t.to_string())
        );
        for b in &st.blocked {
            println!(
                "blocked: {}: {} (not uploaded: restore the file)",
                b.stream, b.why
            );
        }
    }
    // A blocked stream is data that will not reach the store: scripts hear of it.
    Ok(if st.state == "connected" && st.blocked.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
