/*
 * forkcheck.c - used by spec/idempotency_key_spec.lua: loads truto.core in
 * a Lua state, takes one key, forks, and has parent and child each print
 * their next key. The two must differ (a child never reuses its parent's
 * random pool). Build: cc forkcheck.c -I<lua include> -llua5.4
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  pid_t pid;
  luaL_openlibs(L);
  lua_pushstring(L, argc > 1 ? argv[1] : "build/lua5.4/?.so");
  lua_setglobal(L, "CPATH");
  if (luaL_dostring(L, "package.cpath = CPATH .. ';' .. package.cpath\n"
                       "core = require 'truto.core'\n"
                       "core.uuid4()")) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  fflush(stdout);
  pid = fork();
  if (pid < 0) return 1;
  luaL_dostring(L, "io.write(core.uuid4(), '\\n') io.stdout:flush()");
  if (pid) waitpid(pid, NULL, 0);
  lua_close(L);
  return 0;
}
