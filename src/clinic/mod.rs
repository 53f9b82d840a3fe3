//! The clinic store: many stations sharing one `PostgreSQL` database.
//!
//! A station works alone on its data folder unless it is given a clinic store
//! (`--clinic URL|FILE`, or `clinic.conn` in the data folder). Then:
//!
//! - **Every write goes to the data folder first**, as without a store. The local
//!   append-only files (`cartridges.jsonl`, `treatments.jsonl`, `audit.jsonl`,
//!   `amendments.jsonl`, `zone-limit-changes.jsonl`, each session record) are the
//!   **outbox**: the `punctum-clinic` thread ([`ClinicLink`]) uploads what lies
//!   beyond each file's cursor, in order, in batches of whole lines, and moves the
//!   cursor in the same transaction as the rows the batch makes
//!   ([`upload`]). A batch sent twice is applied once; a station that dies loses
//!   nothing that reached the store.
//! - **The rules that need the whole clinic ask the store first**, with a deadline
//!   ([`ClinicLink::claim_cartridge`], [`ClinicLink::claim_zone`]): a cartridge claim
//!   is one `INSERT` under a unique index, so two stations never both win.
//! - **When the store cannot be reached** the station says so (a medium alarm), a new
//!   cartridge runs only after the operator confirms a sealed pack (recorded), the
//!   client's history shows as incomplete, and a claim made offline that turns out
//!   to clash with another station's is found on upload (a high alarm at both
//!   stations, recorded on both sessions and in the audit trail). In strict mode
//!   nothing starts without the store.
//!
//! **Boundary:** this module knows SQL and the local files' shapes; the safety rules
//! stay in `safety`, and the station decides what the answers allow.

pub mod accounts;
pub mod claims;
pub mod cmd;
pub mod identity;
pub mod schema;
pub mod streams;
pub mod target;
pub mod upload;
pub mod verdicts;
pub mod worker;
pub mod zones;

pub use identity::StationIdentity;
pub use target::ClinicTarget;
pub use worker::{ClinicEvent, ClinicLink, ClinicStatus, StoreState};

/// What went wrong with the clinic store. No variant's text holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClinicError {
    /// The address or the connection file is wrong.
    #[error("{0}")]
    Config(String),
    /// The store cannot be reached (or stopped answering).
    #[error("clinic store unreachable: {0}")]
    Unreachable(String),
    /// The store's schema is not this station's.
    #[error("clinic store: {0}")]
    Schema(String),
    /// A statement failed on a reachable store.
    #[error("clinic store: {0}")]
    Db(String),
}

impl ClinicError {
    /// Whether a retry later may succeed (the network or the server), as opposed to
    /// a wrong address or schema that needs a person.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }

    /// The reason alone, without the variant's prefix.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Self::Config(why) | Self::Unreachable(why) | Self::Schema(why) | Self::Db(why) => why,
        }
    }
}

/// A `PostgreSQL` error in words: the server's message when it sent one, else the
/// client's (a refused or broken connection). Neither quotes the connection URL.
#[must_use]
pub fn pg_reason(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = cause.source();
    }
    text
}

/// A failed statement: [`ClinicError::Unreachable`] when the connection is gone (the
/// thread reconnects), else [`ClinicError::Db`].
#[must_use]
// By value: it is `map_err`'s function everywhere.
#[allow(clippy::needless_pass_by_value)]
pub fn db_error(e: postgres::Error) -> ClinicError {
    if e.is_closed() || e.as_db_error().is_none() {
        ClinicError::Unreachable(pg_reason(&e))
    } else {
        ClinicError::Db(pg_reason(&e))
    }
}
