#!/usr/bin/env bash
# The Python suite under LeakSanitizer: every Python process the tests start runs
# with LSan's runtime preloaded and Python's allocator switched to malloc, so a
# block the extension allocates and never frees is reported at exit, and the test
# (or the run) fails. Usage, from the repository root with the package installed
# (`pip install '.[test]'` or `maturin develop`):
#
#     tests/leakcheck/run.sh [pytest arguments]
#
# Needs GCC's liblsan (Debian: libgcc's liblsan0). tests/test_benches.py is left out:
# it builds the Rust load generator with cargo, which LSan would check too.
set -euo pipefail
cd "$(dirname "$0")/../.."
lsan=$(gcc -print-file-name=liblsan.so)
lsan=$(readlink -f "$lsan")
if [[ ! -f $lsan ]]; then
    echo "LeakSanitizer's runtime (liblsan.so) is not installed: the leak check cannot run" >&2
    exit 1
fi
export LSAN_OPTIONS="detect_leaks=1:print_suppressions=0:suppressions=$PWD/tests/leakcheck/lsan.supp"
export PYTHONMALLOC=malloc
# A runtime the loader ignores would let the run pass unchecked: prove it is loaded.
LD_PRELOAD="$lsan" python -c 'import sys; sys.exit("liblsan" not in open("/proc/self/maps").read())' || {
    echo "liblsan.so did not load into Python: the leak check cannot run" >&2
    exit 1
}
LD_PRELOAD="$lsan" python -m pytest -q -p no:cacheprovider tests --ignore=tests/test_benches.py "$@"
