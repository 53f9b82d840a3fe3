//! Treatment zones and their two depth tiers: the clinic's protocol limit and the
//! compiled ceiling (see the clinical reference, "Zones").
//!
//! The table ships as `assets/zones.json` (depths in mm, multiples of 0.05 mm) and is
//! held in µm. The ceilings are compiled in: a table file may restate them but never
//! change them, and no protocol limit may exceed them. Every defect in a table file is
//! a [`ZoneTableError`] naming the zone and the field; nothing falls back in silence.
//!
//! File format:
//!
//! ```json
//! { "format": "punctum-zones", "version": 1,
//!   "zones": [ { "id": "forehead", "name": "Forehead", "typical_mm": [0.25, 0.50],
//!                "protocol_limit_mm": 0.50, "ceiling_mm": 0.75,
//!                "sources": ["Dr. Pen depth chart", "clinic guides"] }, ... ] }
//! ```
//!
//! All ten zones must appear, each once, in any order; unknown fields are refused so a
//! misspelt key cannot pass unnoticed.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::str::FromStr;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The `format` value of a zone table file.
pub const FORMAT: &str = "punctum-zones";

/// The only zone table file version this station reads.
pub const VERSION: u64 = 1;

/// Depths in a table file are multiples of this step, µm (0.05 mm).
pub const DEPTH_STEP_UM: i32 = 50;

/// A treatment zone, with the reference's id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ZoneId {
    /// Forehead.
    Forehead,
    /// Around the eyes, outside the orbital rim.
    Periorbital,
    /// Nose.
    Nose,
    /// Cheeks.
    Cheeks,
    /// Upper lip and around the mouth.
    Perioral,
    /// Chin and jawline.
    ChinJawline,
    /// Neck.
    Neck,
    /// Décolleté.
    Decollete,
    /// Scalp.
    Scalp,
    /// Body: stretch marks, surgical scars.
    Body,
}

impl ZoneId {
    /// Every zone, in the reference's order (the order of a [`ZoneTable`]).
    pub const ALL: [Self; 10] = [
        Self::Forehead,
        Self::Periorbital,
        Self::Nose,
        Self::Cheeks,
        Self::Perioral,
        Self::ChinJawline,
        Self::Neck,
        Self::Decollete,
        Self::Scalp,
        Self::Body,
    ];

    /// The id used in files and records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.compiled().id
    }

    /// The highest depth any source gives for this zone, µm. Compiled in: no file can
    /// raise it.
    #[must_use]
    pub fn compiled_ceiling_um(self) -> i32 {
        self.compiled().ceiling_um
    }

    /// The reference's default protocol limit, µm.
    #[must_use]
    pub fn default_limit_um(self) -> i32 {
        self.compiled().limit_um
    }

    /// The position in [`ZoneId::ALL`]; the discriminants follow that order.
    fn index(self) -> usize {
        self as usize
    }

    fn compiled(self) -> &'static CompiledZone {
        // COMPILED has one row per variant, in declaration order (a test checks it).
        match COMPILED.get(self.index()) {
            Some(row) => row,
            None => &COMPILED[0],
        }
    }
}

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ZoneId {
    type Err = UnknownZoneId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|z| z.as_str() == s)
            .ok_or_else(|| UnknownZoneId {
                given: s.to_owned(),
            })
    }
}

/// A zone id that is none of [`ZoneId::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown zone id \"{given}\"; valid ids: {}", valid_zone_ids())]
pub struct UnknownZoneId {
    /// The id as given.
    pub given: String,
}

fn valid_zone_ids() -> String {
    ZoneId::ALL.map(ZoneId::as_str).join(", ")
}

/// One zone's compiled reference data.
struct CompiledZone {
    id: &'static str,
    name: &'static str,
    typical_um: (i32, i32),
    limit_um: i32,
    ceiling_um: i32,
    sources: &'static [&'static str],
}

/// The clinical reference's zone table, in `ZoneId` declaration order. The ceilings
/// here are the ones enforced; `assets/zones.json` must agree with all of it (a test
/// checks that the shipped file equals this table).
const COMPILED: [CompiledZone; 10] = [
    CompiledZone {
        id: "forehead",
        name: "Forehead",
        typical_um: (250, 500),
        limit_um: 500,
        ceiling_um: 750,
        sources: &["Dr. Pen depth chart", "clinic guides"],
    },
    CompiledZone {
        id: "periorbital",
        name: "Around the eyes (outside the orbital rim)",
        typical_um: (200, 300),
        limit_um: 300,
        ceiling_um: 500,
        sources: &[
            "Dr. Pen",
            "Bellus (SkinPen maker): never inside the orbital rim",
        ],
    },
    CompiledZone {
        id: "nose",
        name: "Nose",
        typical_um: (250, 500),
        limit_um: 500,
        ceiling_um: 750,
        sources: &["Dr. Pen", "clinic guides"],
    },
    CompiledZone {
        id: "cheeks",
        name: "Cheeks",
        typical_um: (500, 1000),
        limit_um: 1000,
        ceiling_um: 2000,
        sources: &["Dr. Pen (1.0–2.0 on thick skin)"],
    },
    CompiledZone {
        id: "perioral",
        name: "Upper lip and around the mouth",
        typical_um: (250, 500),
        limit_um: 500,
        ceiling_um: 750,
        sources: &["Dr. Pen", "clinic guides"],
    },
    CompiledZone {
        id: "chin_jawline",
        name: "Chin and jawline",
        typical_um: (500, 1000),
        limit_um: 1000,
        ceiling_um: 2000,
        sources: &["Dr. Pen", "clinic guides"],
    },
    CompiledZone {
        id: "neck",
        name: "Neck",
        typical_um: (250, 500),
        limit_um: 500,
        ceiling_um: 1500,
        sources: &[
            "SkinPen cleared for neck wrinkles (K202243) without a stated depth",
            "1.5 is an RF-microneedling review's figure (Shauly et al. 2023)",
        ],
    },
    CompiledZone {
        id: "decollete",
        name: "Décolleté",
        typical_um: (250, 500),
        limit_um: 500,
        ceiling_um: 1000,
        sources: &["no published figure found: conservative"],
    },
    CompiledZone {
        id: "scalp",
        name: "Scalp",
        typical_um: (500, 1000),
        limit_um: 1000,
        ceiling_um: 1500,
        sources: &["clinic guides only (low authority)"],
    },
    CompiledZone {
        id: "body",
        name: "Body: stretch marks, surgical scars",
        typical_um: (1500, 2000),
        limit_um: 1500,
        ceiling_um: 2500,
        sources: &["Dr. Pen", "SkinStylus clearance K200044 (needles ≤ 2.5)"],
    },
];

/// One zone of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Zone {
    /// Which zone.
    pub id: ZoneId,
    /// Its name for people.
    pub name: String,
    /// The typical working range (low, high), µm; informative only.
    pub typical_um: (i32, i32),
    /// The clinic's protocol limit, µm; never above `ceiling_um`.
    pub limit_um: i32,
    /// The compiled ceiling, µm (equal to [`ZoneId::compiled_ceiling_um`]).
    pub ceiling_um: i32,
    /// Where the figures come from.
    pub sources: Vec<String>,
}

impl Zone {
    fn compiled(id: ZoneId) -> Self {
        let c = id.compiled();
        Self {
            id,
            name: c.name.to_owned(),
            typical_um: c.typical_um,
            limit_um: c.limit_um,
            ceiling_um: c.ceiling_um,
            sources: c.sources.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// A zone's protocol limit that differs between two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitChange {
    /// The zone.
    pub zone: ZoneId,
    /// The limit in the older table, µm.
    pub old_limit_um: i32,
    /// The limit in the newer table, µm.
    pub new_limit_um: i32,
}

/// A validated zone table: every zone once, every limit within its compiled ceiling.
///
/// **Invariant:** only built by validating constructors, so a `ZoneTable` in hand is a
/// table the interlock may trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneTable {
    /// Indexed by `ZoneId::index`, i.e. in `ZoneId::ALL` order.
    zones: [Zone; 10],
    /// SHA-256 of `canonical()`, lowercase hex.
    hash_hex: String,
}

impl ZoneTable {
    /// The table shipped in `assets/zones.json`, compiled into the binary.
    ///
    /// A test proves the file parses and equals the compiled reference; should it
    /// somehow not, the compiled reference is used rather than panicking (the two are
    /// the same table).
    #[must_use]
    pub fn builtin() -> Self {
        Self::from_json(include_str!("../../assets/zones.json"))
            .unwrap_or_else(|_| Self::compiled_reference())
    }

    /// The clinical reference's table, from the compiled data alone.
    #[must_use]
    pub fn compiled_reference() -> Self {
        Self::new(ZoneId::ALL.map(Zone::compiled))
    }

    /// Parses and validates a table file's text. A leading UTF-8 byte-order mark
    /// (which some editors write) is skipped: it is not part of the JSON text.
    pub fn from_json(text: &str) -> Result<Self, ZoneTableError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let root: Value = serde_json::from_str(text)
            .map_err(|e| ZoneTableError::new(None, None, ErrorKind::NotJson(e.to_string())))?;
        parse_table(&root)
    }

    /// Reads and validates a table file. A read error names the path.
    pub fn load(path: &Path) -> Result<Self, ZoneTableError> {
        let text =
            crate::files::read_text(path, crate::files::MAX_TEXT_FILE_BYTES).map_err(|e| {
                ZoneTableError::new(
                    None,
                    None,
                    ErrorKind::Read {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    },
                )
            })?;
        Self::from_json(&text)
    }

    /// One zone.
    #[must_use]
    pub fn zone(&self, id: ZoneId) -> &Zone {
        // `zones` has one entry per ZoneId, in ALL order; `get` keeps this panic-free.
        self.zones.get(id.index()).unwrap_or(&self.zones[0])
    }

    /// A zone's protocol limit, µm.
    #[must_use]
    pub fn limit_um(&self, id: ZoneId) -> i32 {
        self.zone(id).limit_um
    }

    /// Every zone, in [`ZoneId::ALL`] order.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter()
    }

    /// SHA-256 of the table's canonical form, lowercase hex: the same table hashes the
    /// same whatever the file's whitespace, key order or zone order.
    #[must_use]
    pub fn hash_hex(&self) -> &str {
        &self.hash_hex
    }

    /// The zones whose protocol limit differs in `newer`, in [`ZoneId::ALL`] order.
    #[must_use]
    pub fn limit_changes(&self, newer: &ZoneTable) -> Vec<LimitChange> {
        ZoneId::ALL
            .into_iter()
            .filter_map(|zone| {
                let (old_limit_um, new_limit_um) = (self.limit_um(zone), newer.limit_um(zone));
                (old_limit_um != new_limit_um).then_some(LimitChange {
                    zone,
                    old_limit_um,
                    new_limit_um,
                })
            })
            .collect()
    }

    /// A copy with one zone's protocol limit changed, under the file's rules: not
    /// negative, a multiple of 0.05 mm, not above the compiled ceiling.
    pub fn with_limit(&self, zone: ZoneId, limit_um: i32) -> Result<ZoneTable, ZoneTableError> {
        check_limit_um(zone, limit_um, &fmt_mm(limit_um)).map_err(|kind| {
            ZoneTableError::new(
                Some(zone.as_str().to_owned()),
                Some("protocol_limit_mm".to_owned()),
                kind,
            )
        })?;
        let mut zones = self.zones.clone();
        if let Some(z) = zones.get_mut(zone.index()) {
            // The same rule as a file's, so the table saved can be loaded again.
            check_typical_within_limit(z.typical_um, limit_um).map_err(|kind| {
                ZoneTableError::new(
                    Some(zone.as_str().to_owned()),
                    Some("typical_mm".to_owned()),
                    kind,
                )
            })?;
            z.limit_um = limit_um;
        }
        Ok(Self::new(zones))
    }

    /// Pretty JSON in the file format; [`ZoneTable::from_json`] reads it back to an
    /// equal table. The shipped `assets/zones.json` is exactly this text.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{{\n  \"format\": \"{FORMAT}\",\n  \"version\": {VERSION},\n  \"zones\": ["
        );
        for (i, z) in self.zones.iter().enumerate() {
            let sources: Vec<String> = z.sources.iter().map(|s| json_string(s)).collect();
            let _ = write!(
                out,
                "{}\n    {{\n      \"id\": \"{}\",\n      \"name\": {},\n      \
                 \"typical_mm\": [{}, {}],\n      \"protocol_limit_mm\": {},\n      \
                 \"ceiling_mm\": {},\n      \"sources\": [{}]\n    }}",
                if i == 0 { "" } else { "," },
                z.id,
                json_string(&z.name),
                fmt_mm(z.typical_um.0),
                fmt_mm(z.typical_um.1),
                fmt_mm(z.limit_um),
                fmt_mm(z.ceiling_um),
                sources.join(", "),
            );
        }
        out.push_str("\n  ]\n}\n");
        out
    }

    fn new(zones: [Zone; 10]) -> Self {
        let hash_hex = hex(&Sha256::digest(canonical(&zones).as_bytes()));
        Self { zones, hash_hex }
    }
}

/// The canonical form hashed by [`ZoneTable::hash_hex`]: compact JSON, fixed key order,
/// zones in `ZoneId::ALL` order, depths as integer µm (no float formatting involved).
fn canonical(zones: &[Zone; 10]) -> String {
    let zones: Vec<Value> = zones
        .iter()
        .map(|z| {
            serde_json::json!({
                "id": z.id.as_str(),
                "name": z.name,
                "typical_um": [z.typical_um.0, z.typical_um.1],
                "protocol_limit_um": z.limit_um,
                "ceiling_um": z.ceiling_um,
                "sources": z.sources,
            })
        })
        .collect();
    // serde_json's Map is a BTreeMap here (no preserve_order), so keys come out sorted.
    serde_json::json!({ "format": FORMAT, "version": VERSION, "zones": zones }).to_string()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail; the fallback only keeps this panic-free.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// µm as mm with at least two decimals: 500 → "0.50", 2500 → "2.50", 525 → "0.525".
fn fmt_mm(um: i32) -> String {
    let sign = if um < 0 { "-" } else { "" };
    let abs = um.unsigned_abs();
    let (whole, frac) = (abs / 1000, abs % 1000);
    if frac % 10 == 0 {
        format!("{sign}{whole}.{:02}", frac / 10)
    } else {
        format!("{sign}{whole}.{frac:03}")
    }
}

/// A defect in a zone table, naming the zone (as given in the file) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", location(.zone.as_deref(), .field.as_deref()))]
pub struct ZoneTableError {
    /// The zone id as written in the file, when the defect is inside a zone.
    pub zone: Option<String>,
    /// The field, when the defect is in one.
    pub field: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl ZoneTableError {
    fn new(zone: Option<String>, field: Option<String>, kind: ErrorKind) -> Self {
        Self { zone, field, kind }
    }
}

fn location(zone: Option<&str>, field: Option<&str>) -> String {
    match (zone, field) {
        (Some(z), Some(f)) => format!("zone \"{z}\", field \"{f}\": "),
        (Some(z), None) => format!("zone \"{z}\": "),
        (None, Some(f)) => format!("field \"{f}\": "),
        (None, None) => String::new(),
    }
}

/// What is wrong in a zone table. Values are kept as written (`"0.6"`), so the message
/// quotes the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read zone table \"{path}\": {message}")]
    Read {
        /// The path as given.
        path: String,
        /// The operating system's reason.
        message: String,
    },
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// `format` is not `"punctum-zones"`.
    #[error("expected \"{FORMAT}\", found {0}")]
    WrongFormat(String),
    /// `version` is not 1.
    #[error("unsupported version {0}; this station reads version {VERSION}")]
    WrongVersion(String),
    /// A required field is absent.
    #[error("missing")]
    Missing,
    /// A field this format does not have (often a misspelling).
    #[error("unknown field")]
    UnknownField,
    /// A field of the wrong JSON type (e.g. a string where a number belongs).
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the field must be.
        expected: &'static str,
        /// The value found, as JSON.
        found: String,
    },
    /// A depth below zero.
    #[error("{0} mm is negative")]
    Negative(String),
    /// A depth above any plausible figure (more than 100 mm), or not finite.
    #[error("{0} mm is out of range")]
    OutOfRange(String),
    /// A depth that is not a multiple of 0.05 mm.
    #[error("{0} mm is not a multiple of 0.05 mm")]
    NotStep(String),
    /// A protocol limit or typical depth above the compiled ceiling.
    #[error("{value} mm is above the compiled ceiling {} mm", fmt_mm(*.ceiling_um))]
    AboveCeiling {
        /// The value as written.
        value: String,
        /// The compiled ceiling, µm.
        ceiling_um: i32,
    },
    /// A `ceiling_mm` other than the compiled ceiling.
    #[error("{value} mm differs from the compiled ceiling {} mm", fmt_mm(*.ceiling_um))]
    CeilingMismatch {
        /// The value as written.
        value: String,
        /// The compiled ceiling, µm.
        ceiling_um: i32,
    },
    /// A typical range whose low end is above its high end.
    #[error("typical range {} to {} mm is reversed", fmt_mm(*.lo_um), fmt_mm(*.hi_um))]
    TypicalReversed {
        /// Low end, µm.
        lo_um: i32,
        /// High end, µm.
        hi_um: i32,
    },
    /// A typical range that starts above the zone's protocol limit.
    #[error(
        "typical range {} to {} mm starts above the protocol limit {} mm",
        fmt_mm(*.lo_um),
        fmt_mm(*.hi_um),
        fmt_mm(*.limit_um)
    )]
    TypicalAboveLimit {
        /// Low end, µm.
        lo_um: i32,
        /// High end, µm.
        hi_um: i32,
        /// The zone's protocol limit, µm.
        limit_um: i32,
    },
    /// A zone id that is not one of the ten.
    #[error("unknown zone id; valid ids: {}", valid_zone_ids())]
    UnknownZone,
    /// A zone listed twice.
    #[error("zone listed twice")]
    DuplicateZone,
    /// A zone absent from the table.
    #[error("zone missing from the table")]
    MissingZone,
}

/// Depths above this are refused as nonsense before any conversion, µm-safe (100 mm).
const MAX_PLAUSIBLE_MM: f64 = 100.0;

fn parse_table(root: &Value) -> Result<ZoneTable, ZoneTableError> {
    let top = |field: &str, kind| ZoneTableError::new(None, Some(field.to_owned()), kind);
    let Value::Object(root) = root else {
        return Err(ZoneTableError::new(
            None,
            None,
            wrong_type("an object", root),
        ));
    };
    for key in root.keys() {
        if !matches!(key.as_str(), "format" | "version" | "zones") {
            return Err(top(key, ErrorKind::UnknownField));
        }
    }
    match root.get("format") {
        None => return Err(top("format", ErrorKind::Missing)),
        Some(Value::String(s)) if s == FORMAT => {}
        Some(other) => return Err(top("format", ErrorKind::WrongFormat(other.to_string()))),
    }
    match root.get("version") {
        None => return Err(top("version", ErrorKind::Missing)),
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(other) => return Err(top("version", ErrorKind::WrongVersion(other.to_string()))),
    }
    let zones = match root.get("zones") {
        None => return Err(top("zones", ErrorKind::Missing)),
        Some(Value::Array(zones)) => zones,
        Some(other) => return Err(top("zones", wrong_type("an array of zones", other))),
    };
    let mut parsed: BTreeMap<ZoneId, Zone> = BTreeMap::new();
    for (i, value) in zones.iter().enumerate() {
        let zone = parse_zone(i, value)?;
        if parsed.contains_key(&zone.id) {
            return Err(ZoneTableError::new(
                Some(zone.id.as_str().to_owned()),
                Some("id".to_owned()),
                ErrorKind::DuplicateZone,
            ));
        }
        parsed.insert(zone.id, zone);
    }
    let mut missing = None;
    let table = ZoneId::ALL.map(|id| {
        parsed.remove(&id).unwrap_or_else(|| {
            missing.get_or_insert(id);
            // Placeholder only: the table is discarded just below.
            Zone::compiled(id)
        })
    });
    if let Some(id) = missing {
        return Err(ZoneTableError::new(
            Some(id.as_str().to_owned()),
            Some("zones".to_owned()),
            ErrorKind::MissingZone,
        ));
    }
    Ok(ZoneTable::new(table))
}

fn parse_zone(i: usize, value: &Value) -> Result<Zone, ZoneTableError> {
    let Value::Object(obj) = value else {
        return Err(ZoneTableError::new(
            None,
            Some(format!("zones[{i}]")),
            wrong_type("an object", value),
        ));
    };
    let id_text = match obj.get("id") {
        Some(Value::String(s)) => s.clone(),
        // Without an id there is no zone to name: the position stands in for it.
        found => {
            let kind = found.map_or(ErrorKind::Missing, |v| wrong_type("a zone id string", v));
            return Err(ZoneTableError::new(
                None,
                Some(format!("zones[{i}].id")),
                kind,
            ));
        }
    };
    let err = |field: &str, kind| {
        ZoneTableError::new(Some(id_text.clone()), Some(field.to_owned()), kind)
    };
    let id: ZoneId = id_text
        .parse()
        .map_err(|_| err("id", ErrorKind::UnknownZone))?;
    if let Some(key) = obj.keys().find(|k| !ZONE_FIELDS.contains(&k.as_str())) {
        return Err(err(key, ErrorKind::UnknownField));
    }
    let field = |name: &'static str| {
        obj.get(name)
            .ok_or(ErrorKind::Missing)
            .map_err(|k| err(name, k))
    };
    let name = match field("name")? {
        Value::String(s) if !s.trim().is_empty() => s.clone(),
        other => return Err(err("name", wrong_type("a non-empty string", other))),
    };
    // The ceiling first: the limit's error then quotes the ceiling the file agrees on.
    let ceiling_um = parse_ceiling(id, field("ceiling_mm")?).map_err(|k| err("ceiling_mm", k))?;
    let limit_value = field("protocol_limit_mm")?;
    let limit_um = depth_um(limit_value)
        .and_then(|um| check_limit_um(id, um, &limit_value.to_string()).map(|()| um))
        .map_err(|k| err("protocol_limit_mm", k))?;
    let typical_um =
        parse_typical(field("typical_mm")?, ceiling_um).map_err(|k| err("typical_mm", k))?;
    check_typical_within_limit(typical_um, limit_um).map_err(|k| err("typical_mm", k))?;
    let sources = parse_sources(field("sources")?).map_err(|k| err("sources", k))?;
    Ok(Zone {
        id,
        name,
        typical_um,
        limit_um,
        ceiling_um,
        sources,
    })
}

/// The fields of a zone object.
const ZONE_FIELDS: [&str; 6] = [
    "id",
    "name",
    "typical_mm",
    "protocol_limit_mm",
    "ceiling_mm",
    "sources",
];

/// A stated ceiling must be the compiled one; returns it, µm.
fn parse_ceiling(id: ZoneId, value: &Value) -> Result<i32, ErrorKind> {
    let ceiling_um = id.compiled_ceiling_um();
    if depth_um(value)? == ceiling_um {
        Ok(ceiling_um)
    } else {
        Err(ErrorKind::CeilingMismatch {
            value: value.to_string(),
            ceiling_um,
        })
    }
}

/// `[low, high]` in mm → µm: low not above high, high not above the ceiling.
fn parse_typical(value: &Value, ceiling_um: i32) -> Result<(i32, i32), ErrorKind> {
    let Value::Array(pair) = value else {
        return Err(wrong_type(
            "an array [low, high] of two depths in mm",
            value,
        ));
    };
    let [lo, hi] = pair.as_slice() else {
        return Err(wrong_type(
            "an array [low, high] of two depths in mm",
            value,
        ));
    };
    let (lo_um, hi_um) = (depth_um(lo)?, depth_um(hi)?);
    if lo_um > hi_um {
        return Err(ErrorKind::TypicalReversed { lo_um, hi_um });
    }
    if hi_um > ceiling_um {
        return Err(ErrorKind::AboveCeiling {
            value: hi.to_string(),
            ceiling_um,
        });
    }
    Ok((lo_um, hi_um))
}

fn parse_sources(value: &Value) -> Result<Vec<String>, ErrorKind> {
    let Value::Array(items) = value else {
        return Err(wrong_type("an array of strings", value));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong_type("an array of strings", other)),
        })
        .collect()
}

/// A typical range must start at or below the protocol limit: a range that lies
/// above it describes depths the station would refuse. Its high end may pass the
/// limit (the clinical reference's body row: typical 1.5–2.0 mm, limit 1.50 mm).
fn check_typical_within_limit(typical_um: (i32, i32), limit_um: i32) -> Result<(), ErrorKind> {
    if typical_um.0 > limit_um {
        return Err(ErrorKind::TypicalAboveLimit {
            lo_um: typical_um.0,
            hi_um: typical_um.1,
            limit_um,
        });
    }
    Ok(())
}

/// The rules every protocol limit obeys, from a file or from [`ZoneTable::with_limit`].
fn check_limit_um(zone: ZoneId, limit_um: i32, shown: &str) -> Result<(), ErrorKind> {
    if limit_um < 0 {
        return Err(ErrorKind::Negative(shown.to_owned()));
    }
    if limit_um % DEPTH_STEP_UM != 0 {
        return Err(ErrorKind::NotStep(shown.to_owned()));
    }
    let ceiling_um = zone.compiled_ceiling_um();
    if limit_um > ceiling_um {
        return Err(ErrorKind::AboveCeiling {
            value: shown.to_owned(),
            ceiling_um,
        });
    }
    Ok(())
}

/// A JSON depth in mm → µm: a number, not negative, at most 100 mm, a multiple of
/// 0.05 mm. Floats such as 0.6 are 0.6000000000000001 × 1000, so the value is rounded
/// to whole µm and the residual must be below 1e-6 mm.
fn depth_um(value: &Value) -> Result<i32, ErrorKind> {
    let Some(mm) = value.as_f64() else {
        return Err(wrong_type("a depth in mm (a number)", value));
    };
    let shown = value.to_string();
    if !mm.is_finite() || mm > MAX_PLAUSIBLE_MM {
        return Err(ErrorKind::OutOfRange(shown));
    }
    if mm < 0.0 {
        return Err(ErrorKind::Negative(shown));
    }
    let um = (mm * 1000.0).round();
    if (mm - um / 1000.0).abs() >= 1e-6 {
        return Err(ErrorKind::NotStep(shown));
    }
    // In range: 0 ≤ um ≤ 100_000 was checked above, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let um = um as i32;
    if um % DEPTH_STEP_UM != 0 {
        return Err(ErrorKind::NotStep(shown));
    }
    Ok(um)
}

fn wrong_type(expected: &'static str, found: &Value) -> ErrorKind {
    let mut found = found.to_string();
    // Quote enough of the value to recognise it, not a whole nested object.
    if found.chars().count() > 40 {
        found = found.chars().take(40).collect::<String>() + "…";
    }
    ErrorKind::WrongType { expected, found }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    const ASSET: &str = include_str!("../../assets/zones.json");

    #[test]
    fn compiled_rows_follow_the_enum_order() {
        for (i, id) in ZoneId::ALL.into_iter().enumerate() {
            assert_eq!(id.index(), i);
            assert_eq!(COMPILED[i].id, id.as_str());
            assert_eq!(id.as_str().parse::<ZoneId>(), Ok(id));
            assert_eq!(
                serde_json::to_string(&id).ok(),
                Some(format!("\"{id}\"")),
                "serde id of {id:?}"
            );
        }
    }

    #[test]
    fn ids_ceilings_and_defaults_are_the_references() {
        fn check(id: ZoneId, expected: (&str, i32, i32)) {
            assert_eq!(
                (id.as_str(), id.compiled_ceiling_um(), id.default_limit_um()),
                expected,
                "{id:?}"
            );
        }
        check(ZoneId::Forehead, ("forehead", 750, 500));
        check(ZoneId::Periorbital, ("periorbital", 500, 300));
        check(ZoneId::Nose, ("nose", 750, 500));
        check(ZoneId::Cheeks, ("cheeks", 2000, 1000));
        check(ZoneId::Perioral, ("perioral", 750, 500));
        check(ZoneId::ChinJawline, ("chin_jawline", 2000, 1000));
        check(ZoneId::Neck, ("neck", 1500, 500));
        check(ZoneId::Decollete, ("decollete", 1000, 500));
        check(ZoneId::Scalp, ("scalp", 1500, 1000));
        check(ZoneId::Body, ("body", 2500, 1500));
    }

    #[test]
    fn unknown_zone_id_lists_the_valid_ones() {
        let Err(e) = "lips".parse::<ZoneId>() else {
            panic!("lips parsed");
        };
        assert_eq!(
            e.to_string(),
            "unknown zone id \"lips\"; valid ids: forehead, periorbital, nose, cheeks, \
             perioral, chin_jawline, neck, decollete, scalp, body"
        );
    }

    #[test]
    fn builtin_table_is_the_reference_and_the_asset_is_canonical() {
        let parsed = ZoneTable::from_json(ASSET).expect("the shipped table parses");
        assert_eq!(parsed, ZoneTable::compiled_reference());
        assert_eq!(ZoneTable::builtin(), parsed);
        // The asset is exactly to_json's output, so rewriting it changes nothing.
        assert_eq!(parsed.to_json(), ASSET);
        let periorbital = parsed.zone(ZoneId::Periorbital);
        assert_eq!(
            periorbital.name,
            "Around the eyes (outside the orbital rim)"
        );
        assert_eq!(periorbital.typical_um, (200, 300));
        assert_eq!(parsed.limit_um(ZoneId::Body), 1500);
        assert_eq!(
            parsed.zones().map(|z| z.id).collect::<Vec<_>>(),
            ZoneId::ALL.to_vec()
        );
    }

    /// The builtin table's JSON with one zone's object edited by `edit`.
    fn edited(zone: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut root: Value = serde_json::from_str(ASSET).expect("asset is JSON");
        let zones = root["zones"].as_array_mut().expect("zones array");
        let obj = zones
            .iter_mut()
            .find(|z| z["id"] == zone)
            .and_then(Value::as_object_mut)
            .expect("zone present");
        edit(obj);
        root.to_string()
    }

    fn edited_root(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut root: Value = serde_json::from_str(ASSET).expect("asset is JSON");
        edit(root.as_object_mut().expect("object"));
        root.to_string()
    }

    fn set(zone: &str, field: &str, value: Value) -> String {
        let field = field.to_owned();
        edited(zone, move |z| {
            z.insert(field, value);
        })
    }

    fn check_error(text: &str, expected: &str) {
        match ZoneTable::from_json(text) {
            Ok(_) => panic!("accepted, expected: {expected}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }

    #[test]
    fn value_and_id_defects_name_zone_and_field() {
        use serde_json::json;
        let check = check_error;
        check(
            &set("periorbital", "protocol_limit_mm", json!(0.6)),
            "zone \"periorbital\", field \"protocol_limit_mm\": 0.6 mm is above the compiled ceiling 0.50 mm",
        );
        check(
            &set("neck", "ceiling_mm", json!(2.0)),
            "zone \"neck\", field \"ceiling_mm\": 2.0 mm differs from the compiled ceiling 1.50 mm",
        );
        check(
            &set("neck", "ceiling_mm", json!(1.0)),
            "zone \"neck\", field \"ceiling_mm\": 1.0 mm differs from the compiled ceiling 1.50 mm",
        );
        check(
            &edited_root(|r| {
                let zones = r["zones"].as_array_mut().expect("zones");
                zones.retain(|z| z["id"] != "scalp");
            }),
            "zone \"scalp\", field \"zones\": zone missing from the table",
        );
        check(
            &set("nose", "id", json!("lips")),
            "zone \"lips\", field \"id\": unknown zone id; valid ids: forehead, periorbital, \
             nose, cheeks, perioral, chin_jawline, neck, decollete, scalp, body",
        );
        check(
            &set("nose", "id", json!("forehead")),
            "zone \"forehead\", field \"id\": zone listed twice",
        );
        check(
            &set("cheeks", "protocol_limit_mm", json!(-0.5)),
            "zone \"cheeks\", field \"protocol_limit_mm\": -0.5 mm is negative",
        );
        check(
            &set("cheeks", "protocol_limit_mm", json!("1.0")),
            "zone \"cheeks\", field \"protocol_limit_mm\": expected a depth in mm (a number), found \"1.0\"",
        );
        check(
            &set("cheeks", "protocol_limit_mm", Value::Null),
            "zone \"cheeks\", field \"protocol_limit_mm\": expected a depth in mm (a number), found null",
        );
        check(
            &set("cheeks", "protocol_limit_mm", json!(0.52)),
            "zone \"cheeks\", field \"protocol_limit_mm\": 0.52 mm is not a multiple of 0.05 mm",
        );
        check(
            &set("cheeks", "protocol_limit_mm", json!(0.5001)),
            "zone \"cheeks\", field \"protocol_limit_mm\": 0.5001 mm is not a multiple of 0.05 mm",
        );
        check(
            &set("cheeks", "protocol_limit_mm", json!(1e300)),
            "zone \"cheeks\", field \"protocol_limit_mm\": 1e+300 mm is out of range",
        );
        check(
            &set("cheeks", "typical_mm", json!([1.0, 0.5])),
            "zone \"cheeks\", field \"typical_mm\": typical range 1.00 to 0.50 mm is reversed",
        );
        check(
            &set("cheeks", "typical_mm", json!([0.5])),
            "zone \"cheeks\", field \"typical_mm\": expected an array [low, high] of two depths in mm, found [0.5]",
        );
        check(
            &set("cheeks", "typical_mm", json!([0.5, 2.5])),
            "zone \"cheeks\", field \"typical_mm\": 2.5 mm is above the compiled ceiling 2.00 mm",
        );
        check(
            &set("cheeks", "typical_mm", json!([1.5, 2.0])),
            "zone \"cheeks\", field \"typical_mm\": typical range 1.50 to 2.00 mm starts above the protocol limit 1.00 mm",
        );
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let with_bom = format!("\u{feff}{ASSET}");
        assert_eq!(
            ZoneTable::from_json(&with_bom).expect("a BOM is not an error"),
            ZoneTable::builtin()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zones.json");
        std::fs::write(&path, with_bom.as_bytes()).expect("write");
        assert_eq!(
            ZoneTable::load(&path).expect("a BOM file loads"),
            ZoneTable::builtin()
        );
    }

    #[test]
    fn structure_defects_name_zone_and_field() {
        use serde_json::json;
        let check = check_error;
        check(
            &set("neck", "ceiling_mm", json!(1.0)),
            "zone \"neck\", field \"ceiling_mm\": 1.0 mm differs from the compiled ceiling 1.50 mm",
        );
        check(
            &edited("scalp", |z| {
                z.remove("protocol_limit_mm");
            }),
            "zone \"scalp\", field \"protocol_limit_mm\": missing",
        );
        check(
            &edited("scalp", |z| {
                z.remove("sources");
            }),
            "zone \"scalp\", field \"sources\": missing",
        );
        check(
            &set("scalp", "sources", json!(["ok", 3])),
            "zone \"scalp\", field \"sources\": expected an array of strings, found 3",
        );
        check(
            &set("scalp", "name", json!("")),
            "zone \"scalp\", field \"name\": expected a non-empty string, found \"\"",
        );
        check(
            &set("scalp", "protocol_limit", json!(1.0)),
            "zone \"scalp\", field \"protocol_limit\": unknown field",
        );
        check(
            &edited_root(|r| {
                r["zones"][3].as_object_mut().expect("zone").remove("id");
            }),
            "field \"zones[3].id\": missing",
        );
        check("not json", "not JSON: expected ident at line 1 column 2");
        check("[]", "expected an object, found []");
        check(
            &edited_root(|r| {
                r.insert("format".into(), json!("punctum-zone"));
            }),
            "field \"format\": expected \"punctum-zones\", found \"punctum-zone\"",
        );
        check(
            &edited_root(|r| {
                r.insert("version".into(), json!(2));
            }),
            "field \"version\": unsupported version 2; this station reads version 1",
        );
        check(
            &edited_root(|r| {
                r.remove("zones");
            }),
            "field \"zones\": missing",
        );
    }

    #[test]
    fn zone_and_field_are_carried_as_data() {
        let e = ZoneTable::from_json(&set("periorbital", "protocol_limit_mm", 0.6.into()))
            .expect_err("above ceiling");
        assert_eq!(e.zone.as_deref(), Some("periorbital"));
        assert_eq!(e.field.as_deref(), Some("protocol_limit_mm"));
        assert_eq!(
            e.kind,
            ErrorKind::AboveCeiling {
                value: "0.6".into(),
                ceiling_um: 500
            }
        );
    }

    #[test]
    fn accepted_edits_parse_to_the_expected_limit() {
        fn check(text: &str, zone: ZoneId, expected_um: i32) {
            let table = ZoneTable::from_json(text).expect("accepted");
            assert_eq!(table.limit_um(zone), expected_um);
        }
        check(
            &set("periorbital", "protocol_limit_mm", 0.5.into()),
            ZoneId::Periorbital,
            500,
        );
        check(
            &set("cheeks", "protocol_limit_mm", 0.6.into()),
            ZoneId::Cheeks,
            600,
        );
        // A clinic that does not treat a zone sets its limit, and its typical range, to 0.
        check(
            &edited("cheeks", |z| {
                z.insert("protocol_limit_mm".into(), 0.0.into());
                z.insert("typical_mm".into(), serde_json::json!([0.0, 0.0]));
            }),
            ZoneId::Cheeks,
            0,
        );
        check(
            &set("body", "protocol_limit_mm", 2.5.into()),
            ZoneId::Body,
            2500,
        );
        check(
            &set("body", "protocol_limit_mm", 2.into()),
            ZoneId::Body,
            2000,
        );
    }

    #[test]
    fn hash_ignores_layout_and_follows_content() {
        let builtin = ZoneTable::builtin();
        let compact: Value = serde_json::from_str(ASSET).expect("JSON");
        let mut reversed = compact.clone();
        reversed["zones"].as_array_mut().expect("zones").reverse();
        let same = [
            compact.to_string(),
            serde_json::to_string_pretty(&compact).expect("serialise"),
            reversed.to_string(),
            ASSET.replace("0.50", "0.5"),
        ];
        for text in same {
            let table = ZoneTable::from_json(&text).expect("parses");
            assert_eq!(table.hash_hex(), builtin.hash_hex(), "{text}");
        }
        assert_eq!(builtin.hash_hex().len(), 64);
        let changed = builtin.with_limit(ZoneId::Neck, 750).expect("allowed");
        assert_ne!(changed.hash_hex(), builtin.hash_hex());
        let back = changed.with_limit(ZoneId::Neck, 500).expect("allowed");
        assert_eq!(back.hash_hex(), builtin.hash_hex());
    }

    #[test]
    fn limit_changes_lists_each_changed_zone() {
        fn check(edits: &[(ZoneId, i32)], expected: &[(ZoneId, i32, i32)]) {
            let old = ZoneTable::builtin();
            let mut new = old.clone();
            for &(zone, limit_um) in edits {
                new = new.with_limit(zone, limit_um).expect("allowed");
            }
            let expected: Vec<LimitChange> = expected
                .iter()
                .map(|&(zone, old_limit_um, new_limit_um)| LimitChange {
                    zone,
                    old_limit_um,
                    new_limit_um,
                })
                .collect();
            assert_eq!(old.limit_changes(&new), expected);
        }
        check(&[], &[]);
        check(&[(ZoneId::Neck, 500)], &[]);
        check(
            &[(ZoneId::Body, 2000), (ZoneId::Forehead, 250)],
            &[(ZoneId::Forehead, 500, 250), (ZoneId::Body, 1500, 2000)],
        );
    }

    #[test]
    fn with_limit_follows_the_file_rules() {
        fn check(zone: ZoneId, limit_um: i32, expected: Result<i32, &str>) {
            let got = ZoneTable::builtin()
                .with_limit(zone, limit_um)
                .map(|t| t.limit_um(zone))
                .map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{zone} {limit_um}");
        }
        check(ZoneId::Periorbital, 500, Ok(500));
        check(
            ZoneId::Periorbital,
            550,
            Err(
                "zone \"periorbital\", field \"protocol_limit_mm\": 0.55 mm is above the compiled ceiling 0.50 mm",
            ),
        );
        check(
            ZoneId::Body,
            2550,
            Err(
                "zone \"body\", field \"protocol_limit_mm\": 2.55 mm is above the compiled ceiling 2.50 mm",
            ),
        );
        check(
            ZoneId::Cheeks,
            525,
            Err(
                "zone \"cheeks\", field \"protocol_limit_mm\": 0.525 mm is not a multiple of 0.05 mm",
            ),
        );
        check(
            ZoneId::Cheeks,
            -50,
            Err("zone \"cheeks\", field \"protocol_limit_mm\": -0.05 mm is negative"),
        );
        check(
            ZoneId::Cheeks,
            i32::MIN,
            Err("zone \"cheeks\", field \"protocol_limit_mm\": -2147483.648 mm is negative"),
        );
    }

    #[test]
    fn to_json_round_trips() {
        let table = ZoneTable::builtin()
            .with_limit(ZoneId::Scalp, 1450)
            .expect("allowed");
        let back = ZoneTable::from_json(&table.to_json()).expect("round trip");
        assert_eq!(back, table);
    }

    #[test]
    fn load_reads_a_file_and_names_the_path_when_it_cannot() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("zones.json");
        std::fs::write(&path, ASSET).expect("write");
        assert_eq!(ZoneTable::load(&path), Ok(ZoneTable::builtin()));
        let missing = dir.path().join("absent.json");
        let e = ZoneTable::load(&missing).expect_err("absent");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read zone table \"{}\"", missing.display())),
            "{e}"
        );
    }

    #[test]
    fn fmt_mm_shows_at_least_two_decimals() {
        fn check(um: i32, expected: &str) {
            assert_eq!(fmt_mm(um), expected);
        }
        check(0, "0.00");
        check(500, "0.50");
        check(750, "0.75");
        check(2500, "2.50");
        check(525, "0.525");
        check(-50, "-0.05");
    }
}
