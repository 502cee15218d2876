-- truto.cli.progress: the progress bar `truto-groups import` draws on
-- stderr when stderr is a terminal: done/total, rate, failures, ETA.
-- Must never write anywhere but stderr, nor redraw more than ten times a
-- second.

local core = require "truto.core"

local Progress = {}
Progress.__index = Progress

local clock = core.now

local function duration(seconds)
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then
    return string.format("%d:%02d:%02d", math.floor(seconds / 3600), math.floor(seconds % 3600 / 60),
      seconds % 60)
  end
  return string.format("%d:%02d", math.floor(seconds / 60), seconds % 60)
end

-- Progress.new(total, done_before, failed_before) -> bar
function Progress.new(total, done_before, failed_before)
  return setmetatable({ total = total, done = done_before or 0, failed = failed_before or 0,
    sent = 0, started = clock(), drawn = 0 }, Progress)
end

-- Counts one finished row; redraws at most every 0.1 s (and at the end).
function Progress:update(failed)
  self.done = self.done + 1
  self.sent = self.sent + 1
  if failed then self.failed = self.failed + 1 end
  self:draw(false)
end

-- Draws the bar (force: even if drawn less than 0.1 s ago, when something
-- changed since).
function Progress:draw(force)
  local t = clock()
  if self.shown == self.done and force then return end
  if not force and t - self.drawn < 0.1 and self.done < self.total then return end
  self.drawn, self.shown = t, self.done
  local elapsed = math.max(t - self.started, 1e-6)
  local rate = self.sent / elapsed
  local width = 24
  local filled = self.total > 0 and math.floor(width * self.done / self.total) or width
  local eta = rate > 0 and duration((self.total - self.done) / rate) or "?"
  io.stderr:write(string.format("\r\27[K[%s%s] %d/%d  %.1f/s  %d failed  ETA %s",
    string.rep("#", filled), string.rep(".", width - filled), self.done, self.total, rate,
    self.failed, eta))
  io.stderr:flush()
end

-- Clears the bar's line (before a message, and at the end).
function Progress.clear()
  io.stderr:write("\r\27[K")
  io.stderr:flush()
end

return Progress
