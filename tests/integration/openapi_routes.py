#!/usr/bin/env python3
# openapi_routes.py DOC ROUTES: checks that DOC is a well-formed OpenAPI 3
# document (paths, methods, responses, resolvable $refs) documenting
# exactly the routes in ROUTES ("METHOD PATH" lines, what `rackvm ctl
# routes` and `rackvm ctl --host routes` print); prints "routes N".
import re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
server = {tuple(l.split()) for l in open(sys.argv[2]) if l.strip()}
assert re.match(r"^3\.\d+\.\d+$", str(doc["openapi"])), "openapi: 3.x.y"
assert doc["info"]["title"] and doc["info"]["version"], "info"
# a path's "{name}" parameters must be declared
for path, item in doc["paths"].items():
    for p in re.findall(r"{(\w+)}", path):
        declared = [x for x in item.get("parameters", []) if x.get("in") == "path"]
        assert any(x["name"] == p and x.get("required") for x in declared), (path, p)
methods = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
documented = set()
for path, item in doc["paths"].items():
    assert path.startswith("/"), path
    for m, op in item.items():
        if m in ("parameters", "summary", "description", "servers"):
            continue    # a path item's fields shared by its operations
        assert m in methods, (path, m)
        assert op.get("responses"), (path, m, "no responses")
        assert all(re.match(r"^[1-5]\d\d$", str(c)) for c in op["responses"]), (path, m)
        documented.add((m.upper(), path))
def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)
for ref in refs(doc):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part]
assert documented == server, ("only in the document", documented - server,
                              "only in the server", server - documented)
print("routes", len(server))
