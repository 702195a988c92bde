-- Drives headless Ardour (ardour7-lua, "None (Dummy)" backend) for tests/tests/ardour.rs.
--
-- Two phases, each its own ardour7-lua process (a session closed in a process leaves its plugin
-- instances running until the process exits, so the play phase gets a process of its own):
--   OSCTC_PHASE=create: a 48 kHz session with one audio track, the OSC Timecode VST3 on it with
--     its "Frame Rate" parameter at OSCTC_RATE_INDEX, and a one-second range two seconds after
--     01:00:00:00, saved; then the range is made the loop range in the session file (Ardour's Lua
--     cannot flag a range as the loop).
--     With OSCTC_MIDI_LOG=1, the "OSCTC MIDI Log" Lua processor (tests/ardour/midi_log.lua)
--     follows the plugin on the track and records the MIDI it puts out. With OSCTC_PROJECT_RATE
--     (a Timecode.TimecodeFormat name, "TC25"), the session's timecode format is set to it.
--   OSCTC_PHASE=play: loads the session; locates to 01:00:00:00, rolls, plays the loop range
--     OSCTC_LOOPS times (none if 0), stops; with OSCTC_PROJECT_RATE_AFTER, then sets the
--     session's timecode format to that and waits half a second; then lists what the MIDI log
--     recorded, and what the audio log recorded (OSCTC_AUDIO_LOG=1 at create: the "OSCTC Audio
--     Log" Lua processor, tests/ardour/audio_log.lua, after the plugin): its cycles as lines, its
--     samples as little-endian f32 into OSCTC_AUDIO_FILE.
--     With OSCTC_WATCH (parameter names separated by ";"), the roll also watches those
--     parameters of the plugin as Ardour sees them: each found by its name among the plugin's
--     control inputs ("OSCTC watch <i> <parameter index>"), read through the PluginInsert's own
--     AutomationControl for it (what Ardour's mixer strip and automation show, not the plugin)
--     every 5 ms, reported at the roll's start and whenever it changes ("OSCTC param <i>
--     <transport sample> <value>"), and once more after the stop ("OSCTC param_end <i> <value>").
-- Every step prints one line "OSCTC <what> <values...>" for the test to read: playhead positions
-- in samples, and the parameter read back after loading.
--
-- Environment: OSCTC_SESSION_DIR (must not exist for create), OSCTC_RATE_INDEX (index into
-- FrameRate::ALL), OSCTC_ROLL_S, OSCTC_LOOPS; VST3_PATH (the bundle's folder, already scanned
-- with ardour-vst3-scanner).

local dir = assert(os.getenv("OSCTC_SESSION_DIR"), "OSCTC_SESSION_DIR is not set")
local name = "osctc"
local phase = os.getenv("OSCTC_PHASE")
local rate = 48000
local loop_start = (3600 + 2) * rate
local loop_len = rate

local function sleep(s) ARDOUR.LuaAPI.usleep(math.floor(s * 1000000)) end
local function say(...) print("OSCTC " .. table.concat({ ... }, " ")) io.stdout:flush() end

assert(AudioEngine:set_backend("None (Dummy)", "", ""), "no dummy backend")

-- Closes the session once the garbage collector has dropped what the script no longer refers to
-- (see the create phase).
local function release_and_close()
  collectgarbage()
  collectgarbage()
  close_session()
end

-- The first processor called `name` on any route, or nil.
local function find_processor(name)
  for r in Session:get_routes():iter() do
    local i = 0
    while true do
      local proc = r:nth_plugin(i)
      if proc:isnil() then break end
      if proc:display_name() == name then return proc:to_insert() end
      i = i + 1
    end
  end
  return nil
end

-- The watched parameters (OSCTC_WATCH, see the top): a list of { name, ac, last }.
local function watched(pi)
  local list = {}
  local names = os.getenv("OSCTC_WATCH")
  if not names or names == "" then return list end
  local plug = pi:plugin(0)
  for name in names:gmatch("[^;]+") do
    local found
    for j = 0, plug:parameter_count() - 1 do
      if plug:parameter_is_control(j) and plug:parameter_is_input(j) and plug:parameter_label(j) == name then
        found = j
        break
      end
    end
    assert(found, "the plugin has no input parameter called " .. name)
    local param = Evoral.Parameter(ARDOUR.AutomationType.PluginAutomation, 0, found)
    local ac = pi:to_automatable():automation_control(param, false)
    assert(not ac:isnil(), "Ardour has no control for " .. name)
    list[#list + 1] = { name = name, ac = ac }
    say("watch", #list - 1, found)
  end
  return list
end

-- Sleeps `s` seconds; with watched parameters, reads them every 5 ms meanwhile and reports each
-- first read and each change with the transport sample it saw.
local function watch_for(list, s)
  if #list == 0 then return sleep(s) end
  local deadline = ARDOUR.LuaAPI.monotonic_time() + s * 1000000
  repeat
    for i, w in ipairs(list) do
      local v = w.ac:get_value()
      if v ~= w.last then
        w.last = v
        say("param", i - 1, Session:transport_sample(), string.format("%.6f", v))
      end
    end
    sleep(0.005)
  until ARDOUR.LuaAPI.monotonic_time() >= deadline
end

if phase == "create" then
  local rate_index = assert(tonumber(os.getenv("OSCTC_RATE_INDEX")), "OSCTC_RATE_INDEX is not set")
  assert(create_session(dir, name, rate), "create_session failed (does the folder exist?)")
  assert(Session:nominal_sample_rate() == rate, "session rate")
  local loc = Session:locations():add_range(Temporal.timepos_t(loop_start), Temporal.timepos_t(loop_start + loop_len))
  loc:set_name("OSCTC_LOOP")
  local tl = Session:new_audio_track(2, 2, nil, 1, "Timecode", ARDOUR.PresentationInfo.max_order,
    ARDOUR.TrackMode.Normal, true)
  local p = ARDOUR.LuaAPI.new_plugin(Session, "OSC Timecode", ARDOUR.PluginType.VST3, "")
  assert(not p:isnil(), "Ardour does not list the OSC Timecode VST3 (scanned? VST3_PATH?)")
  assert(tl:front():add_processor_by_index(p, 0, nil, true) == 0, "inserting the plugin failed")
  if os.getenv("OSCTC_MIDI_LOG") == "1" then
    local log = ARDOUR.LuaAPI.new_luaproc(Session, "OSCTC MIDI Log")
    assert(not log:isnil(), "no OSCTC MIDI Log processor (is midi_log.lua in the scripts folder?)")
    assert(tl:front():add_processor_by_index(log, 1, nil, true) == 0, "inserting the MIDI log failed")
  end
  if os.getenv("OSCTC_AUDIO_LOG") == "1" then
    local log = ARDOUR.LuaAPI.new_luaproc(Session, "OSCTC Audio Log")
    assert(not log:isnil(), "no OSCTC Audio Log processor (is audio_log.lua in the scripts folder?)")
    assert(tl:front():add_processor_by_index(log, 1, nil, true) == 0, "inserting the audio log failed")
  end
  assert(ARDOUR.LuaAPI.set_plugin_insert_param(p:to_insert(), 0, rate_index), "setting Frame Rate failed")
  local project_rate = os.getenv("OSCTC_PROJECT_RATE")
  if project_rate then
    local format = assert(Timecode.TimecodeFormat[project_rate], "no Timecode.TimecodeFormat " .. project_rate)
    Session:cfg():set_timecode_format(format) -- false when it is the format already
    assert(Session:cfg():get_timecode_format() == format, "setting the timecode format failed")
  end
  -- A VST3 parameter change reaches the plugin in its next process() call; the saved plugin
  -- state must have it.
  sleep(0.5)
  Session:save_state("", false, false, false, false, false)
  -- Drop every reference to the session's objects before closing it: a track the Lua state
  -- still holds is destroyed when the state is, after the engine is gone, and its ports'
  -- unregistering then crashes luasession (SIGSEGV in PortManager::unregister_port, at random
  -- with the garbage collector's timing).
  loc, tl, p = nil, nil, nil
  release_and_close()
  local path = dir .. "/" .. name .. ".ardour"
  local f = assert(io.open(path))
  local xml = f:read("a")
  f:close()
  local n
  xml, n = xml:gsub('(name="OSCTC_LOOP"[^>]-)flags="IsRangeMarker"', '%1flags="IsAutoLoop,IsHidden"')
  assert(n == 1, "the loop range is not in the session file")
  f = assert(io.open(path, "w"))
  f:write(xml)
  f:close()
  say("created", dir)
elseif phase == "play" then
  local roll_s = tonumber(os.getenv("OSCTC_ROLL_S") or "3")
  local loops = tonumber(os.getenv("OSCTC_LOOPS") or "2")
  assert(load_session(dir, name), "load_session failed")
  local pi = assert(find_processor("OSC Timecode"), "the session has no OSC Timecode plugin")
  local rate_param = ARDOUR.LuaAPI.get_plugin_insert_param(pi, 0)
  say("rate_param", math.floor(rate_param))
  local loop = assert(Session:locations():auto_loop_location(), "no loop range after loading")
  say("loop", loop:start():samples(), loop:_end():samples())
  say("block", Session:get_block_size())
  say("project_rate", Session:cfg():get_timecode_format())
  local TRS = ARDOUR.TransportRequestSource.TRS_UI
  sleep(1)
  Session:request_locate(3600 * rate, false, ARDOUR.LocateTransportDisposition.MustStop, TRS)
  sleep(1)
  say("located", Session:transport_sample())
  local watch = watched(pi)
  Session:request_roll(TRS)
  watch_for(watch, roll_s)
  say("rolled", Session:transport_sample())
  if loops > 0 then
    Session:request_play_loop(true, true)
    sleep(loops * loop_len / rate + 0.5)
    say("looped", Session:transport_sample())
    Session:request_play_loop(false, false)
  end
  Session:request_stop(false, false, TRS)
  sleep(1)
  say("stopped", Session:transport_sample(), tostring(Session:transport_rolling()))
  for i, w in ipairs(watch) do
    say("param_end", i - 1, string.format("%.6f", w.ac:get_value()))
  end
  local later = os.getenv("OSCTC_PROJECT_RATE_AFTER")
  if later then
    local format = assert(Timecode.TimecodeFormat[later], "no Timecode.TimecodeFormat " .. later)
    Session:cfg():set_timecode_format(format) -- false when it is the format already
    assert(Session:cfg():get_timecode_format() == format, "setting the timecode format failed")
    sleep(0.5)
    say("project_rate", Session:cfg():get_timecode_format())
  end
  local log = find_processor("OSCTC MIDI Log")
  if log then
    local a = log:plugin(0):to_luaproc():shmem():to_int(0):array()
    say("midi_events", a[1])
    -- Per event (midi_log.lua): sample, length, 10 bytes.
    local stride = 12
    for n = 0, a[1] - 1 do
      local base = 2 + stride * n
      local values = {}
      for i = 0, stride - 1 do
        values[#values + 1] = a[base + i]
      end
      say("midi", table.unpack(values))
    end
  end
  local audio_log = find_processor("OSCTC Audio Log")
  if audio_log then
    -- Layout in audio_log.lua. The log goes on while this reads: what the counts say is complete.
    local shm = audio_log:plugin(0):to_luaproc():shmem()
    local a = shm:to_int(0):array()
    local cycles, samples, samples_at = a[1], a[2], a[3]
    say("audio_log", cycles, samples)
    for n = 0, cycles - 1 do
      local base = 4 + 3 * n
      say("cycle", a[base], a[base + 1], a[base + 2])
    end
    local path = assert(os.getenv("OSCTC_AUDIO_FILE"), "OSCTC_AUDIO_FILE is not set")
    local f = assert(io.open(path, "wb"))
    local s = shm:to_float(samples_at):array()
    local chunk = {}
    for i = 1, samples do
      chunk[#chunk + 1] = string.pack("<f", s[i])
      if #chunk == 4096 then
        f:write(table.concat(chunk))
        chunk = {}
      end
    end
    f:write(table.concat(chunk))
    f:close()
  end
  pi, loop, log, audio_log, watch = nil, nil, nil, nil, nil
  release_and_close()
else
  error("OSCTC_PHASE must be create or play")
end
quit()
