-- wrk: POST a small chat completion with the headers in WRK_HEADERS ("Name: value|Name: value").
wrk.method = "POST"
wrk.body = '{"model":"llama-3-8b","messages":[{"role":"user","content":"hello"}],"max_tokens":8}'
wrk.headers["Content-Type"] = "application/json"
local extra = os.getenv("WRK_HEADERS") or ""
for pair in string.gmatch(extra, "[^|]+") do
  local name, value = string.match(pair, "^%s*([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end
done = function(summary, latency, requests)
  local out = string.format('{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f}}',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean)
  io.stderr:write("WRKJSON " .. out .. "\n")
end
