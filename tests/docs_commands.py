"""The commands README.md and docs/*.md tell a sysadmin to type: their ```sh blocks.

Each block is claimed in CLAIMS, by its file, section and first line, either by the test that runs
it as written (a placeholder such as ``<tag>`` replaced, said in ``substituted``) or by
the reason it cannot run on this machine. tests/plan/test_docs_commands.py fails on a
block nobody claims, so a command added to the docs needs its test (or its reason) too.
"""

import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Block:
    path: str  # from the repository's root
    section: str  # the heading above it
    line: int  # of its opening fence
    text: str  # as written, a list item's indentation removed

    @property
    def first(self) -> str:
        return next(line for line in self.text.splitlines() if line.strip())

    @property
    def key(self) -> tuple[str, str, str]:
        return self.path, self.section, self.first


def documents() -> list[str]:
    return ["README.md", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md"))]


def blocks() -> list[Block]:
    found = []
    for path in documents():
        section, start, lines = "", None, []
        for number, line in enumerate((ROOT / path).read_text().splitlines(), 1):
            fence = line.strip()
            if start is None and line.startswith("#"):
                section = line.lstrip("#").strip()
            elif start is None and fence == "```sh":
                start, lines = number, []
            elif start is not None and fence == "```":
                found.append(Block(path, section, start, textwrap.dedent("\n".join(lines) + "\n")))
                start = None
            elif start is not None:
                lines.append(line)
    return found


def block(path: str, first: str) -> str:
    """The text of the one block of ``path`` whose first line is ``first``, for a test to run."""
    (text,) = [found.text for found in blocks() if (found.path, found.first) == (path, first)]
    return text


@dataclass(frozen=True)
class Claim:
    test: str = ""  # tests/host/<module>.py::<test> that runs the block as written
    substituted: str = ""  # what that test puts in place of the block's placeholders
    reason: str = ""  # why no test runs it here


NO_APPTAINER = ("Apptainer is not installed on this machine (nor packaged for Debian 12); "
                "tests/host/test_image.py::test_apptainer_style_user_read_only_root_and_env_ports "
                "runs the image as Apptainer does (another uid, read-only root, a bound state, ports "
                "from the environment) with podman")

DEPLOY_COMMAND = "scripts/deploy inventories/<site>.py     # deploy (makes its own venv in .venv on first use)"
MOVE = ("docs/upgrade.md", "Moving to a new host (and a newer OS)")

# (file, section, first line) -> who runs the block, or why nobody does.
CLAIMS: dict[tuple[str, str, str], Claim] = {
    ("README.md", "The two commands", DEPLOY_COMMAND):
        Claim(test="tests/host/test_systemd.py::test_the_readmes_deploy_command",
              substituted="inventories/<site>.py: the test's inventory; the venv made on first use in a "
                          "scratch directory (OMERO_PYINFRA_VENV), not the checkout's, which the test run uses. "
                          "The block's second line, scripts/test, is this suite's own runner (.ci/run types it)"),
    ("README.md", "OMERO.dropbox: import by copying files into a folder",
     "sudo install -d -o amy -g omero -m 2770 /OMERO/DropBox/amy"):
        Claim(test="tests/host/test_dropbox.py::test_a_users_folder_as_the_readme_makes_it"),
    ("README.md", "Backups", "sudo systemctl start omero-backup"):
        Claim(test="tests/host/test_backup.py::test_documented_commands_work_as_written"),
    ("README.md", "Container image",
     "scripts/build-image                                   # root, podman, debootstrap"):
        Claim(reason="a build takes 5 to 13 minutes of the 2 shared cores, and the script's first step "
                     "reinstalls the checkout into the shared venv; tests/host/test_image.py's image fixture "
                     "builds through omero_image.build.build, the function scripts/build-image runs, with the "
                     "cached IcePy wheel (the second line's options); no OMERO.server artifact is here for "
                     "the third"),
    ("README.md", "Container image", "# Podman (or Docker: the same with docker)"):
        Claim(test="tests/host/test_image.py::test_the_readmes_podman_commands",
              substituted="localhost/omero-pyinfra:<tag>: the image the tests built (named for the "
                          "tests); artifacts/omero-image.tar: its tarball, linked into the scratch "
                          "directory the commands run in"),
    ("README.md", "Container image",
     "# as a user, read-only, a directory of yours (as Apptainer runs it)"):
        Claim(test="tests/host/test_image.py::test_the_readmes_podman_commands",
              substituted="<tag> as above; $HOME: that directory, its omero-state owned by uid 1000"),
    ("README.md", "Container image", "# Apptainer: apptainer/omero.def and docs/apptainer.md"):
        Claim(reason=NO_APPTAINER),
    ("docs/analysis.md", "Who may log in",
     "sudo usermod -aG jupyterhub-users alice      # alice may now log in"):
        Claim(test="tests/host/test_analysis.py::test_the_documented_commands_let_a_member_in_and_out"),
    ("docs/apptainer.md", "Build the SIF", "apptainer build omero.sif apptainer/omero.def     "
                          "# or: apptainer build omero.sif docker-archive://omero-image.tar"):
        Claim(reason=NO_APPTAINER),
    ("docs/apptainer.md", "Run it", 'mkdir -p "$HOME/omero-state"        '
                          "# a local disk if you can: PostgreSQL dislikes network file systems"):
        Claim(reason=NO_APPTAINER),
    ("docs/backup.md", "Back up now, and restic itself", "sudo systemctl start omero-backup"):
        Claim(test="tests/host/test_backup.py::test_documented_commands_work_as_written"),
    ("docs/backup.md", "Restore", "sudo omero-restore --force"):
        Claim(test="tests/host/test_backup.py::test_documented_commands_work_as_written"),
    ("docs/backup.md", "The drill", "sudo omero-restore --drill"):
        Claim(test="tests/host/test_backup.py::test_documented_commands_work_as_written"),
    ("docs/https.md", "ACME (Let's Encrypt, or a campus ACME server)",
     "apt install certbot            # dnf install certbot (EPEL) on Rocky 9"):
        Claim(reason="certbot needs an ACME server that reaches the host by its public name over the "
                     "internet; this machine has neither (no ACME test server is packaged for Debian 12). "
                     "The webroot and the hook it names are checked by tests/plan/test_https.py and "
                     "tests/unit/test_tls_hook.py"),
    ("docs/testing.md", "Tests: what they check and how long they take",
     'scripts/test -m plan                       # seconds, no root'):
        Claim(reason="the suite's own entry points: each CI run types one of them, and a test running the "
                     "suite it belongs to would recurse (and reinstall the shared venv)"),
    ("docs/upgrade.md", "OMERO.web and its apps", "# on your machine, in the deploy's directory"):
        Claim(test="tests/host/test_upgrade.py::test_pinned_releases_installed",
              substituted="inventory.py: a link to the test's inventory in the deploy's directory"),
    (*MOVE, "# on the old host"):
        Claim(test="tests/host/test_upgrade.py::test_new_host_runs_debian_13_and_postgresql_17"),
    (*MOVE, "# on your machine, in the deploy's directory"):
        Claim(test="tests/host/test_upgrade.py::test_new_host_runs_debian_13_and_postgresql_17",
              substituted="inventory.py: a link to the test's inventory in the deploy's directory"),
    (*MOVE, "# on the new host"):
        Claim(test="tests/host/test_upgrade.py::test_new_host_runs_debian_13_and_postgresql_17"),
    ("README.md", "Database standby and take-over", "sudo omero-database-replication"):
        Claim(test="tests/host/test_farm_standby.py::test_lag_visible_on_both_hosts"),
    ("README.md", "Database standby and take-over", "sudo omero-database-replication promote"):
        Claim(test="tests/host/test_farm_standby.py::test_take_over"),
}
