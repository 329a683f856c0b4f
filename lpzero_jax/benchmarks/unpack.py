"""The packaged data written out as a plain data root (tests on a bare install use it)."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

from lpzero_jax.benchmarks import lts
from lpzero_jax.paths import PACKAGE_DATA, PACKAGED


def unpack_packaged_data(dest: Path) -> Path:
    """Writes the packaged data, decompressed, into `dest` in the data-root layout (the GPT-2
    benchmark as an LTS directory with the same values) and returns `dest`: a data root for code
    that expects plain files, e.g. the tests on a bare install."""
    dest = Path(dest)
    for relative, packed in PACKAGED.items():
        target = dest / relative
        if target.exists():
            continue
        if relative == lts.DEFAULT_DIR:  # a directory, shipped as one compact file
            lts.write_lts_dir(lts.read_compact(PACKAGE_DATA / packed), target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        opener = gzip.open if packed.endswith(".gz") else lzma.open
        with opener(PACKAGE_DATA / packed, "rb") as f:
            target.write_bytes(f.read())
    return dest
