-- SPDX-License-Identifier: MIT
-- 007_pools.sql — per-device values that are allocated exactly once (docs/DEVICE-DATA.md
-- "Pools and exactly-once allocation", issue 16 item 3): value pools imported from a CSV (one
-- row per device) and counters (SN-{year}-{n:06}), each item with its state:
--   free --reserve (slot, job, MAC)--> reserved --data written--> bound --pass--> consumed
--   reserved --job failed / crashed before writing--> free        (nothing reached a board)
--   bound    --job failed / crashed after writing--> stays bound to its MAC (for the rework)
--   any state but consumed --explicit void--> void                (the only way to lose a value)
-- Must not: contain BEGIN/COMMIT or PRAGMAs (store.c wraps each migration itself).

CREATE TABLE pools (
    name       TEXT PRIMARY KEY,                            -- [A-Za-z0-9_.-]{1,63}
    kind       TEXT NOT NULL CHECK (kind IN ('values', 'counter')),
    columns    TEXT,                 -- values: the CSV header as a JSON array of column names
    format     TEXT,                 -- counter: the template, e.g. 'SN-{year}-{n:06}'
    start      INTEGER NOT NULL DEFAULT 0,                  -- counter: first n
    step       INTEGER NOT NULL DEFAULT 1,                  -- counter: n = start + step * idx
    next_idx   INTEGER NOT NULL DEFAULT 0,                  -- counter: idx of the next new item
    low_water  INTEGER NOT NULL DEFAULT 0,  -- values: warn when fewer free items remain
    created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE pool_items (
    id          INTEGER PRIMARY KEY,
    pool        TEXT NOT NULL REFERENCES pools (name),
    idx         INTEGER NOT NULL,   -- values: import order (0, 1, ...); counter: the index
    label       TEXT NOT NULL,      -- values: the row's first column; counter: the value
    value       TEXT NOT NULL,      -- values: the row as a JSON object; counter: the value
    state       TEXT NOT NULL DEFAULT 'free'
                CHECK (state IN ('free', 'reserved', 'bound', 'consumed', 'void')),
    slot        TEXT,               -- reserved / bound / consumed: the last job's slot
    job_uuid    TEXT,               -- ... that job
    mac         TEXT,               -- ... the board (aa:bb:cc:dd:ee:ff); never changes once bound
    changed_at  TEXT NOT NULL,
    void_reason TEXT,
    UNIQUE (pool, idx),
    UNIQUE (pool, label),
    CHECK ((state = 'free') = (mac IS NULL) OR state = 'void')
);
CREATE INDEX pool_items_free ON pool_items (pool, state, idx);
CREATE INDEX pool_items_job ON pool_items (job_uuid);
-- A board holds at most one live (reserved or bound) item of a pool: a second job for the same
-- MAC reuses it; two boards with one MAC cannot both get one.
CREATE UNIQUE INDEX pool_items_live_mac ON pool_items (pool, mac)
    WHERE state IN ('reserved', 'bound');

-- Every reservation of an item by a job, and how it ended (the record of which job used which
-- pool items: a rework under same_identity uses a consumed item again).
CREATE TABLE pool_uses (
    item_id     INTEGER NOT NULL REFERENCES pool_items (id),
    job_uuid    TEXT NOT NULL,
    slot        TEXT NOT NULL,
    mac         TEXT NOT NULL,
    at          TEXT NOT NULL,
    outcome     TEXT CHECK (outcome IN ('consumed', 'released', 'kept', 'reused')),
    PRIMARY KEY (job_uuid, item_id)
) WITHOUT ROWID;
CREATE INDEX pool_uses_item ON pool_uses (item_id);
