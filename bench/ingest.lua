-- wrk script: replay pre-built, signed webhook requests (see bench/webhooks.py).
-- Thread k reads <prefix>-k.bin and sends its requests in order, so no request is sent
-- twice unless a thread runs out and starts over (counted in "wraps").
-- Usage: wrk -t2 -c32 -d10s -s bench/ingest.lua http://127.0.0.1:PORT -- <prefix> [<skip0,skip1,...>]
-- where skip<k> is how many requests of thread k's file an earlier run already sent.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1] .. "-" .. id .. ".bin", "rb"))
  reqs = {}
  while true do
    local header = f:read(10)
    if not header then break end
    reqs[#reqs + 1] = f:read(tonumber(header))
  end
  f:close()
  sent = 0
  wraps = 0
  index = 0
  if args[2] then
    local k = 0
    for skip in string.gmatch(args[2], "%d+") do
      if k == id then index = tonumber(skip) % #reqs end
      k = k + 1
    end
  end
end

function request()
  index = index + 1
  if index > #reqs then
    index = 1
    wraps = wraps + 1
  end
  sent = sent + 1
  return reqs[index]
end

function done(summary, latency, requests)
  local total_wraps = 0
  local sent_by_thread = {}
  for _, thread in ipairs(threads) do
    total_wraps = total_wraps + thread:get("wraps")
    sent_by_thread[#sent_by_thread + 1] = tostring(thread:get("sent"))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f},"wraps":%d,' ..
    '"sent_by_thread":[%s]}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, total_wraps, table.concat(sent_by_thread, ",")))
end
