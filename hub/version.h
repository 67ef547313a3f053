/*
 * version.h - what `armonia-hub --version` prints: the hub's version and
 * those of the libraries it runs on, as loaded (not as compiled against),
 * which is what matters when a Debian update replaced one.
 */
#ifndef HUB_VERSION_INFO_H
#define HUB_VERSION_INFO_H

#include <stdio.h>

/* The hub's own version (project() in CMakeLists.txt). */
const char *version_string(void);

/* Prints "armonia-hub VERSION" and one line per library to f. */
void version_print(FILE *f);

#endif
