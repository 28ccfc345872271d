"""Character-level GPT on tiny-shakespeare (nanoGPT's shakespeare_char).

  python -m experiments.train --config experiments/configs/shakespeare_gpt.py:cpu \
      --workdir runs/gpt_cpu --config.dataset=text:../shared/data/tinyshakespeare.txt
  python -m experiments.generate --workdir runs/gpt_cpu --prompt "ROMEO:" --num_tokens 500

Default: nanoGPT's GPU settings (6 layers, 6 heads, 384 dims, block 256, batch 64, dropout 0.2,
lr 1e-3, 5000 iterations, warmup 100, beta2 0.99). Variant `cpu`: nanoGPT's CPU model shape
(4 layers, 4 heads, 128 dims, block 64, dropout 0) with a schedule tuned for a 2-core CPU.
Variant `smoke`: a tiny model for a few steps (tests).
Its measured loss, times and race against nanoGPT: README's results table
(`python -m benchmarks.reproduce --rows shakespeare_gpt_cpu --races`).
"""

from dljax.config import apply_variant, language_model_config, language_model_smoke


def get_config(variant: str = ""):
  c = language_model_config()
  c.model.name = "gpt"  # dljax.models.gpt
  c.model.n_layer = 6  # transformer blocks
  c.model.n_head = 6  # attention heads per block
  c.model.n_embd = 384  # width of the residual stream
  c.model.dropout = 0.2  # on the embeddings and residual branches, in training
  c.model.bias = False  # nanoGPT's default
  c.model.explicit_attention = False  # jax.nn.dot_product_attention: fused kernels on GPU
  return apply_variant(c, variant, {"cpu": cpu, "smoke": smoke})


def cpu(c):
  c.block_size = 64
  c.batch_size = 12
  c.model.n_layer = 4
  c.model.n_head = 4
  c.model.n_embd = 128
  c.model.dropout = 0.0
  # Each of the next choices made this shape's step faster on XLA:CPU (docs/benchmarks.md):
  # biases (+0.4% parameters), einsum attention rather than dot_product_attention, the batch
  # split over two devices (6 rows each), LLVM at -O1 (the same val loss to the last bit, less
  # compile time).
  c.model.bias = True
  c.model.explicit_attention = True
  c.cpu_devices = 2
  c.xla_optimization_level = 1
  # nanoGPT runs 2000 iterations at lr 1e-3; a 3x higher peak reaches its val loss in fewer
  # (docs/sequence.md).
  c.num_steps = 1400
  c.steps_per_call = 50  # small steps: scanning 50 per call saves dispatch overhead
  # What is not training counts in a race: one evaluation, at the end (2048 windows cost about
  # 100 steps' worth), and no sample (compiling the decoder costs about as much;
  # experiments.generate samples from the run directory afterwards).
  c.eval_every_steps = 0
  c.sample_tokens = 0
  c.log_every_steps = 50
  c.checkpoint_every_steps = 700
  c.optimizer.learning_rate = 3e-3
  c.optimizer.warmup_steps = 50
  c.optimizer.end_learning_rate_factor = 1e-4 / 3e-3  # nanoGPT's min_lr 1e-4


def smoke(c):
  language_model_smoke(c)
  c.model.n_layer = 1
  c.model.n_head = 2
  c.model.n_embd = 16
  c.model.dropout = 0.1
