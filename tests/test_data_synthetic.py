"""The embedded dataset: shaped for every model, deterministic, disjoint splits, ablations, and fusion pays."""

import keras
import numpy as np
import pytest

import mmzoo
from helpers import build_small
from mmzoo.data import synthetic, synthetic_arrays
from mmzoo.registry import tensor_specs


@pytest.mark.parametrize("name", mmzoo.list_models())
def test_fits_every_model(name):
    model = build_small(name)
    x, y = synthetic_arrays(model, n=6)
    _, dummy_y = mmzoo.dummy_batch(model, batch_size=6)
    for key, (shape, dtype) in tensor_specs(model.input).items():
        assert x[key].shape == (6,) + shape and x[key].dtype == np.dtype(dtype), key
    if dummy_y is None:
        assert y is None
    elif isinstance(dummy_y, dict):
        assert sorted(y) == sorted(dummy_y)
        for key in y:
            assert y[key].shape == dummy_y[key].shape and y[key].dtype == dummy_y[key].dtype, key
    else:
        assert y.shape == dummy_y.shape and y.dtype == dummy_y.dtype


def test_same_seed_same_data_other_seed_other_data():
    a, ya = synthetic_arrays("attention_fusion", n=32, seed=3)
    b, yb = synthetic_arrays("attention_fusion", n=32, seed=3)
    c, _ = synthetic_arrays("attention_fusion", n=32, seed=4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a["image_input"], c["image_input"])


def test_splits_never_share_examples():
    model = build_small("emotion")
    rows = {}
    for split in ("train", "validation", "test"):
        x, _ = synthetic_arrays(model, n=300, split=split)
        present = x["image"][x["image"].any(axis=(1, 2, 3))]  # a missing image is all zeros in every split
        rows[split] = {image.tobytes() for image in present}
        assert len(rows[split]) == len(present) > 200
    assert not rows["train"] & rows["validation"]
    assert not rows["train"] & rows["test"]
    assert not rows["validation"] & rows["test"]


def test_labels_and_modalities_are_learnable_but_not_given_away():
    x, y = synthetic_arrays("mlp", n=2000, seed=0)
    assert 0.4 < y.mean() < 0.6  # balanced binary labels
    # each modality is present with probability `reliability` only (else all zeros)
    x, y = synthetic_arrays("concat_fusion", n=4000, seed=0, reliability=0.5)
    prototypes = [x["image_input"][y[:, 0] == c].mean(axis=0) for c in (0, 1)]
    nearest = np.argmin([np.linalg.norm(x["image_input"] - p, axis=1) for p in prototypes], axis=0)
    agreement = (nearest == y[:, 0]).mean()
    assert 0.65 < agreement < 0.85  # 0.5 + 0.5 / 2 = 0.75 expected
    assert 0.45 < (~x["image_input"].any(axis=1)).mean() < 0.55  # half the images are missing


def _shape_centres(images):
    """Per image, the centre (row, column), as fractions of the height and width, of its bright shape.

    Every shape is drawn in a colour with at least one channel near 1; the background stays
    below 0.35 plus a little noise, so the pixels above 0.7 in some channel are the shape's.
    """
    mask = images.max(axis=-1) > 0.7
    rows = np.arange(images.shape[1])[None, :, None] / images.shape[1]
    cols = np.arange(images.shape[2])[None, None, :] / images.shape[2]
    count = mask.sum(axis=(1, 2))
    return np.stack([(mask * rows).sum(axis=(1, 2)) / count, (mask * cols).sum(axis=(1, 2)) / count], axis=1)


def test_the_shape_position_depends_on_the_class_with_few_classes():
    """The docs say the image's shape sits at a class-dependent position: true for 10 classes too."""
    x, y = synthetic_arrays("cifar_multimodal", n=2000, seed=0)  # 10 classes
    present = x["image"].any(axis=(1, 2, 3))
    centres = _shape_centres(x["image"][present])
    labels = y[present]
    quadrants = set()
    for label in range(10):
        centre = centres[labels == label].mean(axis=0)
        assert np.all(np.abs(centre - 0.5) > 0.1), (label, centre)  # near a quadrant's centre, not the middle
        quadrants.add(tuple(centre > 0.5))
    assert len(quadrants) == 4, quadrants  # the shapes of the 10 classes fill all four quadrants
    # classes 0 and 1, the two of a binary task, already sit in different quadrants
    assert np.abs(centres[labels == 0].mean(axis=0) - centres[labels == 1].mean(axis=0)).max() > 0.3


def test_colour_kind_and_position_tell_up_to_128_classes_apart():
    """Each class gets its own (colour, kind, position): retrieval's 64 concepts need them all."""
    from mmzoo.data.embedded import PALETTE, _shape_layout

    classes = np.arange(8 * 4 * 4)  # twice retrieval's 64 concepts: 8 colours, 4 kinds, 4 positions
    kinds, quadrants = _shape_layout(classes)
    assert set(kinds.tolist()) == set(quadrants.tolist()) == {0, 1, 2, 3}
    assert len(set(zip((classes % len(PALETTE)).tolist(), kinds.tolist(), quadrants.tolist()))) == 128


def test_drop_modalities_zero_fills_only_those_inputs():
    x, y = synthetic_arrays("emotion", n=16, drop_modalities=("audio", "image"))
    full, full_y = synthetic_arrays("emotion", n=16)
    assert not x["audio"].any() and not x["image"].any()
    np.testing.assert_array_equal(x["text"], full["text"])
    np.testing.assert_array_equal(y, full_y)


def test_targets_follow_the_outputs():
    _, mimo_y = synthetic_arrays(build_small("mimo"), n=64)
    assert sorted(mimo_y) == ["audio", "fused", "image", "text"]
    assert all(np.array_equal(mimo_y["text"], mimo_y[k]) for k in mimo_y)  # one label for every head
    _, tasks = synthetic_arrays("multitask_shared", n=400)
    assert tasks["task1"].shape == (400, 1) and tasks["task1"].dtype == np.float32
    assert tasks["task2"].shape == (400,) and set(np.unique(tasks["task2"])) == {0, 1}
    assert abs(np.corrcoef(tasks["task1"][:, 0], tasks["task2"])[0, 1]) < 0.2  # independent tasks
    x, y = synthetic_arrays(build_small("cross_modal_retrieval"), n=8)
    assert y is None and sorted(x) == ["audio", "image", "text"]


def test_dataset_batches_and_shuffles_the_training_split():
    model = build_small("attention_fusion")
    batches = list(synthetic(model, n=10, batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    first = [b[1].numpy() for b in synthetic(model, n=64, split="test", batch_size=64)]
    second = [b[1].numpy() for b in synthetic(model, n=64, split="test", batch_size=64)]
    np.testing.assert_array_equal(first[0], second[0])  # evaluation splits are not shuffled
    retrieval = synthetic(build_small("cross_modal_retrieval"), n=4, batch_size=2)
    assert isinstance(next(iter(retrieval)), dict)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "dev"}, "`split` must be one of 'train', 'validation', 'test'"),
        ({"n": 0}, "`n` must be a positive integer"),
        ({"drop_modalities": ("sound",)}, "Cannot drop \\['sound'\\].*'image'"),
        ({"reliability": 0}, r"`reliability` must be in \(0, 1\]. Received: reliability=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic_arrays(build_small("emotion"), **kwargs)
    with pytest.raises(ValueError, match="registered model name or a model built by mmzoo"):
        synthetic_arrays(keras.Sequential([keras.layers.Dense(1)]))


def _accuracy(dropped, reliability=0.6, name="emotion", epochs=10):
    keras.utils.set_random_seed(0)
    model = build_small(name)
    train = synthetic(model, n=2048, drop_modalities=dropped, batch_size=64, reliability=reliability)
    test = synthetic(model, n=1024, split="test", drop_modalities=dropped, batch_size=256, reliability=reliability)
    model.fit(train, epochs=epochs, verbose=0)
    return model.evaluate(test, verbose=0, return_dict=True)["accuracy"]


@pytest.mark.slow
def test_fusing_three_modalities_beats_any_single_one():
    """Every modality alone is informative, but fusing all three is better by at least 3 points.

    With reliability 0.6 and 3 classes a single modality can reach at most
    0.6 + 0.4 / 3 = 0.73; with three modalities the class is missing from all of them
    only 6.4% of the time, so at most 0.936 + 0.064 / 3 = 0.96. The test split has 1024
    examples (a standard error of about 0.014 on accuracy).
    """
    inputs = ("audio", "image", "text")
    fused = _accuracy(())
    singles = {keep: _accuracy(tuple(k for k in inputs if k != keep)) for keep in inputs}
    assert all(accuracy > 0.5 for accuracy in singles.values()), singles  # chance: 1/3
    assert fused >= max(singles.values()) + 0.03, (fused, singles)


@pytest.mark.slow
def test_fusing_two_modalities_beats_either_one():
    """Two modalities, two classes, reliability 0.6: either alone reaches at most 0.6 + 0.4 / 2 = 0.8,
    both 1 - 0.16 / 2 = 0.92 (the class is missing from both 16% of the time)."""
    fused = _accuracy((), name="concat_fusion")
    singles = [_accuracy((drop,), name="concat_fusion") for drop in ("image_input", "text_input")]
    assert all(accuracy > 0.6 for accuracy in singles), singles  # chance: 0.5
    assert fused >= max(singles) + 0.05, (fused, singles)


def test_every_exported_data_name_is_what_it_says():
    import types

    import mmzoo.data

    for name in mmzoo.data.__all__:
        value = getattr(mmzoo.data, name)
        assert not isinstance(value, types.ModuleType), name
        assert value.__name__ == name, name
