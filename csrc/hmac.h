/*
 * hmac.h - HMAC-SHA256 for verifying Truto's webhook signatures, on
 * libcrypto (OpenSSL). Must never compare a signature in variable time,
 * and never keep or echo the key.
 */
#ifndef TRUTO_HMAC_H
#define TRUTO_HMAC_H

#include "compat.h"

/* Sets core.hmac_sha256 and core.hmac_sha256_verify on the table at the
 * top of the stack. */
void hmac_open(lua_State *L);

#endif
