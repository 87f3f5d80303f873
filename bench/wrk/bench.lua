-- wrk script for bench/run.sh.
--
--   wrk ... -s bench/wrk/bench.lua URL -- get
--   wrk ... -s bench/wrk/bench.lua URL -- post BYTES
--   wrk ... -s bench/wrk/bench.lua URL -- action
--
-- `get` sends the request wrk builds from the URL (plus any -H headers);
-- `post` sends a POST with an application/x-www-form-urlencoded body of
-- exactly BYTES bytes, built once per thread; `action` POSTs the JSON input
-- `{}` (for /actions/KEY). Every response whose status is
-- not 2xx is counted, and `done` prints one machine-readable line:
--
--   BENCH requests=N duration_us=N non2xx=N connect=N read=N write=N
--         timeout=N p50_us=N p99_us=N mean_us=N max_us=N

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- A form body in Digistore24's style (PHP brackets, percent-encoded UTF-8)
-- with a long free-text field, padded to exactly `size` bytes.
local function form_body(size)
  local head = "page_size=100&search%5Bproduct_id%5D=10001%2C10002"
    .. "&search%5Bemail%5D=anna%40example.com&search%5Bnote%5D="
  local words = "Zw%C3%B6lf+Module+mit+Videos%2C+Arbeitsbl%C3%A4ttern+und+Community-Zugang.+"
  local parts = { head }
  local len = #head
  while len < size do
    table.insert(parts, words)
    len = len + #words
  end
  local body = table.concat(parts):sub(1, size)
  -- Do not end inside a %XX escape.
  local p = body:find("%%[^%%]*$")
  if p and p > size - 3 then
    body = body:sub(1, p - 1) .. string.rep("x", size - p + 1)
  end
  return body
end

function init(args)
  non2xx = 0
  local mode = args[1] or "get"
  if mode == "post" then
    local size = tonumber(args[2] or "16384")
    wrk.method = "POST"
    wrk.body = form_body(size)
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  elseif mode == "action" then
    -- A named action: validated JSON input (here: no parameters).
    wrk.method = "POST"
    wrk.body = "{}"
    wrk.headers["Content-Type"] = "application/json"
  elseif mode ~= "get" then
    error("unknown mode " .. mode .. " (get, post BYTES or action)")
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d"
      .. " p50_us=%d p99_us=%d mean_us=%d max_us=%d\n",
    summary.requests, summary.duration, n, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
