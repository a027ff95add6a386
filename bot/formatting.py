"""Text between Slack and the model: Markdown to mrkdwn, splitting, escaping, truncation.

Pure functions, no I/O.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

# A Slack message's text is cut at 40,000 characters and is shown folded long before that;
# replies are split into messages of at most this many characters.
MESSAGE_CHUNK = 3_900
SECTION_TEXT_LIMIT = 3_000  # a section block's text
ZWSP = "\u200b"

_md = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters.

    With `<` and `>` escaped, text cannot form a mention, a link or a special command
    (`<!channel>`, `<@U123>`, `<!subteam^S1>`, `<https://x|label>`).
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_BROADCAST_WORDS = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


def neutralize(text: str) -> str:
    """Make untrusted text safe to show in mrkdwn: no mention, link, ping or formatting."""
    text = escape(text)
    text = _BROADCAST_WORDS.sub(lambda m: "@" + ZWSP + m.group(1), text)
    # A zero-width space after each formatting character stops it from pairing up.
    return re.sub(r"([*_~`])", lambda m: m.group(1) + ZWSP, text)


def truncate(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    for _ in range(3):  # the marker's own length depends on the number it shows
        marker = f"… [truncated: {len(text) - (limit - 40):,} more characters]"
        keep = limit - len(marker)
        marker = f"… [truncated: {len(text) - keep:,} more characters]"
        if keep + len(marker) <= limit:
            break
    return text[:keep].rstrip() + marker


_SLACK_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SLACK_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")
_SLACK_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def slack_to_plain(text: str, bot_user_id: str | None = None) -> str:
    """A user's Slack message as plain text for the model, without the bot's own mention."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
    text = _SLACK_MENTION.sub(lambda m: f"@{m.group(1)}", text)
    text = _SLACK_CHANNEL.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _SLACK_SPECIAL.sub(lambda m: f"@{m.group(2) or m.group(1)}", text)
    text = _SLACK_LINK.sub(
        lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text
    )
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.strip()


# --------------------------------------------------------------------------- Markdown


def markdown_to_mrkdwn(markdown: str) -> str:
    """Render the model's CommonMark (with tables and ~~strike~~) as Slack mrkdwn."""
    tokens = _md.parse(markdown)
    return _Renderer(tokens).render().strip()


class _Renderer:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def render(self) -> str:
        blocks = self._blocks(until=None)
        return "\n\n".join(b for b in blocks if b.strip())

    # Block level: each function consumes tokens from self.pos and returns text.
    def _blocks(self, until: str | None) -> list[str]:
        out: list[str] = []
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            if until is not None and tok.type == until:
                self.pos += 1
                return out
            out.append(self._block(tok))
        return out

    def _block(self, tok: Token) -> str:
        kind = tok.type
        self.pos += 1
        if kind == "paragraph_open":
            text = self._inline(self.tokens[self.pos])
            self.pos += 2  # inline, paragraph_close
            return text
        if kind == "heading_open":
            text = self._inline(self.tokens[self.pos], in_bold=True)
            self.pos += 2
            return f"*{text}*" if text else ""
        if kind in ("bullet_list_open", "ordered_list_open"):
            return self._list(tok, depth=0)
        if kind == "blockquote_open":
            inner = "\n\n".join(b for b in self._blocks(until="blockquote_close") if b)
            return "\n".join("> " + line if line else ">" for line in inner.split("\n"))
        if kind in ("fence", "code_block"):
            return "```\n" + escape(tok.content.rstrip("\n")) + "\n```"
        if kind == "hr":
            return "──────────"
        if kind == "table_open":
            return self._table()
        if kind == "html_block":
            return escape(tok.content.rstrip("\n"))
        return ""

    def _list(self, open_tok: Token, depth: int) -> str:
        ordered = open_tok.type == "ordered_list_open"
        close = "ordered_list_close" if ordered else "bullet_list_close"
        number = int(open_tok.attrs.get("start", 1) or 1) if ordered else 0
        lines: list[str] = []
        indent = "    " * depth
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            self.pos += 1
            if tok.type == close:
                break
            if tok.type != "list_item_open":
                continue
            marker = f"{number}." if ordered else ("•" if depth % 2 == 0 else "◦")
            number += 1
            parts: list[str] = []
            while self.pos < len(self.tokens) and self.tokens[self.pos].type != "list_item_close":
                inner = self.tokens[self.pos]
                if inner.type in ("bullet_list_open", "ordered_list_open"):
                    self.pos += 1
                    parts.append(self._list(inner, depth + 1))
                else:
                    text = self._block(inner)
                    if text:
                        parts.append(text.replace("\n", "\n" + indent + "  "))
            self.pos += 1  # list_item_close
            first, *rest = parts or [""]
            lines.append(f"{indent}{marker} {first}")
            lines.extend(rest)
        return "\n".join(lines)

    def _table(self) -> str:
        rows: list[list[str]] = []
        row: list[str] = []
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            self.pos += 1
            if tok.type == "table_close":
                break
            if tok.type == "tr_open":
                row = []
            elif tok.type == "tr_close":
                rows.append(row)
            elif tok.type == "inline":
                row.append(self._inline(tok, plain=True))
        if not rows:
            return ""
        widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(rows[0]))]
        lines = [" | ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        return "```\n" + escape("\n".join(lines)) + "\n```"

    # Inline level.
    def _inline(self, tok: Token, *, in_bold: bool = False, plain: bool = False) -> str:
        out: list[str] = []
        link_stack: list[tuple[str, int, bool]] = []
        for child in tok.children or []:
            kind = child.type
            if kind == "text":
                out.append(escape(child.content))
            elif kind in ("softbreak", "hardbreak"):
                out.append("\n")
            elif kind == "code_inline":
                out.append(escape(child.content) if plain else f"`{escape(child.content)}`")
            elif kind in ("strong_open", "strong_close"):
                if not (in_bold or plain):
                    out.append("*")
            elif kind in ("em_open", "em_close"):
                if not plain:
                    out.append("_")
            elif kind in ("s_open", "s_close"):
                if not plain:
                    out.append("~")
            elif kind == "link_open":
                href = str(child.attrs.get("href", ""))
                link_stack.append((href, len(out), child.markup == "autolink"))
            elif kind == "link_close" and link_stack:
                href, start, autolink = link_stack.pop()
                label = "" if autolink else "".join(out[start:])
                del out[start:]
                out.append(_link(href, label, plain))
            elif kind == "image":
                src = str(child.attrs.get("src", ""))
                out.append(_link(src, escape(child.content or src), plain))
            elif kind == "html_inline":
                out.append(escape(child.content))
        return "".join(out)


def _link(href: str, label: str, plain: bool) -> str:
    if not re.match(r"^(https?|mailto):", href, re.IGNORECASE):
        return label  # relative or javascript: links are not links in Slack
    autolink = not label
    href = href.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    if plain:
        return href if autolink else f"{label} ({href})"
    if autolink:
        return f"<{href}>"
    return f"<{href}|{label.replace('|', '¦')}>"


# --------------------------------------------------------------------------- splitting


def split_message(text: str, limit: int = MESSAGE_CHUNK) -> list[str]:
    """Split mrkdwn into messages of at most `limit` characters, nothing cut off.

    Splits at paragraph breaks, then line breaks, then spaces, and only then inside a word.
    A code block that spans a split is closed and reopened, so both parts still render.
    """
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    rest = text
    reopen = False
    while rest:
        prefix = "```\n" if reopen else ""
        budget = limit - len(prefix) - 4  # room to close a code block with "\n```"
        if len(prefix) + len(rest) <= limit:
            chunks.append(prefix + rest)
            break
        cut = _cut_point(rest, budget)
        piece, rest = rest[:cut].rstrip("\n "), rest[cut:].lstrip("\n ")
        inside_code = (reopen + piece.count("```")) % 2 == 1
        chunks.append(prefix + piece + ("\n```" if inside_code else ""))
        reopen = inside_code
    return [c for c in chunks if c.strip()]


def _cut_point(text: str, budget: int) -> int:
    window = text[:budget]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > budget // 2:
            return at + len(separator)
    return budget
