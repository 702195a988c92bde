-- An Ardour Lua DSP processor for tests/tests/ardour.rs: placed after the OSC Timecode plugin on
-- its track, it passes audio through and keeps what the plugin wrote on the left channel, from the
-- first cycle the transport rolls on, with each cycle's transport sample, length and whether the
-- transport rolled, in its shared memory, where tests/ardour/session.lua reads it (LTC, decoded by
-- libltc in the test). At most MAX_SAMPLES samples (10 s at 48 kHz) in at most MAX_CYCLES cycles;
-- what comes after either is full is not kept.
-- Ardour finds it in $HOME/.config/ardour<N>/scripts/.
ardour {
  ["type"] = "dsp",
  name = "OSCTC Audio Log",
  category = "Utility",
  license = "ISC",
  author = "osc-timecode tests",
  description = [[Keeps the left channel's samples, with the transport sample of each cycle]]
}

local MAX_CYCLES = 8192
local MAX_SAMPLES = 480000
local STRIDE = 3
-- Shared memory, int32 and float over the same cells: [1] = cycles kept, [2] = samples kept,
-- [3] = SAMPLES_AT, then per cycle (STRIDE values): transport sample, length in samples, 1 if
-- rolling else 0; then from cell SAMPLES_AT (0-based, as to_float takes it) the samples, float.
local SAMPLES_AT = 3 + STRIDE * MAX_CYCLES

function dsp_ioconfig ()
  return { { audio_in = -1, audio_out = -1 } }
end

function dsp_init (rate)
  self:shmem():allocate(SAMPLES_AT + MAX_SAMPLES)
  self:shmem():clear()
  self:shmem():to_int(0):array()[3] = SAMPLES_AT
end

function dsp_run (ins, outs, n_samples)
  for c = 1, #outs do
    if ins[c] ~= outs[c] then ARDOUR.DSP.copy_vector(outs[c], ins[c], n_samples) end
  end
  local shm = self:shmem()
  local a = shm:to_int(0):array()
  local cycles, samples = a[1], a[2]
  local rolling = Session:transport_rolling()
  if cycles == 0 and not rolling then return end
  if cycles >= MAX_CYCLES or samples + n_samples > MAX_SAMPLES or #ins < 1 then return end
  local base = 4 + STRIDE * cycles
  a[base] = Session:transport_sample()
  a[base + 1] = n_samples
  a[base + 2] = rolling and 1 or 0
  ARDOUR.DSP.copy_vector(shm:to_float(SAMPLES_AT + samples), ins[1], n_samples)
  a[2] = samples + n_samples
  a[1] = cycles + 1
end
