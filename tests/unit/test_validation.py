"""Input rules of docs/reliability.md §5."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from producer.validation import check_text, decode_utf8
from storage.core.domain import DocumentStatus


def test_empty_and_whitespace_are_done_with_reason_empty() -> None:
    for text in ["", "   ", "\n\t\r ", "\u3000 "]:
        checked = check_text(text, max_chars=100)
        assert (checked.status, checked.reason) == (DocumentStatus.DONE, "empty")


def test_invalid_utf8_is_a_decode_error_with_offset() -> None:
    checked = decode_utf8("北京".encode() + b"\xff\xfe")
    assert not isinstance(checked, str)
    assert checked.status == DocumentStatus.FAILED and checked.reason == "decode_error"
    assert "byte 6" in (checked.error or "")


def test_lone_surrogate_is_rejected() -> None:
    checked = check_text("张三\ud800在", max_chars=100)
    assert (checked.status, checked.reason, checked.text) == (DocumentStatus.FAILED, "surrogate", "")
    assert "U+D800" in (checked.error or "")


def test_surrogateescaped_bytes_are_decode_errors() -> None:
    text = b"ab\xffcd".decode("utf-8", errors="surrogateescape")
    assert check_text(text, max_chars=100).reason == "decode_error"


def test_controls_become_spaces_and_keep_offsets() -> None:
    text = "张\x00三\x07在\x1b北\x85京\t\n\r"
    checked = check_text(text, max_chars=100)
    assert checked.status == DocumentStatus.PENDING
    assert checked.text == "张 三 在 北 京\t\n\r"
    assert len(checked.text) == len(text)


def test_too_large() -> None:
    assert check_text("字" * 11, max_chars=10).reason == "too_large"
    assert check_text("字" * 10, max_chars=10).status == DocumentStatus.PENDING


def test_five_million_characters_is_the_default_limit() -> None:
    big = "中" * 5_000_001
    assert check_text(big, max_chars=5_000_000).reason == "too_large"


@given(st.text())
def test_stored_text_is_always_encodable_and_same_length(text: str) -> None:
    checked = check_text(text, max_chars=10_000)
    checked.text.encode("utf-8")  # never raises: surrogates are rejected
    assert "\x00" not in checked.text
    if checked.status != DocumentStatus.FAILED:
        assert len(checked.text) == len(text)
