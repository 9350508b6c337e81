"""benchmarks/peer_pytorch.py: its PyTorch twins are the mmzoo networks, and it runs end to end.

The twins get the Keras model's weights, so the checks are exact: the same trainable
parameters (PyTorch's LSTM has one more bias vector, 4 x units), the same outputs on the
same inputs, the same loss in a training step and the same step of Adam. A wrong layer,
size, padding, mask, flatten order, normalisation constant, loss or learning rate fails
one of them. How fast anything is, is measured by the benchmark, never by a test.
"""

import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ("attention_fusion", "mha_fusion", "emotion", "fusion_classifier")


def load_benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # its siblings: common, train_throughput
    spec = importlib.util.spec_from_file_location("peer_pytorch", ROOT / "benchmarks" / "peer_pytorch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peer = load_benchmark()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One PyTorch thread: the tests share the cores with other workers (PyTorch's OpenMP threads
    spin-wait, and on a busy machine a step then takes 100 times as long)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def build_pair(name, small=True, n=16, **overrides):
    """``(keras model, its twin, x, y)``: the model at its test_config (or benchmarked size), adapted, copied."""
    import mmzoo
    from mmzoo.data import synthetic_arrays
    from mmzoo.training import adapt_inputs

    config = {**peer.model_config(name, peer.parse_args(["--small"] if small else [])), **overrides}
    model = mmzoo.build(name, **config)
    x, y = synthetic_arrays(model, n=n)
    assert adapt_inputs(model, (x, y)) == (["standardize", "standardize"] if name == "fusion_classifier" else [])
    return model, peer.build_twin(model, name), x, y


def keras_loss(model, x, y):
    """The model's compiled loss on (x, y), computed in training mode (batch statistics), no update."""
    predictions = model(x, training=True)
    return float(model.compute_loss(x=x, y=y, y_pred=predictions))


@pytest.mark.parametrize("name", MODELS)
def test_twin_has_the_trainable_parameters_of_the_keras_model(name):
    model, net, _, _ = build_pair(name)
    expected = {"attention_fusion": 4 * 32, "mha_fusion": 4 * 32, "emotion": 0, "fusion_classifier": 0}[name]
    assert peer.documented_difference(net) == expected  # bias_hh of the LSTM (units=32 at test_config)
    assert peer.trainable_parameters(net) == peer.keras_trainable_parameters(model) + expected


def test_benchmarked_sizes_have_the_same_parameters():
    counts = {}
    for name in MODELS:
        model, net, _, _ = build_pair(name, small=False, n=4)
        counts[name] = (peer.keras_trainable_parameters(model), peer.trainable_parameters(net))
    assert counts == {
        "attention_fusion": (105410, 105410 + 256),  # + the LSTM's bias_hh: 4 x 64
        "mha_fusion": (138689, 138689 + 256),
        "emotion": (1298855, 1298855),
        "fusion_classifier": (241746, 241746),
    }


@pytest.mark.parametrize("name", MODELS)
def test_twin_computes_what_keras_computes(name):
    """Same weights, same inputs (padding, all-padding texts and silent clips included): same probabilities."""
    model, net, x, _ = build_pair(name)
    expected = np.asarray(model(x, training=False))
    net.eval()
    with torch.no_grad():
        got = net.probabilities(net(peer.torch_inputs(x))).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_fusion_classifier_twin_at_the_benchmarked_size():
    """48x48 images and 1 s clips: the spectrogram's stride-2 stem (TensorFlow's asymmetric "same"
    padding) and the frame-mask pooling that the test_config's sizes do not reach."""
    model, net, x, _ = build_pair("fusion_classifier", small=False, n=8)
    assert net.encoders["audio"].stride == 2 and net.encoders["audio"].cnn.stem.pad is not None
    expected = np.asarray(model(x, training=False))
    net.eval()
    with torch.no_grad():
        got = net.probabilities(net(peer.torch_inputs(x))).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5)


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_matches(name):
    """One step of each side's optimizer on the same batch: the same loss, then the same weights.

    The loss (and with it the gradients) must match, and after Adam's first step, which moves
    each weight by about the learning rate, every weight and batch-normalisation statistic
    must too, to 1% of a step: a wrong loss, learning rate, momentum or layer fails. The embeddings
    too: mmzoo's Adam sums a token's gradient rows first, as PyTorch's dense Adam does (Keras'
    own moved a token seen k times in the batch up to sqrt(k) times as far). One known
    difference is left out: PyTorch's second LSTM bias (frozen here, so the LSTM's bias moves
    once, as in Keras).
    PyTorch's epsilon is set to what Keras' is at the first step (it adds epsilon before the
    bias correction: epsilon / sqrt(1 - beta_2) after it). fusion_classifier without its
    dropouts (random), so that its batch normalisation's training mode is what is compared."""
    overrides = {"dropout": 0.0, "modality_dropout": 0.0} if name == "fusion_classifier" else {}
    model, net, x, y = build_pair(name, n=32, **overrides)
    tx, ty = peer.torch_inputs(x), peer.torch_targets(y, net)
    for key, parameter in net.named_parameters():
        parameter.requires_grad_("bias_hh" not in key)
    optimizer = peer.torch_optimizer(model, net)
    for group in optimizer.param_groups:
        group["eps"] = group["eps"] / math.sqrt(1 - group["betas"][1])

    before_keras = float(model.train_on_batch(x, y, return_dict=True)["loss"])
    before_torch = peer.one_step(net, net, optimizer, tx, ty)
    assert before_torch == pytest.approx(before_keras, rel=1e-4)
    chance = math.log(2) if net.binary else math.log(int(model.output.shape[-1]))
    assert 0.5 * chance < before_keras < 2.0 * chance  # fresh weights: near chance

    stepped = peer.build_twin(model, name).state_dict()  # Keras' weights after its step
    compared = 0
    for key, value in net.state_dict().items():
        if "num_batches_tracked" in key:
            continue
        ours, theirs = value.numpy(), stepped[key].numpy()
        if key.endswith("running_var"):
            # PyTorch updates the running variance with the unbiased batch variance, Keras with the
            # biased one: a factor n / (n - 1), n = batch x height x width (over 500 here).
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, err_msg=key)
        else:
            # A gradient within rounding of zero (|g| near epsilon) may move a weight differently;
            # every other weight moves the same to 1% of a step, and none by more than a step.
            difference = np.abs(ours - theirs)
            assert difference.max() < 1e-3 and np.mean(difference < 1e-5) > 0.99, (key, difference.max())
        compared += 1
    assert compared >= 4

    after_keras = keras_loss(model, x, y)
    net.train()
    with torch.no_grad():
        after_torch = float(net.loss(net(tx), ty))
    assert after_keras < before_keras and after_torch < before_torch


def test_twin_masks_padding_like_keras():
    """Changing what padded tokens hold changes nothing; changing a real token does."""
    _, net, x, _ = build_pair("mha_fusion")
    tx = peer.torch_inputs(x)
    net.eval()
    with torch.no_grad():
        reference = net(tx)
        tokens = tx["text_input"].clone()
        padded = tokens == 0
        # The embedding of id 0 is what padded steps would read: make it huge, outputs must not move.
        net.embedding.weight[0] = 1e3
        np.testing.assert_allclose(net(tx).numpy(), reference.numpy(), atol=1e-6)
        tokens[~padded] = 1
        assert not np.allclose(net({**tx, "text_input": tokens}).numpy(), reference.numpy(), atol=1e-4)


def test_unsupported_variants_are_refused():
    import mmzoo

    with pytest.raises(ValueError, match="cross_modal"):
        peer.build_twin(mmzoo.build("mha_fusion", cross_modal=True, **peer.model_config("mha_fusion", peer.parse_args(
            ["--small"]))), "mha_fusion")
    with pytest.raises(ValueError, match="fusion"):
        peer.FusionClassifierTwin({"image": (16, 16, 1), "audio": (4000,)}, fusion="gating")


def test_arguments():
    args = peer.parse_args([])
    assert (args.examples, args.epochs, args.batch_size, args.repeats, args.jit) == (1024, 4, 32, 5, "auto")
    assert args.settle == 0.5
    quick = peer.parse_args(["--quick"])
    assert (quick.examples, quick.epochs, quick.repeats, quick.no_compile) == (512, 2, 3, True)
    for argv in (["--examples", "100"], ["--repeats", "0"], ["--models", "mlp"], ["--jit", "yes"],
                 ["--settle", "-1"]):
        with pytest.raises(SystemExit):
            peer.parse_args(argv)


# The tiny run through measure() is tests/test_benchmarks.py's, with every other benchmark's.
