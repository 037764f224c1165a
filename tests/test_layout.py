"""The package's shape: every module imports on its own, no import cycles, every registered name resolves."""

from __future__ import annotations

import ast
import gc
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import aad_bench
from aad_bench.registry import Registry

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "aad_bench"


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(aad_bench.__path__, "aad_bench."))


def test_every_module_imports_in_a_fresh_interpreter():
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    print(m, flush=True)\n    importlib.import_module(m)\n"
    # leaves first (reverse order), so a module that only imports after its parent package did is caught
    out = subprocess.run([sys.executable, "-c", code, *reversed(_modules())], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"import {out.stdout.split()[-1]} failed:\n{out.stderr[-1500:]}"


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the package modules it imports (module-level and function-level imports alike)."""
    names = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in names}
    for mod, path in names.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in names:
                    t = t.rpartition(".")[0]
                # a package's own submodules and the top-level package are not edges
                if t and t != mod and not mod.startswith(t + ".") and t != "aad_bench":
                    graph[mod].add(t)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))
    return cycles


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert find_cycles(import_graph()) == []


def test_tasks_never_import_the_app():
    graph = import_graph()
    assert not [m for m, deps in graph.items() if m.startswith("aad_bench.tasks") and "aad_bench.app" in deps]


def _registries() -> list[Registry]:
    for mod in _modules():
        importlib.import_module(mod)
    return [o for o in gc.get_objects() if isinstance(o, Registry)]


def test_every_registered_name_resolves():
    regs = {r.kind: r for r in _registries()}
    for kind in ("method", "task", "metric", "codec", "discriminator head"):
        assert kind in regs, f"no {kind} registry found"
    for reg in regs.values():
        for name in reg.names():
            assert reg.get(name) is not None, f"{reg.kind} {name!r}"


def test_every_method_composes_and_validates():
    from aad_bench.config import compose
    from aad_bench.methods import METHODS, MethodSpec

    for name in METHODS.names():
        cfg = compose([f"method={name}"])
        spec = MethodSpec.from_cfg(cfg.method)
        assert spec.name == name  # the YAML's name is its file stem
        spec.validate(cfg.method, cfg.model.depth)


@pytest.mark.parametrize("launcher", ["aad_local", "aad_slurm"])
def test_campaign_launchers_resolve(launcher):
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.utils import get_class

    from aad_bench.config import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = h_compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert get_class(cfg.hydra.launcher._target_).__name__.startswith("Campaign")
    from hydra.core.plugins import Plugins  # Hydra launches only plugins it registered under hydra_plugins

    assert cfg.hydra.launcher._target_ in Plugins.instance().class_name_to_class
