"""Do the tests catch a loosened permission? Mutate every permission, mode, umask, sandbox
and security-header line of deploys/ and templates/, one at a time, in a scratch copy of
the tree, and run the plan and unit tests against each mutant.

    .venv/bin/python tests/permission_mutations.py [--list] [PATTERN]

A mutant opens a mode to others (600 -> 644, 750 -> 755, 755 -> 777, ...), zeroes a umask,
or deletes a confining unit line or a security header. Each must make a test fail; the
run prints each survivor with its file and line, and exits 1 if any survives. The fast
tests go first (the permission table, then the rest), so a killed mutant costs seconds.
PATTERN limits the run to mutants whose file:line or text contains it.
"""

import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where permissions are set (options.py and settings.py only describe them).
SOURCES = [*sorted(path for path in (ROOT / "deploys").glob("*.py") if path.name not in ("options.py", "settings.py")),
           *sorted((ROOT / "templates").rglob("*.j2"))]
# Tests in the order they run against a mutant: the cheapest that may kill it first.
STAGES = (["tests/plan/test_permissions.py", "tests/unit"], ["tests/plan", "tests/unit"])

_MODE = re.compile(r"""(?:\bmode=["']|\bmode=0o|\bchmod |\binstall -m |, 0o)(?P<mode>[0-7]{3,4})\b(?! it)""")
_UMASK = re.compile(r"(?P<pre>\bUMask=|\bumask )(?P<mode>0?[0-7]{3})\b")
# Lines whose deletion removes a confinement or a header: in units and nginx sites.
_CONFINING = re.compile(r"^\s*(Protect\w+|Private\w+|NoNewPrivileges|CapabilityBoundingSet|Restrict\w+|"
                        r"LockPersonality|MemoryDenyWriteExecute|SystemCallFilter|SystemCallArchitectures|"
                        r"RemoveIPC|ReadWritePaths|ProcSubset|add_header|server_tokens|ssl_reject_handshake|"
                        r"return 444|proxy_set_header X-Forwarded-Proto)\b")


def loosened(mode: str) -> str:
    """``mode`` opened one step towards everyone: others may read, or (if they may) write."""
    value = int(mode, 8)
    opened = value | 0o044 if value & 0o044 != 0o044 else value | 0o022
    return f"{opened:0{len(mode)}o}"


@dataclass(frozen=True)
class Mutant:
    path: Path
    line: int  # 1-based
    original: str
    mutated: str  # None-like "" deletes the line

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def describe(self) -> str:
        change = f"-> {self.mutated.strip()}" if self.mutated else "deleted"
        return f"{self.where}: {self.original.strip()}  {change}"


def mutants() -> list[Mutant]:
    found = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text().splitlines(keepends=True), 1):
            if line.lstrip().startswith("#") and not path.suffix == ".j2":
                continue
            for pattern in (_MODE, _UMASK):
                for match in pattern.finditer(line):
                    mode = match.group("mode")
                    new = "000" if pattern is _UMASK else loosened(mode)
                    if new != mode:
                        start, end = match.span("mode")
                        found.append(Mutant(path, number, line, line[:start] + new + line[end:]))
            if path.suffix == ".j2" and _CONFINING.match(line):
                found.append(Mutant(path, number, line, ""))
    return found


def killed(mutant: Mutant, tree: Path) -> str | None:
    """The first stage whose tests fail against ``mutant`` (applied in ``tree``), or None."""
    target = tree / mutant.path.relative_to(ROOT)
    original = target.read_text()
    lines = original.splitlines(keepends=True)
    assert lines[mutant.line - 1] == mutant.original
    lines[mutant.line - 1] = mutant.mutated
    target.write_text("".join(lines))
    try:
        for stage in STAGES:
            result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                     "-m", "plan or unit", *stage], cwd=tree, capture_output=True, text=True)
            if result.returncode not in (0, 5):
                return " ".join(stage)
        return None
    finally:
        target.write_text(original)


def main(argv: list[str]) -> int:
    pattern = next((arg for arg in argv if not arg.startswith("--")), "")
    chosen = [m for m in mutants() if pattern in m.describe()]
    if "--list" in argv:
        print("\n".join(m.describe() for m in chosen))
        print(f"{len(chosen)} mutants")
        return 0
    survivors = []
    with tempfile.TemporaryDirectory(prefix="omero-mutants-") as scratch:
        tree = Path(scratch) / "tree"
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.splitlines()
        for name in files:
            if (ROOT / name).is_file():
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, tree / name)
        started = time.monotonic()
        for index, mutant in enumerate(chosen, 1):
            stage = killed(mutant, tree)
            print(f"[{index}/{len(chosen)}] {'killed by ' + stage if stage else 'SURVIVED'}: {mutant.describe()}",
                  flush=True)
            if stage is None:
                survivors.append(mutant)
    print(f"\n{len(chosen) - len(survivors)} of {len(chosen)} mutants killed in {time.monotonic() - started:.0f} s")
    for mutant in survivors:
        print(f"survived: {mutant.describe()}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
