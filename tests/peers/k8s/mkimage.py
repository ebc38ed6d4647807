#!/usr/bin/env python3
"""Write a one-layer container image as a docker-archive tar (what `docker save`
writes and `ctr images import` reads), from a root filesystem directory.

    mkimage.py --rootfs DIR --name ferry.local/x:tag --out x.tar \
        [--entrypoint '["/bin/x"]'] [--cmd '[...]'] [--user 65532:65532] [--env K=V ...]

The archive holds manifest.json, the image config (<sha256>.json) and the layer
(<sha256>/layer.tar). The layer is reproducible: entries sorted, mtime 0;
numeric owners, file modes and symlinks as in DIR. Prints the image id.
Python standard library only.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile


def layer_tar(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in dirnames + sorted(filenames):
                paths.append(os.path.join(dirpath, name))
        for path in sorted(paths):
            rel = os.path.relpath(path, rootfs)
            info = tar.gettarinfo(path, arcname=rel)
            info.uname = info.gname = ""  # numeric owners, as in DIR
            info.mtime = 0
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--name", required=True, help="image reference, e.g. ferry.local/ferry-mirror:dev")
    ap.add_argument("--out", required=True)
    ap.add_argument("--entrypoint", default=None, help="JSON list")
    ap.add_argument("--cmd", default=None, help="JSON list")
    ap.add_argument("--user", default="")
    ap.add_argument("--workdir", default="/")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--label", action="append", default=[])
    args = ap.parse_args()

    if not os.path.isdir(args.rootfs):
        sys.exit(f"mkimage.py: {args.rootfs} is not a directory")
    layer = layer_tar(args.rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()

    env = ["PATH=/usr/local/bin:/usr/bin:/bin"] + args.env
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": env,
            "WorkingDir": args.workdir,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/peers/k8s/mkimage.py"}],
    }
    if args.entrypoint:
        config["config"]["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config["config"]["Cmd"] = json.loads(args.cmd)
    if args.user:
        config["config"]["User"] = args.user
    if args.label:
        config["config"]["Labels"] = dict(kv.split("=", 1) for kv in args.label)
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_id = hashlib.sha256(config_bytes).hexdigest()

    layer_dir = diff_id.split(":", 1)[1]
    manifest = [{
        "Config": f"{config_id}.json",
        "RepoTags": [args.name],
        "Layers": [f"{layer_dir}/layer.tar"],
    }]
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()

    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as out:
        def add(name, data, mode=0o644):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            out.addfile(info, io.BytesIO(data))

        dir_info = tarfile.TarInfo(layer_dir)
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o755
        out.addfile(dir_info)
        add(f"{layer_dir}/layer.tar", layer)
        add(f"{config_id}.json", config_bytes)
        add("manifest.json", manifest_bytes)
    os.replace(tmp, args.out)
    print(f"sha256:{config_id}")


if __name__ == "__main__":
    main()
