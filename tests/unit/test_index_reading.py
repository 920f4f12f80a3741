from __future__ import annotations

import socket

import pytest

from toolkit import matrix, publish
from toolkit.errors import PublishError, ToolkitError


@pytest.mark.parametrize("filename, expected", [
    ("saxpy-0.1.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl", ["--platform=manylinux_2_34_x86_64",
                                                                "--python-version=3.10"]),
    ("ext-1.0-cp313-cp313-manylinux_2_28_aarch64.whl", ["--platform=manylinux_2_28_aarch64",
                                                        "--python-version=3.13"]),
    ("pure-1.0-py3-none-any.whl", ["--platform=any", "--python-version=3"]),
])
def test_client_check_asks_for_the_wheels_own_python(filename, expected):
    assert publish.download_target(filename) == expected


@pytest.mark.parametrize("publish_table, read_url", [
    ("", "http://127.0.0.1:8081/simple/"),
    ('index-url = "https://upload.pypi.org/legacy/"', "https://pypi.org/simple/"),
    ('index-url = "https://art.example.com/api/pypi/up/"\nsimple-url = "https://art.example.com/api/pypi/read/simple"',
     "https://art.example.com/api/pypi/read/simple"),
])
def test_the_read_side_of_the_index_is_its_own_setting(publish_table, read_url, small_matrix, write_matrix):
    unlabelled = small_matrix.replace('local-version = "cu130"\n', "")  # PyPI takes no local labels
    m = matrix.load_matrix(write_matrix(unlabelled + f"[publish]\n{publish_table}\n"))
    assert m.publish.read_url == read_url


def test_an_unreachable_index_is_a_publish_error_after_retries():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/simple/"
    with pytest.raises(ToolkitError) as exc:
        publish._index_files(url, "saxpy")
    assert exc.value.exit_code == PublishError.exit_code and url in str(exc.value)
