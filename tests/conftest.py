import atexit
import importlib.util
import os
import pathlib
import shutil
import tempfile

# --- the same result online and offline ------------------------------------------------------
# Set before Keras is imported (it reads KERAS_HOME once, at import): an empty Keras cache, so
# that no test depends on weight files a machine happens to have downloaded, and likewise no
# TensorFlow Datasets data. Every connection outside 127.0.0.1 is refused, in this process and
# in every Python process the tests start (tests/netguard/sitecustomize.py, via PYTHONPATH),
# and fails the test that made it (the `_no_network` fixture).
_NETGUARD_DIR = pathlib.Path(__file__).parent / "netguard"
_scratch = tempfile.mkdtemp(prefix="mmzoo-tests-")
atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
os.environ["KERAS_HOME"] = os.path.join(_scratch, "keras-home")
os.environ["TFDS_DATA_DIR"] = os.path.join(_scratch, "tensorflow_datasets")
os.environ["MMZOO_NETGUARD_LOG"] = os.path.join(_scratch, "refused-connections.log")
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(_NETGUARD_DIR), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
)
_spec = importlib.util.spec_from_file_location("mmzoo_netguard", _NETGUARD_DIR / "sitecustomize.py")
netguard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netguard)  # installs the guard in this process

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


class RefusedConnections:
    """The connections refused since the test began, read from the guard's log."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def take(self):
        """Lines logged since the last take (or the test's start); they no longer fail the test."""
        if not self.path.exists():
            return []
        with self.path.open() as log:
            log.seek(self.offset)
            text = log.read()
            self.offset = log.tell()
        return text.splitlines()


def pytest_collection_finish(session):
    """A module that reaches for the network when imported (a probe in a skipif) fails the run."""
    attempts = RefusedConnections(os.environ["MMZOO_NETGUARD_LOG"])
    attempts.offset = 0
    lines = attempts.take()
    if lines:
        raise pytest.UsageError("collecting the tests tried to use the network:\n" + "\n".join(lines))


@pytest.fixture(autouse=True)
def refused_connections():
    """Fails the test if it (or a process it started) tried to reach an address outside 127.0.0.1."""
    refused = RefusedConnections(os.environ["MMZOO_NETGUARD_LOG"])
    yield refused
    attempts = refused.take()
    if attempts:
        pytest.fail("the test tried to use the network (tests must run the same offline):\n" + "\n".join(attempts))


@pytest.fixture(autouse=True)
def _no_cpu_xla_by_default(request, monkeypatch):
    """Keep models built in tests uncompiled by XLA unless a test is marked ``xla_auto``.

    On a CPU ``jit_compile="auto"`` turns XLA on for the models where it was measured to
    pay (mmzoo.training.precision.CPU_XLA_MODELS); its compilation costs seconds per model,
    which hundreds of small test models would pay for nothing. The tests of that choice are
    marked ``xla_auto`` and see the real table.
    """
    if request.node.get_closest_marker("xla_auto") is None:
        from mmzoo.training import precision

        monkeypatch.setattr(precision, "CPU_XLA_MODELS", frozenset())
        monkeypatch.setattr(precision, "_has_recurrent_layer", lambda model: False)
    yield


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from the same seed and float32, whatever the test before did."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()
