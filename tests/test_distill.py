"""LLM-Distill-PP / the fitted predictor: llmas's regressor recovers a labelling function.

The labels come from ``fake_bleu``, the function the loopback LLM server answers with, applied
to the same HAT arch-info lines its prompts carry (directly: 500 server round trips would only
add time). Training uses a documented test setting (a network of 64-unit layers, 400 steps
at 3e-3 from the labels' mean, two seeds) instead of llmas's 400-unit layers and 5,000 steps at
1e-5 so the test stays fast.
"""

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from nasstudio.predict.base import Predictor
from nasstudio.predict.distill import (
    DistilledPredictor,
    FitSettings,
    distill_features,
    feature_scale,
    kind_of_labels,
    labelled_pairs,
)
from nasstudio.space import Architecture, get_space, to_arch_info
from nasstudio.store import Prediction
from tests.llm_server import _config, add_wmt_architectures, fake_bleu

FAST = FitSettings(
    steps=400,
    batch_size=64,
    learning_rate=3e-3,
    hidden_dim=64,
    hidden_layers=2,
    seeds=(0, 1),
    start_at_mean=True,
)


@pytest.fixture(scope="module")
def fitted():
    space = get_space("hat-wmt")
    archs = space.sample_many(700, seed=7)
    labels = [fake_bleu(_config(to_arch_info(a))) for a in archs]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: more threads only contend on a shared CI machine
    try:
        predictor = DistilledPredictor.fit(
            archs[:500], labels[:500], space, "distill-fake", settings=FAST
        )
    finally:
        torch.set_num_threads(threads)
    return predictor, archs[500:], labels[500:]


def test_llmas_normalisation_of_a_hand_computed_architecture():
    arch = Architecture(
        encoder_embed_dim=640,
        decoder_embed_dim=512,
        encoder_ffn_dims=(3072,) * 6,
        encoder_heads=(8,) * 6,
        decoder_ffn_dims=(1024, 2048),
        decoder_heads=(4, 8),
        decoder_cross_heads=(8, 8),
        decoder_arbitrary_attn=(-1, 2),
    )
    scale = feature_scale(get_space("hat-wmt"))
    assert scale.tolist() == [640, 6, 3072, 8, 640, 6, 3072, 8, 8, 3]  # llmas's feature_norm
    expected = [1, 1, 1, 1, 512 / 640, 2 / 6, 1536 / 3072, 6 / 8, 1, (1 + 0.5) / 3]
    np.testing.assert_allclose(distill_features([arch], scale)[0], expected)


def test_defaults_are_llmas():
    s = FitSettings()
    assert (s.steps, s.batch_size, s.learning_rate, s.hidden_dim) == (5000, 128, 1e-5, 400)
    assert not s.start_at_mean


def test_recovers_the_labelling_function_on_held_out_architectures(fitted):
    predictor, held_out, labels = fitted
    assert isinstance(predictor, Predictor)
    mean, _ = predictor.predict_values(held_out)
    assert kendalltau(mean, labels).statistic >= 0.9


def test_ensemble_std_is_positive_and_finite(fitted):
    predictor, held_out, _ = fitted
    results = predictor.predict(held_out)
    assert [r.arch_id for r in results] == [a.id for a in held_out]
    stds = np.array([r.std for r in results])
    assert np.all(np.isfinite(stds)) and stds.mean() > 0
    assert results[0].provenance["fitted_on"]["architectures"] == 500


def test_save_load_round_trip_predicts_the_same(fitted, tmp_path):
    predictor, held_out, _ = fitted
    predictor.save(tmp_path / "distilled.pt")
    loaded = DistilledPredictor.load(tmp_path / "distilled.pt")
    assert (loaded.stored_name, loaded.kind, loaded.settings) == ("distill-fake", "distilled", FAST)
    assert loaded.name == "distilled:distill-fake"
    assert loaded.provenance == predictor.provenance
    before, loaded_after = predictor.predict_values(held_out), loaded.predict_values(held_out)
    np.testing.assert_array_equal(before[0], loaded_after[0])
    np.testing.assert_array_equal(before[1], loaded_after[1])


def test_load_refuses_another_file(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": [1.0]}, other)
    with pytest.raises(ValueError, match="not a distilled predictor file"):
        DistilledPredictor.load(other)


def test_labels_come_from_an_llm_column_or_measurements(project):
    measured, unmeasured = add_wmt_architectures(project, measured=3, unmeasured=2)
    llm_values = {arch_id: 20.0 + i for i, arch_id in enumerate(unmeasured + measured[:1])}
    project.add_predictions(
        Prediction(arch_id, "wmt14ende", "bleu", value, "llm", "fake")
        for arch_id, value in llm_values.items()
    )
    archs, values = labelled_pairs(project, "wmt14ende", "pred:bleu@fake")
    assert dict(zip([a.id for a in archs], values, strict=True)) == llm_values
    archs, _ = labelled_pairs(project, "wmt14ende", "bleu_valid")
    assert sorted(a.id for a in archs) == sorted(measured)
    assert (kind_of_labels("pred:bleu@fake"), kind_of_labels("bleu_valid")) == (
        "distilled",
        "fitted",
    )
    with pytest.raises(ValueError, match="no values in column 'pred:bleu@other'"):
        labelled_pairs(project, "wmt14ende", "pred:bleu@other")
