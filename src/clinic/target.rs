//! Where the clinic store is: a `PostgreSQL` connection URL from `--clinic`, or from a
//! connection file that only the station's user can read. A credential never leaves
//! this type: its `Display` and `Debug` show the user, host, port and database,
//! never the password, and every error is worded without the URL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use super::ClinicError;

/// The connection file in the data folder: one line, a `postgres://` URL. Mode 0600
/// (or 0400), owned by the station's user: any other reader is refused, as `ssh`
/// refuses a private key others can read.
pub const CONNECTION_FILE: &str = "clinic.conn";

/// How long a connection attempt may take before the store counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Unacknowledged data older than this ends the connection (Linux `TCP_USER_TIMEOUT`):
/// a cable pulled in the middle of a query is noticed in seconds, not the kernel's
/// 15 minutes.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(5);

/// A clinic store's address, with its credentials kept inside.
#[derive(Clone)]
pub struct ClinicTarget {
    /// The parsed connection settings (with the password, if any).
    config: postgres::Config,
    /// `postgres://user@host:port/db`: what is shown in the bar, logs and errors.
    shown: String,
    /// Whether the URL asked for TLS (`sslmode=require`).
    tls_required: bool,
}

impl fmt::Display for ClinicTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for ClinicTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClinicTarget({})", self.shown)
    }
}

impl ClinicTarget {
    /// Parses a `postgres://` or `postgresql://` URL (libpq's key=value form too).
    ///
    /// # Errors
    /// [`ClinicError::Config`] when it is not one; the text never quotes the URL.
    pub fn parse(url: &str) -> Result<Self, ClinicError> {
        let url = url.trim();
        let mut config = postgres::Config::from_str(url).map_err(|_| {
            // tokio-postgres's parse errors may quote the offending part, which could
            // be the password: the reason is not passed on.
            ClinicError::Config(
                "the clinic store's address is not a PostgreSQL connection URL \
                 (postgres://user@host:port/database)"
                    .into(),
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(ClinicError::Config(
                "the clinic store's address names no host".into(),
            ));
        }
        // An '@' in a password must be written %40: unescaped, the URL parser takes
        // part of the password for the host, which would then be shown.
        let at_in_host = config.get_hosts().iter().any(|h| match h {
            postgres::config::Host::Tcp(name) => name.contains('@'),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.to_string_lossy().contains('@'),
        });
        if at_in_host {
            return Err(ClinicError::Config(
                "the clinic store's address has an '@' after the user's name: write an '@' \
                 in the password as %40"
                    .into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        // The server drops a connection whose station went quiet within about 25 s
        // (its default is hours), so a reconnecting station is not kept waiting by
        // its own dead connection.
        if config.get_options().is_none() {
            config.options(
                "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
            );
        }
        // A link that goes quiet (the server's side of a cut cable) is noticed by
        // keepalives within about 5 s.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(2));
        config.keepalives_interval(Duration::from_secs(1));
        config.keepalives_retries(3);
        let tls_required = config.get_ssl_mode() == postgres::config::SslMode::Require;
        let shown = shown(&config);
        Ok(Self {
            config,
            shown,
            tls_required,
        })
    }

    /// Reads the connection file at `path`.
    ///
    /// # Errors
    /// [`ClinicError::Config`] when it cannot be read, others can read it, or it
    /// holds no URL.
    pub fn from_file(path: &Path) -> Result<Self, ClinicError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let meta = std::fs::metadata(path)
                .map_err(|e| ClinicError::Config(format!("cannot read {}: {e}", path.display())))?;
            if !meta.is_file() {
                return Err(ClinicError::Config(format!(
                    "{} is not a file: the connection file is one line, postgres://...",
                    path.display()
                )));
            }
            if meta.mode() & 0o077 != 0 {
                return Err(ClinicError::Config(format!(
                    "{} can be read by other users (mode {:o}): it holds the clinic store's \
                     password; make it 0600 (chmod 600)",
                    path.display(),
                    meta.mode() & 0o777
                )));
            }
        }
        // Opened without blocking (a FIFO is refused, not waited on), size-limited.
        let text = crate::files::read_text(path, 64 * 1024)
            .map_err(|e| ClinicError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut lines = text
            .trim_start_matches('\u{feff}')
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines.next().ok_or_else(|| {
            ClinicError::Config(format!(
                "{} holds no connection URL (one line: postgres://user:password@host/db)",
                path.display()
            ))
        })?;
        if lines.next().is_some() {
            return Err(ClinicError::Config(format!(
                "{} holds more than one connection URL: one line (comments start with #)",
                path.display()
            )));
        }
        Self::parse(line).map_err(|e| ClinicError::Config(format!("{}: {e}", path.display())))
    }

    /// The store a station uses: `arg` (a URL, or the path of a connection file) when
    /// given, else the data folder's [`CONNECTION_FILE`] when it exists, else none.
    ///
    /// # Errors
    /// As [`Self::parse`] and [`Self::from_file`].
    pub fn resolve(arg: Option<&str>, data_root: &Path) -> Result<Option<Self>, ClinicError> {
        match arg {
            Some(a) if looks_like_url(a) => Self::parse(a).map(Some),
            Some(path) => Self::from_file(&PathBuf::from(path)).map(Some),
            None => {
                let file = data_root.join(CONNECTION_FILE);
                if file.exists() {
                    Self::from_file(&file).map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Connects, with TLS by rustls when the server offers it (required when the URL
    /// says `sslmode=require`), naming the connection `application` in
    /// `pg_stat_activity`.
    ///
    /// # Errors
    /// [`ClinicError::Unreachable`] with the reason (never the URL's password).
    pub fn connect(&self, application: &str) -> Result<postgres::Client, ClinicError> {
        let mut config = self.config.clone();
        config.application_name(application);
        let tls = tls_connector();
        config
            .connect(tls)
            .map_err(|e| ClinicError::Unreachable(format!("{self}: {}", super::pg_reason(&e))))
    }

    /// Whether the URL requires TLS.
    #[must_use]
    pub fn tls_required(&self) -> bool {
        self.tls_required
    }
}

/// Whether `arg` is a URL rather than a file's path.
fn looks_like_url(arg: &str) -> bool {
    let a = arg.trim_start();
    a.starts_with("postgres://") || a.starts_with("postgresql://") || a.contains('=')
}

/// `postgres://user@host:port/db`, without the password.
fn shown(config: &postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config
        .get_ports()
        .first()
        .map_or(String::new(), |p| format!(":{p}"));
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{host}{port}/{db}")
}

/// rustls with the system's trusted roots (Debian's `ca-certificates`), or none when
/// the system has none: a server with a certificate no root vouches for is refused.
fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A malformed system certificate is skipped: it vouches for nobody.
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let t = ClinicTarget::parse("postgres://clinic:S3cretPW@db.example:5433/punctum")
            .expect("test");
        assert_eq!(t.to_string(), "postgres://clinic@db.example:5433/punctum");
        assert!(!format!("{t:?}").contains("S3cretPW"));
        for bad in [
            "postgres://clinic:S3cretPW@db.example:notaport/punctum",
            "postgres://clinic:S3cretPW@/punctum?sslmode=maybe",
            "postgres://clinic:S3cretPW@db.example/punctum?unknown_option=S3cretPW",
            "postgres://clinic:S3cret@PW@db.example/punctum",
        ] {
            let e = ClinicTarget::parse(bad).expect_err("test").to_string();
            assert!(!e.contains("S3cretPW"), "{e}");
        }
    }

    #[test]
    fn a_connection_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("test");
        let file = dir.path().join(CONNECTION_FILE);
        std::fs::write(&file, "# the clinic store\npostgres://c:pw@h/db\n").expect("test");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("test");
        let e = ClinicTarget::resolve(None, dir.path())
            .expect_err("test")
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("test");
        let t = ClinicTarget::resolve(None, dir.path())
            .expect("test")
            .expect("test");
        assert_eq!(t.to_string(), "postgres://c@h:5432/db");
        assert!(
            ClinicTarget::resolve(None, tempfile::tempdir().expect("test").path())
                .expect("test")
                .is_none()
        );
    }
}
