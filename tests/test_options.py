"""Per-call options and header values are checked before anything is sent."""

from __future__ import annotations

import pytest

from sendgrid_ipam import ConfigurationError, RetryPolicy, SendGridIPAM, ValidationError
from sendgrid_ipam.testing import FakeSendGrid

KEY = "SG.options-secret"


async def test_a_misspelt_option_is_refused_not_ignored() -> None:
    async with FakeSendGrid(api_key=KEY) as fake, SendGridIPAM(KEY, base_url=fake.url) as sg:
        with pytest.raises(TypeError, match="timeot"):
            await sg.pools.get("1", timeot=5)  # type: ignore[call-arg]
        assert fake.log == []


async def test_mistyped_options_name_the_option() -> None:
    async with FakeSendGrid(api_key=KEY) as fake, SendGridIPAM(KEY, base_url=fake.url) as sg:
        with pytest.raises(ValidationError, match="retry"):
            await sg.pools.get("1", retry=3)  # type: ignore[typeddict-item]
        with pytest.raises(ValidationError, match="timeout"):
            await sg.pools.get("1", timeout=-1)
        with pytest.raises(ValidationError, match="on_behalf_of"):
            await sg.pools.get("1", on_behalf_of="sub\r\nX-Injected: 1")
        assert fake.log == []


async def test_a_good_on_behalf_of_with_a_space_is_sent() -> None:
    async with FakeSendGrid(api_key=KEY) as fake, SendGridIPAM(KEY, base_url=fake.url) as sg:
        await sg.pools.create("pool-a", on_behalf_of="account-id 42", retry=RetryPolicy())
    assert [r.on_behalf_of for r in fake.log] == ["account-id 42"]


@pytest.mark.parametrize("key", ["SG.abc\ndef", "SG.abc def", "SG.\x00abc"])
def test_a_broken_key_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SendGridIPAM(key)
    assert "abc" not in str(caught.value)


def test_a_client_wide_on_behalf_of_must_be_one_line() -> None:
    with pytest.raises(ConfigurationError, match="on_behalf_of"):
        SendGridIPAM(KEY, on_behalf_of="sub\nX: y")
