"""The documentation site: its examples run, and its API reference covers the public API.

The site's build checks are in docs/hooks.py (run by ``mkdocs build --strict``); these tests
build the site the same way and check its output from outside. They are skipped where the
``docs`` extra is not installed; CI installs it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import tests.test_readme as readme

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
BLOCKS = [
    (page, code)
    for page in PAGES
    for code in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
]


def _hooks() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _needs_mkdocs() -> None:
    reason = 'the docs extra is not installed: pip install -e ".[docs]"'
    for name in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "material"):
        pytest.importorskip(name, reason=reason)


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy_of_the_docs(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(DOCS, root / "docs")
    for name in ("mkdocs.yml", "CHANGELOG.md", "CONTRIBUTING.md"):
        shutil.copy(ROOT / name, root / name)
    return root


@pytest.mark.parametrize(
    ("page", "code"), BLOCKS, ids=[f"{p.relative_to(DOCS)}:{n}" for n, (p, _) in enumerate(BLOCKS)]
)
def test_docs_example_runs(page: Path, code: str, tmp_path: Path) -> None:
    readme.test_readme_example_runs(code, tmp_path)


def test_the_docs_have_examples_on_the_pages_that_need_them() -> None:
    pages = {page.relative_to(DOCS).as_posix() for page, _ in BLOCKS}
    assert {"index.md", "guides/retries.md", "guides/bulk.md", "guides/testing.md"} <= pages


def test_every_public_name_is_in_the_built_reference(tmp_path: Path) -> None:
    _needs_mkdocs()
    from mkdocstrings import Inventory

    site = tmp_path / "site"
    built = _build(ROOT, site)
    assert built.returncode == 0, built.stdout + built.stderr
    with (site / "objects.inv").open("rb") as file:
        documented = set(Inventory.parse_sphinx(file))
    hooks = _hooks()
    expected = set()
    for module_name in hooks.PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        expected |= {f"{module_name}.{name}" for name in module.__all__ if name != "__version__"}
    assert "sendgrid_ipam.SendGridIPAM" in expected
    assert "sendgrid_ipam.testing.FakeSendGrid" in expected
    assert expected - documented == set()


def test_a_missing_name_or_a_broken_reference_fails_the_strict_build(tmp_path: Path) -> None:
    _needs_mkdocs()
    root = _copy_of_the_docs(tmp_path)
    page = root / "docs" / "reference" / "testing.md"
    text = page.read_text()
    assert "::: sendgrid_ipam.testing.serve\n" in text
    page.write_text(text.replace("::: sendgrid_ipam.testing.serve\n", ""))
    guide = root / "docs" / "guides" / "bulk.md"
    guide.write_text(guide.read_text() + "\nSee [the gone one][sendgrid_ipam.NoSuchName].\n")
    built = _build(root, tmp_path / "site")
    assert built.returncode != 0
    assert "missing from the API reference" in built.stderr, built.stderr
    assert "sendgrid_ipam.testing.serve" in built.stderr, built.stderr
    assert "sendgrid_ipam.NoSuchName" in built.stderr, built.stderr


def test_a_public_name_without_a_docstring_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = _hooks()
    module = types.ModuleType("example_public_module")

    class Documented:
        """Has a docstring."""

        def method(self) -> None:
            pass

    class Undocumented(Documented):
        pass

    module.Documented = Documented  # type: ignore[attr-defined]
    module.Undocumented = Undocumented  # type: ignore[attr-defined]
    module.__all__ = ["Documented", "Undocumented"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "example_public_module", module)
    monkeypatch.setattr(hooks, "PUBLIC_MODULES", ["example_public_module"])
    assert hooks.undocumented() == [
        "example_public_module.Documented.method",
        "example_public_module.Undocumented",
    ]


def test_the_real_public_api_is_documented() -> None:
    # sendgrid_ipam.redis is public, and needs its extra to be imported at all
    pytest.importorskip(
        "redis", reason="the redis extra is not installed: pip install -e '.[redis]'")
    assert _hooks().undocumented() == []
