"""Timing several contenders fairly on a shared machine: interleaved repetitions, median and spread.

Each repetition times every contender once, in turn (A, B, C, A, B, C, ...), so a slow spell of
the host (other processes, clock changes) hits all of them alike and their ratio stays fair.
"""

import statistics
from collections.abc import Callable


def interleaved(runners: dict[str, Callable[[int], float]], steps: int, repeats: int) -> dict:
  """`runners[name](steps)` returns seconds per step; returns {name: [seconds per step, ...]}."""
  times = {name: [] for name in runners}
  for _ in range(repeats):
    for name, run in runners.items():
      times[name].append(run(steps))
  return times


def summary(seconds: list[float]) -> dict:
  """Median and spread (min, max) of per-step times, in milliseconds."""
  ms = [1e3 * s for s in seconds]
  return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}
