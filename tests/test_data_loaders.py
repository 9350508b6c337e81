"""The multimodal loaders on real files written into tmp_path, and CIFAR-10 under TFDS mock data."""

import csv
import json
import os
import warnings

import numpy as np
import pytest
import soundfile
import tensorflow as tf
import tensorflow_datasets as tfds

import mmzoo
from mmzoo.data.errors import UnreadableFileError
from mmzoo.data.loaders import CIFAR10_CLASS_NAMES, cifar10, from_directory, from_manifest

SAMPLE_RATE = 8000
AUDIO_FORMATS = [  # (extension, soundfile subtype, file sample rate)
    ("wav", "PCM_16", 8000),
    ("wav", "FLOAT", 8000),
    ("flac", "PCM_16", 16000),
]


def write_png(path, array):
    path.write_bytes(tf.io.encode_png(np.asarray(array, np.uint8)).numpy())


def write_jpeg(path, array):
    path.write_bytes(tf.io.encode_jpeg(np.asarray(array, np.uint8), quality=100).numpy())


def pixel(label, index):
    """The grey level that identifies example ``index`` of class ``label`` in its image."""
    return 20 + 60 * label + 10 * index


def audio_samples(index, rate):
    """Example ``index`` has 0.1 s + index * 10 ms of a constant 0.25 signal."""
    return np.full(int(rate * (0.1 + 0.01 * index)), 0.25, np.float32)


def write_example(folder, stem, label, index, modalities=("image", "text", "audio"), class_name=None):
    folder.mkdir(parents=True, exist_ok=True)
    if "image" in modalities:
        writer, extension = (write_png, "png") if index % 2 == 0 else (write_jpeg, "jpg")
        writer(folder / f"{stem}.{extension}", np.full((10, 12, 3), pixel(label, index)))
    if "text" in modalities:
        (folder / f"{stem}.txt").write_text(f"{class_name} 这是 word{label}x{index}\n", encoding="utf-8")
    if "audio" in modalities:
        extension, subtype, rate = AUDIO_FORMATS[index % len(AUDIO_FORMATS)]
        soundfile.write(folder / f"{stem}.{extension}", audio_samples(index, rate), rate, subtype=subtype)


def make_tree(root, per_class=4, classes=("cat", "dog"), modalities=("image", "text", "audio")):
    for label, name in enumerate(classes):
        for index in range(per_class):
            write_example(root / name, f"ex{index}", label, index, modalities, class_name=name)
    return root


def snapshot(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


def examples(dataset):
    """All (features, label) of a dataset, unbatched, as NumPy."""
    out = []
    for features, labels in dataset.unbatch():
        out.append(({k: v.numpy() for k, v in features.items()}, int(labels.numpy())))
    return out


def index_from_image(image, label):
    return int(round((image[0, 0, 0] * 255 - 20 - 60 * label) / 10))


def small(**overrides):
    kwargs = dict(image_size=(8, 8), sequence_length=6, sample_rate=SAMPLE_RATE, audio_length=1000, batch_size=3)
    return {**kwargs, **overrides}


def test_from_directory_yields_every_modality_with_the_right_label(tmp_path):
    root = make_tree(tmp_path / "data")
    before = snapshot(root)
    data = from_directory(root, validation_split=0.25, **small())
    train, validation = data
    assert data.class_names == ["cat", "dog"] and train.class_names == ["cat", "dog"]

    features, labels = train.element_spec
    assert sorted(features) == ["audio", "audio_mask", "image", "text"]
    assert features["image"].shape.as_list() == [None, 8, 8, 3] and features["image"].dtype == tf.float32
    assert features["text"].shape.as_list() == [None, 6] and features["text"].dtype == tf.int32
    assert features["audio"].shape.as_list() == [None, 1000] and features["audio"].dtype == tf.float32
    assert features["audio_mask"].shape.as_list() == [None, 1000]
    assert labels.dtype == tf.int32

    vocabulary = data.vectorizer.get_vocabulary()
    seen = []
    for split in (train, validation):
        for x, label in examples(split):
            index = index_from_image(x["image"], label)  # the image says which example this is
            seen.append((label, index))
            assert 0.0 <= x["image"].min() and x["image"].max() <= 1.0
            assert x["text"][0] == vocabulary.index(data.class_names[label])  # its own caption
            real = min(1000, int(SAMPLE_RATE * (0.1 + 0.01 * index)))
            assert x["audio_mask"].sum() == pytest.approx(real, abs=2)  # resampled FLAC: +-1 sample
            # A constant 0.25 (resampling rings at the edges of the FLAC clips), then zeros.
            np.testing.assert_allclose(x["audio"][20 : real - 20], 0.25, atol=5e-3)
            assert np.all(x["audio"][real + 2 :] == 0.0)
    assert sorted(seen) == [(label, i) for label in (0, 1) for i in range(4)]
    assert len(data.validation_examples) == 2 and len(data.train_examples) == 6
    assert data.skipped == []
    assert snapshot(root) == before  # the loader wrote nothing


def test_split_is_seeded_disjoint_complete_and_stratified(tmp_path):
    root = make_tree(tmp_path / "data", per_class=10, modalities=("text",))
    everything = {str(root / name / f"ex{i}") for name in ("cat", "dog") for i in range(10)}

    first = from_directory(root, validation_split=0.2, seed=0, batch_size=4)
    again = from_directory(root, validation_split=0.2, seed=0, batch_size=4)
    other = from_directory(root, validation_split=0.2, seed=1, batch_size=4)
    assert (first.train_examples, first.validation_examples) == (again.train_examples, again.validation_examples)
    assert set(first.validation_examples) != set(other.validation_examples)
    for data in (first, other):
        train, validation = set(data.train_examples), set(data.validation_examples)
        assert not train & validation and train | validation == everything
        per_class = [sum(f"/{name}/" in e for e in validation) for name in ("cat", "dog")]
        assert per_class == [2, 2]  # stratified: 20% of each class
        # The datasets hold exactly these examples.
        assert sum(1 for _ in data.validation.unbatch()) == 4
        assert sum(1 for _ in data.train.unbatch()) == 16
        labels = [int(y) for _, y in data.validation.unbatch()]
        assert labels == [int("/dog/" in e) for e in data.validation_examples]

    cached = from_directory(root, validation_split=0.2, seed=0, batch_size=4, cache=True)
    epochs = [sorted(bytes(t) for f, _ in cached.train.unbatch() for t in [f["text"].numpy()]) for _ in range(2)]
    assert epochs[0] == epochs[1] and len(epochs[0]) == 16

    unstratified = from_directory(root, validation_split=0.3, seed=2, stratify=False, batch_size=4)
    assert len(unstratified.validation_examples) == 6
    assert from_directory(root, validation_split=0.0, batch_size=4).validation is None


def test_vectorizer_is_adapted_on_the_training_split_only(tmp_path):
    root = make_tree(tmp_path / "data", per_class=5, modalities=("text",))
    data = from_directory(root, validation_split=0.4, sequence_length=4, batch_size=None)
    vocabulary = data.vectorizer.get_vocabulary()

    def unique_word(name):  # the word only this example's caption has
        label = ["cat", "dog"].index(os.path.basename(os.path.dirname(name)))
        return f"word{label}x{name[-1]}"

    assert all(unique_word(name) in vocabulary for name in data.train_examples)
    assert not any(unique_word(name) in vocabulary for name in data.validation_examples)
    assert {int(f["text"].numpy()[2]) for f, _ in data.validation} == {1}  # out of vocabulary
    assert min(int(f["text"].numpy()[2]) for f, _ in data.train) >= 2


def test_raw_text_mode_unbatched_and_categorical_labels(tmp_path):
    root = make_tree(tmp_path / "data", per_class=2, modalities=("image", "text"))
    data = from_directory(root, text_mode="raw", batch_size=None, validation_split=0.0, shuffle=False,
                          label_mode="categorical", image_size=(6, 6))
    assert data.vectorizer is None
    features, label = data.train.element_spec
    assert features["text"].dtype == tf.string and features["text"].shape == ()
    assert label.shape == (2,) and label.dtype == tf.float32
    rows = [(f["text"].numpy().decode("utf-8"), y.numpy().tolist()) for f, y in data.train]
    assert rows[0] == ("cat 这是 word0x0", [1.0, 0.0])
    assert rows[-1] == ("dog 这是 word1x1", [0.0, 1.0])


def test_character_split_for_chinese_captions(tmp_path):
    root = tmp_path / "data"
    for label, (name, text) in enumerate([("a", "这是一段文本数据"), ("b", "这是另一段文本数据")]):
        (root / name).mkdir(parents=True)
        (root / name / "0.txt").write_text(text, encoding="utf-8")
    data = from_directory(root, text_split="character", sequence_length=10, validation_split=0.0,
                          batch_size=None, shuffle=False)
    ids = [f["text"].numpy() for f, _ in data.train]
    assert [int((row > 0).sum()) for row in ids] == [8, 9]


def test_unreadable_and_missing_files_are_skipped_with_one_warning(tmp_path):
    root = make_tree(tmp_path / "data", per_class=6)
    cat, dog = root / "cat", root / "dog"
    png = (cat / "ex0.png").read_bytes()
    (cat / "ex0.png").write_bytes(png[: len(png) // 2])  # truncated PNG
    (cat / "ex3.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")  # bad WAV header
    (dog / "ex1.txt").write_bytes("caf\xe9".encode("latin-1"))  # not UTF-8
    (dog / "ex2.txt").write_text("   \n", encoding="utf-8")  # empty caption
    (dog / "ex4.png").unlink()  # missing image
    bad = [cat / "ex0.png", cat / "ex3.wav", dog / "ex1.txt", dog / "ex2.txt", dog / "ex4"]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = from_directory(root, **small())
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("Skipped 5 unreadable files")
    for path in bad:
        assert str(path) in messages[0]
    assert "missing image" in messages[0] and "not UTF-8" in messages[0] and "empty" in messages[0]
    assert len(data.skipped) == 5

    kept = data.train_examples + data.validation_examples
    assert len(kept) == 12 - 5
    assert not {str(cat / "ex0"), str(cat / "ex3"), str(dog / "ex1"), str(dog / "ex2"), str(dog / "ex4")} & set(kept)
    assert sum(1 for _ in data.train.unbatch()) + sum(1 for _ in data.validation.unbatch()) == 7


@pytest.mark.parametrize("damage", ["image", "audio", "text", "missing"])
def test_strict_raises_naming_the_file(tmp_path, damage):
    root = make_tree(tmp_path / "data", per_class=3)
    target = {
        "image": root / "dog" / "ex2.png",
        "audio": root / "dog" / "ex1.wav",
        "text": root / "dog" / "ex0.txt",
        "missing": root / "dog" / "ex0.txt",
    }[damage]
    if damage == "missing":
        target.unlink()
    else:
        target.write_bytes(b"\xff\xfe\x00garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # strict mode warns about nothing
        with pytest.raises(UnreadableFileError) as info:
            from_directory(root, strict=True, **small())
    assert info.value.path == str(target)
    assert str(target) in str(info.value)


def test_ambiguous_example_is_skipped(tmp_path):
    root = make_tree(tmp_path / "data", per_class=2, modalities=("image",))
    write_png(root / "cat" / "ex1.png", np.zeros((4, 4, 3)))  # ex1.jpg exists too
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable files.*ambiguous.*ex1.jpg, ex1.png"):
        data = from_directory(root, validation_split=0.0, **small())
    assert str(root / "cat" / "ex1") not in data.train_examples and len(data.train_examples) == 3


@pytest.mark.parametrize("modality", ["audio", "image"])
def test_a_file_broken_after_loading_fails_naming_it(tmp_path, modality):
    root = make_tree(tmp_path / "data", per_class=2, modalities=(modality,))
    data = from_directory(root, validation_split=0.0, shuffle=False, **small())
    assert sum(1 for _ in data.train.unbatch()) == 4  # an epoch runs while the files are intact
    broken = root / "dog" / ("ex1.wav" if modality == "audio" else "ex0.png")
    broken.write_bytes(broken.read_bytes()[:-40])  # truncated after the check
    with pytest.raises(tf.errors.OpError, match=f"{broken.name}|changed since the loader checked it.*{broken.name}"):
        for _ in data.train:
            pass


def test_unicode_paths_empty_validation_and_a_saved_vectorizer(tmp_path):
    from mmzoo.data.text import load_text_vectorizer, save_text_vectorizer

    root = tmp_path / "数据"
    for label, name in enumerate(["猫", "狗"]):
        write_example(root / name, "例子", label, 0, modalities=("image", "text"), class_name=name)
    data = from_directory(root, validation_split=0.2, image_size=(4, 4), sequence_length=5, batch_size=2)
    assert data.class_names == ["狗", "猫"]  # sorted by code point
    assert data.validation_examples == [] and sum(1 for _ in data.validation.unbatch()) == 0
    x, y = next(iter(data.train))
    assert x["image"].shape == (2, 4, 4, 3) and sorted(y.numpy().tolist()) == [0, 1]

    path = save_text_vectorizer(data.vectorizer, tmp_path / "vectorizer.json")
    again = from_directory(root, vectorizer=load_text_vectorizer(path), validation_split=0.0,
                           image_size=(4, 4), sequence_length=99, batch_size=2, shuffle=False)
    assert again.vectorizer.get_vocabulary() == data.vectorizer.get_vocabulary()
    assert again.train.element_spec[0]["text"].shape.as_list() == [None, 5]  # the vectorizer's length
    with pytest.raises(ValueError, match="vectorizer"):
        from_directory(root, vectorizer="not a layer")


def test_video_clips_from_npy_files_and_frame_folders(tmp_path):
    root = tmp_path / "data"
    for label, name in enumerate(["jump", "run"]):
        folder = root / name
        folder.mkdir(parents=True)
        np.save(folder / "a.npy", np.full((7, 5, 5, 3), 100 + label, np.uint8))
        frames = folder / "b.frames"
        frames.mkdir()
        for t in range(3):
            write_png(frames / f"{t}.png", np.full((6, 6, 3), 50 * t))
    data = from_directory(root, num_frames=4, frame_size=(5, 5), validation_split=0.0, shuffle=False, batch_size=2)
    assert data.train.element_spec[0]["video"].shape.as_list() == [None, 4, 5, 5, 3]
    clips = {name: (f["video"], y) for (f, y), name in zip(examples(data.train), data.train_examples)}
    assert sorted(os.path.relpath(n, root) for n in clips) == ["jump/a", "jump/b", "run/a", "run/b"]
    video, label = clips[str(root / "run" / "a")]
    assert label == 1 and np.allclose(video, 101 / 255)
    video, _ = clips[str(root / "jump" / "b")]
    np.testing.assert_allclose(video[:, 0, 0, 0] * 255, [0, 50, 50, 100], atol=1e-3)  # 3 frames -> 4


def test_augment_applies_to_training_images_only(tmp_path):
    root = make_tree(tmp_path / "data", per_class=3, modalities=("image",))

    def invert(images, training=False):
        assert training
        return 1.0 - images

    data = from_directory(root, augment=invert, validation_split=0.34, **small())
    for x, label in examples(data.train):
        assert 0 <= index_from_image(1.0 - x["image"], label) < 3
    for x, label in examples(data.validation):
        assert 0 <= index_from_image(x["image"], label) < 3


def test_loader_output_trains_image_text_classifier(tmp_path):
    root = make_tree(tmp_path / "data", per_class=4, modalities=("image", "text"))
    data = from_directory(root, image_size=(32, 32), max_tokens=50, sequence_length=12, batch_size=4,
                          input_names={"text": "text_input"})
    assert sorted(data.train.element_spec[0]) == ["image", "text_input"]
    model = mmzoo.build("image_text_classifier", input_shape=(32, 32, 3), vocab_size=50, embedding_dim=8,
                        max_length=12, num_classes=len(data.class_names))
    history = model.fit(data.train, validation_data=data.validation, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0]) and np.isfinite(history.history["val_loss"][0])


def test_from_directory_checks_arguments_and_layout(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        from_directory(tmp_path / "absent")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="No example files"):
        from_directory(tmp_path / "empty")
    root = make_tree(tmp_path / "data", per_class=1, modalities=("text",))
    with pytest.raises(ValueError, match="validation_split"):
        from_directory(root, validation_split=1.5)
    with pytest.raises(ValueError, match="text_mode"):
        from_directory(root, text_mode="ids")
    with pytest.raises(ValueError, match="class_names"):
        from_directory(root, class_names=["cat", "cow"])
    data = from_directory(root, class_names=["dog", "cat"], validation_split=0.0, batch_size=None, shuffle=False)
    assert data.class_names == ["dog", "cat"]
    assert [int(y) for _, y in data.train] == [0, 1]  # dog first


# --- manifests ----------------------------------------------------------------------------


def manifest_files(folder):
    """Files for four manifest rows; returns (rows, bad image path)."""
    media = folder / "media"
    media.mkdir(parents=True)
    rows = []
    for index, label in enumerate(["spam", "ham", "spam", "ham"]):
        write_png(media / f"{index}.png", np.full((9, 9, 3), 30 * index))
        soundfile.write(media / f"{index}.wav", audio_samples(index, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
        rows.append({"image": f"media/{index}.png", "audio": f"media/{index}.wav",
                     "text": f"第{index}条 message {label}", "label": label})
    return rows


def test_manifest_csv_with_inline_text_and_relative_paths(tmp_path):
    rows = manifest_files(tmp_path)
    rows[1]["image"] = str(tmp_path / "media" / "1.png")  # an absolute path works too
    rows[2]["audio"] = ""  # a row without its audio: skipped
    path = tmp_path / "train.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["image", "text", "audio", "label"])
        writer.writeheader()
        writer.writerows(rows)

    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable files: .*train.csv:4 \(missing audio"):
        data = from_manifest(path, validation_split=0.0, shuffle=False, text_mode="raw", **small())
    assert data.class_names == ["ham", "spam"]
    assert data.train_examples == [f"{path}:2", f"{path}:3", f"{path}:5"]
    got = [(f["text"].decode("utf-8"), y, round(f["image"][0, 0, 0] * 255), f["audio_mask"].sum())
           for f, y in examples(data.train)]
    assert got == [
        ("第0条 message spam", 1, 0, 800),
        ("第1条 message ham", 0, 30, 880),
        ("第3条 message ham", 0, 90, 1000),
    ]


def test_manifest_jsonl_with_text_files_integer_labels_and_video(tmp_path):
    folder = tmp_path / "set"
    (folder / "clips").mkdir(parents=True)
    lines = []
    for index in range(6):
        np.save(folder / "clips" / f"{index}.npy", np.full((2, 4, 4, 3), index, np.uint8))
        (folder / "clips" / f"{index}.txt").write_text(f"第 {index} 段", encoding="utf-8")
        lines.append(json.dumps({"video": f"clips/{index}.npy", "text_path": f"clips/{index}.txt",
                                 "label": index % 3}, ensure_ascii=False))
    (folder / "clips" / "5.npy").write_bytes(b"\x93NUMPY broken")
    path = folder / "all.jsonl"
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")

    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable files: .*5\.npy"):
        data = from_manifest(path, num_frames=3, frame_size=(4, 4), validation_split=0.4, seed=3,
                             sequence_length=3, batch_size=2)
    assert data.class_names == ["0", "1", "2"]
    features, _ = data.train.element_spec
    assert sorted(features) == ["text", "video"]
    assert features["video"].shape.as_list() == [None, 3, 4, 4, 3]
    assert len(data.train_examples) + len(data.validation_examples) == 5
    assert not set(data.train_examples) & set(data.validation_examples)
    for f, y in examples(data.train) + examples(data.validation):
        assert round(f["video"][0, 0, 0, 0] * 255) % 3 == y

    with pytest.raises(UnreadableFileError, match=r"Cannot read .*clips.5\.npy: not a readable \.npy array"):
        from_manifest(path, strict=True, num_frames=3, frame_size=(4, 4))


def test_malformed_manifests_raise_value_errors(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"text": "fine", "label": 0}\n{not json}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        from_manifest(bad_json)
    no_label = tmp_path / "no_label.csv"
    no_label.write_text("text,label\nhello,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no_label.csv:2: no label"):
        from_manifest(no_label)
    no_column = tmp_path / "no_column.csv"
    no_column.write_text("text,target\nhello,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no label column 'label'"):
        from_manifest(no_column)
    renamed = from_manifest(no_column, label_column="target", validation_split=0.0, batch_size=None)
    assert [int(y) for _, y in renamed.train] == [1]
    with pytest.raises(ValueError, match=r"Cannot tell the manifest format of .*rows\.txt: pass format='csv'"):
        from_manifest(tmp_path / "rows.txt")


# --- CIFAR-10 -----------------------------------------------------------------------------


def test_cifar10_under_mock_data_is_shaped_for_cifar_multimodal():
    with tfds.testing.mock_data(num_examples=12):
        raw = list(tfds.load("cifar10", split="test").as_numpy_iterator())
        dataset = cifar10(split="test", batch_size=5)
        batches = list(dataset.as_numpy_iterator())
        masked = next(iter(cifar10(split="train", batch_size=None, include_presence=True)))
    assert dataset.class_names == list(CIFAR10_CLASS_NAMES)
    features, labels = dataset.element_spec
    assert sorted(features) == ["audio", "image", "text"]
    assert features["image"].shape.as_list() == [None, 32, 32, 3] and features["image"].dtype == tf.float32
    assert features["text"].shape.as_list() == [None, 128] and features["audio"].shape.as_list() == [None, 128]
    assert labels.dtype == tf.int32
    assert [len(y) for _, y in batches] == [5, 5, 2]

    images = np.concatenate([x["image"] for x, _ in batches])
    got_labels = np.concatenate([y for _, y in batches])
    np.testing.assert_allclose(images, np.stack([r["image"] for r in raw]) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(got_labels, [r["label"] for r in raw])
    assert len(set(got_labels.tolist())) > 1
    text = np.concatenate([x["text"] for x, _ in batches])
    audio = np.concatenate([x["audio"] for x, _ in batches])
    assert not text.any() and not audio.any()  # zeros for every label: nothing leaks from y

    x, y = masked
    assert sorted(x) == ["audio", "audio_present", "image", "image_present", "text", "text_present"]
    assert x["text_present"].shape == () and float(x["text_present"]) == 0.0 and float(x["audio_present"]) == 0.0
    assert float(x["image_present"]) == 1.0
    assert not np.any(x["text"].numpy()) and 0 <= int(y) < 10


def test_cifar10_trains_cifar_multimodal():
    with tfds.testing.mock_data(num_examples=16):
        dataset = cifar10(split="train", batch_size=8, seed=1)
        model = mmzoo.build("cifar_multimodal", hidden_units=16)
        history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="batch_size"):
        cifar10(batch_size=0)


# --- masks that a model reads (issue 13) --------------------------------------------------


def test_cifar10_presence_flags_feed_cifar_multimodal_with_missing_modalities():
    with tfds.testing.mock_data(num_examples=16):
        dataset = cifar10(split="train", batch_size=8, seed=1, include_presence=True)
        x, _ = next(iter(dataset))
        model = mmzoo.build("cifar_multimodal", hidden_units=16, missing_modalities=True)
        history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
        with pytest.warns(DeprecationWarning, match="include_presence"):
            legacy = next(iter(cifar10(split="train", batch_size=None, include_masks=True)))[0]
    assert sorted(x) == ["audio", "audio_present", "image", "image_present", "text", "text_present"]
    assert x["text_present"].shape == (8,) and x["text_present"].dtype == tf.float32
    assert not np.any(x["text_present"]) and not np.any(x["audio_present"]) and np.all(x["image_present"] == 1)
    assert np.isfinite(history.history["loss"][0])
    assert sorted(legacy) == sorted(x)  # the old keyword is an alias of include_presence
    assert not any(key.endswith("_mask") for key in legacy)  # no mask that no model reads
    with pytest.raises(ValueError, match="include_presence"):
        cifar10(include_presence="yes")


def _short_clips(root):
    """Two classes of .npy clips of 2 and 3 frames, each frame a constant grey level."""
    for label, name in enumerate(["jump", "run"]):
        folder = root / name
        folder.mkdir(parents=True)
        for stem, count in [("a", 2), ("b", 3)]:
            frames = np.stack([np.full((5, 5, 3), 40 * (t + 1) + label, np.uint8) for t in range(count)])
            np.save(folder / f"{stem}.npy", frames)
    return root


def test_zero_padded_clips_yield_a_frame_mask(tmp_path):
    root = _short_clips(tmp_path / "data")
    padded = from_directory(root, num_frames=4, frame_size=(5, 5), video_pad="zeros", validation_split=0.0,
                            shuffle=False, batch_size=2)
    spec = padded.train.element_spec[0]
    assert sorted(spec) == ["video", "video_mask"]
    assert spec["video_mask"].shape.as_list() == [None, 4] and spec["video_mask"].dtype == tf.float32
    for features, _ in examples(padded.train):
        real = int(features["video_mask"].sum())
        assert real in (2, 3) and features["video_mask"].tolist() == [1.0] * real + [0.0] * (4 - real)
        assert features["video"][real:].max() == 0.0 and features["video"][:real].min() > 0.0
    # Repeated frames are real frames: no padding, no mask.
    repeated = from_directory(root, num_frames=4, frame_size=(5, 5), validation_split=0.0, batch_size=2)
    assert sorted(repeated.train.element_spec[0]) == ["video"]
    # The mask follows the video input's name.
    renamed = from_directory(root, num_frames=4, frame_size=(5, 5), video_pad="zeros", validation_split=0.0,
                             batch_size=2, input_names={"video": "clip"})
    assert sorted(renamed.train.element_spec[0]) == ["clip", "clip_mask"]


def test_zero_padded_clips_feed_face_recognition_with_video_mask(tmp_path):
    root = _short_clips(tmp_path / "data")
    data = from_directory(root, num_frames=4, frame_size=(10, 10), video_pad="zeros", validation_split=0.0,
                          shuffle=False, batch_size=4)
    config = {**mmzoo.registry.get_entry("face_recognition").test_config, "frame_count": 4, "num_faces": 2}
    model = mmzoo.build("face_recognition", video_mask=True, **config)
    rng = np.random.default_rng(0)

    def add_image_and_audio(features, label):
        batch = tf.shape(features["video"])[0]
        image = tf.random.stateless_uniform((batch, 10, 10, 3), seed=(1, 2))
        audio = tf.random.stateless_uniform((batch, config["mfcc_features_size"]), seed=(3, 4))
        return {**features, "image": image, "audio": audio}, {"face": label}

    dataset = data.train.map(add_image_and_audio)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    x, _ = next(iter(dataset))
    x = {key: value.numpy() for key, value in x.items()}
    expected = model.predict(x, verbose=0)["face"]
    noisy = x["video"].copy()
    padding = x["video_mask"] == 0
    assert padding.any()
    noisy[padding] = rng.random(noisy[padding].shape)
    np.testing.assert_allclose(model.predict({**x, "video": noisy}, verbose=0)["face"], expected, atol=1e-5)


# --- missing modalities as masks (issue 16) ------------------------------------------------


def test_missing_mask_keeps_examples_that_lack_a_modality(tmp_path):
    root = make_tree(tmp_path / "data", per_class=4)
    (root / "cat" / "ex1.txt").unlink()
    for path in (root / "dog").glob("ex2.*"):
        if path.suffix in (".wav", ".flac"):
            path.unlink()
    (root / "dog" / "ex3.jpg").unlink()  # odd examples have JPEG images
    with pytest.warns(UserWarning, match="missing"):
        skipping = from_directory(root, validation_split=0.0, shuffle=False, **small())
    assert len(skipping.train_examples) == 5  # the three incomplete examples are dropped
    data = from_directory(root, validation_split=0.0, shuffle=False, missing="mask",
                          input_names={"text": "text_input"}, **small())
    assert len(data.train_examples) == 8 and not data.skipped
    rows = {name.rsplit(os.sep, 2)[-2] + "/" + os.path.basename(name): row
            for name, row in zip(data.train_examples, examples(data.train))}
    for key in ("image_present", "text_present", "audio_present"):  # named after the model's inputs
        assert all(features[key].dtype == np.float32 for features, _ in rows.values())
    text_missing, _ = rows["cat/ex1"]
    assert text_missing["text_present"] == 0.0 and not text_missing["text_input"].any()
    assert text_missing["image_present"] == 1.0 and text_missing["audio_present"] == 1.0
    audio_missing, _ = rows["dog/ex2"]
    assert audio_missing["audio_present"] == 0.0 and not audio_missing["audio"].any()
    assert not audio_missing["audio_mask"].any()
    image_missing, label = rows["dog/ex3"]
    assert image_missing["image_present"] == 0.0 and not image_missing["image"].any() and label == 1
    complete, label = rows["cat/ex0"]
    assert {complete[k] for k in ("image_present", "text_present", "audio_present")} == {1.0}
    assert index_from_image(complete["image"], label) == 0
    # The vocabulary comes from the texts that exist.
    assert data.vectorizer.get_vocabulary()[2:]
    with pytest.raises(ValueError, match="`missing` must be one of 'skip', 'mask'. Received: missing='zeros'"):
        from_directory(root, missing="zeros", **small())


def test_missing_mask_feeds_a_model_built_with_missing_modalities(tmp_path):
    root = make_tree(tmp_path / "data", per_class=3, modalities=("image", "audio"))
    for path in (root / "cat").glob("ex0.*"):
        if path.suffix in (".wav", ".flac"):
            path.unlink()
    data = from_directory(root, validation_split=0.0, missing="mask", **small())
    model = mmzoo.build("fusion_classifier", inputs={"image": (8, 8, 3), "audio": (1000,), "audio_mask": (1000,)},
                        num_classes=2, width=8, image_filters=(4,), audio_filters=(4,), num_mel_bins=8,
                        sample_rate=SAMPLE_RATE, missing_modalities=True)
    history = model.fit(data.train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
