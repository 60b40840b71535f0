"""Energy to bill from an energy register that may go back, restart or jump.

Pure. A session's energy is counted reading by reading: meterStart, every MeterValues
sample in the charger's time order, the transactionData of StopTransaction, then
meterStop. Each reading is compared with the register value it follows (the baseline)
and only what the register gained is counted:

- The register went up: the gain is counted, bounded by what the connector could
  deliver since the previous reading (`deliverable_wh`: `max_power_w` for the elapsed
  time plus a tolerance of one minute at that power and 100 Wh, for charger clocks
  that stamp samples late and registers reported in tenths of a kWh). A gain above the
  bound is counted as the bound, and the rest is reported as `bounded_wh`: a meter
  jumping by gigawatt-hours bills at most what the cable could carry, never the hold.
  The baseline becomes the new reading, so the next readings count normally.
- The register went back by at most `ROUNDING_WH`: rounding, not energy. Nothing is
  counted and the baseline stays where it was (the higher value), so that the same
  watt-hours, reported once rounded up and once rounded down, are not billed twice.
  A meterStop a little below the last sample is this case.
- The register went back by more than that: a restart (the meter or the charger
  rebooted, the register began again near 0). The energy counted so far is kept and
  the new reading becomes the baseline: counting resumes from it. The new reading is
  NOT counted as energy since the restart: it cannot be told apart from a register
  restored to an older value, a replaced meter or a glitch, and billing it could bill
  energy nobody can show was delivered. The cost of this choice is the energy between
  the restart and the first reading after it (one sampling interval at most), in the
  driver's favour. A meterStop far below the samples is this case too: it never
  erases metered energy.

So the billed energy is the sum of the register's increases over the session, each
bounded, ignoring decreases of at most `ROUNDING_WH`; it never decreases and is never
negative. Reading the same value again counts nothing, which makes duplicates harmless;
readings older than the last one applied are the caller's to skip (the reservation
drops them as late).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

# A step back of at most this is rounding (registers in tenths of a kWh next to a
# meterStop in Wh), not a restart.
ROUNDING_WH = 100
# Slack on top of the elapsed time when bounding a gain: charger clocks stamp samples late
# or early, and a sample may carry the energy of a longer interval than its timestamps say.
CLOCK_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class Count:
    """The count after one reading."""

    energy_wh: int  # counted over the session so far
    register_wh: int  # the baseline the next reading is compared with
    counted_wh: int = 0  # what this reading added
    bounded_wh: int = 0  # what this reading claimed above what the connector could deliver
    restarted: bool = False  # this reading was a restart of the register


def deliverable_wh(max_power_w: int, elapsed: timedelta) -> int:
    """The most energy a connector of `max_power_w` can deliver in `elapsed`, with the
    tolerance: one more minute at that power and `ROUNDING_WH`."""
    seconds = max(elapsed.total_seconds(), 0.0) + CLOCK_SLACK.total_seconds()
    return math.ceil(max_power_w * seconds / 3600) + ROUNDING_WH


def advance(
    energy_wh: int, register_wh: int, reading_wh: int, elapsed: timedelta, max_power_w: int
) -> Count:
    """Count one reading of the register, `elapsed` after the previous one."""
    gain = reading_wh - register_wh
    if gain >= 0:
        counted = min(gain, deliverable_wh(max_power_w, elapsed))
        return Count(energy_wh + counted, reading_wh, counted, bounded_wh=gain - counted)
    if -gain <= ROUNDING_WH:
        return Count(energy_wh, register_wh)
    return Count(energy_wh, reading_wh, restarted=True)
