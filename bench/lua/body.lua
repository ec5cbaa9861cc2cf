-- wrk script: a fresh body per request, built from fixed pieces (bench/payloads.py renders the
-- constants below for each run; this file is the template).
--
-- Each request gets a message id made of the run tag, the thread's number and a per-thread
-- counter, so no two requests of a run (or of two runs on one database) share an id. `{n}` in the
-- command text is drawn uniformly from 1..MAX_N (`查询 #N` over the whole item store).
-- DingTalk runs (SIGN_COUNT > 0): each request is signed with its own timestamp, entry
-- (counter - 1) * THREADS + thread - 1 of the precomputed table (SIGNS holds the signatures end to
-- end, SIGN_LENGTH characters each; the timestamps are SIGN_FIRST_MS, SIGN_FIRST_MS + 1, …).
-- Batch runs (ITEMS_PER_REQUEST > 0, the intake API's items:batch): PIECES is one item, and each
-- request sends BATCH_OPEN item,item,… BATCH_CLOSE with that many items, each taking the next
-- counter value as its id, so every item of the run is distinct.
-- Responses are counted per status; done() prints one line "BENCH_COUNTS <json>" for the bench
-- (with COUNT_CREATED, also the sum of the `"created": N` the 2xx answers report).

-- @@CONSTANTS@@

-- A paced run (DELAY_MS > 0): each connection waits between requests, so the offered rate is
-- about connections * 1000 / (DELAY_MS + response time).
if DELAY_MS > 0 then
   function delay()
      return DELAY_MS
   end
end

local threads = {}
local next_thread = 0

function setup(thread)
   next_thread = next_thread + 1
   thread:set("thread_no", next_thread)
   table.insert(threads, thread)
end

local counter = 0
local prefix = ""
local me = 1
-- globals, so that done() can read them with thread:get()
ok = 0
other = 0
created = 0

function init(args)
   local no = thread_no or 1
   me = no
   if NUMERIC_IDS then
      prefix = RUN_TAG .. string.format("%02d", no)
   else
      prefix = "bench" .. RUN_TAG .. "t" .. no .. "n"
   end
   math.randomseed(os.time() * 100 + no)
end

local function next_id()
   counter = counter + 1
   if NUMERIC_IDS then
      return prefix .. string.format("%09d", counter)
   end
   return prefix .. counter
end

local function command_text(id)
   local out = {}
   for i, piece in ipairs(TEXT) do
      if i % 2 == 1 then
         out[#out + 1] = piece
      elseif piece == "id" then
         out[#out + 1] = id
      else
         out[#out + 1] = tostring(math.random(1, MAX_N))
      end
   end
   return table.concat(out)
end

local function sign_headers()
   if SIGN_COUNT == 0 then
      return
   end
   local index = ((counter - 1) * THREADS + (me - 1)) % SIGN_COUNT
   local from = index * SIGN_LENGTH + 1
   HEADERS["timestamp"] = string.format("%.0f", SIGN_FIRST_MS + index)
   HEADERS["sign"] = string.sub(SIGNS, from, from + SIGN_LENGTH - 1)
end

local function fill(id)
   local values = { id = id, text = command_text(id) }
   local out = { PIECES[1] }
   for i, name in ipairs(SLOTS) do
      out[#out + 1] = values[name]
      out[#out + 1] = PIECES[i + 1]
   end
   return table.concat(out)
end

local function batch()
   local items = {}
   for k = 1, ITEMS_PER_REQUEST do
      items[k] = fill(next_id())
   end
   return BATCH_OPEN .. table.concat(items, ",") .. BATCH_CLOSE
end

function request()
   if ITEMS_PER_REQUEST > 0 then
      return wrk.format("POST", PATH, HEADERS, batch())
   end
   local id = next_id()
   sign_headers()
   return wrk.format("POST", PATH, HEADERS, fill(id))
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
      if COUNT_CREATED then
         local n = string.match(body, '"created":%s*(%d+),%s*"duplicates"')
         created = created + (tonumber(n) or 0)
      end
   else
      other = other + 1
   end
   if STOP_AFTER > 0 and ok + other >= STOP_AFTER then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local total_ok, total_other, total_created = 0, 0, 0
   for _, thread in ipairs(threads) do
      total_ok = total_ok + (thread:get("ok") or 0)
      total_other = total_other + (thread:get("other") or 0)
      total_created = total_created + (thread:get("created") or 0)
   end
   if COUNT_CREATED then
      io.write(string.format('BENCH_COUNTS {"ok": %d, "other": %d, "requests": %d, "created": %d}\n',
                             total_ok, total_other, summary.requests, total_created))
   else
      io.write(string.format('BENCH_COUNTS {"ok": %d, "other": %d, "requests": %d}\n',
                             total_ok, total_other, summary.requests))
   end
end
