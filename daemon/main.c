/* SPDX-License-Identifier: MIT */
#include <stdio.h>
int main(void)
{
    fputs("espstation: not built yet\n", stderr);
    return 1;
}
