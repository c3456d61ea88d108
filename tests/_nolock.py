"""A file system without file locks, for one child process: a preloaded shim (LD_PRELOAD)
compiled from a few lines of C with the system compiler. It makes ``flock()`` and the
record-lock commands of ``fcntl()``/``fcntl64()`` (F_SETLK, F_SETLKW, F_GETLK and the OFD
variants) fail with ``$NOLOCK_ERRNO`` (default ENOLCK), the way a Lustre ``noflock`` mount,
an NFS mount without a lock daemon or GPFS through Cray DVS answer. ``$NOLOCK_CALLS``
("flock", "fcntl" or both, the default) picks the calls; every other ``fcntl`` command goes
to the real one (``dlsym(RTLD_NEXT, ...)``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

static int lock_errno(void) {
    const char *e = getenv("NOLOCK_ERRNO");
    return e ? atoi(e) : ENOLCK;
}
static int refused(const char *call) {
    const char *calls = getenv("NOLOCK_CALLS");
    return calls == NULL || strstr(calls, call) != NULL;
}
int flock(int fd, int op) {
    if (refused("flock")) { errno = lock_errno(); return -1; }
    int (*real)(int, int) = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
    return real(fd, op);
}
static int is_lock(int cmd) {
    return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_GETLK
#ifdef F_OFD_SETLK
        || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW || cmd == F_OFD_GETLK
#endif
        ;
}
static int pass(const char *name, int fd, int cmd, void *arg) {
    int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, name);
    return real(fd, cmd, arg);
}
int fcntl(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
    if (is_lock(cmd) && refused("fcntl")) { errno = lock_errno(); return -1; }
    return pass("fcntl", fd, cmd, arg);
}
int fcntl64(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
    if (is_lock(cmd) && refused("fcntl")) { errno = lock_errno(); return -1; }
    return pass("fcntl64", fd, cmd, arg);
}
"""


def build(directory: Path) -> Path:
    """Compile the shim into ``directory``; the test run fails (never skips) without ``cc``."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler: tools/install-system-packages installs one (apt-get install gcc)"
    src = directory / "nolock.c"
    src.write_text(SOURCE)
    lib = directory / "nolock.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), "-ldl"], check=True)
    return lib


def run(
    lib: Path,
    code: str,
    cwd: Path,
    *,
    errno_value: int | None = None,
    calls: str = "flock,fcntl",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter on a "mount" without file locks."""
    child = {**os.environ, **(env or {}), "LD_PRELOAD": str(lib), "NOLOCK_CALLS": calls}
    if "HDF5_USE_FILE_LOCKING" not in (env or {}):  # the user's choice only where a test makes it
        child.pop("HDF5_USE_FILE_LOCKING", None)
    if errno_value is not None:
        child["NOLOCK_ERRNO"] = str(errno_value)
    tests = str(Path(__file__).resolve().parent)
    child["PYTHONPATH"] = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=child, capture_output=True, text=True, timeout=timeout
    )
