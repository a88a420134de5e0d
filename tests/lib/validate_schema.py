#!/usr/bin/python3
"""Validate Kafka message values against the JSON Schemas of schemas/.

An independent check of the relay's messages: Python's jsonschema (Debian
package python3-jsonschema), nothing of ours but the schema files.

Usage: validate_schema.py SCHEMA_DIR < lines

Each input line is "<schema name>\\t<message value>", e.g.
"task-events.v1\\t{...}"; the schema is SCHEMA_DIR/<schema name>.json.
Every schema file in SCHEMA_DIR is first checked against its metaschema
(draft 2020-12), and its $id must end with its file name.  For each input
line one output line: "ok", or "invalid: <path>: <message>" naming the
first error (by the deepest path), or "invalid: not JSON: ...".  Exit
status 0 when every line was valid, 1 when one was not, 2 on a usage or
schema error.
"""

import json
import os
import sys

from jsonschema import Draft202012Validator


def load_schemas(directory):
    validators = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            schema = json.load(f)
        Draft202012Validator.check_schema(schema)
        if not schema.get("$id", "").endswith("/" + name):
            raise ValueError("%s: $id %r does not end with the file name" % (name, schema.get("$id")))
        validators[name[:-len(".json")]] = Draft202012Validator(schema)
    return validators


def first_error(validator, value):
    errors = list(validator.iter_errors(value))
    if not errors:
        return None
    # the most specific one: longest path, then the order found
    best = max(errors, key=lambda e: len(list(e.absolute_path)))
    for sub in best.context or []:      # oneOf/anyOf: say which branch failed how
        if len(list(sub.absolute_path)) >= len(list(best.absolute_path)):
            best = sub
    path = "/" + "/".join(str(p) for p in best.absolute_path)
    return "%s: %s" % (path, best.message)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        validators = load_schemas(sys.argv[1])
    except Exception as e:  # a broken schema file is a test failure of its own
        print("schema error: %s" % e, file=sys.stderr)
        return 2
    status = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        name, _, text = line.partition("\t")
        if name not in validators:
            print("invalid: no schema %r" % name)
            status = 1
            continue
        try:
            value = json.loads(text)
        except ValueError as e:
            print("invalid: not JSON: %s" % e)
            status = 1
            continue
        err = first_error(validators[name], value)
        if err is None:
            print("ok")
        else:
            print("invalid: %s" % err.replace("\n", " "))
            status = 1
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
