-- SPDX-License-Identifier: MIT
-- 006_database_id.sql — the database's identity (issue 14, docs/MES.md "A new database"): a
-- random id made once, when the database is created (or first upgraded to this version), shown
-- in GET /api/v1/station and on every page of GET /api/v1/jobs. A replaced or re-created
-- database has another id, so an MES holding a cursor of the old one knows its `seq`s start
-- again instead of silently skipping jobs.
-- Must not: contain BEGIN/COMMIT or PRAGMAs (store.c wraps each migration itself).

CREATE TABLE database_identity (
    id         TEXT NOT NULL,  -- 32 lower-case hex digits (128 random bits)
    created_at TEXT NOT NULL
);
INSERT INTO database_identity (id, created_at)
VALUES (lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
