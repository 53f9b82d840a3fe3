//! The certificate of a calibration: every point, the fit, the verification, pass or
//! fail with the reasons, and the pen's previous and new values.
//!
//! [`write`] stores it twice in `<data>/certificates/` (folder 0700, files 0600): as
//! pretty-printed JSON ([`load`] reads it back) and as a self-contained HTML page a
//! technician can print or file (inline CSS, tables, an inline SVG plot of measured
//! against commanded, a PASS/FAIL banner). Files are created new and never
//! overwritten: `2026-11-24_101500_SIM00001_depth.json` and `.html`, with `-2`, `-3`…
//! added if that name is taken.
//!
//! Every text put into the HTML is escaped: the technician id and the pen's serial come
//! from outside the station.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::DateTime;

use super::fit::{DepthFit, DepthPoint, SpeedFit, SpeedPoint};
use super::verify::{DepthVerification, SpeedVerification};
use crate::protocol::Calibration;
use crate::store::{DataDir, create_options, sync_parent};

/// The folder, inside the data folder, certificates are written to.
pub const CERTIFICATES_DIR: &str = "certificates";

/// The station's version, as certificates record it.
pub const STATION_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The certificate format this station writes.
pub const CERTIFICATE_FORMAT: u32 = 1;

/// Permission bits of the certificates folder when created here: owner only, like the
/// data folder (certificates name technicians).
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// What was calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationKind {
    /// Depth gain and offset.
    Depth,
    /// Speed sensor gain.
    Speed,
}

impl CalibrationKind {
    /// `depth` or `speed`, as in file names.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Depth => "depth",
            Self::Speed => "speed",
        }
    }
}

/// The pen calibrated, as its `INFO` line named it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PenIdentity {
    /// Model name.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub fw: String,
}

/// The measurements and results of one kind of calibration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measurements {
    /// A depth calibration.
    Depth {
        /// The fit points, under identity calibration, in the order measured.
        fit_points: Vec<DepthPoint>,
        /// The fit; `None` when it was refused (the reason is in `reasons`).
        fit: Option<DepthFit>,
        /// The verification; `None` when it was not reached.
        verification: Option<DepthVerification>,
    },
    /// A speed calibration.
    Speed {
        /// The fit points, under identity calibration, in the order measured.
        fit_points: Vec<SpeedPoint>,
        /// The fit; `None` when it was refused (the reason is in `reasons`).
        fit: Option<SpeedFit>,
        /// The verification; `None` when it was not reached.
        verification: Option<SpeedVerification>,
    },
}

/// What became of the pen's calibration from before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviousFate {
    /// The calibration passed: the new values replaced the previous ones.
    Replaced,
    /// The calibration failed: the previous values were written back and read back.
    Restored,
    /// The calibration failed and the previous values could not be written back (the
    /// pen disconnected): the pen is to be treated as uncalibrated.
    NotRestored,
    /// The calibration failed before anything was written: the pen kept its values.
    Unchanged,
}

/// One calibration's certificate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Certificate {
    /// [`CERTIFICATE_FORMAT`] when written.
    pub format: u32,
    /// The pen.
    pub pen: PenIdentity,
    /// The station's local date and time when the calibration ended.
    pub local_time: DateTime,
    /// The same instant in UTC.
    pub utc: Timestamp,
    /// The technician's id.
    pub technician: String,
    /// The station's version ([`STATION_VERSION`]).
    pub station_version: String,
    /// Every point, the fit and the verification.
    pub measurements: Measurements,
    /// The calibration passed: fit accepted, written, read back equal, verified.
    pub passed: bool,
    /// Why it failed (a refused reading or fit, a failed point, a read-back mismatch,
    /// a lost link), one sentence each; empty when it passed.
    pub reasons: Vec<String>,
    /// The pen's calibration before this one.
    pub previous: Calibration,
    /// What became of it.
    pub previous_fate: PreviousFate,
    /// The calibration written and in effect, when passed; `None` otherwise.
    pub written: Option<Calibration>,
    /// Where the readings came from: a gauge or tachometer read by the technician, or
    /// the simulated pen's `SIM GAUGE` (a practice calibration).
    #[serde(default)]
    pub readings_from: String,
}

impl Certificate {
    /// Depth or speed.
    #[must_use]
    pub fn kind(&self) -> CalibrationKind {
        match self.measurements {
            Measurements::Depth { .. } => CalibrationKind::Depth,
            Measurements::Speed { .. } => CalibrationKind::Speed,
        }
    }
}

/// Why a certificate could not be written or read. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The certificates folder could not be created.
    #[error("cannot create the certificates folder {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A certificate file could not be created, written or synced.
    #[error("cannot write the certificate {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A certificate file could not be read.
    #[error("cannot read the certificate {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A certificate file is not a certificate.
    #[error("{} is not a certificate this station can read: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What serde said (with line and column).
        source: serde_json::Error,
    },
}

/// Writes `certificate` as JSON and HTML into `<data>/certificates/`; returns the
/// paths (JSON, HTML). Never overwrites a file.
pub fn write(
    data_dir: &DataDir,
    certificate: &Certificate,
) -> Result<(PathBuf, PathBuf), CertificateError> {
    let dir = data_dir.path(CERTIFICATES_DIR);
    create_dir(&dir)?;
    // Encoded before any file is created, so a failure leaves nothing half-written.
    let json = serde_json::to_string_pretty(certificate).map_err(|e| CertificateError::Write {
        path: dir.clone(),
        source: io::Error::other(e),
    })? + "\n";
    let html = html_page(certificate);
    let stem = file_stem(certificate);
    for n in 1..1000 {
        let stem = if n == 1 {
            stem.clone()
        } else {
            format!("{stem}-{n}")
        };
        let json_path = dir.join(format!("{stem}.json"));
        let html_path = dir.join(format!("{stem}.html"));
        let Some(json_file) = create_new(&json_path)? else {
            continue;
        };
        let Some(html_file) = create_new(&html_path)? else {
            // An HTML page without its JSON (copied in by hand?): leave it, and take
            // the next name for both.
            drop(json_file);
            fs::remove_file(&json_path).map_err(|source| CertificateError::Write {
                path: json_path.clone(),
                source,
            })?;
            continue;
        };
        fill(json_file, &json_path, json.as_bytes())?;
        fill(html_file, &html_path, html.as_bytes())?;
        sync_parent(&json_path).map_err(|e| CertificateError::Write {
            path: json_path.clone(),
            source: io::Error::other(e),
        })?;
        return Ok((json_path, html_path));
    }
    Err(CertificateError::Write {
        path: dir.join(format!("{stem}.json")),
        source: io::Error::new(
            io::ErrorKind::AlreadyExists,
            "999 certificates of that name already exist",
        ),
    })
}

/// Reads a certificate written by [`write`].
pub fn load(path: &Path) -> Result<Certificate, CertificateError> {
    let text = fs::read_to_string(path).map_err(|source| CertificateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| CertificateError::Decode {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates the certificates folder (mode 0700) if it is missing.
fn create_dir(dir: &Path) -> Result<(), CertificateError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(DIR_MODE);
        let created = builder
            .create(dir)
            // The umask may have taken bits off; set the mode outright.
            .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)));
        created.map_err(|source| CertificateError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
    }
    #[cfg(not(unix))]
    builder
        .create(dir)
        .map_err(|source| CertificateError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Creates `path` new (mode 0600); `None` if it exists already.
fn create_new(path: &Path) -> Result<Option<fs::File>, CertificateError> {
    match create_options().write(true).create_new(true).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(source) => Err(CertificateError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn fill(mut file: fs::File, path: &Path, bytes: &[u8]) -> Result<(), CertificateError> {
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| CertificateError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// `2026-11-24_101500_SIM00001_depth`: sortable by name; the serial is kept to
/// `A-Z a-z 0-9 _ - .` (as INFO allows) so no name can leave the folder.
fn file_stem(certificate: &Certificate) -> String {
    let serial: String = certificate
        .pen
        .serial
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(32)
        .collect();
    let serial = if serial.is_empty() || serial.chars().all(|c| c == '.') {
        "unknown".to_owned()
    } else {
        serial
    };
    format!(
        "{}_{}_{}",
        certificate.local_time.strftime("%Y-%m-%d_%H%M%S"),
        serial,
        certificate.kind().as_str()
    )
}

/// The certificate as a self-contained HTML page (built in
/// [`crate::handout::certificate`], escaped by construction).
#[must_use]
pub fn html_page(c: &Certificate) -> String {
    crate::handout::certificate::certificate_page(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::fit::{DEPTH_FIT_TARGETS_UM, fit_depth};
    use crate::calibration::verify::verify_depth;
    use crate::store::test_support::mode_of;

    fn depth_certificate(technician: &str) -> Certificate {
        let fit_points: Vec<DepthPoint> = DEPTH_FIT_TARGETS_UM
            .iter()
            .map(|&r| DepthPoint {
                commanded_um: r,
                measured_um: 1.03 * f64::from(r) - 40.0,
            })
            .collect();
        let fit = fit_depth(&fit_points).expect("fits");
        let written = Calibration {
            depth_gain_ppm: fit.gain_ppm,
            depth_offset_um: fit.offset_um,
            speed_gain_ppm: 0,
            date: 20_261_124,
            tech: "T1".to_owned(),
        };
        let verification = verify_depth(
            &written,
            &DEPTH_FIT_TARGETS_UM,
            &[
                DepthPoint {
                    commanded_um: 500,
                    measured_um: 503.0,
                },
                DepthPoint {
                    commanded_um: 1500,
                    measured_um: 1496.0,
                },
                DepthPoint {
                    commanded_um: 2000,
                    measured_um: 2001.0,
                },
            ],
        )
        .expect("valid");
        Certificate {
            format: CERTIFICATE_FORMAT,
            pen: PenIdentity {
                model: "MNP-1".to_owned(),
                serial: "SIM00001".to_owned(),
                fw: "1.0.0".to_owned(),
            },
            local_time: "2026-11-24T10:15:00".parse().expect("date"),
            utc: "2026-11-24T09:15:00Z".parse().expect("timestamp"),
            technician: technician.to_owned(),
            station_version: STATION_VERSION.to_owned(),
            passed: verification.passed,
            reasons: verification.reasons.clone(),
            measurements: Measurements::Depth {
                fit_points,
                fit: Some(fit),
                verification: Some(verification),
            },
            previous: Calibration::identity(),
            previous_fate: PreviousFate::Replaced,
            written: Some(written),
            readings_from: "depth gauge, read by the technician".to_owned(),
        }
    }

    /// Equal, but for floats within a part in 10¹²: `serde_json`'s default float parser
    /// may land one unit in the last place off (a residual of 1e-13 µm, say).
    fn assert_same(loaded: &Certificate, written: &Certificate) {
        fn same(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
            use serde_json::Value;
            match (a, b) {
                (Value::Number(x), Value::Number(y)) => {
                    let (x, y) = (x.as_f64().expect("f64"), y.as_f64().expect("f64"));
                    assert!(
                        (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                        "{at}: {x} {y}"
                    );
                }
                (Value::Array(x), Value::Array(y)) => {
                    assert_eq!(x.len(), y.len(), "{at}");
                    for (i, (x, y)) in x.iter().zip(y).enumerate() {
                        same(x, y, &format!("{at}[{i}]"));
                    }
                }
                (Value::Object(x), Value::Object(y)) => {
                    assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
                    for (k, x) in x {
                        same(x, &y[k], &format!("{at}.{k}"));
                    }
                }
                _ => assert_eq!(a, b, "{at}"),
            }
        }
        let a = serde_json::to_value(loaded).expect("encodes");
        let b = serde_json::to_value(written).expect("encodes");
        same(&a, &b, "certificate");
    }

    #[test]
    fn a_certificate_round_trips_owner_only_and_is_never_overwritten() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = DataDir::open(tmp.path().join("data")).expect("data dir");
        let cert = depth_certificate("T1");
        assert!(cert.passed);
        let (json, html) = write(&data, &cert).expect("written");
        let dir = data.path(CERTIFICATES_DIR);
        assert_eq!(json, dir.join("2026-11-24_101500_SIM00001_depth.json"));
        assert_eq!(html, dir.join("2026-11-24_101500_SIM00001_depth.html"));
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(mode_of(&json), 0o600);
        assert_eq!(mode_of(&html), 0o600);
        assert_same(&load(&json).expect("loads"), &cert);
        let first_json = fs::read(&json).expect("read");
        let first_html = fs::read(&html).expect("read");

        // The same name again: a new pair, the first untouched.
        let mut second = cert.clone();
        second.technician = "T2".to_owned();
        let (json2, html2) = write(&data, &second).expect("written");
        assert_eq!(json2, dir.join("2026-11-24_101500_SIM00001_depth-2.json"));
        assert_eq!(html2, dir.join("2026-11-24_101500_SIM00001_depth-2.html"));
        assert_eq!(fs::read(&json).expect("read"), first_json);
        assert_eq!(fs::read(&html).expect("read"), first_html);
        assert_eq!(load(&json2).expect("loads").technician, "T2");

        // An orphan HTML page with the next name is left alone too.
        let orphan = dir.join("2026-11-24_101500_SIM00001_depth-3.html");
        fs::write(&orphan, b"mine").expect("write");
        let (json4, _) = write(&data, &cert).expect("written");
        assert_eq!(json4, dir.join("2026-11-24_101500_SIM00001_depth-4.json"));
        assert_eq!(fs::read(&orphan).expect("read"), b"mine");
        assert!(!dir.join("2026-11-24_101500_SIM00001_depth-3.json").exists());
    }

    #[test]
    fn load_says_what_is_wrong_with_a_file_that_is_not_a_certificate() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("x.json");
        fs::write(&path, "{\"format\": 1}").expect("write");
        let err = load(&path).expect_err("not a certificate");
        assert!(matches!(err, CertificateError::Decode { .. }), "{err}");
        assert!(err.to_string().contains("x.json"), "{err}");
        let err = load(&tmp.path().join("missing.json")).expect_err("missing");
        assert!(matches!(err, CertificateError::Read { .. }), "{err}");
    }

    #[test]
    fn the_html_page_holds_the_points_the_verdict_and_a_plot() {
        let cert = depth_certificate("T1");
        let page = html_page(&cert);
        assert!(page.contains("<div class=\"banner pass\">PASS</div>"));
        assert!(!page.contains("FAIL"));
        for r in DEPTH_FIT_TARGETS_UM {
            assert!(page.contains(&format!("<td class=\"n\">{r}</td>")), "{r}");
        }
        let Measurements::Depth { fit_points, .. } = &cert.measurements else {
            panic!("a depth certificate");
        };
        for p in fit_points {
            assert!(
                page.contains(&format!("<td class=\"n\">{}</td>", p.measured_um)),
                "{p:?}"
            );
        }
        assert!(page.contains("30000 ppm"));
        assert!(page.contains("-40 µm"));
        assert!(page.contains("<svg"));
        assert_eq!(page.matches("<circle").count(), DEPTH_FIT_TARGETS_UM.len());
        assert!(page.contains("SIM00001") && page.contains("1.0.0") && page.contains("MNP-1"));
        assert!(page.contains("Previous (replaced)"));

        let mut failed = cert.clone();
        failed.passed = false;
        failed.reasons = vec!["at 500 µm the gauge read 600 µm".to_owned()];
        failed.previous_fate = PreviousFate::Restored;
        failed.written = None;
        let page = html_page(&failed);
        assert!(page.contains("<div class=\"banner fail\">FAIL</div>"));
        assert!(page.contains("at 500 µm the gauge read 600 µm"));
        assert!(page.contains("Previous (restored)"));
        assert!(page.contains("nothing: not calibrated"));
    }

    #[test]
    fn hostile_text_is_escaped_in_the_html() {
        let hostile = "<script>alert('x')</script>&\"";
        let mut cert = depth_certificate(hostile);
        cert.pen.serial = "<b>S</b>".to_owned();
        cert.reasons = vec!["<img src=x onerror=alert(1)>".to_owned()];
        let page = html_page(&cert);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>S</b>"));
        assert!(!page.contains("<img"));
        // Element text: quotes need no escaping there, `<`, `>`, `&` and `"` are escaped.
        assert!(page.contains("&lt;script&gt;alert('x')&lt;/script&gt;&amp;&quot;"));
        assert!(page.contains("&lt;b&gt;S&lt;/b&gt;"));
        // The file name keeps only what a serial may hold.
        assert_eq!(file_stem(&cert), "2026-11-24_101500_bSb_depth");
        cert.pen.serial = "../..".to_owned();
        assert_eq!(file_stem(&cert), "2026-11-24_101500_unknown_depth");
    }
}
