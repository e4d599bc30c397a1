"""Entry points for GPU steps launched through dagster-pipes.

These modules import only ``dagster_pipes`` (a zero-dependency package) and the
domain code, never ``dagster`` itself, so they run unchanged in a training
container on a cluster (PipesK8sClient) or in a local subprocess
(PipesSubprocessClient)."""
