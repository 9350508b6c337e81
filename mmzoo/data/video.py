"""Video clips: a folder of frames or an ``.npy`` array, to a fixed number of frames in [0, 1].

A clip is either

- a folder of PNG/JPEG frames, in name order with numbers compared by value
  (``frame_2.png`` before ``frame_10.png``), or
- an ``.npy`` array of shape (T, H, W, C) or (T, H, W): integer frames (uint8, uint16)
  are scaled by their type's maximum; float frames must already be in [0, 1].

It becomes ``num_frames`` frames of ``frame_size``: a longer clip is sampled uniformly
(first and last frames kept), a shorter one is stretched by repeating frames
(``pad="repeat"``) or followed by black frames (``pad="zeros"``, with a mask saying
which frames are real). Only the sampled frames are decoded.

The loaders (:func:`mmzoo.data.loaders.from_directory`, ``from_manifest``) yield that mask
as ``video_mask`` (``<video input name>_mask`` when ``input_names`` renames ``video``),
float32 ``(num_frames,)``, with ``video_pad="zeros"`` only: repeated frames are real
frames. A model built with ``video_mask=True`` (``face_recognition``) takes it and leaves
the black padding frames out of its pooling over time.

Example:
>>> import numpy as np
>>> sample_frame_indices(10, 4)[0].tolist()
[0, 3, 6, 9]
>>> sample_frame_indices(3, 5, pad="zeros")[1].tolist()
[1.0, 1.0, 1.0, 0.0, 0.0]
"""

import pathlib
import re

import numpy as np
import tensorflow as tf

from mmzoo.data.errors import UnreadableFileError
from mmzoo.data.image import IMAGE_EXTENSIONS, check_channels, read_image
from mmzoo.validation import check_choice, check_positive_int, check_shape

VIDEO_EXTENSIONS = (".npy",)
PADS = ("repeat", "zeros")
FLOAT_TOLERANCE = 1e-3


def _natural_key(path):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_frames(folder):
    """The PNG/JPEG frames of a clip folder, in natural name order."""
    folder = pathlib.Path(folder)
    frames = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
              and not p.name.startswith(".")]
    return sorted(frames, key=_natural_key)


def sample_frame_indices(num_available, num_frames, pad="repeat"):
    """Which source frames make the ``num_frames`` output frames.

    Returns:
        (indices, mask): int64 indices into the clip (-1 for a black padding frame) and a
        float32 mask, 1.0 for a frame taken from the clip and 0.0 for padding.
    """
    check_positive_int("num_available", num_available)
    check_positive_int("num_frames", num_frames)
    check_choice("pad", pad, PADS)
    if num_available >= num_frames or pad == "repeat":
        indices = np.round(np.linspace(0, num_available - 1, num_frames)).astype(np.int64)
        return indices, np.ones(num_frames, np.float32)
    indices = np.full(num_frames, -1, np.int64)
    indices[:num_available] = np.arange(num_available)
    return indices, (indices >= 0).astype(np.float32)


def frame_plan(folder, num_frames=16, pad="repeat"):
    """Which frame file makes each of the ``num_frames`` output frames of a frame folder.

    The frames :func:`read_video` decodes, without decoding them: the loaders list a clip's
    frames once, up front, and decode them in graph ops each epoch.

    Returns:
        ``(files, mask)``: ``num_frames`` paths (str; ``""`` for a black padding frame, and
        the same path again for a repeated frame) and the float32 mask of real frames.

    Raises:
        UnreadableFileError: naming the folder, when it holds no PNG/JPEG frame.
    """
    frame_files = list_frames(folder)
    if not frame_files:
        raise UnreadableFileError(folder, "a frame folder without PNG/JPEG frames")
    indices, mask = sample_frame_indices(len(frame_files), num_frames, pad)
    return [str(frame_files[i]) if i >= 0 else "" for i in indices], mask


def _convert_channels(frames, channels, path):
    have = frames.shape[-1]
    if have == channels:
        return frames
    if have not in (1, 3, 4):
        raise UnreadableFileError(path, f"frames have {have} channels; expected 1, 3 or 4")
    if have == 4:
        frames, have = frames[..., :3], 3
    if channels == 1:
        return np.asarray(tf.image.rgb_to_grayscale(frames)) if have == 3 else frames
    if have == 1:
        frames = np.repeat(frames, 3, axis=-1)
    if channels == 4:
        frames = np.concatenate([frames, np.ones_like(frames[..., :1])], axis=-1)
    return frames


def _scale(frames, path):
    if frames.dtype == np.bool_:
        return frames.astype(np.float32)
    if np.issubdtype(frames.dtype, np.integer):
        if frames.dtype not in (np.uint8, np.uint16):
            raise UnreadableFileError(path, f"integer frames must be uint8 or uint16, not {frames.dtype}")
        return frames.astype(np.float32) / np.iinfo(frames.dtype).max
    if np.issubdtype(frames.dtype, np.floating):
        frames = frames.astype(np.float32)
        if not np.all(np.isfinite(frames)):
            raise UnreadableFileError(path, "frames contain NaN or infinite values")
        if frames.size and (frames.min() < -FLOAT_TOLERANCE or frames.max() > 1 + FLOAT_TOLERANCE):
            raise UnreadableFileError(
                path, f"float frames must be in [0, 1]; found [{frames.min():.3g}, {frames.max():.3g}]"
            )
        return np.clip(frames, 0.0, 1.0)
    raise UnreadableFileError(path, f"unsupported frame dtype {frames.dtype}")


def _resize(frames, frame_size, interpolation):
    if frames.shape[1:3] == tuple(frame_size):
        return frames
    resized = tf.image.resize(frames, frame_size, method=interpolation)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def _read_npy(path, indices, frame_size, channels, interpolation):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # noqa: BLE001 - any failure means the file is unusable
        raise UnreadableFileError(path, f"not a readable .npy array ({error})") from None
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or 0 in array.shape:
        raise UnreadableFileError(path, f"expected a (T, H, W, C) or (T, H, W) array, got shape {array.shape}")
    if indices is None:
        return array.shape[0]
    try:
        frames = np.asarray(array[indices])
    except Exception as error:  # noqa: BLE001 - truncated data under the memory map
        raise UnreadableFileError(path, f"cannot read the frames ({error})") from None
    frames = _convert_channels(_scale(frames, path), channels, path)
    return _resize(frames, frame_size, interpolation)


def read_video(path, num_frames=16, frame_size=(64, 64), channels=3, pad="repeat",
               interpolation="bilinear", return_mask=False):
    """Read a clip (frame folder or ``.npy``) as float32 (num_frames, height, width, channels) in [0, 1].

    Args:
        path: a folder of PNG/JPEG frames or an ``.npy`` file.
        num_frames: frames in the output.
        frame_size: (height, width) of the output frames.
        channels: 1, 3 or 4.
        pad: how a clip shorter than ``num_frames`` is extended: "repeat" (frames
            repeated evenly, all real: the mask is all ones) or "zeros" (black frames at
            the end, 0.0 in the mask; feed the mask to a model's ``video_mask`` input so
            that its pooling leaves them out).
        interpolation: a ``tf.image.resize`` method.
        return_mask: also return the (num_frames,) float32 mask of real frames.

    Returns:
        The frames, or ``(frames, mask)`` with ``return_mask=True``.

    Raises:
        UnreadableFileError: naming the clip (or the frame file) that cannot be read.
    """
    check_positive_int("num_frames", num_frames)
    frame_size = check_shape("frame_size", frame_size, rank=2)
    check_channels(channels)
    check_choice("pad", pad, PADS)
    path = pathlib.Path(path)
    if path.is_dir():
        files, mask = frame_plan(path, num_frames, pad)
        decoded = {f: read_image(f, frame_size, channels, interpolation) for f in set(files) if f}
        blank = np.zeros((*frame_size, channels), np.float32)
        frames = np.stack([decoded[f] if f else blank for f in files])
    elif path.suffix.lower() in VIDEO_EXTENSIONS:
        if not path.is_file():
            raise UnreadableFileError(path, "no such file")
        available = _read_npy(path, None, frame_size, channels, interpolation)
        indices, mask = sample_frame_indices(available, num_frames, pad)
        real = indices[indices >= 0]
        frames = np.zeros((num_frames, *frame_size, channels), np.float32)
        frames[: len(real)] = _read_npy(path, real, frame_size, channels, interpolation)
    else:
        raise UnreadableFileError(path, "a video must be a folder of PNG/JPEG frames or an .npy array")
    frames = frames.astype(np.float32, copy=False)
    return (frames, mask) if return_mask else frames
