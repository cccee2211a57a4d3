"""Copy the browser assets the node serves itself from web/node_modules into node/static/vendor.

Run by `make assets` after `npm ci` (web/package-lock.json pins the versions). Only the files
the pages load are copied, each package with a NOTICE naming its version and licence, so no
page of the node loads anything from another host.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MODULES = ROOT / "node_modules"
TARGET = ROOT.parent / "node" / "static" / "vendor"
# package -> (target directory, files under the package)
PACKAGES = {
    "@zazuko/yasgui": ("yasgui", ["build/yasgui.min.js", "build/yasgui.min.css"]),
    "swagger-ui-dist": (
        "swagger-ui",
        [
            "swagger-ui-bundle.js",
            "swagger-ui-standalone-preset.js",
            "swagger-ui.css",
            "favicon-32x32.png",
            "LICENSE",
            "NOTICE",
        ],
    ),
}


def main() -> int:
    if not MODULES.is_dir():
        print("web/node_modules is missing: run `npm ci` in web/ first", file=sys.stderr)
        return 1
    if TARGET.exists():
        shutil.rmtree(TARGET)
    for package, (directory, files) in PACKAGES.items():
        source = MODULES / package
        meta = json.loads((source / "package.json").read_text(encoding="utf-8"))
        out = TARGET / directory
        out.mkdir(parents=True)
        for name in files:
            shutil.copyfile(source / name, out / Path(name).name)
        (out / "VENDORED.txt").write_text(
            f"{package} {meta['version']}, licence {meta.get('license', 'see LICENSE')}, "
            "from the npm registry (web/package-lock.json); copied by web/vendor_assets.py\n",
            encoding="utf-8",
        )
    print(f"vendored {', '.join(PACKAGES)} into {TARGET.relative_to(ROOT.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
