"""A loaded dataset as NumPy arrays, written to one .npz and read back without TensorFlow."""

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data.arrays import load_arrays, save_arrays, to_arrays


def dataset(n=10, batch_size=4, targets="array"):
    x = {"image": np.arange(n * 4, dtype="float32").reshape(n, 2, 2), "text": np.arange(n * 3, dtype="int32").reshape(n, 3)}
    y = np.arange(n, dtype="int32") if targets == "array" else {"a": np.arange(n), "b": -np.arange(n)}
    return x, y, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def test_to_arrays_joins_the_batches_in_order_and_stops_at_max_examples():
    x, y, data = dataset()
    inputs, targets = to_arrays(data)
    np.testing.assert_array_equal(inputs["image"], x["image"])
    np.testing.assert_array_equal(inputs["text"], x["text"])
    np.testing.assert_array_equal(targets, y)
    inputs, targets = to_arrays(data, max_examples=5)
    assert len(inputs["text"]) == len(targets) == 5 and targets.tolist() == [0, 1, 2, 3, 4]
    x, y, data = dataset(targets="dict")
    assert sorted(to_arrays(data)[1]) == ["a", "b"]
    inputs, targets = to_arrays(tf.data.Dataset.from_tensor_slices(x).batch(4))
    assert targets is None and len(inputs["image"]) == 10


def test_save_and_load_round_trip_keeps_dtypes_and_dict_targets(tmp_path):
    for kind in ("array", "dict"):
        x, y, _ = dataset(targets=kind)
        save_arrays(tmp_path / f"{kind}.npz", x, y)
        inputs, targets = load_arrays(tmp_path / f"{kind}.npz")
        assert {k: v.dtype for k, v in inputs.items()} == {k: v.dtype for k, v in x.items()}
        if kind == "dict":
            assert sorted(targets) == ["a", "b"]
            np.testing.assert_array_equal(targets["b"], y["b"])
        else:
            np.testing.assert_array_equal(targets, y)
    save_arrays(tmp_path / "no_targets.npz", x)
    assert load_arrays(tmp_path / "no_targets.npz")[1] is None


def test_bad_arguments_are_named_and_an_existing_file_is_kept(tmp_path):
    x, y, data = dataset()
    path = tmp_path / "train.npz"
    save_arrays(path, x, y)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"same number of examples.*'targets': 9"):
        save_arrays(path, x, y[:9])
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]
    with pytest.raises(ValueError, match="must end in .npz"):
        save_arrays(tmp_path / "train.npy", x, y)
    with pytest.raises(ValueError, match="batched tf.data.Dataset. Received: dict"):
        to_arrays(x)
    with pytest.raises(ValueError, match="must yield batched"):
        to_arrays(tf.data.Dataset.from_tensor_slices((x, y)))
    with pytest.raises(ValueError, match="max_examples"):
        to_arrays(data, max_examples=0)
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="holds no inputs.*not written by save_arrays"):
        load_arrays(tmp_path / "other.npz")


def test_reachable_from_mmzoo_data():
    import mmzoo

    assert mmzoo.data.arrays.load_arrays is load_arrays
    assert (mmzoo.data.to_arrays, mmzoo.data.save_arrays) == (to_arrays, save_arrays)
    assert {"load_arrays", "save_arrays", "to_arrays"} <= set(mmzoo.data.__all__)
