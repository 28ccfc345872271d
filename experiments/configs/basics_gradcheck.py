"""`jax.grad` against finite differences, on the two-moons MLP before and after training.

  python -m experiments.train --config experiments/configs/basics_gradcheck.py --workdir runs/basics_gradcheck

At every evaluation `grad_max_rel_error` is the largest relative difference, over all parameters,
between `jax.grad` of the training loss (256 examples) and central finite differences, both in
float64 (dljax.tasks.basics_gradcheck). A tanh network: ReLU's kinks make finite differences
unreliable for the few units whose input crosses zero within eps. Variant `smoke`: tests.
"""

from dljax.config import apply_variant, basics_config, make_smoke


def get_config(variant: str = ""):
  c = basics_config()
  c.problem = "moons"  # the two-moons MLP of basics_moons.py, with tanh
  c.num_train = 1000
  c.num_test = 500
  c.noise = 0.2  # std of the points' jitter
  c.batch_size = 50
  c.num_steps = 300
  c.eval_every_steps = 100  # a gradient check each: after 100, 200 and 300 steps
  c.grad_check = True  # report grad_max_rel_error at every evaluation
  c.grad_check_eps = 1e-5  # central differences: truncation ~eps^2, rounding ~1e-16/eps
  c.model.hidden = (32, 32)  # 1,218 parameters: 2,436 perturbed losses per check
  c.model.activation = "tanh"  # smooth: finite differences are exact to O(eps^2) everywhere
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 0.01
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  make_smoke(c, num_steps=10)  # one evaluation (the last): one check
  c.model.hidden = (8,)
