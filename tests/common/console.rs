//! `punctum console` as a child process for the end-to-end tests: fed line by line
//! through stdin, its output read with deadlines.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::time::Instant;

use crossbeam_channel::Receiver;
use punctum::protocol::Calibration;
use punctum::safety::interlock::yyyymmdd;
use punctum::sim::{SimConfig, SimPen};

use super::{DEADLINE, sim};

pub const BIN: &str = env!("CARGO_BIN_EXE_punctum");

/// The tests' practitioner: the first admin of every test data folder, with every
/// role, so the tests written before accounts treat and calibrate as before.
pub const ACCOUNT: &str = "P-7";

/// [`ACCOUNT`]'s PIN.
pub const PIN: &str = "258013";

/// Makes [`ACCOUNT`] the first admin (with every role) of `data_dir` unless accounts
/// exist there already; returns the accounts.
pub fn ensure_accounts(data_dir: &Path) -> punctum::store::accounts::Accounts {
    use punctum::store::accounts::{Accounts, NewAccount, Role};
    let dir = punctum::store::DataDir::open(data_dir).expect("data dir");
    let accounts = Accounts::of(&dir);
    if accounts.is_empty().expect("accounts readable") {
        accounts
            .create_first_admin(
                &NewAccount {
                    id: ACCOUNT.into(),
                    name: "Pat Seven".into(),
                    roles: Role::ALL.into_iter().collect(),
                    secret: PIN.into(),
                },
                jiff::Timestamp::now(),
            )
            .expect("first admin");
    }
    accounts
}

/// A screening file that passes: every question answered no.
pub fn screening_file(dir: &Path, client: &str) -> PathBuf {
    let questions = [
        "skin_cancer_or_keratosis",
        "open_wounds",
        "active_infection",
        "active_acne_or_rosacea",
        "bleeding_disorder",
        "isotretinoin_6mo",
        "recent_laser_or_peel",
        "anticoagulants",
        "eczema_psoriasis_rosacea",
        "herpes_history",
        "keloids",
        "scleroderma",
        "poor_healing",
        "recent_scars",
        "facial_trauma_6mo",
        "lidocaine_sensitivity",
        "fitzpatrick_iv_vi",
    ];
    let answers: serde_json::Map<String, serde_json::Value> = questions
        .iter()
        .map(|q| ((*q).to_owned(), serde_json::Value::Bool(false)))
        .collect();
    let json = serde_json::json!({
        "client": client, "dob": "1990-05-01", "indication": "rejuvenation",
        "practitioner": "P-7", "answers": answers, "confirmed_cautions": []
    });
    let path = dir.join(format!("screening-{client}.json"));
    std::fs::write(&path, json.to_string()).expect("write screening");
    path
}

/// A pen whose calibration is dated `date`.
pub fn pen_calibrated_on(dir: &Path, date: u32, link: Option<PathBuf>) -> SimPen {
    let cal_file = dir.join("pen-cal.json");
    punctum::sim::cal_file::store(
        &cal_file,
        &Calibration {
            date,
            tech: "T1".into(),
            ..Calibration::identity()
        },
    )
    .expect("calibration file");
    sim(SimConfig {
        cal_file: Some(cal_file),
        link_path: link,
        ..SimConfig::default()
    })
}

pub fn calibrated_pen(dir: &Path) -> SimPen {
    pen_calibrated_on(dir, yyyymmdd(jiff::Zoned::now().date()), None)
}

/// The console as a child process, fed line by line, its output read with deadlines.
pub struct Console {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Lines read while the helper waited for its own sign-in, for the test's
    /// `expect`s, in order.
    backlog: std::collections::VecDeque<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Console {
    pub fn start(port: &Path, data_dir: &Path) -> Self {
        Self::start_with(port, data_dir, "", &[])
    }

    /// Like [`Console::start`], with shell commands run first in the console's own
    /// process (`ulimit -f 64` to make its disk "fill"), which then execs it.
    pub fn start_with(
        port: &Path,
        data_dir: &Path,
        shell_prelude: &str,
        extra_args: &[&str],
    ) -> Self {
        ensure_accounts(data_dir);
        let mut console = Self::start_as(port, data_dir, shell_prelude, extra_args);
        console.sign_in(ACCOUNT, PIN);
        console
    }

    /// Sends `sign-in id pin` and waits for its `ok`; the lines before it stay for
    /// the test's `expect`s.
    pub fn sign_in(&mut self, id: &str, pin: &str) {
        self.send(&format!("sign-in {id} {pin}"));
        let deadline = Instant::now() + DEADLINE;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.backlog.pop_front() {
                Some(line) => line,
                None => match self.lines.recv_timeout(left) {
                    Ok(line) => line,
                    Err(e) => panic!("no sign-in answer ({e}); seen:\n{}", before.join("\n")),
                },
            };
            if line.starts_with("ok: signed in as")
                || line.starts_with("ok: unlocked by")
                || line.contains("handed over to")
            {
                self.seen.push(line);
                break;
            }
            assert!(
                !line.starts_with("refused:") && !line.starts_with("error:"),
                "sign-in refused: {line}"
            );
            before.push(line);
        }
        for line in before.into_iter().rev() {
            self.backlog.push_front(line);
        }
    }

    /// The console as a child process, nobody signed in (accounts or not).
    pub fn start_as(
        port: &Path,
        data_dir: &Path,
        shell_prelude: &str,
        extra_args: &[&str],
    ) -> Self {
        let mut process = if shell_prelude.is_empty() {
            Process::new(BIN)
        } else {
            let mut sh = Process::new("sh");
            sh.arg("-c")
                .arg(format!("{shell_prelude}; exec \"$0\" \"$@\""))
                .arg(BIN);
            sh
        };
        let mut child = process
            .arg("console")
            .arg("--port")
            .arg(port)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("punctum console starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = crossbeam_channel::bounded(10_000);
        std::thread::Builder::new()
            .name("test-console-out".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .expect("reader thread");
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            backlog: std::collections::VecDeque::new(),
            seen: Vec::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the console");
        stdin.flush().expect("flush");
    }

    /// The next line: the backlog's first, else the console's next within `left`.
    fn next_line(
        &mut self,
        left: std::time::Duration,
    ) -> Result<String, crossbeam_channel::RecvTimeoutError> {
        match self.backlog.pop_front() {
            Some(line) => Ok(line),
            None => self.lines.recv_timeout(left),
        }
    }

    /// Waits for an output line starting with `prefix` (and containing `needle`).
    pub fn expect(&mut self, prefix: &str, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.next_line(left) else {
                panic!(
                    "no line `{prefix}…{needle}…` within {DEADLINE:?}; seen:\n{}",
                    self.seen.join("\n")
                );
            };
            self.seen.push(line.clone());
            if line.starts_with(prefix) && line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends a command and returns its result line (`ok`, `refused:` or `error:`).
    pub fn run(&mut self, command: &str) -> String {
        self.send(command);
        self.expect_result()
    }

    /// Waits for the next result line (`ok`, `refused:` or `error:`).
    pub fn expect_result(&mut self) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.next_line(left) else {
                panic!("no result line; seen:\n{}", self.seen.join("\n"));
            };
            self.seen.push(line.clone());
            if line == "ok"
                || line.starts_with("ok:")
                || line.starts_with("refused:")
                || line.starts_with("error:")
            {
                return line;
            }
        }
    }

    /// Waits until the station itself has seen the needle stopped (`status`), which
    /// may come a moment after the pen's journal says so.
    pub fn wait_idle(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.send("status");
            // Both: the last sample shows the pen idle, and the interlock (which
            // judges the next command) no longer counts the needle as running. A
            // sample from before an acknowledged RUN says IDLE too.
            let status = self.expect("status:", "");
            if status.contains("pen_state=IDLE") && status.contains("needle=stopped") {
                return;
            }
            assert!(Instant::now() < deadline, "never idle: {:#?}", self.seen);
        }
    }

    /// Closes stdin (end of input behaves as quit) and waits for the exit.
    pub fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        self.seen.extend(self.backlog.drain(..));
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        let status = self.child.wait().expect("the console exits");
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a session for `client` and records the procedure's steps before the needle
/// (cleansing, and no numbing with a reason), so that the needle may start.
pub fn open_session(console: &mut Console, dir: &Path, client: &str) {
    open_session_unprepared(console, dir, client);
    assert!(console.run("step cleanse").starts_with("ok: step"));
    assert!(
        console
            .run("step no-numbing test of the station, no client")
            .starts_with("ok: step")
    );
}

/// Opens a session for `client`, with no step recorded.
pub fn open_session_unprepared(console: &mut Console, dir: &Path, client: &str) {
    console.expect("event: link connected", "");
    let screening = screening_file(dir, client);
    assert_eq!(
        console.run(&format!("session {}", screening.display())),
        "ok"
    );
}
