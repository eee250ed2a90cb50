from panelmlp.download import fetch
from panelmlp.runner import run

run(snakemake.log, fetch, url=snakemake.params.url, sha256=snakemake.params.sha256, out=snakemake.output[0])
