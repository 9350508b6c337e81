"""Text: a ``keras.layers.TextVectorization`` adapted on the training split, saved and restored.

Replaces document 004 §3.2's ``Tokenizer`` / ``pad_sequences`` (the ``keras.preprocessing.text``
path is gone from Keras 3) and its ``padded_sequences[:, :, :]`` on a 2-D array. The
document's sentences are Chinese, written without spaces: split on whitespace, each is a
single token, so ``split="character"`` is offered (one token per character).

Token ids: 0 is padding, 1 is out-of-vocabulary (``[UNK]``), 2.. the vocabulary by
decreasing frequency; sequences are padded or truncated to ``sequence_length``.

Example:
>>> vectorizer = make_text_vectorizer(["这是一段文本数据", "这是另一段文本数据"],
...                                   sequence_length=10, split="character")
>>> vectorizer(["这是一段文本数据"]).numpy()[0, 8:].tolist()  # 8 characters, then padding
[0, 0]
"""

import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

from mmzoo._atomic import write_file
from mmzoo.data.errors import UnreadableFileError
from mmzoo.validation import check_choice, check_positive_int

SPLITS = ("whitespace", "character")
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
FORMAT = "mmzoo.text_vectorizer"
FORMAT_VERSION = 1


def _as_string_list(texts):
    if isinstance(texts, str):
        raise ValueError("`train_texts` must be a collection of strings, not one string.")
    if isinstance(texts, tf.data.Dataset):
        texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts.as_numpy_iterator()]
    values = []
    for text in np.asarray(texts, dtype=object).reshape(-1):
        values.append(text.decode("utf-8") if isinstance(text, bytes) else str(text))
    return values


def make_text_vectorizer(
    train_texts,
    max_tokens=10000,
    sequence_length=256,
    split="whitespace",
    standardize="lower_and_strip_punctuation",
    ngrams=None,
):
    """A ``TextVectorization`` layer (int output) adapted on ``train_texts`` only.

    Adapt it on the training split alone, then apply it to every split: the
    validation and test texts must not shape the vocabulary.

    Args:
        train_texts: the training texts (list or array of str/bytes, or a ``tf.data``
            dataset of scalar strings).
        max_tokens: vocabulary size including padding (0) and OOV (1).
        sequence_length: length of every output sequence (padded with 0 / truncated).
        split: "whitespace" (words) or "character" (one token per character, for
            Chinese or Japanese text; spaces are tokens too).
        standardize: "lower_and_strip_punctuation" (ASCII punctuation), "lower",
            "strip_punctuation" or ``None``.
        ngrams: ``None`` or an integer n to add 2..n-grams to the vocabulary.

    Returns:
        An adapted ``keras.layers.TextVectorization``: strings (batch,) -> int64
        (batch, sequence_length).
    """
    check_positive_int("max_tokens", max_tokens)
    if max_tokens < 3:
        raise ValueError(
            f"`max_tokens` must be at least 3 (padding, OOV, one token). Received: max_tokens={max_tokens}"
        )
    check_positive_int("sequence_length", sequence_length)
    check_choice("split", split, SPLITS)
    check_choice("standardize", standardize, STANDARDIZE)
    if ngrams is not None:
        check_positive_int("ngrams", ngrams)
    texts = _as_string_list(train_texts)
    if not texts:
        raise ValueError("`train_texts` is empty: a vectorizer needs training texts to adapt on.")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=standardize,
        split=split,
        ngrams=ngrams,
        output_mode="int",
        output_sequence_length=sequence_length,
    )
    vectorizer.adapt(tf.constant(texts, dtype=tf.string), batch_size=256)
    return vectorizer


def _atomic_write_text(path, text):
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"Cannot write {str(path)!r}: it is a directory. Pass a file path, e.g. 'vectorizer.json'.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(
            f"Cannot write {str(path)!r}: a file is in the way of its folder {str(path.parent)!r}."
        ) from None

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)

    write_file(path, write, suffix=".tmp")  # fsynced with its folder, before and after the rename
    return path


def save_text_vectorizer(vectorizer, path):
    """Save a ``TextVectorization``'s settings and vocabulary to a JSON file, atomically.

    The file is written to a temporary name in the same folder and renamed over
    ``path``, so an interrupted save never leaves a half-written file.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    if not isinstance(vectorizer, keras.layers.TextVectorization):
        raise ValueError(
            f"`vectorizer` must be a keras.layers.TextVectorization. Received: {type(vectorizer).__name__}"
        )
    config = dict(vectorizer.get_config())
    for key in ("standardize", "split"):
        if callable(config.get(key)):
            raise ValueError(f"Cannot save a TextVectorization with a callable `{key}`; use a built-in option.")
    if config.get("output_mode") == "tf_idf":
        raise ValueError("Cannot save a TextVectorization with output_mode='tf_idf' (its IDF weights).")
    config["vocabulary"] = None
    config["idf_weights"] = None
    vocabulary = [str(token) for token in vectorizer.get_vocabulary()]
    document = {"format": FORMAT, "version": FORMAT_VERSION, "config": config, "vocabulary": vocabulary}
    return _atomic_write_text(path, json.dumps(document, ensure_ascii=False, indent=1))


def load_text_vectorizer(path):
    """The ``TextVectorization`` saved by :func:`save_text_vectorizer`: same settings, same ids.

    Raises:
        ValueError: when ``path`` is not a saved vectorizer.
    """
    with open(path, encoding="utf-8") as file:
        try:
            document = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not a saved text vectorizer: {error}") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not a saved text vectorizer: not UTF-8 JSON (byte {error.start}).") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not a saved text vectorizer (no format {FORMAT!r}).")
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported text vectorizer version {document.get('version')!r}.")
    config = dict(document["config"])
    config["vocabulary"] = None
    config["idf_weights"] = None
    config.pop("vocabulary_size", None)
    vectorizer = keras.layers.TextVectorization.from_config(config)
    vectorizer.set_vocabulary(document["vocabulary"])
    return vectorizer


def read_text(path, allow_empty=False):
    """Read a UTF-8 text file (a BOM is dropped; surrounding whitespace is stripped).

    Raises:
        UnreadableFileError: naming ``path``, when it is missing, not UTF-8, or empty
            (only whitespace) unless ``allow_empty``.
    """
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as error:
        raise UnreadableFileError(path, error.strerror or type(error).__name__) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(path, f"not UTF-8 text (byte {error.start})") from None
    text = text.strip()
    if not text and not allow_empty:
        raise UnreadableFileError(path, "empty text file")
    return text
