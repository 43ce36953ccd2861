/* SPDX-License-Identifier: MIT */
/* names.h — X-macro lists of the loader protocol: opcodes, ROM error codes, stub error codes.
 * Owns: the single source of names and texts (PROTOCOL.md §3.6, §4.1); enums are generated.
 * Must not: contain logic. */
#ifndef NAMES_H
#define NAMES_H

/* XX(NAME, opcode) */
#define CMD_OP_MAP(XX)                                                                             \
    XX(FLASH_BEGIN, 0x02)                                                                          \
    XX(FLASH_DATA, 0x03)                                                                           \
    XX(FLASH_END, 0x04)                                                                            \
    XX(MEM_BEGIN, 0x05)                                                                            \
    XX(MEM_END, 0x06)                                                                              \
    XX(MEM_DATA, 0x07)                                                                             \
    XX(SYNC, 0x08)                                                                                 \
    XX(WRITE_REG, 0x09)                                                                            \
    XX(READ_REG, 0x0A)                                                                             \
    XX(SPI_SET_PARAMS, 0x0B)                                                                       \
    XX(SPI_ATTACH, 0x0D)                                                                           \
    XX(READ_FLASH_SLOW, 0x0E)                                                                      \
    XX(CHANGE_BAUDRATE, 0x0F)                                                                      \
    XX(FLASH_DEFL_BEGIN, 0x10)                                                                     \
    XX(FLASH_DEFL_DATA, 0x11)                                                                      \
    XX(FLASH_DEFL_END, 0x12)                                                                       \
    XX(SPI_FLASH_MD5, 0x13)                                                                        \
    XX(GET_SECURITY_INFO, 0x14)                                                                    \
    XX(ERASE_FLASH, 0xD0)                                                                          \
    XX(ERASE_REGION, 0xD1)                                                                         \
    XX(READ_FLASH, 0xD2)                                                                           \
    XX(RUN_USER_CODE, 0xD3)

/* ROM loader error byte (second status byte when the first is 1). XX(NAME, code, text) */
#define ROM_ERR_MAP(XX)                                                                            \
    XX(UNDEFINED, 0x00, "undefined error")                                                         \
    XX(INVALID_PARAM, 0x01, "invalid input parameter")                                             \
    XX(NO_MEMORY, 0x02, "out of memory")                                                           \
    XX(SEND_FAILED, 0x03, "failed to send message")                                                \
    XX(RECV_FAILED, 0x04, "failed to receive message")                                             \
    XX(INVALID_FORMAT, 0x05, "invalid message format or command not supported")                    \
    XX(OP_FAILED, 0x06, "operation failed")                                                        \
    XX(BAD_CHECKSUM, 0x07, "checksum error")                                                       \
    XX(FLASH_WRITE, 0x08, "flash write error")                                                     \
    XX(FLASH_READ, 0x09, "flash read error")                                                       \
    XX(FLASH_READ_LEN, 0x0A, "flash read length error")                                            \
    XX(DEFLATE, 0x0B, "deflate (decompression) failed")                                            \
    XX(DEFLATE_ADLER, 0x0C, "deflate Adler-32 error")                                              \
    XX(DEFLATE_PARAM, 0x0D, "deflate parameter error")                                             \
    XX(RAM_SIZE, 0x0E, "invalid RAM binary size")                                                  \
    XX(RAM_ADDR, 0x0F, "invalid RAM binary address")                                               \
    XX(PARAM, 0x64, "invalid parameter")                                                           \
    XX(FORMAT, 0x65, "invalid format")                                                             \
    XX(DESC_LONG, 0x66, "description too long")                                                    \
    XX(BAD_ENCODING, 0x67, "bad encoding description")                                             \
    XX(STORAGE, 0x69, "insufficient storage")

/* Stub error code (first status byte). XX(NAME, code, text) */
#define STUB_ERR_MAP(XX)                                                                           \
    XX(BAD_DATA_LEN, 0xC0, "bad data length")                                                      \
    XX(BAD_DATA_CHECKSUM, 0xC1, "bad data checksum")                                               \
    XX(BAD_BLOCKSIZE, 0xC2, "bad block size")                                                      \
    XX(INVALID_COMMAND, 0xC3, "invalid command")                                                   \
    XX(FAILED_SPI_OP, 0xC4, "SPI flash operation failed")                                          \
    XX(FAILED_SPI_UNLOCK, 0xC5, "could not unlock flash write protection")                         \
    XX(NOT_IN_FLASH_MODE, 0xC6, "not in flash mode (data/end without begin)")                      \
    XX(INFLATE_ERROR, 0xC7, "inflate (decompression) error")                                       \
    XX(NOT_ENOUGH_DATA, 0xC8, "not enough data")                                                   \
    XX(TOO_MUCH_DATA, 0xC9, "too much data")                                                       \
    XX(NAND_PROGRAM, 0xCA, "NAND program failed")                                                  \
    XX(NAND_ERASE, 0xCB, "NAND erase failed")                                                      \
    XX(CMD_NOT_IMPLEMENTED, 0xFF, "command not implemented")

#endif
