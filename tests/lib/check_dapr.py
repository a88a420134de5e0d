#!/usr/bin/python3
"""check_dapr.py: check deploy/dapr against Dapr's own reference for pubsub.kafka.

Usage: check_dapr.py DAPR_DIR REFERENCE_DIR SCHEMAS_DIR STREAM=TOPIC...

DAPR_DIR holds our component and subscription files (any *.yaml below it);
REFERENCE_DIR Dapr's metadata.yaml of the component and its JSON Schema
(deploy/dapr/reference); SCHEMAS_DIR our message schemas; STREAM=TOPIC the
topic map of a fresh install (todo_kafka.topics).  Prints one line per
check, "ok<TAB>what" or "not ok<TAB>what<TAB>why", for tests/600_dapr.pl.

The checks:
  - Dapr's metadata.yaml is valid against its own schema (the reference is
    what it claims to be);
  - every metadata name of each pubsub.kafka component is a field Dapr lists
    (top-level or of an authentication profile): Dapr ignores unknown names
    silently, so a typo (or the spec's "authRequired"/"tlsEnabled") would
    quietly turn a setting off;
  - a field Dapr marks sensitive is never given inline ("value"), only via
    secretKeyRef, and a component using secretKeyRef names its secret store;
  - values are among the field's allowedValues, and the authType's profile
    has all its required fields;
  - the production component uses SASL/SCRAM-SHA-512 with TLS verified, the
    development one plaintext without authentication;
  - one dapr.io/v2alpha1 Subscription per topic a Dapr app consumes (every
    stream but dead_letter, whose messages are the dlq tool's business), on
    kafka-pubsub, and each routing rule matches a CloudEvents type the
    topic's schema names.
"""
import glob
import json
import os
import re
import sys

import jsonschema
import yaml

results = []


def check(ok, what, why=""):
    results.append((bool(ok), what, why))
    return ok


def load_reference(ref_dir):
    with open(os.path.join(ref_dir, "pubsub-kafka-metadata.yaml")) as f:
        meta = yaml.safe_load(f)
    with open(os.path.join(ref_dir, "component-metadata-schema.json")) as f:
        schema = json.load(f)
    try:
        jsonschema.validate(meta, schema)
        check(True, "Dapr's pubsub.kafka metadata.yaml is valid against its schema")
    except jsonschema.ValidationError as e:
        check(False, "Dapr's pubsub.kafka metadata.yaml is valid against its schema", e.message)
    fields = {}
    for m in meta.get("metadata", []):
        fields[m["name"]] = m
    profiles = {}
    for p in meta.get("authenticationProfiles", []) + meta.get("builtinAuthenticationProfiles", []):
        names = []
        auth_type = None
        for m in p.get("metadata", []):
            fields.setdefault(m["name"], m)
            # a field sensitive in any profile is sensitive
            if m.get("sensitive"):
                fields[m["name"]] = m
            if m["name"] == "authType":
                auth_type = (m.get("allowedValues") or [None])[0]
            else:
                names.append(m)
        if auth_type:
            profiles[auth_type] = names
    allowed_auth = sorted(profiles)
    fields["authType"] = {"name": "authType", "allowedValues": allowed_auth}
    return fields, profiles


def load_docs(dapr_dir):
    docs = []
    for path in sorted(glob.glob(os.path.join(dapr_dir, "**", "*.yaml"), recursive=True)):
        if os.sep + "reference" + os.sep in path:
            continue
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((os.path.relpath(path, dapr_dir), d))
    return docs


def check_component(rel, doc, fields, profiles):
    items = doc["spec"].get("metadata") or []
    by_name = {}
    for it in items:
        name = it.get("name")
        by_name[name] = it
        check(name in fields, f"{rel}: metadata \"{name}\" is a pubsub.kafka field",
              "Dapr's metadata.yaml does not list it; Dapr would ignore it silently")
        f = fields.get(name, {})
        inline = "value" in it
        check(inline != ("secretKeyRef" in it),
              f"{rel}: \"{name}\" has either a value or a secretKeyRef")
        if f.get("sensitive"):
            check(not inline and "secretKeyRef" in it,
                  f"{rel}: sensitive \"{name}\" comes from a secretKeyRef",
                  "Dapr marks it sensitive: use secretKeyRef, never an inline value")
        if inline and f.get("allowedValues"):
            check(str(it["value"]) in [str(v) for v in f["allowedValues"]],
                  f"{rel}: \"{name}\" = \"{it['value']}\" is an allowed value",
                  f"allowed: {f['allowedValues']}")
    if any("secretKeyRef" in it for it in items):
        check((doc.get("auth") or {}).get("secretStore"),
              f"{rel}: secretKeyRefs name their secret store (auth.secretStore)")
    auth = str(by_name.get("authType", {}).get("value", ""))
    if check(auth in profiles, f"{rel}: authType \"{auth}\" is an authentication profile"):
        for m in profiles[auth]:
            if m.get("required"):
                check(m["name"] in by_name,
                      f"{rel}: authType {auth} has its required \"{m['name']}\"")
    return by_name, auth


def value(by_name, name):
    it = by_name.get(name)
    return None if it is None or "value" not in it else str(it["value"]).lower()


def check_profiles(components):
    prod = [c for c in components if c[0].startswith("production" + os.sep)]
    dev = [c for c in components if c[0].startswith("development" + os.sep)]
    check(len(prod) == 1 and len(dev) == 1,
          "one kafka-pubsub component for production and one for development",
          f"found {[c[0] for c in components]}")
    for rel, doc, by_name, auth in prod:
        check(doc["metadata"]["name"] == "kafka-pubsub", f"{rel}: named kafka-pubsub")
        check(auth == "password" and value(by_name, "saslMechanism") == "sha-512",
              f"{rel}: SASL/SCRAM-SHA-512", f"authType {auth}, saslMechanism {value(by_name, 'saslMechanism')}")
        check(value(by_name, "disableTls") in (None, "false") and
              value(by_name, "skipVerify") in (None, "false"),
              f"{rel}: TLS on and the broker certificate verified")
    for rel, doc, by_name, auth in dev:
        check(doc["metadata"]["name"] == "kafka-pubsub", f"{rel}: named kafka-pubsub")
        check(auth == "none" and value(by_name, "disableTls") == "true",
              f"{rel}: plaintext without authentication (the devbroker)")


def schema_types(schemas_dir, stream):
    path = os.path.join(schemas_dir, stream.replace("_", "-") + ".v1.json")
    with open(path) as f:
        text = f.read()
    # every "type" const or enum member of the envelope's CloudEvents type
    types = set()

    def walk(o):
        if isinstance(o, dict):
            t = o.get("properties", {}).get("type") if isinstance(o.get("properties"), dict) else None
            if isinstance(t, dict):
                types.update(t.get("enum", []))
                if "const" in t:
                    types.add(t["const"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(json.loads(text))
    return types


def check_subscriptions(subs, topics, schemas_dir):
    wanted = {t: s for s, t in topics.items() if s != "dead_letter"}
    seen = {}
    for rel, doc in subs:
        spec = doc.get("spec", {})
        topic = spec.get("topic")
        check(doc.get("apiVersion") == "dapr.io/v2alpha1", f"{rel}: apiVersion dapr.io/v2alpha1")
        check(spec.get("pubsubname") == "kafka-pubsub", f"{rel}: on pubsub kafka-pubsub")
        check(topic in wanted, f"{rel}: topic \"{topic}\" is one a Dapr app consumes",
              f"expected one of {sorted(wanted)}")
        check("rawPayload" not in (spec.get("metadata") or {}),
              f"{rel}: no rawPayload (our messages are CloudEvents already)")
        seen.setdefault(topic, []).append(rel)
        routes = spec.get("routes") or {}
        check(routes.get("default"), f"{rel}: has a default route")
        if topic not in wanted:
            continue
        types = schema_types(schemas_dir, wanted[topic])
        for rule in routes.get("rules") or []:
            m = re.fullmatch(r'event\.type == "([^"]+)"', rule.get("match", ""))
            check(m and m.group(1) in types,
                  f"{rel}: rule \"{rule.get('match')}\" matches a type of {topic}",
                  f"the schema names {sorted(types)}")
    for topic in sorted(wanted):
        check(len(seen.get(topic, [])) == 1, f"one Subscription for {topic}",
              f"found {seen.get(topic, [])}")


def main(argv):
    if len(argv) < 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    dapr_dir, ref_dir, schemas_dir = argv[1:4]
    topics = dict(a.split("=", 1) for a in argv[4:])
    fields, profiles = load_reference(ref_dir)
    components, subs = [], []
    for rel, doc in load_docs(dapr_dir):
        kind = doc.get("kind")
        if kind == "Component" and doc.get("spec", {}).get("type") == "pubsub.kafka":
            by_name, auth = check_component(rel, doc, fields, profiles)
            components.append((rel, doc, by_name, auth))
        elif kind == "Subscription":
            subs.append((rel, doc))
    check_profiles(components)
    check_subscriptions(subs, topics, schemas_dir)
    for ok, what, why in results:
        print(("ok\t" if ok else "not ok\t") + what + ("" if ok or not why else "\t" + why))
    return 0 if all(r[0] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
