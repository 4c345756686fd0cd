"""SES's template rendering: the Handlebars that SES documents, and its Rendering Failure. The simulated SES renders
every message with it (sesflow.engine re-exports it) and app.domain.templates lints templates with it (`reads`:
the names a template takes from its data), so what the lint accepts is what the engine renders.

What SES documents (ses/latest/dg/send-personalized-email-advanced.html, send-personalized-email-api.html):
- `{{name}}` and nested paths `{{contact.firstName}}`; values are inserted as they are: "SES doesn't escape HTML
  content when rendering the HTML template for a message", so `{{x}}`, `{{{x}}}` and `{{&x}}` all insert x as is;
- `{{#each list}}...{{/each}}` (`{{this}}`, `{{@index}}`, `{{@first}}`, `{{@last}}`, `{{@key}}` over an object);
- `{{#if x}}...{{else}}...{{/if}}`, for an attribute that may be absent: the guide's own example sends the same
  template to a recipient whose data lacks the attribute, and that message is delivered;
- inline partials, `{{#* inline "name"}}...{{/inline}}` and `{{> name}}`, each part (subject, HTML, text) with its
  own; the newline after an inline partial's definition is not rendered;
- "Handlebars includes additional features beyond those documented in this section" (handlebarsjs.com's built-in
  helpers): also `{{#unless}}`, `{{#with}}`, `{{else if ...}}`, `{{lookup obj key}}`, sections over a value
  (`{{#contact}}...{{/contact}}`, `{{^list}}...{{/list}}`), `../` and `@root` paths, comments (`{{! }}`,
  `{{!-- --}}`), whitespace control (`{{~x~}}`), standalone block tags taking their line with them, `\\{{`.

A variable that the rendering reaches and the data lacks (absent or null) fails the message: SES accepts the call,
sends nothing and publishes a Rendering Failure whose errorMessage is "Attribute 'x' is not present in the
rendering data." (the example record in event-publishing-retrieving-sns-examples.html). Only what is rendered
counts: a variable in a branch not taken, or in an {{#each}} over an empty list, needs no data. As in
Handlebars.js, a name is looked up in the current context only (inside {{#each}}, the item), never in the
enclosing ones. Anything that cannot be parsed (an unclosed block, an unknown helper) fails every message
with that template too.

Compiled templates are cached by their text: a campaign renders one template thousands of times.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MISSING_MESSAGE = "Attribute '{}' is not present in the rendering data."


class RenderingError(Exception):
    """Why a part did not render, as SES's Rendering Failure event reports it (errorMessage)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the tree ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    original: str  # as written, for the error message
    up: int  # how many ../
    root: bool  # @root.
    data: str | None  # @index, @key, @first, @last
    parts: tuple[str, ...]  # () is the context itself (this, .)


@dataclass(frozen=True)
class Var:
    path: Path


@dataclass(frozen=True)
class Lookup:
    target: Path
    key: Path | str


@dataclass(frozen=True)
class Block:
    helper: str  # if, unless, each, with, section (a value's own block) or inverted ({{^x}})
    path: Path
    body: tuple
    inverse: tuple


@dataclass(frozen=True)
class Partial:
    name: str
    context: Path | None


@dataclass(frozen=True)
class Template:
    nodes: tuple
    partials: Mapping[str, tuple]
    error: str | None = None  # a syntax error: every rendering fails with it


class _Syntax(Exception):
    pass


_WORD = re.compile(r'"[^"]*"|\'[^\']*\'|\[[^\]]*\]|[^\s]+')
_PARENT = re.compile(r"^(\.\./)+")
_STANDALONE_KINDS = frozenset({"open", "close", "else", "comment", "inline"})


def _path(text: str) -> Path:
    original = text
    up = 0
    if match := _PARENT.match(text):
        up = match.group(0).count("../")
        text = text[match.end():]
    if text.startswith("@root"):
        rest = text[len("@root"):].lstrip("./")
        return Path(original, 0, True, None, _segments(rest))
    if text.startswith("@"):
        name, _, rest = text[1:].partition(".")
        return Path(original, up, False, name, _segments(rest))
    if text in ("this", ".", ""):
        return Path(original, up, False, None, ())
    if text.startswith(("this.", "this/", "./")):
        text = text.split("/", 1)[1] if text.startswith("./") else text[5:]
    return Path(original, up, False, None, _segments(text))


def _segments(text: str) -> tuple[str, ...]:
    if not text:
        return ()
    found = re.findall(r"\[([^\]]*)\]|([^./\[\]]+)", text)
    return tuple(bracketed or plain for bracketed, plain in found)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _unquote(word: str) -> str | None:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
        return word[1:-1]
    return None


def _tokens(source: str) -> list[tuple]:
    """Text and tags in order: ("text", s) or (kind, content, strip_left, strip_right)."""
    out: list[tuple] = []
    pos = 0
    while True:
        start = source.find("{{", pos)
        if start < 0:
            out.append(("text", source[pos:]))
            return out
        if start > 0 and source[start - 1] == "\\":  # \{{ is a literal {{
            out.append(("text", source[pos:start - 1] + "{{"))
            pos = start + 2
            continue
        out.append(("text", source[pos:start]))
        inner = start + 2
        strip_left = source.startswith("~", inner)
        inner += strip_left
        if source.startswith("!--", inner):
            end = source.find("--", inner + 3)
            while end >= 0 and not re.match(r"--~?\}\}", source[end:]):
                end = source.find("--", end + 1)
            if end < 0:
                raise _Syntax("an unclosed comment {{!--")
            close = source.index("}}", end)
            out.append(("comment", "", strip_left, source[close - 1] == "~"))
            pos = close + 2
            continue
        if source.startswith("{", inner):
            end = source.find("}}}", inner)
            if end < 0:
                raise _Syntax(f"an unclosed {{{{{{ at {start}")
            content = source[inner + 1:end]
            strip_right = content.endswith("~")
            out.append(("var", content.rstrip("~").strip(), strip_left, strip_right))
            pos = end + 3
            continue
        end = source.find("}}", inner)
        if end < 0:
            raise _Syntax(f"an unclosed {{{{ at {start}")
        content = source[inner:end]
        strip_right = content.endswith("~")
        content = content[:-1] if strip_right else content
        pos = end + 2
        out.append((*_tag(content.strip()), strip_left, strip_right))


def _tag(content: str) -> tuple[str, str]:
    if content.startswith("!"):
        return "comment", ""
    if content.startswith("#*"):
        return "inline", content[2:].strip()
    if content.startswith("#"):
        return "open", content[1:].strip()
    if content.startswith("/"):
        return "close", content[1:].strip()
    if content == "^" or content == "else" or content.startswith("else "):
        return "else", content[4:].strip() if content.startswith("else") else ""
    if content.startswith("^"):
        return "open", "^" + content[1:].strip()
    if content.startswith(">"):
        return "partial", content[1:].strip()
    if content.startswith("&"):
        return "var", content[1:].strip()
    return "var", content


def _strip_whitespace(tokens: list[tuple]) -> None:
    """`~` trims the whitespace beside a tag; a block tag alone on its line takes the line with it (Handlebars's
    standalone rule); an inline partial's definition takes the newline after it."""
    for i, token in enumerate(tokens):
        if token[0] == "text":
            continue
        kind, _, left, right = token
        before = tokens[i - 1] if i > 0 and tokens[i - 1][0] == "text" else None
        after = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1][0] == "text" else None
        if left and before is not None:
            tokens[i - 1] = ("text", before[1].rstrip())
        if right and after is not None:
            tokens[i + 1] = ("text", after[1].lstrip())
        if kind not in _STANDALONE_KINDS:
            continue
        before = tokens[i - 1] if i > 0 and tokens[i - 1][0] == "text" else None
        after = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1][0] == "text" else None
        if before is None or after is None:
            continue
        first = i == 1
        last = i + 2 == len(tokens)
        line_start = re.search(r"\n[ \t]*$", before[1]) or (first and re.fullmatch(r"[ \t]*", before[1]))
        line_end = re.match(r"[ \t]*\r?\n", after[1]) or (last and re.fullmatch(r"[ \t]*", after[1]))
        if line_start and line_end:
            tokens[i - 1] = ("text", before[1].rstrip(" \t"))
            tokens[i + 1] = ("text", after[1][line_end.end():])
        elif kind == "inline" and token[1] == "/inline" and (newline := re.match(r"\r?\n", after[1])):
            tokens[i + 1] = ("text", after[1][newline.end():])


def _parse(source: str) -> Template:
    tokens = _tokens(source)
    # closing an inline partial is a close tag whose name is "inline": mark it for the newline rule
    tokens = [("inline", "/inline", t[2], t[3]) if t[0] == "close" and t[1] == "inline" else t for t in tokens]
    _strip_whitespace(tokens)
    partials: dict[str, tuple] = {}
    nodes, _ = _program(tokens, 0, None, partials)
    return Template(nodes, partials)


def _program(tokens: list[tuple], i: int, closing: str | None, partials: dict[str, tuple]) -> tuple[tuple, int]:
    """Nodes from tokens[i] up to (not including) the else or close tag that ends this program."""
    nodes: list = []
    while i < len(tokens):
        token = tokens[i]
        kind = token[0]
        if kind == "text":
            if token[1]:
                nodes.append(token[1])
            i += 1
        elif kind == "comment":
            i += 1
        elif kind == "var":
            nodes.append(_expression(token[1]))
            i += 1
        elif kind == "partial":
            words = _words(token[1])
            if not words or len(words) > 2:
                raise _Syntax(f"{{{{> {token[1]}}}}}: one partial name and at most one context")
            name = _unquote(words[0]) or words[0]
            nodes.append(Partial(name, _path(words[1]) if len(words) == 2 else None))
            i += 1
        elif kind == "inline" and token[1] != "/inline":
            words = _words(token[1])
            name = _unquote(words[1]) if len(words) == 2 and words[0] == "inline" else None
            if name is None:
                raise _Syntax(f'{{{{#* {token[1]}}}}}: only {{{{#* inline "name"}}}} is a decorator')
            body, i = _program(tokens, i + 1, "inline", partials)
            if i >= len(tokens) or tokens[i][1] != "/inline":
                raise _Syntax(f'{{{{#* inline "{name}"}}}} is not closed by {{{{/inline}}}}')
            partials[name] = body
            i += 1
        elif kind == "open":
            block, i = _block(tokens, i, partials)
            nodes.append(block)
        else:  # else, close or /inline: the end of this program
            if closing is None:
                raise _Syntax(f"{{{{{'else' if kind == 'else' else '/' + token[1].lstrip('/')}}}}} "
                              "without an open block")
            return tuple(nodes), i
    if closing is not None:
        raise _Syntax(f"{{{{#{closing}}}}} is not closed")
    return tuple(nodes), i


_HELPERS = frozenset({"if", "unless", "each", "with"})


def _block(tokens: list[tuple], i: int, partials: dict[str, tuple]) -> tuple[Block, int]:
    """The block opened at tokens[i], through its close tag; returns it and the position after the close."""
    content = tokens[i][1]
    if content.startswith("^"):
        name = content[1:].strip()
        helper, path = "inverted", _path(name)
    else:
        words = _words(content)
        name = words[0] if words else ""
        helper, path = _opening(name, words)
    block, i = _chain(tokens, i + 1, name, helper, path, partials)
    close = tokens[i]
    if close[1] != name:
        raise _Syntax(f"{{{{#{name}}}}} is closed by {{{{/{close[1]}}}}}")
    return block, i + 1


def _chain(tokens: list[tuple], i: int, name: str, helper: str, path: Path, partials: dict[str, tuple]
           ) -> tuple[Block, int]:
    """A block's body and inverse from tokens[i], up to its close tag (returned, not consumed). {{else if x}}
    makes the rest of the chain a block of its own, closed by the same tag."""
    body, i = _program(tokens, i, name, partials)
    inverse: tuple = ()
    if tokens[i][0] == "else":
        chained = tokens[i][1]
        if chained:
            words = _words(chained)
            inner_helper, inner_path = _opening(words[0], words)
            inner, i = _chain(tokens, i + 1, name, inner_helper, inner_path, partials)
            inverse = (inner,)
        else:
            inverse, i = _program(tokens, i + 1, name, partials)
            if tokens[i][0] == "else":
                raise _Syntax(f"{{{{#{name}}}}} has two {{{{else}}}}")
    if tokens[i][0] != "close":
        raise _Syntax(f"{{{{#{name}}}}} is not closed")
    return Block(helper, path, body, inverse), i


def _opening(name: str, words: list[str]) -> tuple[str, Path]:
    if name in _HELPERS:
        if len(words) != 2:
            raise _Syntax(f"{{{{#{' '.join(words)}}}}}: #{name} takes exactly one argument")
        return name, _path(words[1])
    if len(words) != 1:
        raise _Syntax(f"Missing helper: \"{name}\"")
    return "section", _path(name)


def _expression(content: str) -> Var | Lookup:
    words = _words(content)
    if len(words) == 1:
        return Var(_path(words[0]))
    if words and words[0] == "lookup" and len(words) == 3:
        key = _unquote(words[2])
        return Lookup(_path(words[1]), key if key is not None else _path(words[2]))
    raise _Syntax(f"Missing helper: \"{words[0] if words else content}\"")


@functools.lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """The template's tree (cached by its text); a template that cannot be parsed carries its error."""
    try:
        return _parse(source)
    except _Syntax as error:
        return Template((), {}, error=f"Template syntax error: {error}")


# --- what a template reads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A variable the template takes from the top level of its data: `name` (the first segment of `original`, as
    written: `contact.first` reads `contact`), reached only when every name of `guards` is truthy (it sits in
    their {{#if}}, {{#with}} or {{#each}} bodies). A Read whose own name is among its guards cannot fail."""

    name: str
    original: str
    guards: frozenset[str]

    @property
    def safe(self) -> bool:
        return self.name in self.guards


_ROOT, _INNER = "root", "inner"  # a scope: the data itself, or a value inside it (a #with's, an #each item)


def reads(source: str) -> tuple[Read, ...]:
    """Every variable the part prints from the top level of its data, in order, with the guards it sits under;
    raises RenderingError when the part does not parse. Names looked up inside {{#each}} and {{#with}} bodies
    are the item's or the value's own, not the data's (only `../` back to the top, or `@root.`, reach it again),
    so they are not reads; {{#if x}} and {{#unless x}} read x without needing it (SES renders the branch for an
    absent x); `{{lookup}}` prints nothing when its key is missing, so it needs nothing. A section over a value
    (`{{#x}}...{{/x}}`) may be a list, an object or a flag: its body is taken as inside x."""
    template = compile_template(source)
    if template.error:
        raise RenderingError(template.error)
    found: list[Read] = []
    _reads(template.nodes, (_ROOT,), frozenset(), template.partials, found, ())
    return tuple(found)


def _scope_of(path: Path, scopes: tuple[str, ...]) -> str | None:
    """Whether `path` reads from the data's top level (_ROOT) or from an inner value; None for @index and such."""
    if path.root:
        return _ROOT
    if path.data is not None:
        return None
    return scopes[max(0, len(scopes) - 1 - path.up)]


def _reads(nodes: tuple, scopes: tuple[str, ...], guards: frozenset[str], partials: Mapping[str, tuple],
           found: list[Read], partial_stack: tuple[str, ...]) -> None:
    for node in nodes:
        if isinstance(node, Var):
            if node.path.parts and _scope_of(node.path, scopes) == _ROOT:
                found.append(Read(node.path.parts[0], node.path.original, guards))
        elif isinstance(node, Partial):
            if node.name in partials and node.name not in partial_stack:  # a missing one fails at rendering
                inner = scopes if node.context is None else (*scopes, _INNER)
                _reads(partials[node.name], inner, guards, partials, found, (*partial_stack, node.name))
        elif isinstance(node, Block):
            top = node.path.parts[0] if node.path.parts and _scope_of(node.path, scopes) == _ROOT else None
            guarded = guards | {top} if top else guards
            if node.helper in ("if", "inverted"):
                _reads(node.body, scopes, guarded if node.helper == "if" else guards, partials, found, partial_stack)
                _reads(node.inverse, scopes, guards, partials, found, partial_stack)
            elif node.helper == "unless":
                _reads(node.body, scopes, guards, partials, found, partial_stack)
                _reads(node.inverse, scopes, guarded, partials, found, partial_stack)
            else:  # with, each, section: the body is inside the value
                _reads(node.body, (*scopes, _INNER), guarded, partials, found, partial_stack)
                _reads(node.inverse, scopes, guards, partials, found, partial_stack)


# --- rendering ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    context: Any
    parent: _Frame | None
    root: Any
    data: Mapping[str, Any]


def render(source: str, data: Mapping[str, Any]) -> str:
    """The part rendered with `data`, as SES renders it; RenderingError if SES would not send it."""
    if "{{" not in source:
        return source
    template = compile_template(source)
    if template.error:
        raise RenderingError(template.error)
    out: list[str] = []
    _render(template.nodes, _Frame(data, None, data, {}), template.partials, out)
    return "".join(out)


def _render(nodes: tuple, frame: _Frame, partials: Mapping[str, tuple], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Var):
            value = _resolve(node.path, frame)
            if value is None:
                raise RenderingError(MISSING_MESSAGE.format(node.path.original))
            out.append(_text(value))
        elif isinstance(node, Block):
            _block_render(node, frame, partials, out)
        elif isinstance(node, Partial):
            body = partials.get(node.name)
            if body is None:
                raise RenderingError(f"The partial {node.name} could not be found")
            if node.context is not None:
                frame = _Frame(_resolve(node.context, frame), frame, frame.root, frame.data)
            _render(body, frame, partials, out)
        else:  # Lookup
            target = _resolve(node.target, frame)
            key = node.key if isinstance(node.key, str) else _resolve(node.key, frame)
            value = _child(target, _text(key)) if key is not None else None
            if value is not None:  # lookup is a helper: Handlebars prints nothing for a missing key
                out.append(_text(value))


def _block_render(node: Block, frame: _Frame, partials: Mapping[str, tuple], out: list[str]) -> None:
    value = _resolve(node.path, frame)
    helper = node.helper
    if helper == "if" or helper == "unless":
        chosen = node.body if _truthy(value) == (helper == "if") else node.inverse
        _render(chosen, frame, partials, out)
    elif helper == "with":
        if _truthy(value):
            _render(node.body, _Frame(value, frame, frame.root, frame.data), partials, out)
        else:
            _render(node.inverse, frame, partials, out)
    elif helper == "inverted":
        if not _truthy(value):
            _render(node.body, frame, partials, out)
    elif helper == "each" or (helper == "section" and isinstance(value, list)):
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value)) \
            if isinstance(value, list) else []
        if not items:
            _render(node.inverse, frame, partials, out)
        for index, (key, item) in enumerate(items):
            data = {**frame.data, "index": index, "key": key, "first": index == 0, "last": index == len(items) - 1}
            _render(node.body, _Frame(item, frame, frame.root, data), partials, out)
    elif _truthy(value):  # a section over a value that is not a list: an object is its context, else the same
        context = value if isinstance(value, dict) else frame.context
        _render(node.body, _Frame(context, frame, frame.root, frame.data), partials, out)
    else:
        _render(node.inverse, frame, partials, out)


def _resolve(path: Path, frame: _Frame) -> Any:
    if path.root:
        value = frame.root
    else:
        for _ in range(path.up):
            frame = frame.parent or frame
        value = frame.data.get(path.data) if path.data is not None else frame.context
    for part in path.parts:
        value = _child(value, part)
        if value is None:
            return None
    return value


def _child(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value.get(name)
    if isinstance(value, list) and name.isdigit() and int(name) < len(value):
        return value[int(name)]
    if isinstance(value, list) and name == "length":
        return len(value)
    return None


def _truthy(value: Any) -> bool:
    """Handlebars's: false, null, "", 0 and [] are false; everything else (an object, even empty) is true."""
    if isinstance(value, dict):
        return True
    return bool(value)


def _text(value: Any) -> str:
    """How a value prints: strings as they are, numbers and booleans as JSON writes them, a list's items joined
    by commas and an object as "[object Object]" (Handlebars.js)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return ",".join("" if v is None else _text(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)
