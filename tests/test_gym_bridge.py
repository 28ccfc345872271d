"""Training through the gymnasium bridge (`env=gym:NAME`): resume and rerun behave as with the JAX
envs, although the host envs' state is not part of the checkpoint."""

import json
import shutil

from conftest import assert_trees_equal, load_config, saved_state, without_rate

from dljax.tasks import train


def read_records(workdir, split):
  return [r for r in map(json.loads, open(workdir / "metrics.jsonl")) if r["split"] == split]


def test_resume_is_bitwise_and_rerunning_a_finished_run_changes_nothing(tmp_path):
  # 3 chunks of 3 updates, a checkpoint after each.
  config = load_config(
    "cartpole_ppo",
    "smoke",
    env="gym:CartPole-v1",
    num_seeds=1,
    total_env_steps=4 * 16 * 9,
    checkpoint_every_steps=1,
  )
  reference, resumed = tmp_path / "reference", tmp_path / "resumed"
  ref_summary = train(config, str(reference))
  assert ref_summary["steps"] == 3

  # What a run killed after its first checkpoint leaves behind: that checkpoint only.
  shutil.copytree(reference / "checkpoints" / "1", resumed / "checkpoints" / "1")
  res_summary = train(config, str(resumed))
  assert res_summary["resumed_from_step"] == 1
  assert without_rate(res_summary["final"]) == without_rate(ref_summary["final"])
  assert res_summary["final"]["env_steps_per_s"] > 0  # the rate of its own 2 chunks
  assert_trees_equal(saved_state(reference, 3), saved_state(resumed, 3))
  assert read_records(resumed, "train") == read_records(reference, "train")[1:]

  rerun = train(config, str(reference))
  assert rerun["resumed_from_step"] == 3 and rerun["steps"] == 3
  assert rerun["final"] == without_rate(ref_summary["final"])  # no rate of no steps
