/*
 * hmac.c - SHA-256 on libcrypto: HMAC-SHA256 for truto.webhooks (compute,
 * for signing as the mock and the specs do, and verify a hex signature in
 * constant time), and the plain digest the CLI derives its keys from.
 *
 * Must never: compare digests with memcmp or stop at the first differing
 * byte (CRYPTO_memcmp only), leave the key or a digest in a Lua string or
 * an error message, or raise on a malformed signature (that is an
 * ordinary `false`, the attacker's input).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hmac.h"

#define DIGEST_BYTES 32

/* HMAC-SHA256 of data keyed with key into out (32 bytes); 0 on success. */
static int hmac_sha256(const char *key, size_t key_len, const char *data, size_t data_len,
                       unsigned char out[DIGEST_BYTES]) {
  unsigned int out_len = 0;
  /* HMAC() takes an int key length; refuse what does not fit rather than truncate */
  if (key_len > 0x7fffffff) return -1;
  if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, data_len, out, &out_len))
    return -1;
  return out_len == DIGEST_BYTES ? 0 : -1;
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Pushes the digest as 64 lowercase hex digits, then wipes it. */
static void push_hex(lua_State *L, unsigned char digest[DIGEST_BYTES]) {
  static const char digits[] = "0123456789abcdef";
  char hex[DIGEST_BYTES * 2];
  int i;
  for (i = 0; i < DIGEST_BYTES; i++) {
    hex[2 * i] = digits[digest[i] >> 4];
    hex[2 * i + 1] = digits[digest[i] & 15];
  }
  OPENSSL_cleanse(digest, DIGEST_BYTES);
  lua_pushlstring(L, hex, sizeof hex);
}

/*
 * core.hmac_sha256(key, data) -> 64 lowercase hex digits
 * Raises only on misuse (non-string arguments) or a libcrypto failure.
 */
static int core_hmac_sha256(lua_State *L) {
  size_t key_len, data_len;
  const char *key = luaL_checklstring(L, 1, &key_len);
  const char *data = luaL_checklstring(L, 2, &data_len);
  unsigned char digest[DIGEST_BYTES];
  if (hmac_sha256(key, key_len, data, data_len, digest) != 0)
    return luaL_error(L, "HMAC-SHA256 failed in libcrypto");
  push_hex(L, digest);
  return 1;
}

/*
 * core.sha256(data) -> 64 lowercase hex digits, the SHA-256 (FIPS 180-4)
 * of data. Raises only on misuse (a non-string) or a libcrypto failure.
 */
static int core_sha256(lua_State *L) {
  size_t data_len;
  const char *data = luaL_checklstring(L, 1, &data_len);
  unsigned char digest[DIGEST_BYTES];
  unsigned int out_len = 0;
  if (!EVP_Digest(data, data_len, digest, &out_len, EVP_sha256(), NULL) || out_len != DIGEST_BYTES)
    return luaL_error(L, "SHA-256 failed in libcrypto");
  push_hex(L, digest);
  return 1;
}

/*
 * core.hmac_sha256_verify(key, data, hex) -> boolean
 * True when hex (64 hex digits, either case) is the HMAC-SHA256 of data
 * keyed with key. The digests are compared with CRYPTO_memcmp, whose time
 * does not depend on where they differ; a hex string of the wrong length or
 * with a non-hex digit is false (its shape is public, not secret).
 */
static int core_hmac_sha256_verify(lua_State *L) {
  size_t key_len, data_len, hex_len;
  const char *key = luaL_checklstring(L, 1, &key_len);
  const char *data = luaL_checklstring(L, 2, &data_len);
  const char *hex = luaL_checklstring(L, 3, &hex_len);
  unsigned char expected[DIGEST_BYTES], given[DIGEST_BYTES];
  int i, bad = 0, same;
  if (hex_len != DIGEST_BYTES * 2) {
    lua_pushboolean(L, 0);
    return 1;
  }
  for (i = 0; i < DIGEST_BYTES; i++) {
    int hi = hex_value((unsigned char)hex[2 * i]), lo = hex_value((unsigned char)hex[2 * i + 1]);
    bad |= (hi < 0) | (lo < 0);
    given[i] = (unsigned char)(((hi & 15) << 4) | (lo & 15));
  }
  if (hmac_sha256(key, key_len, data, data_len, expected) != 0)
    return luaL_error(L, "HMAC-SHA256 failed in libcrypto");
  same = CRYPTO_memcmp(expected, given, DIGEST_BYTES) == 0;
  OPENSSL_cleanse(expected, sizeof expected);
  lua_pushboolean(L, same && !bad);
  return 1;
}

void hmac_open(lua_State *L) {
  static const luaL_Reg functions[] = {
    { "hmac_sha256", core_hmac_sha256 },
    { "hmac_sha256_verify", core_hmac_sha256_verify },
    { "sha256", core_sha256 },
    { NULL, NULL }
  };
  luaL_setfuncs(L, functions, 0);
}
