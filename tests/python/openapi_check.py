"""Checks a Zombi API against its own OpenAPI document with schemathesis: generated
requests, valid and invalid (`--mode all`), to every operation; no 5xx, every answer's
status, content type and body as documented, and requests that break the schema refused
with a 4xx.

Usage: openapi_check.py SPEC_PATH BASE_URL SECONDS [TOKEN]
"""

import os
import subprocess
import sys

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
])


def main():
    spec, url, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
    token = sys.argv[4] if len(sys.argv) > 4 else None
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "run",
        spec,
        "--url",
        url,
        "--checks",
        CHECKS,
        "--mode",
        "all",
        "--max-time",
        seconds,
        "--workers",
        "1",
        "--seed",
        "20261207",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    sys.exit(subprocess.run(cmd).returncode)


if __name__ == "__main__":
    main()
