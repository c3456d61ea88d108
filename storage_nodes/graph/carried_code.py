"""Code that travels with a stored workflow: node functions a fresh interpreter cannot import.

A recipe names each node function by module + qualname. For functions defined in
``__main__`` (a script, a notebook cell, an IPython session) or in a module made at run
time, that name means nothing in another process, so :func:`capture` stores, per
function, an entry under ``@workflow/code/<module>.<qualname>``::

    {"module": "__main__", "qualname": "md_run", "role": "node" | "helper",
     "source": "<the definition, decorators included>", "sha256": "<of the source>",
     "names": {"np": {"module": "numpy"}, "helper": {"code": "__main__.helper"},
               "flowrep": {"module": "flowrep"}, "K_B": {"value": 8.617e-05},
               "f": {"import": "mylab.nodes", "qualname": "f"}},
     "pickled": b"<cloudpickle of the function, by value>"}   # h5, pickle, cloudpickle only

``names`` are the globals the source uses: modules by name, importable objects by module
and qualname, functions of the session by value (their own ``helper`` entries), JSON-able
constants by value. A json file holds no ``pickled`` blob: it is rebuilt from the source
(``exec`` in a namespace made of ``names``), so loading it runs no code until it is rebuilt.
The other backends rebuild from ``pickled`` (cloudpickle carries any global by value).

:func:`install` makes the stored functions importable by their recorded names again (a
module made at run time is made again; ``__main__`` gets the name), so
``Workflow.from_recipe`` finds them. Where the session defines a function of that name
already, the session's is used and compared with the stored source.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import importlib
import json
import linecache
import sys
import textwrap
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import CodeNotStoredWarning, StorageError, UnsafeLoadError, VersionMismatchError, VersionMismatchWarning
from ..provenance.session_code import is_session_module, live_object, live_source, source_hash

__all__ = ["CODE_KEY", "capture", "install", "needs_code", "source_diff"]

#: where the entries live in the ``@workflow`` header
CODE_KEY = "code"


def needs_code(module: str, qualname: str) -> bool:
    """Whether ``module.qualname`` must travel with the file: a fresh interpreter cannot import it."""
    return is_session_module(module)


def _global_names(source: str) -> list[str]:
    """Names the source reads (decorators included), in order of first use."""
    try:
        tree = ast.parse(_dedented(source))
    except SyntaxError:
        return []
    seen: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            seen.setdefault(node.id, None)
    return list(seen)


def _dedented(source: str) -> str:
    return textwrap.dedent(source)  # a method's source is indented


def _json_constant(value: Any) -> bool:
    if not isinstance(value, str | int | float | bool | list | dict | type(None)):
        return False
    try:
        return json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError, RecursionError):
        return False


def _importable(obj: Any) -> tuple[str, str] | None:
    """(module, qualname) by which an import finds ``obj`` itself, else None."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    if is_session_module(module) or module not in sys.modules:
        return None
    return (module, qualname) if live_object(module, qualname) is obj else None


class _Static:
    """What never changes for one function or class object: its source and the global names it reads."""

    __slots__ = ("code", "names", "sha256", "source")

    def __init__(self, obj: Any) -> None:
        self.code = getattr(obj, "__code__", None)
        self.source = live_source(obj)
        self.sha256 = source_hash(self.source) if self.source is not None else None
        self.names = _global_names(self.source) if self.source is not None else []


_statics: weakref.WeakKeyDictionary[Any, _Static] = weakref.WeakKeyDictionary()
#: function or class -> ((state, by_value, role), entry, problems, helpers): a notebook saves
#: the same functions again and again; an entry is made again when a global it uses changes
_entries: weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any], list[str], list[tuple[str, str]]]] = (
    weakref.WeakKeyDictionary()
)


def _static(obj: Any) -> _Static:
    try:
        hit = _statics.get(obj)
    except TypeError:  # not weakly referenceable
        return _Static(obj)
    if hit is None or hit.code is not getattr(obj, "__code__", None):
        hit = _statics[obj] = _Static(obj)
    return hit


def _scope(obj: Any, module: str) -> Mapping[str, Any]:
    scope = getattr(obj, "__globals__", None)
    if scope is None:
        scope = vars(sys.modules[module]) if module in sys.modules else {}
    return scope


def _state(obj: Any, module: str, seen: set[int]) -> tuple[Any, ...]:
    """What the entry of ``obj`` depends on beyond its own code: the globals it reads, by
    identity (JSON-able constants by value), session functions it uses with their own state."""
    scope = _scope(obj, module)
    return tuple((name, _value_key(scope[name], seen)) for name in _static(obj).names if name in scope)


def _value_key(value: Any, seen: set[int]) -> Any:
    if isinstance(value, types.ModuleType):
        return ("m", value.__name__)
    if isinstance(value, type | types.FunctionType):
        module = getattr(value, "__module__", None)
        if id(value) in seen or not isinstance(module, str) or not is_session_module(module):
            return ("f", id(value))
        seen.add(id(value))
        return ("f", id(value), id(getattr(value, "__code__", None)), _state(value, module, seen))
    if isinstance(value, str | int | float | bool | type(None)):
        return ("v", type(value).__name__, value)
    if isinstance(value, list | dict) and _json_constant(value):
        return ("v", json.dumps(value, sort_keys=True))
    return ("o", id(value))


class _Capture:
    def __init__(self, by_value: bool) -> None:
        self.by_value = by_value
        self.entries: dict[str, dict[str, Any]] = {}
        self.problems: dict[str, list[str]] = {}  # fqn -> what cannot be stored

    def add(self, module: str, qualname: str, role: str) -> None:
        fqn = f"{module}.{qualname}"
        if fqn in self.entries:
            known = self.entries[fqn]
            if role == "node" and known["role"] != "node":  # met as another function's helper first
                known["role"] = "node"
                found = live_object(module, qualname)
                if self.by_value and found is not None:
                    known["pickled"] = self._pickled(found, module, fqn)
            return
        obj = live_object(module, qualname)
        if obj is None:
            self.entries[fqn] = {"module": module, "qualname": qualname, "role": role, "source": None, "sha256": None}
            self.problems.setdefault(fqn, []).append("this session does not define it")
            return
        key = (_state(obj, module, set()), self.by_value, role)
        try:
            hit = _entries.get(obj)
        except TypeError:
            hit = None
        if hit is not None and hit[0] == key:
            self.entries[fqn] = dict(hit[1])  # the pickled bytes are shared: bytes do not change
            if hit[2]:
                self.problems[fqn] = list(hit[2])
            for helper in hit[3]:
                self.add(*helper, "helper")
            return
        static = _static(obj)
        entry: dict[str, Any] = {"module": module, "qualname": qualname, "role": role, "source": static.source}
        entry["sha256"] = static.sha256
        self.entries[fqn] = entry
        if "<locals>" in qualname:
            self.problems.setdefault(fqn, []).append("it is defined inside a function, so no name finds it")
        names: dict[str, Any] = {}
        scope = _scope(obj, module)
        for name in static.names:
            if name in scope:  # else a builtin, a parameter or a local
                names[name] = self._name(name, scope[name], fqn)
        entry["names"] = names
        if static.source is None:
            self.problems.setdefault(fqn, []).append("its source cannot be read (built at run time, or exec'd)")
        if self.by_value and role == "node":
            entry["pickled"] = self._pickled(obj, module, fqn)
        helpers = [
            (e["module"], e["qualname"]) for e in (self.entries[s["code"]] for s in names.values() if "code" in s)
        ]
        try:
            _entries[obj] = (key, dict(entry), list(self.problems.get(fqn, [])), helpers)
        except TypeError:
            pass

    def _name(self, name: str, value: Any, fqn: str) -> dict[str, Any]:
        if isinstance(value, types.ModuleType):
            if not is_session_module(value.__name__):
                return {"module": value.__name__}
        elif isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
            found = _importable(value)
            if found is not None:
                return {"import": found[0], "qualname": found[1]}
            module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
            if isinstance(module, str) and isinstance(qualname, str) and is_session_module(module):
                self.add(module, qualname, "helper")
                return {"code": f"{module}.{qualname}"}
        elif _json_constant(value):
            return {"value": value}
        else:
            found = _importable(value)
            if found is not None:
                return {"import": found[0], "qualname": found[1]}
        if not self.by_value:
            self.problems.setdefault(fqn, []).append(
                f"the global {name!r} (a {type(value).__name__}) cannot be written to a json file"
            )
        return {"missing": type(value).__name__}

    def _pickled(self, obj: Any, module: str, fqn: str) -> bytes | None:
        import cloudpickle

        by_value = module in sys.modules and module != "__main__"  # cloudpickle does __main__ by value itself
        if by_value:
            cloudpickle.register_pickle_by_value(sys.modules[module])
        try:
            return bytes(cloudpickle.dumps(obj, protocol=5))
        except Exception as exc:
            self.problems.setdefault(fqn, []).append(f"cloudpickle cannot store it ({type(exc).__name__}: {exc})")
            return None
        finally:
            if by_value:
                cloudpickle.unregister_pickle_by_value(sys.modules[module])


def capture(
    objects: Iterable[tuple[str, str]],
    *,
    used_by: Mapping[tuple[str, str], list[str]] | None = None,
    by_value: bool = True,
    saving: str = "",
) -> dict[str, dict[str, Any]]:
    """The code entries for the node functions among ``objects`` that need to travel.

    ``by_value=False`` (json) stores no pickled blob. A function whose code cannot be stored
    completely gets a :class:`CodeNotStoredWarning` naming the nodes (``used_by``) that use it.
    """
    cap = _Capture(by_value)
    for module, qualname in objects:
        if needs_code(module, qualname):
            cap.add(module, qualname, "node")
    for fqn, problems in cap.problems.items():
        entry = cap.entries[fqn]
        nodes = (used_by or {}).get((entry["module"], entry["qualname"])) or []
        who = f"node(s) {', '.join(nodes)} use {fqn}" if nodes else f"{fqn} (used by a node function)"
        placeable = "<locals>" not in entry["qualname"]  # a rebuilt function is defined under its name
        json_rebuilds = not by_value and entry["source"] is not None and not any("json" in p for p in problems)
        if not placeable or not (entry.get("pickled") is not None or json_rebuilds):
            later = f"rebuilding it (.workflow, .rerun()) will work only in a session that defines {fqn} itself"
        elif entry["source"] is None:
            later = (
                "rebuilding it elsewhere works from the stored pickled code, but its source is not shown or compared"
            )
        else:
            later = "rebuilding it works"
        warnings.warn(
            f"{saving}: {who}, whose code is not stored completely: {'; '.join(problems)}. The stored values "
            f"load anywhere; {later}",
            CodeNotStoredWarning,
            stacklevel=3,
        )
    return cap.entries


def source_diff(stored: str | None, now: str | None, name: str, *, limit: int = 20) -> str:
    """A short unified diff of a stored definition and the session's (``""`` when one is unknown)."""
    if stored is None or now is None:
        return ""
    lines = list(
        difflib.unified_diff(
            stored.splitlines(), now.splitlines(), f"{name} (stored)", f"{name} (this session)", lineterm="", n=1
        )
    )
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class _Builder:
    def __init__(self, entries: Mapping[str, dict[str, Any]], path: Path) -> None:
        self.entries = entries
        self.path = path
        self.built: dict[str, Any] = {}
        self.pending: list[tuple[dict[str, Any], str, str]] = []  # (namespace, name, fqn) filled at the end
        self.busy: set[str] = set()

    def get(self, fqn: str) -> Any:
        if fqn in self.built:
            return self.built[fqn]
        entry = self.entries.get(fqn)
        if entry is None:
            raise StorageError(f"{self.path} names the code of {fqn} but does not hold it", path=self.path)
        session = live_object(entry["module"], entry["qualname"])
        if session is not None:  # the session (or an earlier rebuild) defines it: use that one
            self.built[fqn] = session
            return session
        pickled = isinstance(entry.get("pickled"), bytes | bytearray)
        obj = self._unpickle(entry) if pickled else self._exec(fqn, entry)
        self.built[fqn] = obj
        return obj

    def _unpickle(self, entry: dict[str, Any]) -> Any:
        import cloudpickle

        obj = cloudpickle.loads(bytes(entry["pickled"]))
        code = getattr(obj, "__code__", None)
        source = entry.get("source")
        known = code is None or code.co_filename in linecache.cache or Path(code.co_filename).exists()
        if (
            code is not None and not known and isinstance(source, str)
        ):  # a notebook cell's file: let inspect show the source
            lines = ["\n"] * (code.co_firstlineno - 1) + source.splitlines(keepends=True)
            linecache.cache[code.co_filename] = (sum(map(len, lines)), None, lines, code.co_filename)
        return obj

    def _exec(self, fqn: str, entry: dict[str, Any]) -> Any:
        source = entry.get("source")
        if not isinstance(source, str):
            raise StorageError(
                f"{self.path} holds no code for {fqn} (its source could not be read when it was saved): "
                f"define {entry['qualname']} in this session, then rebuild",
                path=self.path,
            )
        self.busy.add(fqn)
        namespace: dict[str, Any] = {"__name__": entry["module"], "__builtins__": builtins}
        for name, spec in (entry.get("names") or {}).items():
            if "module" in spec:
                namespace[name] = importlib.import_module(spec["module"])
            elif "import" in spec:
                namespace[name] = _resolve(spec["import"], spec["qualname"])
            elif "value" in spec:
                namespace[name] = spec["value"]
            elif "code" in spec:
                if spec["code"] in self.busy:  # functions that use each other: filled in at the end
                    self.pending.append((namespace, name, spec["code"]))
                else:
                    namespace[name] = self.get(spec["code"])
        filename = f"<storage_nodes {self.path.name}: {fqn}>"
        text = _dedented(source)
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
        _module(entry["module"])  # a decorator may look its module up (flowrep does)
        exec(compile(text, filename, "exec"), namespace)
        self.busy.discard(fqn)
        return namespace[entry["qualname"].rsplit(".", 1)[-1]]

    def finish(self) -> None:
        for namespace, name, fqn in self.pending:
            namespace[name] = self.built[fqn]


def _module(module: str) -> types.ModuleType:
    """The loaded module ``module``; one made at run time is made again (empty)."""
    mod = sys.modules.get(module)
    if mod is None:
        mod = types.ModuleType(module, f"code of stored workflows ({module} was made at run time)")
        sys.modules[module] = mod
    return mod


def _place(module: str, qualname: str, obj: Any) -> None:
    """Make ``module.qualname`` find ``obj``."""
    setattr(_module(module), qualname, obj)


def install(
    entries: Mapping[str, dict[str, Any]],
    path: Path,
    *,
    safe: bool,
    policy: str | Callable[..., Any],
    checked: Iterable[str] = (),
) -> list[str]:
    """Make every stored node function importable by its recorded name; returns those built from the file.

    A function the session defines is used as it is; unless its name is in ``checked``
    (compared when the file was loaded) it is compared with the stored source under
    ``policy`` (``"strict"`` refuses with a diff, ``"warn"`` and ``"compatible"`` warn).
    ``safe=True`` refuses to run stored code with :class:`UnsafeLoadError`.
    """
    nodes = {fqn: e for fqn, e in entries.items() if isinstance(e, dict) and e.get("role", "node") == "node"}
    missing = [fqn for fqn, e in nodes.items() if "<locals>" not in e["qualname"]
               and live_object(e["module"], e["qualname"]) is None]  # fmt: skip
    _compare_session(nodes, path, policy, skip={*checked, *missing})
    if missing and safe:
        raise UnsafeLoadError(
            f"{path} carries the code of {', '.join(missing)}, which this session does not define: rebuilding "
            "the workflow runs that code. Load with load_workflow(path, safe=False) (the default) to rebuild "
            "if you trust the file, or define those functions first",
            path=path,
        )
    builder = _Builder(entries, path)
    for fqn in missing:
        try:
            obj = builder.get(fqn)
        except StorageError:
            raise
        except Exception as exc:  # the stored code failed: say whose
            raise StorageError(
                f"cannot rebuild {fqn} from the code stored in {path}: {type(exc).__name__}: {exc}", path=path
            ) from exc
        _place(nodes[fqn]["module"], nodes[fqn]["qualname"], obj)
    builder.finish()
    return missing


def _compare_session(nodes: Mapping[str, dict[str, Any]], path: Path, policy: Any, skip: set[str]) -> None:
    if policy == "ignore" or callable(policy):
        return
    changed = []
    for fqn, entry in nodes.items():
        if fqn in skip or not entry.get("sha256"):
            continue
        now = live_source(live_object(entry["module"], entry["qualname"]))
        if now is not None and source_hash(now) != entry["sha256"]:
            changed.append((fqn, source_diff(entry.get("source"), now, fqn)))
    if not changed:
        return
    listing = "\n".join(f"  {fqn} (source) differs from the stored code:\n{diff}" for fqn, diff in changed)
    if policy == "strict":
        raise VersionMismatchError(
            f"{path}: this session defines node functions differently from the stored workflow ('strict' "
            f"policy):\n{listing}\nrun the stored code (do not define these names), or load with "
            "version_policy='warn'",
            path=path,
            differences=[f"{fqn} (source)" for fqn, _ in changed],
        )
    warnings.warn(f"{path}: the session's node functions differ from the stored code:\n{listing}",
                  VersionMismatchWarning, stacklevel=4)  # fmt: skip
