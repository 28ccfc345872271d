"""Character-level LSTM language model on tiny-shakespeare.

  python -m experiments.train --config experiments/configs/shakespeare_lstm.py:cpu \
      --workdir runs/lstm_cpu --config.dataset=text:../shared/data/tinyshakespeare.txt
  python -m experiments.generate --workdir runs/lstm_cpu --prompt "ROMEO:"

Default: a 3-layer 512-unit LSTM on 256-character windows (for accelerators);
--config.model.name=gru for a GRU. Variant `cpu`: 2 layers of 256 units, block 64, sized for a
2-core CPU and the same wall-time budget as shakespeare_gpt:cpu. Variant `smoke`: seconds.
Its measured loss and times: README's results table (`python -m benchmarks.reproduce`).
"""

from dljax.config import apply_variant, language_model_config, language_model_smoke


def get_config(variant: str = ""):
  c = language_model_config()
  c.model.name = "lstm"  # dljax.models.rnn_lm: lstm or gru cells
  c.model.hidden_size = 512  # width of the embedding and of every recurrent layer
  c.model.num_layers = 3  # stacked recurrent layers
  c.model.dropout = 0.2  # between the recurrent layers, in training
  c.optimizer.learning_rate = 2e-3
  return apply_variant(c, variant, {"cpu": cpu, "smoke": smoke})


def cpu(c):
  c.block_size = 64
  c.batch_size = 32
  c.model.hidden_size = 256
  c.model.num_layers = 2
  c.model.dropout = 0.0
  c.cpu_devices = 2  # batch 32 split over two devices: faster steps (docs/benchmarks.md)
  c.num_steps = 500
  c.steps_per_call = 50
  c.eval_every_steps = 250
  c.log_every_steps = 50
  c.checkpoint_every_steps = 250
  c.optimizer.learning_rate = 3e-3
  c.optimizer.warmup_steps = 50
  c.optimizer.end_learning_rate_factor = 1e-4 / 3e-3


def smoke(c):
  language_model_smoke(c)
  c.model.hidden_size = 32
  c.model.num_layers = 2
  c.model.dropout = 0.1
