"""The package's shape: the layers (import-linter's contracts, the same table as docs/architecture.md), no import
cycles within a layer (imports inside functions count), no module importing another's private names, no module
over 400 lines nor function over ~60, no process-global state changed by src/ or flows/, and one definition of
what a training depends on (config.TRAINING_SECTIONS and dvc.yaml agree)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "textops"
FLOWS = REPO / "flows"


def modules() -> dict[str, Path]:
    found = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    found.update({f"textops.flows.{p.stem}": p for p in FLOWS.glob("*.py") if p.stem != "__init__"})
    found["textops.flows"] = FLOWS / "__init__.py"
    return found


def imports_of(path: Path, known: set[str]) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import of a package module in PATH, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("textops"):
            names = [a.name for a in node.names]
            if f"{node.module}.{names[0]}" in known:  # `from textops.core import scm, lineage`
                out.extend((f"{node.module}.{n}", []) for n in names if f"{node.module}.{n}" in known)
            else:
                out.append((node.module, names))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names if a.name.startswith("textops"))
    return [(m, n) for m, n in out if m in known]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: {m for m, _ in imports_of(path, set(mods))} - {name} for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_counting_imports_inside_functions():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


def test_no_module_imports_private_names_of_another():
    mods = modules()
    offenders = [
        f"{path.relative_to(REPO)} imports {name} from {module}"
        for path in mods.values()
        for module, names in imports_of(path, set(mods))
        for name in names
        if name.startswith("_")
    ]
    assert offenders == []


def test_no_module_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in modules().values() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_src_and_flows_change_no_process_global_state():
    offenders = []
    for path in modules().values():
        text = path.read_text()
        for needle in ("os.chdir(", "sys.path.insert(", "sys.path.append("):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []


def test_importing_the_package_changes_no_environment():
    code = "import os; before = dict(os.environ); import textops, textops.ui.cli; print(dict(os.environ) == before)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_training_fingerprint_covers_what_dvc_says_training_depends_on():
    from textops.core.config import TRAINING_SECTIONS

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    sections = {str(p).split(".")[0] for stage in ("preprocess", "train") for p in stages[stage]["params"]}
    assert sections == set(TRAINING_SECTIONS)


def test_no_function_over_about_60_lines():
    long = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 65:
                long.append(f"{path.relative_to(REPO)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def contract_layers() -> list[list[str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    return [[name.strip().removeprefix("textops.") for name in layer.split("|")] for layer in layers]


def test_import_linter_contracts_hold(monkeypatch):
    from importlinter.cli import lint_imports

    monkeypatch.syspath_prepend(str(REPO))  # flows/ is checked as the package `flows`
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_the_architecture_page_shows_the_contract_layers_in_order():
    page = (REPO / "docs" / "architecture.md").read_text()
    section = page[page.index("## Layers") : page.index("## Who owns which contract")]
    rows = [re.findall(r"`(\w+)`", cells) for cells in re.findall(r"^\| (`\w+`(?: \\\| `\w+`)*) \|", section, re.M)]
    assert rows == contract_layers()
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == {name for layer in contract_layers() for name in layer} - {"flows"}


ALIAS_CALLS = {"get_model_version_by_alias", "set_registered_model_alias", "delete_registered_model_alias"}


def loose_names(path: Path) -> list[str]:  # noqa: C901
    """MLflow tag keys, event names and alias names spelt out in PATH instead of taken from their owner
    (core/lineage.py): a `"textops.…"` string (logger names and module paths aside), an alias literal given to
    MLflow's alias calls, a `@champion` model URI."""
    tree = ast.parse(path.read_text())
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    documented = (n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef) and n.body)
    docstrings = {id(n.body[0].value) for n in documented
                  if isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "getLogger", "import_module"):
            allowed.update(id(n) for arg in node.args for n in ast.walk(arg))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | allowed:
            if node.value.startswith("textops.") or "@champion" in node.value or "@challenger" in node.value:
                found.append(f"{where}:{node.lineno}: {node.value!r}")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ALIAS_CALLS:
            found.extend(f"{where}:{node.lineno}: alias {a.value!r}" for a in node.args
                         if isinstance(a, ast.Constant) and a.value in ("champion", "challenger"))
    return found


def test_tag_keys_events_and_aliases_are_spelt_only_in_lineage():
    owner = PACKAGE / "core" / "lineage.py"
    logger_names = PACKAGE / "core" / "logs.py"  # `textops.stages`, a logger's name
    offenders = [hit for path in modules().values() if path not in (owner, logger_names) for hit in loose_names(path)]
    assert offenders == []


def test_the_loose_name_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('import logging\nlogging.getLogger("textops.serve")\n'
                      'TAG = "textops.decision"\nuri = f"models:/m@champion"\n'
                      'client.set_registered_model_alias("m", "champion", "1")\n')
    found = sorted(hit.split(": ", 1)[1] for hit in loose_names(sample))
    assert found == ["'models:/m@champion'", "'textops.decision'", "alias 'champion'"]
