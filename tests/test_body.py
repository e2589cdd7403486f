"""Inflating a reply within a limit, and redacting the key from what is kept of a body
(``engine/body.py``). The reading side is tested end to end (tests/e2e/test_hostile_memory.py)."""

from __future__ import annotations

import gzip
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from sendgrid_ipam.engine.body import ERROR_BODY_LIMIT, BodyTooLarge, Secret, inflate, redact

DATA = b'{"result": [' + b'{"ip": "192.0.2.1"}, ' * 200 + b"{}]}"


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


PACKERS = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "deflate": ("deflate", zlib.compress),
    "raw deflate": ("deflate", _raw_deflate),
    "gzip as deflate": ("deflate", gzip.compress),
    "upper case, spaces": (" GZIP ", gzip.compress),
}


@pytest.mark.parametrize(("encoding", "pack"), PACKERS.values(), ids=PACKERS.keys())
def test_a_compressed_body_inflates(encoding: str, pack: object) -> None:
    assert callable(pack)
    assert inflate(pack(DATA), encoding, len(DATA)) == DATA


@pytest.mark.parametrize("encoding", ["", "identity", " Identity "])
def test_an_identity_body_is_as_sent(encoding: str) -> None:
    assert inflate(b"{}", encoding, 1) == b"{}"


@pytest.mark.parametrize(("encoding", "pack"), PACKERS.values(), ids=PACKERS.keys())
def test_one_byte_past_the_limit_is_too_large(encoding: str, pack: object) -> None:
    assert callable(pack)
    with pytest.raises(BodyTooLarge) as caught:
        inflate(pack(DATA), encoding, len(DATA) - 1)
    assert caught.value.limit == len(DATA) - 1
    assert caught.value.prefix == DATA[:ERROR_BODY_LIMIT]


@pytest.mark.parametrize(("encoding", "pack"), PACKERS.values(), ids=PACKERS.keys())
def test_a_bomb_stops_at_the_limit_fast(encoding: str, pack: object) -> None:
    assert callable(pack)
    bomb = pack(b"\0" * (50 * 1024 * 1024))
    started = time.perf_counter()
    with pytest.raises(BodyTooLarge) as caught:
        inflate(bomb, encoding, 1024 * 1024)
    assert time.perf_counter() - started < 0.5
    assert caught.value.prefix == b"\0" * ERROR_BODY_LIMIT


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "gzip;q=1",
                                      "\x00", "x" * 1000])
def test_an_encoding_the_client_did_not_ask_for_is_refused(encoding: str) -> None:
    with pytest.raises(ValueError, match="did not ask for") as caught:
        inflate(gzip.compress(DATA), encoding, len(DATA))
    assert len(str(caught.value)) < 200, "a long header is not echoed whole"


CORRUPT = {
    "garbage": ("gzip", b"\x1f\x8bnot gzip at all"),
    "truncated gzip": ("gzip", gzip.compress(DATA)[:-10]),
    "truncated deflate": ("deflate", zlib.compress(DATA)[:-10]),
    "truncated raw deflate": ("deflate", _raw_deflate(DATA)[:-10]),
    "data after the stream": ("gzip", gzip.compress(DATA) + b"trailing"),
    "deflate labelled gzip": ("gzip", zlib.compress(DATA)),
    "plain text labelled gzip": ("gzip", DATA),
}


@pytest.mark.parametrize(("encoding", "body"), CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_body_is_refused(encoding: str, body: bytes) -> None:
    with pytest.raises(ValueError, match="corrupt"):
        inflate(body, encoding, 10 * len(DATA))


SECRET = b"SG.abcdefghijklmnop.qrstuvwxyz0123456789"


def test_redact_replaces_every_copy_of_the_key() -> None:
    body = b"Authorization: Bearer " + SECRET + b", again: " + SECRET
    assert redact(body, SECRET, cut=False) == (
        b"Authorization: Bearer <redacted>, again: <redacted>")


def test_a_whole_body_keeps_an_ending_that_only_looks_like_the_key() -> None:
    assert redact(b"a lone SG", SECRET, cut=False) == b"a lone SG"


def test_wherever_a_cut_falls_no_piece_of_the_key_is_left() -> None:
    body = b"echo: Bearer " + SECRET + b" end"
    for end in range(len(body) + 1):
        out = redact(body[:end], SECRET, cut=True)
        assert SECRET not in out
        left = [n for n in range(1, len(SECRET)) if out.endswith(SECRET[:n])]
        assert left == [], f"cut at {end}: {out!r}"
        assert out.startswith(body[:min(end, 13)])  # what came before the key is kept


def test_every_run_of_six_characters_of_the_key_is_redacted() -> None:
    body = b"a proxy cut it: Bearer " + SECRET[:20] + b"... and " + SECRET[-8:] + b" end"
    assert redact(body, SECRET) == b"a proxy cut it: Bearer <redacted>... and <redacted> end"


def test_text_is_redacted_as_bytes_are() -> None:
    text = f"bad line: b'X-E: yyy{SECRET.decode()[:30]}...'"
    assert redact(text, SECRET.decode(), piece=4) == "bad line: b'X-E: yyy<redacted>...'"


def test_fewer_characters_than_a_piece_are_kept() -> None:
    assert redact(b"SG.ab and qrstu", SECRET) == b"SG.ab and qrstu"


def test_a_cut_body_never_grows() -> None:
    body = b"x" * 100 + SECRET[5:12]  # a 7-character piece, cut: the marker is longer
    out = redact(body, SECRET, cut=True)
    assert len(out) <= len(body)
    assert SECRET[5:11] not in out


def test_a_secret_header_value_is_sent_as_is_and_shown_redacted() -> None:
    value = Secret("Bearer " + SECRET.decode())
    assert value == "Bearer " + SECRET.decode()
    assert value.encode() == b"Bearer " + SECRET
    for shown in (repr(value), repr({"Authorization": value}),
                  repr(CIMultiDict(Authorization=value))):
        assert SECRET.decode()[:6] not in shown
        assert "<redacted>" in shown


_KEY_TEXT = SECRET.decode()
_CHUNKS = st.one_of(
    st.text(alphabet="abcXYZ:;-=/ .0123456789\n", max_size=12),
    st.builds(lambda start, size: _KEY_TEXT[start:start + size],
              st.integers(0, len(_KEY_TEXT)), st.integers(1, len(_KEY_TEXT))),
)
_HEADER_TEXT = st.lists(_CHUNKS, max_size=4).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_HEADER_TEXT, _HEADER_TEXT), max_size=6))
def test_scrub_headers_redacts_as_each_header_redacted_alone(
    pairs: list[tuple[str, str]],
) -> None:
    """The engine scans an error reply's headers joined, once, and redacts them one by one
    only when it finds a piece of the key: what it returns is what redacting every name
    and value alone returns, pieces of the key across two headers or none at all."""
    from sendgrid_ipam import SendGridIPAM

    client = SendGridIPAM(_KEY_TEXT)
    headers = CIMultiDict(pairs)
    scrubbed = client._engine.scrub_headers(headers)
    assert list(scrubbed.items()) == [(redact(name, _KEY_TEXT), redact(value, _KEY_TEXT))
                                      for name, value in pairs]
