"""GPT-2 small (124 M parameters) with nanoGPT's OpenWebText shapes, in bfloat16: an accelerator
benchmark and a starting point for real pre-training.

  python -m benchmarks.throughput --models gpt2           # a train step on synthetic tokens, MFU
  python -m experiments.train --config experiments/configs/gpt2_small.py --workdir runs/gpt2 \
      --config.dataset=text:PATH

nanoGPT's config/train_gpt2.py: 12 layers, 12 heads, 768 dims, block 1024, vocabulary 50304
(GPT-2's 50257 BPE tokens padded to a multiple of 64), no biases, no dropout, AdamW lr 6e-4,
betas (0.9, 0.95), weight decay 0.1, 2000 warmup steps, cosine to 6e-5 over 600,000 steps,
gradient clipping at 1.0. Batch 12 sequences is nanoGPT's micro-batch per GPU (it accumulates 40
of them per step across 8 GPUs; dljax has no gradient accumulation). With `text:PATH` the task
builds a character vocabulary from the text, so the embedding shrinks accordingly; the 124 M
shape needs the 50304-token vocabulary of the synthetic benchmark data.
"""

from dljax.config import apply_variant, language_model_config


def get_config(variant: str = ""):
  c = language_model_config()
  c.dtype = "bfloat16"  # float32 parameters and optimizer state, bfloat16 compute
  c.vocab_size = 50304  # of the benchmarks' synthetic tokens; a text dataset brings its own
  c.block_size = 1024
  c.batch_size = 12
  c.num_steps = 600_000
  c.eval_every_steps = 2000
  c.eval_windows = 2400  # nanoGPT: eval_iters 200 x batch 12
  c.eval_batch_size = 12  # logits of 12 x 1024 x 50304 are 1.2 GB in bfloat16
  c.checkpoint_every_steps = 2000
  c.model.name = "gpt"
  c.model.n_layer = 12
  c.model.n_head = 12
  c.model.n_embd = 768
  c.model.dropout = 0.0
  c.model.bias = False
  c.model.explicit_attention = False  # jax.nn.dot_product_attention: fused kernels on GPU
  c.optimizer.learning_rate = 6e-4
  c.optimizer.b2 = 0.95
  c.optimizer.weight_decay = 0.1
  c.optimizer.warmup_steps = 2000
  c.optimizer.end_learning_rate_factor = 0.1  # min_lr 6e-5
  c.optimizer.grad_clip_norm = 1.0
  return apply_variant(c, variant, {})
