"""The fingerprint of the code a pipeline run executes, part of every component's cache key.

TFX keys its cache on a component's parameters, its input artifacts and the text of a `module_file`
parameter, not on the libraries the executors import. Everything movierec's components and the
Transform/Trainer module files run (data readers, splits, models, metrics) lives in the `movierec`
package, so after an edit to e.g. `data/splits.py` a cached run would silently serve results of
the old code. `code_fingerprint()` hashes every .py file of the installed package and the locked
dependency set; `create_pipeline` passes it to every custom component, Transform and Trainer as a
parameter, so a change re-runs them (and, through their new outputs, everything downstream).

One fingerprint for the whole package rather than one per component's imports: the components import
each other's modules through package `__init__`s and the registry, so a per-component closure would be
easy to get wrong, and a missed dependency is exactly the stale result this exists to prevent.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

# The import packages setup.py maps onto repository folders (STAGE_FOLDERS there; a test keeps the
# two in step).
STAGE_PACKAGES = (
    "movierec",
    "movierec.data",
    "movierec.evaluation",
    "movierec.models",
    "movierec.components",
    "movierec.pipeline",
    "movierec.serving",
    "movierec.cli",
)
LOCK_FILE = PurePosixPath("requirements/lock.txt")


def package_roots() -> dict[str, Path]:
    """{import name: folder} of the installed stage packages, found without importing them (the
    components import TensorFlow; only `movierec/__init__.py` runs here)."""
    roots = {}
    for name in STAGE_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"{name} is not an installed package; run 'make setup'")
        roots[name] = Path(next(iter(spec.submodule_search_locations)))
    return roots


def source_files(roots: Mapping[str, Path]) -> dict[str, Path]:
    """{import path such as 'movierec/models/gru4rec.py': file} for every .py file below the roots.

    Keys are import paths, not file paths, so an editable install (models/ beside movierec/) and a
    wheel (movierec/models/) of the same code give the same fingerprint; a wheel's nested folders are
    found twice under the same key.
    """
    files = {}
    for name, root in roots.items():
        prefix = PurePosixPath(*name.split("."))
        for path in root.rglob("*.py"):
            relative = path.relative_to(root)
            if "__pycache__" not in relative.parts:
                files[(prefix / relative.as_posix()).as_posix()] = path
    return files


def dependency_set(roots: Mapping[str, Path]) -> bytes:
    """The locked dependency set: `requirements/lock.txt` of the checkout the package is installed
    from (editable installs, as `make setup` makes); a wheel install has no lock file beside it, so
    there the installed distributions and versions stand in for it."""
    lock = roots["movierec"].parent / LOCK_FILE
    if lock.is_file():
        return lock.read_bytes()
    installed = sorted(
        f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions()
    )
    return "\n".join(installed).encode()


def code_fingerprint(roots: Mapping[str, Path] | None = None) -> str:
    """sha256 over the sorted import paths and bytes of the package's .py files, then the dependency
    set. `roots` defaults to the installed package (tests point it at a copy)."""
    roots = package_roots() if roots is None else roots
    digest = hashlib.sha256()
    for key, path in sorted(source_files(roots).items()):
        content = path.read_bytes()
        # name and length first: moving bytes from one file to the next changes the digest
        digest.update(f"{key}\0{len(content)}\0".encode())
        digest.update(content)
    dependencies = dependency_set(roots)
    digest.update(f"{LOCK_FILE}\0{len(dependencies)}\0".encode())
    digest.update(dependencies)
    return digest.hexdigest()
