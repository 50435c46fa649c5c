-- wrk script of the bench: POSTs the requests of the file named by BENCH_REQUESTS (one
-- a line: token TAB JSON body) in order, wrapping around at the end, and tells apart
-- what the server answered. BENCH_DELAY_MS, when set, waits that long on average before
-- each request on a connection (the half-peak phase); BENCH_START skips that many requests
-- (those a calibration run used); BENCH_ONCE=1 ends the run before a request would be
-- sent twice (writes), instead of wrapping around.
local path = os.getenv("BENCH_REQUESTS")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local start = tonumber(os.getenv("BENCH_START") or "0")
local once = os.getenv("BENCH_ONCE") == "1"

-- The wait before each request is drawn from an exponential distribution of mean
-- BENCH_DELAY_MS, so that each connection sends at random moments. With the same wait
-- every time, connections that start together stay in step and send in bursts, which
-- queue behind each other: at half the peak rate of case (c), the same server answered
-- with p50 4.1 ms and p99 12.9 ms under fixed waits, 2.9 and 9.7 ms under random ones.
if delay_ms > 0 then
  function delay() return -delay_ms * math.log(1 - math.random()) end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time())
  reqs = {}
  for line in io.lines(path) do
    local tab = line:find("\t", 1, true)
    reqs[#reqs + 1] = wrk.format("POST", "/query", {
      ["Authorization"] = "Bearer " .. line:sub(1, tab - 1),
      ["Content-Type"] = "application/json",
    }, line:sub(tab + 1))
  end
  i, wrapped, ended = start % #reqs, 0, 0
  ok, http, gql, withdrawn = 0, 0, 0, 0
  codes = {}
  sample = ""
end

function request()
  i = i + 1
  if once and i >= #reqs - 64 then
    -- Leave room for the requests still in flight on other connections.
    wrk.thread:stop()
    ended = 1
  end
  if i > #reqs then
    i, wrapped = 1, wrapped + 1
  end
  return reqs[i]
end

function response(status, headers, body)
  if status ~= 200 then
    http = http + 1
    if sample == "" then sample = "HTTP " .. status .. " " .. body end
    return
  end
  if body:find('"errors":', 1, true) then
    gql = gql + 1
    if sample == "" then sample = body end
    return
  end
  local code = body:match('"userErrors":%[{"code":"([A-Z_]+)"')
  if code then
    codes[code] = (codes[code] or 0) + 1
    return
  end
  ok = ok + 1
  local w = body:match('"withdrawnCount":(%d+)')
  if w then withdrawn = withdrawn + tonumber(w) end
end

function done(summary, latency, requests)
  local t = { ok = 0, http = 0, gql = 0, withdrawn = 0, wrapped = 0, ended = 0 }
  local all, samples = {}, {}
  for _, th in ipairs(threads) do
    for _, k in ipairs({ "ok", "http", "gql", "withdrawn", "wrapped", "ended" }) do
      t[k] = t[k] + th:get(k)
    end
    for code, n in pairs(th:get("codes")) do
      all[code] = (all[code] or 0) + n
    end
    local s = th:get("sample")
    if s ~= "" then samples[#samples + 1] = s end
  end
  local parts = {}
  for code, n in pairs(all) do
    parts[#parts + 1] = string.format('"%s":%d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"mean_us":%d,"p50_us":%d,"p99_us":%d,"socket_errors":%d,' ..
    '"ok":%d,"http":%d,"gql":%d,"withdrawn":%d,"wrapped":%d,"ended":%d,"codes":{%s}}\n',
    summary.requests, summary.duration, latency.mean, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout,
    t.ok, t.http, t.gql, t.withdrawn, t.wrapped, t.ended, table.concat(parts, ",")))
  for _, s in ipairs(samples) do
    io.write("BENCH_SAMPLE " .. s:gsub("\n", " ") .. "\n")
  end
end
