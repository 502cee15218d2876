-- examples/lsyncd/truto-groups.lsyncd.lua - an lsyncd (2.2) configuration
-- that creates a Truto group for every directory made in a watched tree:
-- `mkdir teams/Platform` creates the group "Platform" (group_type team).
--
--   export TRUTO_API_TOKEN=... TRUTO_INTEGRATED_ACCOUNT_ID=...
--   TRUTO_WATCH_DIR=$HOME/teams lsyncd -nodaemon examples/lsyncd/truto-groups.lsyncd.lua
--
-- lsyncd runs every action from one event loop, so the create must not run
-- inside it: each one is the `truto-groups create` command line (Lua 5.4,
-- `make install`), started with lsyncd's spawn(), which returns at once;
-- lsyncd calls `collect` when it exits. The token reaches the command
-- through the environment lsyncd was started with, never its arguments.
-- TRUTO_GROUPS overrides the command (words split on spaces; the first an
-- absolute path: lsyncd execs it without searching PATH).
--
-- Must never: call the truto module (or os.execute, io.popen) from an
-- action, which would stop lsyncd's loop for the whole round trip; pass the
-- token on a command line.
local watch = assert(os.getenv("TRUTO_WATCH_DIR"), "set TRUTO_WATCH_DIR to the tree to watch")
local unpack_list = table.unpack or unpack
local command = {}
for word in (os.getenv("TRUTO_GROUPS") or "/usr/local/bin/truto-groups"):gmatch("%S+") do
  command[#command + 1] = word
end

settings {
  nodaemon = true,
  insist = true,
  statusFile = os.getenv("TRUTO_LSYNCD_STATUS"), -- nil: none
}

local truto_groups = {
  delay = 0,           -- start at once (a create is not batched)
  maxProcesses = 4,    -- creates at once; the rest wait in lsyncd's queue

  onCreate = function(event)
    if not event.isdir then return end -- files: not ours (lsyncd drops the event)
    local argv = { unpack_list(command) }
    for _, word in ipairs { "create", "--name", event.basename, "--group-type", "team" } do
      argv[#argv + 1] = word
    end
    spawn(event, unpack_list(argv))
  end,

  -- The command's exit: 0 created, 1 refused or failed (its stderr says
  -- why, in lsyncd's log); never "again": truto-groups already retried what
  -- can be retried without creating twice.
  collect = function(agent, exitcode)
    if exitcode ~= 0 then
      log("Error", "truto-groups could not create the group for ", agent.basename,
        " (exit ", exitcode, ")")
    end
    return "ok"
  end,
}

sync { truto_groups, source = watch }
