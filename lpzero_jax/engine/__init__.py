"""The probe engine: every model pass the proxies read, stage by stage.

A family cuts its model into stages (`staging.Stages`: an outer stage, embeddings in and loss out,
and one stage per layer); each distinct stage is one compiled program, keyed by its (bucketed)
shape, so architectures share programs. One forward/backward sweep serves every consumer:
- `extract.extract_staged`: the compact six inputs (samples drawn from the real entries only,
  `sampling`), stored by `lpzero_jax.input_store`;
- `sweep.forward_full` / `sweep.backward_sweep`: the same stages with full tensors, bucketed
  layers cut back to their real shapes on the host (`sweep.Padding`);
- `passes`: the zoo's gradient passes on them (backward with per-channel Fisher, Synflow at
  |params| with ones, the Hessian-vector product): another objective or a jvp on top.
The engine imports no proxy and no store; the whole-model programs (`lpzero_jax.inputs`,
`lpzero_jax.proxies.stages`) remain as references in tests and for unstaged families.
"""
