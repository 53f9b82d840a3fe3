//! The `punctum-clinic` thread: the station's one connection to the clinic store.
//!
//! Two threads, each with its own connection. `punctum-clinic-claims` answers the
//! station's questions (claims, history, the zone table), each with a deadline: an
//! answer too late is not given, the station has decided without it; a connection
//! found dead is made again at once. `punctum-clinic` uploads the outbox one batch
//! at a time, learns of conflicts that name this station's sessions and of new zone
//! tables, counts the outbox, and reconnects on its own (0.5 s, doubling to 5 s).
//! A claim never waits behind an upload. Both keep one [`ClinicStatus`] for the
//! connection bar and `punctum clinic status`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use jiff::Timestamp;

use super::claims::{self, CartridgeAnswer, CartridgeClaimRequest, ZoneAnswer, ZoneClaimRequest};
use super::streams::{self, Cursor, Depth, DepthCounter, LocalCursors, Read, Stream};
use super::upload::{self, Conflict, Outcome};
use super::{ClinicError, ClinicTarget, schema};

/// How long a claim may wait for the store before the station decides without it.
pub const CLAIM_DEADLINE: Duration = Duration::from_millis(1500);

/// The first wait before reconnecting; it doubles up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between two connection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How often conflicts naming this station are looked for, and the depth counted.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Requests waiting for the thread, at most.
const REQUESTS_CAPACITY: usize = 64;
/// Events waiting for the station, at most (it reads them every tick).
const EVENTS_CAPACITY: usize = 4096;
/// How often the local copy of the cursors is written (it is only a cache).
const SAVE_CURSORS_EVERY: Duration = Duration::from_secs(1);

/// Where the connection to the store stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum StoreState {
    /// Not connected yet.
    #[default]
    Connecting,
    /// Connected, schema checked.
    Connected,
    /// Cannot be reached (or stopped answering): why.
    Unreachable(String),
    /// Reached, but its schema is not this station's: what to do.
    Incompatible(String),
}

impl StoreState {
    /// Whether the store answers and can be used.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected)
    }
}

/// What the connection bar and `punctum clinic status` show.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClinicStatus {
    /// The store, without its password.
    pub store: String,
    /// This station's id in the store.
    pub station_id: String,
    /// The connection.
    #[serde(flatten)]
    pub state: StoreState,
    /// Since when (UTC).
    pub since: Option<Timestamp>,
    /// What the store has not got yet.
    pub outbox: Depth,
    /// When a batch last reached the store.
    pub last_upload: Option<Timestamp>,
    /// Streams that cannot be uploaded (a file replaced after upload): never silent.
    pub blocked: Vec<String>,
    /// The clinic's newest account revision last read (0: the store has no account
    /// yet; `None`: not read since the connection was made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts_rev: Option<i64>,
}

/// What the thread tells the station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClinicEvent {
    /// The store answers again (or for the first time).
    Reachable,
    /// The store cannot be used: why.
    Unreachable(String),
    /// A cartridge ran in two sessions: one of them was this station's, claimed
    /// while the store was unreachable (or another station's was).
    Conflict(Conflict),
    /// A line the store could not take (kept in the local file): where and why.
    Warning(String),
    /// A zone table newer than the last one told (this station's own included).
    ZoneTable(super::zones::StoreTable),
    /// The data folder's accounts were made the clinic's: what changed.
    Accounts(Vec<crate::store::accounts::Adopted>),
}

/// A request to the thread, answered on `reply` if before `deadline`.
enum Request {
    Cartridge {
        claim: CartridgeClaimRequest,
        deadline: Instant,
        reply: Sender<Result<CartridgeAnswer, ClinicError>>,
    },
    Zone {
        claim: ZoneClaimRequest,
        deadline: Instant,
        reply: Sender<Result<ZoneAnswer, ClinicError>>,
    },
    History {
        client: String,
        except: Option<String>,
        deadline: Instant,
        reply: Sender<Result<Vec<(String, jiff::civil::Date)>, ClinicError>>,
    },
    /// The store's newest zone table.
    ZoneTable {
        deadline: Instant,
        reply: Sender<Result<Option<super::zones::StoreTable>, ClinicError>>,
    },
    /// Nothing to answer: the link is closing (look at the stop flag).
    Wake,
}

/// The station's handle on the `punctum-clinic` thread.
pub struct ClinicLink {
    /// To `punctum-clinic-claims`: the station's questions.
    requests: Sender<Request>,
    /// To `punctum-clinic`: "something was written".
    wakes: Sender<Option<Sender<bool>>>,
    events: Receiver<ClinicEvent>,
    status: Arc<Mutex<ClinicStatus>>,
    stop: Arc<AtomicBool>,
    /// One message per thread as it ends.
    done: Receiver<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ClinicLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicLink")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl ClinicLink {
    /// Starts the thread for the data folder at `data_root`, as `station_id`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(
        target: ClinicTarget,
        data_root: PathBuf,
        station_id: String,
    ) -> std::io::Result<ClinicLink> {
        // Requests wait for their deadline at most (`send_deadline`); events are few
        // (state changes, conflicts, warnings), and the station reads them every tick.
        let (requests, claims_inbox) = bounded(REQUESTS_CAPACITY);
        let (wakes, inbox) = bounded(REQUESTS_CAPACITY);
        let (events_tx, events) = bounded(EVENTS_CAPACITY);
        let (done_tx, done) = bounded(2);
        let local = LocalCursors::load(&data_root);
        let status = Arc::new(Mutex::new(ClinicStatus {
            store: target.to_string(),
            station_id: station_id.clone(),
            state: StoreState::Connecting,
            since: Some(Timestamp::now()),
            outbox: Depth::default(),
            last_upload: local.last_upload,
            blocked: Vec::new(),
            accounts_rev: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut claims = ClaimsWorker {
            target: target.clone(),
            station_id: station_id.clone(),
            db: None,
            reconnect: Reconnect::new(),
            inbox: claims_inbox,
            events: events_tx.clone(),
            status: Arc::clone(&status),
            stop: Arc::clone(&stop),
        };
        let mut worker = Worker {
            target,
            data_root,
            station_id,
            db: None,
            reconnect: Reconnect::new(),
            local,
            cursors_dirty: false,
            cursors_saved: Instant::now(),
            counter: DepthCounter::default(),
            polled: None,
            inbox,
            events: events_tx,
            status: Arc::clone(&status),
            stop: Arc::clone(&stop),
            shorter_said: std::collections::BTreeSet::new(),
            warned: std::collections::BTreeSet::new(),
            zone_version_told: 0,
            accounts_seen: None,
            certificates_waiting: std::collections::BTreeMap::new(),
            flushes: Vec::new(),
        };
        let claims_done = done_tx.clone();
        let threads = vec![
            std::thread::Builder::new()
                .name("punctum-clinic".into())
                .spawn(move || {
                    worker.run();
                    let _ = done_tx.send(());
                })?,
            std::thread::Builder::new()
                .name("punctum-clinic-claims".into())
                .spawn(move || {
                    claims.run();
                    let _ = claims_done.send(());
                })?,
        ];
        Ok(ClinicLink {
            requests,
            wakes,
            events,
            status,
            stop,
            done,
            threads,
        })
    }

    /// The status now.
    #[must_use]
    pub fn status(&self) -> ClinicStatus {
        lock(&self.status).clone()
    }

    /// The events since the last call.
    #[must_use]
    pub fn events(&self) -> Vec<ClinicEvent> {
        self.events.try_iter().collect()
    }

    /// Tells the thread that something was written (it also looks every second).
    pub fn wake(&self) {
        // A full queue wakes the thread anyway.
        let _ = self.wakes.try_send(None);
    }

    /// Has the uploads' thread send the zone tables published here now, waiting at
    /// most [`CLAIM_DEADLINE`]: an admin's limit reaches the store before the command
    /// returns, so another room's next session has it. Whether it is in the store.
    #[must_use]
    pub fn flush_zone_tables(&self) -> bool {
        let (reply, answer) = bounded(1);
        let deadline = Instant::now() + CLAIM_DEADLINE;
        if self.wakes.send_deadline(Some(reply), deadline).is_err() {
            return false;
        }
        answer.recv_deadline(deadline).unwrap_or(false)
    }

    /// Claims a cartridge in the store, waiting at most [`CLAIM_DEADLINE`].
    ///
    /// # Errors
    /// [`ClinicError::Unreachable`] when the store did not answer in time.
    pub fn claim_cartridge(
        &self,
        claim: CartridgeClaimRequest,
    ) -> Result<CartridgeAnswer, ClinicError> {
        self.ask(|deadline, reply| Request::Cartridge {
            claim,
            deadline,
            reply,
        })
    }

    /// Claims a zone under the 4-week rule in the store, waiting at most
    /// [`CLAIM_DEADLINE`].
    ///
    /// # Errors
    /// [`ClinicError::Unreachable`] when the store did not answer in time.
    pub fn claim_zone(&self, claim: ZoneClaimRequest) -> Result<ZoneAnswer, ClinicError> {
        self.ask(|deadline, reply| Request::Zone {
            claim,
            deadline,
            reply,
        })
    }

    /// The last day each zone was treated for `client` at any station, but in
    /// `except` (the session asking).
    ///
    /// # Errors
    /// [`ClinicError::Unreachable`] when the store did not answer in time.
    pub fn zone_history(
        &self,
        client: &str,
        except: Option<&str>,
    ) -> Result<Vec<(String, jiff::civil::Date)>, ClinicError> {
        let (client, except) = (client.to_owned(), except.map(str::to_owned));
        self.ask(|deadline, reply| Request::History {
            client,
            except,
            deadline,
            reply,
        })
    }

    /// The store's newest zone table (`None`: no station published one), waiting at
    /// most [`CLAIM_DEADLINE`].
    ///
    /// # Errors
    /// [`ClinicError::Unreachable`] when the store did not answer in time.
    pub fn zone_table(&self) -> Result<Option<super::zones::StoreTable>, ClinicError> {
        self.ask(|deadline, reply| Request::ZoneTable { deadline, reply })
    }

    /// Sends a request and waits for its answer until the deadline.
    fn ask<T>(
        &self,
        make: impl FnOnce(Instant, Sender<Result<T, ClinicError>>) -> Request,
    ) -> Result<T, ClinicError> {
        // Known unreachable: no wait, the station decides at once.
        let state = self.status().state;
        if let StoreState::Unreachable(why) | StoreState::Incompatible(why) = &state {
            return Err(ClinicError::Unreachable(why.clone()));
        }
        let deadline = Instant::now() + CLAIM_DEADLINE;
        let (reply, answer) = bounded(1);
        self.requests
            .send_deadline(make(deadline, reply), deadline)
            .map_err(|_| {
                ClinicError::Unreachable("the clinic thread does not take requests".into())
            })?;
        match answer.recv_deadline(deadline) {
            Ok(result) => result,
            Err(_) => Err(ClinicError::Unreachable(format!(
                "no answer within {} ms",
                CLAIM_DEADLINE.as_millis()
            ))),
        }
    }
}

impl Drop for ClinicLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wakes.try_send(None);
        let _ = self.requests.try_send(Request::Wake);
        // A thread stuck on a dead connection ends with the process: the outbox is
        // the local files, so nothing is lost by not waiting for it.
        let deadline = Instant::now() + Duration::from_secs(3);
        let ended = (0..self.threads.len()).all(|_| self.done.recv_deadline(deadline).is_ok());
        if ended {
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

/// The thread's state.
struct Worker {
    target: ClinicTarget,
    data_root: PathBuf,
    station_id: String,
    db: Option<postgres::Client>,
    reconnect: Reconnect,
    local: LocalCursors,
    cursors_dirty: bool,
    cursors_saved: Instant,
    counter: DepthCounter,
    polled: Option<Instant>,
    /// "Something was written" (the station's wakes), or "send the zone tables now
    /// and say when they are in".
    inbox: Receiver<Option<Sender<bool>>>,
    /// Flushes asked, answered after the next round.
    flushes: Vec<Sender<bool>>,
    events: Sender<ClinicEvent>,
    status: Arc<Mutex<ClinicStatus>>,
    stop: Arc<AtomicBool>,
    /// Streams whose file was found shorter than its cursor (said once each).
    shorter_said: std::collections::BTreeSet<String>,
    /// The store's refusals already said (each once).
    warned: std::collections::BTreeSet<String>,
    /// The newest zone table version told to the station.
    zone_version_told: i64,
    /// The store's account revision and `accounts.json`'s length and time when the
    /// accounts were last made the clinic's: while both stay, nothing is read.
    accounts_seen: Option<(i64, Option<(u64, std::time::SystemTime)>)>,
    /// Certificates found incomplete, since when.
    certificates_waiting: std::collections::BTreeMap<String, Instant>,
}

impl Worker {
    fn run(&mut self) {
        // This process's own name for its connection: an older connection of its own
        // that the server still holds after a cut is told apart from another process
        // with the same station id (a copied data folder).
        let application = format!(
            "punctum {} {:x}",
            self.station_id,
            std::process::id() ^ (Timestamp::now().subsec_nanosecond().unsigned_abs())
        );
        // A folder whose accounts are older than their changes' file starts it, so
        // the store hears of every account.
        if let Err(e) = crate::store::DataDir::open(&self.data_root)
            .map_err(crate::store::accounts::AccountError::from)
            .and_then(|dir| crate::store::accounts::Accounts::of(&dir).seed_changes())
        {
            let _ = self.events.send(ClinicEvent::Warning(format!(
                "the accounts cannot be shared with the clinic store: {e}"
            )));
        }
        while !self.stop.load(Ordering::SeqCst) {
            if self.db.is_none() && self.reconnect.due() {
                self.connect(&application);
            }
            // Wakes that came meanwhile are all answered by this round.
            while let Ok(wake) = self.inbox.try_recv() {
                self.flushes.extend(wake);
            }
            let more = self.db.is_some() && self.upload_round();
            if !self.flushes.is_empty() {
                let own = Stream::ZoneTables;
                let done = self.db.is_some()
                    && matches!(
                        streams::read_batch(
                            &own.path(&self.data_root),
                            self.local.get(&own),
                            streams::BATCH_BYTES
                        ),
                        Ok(Read::UpToDate)
                    );
                for reply in self.flushes.drain(..) {
                    let _ = reply.send(done);
                }
            }
            if self.polled.is_none_or(|t| t.elapsed() >= POLL_EVERY) {
                self.polled = Some(Instant::now());
                self.poll_schema();
                self.poll_conflicts();
                self.poll_zone_table();
                self.poll_removed();
                self.poll_accounts();
                self.count_depth();
            }
            if self.cursors_dirty && self.cursors_saved.elapsed() >= SAVE_CURSORS_EVERY {
                self.save_cursors();
            }
            if !more {
                // Nothing to send: sleep until written to, or the next look.
                let wait = if self.db.is_none() {
                    self.reconnect.wait().min(POLL_EVERY)
                } else {
                    POLL_EVERY
                };
                if let Ok(wake) = self.inbox.recv_timeout(wait) {
                    self.flushes.extend(wake);
                }
            }
        }
        if self.cursors_dirty {
            self.save_cursors();
        }
    }

    fn set_state(&self, state: StoreState) {
        publish_state(&self.status, &self.events, state);
    }

    fn connect(&mut self, application: &str) {
        let connected = self.target.connect(application).and_then(|mut db| {
            schema::check_current(&mut db)?;
            // Uploads commit without waiting for the server's disk: a batch lost in a
            // server crash is lost with its cursor (one transaction), so the station
            // sends it again. Claims, on their own connection, wait for the disk.
            db.batch_execute("SET synchronous_commit = off")
                .map_err(super::db_error)?;
            take_station_lock(&mut db, &self.station_id, application)?;
            upload::register_station(&mut db, &self.station_id)?;
            let store = upload::cursors(&mut db, &self.station_id)?;
            Ok((db, store))
        });
        match connected {
            Ok((db, store)) => {
                self.db = Some(db);
                self.reconnect.succeeded();
                // The store's cursors are the truth (a batch may have landed just
                // before a crash, or the store been restored from a backup).
                self.local.station_id.clone_from(&self.station_id);
                self.local.cursors = store;
                self.cursors_dirty = true;
                self.accounts_seen = None;
                lock(&self.status).accounts_rev = None;
                self.set_state(StoreState::Connected);
            }
            Err(e) => {
                self.reconnect.failed();
                self.set_state(state_of(e));
            }
        }
    }

    /// The connection failed under a statement: drop it, and try again soon.
    fn lost(&mut self, e: &ClinicError) {
        if e.is_transient() {
            self.db = None;
            self.reconnect.after(RECONNECT_FIRST);
            self.set_state(StoreState::Unreachable(e.reason().to_owned()));
        } else if self.warned.insert(e.reason().to_owned()) {
            // Said once: a statement the store refuses is refused again each round.
            let _ = self
                .events
                .send(ClinicEvent::Warning(e.reason().to_owned()));
        }
    }

    /// Uploads one batch of every stream with something to send: a record written
    /// at 1000 Hz goes up about once a second (each loop), not in a transaction per
    /// handful of lines. Whether some stream has more waiting (then at once again).
    fn upload_round(&mut self) -> bool {
        let mut more = false;
        for stream in streams::list(&self.data_root) {
            if lock(&self.status).blocked.contains(&stream.name()) {
                // Not uploaded again until the station restarts with the file
                // restored: a file that grew back past its cursor is still another file.
                continue;
            }
            let from = self.local.get(&stream);
            let path = stream.path(&self.data_root);
            let read = if let Stream::Certificate(_) = stream {
                // A document, whole, once complete: a certificate being written (or
                // damaged) waits; said once if it stays so.
                match streams::read_certificate(&path, from) {
                    Ok(Ok(read)) => Ok(read),
                    Ok(Err(why)) => {
                        self.waiting_certificate(&stream, &path, &why);
                        continue;
                    }
                    Err(e) => Err(e),
                }
            } else {
                streams::read_batch(&path, from, streams::BATCH_BYTES)
            };
            let read = match read {
                Ok(read) => read,
                Err(e) => {
                    self.warn_once(&stream, format!("cannot read {}: {e}", path.display()));
                    continue;
                }
            };
            let batch = match read {
                Read::UpToDate => continue,
                Read::Replaced { len } => {
                    match self.replaced(&stream, &path, from, len) {
                        Some(again) => more |= again,
                        None => return false,
                    }
                    continue;
                }
                Read::Lines(batch) => batch,
            };
            let Some(db) = self.db.as_mut() else {
                return false;
            };
            match upload::apply(db, &self.station_id, &stream, &batch) {
                Ok(Outcome::Done(applied)) => {
                    more |= batch.more;
                    self.set_state(StoreState::Connected);
                    self.local.cursors.insert(stream.name(), batch.to());
                    self.local.last_upload = Some(Timestamp::now());
                    self.cursors_dirty = true;
                    {
                        let mut status = lock(&self.status);
                        status.last_upload = self.local.last_upload;
                    }
                    for w in applied.warnings {
                        let _ = self
                            .events
                            .send(ClinicEvent::Warning(format!("{}: {w}", path.display())));
                    }
                    if matches!(stream, Stream::Cartridges) {
                        self.poll_conflicts();
                    }
                }
                Ok(Outcome::CursorAt(at)) => {
                    self.local.cursors.insert(stream.name(), at);
                    self.cursors_dirty = true;
                    more = true;
                }
                Err(e) if !e.is_transient() => {
                    // A statement the store refuses will be refused again: the stream
                    // is blocked (said, listed) and the others go on rather than spin.
                    self.block(
                        &stream,
                        format!(
                            "{}: the clinic store refuses it: {}",
                            path.display(),
                            e.reason()
                        ),
                    );
                }
                Err(e) => {
                    self.lost(&e);
                    return false;
                }
            }
        }
        more
    }

    /// A file cut or replaced after upload. Lines with keys of their own (a claim, a
    /// treatment, an audit seq) are uploaded again from the start: the store keeps
    /// what it had, and nothing is doubled. Any other such file is blocked. Whether
    /// to look again at once; `None`: the connection failed.
    fn replaced(
        &mut self,
        stream: &Stream,
        path: &std::path::Path,
        from: Cursor,
        len: u64,
    ) -> Option<bool> {
        let what = format!(
            "{} was cut or replaced after upload ({len} bytes now, {} in the clinic store)",
            path.display(),
            from.bytes
        );
        if !stream.uploads_again_when_replaced() {
            self.block(
                stream,
                format!("{what}: not uploaded again; restore the file"),
            );
            return Some(false);
        }
        let db = self.db.as_mut()?;
        if let Err(e) = upload::rewind(db, &self.station_id, stream) {
            self.lost(&e);
            return None;
        }
        self.local.cursors.insert(stream.name(), Cursor::default());
        self.cursors_dirty = true;
        let _ = self.events.send(ClinicEvent::Warning(format!(
            "{what}: uploaded again from its start (the store keeps what it had)"
        )));
        Some(true)
    }

    /// A certificate not complete yet: said once it has stayed so a whole poll
    /// period (a certificate is written in one go; one that stays unreadable is
    /// damaged).
    fn waiting_certificate(&mut self, stream: &Stream, path: &std::path::Path, why: &str) {
        let first_seen = *self
            .certificates_waiting
            .entry(stream.name())
            .or_insert_with(Instant::now);
        if first_seen.elapsed() >= POLL_EVERY {
            self.warn_once(stream, format!("{}: {why}", path.display()));
        }
    }

    /// A stream that cannot go on: said once, and listed in the status until the
    /// station restarts.
    fn block(&mut self, stream: &Stream, text: String) {
        let name = stream.name();
        let newly = {
            let mut status = lock(&self.status);
            let newly = !status.blocked.contains(&name);
            if newly {
                status.blocked.push(name);
            }
            newly
        };
        // Said when it happens, whatever was said of the stream before.
        if newly {
            self.shorter_said.insert(stream.name());
            let _ = self.events.send(ClinicEvent::Warning(text));
        }
    }

    fn warn_once(&mut self, stream: &Stream, text: String) {
        if self.shorter_said.insert(stream.name()) {
            let _ = self.events.send(ClinicEvent::Warning(text));
        }
    }

    /// Conflicts naming this station's sessions, not yet told: told once.
    fn poll_conflicts(&mut self) {
        let station = self.station_id.clone();
        let Some(db) = self.db.as_mut() else {
            return;
        };
        let found = (|| -> Result<Vec<Conflict>, ClinicError> {
            let rows = db
                .query(
                    "UPDATE claim_conflicts SET
                        notified_holder = notified_holder OR holder_station = $1,
                        notified_offline = notified_offline OR offline_station = $1
                     WHERE (holder_station = $1 AND NOT notified_holder)
                        OR (offline_station = $1 AND NOT notified_offline)
                     RETURNING cartridge_id, holder_session, holder_station,
                               offline_session, offline_station",
                    &[&station],
                )
                .map_err(super::db_error)?;
            Ok(rows
                .iter()
                .map(|r| Conflict {
                    cartridge_id: r.get(0),
                    holder_session: r.get(1),
                    holder_station: r.get(2),
                    offline_session: r.get(3),
                    offline_station: r.get(4),
                })
                .collect())
        })();
        match found {
            Ok(conflicts) => {
                for c in conflicts {
                    let _ = self.events.send(ClinicEvent::Conflict(c));
                }
            }
            Err(e) => self.lost(&e),
        }
    }

    /// The store migrated while the station runs: a newer schema is not written
    /// into (the station stops using it and says so).
    fn poll_schema(&mut self) {
        let Some(db) = self.db.as_mut() else {
            return;
        };
        match schema::check_current(db) {
            Ok(()) => {}
            Err(ClinicError::Schema(why)) => {
                self.db = None;
                self.reconnect.after(RECONNECT_MAX);
                self.set_state(StoreState::Incompatible(why));
            }
            Err(e) => self.lost(&e),
        }
    }

    /// A zone table newer than the last told, once this station's own published
    /// tables are all in the store (else an older one would be told over a newer one
    /// made here while the store was away).
    fn poll_zone_table(&mut self) {
        let own = Stream::ZoneTables;
        let pending = streams::read_batch(
            &own.path(&self.data_root),
            self.local.get(&own),
            streams::BATCH_BYTES,
        );
        if !matches!(pending, Ok(Read::UpToDate)) {
            return;
        }
        let Some(db) = self.db.as_mut() else {
            return;
        };
        match super::zones::newest(db) {
            Ok(Some(table)) if table.version != self.zone_version_told => {
                self.zone_version_told = table.version;
                let _ = self.events.send(ClinicEvent::ZoneTable(table));
            }
            Ok(_) => {}
            Err(e) => self.lost(&e),
        }
    }

    /// A file the store holds some of, removed from the data folder (the upload
    /// never lists a missing file): blocked, and said, like a cut one.
    fn poll_removed(&mut self) {
        for stream in streams::removed(&self.data_root, &self.local) {
            let path = stream.path(&self.data_root);
            self.block(
                &stream,
                format!(
                    "{}: not uploaded again; restore the file",
                    streams::removed_after_upload(&path)
                ),
            );
        }
    }

    /// Makes the data folder's accounts the clinic's when the store's accounts
    /// changed (or `accounts.json` did), once this station's own account changes are
    /// all in the store (else next round).
    fn poll_accounts(&mut self) {
        use crate::store::accounts::{ACCOUNTS_FILE, Accounts, Adoption};
        let own = Stream::Accounts;
        // A changes file cut or replaced after upload cannot be sent again: the
        // clinic's accounts are taken anyway (a disabling elsewhere must hold here),
        // and the changes made here that never reached the store are undone.
        let blocked = lock(&self.status).blocked.contains(&own.name());
        let stamp = || {
            std::fs::metadata(self.data_root.join(ACCOUNTS_FILE))
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        };
        let before = stamp();
        let seen = self.accounts_seen;
        let Some(db) = self.db.as_mut() else {
            return;
        };
        let clinic = super::accounts::revision(db).and_then(|rev| {
            lock(&self.status).accounts_rev = Some(rev);
            if seen == Some((rev, before)) {
                return Ok(None);
            }
            super::accounts::all(db).map(|all| Some((rev, all)))
        });
        let (rev, (clinic, damaged)) = match clinic {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                self.lost(&e);
                return;
            }
        };
        let adopted = crate::store::DataDir::open(&self.data_root)
            .map_err(crate::store::accounts::AccountError::from)
            .and_then(|dir| {
                let uploaded = (!blocked).then(|| self.local.get(&own).bytes);
                Accounts::of(&dir).adopt(&clinic, &damaged, uploaded, Timestamp::now())
            });
        match adopted {
            Ok(Adoption::Waiting) => {}
            Ok(Adoption::Done(changed)) => {
                self.accounts_seen = Some((rev, stamp()));
                // Said once per revision: a damaged row is not taken (the station
                // keeps its own copy of that account).
                for (id, why) in damaged {
                    let _ = self.events.send(ClinicEvent::Warning(format!(
                        "the clinic store's account {id} is damaged ({why}): not taken; \
                         this station keeps its own copy of it"
                    )));
                }
                if !changed.is_empty() {
                    let _ = self.events.send(ClinicEvent::Accounts(changed));
                }
            }
            Err(e) => self.warn_once(
                &own,
                format!("the clinic's accounts cannot be taken here: {e}"),
            ),
        }
    }

    fn count_depth(&mut self) {
        let depth = self.counter.depth(&self.data_root, &self.local);
        let mut status = lock(&self.status);
        status.outbox = depth;
    }

    fn save_cursors(&mut self) {
        self.local.station_id.clone_from(&self.station_id);
        if self.local.save(&self.data_root).is_ok() {
            self.cursors_dirty = false;
        }
        self.cursors_saved = Instant::now();
    }
}

/// The status, even after a thread panicked holding it (it is plain data).
fn lock(status: &Mutex<ClinicStatus>) -> std::sync::MutexGuard<'_, ClinicStatus> {
    status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// When a connection may be tried again: at once at first, then after a wait that
/// doubles from [`RECONNECT_FIRST`] to [`RECONNECT_MAX`] while attempts fail.
#[derive(Debug)]
struct Reconnect {
    next_attempt: Instant,
    backoff: Duration,
}

impl Reconnect {
    fn new() -> Self {
        Self {
            next_attempt: Instant::now(),
            backoff: RECONNECT_FIRST,
        }
    }

    /// An attempt is due.
    fn due(&self) -> bool {
        Instant::now() >= self.next_attempt
    }

    /// Until the next attempt (zero when due).
    fn wait(&self) -> Duration {
        self.next_attempt.saturating_duration_since(Instant::now())
    }

    /// Connected: the next failure waits the shortest time again.
    fn succeeded(&mut self) {
        self.backoff = RECONNECT_FIRST;
    }

    /// An attempt failed: wait, longer each time.
    fn failed(&mut self) {
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
    }

    /// A connection was lost: try again after `after`.
    fn after(&mut self, after: Duration) {
        self.next_attempt = Instant::now() + after;
    }
}

/// Sends `answer` on `reply`, if there is one (`None`: the asker's deadline passed).
fn answer<T>(reply: &Sender<T>, answer: Option<T>) {
    if let Some(answer) = answer {
        let _ = reply.send(answer);
    }
}

/// Publishes a change of the store's state: the status, and an event for the
/// station (a change between two reasons of unreachability is no news).
fn publish_state(status: &Mutex<ClinicStatus>, events: &Sender<ClinicEvent>, state: StoreState) {
    let mut status = lock(status);
    if status.state == state {
        return;
    }
    let event = match &state {
        StoreState::Connected => Some(ClinicEvent::Reachable),
        StoreState::Unreachable(why) | StoreState::Incompatible(why) => {
            Some(ClinicEvent::Unreachable(why.clone()))
        }
        StoreState::Connecting => None,
    };
    let news = !matches!(
        (&status.state, &state),
        (StoreState::Unreachable(_), StoreState::Unreachable(_))
    );
    status.state = state;
    status.since = Some(Timestamp::now());
    if news && let Some(e) = event {
        let _ = events.send(e);
    }
}

/// Takes the station's advisory lock for this connection's life: one process per
/// station id uploads. Held by this process's own older connection (a cut the server
/// has not noticed yet), that connection is ended first; held by another process (a
/// copy of this data folder, running), the store is not usable from here.
fn take_station_lock(
    db: &mut postgres::Client,
    station_id: &str,
    application: &str,
) -> Result<(), ClinicError> {
    let key = format!("punctum station {station_id}");
    // An ended backend lets its lock go a moment later: asked again for up to 1 s.
    for attempt in 0..20 {
        let got: bool = db
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .map_err(super::db_error)?
            .get(0);
        if got {
            return Ok(());
        }
        if attempt == 0 {
            let ended = db
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    &[&application],
                )
                .map_err(super::db_error)?;
            if ended == 0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ClinicError::Schema(format!(
        "station {station_id} is connected to the clinic store from another process: a \
         copy of this data folder? Two stations with one id would mix their uploads; \
         give the copy its own identity (remove its clinic-station.json and clinic-outbox.json)"
    )))
}

/// The state a failed connection or statement means.
fn state_of(e: ClinicError) -> StoreState {
    match e {
        ClinicError::Schema(why) | ClinicError::Config(why) => StoreState::Incompatible(why),
        ClinicError::Unreachable(why) | ClinicError::Db(why) => StoreState::Unreachable(why),
    }
}

/// The `punctum-clinic-claims` thread: the station's questions on a connection of
/// their own, so a claim never waits behind an upload's transaction.
struct ClaimsWorker {
    target: ClinicTarget,
    station_id: String,
    db: Option<postgres::Client>,
    reconnect: Reconnect,
    inbox: Receiver<Request>,
    events: Sender<ClinicEvent>,
    status: Arc<Mutex<ClinicStatus>>,
    stop: Arc<AtomicBool>,
}

impl ClaimsWorker {
    fn run(&mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            // Connected ahead of the first question, and again after a failure.
            if self.db.is_none() && self.reconnect.due() {
                self.connect();
            }
            if let Ok(request) = self.inbox.recv_timeout(POLL_EVERY) {
                self.serve(request);
            }
        }
    }

    fn connect(&mut self) -> bool {
        let application = format!("punctum {} claims", self.station_id);
        match self.target.connect(&application).and_then(|mut db| {
            schema::check_current(&mut db)?;
            Ok(db)
        }) {
            Ok(db) => {
                self.db = Some(db);
                self.reconnect.succeeded();
                true
            }
            Err(e) => {
                self.reconnect.failed();
                publish_state(&self.status, &self.events, state_of(e));
                false
            }
        }
    }

    fn serve(&mut self, request: Request) {
        let station = self.station_id.clone();
        match request {
            Request::Wake => {}
            Request::Cartridge {
                claim,
                deadline,
                reply,
            } => {
                answer(
                    &reply,
                    self.ask(deadline, |db| claims::claim_cartridge(db, &station, &claim)),
                );
            }
            Request::Zone {
                claim,
                deadline,
                reply,
            } => {
                answer(
                    &reply,
                    self.ask(deadline, |db| claims::claim_zone(db, &station, &claim)),
                );
            }
            Request::ZoneTable { deadline, reply } => {
                answer(&reply, self.ask(deadline, super::zones::newest));
            }
            Request::History {
                client,
                except,
                deadline,
                reply,
            } => {
                answer(
                    &reply,
                    self.ask(deadline, |db| {
                        claims::zone_history(db, &client, except.as_deref())
                    }),
                );
            }
        }
    }

    /// Runs `f` unless `deadline` has passed (the asker has gone on without the
    /// answer: a claim made now would be one the station does not know of). A
    /// connection found dead (the server restarted, the network came back) is made
    /// again at once and `f` tried once more. `None`: not run.
    fn ask<T>(
        &mut self,
        deadline: Instant,
        mut f: impl FnMut(&mut postgres::Client) -> Result<T, ClinicError>,
    ) -> Option<Result<T, ClinicError>> {
        for attempt in 0..2 {
            if Instant::now() >= deadline {
                return None;
            }
            if self.db.is_none() && !self.connect() {
                let why = match self.status_state() {
                    StoreState::Unreachable(w) | StoreState::Incompatible(w) => w,
                    _ => "cannot connect".into(),
                };
                return Some(Err(ClinicError::Unreachable(why)));
            }
            let db = self.db.as_mut()?;
            match f(db) {
                Ok(value) => {
                    publish_state(&self.status, &self.events, StoreState::Connected);
                    return Some(Ok(value));
                }
                Err(e) if e.is_transient() => {
                    self.db = None;
                    if attempt == 1 {
                        publish_state(
                            &self.status,
                            &self.events,
                            StoreState::Unreachable(e.reason().to_owned()),
                        );
                        return Some(Err(e));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }

    fn status_state(&self) -> StoreState {
        lock(&self.status).state.clone()
    }
}
