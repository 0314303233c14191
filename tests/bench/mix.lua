-- wrk script of tests/bench/run.sh: each request is drawn at random from the
-- pool gen.pl wrote (requests.tsv), formatted once at start so that wrk
-- spends its time sending, not building requests.
--   wrk ... -s mix.lua URL -- requests.tsv [CATEGORY [once]]
-- CATEGORY (profiled, known, unknown, new) keeps only those requests;
-- "mixed", the whole pool. "once" sends the pool once, in order, and exits
-- (the warm-up): status 0 when every response was a 200. Otherwise done()
-- prints one machine-readable line.

local pool = {}
local sent, received = 0, 0

local function split(s, sep)
    local fields, from = {}, 1
    while true do
        local at = string.find(s, sep, from, true)
        if not at then
            fields[#fields + 1] = string.sub(s, from)
            return fields
        end
        fields[#fields + 1] = string.sub(s, from, at - 1)
        from = at + #sep
    end
end

function init(args)
    local category = args[2]
    for line in io.lines(args[1]) do
        local f = split(line, "\t")
        if category == nil or category == "mixed" or f[1] == category then
            local headers = { ["User-Agent"] = f[4] }
            if f[3] ~= "" then headers["Cookie"] = f[3] end
            for _, h in ipairs(split(f[5], "|")) do
                local colon = string.find(h, ": ", 1, true)
                headers[string.sub(h, 1, colon - 1)] = string.sub(h, colon + 2)
            end
            pool[#pool + 1] = wrk.format("GET", f[2], headers)
        end
    end
    assert(#pool > 0, "no requests of category " .. tostring(category))
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
    if args[3] == "once" then
        request = function()
            sent = sent + 1
            return pool[(sent - 1) % #pool + 1]
        end
        -- defined only here: wrk parses responses only for scripts that have it
        response = function(status)
            if status ~= 200 then
                io.stderr:write("warm-up: a response with status " .. status .. "\n")
                os.exit(1)
            end
            received = received + 1
            -- wrk.thread:stop() would leave wrk sleeping out its duration
            if received >= #pool then os.exit(0) end
        end
    end
end

function request()
    return pool[math.random(#pool)]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("WRK requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.status, e.connect + e.read + e.write + e.timeout))
end
