"""Studies over proxy inputs extracted once per benchmark: seeds and significance (seeds.py),
transfer of searched proxies across benchmarks (transfer.py), a joint search over several
benchmarks (joint.py). The pool of architectures each works on is loaded by pool.py."""
