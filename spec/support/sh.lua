-- spec.support.sh: the few shell helpers the specs and the benchmark share
-- (quoting, running a command for its status and output, reading and
-- writing whole files, the `user` line of an nginx they start). Works on every Lua the suite runs on: the exit
-- status is echoed, since Lua 5.1's pipe:close() does not report it.
-- Never runs anything it was not handed.
local sh = {}

function sh.quote(text)
  return "'" .. tostring(text):gsub("'", [['\'']]) .. "'"
end

-- Runs `command` (stderr joined to stdout), after the optional `prefix`
-- (e.g. "env -u VAR "). Returns whether it exited 0, and its output.
function sh.run(command, prefix)
  local pipe = assert(io.popen((prefix or "") .. "sh -c "
    .. sh.quote("{ " .. command .. " ; } 2>&1; echo \"rc=$?\"")))
  local output = pipe:read("*a")
  pipe:close()
  local rc = tonumber(output:match("rc=(%d+)\n?$"))
  return rc == 0, (output:gsub("rc=%d+\n?$", ""))
end

function sh.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- The `user` line of an nginx the specs or the benchmark start (the rule
-- of the mock's, mock/run): started as root, nginx runs its workers as
-- `nobody`, which cannot reach a file under a private directory (a
-- checkout in /root, a TMPDIR made by mktemp -d as scripts/run-specs makes
-- them: 0700); they then run as root too, like the rest of the run (a
-- throwaway server on loopback). Unprivileged, nginx runs them as the
-- caller: no line.
local user_line
function sh.nginx_user_line()
  if user_line == nil then
    user_line = select(2, sh.run("id -u")):match("^0%s*$") and "user root;\n" or ""
  end
  return user_line
end

function sh.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

return sh
