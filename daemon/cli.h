/* SPDX-License-Identifier: MIT */
/* cli.h — the espstation subcommands. Each takes the arguments after its own name and returns
 * the process exit status (0 success, 1 the job failed, 2 usage error). */
#ifndef CLI_H
#define CLI_H

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

int cli_flash(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_recipe(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_ports(int argc, char **argv);

#endif
