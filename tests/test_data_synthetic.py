"""The embedded dataset: shaped for every model, deterministic, disjoint splits, ablations, fusion pays, and
the tasks (redundant, interaction, unreliable) are what their docstring says."""

import keras
import numpy as np
import pytest

import mmzoo
from helpers import build_small
from mmzoo.data import synthetic, synthetic_arrays
from mmzoo.data.embedded import TASKS, _generate
from mmzoo.registry import tensor_specs


@pytest.mark.parametrize("name", mmzoo.list_models())
def test_fits_every_model(name):
    model = build_small(name)
    _, dummy_y = mmzoo.dummy_batch(model, batch_size=6)
    for task in TASKS:
        x, y = synthetic_arrays(model, n=6, task=task)
        for key, (shape, dtype) in tensor_specs(model.input).items():
            assert x[key].shape == (6,) + shape and x[key].dtype == np.dtype(dtype), (task, key)
            assert np.all(np.isfinite(x[key])), (task, key)
        if dummy_y is None:
            assert y is None
        elif isinstance(dummy_y, dict):
            assert sorted(y) == sorted(dummy_y)
            for key in y:
                assert y[key].shape == dummy_y[key].shape and y[key].dtype == dummy_y[key].dtype, (task, key)
        else:
            assert y.shape == dummy_y.shape and y.dtype == dummy_y.dtype, task


@pytest.mark.parametrize("name", mmzoo.list_models())
def test_document_defaults_give_finite_data(name):
    # The benchmarks train at the documents' sizes: pretrained_fusion's 224-bin spectrogram
    # once pooled empty frequency bands into NaN.
    model = mmzoo.build(name, compile=False)
    x, _ = synthetic_arrays(model, n=2)
    for key, value in x.items():
        assert np.all(np.isfinite(value)), key
        if value.dtype.kind == "f" and value.shape[1:] == (224, 224, 1):
            assert np.ptp(value) > 0, key  # a spectrogram, not a constant


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
        ({"reliability": "high"}, r"`reliability` must be in \(0, 1\]. Received: reliability='high'"),
        ({"task": "parity"},
         "`task` must be one of 'redundant', 'interaction', 'unreliable'. Received: task='parity'"),
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


# --- the tasks ------------------------------------------------------------------------------


def _every_modality_model(num_classes=3):
    """fusion_classifier on one input of each renderer: image, waveform, token ids, features, video."""
    return mmzoo.build(
        "fusion_classifier",
        inputs={"image": (16, 16, 1), "audio": (2000,), "text": (32,), "features": (32,), "video": (3, 8, 8, 1)},
        num_classes=num_classes, width=8, image_filters=(4,), audio_filters=(4,), num_mel_bins=8,
        vocabulary_size=200, embedding_size=4, compile=False,
    )


def test_the_default_task_is_todays_data():
    model = build_small("emotion")
    x, y = synthetic_arrays(model, n=64, seed=2)
    explicit, explicit_y = synthetic_arrays(model, n=64, seed=2, task="redundant", reliability=0.75)
    for key in x:
        np.testing.assert_array_equal(x[key], explicit[key])
    np.testing.assert_array_equal(y, explicit_y)
    assert 0.15 < np.mean([~x[key].reshape(64, -1).any(axis=1) for key in x]) < 0.35  # reliability 0.75


@pytest.mark.parametrize("task", TASKS)
def test_each_task_same_seed_same_data_other_seed_other_data(task):
    model = build_small("emotion")
    a, ya = synthetic_arrays(model, n=32, seed=3, task=task)
    b, yb = synthetic_arrays(model, n=32, seed=3, task=task)
    c, _ = synthetic_arrays(model, n=32, seed=4, task=task)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], c[key]), key
    np.testing.assert_array_equal(ya, yb)
    dataset = synthetic(model, n=32, seed=3, task=task, batch_size=32, shuffle=False)
    np.testing.assert_array_equal(next(iter(dataset))[1].numpy(), ya)  # the dataset is the arrays


def test_with_one_input_every_task_is_the_redundant_one():
    x, y = synthetic_arrays("mlp", n=64)
    for task in ("interaction", "unreliable"):
        other, other_y = synthetic_arrays("mlp", n=64, task=task, reliability=0.75)
        np.testing.assert_array_equal(x["features"], other["features"])
        np.testing.assert_array_equal(y, other_y)


def test_interaction_no_modality_tells_the_label_all_of_them_do():
    """Label = sum of the codes mod 3: each code, and each pair of codes, is independent of the label."""
    n, classes = 6000, 3
    x, _, latents = _generate(build_small("emotion"), n, "train", 0, (), 1.0, "interaction")
    labels, codes = latents["labels"], latents["codes"]
    assert latents["classes"] == classes and sorted(codes) == ["audio", "image", "text"]
    np.testing.assert_array_equal(sum(codes.values()) % classes, labels)  # all together: the label
    assert not any(latents["missing"][key].any() for key in codes)  # reliability 1
    for key, code in codes.items():
        assert not np.array_equal(code, labels), key
        # P(label | code) is 1/3 for every code: the joint counts match the product of the marginals
        joint = np.histogram2d(code, labels, bins=classes)[0] / n
        np.testing.assert_allclose(joint, np.full((classes, classes), 1 / classes**2), atol=0.01, err_msg=key)
    for first, second in (("audio", "image"), ("audio", "text"), ("image", "text")):
        pair = codes[first] * classes + codes[second]
        joint = np.histogram2d(pair, labels, bins=(classes**2, classes))[0] / n
        np.testing.assert_allclose(joint, np.full(joint.shape, 1 / classes**3), atol=0.01, err_msg=(first, second))
    # what the inputs show is the code, not the label: the mean image of a code differs from another code's
    images = x["image"].reshape(n, -1)
    by_code = [images[codes["image"] == c].mean(axis=0) for c in range(classes)]
    by_label = [images[labels == c].mean(axis=0) for c in range(classes)]
    assert np.abs(by_code[0] - by_code[1]).max() > 0.3
    assert np.abs(by_label[0] - by_label[1]).max() < 0.1


def test_interaction_a_linear_model_of_the_inputs_is_at_chance_one_of_their_products_is_not():
    """On rendered data: a logistic regression on the concatenated inputs (additive) is at chance;
    one on the outer product of the inputs (tensor fusion) reads the parity."""
    from sklearn.linear_model import LogisticRegression

    model = build_small("concat_fusion")  # two feature vectors, binary labels

    def features(split):
        x, y = synthetic_arrays(model, n=2000, split=split, task="interaction", reliability=1.0)
        a, b = (np.concatenate([np.ones((2000, 1)), x[key]], axis=1) for key in ("image_input", "text_input"))
        return np.concatenate([a, b], axis=1), (a[:, :, None] * b[:, None, :]).reshape(2000, -1), y[:, 0]

    train, test = features("train"), features("test")
    concatenated = LogisticRegression(max_iter=2000).fit(train[0], train[2]).score(test[0], test[2])
    outer = LogisticRegression(max_iter=2000, C=0.1).fit(train[1], train[2]).score(test[1], test[2])
    assert 0.45 < concatenated < 0.55, concatenated
    assert outer > 0.85, outer


def _corruption_score(values, key, model):
    """Per example, how corrupted an input looks: the spread of its values; for token ids,
    the share of words that do not come from the most common block of the vocabulary."""
    if values.dtype.kind == "f":
        return values.reshape(len(values), -1).std(axis=1)
    low, high = model.token_ranges[key]
    block = max(1, min(20, (high - low) // 3))
    return np.array([1 - np.bincount((row[row > 0] - low) // block).max() / (row > 0).sum() for row in values])


def test_unreliable_one_clean_modality_per_example_the_others_visibly_corrupted():
    model = _every_modality_model()
    n, classes = 3000, 3
    x, _, latents = _generate(model, n, "train", 0, (), 1.0, "unreliable")
    labels, codes, corrupted = latents["labels"], latents["codes"], latents["corrupted"]
    keys = sorted(codes)
    clean = np.stack([~corrupted[key] for key in keys], axis=1)
    np.testing.assert_array_equal(clean.sum(axis=1), 1)  # exactly one clean modality per example
    np.testing.assert_allclose(clean.mean(axis=0), 1 / len(keys), atol=0.03)  # each one, by turns
    for key in keys:
        np.testing.assert_array_equal(codes[key][~corrupted[key]], labels[~corrupted[key]])  # clean: the label
        agree = (codes[key][corrupted[key]] == labels[corrupted[key]]).mean()
        assert abs(agree - 1 / classes) < 0.04, (key, agree)  # corrupted: a random class
        # what looks corrupted can be seen in the input alone: the scores of corrupted examples are
        # above those of clean ones in nearly every pair (the area under the ROC curve)
        score = _corruption_score(x[key], key, model)
        auc = (score[corrupted[key]][:, None] > score[~corrupted[key]][None, :]).mean()
        assert auc > 0.95, (key, auc)


def test_unreliable_with_missing_modalities():
    """``reliability`` applies to every task: a modality goes missing (all zeros) whatever it shows."""
    x, _, latents = _generate(build_small("emotion"), 2000, "train", 0, (), 0.5, "unreliable")
    for key, values in x.items():
        empty = ~values.reshape(2000, -1).any(axis=1)
        np.testing.assert_array_equal(empty, latents["missing"][key])
        assert 0.45 < empty.mean() < 0.55, key


def test_the_command_line_trains_on_a_task(capsys, monkeypatch):
    """``mmzoo train --task T --reliability R`` trains and tests on that task (what ``make run`` does)."""
    import mmzoo.data
    from mmzoo.cli import TASKS as CLI_TASKS
    from mmzoo.cli import main

    assert CLI_TASKS == TASKS  # the command line's copy (it imports no TensorFlow to parse its options)
    real, calls = mmzoo.data.synthetic, []

    def spy(*args, **kwargs):
        calls.append((kwargs["split"], kwargs["task"], kwargs["reliability"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(mmzoo.data, "synthetic", spy)
    argv = ["train", "concat_fusion", "--samples", "128", "--epochs", "1", "--export-dir", "", "--verbose", "0"]
    assert main(argv + ["--task", "unreliable", "--reliability", "1"]) == 0
    assert "test: accuracy=" in capsys.readouterr().out
    assert sorted(calls) == [("test", "unreliable", 1.0), ("train", "unreliable", 1.0),
                             ("validation", "unreliable", 1.0)]
    calls.clear()
    assert main(argv) == 0  # by default: the redundant task, reliability 0.75
    assert {call[1:] for call in calls} == {("redundant", 0.75)}
    assert main(["train", "concat_fusion", "--data", "cifar10", "--task", "interaction"]) == 2
    assert "--task applies to --data synthetic; received --data 'cifar10'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["train", "concat_fusion", "--reliability", "1.5"])
    assert raised.value.code == 2
    assert "must be a probability in (0, 1], got '1.5'" in capsys.readouterr().err


def test_every_exported_data_name_is_what_it_says():
    import types

    import mmzoo.data

    for name in mmzoo.data.__all__:
        value = getattr(mmzoo.data, name)
        assert not isinstance(value, types.ModuleType), name
        assert value.__name__ == name, name


@pytest.mark.parametrize("task", ["redundant", "interaction", "unreliable"])
def test_presence_flags_say_which_modalities_are_missing(task):
    """A model built with missing_modalities=True gets 0/1 flags that match its all-zero (missing) inputs."""
    model = build_small("emotion", missing_modalities=True)
    x, y = synthetic_arrays(model, n=200, task=task)
    for key in ("text", "audio", "image"):
        flag = x[f"{key}_present"]
        assert flag.dtype == np.float32 and set(np.unique(flag)) == {0.0, 1.0}
        empty = ~x[key].reshape(len(flag), -1).any(axis=1)
        np.testing.assert_array_equal(flag == 0, empty)
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])
