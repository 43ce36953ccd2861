-- SPDX-License-Identifier: MIT
-- 008_stub_name.sql — which flasher stub a job uploaded (issue 12): the file of the stub
-- directory that was chosen (e.g. "1/esp32.json (legacy stub, esptool 4.12.0)", docs/CLI.md
-- "Flasher stubs"), or a recipe's stub file name. NULL with the ROM loader. Written by the final
-- UPDATE (daemon/station/store_cols.h); in the Job of the API (docs/API.md).
ALTER TABLE jobs ADD COLUMN stub_name TEXT;
