"""`ragscope chat`: an interactive terminal session with the Discord bot's commands.

`/ask QUESTION` (or just type the question), `/norag QUESTION`, `/domain [NAME]`, `/help`, `/quit`.
Answers stream as they are generated. Engine errors are shown as one line and the session goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from rag_engine.engine import Engine, generator_name
from rag_engine.errors import RagError

from . import render

HELP = """Commands:
  /ask QUESTION     answer from the documents (RAG); plain text does the same
  /norag QUESTION   answer from the model's weights alone, for contrast
  /domain [NAME]    show the domains, or switch to one ("all" searches every domain)
  /help             this text
  /quit             leave (Ctrl-D works too)"""


class ChatSession:
    def __init__(self, engine: Engine, domain: str | None, prepare: Callable[[Engine, str | None], None]) -> None:
        self.engine = engine
        self.domain = engine.check_domain(domain) if domain else None
        self._prepare = prepare

    def run(self, stdin: TextIO, stdout: TextIO) -> int:
        interactive = stdin.isatty()
        stdout.write(f"ragscope chat — domains: {', '.join(self.engine.domains())}. /help for commands.\n")
        while True:
            if interactive:
                stdout.write(f"{self.domain or 'all'}> ")
            stdout.flush()
            line = stdin.readline()
            if not line:
                return 0
            line = line.strip()
            if not line:
                continue
            try:
                if not self.handle(line, stdout):
                    return 0
            except RagError as exc:
                stdout.write(f"error: {exc}\n")

    def handle(self, line: str, out: TextIO) -> bool:
        """Run one input line; False means the user asked to leave."""
        command, _, rest = line.partition(" ") if line.startswith("/") else ("/ask", " ", line)
        rest = rest.strip()
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            out.write(HELP + "\n")
        elif command == "/domain":
            self._domain(rest, out)
        elif command in ("/ask", "/norag"):
            self._ask(rest, use_rag=command == "/ask", out=out)
        else:
            out.write(f"unknown command {command}; /help lists them\n")
        return True

    def _domain(self, name: str, out: TextIO) -> None:
        if not name:
            listed = ", ".join(self.engine.domains())
            out.write(f"current domain: {self.domain or 'all'}; available: {listed}\n")
            return
        self.domain = None if name == "all" else self.engine.check_domain(name)
        out.write(f"domain set to {self.domain or 'all'}\n")

    def _ask(self, question: str, use_rag: bool, out: TextIO) -> None:
        if use_rag:
            self._prepare(self.engine, self.domain)
        out.write(render.header(self.domain, use_rag, generator_name(self.engine.config)) + "\n")

        def write(piece: str) -> None:
            out.write(piece)
            out.flush()

        answer = self.engine.answer(question, self.domain, use_rag=use_rag, on_token=write)
        if not answer.covered:
            write(render.not_covered(answer))
        checked = render.check(answer)
        out.write("\n\n" + (checked + "\n\n" if checked else "") + render.sources(answer) + "\n")
