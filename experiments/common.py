"""Shared by the experiments: flag parsing that fails before compiling, and output-directory claims."""

import os
import sys

from absl import app, flags

from wsjax import runner


def parse_ints(name, values, minimum=1):
    """A list flag of ints, each >= minimum."""
    try:
        out = tuple(int(v) for v in values)
    except ValueError:
        raise flags.ValidationError(f"--{name} must be a list of integers, got {values}") from None
    if not out or any(v < minimum for v in out):
        raise flags.ValidationError(f"--{name} must be integers >= {minimum}, got {list(values)}")
    return out


def parse_floats(name, values):
    """A list flag of non-negative floats."""
    try:
        out = tuple(float(v) for v in values)
    except ValueError:
        raise flags.ValidationError(f"--{name} must be a list of numbers, got {values}") from None
    if not out or any(not v >= 0 for v in out):
        raise flags.ValidationError(f"--{name} must be non-negative numbers, got {list(values)}")
    return out


def parse_layer_rates(values):
    """--layer_rate_scales: per layer 'm' or 'start:end' (geometric over the run)."""
    out = []
    for v in values:
        try:
            parts = tuple(float(p) for p in v.split(":"))
        except ValueError:
            parts = ()
        if len(parts) not in (1, 2) or any(not p >= 0 for p in parts) or (
                len(parts) == 2 and min(parts) <= 0):
            raise flags.ValidationError(
                f"--layer_rate_scales entries must be 'm' >= 0 or 'start:end' > 0, got {v!r}")
        out.append(parts[0] if len(parts) == 1 else parts)
    return tuple(out)


def parse_biases(value):
    """'prior:generative:recognition' initial biases."""
    try:
        out = tuple(float(v) for v in value.split(":"))
    except ValueError:
        out = ()
    if len(out) != 3:
        raise flags.ValidationError(
            f"--init_biases must be 'prior:generative:recognition' numbers, got {value!r}")
    return out


def check_positive(**named):
    """Raise a ValidationError naming the first flag that is not > 0."""
    for name, value in named.items():
        if not value > 0:
            raise flags.ValidationError(f"--{name} must be positive, got {value}")


def save_flags(flag_values, path):
    """Write every flag of the experiment module so that --flagfile=path reproduces the run."""
    flag_values.append_flags_into_file(path)


def flag_identity(flag_values, module_name, ignore=()):
    """The values of a module's own flags, minus those that do not change its numbers."""
    module = sys.modules[module_name]
    return {f.name: f.value for f in flag_values.get_key_flags_for_module(module)
            if f.name not in set(ignore)}


def claim_output_dir(flag_values, module_name, ignore=()):
    """Claim --output_dir for this run (see wsjax.runner.prepare_output_dir) and save flags.txt.

    Returns:
      True when the directory already held this run, which then resumes from its checkpoints.

    Raises:
      absl.app.UsageError: when the directory holds a different run and --overwrite is not set.
    """
    out = flag_values.output_dir
    ignore = set(ignore) | {"output_dir", "overwrite"}
    try:
        resumed = runner.prepare_output_dir(out, flag_identity(flag_values, module_name, ignore),
                                            flag_values.overwrite)
    except FileExistsError as e:
        raise app.UsageError(str(e)) from None
    save_flags(flag_values, os.path.join(out, "flags.txt"))
    return resumed
