"""benchmarks.race: argument checks and the ratio arithmetic (the peers themselves never run here)."""

import pytest

from benchmarks import race
from dljax.errors import DljaxError
from tests.conftest import run_module


def test_pair_result_is_dljax_time_over_peer_time_with_both_quality_figures():
  pair = race.pair_result(
    "cartpole_ppo",
    12.0,
    {"min_seed_return": 500.0, "mean_return": 500.0},
    32.0,
    {"min_seed_return": 498.5, "wall_s": 31.0},
  )
  assert pair == {
    "dljax_wall_s": 12.0,
    "peer_wall_s": 32.0,
    "ratio": 0.375,
    "dljax_min_seed_return": 500.0,
    "peer_min_seed_return": 498.5,
  }


def test_peer_python_is_what_peers_env_sets(tmp_path):
  python = tmp_path / "python"
  python.write_text("")
  (tmp_path / "peers-env.sh").write_text(f"TORCH_PY={python}\nPJR_PY=/nowhere/python\n")
  assert race.peer_python("shakespeare_gpt", 2, str(tmp_path)) == str(python)
  with pytest.raises(DljaxError, match=r"did not set up \$PJR_PY \(/nowhere/python\)"):
    race.peer_python("cartpole_ppo", 1, str(tmp_path))
  with pytest.raises(DljaxError, match="--pairs=0 must be at least 1"):
    race.peer_python("cartpole_ppo", 0, str(tmp_path))
  with pytest.raises(DljaxError, match="point --peers at the peers' directory"):
    race.peer_python("cartpole_ppo", 1, str(tmp_path / "missing"))


def test_dljax_command_runs_the_race_config_with_overrides():
  command = race.dljax_command("shakespeare_gpt", "/w", "/corpus.txt", ["num_steps=10"])
  assert command[1:3] == ["-m", "experiments.train"]
  assert command[3:] == [
    "--config",
    "experiments/configs/shakespeare_gpt.py:cpu",
    "--workdir",
    "/w",
    "--config.dataset=text:/corpus.txt",
    "--config.num_steps=10",
  ]


def test_races_run_without_the_callers_cache_and_xla_settings(monkeypatch):
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/warm")
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
  monkeypatch.setenv("HOME_LIKE", "kept")
  env = race.user_environment()
  assert "JAX_COMPILATION_CACHE_DIR" not in env and "XLA_FLAGS" not in env
  assert env["HOME_LIKE"] == "kept"


def test_unknown_race_is_a_one_line_error():
  out = run_module("benchmarks.race", "--race=cartpole", timeout=60)
  assert out.returncode == 2
  assert (
    out.stderr.strip()
    .splitlines()[-1]
    .startswith("error: --race=cartpole is not a race; choose one of shakespeare_gpt, cartpole_ppo")
  )
