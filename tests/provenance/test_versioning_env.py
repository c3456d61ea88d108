"""The issue's test: save with a throw-away package, change the environment, check each policy.

A package ``snvt_models`` lives in a temporary git repository (``repo/src``) and is
"installed" by a hand-written ``snvt_models-1.2.0.dist-info`` in ``site/``; both go on
PYTHONPATH of the subprocesses. Files are saved once; each environment change works on a
copy of that world and runs one fresh subprocess that loads every file under every policy
(and runs ``storage-nodes verify``), so no cache of this process can hide the change.
The subprocesses run with an empty PATH: git state must be read without the executable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BACKENDS = {"pickle": ".pkl", "cloudpickle": ".cpkl", "h5": ".h5", "json": ".json"}
CODE_BACKENDS = [b for b in BACKENDS if b != "json"]
POLICIES = ["ignore", "warn", "compatible", "strict", "callable"]

CORE = """\
import dataclasses


@dataclasses.dataclass
class Model:
    a: int
    b: float = 1.0


def helper(x):
    return x + 1
"""

SAVE = """
import sys, storage_nodes as sn
from snvt_models.core import Model, helper
out = sys.argv[1]
for backend, suffix in {backends!r}.items():
    obj = {{"plain": [1, 2.5, "x"]}}
    if backend != "json":
        obj.update(model=Model(3, 2.0), f=helper)
    sn.save(obj, out + "/data" + suffix, backend=backend, metadata={{"run": 7}})
"""

CHECK = """
import contextlib, io, json, sys, warnings
import storage_nodes as sn
from storage_nodes import cli

files, policies = json.loads(sys.argv[1]), json.loads(sys.argv[2])
seen = {}

def refuse_on_any_version_change(stored, now):
    versions = {n: (m.get("version"), now["modules"][n].get("version")) for n, m in stored["modules"].items()}
    if versions:
        seen["versions"] = versions
    return all(a == b for a, b in versions.values())

def attempt(**kwargs):
    try:
        return {"loaded": type(sn.load(**kwargs)).__name__}
    except sn.VersionMismatchError as exc:
        return {"refused": exc.differences}
    except sn.StorageError as exc:
        return {"error": type(exc).__name__}

result = {backend: {} for backend in files}
for backend, path in files.items():  # first, before anything imported the package
    result[backend]["safe-partial-strict"] = attempt(path=path, key="plain", safe=True, version_policy="strict")
result["imported_by_safe_loads"] = sorted(m for m in sys.modules if m.startswith("snvt_models"))
for backend, path in files.items():
    outcomes = result[backend]
    outcomes["partial-strict"] = attempt(path=path, key="plain", version_policy="strict")
    for policy in policies:
        chosen = refuse_on_any_version_change if policy == "callable" else policy
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                obj = sn.load(path, version_policy=chosen)
                outcome = {"loaded": type(obj).__name__}
            except sn.VersionMismatchError as exc:
                outcome = {"refused": exc.differences}
            except sn.StorageError as exc:
                outcome = {"error": type(exc).__name__}
        outcome["warnings"] = [str(w.message) for w in caught if issubclass(w.category, sn.VersionMismatchWarning)]
        outcome["warned_here"] = all(w.filename == "<string>" for w in caught)
        outcomes[policy] = outcome
    for policy in ("strict", "compatible", "warn"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = cli.main(["verify", path, "--policy", policy, "--json"])
        outcomes["verify-" + policy] = {"code": code, "report": json.loads(buf.getvalue())}
    outcomes["differences"] = [str(d) for d in sn.verify(path, policy="ignore")]
result["callable_saw"] = seen.get("versions")
print(json.dumps(result))
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _install(site: Path, version: str) -> None:
    for old in site.glob("snvt_models-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"snvt_models-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: snvt-models\nVersion: {version}\n")
    (info / "top_level.txt").write_text("snvt_models\n")


def _env(world: Path, installed: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "GIT_"))}
    env["PATH"] = ""  # no git executable: the record must be read from the repository files
    if installed:
        env["PYTHONPATH"] = os.pathsep.join([str(world / "repo" / "src"), str(world / "site")])
    return env


def _python(script: str, *args: str, env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world (repo + site) and the files saved in it, before any change."""
    root = tmp_path_factory.mktemp("versioning")
    world = root / "world"
    pkg = world / "repo" / "src" / "snvt_models"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text(CORE)
    (pkg / "util.py").write_text("def other():\n    return 1\n")
    (world / "repo" / "README").write_text("throw-away\n")
    _install(world / "site", "1.2.0")
    _git(world / "repo", "init", "-q")
    _git(world / "repo", "add", ".")
    _git(world / "repo", "commit", "-q", "-m", "initial")
    files = root / "files"
    files.mkdir()
    _python(SAVE.format(backends=BACKENDS), str(files), env=_env(world), cwd=root)
    return root


def _scenario(saved: Path, tmp_path: Path, change: str) -> dict[str, Any]:
    """Copy the world, apply ``change``, run the checks in a fresh subprocess."""
    world = tmp_path / "world"
    shutil.copytree(saved / "world", world, symlinks=True)
    repo, pkg = world / "repo", world / "repo" / "src" / "snvt_models"
    installed = True
    if change == "bump minor":
        _install(world / "site", "1.3.0")
    elif change == "bump major":
        _install(world / "site", "2.0.0")
    elif change == "commit":
        (pkg / "util.py").write_text("def other():\n    return 2\n")
        _git(repo, "commit", "-q", "-am", "change util")
        _git(repo, "gc", "-q", "--aggressive")  # objects now live in a pack, partly as deltas
    elif change == "uncommitted edit":
        (pkg / "util.py").write_text("def other():\n    return 3\n")
    elif change == "class source":
        (pkg / "core.py").write_text(CORE.replace("    b: float = 1.0\n", "    b: float = 1.0\n    c: int = 0\n"))
    elif change == "uninstall":
        installed = False
    files = {b: str(saved / "files" / f"data{s}") for b, s in BACKENDS.items()}
    out = _python(CHECK, json.dumps(files), json.dumps(POLICIES), env=_env(world, installed), cwd=tmp_path)
    return json.loads(out)


def test_record_written_by_every_backend(saved: Path) -> None:
    import storage_nodes as sn

    for backend, suffix in BACKENDS.items():
        env = sn.environment(saved / "files" / f"data{suffix}")
        assert env["backend"] == backend and env["record_version"] == 1
        assert env["python"]["version"].count(".") == 2 and env["timestamp"].endswith("Z")
        assert sn.inspect(saved / "files" / f"data{suffix}").metadata == {"run": 7}
        if backend == "json":
            assert env["modules"] == {}  # plain data: no code stored
            continue
        core = env["modules"]["snvt_models.core"]
        assert core["package"] == "snvt_models"
        assert core["distribution"] == "snvt-models" and core["version"] == "1.2.0"
        assert len(core["git"]["commit"]) == 40 and core["git"]["dirty"] is False
        # h5 stores the function as an opaque blob and records only the class
        assert set(core["sources"]) == {"Model", "helper"}  # h5 records functions inside opaque leaves too
        assert "note" not in core["git"]
        assert "snvt_models.core==1.2.0" in str(sn.inspect(saved / "files" / f"data{suffix}"))


def _assert_plain_data_unaffected(result: dict[str, Any]) -> None:
    for policy in POLICIES:
        assert result["json"][policy] == {"loaded": "dict", "warnings": [], "warned_here": True}
    # a partial load checks only what its entry needs: plain data next to the class loads
    # from h5 (and json) under "strict", safely, without importing the package
    for backend in ("h5", "json"):
        assert result[backend]["safe-partial-strict"] == {"loaded": "list"}
        assert result[backend]["partial-strict"] == {"loaded": "list"}
    assert result["pickle"]["safe-partial-strict"] == {"error": "UnsafeLoadError"}
    assert result["imported_by_safe_loads"] == []
    assert result["json"]["verify-strict"]["code"] == 0
    assert result["json"]["differences"] == []


def test_unchanged_environment_passes_every_policy(saved: Path, tmp_path: Path) -> None:
    result = _scenario(saved, tmp_path, "none")
    for backend in CODE_BACKENDS:
        for policy in POLICIES:
            assert result[backend][policy] == {"loaded": "dict", "warnings": [], "warned_here": True}
        assert result[backend]["differences"] == []
        assert result[backend]["verify-strict"]["code"] == 0
    _assert_plain_data_unaffected(result)


# change -> (the difference expected, whether "compatible" refuses it)
EXPECTED = {
    "bump minor": ("snvt_models.core: stored snvt-models==1.2.0, now snvt-models==1.3.0", False),
    "bump major": ("snvt_models.core: stored snvt-models==1.2.0, now snvt-models==2.0.0", True),
    "commit": ("snvt_models.core (git commit): stored ", False),
    "uncommitted edit": ("snvt_models.core (git dirty): stored clean, now dirty", False),
    "class source": ("snvt_models.core.Model (source): stored ", False),
    "uninstall": ("snvt_models.core: stored snvt-models==1.2.0, now not installed", True),
}


@pytest.mark.parametrize("change", list(EXPECTED))
def test_policies_after_environment_change(saved: Path, tmp_path: Path, change: str) -> None:
    expected, breaking = EXPECTED[change]
    result = _scenario(saved, tmp_path, change)
    for backend in CODE_BACKENDS:
        r = result[backend]
        assert any(d.startswith(expected) for d in r["differences"]), r["differences"]
        if change == "uninstall":  # the data cannot be rebuilt without the package
            assert r["ignore"] == {"error": "StorageError", "warnings": [], "warned_here": True}
            assert r["warn"]["error"] == "StorageError"
        else:
            assert r["ignore"] == {"loaded": "dict", "warnings": [], "warned_here": True}
            assert r["warn"]["loaded"] == "dict"
        assert any(expected in w for w in r["warn"]["warnings"]) and r["warn"]["warned_here"]
        assert any(d.startswith(expected) for d in r["strict"]["refused"])
        if breaking:
            assert any(d.startswith(expected) for d in r["compatible"]["refused"])
            assert r["verify-compatible"]["code"] == 1
        else:
            assert "refused" not in r["compatible"] and r["compatible"]["warnings"]
            assert r["verify-compatible"]["code"] == 0
        assert r["verify-strict"]["code"] == 1 and r["verify-warn"]["code"] == 0
        if backend != "h5":  # pickle files are checked whole, whatever the key
            assert any(d.startswith(expected) for d in r["partial-strict"]["refused"])
        report = r["verify-strict"]["report"]["differences"]
        assert any(d["message"].startswith(expected) and d["refused"] for d in report)
        version_changed = change in ("bump minor", "bump major", "uninstall")
        assert ("refused" in r["callable"]) == version_changed
    if change == "bump minor":
        assert result["callable_saw"] == {"snvt_models.core": ["1.2.0", "1.3.0"]}
    if change == "class source":  # an edit to the class is also an uncommitted edit
        assert "snvt_models.core (git dirty): stored clean, now dirty" in result["pickle"]["differences"]
    if change in ("uncommitted edit", "commit"):  # the class itself did not change
        assert not any("(source)" in d for d in result["pickle"]["differences"])
    _assert_plain_data_unaffected(result)
