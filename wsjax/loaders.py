"""Loaders for binary image data: binarization, scikit-learn digits, binarized MNIST.

Everything here runs on the host with numpy, before any tracing. Each loader
returns float32 numpy arrays of 0/1 values that have passed
:func:`wsjax.data.validate_binary`. Files are told apart by their content
(magic bytes), not by their names: the public binarized MNIST ``.amat`` files
are often MATLAB v5 files, and idx files may or may not be gzipped.

References:
  Salakhutdinov & Murray (2008), ICML (dynamically binarized MNIST).
  Larochelle & Murray (2011), AISTATS (the fixed 50k/10k/10k binarized MNIST).
"""

from __future__ import annotations

import gzip
import io
import os
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from wsjax.data import validate_binary

__all__ = ["SPLITS", "binarize", "load_digits", "load_binary", "load_binarized_mnist"]

SPLITS = ("train", "valid", "test")
"""The names of the splits a loader returns, as keys of its dict (a file may hold fewer)."""
_ALIASES = {"train": "train", "x_train": "train", "valid": "valid", "validation": "valid",
            "val": "valid", "x_valid": "valid", "x_val": "valid", "test": "test", "x_test": "test"}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_DIR_FILES = {s: (f"binarized_mnist_{s}.amat", f"binarized_mnist_{s}.mat")
              + ((f"{i}-images-idx3-ubyte", f"{i}-images-idx3-ubyte.gz") if i else ())
              for s, i in (("train", "train"), ("valid", None), ("test", "t10k"))}
Seed = int | np.random.Generator | None


def _generator(seed: Seed, key: Any) -> np.random.Generator:
    if key is None:
        return np.random.default_rng(seed)
    import jax  # only needed to read the bits of a typed key

    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, np.uint32).ravel().tolist())


def binarize(x, method: str = "threshold", threshold: float = 0.5, *, seed: Seed = 0,
             key: Any = None) -> np.ndarray:
    """Turn grey levels into 0/1 pixels.

    Args:
      x: grey levels of any shape, floats in [0, 1], or uint8 in 0..255 (divided
        by 255 first, so a uint8 array that is already 0/1 comes out all zeros).
      method: ``"threshold"`` gives ``x > threshold``; ``"dynamic"`` draws each
        pixel on with probability equal to its grey level (``uniform < x``).
      threshold: cut-off in [0, 1] for ``"threshold"``.
      seed: int seed or numpy Generator for ``"dynamic"``; the same seed gives
        the same pixels. Ignored when ``key`` is given.
      key: optional JAX PRNG key (typed or raw uint32); its bits seed the
        numpy Generator, so the result does not depend on JAX's samplers.

    Returns:
      float32 numpy array of 0/1 values, the shape of ``x``.

    Raises:
      ValueError: non-numeric input, NaN, grey levels outside [0, 1], or an
        unknown method.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"binarize needs numeric grey levels, got dtype {arr.dtype}")
    grey = arr / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    if np.isnan(grey).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(grey))[0])
        raise ValueError(f"binarize: grey levels contain NaN (first at index {where})")
    outside = (grey < 0) | (grey > 1)
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"binarize: grey levels must lie in [0, 1] (or be uint8 0..255); found "
                         f"{arr[where].item()!r} at index {where} (dtype {arr.dtype})")
    if method == "threshold":
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"binarize: threshold must lie in [0, 1], got {threshold!r}")
        bits = grey > threshold
    elif method == "dynamic":
        bits = _generator(seed, key).random(grey.shape) < grey
    else:
        raise ValueError(f"binarize: unknown method {method!r}; expected 'threshold' or 'dynamic'")
    return bits.astype(np.float32)


def load_digits(binarize_method: str = "threshold", threshold: float = 0.5, seed: int = 0,
                test_fraction: float = 0.2, labels: bool = False) -> dict[str, np.ndarray]:
    """scikit-learn's bundled handwritten digits (1797 images, 8x8), binarized and split.

    Grey levels 0..16 are divided by 16, binarized with :func:`binarize`, then
    split by a fixed permutation drawn from ``seed`` (the same ``seed`` also
    seeds dynamic binarization), so the split is the same on every call.

    Returns:
      ``{"train": [n, 64], "test": [m, 64]}`` float32 0/1, ``m = round(1797 *
      test_fraction)`` and ``n + m = 1797``; with ``labels``, also
      ``"train_labels"`` [n] and ``"test_labels"`` [m], the digits 0-9 (int32).

    Raises:
      ImportError: scikit-learn is not installed.
      ValueError: ``test_fraction`` leaves one of the splits empty.
    """
    try:
        from sklearn import datasets
    except ImportError as e:
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from e
    bunch = datasets.load_digits()
    images = bunch.data / 16.0  # [1797, 64]
    n_test = int(round(test_fraction * len(images)))
    if not 0 < n_test < len(images):
        raise ValueError(f"test_fraction = {test_fraction!r} gives {n_test} of {len(images)} "
                         "digits to the test split; both splits must be non-empty")
    bits = binarize(images, binarize_method, threshold, seed=seed)
    perm = np.random.default_rng(seed).permutation(len(bits))
    out = {"train": validate_binary(bits[perm[n_test:]], "digits train", 64),
           "test": validate_binary(bits[perm[:n_test]], "digits test", 64)}
    if labels:
        target = bunch.target.astype(np.int32)
        out.update(train_labels=target[perm[n_test:]], test_labels=target[perm[:n_test]])
    return out


def _split_of(path: str) -> str:
    name = os.path.basename(path).lower()
    for split, words in (("train", ("train",)), ("valid", ("valid",)),
                         ("test", ("test", "t10k"))):
        if any(w in name for w in words):
            return split
    return "data"


def _pick(variables: Mapping[str, Any], path: str, split: str,
          archive: bool = False) -> dict[str, np.ndarray]:
    """Arrays of an .npz/.mat file: by split names, else the single 2-D numeric one.

    An .npz (``archive``) of several arrays, none named by split, whose file name names no
    split either, is refused, naming what it holds: which split each array would be is a guess.
    """
    found: dict[str, str] = {}
    for name in variables:
        s = _ALIASES.get(name.lower())
        if s in found:
            raise ValueError(f"{path}: both {found[s]!r} and {name!r} look like the {s} split")
        if s:
            found[s] = name
    if found:
        return {s: np.asarray(variables[found[s]]) for s in SPLITS if s in found}
    arrays = {n: np.asarray(variables[n]) for n in variables if not n.startswith("__")}
    seen = ", ".join(f"{n!r} {a.shape} {a.dtype}" for n, a in arrays.items()) or "none"
    if archive and split == "data" and len(arrays) > 1:
        raise ValueError(f"{path}: cannot tell which array holds the data; expected keys "
                         f"train/valid/test (or x_train/x_valid/x_test), or a file name that "
                         f"names the split, found {seen}")
    cands = [n for n, a in arrays.items() if a.ndim == 2 and a.dtype.kind in "biuf"]
    if len(cands) > 1:  # a variable named like the split decides, e.g. "binarized_mnist_train"
        cands = [n for n in cands if split in n.lower()] or cands
    if len(cands) == 1:
        return {split: arrays[cands[0]]}
    raise ValueError(f"{path}: cannot tell which array holds the data; expected keys "
                     f"train/valid/test (or x_train/x_valid/x_test) or a single 2-D numeric "
                     f"array, found {seen}")


def _read_mat(data: bytes, path: str, split: str) -> dict[str, np.ndarray]:
    if data.startswith(b"MATLAB 7.3"):
        raise ValueError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7")
    try:
        import scipy.io
    except ImportError as e:
        raise ImportError(f"{path} is a MATLAB file; reading it needs scipy") from e
    try:
        variables = scipy.io.loadmat(io.BytesIO(data))
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"{path}: cannot read MATLAB file ({e})") from e
    return _pick(variables, path, split)


def _read_idx(data: bytes, path: str) -> np.ndarray:
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated idx file: header of {ndim} dimensions needs "
                         f"{header} bytes, file has {len(data)}")
    dims = [int(d) for d in np.frombuffer(data, ">u4", ndim, 4)]
    expected, actual = int(np.prod(dims)) * dtype.itemsize, len(data) - header
    if actual != expected:
        what = "truncated idx file" if actual < expected else "idx file has trailing bytes"
        raise ValueError(f"{path}: {what}: header says shape {tuple(dims)} of {dtype.name} = "
                         f"{expected} bytes of data, found {actual}")
    if ndim < 2:
        raise ValueError(f"{path}: idx file holds a 1-D array of {dims[0]} entries (labels?), "
                         "not images")
    return np.frombuffer(data, dtype, offset=header).reshape(dims[0], int(np.prod(dims[1:])))


def _read_text(data: bytes, path: str, n_visible: int | None) -> np.ndarray:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: unrecognized format; expected .npz/.npy, MATLAB v5, idx "
                         "(optionally gzipped) or whitespace-separated 0/1 text (.amat)") from None
    if not text.strip():
        raise ValueError(f"{path}: text file has no data lines")
    try:  # fast path; on failure, find the line at fault below
        arr = np.loadtxt(io.StringIO(text), dtype=np.float32, ndmin=2, comments=None)
        if n_visible is None or arr.shape[1] == n_visible:
            return arr
    except ValueError:
        pass
    lines = [(i + 1, t) for i, t in enumerate(ln.split() for ln in text.splitlines()) if t]
    first, tokens0 = lines[0]
    width, source = (n_visible, "n_visible") if n_visible else (len(tokens0), f"line {first}")
    for lineno, tokens in lines:
        if len(tokens) != width:
            raise ValueError(f"{path}, line {lineno}: expected {width} tokens (from {source}), "
                             f"found {len(tokens)}")
        for col, tok in enumerate(tokens):
            try:
                float(tok)
            except ValueError:
                raise ValueError(f"{path}, line {lineno}, column {col + 1}: non-numeric token "
                                 f"{tok!r}") from None
    raise ValueError(f"{path}: cannot parse as whitespace-separated numbers")


def _load_file(path: str, n_visible: int | None, to_bits: Callable) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from e
    split = _split_of(path)
    if data.startswith((b"PK\x03\x04", b"\x93NUMPY")):
        # A truncated or corrupt .npz fails on opening or, member by member, on reading.
        broken = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
        try:
            obj = np.load(io.BytesIO(data), allow_pickle=False)
        except broken as e:
            raise ValueError(f"{path}: cannot read numpy file, corrupt or truncated ({e})") from e
        try:
            raw = ({split: obj} if isinstance(obj, np.ndarray)
                   else _pick(obj, path, split, archive=True))
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise ValueError(f"{path}: cannot read numpy file, corrupt or truncated ({e})") from e
    elif data.startswith(b"MATLAB ") or path.lower().endswith(".mat"):
        raw = _read_mat(data, path, split)
    elif len(data) >= 4 and data[:2] == b"\0\0" and data[2] in _IDX_DTYPES:
        raw = {split: to_bits(_read_idx(data, path))}
    else:
        raw = {split: _read_text(data, path, n_visible)}
    return {s: validate_binary(a, f"{path} [{s}]", n_visible) for s, a in raw.items()}


def load_binary(path: str | os.PathLike, *, n_visible: int | None = None,
                binarize_method: str = "threshold", threshold: float = 0.5,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Load binary images from a file or directory, whatever the format.

    Formats, recognised by content: ``.npz`` (keys ``train``/``valid``/``test``
    or ``x_train``/``x_valid``/``x_test``; ``y_*`` ignored) and ``.npy``; MATLAB
    v5 (split-named variables, else the single 2-D numeric array); idx
    (``*-idx3-ubyte``) grey images, binarized with ``binarize_method`` unless
    already 0/1; text with one image per line of whitespace-separated numbers
    (Larochelle's ``.amat``). Any of these may be gzipped. A directory is read
    through ``binarized_mnist_{train,valid,test}.amat`` (or ``.mat``) and
    ``{train,t10k}-images-idx3-ubyte[.gz]``. A file holding one array is named
    by its file name: ``train``, ``valid``, ``test`` (``t10k``), else ``data``.

    Args:
      path: a file or directory.
      n_visible: required image width (pixels per row), if known.
      binarize_method, threshold: how grey idx images become 0/1 (see :func:`binarize`).
      seed: seeds dynamic binarization (one Generator, drawn train, valid, test).

    Returns:
      dict split -> float32 0/1 array [num_examples, n_visible].

    Raises:
      FileNotFoundError: ``path`` does not exist, or a directory holds no known file.
      ValueError: naming the file and the problem (unknown format, wrong width,
        values other than 0/1 or NaN, truncated idx, bad text line).
    """
    path = os.fspath(path)
    rng = np.random.default_rng(seed)

    def to_bits(a: np.ndarray) -> np.ndarray:
        return a if np.isin(a, (0, 1)).all() else binarize(a, binarize_method, threshold, seed=rng)

    if not os.path.isdir(path):
        return _load_file(path, n_visible, to_bits)
    out = {}
    for split, names in _DIR_FILES.items():
        file = next((os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))),
                    None)
        if file is None:
            continue
        got = _load_file(file, n_visible, to_bits)
        if split not in got and len(got) != 1:
            raise ValueError(f"{file}: expected the {split} split, found arrays {sorted(got)}")
        out[split] = got.get(split, next(iter(got.values())))
    if not out:
        raise FileNotFoundError(f"{path}: no known data files; expected some of "
                                f"{[n for names in _DIR_FILES.values() for n in names]}, found "
                                f"{sorted(os.listdir(path))}")
    return out


def load_binarized_mnist(path: str | os.PathLike, *, n_visible: int = 784,
                         binarize_method: str = "threshold", threshold: float = 0.5,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Binarized MNIST from the user's files: :func:`load_binary` with width 784.

    Returns:
      dict split -> float32 0/1 array [num_examples, 784] (e.g. train 50000,
      valid 10000, test 10000 for Larochelle's split; train 60000, test 10000
      from the idx files).
    """
    return load_binary(path, n_visible=n_visible, binarize_method=binarize_method,
                       threshold=threshold, seed=seed)
