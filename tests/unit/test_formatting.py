"""Markdown to mrkdwn, splitting and escaping."""

from __future__ import annotations

from bot.formatting import (
    escape,
    markdown_to_mrkdwn,
    neutralize,
    slack_to_plain,
    split_message,
    truncate,
)


def test_markdown_emphasis_links_and_headings():
    out = markdown_to_mrkdwn("# Title\n\n**bold**, *it*, ~~gone~~, [docs](https://d.example/x)")
    assert out == "*Title*\n\n*bold*, _it_, ~gone~, <https://d.example/x|docs>"


def test_markdown_lists_quotes_code_and_tables():
    out = markdown_to_mrkdwn(
        "- a\n- b\n  - c\n\n1. one\n2. two\n\n> quoted\n\n```py\nx = '<b>'\n```\n\n"
        "| k | v |\n|---|---|\n| x | 1 |"
    )
    assert "• a\n• b\n    ◦ c" in out
    assert "1. one\n2. two" in out
    assert "> quoted" in out
    assert "```\nx = '&lt;b&gt;'\n```" in out
    assert "k | v" in out  # a table becomes aligned text in a code block


def test_model_output_cannot_ping_or_forge_links():
    out = markdown_to_mrkdwn("Hello <!channel> and <@U123> and <https://evil|bank>")
    assert "<!channel>" not in out and "<@U123>" not in out
    # Slack's own link syntax becomes a plain autolink: the label cannot hide the target.
    assert "|bank>" not in out and "<https://evil%7Cbank>" in out


def test_unsafe_link_schemes_do_not_become_links():
    assert "<" not in markdown_to_mrkdwn("[x](javascript:alert(1))")
    assert markdown_to_mrkdwn("[x](/relative/path)") == "x"


def test_split_keeps_every_character_and_code_blocks_balanced():
    text = ("word " * 400 + "\n\n") * 6 + "```\n" + "code line\n" * 800 + "```\nend"
    parts = split_message(text, limit=1_000)
    assert all(len(p) <= 1_000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    flat = lambda s: "".join(s.replace("```", "").split())  # noqa: E731
    assert flat("".join(parts)) == flat(text)


def test_short_text_is_one_message():
    assert split_message("hi") == ["hi"]


def test_truncate_marks_what_it_cut():
    out = truncate("y" * 5_000, 3_000)
    assert len(out) <= 3_000 and out.endswith("more characters]")
    assert truncate("short", 10) == "short"


def test_neutralize_and_escape():
    assert escape("a<b>&") == "a&lt;b&gt;&amp;"
    out = neutralize("@channel *bold* <!here>")
    assert "@channel" not in out and "*bold*" not in out and "<!here>" not in out


def test_slack_text_for_the_model():
    text = "<@UBOT> ask <@U2|bob> about <https://x.example|this> &amp; <#C1|general>"
    assert slack_to_plain(text, "UBOT") == "ask @U2 about this (https://x.example) & #general"
