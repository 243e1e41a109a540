"""`conan_model.errors.error_line`: the error line every CLI prints, kept whole when torchrun's ranks share stderr."""

from __future__ import annotations

import os
import subprocess
import sys

WRITER = """
import sys
from conan_model.errors import error_line
for i in range(300):
    error_line(f"harness: error: line {i} " + "x" * 900 + " end")
"""


def test_ranks_error_lines_sharing_one_pipe_stay_whole() -> None:
    """Leftover of stop 66's torchrun walk: two ranks' error lines ran together on one line (`…the same texts
    alikeharness: error: …`). Two real processes, as torchrun's ranks, write 300 lines each into one pipe at once;
    every line read back is one rank's whole line (each is under PIPE_BUF, 4096 bytes, so one write(2) of it is
    atomic on a pipe)."""
    read, write = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER], stderr=write,
                              env={**os.environ, "WORLD_SIZE": "2", "RANK": str(rank)}) for rank in (0, 1)]  # fmt: skip
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as pipe:
        lines = pipe.read().splitlines()
    assert [p.wait() for p in procs] == [0, 0]
    assert len(lines) == 600
    for prefix in ("harness", "[rank 1] harness"):
        ours = [line for line in lines if line.startswith(f"{prefix}: error: line ")]
        assert len(ours) == 300 and all(line.endswith(" end") and line.count("error:") == 1 for line in ours)


def test_one_process_prints_the_line_as_it_is(capsys, monkeypatch) -> None:
    """Without torchrun no prefix, and a captured stream (no descriptor) still gets the line under torchrun."""
    from conan_model.errors import error_line

    error_line("harness: error: x")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    error_line("harness: error: y")
    assert capsys.readouterr().err == "harness: error: x\n[rank 1] harness: error: y\n"
