"""The shell in the docs, read as a test reads it.

A doc marks each code block that holds commands by its fence's info string:

- ```` ```sh ````: commands a user runs as written; the doc test runs them, in the doc's order,
  in one scratch folder per doc (``sh repo``: in the clone, as ``make`` targets are run);
- ```` ```sh skip: REASON ````: commands that cannot run here (Docker, a cluster, a real S3 or
  broker host); the reason is required;
- ```` ```sh synopsis ````: usage lines (``[--flag]``, ``NAME``): every command and flag they
  name must exist in ``edgeship``'s parser;
- ```` ```text output ````: what the block before it prints; each line must still appear, in
  order, with numbers and ``...`` standing for any value.

Any other code block (``text``, ``json``, ``python``) holds no commands; a command left in an
unmarked block is an error of its own, so nothing a user would type goes unchecked.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

#: What starts a line a user would type at a shell.
COMMAND = re.compile(r"^(\$ )?(edgeship|make|pip|uv|mosquitto|\.venv[\w-]*/bin/\S+|python3?|"
                     r"kubectl|kind|docker)(\s|$)")
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
KINDS = ("run", "repo", "skip", "synopsis")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    kind: str  # run, repo, skip, synopsis, output, or "" for a block with no commands
    reason: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.doc.name}:{self.line}"

    def commands(self) -> list[str]:
        """The block's commands, continuation lines joined, comments and blank lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.body)
        return [line.strip() for line in joined.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]


def blocks(doc: Path) -> list[Block]:
    """Every fenced block of ``doc``, with what its info string says of it."""
    text = doc.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        lang, _, rest = match.group("info").strip().partition(" ")
        rest = rest.strip()
        kind, reason = "", ""
        if lang == "sh":
            if rest.startswith("skip:"):
                kind, reason = "skip", rest.removeprefix("skip:").strip()
            else:
                kind = {"": "run", "repo": "repo", "synopsis": "synopsis"}.get(rest, rest)
        elif lang == "text" and rest == "output":
            kind = "output"
        found.append(Block(doc, line, lang, kind, reason, match.group("body")))
    return found


def indented_commands(doc: Path) -> list[tuple[int, str]]:
    """Command lines in indented (unfenced) code blocks, which no test would see."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), doc.read_text())
    lines = text.splitlines()
    found = []
    in_block = False
    for number, line in enumerate(lines, start=1):
        starts = line.startswith("    ") and (number == 1 or not lines[number - 2].strip()
                                             or in_block)
        in_block = starts and bool(line.strip())
        if in_block and COMMAND.match(line.strip()):
            found.append((number, line.strip()))
    return found


def expected_lines_match(expected: str, actual: str) -> str | None:
    """None if each line of ``expected`` appears in ``actual``, in order, where a number in
    ``expected`` stands for any number and ``...`` for anything; else the first line missing."""
    lines = actual.splitlines()
    at = 0
    for want in (line.strip() for line in expected.splitlines()):
        if not want or want == "...":
            continue
        pattern = re.compile(_line_pattern(want))
        while at < len(lines) and not pattern.search(lines[at]):
            at += 1
        if at == len(lines):
            return want
        at += 1
    return None


def _line_pattern(line: str) -> str:
    parts = []
    for token in re.split(r"(\.\.\.|[-+]?\d+(?:\.\d+)?|\s+)", line):
        if not token:
            continue
        if token == "...":
            parts.append(".*?")
        elif token.isspace():
            parts.append(r"\s+")
        elif re.fullmatch(r"[-+]?\d+(?:\.\d+)?", token):
            parts.append(r"[-+]?\d+(?:\.\d+)?")
        else:
            parts.append(re.escape(token))
    return "".join(parts)


def synopsis_flags(command: str) -> tuple[list[str], list[str]]:
    """(the subcommand words, the ``--flags``) a synopsis line names."""
    words = shlex.split(command.replace("[", " ").replace("]", " ").replace("|", " "),
                        comments=True)
    path = []
    for word in words[1:]:
        if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        path.append(word)
    flags = [word.split("=")[0] for word in words if word.startswith("--")]
    return path, flags
