"""Every ```python and ```bash block of README.md runs as written, so the README cannot drift from the code.

Each block runs in a process of its own, in an empty working directory, against a fresh catalog, storage
folder and cache (``MODEL_REGISTRY_*``) holding what ``make demo`` publishes: each bundled reference model
as ``examples/<name>/1`` (the README says its blocks run after ``make demo``). Two HTML comments, invisible
when the README is rendered, may stand on the line before a block:

- ``<!-- readme-test setup: CODE -->`` (one line, or the lines up to ``-->``): Python run first in the
  block's process, for what the README leaves to the reader (images to pass, a directory to publish);
  ``REFERENCE_DIR`` (the bundled models) and ``shutil`` are at hand. Only for Python blocks.
- ``<!-- readme-test skip: WHY -->``: the block is not run here, and says why (it needs a deployment or
  another environment, and names the test that covers it). Kept few: ``MAX_SKIPPED``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
#: The README's exceptions: the quick start's own commands, a deployment, and the unmodified hub client.
MAX_SKIPPED = 4

FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"<!--\s*readme-test\s+(setup|skip)\s*:\s*(.*?)\s*-->", re.DOTALL)

#: What `make demo` leaves in the catalog, made here without the demo's loading and comparing.
PRELUDE = """
import shutil
from pathlib import Path

import registry
from registry.demo import REFERENCE_DIR, reference_manifest

for _name in sorted(reference_manifest()):
    registry.publish(REFERENCE_DIR / _name, name=f"examples/{_name.replace('_', '-')}")
"""


class Block(NamedTuple):
    line: int
    language: str
    code: str
    setup: str
    skip: str | None

    @property
    def name(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def readme_blocks(text: str) -> list[Block]:
    """The ```python and ```bash blocks, each with the directive in the comment just before it (if any)."""
    lines = text.splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match or not match.group(1):
            index += 1
            continue
        language, start = match.group(1), index
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
        index = end + 1
        if language not in ("python", "bash"):
            continue
        before = "\n".join(lines[max(0, start - 12):start])
        directive = None
        if before.rstrip().endswith("-->"):
            found = list(DIRECTIVE.finditer(before))
            directive = found[-1] if found and before.rstrip().endswith(found[-1].group(0)) else None
        kind, body = (directive.group(1), directive.group(2)) if directive else (None, "")
        setup = ""
        if kind == "setup":
            first, _, rest = body.partition("\n")
            # a one-line set-up is code; a multi-line one starts with a line saying what it is for
            setup = first if not rest else textwrap.dedent(rest)
        blocks.append(Block(start + 1, language, "\n".join(lines[start + 1:end]) + "\n", setup,
                            " ".join(body.split()) if kind == "skip" else None))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_blocks_and_few_exceptions():
    assert len(BLOCKS) >= 8, [b.name for b in BLOCKS]
    skipped = [b for b in BLOCKS if b.skip is not None]
    assert len(skipped) <= MAX_SKIPPED, [b.name for b in skipped]
    for block in skipped:
        assert len(block.skip) > 40, f"{block.name}: a skipped block says why and what covers it instead"
    assert all(not b.setup for b in BLOCKS if b.language == "bash")


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.skip is None], ids=lambda b: f"line{b.line}")
def test_the_readme_block_runs_as_written(block, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
    env.update(MODEL_REGISTRY_DATABASE_URL=f"sqlite:///{tmp_path / 'catalog.db'}",
               MODEL_REGISTRY_STORAGE_URL=str(tmp_path / "artifacts"),
               MODEL_REGISTRY_CACHE_DIR=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if block.language == "python":
        script = work.parent / "block.py"
        script.write_text(f"{PRELUDE}\n{block.setup}\n\n# ---- {block.name}\n{block.code}")
        command = [sys.executable, str(script)]
    else:
        prepare = subprocess.run([sys.executable, "-c", PRELUDE], cwd=work, env=env, capture_output=True,
                                 text=True, timeout=600)
        assert prepare.returncode == 0, prepare.stderr[-3000:]
        command = ["bash", "-euo", "pipefail", "-c", block.code]
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{block.name} failed as written:\n{block.code}\n{done.stdout[-2000:]}" \
                                 f"{done.stderr[-4000:]}"
