-- SPDX-License-Identifier: MIT
-- 002: retry policy. A board may be tried up to retry.attempts times; every attempt is its own
-- job row (attempt = 1, 2, ...). `final` is 0 for an attempt that failed and was retried, 1 for
-- the attempt that decided the board's result (and for every job that was not retried), so that
-- yield and MES results count boards, not attempts.
ALTER TABLE jobs ADD COLUMN final INTEGER NOT NULL DEFAULT 1 CHECK (final IN (0, 1));
CREATE INDEX jobs_final ON jobs (final);
