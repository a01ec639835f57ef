"""Tests for wsjax.loaders on tiny files written to a temporary directory."""

import gzip
import struct

import jax
import numpy as np
import pytest

from wsjax import loaders

try:
    import scipy.io as sio
except ImportError:  # the .mat tests skip, the others still run
    sio = None
needs_scipy = pytest.mark.skipif(sio is None, reason="scipy is not installed (MATLAB files)")
try:
    import sklearn.datasets  # noqa: F401
    have_sklearn = True
except ImportError:
    have_sklearn = False

WIDTH = 784


def _bits(n, seed, width=WIDTH):
    return np.random.default_rng(seed).integers(0, 2, (n, width)).astype(np.uint8)


def _write_amat(path, x):
    path.write_text("\n".join(" ".join(str(int(v)) for v in row) for row in x) + "\n")


def _idx_bytes(images):
    n, h, w = images.shape
    return struct.pack(">BBBBIII", 0, 0, 0x08, 3, n, h, w) + images.astype(np.uint8).tobytes()


def _grey(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)


class TestBinarize:
    def test_threshold_float_and_uint8(self):
        grey = np.array([[0.0, 0.2, 0.5, 0.51, 1.0]])
        np.testing.assert_array_equal(loaders.binarize(grey), [[0, 0, 0, 1, 1]])
        np.testing.assert_array_equal(loaders.binarize(grey, threshold=0.1), [[0, 1, 1, 1, 1]])
        out = loaders.binarize(np.array([0, 127, 128, 255], np.uint8))
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, [0, 0, 1, 1])

    def test_dynamic_matches_grey_mean_and_is_reproducible(self):
        grey = np.random.default_rng(0).uniform(0, 1, (200, 500))
        a = loaders.binarize(grey, "dynamic", seed=3)
        assert set(np.unique(a)) == {0.0, 1.0}
        assert abs(a.mean() - grey.mean()) < 0.005
        # Pixels on more often where they are lighter: per-level frequencies follow the grey level.
        assert abs(a[grey > 0.9].mean() - grey[grey > 0.9].mean()) < 0.01
        np.testing.assert_array_equal(a, loaders.binarize(grey, "dynamic", seed=3))
        assert (a != loaders.binarize(grey, "dynamic", seed=4)).any()

    def test_dynamic_with_jax_key(self):
        grey = np.full((50, 50), 0.3)
        for key in (jax.random.key(7), jax.random.PRNGKey(7)):
            a = loaders.binarize(grey, "dynamic", key=key)
            np.testing.assert_array_equal(a, loaders.binarize(grey, "dynamic", key=key))
            assert abs(a.mean() - 0.3) < 0.05
        assert (loaders.binarize(grey, "dynamic", key=jax.random.key(7))
                != loaders.binarize(grey, "dynamic", key=jax.random.key(8))).any()

    @pytest.mark.parametrize("x, match", [
        (np.array([0.2, np.nan]), "NaN"),
        (np.array([0.2, 1.5]), "1.5"),
        (np.array([-0.1, 0.5]), "-0.1"),
        (np.array([0, 3], np.int64), "3"),
    ])
    def test_bad_grey_levels(self, x, match):
        with pytest.raises(ValueError, match=match):
            loaders.binarize(x)

    def test_bad_method(self):
        with pytest.raises(ValueError, match="unknown method 'stochastic'"):
            loaders.binarize(np.zeros(3), "stochastic")


@pytest.mark.skipif(not have_sklearn, reason="scikit-learn is not installed")
class TestDigits:
    def test_shapes_and_values(self):
        d = loaders.load_digits()
        assert sorted(d) == ["test", "train"]
        assert d["train"].shape[0] + d["test"].shape[0] == 1797
        assert d["test"].shape == (round(0.2 * 1797), 64)
        for x in d.values():
            assert x.dtype == np.float32 and x.shape[1] == 64
            assert set(np.unique(x)) == {0.0, 1.0}

    def test_labels_follow_their_images(self):
        from sklearn import datasets

        d = loaders.load_digits(labels=True)
        raw = datasets.load_digits()
        bits = loaders.binarize(raw.data / 16.0)
        # Each image's label is the label of the raw image it came from.
        for split in ("train", "test"):
            for image, label in zip(d[split][:50], d[f"{split}_labels"][:50]):
                rows = np.flatnonzero((bits == image).all(axis=1))
                assert label in raw.target[rows]
        assert d["train_labels"].shape == (d["train"].shape[0],)

    def test_split_is_deterministic_and_seeded(self):
        a, b = loaders.load_digits(seed=1), loaders.load_digits(seed=1)
        np.testing.assert_array_equal(a["test"], b["test"])
        assert not np.array_equal(a["test"], loaders.load_digits(seed=2)["test"])

    def test_bad_fraction(self):
        with pytest.raises(ValueError, match="test_fraction"):
            loaders.load_digits(test_fraction=1.0)


class TestFiles:
    def test_npz_split_keys(self, tmp_path):
        data = {"train": _bits(5, 0), "valid": _bits(3, 1), "test": _bits(4, 2)}
        np.savez(tmp_path / "m.npz", **data)
        d = loaders.load_binarized_mnist(tmp_path / "m.npz")
        assert list(d) == ["train", "valid", "test"]
        for s in data:
            assert d[s].dtype == np.float32
            np.testing.assert_array_equal(d[s], data[s])

    def test_npz_x_y_keys(self, tmp_path):
        xtr, xte = _bits(6, 1, 20), _bits(2, 2, 20)
        np.savez_compressed(tmp_path / "m.npz", x_train=xtr, y_train=np.arange(6),
                            x_test=xte, y_test=np.arange(2))
        d = loaders.load_binary(tmp_path / "m.npz", n_visible=20)
        assert sorted(d) == ["test", "train"]
        np.testing.assert_array_equal(d["train"], xtr)
        np.testing.assert_array_equal(d["test"], xte)

    def test_amat_text(self, tmp_path):
        x = _bits(4, 3)
        _write_amat(tmp_path / "binarized_mnist_valid.amat", x)
        d = loaders.load_binarized_mnist(tmp_path / "binarized_mnist_valid.amat")
        assert list(d) == ["valid"]
        np.testing.assert_array_equal(d["valid"], x)

    @needs_scipy
    def test_mat_file(self, tmp_path):
        x = _bits(5, 4)
        sio.savemat(tmp_path / "b.mat", {"data": x, "note": "a string"})
        np.testing.assert_array_equal(loaders.load_binary(tmp_path / "b.mat")["data"], x)
        sio.savemat(tmp_path / "s.mat", {"train": x, "test": x[:2]})
        d = loaders.load_binarized_mnist(tmp_path / "s.mat")
        np.testing.assert_array_equal(d["test"], x[:2])

    @needs_scipy
    def test_mat_content_under_amat_name(self, tmp_path):
        x = _bits(3, 5)
        path = tmp_path / "binarized_mnist_test.amat"
        sio.savemat(path, {"binarized_mnist_test": x, "labels": np.ones((3, 1))})
        assert path.read_bytes().startswith(b"MATLAB 5.0 MAT-file")
        np.testing.assert_array_equal(loaders.load_binarized_mnist(path)["test"], x)

    @needs_scipy
    def test_mat_ambiguous(self, tmp_path):
        sio.savemat(tmp_path / "a.mat", {"first": _bits(2, 0), "second": _bits(2, 1)})
        with pytest.raises(ValueError, match="cannot tell which array.*'first'.*'second'"):
            loaders.load_binary(tmp_path / "a.mat")

    @pytest.mark.parametrize("gz", [False, True])
    def test_idx(self, tmp_path, gz):
        grey = _grey(3, 6)
        raw = _idx_bytes(grey)
        path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(raw) if gz else raw)
        d = loaders.load_binarized_mnist(path)
        np.testing.assert_array_equal(d["train"], (grey.reshape(3, WIDTH) > 127.5))
        dyn = loaders.load_binarized_mnist(path, binarize_method="dynamic", seed=1)["train"]
        assert set(np.unique(dyn)) == {0.0, 1.0}
        np.testing.assert_array_equal(
            dyn, loaders.load_binarized_mnist(path, binarize_method="dynamic", seed=1)["train"])

    def test_idx_already_binary_is_kept(self, tmp_path):
        x = _bits(2, 7).reshape(2, 28, 28)
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(x))
        d = loaders.load_binarized_mnist(tmp_path / "t10k-images-idx3-ubyte")
        np.testing.assert_array_equal(d["test"], x.reshape(2, WIDTH))

    @needs_scipy
    def test_directory(self, tmp_path):
        data = {"train": _bits(4, 8), "valid": _bits(2, 9), "test": _bits(3, 10)}
        _write_amat(tmp_path / "binarized_mnist_train.amat", data["train"])
        _write_amat(tmp_path / "binarized_mnist_valid.amat", data["valid"])
        sio.savemat(tmp_path / "binarized_mnist_test.amat", {"x": data["test"]})
        (tmp_path / "README").write_text("ignored")
        d = loaders.load_binarized_mnist(tmp_path)
        assert list(d) == ["train", "valid", "test"]
        for s in data:
            np.testing.assert_array_equal(d[s], data[s])

    def test_directory_of_idx(self, tmp_path):
        train, test = _grey(2, 11), _grey(1, 12)
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(train)))
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(test))
        d = loaders.load_binarized_mnist(tmp_path)
        assert sorted(d) == ["test", "train"]
        np.testing.assert_array_equal(d["test"], test.reshape(1, WIDTH) > 127.5)

    def test_empty_directory(self, tmp_path):
        (tmp_path / "other.txt").write_text("x")
        with pytest.raises(FileNotFoundError, match="binarized_mnist_train.amat.*other.txt"):
            loaders.load_binarized_mnist(tmp_path)


class TestBadFiles:
    def test_npz_wrong_width(self, tmp_path):
        np.savez(tmp_path / "m.npz", train=_bits(3, 0, 783))
        with pytest.raises(ValueError, match=r"m\.npz \[train\] has width 783.*784"):
            loaders.load_binarized_mnist(tmp_path / "m.npz")

    def test_npz_value_two(self, tmp_path):
        x = _bits(3, 0)
        x[1, 5] = 2
        np.savez(tmp_path / "m.npz", train=x)
        with pytest.raises(ValueError, match=r"non-binary values 2 .*row 1, column 5"):
            loaders.load_binarized_mnist(tmp_path / "m.npz")

    def test_npz_nan(self, tmp_path):
        x = _bits(3, 0).astype(np.float32)
        x[2, 0] = np.nan
        np.savez(tmp_path / "m.npz", test=x)
        with pytest.raises(ValueError, match="NaN"):
            loaders.load_binarized_mnist(tmp_path / "m.npz")

    def test_npz_unknown_keys(self, tmp_path):
        np.savez(tmp_path / "m.npz", a=_bits(2, 0), b=_bits(2, 1))
        with pytest.raises(ValueError, match="cannot tell which array"):
            loaders.load_binarized_mnist(tmp_path / "m.npz")

    def test_npz_of_images_and_labels_names_its_keys(self, tmp_path):
        # Once read as one split called "data" (the labels dropped), which the mnist task then
        # refused as "it holds ['data']"; the keys the file holds are what the user needs.
        np.savez(tmp_path / "mine.npz", images=_bits(4, 0), labels=np.arange(4))
        with pytest.raises(ValueError, match=r"mine\.npz: cannot tell which array holds the "
                           r"data.*found 'images' \(4, 784\) uint8, 'labels' \(4,\) int64"):
            loaders.load_binarized_mnist(tmp_path / "mine.npz")
        # A file name that names the split still decides, and a file of one array is its data.
        np.savez(tmp_path / "mine_train.npz", images=_bits(4, 0), labels=np.arange(4))
        np.testing.assert_array_equal(
            loaders.load_binarized_mnist(tmp_path / "mine_train.npz")["train"], _bits(4, 0))
        np.savez(tmp_path / "one.npz", images=_bits(4, 0))
        np.testing.assert_array_equal(loaders.load_binary(tmp_path / "one.npz")["data"],
                                      _bits(4, 0))

    @pytest.mark.parametrize("fraction", [0.5, 0.9])
    def test_truncated_npz_names_the_file(self, tmp_path, fraction):
        np.savez_compressed(tmp_path / "m.npz", train=_bits(50, 0), test=_bits(20, 1))
        data = (tmp_path / "m.npz").read_bytes()
        (tmp_path / "cut.npz").write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(ValueError,
                           match="cut.npz: cannot read numpy file, corrupt or truncated"):
            loaders.load_binarized_mnist(tmp_path / "cut.npz")

    @pytest.mark.parametrize("keep", [-3, -784, 10])  # data cut short; header cut short
    def test_truncated_idx(self, tmp_path, keep):
        raw = _idx_bytes(_grey(2, 0))
        (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:keep])
        with pytest.raises(ValueError, match="truncated idx file"):
            loaders.load_binarized_mnist(tmp_path / "train-images-idx3-ubyte")

    def test_truncated_idx_message_counts_bytes(self, tmp_path):
        raw = _idx_bytes(_grey(2, 0))
        (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-100]))
        with pytest.raises(ValueError, match=r"shape \(2, 28, 28\).*1568 bytes.*found 1468"):
            loaders.load_binarized_mnist(tmp_path / "x-idx3-ubyte.gz")

    def test_idx_labels_rejected(self, tmp_path):
        (tmp_path / "labels").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + b"\1\2\3")
        with pytest.raises(ValueError, match="1-D array of 3 entries"):
            loaders.load_binary(tmp_path / "labels")

    def test_amat_wrong_token_count(self, tmp_path):
        lines = [" ".join(["0"] * WIDTH)] * 3
        lines[2] = " ".join(["1"] * (WIDTH - 1))
        (tmp_path / "x.amat").write_text("\n".join(lines))
        with pytest.raises(ValueError, match=r"line 3: expected 784 tokens.*found 783"):
            loaders.load_binarized_mnist(tmp_path / "x.amat")

    def test_amat_width_against_n_visible(self, tmp_path):
        (tmp_path / "x.amat").write_text("0 1 1\n1 0 0\n")
        with pytest.raises(ValueError, match=r"line 1: expected 784 tokens \(from n_visible\)"):
            loaders.load_binarized_mnist(tmp_path / "x.amat")
        np.testing.assert_array_equal(loaders.load_binary(tmp_path / "x.amat")["data"],
                                      [[0, 1, 1], [1, 0, 0]])

    def test_amat_non_numeric(self, tmp_path):
        (tmp_path / "x.amat").write_text("0 1 1\n\n1 x 0\n")
        with pytest.raises(ValueError, match=r"line 3, column 2: non-numeric token 'x'"):
            loaders.load_binary(tmp_path / "x.amat")

    @pytest.mark.parametrize("text, match", [("0 2 1\n", "non-binary values 2"),
                                             ("0 nan 1\n", "NaN")])
    def test_amat_bad_values(self, tmp_path, text, match):
        (tmp_path / "x.amat").write_text(text)
        with pytest.raises(ValueError, match=match):
            loaders.load_binary(tmp_path / "x.amat", n_visible=3)

    def test_unrecognized_binary(self, tmp_path):
        (tmp_path / "x.bin").write_bytes(bytes([0xFF, 0xFE, 0x80, 0x00]))
        with pytest.raises(ValueError, match="unrecognized format"):
            loaders.load_binary(tmp_path / "x.bin")

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            loaders.load_binary(tmp_path / "nope.npz")
