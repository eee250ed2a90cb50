import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.download import fetch  # noqa: E402
from panelmlp.runner import run  # noqa: E402

run(snakemake.log, fetch, url=snakemake.params.url, sha256=snakemake.params.sha256, out=snakemake.output[0])
