-- Punctum clinic store, schema version 1: the stations, what they upload, and the
-- two rules that need the whole clinic's knowledge (single-use cartridges, the
-- 4-week same-zone rule). Applied by `punctum clinic init | migrate` in one
-- transaction; never edit a released migration, add the next one.

-- Every station that has uploaded, by the id kept in its data folder.
CREATE TABLE stations (
    station_id   text PRIMARY KEY,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    version      text NOT NULL
);

-- How far each of a station's local append-only files has been uploaded. Moved in
-- the same transaction as the rows a batch makes, so a batch is applied exactly once
-- however often it is sent.
CREATE TABLE upload_cursors (
    station_id   text NOT NULL REFERENCES stations,
    stream       text NOT NULL,       -- 'cartridges', 'treatments', 'audit', 'amendments', 'record:<session id>'
    bytes        bigint NOT NULL,     -- bytes of the local file uploaded (always at a line's end)
    lines        bigint NOT NULL,     -- lines of the local file uploaded
    session_id   text,                -- a record's session (from its header)
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, stream)
);

-- A cartridge claimed for a session before its first start. At most one live claim
-- per cartridge: the partial unique index makes a claim one INSERT that only one
-- station can win, whatever the timing. A start that did not happen releases its
-- claim (released_at); the row stays.
CREATE TABLE cartridge_claims (
    claim_id      bigserial PRIMARY KEY,
    cartridge_id  text NOT NULL,
    session_id    text NOT NULL,
    station_id    text NOT NULL,
    client        text NOT NULL,
    claimed_at    timestamptz NOT NULL,
    released_at   timestamptz,
    -- Claimed at the station while the store was unreachable (after the operator
    -- confirmed a sealed pack), uploaded later.
    offline       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX cartridge_claims_live ON cartridge_claims (cartridge_id)
    WHERE released_at IS NULL;
CREATE INDEX cartridge_claims_session ON cartridge_claims (session_id);

-- A cartridge claimed offline by one session while another session held it: found
-- when the offline claim was uploaded. Each station learns of the conflicts that
-- name its sessions (notified_*).
CREATE TABLE claim_conflicts (
    conflict_id        bigserial PRIMARY KEY,
    cartridge_id       text NOT NULL,
    holder_session     text NOT NULL,
    holder_station     text NOT NULL,
    offline_session    text NOT NULL,
    offline_station    text NOT NULL,
    found_at           timestamptz NOT NULL DEFAULT now(),
    notified_holder    boolean NOT NULL DEFAULT false,
    notified_offline   boolean NOT NULL DEFAULT false,
    UNIQUE (cartridge_id, holder_session, offline_session)
);

-- A zone treated for a client (the 4-week rule counts days in the clinic's dates).
CREATE TABLE treatments (
    treatment_id  bigserial PRIMARY KEY,
    client        text NOT NULL,
    zone          text NOT NULL,
    treated_on    date NOT NULL,
    session_id    text NOT NULL,
    station_id    text NOT NULL,
    released_at   timestamptz,
    offline       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX treatments_live ON treatments (client, zone, session_id)
    WHERE released_at IS NULL;
CREATE INDEX treatments_client ON treatments (client, zone, treated_on);

-- A session: its header, summary and signature as rows (the full record is in
-- record_chunks).
CREATE TABLE sessions (
    session_id    text PRIMARY KEY,
    station_id    text NOT NULL,
    client        text NOT NULL,
    practitioner  text NOT NULL,
    opened_at     timestamptz NOT NULL,
    header        jsonb NOT NULL,
    summary       jsonb,
    closed_at     timestamptz,
    signature     jsonb
);
CREATE INDEX sessions_client ON sessions (client, opened_at);

-- The procedure's steps, one row per step line of the record.
CREATE TABLE session_steps (
    session_id   text NOT NULL,
    line_no      bigint NOT NULL,     -- 1-based line of the record
    step         jsonb NOT NULL,
    PRIMARY KEY (session_id, line_no)
);

-- The full JSON Lines record, in chunks as it was written: each chunk holds whole
-- lines [first_line, first_line + lines) = bytes [first_byte, end_byte), zstd.
CREATE TABLE record_chunks (
    session_id   text NOT NULL,
    station_id   text NOT NULL,
    first_byte   bigint NOT NULL,
    end_byte     bigint NOT NULL,
    first_line   bigint NOT NULL,
    lines        integer NOT NULL,
    sha256       bytea NOT NULL,      -- of the uncompressed bytes
    zstd         bytea NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, first_byte)
);

-- Follow-ups and adverse events added after a session (amendments.jsonl lines).
CREATE TABLE amendments (
    station_id   text NOT NULL,
    line_no      bigint NOT NULL,
    session_id   text NOT NULL,
    body         jsonb NOT NULL,
    PRIMARY KEY (station_id, line_no)
);
CREATE INDEX amendments_session ON amendments (session_id);

-- Each station's audit trail, line for line: its hash chain is kept as it is
-- (prev, hash), so `verify` holds on the store's copy too.
CREATE TABLE audit_events (
    station_id   text NOT NULL,
    seq          bigint NOT NULL,
    at           timestamptz NOT NULL,
    kind         text NOT NULL,
    account      text,
    line         text NOT NULL,       -- the line exactly as written (the hash covers it)
    PRIMARY KEY (station_id, seq)
);
CREATE INDEX audit_events_at ON audit_events (at);
