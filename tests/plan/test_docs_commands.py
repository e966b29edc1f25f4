"""Every command block of README.md and docs/*.md is run by a named test, as written, or
has a stated reason it cannot run here (tests/docs_commands.py's CLAIMS)."""

import ast
import re

import pytest

from tests.docs_commands import CLAIMS, ROOT, blocks

pytestmark = pytest.mark.plan

PLACEHOLDER = re.compile(r"<[a-z][a-z-]*>")


def test_every_block_is_claimed():
    unclaimed = [f"{block.path}:{block.line} ({block.section}): {block.first}"
                 for block in blocks() if block.key not in CLAIMS]
    assert not unclaimed, "blocks no test runs (add the test, or the reason, to tests/docs_commands.py):\n" + \
        "\n".join(unclaimed)


def test_no_claim_outlives_its_block():
    assert set(CLAIMS) - {block.key for block in blocks()} == set()


def test_the_documents_have_blocks_in_list_items_too():
    # The move's blocks sit in a numbered list, indented: found, and their indentation gone.
    moved = [block for block in blocks() if block.section == "Moving to a new host (and a newer OS)"]
    assert [block.first for block in moved] == \
        ["# on the old host", "# on your machine, in the deploy's directory", "# on the new host"]
    assert all(not line.startswith(" ") for block in moved for line in block.text.splitlines())


@pytest.mark.parametrize("key", sorted(CLAIMS), ids=lambda key: f"{key[0]}:{key[2][:30]}")
def test_a_claim_names_a_test_that_reads_the_document_or_a_reason(key):
    claim = CLAIMS[key]
    assert bool(claim.test) != bool(claim.reason), "a test or a reason, not both"
    text = next(block.text for block in blocks() if block.key == key)
    if claim.reason:
        assert not claim.substituted
        return
    module, _, name = claim.test.partition("::")
    source = (ROOT / module).read_text()
    defined = {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
    assert name in defined, f"{module} has no {name}"
    # The module takes the commands from the document, not from a copy of its own.
    assert "docs_commands" in source or key[0].removeprefix("docs/") in source
    assert all(placeholder in claim.substituted for placeholder in PLACEHOLDER.findall(text)), \
        "say what the test puts in place of each placeholder"
