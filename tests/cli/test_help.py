"""Every command's ``--help``: no article slips, and one style for IP arguments."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest

from sendgrid_ipam.cli._app import cli

from . import invoke, json_lines, running_fake

# "a" before a vowel sound and "an" before a consonant sound; words whose first letter
# misleads ("a user", "an HTTP ...") are exceptions.
A_BEFORE_VOWEL = re.compile(r"\b[Aa] (?!(?:us|uni|one|once|URL|Euro))[aeiouAEIOU]\w*")
AN_BEFORE_CONSONANT = re.compile(
    r"\b[Aa]n (?!(?:HTML|HTTP|IP|IPs|SMTP|hour|honest)\b)[b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]\w*")


def commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))


ALL = list(commands(cli))


def test_every_command_is_walked() -> None:
    assert len(ALL) > 20
    assert ("fake-server",) in ALL
    assert ("pools", "create") in ALL


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "sendgrid-ipam")
def test_help_has_no_article_slips(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())  # a phrase wrapped over two lines is one
    assert A_BEFORE_VOWEL.findall(text) == []
    assert AN_BEFORE_CONSONANT.findall(text) == []


def test_the_article_checks_catch_slips() -> None:
    bad = "a error, a applied error fault, an pool, A IP"
    good = "a usage error, a user, an IP, an HTTP reply, a one-line error, a URL, a pool"
    assert A_BEFORE_VOWEL.findall(bad) == ["a error", "a applied", "A IP"]
    assert AN_BEFORE_CONSONANT.findall(bad) == ["an pool"]
    assert A_BEFORE_VOWEL.findall(good) == AN_BEFORE_CONSONANT.findall(good) == []


IP_OPERANDS = [
    (("pools", "create"), "NAME [IP]..."),
    (("pools", "add-ips"), "POOL_ID IP..."),
    (("pools", "remove-ips"), "POOL_ID IP..."),
    (("provisioning", "remove-ips"), "ACCOUNT IP..."),
    (("ips", "get"), "IP"),
    (("ips", "update"), "IP"),
]


@pytest.mark.parametrize(("path", "operands"), IP_OPERANDS, ids=str)
def test_ips_acted_on_are_arguments(path: tuple[str, ...], operands: str) -> None:
    usage = invoke(*path, "--help").stdout.splitlines()[0]
    assert usage == f"Usage: sendgrid-ipam {' '.join(path)} [OPTIONS] {operands}"


def test_pools_create_takes_ips_both_ways() -> None:
    """IPs as arguments; the former ``--ip`` option still works (hidden from --help)."""
    with running_fake(ipam_ips=3) as fake:
        first, second, third = fake.ipam_ips()
        (created,) = json_lines(invoke("--api-key", fake.api_key, "--base-url", fake.url,
                                       "pools", "create", "both", first, second,
                                       "--ip", third))
    assert created["ips"] == [first, second, third]
    assert "--ip" not in invoke("pools", "create", "--help").stdout
