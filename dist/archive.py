#!/usr/bin/env python3
"""Reproducible archives: `archive.py zip|tar.gz OUT ROOT [PREFIX]` packs the tree ROOT into OUT
with members sorted, every time SOURCE_DATE_EPOCH, owner root, modes 0644 (0755 for folders and
executables), and no other metadata, so the same tree always gives the same bytes. PREFIX (tar)
puts every member under one top folder."""
import gzip, io, os, stat, sys, tarfile, time, zipfile

def members(root):
    out = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        if rel != ".":
            out.append((rel.replace(os.sep, "/"), None))
        for name in sorted(files):
            out.append((os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"), os.path.join(folder, name)))
    return sorted(out)

def executable(path):
    return bool(os.stat(path).st_mode & stat.S_IXUSR) or path.endswith(".exe")

def main():
    kind, out, root = sys.argv[1:4]
    prefix = sys.argv[4] + "/" if len(sys.argv) > 4 else ""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    if kind == "zip":
        # The zip format's clock starts in 1980 and has two-second steps.
        stamp = time.gmtime(max(epoch, 315532800))[:6]
        with zipfile.ZipFile(out, "w") as z:
            for name, path in members(root):
                info = zipfile.ZipInfo(prefix + name + ("/" if path is None else ""), date_time=stamp)
                info.create_system = 3
                if path is None:
                    info.external_attr = (0o40755 << 16) | 0x10
                    z.writestr(info, b"")
                else:
                    info.external_attr = (0o100755 if executable(path) else 0o100644) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(path, "rb") as f:
                        z.writestr(info, f.read(), compresslevel=9)
    elif kind == "tar.gz":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
            entries = [(prefix.rstrip("/"), None)] if prefix else []
            entries += [(prefix + n, p) for n, p in members(root)]
            for name, path in entries:
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "root", "root"
                if path is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    t.addfile(info)
                else:
                    info.mode = 0o755 if executable(path) else 0o644
                    info.size = os.path.getsize(path)
                    with open(path, "rb") as f:
                        t.addfile(info, f)
        with open(out, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
            g.write(buf.getvalue())
    else:
        sys.exit("usage: archive.py zip|tar.gz OUT ROOT [PREFIX]")

if __name__ == "__main__":
    main()
