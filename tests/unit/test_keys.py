"""WireGuard key text: round trips and rejection, with property-based inputs."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egw.model import keys
from egw.model.errors import ValidationError

pytestmark = pytest.mark.unit


@given(st.binary(min_size=32, max_size=32))
def test_every_32_byte_key_round_trips(raw: bytes) -> None:
    text = keys.format_key(raw)
    assert len(text) == 44
    assert keys.is_key(text)
    assert keys.parse_key(text) == raw


@given(st.binary(max_size=64).filter(lambda b: len(b) != 32))
def test_other_lengths_are_rejected(raw: bytes) -> None:
    text = base64.b64encode(raw).decode()
    assert not keys.is_key(text)
    with pytest.raises(ValidationError, match=r"spec\.podPublicKey"):
        keys.parse_key(text, "spec.podPublicKey")


@given(st.text(max_size=60))
def test_parser_and_predicate_agree_on_arbitrary_text(text: str) -> None:
    try:
        raw = keys.parse_key(text)
    except ValidationError:
        assert not keys.is_key(text)
    else:
        assert keys.is_key(text)
        assert base64.b64encode(raw).decode() == text


def test_non_canonical_last_character_is_rejected() -> None:
    good = keys.format_key(bytes(range(32)))
    # Flip the padding bits of the 43rd character: still decodes leniently, but is not canonical.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    bad = good[:42] + alphabet[alphabet.index(good[42]) + 1] + "="
    assert not keys.is_key(bad)


def test_error_names_field_and_public_value() -> None:
    with pytest.raises(ValidationError) as info:
        keys.parse_key("not-a-key", "spec.podPublicKey")
    assert 'spec.podPublicKey: invalid value "not-a-key"' in str(info.value)


def test_private_key_errors_never_echo_the_value() -> None:
    secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"
    with pytest.raises(ValidationError) as info:
        keys.parse_key(secret, "data.PrivateKey", secret=True)
    assert secret not in str(info.value)
    assert "<redacted>" in str(info.value)


def test_format_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        keys.format_key(b"short")
