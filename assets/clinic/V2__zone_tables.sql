-- Punctum clinic store, schema version 2: the clinic's zone table. Every version an
-- admin made at any station, newest first; each row says which limit changed, who
-- changed it, why, and where. Stations take the newest before their next session.

CREATE TABLE zone_tables (
    version        bigserial PRIMARY KEY,
    station_id     text NOT NULL,
    line_no        bigint NOT NULL,     -- its line in that station's clinic-zone-tables.jsonl
    sha256         text NOT NULL,       -- of the table's canonical form (a record's zones_hash)
    table_json     jsonb NOT NULL,      -- the table in its file format (assets/zones.json)
    zone           text NOT NULL,       -- the limit that changed
    old_limit_um   integer NOT NULL,
    new_limit_um   integer NOT NULL,
    changed_by     text NOT NULL,       -- the admin's account
    reason         text NOT NULL,
    changed_at     timestamptz NOT NULL,
    UNIQUE (station_id, line_no)
);
