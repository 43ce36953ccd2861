#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mes_poll.py — an example MES client for espstation (docs/MES.md): pulls finished jobs with the
# cursor (GET /api/v1/jobs?after=<seq>) and stores them in a SQLite file, each page and the new
# cursor in one transaction, so every job is stored exactly once across restarts of either side.
# Standard library only. Must not: advance the cursor before the page's rows are committed.
"""
usage: mes_poll.py --url http://127.0.0.1:8080 --db mes.db [--token-file FILE] [--once]
                   [--interval 2] [--limit 200]

--token-file: a file whose first line is the bearer token (role mes), or $ESPSTATION_TOKEN.
--once: stop when the station has nothing more (has_more false) instead of polling forever.
"""

import argparse
import json
import os
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (
    station_id TEXT PRIMARY KEY,
    next_after INTEGER NOT NULL,
    last_uuid  TEXT             -- the job at next_after: detects a replaced station database
);
CREATE TABLE IF NOT EXISTS results (
    uuid        TEXT PRIMARY KEY,     -- the job's identity: a second copy can never be stored
    station_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    slot        TEXT, mac TEXT, chip TEXT, revision TEXT, flash_id TEXT,
    recipe_hash TEXT, recipe_name TEXT, recipe_version TEXT,
    result      TEXT NOT NULL, error_class TEXT, message TEXT,
    attempt     INTEGER, final INTEGER,
    started_at  TEXT, finished_at TEXT, duration_ms INTEGER,
    job_json    TEXT NOT NULL,        -- everything the station sent, for later questions
    UNIQUE (station_id, seq)
);
"""


class StationError(Exception):
    pass


def get_json(base, path, token, timeout=15):
    req = urllib.request.Request(base.rstrip("/") + path)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(body).get("detail", body)
        except ValueError:
            detail = body
        # 4xx other than 429/503 will not get better by retrying: stop and say why.
        if 400 <= e.code < 500:
            raise StationError("%s %s: %s" % (e.code, path, detail))
        raise OSError("%s %s: %s" % (e.code, path, detail))


def poll(args, token, db):
    station = get_json(args.url, "/api/v1/station", token)["id"]
    row = db.execute("SELECT next_after, last_uuid FROM cursor WHERE station_id = ?",
                     (station,)).fetchone()
    after, last_uuid = (row[0], row[1]) if row else (0, None)
    if after > 0 and last_uuid:
        # The job at our cursor must still be the one we stored; otherwise the station's
        # database was replaced and its seq numbers started again.
        page = get_json(args.url, "/api/v1/jobs?" + urllib.parse.urlencode(
            {"after": after - 1, "limit": 1}), token)
        if not page["jobs"] or page["jobs"][0]["uuid"] != last_uuid:
            raise StationError("station %s: the job at seq %d is not %s any more: its database "
                               "was replaced; reset this station's cursor deliberately"
                               % (station, after, last_uuid))
    stored = 0
    while True:
        page = get_json(args.url, "/api/v1/jobs?" + urllib.parse.urlencode(
            {"after": after, "limit": args.limit}), token)
        with db:  # one transaction: the rows and the cursor that covers them
            for j in page["jobs"]:
                db.execute(
                    "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?, ?, ?, ?, ?, ?)",
                    (j["uuid"], station, j["seq"], j["slot"], j["mac"], j["chip"],
                     j["revision"], j["flash_id"], j["recipe_hash"], j["recipe_name"],
                     j["recipe_version"], j["result"], j["error_class"], j["message"],
                     j["attempt"], int(j["final"]), j["started_at"], j["finished_at"],
                     j["duration_ms"], json.dumps(j, sort_keys=True)))
            if page["jobs"]:
                last_uuid = page["jobs"][-1]["uuid"]
            after = page["next_after"]
            db.execute("INSERT INTO cursor VALUES (?, ?, ?) ON CONFLICT (station_id) DO UPDATE "
                       "SET next_after = excluded.next_after, last_uuid = excluded.last_uuid",
                       (station, after, last_uuid))
        stored += len(page["jobs"])
        if not page["has_more"]:
            return stored


def main():
    ap = argparse.ArgumentParser(description="espstation MES poller (example)")
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--token-file")
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    token = os.environ.get("ESPSTATION_TOKEN")
    if args.token_file:
        with open(args.token_file) as f:
            token = f.readline().strip()
    db = sqlite3.connect(args.db)
    db.executescript(SCHEMA)
    backoff = args.interval
    while True:
        try:
            n = poll(args, token, db)
            print("stored %d new job(s)" % n, flush=True)
            backoff = args.interval
            if args.once:
                return 0
        except StationError as e:
            print("error: %s" % e, file=sys.stderr)
            return 1
        except (OSError, ValueError) as e:  # station restarting, network: try again later
            print("station not reachable (%s); retrying in %.0f s" % (e, backoff),
                  file=sys.stderr, flush=True)
            if args.once:
                return 2
            backoff = min(backoff * 2, 60.0)
        time.sleep(backoff)


if __name__ == "__main__":
    sys.exit(main())
