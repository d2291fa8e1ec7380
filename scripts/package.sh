#!/usr/bin/env bash
# Builds the release that a host installs with no toolchain (`npm run package`):
#   dist/release/premortem_<version>_amd64.deb
#     /usr/lib/premortem        the compiled agent (dist/agent), the viewer bundle
#                               (dist/viewer), proto/, the prebuilt addon with the
#                               CO-RE BPF objects in its skeletons, production node_modules
#     /usr/bin/premortem        the command (runs /usr/bin/node)
#     /lib/systemd/system/premortem.service
#     /usr/share/doc/premortem  DEPLOY.md, SECURITY.md, copyright
#   Depends: nodejs (>= 20), libbpf1, libelf1, zlib1g and what dpkg-shlibdeps finds.
# The container image (deploy/Dockerfile) installs that .deb; with --image this
# script builds it when podman or docker is installed, else prints the command.
#
#   --print   print the artifact names (deb=..., image=...) and build nothing
#   --image   also build the image
# PREMORTEM_IMAGE overrides the image name (default premortem:<version>).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[package] %s\n' "$*" >&2; }
fail() { printf '[package] FAILED: %s\n' "$*" >&2; exit 1; }

want_print=0; want_image=0
for arg in "$@"; do
  case "$arg" in
    --print) want_print=1 ;;
    --image) want_image=1 ;;
    *) fail "unknown option $arg (use --print or --image)" ;;
  esac
done

VERSION=$(node -p "require('./package.json').version")
# x86-64 only: the BPF objects are built with __TARGET_ARCH_x86 and the addon for amd64.
ARCH=amd64
OUT_DIR=dist/release
DEB="$OUT_DIR/premortem_${VERSION}_${ARCH}.deb"
IMAGE="${PREMORTEM_IMAGE:-premortem:$VERSION}"
if [ "$want_print" = 1 ]; then
  printf 'deb=%s\nimage=%s\n' "$DEB" "$IMAGE"
  exit 0
fi

[ "$(dpkg --print-architecture 2>/dev/null)" = "$ARCH" ] || fail "the package is built on and for $ARCH (Debian) only"
for tool in dpkg-deb dpkg-shlibdeps md5sum; do
  command -v "$tool" >/dev/null || fail "$tool is missing (Debian packages dpkg, dpkg-dev, coreutils)"
done

started=$(date +%s)
say "building the agent (scripts/setup.sh --build-only)"
bash scripts/setup.sh --build-only

STAGE=build/package
ROOT="$STAGE/root"
LIB="$ROOT/usr/lib/premortem"
rm -rf "$STAGE"
mkdir -p "$LIB/bin" "$LIB/dist" "$LIB/build/Release" "$LIB/proto" "$ROOT/usr/bin" \
         "$ROOT/lib/systemd/system" "$ROOT/usr/share/doc/premortem" "$ROOT/DEBIAN" "$OUT_DIR"

say "staging /usr/lib/premortem"
# Compiled JavaScript of the agent and the code it shares with the viewer (no source maps: their sources are not shipped).
(cd dist && find agent proto -name '*.js' -exec cp --parents {} "../$LIB/dist/" \;)
cp -r dist/viewer "$LIB/dist/viewer"
install -m 0755 bin/premortem "$LIB/bin/premortem"
install -m 0644 build/Release/premortem.node "$LIB/build/Release/premortem.node"
install -m 0644 proto/premortem.proto "$LIB/proto/"
bash scripts/package-modules.sh "$LIB"

install -m 0755 deploy/debian/premortem "$ROOT/usr/bin/premortem"
install -m 0644 deploy/premortem.service "$ROOT/lib/systemd/system/premortem.service"
install -m 0644 deploy/debian/copyright docs/DEPLOY.md docs/SECURITY.md "$ROOT/usr/share/doc/premortem/"

say "writing DEBIAN/control"
# Shared libraries of the addon, with versions from their symbols files (napi_* come from node itself).
shlib_dir=$(mktemp -d)
trap 'rm -rf "$shlib_dir"' EXIT
mkdir -p "$shlib_dir/debian"
printf 'Source: premortem\n\nPackage: premortem\nArchitecture: %s\n' "$ARCH" > "$shlib_dir/debian/control"
addon_abs=$(readlink -f "$LIB/build/Release/premortem.node")
shlibs=$(cd "$shlib_dir" && dpkg-shlibdeps --warnings=0 -O "$addon_abs" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || fail "dpkg-shlibdeps found no dependencies for the addon"
# libelf1 and zlib1g come with libbpf1 already; named anyway, as the addon's loader needs them.
depends=$(printf '%s\n' "nodejs (>= 20)" "${shlibs//, /$'\n'}" "libelf1" "zlib1g" | awk -F' ' '!seen[$1]++' | paste -sd, | sed 's/,/, /g')
installed_kb=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$installed_kb/" -e "s/@DEPENDS@/$depends/" \
  deploy/debian/control.in > "$ROOT/DEBIAN/control"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$ROOT/DEBIAN/"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)

# Modes do not depend on the builder's umask: directories 0755, files 0644 unless executable.
find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -type f ! -perm -u+x -exec chmod 0644 {} +
find "$ROOT" -type f -perm -u+x -exec chmod 0755 {} +

say "dpkg-deb --build"
rm -f "$OUT_DIR"/premortem_*.deb
dpkg-deb --root-owner-group -Zxz -z6 --build "$ROOT" "$DEB" >/dev/null
say "$DEB: $(du -k "$DEB" | cut -f1) KiB, installed ${installed_kb} KiB, built in $(( $(date +%s) - started )) s"
say "Depends: $depends"

image_cmd="build -f deploy/Dockerfile -t $IMAGE $OUT_DIR"
if [ "$want_image" = 1 ]; then
  engine=$(command -v podman || command -v docker || true)
  [ -n "$engine" ] || fail "--image: neither podman nor docker is installed; build it elsewhere with: podman $image_cmd"
  say "$(basename "$engine") $image_cmd"
  "$engine" $image_cmd
else
  say "image: podman $image_cmd   (or: bash scripts/package.sh --image)"
fi
printf '%s\n' "$DEB"
