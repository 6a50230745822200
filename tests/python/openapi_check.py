"""Checks a Zombi API against its own OpenAPI document with schemathesis: generated
requests, valid and invalid (`--mode all`), to every operation; no 5xx, every answer's
status, content type and body as documented, and requests that break the schema refused
with a 4xx.

With TABLES (comma-separated), it runs twice, each with half of the time: once as the
document stands (mostly names of tables that do not exist), once with every `table` path
parameter pinned to TABLES, so that the answers for tables that exist are checked too.

Usage: openapi_check.py SPEC_PATH BASE_URL SECONDS [TOKEN] [TABLES]
"""

import os
import json
import subprocess
import sys
import tempfile

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
])


def pinned(spec, tables):
    for item in spec["paths"].values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param.get("in") == "path" and param.get("name") == "table":
                    param["schema"] = {"type": "string", "enum": tables}
    return spec


def run(spec_path, url, seconds, token, checks=CHECKS, seed=20261207):
    """One schemathesis run of `spec_path` against `url` (also used by conformance.py)."""
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "run",
        spec_path,
        "--url",
        url,
        "--checks",
        checks,
        "--mode",
        "all",
        "--max-time",
        str(seconds),
        "--workers",
        "1",
        "--seed",
        str(seed),
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    # Schemathesis keeps a cache in its working directory: not in the checkout.
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(cmd, cwd=cwd).returncode


def main():
    spec, url, seconds = os.path.abspath(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    token = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    tables = sys.argv[5].split(",") if len(sys.argv) > 5 else None
    if not tables:
        sys.exit(run(spec, url, seconds, token))
    half = max(1, seconds // 2)
    status = run(spec, url, half, token)
    with open(spec) as f:
        doc = pinned(json.load(f), tables)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pinned.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        status |= run(path, url, half, token)
    sys.exit(status)


if __name__ == "__main__":
    main()
