"""wsjax: Helmholtz machines trained by wake-sleep and its successors, as pure JAX functions.

The top level holds what a user needs; helpers stay in their modules
(``wsjax.layers``, the kinds of layer; ``wsjax.model``, ``wsjax.phases``,
``wsjax.reweighted``, ``wsjax.estimators``, ``wsjax.objectives``, ``wsjax.exact``,
``wsjax.algorithms``, ``wsjax.train``, ``wsjax.layout``, ``wsjax.runner``,
``wsjax.checkpoint``, ``wsjax.results``, ``wsjax.evaluation``, ``wsjax.data``,
``wsjax.loaders``, ``wsjax.tasks``, ``wsjax.plotting``, and ``wsjax.modules``: flax.nnx
modules, imported on demand).
"""

from wsjax import data, evaluation, layers, layout, loaders, plotting, results, runner, tasks
from wsjax.algorithms import Algorithm, State, WakeSleepInfo, nvil, rws, vimco, wake_sleep
from wsjax.data import validate_binary
from wsjax.estimators import NVILInfo, VIMCOInfo
from wsjax.exact import exact_kl_bits, exact_log_prob
from wsjax.model import (
    from_matrices,
    init,
    log_joint,
    log_recognition,
    sample_generative,
    sample_recognition,
    to_matrices,
)
from wsjax.objectives import elbo, estimate_log_prob, sleep_loss, wake_loss
from wsjax.phases import sleep_step, wake_step
from wsjax.reweighted import RWSInfo, rws_step
from wsjax.train import TrainConfig, Trainer, grid, make_train, sweep

__version__ = "0.2.0"

__all__ = [
    # The machine.
    "init", "from_matrices", "to_matrices", "sample_generative", "sample_recognition",
    "log_joint", "log_recognition",
    # Algorithms: bundles, their state and diagnostics, and the plain-SGD steps.
    "wake_sleep", "rws", "vimco", "nvil", "Algorithm", "State", "WakeSleepInfo", "RWSInfo",
    "VIMCOInfo", "NVILInfo",
    "wake_step", "sleep_step", "rws_step",
    # Objectives and likelihoods.
    "wake_loss", "sleep_loss", "elbo", "estimate_log_prob", "exact_log_prob", "exact_kl_bits",
    # Whole runs and sweeps.
    "TrainConfig", "Trainer", "make_train", "grid", "sweep",
    # Data.
    "validate_binary",
    # Modules.
    "data", "evaluation", "layers", "layout", "loaders", "plotting", "results", "runner", "tasks",
]
