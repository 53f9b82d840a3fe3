-- Punctum clinic store, schema version 3: calibration certificates, by pen serial.
-- Each certificate a station wrote (`<data>/certificates/*.json`), as written; the
-- pen's serial, when and by whom, and whether it passed, as columns to look up by.

CREATE TABLE calibration_certificates (
    station_id    text NOT NULL,
    file          text NOT NULL,        -- its name in the station's certificates/
    pen_serial    text NOT NULL,
    pen_model     text NOT NULL,
    issued_at     timestamptz NOT NULL,
    technician    text NOT NULL,
    passed        boolean NOT NULL,
    body          jsonb NOT NULL,
    PRIMARY KEY (station_id, file)
);
CREATE INDEX calibration_certificates_pen ON calibration_certificates (pen_serial, issued_at);
