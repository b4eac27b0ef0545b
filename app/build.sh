#!/usr/bin/env bash
# Vendor KaTeX (math rendering) into app/vendor/katex/ from the npm registry.
#
# Runs at build time only (`make setup` calls it); the page never fetches anything
# from the internet at run time. Without npm the page still works, it just shows
# LaTeX as raw text. Safe to run repeatedly.
set -euo pipefail

APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENDOR_DIR="$APP_DIR/vendor/katex"

if ! command -v npm >/dev/null 2>&1; then
    echo "app/build.sh: npm not found; skipping KaTeX (the web page will show math as raw LaTeX)."
    echo "app/build.sh: install Node.js + npm and rerun app/build.sh to enable math rendering."
    exit 0
fi

cd "$APP_DIR"
# --ignore-scripts: nothing here needs an install script (one dependency would phone home).
npm ci --no-audit --no-fund --ignore-scripts

DIST="$APP_DIR/node_modules/katex/dist"
# Rebuild the vendor folder from scratch so stale files never linger.
rm -rf "$VENDOR_DIR"
mkdir -p "$VENDOR_DIR"
cp "$DIST/katex.min.js" "$DIST/katex.min.css" "$VENDOR_DIR/"
cp "$DIST/contrib/auto-render.min.js" "$VENDOR_DIR/"
cp -R "$DIST/fonts" "$VENDOR_DIR/fonts"

# Swagger UI for the API docs at /docs (FastAPI would otherwise load it from a CDN).
SWAGGER_DIR="$APP_DIR/vendor/swagger-ui"
rm -rf "$SWAGGER_DIR"
mkdir -p "$SWAGGER_DIR"
cp node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,favicon-32x32.png} "$SWAGGER_DIR/"

echo "app/build.sh: KaTeX $(node -p "require('./node_modules/katex/package.json').version" 2>/dev/null || echo '?') and Swagger UI vendored into app/vendor/"
