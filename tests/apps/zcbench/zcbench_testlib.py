"""Shared pieces of zcbench's tests: a JSON Schema check (the subset of draft
2020-12 that zcbench_schema.json uses), and a unittest runner that writes the
JUnit XML Bazel asks for (XML_OUTPUT_FILE), so `make test` counts each case.
Standard library only."""

import os
import re
import subprocess
import sys
import unittest

import junit_unittest

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}

_KNOWN = {"$schema", "$id", "$defs", "title", "description", "type", "required", "properties",
          "additionalProperties", "items", "enum", "const", "minimum", "minItems", "pattern", "$ref"}


def schema_errors(instance, schema, root=None, where="$"):
    """Returns a list of 'where: what' strings; empty when `instance` matches."""
    root = root if root is not None else schema
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"{where}: schema keyword(s) this checker does not know: {sorted(unknown)}")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"{where}: unsupported $ref {ref}")
        return schema_errors(instance, root["$defs"][ref[len("#/$defs/"):]], root, where)
    errors = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            return [f"{where}: {instance!r} is not of type {types}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{where}: {instance!r} != {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{where}: {instance!r} not in {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](instance) and instance < schema["minimum"]:
        errors.append(f"{where}: {instance} < {schema['minimum']}")
    if "pattern" in schema and isinstance(instance, str) and not re.search(schema["pattern"], instance):
        errors.append(f"{where}: {instance!r} does not match {schema['pattern']}")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{where}: missing {key!r}")
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key in props:
                errors += schema_errors(value, props[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {key!r}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                errors += schema_errors(item, schema["items"], root, f"{where}[{i}]")
    return errors


def run_zcbench(binary, *args, timeout=60):
    """Runs zcbench; returns the CompletedProcess (text mode)."""
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def main(suite_name):
    """unittest.main, plus JUnit XML in $XML_OUTPUT_FILE when Bazel sets it."""
    junit_unittest.run_suite(suite_name)
