"""Reading params.yaml: refusing what would make a small file expensive, applying `-S key=value` overrides, and
wording pydantic's validation errors as a user reads them (the key, the file, what was given)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ValidationError

from textops.core.errors import ParamsError


def describe(error: ValidationError, path: Path | str, model: type[BaseModel] | None = None) -> str:
    """ERROR as one line per bad key, under the file (and overrides) PATH names; an unknown key of MODEL's gets
    the nearest known keys beside it."""
    lines = []
    for err in error.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        key = key.replace("validate_", "validate")
        if err["type"] == "extra_forbidden":
            known = known_keys(model, [str(p) for p in err["loc"][:-1]]) if model else []
            near = difflib.get_close_matches(str(err["loc"][-1]), known, n=3, cutoff=0.6)
            where = ".".join(str(p) for p in err["loc"][:-1])
            hint = (
                f"did you mean {' or '.join(f'{where}.{k}'.lstrip('.') for k in near)}?"
                if near
                else (f"the keys here: {', '.join(known)}" if known else "see params.yaml's comments")
            )
            msg = f"unknown key ({hint})"
        else:
            msg = err["msg"]
            if "input" in err and err["type"] != "missing":
                msg += f" (got {err['input']!r})"
        lines.append(f"  - {key}: {msg}")
    return f"{path}: invalid parameters:\n" + "\n".join(lines)


def known_keys(model: type[BaseModel], parents: list[str]) -> list[str]:
    """The keys MODEL accepts under the path PARENTS (as params.yaml spells them); [] where that is not a section."""
    for part in parents:
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        field = fields.get(part) or model.model_fields.get(part)
        sub = getattr(field, "annotation", None) if field else None
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return []
        model = sub
    return [f.alias or name for name, f in model.model_fields.items()]


MAX_PARAMS_BYTES = 1 << 20


def read_yaml(path: Path) -> object:
    """PATH parsed as YAML, refusing at once what would make a small file expensive: aliases (`*a`, which
    "billion laughs" files multiply into gigabytes) and files over 1 MB; a ParamsError otherwise."""
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path}: {path.stat().st_size} bytes; a parameters file is at most 1 MB.")
    try:
        text = path.read_text(encoding="utf-8")
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ParamsError(
                    f"{path}: YAML aliases (`*name`) are not allowed in a parameters file; write the values out."
                )
        return yaml.safe_load(text) or {}
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...], path: Path) -> dict:
    """RAW with each `section.key=value` of OVERRIDES set (like `dvc exp run -S`); the value is read as YAML
    (`1e-4`, `true`, `null`, `[a, b]`), so it gets the same validation as the file."""
    out = dict(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ParamsError(f"--set {item!r}: expected section.key=value, e.g. -S train.epochs=1")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise ParamsError(f"--set {item!r}: the value is not valid YAML ({exc})") from exc
        node = out
        for name in parts[:-1]:
            child = node.get(name)
            child = dict(child) if isinstance(child, dict) else {}
            node[name] = child
            node = child
        node[parts[-1]] = parsed
    return out


def redact(uri: str) -> str:
    """URI with a password in it masked (`https://user:***@host`): URIs are logged, printed and recorded."""
    import re

    return re.sub(r"(//[^/@:\s]*):[^@/\s]*@", r"\1:***@", uri)


def flatten(params: BaseModel) -> dict[str, object]:
    """Params as flat dotted keys (for MLflow's log_params); credentials in the tracking URI are masked."""
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value

    walk("", params.model_dump(by_alias=True))
    out["mlflow.tracking_uri"] = redact(str(out["mlflow.tracking_uri"]))
    return out


def set_section_values(text: str, section: str, values: dict) -> str:
    """TEXT (a params.yaml) with SECTION's top-level keys set to VALUES, comments and layout kept (ruamel.yaml's
    round trip, the library DVC itself edits YAML with); a key the section lacks is added at its end."""
    import io

    from ruamel.yaml import YAML

    yaml_rt = YAML()  # round-trip: comments, key order, quotes and number formats as written
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 4096  # never fold a long line the user wrote on one
    indent = _indent_of(text)
    yaml_rt.indent(mapping=indent, sequence=indent + 2, offset=indent)
    yaml_rt.representer.add_representer(type(None), _null)  # `null` as written, not an empty value
    document = yaml_rt.load(text)
    if document is None:
        document = yaml_rt.load(f"{section}: {{}}\n")
    if document.get(section) is None:
        document[section] = {}
    document[section].update(values)
    out = io.StringIO()
    yaml_rt.dump(document, out)
    return out.getvalue()


def _null(representer, _value):
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _indent_of(text: str) -> int:
    """The indentation of TEXT's first nested key (2 where it has none): the round trip writes every level so."""
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped and not stripped.startswith(("#", "-")) and len(stripped) < len(line):
            return len(line) - len(stripped)
    return 2


def relative_sqlite_path(uri: str) -> str | None:
    """The database file of a relative SQLite URI (`sqlite:///mlruns/mlflow.db` -> `mlruns/mlflow.db`), a file
    in the project; None for an absolute one (`sqlite:////var/db`) or any other store."""
    prefix = "sqlite:///"
    return uri[len(prefix) :] if uri.startswith(prefix) and not uri.startswith(prefix + "/") else None


PATH_KEYS = (
    "data.raw_dir",
    "data.clean_dir",
    "data.landing_dir",
    "validate.report_dir",
    "train.output_dir",
    "train.checkpoint_dir",
    "evaluate.output_dir",
    "mlflow.artifact_location",
    "promotion.reference_file",
    "serve.request_log_dir",
    "monitor.report_dir",
)


def check_paths(params: BaseModel, root: Path, path: Path) -> None:
    """Every path in params, symbolic links followed, must stay inside ROOT: a link in the project cannot make
    the pipeline write elsewhere (`artifacts -> /etc` passes the relative-path check, not this one)."""
    root = root.resolve()
    flat = flatten(params)
    # PARAMS is a config.Params, a type this module cannot import (config imports it)
    db = relative_sqlite_path(cast(Any, params).mlflow.tracking_uri)
    checks = [(k, flat[k]) for k in PATH_KEYS if flat.get(k) is not None]
    checks += [("mlflow.tracking_uri", db)] if db else []
    for key, value in checks:
        resolved = (root / str(value)).resolve()
        if resolved != root and root not in resolved.parents:
            raise ParamsError(
                f"{path}: invalid parameters:\n  - {key}: {value!r} leads outside the project (to {resolved}, "
                "through a symbolic link); point it at a directory inside the project."
            )
