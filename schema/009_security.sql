-- SPDX-License-Identifier: MIT
-- 009_security.sql — the unit's security read-out per job (issue 17 part 1,
-- docs/SECURITY-PROVISIONING.md §9): GET_SECURITY_INFO decoded and the eFuse blocks summarized
-- (flash encryption and its mode, Secure Boot, JTAG, download mode, key purposes and protection)
-- as one JSON object (jobs/prov/secstate.h); NULL when the job ended before the read-out.
-- Shown in the job detail (GET /api/v1/jobs/{uuid}, docs/API.md). Written by the final UPDATE
-- (daemon/station/store_cols.h). Never holds key bytes. not_verified_reason: why the written
-- images could not be verified (e.g. Secure Download Mode, issue 17 part 3), NULL otherwise.
ALTER TABLE jobs ADD COLUMN security TEXT;
ALTER TABLE jobs ADD COLUMN not_verified_reason TEXT;
