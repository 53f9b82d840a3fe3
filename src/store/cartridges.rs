//! The used-cartridge registry: which cartridge has run in which session, kept in
//! `cartridges.jsonl` so a single-use cartridge is still known as used after a
//! restart, and by every station that shares the data folder.
//!
//! A cartridge is **claimed** for a session before the needle first starts with it
//! ([`CartridgeRegistry::claim`]): under the file's exclusive lock the registry reads
//! what other processes appended since its last read, and appends the claim only if
//! no other session holds the cartridge. Two stations starting with one cartridge in
//! the same millisecond cannot both claim it. A claim whose start did not happen is
//! **released** by a later line (the earlier line stays).
//!
//! The registry records; it does not refuse. Whether a cartridge seen in another
//! session may run is the safety module's call, made with [`CartridgeRegistry::is_used_outside`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;

use super::jsonl::Tail;
use super::{DataDir, StoreError, jsonl};
use crate::protocol::CartridgeId;

/// The registry's file in the data folder.
pub const CARTRIDGES_FILE: &str = "cartridges.jsonl";

/// One use of a cartridge: a line of `cartridges.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CartridgeUse {
    /// The cartridge.
    pub id: CartridgeId,
    /// The session it ran in.
    pub session_id: String,
    /// The client treated in that session.
    pub client: String,
    /// When the motor first ran with it in that session (when it was claimed, just
    /// before the start).
    pub first_run: Timestamp,
    /// This line releases the claim of (`id`, `session_id`): the start it was made for
    /// did not happen. An earlier claim stays on file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

impl CartridgeUse {
    /// A use (a claim) of `id` by `session_id`, for `client`, at `at`.
    #[must_use]
    pub fn new(id: CartridgeId, session_id: &str, client: &str, at: Timestamp) -> Self {
        Self {
            id,
            session_id: session_id.to_owned(),
            client: client.to_owned(),
            first_run: at,
            released: false,
        }
    }
}

/// What [`CartridgeRegistry::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartridgeClaim {
    /// The cartridge is this session's: `new` when this call claimed it.
    Claimed {
        /// This call wrote the claim (false: the session held it already).
        new: bool,
    },
    /// Another session holds it.
    UsedIn(CartridgeUse),
}

/// Every cartridge that has run, and in which sessions.
#[derive(Debug, Clone)]
pub struct CartridgeRegistry {
    /// The registry's file.
    path: PathBuf,
    /// Reads on from where the last read stopped.
    tail: Tail,
    /// Uses per cartridge, in the order they were recorded; at most one per session.
    uses: BTreeMap<CartridgeId, Vec<CartridgeUse>>,
    /// One line per unreadable line of the file, as `file:line: reason`.
    warnings: Vec<String>,
}

impl CartridgeRegistry {
    /// Loads the registry from `cartridges.jsonl` in `dir` (empty if the file is
    /// missing). Unreadable lines are left in the file and listed in [`Self::warnings`].
    pub fn load(dir: &DataDir) -> Result<CartridgeRegistry, StoreError> {
        let path = dir.path(CARTRIDGES_FILE);
        let mut registry = CartridgeRegistry {
            tail: Tail::new(&path),
            path,
            uses: BTreeMap::new(),
            warnings: Vec::new(),
        };
        registry.warnings = registry.refresh()?;
        Ok(registry)
    }

    /// Takes in what was appended to the file since the last read (by other stations
    /// sharing the folder, too). Returns the warnings for new unreadable lines.
    pub fn refresh(&mut self) -> Result<Vec<String>, StoreError> {
        let loaded = self.tail.read_new::<CartridgeUse>()?;
        let warnings = loaded.warnings(&self.path);
        for entry in loaded.entries {
            self.apply(entry);
        }
        Ok(warnings)
    }

    /// Claims `id` for `session_id` (for `client`, at `at`), unless another session
    /// holds it: one step under the file's lock, on everything appended until then.
    /// A cartridge the session holds already is its own without the lock (no other
    /// session can claim it away): a start again in the session, or the `RUN`'s
    /// acknowledgement, never waits on another station's lock.
    pub fn claim(
        &mut self,
        id: CartridgeId,
        session_id: &str,
        client: &str,
        at: Timestamp,
    ) -> Result<CartridgeClaim, StoreError> {
        if self.held(id, session_id) {
            return Ok(CartridgeClaim::Claimed { new: false });
        }
        jsonl::under_lock(self, |registry, locked| {
            if let Some(other) = registry.used_outside(id, Some(session_id)) {
                return Ok(CartridgeClaim::UsedIn(other.clone()));
            }
            if registry.held(id, session_id) {
                return Ok(CartridgeClaim::Claimed { new: false });
            }
            jsonl::append_folded(
                registry,
                locked,
                CartridgeUse::new(id, session_id, client, at),
            )?;
            Ok(CartridgeClaim::Claimed { new: true })
        })
    }

    /// Releases the claim of `id` by `session_id`: the start it was made for did not
    /// happen. A line says so; the claim's line stays.
    pub fn release(
        &mut self,
        id: CartridgeId,
        session_id: &str,
        client: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let entry = CartridgeUse {
            released: true,
            ..CartridgeUse::new(id, session_id, client, at)
        };
        jsonl::append_under_lock(self, entry)
    }

    /// The first recorded use of `id`, if it has ever run.
    #[must_use]
    pub fn used_in(&self, id: CartridgeId) -> Option<&CartridgeUse> {
        self.uses.get(&id).and_then(|uses| uses.first())
    }

    /// Every recorded use of `id`, first first.
    #[must_use]
    pub fn uses_of(&self, id: CartridgeId) -> &[CartridgeUse] {
        self.uses.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Whether `id` has run in any session other than `session_id`. A cartridge
    /// re-inserted within its own session is not "used outside".
    #[must_use]
    pub fn is_used_outside(&self, id: CartridgeId, session_id: &str) -> bool {
        self.used_outside(id, Some(session_id)).is_some()
    }

    /// The first recorded use of `id` by a session other than `session_id` (by any
    /// session with `None`).
    #[must_use]
    pub fn used_outside(&self, id: CartridgeId, session_id: Option<&str>) -> Option<&CartridgeUse> {
        self.uses_of(id)
            .iter()
            .find(|u| Some(u.session_id.as_str()) != session_id)
    }

    /// `session_id` holds `id` (claimed or ran, not released).
    fn held(&self, id: CartridgeId, session_id: &str) -> bool {
        self.uses_of(id).iter().any(|u| u.session_id == session_id)
    }

    /// Records that `id` ran in `session_id` for `client` at `at`, appending it to the
    /// file and syncing before returning. Recording the same (cartridge, session) again
    /// does nothing. On error nothing is recorded in memory either, so the registry
    /// never claims more than the disk holds.
    pub fn mark_used(
        &mut self,
        id: CartridgeId,
        session_id: &str,
        client: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        match self.claim(id, session_id, client, at)? {
            CartridgeClaim::Claimed { .. } => Ok(()),
            // Recorded beside the other session's use: this is what ran.
            CartridgeClaim::UsedIn(_) => {
                jsonl::append_under_lock(self, CartridgeUse::new(id, session_id, client, at))
            }
        }
    }

    /// Folds in a use read from a session record, without writing anything: the
    /// record is its durable copy. Both the registry file and the records are read at
    /// start, so a cartridge whose registry line was lost still counts as used.
    pub fn learn(&mut self, entry: CartridgeUse) {
        self.apply(entry);
    }

    /// The unreadable lines found at load, as `file:line: reason`.
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Adds a use unless its (cartridge, session) is already known, keeping the
    /// earliest line: a repeated line in the file changes nothing. A release takes the
    /// (cartridge, session) use away.
    fn apply(&mut self, entry: CartridgeUse) {
        let uses = self.uses.entry(entry.id).or_default();
        if entry.released {
            uses.retain(|u| u.session_id != entry.session_id);
        } else if uses.iter().all(|u| u.session_id != entry.session_id) {
            uses.push(entry);
        }
    }
}

impl jsonl::Folded for CartridgeRegistry {
    type Record = CartridgeUse;

    fn tail_mut(&mut self) -> &mut Tail {
        &mut self.tail
    }

    fn apply(&mut self, record: CartridgeUse) {
        CartridgeRegistry::apply(self, record);
    }

    fn warn(&mut self, warnings: Vec<String>) {
        self.warnings.extend(warnings);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::test_support::{Unwritable, mode_of};
    use super::*;

    const A: CartridgeId = CartridgeId(0x0123_4567_89AB_CDEF);
    const B: CartridgeId = CartridgeId(0xFEDC_BA98_7654_3210);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("timestamp")
    }

    fn data_dir() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path().join("punctum")).expect("data dir");
        (tmp, dir)
    }

    #[test]
    fn registry_survives_a_reload() {
        let (_tmp, dir) = data_dir();
        let mut registry = CartridgeRegistry::load(&dir).expect("load");
        assert_eq!(registry.used_in(A), None);
        registry
            .mark_used(A, "s1", "client-7", at(0))
            .expect("mark used");

        let reloaded = CartridgeRegistry::load(&dir).expect("load");
        let used = reloaded.used_in(A).expect("ok");
        assert_eq!(used.session_id, "s1");
        assert_eq!(used.client, "client-7");
        assert_eq!(used.first_run, at(0));
        assert_eq!(reloaded.used_in(B), None);
        assert!(reloaded.warnings().is_empty());
    }

    #[test]
    fn same_session_reuse_is_not_used_outside_a_different_session_is() {
        let (_tmp, dir) = data_dir();
        let mut registry = CartridgeRegistry::load(&dir).expect("load");
        registry.mark_used(A, "s1", "c", at(0)).expect("mark used");
        assert!(!registry.is_used_outside(A, "s1"));
        assert!(registry.is_used_outside(A, "s2"));
        assert!(!registry.is_used_outside(B, "s1"));

        let reloaded = CartridgeRegistry::load(&dir).expect("load");
        assert!(!reloaded.is_used_outside(A, "s1"));
        assert!(reloaded.is_used_outside(A, "s2"));
    }

    #[test]
    fn mark_used_is_idempotent_per_session() {
        let (_tmp, dir) = data_dir();
        let mut registry = CartridgeRegistry::load(&dir).expect("load");
        registry.mark_used(A, "s1", "c", at(0)).expect("mark used");
        registry.mark_used(A, "s1", "c", at(60)).expect("mark used");
        let text = fs::read_to_string(dir.path(CARTRIDGES_FILE)).expect("fs");
        assert_eq!(text.lines().count(), 1);
        assert_eq!(registry.used_in(A).expect("ok").first_run, at(0));
    }

    #[test]
    fn a_second_session_is_recorded_and_the_first_stays_first() {
        let (_tmp, dir) = data_dir();
        let mut registry = CartridgeRegistry::load(&dir).expect("load");
        registry.mark_used(A, "s1", "c1", at(0)).expect("mark used");
        registry
            .mark_used(A, "s2", "c2", at(60))
            .expect("mark used");
        let reloaded = CartridgeRegistry::load(&dir).expect("load");
        assert_eq!(reloaded.used_in(A).expect("ok").session_id, "s1");
        assert_eq!(reloaded.uses_of(A).len(), 2);
        assert!(reloaded.is_used_outside(A, "s1"));
        assert!(reloaded.is_used_outside(A, "s2"));
    }

    #[test]
    fn bad_lines_become_warnings_and_the_file_is_unchanged() {
        let (_tmp, dir) = data_dir();
        let path = dir.path(CARTRIDGES_FILE);
        let good_a = serde_json::to_string(&CartridgeUse {
            id: A,
            session_id: "s1".into(),
            client: "c".into(),
            first_run: at(0),
            released: false,
        })
        .expect("ok");
        let good_b = good_a.replace(&A.to_string(), &B.to_string());
        let content = format!(
            "{good_a}\n{{\"id\":\"not-hex\",\"session_id\":\"s\"}}\n{good_b}\n{}",
            &good_a[..good_a.len() / 2]
        );
        fs::write(&path, &content).expect("fs");

        let registry = CartridgeRegistry::load(&dir).expect("load");
        assert!(registry.used_in(A).is_some());
        assert!(registry.used_in(B).is_some());
        let warnings = registry.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let prefix = path.display().to_string();
        assert!(
            warnings[0].starts_with(&format!("{prefix}:2: ")),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with(&format!("{prefix}:4: ")),
            "{warnings:?}"
        );
        assert_eq!(fs::read_to_string(&path).expect("fs"), content);
    }

    #[test]
    fn write_error_is_returned_and_memory_is_unchanged() {
        let (_tmp, dir) = data_dir();
        let mut registry = CartridgeRegistry::load(&dir).expect("load");
        registry.mark_used(A, "s1", "c", at(0)).expect("mark used");
        // Dropped before `_tmp`, so the folder is writable again for its removal.
        let _guard = Unwritable::new(dir.root());
        // As root the folder is replaced by a file, so the existing file is gone too;
        // either way the append must fail.
        let err = registry
            .mark_used(B, "s1", "c", at(1))
            .expect_err("should fail");
        assert!(matches!(err, StoreError::Write { .. }), "{err}");
        assert!(err.to_string().contains(CARTRIDGES_FILE), "{err}");
        assert_eq!(registry.used_in(B), None);
        assert!(!registry.is_used_outside(B, "s2"));
    }

    #[test]
    fn new_file_is_0600() {
        let (_tmp, dir) = data_dir();
        let mut registry = CartridgeRegistry::load(&dir).expect("load");
        registry.mark_used(A, "s1", "c", at(0)).expect("mark used");
        assert_eq!(mode_of(&dir.path(CARTRIDGES_FILE)), 0o600);
        assert_eq!(mode_of(dir.root()), 0o700);
    }

    #[test]
    fn a_use_learned_from_a_record_counts_and_writes_nothing() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::open(tmp.path()).expect("data dir");
        let mut registry = CartridgeRegistry::load(&dir).expect("load");
        registry.learn(CartridgeUse {
            id: A,
            session_id: "S-1".into(),
            client: "C-1".into(),
            first_run: Timestamp::UNIX_EPOCH,
            released: false,
        });
        assert!(registry.is_used_outside(A, "S-2"));
        assert!(!registry.is_used_outside(A, "S-1"));
        assert!(!dir.path(CARTRIDGES_FILE).exists());
    }
}
