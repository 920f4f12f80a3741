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


@pytest.mark.parametrize("index_url, simple_url, read_url", [
    ("http://127.0.0.1:8081/", "", "http://127.0.0.1:8081/simple/"),
    ("https://upload.pypi.org/legacy/", "", "https://pypi.org/simple/"),
    ("https://art.example.com/api/pypi/up/", "https://art.example.com/api/pypi/read/simple",
     "https://art.example.com/api/pypi/read/simple"),
])
def test_the_read_side_of_the_index_is_its_own_setting(index_url, simple_url, read_url):
    assert matrix.Publish(index_url=index_url, simple_url=simple_url).read_url == read_url


def test_simple_url_is_read_from_the_matrix(small_matrix, write_matrix):
    m = matrix.load_matrix(write_matrix(small_matrix + '[publish]\nsimple-url = "https://idx.example.com/simple/"\n'))
    assert m.publish.read_url == "https://idx.example.com/simple/"


def test_an_unreachable_index_is_a_publish_error_after_retries():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/simple/"
    with pytest.raises(ToolkitError) as exc:
        publish._index_files(url, "saxpy")
    assert exc.value.exit_code == PublishError.exit_code and url in str(exc.value)
