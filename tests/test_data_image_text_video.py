"""Image decoding and augmentation, the text vectorizer, video clips: real files in tmp_path."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data.errors import UnreadableFileError
from mmzoo.data.image import decode_image, image_augmentation, load_image, read_image
from mmzoo.data.text import load_text_vectorizer, make_text_vectorizer, read_text, save_text_vectorizer
from mmzoo.data.video import list_frames, read_video, sample_frame_indices

DOCUMENT_TEXTS = ["这是一段文本数据", "这是另一段文本数据"]  # document 004 §3.2


def write_png(path, array):
    path.write_bytes(tf.io.encode_png(np.asarray(array)).numpy())
    return path


def write_jpeg(path, array):
    path.write_bytes(tf.io.encode_jpeg(np.asarray(array, np.uint8), quality=100).numpy())
    return path


def gradient_image(height=12, width=16):
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    return np.round(np.broadcast_to((rows + cols) / 2, (height, width, 3))).astype(np.uint8)


# --- images -------------------------------------------------------------------------------


def test_png_decodes_exactly_to_unit_range_and_resizes(tmp_path):
    image = np.zeros((6, 8, 3), np.uint8)
    image[0, 0] = 255
    image[1, 2] = (0, 128, 255)
    path = write_png(tmp_path / "a.png", image)

    native = read_image(path, image_size=None)
    assert native.dtype == np.float32 and native.shape == (6, 8, 3)
    np.testing.assert_allclose(native, image / 255.0, atol=1e-6)

    resized = load_image(str(path), image_size=(3, 5))
    assert resized.dtype == tf.float32 and resized.shape == (3, 5, 3)
    assert 0.0 <= float(tf.reduce_min(resized)) and float(tf.reduce_max(resized)) <= 1.0


def test_jpeg_and_channel_conversion(tmp_path):
    image = gradient_image()
    path = write_jpeg(tmp_path / "b.jpg", image)
    decoded = read_image(path)
    assert decoded.shape == (12, 16, 3)
    np.testing.assert_allclose(decoded, image / 255.0, atol=0.05)  # lossy, but close
    gray = read_image(path, image_size=(4, 4), channels=1)
    assert gray.shape == (4, 4, 1)
    gray_png = write_png(tmp_path / "g.png", image[..., :1])
    assert read_image(gray_png, channels=3).shape == (12, 16, 3)


def test_sixteen_bit_png_is_scaled_by_its_own_range(tmp_path):
    image = np.full((4, 4, 3), 65535, np.uint16)
    image[0, 0] = 0
    decoded = read_image(write_png(tmp_path / "deep.png", image))
    assert decoded.max() == pytest.approx(1.0) and decoded.min() == 0.0


def test_decode_in_tf_data_map_with_autotune(tmp_path):
    paths = [str(write_png(tmp_path / f"{i}.png", np.full((5 + i, 7, 3), 20 * i, np.uint8))) for i in range(4)]
    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: load_image(p, image_size=(8, 8)), num_parallel_calls=tf.data.AUTOTUNE
    ).batch(4)
    batch = next(iter(ds))
    assert batch.shape == (4, 8, 8, 3) and batch.dtype == tf.float32
    np.testing.assert_allclose(batch.numpy()[:, 0, 0, 0], [20 * i / 255 for i in range(4)], atol=1e-6)


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_unreadable_image_names_the_file(tmp_path, content):
    if content == "truncated":
        full = tf.io.encode_png(gradient_image()).numpy()
        content = full[: len(full) // 2]
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match="broken.png") as info:
        read_image(path)
    assert info.value.path == str(path)
    with pytest.raises(UnreadableFileError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_decode_image_checks_its_arguments():
    png = tf.io.encode_png(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="channels"):
        decode_image(png, channels=2)
    with pytest.raises(ValueError, match="image_size"):
        decode_image(png, image_size=(0, 4))


def test_image_augmentation_is_random_layers_that_keep_shape_and_range():
    augment = image_augmentation(seed=3)
    assert isinstance(augment, keras.Sequential)
    kinds = [type(layer).__name__ for layer in augment.layers]
    assert kinds == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast"]
    images = np.random.default_rng(0).random((4, 16, 16, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(images).batch(4).map(
        lambda x: augment(x, training=True), num_parallel_calls=tf.data.AUTOTUNE
    )
    out = next(iter(ds)).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, images)
    np.testing.assert_allclose(augment(images, training=False), images)  # inference: identity
    assert len(image_augmentation(flip=None, zoom=0).layers) == 2
    with pytest.raises(ValueError, match="`flip` must be one of .*Received: flip='diagonal'"):
        image_augmentation(flip="diagonal")


# --- text ---------------------------------------------------------------------------------


def test_character_split_gives_one_token_per_chinese_character():
    chars = make_text_vectorizer(DOCUMENT_TEXTS, sequence_length=12, split="character")
    ids = chars(DOCUMENT_TEXTS).numpy()
    assert ids.shape == (2, 12)
    assert [int((row > 0).sum()) for row in ids] == [8, 9]  # one id per character
    assert (ids[0, :8] >= 2).all() and (ids[0, 8:] == 0).all()  # known ids, then padding
    assert ids[0, 0] == ids[1, 0]  # "这" is the same token in both
    # The document's Tokenizer path, split on whitespace, sees one token per sentence.
    words = make_text_vectorizer(DOCUMENT_TEXTS, sequence_length=12, split="whitespace")
    assert [int((row > 0).sum()) for row in words(DOCUMENT_TEXTS).numpy()] == [1, 1]


def test_vectorizer_adapts_on_training_texts_only_padding_zero_oov_one():
    vectorizer = make_text_vectorizer(["red fish", "blue fish"], max_tokens=20, sequence_length=4)
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"] and vocabulary[2] == "fish"
    ids = vectorizer(["fish GREEN, red!"]).numpy()[0]
    assert ids.dtype == np.int64
    assert ids.tolist() == [2, 1, vocabulary.index("red"), 0]
    with pytest.raises(ValueError, match="`split` must be one of 'whitespace', 'character'. Received: split='word'"):
        make_text_vectorizer(["a"], split="word")
    with pytest.raises(ValueError, match="`train_texts` is empty"):
        make_text_vectorizer([])


def test_vectorizer_save_load_round_trip(tmp_path):
    vectorizer = make_text_vectorizer(
        DOCUMENT_TEXTS + ["第三句 话"], max_tokens=50, sequence_length=10, split="character", standardize="lower"
    )
    path = tmp_path / "nested" / "vectorizer.json"
    assert save_text_vectorizer(vectorizer, path) == path
    assert sorted(os.listdir(path.parent)) == ["vectorizer.json"]  # no temporary file left
    document = json.loads(path.read_text(encoding="utf-8"))
    assert "这" in document["vocabulary"]  # stored as UTF-8 text, not escapes

    restored = load_text_vectorizer(path)
    assert restored.get_vocabulary() == vectorizer.get_vocabulary()
    for key in ("max_tokens", "split", "standardize", "output_sequence_length", "output_mode", "ngrams"):
        assert restored.get_config()[key] == vectorizer.get_config()[key], key
    probe = DOCUMENT_TEXTS + ["没见过的字"]
    np.testing.assert_array_equal(restored(probe).numpy(), vectorizer(probe).numpy())

    # Saving again replaces the file whole; a different vectorizer gives different ids.
    other = make_text_vectorizer(["x y z"], sequence_length=10)
    save_text_vectorizer(other, path)
    assert load_text_vectorizer(path).get_vocabulary() == other.get_vocabulary()
    assert sorted(os.listdir(path.parent)) == ["vectorizer.json"]


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "v.json"
    vectorizer = make_text_vectorizer(["a b"], sequence_length=3)
    save_text_vectorizer(vectorizer, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_text_vectorizer(make_text_vectorizer(["c d e"], sequence_length=3), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["v.json"]


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a saved text vectorizer"):
        load_text_vectorizer(path)
    with pytest.raises(ValueError, match="TextVectorization"):
        save_text_vectorizer("not a layer", tmp_path / "x.json")


def test_read_text_utf8_chinese_bom_and_bad_files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes("\ufeff  这是一段文本数据\n".encode("utf-8"))
    assert read_text(good) == "这是一段文本数据"
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(UnreadableFileError, match="latin.txt.*not UTF-8"):
        read_text(latin)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(UnreadableFileError, match="empty.txt.*empty"):
        read_text(empty)
    assert read_text(empty, allow_empty=True) == ""


# --- video --------------------------------------------------------------------------------


def numbered_clip(frames, height=4, width=6):
    """Frame t is filled with the value 10 * t (uint8), so sampled frames can be identified."""
    return np.stack([np.full((height, width, 3), 10 * t, np.uint8) for t in range(frames)])


def frame_ids(video):
    return np.round(video[:, 0, 0, 0] * 255 / 10).astype(int).tolist()


def test_sample_frame_indices():
    indices, mask = sample_frame_indices(10, 4)
    assert indices.tolist() == [0, 3, 6, 9] and mask.tolist() == [1, 1, 1, 1]
    assert sample_frame_indices(3, 6)[0].tolist() == [0, 0, 1, 1, 2, 2]
    indices, mask = sample_frame_indices(3, 5, pad="zeros")
    assert indices.tolist() == [0, 1, 2, -1, -1] and mask.tolist() == [1, 1, 1, 0, 0]


def test_npy_clip_longer_is_sampled_uniformly_and_resized(tmp_path):
    path = tmp_path / "clip.npy"
    np.save(path, numbered_clip(20))
    video = read_video(path, num_frames=5, frame_size=(8, 8))
    assert video.shape == (5, 8, 8, 3) and video.dtype == np.float32
    assert frame_ids(video) == [0, 5, 10, 14, 19]
    assert video.min() >= 0.0 and video.max() <= 1.0


def test_npy_clip_shorter_is_repeated_or_zero_padded(tmp_path):
    path = tmp_path / "short.npy"
    np.save(path, numbered_clip(3))
    assert frame_ids(read_video(path, num_frames=6, frame_size=(4, 6))) == [0, 0, 1, 1, 2, 2]
    video, mask = read_video(path, num_frames=5, frame_size=(4, 6), pad="zeros", return_mask=True)
    assert frame_ids(video) == [0, 1, 2, 0, 0] and mask.tolist() == [1, 1, 1, 0, 0]
    assert video[3:].max() == 0.0


def test_npy_grayscale_and_float_clips(tmp_path):
    gray = tmp_path / "gray.npy"
    np.save(gray, np.full((4, 5, 5), 255, np.uint8))  # (T, H, W)
    video = read_video(gray, num_frames=2, frame_size=(5, 5))
    assert video.shape == (2, 5, 5, 3) and np.allclose(video, 1.0)
    floats = tmp_path / "float.npy"
    np.save(floats, np.full((2, 3, 3, 3), 0.25, np.float32))
    assert np.allclose(read_video(floats, num_frames=2, frame_size=(3, 3)), 0.25)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.full((2, 3, 3, 3), 200.0, np.float32))
    with pytest.raises(UnreadableFileError, match=r"wrong.npy.*\[0, 1\]"):
        read_video(wrong)


def test_frame_folder_in_natural_order(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for t in range(12):  # frame_2 must come before frame_10
        writer = write_png if t % 2 else write_jpeg
        writer(folder / f"frame_{t}.{'png' if t % 2 else 'jpg'}", np.full((6, 6, 3), 10 * t, np.uint8))
    (folder / "notes.txt").write_text("not a frame")
    assert [p.name for p in list_frames(folder)][:3] == ["frame_0.jpg", "frame_1.png", "frame_2.jpg"]
    video = read_video(folder, num_frames=4, frame_size=(3, 3))
    assert video.shape == (4, 3, 3, 3)
    assert frame_ids(video) == [0, 4, 7, 11]


def test_unreadable_clips_name_the_file(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    write_png(folder / "0.png", np.zeros((4, 4, 3), np.uint8))
    (folder / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(UnreadableFileError, match=r"Cannot read .*clip.1\.png: not a readable PNG/JPEG image"):
        read_video(folder, num_frames=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UnreadableFileError, match="empty.*without PNG/JPEG frames"):
        read_video(empty)
    truncated = tmp_path / "cut.npy"
    np.save(truncated, numbered_clip(8))
    truncated.write_bytes(truncated.read_bytes()[:150])
    with pytest.raises(UnreadableFileError, match=r"Cannot read .*cut\.npy: not a readable \.npy array"):
        read_video(truncated)
    with pytest.raises(UnreadableFileError, match="clip.avi"):
        read_video(tmp_path / "clip.avi")
