"""A small Go text/template + Sprig subset, enough to render helm/tap-service without helm.

No helm binary can be installed here (not on Debian or PyPI), so the chart test renders the
templates with this evaluator: actions, trim markers, if/else/with/range/define/include,
variables, pipelines and the functions the chart uses.  An unknown function or syntax fails
loudly, so a template using more than this subset is noticed, not silently passed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>:=|\||\(|\)|,)'
    r"|(?P<word>[$.\w][\w.$]*))"
)


class TemplateError(Exception):
    pass


@dataclass
class Node:
    kind: str  # text, action, if, range, with, define
    text: str = ""
    expr: str = ""
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


def _lex(source: str) -> list[tuple[str, str]]:
    """(kind, content) items: 'text' or 'action', with the trim markers applied."""
    items: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for match in ACTION.finditer(source):
        text = source[pos : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        items.append(("text", text))
        inner = match.group(2).strip()
        if not (inner.startswith("/*") and inner.endswith("*/")):
            items.append(("action", inner))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = source[pos:]
    items.append(("text", tail.lstrip() if trim_next else tail))
    return items


def parse(source: str) -> list[Node]:
    root: list[Node] = []
    stack: list[tuple[Node | None, list[Node]]] = [(None, root)]
    for kind, content in _lex(source):
        _, current = stack[-1]
        if kind == "text":
            if content:
                current.append(Node("text", text=content))
            continue
        keyword, _, rest = content.partition(" ")
        if keyword in ("if", "range", "with", "define"):
            node = Node(keyword, expr=rest.strip())
            current.append(node)
            stack.append((node, node.body))
        elif keyword == "else":
            node_open = stack[-1][0]
            if node_open is None:
                raise TemplateError("else outside a block")
            if rest.strip().startswith("if "):
                raise TemplateError("else if is not supported by this renderer")
            stack[-1] = (node_open, node_open.orelse)
        elif keyword == "end":
            if len(stack) == 1:
                raise TemplateError("end without a block")
            stack.pop()
        else:
            current.append(Node("action", expr=content))
    if len(stack) != 1:
        raise TemplateError("unclosed block")
    return root


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {}) if not isinstance(value, float) else value != 0


def to_text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_yaml(value: Any) -> str:
    text: str = yaml.safe_dump(value, default_flow_style=False, sort_keys=True)
    return text.rstrip("\n").removesuffix("\n...")


class Renderer:
    def __init__(self, values: dict[str, Any], chart: dict[str, Any], release: str = "tap") -> None:
        self.root = {
            "Values": values,
            "Chart": {
                "Name": chart["name"],
                "Version": chart["version"],
                "AppVersion": chart.get("appVersion", ""),
            },
            "Release": {"Name": release, "Service": "Helm", "Namespace": "default"},
            "Template": {"BasePath": f"{chart['name']}/templates"},
        }
        self.defines: dict[str, list[Node]] = {}
        self.files: dict[str, list[Node]] = {}
        self.functions: dict[str, Callable[..., Any]] = {
            "default": lambda d, v=None: v if truthy(v) else d,
            "trunc": lambda n, s: s[:n],
            "trimSuffix": lambda suffix, s: s.removesuffix(suffix),
            "printf": lambda fmt, *args: re.sub(r"%[sdv]", "{}", fmt).format(
                *(to_text(a) for a in args)
            ),
            "print": lambda *args: "".join(to_text(a) for a in args),
            "quote": lambda *args: " ".join(json.dumps(to_text(a)) for a in args),
            "required": self._required,
            "toYaml": _to_yaml,
            "nindent": lambda n, s: "\n" + "\n".join(" " * n + line for line in s.split("\n")),
            "indent": lambda n, s: "\n".join(" " * n + line for line in s.split("\n")),
            "sha256sum": lambda s: hashlib.sha256(s.encode()).hexdigest(),
            "list": lambda *args: list(args),
            "index": lambda m, *keys: self._index(m, keys),
            "join": lambda sep, items: sep.join(to_text(i) for i in items),
            "not": lambda v: not truthy(v),
            "include": self._include,
        }

    def add_file(self, name: str, source: str) -> None:
        nodes = parse(source)
        for node in nodes:
            if node.kind == "define":
                self.defines[json.loads(node.expr)] = node.body
        self.files[name] = [n for n in nodes if n.kind != "define"]

    def render(self, name: str) -> str:
        return self._run(self.files[name], self.root, {"$": self.root})

    @staticmethod
    def _required(message: str, value: Any = None) -> Any:
        if not truthy(value):
            raise TemplateError(f"required: {message}")
        return value

    @staticmethod
    def _index(mapping: Any, keys: tuple[Any, ...]) -> Any:
        for key in keys:
            mapping = mapping[key]
        return mapping

    def _include(self, name: str, dot: Any) -> str:
        if name in self.defines:
            return self._run(self.defines[name], dot, {"$": self.root}).strip("\n")
        path = name.removeprefix(f"{self.root['Template']['BasePath']}/")  # type: ignore[index]
        return self._run(self.files[path], dot, {"$": self.root})

    # -- evaluation ---------------------------------------------------------------------------

    def _run(self, nodes: list[Node], dot: Any, variables: dict[str, Any]) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                value = self._statement(node.expr, dot, variables)
                if value is not _NOTHING:
                    out.append(to_text(value))
            elif node.kind == "if":
                branch = node.body if truthy(self._eval(node.expr, dot, variables)) else node.orelse
                out.append(self._run(branch, dot, variables))
            elif node.kind == "with":
                value = self._eval(node.expr, dot, variables)
                if truthy(value):
                    out.append(self._run(node.body, value, dict(variables)))
                else:
                    out.append(self._run(node.orelse, dot, variables))
            elif node.kind == "range":
                out.append(self._range(node, dot, variables))
        return "".join(out)

    def _range(self, node: Node, dot: Any, variables: dict[str, Any]) -> str:
        names: list[str] = []
        expr = node.expr
        if ":=" in expr:
            left, _, expr = expr.partition(":=")
            names = [n.strip() for n in left.split(",")]
        items = self._eval(expr.strip(), dot, variables)
        pairs = sorted(items.items()) if isinstance(items, dict) else list(enumerate(items or []))
        out = []
        for key, value in pairs:
            scope = dict(variables)
            if len(names) == 1:
                scope[names[0]] = value
            elif len(names) == 2:
                scope[names[0]], scope[names[1]] = key, value
            out.append(self._run(node.body, value, scope))
        return "".join(out)

    def _statement(self, expr: str, dot: Any, variables: dict[str, Any]) -> Any:
        match = re.match(r"(\$\w+)\s*:=\s*(.*)", expr, re.S)
        if match:
            variables[match.group(1)] = self._eval(match.group(2), dot, variables)
            return _NOTHING
        return self._eval(expr, dot, variables)

    def _eval(self, expr: str, dot: Any, variables: dict[str, Any]) -> Any:
        tokens = self._tokens(expr)
        value, rest = self._pipeline(tokens, dot, variables)
        if rest:
            raise TemplateError(f"unexpected {rest[0]!r} in {expr!r}")
        return value

    @staticmethod
    def _tokens(expr: str) -> list[tuple[str, str]]:
        tokens = []
        pos = 0
        expr = expr.strip()
        while pos < len(expr):
            match = TOKEN.match(expr, pos)
            if not match or match.end() == pos:
                raise TemplateError(f"cannot read {expr[pos:]!r}")
            kind = match.lastgroup
            assert kind is not None
            tokens.append((kind, match.group(kind)))
            pos = match.end()
            while pos < len(expr) and expr[pos].isspace():
                pos += 1
        return tokens

    def _pipeline(
        self, tokens: list[tuple[str, str]], dot: Any, variables: dict[str, Any]
    ) -> tuple[Any, list[tuple[str, str]]]:
        value: Any = _NOTHING
        while True:
            args: list[tuple[str, Any]] = []
            while tokens and tokens[0][1] not in ("|", ")"):
                kind, text = tokens[0]
                tokens = tokens[1:]
                if text == "(":
                    inner, tokens = self._pipeline(tokens, dot, variables)
                    if not tokens or tokens[0][1] != ")":
                        raise TemplateError("unclosed (")
                    tokens = tokens[1:]
                    args.append(("value", inner))
                else:
                    args.append((kind, text))
            value = self._command(args, value, dot, variables)
            if tokens and tokens[0][1] == "|":
                tokens = tokens[1:]
                continue
            return value, tokens

    def _command(
        self, args: list[tuple[str, Any]], piped: Any, dot: Any, variables: dict[str, Any]
    ) -> Any:
        if not args:
            raise TemplateError("empty command")
        kind, head = args[0]
        if kind == "word" and head in self.functions:
            values = [self._operand(k, t, dot, variables) for k, t in args[1:]]
            if piped is not _NOTHING:
                values.append(piped)
            return self.functions[head](*values)
        if kind == "word" and not head.startswith((".", "$")):
            if head in ("true", "false"):
                return head == "true"
            raise TemplateError(f"unknown function {head!r}")
        if len(args) != 1 or piped is not _NOTHING:
            raise TemplateError(f"{head!r} is not a function")
        return self._operand(kind, head, dot, variables)

    def _operand(self, kind: str, text: Any, dot: Any, variables: dict[str, Any]) -> Any:
        if kind == "value":
            return text
        if kind == "str":
            return json.loads(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text in ("true", "false"):
            return text == "true"
        if text == ".":
            return dot
        if text.startswith("$"):
            name, _, path = text.partition(".")
            if name not in variables:
                raise TemplateError(f"undefined variable {name}")
            return _walk(variables[name], path)
        if text.startswith("."):
            return _walk(dot, text[1:])
        if text in self.functions:
            return self.functions[text]()
        raise TemplateError(f"cannot evaluate {text!r}")


def _walk(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if not isinstance(value, dict):
            raise TemplateError(f"cannot take .{part} of {type(value).__name__}")
        value = value.get(part)
    return value


_NOTHING: Any = object()
