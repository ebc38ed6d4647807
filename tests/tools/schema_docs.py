#!/usr/bin/env python3
"""Generates the reference sections of docs/ from the provider's own schema.

    tests/tools/schema_docs.py            rewrite the generated sections (what `make docs` runs)
    tests/tools/schema_docs.py --check    exit 1 if any page is stale or missing (`make docs-check`)
    tests/tools/schema_docs.py --schema-json FILE   use a saved `providers schema -json` output

The schema comes from the real CLI, not from reading Rust: a temporary configuration that
requires `ferry/ferry` is initialised with .peers/bin/terraform against the same filesystem
mirror the end-to-end tests use (tests/tools/cli-config.sh), then `terraform providers schema
-json` is read. Build the provider first (cargo build -p terraform-provider-ferry); `make docs`
does that.

Each page holds its generated part between two marker lines:

    <!-- schema:begin -->
    ...generated: ### Required / ### Optional / ### Read-Only / ### Nested Schema for `x`...
    <!-- schema:end -->

Everything outside the markers is hand-written and never touched. Descriptions come from the
schema, so a wording change belongs in the provider's schema, not in the page.

Pages, one per schema entry:
    provider                docs/index.md
    resource ferry_<x>      docs/resources/<x>.md
    data source ferry_<x>   docs/data-sources/<x>.md

Adding a resource or data source: copy an existing page (e.g. docs/resources/topic.md) to the
path above, keep its front matter shape, write the prose and examples, leave a `## Schema`
heading followed by an empty marker pair, and run `make docs`. Until the page exists, both
`make docs` and `make docs-check` fail naming the missing file. A page whose resource is no
longer in the schema fails the same way.
"""

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
BEGIN = "<!-- schema:begin -->"
END = "<!-- schema:end -->"
PREFIX = "ferry_"
CONFIG = 'terraform {\n  required_providers {\n    ferry = { source = "ferry/ferry" }\n  }\n}\n'


class DocsError(Exception):
    pass


# ---------------------------------------------------------------- reading the schema


def read_schema(terraform, provider):
    """`providers schema -json` for ferry/ferry, through the e2e tests' filesystem mirror."""
    if not Path(terraform).is_file():
        raise DocsError(f"{terraform} is missing: run `make install-peers` (or pass --terraform)")
    with tempfile.TemporaryDirectory(prefix="ferry-docs-") as tmp:
        tmp = Path(tmp)
        made = subprocess.run(
            [str(REPO / "tests" / "tools" / "cli-config.sh"), str(tmp / "cli"), str(provider)],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise DocsError(made.stderr.strip() or "cli-config.sh failed")
        work = tmp / "work"
        work.mkdir()
        (work / "main.tf").write_text(CONFIG)
        # Only our mirror and our data dir: a global TF_CLI_CONFIG_FILE or TF_LOG must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
        env.update(
            TF_CLI_CONFIG_FILE=made.stdout.strip().splitlines()[-1],
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
            TF_DATA_DIR=str(work / ".terraform"),
        )

        def run(*args):
            proc = subprocess.run(
                [str(terraform), *args], cwd=work, env=env, capture_output=True, text=True,
                stdin=subprocess.DEVNULL, timeout=300,
            )
            if proc.returncode != 0:
                raise DocsError(f"terraform {' '.join(args)} exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
            return proc.stdout

        run("init", "-no-color", "-input=false")
        return json.loads(run("providers", "schema", "-json"))


def ferry_schema(doc):
    for address, schema in doc.get("provider_schemas", {}).items():
        if address.endswith("/ferry/ferry"):
            return schema
    raise DocsError(f"no ferry/ferry provider in the schema output (found {sorted(doc.get('provider_schemas', {}))})")


# ---------------------------------------------------------------- rendering


def type_name(ty):
    """A cty type from the JSON schema, the way the registry writes it: `List of String`."""
    if isinstance(ty, str):
        return {"string": "String", "number": "Number", "bool": "Bool", "dynamic": "Dynamic"}.get(ty, ty.title())
    kind, inner = ty[0], ty[1]
    if kind == "object":
        return "Object"
    if kind == "tuple":
        return "Tuple"
    return f"{kind.title()} of {type_name(inner)}"


def object_attributes(ty):
    """The attributes of an object type, also inside a list/set/map of objects; else None."""
    while isinstance(ty, list):
        if ty[0] == "object":
            return ty[1]
        if ty[0] not in ("list", "set", "map"):
            return None
        ty = ty[1]
    return None


def anchor(kind, path):
    return f"nested{kind}--" + "--".join(path)


def description(text):
    # A multi-line description stays inside its list item.
    return "\n  ".join(line.rstrip() for line in text.strip().splitlines())


def item(name, what, desc, link=None):
    line = f"- `{name}` ({what})"
    if desc:
        line += " " + description(desc)
    if link:
        line += f" (see [below for nested schema](#{link}))"
    return line


def section(attrs, blocks):
    """Splits a block's members into Required / Optional / Read-Only, alphabetically."""
    groups = {"Required": [], "Optional": [], "Read-Only": []}
    for name, a in attrs.items():
        group = "Required" if a.get("required") else "Optional" if a.get("optional") else "Read-Only"
        groups[group].append((name, "attribute", a))
    for name, b in blocks.items():
        group = "Required" if b.get("min_items", 0) > 0 else "Optional"
        groups[group].append((name, "block", b))
    for members in groups.values():
        members.sort(key=lambda m: m[0])
    return groups


def render_block(block, path, heading, out, pending):
    """Appends one block's lists to `out`; nested schemas go to `pending` (rendered after)."""
    groups = section(block.get("attributes", {}), block.get("block_types", {}))
    for title, members in groups.items():
        if not members:
            continue
        out.append(f"### {title}" if heading else f"{title}:")
        out.append("")
        for name, kind, m in members:
            here = path + [name]
            if kind == "block":
                what = {"single": "Block", "group": "Block", "list": "Block List", "set": "Block Set", "map": "Block Map"}[
                    m["nesting_mode"]
                ]
                if m.get("min_items"):
                    what += f", Min: {m['min_items']}"
                if m.get("max_items"):
                    what += f", Max: {m['max_items']}"
                inner = m["block"]
                if inner.get("deprecated"):
                    what += ", Deprecated"
                link = anchor("block", here)
                pending.append((link, here, inner))
                out.append(item(name, what, inner.get("description", ""), link))
                continue
            link = None
            if "nested_type" in m:
                nt = m["nested_type"]
                what = {"single": "Attributes", "list": "Attributes List", "set": "Attributes Set", "map": "Attributes Map"}[
                    nt["nesting_mode"]
                ]
                link = anchor("atttype", here)
                pending.append((link, here, {"attributes": nt["attributes"]}))
            else:
                what = type_name(m["type"])
                fields = object_attributes(m["type"])
                if fields:
                    # Fields of an object-typed attribute share the attribute's own mode.
                    mode = {"required": m.get("required"), "optional": m.get("optional"), "computed": m.get("computed")}
                    link = anchor("att", here)
                    pending.append((link, here, {"attributes": {k: dict(mode, type=t) for k, t in fields.items()}}))
            if m.get("sensitive"):
                what += ", Sensitive"
            if m.get("deprecated"):
                what += ", Deprecated"
            out.append(item(name, what, m.get("description", ""), link))
        out.append("")


def render(schema_block):
    """The text between the markers for one provider, resource or data source schema."""
    out, pending = [], []
    render_block(schema_block, [], True, out, pending)
    while pending:
        link, path, block = pending.pop(0)
        out.append(f'<a id="{link}"></a>')
        out.append(f"### Nested Schema for `{'.'.join(path)}`")
        out.append("")
        nested = []
        render_block(block, path, False, out, nested)
        # Depth first: a block's own nested schemas come right after it.
        pending[0:0] = nested
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- pages


def pages(schema):
    """{page path: (what, schema block)} for every schema entry."""
    want = {DOCS / "index.md": ("the provider block", schema["provider"]["block"])}
    for kind, folder, label in (
        ("resource_schemas", "resources", "resource"),
        ("data_source_schemas", "data-sources", "data source"),
    ):
        for name, s in sorted(schema.get(kind, {}).items()):
            if not name.startswith(PREFIX):
                raise DocsError(f"{label} {name} does not start with {PREFIX}")
            want[DOCS / folder / f"{name[len(PREFIX):]}.md"] = (f"{label} {name}", s["block"])
    return want


def splice(path, text, generated):
    """The page with its marked section replaced by `generated`."""
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)
    found = len(pattern.findall(text))
    if found != 1:
        raise DocsError(
            f"{rel(path)}: expected exactly one {BEGIN} ... {END} pair, found {found}; "
            "put one under the page's `## Schema` heading"
        )
    return pattern.sub(lambda _: f"{BEGIN}\n{generated}{END}", text)


def rel(path):
    return path.relative_to(REPO)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if any page is stale or missing; write nothing")
    ap.add_argument("--schema-json", type=Path, help="read this `providers schema -json` output instead of running the CLI")
    ap.add_argument(
        "--terraform",
        type=Path,
        default=Path(os.environ.get("FERRY_TERRAFORM", REPO / ".peers" / "bin" / "terraform")),
    )
    ap.add_argument(
        "--provider",
        type=Path,
        default=Path(os.environ.get("FERRY_PROVIDER_BIN", REPO / "target" / "debug" / "terraform-provider-ferry")),
    )
    args = ap.parse_args()
    try:
        doc = json.loads(args.schema_json.read_text()) if args.schema_json else read_schema(args.terraform, args.provider)
        want = pages(ferry_schema(doc))
        problems, stale, changed = [], [], []
        for path, (what, _) in want.items():
            if not path.exists():
                problems.append(
                    f"{rel(path)} is missing: the schema has {what}. Copy the layout of "
                    f"docs/resources/topic.md (front matter, prose, `## Schema` with the {BEGIN} / {END} "
                    "markers), then run `make docs`."
                )
        for folder in ("resources", "data-sources"):
            for path in sorted((DOCS / folder).glob("*.md")):
                if path not in want:
                    problems.append(f"{rel(path)} documents something the provider schema does not have")
        for path, (what, block) in want.items():
            if not path.exists():
                continue
            old = path.read_text()
            try:
                new = splice(path, old, render(block))
            except DocsError as e:
                problems.append(str(e))
                continue
            if new != old:
                stale.append(path)
                if args.check:
                    sys.stdout.writelines(
                        difflib.unified_diff(
                            old.splitlines(True), new.splitlines(True), f"a/{rel(path)}", f"b/{rel(path)}"
                        )
                    )
                else:
                    path.write_text(new)
                    changed.append(path)
        for p in problems:
            print(f"schema_docs: {p}", file=sys.stderr)
        if args.check and stale:
            names = ", ".join(str(rel(p)) for p in stale)
            print(f"schema_docs: stale generated sections in {names}: run `make docs` and commit", file=sys.stderr)
        for p in changed:
            print(f"schema_docs: rewrote {rel(p)}")
        return 1 if problems or (args.check and stale) else 0
    except DocsError as e:
        print(f"schema_docs: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
