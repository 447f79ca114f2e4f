"""The package's shape: the layers (import-linter's contracts, the same table as docs/architecture.md), no import
cycles within a layer (imports inside functions count), no module importing another's private names, no module
over 400 lines nor function over ~60, no process-global state changed by src/ or flows/, one definition of what a
training depends on (config.TRAINING_SECTIONS and dvc.yaml agree), and the tests' own shape: tests/unit mirrors the
package, a folder per layer, and starts no process (those tests are in tests/integration)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib
import yaml
from helpers import REPO

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


def test_training_fingerprint_covers_what_dvc_says_training_depends_on():
    from textops.core.lineage import TRAINING_SECTIONS

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    sections = {str(p).split(".")[0] for stage in ("preprocess", "train") for p in stages[stage]["params"]}
    assert sections == set(TRAINING_SECTIONS)


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
    MLflow's alias calls, a `models:/` URI built by hand (`lineage.model_uri` builds them)."""
    tree = ast.parse(path.read_text())
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    documented = (n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef) and n.body)
    docstrings = {
        id(n.body[0].value)
        for n in documented
        if isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "getLogger",
            "import_module",
        ):
            allowed.update(id(n) for arg in node.args for n in ast.walk(arg))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | allowed:
            if (
                node.value.startswith(("textops.", "models:/"))
                or "@champion" in node.value
                or "@challenger" in node.value
            ):
                found.append(f"{where}:{node.lineno}: {node.value!r}")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ALIAS_CALLS:
            found.extend(
                f"{where}:{node.lineno}: alias {a.value!r}"
                for a in node.args
                if isinstance(a, ast.Constant) and a.value in ("champion", "challenger")
            )
    return found


def test_tag_keys_events_and_aliases_are_spelt_only_in_lineage():
    owner = PACKAGE / "core" / "lineage.py"
    logger_names = PACKAGE / "adapters" / "logs.py"  # `textops.stages`, a logger's name
    offenders = [hit for path in modules().values() if path not in (owner, logger_names) for hit in loose_names(path)]
    assert offenders == []


def test_the_loose_name_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'import logging\nlogging.getLogger("textops.serve")\n'
        'TAG = "textops.decision"\nuri = f"models:/m@champion"\nmodel = f"models:/{name}/{version}"\n'
        'client.set_registered_model_alias("m", "champion", "1")\n'
    )
    found = sorted(hit.split(": ", 1)[1] for hit in loose_names(sample))
    assert found == ["'models:/'", "'models:/m@champion'", "'textops.decision'", "alias 'champion'"]


# --------------------------------------------------------------------------------------------------
# the tests' shape: tests/unit mirrors the package and starts no process

TESTS = REPO / "tests"
UNIT_TESTS = TESTS / "unit"
TOP_LEVEL_UNIT_TESTS = {"test_structure.py"}  # tests of the whole package; the rest sit in their layer's folder

PROCESS_CALLS = {
    f"subprocess.{name}"
    for name in ("run", "Popen", "call", "check_output", "check_call", "getoutput", "getstatusoutput")
} | {
    "os.system",
    "os.popen",
    "pty.fork",
    "pty.spawn",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
}
PROCESS_PREFIXES = (
    "os.fork",
    "os.spawn",
    "os.exec",
    "os.posix_spawn",
    "multiprocessing.",
    "concurrent.futures.ProcessPoolExecutor",
)
# Helpers that start their process through a Service object (`service.start()`), which the call graph cannot follow.
SERVICE_STARTERS = {"support.servers.mlflow_server", "support.servers.prefect_server"}


def import_map(tree: ast.AST) -> dict[str, str]:
    """Each name a module's imports bind, with the dotted name it stands for (`sp` -> `subprocess`)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return names


def called(call: ast.Call, names: dict[str, str]) -> str | None:
    """The dotted name CALL resolves to through NAMES (`sp.run(...)` -> `subprocess.run`); None for other names."""
    parts, func = [], call.func
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    return ".".join([names[func.id], *parts]) if isinstance(func, ast.Name) and func.id in names else None


def starts_a_process(name: str, helpers: set[str]) -> bool:
    return name in PROCESS_CALLS or name.startswith(PROCESS_PREFIXES) or name in helpers


def process_helpers() -> set[str]:
    """The functions of tests/helpers.py and tests/support that start a process, directly or through another
    (`helpers.textops`, `support.make_project`, ...), re-exports included."""
    modules = {"helpers": TESTS / "helpers.py"} | {
        "support" + ("" if p.stem == "__init__" else f".{p.stem}"): p for p in (TESTS / "support").glob("*.py")
    }
    parsed = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        parsed[module] = (import_map(tree) | {name: f"{module}.{name}" for name in defs}, defs)
    found = set(SERVICE_STARTERS)
    while True:
        before = len(found)
        for module, (names, defs) in parsed.items():
            found |= {f"{module}.{local}" for local, target in names.items() if target in found}
            found |= {
                f"{module}.{name}"
                for name, node in defs.items()
                for call in ast.walk(node)
                if isinstance(call, ast.Call) and (target := called(call, names)) and starts_a_process(target, found)
            }
        if len(found) == before:
            return found


def process_fixtures(helpers: set[str]) -> set[str]:
    """The fixtures tests/unit can use (tests/conftest.py and any below tests/unit) that start a process, directly
    or through a helper or another such fixture (`project`: git init)."""
    fixtures = {}
    for path in [TESTS / "conftest.py", *UNIT_TESTS.rglob("conftest.py")]:
        tree = ast.parse(path.read_text())
        names = import_map(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list):
                fixtures[node.name] = (node, names)
    found: set[str] = set()
    while True:
        before = len(found)
        for name, (node, names) in fixtures.items():
            calls = (called(c, names) for c in ast.walk(node) if isinstance(c, ast.Call))
            if any(a.arg in found for a in node.args.args) or any(c and starts_a_process(c, helpers) for c in calls):
                found.add(name)
        if len(found) == before:
            return found


def process_starts(path: Path, helpers: set[str], fixtures: set[str]) -> list[str]:
    """Where PATH starts a process: a call of subprocess, os.system/fork/spawn/exec, multiprocessing or a helper
    that runs one (`textops`, `dvc`, `make_project`, ...), an import of multiprocessing, a test or fixture that
    takes a fixture that starts one."""
    tree = ast.parse(path.read_text())
    names = import_map(tree)
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (target := called(node, names)) and starts_a_process(target, helpers):
            found.append(f"{where}:{node.lineno}: {target}")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "usefixtures":
            found.extend(
                f"{where}:{node.lineno}: fixture {a.value}"
                for a in node.args
                if isinstance(a, ast.Constant) and a.value in fixtures
            )
        if isinstance(node, ast.Import | ast.ImportFrom):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.extend(
                f"{where}:{node.lineno}: imports {m}" for m in imported if m.split(".")[0] == "multiprocessing"
            )
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            found.extend(f"{where}:{node.lineno}: fixture {a.arg}" for a in args if a.arg in fixtures)
    return found


def test_unit_tests_start_no_process():
    """tests/unit is the fast lane: pure tests, no child process (a test that needs one is an integration test)."""
    helpers = process_helpers()
    fixtures = process_fixtures(helpers)
    offenders = [hit for path in sorted(UNIT_TESTS.rglob("*.py")) for hit in process_starts(path, helpers, fixtures)]
    assert offenders == []


def test_the_process_check_finds_what_it_looks_for(tmp_path):
    helpers = process_helpers()
    assert {
        "helpers.textops",
        "helpers.dvc",
        "helpers.git",
        "helpers.make_project",
        "helpers.serving",
        "helpers.champion_project",
        "helpers.in_process",
        "helpers.registry",
        "helpers.textops_python",
        "support.textops",
        "support.postgres.postgres",
        "support.servers.deployed_on_a_server",
    } <= helpers
    assert not {"helpers.free_port", "helpers.wait_for", "helpers.easy_reviews"} & helpers
    fixtures = process_fixtures(helpers)
    assert {"project", "fast_project", "small", "champion_template"} <= fixtures
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, subprocess as sp\nimport multiprocessing\nfrom os import system\nfrom subprocess import run\n"
        "from helpers import free_port, textops\nimport helpers\nimport pytest\n"
        "def test_a(project):\n    sp.Popen(['true']); system('true'); run(['true']); os.fork(); os.execv('x', [])\n"
        "@pytest.mark.usefixtures('small')\ndef test_b():\n    textops('.', 'status'); helpers.make_project('p')\n"
        "    multiprocessing.Process(target=print).start(); free_port()\n"
        "def test_c():\n    run = print; run('not a process')\n"
    )
    found = sorted(hit.split(": ", 1)[1] for hit in process_starts(sample, helpers, fixtures))
    assert found == sorted(
        [
            "imports multiprocessing",
            "fixture project",
            "subprocess.Popen",
            "os.system",
            "subprocess.run",
            "os.fork",
            "os.execv",
            "fixture small",
            "helpers.textops",
            "helpers.make_project",
            "multiprocessing.Process",
            "subprocess.run",
        ]
    )


def test_tests_mirror_the_package():
    """tests/unit/<layer>/ for each layer of src/textops (and flows/), test_structure.py for the whole package; no
    two test files share a name (pytest imports them by basename: no __init__.py files)."""
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} | {"flows"}
    misplaced = [
        str(p.relative_to(REPO))
        for p in UNIT_TESTS.rglob("*.py")
        if (p.parent == UNIT_TESTS and p.name not in TOP_LEVEL_UNIT_TESTS | {"conftest.py"})
        or (p.parent != UNIT_TESTS and p.relative_to(UNIT_TESTS).parts[0] not in layers)
    ]
    assert misplaced == []
    seen: dict[str, list[str]] = {}
    for p in TESTS.rglob("test_*.py"):
        seen.setdefault(p.name, []).append(str(p.relative_to(REPO)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
