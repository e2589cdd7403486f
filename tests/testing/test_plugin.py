"""The pytest plugin, as another project meets it: a fresh pytest in an empty directory whose
test uses the fixtures through the installed ``pytest11`` entry point (no conftest)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import typing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import sendgrid_ipam.testing

TIMEOUT = 60
INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""
FAKE_TEST = """\
import aiohttp


async def test_the_fake(fake_sendgrid):
    headers = {"Authorization": "Bearer " + fake_sendgrid.api_key}
    async with aiohttp.ClientSession() as session:
        url = fake_sendgrid.url + "/v3/partners/accounts/acct-1/ips"
        async with session.post(url, json={"count": 2, "region": "us"}, headers=headers) as reply:
            assert reply.status == 201
    assert fake_sendgrid.api_key == "SG.test"
    assert len(fake_sendgrid.account_ips("acct-1")) == 2
    assert fake_sendgrid.count("AddAccountIps", applied=True) == 1
"""
CLIENT_TEST = """\
async def test_the_client(sendgrid_client, fake_sendgrid):
    added = await sendgrid_client.provisioning.add_ips("acct-1", count=2, region="us")
    assert sorted(added.ips) == sorted(fake_sendgrid.account_ips("acct-1"))
    listed = [ip.ip async for ip in sendgrid_client.provisioning.list_ips("acct-1")]
    assert listed == fake_sendgrid.account_ips("acct-1")
"""


def _client_importable() -> bool:
    try:
        return hasattr(importlib.import_module("sendgrid_ipam"), "SendGridIPAM")
    except ImportError:
        return False


def _pytest(directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PY_COLORS"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=directory,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def _run_alone(tmp_path: Path, test: str) -> str:
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "test_it.py").write_text(test)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pytest.ini", "test_it.py"]
    return _pytest(tmp_path)


def test_the_fake_sendgrid_fixture_comes_from_the_entry_point(tmp_path: Path) -> None:
    output = _run_alone(tmp_path, FAKE_TEST)
    assert output.startswith("exit 0"), output
    assert "1 passed" in output, output


@pytest.mark.skipif(
    not _client_importable(),
    reason="sendgrid_ipam.SendGridIPAM is not importable yet: the client is still being written",
)
def test_the_sendgrid_client_fixture_comes_from_the_entry_point(tmp_path: Path) -> None:
    output = _run_alone(tmp_path, CLIENT_TEST)
    assert output.startswith("exit 0"), output
    assert "1 passed" in output, output


def test_without_pytest_asyncio_the_fixtures_say_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    # A module of that name in the test's directory hides the installed one.
    (tmp_path / "pytest_asyncio.py").write_text('raise ImportError("hidden for this test")\n')
    (tmp_path / "test_needs.py").write_text("def test_needs(fake_sendgrid):\n    pass\n")
    output = _pytest(
        tmp_path,
        "-p",
        "sendgrid_ipam.testing.pytest_plugin",
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert output.startswith("exit 1"), output
    assert "install pytest-asyncio" in output, output
    assert "Traceback" not in output, output


# Reports, once collection is over, what pytest has imported: proof from sys.modules, not a
# timing, that the entry point's plugin (which must be loaded) left the library alone.
COLLECTION_PROBE = """\
import json
import sys


def pytest_collection_finish(session):
    plugins = session.config.pluginmanager
    loaded = sorted(
        m for m in sys.modules
        if m.split(".")[0] in {"sendgrid_ipam", "aiohttp", "attrs", "cattrs", "tenacity"}
    )
    print("PROBE " + json.dumps({
        "plugin": getattr(plugins.get_plugin("sendgrid_ipam"), "__name__", None),
        "loaded": loaded,
    }))
"""


def _probe(output: str) -> dict[str, Any]:
    line = next((line for line in output.splitlines() if line.startswith("PROBE ")), None)
    assert line is not None, output
    report: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
    return report


def test_collecting_an_unrelated_project_imports_nothing_of_the_library(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(COLLECTION_PROBE)
    (tmp_path / "test_unrelated.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    output = _pytest(tmp_path, "--co", "-s")
    assert output.startswith("exit 0"), output
    report = _probe(output)
    assert report["plugin"] == "_sendgrid_ipam_pytest", output
    assert report["loaded"] == [], output


def test_the_fixtures_are_documented_for_pytest_fixtures(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(INI)
    output = _pytest(tmp_path, "--fixtures")
    assert output.startswith("exit 0"), output
    listing = output[output.index("fake_sendgrid"):]
    assert "A started fake SendGrid on 127.0.0.1" in listing, output
    assert "pointed at the ``fake_sendgrid`` fixture" in listing, output


def test_the_fixtures_have_real_type_annotations() -> None:
    import _sendgrid_ipam_pytest as plugin
    from sendgrid_ipam import SendGridIPAM
    from sendgrid_ipam.testing import FakeSendGrid

    # The names are imported for type checking only: supply them as a type checker would.
    namespace = vars(plugin) | {"FakeSendGrid": FakeSendGrid, "SendGridIPAM": SendGridIPAM}
    fake_hints = typing.get_type_hints(plugin._fake_sendgrid, namespace)
    client_hints = typing.get_type_hints(plugin._sendgrid_client, namespace)
    assert fake_hints == {"return": AsyncIterator[FakeSendGrid]}
    assert client_hints == {
        "fake_sendgrid": FakeSendGrid, "return": AsyncIterator[SendGridIPAM]}


def test_the_old_module_path_gives_the_same_fixtures() -> None:
    import _sendgrid_ipam_pytest as plugin
    from sendgrid_ipam.testing import pytest_plugin

    assert pytest_plugin.fake_sendgrid is plugin.fake_sendgrid
    assert pytest_plugin.sendgrid_client is plugin.sendgrid_client


def test_the_public_names_are_all_exported() -> None:
    assert sendgrid_ipam.testing.__all__ == sorted(sendgrid_ipam.testing.__all__)
    for name in sendgrid_ipam.testing.__all__:
        exported = getattr(sendgrid_ipam.testing, name)
        assert exported.__doc__, name
    assert "FakeSendGrid" in dir(sendgrid_ipam.testing)
