-- SPDX-License-Identifier: MIT
-- 003_api.sql — what the HTTP API needs on top of 001-002: the recipe chosen per slot through the
-- API (survives restarts), and indexes for its queries (time windows, per-slot history, recipe
-- list). Must not: contain BEGIN/COMMIT or PRAGMAs (store.c wraps each migration itself).

-- PUT /api/v1/slots/{name}/recipe: a slot runs this stored recipe instead of its configured one
-- until it is set back to null (row deleted). Slots are named by the config; a row whose slot
-- the config no longer has is ignored.
CREATE TABLE slot_recipes (
    slot        TEXT PRIMARY KEY,
    recipe_hash TEXT NOT NULL REFERENCES recipes (hash),
    assigned_at TEXT NOT NULL
) WITHOUT ROWID;

-- GET /api/v1/stats and the jobs `since` filter look at finished_at windows.
CREATE INDEX jobs_finished_at ON jobs (finished_at);
-- A slot's last finished job (slot views after a restart).
CREATE INDEX jobs_slot_seq ON jobs (slot, seq);
-- GET /api/v1/recipes lists newest first.
CREATE INDEX recipes_created_at ON recipes (created_at);
