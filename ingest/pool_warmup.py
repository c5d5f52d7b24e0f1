"""What the pool's server preloads (ingest.pool.PRELOAD): the pipeline, warmed up.

forkserver's preload only imports modules, so the warm-up runs on import: the workers forked
afterwards start with punkt, the stop words and the language tables already loaded.
"""

from ingest.pipeline import warm_up

warm_up()
