#!/usr/bin/env python3
"""A CycloneDX 1.5 SBOM of one binary: `sbom.py TARGET BINARY_NAME OUT` reads `cargo metadata` for
that target and lists every crate compiled into the binary (normal dependencies reachable from
this crate on that platform; build scripts and dev-dependencies are not in it), with its version,
licence, package URL and the SHA-256 crates.io publishes (from Cargo.lock). Deterministic: the
serial number comes from the content and the time from SOURCE_DATE_EPOCH."""
import hashlib, json, os, subprocess, sys, time, uuid

def main():
    target, binary, out = sys.argv[1:4]
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", target]))
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    def linked(dep):
        # A normal dependency, and not a procedural macro (which runs in the compiler only).
        macro = any("proc-macro" in t["kind"] for t in packages[dep["pkg"]]["targets"])
        return any(k["kind"] is None for k in dep["dep_kinds"]) and not macro
    seen, stack = set(), [root]
    while stack:
        node = nodes[stack.pop()]
        for dep in node["deps"]:
            if linked(dep) and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                stack.append(dep["pkg"])
    checksums = {}
    lock = open(os.path.join(os.path.dirname(meta["workspace_root"] + "/"), "Cargo.lock")).read()
    for block in lock.split("[[package]]")[1:]:
        fields = dict(line.split(" = ", 1) for line in block.strip().splitlines() if " = " in line)
        if "checksum" in fields:
            checksums[(fields["name"].strip('"'), fields["version"].strip('"'))] = fields["checksum"].strip('"')
    def component(p):
        purl = "pkg:cargo/%s@%s" % (p["name"], p["version"])
        c = {"type": "library" if p["id"] != root else "application", "bom-ref": purl, "name": p["name"],
             "version": p["version"], "purl": purl}
        if p.get("license"):
            c["licenses"] = [{"expression": p["license"]}]
        sha = checksums.get((p["name"], p["version"]))
        if sha:
            c["hashes"] = [{"alg": "SHA-256", "content": sha}]
        if p.get("description"):
            c["description"] = p["description"].strip()
        return c
    me = packages[root]
    components = sorted((component(packages[i]) for i in seen), key=lambda c: (c["name"], c["version"]))
    depends = []
    for i in sorted([root] + sorted(seen)):
        refs = sorted({"pkg:cargo/%s@%s" % (packages[d["pkg"]]["name"], packages[d["pkg"]]["version"])
                       for d in nodes[i]["deps"] if linked(d)})
        depends.append({"ref": "pkg:cargo/%s@%s" % (packages[i]["name"], packages[i]["version"]), "dependsOn": refs})
    bom = {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "0")))),
            "tools": {"components": [{"type": "application", "name": "runbook dist/sbom.py"}]},
            "component": dict(component(me), **{"name": binary, "properties": [{"name": "target", "value": target}]}),
        },
        "components": components,
        "dependencies": depends,
    }
    body = json.dumps(bom, indent=2, sort_keys=True)
    bom["serialNumber"] = "urn:uuid:%s" % uuid.UUID(bytes=hashlib.sha256(body.encode()).digest()[:16], version=5)
    with open(out, "w") as f:
        f.write(json.dumps(bom, indent=2, sort_keys=True) + "\n")

if __name__ == "__main__":
    main()
