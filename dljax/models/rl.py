"""Reinforcement-learning networks: an actor-critic MLP (PPO) and a Q-network MLP (DQN).

Initialisation follows PureJaxRL/CleanRL (orthogonal, scale sqrt(2) in hidden layers, 0.01 on the
policy head, 1 on the value head): a near-uniform initial policy is part of what makes PPO's
CartPole results reproducible.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def _dense(features: int, scale: float) -> nn.Dense:
  return nn.Dense(
    features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros
  )


def _torso(x, hidden: Sequence[int], activation: str):
  for width in hidden:
    x = ACTIVATIONS[activation](_dense(width, np.sqrt(2))(x))
  return x


class ActorCritic(nn.Module):
  """Separate policy and value MLPs on the same observation.

  Returns `(policy, value)`: `policy` is the logits for `action_dim` discrete actions, or, with
  `continuous`, the pair `(mean, log_std)` of a diagonal Gaussian whose log-std is a learned,
  state-independent parameter.
  """

  action_dim: int
  continuous: bool = False
  hidden: Sequence[int] = (64, 64)
  activation: str = "tanh"

  @nn.compact
  def __call__(self, obs):
    out = _dense(self.action_dim, 0.01)(_torso(obs, self.hidden, self.activation))
    value = _dense(1, 1.0)(_torso(obs, self.hidden, self.activation))[..., 0]
    if not self.continuous:
      return out, value
    log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
    return (out, jnp.broadcast_to(log_std, out.shape)), value


class QNetwork(nn.Module):
  """Q-values of `num_actions` discrete actions."""

  num_actions: int
  hidden: Sequence[int] = (120, 84)
  activation: str = "relu"

  @nn.compact
  def __call__(self, obs):
    return _dense(self.num_actions, 1.0)(_torso(obs, self.hidden, self.activation))
