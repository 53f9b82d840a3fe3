-- Punctum clinic store, schema version 4: the clinic's accounts. One row per account,
-- the clinic's truth that every station takes (and signs in against); and every
-- change any station sent, taken or refused, and why. The rows hold the accounts'
-- Argon2id hashes, never a secret in clear: grant them like the audit trail.

CREATE TABLE accounts (
    account_id      text PRIMARY KEY,
    account         jsonb NOT NULL,      -- id, name, roles, secret (PHC), disabled, who and when
    rev             bigint NOT NULL,     -- the account_changes seq that last changed it
    origin_station  text NOT NULL,       -- the station whose line created it here
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Ids are unique ignoring case, as at a station.
CREATE UNIQUE INDEX accounts_id_ci ON accounts (lower(account_id));

CREATE TABLE account_changes (
    seq         bigserial PRIMARY KEY,
    station_id  text NOT NULL,
    line_no     bigint NOT NULL,        -- its line in that station's account-changes.jsonl
    account_id  text NOT NULL,
    kind        text NOT NULL,          -- seed, first_admin, migrated, created, disabled, roles, secret
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL,
    taken       boolean NOT NULL,
    refusal     text,                   -- why not taken
    change      jsonb NOT NULL,         -- the line as the station wrote it
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (station_id, line_no)
);
CREATE INDEX account_changes_account ON account_changes (lower(account_id), seq);

-- Each upload cursor also keeps the last line it passed (its length and the first 8
-- bytes of its SHA-256), so a station tells its file from another whose line ends
-- happen to fall at the cursor (cut, then written again): that file is not appended
-- to what the store has.
ALTER TABLE upload_cursors ADD COLUMN tail_len integer, ADD COLUMN tail_hash bigint;
