"""Trains any dljax experiment from a config file.

  python -m experiments.train --config experiments/configs/mnist_cnn.py[:VARIANT] --workdir DIR \
      [--config.KEY=VALUE ...]

Running the same command again resumes from the newest checkpoint in DIR. Exit status: 0 done;
2 bad input (one `error:` line, nothing in DIR lost); 130 or 143 stopped by SIGINT or SIGTERM
after saving a checkpoint; 75 stalled, no train step completing for
--config.watchdog_timeout_s seconds (dljax.watchdog). After 130, 143 and 75, running the same
command again resumes.
"""

import contextlib
import time

START_TIME = time.time()  # "wall time" counts from here, before the heavy imports

from absl import flags, logging
from ml_collections import config_flags

from dljax import cli, workdir_lock
from dljax.config_checks import check_shared_config

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config: experiments/configs/NAME.py[:VARIANT].", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and summary.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
  from dljax import parallel

  config = _CONFIG.value
  check_shared_config(config)
  parallel.setup_devices(config.cpu_devices, config.distributed, config.xla_optimization_level)
  from dljax import checkpoint
  from dljax.distributed import is_writer
  from dljax.tasks import train

  checkpoint.install()

  # The processes of a multi-process job share WORKDIR: process 0 claims it for all of them.
  claim = workdir_lock.hold if is_writer() else contextlib.nullcontext
  with claim(_WORKDIR.value):
    summary = train(config, _WORKDIR.value, start_time=START_TIME)
  if not is_writer():
    return
  final = " ".join(
    f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary["final"].items()
  )
  print(f"final: {final}")
  print(
    f"steps {summary['steps']}, wall time {summary['wall_time_s']:.1f} s "
    f"(compile {summary['compile_time_s']:.1f} s, {summary['step_time_ms']:.1f} ms/step on "
    f"{summary['devices']}); summary: {_WORKDIR.value}/summary.json"
  )


if __name__ == "__main__":
  cli.run_main(main)
