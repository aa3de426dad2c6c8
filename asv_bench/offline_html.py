"""Make the published asv dashboard work without access to the CDNs.

asv's pages load jQuery, flot, bootstrap and a few plugins from CDNs, so on
a machine without internet access they show only an error.  This fetches
the same libraries from the npm registry (`npm pack`), copies them into
<html>/vendor/ and points the pages at them.  Run after `asv publish`:

    python offline_html.py [html]

Needs npm (it comes with Node.js; tested with Node.js 20.20 and npm 11.19)
and access to the npm registry, or a mirror of it set in npm's config, on
the machine that runs it; the pages it writes need neither.
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

# CDN address -> (npm package, file inside the package)
FILES = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery@3.3.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js":
        ("flot@0.8.3", "jquery.flot.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js":
        ("flot@0.8.3", "jquery.flot.time.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        ("flot@0.8.3", "jquery.flot.selection.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        ("flot@0.8.3", "jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        ("flot-orderbars@1.0.0", "js/jquery.flot.orderBars.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        ("stupid-table-plugin@1.1.3", "stupidtable.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js":
        ("blueimp-md5@2.19.0", "js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js":
        ("bootstrap@3.1.1", "dist/js/bootstrap.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        ("bootstrap@3.1.1", "dist/css/bootstrap.min.css"),
}


def main(html="html"):
    html = pathlib.Path(html)
    if not html.is_dir():
        sys.exit(f"offline_html.py: no {html}/ directory; run `asv publish` first")
    if shutil.which("npm") is None:
        sys.exit("offline_html.py: npm not found on PATH; it fetches the pages' "
                 "JavaScript and CSS with `npm pack`, so install Node.js (which "
                 "includes npm) and rerun")
    vendor = html / "vendor"
    vendor.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = {}
        for package in sorted({p for p, _ in FILES.values()}):
            out = subprocess.run(["npm", "pack", "-q", package], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.split()[-1]
            dest = pathlib.Path(tmp, package.replace("@", "-"))
            with tarfile.open(pathlib.Path(tmp, out)) as tar:
                tar.extractall(dest, filter="data")
            unpacked[package] = dest / "package"
        local = {}
        for url, (package, path) in FILES.items():
            name = pathlib.Path(path).name
            shutil.copy(unpacked[package] / path, vendor / name)
            local[url] = f"vendor/{name}"
    # the npm files are not byte-identical to the CDN's (flot unminified,
    # stupidtable 1.1.3 for 1.0.1), so the pages' integrity hashes go too
    pattern = re.compile(r'(src|href)="(%s)"([^>]*?) integrity="[^"]*"'
                         % "|".join(map(re.escape, local)))
    for page in html.glob("*.html"):
        text = pattern.sub(lambda m: f'{m.group(1)}="{local[m.group(2)]}"{m.group(3)}',
                           page.read_text())
        page.write_text(text)
    print(f"{len(local)} files in {vendor}; pages now load them locally")


if __name__ == "__main__":
    main(*sys.argv[1:])
