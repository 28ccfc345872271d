"""Logistic regression on synthetic data: a linear classifier trained by its cross-entropy.

  python -m experiments.train --config experiments/configs/basics_logistic.py --workdir runs/basics_logistic
  python -m experiments.train --config experiments/configs/basics_logistic.py:jax_grad --workdir runs/basics_logistic_grad

Labels y ~ Bernoulli(sigmoid(x.w + b)) with x ~ N(0, I_5): even the generating weights misclassify
some test points (`true_weights_test_accuracy` is the ceiling), and the maximum-likelihood fit
is itself ~0.1 away from them (`max_likelihood_weight_error`). Default: minibatch optax Adam;
variant `jax_grad`: full-batch theta <- theta - lr * grad by hand. Variant `smoke` runs in
seconds (tests).
"""

from dljax.config import apply_variant, basics_config, make_smoke


def get_config(variant: str = ""):
  c = basics_config()
  c.problem = "logistic"  # y ~ Bernoulli(sigmoid(x.w + b)) (dljax.tasks.basics_data)
  c.num_features = 5  # x ~ N(0, I_5)
  c.num_train = 4000  # the maximum-likelihood weights approach the true ones as 1/sqrt(n)
  c.num_steps = 600  # 15 epochs of batch 100
  c.eval_every_steps = 40  # the weight error is measured at each evaluation
  c.optimizer.name = "adam"  # minibatch Adam (optax)
  c.optimizer.learning_rate = 0.05
  c.optimizer.schedule = "cosine"  # decays to 0: the last steps average out the minibatch noise
  variants = {"jax_grad": jax_grad, "smoke": smoke, "jax_grad_smoke": jax_grad_smoke}
  return apply_variant(c, variant, variants)


def jax_grad(c):
  c.update_rule = "jax_grad"  # theta <- theta - lr * grad (basics.gradient_descent)
  c.batch_size = c.num_train  # full-batch gradient descent: converges to the exact optimum
  c.optimizer.learning_rate = 2.0  # the loss's Hessian is E[p (1 - p) x x^T] <= I / 4


def smoke(c):
  make_smoke(c, num_steps=60)
  c.eval_every_steps = 30  # two evaluations


def jax_grad_smoke(c):
  jax_grad(c)
  smoke(c)
