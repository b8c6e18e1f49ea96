"""Failure signatures: the same failure in two jobs gets one, two failures get two."""

from __future__ import annotations

import pytest

from multivac.classify import classify_log, load_catalog
from multivac.signature import normalise, signature

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            "OSError: [Errno 28] No space left on device: '/tmp/pip-build-a8x2k/numpy'",
            "OSError: [Errno 28] No space left on device: '/tmp/pip-build-zz91q/numpy'",
        ),
        (
            "/home/runner/work/app/app/src/main.c:12:5: error: use of undeclared identifier 'x'",
            "D:\\a\\app\\app\\src/main.c:40:9: error: use of undeclared identifier 'x'",
        ),
        (
            "[ERROR] /Users/runner/work/app/app/src/App.java:[3,52] cannot find symbol",
            "[ERROR] /home/runner/work/app/app/src/App.java:[7,11] cannot find symbol",
        ),
        (
            "curl: (28) Operation timed out after 30001 milliseconds with 0 bytes received",
            "curl: (28) Operation timed out after 30004 milliseconds with 512 bytes received",
        ),
        (
            "--- FAIL: TestParse (0.00s)",
            "--- FAIL: TestParse (1.52s)",
        ),
        (
            "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010",
            "==17==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020000000f0",
        ),
        (
            "2026-10-01 12:00:00,123 ERROR Connection refused to 10.1.0.7:5432 (pid 4242)",
            "2026-11-02 08:13:59,999 ERROR Connection refused to 10.1.0.9:5433 (pid 77)",
        ),
        (
            "fatal: unable to access 'https://github.com/acme/app/?token=abc': Could not resolve",
            "fatal: unable to access 'https://github.com/acme/app/?token=xyz': Could not resolve",
        ),
        (
            "Error: The operation was canceled after 6h0m0s at commit 4a1714faf0c7",
            "Error: The operation was canceled after 5h12m3s at commit ed16c1e5780c",
        ),
        (
            "panic: test timed out after 10m0s",
            "panic: test timed out after 5m0s",
        ),
        (
            "##[error]Process completed with exit code 2.",
            "Process completed with exit code 1.",
        ),
    ],
)
def test_the_same_failure_gets_one_signature(one: str, other: str) -> None:
    assert signature(one) == signature(other)
    assert len(signature(one)[0]) == 12


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            "ModuleNotFoundError: No module named 'yaml'",
            "ModuleNotFoundError: No module named 'psycopg'",
        ),
        ("--- FAIL: TestParse (0.00s)", "--- FAIL: TestRender (0.00s)"),
        (
            "src/main.c:12:5: error: use of undeclared identifier 'x'",
            "src/util.c:12:5: error: use of undeclared identifier 'x'",
        ),
        ("error[E0425]: cannot find value `x`", "error[E0308]: mismatched types"),
        (
            "FAILED tests/test_api.py::test_login - AssertionError",
            "FAILED tests/test_api.py::test_logout - AssertionError",
        ),
    ],
)
def test_two_failures_of_one_type_get_two(one: str, other: str) -> None:
    assert signature(one)[0] != signature(other)[0]


def test_normalised_text_keeps_the_message_shape() -> None:
    text = normalise(
        "/home/runner/work/app/app/pkg/x.go:12:2: undefined: foo (took 1.2s, pid 4242)"
    )
    assert text == "<ws>/pkg/x.go:<n>:<n>: undefined: foo (took <dur>, pid <n>)"


def test_no_evidence_no_signature() -> None:
    assert signature("   ") == ("", "")


def test_classification_carries_the_signature() -> None:
    first = b"##[group]Run pytest\nE   OSError: [Errno 28] No space left on device: '/tmp/a1'\n"
    second = b"##[group]Run pytest\nE   OSError: [Errno 28] No space left on device: '/tmp/b2'\n"
    marker = b"##[error]Process completed with exit code 1.\n"
    one = classify_log([first + marker], CATALOG)
    other = classify_log([second + marker], CATALOG)
    assert one is not None and other is not None
    assert one.signature and one.signature == other.signature
