"""Mutation check: do the tests fail when the code is wrong?

Applies each of a curated list of wrong changes ("mutations") to the library, one at a time, in a
scratch copy of the repository (never in the working tree), runs the tests that must catch it, and
reports the mutations that survive (all their tests pass). Run it after changing a test or the code
a mutation touches:

  .venv/bin/python tests/mutations.py [--only NAME[,NAME...]] [--list]

The scratch copy holds the repository's tracked and untracked, not ignored, files. No ../shared
folder lies beside it, so the language-model tests run on their stand-in corpus there. Exit
status 0 when every mutation is killed; 1 when one survives, no longer applies, or the selected
tests fail before any mutation.
"""

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Mutation:
  name: str
  path: str  # relative to the repository root
  old: str  # must occur exactly once in the file
  new: str
  tests: tuple[str, ...]  # pytest node ids (or files) that must fail


MUTATIONS = [
  Mutation(
    "gpt-explicit-cache-not-causal",
    "dljax/models/gpt.py",
    "      scores = jnp.where(mask, scores.astype(",
    "      if layer_cache is not None:  # only hide the unwritten cache slots\n"
    "        mask = (key_positions < cache_length + length)[None, None, None]\n"
    "      scores = jnp.where(mask, scores.astype(",
    (
      "tests/test_sequence_models.py::test_gpt_kv_cache_logits_match_full_forward",
      "tests/test_sequence_models.py::test_gpt_greedy_generation_with_cache_matches_full_forward",
    ),
  ),
  Mutation(
    "gpt-fused-not-causal",
    "dljax/models/gpt.py",
    "is_causal=mask is None)",
    "is_causal=False)",
    ("tests/test_sequence_models.py::test_gpt_is_causal",),
  ),
  Mutation(
    "top-k-keeps-one",
    "dljax/models/generation.py",
    "jax.lax.top_k(logits, top_k)[0][:, -1:]",
    "jax.lax.top_k(logits, top_k)[0][:, :1]",
    ("tests/test_sequence_models.py::test_top_k_and_nucleus_sample_exactly_their_support",),
  ),
  Mutation(
    "top-p-keeps-one",
    "dljax/models/generation.py",
    "jnp.where(mass_before < top_p,",
    "jnp.where(mass_before <= 0.0,",
    ("tests/test_sequence_models.py::test_top_k_and_nucleus_sample_exactly_their_support",),
  ),
  Mutation(
    "temperature-ignored",
    "dljax/models/generation.py",
    "logits = logits.astype(jnp.float32) / temperature",
    "logits = logits.astype(jnp.float32)",
    ("tests/test_sequence_models.py::test_temperature_scales_the_sampling_distribution",),
  ),
  Mutation(
    "temperature-nan-accepted",
    "dljax/models/generation.py",
    "if not (math.isfinite(temperature) and temperature >= 0):",
    "if temperature < 0:",
    ("tests/test_sequence_models.py::test_generate_rejects_bad_arguments",),
  ),
  Mutation(
    "build-model-passes-undeclared-derived-fields",
    "dljax/models/__init__.py",
    "for field, value in derived.items() if field in fields}",
    "for field, value in derived.items()}",
    ("tests/test_models.py::test_build_model_takes_the_derived_fields_a_model_declares",),
  ),
  Mutation(
    "generate-cli-temperature-nan-accepted",
    "experiments/generate.py",
    "if not (math.isfinite(_TEMPERATURE.value) and _TEMPERATURE.value >= 0):",
    "if _TEMPERATURE.value < 0:",
    ("tests/test_train_language_model.py::test_generate_bad_input",),
  ),
  Mutation(
    "generate-cli-missing-step-unchecked",
    "experiments/generate.py",
    "  if step not in steps:",
    "  if False:",
    ("tests/test_train_language_model.py::test_generate_bad_input",),
  ),
  Mutation(
    "lm-smoke-learning-rate-0",
    "dljax/config.py",
    "  c.sample_tokens = 40\n",
    "  c.sample_tokens = 40\n  c.optimizer.learning_rate = 0.0\n",
    (
      "tests/test_train_language_model.py::test_gpt_smoke_learns_logs_and_samples",
      "tests/test_train_language_model.py::test_lstm_smoke_learns",
    ),
  ),
  Mutation(
    "lm-loss-without-gradient",
    "dljax/tasks/language_model.py",
    '  return next_token_loss(logits, batch["targets"]), ({}, None)',
    "  logits = jax.lax.stop_gradient(logits)\n"
    '  return next_token_loss(logits, batch["targets"]), ({}, None)',
    ("tests/test_train_language_model.py::test_lstm_smoke_learns",),
  ),
  Mutation(
    "split-batch-no-op",
    "dljax/parallel.py",
    "  if mesh.empty or x.shape[0] % mesh.size:\n    return x\n",
    "  return x\n",
    (
      "tests/test_data.py::test_split_batch_gives_each_device_its_own_rows",
      "tests/test_data.py::test_device_dataset_batches_arrive_split_over_devices",
    ),
  ),
  Mutation(
    "unbounded-dispatch",
    "dljax/parallel.py",
    '  return mesh.size > 1 and mesh.devices.flat[0].platform == "cpu"\n',
    "  return False\n",
    ("tests/test_loop.py::test_on_a_multi_device_cpu_mesh_the_loop_keeps_one_step_in_flight",),
  ),
  Mutation(
    "fsdp-replicates-everything",
    "dljax/parallel.py",
    "      spec[-max(sizes)[1]] = DATA_AXIS\n",
    "      pass\n",
    (
      "tests/test_parallel.py::test_fsdp_splits_each_array_on_its_largest_dimension_the_devices_divide",
      "tests/test_checkpoint_devices.py::test_a_checkpoint_saved_on_two_devices_resumes_on_one_and_four",
    ),
  ),
  Mutation(
    "train-step-state-not-pinned",
    "dljax/steps.py",
    "      state = jax.lax.with_sharding_constraint(state, state_sharding)\n",
    "      pass\n",
    ("tests/test_steps.py::test_a_step_returns_the_state_in_the_sharding_it_was_given",),
  ),
  Mutation(
    "mountain-car-reset-shifted",
    "dljax/rl/envs/mountain_car.py",
    "jnp.float32, -0.6, -0.4)",
    "jnp.float32, -0.55, -0.35)",
    ("tests/test_rl_envs.py::test_reset_distribution_matches_gymnasium",),
  ),
  Mutation(
    "acrobot-reset-wider",
    "dljax/rl/envs/acrobot.py",
    "jnp.float32, -0.1, 0.1)",
    "jnp.float32, -0.12, 0.12)",
    ("tests/test_rl_envs.py::test_reset_distribution_matches_gymnasium",),
  ),
  Mutation(
    "update-keeps-only-its-own-networks-statistics",
    "dljax/steps.py",
    "  for name, collections in (mutable or {}).items():\n",
    "  for name, collections in (mutable or {}).items():\n"
    "    if name != update.network:\n"
    "      continue\n",
    ("tests/test_gan.py::test_gan_step_keeps_both_updates_batch_norm_statistics",),
  ),
  Mutation(
    "split-rounds-up-the-smallest-remainders",
    "dljax/data/images.py",
    "np.sort(np.unique(remainder))[::-1]",
    "np.sort(np.unique(remainder))",
    ("tests/test_data.py::test_embedded_splits_are_scikit_learns_without_importing_it",),
  ),
  Mutation(
    "tfds-test-split-read-from-train",
    "dljax/data/images.py",
    '_read_image_split(name, "test",',
    '_read_image_split(name, "train",',
    ("tests/test_data.py::test_tfds_train_and_test_arrays_come_from_their_own_splits",),
  ),
  Mutation(
    "process-parts-overlap",
    "dljax/data/placement.py",
    "range(self.index * size, (self.index + 1) * size)",
    "range(self.index * size // 2, (self.index + 1) * size)",
    (
      "tests/test_data.py::test_processes_read_disjoint_equal_parts_of_a_tfds_train_split",
      "tests/test_data.py::test_processes_cut_disjoint_equal_parts_of_an_embedded_train_split",
    ),
  ),
  Mutation(
    "sharded-batch-steps-by-global-batch",
    "dljax/data/sharded_feed.py",
    "start = (step % self.steps_per_epoch) * self.device_batch",
    "start = (step % self.steps_per_epoch) * self.batch_size",
    ("tests/test_data.py::test_sharded_epoch_serves_every_example_once",),
  ),
  Mutation(
    "tfds-text-splits-out-of-order",
    "dljax/data/text.py",
    'TFDS_SPLITS = ("train", "validation", "test")',
    'TFDS_SPLITS = ("train", "test", "validation")',
    ("tests/test_text.py::test_tfds_text_joins_train_validation_and_test_in_order",),
  ),
  Mutation(
    "rl-seeds-share-one-key",
    "dljax/rl/experiment.py",
    "jax.random.fold_in(root, i)",
    "jax.random.fold_in(root, 0)",
    ("tests/test_rl_agents.py::test_smoke_variant_trains_end_to_end",),
  ),
  Mutation(
    "rollout-bootstraps-from-the-reset-observation",
    "dljax/rl/rollout.py",
    "next_obs=env_state.final_observation,",
    "next_obs=obs_after,",
    ("tests/test_rl_agents.py::test_rollout_keeps_a_cut_episodes_last_observation",),
  ),
  Mutation(
    "gym-host-envs-follow-the-process",
    "dljax/rl/gym_driver.py",
    "    chunk = int(runner.updates[0]) // s.chunk_updates\n",
    '    chunk = train_step.calls = getattr(train_step, "calls", -1) + 1\n',
    ("tests/test_gym_bridge.py",),
  ),
  Mutation(
    "vae-beta-ignored",
    "dljax/tasks/vae.py",
    "return jnp.mean(recon + beta * kl)",
    "return jnp.mean(recon + kl)",
    ("tests/test_vae.py::test_beta_weighs_the_kl_and_pulls_codes_to_the_prior",),
  ),
  Mutation(
    "reproduce-counts-seeds-above-not-at-the-threshold",
    "benchmarks/reproduce.py",
    "sum(x >= show.threshold for x in returns)",
    "sum(x > show.threshold for x in returns)",
    ("tests/test_reproduce.py::test_rl_figures_count_the_seeds_at_the_threshold",),
  ),
  Mutation(
    "benchmark-workload-compiles-without-its-mesh",
    "benchmarks/workloads.py",
    "    with jax.set_mesh(self.mesh):\n      self.compiled",
    "    if True:\n      self.compiled",
    ("tests/test_benchmarks.py::test_a_generative_workload_splits_its_batch_over_the_devices",),
  ),
  Mutation(
    "race-keeps-the-callers-compilation-cache",
    "benchmarks/race.py",
    "if not k.startswith(CALLER_SETTINGS)",
    "if not k.startswith(CALLER_SETTINGS[1:])",
    ("tests/test_race.py::test_races_run_without_the_callers_cache_and_xla_settings",),
  ),
  Mutation(
    "fetch-skips-the-pin",
    "dljax/data/fetch.py",
    "      if digest != pinned[f]:",
    "      if False:",
    ("tests/test_data.py::test_fetch_copies_files_with_the_pinned_hashes_and_refuses_others",),
  ),
  Mutation(
    "idx-reads-big-endian-dims-as-little",
    "dljax/data/idx.py",
    'np.frombuffer(raw[4:start], ">i4")',
    'np.frombuffer(raw[4:start], "<i4")',
    ("tests/test_data.py::test_fetched_dataset_loads_each_split_from_its_own_files",),
  ),
  Mutation(
    "polyak-decay-inverted",
    "dljax/steps.py",
    "getattr(state, polyak.network), 1.0 - polyak.decay",
    "getattr(state, polyak.network), polyak.decay",
    ("tests/test_diffusion.py::test_polyak_follows_the_update_in_the_same_step",),
  ),
  Mutation(
    "elbo-kl-weight-of-the-wrong-step",
    "dljax/tasks/diffusion.py",
    "    weight = (1.0 - alphas[t - 1]) / (2.0 * alphas[t - 1] * (1.0 - abar[t - 1]))",
    "    weight = (1.0 - alphas[t - 1]) / (2.0 * alphas[t - 1] * (1.0 - abar[t]))",
    ("tests/test_diffusion.py::test_elbo_terms_are_the_textbook_kl_of_the_reverse_steps",),
  ),
]


def copy_repository(destination: str):
  """The tracked and untracked, not ignored, files of the working tree, at `destination`."""
  listed = (
    subprocess.run(
      ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      cwd=REPO,
      capture_output=True,
      check=True,
    )
    .stdout.decode()
    .split("\0")
  )
  for path in filter(None, listed):
    source = os.path.join(REPO, path)
    if os.path.isfile(source):  # a tracked file deleted in the working tree is not copied
      os.makedirs(os.path.dirname(os.path.join(destination, path)), exist_ok=True)
      shutil.copy2(source, os.path.join(destination, path))


def run_tests(copy: str, tests: tuple[str, ...]) -> tuple[bool, str, float]:
  """Runs `tests` in the copy: (all passed, the first failure's id or pytest's last line, s)."""
  env = {**os.environ, "PYTHONPATH": copy}  # the copy's dljax, not the installed one
  start = time.perf_counter()
  out = subprocess.run(
    [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", *tests],
    cwd=copy,
    env=env,
    capture_output=True,
    text=True,
    timeout=900,
    check=False,
  )
  failed = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", out.stdout, re.MULTILINE)
  lines = out.stdout.strip().splitlines() or [out.stderr.strip()]
  return out.returncode == 0, failed[0] if failed else lines[-1], time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--only", help="comma-separated mutation names (default: all)")
  parser.add_argument("--list", action="store_true", help="list the mutations and exit")
  args = parser.parse_args()
  if args.list:
    for m in MUTATIONS:
      print(f"{m.name:40s} {m.path}")
    return 0
  chosen = MUTATIONS
  if args.only:
    names = args.only.split(",")
    unknown = set(names) - {m.name for m in MUTATIONS}
    if unknown:
      sys.exit(f"error: unknown mutations {sorted(unknown)}; see --list")
    chosen = [m for m in MUTATIONS if m.name in names]

  with tempfile.TemporaryDirectory(prefix="dljax-mutations-") as scratch:
    copy = os.path.join(scratch, "repo")
    copy_repository(copy)
    tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
    passed, detail, seconds = run_tests(copy, tests)
    print(
      f"unmutated copy: {'tests pass' if passed else 'TESTS FAIL: ' + detail} ({seconds:.0f} s)"
    )
    if not passed:
      return 1
    survivors = []
    for m in chosen:
      path = os.path.join(copy, m.path)
      with open(path) as f:
        original = f.read()
      if original.count(m.old) != 1:
        print(
          f"{m.name:40s} DOES NOT APPLY: the text to replace occurs {original.count(m.old)} "
          f"times in {m.path}; update the mutation"
        )
        survivors.append(m.name)
        continue
      with open(path, "w") as f:
        f.write(original.replace(m.old, m.new))
      try:
        passed, detail, seconds = run_tests(copy, m.tests)
      finally:
        with open(path, "w") as f:
          f.write(original)
      print(
        f"{m.name:40s} {'SURVIVED' if passed else 'killed':8s} {seconds:5.0f} s  {detail}",
        flush=True,
      )
      if passed:
        survivors.append(m.name)
    print(
      f"{len(chosen) - len(survivors)} of {len(chosen)} mutations killed"
      + (f"; not killed: {', '.join(survivors)}" if survivors else "")
    )
    return 1 if survivors else 0


if __name__ == "__main__":
  sys.exit(main())
