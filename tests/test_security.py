"""No code path that can execute data: no pickle, no eval/exec, weights only as safetensors + JSON."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.joinpath("segdemo").rglob("*.py"), ROOT / "app.py", *ROOT.joinpath("benchmarks").glob("*.py")])
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "joblib", "marshal", "shelve"}
FORBIDDEN_ATTRIBUTES = {("torch", "load"), ("torch", "save"), ("np", "load"), ("numpy", "load")}
RESTRICTED_LOADER = ROOT / "segdemo" / "models" / "encoders" / "efficientnet.py"
"""The one file allowed to call ``torch.load``, and only with ``weights_only=True`` (the ImageNet ``.pth``)."""


def is_weights_only_torch_load(node: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in node.keywords)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_source_never_unpickles_or_evaluates(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & FORBIDDEN_MODULES, (path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in FORBIDDEN_MODULES, (path, node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in FORBIDDEN_CALLS, (path, node.lineno, func.id)
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if (func.value.id, func.attr) == ("torch", "load") and path == RESTRICTED_LOADER:
                    assert is_weights_only_torch_load(node), (path, node.lineno, "torch.load without weights_only=True")
                    continue
                assert (func.value.id, func.attr) not in FORBIDDEN_ATTRIBUTES, (path, node.lineno)


def test_exactly_one_restricted_torch_load():
    calls = [node for node in ast.walk(ast.parse(RESTRICTED_LOADER.read_text())) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
             and (node.func.value.id, node.func.attr) == ("torch", "load")]
    assert len(calls) == 1 and is_weights_only_torch_load(calls[0])


def test_only_safetensors_and_json_in_weights():
    allowed = {".safetensors", ".json", ".md", ".csv"}
    assert all(p.suffix in allowed for p in (ROOT / "weights").iterdir() if p.is_file())
