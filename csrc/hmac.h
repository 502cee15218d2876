/*
 * hmac.h - SHA-256 on libcrypto (OpenSSL): HMAC-SHA256 for verifying
 * Truto's webhook signatures, and the plain digest for the CLI's keys.
 * Must never compare a signature in variable time, and never keep or
 * echo the key.
 */
#ifndef TRUTO_HMAC_H
#define TRUTO_HMAC_H

#include "compat.h"

/* hidden: core.so exports luaopen_truto_core alone (see core.c) */
#pragma GCC visibility push(hidden)

/* Sets core.hmac_sha256, core.hmac_sha256_verify and core.sha256 on the
 * table at the top of the stack. */
void hmac_open(lua_State *L);

#pragma GCC visibility pop

#endif
