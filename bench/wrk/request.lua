-- Generic wrk script: the request comes from the environment so one script serves every case.
--   WRK_METHOD   GET | POST ...             (default GET)
--   WRK_BODY     request body (JSON)         (optional)
--   WRK_HEADERS  "Name: value\nName: value"  (optional, newline separated)
-- done() prints one machine-readable line: WRK_JSON {...}
local method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
local headers = os.getenv("WRK_HEADERS") or ""

wrk.method = method
if body and #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["Accept"] = "application/json"
for line in string.gmatch(headers, "[^\n]+") do
  local name, value = string.match(line, "^%s*([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "status": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
