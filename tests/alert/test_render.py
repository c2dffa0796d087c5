"""Templates and messages: every kind renders both parts, data is escaped in HTML, a missing
context key is an error, and no header can be injected from data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import pytest

from sandbox.alert.render import KINDS, TEMPLATES, AlertContent, AlertTemplateError, check, clean_header, render
from tests.alert.conftest import COMPOSER
from tests.alert.samples import PILOT, SAMPLES
from tests.support import NOW

PILOT_ID = uuid.UUID("01937a3e-0000-7000-8000-000000000001")


def content(kind: str = "breaker.tripped", **context_overrides: object) -> AlertContent:
    return AlertContent(
        id=uuid.uuid4(),
        kind=kind,
        severity="critical",
        subject="Breaker tripped: PILOT-2026-001",
        pilot_id=PILOT_ID,
        context={**SAMPLES[kind], **context_overrides},
        created_at=NOW,
    )


def test_every_kind_has_a_text_and_an_html_template_and_a_sample() -> None:
    names = {p.name for p in TEMPLATES.iterdir()}
    for kind in KINDS:
        assert {f"{kind}.txt", f"{kind}.html"} <= names, kind
    assert set(SAMPLES) == set(KINDS)
    kinds_with_templates = {n.rsplit(".", 1)[0] for n in names if not n.startswith("_")}
    assert kinds_with_templates == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_renders_what_happened_to_which_pilot_with_a_link(kind: str) -> None:
    rendered = render(content(kind), base_url="https://sandbox.bureau.example/")
    link = f"https://sandbox.bureau.example/pilots/{PILOT_ID}"
    for part in (rendered.text, rendered.html):
        assert link in part
        assert PILOT["reference"] in part
        assert "critical".upper() in part
    assert "<html" in rendered.html and "<html" not in rendered.text


def test_a_trip_shows_the_values_against_the_threshold_and_the_policy_version() -> None:
    rendered = render(content(), base_url="https://x.example")
    assert "value 0.061 > threshold 0.05" in rendered.text
    assert "<td>0.061</td><td>&gt;</td><td>0.05</td>" in rendered.html
    assert "Policy version: 3" in rendered.text
    assert "Period: 2026-10" in rendered.text
    # The grouped evaluation names the repeat trip and carries the warning in the same email.
    assert "repeat trip" in rendered.text and "complaints-rising" in rendered.text
    assert "2026-11-28 02:00 UTC (2026-11-28 10:00 Beijing time)" in rendered.text


def test_html_escapes_data_and_text_keeps_it_verbatim() -> None:
    title = '<script>alert("x")</script> & <b>Co</b>'
    rendered = render(content(pilot={**PILOT, "title": title}), base_url="https://x.example")
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in rendered.html
    assert title in rendered.text


def test_a_missing_context_key_is_an_error_naming_it() -> None:
    context = dict(SAMPLES["filing.overdue"])
    del context["days_late"]
    with pytest.raises(AlertTemplateError, match="days_late"):
        check("filing.overdue", context)


@pytest.mark.parametrize(
    ("kind", "context", "message"),
    [
        ("breaker.exploded", SAMPLES["breaker.tripped"], "unknown alert kind"),
        ("breaker.tripped", {**SAMPLES["breaker.tripped"], "alert": "x"}, "reserved"),
        ("breaker.tripped", {**SAMPLES["breaker.tripped"], "at": datetime.now(UTC)}, "plain JSON"),
    ],
)
def test_check_refuses_unknown_kinds_reserved_names_and_non_json(
    kind: str, context: dict[str, Any], message: str
) -> None:
    with pytest.raises(AlertTemplateError, match=message):
        check(kind, context)


def test_alerts_about_no_pilot_have_no_pilot_link() -> None:
    sample = AlertContent(
        uuid.uuid4(),
        "application.decided",
        "info",
        "Application rejected",
        None,
        {**SAMPLES["application.decided"], "decision": "rejected", "pilot": None},
        NOW,
    )
    rendered = render(sample, base_url="https://x.example")
    assert "/pilots/" not in rendered.text and "/pilots/" not in rendered.html
    assert "was rejected" in rendered.text


def test_clean_header_flattens_every_line_break_and_control_character() -> None:
    assert clean_header("a\r\nBcc: x@evil.example") == "a Bcc: x@evil.example"
    assert clean_header("a\nb\rc\u2028d\u0085e\x00f\tg") == "a b c d e f g"
    assert clean_header("x" * 400).endswith("…") and len(clean_header("x" * 400)) == 300


def test_a_title_with_crlf_cannot_add_a_header_to_the_message() -> None:
    evil = "Loans\r\nBcc: x@evil.example\r\n\r\nforged body"
    context = {**SAMPLES["breaker.tripped"], "pilot": {**PILOT, "title": evil}}
    alert = AlertContent(uuid.uuid4(), "breaker.tripped", "critical", f"Tripped: {evil}", PILOT_ID, context, NOW)
    rendered = render(alert, base_url="https://x.example")
    message = COMPOSER.compose(alert, rendered, recipient="sup@bureau.example", message_id="<m1@sandbox.local>", at=NOW)
    raw = message.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed.get_all("To") == ["sup@bureau.example"]
    assert str(parsed["Subject"]) == "Tripped: Loans Bcc: x@evil.example forged body"
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"Bcc" not in headers.replace(b"Subject: Tripped: Loans Bcc:", b"")


def test_the_message_has_both_parts_and_the_stable_headers() -> None:
    alert = content()
    rendered = render(alert, base_url="https://x.example")
    at = datetime(2026, 11, 28, 3, 4, 5, tzinfo=UTC)
    message = COMPOSER.compose(alert, rendered, recipient="sup@bureau.example", message_id="<abc@sandbox.local>", at=at)
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<abc@sandbox.local>"
    assert parsed["Date"] == "Sat, 28 Nov 2026 03:04:05 +0000"
    assert parsed["From"] == "Sandbox alerts <alerts@bureau.example>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    # Every line is ASCII and short: the bodies are encoded for any relay.
    assert all(len(line) <= 998 for line in message.as_bytes().split(b"\r\n"))


def test_non_ascii_data_is_encoded_in_headers_and_bodies() -> None:
    alert = AlertContent(
        uuid.uuid4(), "breaker.tripped", "critical", "熔断触发：跨境支付试点", PILOT_ID,
        {**SAMPLES["breaker.tripped"], "pilot": {**PILOT, "institution": "甲银行"}}, NOW,
    )  # fmt: skip
    rendered = render(alert, base_url="https://x.example")
    raw = COMPOSER.compose(alert, rendered, recipient="a@b.example", message_id="<x@sandbox.local>", at=NOW).as_bytes()
    assert raw.isascii()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert str(parsed["Subject"]) == "熔断触发：跨境支付试点"
    text = parsed.get_body(("plain",))
    assert text is not None and "甲银行" in text.get_content()
