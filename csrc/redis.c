/*
 * redis.c - core.redis_connect: a Redis connection on hiredis (the RESP
 * protocol is hiredis's; none of ours). The connection is a userdata with
 * an idempotent close (also __gc and __close); a closed one raises.
 *
 *   core.redis_connect(host, port, timeout) -> conn | nil, message
 *       timeout: seconds, on the connect and then on every command
 *   conn:command(arg, ...) -> reply | nil, message, kind
 *       reply: a string (bulk or status), an integer, false (nil reply)
 *       or a list of replies; kind "reply" for an error Redis answered
 *       (the connection stays usable), "io" when the connection failed
 *       (timeout, reset, closed: it is then closed, connect again)
 *   conn:close()
 *
 * Must never block longer than the timeout per call, never keep a
 * lua_State, and never echo the arguments (an AUTH password) in a message.
 */
#include <math.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "class.h"
#include "redis.h"

#define REDIS_CLASS "truto.redis"
#define MAX_ARGS 64
#define MAX_DEPTH 8

typedef struct redis_conn {
  redisContext *ctx; /* NULL once closed */
} redis_conn;

static struct timeval to_timeval(double seconds) {
  struct timeval tv;
  tv.tv_sec = (time_t)seconds;
  tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
  return tv;
}

static redis_conn *check_open(lua_State *L) {
  redis_conn *c = (redis_conn *)class_check(L, 1, REDIS_CLASS);
  if (c->ctx == NULL) luaL_error(L, "the Redis connection is closed");
  return c;
}

static int conn_close(lua_State *L) {
  redis_conn *c = (redis_conn *)class_check(L, 1, REDIS_CLASS);
  if (c->ctx != NULL) {
    redisFree(c->ctx);
    c->ctx = NULL;
  }
  return 0;
}

/* Pushes a reply as a Lua value; nested lists up to MAX_DEPTH. */
static void push_reply(lua_State *L, const redisReply *r, int depth) {
  size_t i;
  switch (r->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, r->str, r->len);
    break;
  case REDIS_REPLY_INTEGER:
    lua_pushinteger(L, (lua_Integer)r->integer);
    break;
  case REDIS_REPLY_ARRAY:
    if (depth >= MAX_DEPTH) {
      lua_pushboolean(L, 0);
      break;
    }
    lua_createtable(L, (int)r->elements, 0);
    for (i = 0; i < r->elements; i++) {
      push_reply(L, r->element[i], depth + 1);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  default: /* REDIS_REPLY_NIL */
    lua_pushboolean(L, 0);
    break;
  }
}

/* conn:command(arg, ...): see the header. */
static int conn_command(lua_State *L) {
  redis_conn *c = check_open(L);
  int argc = lua_gettop(L) - 1, i;
  const char *argv[MAX_ARGS];
  size_t argvlen[MAX_ARGS];
  redisReply *reply;
  luaL_argcheck(L, argc >= 1 && argc <= MAX_ARGS, 2, "1 to 64 arguments");
  for (i = 0; i < argc; i++) argv[i] = luaL_checklstring(L, i + 2, &argvlen[i]);
  reply = (redisReply *)redisCommandArgv(c->ctx, argc, argv, argvlen);
  if (reply == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, c->ctx->errstr[0] ? c->ctx->errstr : "the Redis connection failed");
    lua_pushliteral(L, "io");
    redisFree(c->ctx);
    c->ctx = NULL;
    return 3;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, reply->str, reply->len);
    lua_pushliteral(L, "reply");
    freeReplyObject(reply);
    return 3;
  }
  push_reply(L, reply, 0);
  freeReplyObject(reply);
  return 1;
}

/* core.redis_connect(host, port, timeout): see the header. */
static int redis_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  double timeout = luaL_checknumber(L, 3);
  struct timeval tv;
  redisContext *ctx;
  redis_conn *c;
  luaL_argcheck(L, port >= 1 && port <= 65535, 2, "a port from 1 to 65535");
  luaL_argcheck(L, timeout > 0 && timeout <= 3600, 3, "seconds above 0, at most 3600");
  tv = to_timeval(timeout);
  c = (redis_conn *)class_new(L, REDIS_CLASS, sizeof *c);
  ctx = redisConnectWithTimeout(host, (int)port, tv);
  if (ctx == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory connecting to Redis");
    return 2;
  }
  if (ctx->err) {
    lua_pushnil(L);
    lua_pushstring(L, ctx->errstr);
    redisFree(ctx);
    return 2;
  }
  if (redisSetTimeout(ctx, tv) != REDIS_OK) {
    lua_pushnil(L);
    lua_pushliteral(L, "could not set the Redis command timeout");
    redisFree(ctx);
    return 2;
  }
  c->ctx = ctx;
  return 1;
}

void redis_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "command", conn_command },
    { "close", conn_close },
    { NULL, NULL }
  };
  static const luaL_Reg meta[] = {
    { "__gc", conn_close },
    { "__close", conn_close },
    { NULL, NULL }
  };
  class_register(L, REDIS_CLASS, methods, meta);
  lua_pushcfunction(L, redis_connect);
  lua_setfield(L, -2, "redis_connect");
}
