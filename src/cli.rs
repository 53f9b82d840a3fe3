//! The command line: `punctum` (the station), `punctum replay`, `punctum sim`,
//! `punctum monitor`, `punctum ports`, `punctum console`, `punctum report`,
//! `punctum client`, `punctum lots`, `punctum amend`, `punctum audit`,
//! `punctum clinic`.
//!
//! Exit codes: 0 success, 1 a runtime error (printed with its causes), 2 a usage
//! error (clap's own).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Punctum: treatment-station controller for motorized microneedling pens.
#[derive(Debug, Parser)]
#[command(name = "punctum", version, about, long_about = None)]
pub struct Cli {
    /// What to run; with none, the station window.
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// The station window's options (used when no subcommand is given).
    #[command(flatten)]
    pub window: WindowArgs,
}

/// Options of the station window (`punctum` with no subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct WindowArgs {
    /// The pen's serial port. By default a plugged-in pen is picked (pens first), else
    /// the built-in simulated pen.
    #[arg(long, value_name = "PATH")]
    pub port: Option<std::path::PathBuf>,
    /// Start on the built-in simulated pen even if a pen is plugged in.
    #[arg(long)]
    pub sim: bool,
    /// The data folder. [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// A clinic's own zone table.
    #[arg(long, value_name = "FILE")]
    pub zones: Option<std::path::PathBuf>,
    /// Who is at the station (recorded with zone-limit changes). [default: `$USER`]
    #[arg(long, value_name = "ID")]
    pub operator: Option<String>,
    /// Telemetry rate asked of the pen, Hz. The needle monitor sees the needle once per
    /// sample: at 5 mm/s a needle slipping deeper travels 5000/N µm between two samples
    /// (5 µm at the pen's 1000 Hz, 50 µm at 100 Hz).
    #[arg(long, default_value_t = 1000)]
    pub telemetry_hz: u32,
    /// The clinic store this station is part of: a `postgres://` URL, or a connection
    /// file (mode 0600; a password on the command line is visible to other users).
    /// [default: `<data dir>/clinic.conn` when it exists; else the station works alone]
    #[arg(long, value_name = "URL|FILE")]
    pub clinic: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the simulated pen on a pseudo-terminal, until Ctrl-C.
    Sim(crate::sim::cli::SimArgs),
    /// Connect to a pen and show its INFO, calibration and a live status line.
    Monitor(crate::monitor::MonitorArgs),
    /// List serial ports; pens (USB product "Microneedling Pen") first.
    Ports,
    /// A line-oriented operator console on stdin/stdout (see docs/console.md).
    Console(crate::ui::console::ConsoleArgs),
    /// Summarise a session record: per zone, alarms, interruptions; or export it.
    Report(crate::record::report_cmd::ReportArgs),
    /// Open the station window on a recorded session, without connecting to a pen.
    Replay(ReplayArgs),
    /// A client's file: every session, depths per zone, the course, amendments.
    Client(crate::client::cmd::ClientArgs),
    /// Every session and client that used a lot (numbing cream, serum, cartridge).
    Lots(crate::client::cmd::LotsArgs),
    /// Add a follow-up or adverse event to a session (the record is not changed).
    Amend(crate::client::cmd::AmendArgs),
    /// The audit trail: verify its hash chain, or show it filtered.
    Audit(crate::store::audit_cmd::AuditArgs),
    /// The clinic store (PostgreSQL): create or upgrade its schema, or show its state.
    Clinic(crate::clinic::cmd::ClinicArgs),
}

/// Options of `punctum replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The session record (`<data>/sessions/*.jsonl`).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// The data folder ("Back to live" uses it; the file dialog starts in its
    /// `sessions/`). [default: `$XDG_DATA_HOME/punctum` or `~/.local/share/punctum`]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// "Back to live" uses the built-in simulated pen even if a pen is plugged in.
    #[arg(long)]
    pub sim: bool,
}

/// Parses the command line, runs it, and turns errors into an exit code.
#[must_use]
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote paths, typed values and the pen's strings.
            eprintln!("punctum: error: {}", crate::text::shown(&error_chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `outer: cause: root`, each cause once: an error whose
/// own text already quotes its source (`cannot open X: No such file`) does not get it
/// twice.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PUNCTUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// 0, or 128 + the signal's number when a signal closed the window.
fn window_exit_code(stopped_by: Option<crate::signals::Stop>) -> ExitCode {
    stopped_by.map_or(ExitCode::SUCCESS, |stop| ExitCode::from(stop.exit_code()))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => {
            let w = cli.window;
            crate::ui::app::run(crate::ui::app::WindowOptions {
                port: w.port,
                sim: w.sim,
                data_dir: w.data_dir,
                zones: w.zones,
                operator: w.operator,
                telemetry_hz: w.telemetry_hz,
                replay: None,
                repaint_ctx: None,
                sound: true,
                sound_socket: None,
                clinic: w.clinic.clone(),
            })
            .map(window_exit_code)
        }
        Some(Cmd::Replay(args)) => {
            // Said here, before a window opens on nothing: the common mistake is a path.
            // The same rule as every file the operator names (`files::open_regular`).
            if let Err(e) = crate::files::open_regular(&args.file) {
                if e.kind() == std::io::ErrorKind::InvalidInput {
                    anyhow::bail!("{} is not a file: {e}", args.file.display());
                }
                return Err(e).with_context(|| format!("cannot open {}", args.file.display()));
            }
            let w = cli.window;
            crate::ui::app::run(crate::ui::app::WindowOptions {
                port: w.port,
                sim: args.sim || w.sim,
                data_dir: args.data_dir.or(w.data_dir),
                zones: w.zones,
                operator: w.operator,
                telemetry_hz: w.telemetry_hz,
                replay: Some(args.file),
                repaint_ctx: None,
                sound: true,
                sound_socket: None,
                clinic: w.clinic.clone(),
            })
            .map(window_exit_code)
        }
        Some(Cmd::Sim(args)) => crate::sim::cli::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Cmd::Monitor(args)) => crate::monitor::run(&args),
        Some(Cmd::Console(args)) => crate::ui::console::run(&args),
        Some(Cmd::Report(args)) => crate::record::report_cmd::run(&args),
        Some(Cmd::Client(args)) => crate::client::cmd::run_client(&args),
        Some(Cmd::Lots(args)) => crate::client::cmd::run_lots(&args),
        Some(Cmd::Amend(args)) => crate::client::cmd::run_amend(&args),
        Some(Cmd::Audit(args)) => crate::store::audit_cmd::run(&args),
        Some(Cmd::Clinic(args)) => crate::clinic::cmd::run(&args),
        Some(Cmd::Ports) => {
            let ports = crate::link::discovery::list_ports()?;
            if ports.is_empty() {
                println!("no serial ports found");
            }
            for p in ports {
                let mark = if p.is_pen { "pen" } else { "   " };
                let product = p.product.as_deref().unwrap_or("-");
                // The product string is the USB device's own.
                println!(
                    "{mark}  {}  {}",
                    crate::text::shown(&p.path),
                    crate::text::shown(product)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
