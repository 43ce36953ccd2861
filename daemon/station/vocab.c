/* SPDX-License-Identifier: MIT */
/* vocab.c — the station's words in one place (vocab.h): what each job state, error class, slot
 * state and result is called for an operator, the remedy hint of each error class, and the
 * chips with the properties the dashboard and recipes need. Served as GET /api/v1/vocabulary;
 * tests/unit/test_vocab.c fails when an entry has no operator wording. */
#include "vocab.h"

#include <stdio.h>
#include <string.h>

#include "chip.h"
#include "jobmgr.h"

/* Job states (jobs/job.h JOB_STATE_MAP) in an operator's words. */
static const char *const vocab_state_words[JOB_ST__COUNT] = {
    [JOB_ST_IDLE] = "Not started",
    [JOB_ST_OPEN] = "Opening the port",
    [JOB_ST_RESET] = "Resetting the board",
    [JOB_ST_SYNC] = "Connecting to the bootloader",
    [JOB_ST_DETECT] = "Detecting the chip",
    [JOB_ST_READ_EFUSE] = "Reading the MAC address",
    [JOB_ST_STUB] = "Loading the flasher",
    [JOB_ST_BAUD] = "Changing the speed",
    [JOB_ST_ATTACH] = "Attaching the flash",
    [JOB_ST_FLASH_ID] = "Reading the flash ID",
    [JOB_ST_PARAMS] = "Checking the flash size",
    [JOB_ST_ERASE] = "Erasing the flash",
    [JOB_ST_PREPARE] = "Preparing the image",
    [JOB_ST_COMPARE] = "Checking what is already on the flash",
    [JOB_ST_BEGIN] = "Erasing the flash",
    [JOB_ST_DATA] = "Writing the flash",
    [JOB_ST_VERIFY] = "Checking the flash (MD5)",
    [JOB_ST_READ] = "Reading the flash",
    [JOB_ST_AFTER_RESET] = "Restarting the board",
    [JOB_ST_TEST] = "Testing the board",
    [JOB_ST_CLOSING] = "Finishing",
    [JOB_ST_DONE] = "Done",
};

/* Error classes (jobs/proto/est_err.h EST_CLASS_MAP): a few plain words, and what to do. */
static const struct {
    const char *words, *hint;
} vocab_classes[EST_CLASS__COUNT] = {
    [EST_CLASS_NONE] = {"No error",
                      ""},
    [EST_CLASS_USAGE] = {"Wrong settings",
                      "Check the command line; run with --help for the options."},
    [EST_CLASS_IMAGE_MISSING] = {"Firmware file missing",
                      "Check that the image file exists and is readable by the station user."},
    [EST_CLASS_IMAGE_INVALID] = {"Firmware file not valid",
                      "The image file is empty or not a valid firmware image for this chip; rebuild "
                      "it or check the recipe points at the right file."},
    [EST_CLASS_RECIPE_INVALID] = {"Recipe not valid",
                      "The recipe is not valid: fix the field named in the message (docs/RECIPES.md "
                      "lists every field) and check it with 'espstation recipe check FILE'."},
    [EST_CLASS_BAD_OFFSET] = {"Recipe: bad flash address",
                      "Flash offsets must be multiples of 4 KiB (0x1000), images must not overlap, "
                      "and every image must lie inside the flash."},
    [EST_CLASS_FLASH_TOO_SMALL] = {"Flash too small for the firmware",
                      "The image does not fit in this board's flash; check the board variant (module "
                      "flash size) or the image/offset."},
    [EST_CLASS_PORT_NOT_FOUND] = {"Serial port not found",
                      "The serial port does not exist: check the USB cable and hub, and the port "
                      "name (ls /dev/serial/by-path/)."},
    [EST_CLASS_PORT_BUSY] = {"Serial port in use",
                      "Another program holds the port (a serial monitor, ModemManager, another "
                      "station job); close it and retry."},
    [EST_CLASS_PORT_GONE] = {"Connection to the board lost",
                      "The port disappeared during the job: check the USB cable, the hub's power and "
                      "the fixture contacts, then reinsert the board."},
    [EST_CLASS_PORT_ERROR] = {"Serial port problem",
                      "The port could not be configured; check that it is a serial device and that "
                      "the station user is in the dialout group."},
    [EST_CLASS_NO_SYNC] = {"No answer from the board",
                      "Nothing answered the bootloader sync. Check that the board is powered and "
                      "seated, that TX/RX are not swapped, and that the boot pin (GPIO0, or GPIO9 on "
                      "C-series) is pulled low at reset (auto-reset wiring on DTR/RTS, or hold BOOT "
                      "while resetting)."},
    [EST_CLASS_WRONG_BOOT_MODE] = {"Board not in download mode",
                      "The device is running its application instead of the ROM bootloader: the boot "
                      "pin was not low at reset. Check the DTR/RTS auto-reset circuit (and its EN "
                      "capacitor) or hold BOOT while resetting."},
    [EST_CLASS_TIMEOUT] = {"Board stopped answering",
                      "The device stopped answering. Check the cable, the fixture contacts and "
                      "power; try a lower baud rate."},
    [EST_CLASS_NAK] = {"Board refused a command",
                      "The bootloader rejected a command. Check that the recipe matches the chip and "
                      "the flash size; see the command and status in the message."},
    [EST_CLASS_UNSUPPORTED] = {"Not supported by this board",
                      "This loader does not support the operation (e.g. the ESP8266 ROM has no MD5 "
                      "or compressed writes); use the stub loader or change the recipe."},
    [EST_CLASS_PROTOCOL] = {"Garbled data from the board",
                      "Garbled replies from the device: check for noise on the serial lines, a bad "
                      "cable, or a baud rate the adapter cannot do."},
    [EST_CLASS_MD5_MISMATCH] = {"Flash check failed (MD5)",
                      "Flash content differs from the image after writing: the flash may be faulty "
                      "or the supply unstable during writing. Retry; if it repeats, reject the board."},
    [EST_CLASS_WRONG_CHIP] = {"Wrong chip on the board",
                      "The chip on the board is not the one the job expects: check the board type or "
                      "the --chip / recipe setting."},
    [EST_CLASS_FLASH_NOT_DETECTED] = {"Flash chip not found",
                      "The SPI flash did not answer (JEDEC ID 000000/FFFFFF): check the flash chip, "
                      "its supply and the SPI pin configuration."},
    [EST_CLASS_BROWNOUT] = {"Board reset itself (power)",
                      "The chip reset itself during the job (boot banner mid-transfer): check the "
                      "3.3 V supply under load, USB hub power and decoupling."},
    [EST_CLASS_STUB_FAILED] = {"Flasher program did not start",
                      "The flasher stub could not be loaded or did not start. Point the station at "
                      "an intact stub directory (an installed esptool's targets/stub_flasher/1 or "
                      "/2, or an esp-flasher-stub release; docs/CLI.md), or use the ROM loader "
                      "(--no-stub, recipe \\\"stub\\\": false)."},
    [EST_CLASS_TEST_FAILED] = {"Board did not start its program",
                      "The board was flashed and verified, but the application did not report ready: "
                      "check the application log in the job detail (what it printed after the "
                      "reset), the power supply, and the peripherals and wiring on the fixture the "
                      "application waits for."},
    [EST_CLASS_CANCELLED] = {"Cancelled",
                      "The job was cancelled."},
    [EST_CLASS_INTERNAL] = {"Station software error",
                      "Internal error in espstation; please report it with the log."},
};

static const char *const vocab_slot_words[] = {
#define XX(e, n) [SLOT_ST_##e] = n,
    SLOT_STATE_MAP(XX)
#undef XX
};

const char *vocab_job_state_words(job_state_t s)
{
    return (unsigned)s < JOB_ST__COUNT && vocab_state_words[s] ? vocab_state_words[s] : "";
}

const char *vocab_class_words(est_class_t c)
{
    return (unsigned)c < EST_CLASS__COUNT && vocab_classes[c].words ? vocab_classes[c].words : "";
}

const char *est_class_hint(est_class_t c)
{
    return (unsigned)c < EST_CLASS__COUNT && vocab_classes[c].hint ? vocab_classes[c].hint : "";
}

static void vocab_add(cJSON *arr, const char *name, const char *words, const char *extra_key,
                      const char *extra)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "words", words);
    if (extra_key) cJSON_AddStringToObject(o, extra_key, extra);
    cJSON_AddItemToArray(arr, o);
}

static cJSON *vocab_chips(void)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < CHIP__COUNT; i++) {
        const chip_info_t *c = chip_get((chip_id_t)i);
        cJSON *o, *fr;
        if (!c) continue;
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", c->name);
        cJSON_AddStringToObject(o, "words", c->pretty);
        cJSON_AddNumberToObject(o, "bootloader_offset", c->bootloader_offset);
        cJSON_AddNumberToObject(o, "max_flash_size", c->max_flash_size);
        cJSON_AddBoolToObject(o, "rom_compressed_writes", c->rom_defl);
        cJSON_AddBoolToObject(o, "rom_md5", c->rom_md5);
        fr = cJSON_AddArrayToObject(o, "flash_freqs");
        for (size_t k = 0; c->freq_names && c->freq_names[k]; k++)
            cJSON_AddItemToArray(fr, cJSON_CreateString(c->freq_names[k]));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *vocab_json(void)
{
    cJSON *o = cJSON_CreateObject(), *a;
    a = cJSON_AddArrayToObject(o, "job_states");
    for (int s = 0; s < JOB_ST__COUNT; s++)
        vocab_add(a, job_state_name((job_state_t)s), vocab_job_state_words((job_state_t)s), NULL,
                  NULL);
    a = cJSON_AddArrayToObject(o, "slot_states");
    for (size_t s = 0; s < sizeof vocab_slot_words / sizeof vocab_slot_words[0]; s++)
        cJSON_AddItemToArray(a, cJSON_CreateString(vocab_slot_words[s]));
    a = cJSON_AddArrayToObject(o, "results");
    for (int r = 0; r < STORE_RESULT__COUNT; r++)
        cJSON_AddItemToArray(a, cJSON_CreateString(store_result_name((store_result_t)r)));
    a = cJSON_AddArrayToObject(o, "error_classes");
    for (int c = 0; c < EST_CLASS__COUNT; c++)
        vocab_add(a, est_class_name((est_class_t)c), vocab_class_words((est_class_t)c), "hint",
                  est_class_hint((est_class_t)c));
    cJSON_AddItemToObject(o, "chips", vocab_chips());
    return o;
}
