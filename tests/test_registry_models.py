"""Every registered model, automatically: a model added to the registry is tested here with no new code."""

import numpy as np
import pytest

import mmzoo
from helpers import (
    build_small,
    check_config_round_trip,
    check_every_weight_gets_a_gradient,
    check_forward,
    check_keras_file_round_trip,
    check_learns_a_batch,
    check_freeze_keeps_the_encoders,
    check_learns_the_embedded_data,
    check_missing_modalities,
    check_modality_dropout,
    check_preset_round_trip,
    check_saved_model_round_trip,
)

MODELS = mmzoo.list_models()
HEAVY = {"pretrained_fusion", "vgg16_features"}  # VGG16/ResNet50 towers: seconds per step
# Without a classifier early_fusion regresses 24 features onto 10 class prototypes: its
# loss falls more slowly than a classifier's (5% in about 5 epochs of 256 examples).
EMBEDDED_EPOCHS = {"early_fusion": 8}


def models():
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in MODELS]


@pytest.mark.parametrize("name", models())
def test_builds_compiled_with_a_card(name):
    model = build_small(name)
    assert model.compiled
    assert isinstance(model.optimizer, mmzoo.optimizers.Adam)  # token rows merged (tests/test_optimizers.py)
    card = mmzoo.describe(name)
    assert card.summary and card.source and card.task and card.corrections
    assert sorted(card.inputs) == sorted(mmzoo.dummy_batch(model)[0])
    assert all(dtype in ("float32", "int32") for _, dtype in card.inputs.values())


@pytest.mark.parametrize("name", models())
def test_forward_pass(name):
    check_forward(build_small(name))


@pytest.mark.parametrize("name", models())
def test_one_train_step_has_finite_loss(name):
    model = build_small(name)
    x, y = mmzoo.dummy_batch(model, batch_size=4)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0


@pytest.mark.parametrize("name", models())
def test_learns_a_fixed_batch(name):
    check_learns_a_batch(build_small(name))


@pytest.mark.parametrize("name", models())
def test_learns_the_embedded_data(name):
    check_learns_the_embedded_data(build_small(name), epochs=EMBEDDED_EPOCHS.get(name, 3))


@pytest.mark.parametrize("name", models())
def test_config_round_trip(name):
    check_config_round_trip(build_small(name))


@pytest.mark.parametrize("name", models())
def test_keras_file_round_trip_in_safe_mode(name, tmp_path):
    check_keras_file_round_trip(build_small(name), tmp_path)


@pytest.mark.parametrize("name", models())
def test_saved_model_round_trip(name, tmp_path):
    check_saved_model_round_trip(build_small(name), tmp_path)


@pytest.mark.parametrize("name", models())
def test_preset_round_trip(name, tmp_path):
    check_preset_round_trip(build_small(name), tmp_path)


@pytest.mark.parametrize("name", models())
def test_freeze_keeps_the_encoders(name):
    check_freeze_keeps_the_encoders(build_small(name))


@pytest.mark.parametrize("name", models())
def test_every_weight_gets_a_gradient(name):
    check_every_weight_gets_a_gradient(build_small(name))


@pytest.mark.parametrize("name", models())
def test_missing_modalities_have_no_effect(name):
    check_missing_modalities(name)


@pytest.mark.parametrize("name", models())
def test_modality_dropout_acts_while_training_only(name):
    check_modality_dropout(name)
