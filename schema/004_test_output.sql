-- SPDX-License-Identifier: MIT
-- 004_test_output.sql — the post-flash test's application output gets its own column (it was
-- only a log event before): what the board printed after the reset, the last 2 KiB, non-printable
-- bytes as '.' (docs/RECIPES.md "test"). NULL when the job ran no test. Shown in the job detail
-- (GET /api/v1/jobs/{uuid}, docs/API.md). Written by the final UPDATE (daemon/station/store_cols.h).
ALTER TABLE jobs ADD COLUMN test_output TEXT;
