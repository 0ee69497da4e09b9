"""Imports flow one way: scene -> model -> app -> Renderer -> vk, with the front ends (CLI, viewer, reports,
trainers) on top. The test reads every ``import`` of the package (function-level ones too) with ``ast`` and fails
on any arrow that the table below does not allow.

Run as a script (``python tests/test_layering.py``) it prints the edges against the layering."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ngrender"

# Module -> component. A package is one component unless listed here; a top-level module is its own.
COMPONENT_OF = {
    **{f"ngrender.{m}": "base" for m in ("errors", "validate", "fileio", "cache", "limits", "pngio", "camera",
                                               "progress")},
    # the Vulkan-free face of apps/: the registry and what a scene sets (view types, modes, kernel variants)
    "ngrender.apps": "app_specs", "ngrender.apps.registry": "app_specs", "ngrender.apps.views": "app_specs",
    "ngrender.netconfig": "model", "ngrender.snapshot": "model",
    "ngrender.glslgen": "glsl", "ngrender.shaders": "glsl",
    "ngrender.shader_interface": "interface",  # the declared shader interface, a leaf like encoding
    "ngrender.__main__": "cli",
    "ngrender.mesh_accuracy": "mesh",  # the Chamfer distance of an exported mesh to its source scan
}

# Component -> the components it may import (besides itself). Read it bottom-up: each row names only rows above.
ALLOWED = {
    "base": set(),
    "encoding": {"base"},
    "interface": {"base", "encoding"},
    "model": {"base", "encoding"},
    "glsl": {"base", "encoding", "interface"},
    "vk": {"base"},
    "app_specs": {"base", "encoding", "model"},
    "apps": {"base", "encoding", "interface", "model", "glsl", "vk", "app_specs"},
    "reference": {"base", "encoding", "interface", "model", "app_specs"},
    "render": {"base", "interface", "vk"},
    "scene": {"base", "model", "app_specs"},
    "session": {"base", "interface", "model", "vk", "app_specs", "apps", "render", "scene"},
    "data": {"base"},
    "camera_path": {"base"},
    "video": {"base"},
    "train": {"base", "encoding", "interface", "model", "app_specs", "reference", "data"},
    "bench": {"base", "encoding", "interface", "model", "app_specs", "reference", "scene", "session", "train"},
    "ngpc": {"base", "encoding", "interface", "model", "glsl", "vk", "app_specs", "apps", "reference", "render",
             "scene", "session"},
    "reports": {"base", "encoding", "interface", "scene", "session", "ngpc"},
    "farm": {"base", "model", "vk", "render", "scene", "session"},  # Ray workers, each holding a RenderSession
    "mesh": {"base", "model", "vk", "apps", "scene", "session", "data"},
    "viewer": {"base", "interface", "model", "glsl", "vk", "app_specs", "apps", "render", "scene", "session", "ngpc",
               "camera_path"},
    "cli": {"base", "encoding", "interface", "model", "glsl", "vk", "app_specs", "apps", "render", "scene", "session",
            "data", "train", "bench", "ngpc", "reports", "viewer", "camera_path", "video", "farm", "mesh"},
}

# Arrows against the layering accepted for a while, each with a comment saying why and what removes it (none
# today); an entry whose import is gone fails the test, so the list cannot go stale.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str, package: Path) -> bool:
    base = package.parent / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def import_edges(package: Path = PACKAGE) -> set[tuple[str, str]]:
    """(importer, imported) for every import of an ngrender module inside the package, at any depth."""
    edges = set()
    for path in sorted(package.rglob("*.py")):
        importer = module_name(path, package)
        here = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update((importer, a.name) for a in node.names if a.name.split(".")[0] == "ngrender")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split(".")[:len(here.split(".")) - node.level + 1]
                    target = ".".join(parts + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "ngrender":
                    continue
                for alias in node.names:  # `from . import x` imports module x; `from .m import f` imports m
                    sub = f"{target}.{alias.name}"
                    edges.add((importer, sub if _exists(sub, package) else target))
    return {(a, b) for a, b in edges if a != b}


def component(module: str) -> str:
    if module in COMPONENT_OF:
        return COMPONENT_OF[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ngrender"


def against_layering(edges: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Edges from one component to another that ALLOWED does not list."""
    out = []
    for a, b in sorted(edges):
        ca, cb = component(a), component(b)
        if ca != cb and cb not in ALLOWED.get(ca, set()):
            out.append((a, b))
    return out


def test_every_module_has_a_component_in_the_table():
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")} - {"ngrender"}
    unknown = sorted(m for m in modules if component(m) not in ALLOWED)
    assert not unknown, f"modules whose component is not in ALLOWED: {unknown}"


def test_the_table_is_one_way():
    """ALLOWED itself has no cycle: its components can be listed bottom-up."""
    left = {c: set(deps) for c, deps in ALLOWED.items()}
    while left:
        bottom = [c for c, deps in left.items() if not deps & set(left)]
        assert bottom, f"ALLOWED has a cycle among {sorted(left)}"
        for c in bottom:
            del left[c]


def test_imports_flow_one_way():
    bad = [e for e in against_layering(import_edges()) if e not in KNOWN_EXCEPTIONS]
    assert not bad, "imports against the layering:\n" + "\n".join(f"  {a} -> {b}" for a, b in bad)


def test_known_exceptions_are_still_needed():
    """An exception whose import is gone is deleted from the table (so the table stays honest)."""
    edges = import_edges()
    stale = sorted(e for e in KNOWN_EXCEPTIONS if e not in edges)
    assert not stale, f"remove these from KNOWN_EXCEPTIONS, the imports are gone: {stale}"


def test_the_checker_sees_an_arrow_against_the_layering(tmp_path):
    """The checker itself: a low module importing a high one, relative and absolute, lazily, is caught."""
    pkg = tmp_path / "ngrender"
    (pkg / "vk").mkdir(parents=True)
    for name in ("__init__.py", "vk/__init__.py", "cli.py", "errors.py"):
        (pkg / name).write_text("")
    (pkg / "vk" / "device.py").write_text("from ..errors import X\n\ndef f():\n    from .. import cli\n"
                                          "    import ngrender.cli\n")
    edges = import_edges(pkg)
    assert ("ngrender.vk.device", "ngrender.errors") in edges
    assert against_layering(edges) == [("ngrender.vk.device", "ngrender.cli")]


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() / "ngrender" if len(sys.argv) > 1 else PACKAGE
    bad = against_layering(import_edges(root))
    for a, b in bad:
        print(f"{a} -> {b}{'   (known exception)' if (a, b) in KNOWN_EXCEPTIONS else ''}")
    print(f"{len(bad)} import edge(s) against the layering")
