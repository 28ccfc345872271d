"""The basics chapter's task: linear and logistic regression and an MLP on two moons.

Every run is the spine's: a loss, `make_train_step` (which takes `jax.value_and_grad` of it) and
the loop. Options the chapter is about:

- `update_rule="jax_grad"` applies the gradient by hand, theta <- theta - lr * grad
  (`gradient_descent`); `update_rule="optax"` uses the config's optax optimizer instead.
- `grad_check=True` compares `jax.grad` with finite differences at every evaluation
  (`grad_max_rel_error`, see `basics_gradcheck`).
- linear models report how far the fitted weights are from the generating ones, next to the
  classical estimate's distance (`reference_fit`); two moons writes a decision-boundary frame at
  every evaluation (WORKDIR/boundary/step_NNNNNN.png).
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.tree_util import Partial

from dljax.data.device_feed import DeviceDataset
from dljax.errors import DljaxError
from dljax.evaluation import eval_batches, evaluate_batches
from dljax.experiment import Experiment, Hooks
from dljax.models import build_model
from dljax.optim import make_optimizer
from dljax.steps import make_eval_step, make_train_step
from dljax.tasks.basics_data import load_toy_data
from dljax.tasks.basics_gradcheck import max_relative_error
from dljax.tasks.basics_plots import plot_decision_boundary
from dljax.tasks.classification import classification_loss
from dljax.train_state import init_model_state

UPDATE_RULES = ("optax", "jax_grad")
GRAD_CHECK_EXAMPLES = 256  # training examples in the loss whose gradient is checked


def gradient_descent(learning_rate: float) -> optax.GradientTransformation:
  """theta <- theta - learning_rate * grad, written out: what `optax.sgd(learning_rate)` does.

  Wrapped as an optax transformation only so that the spine's `TrainState` can apply it.
  """

  def update(grads, state, params=None):
    del params
    return jax.tree.map(lambda g: -learning_rate * g, grads), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def squared_error_loss(params, state, batch, rng, train):
  """Linear regression: mean of (prediction - y)^2 / 2."""
  del rng
  prediction = state.apply_fn(state.variables(params), batch["x"], train=train)[:, 0]
  loss = 0.5 * jnp.mean((prediction - batch["y"]) ** 2)
  return loss, ({"mse": 2 * loss}, None)


def logistic_loss(params, state, batch, rng, train):
  """Logistic regression: binary cross-entropy of sigmoid(logit) against y in {0, 1}."""
  del rng
  logit = state.apply_fn(state.variables(params), batch["x"], train=train)[:, 0]
  loss = optax.sigmoid_binary_cross_entropy(logit, batch["y"]).mean()
  return loss, ({"accuracy": jnp.mean((logit > 0) == (batch["y"] > 0.5))}, None)


LOSSES = {"linear": squared_error_loss, "logistic": logistic_loss, "moons": classification_loss}


@jax.jit
def class_one_probability(state, points):
  """The two-moons classifier's p(class 1 | point) for points [n, 2]."""
  return jax.nn.softmax(state.apply_fn(state.variables(), points))[:, 1]


def reference_fit(problem: str, data) -> tuple[str, np.ndarray]:
  """The classical estimate a linear model's training should converge to, and its name: least
  squares for linear regression, the unpenalised maximum-likelihood fit (scikit-learn) for
  logistic regression. Its own distance to the true weights is the statistical error."""
  x, y = data.train["x"], data.train["y"]
  if problem == "linear":
    design = np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)
    return "least_squares", np.linalg.lstsq(design, y, rcond=None)[0][:-1]
  from sklearn.linear_model import LogisticRegression

  fit = LogisticRegression(C=np.inf, tol=1e-8, max_iter=10_000).fit(x, y)
  return "max_likelihood", fit.coef_[0]


def _relative_error(kernel, true_kernel) -> float:
  return float(np.linalg.norm(kernel - true_kernel) / np.linalg.norm(true_kernel))


def build_experiment(config, mesh) -> Experiment:
  if config.update_rule not in UPDATE_RULES:
    raise DljaxError(
      f"update_rule={config.update_rule!r} is not one of {', '.join(UPDATE_RULES)}; "
      f"set --config.update_rule=optax or --config.update_rule=jax_grad"
    )
  if config.num_steps < 1:
    raise DljaxError(
      f"num_steps={config.num_steps}: the basics configs count steps; set "
      f"--config.num_steps to a positive number"
    )
  data = load_toy_data(
    config.problem,
    config.num_train,
    config.num_test,
    config.num_features,
    config.noise,
    config.data_seed,
  )
  loss_fn = LOSSES[config.problem]
  num_outputs = 2 if config.problem == "moons" else 1
  model = build_model(config.model, num_classes=num_outputs)
  train_data = DeviceDataset(data.train, config.batch_size, config.seed, mesh)
  if config.update_rule == "jax_grad":
    tx = gradient_descent(config.optimizer.learning_rate)
  else:
    tx = make_optimizer(config.optimizer, config.num_steps)
  example = jnp.zeros_like(data.train_inputs[:1])

  def init_state():
    return init_model_state(model, tx, jax.random.PRNGKey(config.seed), example)

  eval_step = make_eval_step(loss_fn)
  test_batches = eval_batches(data.test, config.eval_batch_size, mesh)
  eval_rng = jax.random.PRNGKey(config.seed + 1)
  linear_fit = data.true_kernel is not None and not config.model.hidden
  if linear_fit:
    reference_name, reference_kernel = reference_fit(config.problem, data)
    reference_metrics = {
      f"{reference_name}_weight_error": _relative_error(reference_kernel, data.true_kernel)
    }
    if config.problem == "logistic":  # the accuracy ceiling: the generating weights' own
      true_logit = data.test["x"] @ data.true_kernel + data.true_bias
      reference_metrics["true_weights_test_accuracy"] = float(
        np.mean((true_logit > 0) == (data.test["y"] > 0.5))
      )
  grad_check_batch = jax.tree.map(lambda a: a[:GRAD_CHECK_EXAMPLES], data.train)

  def grad_check_loss(state, params):
    return loss_fn(params, state, grad_check_batch, None, False)[0]

  def evaluate(state):
    test_metrics = evaluate_batches(eval_step, state, test_batches, eval_rng)
    metrics = {f"test_{k}": v for k, v in test_metrics.items()}
    if linear_fit:  # how far the fitted weights are from the generating ones
      dense = jax.device_get(state.params["Dense_0"])
      metrics["weight_error"] = _relative_error(dense["kernel"][:, 0], data.true_kernel)
      metrics["bias_error"] = abs(float(dense["bias"][0]) - data.true_bias)
      metrics.update(reference_metrics)
    if config.grad_check:
      metrics["grad_max_rel_error"] = max_relative_error(
        Partial(grad_check_loss, state), state.params, config.grad_check_eps
      )
    return metrics

  def draw_boundary(state, step, workdir):
    os.makedirs(os.path.join(workdir, "boundary"), exist_ok=True)
    plot_decision_boundary(
      os.path.join(workdir, "boundary", f"step_{step:06d}.png"),
      functools.partial(class_one_probability, state),
      data.test,
      step,
    )

  return Experiment(
    init_state=init_state,
    train_step=make_train_step(loss_fn, train_data.batch, steps_per_call=config.steps_per_call),
    feed=train_data.feed,
    evaluate=evaluate,
    num_steps=config.num_steps,
    identity={
      "problem": config.problem,
      "data_seed": config.data_seed,
      "update_rule": config.update_rule,
      "model": config.model.to_dict(),
    },
    mesh=mesh,
    hooks=Hooks(after_eval=draw_boundary if config.problem == "moons" else None),
  )
