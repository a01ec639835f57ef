"""The bars problem as a wsjax training configuration (shared by the bars experiments)."""

import wsjax
from wsjax import tasks


_BARS = tasks.bars()

bars_sampler = _BARS.sampler
"""(key, batch_size, data) -> fresh 4x4 bars images; the data argument is unused."""


def bars_eval():
    """(params, data) -> {"kl_bits": exact KL(bars || model)} over the 30 bars images."""
    return _BARS.eval_fn


def bars_config(layer_sizes, num_steps, batch_size, lr_decay, init_scale, num_evals,
                init_biases=(0.0, 0.0, 0.0), layer_rate_scales=None):
    """A TrainConfig for bars with ``num_evals`` exact-KL evaluations over the run."""
    if num_evals < 1 or num_steps % num_evals:
        raise ValueError(f"num_steps ({num_steps}) must be a positive multiple of num_evals ({num_evals})")
    if tuple(layer_sizes)[:1] != (16,):
        raise ValueError(f"bars images have 16 pixels, so layer_sizes must start with 16, got {layer_sizes}")
    return wsjax.TrainConfig(
        layer_sizes=tuple(layer_sizes), num_steps=num_steps, batch_size=batch_size,
        sampler=bars_sampler, lr_decay=lr_decay, init_scale=init_scale,
        layer_rate_scales=layer_rate_scales,
        init_biases=tuple(init_biases), eval_every=num_steps // num_evals, eval_fn=bars_eval(),
    )
