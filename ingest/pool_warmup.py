"""What the pool's server preloads (ingest.pool.PRELOAD): the pipeline, warmed up.

forkserver's preload only imports modules, so the warm-up runs on import: the workers forked
afterwards start with punkt, the stop words and the language tables already loaded.
"""

from contextlib import suppress

from ingest.pipeline import warm_up

# A failure here (punkt's data missing, say) must not stop the server from starting: the
# workers' first story then meets it again and reports it as an ingest error, as before.
with suppress(Exception):
    warm_up()
