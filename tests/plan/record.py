"""Record the full plan of every example inventory and every plan-test scenario as text files.

    python -m tests.plan.record DIR

writes DIR/inventories/<inventory>.txt and DIR/plan-tests/<test>.<n>.txt: each host's
operations, the commands sent (pyinfra's masking kept) and the files uploaded, or the error
that stopped the plan. Comparing two records (``diff -r``) shows what a refactoring changed.
Values that differ from run to run (generated secrets, keys, salts, temporary paths, test
certificates) are replaced by placeholders so that an unchanged tree records the same text.
The plan tests are recorded through the harness when ``OMERO_PLAN_RECORD`` names a directory.
"""

import hashlib
import os
import re
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import run_deploy

ROOT = Path(__file__).resolve().parents[2]
_COUNTS: dict[str, int] = {}
_VOLATILE = (
    (re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S), r"<PEM \1>"),
    (re.compile(r"SCRAM-SHA-256\$[^'\"\s]+"), "<SCRAM verifier>"),
    (re.compile(r"ssh-ed25519 [A-Za-z0-9+/=]+"), "ssh-ed25519 <key>"),
    (re.compile(r"/tmp/pytest-of-[^/]+/pytest-[0-9]+/"), "<pytest tmp>/"),
    (re.compile(r"/tmp/plan-record-[^/\s'\"]+"), "<record tmp>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<sha256>"),
)


def _secrets(hosts: dict) -> dict[str, str]:
    """The secrets kept in the hosts' secrets directories, by file name."""
    found = {}
    for _, data in hosts.values():
        given = data.get("omero_secrets_dir", "~/.local/share/omero-pyinfra/secrets")
        directory = Path(os.path.expanduser(given)) if isinstance(given, str) else None
        if directory is None:
            continue
        if directory.is_dir():
            found.update({path.name: path.read_text().strip() for path in directory.iterdir() if path.is_file()})
    return found


def normalise(text: str, secrets: dict[str, str]) -> str:
    for name, value in sorted(secrets.items(), key=lambda item: -len(item[1])):
        if len(value) >= 8:
            text = text.replace(value, f"<secret {name}>")
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


def render(hosts: dict, runs: dict | None, error: BaseException | None, arguments: dict) -> str:
    shown = {key: value for key, value in arguments.items() if key != "responses"}
    lines = [f"=== arguments {sorted(shown.items())} responses {sorted(map(str, arguments.get('responses') or {}))}"]
    for name, (groups, _) in hosts.items():
        lines.append(f"=== host {name} groups {sorted(groups)}")
        run = (runs or {}).get(name)
        if run is None:
            continue
        lines += ["--- operations", *run.ops, "--- commands", *map(str, run.commands), "--- uploads"]
        for path in sorted(run.uploads):
            lines += [f"+++ {path}", run.uploads[path]]
    if error is not None:
        lines.append(f"=== error {type(error).__name__}: {error}")
    return normalise("\n".join(lines) + "\n", _secrets(hosts))


def save(directory: str, stem: str, hosts: dict, runs: dict | None, error: BaseException | None,
         arguments: dict) -> None:
    count = _COUNTS[stem] = _COUNTS.get(stem, 0) + 1
    path = Path(directory) / f"{stem}.{count}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(hosts, runs, error, arguments))


def current_test() -> str:
    """The running test's id as a file name."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "outside-pytest").rsplit(" (", 1)[0]
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", test).strip("_")


def _stand_ins(data: dict, directory: Path) -> dict:
    """An inventory's site files (artifacts, CA certificates) as stand-ins with their real sha256."""
    data = dict(data)
    for option, sha in (("omero_server_artifact", "omero_server_sha256"),
                        ("omero_ice_artifact", "omero_ice_sha256"),
                        ("omero_icepy_wheel", "omero_icepy_wheel_sha256")):
        if option in data:
            path = directory / Path(data[option]).name
            path.write_bytes(f"plan-record stand-in for {path.name}\n".encode())
            data[option] = str(path)
            data[sha] = hashlib.sha256(path.read_bytes()).hexdigest()
    if "omero_extra_ca_certificates" in data:
        paths = []
        for given in data["omero_extra_ca_certificates"]:
            path = directory / Path(given).name
            path.write_text("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n")
            paths.append(str(path))
        data["omero_extra_ca_certificates"] = paths
    return data


def record_inventories(out: Path) -> None:
    for inventory in sorted((ROOT / "inventories").glob("*.py")):
        hosts: dict[str, tuple[list[str], dict]] = {}
        for group, members in runpy.run_path(str(inventory)).items():
            if not isinstance(members, list):
                continue
            for member in members:
                name, data = member if isinstance(member, tuple) else (member, {})
                groups, merged = hosts.setdefault(name, ([], {}))
                groups.append(group)
                merged.update(data)
        with tempfile.TemporaryDirectory(prefix="plan-record-") as scratch:
            directory = Path(scratch)
            hosts = {name: (groups, {"omero_secrets_dir": str(directory / "secrets"),
                                     **_stand_ins(data, directory)})
                     for name, (groups, data) in hosts.items()}
            pid1 = "bash" if inventory.stem == "container" else "systemd"
            for os_name in ("ubuntu24.04", "rocky9"):
                runs, error = None, None
                try:
                    runs = run_deploy(hosts, os_name=os_name, pid1=pid1)
                except Exception as raised:  # the record shows a refusal as it is
                    runs, error = getattr(raised, "runs", None), raised
                stem = f"{inventory.stem}.{os_name}"
                save(str(out / "inventories"), stem, hosts, runs, error, {"os_name": os_name, "pid1": pid1})


def main() -> int:
    out = Path(sys.argv[1]).resolve()
    record_inventories(out)
    env = {**os.environ, "OMERO_PLAN_RECORD": str(out / "plan-tests")}
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "plan",
                            *sys.argv[2:]], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
