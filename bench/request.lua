-- wrk script: one request shape from the environment (METHOD, BODY, and HEADER_NAME/HEADER_VALUE).
wrk.method = os.getenv("METHOD") or "GET"
local body = os.getenv("BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local name = os.getenv("HEADER_NAME")
if name and name ~= "" then
  wrk.headers[name] = os.getenv("HEADER_VALUE")
end
-- The simulator, called directly, wants the marketplace host header too (nginx adds it).
local host = os.getenv("UPSTREAM_HOST")
if host and host ~= "" then
  wrk.headers["x-rapidapi-host"] = host
end
