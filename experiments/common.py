"""Flag parsing shared by the experiments: fail on impossible settings before compiling."""

from absl import flags


def parse_ints(name, values, minimum=1):
    """A list flag of ints, each >= minimum."""
    try:
        out = tuple(int(v) for v in values)
    except ValueError:
        raise flags.ValidationError(f"--{name} must be a list of integers, got {values}") from None
    if not out or any(v < minimum for v in out):
        raise flags.ValidationError(f"--{name} must be integers >= {minimum}, got {list(values)}")
    return out


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
