"""The project's MT architectures as an LPZero suite (``task:<task>``) and a stored proxy as a
predictor of them, up to an architecture search ranked by it.

The demo task's architectures get a hand-made validation BLEU; two are left without one."""

import pytest
import torch

from nasstudio.cli import main
from nasstudio.lpzero.expr import parse
from nasstudio.lpzero.suites import SuiteError, open_suite
from nasstudio.metrics import efficiency
from nasstudio.predict.proxy import ProxyPredictor
from nasstudio.space import get_space
from nasstudio.store import BLEU_VALID, KNOWN_TASKS, Measurement, Project, StoredProxy

DEMO = KNOWN_TASKS["demo"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def hand_bleu(arch):
    return 20 + sum(arch.encoder_ffn_dims) / 100


@pytest.fixture
def trained(project):
    """The demo task with 8 architectures, the first 6 with a measured valid BLEU."""
    project.ensure_task(DEMO)
    archs = get_space(DEMO.space).sample_many(8, seed=4)
    project.add_architectures("demo", archs, "test")
    project.add_measurements(
        Measurement(a.id, "demo", BLEU_VALID, hand_bleu(a), "train") for a in archs[:6]
    )
    return project, archs


def test_the_suite_is_the_measured_architectures_against_their_bleu(trained):
    project, archs = trained
    suite = open_suite("task:demo", project=project)
    assert suite.name == "task:demo" and suite.truth_label == "BLEU (valid)"
    assert sorted(suite.arch_ids) == sorted(a.id for a in archs[:6])
    by_id = {a.id: a for a in archs}
    assert suite.truth == tuple(hand_bleu(by_id[i]) for i in suite.arch_ids)
    assert len(open_suite("task:demo", project=project, sample=3, seed=1)) == 3


def test_each_encoder_and_decoder_layer_gives_the_proxy_inputs(trained):
    project, _ = trained
    suite = open_suite("task:demo", project=project)
    arch = project.architecture(suite.arch_ids[0])
    entries = suite.inputs(0)
    # Per layer an attention entry, then one per linear layer: q, k, v, out (twice in a
    # decoder layer: self- and encoder-decoder attention), FFN in and out.
    layers = []
    for entry in entries:
        if "softmax" in entry:
            layers.append([entry])
        else:
            layers[-1].append(entry)
    assert [len(layer) - 1 for layer in layers] == [6] * arch.encoder_layers + [10] * (
        arch.decoder_layers
    )
    d, e = arch.decoder_embed_dim, arch.encoder_embed_dim
    for (attention, *linears), heads, ffn, dim in zip(
        layers,
        arch.encoder_heads + arch.decoder_heads,
        arch.encoder_ffn_dims + arch.decoder_ffn_dims,
        [e] * arch.encoder_layers + [d] * arch.decoder_layers,
        strict=True,
    ):
        assert set(attention) == {"q", "k", "v", "softmax"}
        assert attention["q"].shape[1] == heads
        assert attention["q"].shape[3] == arch.qkv_dim // heads
        maps = attention["softmax"]
        torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
        for linear in linears:
            assert set(linear) == {"act", "weight", "grad"}
            assert linear["grad"].shape == linear["weight"].shape
            assert linear["weight"].shape[0] <= 32 == linear["act"].shape[-1]  # units kept
        fc1, fc2 = linears[-2:]
        assert fc1["weight"].shape == (32, dim) and fc2["weight"].shape == (32, ffn)
    assert layers[-1][0]["softmax"].triu(1).abs().max() == 0  # a decoder position sees no later
    assert layers[0][0]["softmax"].triu(1).abs().max() > 0  # an encoder position sees all


def test_classic_proxies_count_the_parameters_as_the_analytic_metrics_do(trained):
    project, _ = trained
    suite = open_suite("task:demo", project=project)
    arch = project.architecture(suite.arch_ids[0])
    classic = suite.classic(0)
    assert classic["num_parameters_nonembedding"] == efficiency(arch, 256).params_without_embeddings
    assert classic["snip"] > 0 and classic["grad_norm"] > 0


def test_a_task_without_two_measured_architectures_is_refused(project):
    project.ensure_task(DEMO)
    with pytest.raises(SuiteError, match="0 architectures with a measured validation BLEU"):
        open_suite("task:demo", project=project)
    with pytest.raises(SuiteError, match="no task 'wmt'"):
        open_suite("task:wmt", project=project)


def test_a_stored_proxy_predicts_its_value_times_its_sign(trained):
    project, _ = trained
    formula = "add(mean(act), l1_norm(grad))"
    plus = ProxyPredictor(StoredProxy("p", formula, 1, "task:demo"), DEMO.vocab_size)
    minus = ProxyPredictor(StoredProxy("m", formula, -1, "task:demo"), DEMO.vocab_size)
    assert (plus.kind, plus.metric) == ("proxy", "proxy:p")
    suite = open_suite("task:demo", project=project)
    expected = parse(formula).value(suite.inputs(0))
    arch = project.architecture(suite.arch_ids[0])
    (up,), (down,) = plus.predict([arch]), minus.predict([arch])
    assert up.value == pytest.approx(expected) and down.value == pytest.approx(-expected)


def test_a_search_ranked_by_a_stored_proxy_records_its_generations(trained, capsys):
    project, _ = trained
    path = project.path
    code = main(
        [
            *("lpzero", "save", "-p", str(path), "--task", "demo", "--name", "ffn"),
            *("--expr", "add(mean(act), l1_norm(grad))"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "stored proxy 'ffn'" in out
    small = ["--iterations", "2", "--population", "4", "--parents", "2", "--mutations", "1"]
    small += ["--crossovers", "1", "--executor", "thread"]
    code = main(["search", "run", "-p", str(path), "--predictor", "proxy:ffn", *small])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "2 generations of demo" in out and "(proxy (proxy:ffn))" in out
    with Project(path) as reopened:
        (row,) = reopened.searches()
        assert row["generations"] == 2 and row["scorer"] == "proxy:ffn"
        table = reopened.table("demo")
        assert "pred:proxy:ffn@ffn" in table.columns  # the best's proxy value is kept


def test_an_unknown_proxy_predictor_is_named(trained, capsys):
    project, _ = trained
    code = main(["search", "run", "-p", str(project.path), "--predictor", "proxy:none"])
    assert code == 1
    assert "no stored proxy 'none'" in capsys.readouterr().err
