"""An MLP learns a curved decision boundary: two moons (scikit-learn `make_moons`, offline).

  python -m experiments.train --config experiments/configs/basics_moons.py --workdir runs/basics_moons

Writes WORKDIR/boundary/step_NNNNNN.png at every evaluation: the predicted class probability over
the plane as it trains. Variant `smoke` runs in seconds (tests).
"""

from dljax.config import apply_variant, basics_config, make_smoke


def get_config(variant: str = ""):
  c = basics_config()
  c.problem = "moons"  # scikit-learn's make_moons (dljax.tasks.basics_data)
  c.num_train = 1000
  c.num_test = 500  # the points drawn in the frames
  c.noise = 0.2  # the moons overlap a little: ~97 % is about the best a classifier can do
  c.batch_size = 50
  c.num_steps = 600  # 30 epochs: the boundary has settled by ~400
  c.eval_every_steps = 50  # one boundary frame each
  c.model.hidden = (32, 32)  # two hidden layers: a piecewise-linear boundary with many kinks
  c.model.activation = "relu"
  c.model.kernel_init = "he_normal"  # variance 2 / fan_in, the init for ReLU
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 0.003  # slow enough for the frames to show the boundary forming
  c.optimizer.schedule = "constant"
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  make_smoke(c, num_steps=20)
  c.eval_every_steps = 10  # two frames
  c.model.hidden = (8,)
