"""The server side of the hub stays standalone: never the HF clients, torch or the client side of kalm.hub."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kalm.hub.server

SERVER = Path(kalm.hub.server.__file__).parent
ALLOWED_THIRD_PARTY = {
    "filelock",  # the repo locks (flock across threads and processes)
    "yaml",  # PyYAML, lazily: the cardData of repo info, read from a README's front matter
}


def _imports(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, at any depth; relative imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
    return found


def _forbidden(modules: set[str]) -> list[str]:
    """The modules a server file must not import: anything but the server, the standard library and the
    allowed."""
    return sorted(
        module
        for module in modules
        if not (
            module == "kalm.hub.server"
            or module.startswith("kalm.hub.server.")
            or module == "__future__"
            or module.split(".")[0] in sys.stdlib_module_names
            or module.split(".")[0] in ALLOWED_THIRD_PARTY
        )
    )


def _package(path: Path) -> str:
    parts = path.relative_to(SERVER.parents[2]).with_suffix("").parts
    return ".".join(parts[:-1])


def test_the_server_imports_only_itself_the_standard_library_filelock_and_yaml():
    files = sorted(SERVER.rglob("*.py"))
    assert len(files) > 15  # the whole server package, api/ included
    offending = {
        str(path.relative_to(SERVER)): bad
        for path in files
        if (bad := _forbidden(_imports(path.read_text(), _package(path))))
    }
    assert offending == {}, f"server modules import outside the server and the standard library: {offending}"


def test_the_check_catches_clients_torch_and_the_client_side():
    source = (
        "import json\nimport torch\nfrom huggingface_hub import HfApi\nfrom ..endpoint import hub_api\n"
        "from . import store\nfrom .api import files\ndef later():\n    import datasets\n"
        "    from kalm.hub import naming\n"
    )
    modules = _imports(source, "kalm.hub.server")
    assert {"kalm.hub.server", "kalm.hub.server.api", "kalm.hub.endpoint"} <= modules
    assert _forbidden(modules) == ["datasets", "huggingface_hub", "kalm.hub", "kalm.hub.endpoint", "torch"]


def test_starting_the_server_loads_no_client_library():
    code = (
        "import sys, kalm.hub.server.serve, kalm.hub.server.fsck; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('huggingface_hub', 'datasets', 'torch', "
        "'httpx', 'numpy') or m in ('kalm.hub.endpoint', 'kalm.hub.datasets', 'kalm.hub.models')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]"
