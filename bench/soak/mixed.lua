-- wrk script for bench/soak/soak.py: POSTs GraphQL requests of mixed roles, paced or not,
-- and counts what went wrong. One request per line of the bodies file: "<token index>\t<JSON body>".
-- Arguments (after `--`): <bodies file> <delay ms, fractional; 0: as fast as possible> <token 1> <token 2> ...
-- Prints one JSON line at the end. Not bench/wrk/graphql.lua: a `response` callback makes wrk
-- read every body, which the benchmark's script must not pay for; the soak must see errors.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  roles, bodies = {}, {}
  for line in io.lines(args[1]) do
    local tab = string.find(line, "\t", 1, true)
    roles[#roles + 1] = tonumber(string.sub(line, 1, tab - 1))
    bodies[#bodies + 1] = string.sub(line, tab + 1)
  end
  pace = tonumber(args[2]) or 0
  headers = {}
  for i = 3, #args do
    headers[i - 2] = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[i] }
  end
  next_body = (offset * 7919) % #bodies + 1
  math.randomseed(1000 + offset)
  non2xx, gql_errors, responses = 0, 0, 0
  sample = ""
end

function delay()
  if pace <= 0 then
    return 0
  end
  -- wrk sleeps whole milliseconds: round at random so that the mean is `pace`.
  local whole = math.floor(pace)
  if math.random() < pace - whole then
    whole = whole + 1
  end
  return whole
end

function request()
  local i = next_body
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/graphql", headers[roles[i]], bodies[i])
end

function response(status, hdrs, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 300) end
  elseif body and string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local n2, ge, resp, smp = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    n2 = n2 + (t:get("non2xx") or 0)
    ge = ge + (t:get("gql_errors") or 0)
    resp = resp + (t:get("responses") or 0)
    local s = t:get("sample")
    if smp == "" and s and s ~= "" then smp = s end
  end
  smp = string.gsub(smp, '[%c"\\]', " ")
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"responses":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"non2xx":%d,"graphql_errors":%d,"p50_us":%d,"p99_us":%d,"sample":"%s"}\n',
    summary.requests, resp, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, n2, ge,
    latency:percentile(50), latency:percentile(99), smp))
end
