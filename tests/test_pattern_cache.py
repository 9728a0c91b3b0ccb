"""The disk cache of the Core ML quantizer's pattern graphs (quantize/pattern_cache.py).

A pattern read back from disk must match exactly the nodes the freshly traced one matches,
with the same names: the quantizer annotates through those names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dotcom_mobile.quantize import pattern_cache as pc

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def utils():
    from executorch.backends.apple.coreml.quantizer import _coreml_quantizer_utils

    return _coreml_quantizer_utils


class _Model(nn.Module):
    """Two conv-BN-SiLU branches added, then ReLU, and a linear + ReLU head: each pattern below matches."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 1)
        self.bn_a, self.bn_b = nn.BatchNorm2d(8), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = F.relu(F.silu(self.bn_a(self.a(x))) + F.silu(self.bn_b(self.b(x))))
        return F.relu(self.fc(y.mean((2, 3))))


def _matches(pattern: torch.fx.GraphModule, graph: torch.fx.Graph) -> list[dict[str, str]]:
    import copy

    from torch.fx.passes.utils.matcher_with_name_node_map_utils import SubgraphMatcherWithNameNodeMap

    found = SubgraphMatcherWithNameNodeMap(copy.deepcopy(pattern), ignore_literals=True).match(graph)
    return sorted(({k: v.name for k, v in m.name_node_map.items()} for m in found), key=repr)


@pytest.mark.parametrize("make, count", [
    (lambda u: u.get_conv_bn_pattern(2, F.silu, False), 2),
    (lambda u: u.get_binary_op_act_pattern(torch.add, F.relu, False), 1),
    (lambda u: u.get_linear_pattern(F.relu, False), 1),
], ids=["conv_bn_silu", "add_relu", "linear_relu"])
def test_a_pattern_read_back_matches_what_the_traced_one_matches(utils, make, count):
    traced = make(utils)
    data = json.loads(json.dumps(pc.encode_graph(traced)))  # through text, as on disk
    loaded = pc.decode_graph(data)
    assert [(n.op, n.name, str(n.target)) for n in loaded.graph.nodes] == \
        [(n.op, n.name, str(n.target)) for n in traced.graph.nodes]
    model = torch.export.export(_Model().eval(), (torch.randn(1, 3, 8, 8),)).module()
    want = _matches(traced, model.graph)
    assert len(want) == count and _matches(loaded, model.graph) == want


def test_the_key_names_the_pattern_and_what_it_closes_over(utils):
    def key(act):
        seen = {}

        def record(pattern, example_inputs, is_cuda=False):
            seen["key"] = pc.pattern_key(pattern, example_inputs, is_cuda)
            return None

        original = utils._get_aten_graph_module
        utils._get_aten_graph_module = record
        try:
            utils.get_conv_bn_pattern(2, act, False)
        finally:
            utils._get_aten_graph_module = original
        return seen["key"]

    assert key(F.silu) == key(F.silu) and key(F.silu) != key(F.relu)

    holder = object()

    class OverObject(nn.Module):
        def forward(self, x):
            return x if holder else x

    with pytest.raises(pc.Uncacheable, match="closure over a object"):
        pc.pattern_key(OverObject(), (torch.zeros(1),), False)
    with pytest.raises(pc.Uncacheable, match="tensors of its own"):
        pc.pattern_key(nn.Linear(2, 2), (torch.zeros(1, 2),), False)


class _Probe(nn.Module):
    """A pattern of this test alone (shapes no quantizer pattern uses): the hook has not seen it."""

    def forward(self, x, w):
        return F.hardswish(F.conv2d(x, w))


def test_the_quantizer_hook_writes_each_pattern_once_and_reads_it_back(utils, tmp_path, monkeypatch):
    """``make_quantizer('coreml')`` routes pattern tracing through memory, then disk, then torch.export."""
    from dotcom_mobile.quantize.backends import make_quantizer

    monkeypatch.setenv("DOTCOM_MOBILE_CACHE", str(tmp_path))
    make_quantizer("coreml")  # installs the hook (once per process)
    folder = tmp_path / "coreml-patterns"
    inputs = (torch.randn(1, 5, 7, 7), torch.randn(4, 5, 3, 3))
    gm = utils._get_aten_graph_module(_Probe(), inputs)
    files = list(folder.glob("*.json"))
    assert [f.stem for f in files] == [pc.pattern_key(_Probe(), inputs, False)] and not list(folder.glob("*.tmp"))
    assert [n.name for n in pc.load(files[0].stem).graph.nodes] == [n.name for n in gm.graph.nodes]
    again = utils._get_aten_graph_module(_Probe(), inputs)
    assert again is not gm and [n.name for n in again.graph.nodes] == [n.name for n in gm.graph.nodes]
    assert list(folder.glob("*.json")) == files  # served from memory, nothing rewritten


def test_a_damaged_or_unwritable_cache_is_traced_again(utils, tmp_path, monkeypatch):
    gm = utils.get_linear_pattern(F.relu, False)
    monkeypatch.setenv("DOTCOM_MOBILE_CACHE", str(tmp_path))
    pc.store("k" * 64, gm)
    path = tmp_path / "coreml-patterns" / f"{'k' * 64}.json"
    assert pc.load("k" * 64) is not None
    path.write_text(path.read_text()[:100])  # cut short
    assert pc.load("k" * 64) is None
    path.write_text(json.dumps({**json.loads(json.dumps(pc.encode_graph(gm))), "format": 0}))
    assert pc.load("k" * 64) is None  # another format
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DOTCOM_MOBILE_CACHE", str(blocker))  # its folder cannot be made
    pc.store("k" * 64, gm)
    assert pc.load("k" * 64) is None
    monkeypatch.setenv("DOTCOM_MOBILE_CACHE", "")  # empty: no disk cache at all
    assert pc.cache_dir() is None and pc.load("k" * 64) is None
    pc.store("k" * 64, gm)


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DOTCOM_MOBILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert pc.cache_dir() == tmp_path / "dotcom-mobile" / "coreml-patterns"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert pc.cache_dir() == Path.home() / ".cache" / "dotcom-mobile" / "coreml-patterns"



def test_a_patterns_key_does_not_follow_reference_counts(utils):
    """Keyed by ``marshal.dumps`` of the code, a pattern got a new key whenever something else held
    references to its code's parts (marshal's reference flags follow reference counts): measured,
    the cache grew by two files a process. The key must not see that."""
    patterns = []
    original = utils._get_aten_graph_module
    utils._get_aten_graph_module = lambda p, x, c=False: patterns.append((p, x))
    try:
        utils.get_conv_bn_pattern(1, F.relu6, False)
    finally:
        utils._get_aten_graph_module = original
    (pattern, inputs), = patterns
    import marshal

    code = type(pattern).forward.__code__
    before, marshalled = pc.pattern_key(pattern, inputs, False), marshal.dumps(code)
    held = [code.co_consts, code.co_names, code.co_varnames, code.co_filename, code.co_qualname, *code.co_consts]
    assert marshal.dumps(code) != marshalled  # the hazard, here: same code, other bytes
    assert pc.pattern_key(pattern, inputs, False) == before
    del held


def test_regenerate_once_compiles_at_the_end_and_still_removes_new_dead_code():
    from dotcom_mobile.quantize.backends import regenerate_once

    eager = _Model().eval()
    model = torch.export.export(eager, (torch.randn(1, 3, 8, 8),)).module()
    graph = model.graph
    out = next(n for n in graph.nodes if n.op == "output")

    def add_dead_node():
        with graph.inserting_before(out):
            return graph.call_function(torch.ops.aten.relu.default, (out.args[0][0],))

    dead = add_dead_node()
    model.recompile()
    code = model.code
    with regenerate_once(model):
        assert graph.eliminate_dead_code() is True and dead not in graph.nodes
        for _ in range(3):
            assert graph.eliminate_dead_code() is False
            model.recompile()
        assert model.code == code  # still the code of the graph with the dead node
        dead = add_dead_node()  # the graph changed: the next pass must see it
        assert graph.eliminate_dead_code() is True and dead not in graph.nodes
    assert model.code != code and "relu_default" not in model.code.split("return")[-1]
    assert "recompile" not in vars(model) and "eliminate_dead_code" not in vars(graph)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), eager(x))


def test_the_core_ml_quantizer_annotates_as_executorchs_does():
    """The same annotations, node by node, as the stock CoreMLQuantizer (which regenerates per pattern)."""
    from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from dotcom_mobile.quantize.backends import make_quantizer

    ours = make_quantizer("coreml")
    model = torch.export.export(_Model().eval(), (torch.randn(1, 3, 8, 8),)).module()

    def annotations(quantizer):
        import copy

        prepared = prepare_pt2e(copy.deepcopy(model), quantizer)
        return [(n.op, n.name, str(n.target), [a.name for a in n.all_input_nodes]) for n in prepared.graph.nodes]

    got, want = annotations(ours), annotations(CoreMLQuantizer(ours._config))
    assert got == want and sum("activation_post_process" in n[1] for n in got) >= 6


def _shipped_doc() -> dict:
    import gzip

    with gzip.open(pc.SEED, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc["versions"] != pc.versions():
        pytest.skip(f"the shipped patterns are of {doc['versions']}, this is {pc.versions()}: "
                    f"`{pc.WRITE_SEED}` writes them for it")
    return doc


def test_the_shipped_patterns_are_every_pattern_the_core_ml_quantizer_traces(utils, monkeypatch):
    """With the pinned libraries, no Core ML quantization traces a pattern on a new machine."""
    from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer

    from dotcom_mobile.quantize.backends import make_quantizer

    shipped = _shipped_doc()["patterns"]
    asked, missing = set(), []

    def serve(pattern, example_inputs, is_cuda=False):
        key = pc.pattern_key(pattern, example_inputs, is_cuda)
        asked.add(key)
        if key not in shipped:
            missing.append(type(pattern).__qualname__)
            return pc.decode_graph(next(iter(shipped.values())))  # any graph: the count below fails the test
        return pc.decode_graph(shipped[key])

    config = make_quantizer("coreml")._config
    monkeypatch.setattr(utils, "_get_aten_graph_module", serve)
    model = torch.export.export(_Model().eval(), (torch.randn(1, 3, 8, 8),)).module()
    CoreMLQuantizer(config).annotate(model)  # the stock annotator: asks for every pattern it knows
    assert not missing and asked == set(shipped) and len(asked) == 405


@pytest.mark.parametrize("make", [
    lambda u: u.get_conv_bn_pattern(2, F.silu, False),
    lambda u: u.get_binary_op_act_pattern(torch.add, F.relu, False),
    lambda u: u.get_linear_pattern(F.relu, False),
], ids=["conv_bn_silu", "add_relu", "linear_relu"])
def test_a_shipped_pattern_is_what_tracing_gives_now(utils, make, monkeypatch):
    from torchao.quantization.pt2e.utils import _get_aten_graph_module_for_pattern as export_pattern

    shipped = _shipped_doc()["patterns"]
    traced = []

    def trace(pattern, example_inputs, is_cuda=False):  # torch.export itself, not the cache's hook
        traced.append((pc.pattern_key(pattern, example_inputs, is_cuda), export_pattern(pattern, example_inputs, is_cuda)))
        return traced[-1][1]

    monkeypatch.setattr(utils, "_get_aten_graph_module", trace)
    make(utils)
    (key, gm), = traced
    assert key in shipped and json.loads(json.dumps(pc.encode_graph(gm))) == shipped[key]
