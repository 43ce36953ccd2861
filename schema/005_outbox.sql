-- SPDX-License-Identifier: MIT
-- 005_outbox.sql — the durable outbox (docs/CFX.md "Delivery"): messages for the outside world
-- (IPC-CFX over AMQP now; webhooks may share it) written in the SAME transaction as the job row
-- they describe, and deleted only once the destination has accepted them.
-- Must not: contain BEGIN/COMMIT or PRAGMAs (store.c wraps each migration itself).

-- One row per message waiting for its destination. `id` is the send order: a sink sends its rows
-- in id order, so the messages of one stream (a slot) arrive in the order they were written.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sink        TEXT NOT NULL,              -- destination: 'cfx', later e.g. 'webhook:<name>'
    stream      TEXT NOT NULL,              -- ordering key within the sink: slot name or 'station'
    unique_id   TEXT NOT NULL UNIQUE,       -- CFX UniqueID / delivery id: the same on every re-send
    kind        TEXT NOT NULL,              -- 'CFX.Production.WorkStarted', ...
    job_uuid    TEXT,                       -- the job the message describes (NULL: station message)
    body        TEXT NOT NULL,              -- the whole payload (a CFX envelope, JSON)
    created_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0, -- sends that were not accepted
    last_error  TEXT,                       -- why the last send was refused (rejected, ...)
    parked      INTEGER NOT NULL DEFAULT 0  -- 1: refused by the destination, kept for inspection
);
CREATE INDEX outbox_sink_id ON outbox (sink, parked, id);

-- Per sink and key (a slot, or 'station'), the state last announced and since when (unix ms),
-- so a state change message can carry its old state and how long it lasted, across restarts.
CREATE TABLE outbox_state (
    sink     TEXT NOT NULL,
    key      TEXT NOT NULL,
    state    TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (sink, key)
) WITHOUT ROWID;

-- Jobs whose start message was written but not yet their end message: after a crash the job row
-- becomes 'interrupted' at the next start (store recovery) and the sink writes the end message
-- for each job listed here (and only for those), then removes the row.
CREATE TABLE outbox_open_work (
    sink     TEXT NOT NULL,
    job_uuid TEXT NOT NULL,
    PRIMARY KEY (sink, job_uuid)
) WITHOUT ROWID;

-- Messages not written because the sink's outbox was full (the bound of its config): counted so
-- that the dashboard and /metrics can raise the alarm.
INSERT INTO counters (name, value) VALUES ('outbox_dropped_cfx', 0);
