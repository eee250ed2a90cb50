"""panelmlp: honest, reproducible gene-panel classifiers from an expression CSV.

The library behind the Snakemake workflow. Every module is plain Python that
tests import directly; rule scripts in ``workflow/scripts`` only unpack
``snakemake.*`` and call into it.
"""

__version__ = "0.1.0"
