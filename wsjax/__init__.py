"""wsjax: Helmholtz machines trained by wake-sleep, as pure JAX functions."""

from wsjax import data, loaders, plotting, runner, tasks
from wsjax.exact import (
    MAX_EXACT_HIDDEN,
    all_binary_configs,
    exact_kl_bits,
    exact_log_joint_table,
    exact_log_prob,
)
from wsjax.layers import bernoulli_log_prob, bernoulli_sample, dense_logits, init_dense
from wsjax.model import (
    from_matrices,
    generative_params,
    init,
    layer_sizes,
    log_joint,
    log_recognition,
    recognition_params,
    sample_generative,
    sample_recognition,
    to_matrices,
)
from wsjax.objectives import estimate_log_prob, free_energy, log_weights, sleep_loss, wake_loss
from wsjax.optim import OptaxAlgorithm, OptaxState, make_optax_step
from wsjax.rws import normalized_weights, rws_grads, rws_losses, rws_step
from wsjax.train import TrainConfig, TrainState, Trainer, make_train, rates_pair, sweep
from wsjax.wake_sleep import sleep_grads, sleep_samples, sleep_step, wake_grads, wake_samples, wake_step
from wsjax.data import validate_binary

__version__ = "0.1.0"

__all__ = [
    "OptaxAlgorithm",
    "OptaxState",
    "loaders",
    "make_optax_step",
    "normalized_weights",
    "plotting",
    "rates_pair",
    "runner",
    "tasks",
    "rws_grads",
    "rws_losses",
    "rws_step",
    "MAX_EXACT_HIDDEN",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "all_binary_configs",
    "bernoulli_log_prob",
    "bernoulli_sample",
    "data",
    "dense_logits",
    "estimate_log_prob",
    "exact_kl_bits",
    "exact_log_joint_table",
    "exact_log_prob",
    "free_energy",
    "from_matrices",
    "generative_params",
    "init",
    "init_dense",
    "layer_sizes",
    "log_joint",
    "log_recognition",
    "log_weights",
    "make_train",
    "recognition_params",
    "sample_generative",
    "sample_recognition",
    "sleep_grads",
    "sleep_loss",
    "sleep_samples",
    "sleep_step",
    "sweep",
    "to_matrices",
    "validate_binary",
    "wake_grads",
    "wake_loss",
    "wake_samples",
    "wake_step",
]
