-- SPDX-License-Identifier: MIT
-- 001_init.sql — first schema of the station database (applied by daemon/store.c in one
-- transaction, then PRAGMA user_version = 1). Owns: tables recipes, jobs, job_images, job_events
-- and the counter behind the MES cursor. Must not: contain BEGIN/COMMIT or PRAGMAs (store.c
-- wraps each migration itself); never edit a released migration, add NNN_*.sql instead.
--
-- Times are ISO-8601 UTC text with milliseconds ('2024-05-01T12:34:56.789Z'): readable in the
-- sqlite3 shell, ordered like the instants they name, understood by SQLite's date functions.
-- Durations are integers in milliseconds.

-- A recipe as it was used, by content: hash = sha256 (lower-case hex) of the recipe file's exact
-- bytes, which are kept in `json`, so a job can always be traced to the recipe it ran.
CREATE TABLE recipes (
    hash       TEXT PRIMARY KEY
               CHECK (length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*'),
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    json       TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

-- Monotonic counters that must never go back, even if rows are deleted (like AUTOINCREMENT).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('job_seq', 0);

-- One row per job. It is inserted with result 'running' when the job starts and completed in
-- one transaction when it finishes. `id` is the start order (internal); `seq` is the finish
-- (commit) order, assigned from counters.job_seq when the row becomes final, NULL while running:
-- it is the MES cursor (GET /jobs?after=<seq>), so every finished job is seen exactly once, in
-- the order its result was committed, across restarts.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    seq            INTEGER UNIQUE,
    uuid           TEXT NOT NULL UNIQUE
                   CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),
    slot           TEXT NOT NULL,
    port           TEXT NOT NULL,
    recipe_hash    TEXT REFERENCES recipes (hash),
    baud           INTEGER,
    attempt        INTEGER NOT NULL DEFAULT 1,
    chip           TEXT,             -- esptool spelling: 'esp32c3'
    revision       TEXT,             -- 'v0.4'
    revision_full  INTEGER,          -- major * 100 + minor (ESP-IDF's "full" revision)
    mac            TEXT              -- factory MAC, lower case
                   CHECK (mac IS NULL OR mac GLOB ('[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:'
                       || '[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]')),
    flash_id       TEXT              -- JEDEC ID: 6 lower-case hex digits, manufacturer first
                   CHECK (flash_id IS NULL
                       OR (length(flash_id) = 6 AND flash_id NOT GLOB '*[^0-9a-f]*')),
    flash_size     INTEGER,          -- bytes, as detected (NULL unknown)
    security_flags INTEGER,          -- GET_SECURITY_INFO flags when the chip has the command
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    duration_ms    INTEGER,
    result         TEXT NOT NULL DEFAULT 'running'
                   CHECK (result IN ('running', 'pass', 'fail', 'interrupted', 'cancelled')),
    error_class    TEXT,             -- NULL when the job passed; else a class from est_err.h
    error_code     INTEGER,
    message        TEXT,
    failed_state   TEXT,             -- state name from job.h's JOB_STATE_MAP
    nak_op         INTEGER,
    nak_code       INTEGER,
    state_ms       TEXT CHECK (state_ms IS NULL OR json_valid(state_ms)), -- {"sync": 120, ...}
    bytes_written  INTEGER,
    bytes_sent     INTEGER,
    retries        INTEGER,
    sync_attempts  INTEGER,
    CHECK ((result = 'running') = (seq IS NULL)),
    CHECK ((result = 'running') = (finished_at IS NULL))
);
CREATE INDEX jobs_result ON jobs (result);
CREATE INDEX jobs_mac ON jobs (mac);
CREATE INDEX jobs_started_at ON jobs (started_at);

-- What was written, per image of a finished job.
CREATE TABLE job_images (
    job_uuid        TEXT NOT NULL REFERENCES jobs (uuid) ON DELETE CASCADE,
    idx             INTEGER NOT NULL,
    offset          INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    compressed_size INTEGER NOT NULL,
    md5             TEXT NOT NULL CHECK (length(md5) = 32 AND md5 NOT GLOB '*[^0-9a-f]*'),
    patched         INTEGER NOT NULL CHECK (patched IN (0, 1)),
    verified        INTEGER NOT NULL CHECK (verified IN (0, 1)),
    duration_ms     INTEGER,
    PRIMARY KEY (job_uuid, idx)
) WITHOUT ROWID;

-- What happened during a job, in order: n counts from 0 per job, t_ms from the job's start.
CREATE TABLE job_events (
    job_uuid TEXT NOT NULL REFERENCES jobs (uuid) ON DELETE CASCADE,
    n        INTEGER NOT NULL,
    t_ms     INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    state    TEXT,
    detail   TEXT CHECK (detail IS NULL OR json_valid(detail)),
    PRIMARY KEY (job_uuid, n)
) WITHOUT ROWID;
