"""Whole workflows: the recipe plus every port value of a run, in one file of any backend.

:func:`save_workflow` stores a plain nested dict through :func:`storage_nodes.save`::

    {
        "@workflow": {"format": "storage_nodes-workflow", "version": 1, "label": ...,
                      "kind": <recipe type>, "node_class": <pyiron_workflow class name>,
                      "recipe": <flowrep recipe JSON, a str>, "pyiron_workflow": ..., "flowrep": ...},
        "<node>":  {"inputs": {<port>: value}, "outputs": {<port>: value},
                    "nodes": {<child>: {...}}},   # "nodes" only for macros and flow controls
        ...
        "inputs":  {<workflow input>: value, ...},
        "outputs": {<workflow output>: value, ...},
    }

for any node that ran: a workflow, a macro, an atomic node or a flow control (for-each,
if, while, try); an atomic node has no ``<node>`` entries, only ``inputs`` and ``outputs``.
So ``sn.load(path, key="<node>/outputs/<port>")`` loads one port value and
``sn.inspect(path)`` lists nodes and ports. ``inputs`` and ``outputs`` are reserved by
flowrep and ``@workflow`` is not a Python identifier, so no node label can collide with
them. Constant nodes are not listed: their values are the input values of the ports they
feed (and they are in the recipe). The recipe is JSON text, readable without unpickling;
json files hold the port values when they are JSON-able, pickle/cloudpickle always.

:func:`load_workflow` returns a :class:`StoredWorkflow`; its ``.workflow`` is rebuilt from the
recipe (importing the node functions' modules only then) and ``.rerun()`` runs it on the
stored inputs.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from .. import api, registry
from .._secrets import strip_passwords
from .._validation import validated
from ..errors import CorruptFileError, InvalidArgumentError, KeyNotFoundError, StorageError, VersionMismatchError
from ..keys import navigate, suggest
from ..provenance.metadata import recorded_objects
from ..provenance.session_code import live_object, live_source
from ..provenance.versioning import VersionPolicy
from . import carried_code, filters, recipe_edit
from .document import FORMAT, FORMAT_VERSION, WORKFLOW_KEY, recipe_from_json

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "WORKFLOW_KEY",
    "StoredWorkflow",
    "load_outputs",
    "load_workflow",
    "save_outputs",
    "save_workflow",
]

PathLike = str | os.PathLike[str]
log = logging.getLogger("storage_nodes.graph")


def _port_values(ports: Mapping[str, Any], *, with_defaults: bool) -> dict[str, Any]:
    """Port label -> value; an input that ran on its default stores the default. Database
    URLs lose their password (``_secrets``): a ``catalog`` port must not store it."""
    from flowrep.api.schemas import NOT_DATA

    values = {}
    for label, port in ports.items():
        if port.value is not NOT_DATA:
            values[label] = strip_passwords(port.value)
        elif with_defaults and getattr(port, "default", NOT_DATA) is not NOT_DATA:
            values[label] = strip_passwords(port.default)
    return values


def _node_record(data: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "inputs": _port_values(data.input_ports, with_defaults=True),
        "outputs": _port_values(data.output_ports, with_defaults=False),
    }
    children = getattr(data, "nodes", None)
    if children is not None:
        record["nodes"] = _children(children)
    return record


def _children(nodes: Mapping[str, Any]) -> dict[str, Any]:
    from flowrep.api.schemas import ConstantData

    return {label: _node_record(d) for label, d in nodes.items() if not isinstance(d, ConstantData)}


def _run_of(wf: Any, run: Any) -> Any:
    chosen = run if run is not None else getattr(wf, "last_run", None)
    if chosen is None:
        raise StorageError(
            f"{_kind_name(wf)} {getattr(wf, 'label', wf)!r} has no finished run to save: call .run() first, "
            "or pass run="
        )
    result = getattr(chosen, "result", None)
    if result is None or not all(hasattr(result, a) for a in ("recipe", "input_ports", "output_ports")):
        raise InvalidArgumentError(f"run= must be the Run of a pyiron_workflow node (with .result), got {chosen!r:.80}")
    return chosen


#: what ``StoredWorkflow.kind`` says, per recipe type (``recipe.type`` in flowrep 0.6)
KINDS = {
    "workflow": "workflow",
    "atomic": "atomic",
    "for_each": "for-each",
    "if": "if",
    "while": "while",
    "try": "try",
}


def _kind_name(node: Any) -> str:
    """A short name of a node's kind for messages: ``Workflow``, ``Atomic``, ``ForEach``, ..."""
    return type(node).__name__


def workflow_document(wf: Any, run: Any = None) -> dict[str, Any]:
    """The plain nested dict :func:`save_workflow` stores (see the module docstring).

    ``wf`` is any pyiron_workflow node that has run: a workflow, a macro, an atomic node or
    a flow control (for-each, if, while, try). The recipe is the one the run carries, so it
    is built once (``wf.recipe`` rebuilds and validates it on every access).
    """
    import flowrep
    import pyiron_workflow

    chosen = _run_of(wf, run)
    result = chosen.result
    recipe = result.recipe
    kind = getattr(recipe, "type", None)
    kind = getattr(kind, "value", kind)  # a str enum in flowrep: store the plain str
    if kind not in KINDS:
        raise StorageError(
            f"save_workflow() cannot store a {_kind_name(wf)} node {getattr(wf, 'label', '')!r} of recipe type "
            f"{kind!r}: it stores workflows, macros, atomic nodes and for-each/if/while/try nodes"
        )
    document: dict[str, Any] = {
        WORKFLOW_KEY: {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "label": wf.label,
            "kind": kind,
            "node_class": _kind_name(wf),
            "recipe": strip_passwords(recipe.model_dump_json()),  # constants of a catalog port
            "pyiron_workflow": pyiron_workflow.__version__,
            "flowrep": flowrep.__version__,
        },
    }
    # nodes before the workflow's own inputs/outputs: a value shared by several ports is stored
    # once, at its first place (the h5 archive lists the others as shared references), and the
    # producing node's port is the place to look for it
    children = getattr(result, "nodes", None)
    if children is not None:
        document.update(_children(children))
    document["inputs"] = _port_values(result.input_ports, with_defaults=True)
    document["outputs"] = _port_values(result.output_ports, with_defaults=False)
    return document


@validated
def save_workflow(
    wf: Any,
    path: PathLike,
    backend: api.BackendChoice = "h5",
    *,
    run: Any = None,
    metadata: Mapping[str, Any] | None = None,
    catalog: api.Recorder | str | os.PathLike[str] | None = None,
    data_filter: filters.DataFilter = None,
) -> Path:
    """Save ``wf``'s recipe and every port value of its last run (or of ``run``) to ``path``.

    ``wf`` is any pyiron_workflow node that has run: a ``Workflow``, a macro, an atomic
    node (``pwf.node(f)``) or a flow control (for-each, if, while, try), on its own or with
    such nodes inside. ``backend=None`` picks by suffix. Returns the path written. Load one value back with
    ``sn.load(path, key="<node>/outputs/<port>")``, everything with :func:`load_workflow`.
    ``catalog`` (a :class:`~storage_nodes.Catalog`, a path or a database URL) records the
    workflow and every node of the run there once the file is written. ``backend`` may be a
    list of names tried in order. ``data_filter`` (a regular expression or a callable on
    ``"node.port"`` paths, ``"macro.child.port"`` inside macros) leaves the values of the ports
    it selects out of the file: they are stored as ``{"@not_stored": ...}`` and load as
    :class:`~storage_nodes.graph.filters.NotStored` (see ``storage_nodes/graph/filters.py``).

    >>> wf.run()  # doctest: +SKIP
    >>> sn.save_workflow(wf, "relax.pkl", backend="pickle")  # doctest: +SKIP
    PosixPath('relax.pkl')
    """
    # ask the class: ``wf.recipe`` is a property that rebuilds and validates the whole recipe
    if not all(hasattr(type(wf), a) for a in ("recipe", "label", "run")):
        raise InvalidArgumentError(
            f"save_workflow() takes a pyiron_workflow node (a Workflow, a macro, an atomic or flow-control node), "
            f"got {type(wf).__name__}"
        )
    rec = api.recorder(catalog)
    document = workflow_document(wf, run)
    filters.apply(document, data_filter, WORKFLOW_KEY)  # (the header records what was left out)
    # the node functions are stored by name in the recipe: record their versions and sources
    # (walk the JSON text already made: dumping the model again costs more than parsing it),
    # and store the code of those a fresh interpreter cannot import (__main__, notebook cells)
    used_by = recipe_edit.node_functions(json.loads(document[WORKFLOW_KEY]["recipe"]))
    chosen = backend or registry.for_suffix(Path(path))
    code = carried_code.capture(used_by, used_by=used_by, by_value=chosen != "json",
                                saving=f"save_workflow({os.fspath(path)!r})")  # fmt: skip
    if code:
        document[WORKFLOW_KEY][carried_code.CODE_KEY] = code
    helpers = [(e["module"], e["qualname"]) for e in code.values() if e["role"] == "helper"]
    with recorded_objects([*used_by, *helpers]):  # a helper's change is a change of the node
        written = api.save(document, path, backend, metadata=metadata)
    if rec is not None:  # the file first, the record second: a crash between leaves a file `index` finds
        header = document[WORKFLOW_KEY]
        nodes = {k: v for k, v in document.items() if k != WORKFLOW_KEY}  # with the root's own ports
        try:
            rec.record_workflow(written, label=header["label"], recipe=header["recipe"], nodes=nodes,
                                metadata=metadata, backend=api.written_by(written, _named(backend)))  # fmt: skip
        except Exception as exc:
            raise api.record_failed(exc, written, rec) from None
    return written


def _named(backend: api.BackendChoice) -> str | None:
    """The backend asked for by name (``None`` for a list: the file says which one wrote it)."""
    return backend if isinstance(backend, str) else None


@dataclasses.dataclass
class StoredWorkflow:
    """What :func:`load_workflow` returns: the stored recipe and port values of one run.

    ``nodes[label]["outputs"][port]`` (or ``stored["<node>/outputs/<port>"]``) is a port value;
    ``kind`` / ``node_class`` say what was saved; ``.node`` (also ``.workflow``) rebuilds it
    runnable from the recipe, ``.rerun()`` runs it on the stored ``inputs``.
    """

    path: Path
    label: str
    recipe_json: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    nodes: dict[str, dict[str, Any]]
    info: dict[str, Any]
    #: how :func:`load_workflow` was asked to load: stored code runs only with ``safe=False``
    safe: bool = False
    version_policy: Any = "warn"
    #: the stored node functions this session defined at load (compared by the load's check)
    checked: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # the dataclass repr would print the whole recipe JSON and every port value
        nodes = ", ".join(self.nodes)
        return (
            f"<StoredWorkflow {self.label!r} ({self.node_class}) from {self.path}: nodes [{nodes}], "
            f"inputs {sorted(self.inputs)}, outputs {sorted(self.outputs)}>"
        )

    def __getitem__(self, key: str) -> Any:
        """A stored value by key, e.g. ``stored["grid/outputs/grid"]`` or ``stored["outputs/energy"]``."""
        return navigate({"inputs": self.inputs, "outputs": self.outputs, **self.nodes}, key, path=self.path)

    @functools.cached_property
    def recipe(self) -> Any:
        """The flowrep recipe (a pydantic model); parsing it imports no node code."""
        return recipe_from_json(self.recipe_json)

    def draw(self, depth: int = 1) -> Any:
        """The stored recipe as a ``graphviz.Digraph`` (shown inline in Jupyter), each port
        with its stored value where small; nothing is rebuilt or run. ``depth``: how many
        levels of nested workflows to expand. Write it with ``.pipe("svg")`` or
        :func:`storage_nodes.graph.draw.write_drawing`. Needs ``graphviz`` and ``dot``.

        >>> sn.load_workflow("relax_workflow.h5", safe=True).draw()  # doctest: +SKIP
        """
        from .draw import draw_stored

        return draw_stored(self, depth=depth)

    @property
    def kind(self) -> str:
        """What the file holds: ``"workflow"``, ``"atomic"``, ``"for-each"``, ``"if"``, ``"while"``, ``"try"``."""
        recorded = self.info.get("kind")
        if recorded is None:  # written before 0.2: always a workflow's run
            recorded = json.loads(self.recipe_json).get("type", "workflow")
        return KINDS.get(recorded, str(recorded))

    @property
    def node_class(self) -> str:
        """The pyiron_workflow class that was saved (``Workflow``, ``Macro``, ``Atomic``, ``ForEach``, ...)."""
        recorded = self.info.get("node_class")
        if recorded:
            return str(recorded)
        return {"workflow": "Workflow", "atomic": "Atomic", "for-each": "ForEach"}.get(self.kind, self.kind.title())

    @property
    def code(self) -> dict[str, dict[str, Any]]:
        """The stored code of node functions a fresh interpreter cannot import (``__main__``,
        notebook cells), by ``"module.qualname"``: ``source``, ``sha256``, the ``names`` it uses."""
        return dict(self.info.get(carried_code.CODE_KEY) or {})

    @functools.cached_property
    def node(self) -> Any:
        """A new pyiron_workflow node of the stored kind, built from the recipe (imports the node functions).

        A ``Workflow`` comes back as a ``Workflow``; every other node (a macro, an atomic
        node, a flow control) as what ``pyiron_workflow.node(recipe)`` builds from its recipe.
        Built once, as :meth:`rebuild` with its defaults builds it (SaveNodes with relative
        paths write into a new directory beside the file), except that a SaveNode whose
        absolute file exists is not refused here: it gets ``overwrite=False``, so running
        the node refuses to replace that file.
        """
        return self._rebuild(None, None, False, dict(self.inputs), refuse=False, guard_inputs=True)[0]

    @property
    def workflow(self) -> Any:
        """The rebuilt node (:attr:`node`); for a stored workflow, a ``pyiron_workflow.Workflow``."""
        return self.node

    def rebuild(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        directory: PathLike | None = None,
        overwrite: bool = False,
    ) -> Any:
        """A new runnable node built from the stored recipe, its SaveNodes kept off the stored results.

        ``inputs`` sets child inputs by dotted path (``{"md_2.T": 1200.0}``, nested macros as
        ``"macro.child.port"``, flow-control bodies as ``"for_each_0.body.child.port"``). SaveNodes
        (also inside flow-control bodies) with a relative path write into ``directory``
        (default: a new directory beside the file, named after it and the UTC time, logged);
        an absolute path that exists is refused unless ``overwrite``. Stored code of node
        functions the session does not define is run (``safe=False`` loads only).

        A SaveNode whose path is one of the workflow's own inputs gets that path when the node
        runs: it refuses to replace an existing file (unless ``overwrite``), and a warning
        names the re-rooted value to pass (:meth:`rerun` passes it itself).

        >>> wf = sn.load_workflow("sweep_wf.h5").rebuild({"md_2.T": 1200.0}, directory="hot")  # doctest: +SKIP
        """
        node, redirect = self._rebuild(inputs, directory, overwrite, dict(self.inputs), guard_inputs=True)
        if redirect.inputs:
            log.warning(
                "rebuild of %s: its SaveNodes write to the workflow's own inputs, which the first run set to "
                "files it wrote; run it with %s (they refuse to replace an existing file)",
                self.path,
                ", ".join(f"{k}={v!r}" for k, v in redirect.inputs.items()),
            )
        return node

    def _rebuild(
        self,
        inputs: Mapping[str, Any] | None,
        directory: PathLike | None,
        overwrite: bool,
        run_inputs: dict[str, Any],
        *,
        refuse: bool = True,
        guard_inputs: bool = False,
    ) -> tuple[Any, recipe_edit.Redirect]:
        import pyiron_workflow as pwf

        recipe_dict = json.loads(self.recipe_json)
        for dotted, value in (inputs or {}).items():
            recipe_edit.set_input(recipe_dict, dotted, value, label=f"the stored {self.node_class} {self.label!r}")
        target = Path(directory).expanduser().absolute() if directory is not None else self._new_directory_name()
        redirect = recipe_edit.redirect_saves(
            recipe_dict, target, run_inputs=run_inputs, overwrite=overwrite, refuse=refuse, guard_inputs=guard_inputs
        )
        carried_code.install(self.code, self.path, safe=self.safe, policy=self.version_policy, checked=self.checked)
        if redirect.moved:  # last: a refused rebuild leaves no directory behind
            self._make_directory(target, [new for _, _, new in redirect.moved], announce=directory is None)
        recipe = (
            recipe_from_json(json.dumps(recipe_dict)) if inputs or redirect.moved or redirect.guarded else self.recipe
        )
        try:
            if self.node_class == "Workflow" and self.kind == "workflow":
                return pwf.Workflow.from_recipe(recipe, self.label), redirect
            return pwf.node(recipe, self.label), redirect
        except (ImportError, TypeError, ValueError, AttributeError) as exc:
            advice = ""
            missing = [f"{m}.{q}" for m, q in recipe_edit.node_functions(json.loads(self.recipe_json))
                       if carried_code.needs_code(m, q) and f"{m}.{q}" not in self.code]  # fmt: skip
            if missing:
                advice = (
                    f"; the file holds no code for {', '.join(missing)} (saved by a storage_nodes before code "
                    "travelled with workflows): define them in this session (run the cells that define them), "
                    "then rebuild"
                )
            raise StorageError(
                f"{self.path} holds a {self.node_class} ({self.kind} recipe) that pyiron_workflow "
                f"{pwf.__version__} cannot rebuild here: {type(exc).__name__}: {exc}{advice}",
                path=self.path,
            ) from exc

    def _new_directory_name(self) -> Path:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        base = self.path.expanduser().absolute().parent / f"{self.path.stem}_rerun_{stamp}"
        candidate, n = base, 1
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{base.name}_{n}")
        return candidate

    def _make_directory(self, target: Path, files: list[str], *, announce: bool) -> None:
        try:
            target.mkdir(parents=True, exist_ok=not announce)
            for file in files:
                Path(file).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create {target} for the rerun's SaveNodes ({exc.strerror or exc}); "
                "pass directory= a directory you may write to",
                path=target,
            ) from None
        if announce:
            log.warning("rerun of %s: its SaveNodes write into %s (pass directory= to choose)", self.path, target)

    def rerun(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        directory: PathLike | None = None,
        overwrite: bool = False,
        **workflow_inputs: Any,
    ) -> Any:
        """Rebuild the node (:meth:`rebuild`) and run it on the stored inputs; returns the ``Run``.

        ``inputs={"md_2.T": 1200.0}`` changes a child's input (any depth); keywords change the
        workflow's own inputs. The files the first run wrote are never touched: SaveNodes
        write into ``directory`` (default: a new directory beside the file).

        >>> run = sn.load_workflow("sweep_wf.h5").rerun({"md_2.T": 1200.0}, directory="hot")  # doctest: +SKIP
        """
        own = list(json.loads(self.recipe_json).get("inputs") or [])
        unknown = [k for k in workflow_inputs if k not in own]
        if unknown:
            paths = recipe_edit.input_paths(json.loads(self.recipe_json))
            near = [p for p in paths if p.rsplit(".", 1)[-1] == unknown[0]]
            hint = f"; to set a child's input, pass inputs={{{near[0]!r}: ...}}" if near else suggest(unknown[0], own)
            raise KeyNotFoundError(
                f"the stored {self.node_class} {self.label!r} has no input {unknown[0]!r} (its own inputs: "
                f"{own}){hint}; the child inputs rerun(inputs={{...}}) can set: {', '.join(paths[:40]) or 'none'}",
                path=self.path,
                key=unknown[0],
            )
        # filtered inputs were not stored: left out, so the rerun computes them
        stored = {k: v for k, v in self.inputs.items() if not filters.is_not_stored(v)}
        run_inputs = {**stored, **workflow_inputs}
        node, redirect = self._rebuild(inputs, directory, overwrite, run_inputs)
        return node.run(**{**run_inputs, **redirect.inputs})


def _stored_workflow(doc: Any, path: Path) -> StoredWorkflow:
    header = doc.get(WORKFLOW_KEY) if isinstance(doc, dict) else None
    if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(header.get("recipe"), str):
        raise CorruptFileError(
            f"{path} does not hold a stored workflow (no {WORKFLOW_KEY!r} entry of format {FORMAT!r}); "
            "load it with storage_nodes.load()",
            path=path,
        )
    if header.get("version", 0) > FORMAT_VERSION:
        raise CorruptFileError(
            f"{path} holds a stored workflow of format version {header.get('version')}, newer than this "
            f"storage_nodes reads ({FORMAT_VERSION}); upgrade storage_nodes",
            path=path,
        )
    reserved = {WORKFLOW_KEY, "inputs", "outputs"}
    stored = StoredWorkflow(
        path=path,
        label=str(header.get("label", "workflow")),
        recipe_json=header["recipe"],
        inputs=dict(doc.get("inputs") or {}),
        outputs=dict(doc.get("outputs") or {}),
        nodes={k: v for k, v in doc.items() if k not in reserved},
        info={k: v for k, v in header.items() if k != "recipe"},
    )
    if header.get("filtered"):
        filters.restore(stored.nodes, stored.inputs, stored.outputs)
    return stored


@validated
def load_workflow(
    path: PathLike,
    backend: str | None = None,
    *,
    version_policy: VersionPolicy | Callable[[dict[str, Any], dict[str, Any]], Any] = "warn",
    safe: bool = False,
    refused: Literal["error", "placeholder"] = "error",
) -> StoredWorkflow:
    """Load a file written by :func:`save_workflow`.

    ``safe=True`` refuses pickle/cloudpickle files and imports nothing; the node functions
    are imported only when ``.workflow`` (or ``.rerun()``) is used. With
    ``refused="placeholder"`` a port value that ``safe=True`` refuses (or whose package is
    missing) becomes a :class:`storage_nodes.Refused` and every other value loads.

    >>> stored = sn.load_workflow("relax.pkl")  # doctest: +SKIP
    >>> stored.outputs, stored.nodes["calc"]["outputs"]  # doctest: +SKIP
    >>> run = stored.rerun()  # doctest: +SKIP
    """
    p = Path(path).expanduser()
    try:
        doc = api.load(p, backend, version_policy=version_policy, safe=safe, refused=refused)
    except VersionMismatchError as exc:
        raise _with_source_diffs(exc, p, backend, safe) from None
    stored = _stored_workflow(doc, p)
    stored.safe, stored.version_policy = safe, version_policy
    if version_policy != "ignore":  # the load compared these with the session's: not again at rebuild
        stored.checked = frozenset(
            fqn for fqn, e in stored.code.items() if live_object(e.get("module", ""), e.get("qualname", "")) is not None
        )
    return stored


def _with_source_diffs(exc: VersionMismatchError, p: Path, backend: str | None, safe: bool) -> VersionMismatchError:
    """``exc`` with a short diff for each node function whose stored code differs from the session's."""
    differing = [d.split(" (source)", 1)[0] for d in exc.differences if d.endswith(" (source)") or " (source):" in d]
    if not differing:
        return exc
    try:  # the header only: h5 reads that entry, json holds no code objects; pickles only if trusted
        chosen = api.resolve_backend(p, backend).name
        if chosen == "h5":
            header = api.load(p, chosen, key=WORKFLOW_KEY, version_policy="ignore", safe=True)
        elif chosen == "json" or not safe:
            header = api.load(p, chosen, version_policy="ignore", safe=chosen == "json").get(WORKFLOW_KEY)
        else:
            return exc
        code = dict(header.get(carried_code.CODE_KEY) or {})
    except Exception:
        return exc
    diffs = []
    for fqn in differing:
        entry = code.get(fqn)
        if isinstance(entry, dict):
            now = live_source(live_object(entry.get("module", ""), entry.get("qualname", "")))
            diff = carried_code.source_diff(entry.get("source"), now, fqn)
            if diff:
                diffs.append(diff)
    if diffs:
        exc.message = exc.message + "\n" + "\n".join(diffs)
        exc.args = (exc.message,)
    return exc


def _outputs_of(run_or_node: Any) -> dict[str, Any]:
    run = run_or_node
    if not hasattr(run, "outputs") or not hasattr(run, "result"):  # a node: use its last run
        run = getattr(run_or_node, "last_run", None)
        if run is None:
            label = getattr(run_or_node, "label", run_or_node)
            raise StorageError(
                f"{label!r} has no finished run to save: run it first (a node run inside a workflow "
                f"keeps no run of its own: pass the workflow's Run, or save_workflow() every port)"
            )
    outputs = run.outputs
    if not isinstance(outputs, Mapping):
        raise InvalidArgumentError(f"save_outputs() takes a Run or a node, got {type(run_or_node).__name__}")
    if not outputs:
        raise InvalidArgumentError(
            "save_outputs(): the run has no outputs, so there is nothing to save (a pyiron_workflow 0.20 "
            "workflow has no output ports until you add some: wf.set_outputs_to_unconnected_child_output() "
            "or wf.create_output_from(...)); save_workflow() stores every node's ports instead"
        )
    return dict(outputs)


@validated
def save_outputs(
    run_or_node: Any,
    path: PathLike,
    backend: str | None = "h5",
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save the outputs of a ``Run`` (or of a node's or workflow's last run) as ``{port: value}``.

    >>> sn.save_outputs(wf.run(), "outputs.pkl", backend="pickle")  # doctest: +SKIP
    >>> sn.load("outputs.pkl", key="energy")  # doctest: +SKIP
    """
    return api.save(_outputs_of(run_or_node), path, backend, metadata=metadata)


@validated
def load_outputs(
    path: PathLike,
    backend: str | None = None,
    *,
    version_policy: VersionPolicy | Callable[[dict[str, Any], dict[str, Any]], Any] = "warn",
    safe: bool = False,
) -> dict[str, Any]:
    """Load the ``{port: value}`` dict written by :func:`save_outputs`.

    >>> sn.load_outputs("outputs.pkl")["energy"]  # doctest: +SKIP
    """
    p = Path(path).expanduser()
    outputs = api.load(p, backend, version_policy=version_policy, safe=safe)
    if not isinstance(outputs, dict):
        raise CorruptFileError(
            f"{p} holds a {type(outputs).__name__}, not the output dict save_outputs() writes", path=p
        )
    return outputs
