//! A throwaway `PostgreSQL` server for the clinic store's tests and benchmarks:
//! Debian's `postgresql` package (`.ci/run` installs it), `initdb` into a temporary
//! folder and `pg_ctl start` on a port of its own on 127.0.0.1 (and a Unix socket in
//! that folder). `PostgreSQL` refuses to run as root: as root, every server command
//! runs as the package's `postgres` user (`runuser`), and the folder is theirs.
//!
//! A test that needs the server fails loudly when it cannot start one: it never
//! skips. The value's drop stops the server and removes the folder.

#![allow(dead_code)] // each test binary uses a part

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The superuser the tests connect as.
pub const USER: &str = "punctum";

/// A running (or stopped) throwaway server.
pub struct PgServer {
    /// The network namespace it runs in (`None`: the machine's own).
    netns: Option<String>,
    /// The address the harness's own clients use.
    host: String,
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    running: bool,
    settings: Vec<(String, String)>,
}

/// The newest `/usr/lib/postgresql/<version>/bin` (or `$PUNCTUM_PG_BIN`).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PUNCTUM_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).expect(
        "no PostgreSQL server binaries under /usr/lib/postgresql: install Debian's \
         `postgresql` package (.ci/run does), or set PUNCTUM_PG_BIN",
    )
}

fn is_root() -> bool {
    // SAFETY-free: `id -u` rather than libc, which the tests do not depend on.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A free TCP port on 127.0.0.1 (free now; the server takes it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PgServer {
    /// A server tuned for tests: no fsync (the machine's disk is not under test).
    pub fn start() -> Self {
        Self::start_with(&[("fsync", "off"), ("synchronous_commit", "off")])
    }

    /// A server with these `postgres -c` settings (besides the port, the socket
    /// folder, listening on 127.0.0.1 and 300 connections).
    pub fn start_with(settings: &[(&str, &str)]) -> Self {
        Self::start_on(None, "127.0.0.1", settings)
    }

    /// A server for tests in network namespace `net`, listening on every address
    /// there: stations reach it through a link of their own
    /// ([`super::netns::ServerNet::link`]), the harness through one made here.
    pub fn start_in(net: &mut super::netns::ServerNet) -> Self {
        let harness = net.link();
        Self::start_on(
            Some(net.name().to_owned()),
            harness.server_ip(),
            &[("fsync", "off"), ("synchronous_commit", "off")],
        )
    }

    fn start_on(netns: Option<String>, host: &str, settings: &[(&str, &str)]) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("punctum-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let password = format!("pw-{:016x}", rand_u64());
        std::fs::write(dir.join("pw"), &password).expect("password file");
        let mut server = Self {
            netns,
            host: host.to_owned(),
            dir,
            bin,
            port: free_port(),
            password,
            running: false,
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown of {} to postgres",
                server.dir.display()
            );
        }
        let data = server.dir.join("data");
        let out = server
            .run_as_owner(&server.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-A", "scram-sha-256", "--auth-local=trust"])
            .arg(format!("--pwfile={}", server.dir.join("pw").display()))
            .args(["--no-sync", "-E", "UTF8", "--locale=C"])
            .stdout(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if server.netns.is_some() {
            // The stations come over their links' addresses, not loopback.
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("pg_hba.conf"))
                .and_then(|mut f| f.write_all(b"host all all 10.0.0.0/8 scram-sha-256\n"))
                .expect("pg_hba.conf");
        }
        server.start_again();
        server
    }

    /// A command run as the folder's owner (`postgres` when the tests run as root),
    /// in the server's network namespace.
    fn run_as_owner(&self, program: &Path) -> Command {
        if let Some(ns) = &self.netns {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "runuser", "-u", "postgres", "--"])
                .arg(program);
            return c;
        }
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Starts the server (again, after [`Self::stop`]) on its port, and waits until
    /// it accepts connections.
    pub fn start_again(&mut self) {
        let listen = if self.netns.is_some() {
            "'*'"
        } else {
            "127.0.0.1"
        };
        let mut options = format!(
            "-p {} -k {} -c listen_addresses={listen} -c max_connections=300",
            self.port,
            self.dir.display()
        );
        for (k, v) in &self.settings {
            let _ = write!(options, " -c {k}={v}");
        }
        let out = self
            .run_as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "the PostgreSQL server did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stops the server (`-m immediate`: like a crash or a pulled cable, the clients'
    /// connections drop at once).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let _ = self
            .run_as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-t", "60", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.running = false;
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (to check it never shows).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A URL for database `db`, with the password in it.
    pub fn url(&self, db: &str) -> String {
        self.url_at(&self.host, db)
    }

    /// A URL for database `db` at address `host` (a station's own link's).
    pub fn url_at(&self, host: &str, db: &str) -> String {
        format!(
            "postgres://{USER}:{}@{host}:{}/{db}",
            self.password, self.port
        )
    }

    /// Creates database `name` and returns its URL.
    pub fn create_db(&self, name: &str) -> String {
        let mut db = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test server");
        db.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create database");
        self.url(name)
    }

    /// A plain client on database `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).expect("connect")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A random number, from the standard library's hasher seeds.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// A TCP relay between a station and the server that the test can cut: a network
/// fault for one station while the others keep their link. Cut, it closes every
/// connection it carries (the station's socket sees the link drop) and closes each
/// new one at once (a firewall's reject); restored, it relays again.
pub struct CutProxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    live: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl CutProxy {
    /// A relay from a free port on 127.0.0.1 to `upstream_port` there.
    pub fn start(upstream_port: u16) -> Self {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
        let port = listener.local_addr().expect("address").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let live = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut2, live2) = (cut.clone(), live.clone());
        std::thread::Builder::new()
            .name("test-cut-proxy".into())
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    if cut2.load(Ordering::SeqCst) {
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        continue;
                    }
                    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream_port))
                    else {
                        continue;
                    };
                    {
                        let mut live = live2.lock().expect("relay list");
                        live.push(client.try_clone().expect("clone"));
                        live.push(server.try_clone().expect("clone"));
                    }
                    for (mut from, mut to) in [
                        (
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                        ),
                        (server, client),
                    ] {
                        std::thread::Builder::new()
                            .name("test-cut-proxy-copy".into())
                            .spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                                let _ = from.shutdown(std::net::Shutdown::Both);
                            })
                            .expect("relay copy thread");
                    }
                }
            })
            .expect("relay thread");
        Self { port, cut, live }
    }

    /// The relay's port: a station's URL names it instead of the server's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cuts the link: every relayed connection closes, new ones are refused.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.live.lock().expect("relay list").drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Restores the link.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl PgServer {
    /// A URL for database `db` through `proxy`.
    pub fn url_via(&self, proxy: &CutProxy, db: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{db}",
            self.password,
            proxy.port()
        )
    }
}
