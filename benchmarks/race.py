"""A dljax config raced against its peer implementation, back to back on one machine.

  python -m benchmarks.race --race shakespeare_gpt --pairs 2 [--race_json FILE]
  python -m benchmarks.race --race cartpole_ppo --pairs 2

The peers are the ones in ../shared/peers (`--peers`); their `peers-env.sh` builds their
virtual environments the first time. Each repetition runs the peer, then dljax's
`experiments.train` on the matching config exactly as the README has a user type it, each as a
whole command timed from process start to exit (nanoGPT: its `train.py` process, as its wrapper
reports it; the data preparation before it is not counted). Both run in a user's environment,
without the caller's JAX_/XLA_/thread variables: so with a cold compilation cache. Printed and
written per repetition: both wall times, both quality figures and the ratio dljax / peer. The
absolute times move with the machine and its load; the ratio of a back-to-back pair is the claim.

| race | dljax | peer | quality figure of each |
|---|---|---|---|
| shakespeare_gpt | `shakespeare_gpt:cpu` | nanoGPT's README CPU command | final val loss |
| cartpole_ppo | `cartpole_ppo` (8 seeds) | PureJaxRL's PPO, 8 seeds vmapped | lowest seed's return |

(dljax's seed return is its greedy evaluation over 10 episodes; PureJaxRL's is the mean return of
the episodes that ended in its last update, under the stochastic policy.)
"""

import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

from dljax import cli
from dljax.errors import DljaxError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")

_RACE = flags.DEFINE_string("race", None, "Which race: shakespeare_gpt or cartpole_ppo.")
_REPEATS = flags.DEFINE_integer("pairs", 1, "Back-to-back pairs to run.")
_PEERS = flags.DEFINE_string("peers", os.path.join(SHARED, "peers"), "The peers' directory.")
_CORPUS = flags.DEFINE_string(
  "corpus",
  os.path.join(SHARED, "data", "tinyshakespeare.txt"),
  "tiny-shakespeare, for the GPT race.",
)
_OVERRIDES = flags.DEFINE_multi_string(
  "override", [], "KEY=VALUE: a --config.KEY=VALUE for the dljax run (repeatable)."
)
_JSON = flags.DEFINE_string("race_json", "", "Also write the results to this JSON file.")


@dataclasses.dataclass(frozen=True)
class Race:
  config: str  # experiments/configs/NAME.py[:VARIANT]
  peer_python: str  # environment variable holding the peer's interpreter (peers-env.sh sets it)
  quality: str  # the key of the quality figure in dljax's summary `final` and the peer's JSON


RACES = {
  "shakespeare_gpt": Race("shakespeare_gpt.py:cpu", "TORCH_PY", "val_loss"),
  "cartpole_ppo": Race("cartpole_ppo.py", "PJR_PY", "min_seed_return"),
}


def peer_command(race: str, python: str, peers: str, corpus: str) -> list[str]:
  if race == "shakespeare_gpt":
    return [os.path.join(peers, "nanogpt_cpu.sh"), python, corpus]
  return [python, os.path.join(peers, "purejaxrl", "purejaxrl_ppo8.py"), "8"]


def dljax_command(race: str, workdir: str, corpus: str, overrides: list[str]) -> list[str]:
  """dljax's side exactly as a user types it (README's command, in the repo root): no flag the
  README's command lacks, such as --config.quiet."""
  command = [
    sys.executable,
    "-m",
    "experiments.train",
    "--config",
    f"experiments/configs/{RACES[race].config}",
    "--workdir",
    workdir,
  ]
  if race == "shakespeare_gpt":
    command.append(f"--config.dataset=text:{corpus}")
  return command + [f"--config.{o}" for o in overrides]


# Settings a user's shell does not have, which a caller (a test session, a tuned shell) may have
# exported: a persistent compilation cache (a warm one skips compiling, most of a short run),
# XLA flags and thread counts. Both sides run without them, so a race is the cold-cache default.
CALLER_SETTINGS = ("JAX_", "XLA_", "DLJAX_", "TF_", "OMP_", "MKL_", "OPENBLAS_")


def user_environment() -> dict[str, str]:
  return {k: v for k, v in os.environ.items() if not k.startswith(CALLER_SETTINGS)}


def timed(command: list[str]) -> tuple[float, float, str]:
  """Runs `command` from the repo root in a user's environment (`user_environment`); its wall
  time (start to exit), CPU time (user + sys of it and its children) and stdout."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  proc = subprocess.run(
    command, cwd=REPO, env=user_environment(), capture_output=True, text=True, check=False
  )
  seconds = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
  if proc.returncode:
    raise DljaxError(f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
  return seconds, cpu, proc.stdout


def last_json_line(stdout: str) -> dict:
  lines = [line for line in stdout.splitlines() if line.startswith("{")]
  if not lines:
    raise DljaxError(f"the peer printed no JSON result line; its output ends:\n{stdout[-500:]}")
  return json.loads(lines[-1])


def pair_result(race: str, dljax_s: float, dljax_final: dict, peer_s: float, peer: dict) -> dict:
  """One back-to-back pair: both wall times, both quality figures, the time ratio dljax / peer."""
  quality = RACES[race].quality
  return {
    "dljax_wall_s": round(dljax_s, 2),
    "peer_wall_s": round(peer_s, 2),
    "ratio": round(dljax_s / peer_s, 3),
    f"dljax_{quality}": dljax_final[quality],
    f"peer_{quality}": peer[quality],
  }


def peer_python(race: str | None, repeats: int, peers: str) -> str:
  """Checks the arguments; the peer's interpreter, as the peers' `peers-env.sh` sets it up."""
  if race not in RACES:
    raise DljaxError(f"--race={race} is not a race; choose one of {', '.join(RACES)}")
  if repeats < 1:
    raise DljaxError(f"--pairs={repeats} must be at least 1")
  script = os.path.join(peers, "peers-env.sh")
  if not os.path.isfile(script):
    raise DljaxError(f"{script} does not exist; point --peers at the peers' directory")
  variable = RACES[race].peer_python
  # Sourcing builds the peers' venvs the first time (minutes), then only names them.
  proc = subprocess.run(
    ["bash", "-c", f'source "{script}" >&2 && echo "${variable}"'],
    capture_output=True,
    text=True,
    check=False,
  )
  python = proc.stdout.strip()
  if proc.returncode or not os.path.isfile(python):
    raise DljaxError(
      f"{script} did not set up ${variable} ({python or 'unset'}): "
      f"{proc.stderr.strip()[-500:]}; run `source {script}` to see why"
    )
  return python


def main(argv):
  del argv
  race = _RACE.value
  python = peer_python(race, _REPEATS.value, _PEERS.value)
  pairs = []
  for repeat in range(_REPEATS.value):
    load = os.getloadavg()
    peer_s, peer_cpu, peer_out = timed(peer_command(race, python, _PEERS.value, _CORPUS.value))
    peer = last_json_line(peer_out)
    peer_s = peer.get("wall_s", peer_s) if race == "shakespeare_gpt" else peer_s
    with tempfile.TemporaryDirectory(prefix="race-") as workdir:
      dljax_s, dljax_cpu, _ = timed(dljax_command(race, workdir, _CORPUS.value, _OVERRIDES.value))
      with open(os.path.join(workdir, "summary.json")) as f:
        dljax_final = json.load(f)["final"]
    pairs.append(
      {
        **pair_result(race, dljax_s, dljax_final, peer_s, peer),
        # CPU time of the whole commands (nanoGPT's includes its data preparation): a run that
        # needs both cores to be fast shows it here, and slows down on a busy machine.
        "dljax_cpu_s": round(dljax_cpu, 2),
        "peer_cpu_s": round(peer_cpu, 2),
        "load_average_before": [round(x, 2) for x in load],
      }
    )
    print(f"{race} #{repeat + 1}: {json.dumps(pairs[-1])}", flush=True)
  result = {
    "race": race,
    "pairs": pairs,
    "median_ratio": statistics.median(p["ratio"] for p in pairs),
  }
  print(json.dumps(result))
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  flags.mark_flag_as_required("race")
  cli.run_main(main)
