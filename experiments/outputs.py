"""What the experiments write into an output directory, and the policy for claiming one.

The library (``wsjax.runner``) writes checkpoints and results files where it is told; which
names an experiment's directory holds, and when a directory may be used, reused or cleared,
are the experiments' rules, kept here.
"""

import json
import os
import shutil

__all__ = ["KIT_OUTPUTS", "prepare_output_dir"]

KIT_OUTPUTS = frozenset({
    "sweep.json", "flags.txt", "checkpoints", "metrics.npz", "metrics.csv", "summary.md",
    "results.json", "direction.json", "structure.json", "test.json", "curves.png",
    "final_vs_axis.png", "weights.png", "fantasies.png", "dreams.png",
})
"""Every name the kit writes into an output directory: all that ``--overwrite`` may remove."""


def prepare_output_dir(output_dir: str, identity: dict, overwrite: bool = False) -> bool:
    """Claim ``output_dir`` for the sweep described by ``identity`` (JSON-able settings).

    A new or empty directory is claimed (``sweep.json`` written). A directory
    that already holds the same sweep is kept, so the sweep resumes from its
    checkpoints. A directory holding anything else is refused. With
    ``overwrite``, a directory holding another *kit* sweep is cleared of the
    kit's own outputs (:data:`KIT_OUTPUTS`) first; anything else in it makes the
    call refuse, naming what it found, and nothing is deleted. Call it from one
    process only.

    Returns:
      True when the directory already held this sweep (a resume).

    Raises:
      FileExistsError: naming the directory and the settings that differ, or the
        files that are not the kit's.
      NotADirectoryError: if ``output_dir`` names a file.
      OSError: if the directory cannot be created or written (read-only, no permission).
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise NotADirectoryError(f"output directory {output_dir!r} is a file")
    marker = os.path.join(output_dir, "sweep.json")
    identity = json.loads(json.dumps(identity))  # normalise tuples, numpy scalars
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        previous = None
        if os.path.exists(marker):
            try:
                with open(marker) as f:
                    previous = json.load(f)
            except (OSError, ValueError):
                previous = "unreadable"
        if previous == identity:
            return True
        if previous is None:
            raise FileExistsError(
                f"refusing to use output directory {output_dir!r}: it is not empty and holds no "
                "sweep.json, so it was not written by wsjax; nothing was deleted. Choose another "
                "directory.")
        if not overwrite:
            if isinstance(previous, dict):
                diff = sorted(k for k in set(previous) | set(identity)
                              if previous.get(k) != identity.get(k))
                why = "it holds a different sweep (" + "; ".join(
                    f"{k}: {previous.get(k)!r} there, {identity.get(k)!r} now" for k in diff) + ")"
            else:
                why = "its sweep.json cannot be read"
            raise FileExistsError(
                f"refusing to use output directory {output_dir!r}: {why}. Pass --overwrite to "
                "replace the kit's outputs there, or choose another directory.")
        foreign = sorted(set(os.listdir(output_dir)) - KIT_OUTPUTS)
        if foreign:
            raise FileExistsError(
                f"refusing to overwrite {output_dir!r}: it holds files the kit did not write "
                f"({', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}); nothing was "
                "deleted. Move them, or choose another directory.")
        for name in sorted(set(os.listdir(output_dir)) & KIT_OUTPUTS):
            path = os.path.join(output_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    try:
        os.makedirs(output_dir, exist_ok=True)
        tmp = marker + ".tmp"
        with open(tmp, "w") as f:
            json.dump(identity, f, indent=1, sort_keys=True)
        os.replace(tmp, marker)
    except OSError as e:
        raise OSError(f"cannot write to output directory {output_dir!r}: "
                      f"{e.strerror or e}") from None
    return False
