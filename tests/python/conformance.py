"""Checks the node's Iceberg REST catalog against the Iceberg REST OpenAPI spec with
schemathesis: generated requests to every operation of the spec must get no 5xx and only
responses that conform to the spec's schemas.

Two adjustments to the spec, both about the spec rather than the server:
- its paths carry a server-chosen `{prefix}` segment; Zombi's catalog advertises none in
  `/v1/config`, so the spec is checked with that segment removed;
- a few error responses (the views' 404s) name the bare `ErrorModel` as their schema while
  their own examples, every other error response and the clients (Java's `ErrorHandlers`,
  PyIceberg) use the `IcebergErrorResponse` wrapper `{"error": ErrorModel}`: those are
  checked against the wrapper, as the server answers every error.

It runs twice, each with half of the time: once as the spec stands (names of every kind,
mostly of things that do not exist), once with the namespace and table parameters pinned
to the node's namespace and the given tables, so the answers for things that exist are
checked as thoroughly as the errors.

Usage: conformance.py NODE_URL SECONDS NAMESPACE TABLE[,TABLE…] [TOKEN]
"""

import os
import sys
import tempfile

import yaml

import openapi_check

# Fewer checks than openapi_check.CHECKS: no status-code conformance or negative-data
# rejection against the Apache spec.
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "iceberg-rest-catalog-open-api.yaml")


def without_prefix(spec):
    def keep(param):
        return not (param.get("$ref", "").endswith("/prefix") or param.get("name") == "prefix")

    paths = {}
    for path, item in spec["paths"].items():
        for key, value in item.items():
            if key == "parameters":
                item[key] = [p for p in value if keep(p)]
            elif isinstance(value, dict) and "parameters" in value:
                value["parameters"] = [p for p in value["parameters"] if keep(p)]
        paths[path.replace("/{prefix}", "")] = item
    spec["paths"] = paths
    return spec


def wrapped_errors(spec):
    bare = "#/components/schemas/ErrorModel"
    wrapper = "#/components/schemas/IcebergErrorResponse"
    for item in spec["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if not str(status).startswith(("4", "5")) or "content" not in response:
                    continue
                for media in response["content"].values():
                    if media.get("schema", {}).get("$ref") == bare:
                        media["schema"] = {"$ref": wrapper}
    return spec


def pinned(spec, namespace, tables):
    params = spec["components"]["parameters"]
    params["namespace"]["schema"] = {"type": "string", "enum": [namespace]}
    params["namespace"].pop("examples", None)
    params["table"]["schema"] = {"type": "string", "enum": tables}
    params["table"].pop("examples", None)
    return spec


def run(spec, url, seconds, token, tmp):
    path = os.path.join(tmp, "spec.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(spec, f)
    return openapi_check.run(path, url, seconds, token, checks=CHECKS, seed=20261202)


def main():
    url, seconds, namespace, tables = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    token = sys.argv[5] if len(sys.argv) > 5 else None
    with open(SPEC) as f:
        text = f.read()
    half = max(1, seconds // 2)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        spec = wrapped_errors(without_prefix(yaml.safe_load(text)))
        status |= run(spec, url, half, token, tmp)
        spec = pinned(wrapped_errors(without_prefix(yaml.safe_load(text))), namespace, tables.split(","))
        status |= run(spec, url, half, token, tmp)
    sys.exit(status)


if __name__ == "__main__":
    main()
