-- An Ardour Lua DSP processor for tests/tests/ardour.rs: placed after the OSC Timecode plugin on
-- its track, it passes audio and MIDI through and keeps the first 4096 MIDI events it sees, each with
-- the transport sample it plays at, its length and up to 10 bytes (a 2-byte MTC quarter frame and a
-- 10-byte MTC full frame fit), in its shared memory, where tests/ardour/session.lua reads them.
-- Ardour finds it in $HOME/.config/ardour<N>/scripts/.
ardour {
  ["type"] = "dsp",
  name = "OSCTC MIDI Log",
  category = "Utility",
  license = "ISC",
  author = "osc-timecode tests",
  description = [[Keeps the MIDI events it sees, with the transport sample each plays at]]
}

local MAX = 4096
local BYTES = 10
local STRIDE = 2 + BYTES

function dsp_ioconfig ()
  return { { midi_in = 1, midi_out = 1, audio_in = -1, audio_out = -1 } }
end

-- Shared memory, int32: [1] = count, then per event (STRIDE values): sample, length in bytes, then
-- the first BYTES bytes (0 past the length).
function dsp_init (rate)
  self:shmem():allocate(1 + STRIDE * MAX)
  self:shmem():clear()
end

function dsp_run (ins, outs, n_samples)
  for c = 1, #outs do
    if ins[c] ~= outs[c] then ARDOUR.DSP.copy_vector(outs[c], ins[c], n_samples) end
  end
  local a = self:shmem():to_int(0):array()
  local pos = Session:transport_sample()
  for _, e in ipairs(midiin) do
    local n = a[1]
    if n < MAX then
      local base = 2 + STRIDE * n
      a[base] = pos + e.time - 1
      a[base + 1] = #e.data
      for i = 1, BYTES do
        a[base + 1 + i] = e.data[i] or 0
      end
      a[1] = n + 1
    end
  end
  midiout = midiin
end
