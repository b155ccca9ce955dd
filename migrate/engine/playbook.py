"""Playbooks: YAML load with line numbers, typed parameters, jinja2 rendering, validation.

Every error names ``file:line`` and says how to fix it. Step ``with`` values are jinja2 templates
rendered with ``StrictUndefined`` from ``params`` (defaults < ``--params FILE`` < ``-p KEY=VALUE``)
and ``steps`` (outputs of earlier steps). While a referenced output does not exist yet (planning,
or before that step ran) it renders as ``(known after STEP)``: never guessed, never an error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import ValidationError

from migrate.engine.base import Step, StepParams
from migrate.engine.outputs import PendingOutputs
from migrate.engine.registry import registered_steps
from migrate.errors import BadInputError, PlaybookError

TOP_KEYS = {"name", "description", "params", "steps", "approvers"}
STEP_KEYS = {"id", "uses", "with", "approve", "depends_on", "description", "yes_approves"}
PARAM_KEYS = {"type", "default", "description"}
PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "map": (dict,),
}
YES_APPROVES = ("none", "non-destructive", "all")
STEP_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
STEP_REF_RE = re.compile(r"\bsteps\.([A-Za-z][A-Za-z0-9_]*)|\bsteps\[['\"]([^'\"]+)['\"]\]")


# --- YAML with line numbers --------------------------------------------------------------------
class LineDict(dict[str, Any]):
    """A mapping that remembers the 1-based line of itself and of each key's value."""

    line: int = 0
    lines: dict[str, int]


class LineList(list[Any]):
    """A sequence that remembers the 1-based line of itself and of each item."""

    line: int = 0
    lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds LineDict/LineList and rejects duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise _YamlDuplicate(key, key_node.start_mark.line + 1)
        result[key] = loader.construct_object(value_node, deep=True)
        # The key's line: errors about a value point where the operator reads its name.
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class _YamlDuplicate(Exception):
    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key = key
        self.line = line


def load_yaml(text: str, path: str) -> Any:
    """Parse YAML text into LineDict/LineList values, with errors at ``path:line``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except _YamlDuplicate as dup:
        raise PlaybookError(
            f"the key {dup.key!r} appears twice in the same mapping; YAML would silently keep "
            "only the last one. Remove or rename one of them.",
            path,
            dup.line,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise PlaybookError(
            f"this is not valid YAML ({problem}"
            + (f", {exc.context}" if exc.context else "")
            + "). Check the indentation and quoting on this line and the one above.",
            path,
            line,
        ) from None
    except yaml.YAMLError as exc:
        raise PlaybookError(f"this is not valid YAML ({exc}).", path, None) from None


def _line(container: Any, key: str | int | None = None) -> int | None:
    if isinstance(container, LineDict):
        if key is not None and isinstance(key, str) and key in container.lines:
            return container.lines[key]
        return container.line
    if isinstance(container, LineList):
        if isinstance(key, int) and 0 <= key < len(container.lines):
            return container.lines[key]
        return container.line
    return None


# --- the model -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    """A declared playbook parameter."""

    name: str
    type: str
    default: Any
    required: bool
    description: str
    line: int | None


@dataclass
class PlaybookStep:
    """One step of a playbook, validated against its step type's schema."""

    id: str
    uses: str
    with_: dict[str, Any]
    approve: bool
    yes_approves: str
    depends_on: list[str]
    description: str
    line: int | None
    step_type: type[Step]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def param_line(self, param: str) -> int | None:
        """The line of ``with.<param>`` (or of ``with:``, or of the step) in the playbook."""
        body = self.raw.get("with") if isinstance(self.raw, dict) else None
        return _line(body, param) if body is not None else self.line

    def definition(self) -> dict[str, Any]:
        """The step as stored with a run (templates unrendered)."""
        return {
            "id": self.id,
            "uses": self.uses,
            "with": _plain(self.with_),
            "approve": self.approve,
            "yes_approves": self.yes_approves,
            "depends_on": list(self.depends_on),
            "description": self.description,
        }

    def fingerprint(self, params: Mapping[str, Any]) -> str:
        """Hash of the definition and the parameters: a change between runs shows up here."""
        blob = json.dumps(
            {"definition": self.definition(), "params": _plain(dict(params))},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Playbook:
    """A loaded, rendered and validated playbook."""

    path: str
    name: str
    description: str
    params: dict[str, Any]
    param_specs: dict[str, ParamSpec]
    steps: list[PlaybookStep]
    # Who approves each gate kind (``cut-over: DBA on call``), shown in the plan's gates table
    # over the defaults of :data:`migrate.reports.render.APPROVERS`.
    approvers: dict[str, str] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """LineDict/LineList -> dict/list, recursively (for JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- rendering -------------------------------------------------------------------------------------
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)
_SINGLE_EXPR = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


def _render_leaf(text: str, context: Mapping[str, Any]) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    match = _SINGLE_EXPR.match(text)
    if match and "{{" not in match.group(1) and "}}" not in match.group(1):
        # A lone expression keeps its type: `{{ params.buckets }}` stays a list.
        value = _ENV.compile_expression(match.group(1), undefined_to_none=False)(**context)
        if isinstance(value, jinja2.Undefined):
            str(value)  # raises UndefinedError with jinja2's message
        return value
    return _ENV.from_string(text).render(**context)


def render_value(
    value: Any, context: Mapping[str, Any], path: str, container: Any = None, key: Any = None
) -> Any:
    """Render every string leaf of ``value``; errors point at the leaf's line."""
    if isinstance(value, dict):
        return {k: render_value(v, context, path, value, k) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, path, value, i) for i, v in enumerate(value)]
    if isinstance(value, str):
        line = _line(container, key)
        try:
            return _render_leaf(value, context)
        except jinja2.UndefinedError as exc:
            raise PlaybookError(
                f"the template {value.strip()!r} uses something that is not defined ({exc.message})."
                " Declare the parameter under `params:` (or pass it with -p NAME=VALUE), or "
                "reference an earlier step's output as `steps.STEP_ID.OUTPUT`.",
                path,
                line,
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise PlaybookError(
                f"the template {value.strip()!r} is not valid jinja2 ({exc.message}). Check the "
                "braces: an expression is written {{ params.name }}.",
                path,
                line,
            ) from None
        except jinja2.TemplateError as exc:
            raise PlaybookError(
                f"the template {value.strip()!r} failed to render ({exc}).", path, line
            ) from None
    return value


# --- loading ---------------------------------------------------------------------------------------
def _coerce_param(spec: ParamSpec, value: Any, origin: str, path: str) -> Any:
    if isinstance(value, str) and spec.type != "string" and origin == "-p":
        try:
            value = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            pass
        if spec.type == "list" and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
    expected = PARAM_TYPES[spec.type]
    ok = isinstance(value, expected) and not (
        spec.type in ("integer", "number") and isinstance(value, bool)
    )
    if not ok:
        raise PlaybookError(
            f"parameter {spec.name!r} must be of type {spec.type}, but {origin} gives "
            f"{value!r} ({type(value).__name__}). Pass a {spec.type} value, e.g. "
            f"-p {spec.name}={_example_of(spec.type)}.",
            path,
            spec.line,
        )
    return _plain(value)


def _example_of(kind: str) -> str:
    return {
        "string": "text",
        "integer": "7",
        "number": "0.5",
        "boolean": "true",
        "list": "a,b",
        "map": "'{k: v}'",
    }[kind]


def _parse_param_specs(raw: Any, path: str, line: int | None) -> dict[str, ParamSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PlaybookError(
            "`params` must be a mapping of parameter names to a default value or to "
            "{type, default, description}.",
            path,
            line,
        )
    specs: dict[str, ParamSpec] = {}
    for name, body in raw.items():
        pline = _line(raw, name)
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise PlaybookError(
                f"parameter name {name!r} is not a valid identifier; use letters, digits and "
                "underscores (it is referenced as {{ params.NAME }}).",
                path,
                pline,
            )
        if isinstance(body, dict) and (
            "type" in body or "default" in body or "description" in body
        ):
            unknown = set(body) - PARAM_KEYS
            if unknown:
                raise PlaybookError(
                    f"parameter {name!r} has unknown key(s) {', '.join(sorted(unknown))}; a "
                    f"parameter may have {', '.join(sorted(PARAM_KEYS))}.",
                    path,
                    _line(body, sorted(unknown)[0]),
                )
            required = "default" not in body
            default = body.get("default")
            ptype = body.get("type") or _type_of(default, name, path, pline)
            description = str(body.get("description", ""))
        else:
            required = False
            default = body
            ptype = _type_of(body, name, path, pline)
            description = ""
        if ptype not in PARAM_TYPES:
            raise PlaybookError(
                f"parameter {name!r} has type {ptype!r}; the types are {', '.join(PARAM_TYPES)}.",
                path,
                _line(body, "type") if isinstance(body, dict) else pline,
            )
        spec = ParamSpec(name, ptype, _plain(default), required, description, pline)
        if not required and default is not None:
            _coerce_param(spec, default, "its default", path)
        specs[name] = spec
    return specs


def _type_of(default: Any, name: str, path: str, line: int | None) -> str:
    for tname, types in PARAM_TYPES.items():
        if isinstance(default, bool):
            return "boolean"
        if isinstance(default, types):
            return tname
    if default is None:
        return "string"
    raise PlaybookError(
        f"parameter {name!r} has a default of unsupported type {type(default).__name__}.",
        path,
        line,
    )


def resolve_params(
    specs: dict[str, ParamSpec],
    path: str,
    file_params: Mapping[str, Any] | None,
    cli_params: Mapping[str, str] | None,
    params_file: str | None = None,
) -> dict[str, Any]:
    """Merge defaults < ``--params FILE`` < ``-p KEY=VALUE``, checking names and types."""
    values: dict[str, Any] = {}
    for origin, given in (("--params " + (params_file or ""), file_params), ("-p", cli_params)):
        for name, value in (given or {}).items():
            if name not in specs:
                where = f"{origin.strip()}" if origin != "-p" else f"-p {name}=..."
                known = ", ".join(specs) or "(none)"
                raise BadInputError(
                    f"{where}: {path} declares no parameter {name!r}; its parameters are: {known}. "
                    "Fix the name, or declare the parameter under `params:` in the playbook."
                )
            values[name] = _coerce_param(
                specs[name], value, "-p" if origin == "-p" else origin, path
            )
    for name, spec in specs.items():
        if name in values:
            continue
        if spec.required:
            raise PlaybookError(
                f"parameter {name!r} has no default and was not given. Pass it with "
                f"-p {name}={_example_of(spec.type)} or in a --params file.",
                path,
                spec.line,
            )
        values[name] = spec.default
    return values


def load_params_file(params_file: str) -> dict[str, Any]:
    """Read a ``--params`` YAML/JSON file: a mapping of parameter names to values."""
    file_path = Path(params_file)
    try:
        text = file_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(
            f"cannot read the params file {params_file}: {exc.strerror}. Check the path."
        ) from None
    data = load_yaml(text, params_file)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlaybookError(
            "a params file must be a mapping of parameter names to values.", params_file, 1
        )
    return _plain(data)  # type: ignore[no-any-return]


def parse_cli_params(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``-p KEY=VALUE`` pairs into a mapping."""
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise BadInputError(
                f"-p {pair!r} is not KEY=VALUE. Write it as -p {pair}=VALUE (quote values with "
                "spaces)."
            )
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def _check_keys(mapping: dict[str, Any], allowed: set[str], what: str, path: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        key = unknown[0]
        raise PlaybookError(
            f"unknown key {key!r} in {what}; the allowed keys are {', '.join(sorted(allowed))}."
            + (" (Did you mean `with`?)" if key in ("params", "args", "with_") else ""),
            path,
            _line(mapping, key) if isinstance(mapping, LineDict) else None,
        )


def step_context(
    params: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]], step_ids: list[str]
) -> dict[str, Any]:
    """The jinja2 context for one step: ``params`` and ``steps`` (pending ones as known-after)."""
    steps: dict[str, Any] = {}
    for sid in step_ids:
        if sid in outputs and not isinstance(outputs[sid], PendingOutputs):
            steps[sid] = dict(outputs[sid])
        else:
            known = outputs.get(sid) if sid in outputs else None
            steps[sid] = PendingOutputs(sid, known if isinstance(known, Mapping) else None)
    return {"params": dict(params), "steps": steps}


def validate_with(pstep: PlaybookStep, rendered: dict[str, Any], path: str) -> StepParams:
    """Validate a rendered ``with`` against the step type's schema (errors at file:line)."""
    try:
        return pstep.step_type.Params.model_validate(rendered)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err.get("loc", ())]
        line: int | None = _line(pstep.raw, "with") or pstep.line
        container: Any = pstep.with_
        for part in loc:
            try:
                child = container[part]
            except (KeyError, IndexError, TypeError):
                break  # a missing key: stay on the line of its parent
            sub_line = _line(container, part)
            if sub_line is not None:
                line = sub_line
            container = child
        field_name = ".".join(str(p) for p in loc) or "(with)"
        etype = err.get("type", "")
        if etype == "extra_forbidden":
            allowed = ", ".join(pstep.step_type.Params.model_fields) or "(none)"
            msg = (
                f"step {pstep.id!r} ({pstep.uses}): unknown key {field_name!r} under `with`; "
                f"{pstep.uses} accepts: {allowed}. See `migrate steps {pstep.uses}`."
            )
        elif etype == "missing":
            msg = (
                f"step {pstep.id!r} ({pstep.uses}): `with` is missing the required key "
                f"{field_name!r}. See `migrate steps {pstep.uses}` for its parameters."
            )
        else:
            msg = (
                f"step {pstep.id!r} ({pstep.uses}): `with.{field_name}`: {err.get('msg')} "
                f"(got {err.get('input')!r}). See `migrate steps {pstep.uses}` for its types."
            )
        raise PlaybookError(msg, path, line) from None


def load_playbook(
    path: str,
    file_params: Mapping[str, Any] | None = None,
    cli_params: Mapping[str, str] | None = None,
    params_file: str | None = None,
) -> Playbook:
    """Load, render and validate a playbook; raise PlaybookError (exit 2) at file:line."""
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(
            f"the playbook {path} does not exist. Check the path; shipped playbooks are in "
            "playbooks/ (e.g. playbooks/ftr-baseline.yaml)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read the playbook {path}: {exc}.") from None
    doc = load_yaml(text, path)
    if doc is None:
        raise PlaybookError(
            "the playbook is empty. A playbook needs at least `name:` and `steps:`.", path, 1
        )
    if not isinstance(doc, dict):
        raise PlaybookError(
            "a playbook must be a YAML mapping with `name`, `description`, `params` and "
            f"`steps`, not a {type(doc).__name__}.",
            path,
            getattr(doc, "line", 1),
        )
    _check_keys(doc, TOP_KEYS, "the playbook", path)
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PlaybookError(
            "the playbook needs a `name:` (a short text naming the migration).",
            path,
            _line(doc, "name") if "name" in doc else 1,
        )
    specs = _parse_param_specs(doc.get("params"), path, _line(doc, "params"))
    params = resolve_params(specs, path, file_params, cli_params, params_file)

    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PlaybookError(
            "`steps:` must be a non-empty list of steps, each with `id` and `uses`.",
            path,
            _line(doc, "steps") if "steps" in doc else _line(doc),
        )
    steps: list[PlaybookStep] = []
    seen: dict[str, int | None] = {}
    valid_types = registered_steps()
    for index, raw in enumerate(raw_steps):
        sline = _line(raw_steps, index)
        if not isinstance(raw, dict):
            raise PlaybookError(
                "each step must be a mapping with `id`, `uses` and usually `with`.", path, sline
            )
        _check_keys(raw, STEP_KEYS, f"step #{index + 1}", path)
        sid = raw.get("id")
        if not isinstance(sid, str) or not STEP_ID_RE.match(sid):
            raise PlaybookError(
                f"step #{index + 1} needs an `id:` that starts with a letter and has only "
                f"letters, digits, '-' and '_' (got {sid!r}).",
                path,
                _line(raw, "id") if "id" in raw else sline,
            )
        if sid in seen:
            raise PlaybookError(
                f"duplicate step id {sid!r} (first used on line {seen[sid]}). Step ids must be "
                "unique: they name the step in `migrate approve` and `steps.ID` references.",
                path,
                _line(raw, "id"),
            )
        seen[sid] = _line(raw, "id")
        uses = raw.get("uses")
        if not isinstance(uses, str) or not uses:
            raise PlaybookError(
                f"step {sid!r} needs `uses:` naming its step type; valid types are: "
                f"{', '.join(valid_types)}.",
                path,
                _line(raw, "uses") if "uses" in raw else sline,
            )
        step_type = valid_types.get(uses)
        if step_type is None:
            raise PlaybookError(
                f"step {sid!r} uses unknown step type {uses!r}; valid types are: "
                f"{', '.join(valid_types)}. Run `migrate steps` to see them with their parameters.",
                path,
                _line(raw, "uses"),
            )
        with_ = raw.get("with", {})
        if with_ is None:
            with_ = LineDict()
        if not isinstance(with_, dict):
            raise PlaybookError(
                f"step {sid!r}: `with` must be a mapping of {uses} parameters, not a "
                f"{type(with_).__name__}.",
                path,
                _line(raw, "with"),
            )
        approve = raw.get("approve", False)
        if not isinstance(approve, bool):
            raise PlaybookError(
                f"step {sid!r}: `approve` must be true or false (true gates every action of "
                "the step behind `migrate approve`).",
                path,
                _line(raw, "approve"),
            )
        yes_approves = raw.get("yes_approves", "non-destructive")
        if yes_approves not in YES_APPROVES:
            raise PlaybookError(
                f"step {sid!r}: `yes_approves` must be one of {', '.join(YES_APPROVES)} (which "
                f"gates `--yes` may approve), not {yes_approves!r}.",
                path,
                _line(raw, "yes_approves"),
            )
        depends_raw = raw.get("depends_on")
        if depends_raw is None:
            depends_on = [steps[-1].id] if steps else []
        elif isinstance(depends_raw, list) and all(isinstance(d, str) for d in depends_raw):
            depends_on = list(depends_raw)
            for dep in depends_on:
                if dep not in seen or dep == sid:
                    raise PlaybookError(
                        f"step {sid!r} depends on {dep!r}, which is not an earlier step. "
                        f"`depends_on` may name only steps above it: {', '.join(list(seen)[:-1]) or '(none)'}.",
                        path,
                        _line(raw, "depends_on"),
                    )
        else:
            raise PlaybookError(
                f"step {sid!r}: `depends_on` must be a list of earlier step ids, e.g. "
                "`depends_on: [kms]`, or `[]` to run independently.",
                path,
                _line(raw, "depends_on"),
            )
        # A reference to another step's output is a dependency too.
        for ref in _step_refs(with_):
            if ref not in seen or ref == sid:
                raise PlaybookError(
                    f"step {sid!r} references `steps.{ref}`, which is not an earlier step. "
                    "Outputs can only come from steps above this one.",
                    path,
                    _line(raw, "with"),
                )
            if ref not in depends_on:
                depends_on.append(ref)
        pstep = PlaybookStep(
            id=sid,
            uses=uses,
            with_=with_,
            approve=approve,
            yes_approves=str(yes_approves),
            depends_on=depends_on,
            description=str(raw.get("description", "")),
            line=sline,
            step_type=step_type,
            raw=raw,
        )
        # Validate now with every output pending, as the plan will see it.
        context = step_context(params, {}, [s.id for s in steps])
        rendered = render_value(with_, context, path, raw, "with")
        validate_with(pstep, rendered, path)
        steps.append(pstep)
    approvers = doc.get("approvers") or {}
    if not isinstance(approvers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in approvers.items()
    ):
        raise PlaybookError(
            "`approvers:` maps a gate name to who approves it, e.g. `approvers: {cut-over: "
            '"DBA on call", deactivate: "IAM owner"}`.',
            path,
            _line(doc, "approvers"),
        )
    from migrate.reports.render import APPROVERS  # the gate kinds steps have

    unknown = sorted(set(approvers) - set(APPROVERS))
    if unknown:
        raise PlaybookError(
            f"`approvers:` names gate(s) no step has: {', '.join(unknown)}. The gates are "
            f"{', '.join(sorted(APPROVERS))}.",
            path,
            _line(doc, "approvers"),
        )
    return Playbook(
        path=str(path),
        name=name.strip(),
        description=str(doc.get("description", "")),
        params=params,
        param_specs=specs,
        steps=steps,
        approvers={str(k): str(v).strip() for k, v in approvers.items()},
    )


def _step_refs(value: Any) -> set[str]:
    refs: set[str] = set()
    if isinstance(value, str):
        for match in STEP_REF_RE.finditer(value):
            refs.add(match.group(1) or match.group(2))
    elif isinstance(value, dict):
        for v in value.values():
            refs |= _step_refs(v)
    elif isinstance(value, list):
        for v in value:
            refs |= _step_refs(v)
    return refs


def render_step(
    pstep_def: dict[str, Any],
    params: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
    step_ids: list[str],
    path: str,
) -> dict[str, Any]:
    """Render a stored step definition's ``with`` with params and the outputs known so far."""
    context = step_context(params, outputs, step_ids)
    rendered = render_value(pstep_def.get("with", {}), context, path)
    return rendered if isinstance(rendered, dict) else {}
