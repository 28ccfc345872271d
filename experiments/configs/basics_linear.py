"""Linear regression on synthetic data: does gradient descent recover the generating weights?

  python -m experiments.train --config experiments/configs/basics_linear.py --workdir runs/basics_linear
  python -m experiments.train --config experiments/configs/basics_linear.py:jax_grad --workdir runs/basics_linear_grad

y = x.w + b + 0.1 * noise with x ~ N(0, I_10). Default: optax SGD with momentum and a cosine
schedule; variant `jax_grad`: theta <- theta - lr * grad written by hand
(dljax.tasks.basics.gradient_descent). Variant `smoke` runs in seconds (tests).
"""

from dljax.config import apply_variant, basics_config, make_smoke


def get_config(variant: str = ""):
  c = basics_config()
  c.problem = "linear"  # y = x.w + b + noise (dljax.tasks.basics_data)
  c.num_features = 10  # x ~ N(0, I_10); 1,000 training and 1,000 test examples (basics_config)
  c.noise = 0.1  # std of the target noise: the floor of the test MSE is 0.01
  c.num_steps = 300  # 30 epochs of batch 100
  c.eval_every_steps = 20  # the weight error is measured at each evaluation
  c.optimizer.name = "sgd"  # optax SGD with momentum: 0.05 / (1 - 0.9) = 0.5 effective rate
  c.optimizer.learning_rate = 0.05
  c.optimizer.momentum = 0.9
  c.optimizer.schedule = "cosine"  # decays to 0: the last steps average out the minibatch noise
  variants = {"jax_grad": jax_grad, "smoke": smoke, "jax_grad_smoke": jax_grad_smoke}
  return apply_variant(c, variant, variants)


def jax_grad(c):
  c.update_rule = "jax_grad"  # theta <- theta - lr * grad (basics.gradient_descent)
  c.optimizer.learning_rate = 0.1  # the only optimizer field the hand-written update reads


def smoke(c):
  make_smoke(c, num_steps=60)
  c.eval_every_steps = 30  # two evaluations


def jax_grad_smoke(c):
  jax_grad(c)
  smoke(c)
