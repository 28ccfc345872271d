"""The several-network step: each update trains only its network, sees the previous updates, and
keeps every mutable-collection change its loss reports. A step given the state's sharding returns
the state there."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_trees_equal
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dljax import parallel
from dljax.steps import Update, make_train_step
from dljax.train_state import TrainState, init_model_state


class Net(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.BatchNorm(use_running_average=not train)(x)
    return nn.Dense(3)(x)


@flax.struct.dataclass
class Pair:
  a: TrainState
  b: TrainState


def make_pair() -> Pair:
  x = jnp.ones((1, 3))
  return Pair(
    *(
      init_model_state(Net(), optax.sgd(0.1), jax.random.PRNGKey(i), x, train=False)
      for i in range(2)
    )
  )


def run_a(pair: Pair, params, x):
  return pair.a.apply_fn(pair.a.variables(params), x, train=True, mutable=["batch_stats"])


def run_b(pair: Pair, x):
  """b in training mode with its current parameters: changes b's BatchNorm statistics."""
  return pair.b.apply_fn(pair.b.variables(), x, train=True, mutable=["batch_stats"])


def a_loss(params, pair, batch, rng, train):
  out, a_mutable = run_a(pair, params, batch)
  return jnp.mean(out**2), ({}, {"a": a_mutable})


def b_loss(params, pair, batch, rng, train):
  """b's loss reads a's output, and a's BatchNorm statistics change as it runs."""
  a_out, a_mutable = run_a(pair, pair.a.params, batch)
  out, b_mutable = pair.b.apply_fn(
    pair.b.variables(params), a_out, train=True, mutable=["batch_stats"]
  )
  return jnp.mean((out - 1.0) ** 2), ({"mean_out": out.mean()}, {"a": a_mutable, "b": b_mutable})


BATCH = jax.random.normal(jax.random.PRNGKey(7), (8, 3)) * 2.0 + 1.0


def test_an_update_trains_only_its_network():
  pair = make_pair()
  after, metrics = make_train_step([Update("a", a_loss)])(pair, BATCH)
  pair = make_pair()  # the step donated the first one
  assert_trees_equal(after.b, pair.b)
  assert int(after.a.step) == 1
  assert not np.allclose(after.a.params["Dense_0"]["kernel"], pair.a.params["Dense_0"]["kernel"])
  assert set(metrics) == {"a_loss", "a_grad_norm"}


def test_updates_run_in_order_and_keep_every_mutable_change():
  pair = make_pair()
  after, metrics = make_train_step([Update("a", a_loss), Update("b", b_loss)])(pair, BATCH)
  # By hand: a's update, then b's update on the a it left; both change a's statistics.
  pair = make_pair()
  grads, (_, a_mut) = jax.grad(a_loss, has_aux=True)(pair.a.params, pair, BATCH, None, True)
  a = pair.a.apply_gradients(grads).replace(mutable=a_mut["a"])
  pair = pair.replace(a=a)
  grads, (_, mut) = jax.grad(b_loss, has_aux=True)(pair.b.params, pair, BATCH, None, True)
  want = Pair(a.replace(mutable=mut["a"]), pair.b.apply_gradients(grads).replace(mutable=mut["b"]))
  for x, y in zip(jax.tree.leaves(after), jax.tree.leaves(want)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
  assert set(metrics) == {"a_loss", "a_grad_norm", "b_loss", "b_grad_norm", "b_mean_out"}
  # a's statistics were updated twice: by its own update and by running inside b's loss.
  stats = after.a.mutable["batch_stats"]["BatchNorm_0"]["mean"]
  once = a_mut["a"]["batch_stats"]["BatchNorm_0"]["mean"]
  assert not np.allclose(stats, once)


def test_an_incomplete_mutable_update_is_refused():
  def partial_loss(params, pair, batch, rng, train):
    loss, (metrics, _) = a_loss(params, pair, batch, rng, train)
    return loss, (metrics, {"a": {}})  # the batch_stats collection is missing

  with pytest.raises(ValueError, match="do not match"):
    make_train_step([Update("a", partial_loss)])(make_pair(), BATCH)


def test_a_step_returns_the_state_in_the_sharding_it_was_given():
  """Matrices split, vectors replicated: left to itself, XLA returns the LayerNorm's vectors split
  too, and the compiled step refuses its own output on the next call."""

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      return nn.Dense(4)(nn.LayerNorm()(nn.Dense(8)(x)))

  def loss(params, state, batch, rng, train):
    return jnp.mean(state.apply_fn({"params": params}, batch) ** 2), ({}, None)

  net, tx = Net(), optax.adam(0.1)  # the state's static fields: one instance for every init

  def init():
    return init_model_state(net, tx, jax.random.PRNGKey(0), jnp.ones((1, 8)))

  mesh = parallel.make_data_mesh(2)
  shapes = jax.eval_shape(init)
  sharding = jax.tree.map(
    lambda fsdp, x: fsdp if x.ndim >= 2 else NamedSharding(mesh, P()),
    parallel.fsdp_sharding(shapes, mesh),
    shapes,
  )
  with jax.set_mesh(mesh):
    step = make_train_step(
      loss, lambda feed, _: parallel.split_batch(feed), state_sharding=sharding
    )
    state = jax.jit(init, out_shardings=sharding)()
    compiled = step.fn.lower(state, jnp.ones((4, 8))).compile()
    for _ in range(2):
      state, _ = compiled(state, jnp.ones((4, 8)))
  same = jax.tree.map(lambda x, s: x.sharding.is_equivalent_to(s, x.ndim), state, sharding)
  assert all(jax.tree.leaves(same))
