-- examples/neovim/demo.lua - creates one group each way from a headless
-- Neovim, and shows the editor's loop kept running meanwhile:
--   TRUTO_API_TOKEN=... TRUTO_INTEGRATED_ACCOUNT_ID=... \
--   TRUTO_LUA_ROOT=/opt/truto-lua nvim --headless -u NONE -c 'luafile examples/neovim/demo.lua'
-- Prints one JSON line per create ({ how, group | err, ticks }) on stdout,
-- then quits. `ticks`: how often a 10 ms timer on the main loop fired while
-- that create ran (a blocked loop would show 0).
-- Must never: leave Neovim running when something fails (it quits anyway).
local root = os.getenv("TRUTO_LUA_ROOT") or "/opt/truto-lua"
local tg = dofile(root .. "/examples/neovim/truto_groups.lua").setup {
  root = root,
  command = os.getenv("TRUTO_GROUPS_COMMAND") and vim.split(os.getenv("TRUTO_GROUPS_COMMAND"), " ")
    or "truto-groups",
}

local ticks = 0
local timer = vim.loop.new_timer()
timer:start(10, 10, function() ticks = ticks + 1 end)

local function report(how, group, err)
  io.stdout:write(vim.json.encode{ how = how, group = group, err = err, ticks = ticks }, "\n")
  io.stdout:flush()
end

local pending = 2
local function done()
  pending = pending - 1
  if pending == 0 then
    timer:stop()
    vim.cmd("qall!")
  end
end

local started = ticks
tg.create({ name = "From a work thread" }, { group_type = "team" }, function(group, err)
  ticks = ticks - started
  report("work thread", group, err)
  ticks = 0
  tg.create_with_job({ name = "From a job", group_type = "team" }, function(g, e)
    report("job", g, e)
    done()
  end)
  done()
end)
