"""What every command pays before it does anything: the CLI's imports, in a new interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_the_cli_starts_without_the_sbom_schema_validator(request):
    # jsonschema compiles its format grammars on import (about 1.5 s here): only writing an SBOM pays for it.
    probe = ("import sys, toolkit.cli; "
             "print(sorted(m for m in ('jsonschema', 'cyclonedx.validation') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=request.config.rootpath, capture_output=True,
                          text=True, check=True)
    assert proc.stdout.strip() == "[]"
