"""The catalogue of bad inputs, and the guarantees a long run relies on.

Every entry of ``CATALOGUE`` is one mistake a user makes: a bad build argument, a bad
input at call time, a damaged file, a bad command line. Each must raise the documented
error with a message naming what was wrong and what was expected, and must leave the
files around it exactly as they were: nothing half-written, nothing lost.

Then: the same seed trains to bit-identical weights; no registered model holds a
``Lambda`` (every one loads in safe mode); a run killed at a random point and started
again ends with the uninterrupted run's number of epochs.
"""

import contextlib
import io
import json
import os
import pathlib
import random
import signal
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.cli import main as cli_main
from mmzoo.data import UnreadableFileError, load_text_vectorizer, read_audio, read_image, read_text
from mmzoo.registry import get_entry
from tests.helpers import build_small, run_python

class CommandFailed(Exception):
    """``mmzoo`` exited with code 2; the message is what it printed on stderr."""


def cli(*argv):
    """Run the ``mmzoo`` command; exit code 2 raises ``CommandFailed`` with its one-line stderr."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli_main(list(argv))
        except SystemExit as exit_:  # argparse
            code = exit_.code
    message = stderr.getvalue().strip()
    assert "Traceback" not in message, message
    if code == 2:
        assert len(message.splitlines()) == 1, message
        raise CommandFailed(message)
    raise AssertionError(f"mmzoo {' '.join(argv)} exited with {code}, not 2")


# --- what the cases run on ------------------------------------------------------------------


_MODELS = {}


def fusion():
    """A small attention_fusion (12 image features, 10 tokens from a vocabulary of 30)."""
    if "fusion" not in _MODELS:
        _MODELS["fusion"] = mmzoo.build("attention_fusion", image_dim=12, text_length=10, vocab_size=30, units=8)
    return _MODELS["fusion"]


def inputs(**changes):
    x, _ = mmzoo.dummy_batch(fusion(), batch_size=4)
    x.update(changes)
    return {key: value for key, value in x.items() if value is not None}


def targets(batch_size=4):
    return np.zeros((batch_size, 1), "float32")


def served():
    """attention_fusion exported once per test process, loaded with TensorFlow alone."""
    if "served" not in _MODELS:
        path = mmzoo.export(fusion(), export_dir=tempfile.mkdtemp(prefix="mmzoo-served-"), verbose=False)
        _MODELS["served"] = mmzoo.load_saved_model(path)
    return _MODELS["served"]


def png_bytes():
    import tensorflow as tf

    return tf.io.encode_png(np.full((8, 8, 3), 200, "uint8")).numpy()


def wav_bytes(samples=1600, rate=16000):
    data = (np.sin(np.arange(samples) / 5) * 10000).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


def write(tmp, name, content):
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def exported_mlp(tmp):
    """``tmp/exports/mlp/1``, with a file of ours inside that must survive."""
    mmzoo.export(build_small("mlp"), export_dir=tmp / "exports", verbose=False)
    write(tmp, "exports/mlp/1/keep.txt", "kept")


def saved_and_exported_mlp(tmp):
    build_small("mlp").save(tmp / "model.keras")
    assert cli_main(["export", str(tmp / "model.keras"), "--export-dir", str(tmp / "out")]) == 0


@dataclass
class Case:
    """One mistake: ``setup(tmp)`` writes what it needs, then ``mistake(tmp)`` must raise."""

    id: str
    error: type
    match: str
    mistake: Callable
    setup: Callable = None


def case(id, error, match, setup=None):
    return lambda mistake: Case(id, error, match, mistake, setup)


CATALOGUE = [
    # --- build arguments ---
    case("unknown model name", ValueError, r"Unknown model name 'atention_fusion'\. Did you mean 'attention_fusion'")(
        lambda tmp: mmzoo.build("atention_fusion")
    ),
    case("misspelt keyword", ValueError, r"no argument `unit` \(did you mean `units`\?\).*Received: unit=8")(
        lambda tmp: mmzoo.build("attention_fusion", unit=8)
    ),
    case("keyword of another model", ValueError,
         r"no argument `dropout_rate` \(did you mean `modality_dropout`\?\)\. Allowed arguments: image_dim")(
        lambda tmp: mmzoo.build("mha_fusion", dropout_rate=0.1)
    ),
    case("negative size", ValueError, r"`units` must be a positive integer\. Received: units=-1")(
        lambda tmp: mmzoo.build("attention_fusion", units=-1)
    ),
    case("fractional size", ValueError, r"`units` must be a positive integer\. Received: units=2\.5")(
        lambda tmp: mmzoo.build("mlp", units=2.5)
    ),
    case("number as a string", ValueError, r"`vocab_size` must be a positive integer\. Received: vocab_size='100'")(
        lambda tmp: mmzoo.build("attention_fusion", vocab_size="100")
    ),
    case("zero classes", ValueError, r"`num_classes` must be a positive integer\. Received: num_classes=0")(
        lambda tmp: mmzoo.build("concat_fusion", num_classes=0)
    ),
    case("empty image side", ValueError, r"`image_shape` must be a tuple of 3 integers.*Received: image_shape=\(0, 32, 3\)")(
        lambda tmp: mmzoo.build("cifar_multimodal", image_shape=(0, 32, 3))
    ),
    case("compile not a bool", ValueError, r"`compile` must be True or False\. Received: compile='yes'")(
        lambda tmp: mmzoo.build("mlp", compile="yes")
    ),
    case("positional argument", ValueError, r"by keyword, e\.g\. build\('mlp', units=64\).*Received: positional arguments \(16,\)")(lambda tmp: mmzoo.build("mlp", 16)),
    # --- call-time inputs ---
    case("missing input key", ValueError, r'Missing data for input "text_input"')(
        lambda tmp: fusion()(inputs(text_input=None))
    ),
    case("unexpected input key", ValueError, r"no input named 'audio_input'; its inputs are \['image_input', 'text_input'\]")(
        lambda tmp: fusion()(inputs(audio_input=np.zeros((4, 12), "float32")))
    ),
    case("wrong feature size", ValueError, r"'image_input' .* shape \(batch, 12\)\. Received: image_input of shape \(4, 7\)")(
        lambda tmp: fusion()(inputs(image_input=np.zeros((4, 7), "float32")))
    ),
    case("extra axis", ValueError, r"'image_input' .* shape \(batch, 12\)\. Received: image_input of shape \(4, 12, 3\)")(
        lambda tmp: fusion().predict(inputs(image_input=np.zeros((4, 12, 3), "float32")), verbose=0)
    ),
    case("float token ids", ValueError, r"'text_input' .* takes int32 values, not floats.*astype\('int32'\)")(
        lambda tmp: fusion()(inputs(text_input=np.ones((4, 10), "float32")))
    ),
    case("raw strings for token ids", ValueError, r"'text_input' .* not strings\. Text becomes token ids through a TextVectorization")(
        lambda tmp: fusion()(inputs(text_input=np.full((4, 10), "word")))
    ),
    case("token id beyond the vocabulary", ValueError, r"token ids from 0 \(padding\) to 29 .* ids from 3 to 30")(
        lambda tmp: fusion()(inputs(text_input=np.tile(np.arange(3, 31, 3, dtype="int32"), (4, 1))))
    ),
    case("negative token id", ValueError, r"token ids from 0 \(padding\) to 29 .* ids from -1 to")(
        lambda tmp: fusion().predict(inputs(text_input=np.full((4, 10), -1, "int32")), verbose=0)
    ),
    case("NaN features", ValueError, r"'image_input' .* NaN or infinite values in example\(s\) \[2\] of 4.*1 NaN and 0 infinite")(
        lambda tmp: fusion()(inputs(image_input=np.where(np.arange(48).reshape(4, 12) == 30, np.nan, 0.5).astype("float32")))
    ),
    case("infinite features in fit", ValueError, r"NaN or infinite values in example\(s\) \[0, 1, 2, 3\].*0 NaN and 48 infinite")(
        lambda tmp: fusion().fit(inputs(image_input=np.full((4, 12), np.inf, "float32")), targets(), verbose=0)
    ),
    case("empty batch", ValueError, r"hold no examples \(batch size 0\)")(
        lambda tmp: fusion().predict({"image_input": np.zeros((0, 12), "float32"), "text_input": np.zeros((0, 10), "int32")})
    ),
    case("batch sizes differ", ValueError, r"same batch size.*\{'image_input': 3, 'text_input': 4\}")(
        lambda tmp: fusion().evaluate(inputs(image_input=np.zeros((3, 12), "float32")), targets(), verbose=0)
    ),
    case("served: missing key", ValueError, r"text_input")(lambda tmp: served()(inputs(text_input=None))),
    case("served: NaN", ValueError, r"input 'image_input' has NaN or infinite values in example\(s\) \[0, 1, 2, 3\]")(
        lambda tmp: served()(inputs(image_input=np.full((4, 12), np.nan, "float32")))
    ),
    case("served: wrong shape", ValueError, r"image_input.*received shape \(4, 5\)")(
        lambda tmp: served()(inputs(image_input=np.zeros((4, 5), "float32")))
    ),
    # --- files ---
    case("truncated PNG", UnreadableFileError, r"cut\.png", lambda tmp: write(tmp, "cut.png", png_bytes()[:40]))(
        lambda tmp: read_image(tmp / "cut.png")
    ),
    case("text saved as .png", UnreadableFileError, r"notes\.png", lambda tmp: write(tmp, "notes.png", "no image"))(
        lambda tmp: read_image(tmp / "notes.png")
    ),
    case("WAV with a wrong header", UnreadableFileError, r"header\.wav",
         lambda tmp: write(tmp, "header.wav", b"RIFX" + wav_bytes()[4:]))(lambda tmp: read_audio(tmp / "header.wav")),
    case("WAV cut short", UnreadableFileError, r"short\.wav", lambda tmp: write(tmp, "short.wav", wav_bytes()[:30]))(
        lambda tmp: read_audio(tmp / "short.wav")
    ),
    case("missing audio file", UnreadableFileError, r"absent\.wav")(lambda tmp: read_audio(tmp / "absent.wav")),
    case("empty text file", UnreadableFileError, r"empty\.txt", lambda tmp: write(tmp, "empty.txt", b""))(
        lambda tmp: read_text(tmp / "empty.txt")
    ),
    case("non-UTF-8 text", UnreadableFileError, r"gbk\.txt.*UTF-8",
         lambda tmp: write(tmp, "gbk.txt", "多模态学习".encode("gbk")))(lambda tmp: read_text(tmp / "gbk.txt")),
    case("vectorizer file not UTF-8", ValueError, r"vocab\.json is not a saved text vectorizer",
         lambda tmp: write(tmp, "vocab.json", "词表".encode("gbk")))(lambda tmp: load_text_vectorizer(tmp / "vocab.json")),
    case("vectorizer file cut short", ValueError, r"vocab\.json is not a saved text vectorizer",
         lambda tmp: write(tmp, "vocab.json", '{"format": "mmzoo.text_vec'))(
        lambda tmp: load_text_vectorizer(tmp / "vocab.json")
    ),
    case("SavedModel folder without the model", ValueError, r"no_model", lambda tmp: (tmp / "no_model").mkdir())(
        lambda tmp: mmzoo.load_saved_model(tmp / "no_model")
    ),
    case("export over an existing version", FileExistsError, r"Version 1 of 'mlp' exists already.*Pass another version", exported_mlp)(
        lambda tmp: mmzoo.export(build_small("mlp"), export_dir=tmp / "exports", version=1, verbose=False)
    ),
    case("export root is a file", ValueError, r"exports", lambda tmp: write(tmp, "exports", "a file"))(
        lambda tmp: mmzoo.export(build_small("mlp"), export_dir=tmp / "exports", verbose=False)
    ),
    # --- the command line ---
    case("cli: misspelt model", CommandFailed, r"mmzoo train: error: .*Did you mean 'concat_fusion'")(
        lambda tmp: cli("train", "concat_fusoin")
    ),
    case("cli: zero epochs", CommandFailed, r"mmzoo train: error: argument --epochs")(
        lambda tmp: cli("train", "mlp", "--epochs", "0")
    ),
    case("cli: unknown precision", CommandFailed, r"argument --mixed-precision: invalid choice: 'fp8'")(
        lambda tmp: cli("train", "mlp", "--mixed-precision", "fp8")
    ),
    case("cli: --save not .keras", CommandFailed, r"--save must be a \.keras file path.*model\.h5",
         lambda tmp: write(tmp, "model.h5", "old weights"))(
        lambda tmp: cli("train", "mlp", "--save", str(tmp / "model.h5"), "--export-dir", "")
    ),
    case("cli: export dir is a file", CommandFailed, r"--export-dir .* is a file, not a directory",
         lambda tmp: write(tmp, "taken", "a file"))(
        lambda tmp: cli("train", "mlp", "--export-dir", str(tmp / "taken" / "models"))
    ),
    case("cli: evaluate a file that is no model", CommandFailed, r"not a \.keras file \(a zip archive\)",
         lambda tmp: write(tmp, "model.keras", "not a zip"))(lambda tmp: cli("evaluate", str(tmp / "model.keras"))),
    case("cli: evaluate a missing file", CommandFailed, r"no model file at")(
        lambda tmp: cli("evaluate", str(tmp / "missing.keras"))
    ),
    case("cli: export a version that exists", CommandFailed, r"mmzoo export: error: Version 1 of 'mlp' exists already", saved_and_exported_mlp)(
        lambda tmp: cli("export", str(tmp / "model.keras"), "--export-dir", str(tmp / "out"), "--version", "1")
    ),
]


def snapshot(directory):
    """Every file under ``directory`` with its bytes."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


def test_the_catalogue_has_at_least_thirty_distinct_cases():
    assert len(CATALOGUE) >= 30
    assert len({entry.id for entry in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("entry", CATALOGUE, ids=[entry.id for entry in CATALOGUE])
def test_bad_input_is_refused_clearly_and_leaves_files_whole(entry, tmp_path):
    """The error and its message; then every file is as the set-up left it, and no temporary is left."""
    if entry.setup is not None:
        entry.setup(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(entry.error, match=entry.match):
        entry.mistake(tmp_path)
    assert snapshot(tmp_path) == before, "a call that failed changed, removed or added files"


# --- determinism ----------------------------------------------------------------------------

HEAVY = {"pretrained_fusion", "vgg16_features"}  # VGG16/ResNet50 towers: seconds per step


def registry(heavy_is_slow=True):
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY and heavy_is_slow else n for n in mmzoo.list_models()]


def trained_weights(name, seed):
    """Weights of ``name`` after 2 epochs on the shuffled embedded data, everything seeded by ``seed``."""
    keras.utils.set_random_seed(seed)
    model = build_small(name)
    data = mmzoo.data.synthetic(model, n=48, batch_size=16, seed=seed, shuffle=True)
    model.fit(data, epochs=2, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("name", [n for n in mmzoo.list_models() if n not in HEAVY])
def test_the_same_seed_gives_bit_identical_weights(name):
    first, second, other = trained_weights(name, 7), trained_weights(name, 7), trained_weights(name, 8)
    assert len(first) == len(second)
    for index, (a, b) in enumerate(zip(first, second)):
        assert a.tobytes() == b.tobytes(), f"weight {index} differs between two runs with seed 7"
    assert any(a.shape != c.shape or a.tobytes() != c.tobytes() for a, c in zip(first, other)), "seed 8 gave seed 7's weights"


# --- no arbitrary code in saved models ------------------------------------------------------


def _layer_classes(config):
    """Every ``class_name`` in a saved model's config, at any depth."""
    if isinstance(config, dict):
        found = {config["class_name"]} if isinstance(config.get("class_name"), str) else set()
        return found.union(*(_layer_classes(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(_layer_classes(value) for value in config))
    return set()


@pytest.mark.parametrize("name", registry())
def test_no_model_holds_a_lambda_and_each_loads_in_safe_mode(name, tmp_path):
    model = build_small(name)
    lambdas = [layer.name for layer in model._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Lambda)]
    assert not lambdas, f"Lambda layers in {name}: {lambdas}"
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    assert "Lambda" not in _layer_classes(config)
    assert "__lambda__" not in json.dumps(config)
    loaded = keras.saving.load_model(path, safe_mode=True)  # refuses any serialised code
    assert type(loaded) is type(model)


# --- a run killed at a random point ---------------------------------------------------------

KILLABLE = """
import json, os, sys
import numpy as np
import keras
import mmzoo
from mmzoo.data import synthetic
from mmzoo.registry import get_entry
from mmzoo.training import train

checkpoint_dir, log, kill = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
EPOCHS, STEPS = 4, 8  # 64 examples in batches of 8


def append(record):
    with open(log, "a") as file:
        file.write(json.dumps(record) + "\\n")


class Probe(keras.callbacks.Callback):
    # Runs after the backup: logs the weights each epoch ended with, and the ones a run began with.
    def on_train_begin(self, logs=None):
        append({"begin": [float(np.sum(w)) for w in self.model.get_weights()]})

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if kill.get("step") == self.epoch * STEPS + batch:
            os.kill(os.getpid(), 9)  # SIGKILL: no clean-up of any kind

    def on_epoch_end(self, epoch, logs=None):
        append({"epoch": epoch, "weights": [float(np.sum(w)) for w in self.model.get_weights()]})


if "save" in kill:  # die inside the backup of epoch kill["save"], after the weights are written
    original = keras.Model.save_weights

    def save_weights(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)
        if "backup" in str(filepath) and kill["save"] == save_weights.epoch:
            os.kill(os.getpid(), 9)
        save_weights.epoch += "backup" in str(filepath)

    save_weights.epoch = 0
    keras.Model.save_weights = save_weights

history = train("mlp", lambda m: synthetic(m, n=64, batch_size=8), epochs=EPOCHS, checkpoint_dir=checkpoint_dir,
                callbacks=[Probe()], verbose=0, **get_entry("mlp").test_config)
append({"finished": history.epoch})
"""


def run_killable(tmp_path, run, kill):
    code, output = run_python(KILLABLE, 240, argv=[str(tmp_path / f"ckpt-{run}"), str(tmp_path / "log"), json.dumps(kill)])
    lines = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    (tmp_path / "log").unlink(missing_ok=True)
    return code, output, [json.loads(line) for line in lines]


KILL_STEP = random.Random(20261122).randrange(1, 4 * 8 - 1)  # fixed at collection: pytest-xdist workers must agree


@pytest.mark.slow
@pytest.mark.parametrize("kill", [{"step": KILL_STEP}, {"save": 1}], ids=[f"at step {KILL_STEP}", "inside a backup save"])
def test_a_run_killed_at_a_random_point_ends_with_the_same_number_of_epochs(kill, tmp_path):
    code, output, uninterrupted = run_killable(tmp_path, "whole", {})
    assert code == 0, output[-3000:]
    expected_epochs = uninterrupted[-1]["finished"]
    assert expected_epochs == [0, 1, 2, 3]

    code, output, killed = run_killable(tmp_path, "killed", kill)
    assert code == -signal.SIGKILL, output[-3000:]
    code, output, resumed = run_killable(tmp_path, "killed", {})
    assert code == 0, output[-3000:]

    done_before = [record for record in killed if "epoch" in record]
    finished_after = resumed[-1]["finished"]
    assert [r["epoch"] for r in done_before] + finished_after == expected_epochs
    if done_before:  # the restart began from the weights of the last epoch that finished, not a later half
        assert resumed[0]["begin"] == done_before[-1]["weights"]
    assert not (tmp_path / "ckpt-killed" / "backup").exists()  # a finished run removes its backup
    assert keras.saving.load_model(tmp_path / "ckpt-killed" / "best.keras", safe_mode=True)


# --- what an atomic writer renames into place is on disk first ------------------------------


class DiskLog:
    """Every ``os.fsync`` (the real path of the file or folder synced) and every rename, in order."""

    def __init__(self, monkeypatch):
        self.events = []
        fsync, replace, rename = os.fsync, os.replace, os.rename

        def recording_fsync(fd):
            self.events.append(("fsync", os.path.realpath(os.readlink(f"/proc/self/fd/{fd}"))))
            return fsync(fd)

        def recorder(function):
            def renaming(source, target, *args, **kwargs):
                self.events.append(("rename", os.path.realpath(source), os.path.realpath(target)))
                return function(source, target, *args, **kwargs)

            return renaming

        monkeypatch.setattr(os, "fsync", recording_fsync)
        monkeypatch.setattr(os, "replace", recorder(replace))
        monkeypatch.setattr(os, "rename", recorder(rename))
        import mmzoo.serving

        monkeypatch.setattr(mmzoo.serving, "_rename_no_replace", recorder(mmzoo.serving._rename_no_replace))

    def check_durable(self, target, files=None):
        """The last rename onto ``target``: before it, its source (each of ``files`` inside a folder
        source, and the folder) and the source's folder were fsynced; after it, the target's folder."""
        target = os.path.realpath(target)
        renames = [i for i, event in enumerate(self.events) if event[0] == "rename" and event[2] == target]
        assert renames, f"nothing was renamed onto {target}: {self.events}"
        index = renames[-1]
        source = self.events[index][1]
        before = {event[1] for event in self.events[:index] if event[0] == "fsync"}
        after = {event[1] for event in self.events[index + 1 :] if event[0] == "fsync"}
        needed = [source, os.path.dirname(source)] + [os.path.join(source, name) for name in files or ()]
        missing = [path for path in needed if path not in before]
        assert not missing, f"not fsynced before the rename {source} -> {target}: {missing}; log: {self.events}"
        assert os.path.dirname(target) in after, f"{os.path.dirname(target)} not fsynced after the rename"


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")


@needs_proc
def test_save_model_atomically_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    from mmzoo.checkpoints import save_model_atomically

    model = build_small("mlp")
    log = DiskLog(monkeypatch)
    save_model_atomically(model, tmp_path / "model.keras")
    log.check_durable(tmp_path / "model.keras")


@needs_proc
def test_checkpoint_and_backup_are_fsynced_before_and_after_their_renames(tmp_path, monkeypatch):
    from mmzoo.checkpoints import AtomicBackupAndRestore, AtomicModelCheckpoint

    model = build_small("mlp")
    data = mmzoo.data.synthetic(model, n=16, batch_size=8)
    callbacks = [
        AtomicBackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False),
        AtomicModelCheckpoint(str(tmp_path / "best.keras"), monitor="loss", save_best_only=False),
    ]
    log = DiskLog(monkeypatch)
    model.fit(data, epochs=2, callbacks=callbacks, verbose=0)
    log.check_durable(tmp_path / "best.keras")
    log.check_durable(tmp_path / "backup" / "state", files=["latest.weights.h5", "training_metadata.json"])


@needs_proc
def test_an_export_is_fsynced_before_and_after_it_is_published(tmp_path, monkeypatch):
    model = build_small("mlp")
    log = DiskLog(monkeypatch)
    path = mmzoo.export(model, export_dir=tmp_path / "exports", verbose=False)
    files = [str(p.relative_to(path)) for p in pathlib.Path(path).rglob("*")]
    assert "saved_model.pb" in files and "variables" in files
    log.check_durable(path, files=files)


@needs_proc
def test_benchmark_json_is_fsynced_before_and_after_its_rename(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "benchmarks_common", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"
    )
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    log = DiskLog(monkeypatch)
    row = {"name": "a", "ours": 2.0, "baseline": 1.0, "unit": "x/s", "ratio": 2.0}
    common.write_json([row], str(tmp_path / "results" / "latest.json"))
    log.check_durable(tmp_path / "results" / "latest.json")
